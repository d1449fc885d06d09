//! One set of signal numbers over the whole API: `KillProcess` checks its signal and its pid
//! before it sends anything (it sent any number), `KillVServer` refuses the same numbers, and
//! `init.stop_signal` refuses 32 and 33 (glibc's own) as the API does.

use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::{require_root, TestDir};

const INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";
const T: Duration = Duration::from_secs(10);

#[test]
fn signals_outside_the_contract_are_refused_everywhere() {
    require_root!();
    let t = TestDir::new("d-signals");
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        d.ctl_root("a");
        d.config("a", &format!("context = 431\n{CTL_INIT}"));
        d.config("b", "context = 432\nflags = [\"fakeinit\"]\n[init]\nstop_signal = \"32\"\n");
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("a").await.unwrap();
        let pid1 = d.state("a").unwrap().pid as u32;

        for bad in [0, -1, 32, 33, 65] {
            assert_eq!(outcome(&m.kill_process("a", pid1, false, bad).await), INVALID_ARGS, "KillProcess signal {bad}");
            assert_eq!(outcome(&m.kill_vserver("a", "leader", bad).await), INVALID_ARGS, "KillVServer signal {bad}");
        }
        // Checked before the name: nothing is looked up for a bad call.
        assert_eq!(outcome(&m.kill_process("nope", pid1, false, 32).await), INVALID_ARGS);
        for bad_pid in [0, u32::MAX] {
            assert_eq!(outcome(&m.kill_process("a", bad_pid, false, libc::SIGCONT).await), INVALID_ARGS, "pid {bad_pid}");
        }
        // The positive controls: the same calls with a signal of the set go through.
        m.kill_process("a", pid1, false, libc::SIGCONT).await.unwrap();
        m.kill_vserver("a", "leader", libc::SIGCONT).await.unwrap();
        assert_eq!(d.state_of("a").await, "running");

        // The configuration refuses what the API refuses.
        let (ok, diags) = m.check_config("b").await.unwrap();
        assert!(!ok);
        assert!(diags.iter().any(|l| l.contains("b.toml:4:15: error: signal 32 is reserved")), "{diags:#?}");

        m.stop_vserver("a").await.unwrap();
        d.wait_state("a", "stopped", T).await;
    });
}
