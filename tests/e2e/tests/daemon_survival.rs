//! vserverd over a private bus: vservers outlive the daemon. A restarted daemon re-adopts them
//! from its run directory after checking pid start times, never adopts a recycled pid, and
//! collects the exit of a vserver that ended while it was down.

use std::fs;
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::{require_root, start_time, Target, TestDir};

const T: Duration = Duration::from_secs(10);

fn lines(path: &std::path::Path) -> Vec<String> {
    fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

/// The process that had `start` is there, and not a zombie.
fn alive(pid: i32, start: u64) -> bool {
    let zombie = fs::read_to_string(format!("/proc/{pid}/stat")).map(|s| s.rsplit_once(") ").map(|(_, r)| r.starts_with('Z')).unwrap_or(true)).unwrap_or(true);
    start_time(pid) == Some(start) && !zombie
}

#[test]
fn vservers_survive_a_daemon_sigkill_and_are_re_adopted() {
    require_root!();
    let t = TestDir::new("d-sigkill");
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        let log = t.path.join("hooks.log");
        let rc_root = d.rc_root("rcs");
        d.ctl_root("fk");
        d.config("rcs", &format!("context = 301\n[init]\nstop_timeout = 2\n{}", d.hooks_table(&log)));
        d.config("fk", &format!("context = 302\n{CTL_INIT}"));
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("rcs").await.unwrap();
        m.start_vserver("fk").await.unwrap();
        let before = m.list_vservers().await.unwrap();
        let rcs = d.state("rcs").unwrap();
        let fk = d.state("fk").unwrap();
        eventually("the rc service runs", T, || async { rc_root.join("tmp/service.pid").exists().then_some(()) }).await;
        let rc_procs = d.processes_of("rcs");
        assert!(rc_procs.len() >= 2, "pid 1 and the service: {rc_procs:?}");

        d.sigkill();
        for s in [&rcs, &fk] {
            assert!(alive(s.pid, s.start_time), "{} pid 1 survives the daemon", s.name);
            assert!(alive(s.monitor_pid, s.monitor_start_time), "{} monitor survives the daemon", s.name);
        }
        assert_eq!(d.processes_of("rcs"), rc_procs, "every process of the vserver survives");

        d.start().await;
        let after = m.list_vservers().await.unwrap();
        assert_eq!(after, before, "the list is the same: same leader pids and start times\n{}", d.daemon_log());
        for s in &after {
            assert_eq!(s.state, "running");
        }
        assert_eq!(d.summary("rcs").await.leader, rcs.pid as u32);
        assert_eq!(d.summary("fk").await.started_at, fk.started_at);
        assert!(d.daemon_log().contains("re-adopted running vserver"));

        // The adopted vservers are fully managed: a stop, and an exit noticed by itself.
        m.stop_vserver("rcs").await.unwrap_or_else(|e| panic!("stop after adoption: {e}\n{}", d.daemon_log()));
        assert_eq!(d.state_of("rcs").await, "stopped");
        assert_eq!(d.vserver("rcs").await.last_exit().await.unwrap(), "exited 0");
        assert!(rc_root.join("tmp/rc-stopped").exists());
        assert!(d.processes_of("rcs").is_empty());
        assert!(lines(&log).last().unwrap().starts_with("hook post-stop stop rcs 301 "));
        d.ctl("fk", "exit 3");
        d.wait_state("fk", "failed", T).await;
        assert_eq!(d.vserver("fk").await.last_exit().await.unwrap(), "exited 3");
        assert!(!alive(fk.monitor_pid, fk.monitor_start_time));
        assert!(d.vserver_processes().is_empty());
    });
}

#[test]
fn vservers_survive_a_daemon_sigterm() {
    require_root!();
    with_daemon("d-sigterm", async |d| {
        d.ctl_root("a");
        d.config("a", &format!("context = 303\n{CTL_INIT}"));
        d.start().await;
        d.manager().await.start_vserver("a").await.unwrap();
        let before = d.summary("a").await;
        let s = d.state("a").unwrap();
        for round in 0..2 {
            let st = d.terminate();
            assert!(st.success(), "vserverd ends cleanly on SIGTERM (round {round}): {st}");
            assert!(alive(s.pid, s.start_time) && alive(s.monitor_pid, s.monitor_start_time));
            d.start().await;
            assert_eq!(d.summary("a").await, before);
        }
        d.vserver("a").await.stop().await.unwrap();
        assert!(!alive(s.pid, s.start_time));
    });
}

#[test]
fn a_vserver_ending_while_the_daemon_is_down_keeps_its_exit_status() {
    require_root!();
    let t = TestDir::new("d-down");
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        let log = t.path.join("hooks.log");
        let hooks = d.hooks_table(&log);
        d.ctl_root("e3");
        d.ctl_root("e0");
        d.ctl_root("halted");
        d.ctl_root("stays");
        d.config("e3", &format!("context = 304\n{CTL_INIT}{hooks}"));
        d.config("e0", &format!("context = 305\n{CTL_INIT}"));
        d.config("halted", &format!("context = 306\n{CTL_INIT}"));
        d.config("stays", &format!("context = 307\n{CTL_INIT}"));
        d.start().await;
        let m = d.manager().await;
        for n in ["e3", "e0", "halted", "stays"] {
            m.start_vserver(n).await.unwrap();
            d.state(n);
        }
        d.sigkill();
        d.ctl("e3", "exit 3");
        d.ctl("e0", "exit 0");
        d.ctl("halted", "halt");
        for n in ["e3", "e0", "halted"] {
            eventually("the monitor records the exit", T, || async { d.state(n).and_then(|s| s.exit).map(|_| ()) }).await;
        }
        let stays = d.state("stays").unwrap();

        d.start().await;
        let e3 = d.vserver("e3").await;
        assert_eq!(e3.state().await.unwrap(), "failed");
        assert_eq!(e3.last_exit().await.unwrap(), "exited 3");
        assert_eq!(e3.leader().await.unwrap(), 0);
        assert_eq!(d.vserver("e0").await.last_exit().await.unwrap(), "exited 0");
        assert_eq!(d.state_of("e0").await, "stopped");
        assert_eq!(d.vserver("halted").await.last_exit().await.unwrap(), "halted (SIGINT)");
        assert_eq!(d.state_of("halted").await, "stopped");
        assert_eq!(d.state_of("stays").await, "running");
        assert_eq!(d.summary("stays").await.leader, stays.pid as u32);
        for n in ["e3", "e0", "halted"] {
            assert!(!d.run_dir.join(n).exists(), "{n}: runtime state collected");
        }
        // Its post-stop hook ran once the daemon was back.
        let l = lines(&log);
        assert_eq!(l.len(), 3, "{l:?}");
        assert!(l[2].starts_with("hook post-stop stop e3 304 "), "{l:?}");
        // And it starts again.
        e3.start().await.unwrap();
        assert_eq!(e3.state().await.unwrap(), "running");
        d.state("e3");
    });
}

#[test]
fn a_recycled_pid_is_never_adopted() {
    require_root!();
    with_daemon("d-recycled", async |d| {
        d.ctl_root("ghost1");
        d.ctl_root("ghost2");
        d.config("ghost1", &format!("context = 308\n{CTL_INIT}"));
        d.config("ghost2", &format!("context = 309\n{CTL_INIT}"));
        // Host processes now hold the pids the state files name; each file has one start
        // time that does not match (a recycled pid).
        let mut monitor = Target::new();
        let mut leader = Target::new();
        let (mp, lp) = (monitor.pid(), leader.pid());
        let (ms, ls) = (start_time(mp).unwrap(), start_time(lp).unwrap());
        let fake = |name: &str, monitor_start: u64, leader_start: u64| RunState {
            name: name.into(),
            context: 308,
            pid: lp,
            start_time: leader_start,
            monitor_pid: mp,
            monitor_start_time: monitor_start,
            started_at: 1,
            console: "/dev/pts/999".into(),
            exit: None,
            ended_at: None,
            booting: false,
            stop_signal: libc::SIGTERM,
        };
        vserver_config::run::write_state(&d.run_dir, &fake("ghost1", ms, ls + 1)).unwrap();
        vserver_config::run::write_state(&d.run_dir, &fake("ghost2", ms + 1, ls)).unwrap();
        d.start().await;
        let m = d.manager().await;
        // ghost1's monitor is alive by its identity, its pid 1 is not: nothing to adopt, nothing
        // touched. ghost2's monitor is gone: a monitor that died without recording pid 1's end
        // takes its vserver with it (found through its cgroups, here none): failed.
        for (n, state) in [("ghost1", "stopped"), ("ghost2", "failed")] {
            let s = d.summary(n).await;
            assert_eq!((s.state.as_str(), s.leader, s.started_at), (state, 0, 0), "{n} not adopted");
            assert_eq!(outcome(&m.stop_vserver(n).await), "org.vserverd.VServer1.NotRunning");
            assert_eq!(outcome(&m.kill_vserver(n, "all", libc::SIGKILL).await), "org.vserverd.VServer1.NotRunning");
        }
        assert!(!d.daemon_log().contains("re-adopted"));
        assert!(monitor.alive() && leader.alive(), "the processes behind the recycled pids were left alone");
        // A real start replaces the stale state.
        m.start_vserver("ghost1").await.unwrap();
        let s = d.state("ghost1").unwrap();
        assert_ne!(s.pid, lp);
        assert_eq!(d.summary("ghost1").await.leader, s.pid as u32);
        m.stop_vserver("ghost1").await.unwrap();
        assert!(monitor.alive() && leader.alive());
    });
}
