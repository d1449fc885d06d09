//! vserverd over a private bus: pid 1 ending by itself. An exit is a stop, or a restart per
//! `init.restart`; `reboot` inside (SIGHUP) is a full restart (configuration re-read, hooks
//! re-run with VSERVER_TARGET=reboot), rate limited; `halt` inside (SIGINT) is a stop.

use std::fs;
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::{require_root, start_time, TestDir};

const T: Duration = Duration::from_secs(10);

fn lines(path: &std::path::Path) -> Vec<String> {
    fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

#[test]
fn pid1_exiting_is_a_stop_or_a_failure_when_restart_is_no() {
    require_root!();
    with_daemon("d-exit-no", async |d| {
        d.ctl_root("ok0");
        d.ctl_root("bad3");
        d.config("ok0", &format!("context = 201\n{CTL_INIT}restart = \"no\"\n"));
        d.config("bad3", &format!("context = 202\n{CTL_INIT}"));
        d.start().await;
        let m = d.manager().await;
        for n in ["ok0", "bad3"] {
            m.start_vserver(n).await.unwrap_or_else(|e| panic!("start {n}: {e}\n{}", d.daemon_log()));
            d.state(n);
        }
        d.ctl("ok0", "exit 0");
        d.ctl("bad3", "exit 3");
        d.wait_state("ok0", "stopped", T).await;
        d.wait_state("bad3", "failed", T).await;
        let ok0 = d.vserver("ok0").await;
        let bad3 = d.vserver("bad3").await;
        assert_eq!(ok0.last_exit().await.unwrap(), "exited 0");
        assert_eq!(bad3.last_exit().await.unwrap(), "exited 3");
        for v in [&ok0, &bad3] {
            assert_eq!(v.restarts().await.unwrap(), 0);
            assert_eq!(v.leader().await.unwrap(), 0);
        }
        assert!(d.state("ok0").is_none() && d.state("bad3").is_none(), "runtime state removed");
        // A failed vserver starts again on request.
        m.start_vserver("bad3").await.unwrap();
        assert_eq!(bad3.state().await.unwrap(), "running");
    });
}

#[test]
fn pid1_exiting_is_restarted_per_init_restart() {
    require_root!();
    let t = TestDir::new("d-exit-restart");
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        let log = t.path.join("hooks.log");
        let r1 = d.ctl_root("onfail");
        d.ctl_root("always");
        d.config("onfail", &format!("context = 203\n{CTL_INIT}restart = \"on-failure\"\n{}", d.hooks_table(&log)));
        d.config("always", &format!("context = 204\n{CTL_INIT}restart = \"always\"\n"));
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("onfail").await.unwrap();
        m.start_vserver("always").await.unwrap();
        let onfail = d.vserver("onfail").await;
        let always = d.vserver("always").await;

        // on-failure: a failure is restarted (new pid 1, hooks again), a clean exit is not.
        let first = d.state("onfail").unwrap();
        d.ctl("onfail", "exit 3");
        eventually("onfail restarted", T, || async { (onfail.restarts().await.unwrap() == 1).then_some(()) }).await;
        d.wait_state("onfail", "running", T).await;
        let second = d.state("onfail").unwrap();
        assert_ne!((second.pid, second.start_time), (first.pid, first.start_time));
        assert_eq!(onfail.leader().await.unwrap(), second.pid as u32);
        // LastExit is "" while running; the daemon's log says how the last run ended.
        assert_eq!(onfail.last_exit().await.unwrap(), "");
        assert!(d.daemon_log().contains("pid 1 ended vserver=onfail exit=exited 3"), "{}", d.daemon_log());
        assert_ne!(start_time(first.pid), Some(first.start_time), "the old pid 1 is gone");
        eventually("two boots", T, || async { (lines(&r1.join("tmp/events")).iter().filter(|l| *l == "boot").count() == 2).then_some(()) })
            .await;
        d.ctl("onfail", "exit 0");
        d.wait_state("onfail", "stopped", T).await;
        assert_eq!(onfail.restarts().await.unwrap(), 1);
        let r = r1.display();
        assert_eq!(
            lines(&log),
            vec![
                format!("hook pre-start start onfail 203 {r}"),
                format!("hook post-start start onfail 203 {r}"),
                // it ended by itself: no pre-stop; then started again as a start.
                format!("hook post-stop stop onfail 203 {r}"),
                format!("hook pre-start start onfail 203 {r}"),
                format!("hook post-start start onfail 203 {r}"),
                format!("hook post-stop stop onfail 203 {r}"),
            ]
        );

        // always: even a clean exit is restarted.
        d.ctl("always", "exit 0");
        eventually("always restarted", T, || async { (always.restarts().await.unwrap() == 1).then_some(()) }).await;
        d.wait_state("always", "running", T).await;
        assert!(d.daemon_log().contains("pid 1 ended vserver=always exit=exited 0"), "{}", d.daemon_log());
        d.state("always");
        // A stop asked for is never restarted.
        m.stop_vserver("always").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(always.state().await.unwrap(), "stopped");
        assert_eq!(always.restarts().await.unwrap(), 1);
    });
}

#[test]
fn reboot_inside_is_a_full_restart_with_the_configuration_re_read() {
    require_root!();
    let t = TestDir::new("d-reboot");
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        let log = t.path.join("hooks.log");
        let root = d.ctl_root("rb");
        d.legacy_script("rb", &log);
        d.config("rb", &format!("context = 205\n{CTL_INIT}"));
        d.start().await;
        let m = d.manager().await;
        let v = d.vserver("rb").await;
        m.start_vserver("rb").await.unwrap();
        let first = d.state("rb").unwrap();
        assert_eq!(first.context, 205);

        // The file changes (without a Reload): the reboot must pick it up.
        d.config("rb", &format!("context = 206\n{CTL_INIT}"));
        d.ctl("rb", "reboot");
        eventually("rb rebooted", T, || async { (v.restarts().await.unwrap() == 1).then_some(()) }).await;
        d.wait_state("rb", "running", T).await;
        let second = d.state("rb").unwrap();
        assert_ne!(second.pid, first.pid);
        assert!(d.daemon_log().contains("pid 1 ended vserver=rb exit=rebooted (SIGHUP)"), "{}", d.daemon_log());
        assert_eq!(second.context, 206, "the configuration was re-read for the reboot");
        assert_eq!(v.context().await.unwrap(), 206);
        let r = root.display();
        assert_eq!(
            lines(&log),
            vec![
                format!("rb.sh pre-start rb pre-start start rb 205 {r}"),
                format!("rb.sh post-start rb post-start start rb 205 {r}"),
                format!("rb.sh post-stop rb post-stop reboot rb 205 {r}"),
                format!("rb.sh pre-start rb pre-start reboot rb 206 {r}"),
                format!("rb.sh post-start rb post-start reboot rb 206 {r}"),
            ]
        );
    });
}

#[test]
fn reboots_are_rate_limited() {
    require_root!();
    with_daemon("d-rebootloop", async |d| {
        let root = d.root("loop");
        d.script(&root, "/bin/reboot-now", "echo boot >> /tmp/events\nreboot -f\nsleep 10");
        d.config("loop", "context = 207\nflags = [\"fakeinit\"]\n[init]\ncommand = [\"/bin/reboot-now\"]\nrestart = \"always\"\n");
        d.start().await;
        let v = d.vserver("loop").await;
        v.start().await.unwrap();
        d.wait_state("loop", "failed", T).await;
        // More than five reboots within a minute: the sixth is not followed.
        assert_eq!(v.restarts().await.unwrap(), 5);
        assert_eq!(v.last_exit().await.unwrap(), "rebooted (SIGHUP)");
        assert_eq!(lines(&root.join("tmp/events")).len(), 6);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(v.state().await.unwrap(), "failed");
        assert!(d.vserver_processes().is_empty());
        // An explicit start is still allowed.
        fs::write(root.join("bin/reboot-now"), "#!/bin/sh\nwhile :; do sleep 1; done\n").unwrap();
        v.start().await.unwrap();
        assert_eq!(v.state().await.unwrap(), "running");
        d.state("loop");
    });
}

#[test]
fn halt_inside_is_a_stop_even_with_restart_always() {
    require_root!();
    let t = TestDir::new("d-halt");
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        let log = t.path.join("hooks.log");
        let root = d.ctl_root("h");
        d.config("h", &format!("context = 208\n{CTL_INIT}restart = \"always\"\n{}", d.hooks_table(&log)));
        d.start().await;
        let v = d.vserver("h").await;
        v.start().await.unwrap();
        d.state("h");
        d.ctl("h", "halt");
        d.wait_state("h", "stopped", T).await;
        assert_eq!(v.last_exit().await.unwrap(), "halted (SIGINT)");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(v.state().await.unwrap(), "stopped");
        assert_eq!(v.restarts().await.unwrap(), 0);
        let r = root.display();
        assert_eq!(lines(&log).last().unwrap(), &format!("hook post-stop stop h 208 {r}"));
    });
}
