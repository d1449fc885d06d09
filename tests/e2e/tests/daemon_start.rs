//! When a start is done: the paper's plain start waits for the rc script and reports its
//! failure; a real init is `booting` until it says `READY=1` on its notify socket, and only pid
//! 1 may say it; a restarted daemon adopts a vserver that is still booting.

use std::fs;
use std::time::{Duration, Instant};

use vserver_e2e::daemon::*;
use vserver_e2e::{require_root, TestDir};

const T: Duration = Duration::from_secs(15);

/// Nothing of vserver `name` is left: no process, no cgroup, no runtime directory.
fn nothing_left(d: &TestDaemon, name: &str) {
    assert!(d.processes_of(name).is_empty(), "processes of {name}: {:?}", d.processes_of(name));
    let cgroups: Vec<_> =
        fs::read_dir("/sys/fs/cgroup").unwrap().flatten().map(|h| h.path().join(d.cgroup_parent()).join(name)).filter(|p| p.exists()).collect();
    assert!(cgroups.is_empty(), "cgroups of {name}: {cgroups:?}");
    assert!(!d.run_dir.join(name).exists(), "the runtime directory of {name}");
}

#[test]
fn rc_starts_report_a_failing_start_command_and_leave_nothing() {
    require_root!();
    with_daemon("st-rc", async |d| {
        d.root("missing");
        d.config("missing", "context = 121\n[init]\ncommand = [\"/etc/init.d/nowhere\", \"3\"]\n");
        let root = d.root("fails");
        d.script(&root, "/bin/fails", "echo about to fail; echo the reason >&2; exit 3");
        d.config("fails", "context = 122\n[init]\ncommand = [\"/bin/fails\"]\n");
        d.root("slow");
        d.config("slow", "context = 123\n[init]\ncommand = [\"/bin/sleep\", \"100\"]\nstart_timeout = 1\n");
        d.start().await;
        let m = d.manager().await;

        // The failure travels as fields: the step, and the console's last lines apart from the message.
        let VServerError::StartFailed(f) = m.start_vserver("missing").await.unwrap_err() else { panic!("not StartFailed") };
        assert!(f.message.contains("the start command \"/etc/init.d/nowhere 3\" failed (exited 127)"), "{f:?}");
        assert_eq!(f.step, "ready", "{f:?}");
        assert!(f.console.contains("vserver-init: cannot run /etc/init.d/nowhere: No such file or directory"), "the console's last lines: {f:?}");
        assert!(!f.message.contains("vserver-init: cannot run"), "the console is a field of its own: {f:?}");
        assert_eq!(d.state_of("missing").await, "failed");
        nothing_left(&d, "missing");

        let VServerError::StartFailed(f) = m.start_vserver("fails").await.unwrap_err() else { panic!("not StartFailed") };
        assert!(f.message.contains("failed (exited 3)") && f.console.contains("about to fail") && f.console.contains("the reason"), "{f:?}");
        assert!(!f.console.contains("nowhere"), "only this run's lines: {f:?}");
        nothing_left(&d, "fails");

        let t0 = Instant::now();
        let e = m.start_vserver("slow").await.unwrap_err().to_string();
        assert!(e.contains("not ready within 1 s (init.start_timeout)"), "{e}");
        assert!(t0.elapsed() < Duration::from_secs(8), "{:?}", t0.elapsed());
        nothing_left(&d, "slow");
        // A failed start is a failed state with the reason, not a silent stop.
        let v = d.vserver("slow").await;
        assert_eq!(v.state().await.unwrap(), "failed");
        assert_eq!(v.last_exit().await.unwrap(), "killed by SIGKILL");
    });
}

#[test]
fn an_rc_start_is_done_when_its_start_command_is() {
    require_root!();
    with_daemon("st-wait", async |d| {
        let root = d.root("w");
        d.script(&root, "/etc/init.d/rc", "sleep 1; echo started > /tmp/started; sleep 1000 &");
        d.config("w", "context = 124\n[init]\ncommand = [\"/etc/init.d/rc\", \"3\"]\nstop = [\"/bin/true\"]\nstop_timeout = 2\n");
        // The same command with `ready = "exec"`: done as soon as it runs.
        let root_x = d.root("x");
        d.script(&root_x, "/etc/init.d/rc", "sleep 1; echo started > /tmp/started; sleep 1000 &");
        d.config("x", "context = 125\n[init]\ncommand = [\"/etc/init.d/rc\", \"3\"]\nready = \"exec\"\nstop_timeout = 2\n");
        d.start().await;
        let m = d.manager().await;
        let v = d.vserver("w").await;
        let (done, seen) = tokio::join!(m.start_vserver("w"), async {
            // While the rc script runs, the vserver is booting.
            eventually("booting", T, || async { (v.state().await.unwrap() == "booting").then_some(()) }).await;
            root.join("tmp/started").exists()
        });
        done.unwrap();
        assert!(!seen, "booting was seen before the rc script ended");
        assert!(root.join("tmp/started").exists(), "the start returned after the rc script ended");
        assert_eq!(v.state().await.unwrap(), "running");
        m.stop_vserver("w").await.unwrap();

        let t0 = Instant::now();
        m.start_vserver("x").await.unwrap();
        assert!(t0.elapsed() < Duration::from_millis(900) && !root_x.join("tmp/started").exists(), "ready at exec: {:?}", t0.elapsed());
        assert_eq!(d.state_of("x").await, "running");
        m.stop_vserver("x").await.unwrap();
    });
}

#[test]
fn only_pid_1_can_say_ready() {
    require_root!();
    with_daemon("st-notify", async |d| {
        let root = d.root("n");
        // A child of pid 1 says READY=1 first (ignored); pid 1 itself says it once /go exists.
        d.script(
            &root,
            "/bin/notify-init",
            "/probe try notify \"$NOTIFY_SOCKET\" READY=1\nwhile [ ! -e /go ]; do sleep 0.05; done\n\
             exec /probe try notify \"$NOTIFY_SOCKET\" 'STATUS=up\\nREADY=1' 1000",
        );
        d.config("n", "context = 126\nflags = [\"fakeinit\"]\n[init]\ncommand = [\"/bin/notify-init\"]\nready = \"notify\"\nstart_timeout = 20\nstop_timeout = 2\n");
        d.start().await;
        let m = d.manager().await;
        let v = d.vserver("n").await;
        let (done, _) = tokio::join!(m.start_vserver("n"), async {
            eventually("booting", T, || async { (v.state().await.unwrap() == "booting").then_some(()) }).await;
            tokio::time::sleep(Duration::from_millis(700)).await;
            assert_eq!(v.state().await.unwrap(), "booting", "a child's READY=1 made it ready");
            let inside = fs::read_to_string(format!("/proc/{}/environ", d.state("n").unwrap().pid)).unwrap();
            assert!(inside.split('\0').any(|e| e == "NOTIFY_SOCKET=/run/vserver/notify"), "{inside}");
            fs::write(root.join("go"), "").unwrap();
        });
        done.unwrap_or_else(|e| panic!("start: {e}\n{}", d.daemon_log()));
        assert_eq!(v.state().await.unwrap(), "running");
        // The socket is gone once it has served its purpose.
        assert!(!d.run_dir.join("n/guest/notify").exists());
        m.stop_vserver("n").await.unwrap();
        nothing_left(&d, "n");
    });
}

#[test]
fn a_daemon_restarted_while_a_vserver_boots_adopts_it_booting_then_running() {
    require_root!();
    let t = TestDir::new("st-adopt");
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        let root = d.root("b");
        d.script(&root, "/etc/init.d/rc", "while [ ! -e /go ]; do sleep 0.05; done; sleep 1000 &");
        d.config("b", "context = 127\n[init]\ncommand = [\"/etc/init.d/rc\", \"3\"]\nstop = [\"/bin/true\"]\nstop_timeout = 2\n");
        d.start().await;
        let address = d.address.clone();
        // The start is left waiting on the bus while its daemon dies.
        let pending = tokio::spawn(async move {
            let conn = connect(&address).await;
            ManagerProxy::new(&conn).await.unwrap().start_vserver("b").await
        });
        eventually("booting", T, || async { d.state("b").filter(|s| s.booting) }).await;
        let first = d.state("b").unwrap();
        d.sigkill();
        assert!(pending.await.unwrap().is_err(), "the caller of a daemon that died is told so");
        d.start().await;
        assert_eq!(d.state_of("b").await, "booting");
        fs::write(root.join("go"), "").unwrap();
        d.wait_state("b", "running", T).await;
        let now = d.state("b").unwrap();
        assert_eq!((now.pid, now.start_time, now.booting), (first.pid, first.start_time, false), "the same run, adopted");
        d.manager().await.stop_vserver("b").await.unwrap();
        nothing_left(&d, "b");
    });
}
