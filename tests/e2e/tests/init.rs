//! pid 1 of a context: fakeinit and rc modes, exit codes, reboot and halt from inside.

use vserver_e2e::*;

fn sh(script: &str) -> Init {
    Init::Fake { argv: vec!["/bin/sh".into(), "-c".into(), script.into()] }
}

fn rc(start: &[&str]) -> Init {
    Init::Rc { start: start.iter().map(|s| s.to_string()).collect(), stop: None, exit_with_start: true }
}

#[test]
fn fakeinit_runs_the_program_as_pid_1() {
    let t = test_dir!("fakeinit");
    let r = t.report(&t.probe_plan(&["report"]));
    assert_eq!(r.get("pid"), "1");
    assert_eq!(r.all("proc"), vec!["1 probe"]);
}

#[test]
fn fakeinit_exit_code_is_reported() {
    let t = test_dir!("fake-exit");
    let r = t.run(&t.plan(sh("exit 3")));
    assert_eq!(r.exit, Some(Exit::Code(3)), "{r:?}");
    assert_eq!(r.status.code(), Some(3));
}

#[test]
fn rc_mode_has_vserver_init_as_pid_1() {
    let t = test_dir!("rc");
    // vserver-init is a re-exec of the (dynamically linked) helper: give the root its libraries.
    // rc_mode_works_in_a_root_without_the_hosts_libraries checks the bare case.
    t.add_host_libs();
    let r = t.report(&t.plan(rc(&["/probe", "report"])));
    assert_ne!(r.get("pid"), "1", "the start command is not pid 1");
    assert_eq!(r.get("ppid"), "1", "vserver-init started it");
    let procs = r.all("proc");
    assert_eq!(procs.len(), 2, "{procs:?}");
    assert!(procs[0].starts_with("1 ") && procs[0] != "1 probe", "{procs:?}");
    assert_eq!(procs[1], format!("{} probe", r.get("pid")));
}

#[test]
fn rc_mode_exit_code_is_the_start_commands() {
    let t = test_dir!("rc-exit");
    t.add_host_libs();
    let r = t.run(&t.plan(rc(&["/bin/sh", "-c", "exit 7"])));
    assert_eq!(r.exit, Some(Exit::Code(7)), "{r:?}");
}

#[test]
fn rc_mode_works_in_a_root_without_the_hosts_libraries() {
    // A vserver root need not carry the host's libc or libseccomp: pid 1 must still start.
    let t = test_dir!("rc-bare");
    let r = t.run(&t.plan(rc(&["/probe", "report"])));
    assert_eq!(r.error, None, "rc mode in a busybox-static root: {r:?}");
    assert_eq!(r.exit, Some(Exit::Code(0)), "{r:?}");
}

#[test]
fn reboot_inside_ends_with_sighup() {
    let t = test_dir!("reboot");
    let r = t.run(&t.plan(sh("reboot -f; sleep 10")));
    assert_eq!(r.exit, Some(Exit::Signal(libc::SIGHUP)), "{r:?}");
    assert!(r.exit.unwrap().is_reboot());
    let r = t.run(&t.probe_plan(&["try", "reboot", "restart"]));
    assert_eq!(r.exit, Some(Exit::Signal(libc::SIGHUP)), "{r:?}");
}

#[test]
fn halt_inside_ends_with_sigint() {
    let t = test_dir!("halt");
    let r = t.run(&t.plan(sh("halt -f; sleep 10")));
    assert_eq!(r.exit, Some(Exit::Signal(libc::SIGINT)), "{r:?}");
    assert!(r.exit.unwrap().is_halt());
    let r = t.run(&t.probe_plan(&["try", "reboot", "poweroff"]));
    assert_eq!(r.exit, Some(Exit::Signal(libc::SIGINT)), "{r:?}");
}

#[test]
fn reboot_needs_sys_boot() {
    // Dropping SYS_BOOT turns `reboot` into an error instead of a restart.
    let t = test_dir!("reboot-nocap");
    let mut plan = t.plan(Init::Fake { argv: vec![] });
    plan.caps = CapSet::from_changes(CapSet::secure_default(), &[] as &[&str], &["SYS_BOOT"]).unwrap();
    let a = t.try_many(plan, &["reboot restart"]);
    assert_eq!(a, vec!["err EPERM 1"]);
}

#[test]
fn rc_mode_stop_runs_the_stop_command() {
    let t = test_dir!("rc-stop");
    t.add_host_libs();
    let plan = t.plan(Init::Rc {
        start: vec!["/bin/sleep".into(), "30".into()],
        stop: Some(vec!["/bin/sh".into(), "-c".into(), "echo stop-command-ran".into()]),
        exit_with_start: false,
    });
    let run = t.start(&plan);
    let pid = run.pid1.expect("started");
    // Let vserver-init start the service before asking it to stop.
    std::thread::sleep(std::time::Duration::from_millis(100));
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let r = run.wait(std::time::Duration::from_secs(10));
    assert!(!r.timed_out, "the stop did not end the context: {r:?}");
    assert_eq!(r.exit, Some(Exit::Code(0)), "{r:?}");
    assert_eq!(r.stdout, "stop-command-ran\n");
}

#[test]
fn rc_mode_pid_1_binary_is_not_writable() {
    // /proc/1/exe of vserver-init must not lead to a writable host binary (the runc CVE-2019-5736 shape).
    let t = test_dir!("rc-exe");
    t.add_host_libs();
    let helper = std::fs::read(env!("CARGO_BIN_EXE_spawn-plan")).unwrap();
    let r = t.run(&t.plan(rc(&["/bin/sh", "-c", "/probe try write /proc/1/exe XXXX; /probe try read /proc/1/exe"])));
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{r:?}");
    assert!(lines[0].starts_with("err "), "writing /proc/1/exe: {}", lines[0]);
    assert!(lines[1].starts_with("ok bytes="), "vserver-init's binary is readable (positive control): {}", lines[1]);
    assert_eq!(std::fs::read(env!("CARGO_BIN_EXE_spawn-plan")).unwrap(), helper, "the host binary changed");
}
