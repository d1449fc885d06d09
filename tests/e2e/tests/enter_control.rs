//! The control socket inside each vserver (`/run/vserver/control`) and the paper's tools on it:
//! `vreboot` restarts the vserver it runs in (hooks with `VSERVER_TARGET=reboot`, Restarts + 1,
//! a new pid 1), `vhalt` stops it, `vstatus` reads its status. The daemon knows the vserver by
//! the socket: nothing said on it reaches another vserver or the host; only root inside may
//! use it; requests are rate limited; the tools are read-only; a restarted daemon serves the
//! socket again.

use std::fs;
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::pty::{run, vserverctl, Output};
use vserver_e2e::{require_root, TestDir};

const T: Duration = Duration::from_secs(20);

fn lines(p: &std::path::Path) -> Vec<String> {
    fs::read_to_string(p).unwrap_or_default().lines().map(str::to_string).collect()
}

fn exec(d: &TestDaemon<'_>, name: &str, cmd: &[&str]) -> Output {
    let mut args = vec!["exec", name, "--"];
    args.extend_from_slice(cmd);
    run(vserverctl(&d.address, &args), T)
}

#[test]
fn vreboot_restarts_its_own_vserver_and_no_other() {
    require_root!();
    let t = TestDir::new("control-reboot");
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        let hooks = t.path.join("hooks.log");
        let root = d.ctl_root("a");
        d.ctl_root("b");
        d.config("a", &format!("context = 551\n{CTL_INIT}{}", d.hooks_table(&hooks)));
        d.config("b", &format!("context = 552\n{CTL_INIT}"));
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("a").await.unwrap();
        m.start_vserver("b").await.unwrap();
        let a1 = d.state("a").unwrap();
        let b1 = d.state("b").unwrap();
        let va = d.vserver("a").await;

        // The tools and the socket, read-only.
        let o = exec(&d, "a", &["ls", "/run/vserver"]);
        assert_eq!(o.stdout.split_whitespace().collect::<Vec<_>>(), ["control", "vhalt", "vreboot", "vstatus"], "{o:?}");
        let o = exec(&d, "a", &["sh", "-c", "echo x > /run/vserver/vreboot"]);
        assert!(o.stderr.contains("Read-only file system"), "{o:?}");
        let o = exec(&d, "a", &["/run/vserver/vstatus"]);
        assert_eq!((o.code, o.stdout.as_str()), (Some(0), "ok a running context=551 restarts=0\n"), "{o:?}");

        // Whatever the request says, it is about the vserver whose socket it came on; there is
        // no way to name another one, and no other vserver's socket is reachable.
        let o = exec(&d, "a", &["/probe", "try", "unix_request", "/run/vserver/control", "reboot b"]);
        assert_eq!(o.stdout.trim(), "ok error unknown request (reboot, halt or status)", "{o:?}");
        let b_socket = d.run_dir.join("b/guest/control");
        assert!(b_socket.exists());
        let o = exec(&d, "a", &["/probe", "try", "unix_request", &b_socket.display().to_string(), "reboot"]);
        assert_eq!(o.stdout.trim(), "err ENOENT 2", "the host's paths are not there inside: {o:?}");
        let o = exec(&d, "a", &["sh", "-c", "/run/vserver/vstatus b"]);
        assert_eq!(o.code, Some(2), "the tools take no argument: {o:?}");

        // vreboot: a full restart of a, b untouched.
        let o = exec(&d, "a", &["/run/vserver/vreboot"]);
        assert_eq!(o.stdout, "ok rebooting\n", "{o:?}");
        eventually("a restarted", T, || async { (va.restarts().await.unwrap() == 1).then_some(()) }).await;
        d.wait_state("a", "running", T).await;
        let a2 = d.state("a").unwrap();
        assert_ne!((a2.pid, a2.start_time), (a1.pid, a1.start_time), "a new pid 1");
        let b2 = d.state("b").unwrap();
        assert_eq!((b2.pid, b2.start_time), (b1.pid, b1.start_time), "b is untouched");
        assert_eq!(d.vserver("b").await.restarts().await.unwrap(), 0);
        let r = root.display();
        let log = lines(&hooks);
        assert_eq!(
            log[2..],
            [
                format!("hook pre-stop reboot a 551 {r}"),
                format!("hook post-stop reboot a 551 {r}"),
                format!("hook pre-start reboot a 551 {r}"),
                format!("hook post-start reboot a 551 {r}"),
            ],
            "{log:?}"
        );
        // The new run has its socket too.
        let o = exec(&d, "a", &["/run/vserver/vstatus"]);
        assert_eq!(o.stdout, "ok a running context=551 restarts=1\n", "{o:?}");

        // vhalt stops it, b still untouched (that is a's fifth request this minute: the last
        // one it may make).
        let o = exec(&d, "a", &["/run/vserver/vhalt"]);
        assert_eq!(o.stdout, "ok halting\n", "{o:?}");
        d.wait_state("a", "stopped", T).await;
        assert_eq!(d.state_of("b").await, "running");
        let b3 = d.state("b").unwrap();
        assert_eq!((b3.pid, b3.start_time), (b1.pid, b1.start_time));
    });
}

#[test]
fn the_control_socket_is_for_root_inside_rate_limited_and_survives_a_daemon_restart() {
    require_root!();
    with_daemon("control-limits", async |d| {
        let root = d.ctl_root("c");
        fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/:/bin/sh\n").unwrap();
        d.config("c", &format!("context = 553\n{CTL_INIT}"));
        d.start().await;
        d.manager().await.start_vserver("c").await.unwrap();
        let c1 = d.state("c").unwrap();

        // Not for users inside.
        let o = run(vserverctl(&d.address, &["exec", "--user", "alice", "c", "--", "/run/vserver/vreboot"]), T);
        assert_eq!(o.code, Some(1));
        assert!(o.stderr.contains("permission denied (root only)"), "{o:?}");

        // A restarted daemon serves the socket again (the directory is bound in, not the
        // socket).
        d.restart().await;
        let o = exec(&d, "c", &["/run/vserver/vstatus"]);
        assert_eq!(o.stdout, "ok c running context=553 restarts=0\n", "{o:?}\n{}", d.daemon_log());

        // Five requests per minute, then no more; the vserver is not touched by the refused ones.
        for _ in 0..4 {
            assert_eq!(exec(&d, "c", &["/run/vserver/vstatus"]).code, Some(0));
        }
        let o = exec(&d, "c", &["/run/vserver/vreboot"]);
        assert_eq!(o.code, Some(1), "{o:?}");
        assert!(o.stderr.contains("error rate limited"), "{o:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = d.state("c").unwrap();
        assert_eq!((now.pid, now.start_time), (c1.pid, c1.start_time));
        assert_eq!(d.vserver("c").await.restarts().await.unwrap(), 0);
    });
}
