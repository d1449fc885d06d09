//! Boot order: `StartOnboot` starts the `onboot` vservers by `priority` (lower first) and
//! `depends` (dependencies first, pulled forward when they have a later priority), independent
//! ones in parallel; a failure skips its dependents only. `StopAll` stops in the reverse order.

use std::fs;
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::{require_root, TestDir};

fn lines(path: &std::path::Path) -> Vec<String> {
    fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

/// Index of the first log line starting with `prefix`.
fn at(log: &[String], prefix: &str) -> usize {
    log.iter().position(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix:?} in the hook log:\n{}", log.join("\n")))
}

#[test]
fn start_onboot_follows_priorities_and_depends_and_stop_all_reverses_it() {
    require_root!();
    let t = TestDir::new("d-boot");
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        let log = t.path.join("hooks.log");
        let hooks = d.hooks_table(&log);
        // name, priority, depends, onboot, extra hooks
        let table: &[(&str, i32, &[&str], bool)] = &[
            ("a", 10, &[], true),
            ("a2", 10, &[], true),
            ("b", 20, &["c"], true),
            ("c", 30, &[], true),
            ("d", 20, &[], true),
            ("e", 1, &[], false),
            ("f", 40, &["g"], true),
            ("g", 5, &[], true),
            ("h", 50, &["f"], true),
            ("z", 40, &[], true),
        ];
        for (i, (name, priority, depends, onboot)) in table.iter().enumerate() {
            d.ctl_root(name);
            let deps: Vec<String> = depends.iter().map(|s| format!("\"{s}\"")).collect();
            let hooks = if *name == "g" { "[hooks]\npre_start = [\"/bin/false\"]\n".to_string() } else { hooks.clone() };
            d.config(
                name,
                &format!("context = {}\npriority = {priority}\ndepends = [{}]\nonboot = {onboot}\n{CTL_INIT}{hooks}", 701 + i, deps.join(", ")),
            );
        }
        // a and a2 (one wave) take 300 ms each in their pre-start: run in parallel, they overlap.
        for n in ["a", "a2"] {
            let p = d.config_dir.join(format!("{n}.sh"));
            fs::write(
                &p,
                format!("#!/bin/sh\nif [ \"$1\" = pre-start ]; then echo \"begin $2\" >> {l}; sleep 0.3; echo \"end $2\" >> {l}; fi\n", l = log.display()),
            )
            .unwrap();
            fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        }
        d.start().await;
        let m = d.manager().await;

        let reports = m.start_onboot().await.unwrap();
        let summary: Vec<(String, bool, String)> = reports.iter().map(|r| (r.name.clone(), r.ok, r.message.clone())).collect();
        let names: Vec<&str> = summary.iter().map(|r| r.0.as_str()).collect();
        assert_eq!(names, ["a", "a2", "b", "c", "d", "f", "g", "h", "z"], "e is not onboot: {summary:?}");
        for (name, ok, msg) in &summary {
            match name.as_str() {
                "f" => assert_eq!((*ok, msg.as_str()), (false, "not started: dependency g failed")),
                "h" => assert_eq!((*ok, msg.as_str()), (false, "not started: dependency f failed")),
                "g" => assert!(!ok && msg.contains("pre-start hook /bin/false"), "{msg}"),
                _ => assert_eq!((*ok, msg.as_str()), (true, "started"), "{name}"),
            }
        }
        for n in ["a", "a2", "b", "c", "d", "z"] {
            assert_eq!(d.state_of(n).await, "running", "{n}");
            d.state(n);
        }
        for n in ["e", "f", "h"] {
            assert_eq!(d.state_of(n).await, "stopped", "{n}");
        }

        let l = lines(&log);
        let pre = |n: &str| at(&l, &format!("hook pre-start start {n} "));
        let post = |n: &str| at(&l, &format!("hook post-start start {n} "));
        // The same priority in parallel.
        let (ba, ba2) = (at(&l, "begin a"), at(&l, "begin a2"));
        let first_end = at(&l, "end a");
        assert!(ba < first_end && ba2 < first_end, "a and a2 started together:\n{}", l.join("\n"));
        // Priorities: 10 (a, a2) before 20 (d) before the rest.
        assert!(post("a") < pre("d") && post("a2") < pre("d"));
        // b (20) needs c (30): c is pulled forward, just before b.
        assert!(post("d") < pre("c") && post("c") < pre("b"), "\n{}", l.join("\n"));
        // z (40) does not jump ahead of b (20): only what b needs is pulled forward.
        assert!(post("b") < pre("z"), "a higher priority started before a lower one:\n{}", l.join("\n"));

        // StopAll: the reverse, dependents before their dependencies.
        fs::write(&log, "").unwrap();
        let mut stopped = m.stop_all().await.unwrap();
        stopped.sort_by(|x, y| x.name.cmp(&y.name));
        let names: Vec<&str> = stopped.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a", "a2", "b", "c", "d", "z"]);
        assert!(stopped.iter().all(|r| r.ok), "{stopped:?}");
        let l = lines(&log);
        let pre = |n: &str| at(&l, &format!("hook pre-stop stop {n} "));
        let post = |n: &str| at(&l, &format!("hook post-stop stop {n} "));
        assert!(post("z") < pre("b"), "\n{}", l.join("\n"));
        assert!(post("b") < pre("c"), "b depends on c: stopped first\n{}", l.join("\n"));
        assert!(post("c") < pre("d") && post("d") < pre("a") && post("d") < pre("a2"), "\n{}", l.join("\n"));
        assert!(d.vserver_processes().is_empty());
        tokio::time::sleep(Duration::from_millis(1)).await;
    });
}
