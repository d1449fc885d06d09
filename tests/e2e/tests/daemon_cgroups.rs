//! Each vserver in its own cgroup (this host's hybrid layout: controllers on v1, membership and
//! cgroup.kill on the unified v2 tree): limits written, pid 1 inside before it runs anything,
//! zero survivors at stop even under a fork loop, cgroups removed; the spectator view (stat, ps,
//! vkill) over D-Bus.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vserver_e2e::daemon::*;
use vserver_e2e::require_root;

const T: Duration = Duration::from_secs(10);

fn cg(hierarchy: &str, parent: &str, name: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup").join(hierarchy).join(parent).join(name)
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).trim().to_string()
}

#[test]
fn limits_are_written_and_pid_1_is_in_the_cgroup_before_it_runs() {
    require_root!();
    with_daemon("cg-limits", async |d| {
        let root = d.root("lim");
        d.config(
            "lim",
            "context = 301\n[init]\ncommand = [\"/bin/sh\", \"-c\", \"cat /proc/1/cgroup > /tmp/cg1; sleep 1000 &\"]\nstop_timeout = 2\n\
             [limits]\nprocesses = 64\nmemory = \"64M\"\ncpu_weight = 50\ncpu_quota = \"50%\"\n",
        );
        d.start().await;
        let parent = d.cgroup_parent();
        let m = d.manager().await;
        m.start_vserver("lim").await.unwrap_or_else(|e| panic!("start: {e}\n{}", d.daemon_log()));
        let leader = d.vserver("lim").await.leader().await.unwrap() as i32;

        assert_eq!(read(&cg("pids", &parent, "lim").join("pids.max")), "64");
        assert_eq!(read(&cg("memory", &parent, "lim").join("memory.limit_in_bytes")), (64u64 << 20).to_string());
        assert_eq!(read(&cg("cpu", &parent, "lim").join("cpu.shares")), "512");
        assert_eq!(read(&cg("cpu", &parent, "lim").join("cpu.cfs_quota_us")), "50000");
        let members = read(&cg("unified", &parent, "lim").join("cgroup.procs"));
        assert!(members.lines().any(|l| l == leader.to_string()), "pid 1 {leader} not in the v2 cgroup: {members}");
        // Seen from inside: pid 1 was in its cgroup when the start command looked.
        let seen = eventually("the start command ran", T, || async {
            fs::read_to_string(root.join("tmp/cg1")).ok().filter(|s| s.contains("0::"))
        })
        .await;
        assert!(seen.contains(&format!("0::/{parent}/lim")), "pid 1's cgroup from inside: {seen}");
        assert!(seen.contains(&format!("pids:/{parent}/lim")), "pid 1's cgroup from inside: {seen}");

        m.stop_vserver("lim").await.unwrap();
        for h in ["unified", "pids", "memory", "cpu", "cpuacct", "cpuset", "freezer", "blkio"] {
            assert!(!cg(h, &parent, "lim").exists(), "{h} cgroup left after stop");
            assert!(!Path::new("/sys/fs/cgroup").join(h).join(&parent).exists(), "{h} parent left after the last vserver");
        }
    });
}

#[test]
fn a_fork_loop_is_killed_to_the_last_process_within_the_timeout() {
    require_root!();
    with_daemon("cg-bomb", async |d| {
        d.root("bomb");
        // pid 1 ignores SIGTERM, and a shell keeps forking sleepers (double-forked, setsid'd).
        d.config(
            "bomb",
            "context = 302\nflags = [\"fakeinit\"]\n[init]\n\
             command = [\"/bin/sh\", \"-c\", \"trap '' TERM; while :; do setsid sh -c 'sleep 1000 &' ; done\"]\n\
             stop_timeout = 1\n[limits]\nprocesses = 400\n",
        );
        d.start().await;
        let parent = d.cgroup_parent();
        let m = d.manager().await;
        m.start_vserver("bomb").await.unwrap_or_else(|e| panic!("start: {e}\n{}", d.daemon_log()));
        // Its own init (fakeinit): pid 1 lives in the guest's cgroup, below the vserver's own.
        let procs = cg("unified", &parent, "bomb").join("guest/cgroup.procs");
        eventually("the fork loop has made processes", T, || async { (read(&procs).lines().count() > 20).then_some(()) }).await;

        let t0 = Instant::now();
        m.stop_vserver("bomb").await.unwrap_or_else(|e| panic!("stop: {e}\n{}", d.daemon_log()));
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(6), "the stop took {took:?}");
        assert!(!cg("unified", &parent, "bomb").exists(), "the cgroup is gone, so it was empty");
        assert!(d.processes_of("bomb").is_empty(), "survivors: {:?}", d.processes_of("bomb"));
    });
}

#[test]
fn stat_ps_and_vkill_see_and_act_on_the_vservers_processes() {
    require_root!();
    with_daemon("cg-spect", async |d| {
        d.root("spec");
        d.config(
            "spec",
            "context = 303\n[init]\ncommand = [\"/bin/sh\", \"-c\", \"sleep 1001 & sleep 1002 &\"]\nstop_timeout = 2\n",
        );
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("spec").await.unwrap_or_else(|e| panic!("start: {e}\n{}", d.daemon_log()));
        let leader = d.vserver("spec").await.leader().await.unwrap();

        let stats = eventually("two sleepers run", T, || async {
            let s = m.list_stats().await.unwrap().into_iter().find(|s| s.name == "spec")?;
            (s.processes >= 3).then_some(s)
        })
        .await;
        assert_eq!(stats.context, 303);
        assert!(stats.rss > 0 && stats.vsz > 0, "{stats:?}");
        assert!(stats.uptime_usec > 0);

        let mine = m.list_processes("spec").await.unwrap();
        assert!(mine.iter().all(|p| p.vserver == "spec"), "{mine:?}");
        let init = mine.iter().find(|p| p.pid == leader).expect("pid 1 is listed");
        assert_eq!(init.vpid, 1);
        // pid 1 (vserver-init) shows the start command among its arguments: the sleeper is the
        // process whose command is `sleep 1001`.
        let sleeper = mine.iter().find(|p| p.command.starts_with("sleep 1001")).unwrap_or_else(|| panic!("the sleeper: {mine:?}"));
        assert!(sleeper.vpid > 1 && sleeper.vpid != sleeper.pid);

        let all = m.list_processes("").await.unwrap();
        let me = std::process::id();
        assert!(all.iter().any(|p| p.pid == me && p.vserver.is_empty()), "the host's own processes show as the host");
        assert!(all.iter().any(|p| p.pid == sleeper.pid && p.vserver == "spec"));

        // vkill by the pid the vserver sees, and refused for a pid that is not the vserver's.
        m.kill_process("spec", sleeper.vpid, true, libc::SIGKILL).await.unwrap();
        eventually("the sleeper is gone", T, || async { (!Path::new(&format!("/proc/{}", sleeper.pid)).exists()).then_some(()) }).await;
        let other = m.kill_process("spec", me, false, 0).await;
        assert_eq!(outcome(&other), "org.freedesktop.DBus.Error.InvalidArgs");
        let other = sleeper.pid; // gone now
        assert!(m.kill_process("spec", other, false, 0).await.is_err());

        m.stop_vserver("spec").await.unwrap();
        assert!(m.list_stats().await.unwrap().iter().all(|s| s.name != "spec"), "a stopped vserver has no figures");
    });
}
