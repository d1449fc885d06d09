//! Faults: what happens when parts of the host break under a running vserver, each behaviour
//! the documented one (docs/daemon.md, "Faults").
//!
//! - a monitor killed outright takes its vserver with it (running, booting, or while the daemon
//!   is down): every process ended, nothing left, the vserver failed with the reason;
//! - stops leave nothing whatever the guest did: cgroups nested below its own, processes frozen
//!   by a v1 freezer elsewhere or by its own v2 `cgroup.freeze`; a cgroup left by a crash is
//!   removed at the next start, or the start is refused naming the processes in it;
//! - a process stuck in D state on a hung FUSE mount fails the stop with a clear error, the
//!   daemon answering meanwhile, and the vserver ends once the mount is aborted;
//! - an unreadable state file is rebuilt from the context registry;
//! - the daemon closes the descriptors it inherits, exits non-zero when it loses the bus (a new
//!   one adopts everything), refuses to run beside another, and a panic in it is covered by the
//!   restart and the adoption;
//! - an `exec` that a stop overtakes says the vserver is stopping.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vserver_e2e::daemon::*;
use vserver_e2e::fuse::HungFuse;
use vserver_e2e::{require_root, TestDir};

const T: Duration = Duration::from_secs(15);

/// The cgroups of vserver `name` that exist, in every hierarchy.
fn cgroups(d: &TestDaemon, name: &str) -> Vec<PathBuf> {
    fs::read_dir("/sys/fs/cgroup").unwrap().flatten().map(|h| h.path().join(d.cgroup_parent()).join(name)).filter(|p| p.exists()).collect()
}

/// The v2 cgroup of vserver `name` (the hybrid's unified tree, or the root on a pure v2 host).
fn v2_cgroup(d: &TestDaemon, name: &str) -> PathBuf {
    let unified = Path::new("/sys/fs/cgroup/unified");
    let base = if unified.join("cgroup.procs").exists() { unified.to_path_buf() } else { PathBuf::from("/sys/fs/cgroup") };
    base.join(d.cgroup_parent()).join(name)
}

/// Nothing of vserver `name` is left: no process, no cgroup, no runtime directory, no
/// registry entry.
fn nothing_left(d: &TestDaemon, name: &str) {
    assert!(d.processes_of(name).is_empty(), "processes of {name}: {:?}", d.processes_of(name));
    assert!(cgroups(d, name).is_empty(), "cgroups of {name}: {:?}", cgroups(d, name));
    assert!(!d.run_dir.join(name).exists(), "the runtime directory of {name}");
    let entries: Vec<_> = vserver_engine::registry::list(&d.run_dir).into_iter().filter(|e| e.name == name).collect();
    assert!(entries.is_empty(), "registry entries of {name}: {entries:?}");
}

/// An rc vserver whose start command leaves a service (`sleep 1000`) and a grandchild
/// (`setsid sleep 1001`) behind.
fn rc_vserver(d: &TestDaemon, name: &str, context: u32) -> PathBuf {
    let root = d.root(name);
    d.script(&root, "/etc/init.d/rc", "sleep 1000 & setsid sh -c 'sleep 1001 &'; true");
    d.config(name, &format!("context = {context}\n[init]\ncommand = [\"/etc/init.d/rc\", \"3\"]\nstop = [\"/bin/true\"]\nstop_timeout = 1\n"));
    root
}

#[test]
fn a_monitor_killed_outright_takes_its_vserver_with_it() {
    require_root!();
    with_daemon("f-mon", async |d| {
        rc_vserver(&d, "m1", 701);
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("m1").await.unwrap();
        let st = d.state("m1").unwrap();
        eventually("its services run", T, || async { (d.processes_of("m1").len() >= 3).then_some(()) }).await;
        unsafe { libc::kill(st.monitor_pid, libc::SIGKILL) };
        d.wait_state("m1", "failed", T).await;
        let v = d.vserver("m1").await;
        assert_eq!(v.last_exit().await.unwrap(), "its monitor died; every process was killed");
        nothing_left(&d, "m1");
        // Fully manageable again: the same context number, a new run.
        m.start_vserver("m1").await.unwrap_or_else(|e| panic!("start again: {e}\n{}", d.daemon_log()));
        assert_eq!(d.state("m1").unwrap().context, 701);
        m.stop_vserver("m1").await.unwrap();
        nothing_left(&d, "m1");
    });
}

#[test]
fn a_monitor_killed_while_its_vserver_boots_fails_the_start_and_leaves_nothing() {
    require_root!();
    with_daemon("f-monboot", async |d| {
        let root = d.root("m2");
        d.script(&root, "/etc/init.d/rc", "sleep 1000 & while [ ! -e /go ]; do sleep 0.05; done");
        d.config("m2", "context = 702\n[init]\ncommand = [\"/etc/init.d/rc\", \"3\"]\nstop_timeout = 1\n");
        d.start().await;
        let m = d.manager().await;
        let (started, _) = tokio::join!(m.start_vserver("m2"), async {
            let st = eventually("booting", T, || async { d.state("m2").filter(|s| s.booting) }).await;
            unsafe { libc::kill(st.monitor_pid, libc::SIGKILL) };
        });
        let e = started.unwrap_err().to_string();
        assert!(e.contains("its monitor ended") && e.contains("every process of the vserver was ended"), "{e}");
        assert_eq!(d.state_of("m2").await, "failed");
        nothing_left(&d, "m2");
    });
}

#[test]
fn a_monitor_that_died_while_the_daemon_was_down_takes_its_vserver_with_it() {
    require_root!();
    with_daemon("f-mondown", async |d| {
        rc_vserver(&d, "m3", 703);
        d.start().await;
        d.manager().await.start_vserver("m3").await.unwrap();
        let st = d.state("m3").unwrap();
        d.sigkill();
        unsafe { libc::kill(st.monitor_pid, libc::SIGKILL) };
        d.start().await;
        let v = d.vserver("m3").await;
        assert_eq!(v.state().await.unwrap(), "failed");
        assert_eq!(v.last_exit().await.unwrap(), "its monitor died while the daemon was down; every process was killed");
        nothing_left(&d, "m3");
    });
}

#[test]
fn a_stop_ends_and_removes_cgroups_nested_below_the_vservers_own() {
    require_root!();
    with_daemon("f-nested", async |d| {
        rc_vserver(&d, "n1", 704);
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("n1").await.unwrap();
        // An agent on the host makes a cgroup inside the vserver's and moves a process there.
        let agent = v2_cgroup(&d, "n1").join("agent/deeper");
        fs::create_dir_all(&agent).unwrap();
        let service = eventually("the service runs", T, || async {
            d.processes_of("n1").into_iter().find(|p| fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default().contains("1000"))
        })
        .await;
        fs::write(agent.join("cgroup.procs"), service.to_string()).unwrap();
        m.stop_vserver("n1").await.unwrap_or_else(|e| panic!("stop: {e}\n{}", d.daemon_log()));
        nothing_left(&d, "n1");
        m.start_vserver("n1").await.unwrap_or_else(|e| panic!("start again: {e}\n{}", d.daemon_log()));
        m.stop_vserver("n1").await.unwrap();
        nothing_left(&d, "n1");
    });
}

#[test]
fn a_guest_frozen_by_a_v1_freezer_or_its_v2_cgroup_is_thawed_and_killed() {
    require_root!();
    let freezer = Path::new("/sys/fs/cgroup/freezer");
    with_daemon("f-frozen", async |d| {
        rc_vserver(&d, "z1", 705);
        d.start().await;
        let m = d.manager().await;
        // v1: its processes moved into a freezer cgroup of someone else's, and frozen.
        if freezer.join("cgroup.procs").exists() {
            m.start_vserver("z1").await.unwrap();
            let ice = freezer.join(format!("vserver-e2e-ice-{}", std::process::id()));
            fs::create_dir_all(&ice).unwrap();
            for p in d.processes_of("z1") {
                let _ = fs::write(ice.join("cgroup.procs"), p.to_string());
            }
            fs::write(ice.join("freezer.state"), "FROZEN").unwrap();
            let t0 = Instant::now();
            let stopped = m.stop_vserver("z1").await;
            let _ = fs::write(ice.join("freezer.state"), "THAWED");
            stopped.unwrap_or_else(|e| panic!("stop of a v1-frozen guest: {e}"));
            assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
            nothing_left(&d, "z1");
            let _ = fs::remove_dir(&ice);
        } else {
            eprintln!("no v1 freezer on this host: its case is not tried");
        }
        // v2: the vserver's own cgroup frozen.
        m.start_vserver("z1").await.unwrap();
        fs::write(v2_cgroup(&d, "z1").join("cgroup.freeze"), "1").unwrap();
        m.stop_vserver("z1").await.unwrap_or_else(|e| panic!("stop of a v2-frozen guest: {e}"));
        nothing_left(&d, "z1");
    });
}

#[test]
fn a_cgroup_left_by_a_crash_is_removed_or_named_by_the_next_start() {
    require_root!();
    with_daemon("f-stale", async |d| {
        rc_vserver(&d, "s1", 706);
        d.start().await;
        let m = d.manager().await;
        // Empty leftovers (a tree of them): removed, the start goes on.
        let stale = v2_cgroup(&d, "s1");
        fs::create_dir_all(stale.join("guest/init.scope")).unwrap();
        m.start_vserver("s1").await.unwrap_or_else(|e| panic!("start over empty leftovers: {e}\n{}", d.daemon_log()));
        assert!(!stale.join("guest").exists(), "the leftovers were removed");
        m.stop_vserver("s1").await.unwrap();
        // A leftover with a process in it: refused, naming the cgroup and the process.
        fs::create_dir_all(stale.join("leftover")).unwrap();
        let mut intruder = std::process::Command::new("sleep").arg("1000").spawn().unwrap();
        fs::write(stale.join("leftover/cgroup.procs"), intruder.id().to_string()).unwrap();
        let e = m.start_vserver("s1").await.unwrap_err().to_string();
        assert!(e.contains(&stale.display().to_string()) && e.contains(&intruder.id().to_string()), "{e}");
        assert!(d.state("s1").is_none(), "nothing was started");
        intruder.kill().unwrap();
        intruder.wait().unwrap();
        m.start_vserver("s1").await.unwrap_or_else(|e| panic!("start once the intruder is gone: {e}"));
        m.stop_vserver("s1").await.unwrap();
        nothing_left(&d, "s1");
    });
}

#[test]
fn a_process_stuck_on_a_hung_fuse_mount_fails_the_stop_clearly() {
    require_root!();
    if vserver_e2e::userns_mode() {
        // The FUSE mount (the host root's, without allow_other) refuses every other user at
        // once, root of a user namespace among them: nothing inside can hang on it.
        eprintln!("in a user namespace: not tried");
        return;
    }
    if !Path::new("/dev/fuse").exists() {
        eprintln!("no /dev/fuse: not tried");
        return;
    }
    let t = TestDir::new("f-fuse");
    let bus = TestBus::start();
    let mnt = t.path.join("fuse");
    fs::create_dir_all(&mnt).unwrap();
    let mut fuse = HungFuse::mount(&mnt);
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        let root = d.root("h1");
        d.script(&root, "/etc/init.d/rc", "sleep 1000 & ls /mnt/fuse/hang > /dev/null 2>&1 &");
        d.config(
            "h1",
            &format!(
                "context = 707\n[init]\ncommand = [\"/etc/init.d/rc\", \"3\"]\nstop = [\"/bin/true\"]\nstop_timeout = 1\n[[mounts]]\nsource = {:?}\ntarget = \"/mnt/fuse\"\n",
                mnt.display().to_string()
            ),
        );
        rc_vserver(&d, "other", 708);
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("other").await.unwrap();
        m.start_vserver("h1").await.unwrap();
        eventually("a lookup hangs", T, || async { (fuse.hung_lookups() > 0).then_some(()) }).await;
        let address = d.address.clone();
        let stop = tokio::spawn(async move { ManagerProxy::new(&connect(&address).await).await.unwrap().stop_vserver("h1").await });
        // The daemon answers meanwhile, and the other vserver is untouched.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let t0 = Instant::now();
        assert_eq!(d.state_of("other").await, "running");
        assert!(t0.elapsed() < Duration::from_secs(1), "the daemon was blocked: {:?}", t0.elapsed());
        let e = stop.await.unwrap().unwrap_err().to_string();
        assert!(e.contains("survived SIGKILL") && e.contains("ls (D") && e.contains("uninterruptible"), "{e}");
        let v = d.vserver("h1").await;
        assert_eq!(v.state().await.unwrap(), "failed");
        // Still reachable: kill finds it, a start is refused while its processes are there.
        m.kill_vserver("h1", "all", libc::SIGKILL).await.unwrap();
        let again = m.start_vserver("h1").await.unwrap_err().to_string();
        assert!(again.contains("still has processes of its last run"), "{again}");
        // The mount is aborted: the lookup fails, the process ends, and so does the vserver.
        fuse.abort();
        d.wait_state("h1", "stopped", T).await;
        nothing_left(&d, "h1");
        m.stop_vserver("other").await.unwrap();
    });
    drop(fuse);
}

#[test]
fn an_unreadable_state_file_is_rebuilt_from_the_registry() {
    require_root!();
    with_daemon("f-state", async |d| {
        rc_vserver(&d, "u1", 709);
        d.start().await;
        d.manager().await.start_vserver("u1").await.unwrap();
        let st = d.state("u1").unwrap();
        d.sigkill();
        let path = d.run_dir.join("u1/state.json");
        fs::write(&path, "{ garbage").unwrap();
        d.start().await;
        let v = d.vserver("u1").await;
        assert_eq!(v.state().await.unwrap(), "running");
        assert_eq!(v.leader().await.unwrap(), st.pid as u32);
        assert!(d.daemon_log().contains(&path.display().to_string()), "the log names the file:\n{}", d.daemon_log());
        assert_eq!(vserver_config::run::read_state(&d.run_dir, "u1").map(|s| s.pid), Some(st.pid), "the state file is written again");
        d.manager().await.stop_vserver("u1").await.unwrap_or_else(|e| panic!("stop: {e}\n{}", d.daemon_log()));
        nothing_left(&d, "u1");
    });
}

/// The descriptors `pid` holds, as `N -> TARGET`.
fn fds(pid: i32) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| rd.flatten().map(|e| format!("{} -> {}", e.file_name().to_string_lossy(), fs::read_link(e.path()).map(|p| p.display().to_string()).unwrap_or_default())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn the_daemon_closes_the_descriptors_it_inherits() {
    require_root!();
    let t = TestDir::new("f-fds");
    let bus = TestBus::start();
    let stray = t.path.join("stray-file");
    fs::write(&stray, "x").unwrap();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        rc_vserver(&d, "fd1", 710);
        d.wrapper = Some(format!("exec 7<{0} 9<{0}; exec \"$0\" \"$@\"", stray.display()));
        d.start().await;
        d.manager().await.start_vserver("fd1").await.unwrap();
        let st = d.state("fd1").unwrap();
        for (who, pid) in [("the daemon", d.pid()), ("a monitor", st.monitor_pid), ("pid 1", st.pid)] {
            let held = fds(pid);
            assert!(!held.iter().any(|f| f.contains("stray-file")), "{who} holds an inherited descriptor: {held:?}");
        }
        // The control: without closing, a shell started that way holds them.
        let out = std::process::Command::new("sh").arg("-c").arg(format!("exec 7<{0} 9<{0}; ls -l /proc/self/fd", stray.display())).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("stray-file"));
        d.manager().await.stop_vserver("fd1").await.unwrap();
    });
}

#[test]
fn a_daemon_that_loses_the_bus_exits_and_the_next_one_adopts_everything() {
    require_root!();
    let t = TestDir::new("f-bus");
    let mut bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        rc_vserver(&d, "b1", 711);
        d.start().await;
        d.manager().await.start_vserver("b1").await.unwrap();
        let st = d.state("b1").unwrap();
        bus.restart();
        let t0 = Instant::now();
        let ended = d.wait_exit(Duration::from_secs(5)).expect("the daemon exits when its bus goes");
        assert!(!ended.success(), "a non-zero exit (for Restart=on-failure): {ended}");
        assert!(d.daemon_log().contains("the connection to the system bus is lost"), "{}", d.daemon_log());
        eprintln!("exited {:?} after the bus went", t0.elapsed());
        // As the service manager would: a new daemon, which answers and adopts.
        d.start().await;
        assert_eq!(d.summary("b1").await.leader, st.pid as u32);
        assert_eq!(d.state("b1").unwrap().start_time, st.start_time, "the same run, untouched");
        d.manager().await.stop_vserver("b1").await.unwrap();
        nothing_left(&d, "b1");
    });
}

#[test]
fn a_second_daemon_on_the_same_bus_is_refused() {
    require_root!();
    let t = TestDir::new("f-twice");
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        d.start().await;
        let out = std::process::Command::new(bin("vserverd"))
            .arg("--config-dir")
            .arg(&d.config_dir)
            .arg("--run-dir")
            .arg(t.path.join("second-run"))
            .args(["--cgroup-parent", "vservers-e2e-second"])
            .env("DBUS_SYSTEM_BUS_ADDRESS", &d.address)
            .env_remove("NOTIFY_SOCKET")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains("org.vserverd.VServer1 is owned already"), "{err}");
        assert!(d.is_running(), "the first daemon is untouched");
    });
}

#[test]
fn a_panic_in_the_daemon_is_covered_by_its_restart_and_the_adoption() {
    require_root!();
    with_daemon("f-panic", async |d| {
        rc_vserver(&d, "p1", 712);
        rc_vserver(&d, "p2", 713);
        // The daemon panics in p1's start (a test-only trigger, in debug builds only).
        d.wrapper = Some("VSERVERD_TEST_PANIC_AFTER_START=p1 exec \"$0\" \"$@\"".into());
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("p2").await.unwrap();
        let p2 = d.state("p2").unwrap();
        assert!(m.start_vserver("p1").await.is_err(), "the caller hears of it");
        let ended = d.wait_exit(Duration::from_secs(5)).expect("the daemon ends at a panic");
        assert_eq!(ended.code(), Some(101), "{}", d.daemon_log());
        assert!(d.daemon_log().contains("test-only panic after the start of p1"));
        d.wrapper = None;
        d.start().await;
        let m = d.manager().await;
        assert_eq!(d.state_of("p1").await, "running", "p1 runs on and is adopted");
        assert_eq!(d.summary("p2").await.leader, p2.pid as u32, "p2 never noticed");
        for n in ["p1", "p2"] {
            m.stop_vserver(n).await.unwrap();
            nothing_left(&d, n);
        }
    });
}

#[test]
fn an_exec_that_a_stop_overtakes_says_the_vserver_is_stopping() {
    require_root!();
    with_daemon("f-race", async |d| {
        rc_vserver(&d, "r1", 714);
        d.start().await;
        let m = d.manager().await;
        for _ in 0..15 {
            m.start_vserver("r1").await.unwrap();
            let ctl = bin("vserverctl");
            let address = d.address.clone();
            let exec = tokio::task::spawn_blocking(move || {
                std::process::Command::new(ctl).args(["exec", "r1", "--", "true"]).env("DBUS_SYSTEM_BUS_ADDRESS", address).output().unwrap()
            });
            let _ = m.stop_vserver("r1").await;
            let out = exec.await.unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() || err.contains("r1 is stopping") || err.contains("r1 is stopped") || err.contains("r1 is starting"), "{err}");
            assert!(!err.contains("ENOMEM") && !err.contains("step join"), "{err}");
        }
        nothing_left(&d, "r1");
    });
}

/// `WatchdogSec=`: the daemon's loop says WATCHDOG=1 at half the interval systemd gives it, and
/// stops saying it when the loop hangs (here: the daemon stopped by SIGSTOP), which is what gets
/// it restarted. Not asked for (no WATCHDOG_USEC, or WATCHDOG_PID another process's), it says
/// nothing (the controls). `Reload` tells the manager it is reloading, then ready again.
#[test]
fn the_daemon_pings_the_watchdog_from_its_loop_when_asked() {
    require_root!();
    use std::os::unix::net::UnixDatagram;
    with_daemon("f-watchdog", async |d| {
        let socket_path = d.log_dir.parent().unwrap().join("notify.sock");
        let sock = UnixDatagram::bind(&socket_path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        let drain = |sock: &UnixDatagram, within: Duration| -> Vec<String> {
            let mut got = Vec::new();
            let until = Instant::now() + within;
            let mut buf = [0u8; 512];
            while Instant::now() < until {
                if let Ok(n) = sock.recv(&mut buf) {
                    got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
            got
        };
        let pings = |got: &[String]| got.iter().filter(|m| m.as_str() == "WATCHDOG=1").count();
        let wrapper = |env: &str| Some(format!("NOTIFY_SOCKET={} {env} exec \"$0\" \"$@\"", socket_path.display()));

        d.wrapper = wrapper("WATCHDOG_USEC=200000");
        d.start().await;
        let got = drain(&sock, Duration::from_millis(1000));
        assert!(got.iter().any(|m| m.starts_with("READY=1")), "{got:?}");
        // Every 100 ms: about 10 in a second (a loaded machine may delay a few).
        assert!(pings(&got) >= 5, "{got:?}");
        let m = d.manager().await;
        m.reload().await.unwrap();
        let got = drain(&sock, Duration::from_millis(300));
        let reloading = got.iter().position(|m| m.starts_with("RELOADING=1")).unwrap_or_else(|| panic!("{got:?}"));
        assert!(got[reloading..].iter().any(|m| m.starts_with("READY=1")), "ready again after the reload: {got:?}");
        // A hung loop says nothing.
        let pid = nix::unistd::Pid::from_raw(d.pid());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
        let _ = drain(&sock, Duration::from_millis(200));
        let got = drain(&sock, Duration::from_millis(600));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
        assert_eq!(pings(&got), 0, "a stopped daemon pinged: {got:?}");
        d.terminate();

        for env in ["", "WATCHDOG_USEC=200000 WATCHDOG_PID=1"] {
            // What the last daemon said on its way out is not this one's.
            let _ = drain(&sock, Duration::from_millis(200));
            d.wrapper = wrapper(env);
            d.start().await;
            let got = drain(&sock, Duration::from_millis(800));
            assert!(got.iter().any(|m| m.starts_with("READY=1")), "{env}: {got:?}");
            assert_eq!(pings(&got), 0, "{env}: {got:?}");
            d.terminate();
        }
        d.wrapper = None;
    });
}
