//! Hostile roots: a vserver root whose kernel-filesystem directories, device directory, files
//! or bind-mount targets are symbolic links pointing at the host (absolute, or climbing out
//! with `..`). The start must be refused with an error naming the step and the path, or be
//! confined; the watched host directory is never written and no mount appears on the host.

use std::os::unix::fs::symlink;
use std::path::Path;

use vserver_e2e::*;
use vserver_engine::BindMount;

/// A host directory the test watches, with a canary file.
fn watched(t: &TestDir, name: &str) -> std::path::PathBuf {
    let d = t.host().join(name);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("canary"), "host data\n").unwrap();
    d
}

/// How a link in the root points at the host.
#[derive(Debug, Clone, Copy)]
enum Link {
    /// An absolute host path.
    Absolute,
    /// A relative path climbing out of the root with `..`.
    DotDot,
}

fn link_to(t: &TestDir, in_root: &str, target: &Path, how: Link) {
    let link = t.root().join(in_root);
    let _ = std::fs::remove_dir(&link);
    let _ = std::fs::remove_file(&link);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    let to = match how {
        Link::Absolute => target.to_path_buf(),
        Link::DotDot => {
            let depth = in_root.matches('/').count() + 1; // up to root/, then to the test dir
            let rel = target.strip_prefix(&t.path).unwrap();
            let mut p = std::path::PathBuf::new();
            for _ in 0..depth {
                p.push("..");
            }
            p.join(rel)
        }
    };
    symlink(&to, &link).unwrap();
    assert!(link.join("canary").exists(), "the link resolves to the host dir on the host: {}", link.display());
}

/// Starts the probe in `t`'s root and checks the outcome: refused at `step` naming `path`, or
/// started with `/{name}` being the expected filesystem. Either way the host is untouched.
fn check_refused_or_confined(t: &TestDir, host_dir: &Path, step: Step, path: &str, fstype: &str) {
    let before = snapshot(host_dir);
    let run = t.run(&t.probe_plan(&["report"]));
    match &run.error {
        Some(e) => {
            assert_eq!(e.step, step, "{run:?}");
            assert_eq!(e.path.as_deref(), Some(path), "{run:?}");
        }
        None => {
            assert_eq!(run.exit, Some(Exit::Code(0)), "{run:?}");
            let r = Report::parse(&run.stdout);
            assert_eq!(r.mount(path).map(|m| m.0), Some(fstype.to_string()), "confined: {path} is a fresh {fstype}");
        }
    }
    assert_eq!(snapshot(host_dir), before, "the host directory was written");
    assert!(t.host_mounts().is_empty(), "a mount appeared on the host: {:?}", t.host_mounts());
    assert!(t.host_processes().is_empty(), "processes left: {:?}", t.host_processes());
}

fn kernel_dir_link(name: &str, step: Step, fstype: &str) {
    for how in [Link::Absolute, Link::DotDot] {
        let t = TestDir::with_root(&format!("hostile-{name}"));
        let host = watched(&t, &format!("{name}-target"));
        link_to(&t, name, &host, how);
        check_refused_or_confined(&t, &host, step, &format!("/{name}"), fstype);
    }
}

#[test]
fn dev_symlink_to_the_host_is_refused() {
    require_root!();
    set_spawn_plan(env!("CARGO_BIN_EXE_spawn-plan"));
    kernel_dir_link("dev", Step::Dev, "tmpfs");
}

#[test]
fn proc_symlink_to_the_host_is_refused() {
    require_root!();
    set_spawn_plan(env!("CARGO_BIN_EXE_spawn-plan"));
    kernel_dir_link("proc", Step::Proc, "proc");
}

#[test]
fn sys_symlink_to_the_host_is_refused() {
    require_root!();
    set_spawn_plan(env!("CARGO_BIN_EXE_spawn-plan"));
    kernel_dir_link("sys", Step::Sys, "sysfs");
}

#[test]
fn proc_as_a_file_is_refused() {
    let t = test_dir!("hostile-procfile");
    std::fs::remove_dir(t.root().join("proc")).unwrap();
    std::fs::write(t.root().join("proc"), "not a dir").unwrap();
    let host = watched(&t, "unused");
    check_refused_or_confined(&t, &host, Step::Proc, "/proc", "proc");
}

#[test]
fn links_in_the_roots_own_dev_are_covered() {
    // /dev is a fresh tmpfs: links in the root's own dev directory (pts, console, null) are
    // hidden under it and never followed.
    let t = test_dir!("hostile-devpts");
    let host = watched(&t, "pts-target");
    let file = t.host().join("console-target");
    std::fs::write(&file, "host console\n").unwrap();
    link_to(&t, "dev/pts", &host, Link::Absolute);
    symlink(&file, t.root().join("dev/console")).unwrap();
    symlink(&file, t.root().join("dev/null")).unwrap();
    let before = (snapshot(&host), snapshot(&t.host()));
    let r = t.report(&t.probe_plan(&["report"]));
    assert_eq!(r.all("pts"), vec!["ptmx"]);
    assert_eq!(r.mount("/dev/pts").map(|m| m.0), Some("devpts".into()));
    assert!(r.all("dev").contains(&"null chr 1:3"));
    assert_eq!((snapshot(&host), snapshot(&t.host())), before, "the host was written");
    assert!(t.host_mounts().is_empty());
}

#[test]
fn etc_hostname_symlink_is_never_written() {
    let t = test_dir!("hostile-hostname");
    let file = t.host().join("hostname");
    std::fs::write(&file, "host-original\n").unwrap();
    symlink(&file, t.root().join("etc/hostname")).unwrap();
    let before = snapshot(&t.host());
    let mut plan = t.probe_plan(&["report"]);
    plan.domainname = Some("hostile.example".into());
    let r = t.report(&plan);
    assert_eq!(r.get("hostname"), t.tag);
    assert_eq!(snapshot(&t.host()), before, "the host file behind /etc/hostname was written");
}

fn bind_plan(t: &TestDir, target: &str) -> LaunchPlan {
    let src = t.host().join("bind-src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("file"), "from the host\n").unwrap();
    let mut plan = t.plan(Init::Fake { argv: vec!["/probe".into(), "try".into(), "read".into(), format!("{target}/file")] });
    plan.mounts = vec![BindMount { source: src, target: target.into(), readonly: true }];
    plan
}

#[test]
fn bind_mount_into_a_plain_directory_works() {
    // Positive control for the refusals below.
    let t = test_dir!("bind-ok");
    let r = t.run(&bind_plan(&t, "/mnt/in"));
    assert_eq!(r.exit, Some(Exit::Code(0)), "{r:?}");
    assert_eq!(r.answer(), "ok bytes=14");
}

#[test]
fn bind_mount_target_symlinked_out_is_refused() {
    require_root!();
    set_spawn_plan(env!("CARGO_BIN_EXE_spawn-plan"));
    let cases: [(&str, &str, Option<Link>); 4] = [
        // the target itself is a link out
        ("mnt/out", "/mnt/out", Some(Link::Absolute)),
        ("mnt/out", "/mnt/out", Some(Link::DotDot)),
        // a directory on the way is a link out
        ("mnt2", "/mnt2/sub", Some(Link::Absolute)),
        // the target climbs out by itself
        ("", "/mnt/../../host/bind-target", None),
    ];
    for (link, target, how) in cases {
        let t = TestDir::with_root("hostile-bind");
        let host = watched(&t, "bind-target");
        if let Some(how) = how {
            link_to(&t, link, &host, how);
        }
        let before = snapshot(&host);
        let r = t.run(&bind_plan(&t, target));
        let e = r.setup_error();
        assert_eq!(e.step, Step::BindMounts, "{target}: {r:?}");
        assert_eq!(e.path.as_deref(), Some(target), "{r:?}");
        assert_eq!(snapshot(&host), before, "{target}: the host directory was written");
        assert!(t.host_mounts().is_empty(), "{target}: {:?}", t.host_mounts());
        assert!(!host.join("sub").exists() && !host.join("file").exists());
    }
}

#[test]
fn root_path_that_is_a_symlink_is_refused() {
    let t = test_dir!("hostile-rootlink");
    let link = t.path.join("rootlink");
    symlink(t.root(), &link).unwrap();
    let mut plan = t.probe_plan(&["report"]);
    plan.root = Some(link.clone());
    let r = t.run(&plan);
    let e = r.setup_error();
    assert_eq!(e.step, Step::Validate);
    assert_eq!(e.path.as_deref(), Some(link.to_str().unwrap()));
}

#[test]
fn tmpfs_and_run_on_links_out_are_refused() {
    // `/run` (a real init's) and a tmpfs target, each a link to a host directory, absolute or
    // climbing out: refused at their step, nothing mounted on the host's directory.
    for (link, how, tmpfs, step) in [
        ("run", Link::Absolute, vec![], Step::Run),
        ("run", Link::DotDot, vec![], Step::Run),
        ("tmp", Link::Absolute, vec!["/tmp".to_string()], Step::Tmpfs),
        ("var", Link::DotDot, vec!["/var/tmp".to_string()], Step::Tmpfs),
    ] {
        let t = TestDir::with_root("hostile-tmpfs");
        let host = watched(&t, "tmpfs-target");
        link_to(&t, link, &host, how);
        let before = snapshot(&host);
        let mut plan = t.probe_plan(&["report"]);
        plan.init_fs.run = step == Step::Run;
        plan.tmpfs = tmpfs;
        let r = t.run(&plan);
        let e = r.setup_error();
        assert_eq!(e.step, step, "{link} {how:?}: {r:?}");
        assert_eq!(snapshot(&host), before, "{link}: the host directory was written");
        assert!(t.host_mounts().is_empty(), "{link}: {:?}", t.host_mounts());
    }
}
