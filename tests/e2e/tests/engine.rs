//! What a process inside a vserver sees, reported by the probe from inside.

use std::collections::BTreeSet;

use vserver_e2e::*;
use vserver_engine::{Network, Resource, Rlimit};

fn host_uname() -> (String, String) {
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::uname(&mut u) }, 0);
    let f = |c: &[libc::c_char]| unsafe { std::ffi::CStr::from_ptr(c.as_ptr()) }.to_string_lossy().into_owned();
    (f(&u.nodename), f(&u.domainname))
}

#[test]
fn hostname_and_domainname_are_the_plans() {
    let t = test_dir!("names");
    let before = host_uname();
    let mut plan = t.probe_plan(&["report"]);
    let domain = format!("dom-{}", t.tag);
    plan.domainname = Some(domain.clone());
    let r = t.report(&plan);
    assert_eq!(r.get("hostname"), t.tag);
    assert_eq!(r.get("domainname"), domain);
    assert_ne!(r.get("hostname"), before.0, "the vserver must not see the host's name");
    assert_eq!(host_uname(), before, "the host's names must not change");
}

#[test]
fn pid_namespace_holds_only_the_vservers_processes() {
    let t = test_dir!("pids");
    // A second process inside, and pid 1 alive long enough for the host to look at it.
    let plan = t.plan(Init::Fake {
        argv: vec!["/bin/sh".into(), "-c".into(), "/bin/sleep 30 & /bin/sleep 0.3; exec /probe report".into()],
    });
    let run = t.start(&plan);
    let ns = run.pidns.clone().expect("pid 1 is alive for 0.2 s");
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(250);
    let mut host_view = processes_in_pidns(&ns);
    while host_view.len() < 2 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
        host_view = processes_in_pidns(&ns);
    }
    let run = run.wait(std::time::Duration::from_secs(20));
    assert_eq!(run.exit, Some(Exit::Code(0)), "{run:?}");
    let r = Report::parse(&run.stdout);
    assert_eq!(r.get("pid"), "1", "exec keeps pid 1");
    assert_eq!(r.get("ppid"), "0");
    let procs: Vec<&str> = r.all("proc");
    assert_eq!(procs, vec!["1 probe", "2 sleep"], "only the vserver's processes are visible");
    assert!(host_view.len() >= 2, "the host sees the vserver's processes (spectator): {host_view:?}");
    assert!(processes_in_pidns(&ns).is_empty(), "every process of the context ends with its pid 1");
}

#[test]
fn bounding_set_is_the_secure_default() {
    let t = test_dir!("caps-default");
    let r = t.report(&t.probe_plan(&["report"]));
    let expect = caps(&vserver_engine::caps::SECURE_DEFAULT);
    assert_eq!(r.hex("CapBnd"), expect.0, "CapBnd {} vs {}", CapSet(r.hex("CapBnd")).names(), expect.names());
    assert_eq!(r.hex("CapEff"), expect.0, "root's effective set is the bounding set");
    assert_eq!(r.hex("CapPrm"), expect.0);
    assert_eq!(r.hex("CapInh"), 0);
    assert_eq!(r.hex("CapAmb"), 0);
    assert_eq!(r.get("uid"), "0", "root inside");
    assert_eq!(r.hex("CapBnd") & (1 << 19 | 1 << 2), 0, "no SYS_PTRACE (19) nor DAC_READ_SEARCH (2) by default");
}

#[test]
fn bounding_set_follows_add_and_drop() {
    let t = test_dir!("caps-adddrop");
    let mut plan = t.probe_plan(&["report"]);
    plan.caps = CapSet::from_changes(CapSet::secure_default(), &["NET_RAW"], &["SYS_CHROOT"]).unwrap();
    let r = t.report(&plan);
    let got = CapSet(r.hex("CapBnd"));
    assert_eq!(got, plan.caps, "{}", got.names());
    assert!(got.contains(Capability::parse("NET_RAW").unwrap()));
    assert!(!got.contains(Capability::parse("SYS_CHROOT").unwrap()));
    assert_eq!(r.hex("CapInh"), 0);
    assert_eq!(r.hex("CapAmb"), 0);
    // What the default leaves out comes back with add.
    plan.caps = CapSet::from_changes(CapSet::secure_default(), &["SYS_PTRACE", "DAC_READ_SEARCH"], &[] as &[&str]).unwrap();
    let r = t.report(&plan);
    assert_eq!(r.hex("CapBnd"), CapSet::secure_default().0 | 1 << 19 | 1 << 2);
}

#[test]
fn seccomp_filter_is_on() {
    let t = test_dir!("seccomp");
    let r = t.report(&t.probe_plan(&["report"]));
    assert_eq!(r.get("Seccomp"), "2", "filter mode");
    assert_eq!(r.get("NoNewPrivs"), "0", "the design keeps setuid programs working (no no_new_privs)");
}

#[test]
fn mount_table_is_the_vservers() {
    let t = test_dir!("mounts");
    let r = t.report(&t.probe_plan(&["report"]));
    let mounts = r.mounts();
    assert_eq!(mounts[0].0, "/", "the vserver root is the first mount: {mounts:?}");
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(t.root()).unwrap();
    assert_eq!(r.get("root_ino"), format!("{}:{}", md.dev(), md.ino()), "/ inside is the plan's root");
    assert_eq!(r.get("cwd"), "/");
    assert_eq!(r.mount("/proc").unwrap().0, "proc");
    assert_eq!(r.mount("/proc/sys"), Some(("proc".into(), "ro".into())), "/proc/sys read-only");
    for p in ["/proc/bus", "/proc/fs", "/proc/irq"] {
        if std::path::Path::new(p).exists() {
            assert_eq!(r.mount(p).map(|m| m.1), Some("ro".into()), "{p} read-only");
        }
    }
    assert_eq!(r.mount("/sys"), Some(("sysfs".into(), "ro".into())), "/sys read-only");
    assert_eq!(r.mount("/dev").unwrap().0, "tmpfs");
    assert_eq!(r.mount("/dev/pts").unwrap().0, "devpts");
    // Nothing of the host's mount table (its cgroup mounts, its /dev, …) is inside.
    let allowed_prefixes = ["/proc", "/sys", "/dev"];
    for (point, _, _) in &mounts {
        assert!(point == "/" || allowed_prefixes.iter().any(|p| point == p || point.starts_with(&format!("{p}/"))), "unexpected mount {point}");
    }
    assert!(!mounts.iter().any(|(p, _, _)| p.starts_with("/sys/fs/cgroup")), "host cgroup mounts visible: {mounts:?}");
}

#[test]
fn kernel_files_in_proc_are_masked() {
    let t = test_dir!("masked");
    let files = ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/kpageflags", "/proc/sched_debug"];
    let present: Vec<&str> = files.iter().copied().filter(|f| std::path::Path::new(f).exists()).collect();
    assert!(!present.is_empty(), "none of {files:?} exists on this host");
    if !present.contains(&"/proc/kcore") {
        eprintln!("note: this kernel has no /proc/kcore; checking {present:?}");
    }
    // Positive control: on the host they read as something (or are at least readable).
    let host = host_probe(&[], &["try", "read", "/proc/timer_list"]);
    assert!(host.starts_with("ok bytes=") && host != "ok bytes=0", "host: {host}");
    let attempts: Vec<String> = present.iter().map(|f| format!("read {f}")).collect();
    let attempts: Vec<&str> = attempts.iter().map(String::as_str).collect();
    let answers = t.try_many(t.plan(Init::Fake { argv: vec![] }), &attempts);
    for (f, a) in present.iter().zip(&answers) {
        assert_eq!(a, "ok bytes=0", "{f} must read as empty inside");
    }
}

#[test]
fn dev_holds_exactly_the_safe_nodes() {
    let t = test_dir!("dev");
    // A pty of the host, open while the vserver looks at its /dev/pts.
    let host_pty = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    assert!(host_pty >= 0);
    assert_eq!(unsafe { libc::grantpt(host_pty) + libc::unlockpt(host_pty) }, 0);
    let host_pts: Vec<String> =
        std::fs::read_dir("/dev/pts").unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(host_pts.iter().any(|n| n.parse::<u32>().is_ok()), "the host has a pty: {host_pts:?}");

    let r = t.report(&t.probe_plan(&["report"]));
    let names: BTreeSet<&str> = r.all("dev").iter().map(|d| d.split(' ').next().unwrap()).collect();
    let expect: BTreeSet<&str> = [
        "null", "zero", "full", "random", "urandom", "tty", "console", "ptmx", "pts", "shm", "mqueue", "fd", "stdin", "stdout",
        "stderr",
    ]
    .into_iter()
    .collect();
    assert_eq!(names, expect);
    let dev = r.all("dev");
    for want in [
        "null chr 1:3",
        "zero chr 1:5",
        "full chr 1:7",
        "random chr 1:8",
        "urandom chr 1:9",
        "tty chr 5:0",
        "ptmx lnk -> pts/ptmx",
        "fd lnk -> /proc/self/fd",
        "stdin lnk -> /proc/self/fd/0",
        "stdout lnk -> /proc/self/fd/1",
        "stderr lnk -> /proc/self/fd/2",
        "pts dir",
        "shm dir",
        "mqueue dir",
    ] {
        assert!(dev.contains(&want), "/dev lacks {want:?}: {dev:?}");
    }
    assert_eq!(r.all("pts"), vec!["ptmx"], "a new devpts instance: the host's ptys are not visible");
    unsafe { libc::close(host_pty) };
}

#[test]
fn only_stdio_is_open() {
    let t = test_dir!("fds");
    // A descriptor without close-on-exec in the caller: the engine must not pass it on.
    let leak = unsafe { libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY) };
    assert!(leak >= 0);
    let high = unsafe { libc::fcntl(leak, libc::F_DUPFD, 300) };
    let r = t.start(&t.probe_plan(&["report"]));
    unsafe {
        libc::close(leak);
        libc::close(high);
    }
    let r = r.wait(std::time::Duration::from_secs(20));
    assert_eq!(r.exit, Some(Exit::Code(0)), "{r:?}");
    let rep = Report::parse(&r.stdout);
    let fds: Vec<&str> = rep.all("fd").iter().map(|f| f.split(' ').next().unwrap()).collect();
    assert_eq!(fds, vec!["0", "1", "2"], "{:?}", rep.all("fd"));
}

#[test]
fn environment_is_clean() {
    let t = test_dir!("env");
    let mut plan = t.probe_plan(&["report"]);
    plan.env = vec![("FOO".into(), "bar baz".into()), ("TERM".into(), "vt100".into())];
    let r = t.report(&plan);
    let env: BTreeSet<&str> = r.all("env").into_iter().collect();
    let expect: BTreeSet<&str> = [
        "container=vserver",
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "TERM=vt100",
        "FOO=bar baz",
    ]
    .into_iter()
    .collect();
    assert_eq!(env, expect);
}

#[test]
fn network_none_has_only_loopback_up() {
    let t = test_dir!("net-none");
    let r = t.report(&t.probe_plan(&["report"]));
    assert_eq!(r.all("net"), vec!["lo up"]);
}

#[test]
fn network_host_sees_the_hosts_devices() {
    // Positive control for the test above: the probe does see more than lo when it can.
    let t = test_dir!("net-host");
    let mut plan = t.probe_plan(&["report"]);
    plan.network = Network::Host;
    let r = t.report(&plan);
    assert!(r.all("net").len() > 1, "{:?}", r.all("net"));
}

#[test]
fn rlimits_are_applied() {
    let t = test_dir!("rlimits");
    let mut plan = t.probe_plan(&["report"]);
    plan.rlimits = vec![
        Rlimit { resource: Resource::Nofile, soft: 123, hard: 456 },
        Rlimit { resource: Resource::Nproc, soft: 1000, hard: 1000 },
    ];
    let r = t.report(&plan);
    assert_eq!(r.get("rlimit_nofile"), "123 456");
    assert_eq!(r.get("rlimit_nproc"), "1000 1000");
}

#[test]
fn nice_sets_a_floor() {
    let t = test_dir!("nice");
    let mut plan = t.probe_plan(&["report"]);
    plan.nice = Some(5);
    let r = t.report(&plan);
    assert_eq!(r.get("nice"), "5");
    // RLIMIT_NICE n lets a process reach niceness 20 - n: at most 15 keeps everyone at 5 or above.
    let lim: Vec<u64> = r.get("rlimit_nice").split(' ').map(|v| v.parse().unwrap()).collect();
    assert!(lim[0] <= 15 && lim[1] <= 15, "rlimit_nice {lim:?} allows going below 5");
    let answers = t.try_many(plan, &["setpriority 4", "nice_below 5", "setpriority 6", "setpriority 19"]);
    assert!(answers[0] == "err EACCES 13" || answers[0] == "err EPERM 1", "below the floor: {answers:?}");
    assert!(answers[1].starts_with("err "), "{answers:?}");
    assert_eq!(answers[2], "ok", "above the floor: {answers:?}");
    assert_eq!(answers[3], "ok", "{answers:?}");
}

#[test]
fn console_is_the_plans_pty() {
    let t = test_dir!("console");
    let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    assert!(master >= 0);
    assert_eq!(unsafe { libc::grantpt(master) + libc::unlockpt(master) }, 0);
    let mut name = [0 as libc::c_char; 64];
    assert_eq!(unsafe { libc::ptsname_r(master, name.as_mut_ptr(), name.len()) }, 0);
    let slave = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
    use std::os::unix::fs::MetadataExt;
    let rdev = std::fs::metadata(&slave).unwrap().rdev();
    let mut plan = t.plan(Init::Fake {
        argv: vec!["/bin/sh".into(), "-c".into(), "/probe report; /probe try write /dev/console hello-console".into()],
    });
    plan.console = Some(slave.clone().into());
    let r = t.run(&plan);
    assert_eq!(r.exit, Some(Exit::Code(0)), "{r:?}");
    let rep = Report::parse(&r.stdout);
    let want = format!("console chr {}:{}", libc::major(rdev), libc::minor(rdev));
    assert!(rep.all("dev").contains(&want.as_str()), "{:?} lacks {want}", rep.all("dev"));
    assert!(r.stdout.ends_with("ok\n"), "{r:?}");
    let mut buf = [0u8; 256];
    let n = unsafe { libc::read(master, buf.as_mut_ptr() as *mut _, buf.len()) };
    unsafe { libc::close(master) };
    assert!(n > 0 && String::from_utf8_lossy(&buf[..n as usize]).contains("hello-console"), "read {n}");
}

#[test]
fn host_mounts_made_later_do_not_appear_inside() {
    let t = test_dir!("propagation");
    let plan = t.plan(Init::Fake { argv: vec!["/bin/sh".into(), "-c".into(), "/bin/sleep 0.3; exec /probe report".into()] });
    let run = t.start(&plan);
    let mnt = std::ffi::CString::new(t.root().join("mnt").to_str().unwrap()).unwrap();
    let rc = unsafe { libc::mount(c"tmpfs".as_ptr(), mnt.as_ptr(), c"tmpfs".as_ptr(), 0, std::ptr::null()) };
    assert_eq!(rc, 0, "host mount: {}", std::io::Error::last_os_error());
    let r = run.wait(std::time::Duration::from_secs(20));
    unsafe { libc::umount2(mnt.as_ptr(), libc::MNT_DETACH) };
    assert_eq!(r.exit, Some(Exit::Code(0)), "{r:?}");
    let rep = Report::parse(&r.stdout);
    assert_eq!(rep.mount("/mnt"), None, "a host mount propagated into the vserver: {:?}", rep.mounts());
}

#[test]
fn a_real_init_gets_run_a_cgroup_tree_and_tmpfs_mounts() {
    let t = test_dir!("initfs");
    let mut plan = t.probe_plan(&["report"]);
    plan.init_fs = vserver_engine::InitFs { run: true, cgroup: true };
    plan.tmpfs = vec!["/tmp".into(), "/var/tmp".into()];
    let r = t.report(&plan);
    assert_eq!(r.mount("/run"), Some(("tmpfs".into(), "rw".into())));
    assert_eq!(r.mount("/run/lock"), Some(("tmpfs".into(), "rw".into())));
    assert_eq!(r.mount("/tmp"), Some(("tmpfs".into(), "rw".into())));
    assert_eq!(r.mount("/var/tmp"), Some(("tmpfs".into(), "rw".into())));
    assert_eq!(r.mount("/sys/fs/cgroup"), Some(("cgroup2".into(), "rw".into())), "its own cgroup tree, writable");
    assert_eq!(r.mount("/sys"), Some(("sysfs".into(), "ro".into())), "/sys stays read-only");
    // Without them: none of these mounts (the root's own /run and /tmp).
    let plain = t.report(&t.probe_plan(&["report"]));
    for p in ["/run", "/run/lock", "/tmp", "/sys/fs/cgroup"] {
        assert_eq!(plain.mount(p), None, "{p}");
    }
}
