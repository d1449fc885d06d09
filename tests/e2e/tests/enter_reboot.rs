//! `reboot`, `halt` and `poweroff` typed inside (through `vserverctl exec`), for rc-style
//! vservers whose pid 1 is our reaper: the reaper runs the stop command with `VSERVER_TARGET`
//! and then has the kernel end it as for `reboot -f`; the daemon restarts (Restarts + 1, hooks
//! with `VSERVER_TARGET=reboot`, a new pid 1) or stops it. A stop command that itself reboots
//! restarts the vserver; a host stop stays a stop; a reboot loop ends in `failed` and leaves the
//! others alone; `kexec_load` stays denied. (Fakeinit reboot and halt: daemon_exits.rs.)

use std::fs;
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::pty::{run, vserverctl};
use vserver_e2e::{require_root, TestDir};

const T: Duration = Duration::from_secs(20);

fn lines(p: &std::path::Path) -> Vec<String> {
    fs::read_to_string(p).unwrap_or_default().lines().map(str::to_string).collect()
}

/// An rc root whose `/etc/init.d/rc` logs `rc LEVEL TARGET` to /tmp/rc.log and, at level 3,
/// starts a service.
fn rc_root(d: &TestDaemon<'_>, name: &str) -> std::path::PathBuf {
    let root = d.root(name);
    d.script(
        &root,
        "/etc/init.d/rc",
        r#"echo "rc $1 $VSERVER_TARGET" >> /tmp/rc.log
case "$1" in
    3) /bin/sleep 100000 & ;;
    reboot) reboot -f ;;
esac"#,
    );
    root
}

const RC: &str = "[init]\ncommand = [\"/etc/init.d/rc\", \"3\"]\nstop = [\"/etc/init.d/rc\", \"0\"]\nstop_timeout = 5\n";

#[test]
fn reboot_inside_an_rc_vserver_restarts_it() {
    require_root!();
    let t = TestDir::new("rc-reboot");
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        let hooks = t.path.join("hooks.log");
        let root = rc_root(&d, "rb");
        d.config("rb", &format!("context = 531\n{RC}{}", d.hooks_table(&hooks)));
        d.start().await;
        let v = d.vserver("rb").await;
        v.start().await.unwrap();
        let first = d.state("rb").unwrap();

        // busybox `reboot` (no -f) asks pid 1 with SIGTERM from inside.
        let o = run(vserverctl(&d.address, &["exec", "rb", "--", "reboot"]), T);
        // As for halt below: the restart's end may catch the command before it returns.
        assert!(matches!(o.code, Some(0 | 143 | 137)) && o.stderr.is_empty(), "{o:?}");
        eventually("rb rebooted", T, || async { (v.restarts().await.unwrap() == 1).then_some(()) }).await;
        d.wait_state("rb", "running", T).await;
        let second = d.state("rb").unwrap();
        assert_ne!((second.pid, second.start_time), (first.pid, first.start_time), "a new pid 1");
        assert_eq!(v.leader().await.unwrap(), second.pid as u32);
        assert!(d.daemon_log().contains("pid 1 ended vserver=rb exit=rebooted (SIGHUP)"), "{}", d.daemon_log());
        eventually("booted again", T, || async { (lines(&root.join("tmp/rc.log")).len() == 3).then_some(()) }).await;
        assert_eq!(lines(&root.join("tmp/rc.log")), ["rc 3 ", "rc 0 reboot", "rc 3 "]);
        let r = root.display();
        assert_eq!(
            lines(&hooks),
            vec![
                format!("hook pre-start start rb 531 {r}"),
                format!("hook post-start start rb 531 {r}"),
                format!("hook post-stop reboot rb 531 {r}"),
                format!("hook pre-start reboot rb 531 {r}"),
                format!("hook post-start reboot rb 531 {r}"),
            ]
        );

        // A stop from the host stays a stop (and says so to the stop command).
        v.stop().await.unwrap();
        assert_eq!(v.state().await.unwrap(), "stopped");
        assert_eq!(v.last_exit().await.unwrap(), "exited 0");
        assert_eq!(lines(&root.join("tmp/rc.log")).last().unwrap(), "rc 0 stop");
        assert_eq!(v.restarts().await.unwrap(), 1);
    });
}

#[test]
fn halt_and_poweroff_inside_an_rc_vserver_stop_it() {
    require_root!();
    with_daemon("rc-halt", async |d| {
        let root = rc_root(&d, "h");
        d.config("h", &format!("context = 532\n{RC}restart = \"always\"\n"));
        d.start().await;
        let v = d.vserver("h").await;
        for (i, cmd) in ["halt", "poweroff"].into_iter().enumerate() {
            v.start().await.unwrap();
            d.state("h");
            let o = run(vserverctl(&d.address, &["exec", "h", "--", cmd]), T);
            // The command asks pid 1 and returns; the vserver's end may catch it first (it is
            // one of the vserver's processes): SIGTERM, or SIGKILL after the stop's grace.
            assert!(matches!(o.code, Some(0 | 143 | 137)) && o.stderr.is_empty(), "{cmd}: {o:?}");
            d.wait_state("h", "stopped", T).await;
            assert_eq!(v.last_exit().await.unwrap(), "halted (SIGINT)", "{cmd}");
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(v.state().await.unwrap(), "stopped", "{cmd}: restart = always does not apply");
            assert_eq!(v.restarts().await.unwrap(), 0);
            assert_eq!(lines(&root.join("tmp/rc.log"))[2 * i + 1], "rc 0 halt", "{cmd}");
        }
        // kexec stays denied (the filter's EPERM, not the kernel's ENOSYS), SYS_BOOT or not.
        v.start().await.unwrap();
        d.state("h");
        let o = run(vserverctl(&d.address, &["exec", "h", "--", "/probe", "try", "kexec_load"]), T);
        assert_eq!(o.stdout.trim(), "err EPERM 1", "{o:?}");
        let o = run(vserverctl(&d.address, &["exec", "h", "--", "/probe", "try", "kexec_file_load"]), T);
        assert_eq!(o.stdout.trim(), "err EPERM 1", "{o:?}");
    });
}

#[test]
fn a_stop_command_that_reboots_restarts_the_vserver() {
    require_root!();
    with_daemon("rc-stop-reboot", async |d| {
        let root = rc_root(&d, "s");
        // The stop command is `rc reboot`, which ends with `reboot -f`.
        d.config("s", "context = 533\n[init]\ncommand = [\"/etc/init.d/rc\", \"3\"]\nstop = [\"/etc/init.d/rc\", \"reboot\"]\nstop_timeout = 5\n");
        d.start().await;
        let v = d.vserver("s").await;
        v.start().await.unwrap();
        let first = d.state("s").unwrap();
        // Anything inside that makes pid 1 stop (here a halt request) runs the stop command,
        // which asks the kernel for a reboot.
        let o = run(vserverctl(&d.address, &["exec", "s", "--", "kill", "-USR1", "1"]), T);
        assert_eq!(o.code, Some(0), "{o:?}");
        eventually("s rebooted", T, || async { (v.restarts().await.unwrap() == 1).then_some(()) }).await;
        d.wait_state("s", "running", T).await;
        assert_ne!(d.state("s").unwrap().pid, first.pid);
        assert!(lines(&root.join("tmp/rc.log")).contains(&"rc reboot halt".to_string()), "{:?}", lines(&root.join("tmp/rc.log")));
    });
}

#[test]
fn a_reboot_loop_ends_in_failed_and_leaves_the_others_alone() {
    require_root!();
    with_daemon("rc-loop", async |d| {
        let root = d.root("loop");
        d.script(&root, "/etc/init.d/rc", "echo boot >> /tmp/boots\nreboot\nsleep 100");
        d.config("loop", "context = 534\n[init]\ncommand = [\"/etc/init.d/rc\", \"3\"]\nstop_timeout = 5\n");
        d.ctl_root("other");
        d.config("other", &format!("context = 535\n{CTL_INIT}"));
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("other").await.unwrap();
        let other = d.state("other").unwrap();
        let v = d.vserver("loop").await;
        v.start().await.unwrap();
        d.wait_state("loop", "failed", Duration::from_secs(60)).await;
        assert_eq!(v.restarts().await.unwrap(), 5);
        assert_eq!(v.last_exit().await.unwrap(), "rebooted (SIGHUP)");
        assert_eq!(lines(&root.join("tmp/boots")).len(), 6);
        assert!(d.processes_of("loop").is_empty());
        // The other vserver never noticed.
        assert_eq!(d.state_of("other").await, "running");
        let now = d.state("other").unwrap();
        assert_eq!((now.pid, now.start_time), (other.pid, other.start_time));
        assert_eq!(d.vserver("other").await.restarts().await.unwrap(), 0);
    });
}
