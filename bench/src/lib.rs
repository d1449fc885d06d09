//! What the benchmarks share: a scratch host (a private bus with the project's policy and a
//! vserverd on scratch directories), the host's memory counters, percentiles.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A binary built beside this one (`target/<triple>/release/NAME`).
pub fn target_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().expect("bin dir").join(name)
}

/// A file of the repository.
pub fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

pub fn bus_addr(dir: &Path) -> String {
    format!("unix:path={}", dir.join("bus").display())
}

/// VmRSS of `pid`, kB.
pub fn rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}


/// The host's memory counters (kB) that running vservers or containers move.
#[derive(Debug, Clone, Copy, Default)]
pub struct Meminfo {
    pub available: u64,
    pub slab: u64,
    pub page_tables: u64,
    pub kernel_stack: u64,
    pub percpu: u64,
    pub vmalloc: u64,
    pub shmem: u64,
}

pub fn meminfo() -> Meminfo {
    let s = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let get = |k: &str| -> u64 {
        s.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
    };
    Meminfo {
        available: get("MemAvailable:"),
        slab: get("Slab:"),
        page_tables: get("PageTables:"),
        kernel_stack: get("KernelStack:"),
        percpu: get("Percpu:"),
        vmalloc: get("VmallocUsed:"),
        shmem: get("Shmem:"),
    }
}

/// The counters once they stay still: the kernel frees what stopped vservers and containers
/// held (their network namespaces above all) in the background, for seconds. Before each read
/// it drops the dentries and inodes nothing uses (`drop_caches` = 2), what the rest of the
/// machine's work left in the slab; page cache and objects in use stay.
pub fn settled_meminfo() -> Meminfo {
    let moved = |a: &Meminfo, b: &Meminfo| a.slab.abs_diff(b.slab) + a.available.abs_diff(b.available) + a.vmalloc.abs_diff(b.vmalloc);
    let mut last = meminfo();
    for _ in 0..60 {
        std::thread::sleep(Duration::from_millis(500));
        let _ = std::fs::write("/proc/sys/vm/drop_caches", "2");
        let now = meminfo();
        if moved(&last, &now) < 512 {
            return now;
        }
        last = now;
    }
    last
}

/// Memory per running vserver (or container), kB.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct PerUnit {
    /// PSS of its processes.
    pub pss: u64,
    /// Slab, page tables, kernel stacks, per-cpu data.
    pub kernel: u64,
    /// Everything it holds: PSS, slab, page tables, per-cpu, shared memory (tmpfs), and vmalloc
    /// (which holds the kernel stacks where they are virtually mapped, as here).
    pub whole: u64,
    /// The drop of the host's MemAvailable.
    pub available: u64,
}

impl PerUnit {
    pub fn of(before: &Meminfo, after: &Meminfo, pss_total: u64, n: u32) -> PerUnit {
        let d = |f: fn(&Meminfo) -> u64| f(after).saturating_sub(f(before));
        let kernel = d(|m| m.slab) + d(|m| m.page_tables) + d(|m| m.kernel_stack) + d(|m| m.percpu);
        let whole = pss_total + d(|m| m.slab) + d(|m| m.page_tables) + d(|m| m.percpu) + d(|m| m.shmem) + d(|m| m.vmalloc).max(d(|m| m.kernel_stack));
        let n = n as u64;
        PerUnit { pss: pss_total / n, kernel: kernel / n, whole: whole / n, available: before.available.saturating_sub(after.available) / n }
    }
}

pub fn pss_kb(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("Pss:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

pub fn median(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.1), at(0.9))
}

pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}


/// A private bus and a vserverd on scratch directories (`etc/`, `run/` on a tmpfs as `/run` is,
/// `log/`, `roots/`), all stopped and removed on drop (every vserver stopped first).
pub struct Scratch {
    pub dir: PathBuf,
    bus: Option<Child>,
    daemon: Option<Child>,
}

impl Scratch {
    /// Makes the directories, starts the bus and the daemon, and waits for the daemon's name.
    pub fn start(name: &str) -> Scratch {
        Scratch::start_with(name, &[])
    }

    /// As [`Scratch::start`], the daemon given `extra` options too.
    pub fn start_with(name: &str, extra: &[&str]) -> Scratch {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut s = Scratch { dir: dir.clone(), bus: None, daemon: None };
        for d in [s.etc(), s.run(), s.log(), s.roots()] {
            std::fs::create_dir_all(d).unwrap();
        }
        // The run directory on a tmpfs, as /run is on a real host.
        let st = Command::new("mount").args(["-t", "tmpfs", "-o", "mode=0700,size=64m", "vserver-bench-run"]).arg(s.run()).status().expect("mount");
        assert!(st.success(), "cannot mount a tmpfs on the run directory");
        let conf = std::fs::read_to_string(repo_file("tests/bus/system-bus.conf.in"))
            .unwrap()
            .replace("@SOCKET@", &dir.join("bus").display().to_string())
            .replace("@POLICY@", &repo_file("systemd/org.vserverd.VServer1.conf").canonicalize().unwrap().display().to_string())
            .replace("@EXTRA@", "");
        std::fs::write(dir.join("bus.conf"), conf).unwrap();
        s.bus = Some(Command::new("dbus-daemon").arg(format!("--config-file={}", dir.join("bus.conf").display())).arg("--nofork").spawn().expect("dbus-daemon"));
        for _ in 0..100 {
            if dir.join("bus").exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        s.daemon = Some(
            Command::new(target_bin("vserverd"))
                .args(["--config-dir", &s.etc().display().to_string(), "--run-dir", &s.run().display().to_string()])
                .args(["--log-dir", &s.log().display().to_string(), "--root-base", &s.roots().display().to_string()])
                .args(extra)
                .env("DBUS_SYSTEM_BUS_ADDRESS", bus_addr(&dir))
                .env("VSERVERD_LOG", "warn")
                .spawn()
                .expect("vserverd"),
        );
        for _ in 0..200 {
            let ok = Command::new("busctl")
                .args([&format!("--address={}", bus_addr(&dir)), "status", "org.vserverd.VServer1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    pub fn etc(&self) -> PathBuf {
        self.dir.join("etc")
    }

    pub fn run(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("log")
    }

    pub fn roots(&self) -> PathBuf {
        self.dir.join("roots")
    }

    pub fn daemon_pid(&self) -> u32 {
        self.daemon.as_ref().expect("the daemon runs").id()
    }

    /// `vserverctl start NAME` until running, then `vserverctl stop NAME` until stopped: how long
    /// each took.
    pub fn start_stop(&self, name: &str) -> (Duration, Duration) {
        let t = std::time::Instant::now();
        self.vserverctl(&["start", name]);
        let start = t.elapsed();
        let t = std::time::Instant::now();
        self.vserverctl(&["stop", name]);
        (start, t.elapsed())
    }

    /// `vserverctl ARGS` on the scratch bus (the file verbs with the scratch directories);
    /// panics when it fails.
    pub fn vserverctl(&self, args: &[&str]) -> String {
        let mut cmd = Command::new(target_bin("vserverctl"));
        cmd.args(args).env("DBUS_SYSTEM_BUS_ADDRESS", bus_addr(&self.dir));
        if matches!(args.first(), Some(&"build") | Some(&"destroy")) {
            cmd.arg("--config-dir").arg(self.etc()).arg("--root-base").arg(self.roots()).arg("--run-dir").arg(self.run());
        }
        let out = cmd.stdin(Stdio::null()).output().expect("vserverctl");
        assert!(out.status.success(), "vserverctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(d) = &mut self.daemon {
            // Stop every vserver first (by the daemon), then the daemon and the bus.
            let _ = Command::new(target_bin("vserverctl")).args(["stop", "--all"]).env("DBUS_SYSTEM_BUS_ADDRESS", bus_addr(&self.dir)).output();
            let _ = d.kill();
            let _ = d.wait();
        }
        if let Some(b) = &mut self.bus {
            let _ = b.kill();
            let _ = b.wait();
        }
        let _ = Command::new("umount").arg(self.run()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A busybox-static root at `root`: `/bin/busybox` with `sh`, `true` and `sleep`, and the
/// directories a vserver mounts on.
pub fn busybox_root(root: &Path) {
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static (/bin/busybox)");
    for a in ["sh", "true", "sleep"] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(a));
    }
}

/// The PSS of `pid` and every process below it (kB).
pub fn pss_tree_kb(pid: i32) -> u64 {
    let mut total = 0;
    let mut todo = vec![pid];
    while let Some(p) = todo.pop() {
        total += pss_kb(p);
        let children = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        todo.extend(children.split_whitespace().filter_map(|c| c.parse::<i32>().ok()));
    }
    total
}
