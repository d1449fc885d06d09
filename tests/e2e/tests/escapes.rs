//! Escape attempts from inside, each paired with a positive control showing that the same probe
//! action works where nothing stops it (on the host, or under `unshare` on the host). For system
//! calls this kernel lacks (modules, kexec) the host answers ENOSYS, and inside must answer EPERM:
//! the seccomp filter, not the kernel, said no.

use vserver_e2e::*;

fn plan(t: &TestDir) -> LaunchPlan {
    t.plan(Init::Fake { argv: vec![] })
}

/// A write to a host-wide sysctl: refused by the read-only /proc/sys; in a user namespace
/// already by the file's owner, the host's root, whom root inside is not.
fn sysctl_refusal() -> &'static str {
    if userns_mode() {
        "err EACCES 13"
    } else {
        "err EROFS 30"
    }
}

fn inside(t: &TestDir, attempt: &str) -> String {
    t.try_many(plan(t), &[attempt]).remove(0)
}

#[test]
fn kill_and_ptrace_of_a_host_process_fail() {
    let t = test_dir!("esc-kill");
    let mut target = Target::new();
    let pid = target.pid().to_string();
    assert_eq!(host_probe(&[], &["try", "kill", &pid]), "ok", "positive control: the host can signal it");
    assert_eq!(host_probe(&[], &["try", "ptrace", &pid]), "ok", "positive control: the host can trace it");
    let a = t.try_many(plan(&t), &[&format!("kill {pid}"), &format!("ptrace {pid}")]);
    assert_eq!(a[0], "err ESRCH 3", "kill from inside");
    assert_eq!(a[1], "err ESRCH 3", "ptrace from inside");
    assert!(target.alive());
}

#[test]
fn ptrace_inside_the_vserver_works() {
    // Positive control for the test above: inside, the PID namespace is the wall. With the
    // default set (no SYS_PTRACE) root traces a process with its own credentials, not one of
    // another user; with SYS_PTRACE added back, both.
    let t = test_dir!("ptrace-in");
    std::fs::write(t.root().join("etc/passwd"), "root:x:0:0::/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n").unwrap();
    std::os::unix::fs::symlink("busybox", t.root().join("bin/su")).unwrap();
    let mut p = plan(&t);
    let script = "/bin/sleep 10 & /probe try ptrace $!; /probe try kill $!; kill $!; \
                  su nobody -c 'exec /bin/sleep 10' & s=$!; sleep 0.3; /probe try ptrace $s; kill $s";
    p.init = Init::Fake { argv: vec!["/bin/sh".into(), "-c".into(), script.into()] };
    let r = t.run(&p);
    assert_eq!(r.stdout, "ok\nok\nerr EPERM 1\n", "default set: {r:?}");
    p.caps = CapSet::from_changes(CapSet::secure_default(), &["SYS_PTRACE"], &[] as &[&str]).unwrap();
    let r = t.run(&p);
    assert_eq!(r.stdout, "ok\nok\nok\n", "with SYS_PTRACE added: {r:?}");
}

#[test]
fn sysrq_trigger_is_not_writable() {
    let t = test_dir!("esc-sysrq");
    let host = host_probe(&[], &["try", "write", "/proc/sysrq-trigger"]);
    let a = inside(&t, "write /proc/sysrq-trigger");
    if std::path::Path::new("/proc/sysrq-trigger").exists() {
        assert_eq!(host, "ok", "positive control: the host can open it for writing");
        assert!(a == "err EROFS 30" || a == "err EACCES 13", "inside: {a}");
    } else {
        eprintln!("note: this kernel has no /proc/sysrq-trigger (host: {host})");
        assert!(a.starts_with("err "), "inside: {a}");
    }
    // /proc/sys is shared with the host: writing there is the same kind of escape.
    let a = inside(&t, "write /proc/sys/kernel/ctrl-alt-del 0");
    assert_eq!(a, sysctl_refusal());
}

#[test]
fn mknod_of_a_disk_fails() {
    let t = test_dir!("esc-mknod");
    let host_path = t.host().join("disk");
    assert_eq!(host_probe(&[], &["try", "mknod", host_path.to_str().unwrap()]), "ok", "positive control");
    assert_eq!(inside(&t, "mknod /tmp/disk"), "err EPERM 1");
    assert!(!t.root().join("tmp/disk").exists());
}

#[test]
fn mount_fails() {
    let t = test_dir!("esc-mount");
    let dir = t.host().to_str().unwrap().to_string();
    assert_eq!(host_probe(&["unshare", "-m", "--propagation", "private"], &["try", "mount", &dir]), "ok", "positive control");
    assert_eq!(inside(&t, "mount /mnt"), "err EPERM 1");
}

#[test]
fn module_and_kexec_calls_are_denied_by_seccomp() {
    let t = test_dir!("esc-modules");
    let calls = ["init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load"];
    let a = t.try_many(plan(&t), &calls);
    for (call, answer) in calls.iter().zip(&a) {
        let host = host_probe(&[], &["try", call]);
        assert_ne!(host, "err EPERM 1", "positive control for {call}: the host's root is not refused with EPERM");
        assert_eq!(answer, "err EPERM 1", "{call} inside (host: {host})");
    }
}

#[test]
fn open_by_handle_at_is_denied() {
    let t = test_dir!("esc-handle");
    let f = t.host().join("file");
    std::fs::write(&f, "x").unwrap();
    assert_eq!(host_probe(&[], &["try", "open_by_handle_at", f.to_str().unwrap()]), "ok", "positive control");
    assert_eq!(inside(&t, "open_by_handle_at /probe"), "err EPERM 1");
}

#[test]
fn host_and_domain_names_cannot_be_changed() {
    let t = test_dir!("esc-uts");
    assert_eq!(host_probe(&["unshare", "-u"], &["try", "sethostname", "probe-host"]), "ok", "positive control");
    assert_eq!(host_probe(&["unshare", "-u"], &["try", "setdomainname", "probe-dom"]), "ok", "positive control");
    let a = t.try_many(plan(&t), &["sethostname evil", "setdomainname evil"]);
    assert_eq!(a, vec!["err EPERM 1", "err EPERM 1"]);
}

#[test]
fn global_sysctl_cannot_be_written() {
    let t = test_dir!("esc-sysctl");
    let path = "/proc/sys/vm/overcommit_ratio";
    let value = std::fs::read_to_string(path).unwrap().trim().to_string();
    assert_eq!(host_probe(&[], &["try", "sysctl", path, &value]), "ok", "positive control: write the current value back");
    let other = if value == "51" { "52" } else { "51" };
    assert_eq!(inside(&t, &format!("sysctl {path} {other}")), sysctl_refusal());
    assert_eq!(std::fs::read_to_string(path).unwrap().trim(), value);
}

#[test]
fn tiocsti_is_denied() {
    let t = test_dir!("esc-tiocsti");
    assert_eq!(host_probe(&[], &["try", "tiocsti"]), "ok", "positive control (dev.tty.legacy_tiocsti=1)");
    assert_eq!(inside(&t, "tiocsti"), "err EPERM 1");
}

#[test]
fn kernel_wide_interfaces_are_denied() {
    let t = test_dir!("esc-kernel");
    let calls = ["keyctl", "bpf", "userfaultfd", "perf_event_open"];
    let a = t.try_many(plan(&t), &calls);
    for (call, answer) in calls.iter().zip(&a) {
        assert_eq!(host_probe(&[], &["try", call]), "ok", "positive control for {call}");
        assert_eq!(answer, "err EPERM 1", "{call} inside");
    }
}

const NS_ATTEMPTS: [&str; 7] =
    ["mount /mnt", "unshare NEWNS", "unshare NEWUSER", "setns /proc/self/ns/uts", "clone_newns", "clone3", "clone3 NEWNS"];

#[test]
fn lock_denies_new_contexts() {
    let t = test_dir!("esc-lock");
    for a in ["unshare NEWNS", "setns /proc/self/ns/uts", "clone_newns", "clone3"] {
        let args: Vec<&str> = std::iter::once("try").chain(a.split(' ')).collect();
        assert_eq!(host_probe(&[], &args), "ok", "positive control for {a}");
    }
    let mut p = plan(&t);
    p.flags.lock = true;
    let a = t.try_many(p, &NS_ATTEMPTS);
    assert_eq!(
        a,
        vec!["err EPERM 1", "err EPERM 1", "err EPERM 1", "err EPERM 1", "err EPERM 1", "err ENOSYS 38", "err ENOSYS 38"],
        "{NS_ATTEMPTS:?}"
    );
}

#[test]
fn without_lock_new_namespaces_still_need_sys_admin() {
    let t = test_dir!("esc-nolock");
    let a = t.try_many(plan(&t), &NS_ATTEMPTS);
    assert_eq!(a[0], "err EPERM 1", "mount");
    assert_eq!(a[1], "err EPERM 1", "unshare NEWNS");
    assert_eq!(a[2], "err EPERM 1", "unshare NEWUSER (seccomp, by default)");
    assert_eq!(a[3], "err EPERM 1", "setns");
    assert_eq!(a[4], "err EPERM 1", "clone with CLONE_NEWNS");
    assert_eq!(a[5], "err ENOSYS 38", "clone3 answers ENOSYS by default (libc falls back to clone)");
    assert_eq!(a[6], "err ENOSYS 38", "clone3 with CLONE_NEWNS");
    // With nest, clone3 reaches the kernel: a plain one (a fork) works, one with CLONE_NEWNS
    // still needs CAP_SYS_ADMIN.
    let mut p = plan(&t);
    p.flags.nest = true;
    let a = t.try_many(p, &NS_ATTEMPTS);
    assert_eq!((a[0].as_str(), a[1].as_str(), a[3].as_str(), a[4].as_str()), ("err EPERM 1", "err EPERM 1", "err EPERM 1", "err EPERM 1"));
    assert_eq!(a[5], "ok", "a plain clone3 with nest");
    assert_eq!(a[6], "err EPERM 1", "clone3 with CLONE_NEWNS");
}

const USERNS_ATTEMPTS: [&str; 5] = ["unshare NEWUSER", "clone NEWUSER", "clone3 NEWUSER", "compat32 unshare_user", "clone NEWUTS"];

#[test]
fn user_namespaces_are_refused_by_default_and_allowed_with_nest() {
    let t = test_dir!("esc-userns");
    // Positive control on the host: the same attempts work where nothing stops them.
    for a in &USERNS_ATTEMPTS[..4] {
        let args: Vec<&str> = std::iter::once("try").chain(a.split(' ')).collect();
        assert_eq!(host_probe(&[], &args), "ok", "positive control for {a} on the host");
    }
    let a = t.try_many(plan(&t), &USERNS_ATTEMPTS);
    assert_eq!(
        a,
        vec!["err EPERM 1", "err EPERM 1", "err ENOSYS 38", "err EPERM 1", "err EPERM 1"],
        "by default: {USERNS_ATTEMPTS:?}"
    );
    // The same probe in a vserver with nest: user namespaces are made; other namespaces still
    // need CAP_SYS_ADMIN, which root inside lacks.
    let mut p = plan(&t);
    p.flags.nest = true;
    let a = t.try_many(p, &USERNS_ATTEMPTS);
    assert_eq!(a, vec!["ok", "ok", "ok", "ok", "err EPERM 1"], "with nest: {USERNS_ATTEMPTS:?}");
    // lock and nest together are refused before anything is built.
    let mut p = plan(&t);
    p.flags.nest = true;
    p.flags.lock = true;
    let r = t.run(&p);
    assert_eq!(r.setup_error().step, vserver_engine::Step::Validate, "{r:?}");
}

#[test]
fn raw_sockets_need_net_raw() {
    let t = test_dir!("esc-raw");
    assert_eq!(host_probe(&[], &["try", "socket_raw"]), "ok", "positive control");
    let a = t.try_many(plan(&t), &["socket_raw", "socket_packet"]);
    assert_eq!(a, vec!["err EPERM 1", "err EPERM 1"]);
    let mut p = plan(&t);
    p.caps = CapSet::from_changes(CapSet::secure_default(), &["NET_RAW"], &[] as &[&str]).unwrap();
    let a = t.try_many(p, &["socket_raw", "socket_packet"]);
    assert_eq!(a, vec!["ok", "ok"], "with add NET_RAW");
}

#[test]
fn chroot_escape_stays_inside() {
    let t = test_dir!("esc-chroot");
    let marker = t.host().join("marker");
    std::fs::write(&marker, "host").unwrap();
    let m = marker.to_str().unwrap();
    // Positive control: under a plain chroot(2) on the host, the same escape reaches the host.
    let root = t.root();
    let out = std::process::Command::new("chroot").arg(&root).args(["/probe", "try", "chroot_escape", m]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok escaped", "positive control under chroot(2)");
    let a = inside(&t, &format!("chroot_escape {m}"));
    assert_eq!(a, "err ENOENT 2", "the pivoted root has nothing above it");
}

#[test]
fn compat32_entry_is_filtered_too() {
    // The i386 entry (int 0x80) numbers system calls differently; the filter must cover it.
    let t = test_dir!("esc-compat32");
    for call in ["keyctl", "userfaultfd", "tiocsti"] {
        assert_eq!(host_probe(&[], &["try", "compat32", call]), "ok", "positive control for 32-bit {call}");
    }
    let a = t.try_many(plan(&t), &["compat32 keyctl", "compat32 userfaultfd", "compat32 tiocsti"]);
    assert_eq!(a, vec!["err EPERM 1", "err EPERM 1", "err EPERM 1"]);
    let mut p = plan(&t);
    p.flags.lock = true;
    assert_eq!(t.try_many(p, &["compat32 unshare"]), vec!["err EPERM 1"]);
    // And the default's user namespace rule (positive control: with nest it is made).
    assert_eq!(t.try_many(plan(&t), &["compat32 unshare_user"]), vec!["err EPERM 1"]);
    let mut p = plan(&t);
    p.flags.nest = true;
    assert_eq!(t.try_many(p, &["compat32 unshare_user"]), vec!["ok"]);
}
