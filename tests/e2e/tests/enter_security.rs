//! Nothing of the host leaks in through `enter`/`exec`. The process that joins (the daemon's
//! enter helper) stays in the host's PID namespace, non-dumpable, running the sealed copy of the
//! daemon with an empty environment; what appears inside holds only its three stdio descriptors
//! and the clean environment. Checked from the host, and from inside by root racing: a probe
//! that examines every new process the moment it appears while the host enters again and again.

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use vserver_e2e::daemon::*;
use vserver_e2e::pty::{run, vserverctl};
use vserver_e2e::{require_root, Report};

const T: Duration = Duration::from_secs(30);
const MARKER: &str = "VSERVER_RACE_MARKER";

fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

fn all_pids() -> Vec<i32> {
    fs::read_dir("/proc").unwrap().flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()
}

#[test]
fn the_enter_helper_is_out_of_reach_and_holds_nothing_for_inside() {
    require_root!();
    with_daemon("enter-helper", async |d| {
        d.ctl_root("h1");
        d.config("h1", &format!("context = 521\n{CTL_INIT}"));
        d.start().await;
        d.manager().await.start_vserver("h1").await.unwrap();
        let st = d.state("h1").unwrap();

        let mut session = vserverctl(&d.address, &["exec", "h1", "--", "sleep", "3"])
            .env(MARKER, "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        // The helper: a child of the daemon named vserver-enter (the guard, on the host), and
        // its worker, which joined the vserver and forked the command.
        let deadline = Instant::now() + T;
        let ppid = |p: i32| -> i32 {
            let st = fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            st.rsplit(')').next().and_then(|r| r.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
        };
        let (guard, helper, inner) = loop {
            let helpers: Vec<i32> = all_pids().into_iter().filter(|p| comm(*p) == "vserver-enter").collect();
            let guard = helpers.iter().copied().find(|p| ppid(*p) == d.pid());
            let worker = helpers.iter().copied().find(|p| guard.is_some() && ppid(*p) == guard.unwrap());
            let inner = d.processes_of("h1").into_iter().find(|p| *p != st.pid && comm(*p) == "sleep" && {
                let c = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                c == b"sleep\x003\x00"
            });
            if let (Some(g), Some(h), Some(i)) = (guard, worker, inner) {
                break (g, h, i);
            }
            assert!(Instant::now() < deadline, "no helper and command seen");
            std::thread::sleep(Duration::from_millis(10));
        };
        let field = |p: i32, key: &str| -> String {
            let status = fs::read_to_string(format!("/proc/{p}/status")).unwrap();
            status.lines().find_map(|l| l.strip_prefix(key)).unwrap_or("").trim().to_string()
        };
        // The guard traces the worker (and so, from its fork until its exec, the command);
        // once exec'd the command is traced by nobody.
        assert_eq!(field(helper, "TracerPid:"), guard.to_string(), "the worker is traced by the guard");
        assert_eq!(field(inner, "TracerPid:"), "0", "the command was let go at its exec");
        let ns = |p: i32, n: &str| fs::read_link(format!("/proc/{p}/ns/{n}")).unwrap();
        assert_ne!(ns(guard, "mnt"), ns(st.pid, "mnt"), "the guard stays on the host");
        // Both run the sealed copy: its exe cannot be opened for writing, not even by the
        // host's root; their environment is empty; they live in the host's PID namespace, so
        // nothing inside sees them; the worker lives in the vserver's mount namespace.
        for helper in [guard, helper] {
            let exe = fs::read_link(format!("/proc/{helper}/exe")).unwrap();
            assert!(exe.display().to_string().contains("memfd:vserver-sealed"), "{exe:?}");
            let w = fs::OpenOptions::new().write(true).open(format!("/proc/{helper}/exe"));
            assert!(w.is_err(), "the sealed binary opened for writing");
            assert_eq!(fs::read(format!("/proc/{helper}/environ")).unwrap(), b"", "an empty environment");
            let nspid = field(helper, "NSpid:");
            assert_eq!(nspid.split_whitespace().count(), 1, "one pid, the host's: {nspid}");
            assert_eq!(field(helper, "CapEff:").len(), 16);
            assert_ne!(ns(helper, "pid"), ns(st.pid, "pid"));
        }
        assert_eq!(ns(helper, "mnt"), ns(st.pid, "mnt"));
        let seen_inside = run(vserverctl(&d.address, &["exec", "h1", "--", "ls", "/proc"]), T).stdout;
        assert!(!seen_inside.split_whitespace().any(|w| w == helper.to_string()), "pids differ, but let's be sure");
        // The command holds its three pipes and nothing else; its environment is the clean one.
        let fds: Vec<String> = fs::read_dir(format!("/proc/{inner}/fd")).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        let mut fds = fds;
        fds.sort();
        assert_eq!(fds, vec!["0", "1", "2"]);
        let env = String::from_utf8(fs::read(format!("/proc/{inner}/environ")).unwrap()).unwrap();
        assert!(!env.contains(MARKER) && !env.contains("CARGO") && !env.contains("DBUS"), "{env:?}");
        assert_eq!(session.wait().unwrap().code(), Some(0));
        // Once the command has ended the helper is gone too.
        let deadline = Instant::now() + T;
        while [guard, helper].iter().any(|h| fs::metadata(format!("/proc/{h}")).is_ok() && comm(*h) == "vserver-enter") {
            assert!(Instant::now() < deadline, "the helper outlived its command");
            std::thread::sleep(Duration::from_millis(10));
        }
    });
}

/// Runs the racing probe inside `name` for `secs` while the host enters `rounds` times with a
/// marker in vserverctl's environment (and the daemon's own environment holding the test's).
fn race(d: &TestDaemon<'_>, name: &str, secs: u32, rounds: u32) -> Report {
    let racer = vserverctl(&d.address, &["exec", name, "--", "/probe", "race", &secs.to_string(), "ptrace", MARKER, "CARGO", "RUST", "DBUS"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(400));
    for _ in 0..rounds {
        let mut c = vserverctl(&d.address, &["exec", name, "--", "sleep", "0.02"]);
        c.env(MARKER, "host-secret");
        let o = run(c, T);
        assert_eq!(o.code, Some(0), "{o:?}");
        let mut c = vserverctl(&d.address, &["exec", "--user", "nobody", name, "--", "sleep", "0.02"]);
        c.env(MARKER, "host-secret");
        assert_eq!(run(c, T).code, Some(0));
    }
    let out = racer.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!("race in {name}:\n{text}");
    Report::parse(&text)
}

fn count(r: &Report, key: &str) -> u64 {
    r.all(key).first().map(|v| v.parse().unwrap()).unwrap_or(0)
}

#[test]
fn root_inside_racing_gets_nothing_of_the_host() {
    require_root!();
    with_daemon("enter-race", async |d| {
        for (name, ctx, caps) in [("r1", 522, "[capabilities]\nadd = [\"SYS_PTRACE\"]\n"), ("r2", 523, "")] {
            let root = d.ctl_root(name);
            fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n").unwrap();
            d.config(name, &format!("context = {ctx}\n{CTL_INIT}{caps}"));
        }
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("r1").await.unwrap();
        m.start_vserver("r2").await.unwrap();
        d.state("r1");
        d.state("r2");

        // Root inside given SYS_PTRACE back (for strace and gdb inside) may look at an entering
        // process in the moment between its fork and its exec, but not attach to it: the
        // daemon's helper traces it from its birth (the ptrace guard) and lets go at its exec.
        // After the exec it is an ordinary process of the vserver, which the same racer does
        // attach to (the positive control). What it can read holds nothing of the host: only
        // three stdio descriptors, an empty or clean environment.
        let r = race(&d, "r1", 4, 25);
        assert_eq!(r.get("control_environ"), "ok", "the probe can read what it may");
        assert_eq!(r.get("control_ptrace"), "ok");
        assert!(count(&r, "seen") >= 10, "the racer saw the entered commands");
        if vserver_e2e::userns_mode() {
            // In a user namespace SYS_PTRACE counts over the namespace's own: the entering
            // process's memory is the host's (made before it joined), so even its exe stays
            // hidden, as without SYS_PTRACE below.
            assert_eq!(count(&r, "seen_sealed"), 0, "{:?}", r.all("detail"));
            assert!(count(&r, "seen_hidden") > 0, "the racer saw entering processes before their exec");
        } else {
            assert!(count(&r, "seen_sealed") > 0, "the racer saw entering processes before their exec");
            assert!(count(&r, "ptrace_refused_sealed") > 0, "the racer tried to attach before the exec");
        }
        assert_eq!(count(&r, "ptrace_sealed") + count(&r, "ptrace_hidden"), 0, "attached before the exec: {:?}", r.all("detail"));
        assert!(count(&r, "ptrace_after_exec") > 0, "the same processes, once exec'd, can be traced");
        assert_eq!(count(&r, "exe_writable"), 0, "{:?}", r.all("detail"));
        assert_eq!(count(&r, "environ_leak"), 0, "{:?}", r.all("detail"));
        assert_eq!(count(&r, "environ_unclean"), 0, "{:?}", r.all("detail"));
        assert_eq!(count(&r, "fd_other"), 0, "{:?}", r.all("detail"));
        assert_eq!(count(&r, "fd_above_2"), 0, "only the three stdio descriptors, even before the exec: {:?}", r.all("detail"));

        // With the default set (no SYS_PTRACE), a process that has not yet exec'd (still the daemon's
        // sealed, non-dumpable copy) can be neither traced nor read; after its exec it is an
        // ordinary process of the vserver (the positive control).
        let r = race(&d, "r2", 4, 25);
        assert_eq!(r.get("control_environ"), "ok");
        assert_eq!(r.get("control_ptrace"), "ok");
        assert_eq!(count(&r, "seen_sealed"), 0, "its exe cannot even be read");
        assert_eq!(count(&r, "ptrace_sealed") + count(&r, "ptrace_hidden"), 0, "{:?}", r.all("detail"));
        assert_eq!(count(&r, "environ_read_sealed") + count(&r, "environ_read_hidden"), 0);
        assert!(count(&r, "seen_hidden") > 0, "the racer saw entering processes before their exec");
        assert_eq!(count(&r, "exe_writable"), 0, "{:?}", r.all("detail"));
        assert_eq!(count(&r, "environ_leak"), 0, "{:?}", r.all("detail"));
        assert_eq!(count(&r, "fd_other"), 0, "{:?}", r.all("detail"));
        assert_eq!(count(&r, "fd_above_2"), 0, "only the three stdio descriptors, even before the exec: {:?}", r.all("detail"));
    });
}
