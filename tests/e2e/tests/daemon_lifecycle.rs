//! vserverd over a private bus: the lifecycle of an rc-style and a fakeinit busybox vserver,
//! the stop of an init that ignores its stop signal, hooks (order and environment).

use std::fs;
use std::time::{Duration, Instant};

use vserver_e2e::daemon::*;
use vserver_e2e::{require_root, TestDir};

const T: Duration = Duration::from_secs(10);

fn comm(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string()
}

#[test]
fn rc_style_vserver_starts_runs_its_services_and_stops() {
    require_root!();
    with_daemon("d-rc", async |d| {
        let root = d.rc_root("web");
        d.config("web", "context = 101\n[init]\nstop_timeout = 2\n");
        d.start().await;
        let m = d.manager().await;
        let v = d.vserver("web").await;
        assert_eq!(v.state().await.unwrap(), "stopped");
        assert_eq!(v.leader().await.unwrap(), 0);

        m.start_vserver("web").await.unwrap_or_else(|e| panic!("start: {e}\n{}", d.daemon_log()));
        assert_eq!(v.state().await.unwrap(), "running");
        let st = d.state("web").expect("state.json of a running vserver");
        assert_eq!(v.leader().await.unwrap(), st.pid as u32);
        assert_eq!(v.context().await.unwrap(), 101);
        assert_eq!(st.context, 101);
        assert!(v.started_at().await.unwrap() > 0);
        // pid 1 is the reaper; the service it started runs beside it.
        assert_eq!(comm(st.pid), "vserver-init");
        // Its namespaces are its own (the network one made ahead by the ready monitor): none
        // is the host's or the monitor's, and its network holds `lo` alone, up.
        let ns = |pid: i32, kind: &str| fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap();
        let me = std::process::id() as i32;
        for kind in ["net", "mnt", "pid", "uts", "ipc"] {
            assert_ne!(ns(st.pid, kind), ns(me, kind), "{kind} namespace shared with the host");
            assert_ne!(ns(st.pid, kind), ns(st.monitor_pid, kind), "{kind} namespace shared with the monitor");
        }
        let dev = fs::read_to_string(format!("/proc/{}/net/dev", st.pid)).unwrap();
        let ifaces: Vec<&str> = dev.lines().skip(2).filter_map(|l| l.split(':').next()).map(str::trim).collect();
        assert_eq!(ifaces, ["lo"], "{dev}");
        // pid 1 ready, its monitor serves it as the small serving program: the same process
        // (pid and start time), nothing open but what it serves and what its end needs.
        let mon = st.monitor_pid;
        let exe = eventually("the monitor hands over to the serving program", T, || async {
            let exe = fs::read_link(format!("/proc/{mon}/exe")).ok()?.display().to_string();
            exe.contains("memfd:vserver-monitor").then_some(exe)
        })
        .await;
        assert_eq!(comm(mon), "vserver-monitor", "{exe}");
        assert_eq!(vserver_engine::sys::start_time(mon), Some(st.monitor_start_time));
        let mut fds: Vec<String> = fs::read_dir(format!("/proc/{mon}/fd"))
            .unwrap()
            .flatten()
            .map(|e| fs::read_link(e.path()).unwrap().display().to_string())
            .map(|t| if t.starts_with("socket:") { "socket".into() } else { t })
            .collect();
        fds.sort();
        let mut want = vec![
            "/dev/null".to_string(),
            "/dev/null".into(),
            "/dev/null".into(),
            "/dev/ptmx".into(),
            "socket".into(), // the console viewers' listener
            "anon_inode:[signalfd]".into(),
            d.log_dir.join("web.log").display().to_string(),
            vserver_engine::lease::path_for(&root).display().to_string(),
            "/memfd:vserver-sealed (deleted)".into(), // vserverd, for the monitor's end
        ];
        want.sort();
        assert_eq!(fds, want);
        let rollup = fs::read_to_string(format!("/proc/{mon}/smaps_rollup")).unwrap();
        let private: u64 = rollup
            .lines()
            .filter(|l| l.starts_with("Private_"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        assert!(private <= 40, "the serving monitor holds {private} kB of its own:\n{rollup}");
        let lo = std::process::Command::new("nsenter").arg(format!("--net=/proc/{}/ns/net", st.pid)).args(["ip", "-o", "link", "show", "lo"]).output().unwrap();
        let lo = String::from_utf8_lossy(&lo.stdout);
        assert!(lo.contains(",UP"), "lo is up: {lo}");
        eventually("the service runs", T, || async { root.join("tmp/service.pid").exists().then_some(()) }).await;
        let procs = d.processes_of("web");
        assert!(procs.contains(&st.pid), "{procs:?}");
        assert!(procs.iter().any(|p| comm(*p) == "sleep"), "{procs:?}");

        let again = m.start_vserver("web").await;
        assert_eq!(outcome(&again), "org.vserverd.VServer1.AlreadyRunning");

        let t0 = Instant::now();
        m.stop_vserver("web").await.unwrap();
        assert!(t0.elapsed() < Duration::from_secs(2), "an rc stop that works takes no timeout: {:?}", t0.elapsed());
        assert_eq!(v.state().await.unwrap(), "stopped");
        assert_eq!(v.leader().await.unwrap(), 0);
        assert_eq!(v.last_exit().await.unwrap(), "exited 0");
        assert!(root.join("tmp/rc-stopped").exists(), "the stop command ran");
        assert!(d.processes_of("web").is_empty(), "nothing of the vserver is left");
        assert!(d.vserver_processes().is_empty());
        assert!(!d.run_dir.join("web").exists(), "its runtime directory is removed");
        let console = fs::read_to_string(d.log_dir.join("web.log")).unwrap();
        assert!(console.contains("rc 3") && console.contains("rc 0"), "console log: {console:?}");
        assert_eq!(outcome(&m.stop_vserver("web").await), "org.vserverd.VServer1.NotRunning");
    });
}

#[test]
fn fakeinit_vserver_runs_busybox_init_and_stops_with_its_stop_signal() {
    require_root!();
    with_daemon("d-fake", async |d| {
        let root = d.root("init1");
        fs::write(
            root.join("etc/inittab"),
            "::sysinit:/bin/sh -c 'echo sysinit > /tmp/sysinit'\n::respawn:/bin/sleep 1000\n::shutdown:/bin/sh -c 'echo shutdown > /tmp/shutdown'\n",
        )
        .unwrap();
        // busybox init: SIGUSR2 = poweroff (shutdown actions, kill all, then reboot(2) → SIGINT).
        d.config("init1", "context = 102\nflags = [\"fakeinit\"]\n[init]\nstop_signal = \"SIGUSR2\"\nstop_timeout = 10\n");
        d.start().await;
        let v = d.vserver("init1").await;
        v.start().await.unwrap_or_else(|e| panic!("start: {e}\n{}", d.daemon_log()));
        let st = d.state("init1").unwrap();
        assert_eq!(comm(st.pid), "init");
        assert_eq!(v.flags().await.unwrap(), vec!["fakeinit".to_string()]);
        eventually("sysinit ran", T, || async { root.join("tmp/sysinit").exists().then_some(()) }).await;
        eventually("the respawned service runs", T, || async { d.processes_of("init1").iter().any(|p| comm(*p) == "sleep").then_some(()) })
            .await;

        v.stop().await.unwrap();
        assert_eq!(v.state().await.unwrap(), "stopped");
        assert_eq!(v.last_exit().await.unwrap(), "halted (SIGINT)", "init powered off by itself, not killed");
        assert!(root.join("tmp/shutdown").exists(), "init ran its shutdown actions");
        assert!(d.processes_of("init1").is_empty());
    });
}

#[test]
fn stop_of_an_init_that_ignores_its_signal_kills_everything_within_the_timeout() {
    require_root!();
    with_daemon("d-stubborn", async |d| {
        let root = d.root("stub");
        // pid 1 ignores SIGTERM; its children double-fork into new sessions and ignore it too.
        d.script(
            &root,
            "/bin/stubborn",
            r#"trap '' TERM
for i in 1 2 3; do
    ( setsid sh -c 'trap "" TERM HUP; exec sleep 1000' & ) &
done
sh -c 'trap "" TERM; while :; do sleep 1; done' &
touch /tmp/ready
while :; do sleep 1; done"#,
        );
        d.config("stub", "context = 103\nflags = [\"fakeinit\"]\n[init]\ncommand = [\"/bin/stubborn\"]\nstop_timeout = 2\n");
        d.start().await;
        let v = d.vserver("stub").await;
        v.start().await.unwrap_or_else(|e| panic!("start: {e}\n{}", d.daemon_log()));
        let st = d.state("stub").unwrap();
        eventually("the children run", T, || async {
            (root.join("tmp/ready").exists() && d.processes_of("stub").iter().filter(|p| comm(**p) == "sleep").count() >= 3).then_some(())
        })
        .await;
        let before = d.processes_of("stub");
        assert!(before.contains(&st.pid));
        assert!(before.len() >= 6, "{before:?}");

        let t0 = Instant::now();
        v.stop().await.unwrap_or_else(|e| panic!("stop: {e}\n{}", d.daemon_log()));
        let took = t0.elapsed();
        assert!(took >= Duration::from_secs(2), "the stop waited for the timeout: {took:?}");
        assert!(took < Duration::from_millis(3500), "the stop ended soon after the timeout: {took:?}");
        assert_eq!(v.state().await.unwrap(), "stopped");
        assert_eq!(v.last_exit().await.unwrap(), "killed by SIGKILL");
        let left: Vec<i32> = before.iter().copied().filter(|p| fs::metadata(format!("/proc/{p}")).is_ok() && !is_gone(*p)).collect();
        assert!(left.is_empty(), "survivors: {left:?}");
        assert!(d.processes_of("stub").is_empty());
        assert!(d.vserver_processes().is_empty());
    });
}

fn is_gone(pid: i32) -> bool {
    // A zombie waiting for its reaper is gone too.
    fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.rsplit_once(") ").map(|(_, r)| r.starts_with('Z')).unwrap_or(true)).unwrap_or(true)
}

#[test]
fn hooks_run_in_order_with_their_environment() {
    require_root!();
    let t = TestDir::new("d-hooks");
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        let root = d.ctl_root("hk");
        let log = t.path.join("hooks.log");
        let env_file = t.path.join("hook.env");
        d.config("hk", &format!("context = 104\n{CTL_INIT}{}", d.hooks_table(&log)));
        // The paper's NAME.sh: first of each phase; it also records its whole environment once.
        let sh = d.config_dir.join("hk.sh");
        fs::write(
            &sh,
            format!(
                "#!/bin/sh\necho \"hk.sh $1 $2 $VSERVER_HOOK $VSERVER_TARGET $VSERVER_NAME $VSERVER_CONTEXT $VSERVER_ROOT\" >> {log}\n[ \"$1\" = pre-start ] && [ ! -e {env} ] && env | sort > {env}\nexit 0\n",
                log = log.display(),
                env = env_file.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&sh, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("hk").await.unwrap_or_else(|e| panic!("start: {e}\n{}", d.daemon_log()));
        m.restart_vserver("hk").await.unwrap();
        assert_eq!(d.vserver("hk").await.restarts().await.unwrap(), 1);
        m.stop_vserver("hk").await.unwrap();

        let r = root.display().to_string();
        let mut want = Vec::new();
        for (phase, target) in [
            ("pre-start", "start"),
            ("post-start", "start"),
            ("pre-stop", "reboot"),
            ("post-stop", "reboot"),
            ("pre-start", "reboot"),
            ("post-start", "reboot"),
            ("pre-stop", "stop"),
            ("post-stop", "stop"),
        ] {
            want.push(format!("hk.sh {phase} hk {phase} {target} hk 104 {r}"));
            want.push(format!("hook {phase} {target} hk 104 {r}"));
        }
        let got: Vec<String> = fs::read_to_string(&log).unwrap().lines().map(str::to_string).collect();
        assert_eq!(got, want);

        let env = fs::read_to_string(&env_file).unwrap();
        let names: Vec<&str> = env.lines().filter_map(|l| l.split_once('=').map(|(k, _)| k)).collect();
        let allowed = ["PATH", "PWD", "SHLVL", "_", "VSERVER_NAME", "VSERVER_ROOT", "VSERVER_CONTEXT", "VSERVER_HOOK", "VSERVER_TARGET"];
        assert!(names.iter().all(|n| allowed.contains(n)), "a clean environment: {env}");
        assert!(env.contains("VSERVER_TARGET=start\n") && env.contains("PATH=/usr/local/sbin:"), "{env}");
        assert!(!env.contains("DBUS_SYSTEM_BUS_ADDRESS"), "nothing of the daemon's environment: {env}");
    });
}

#[test]
fn hook_failures_are_reported_and_a_failed_post_start_stops_the_vserver() {
    require_root!();
    with_daemon("d-hookfail", async |d| {
        d.ctl_root("pre");
        d.ctl_root("post");
        d.config("pre", &format!("context = 105\n{CTL_INIT}[hooks]\npre_start = [\"/bin/false\"]\n"));
        d.config("post", &format!("context = 106\n{CTL_INIT}[hooks]\npost_start = [\"/bin/sh\", \"-c\", \"exit 4\"]\n"));
        d.start().await;
        let m = d.manager().await;

        let r = m.start_vserver("pre").await;
        assert_eq!(outcome(&r), "org.vserverd.VServer1.HookFailed");
        assert!(r.unwrap_err().to_string().contains("pre-start hook /bin/false exited with status 1"));
        assert_eq!(d.state_of("pre").await, "failed");
        assert!(d.state("pre").is_none(), "nothing was started");

        let r = m.start_vserver("post").await;
        assert_eq!(outcome(&r), "org.vserverd.VServer1.HookFailed");
        assert!(r.unwrap_err().to_string().contains("exited with status 4"));
        assert!(d.state("post").is_none(), "the vserver was stopped again");
        assert_eq!(d.vserver("post").await.leader().await.unwrap(), 0);
        assert!(d.vserver_processes().is_empty());
    });
}

#[test]
fn relative_directories_are_taken_from_the_daemons_working_directory() {
    // The monitors run in "/": the daemon must hand them absolute paths.
    require_root!();
    with_daemon("d-relative", async |d| {
        let root = d.ctl_root("rel");
        d.config("rel", &format!("context = 107\n{CTL_INIT}"));
        d.start_with(&["--config-dir", "etc", "--run-dir", "vrun", "--log-dir", "log", "--root-base", "vservers"]).await;
        let v = d.vserver("rel").await;
        v.start().await.unwrap_or_else(|e| panic!("start: {e}\n{}", d.daemon_log()));
        let st = d.state("rel").expect("state.json under the daemon's --run-dir");
        assert_eq!(st.pid as u32, v.leader().await.unwrap());
        assert_eq!(v.root_directory().await.unwrap(), root.display().to_string());
        d.ctl("rel", "exit 5");
        d.wait_state("rel", "failed", T).await;
        assert_eq!(v.last_exit().await.unwrap(), "exited 5", "the exit was read from the monitor's state");
        assert!(d.log_dir.join("rel.log").exists(), "the console log is under --log-dir");
    });
}
