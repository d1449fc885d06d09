//! Concurrent operations on one vserver: one at a time, the others refused at once with `Busy`
//! (or answered by the state: `AlreadyRunning`, `NotRunning`); properties stay readable during
//! an operation; whatever the interleaving, the vserver ends up consistent and nothing leaks.

use std::time::{Duration, Instant};

use vserver_e2e::daemon::*;
use vserver_e2e::{require_root, TestDir};

const T: Duration = Duration::from_secs(10);
const BUSY: &str = "org.vserverd.VServer1.Busy";
const ALREADY: &str = "org.vserverd.VServer1.AlreadyRunning";
const NOT_RUNNING: &str = "org.vserverd.VServer1.NotRunning";

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Running means a live pid 1 matching the state file; stopped means no process left.
async fn consistent(d: &TestDaemon<'_>, name: &str) -> String {
    let v = d.vserver(name).await;
    let state = v.state().await.unwrap();
    match state.as_str() {
        "running" => {
            let s = d.state(name).expect("a running vserver has its state file");
            assert_eq!(v.leader().await.unwrap(), s.pid as u32);
            assert_eq!(vserver_e2e::start_time(s.pid), Some(s.start_time), "pid 1 is alive");
        }
        "stopped" | "failed" => {
            assert_eq!(v.leader().await.unwrap(), 0);
            assert!(d.processes_of(name).is_empty(), "no process left when {state}");
        }
        other => panic!("{name} left in a transient state: {other}"),
    }
    state
}

#[test]
fn concurrent_start_and_stop_on_one_vserver() {
    require_root!();
    let t = TestDir::new("d-concurrent");
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        d.ctl_root("c");
        // Slow hooks, so that operations overlap.
        d.config(
            "c",
            &format!("context = 801\n{CTL_INIT}[hooks]\npre_start = [\"/bin/sleep\", \"0.2\"]\npre_stop = [\"/bin/sleep\", \"0.2\"]\n"),
        );
        d.start().await;
        let m = d.manager().await;
        let v = d.vserver("c").await;
        // A second connection, as a second client would have.
        let m2 = ManagerProxy::new(&connect(&bus.address).await).await.unwrap();

        // Two starts: one works, the other is refused at once.
        let t0 = Instant::now();
        let (r1, r2) = tokio::join!(m.start_vserver("c"), async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let t1 = Instant::now();
            // Properties stay readable while the start runs.
            assert_eq!(v.state().await.unwrap(), "starting");
            let r = m2.start_vserver("c").await;
            assert!(t1.elapsed() < Duration::from_millis(150), "the refusal did not wait for the start: {:?}", t1.elapsed());
            r
        });
        assert_eq!(sorted(vec![outcome(&r1), outcome(&r2)]), sorted(vec!["ok".into(), BUSY.into()]));
        assert!(t0.elapsed() >= Duration::from_millis(200));
        assert_eq!(consistent(&d, "c").await, "running");

        // Two stops.
        let (r1, r2) = tokio::join!(m.stop_vserver("c"), v.stop());
        let got = sorted(vec![outcome(&r1), outcome(&r2)]);
        assert!(got == sorted(vec!["ok".into(), BUSY.into()]) || got == sorted(vec!["ok".into(), NOT_RUNNING.into()]), "{got:?}");
        assert_eq!(consistent(&d, "c").await, "stopped");

        // Start and stop together, both ways round, and a restart in the middle.
        for round in 0..4 {
            let before = consistent(&d, "c").await;
            let (a, b, c) = tokio::join!(
                async {
                    if round % 2 == 0 {
                        m.start_vserver("c").await
                    } else {
                        m.stop_vserver("c").await
                    }
                },
                async {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    if round % 2 == 0 {
                        m2.stop_vserver("c").await
                    } else {
                        m2.start_vserver("c").await
                    }
                },
                async {
                    tokio::time::sleep(Duration::from_millis(40)).await;
                    v.restart().await
                }
            );
            for r in [&a, &b, &c] {
                let o = outcome(r);
                assert!(["ok", BUSY, ALREADY, NOT_RUNNING].contains(&o.as_str()), "round {round}: {o}");
            }
            assert_eq!(outcome(&a), "ok", "round {round} from {before}: the first operation wins");
            assert_eq!(outcome(&b), BUSY, "round {round}");
            assert_eq!(outcome(&c), BUSY, "round {round}");
            let after = consistent(&d, "c").await;
            assert_eq!(after, if round % 2 == 0 { "running" } else { "stopped" });
        }

        // A burst from three clients in every order; the end state is whatever the last
        // successful operation made it, and consistent.
        let m3 = ManagerProxy::new(&connect(&bus.address).await).await.unwrap();
        for _ in 0..3 {
            let (a, b, c, e, f, g) = tokio::join!(
                m.start_vserver("c"),
                m2.stop_vserver("c"),
                m3.restart_vserver("c"),
                m.stop_vserver("c"),
                m2.start_vserver("c"),
                m3.start_vserver("c"),
            );
            let results = [a, b, c, e, f, g];
            for r in &results {
                let o = outcome(r);
                assert!(["ok", BUSY, ALREADY, NOT_RUNNING].contains(&o.as_str()), "{o}");
            }
            assert!(results.iter().any(|r| r.is_ok()), "one of them ran");
            d.state("c");
            consistent(&d, "c").await;
        }
        if d.state_of("c").await == "running" {
            d.state("c");
            m.stop_vserver("c").await.unwrap();
        }
        assert!(d.vserver_processes().is_empty());
    });
}

#[test]
fn a_stop_racing_a_restart_by_policy_ends_stopped() {
    require_root!();
    with_daemon("d-race-restart", async |d| {
        d.ctl_root("r");
        d.config("r", &format!("context = 802\n{CTL_INIT}restart = \"always\"\n[hooks]\npre_start = [\"/bin/sleep\", \"0.1\"]\n"));
        d.start().await;
        let m = d.manager().await;
        for _ in 0..3 {
            let _ = std::fs::remove_file(d.root_base.join("r/ctl"));
            m.start_vserver("r").await.unwrap();
            d.state("r");
            // pid 1 exits (the daemon restarts it) while stops keep coming.
            d.ctl("r", "exit 0");
            let deadline = Instant::now() + T;
            loop {
                let r = m.stop_vserver("r").await;
                d.state("r");
                match outcome(&r).as_str() {
                    "ok" => break,
                    BUSY | NOT_RUNNING => {}
                    o => panic!("stop: {o}"),
                }
                assert!(Instant::now() < deadline, "the stop never went through");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(consistent(&d, "r").await, "stopped", "{}", d.daemon_log());
        }
        assert!(d.vserver_processes().is_empty());
    });
}

