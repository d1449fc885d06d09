//! A context's traces outside itself: the registry entry while it runs, and nothing at all
//! (no process, no mount, no entry) once it has ended or failed to start.

use std::path::Path;
use std::time::Duration;

use vserver_e2e::*;
use vserver_engine::registry::{self, Entry};

/// Entry files in the registry (not the lock file or temporary files, which start with a dot).
fn registry_files(run_dir: &Path) -> Vec<String> {
    std::fs::read_dir(run_dir.join("contexts"))
        .map(|rd| {
            rd.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| !n.starts_with('.')).collect()
        })
        .unwrap_or_default()
}

fn assert_nothing_left(t: &TestDir) {
    assert!(t.host_processes().is_empty(), "processes left: {:?}", t.host_processes());
    assert!(t.host_mounts().is_empty(), "mounts left: {:?}", t.host_mounts());
    assert!(registry_files(&t.run_dir()).is_empty(), "registry entries left: {:?}", registry_files(&t.run_dir()));
    assert!(registry::list(&t.run_dir()).is_empty());
}

#[test]
fn nonexistent_init_fails_at_exec_and_leaves_nothing() {
    let t = test_dir!("noinit");
    for prog in ["/nonexistent/init", "no-such-program"] {
        let mut plan = t.plan(Init::Fake { argv: vec![prog.into()] });
        plan.context = 4242;
        let r = t.run(&plan);
        let e = r.setup_error();
        assert_eq!(e.step, Step::Exec, "{r:?}");
        assert_eq!(e.errno, libc::ENOENT, "{r:?}");
        assert_eq!(r.status.code(), Some(125));
        assert!(r.pid1.is_none());
        assert_nothing_left(&t);
    }
}

#[test]
fn failure_in_a_mount_step_leaves_nothing() {
    let t = test_dir!("failmount");
    std::fs::remove_dir(t.root().join("sys")).unwrap();
    std::os::unix::fs::symlink("/", t.root().join("sys")).unwrap();
    let r = t.run(&t.probe_plan(&["report"]));
    assert_eq!(r.setup_error().step, Step::Sys, "{r:?}");
    assert_nothing_left(&t);
}

#[test]
fn registry_names_pid_1_while_running_and_is_released_after() {
    let t = test_dir!("registry");
    let mut plan = t.plan(Init::Fake { argv: vec!["/bin/sleep".into(), "30".into()] });
    plan.context = 321;
    let run = t.start(&plan);
    let pid = run.pid1.expect("started");
    assert_eq!(run.context, Some(321));
    assert!(t.run_dir().join("contexts/321").is_file(), "the entry is run_dir/contexts/321");
    let entry = registry::lookup(&t.run_dir(), 321).expect("a live entry");
    assert_eq!(entry.pid, pid, "it names pid 1");
    assert_eq!(Some(entry.start_time), start_time(pid), "and pid 1's start time");
    assert_eq!(entry.name, t.tag);
    assert_eq!(entry.context, 321);
    assert!(entry.own_network);

    // A second context may not take the same number while the first lives.
    let r2 = t.run(&plan);
    let e = r2.setup_error();
    assert_eq!((e.step, e.errno), (Step::Registry, libc::EEXIST), "{r2:?}");
    assert_eq!(registry::lookup(&t.run_dir(), 321), Some(entry), "the live entry survives a refused claim");

    unsafe { libc::kill(pid, libc::SIGKILL) };
    let r = run.wait(Duration::from_secs(20));
    assert_eq!(r.exit, Some(Exit::Signal(libc::SIGKILL)), "{r:?}");
    assert_eq!(registry::lookup(&t.run_dir(), 321), None);
    assert_nothing_left(&t);
}

#[test]
fn recycled_pid_reads_as_absent() {
    let t = test_dir!("recycled");
    // A live pid (this test process) with the wrong start time: a recycled pid.
    let me = std::process::id() as i32;
    let real = start_time(me).unwrap();
    let entry = Entry {
        context: 77,
        name: "ghost".into(),
        pid: me,
        start_time: real + 12345,
        owner_pid: me,
        owner_start_time: real + 12345,
        flags: Default::default(),
        caps: CapSet::secure_default(),
        own_network: true,
    };
    std::fs::create_dir_all(t.run_dir().join("contexts")).unwrap();
    let write = |e: &Entry| std::fs::write(t.run_dir().join("contexts/77"), serde_json::to_string(e).unwrap()).unwrap();
    write(&entry);
    assert_eq!(registry::lookup(&t.run_dir(), 77), None, "a recycled pid is not the context");
    assert!(registry::list(&t.run_dir()).is_empty());

    // Positive control: with the right start time the same entry is live.
    let mut live = entry.clone();
    live.start_time = real;
    write(&live);
    assert_eq!(registry::lookup(&t.run_dir(), 77), Some(live));

    // The stale entry does not block a new context from taking the number.
    write(&entry);
    let mut plan = t.probe_plan(&["report"]);
    plan.context = 77;
    let run = t.start(&plan);
    let r = run.wait(Duration::from_secs(20));
    assert_eq!(r.exit, Some(Exit::Code(0)), "{r:?}");
    assert_eq!(r.context, Some(77));
    assert!(registry_files(&t.run_dir()).is_empty(), "released after the run: {:?}", registry_files(&t.run_dir()));
}

#[test]
fn dynamic_context_numbers_come_from_the_dynamic_range() {
    let t = test_dir!("dynamic");
    let plan = t.plan(Init::Fake { argv: vec!["/bin/sleep".into(), "30".into()] });
    let a = t.start(&plan);
    let b = t.start(&plan);
    let (ca, cb) = (a.context.unwrap(), b.context.unwrap());
    assert!(ca >= registry::DYNAMIC_FIRST && cb >= registry::DYNAMIC_FIRST, "{ca} {cb}");
    assert_ne!(ca, cb, "two live contexts never share a number");
    assert_eq!(registry::list(&t.run_dir()).len(), 2);
    for run in [a, b] {
        unsafe { libc::kill(run.pid1.unwrap(), libc::SIGKILL) };
        run.wait(Duration::from_secs(20));
    }
    assert_nothing_left(&t);
}
