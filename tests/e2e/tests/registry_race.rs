//! Concurrent claims of one context number: exactly one may win, also when a stale entry
//! (its pid gone) holds the number.

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vserver_e2e::*;

/// Starts `n` racers for `context` at the same instant; returns how many won.
fn race(t: &TestDir, context: u32, n: usize, stale: bool) -> usize {
    let contexts = t.run_dir().join("contexts");
    std::fs::create_dir_all(&contexts).unwrap();
    let _ = std::fs::remove_file(contexts.join(context.to_string()));
    if stale {
        // pid 2^22 + 1 is above pid_max's default ceiling: it never lives.
        let body = r#"{"name":"stale","pid":4194305,"start_time":1,"owner_pid":4194305,"owner_start_time":1,"flags":{"lock":false,"private":false,"nproc":false,"sched":false},"caps":0,"own_network":false}"#;
        std::fs::write(contexts.join(context.to_string()), body).unwrap();
        assert!(vserver_engine::registry::lookup(&t.run_dir(), context).is_none());
    }
    let at = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + Duration::from_millis(60);
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_registry-race"))
                .arg(t.run_dir())
                .arg(context.to_string())
                .arg(at.as_nanos().to_string())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<String> =
        children.into_iter().map(|c| String::from_utf8_lossy(&c.wait_with_output().unwrap().stdout).into_owned()).collect();
    outs.iter().filter(|o| o.starts_with("ok")).count()
}

#[test]
fn one_winner_for_a_free_number() {
    let t = test_dir!("race-free");
    for round in 0..3 {
        assert_eq!(race(&t, 600, 4, false), 1, "round {round}");
    }
}

#[test]
fn one_winner_for_a_number_held_by_a_stale_entry() {
    let t = test_dir!("race-stale");
    let rounds: Vec<usize> = (0..10).map(|_| race(&t, 601, 8, true)).collect();
    eprintln!("winners per round: {rounds:?}");
    assert!(rounds.iter().all(|w| *w == 1), "winners per round {rounds:?}: several racers believe they own context 601");
}
