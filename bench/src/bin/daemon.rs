//! Daemon benchmark: `vserverctl start` until the vserver runs and `vserverctl stop`, on a busybox
//! vserver, against `crun run` of the same root in the same run; the daemon's RSS idle and with
//! 100 vservers running; host memory per running vserver (monitor included), and per `crun run
//! -d` container by the same measure.
//!
//! ```text
//! cargo build --release --workspace --bins && cargo run --release -p vserver-bench --bin vserver-bench-daemon -- [RUNS] [VSERVERS]
//! ```
//! Needs root, busybox-static, dbus and crun (`apt-get install crun`). Starts its own private
//! bus and daemon on scratch directories; touches nothing of the host's but its caches (unused
//! dentries and inodes are dropped before each memory measure).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn target_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    exe.parent().expect("bin dir").join(name)
}

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

struct Scratch {
    dir: PathBuf,
    bus: Option<Child>,
    daemon: Option<Child>,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let unmount = |s: &Self| {
            let _ = Command::new("umount").arg(s.dir.join("run")).status();
        };
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
        unmount(self);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn bus_addr(dir: &Path) -> String {
    format!("unix:path={}", dir.join("bus").display())
}

fn make_root(root: &Path) {
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static (/bin/busybox)");
    for a in ["sh", "true", "sleep"] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(a));
    }
}

fn write_config(etc: &Path, name: &str, root: &Path, context: u32) {
    let body = format!(
        "root = {root:?}\ncontext = {context}\n[init]\ncommand = [\"/bin/true\"]\nstop_timeout = 5\n[network]\nmode = \"none\"\n",
        root = root.display().to_string()
    );
    std::fs::write(etc.join(format!("{name}.toml")), body).unwrap();
}

fn vserverctl(dir: &Path, args: &[&str]) {
    let out = Command::new(target_bin("vserverctl")).args(args).env("DBUS_SYSTEM_BUS_ADDRESS", bus_addr(dir)).output().expect("vserverctl");
    assert!(out.status.success(), "vserverctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

/// Two batches of `n` containers running `sleep` (`crun run -d`), measured as the vservers'
/// batches are; every container made is deleted, also when one fails to start (then None).
fn crun_memory(bundle: &Path, n: u32) -> Option<[PerUnit; 2]> {
    let mut made = Vec::new();
    let mut measure = || -> Option<[PerUnit; 2]> {
        let mut rows = Vec::new();
        for batch in 0..2 {
            let before = settled_meminfo();
            let names: Vec<String> = (batch * n..(batch + 1) * n).map(|i| format!("benchmem{i}")).collect();
            for name in &names {
                made.push(name.clone());
                let st = Command::new("crun").args(["run", "-d", "--bundle"]).arg(bundle).arg(name).stdin(Stdio::null()).stdout(Stdio::null()).status();
                if !st.map(|s| s.success()).unwrap_or(false) {
                    eprintln!("crun run -d {name} failed");
                    return None;
                }
            }
            let after = settled_meminfo();
            let mut pss = 0;
            for name in &names {
                let out = Command::new("crun").args(["state", name]).output().map(|o| o.stdout).unwrap_or_default();
                let pid = serde_json::from_slice::<serde_json::Value>(&out).ok().and_then(|v| v["pid"].as_i64()).unwrap_or(0);
                pss += pss_kb(pid as i32);
            }
            rows.push(PerUnit::of(&before, &after, pss, n));
        }
        Some([rows[0], rows[1]])
    };
    let rows = measure();
    for name in &made {
        let _ = Command::new("crun").args(["delete", "-f", name]).stdout(Stdio::null()).stderr(Stdio::null()).status();
    }
    rows
}

/// The host's memory counters (kB) that running vservers or containers move.
#[derive(Debug, Clone, Copy, Default)]
struct Meminfo {
    available: u64,
    slab: u64,
    page_tables: u64,
    kernel_stack: u64,
    percpu: u64,
    vmalloc: u64,
    shmem: u64,
}

fn meminfo() -> Meminfo {
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
fn settled_meminfo() -> Meminfo {
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
struct PerUnit {
    /// PSS of its processes.
    pss: u64,
    /// Slab, page tables, kernel stacks, per-cpu data.
    kernel: u64,
    /// Everything it holds: PSS, slab, page tables, per-cpu, shared memory (tmpfs), and vmalloc
    /// (which holds the kernel stacks where they are virtually mapped, as here).
    whole: u64,
    /// The drop of the host's MemAvailable.
    available: u64,
}

impl PerUnit {
    fn of(before: &Meminfo, after: &Meminfo, pss_total: u64, n: u32) -> PerUnit {
        let d = |f: fn(&Meminfo) -> u64| f(after).saturating_sub(f(before));
        let kernel = d(|m| m.slab) + d(|m| m.page_tables) + d(|m| m.kernel_stack) + d(|m| m.percpu);
        let whole = pss_total + d(|m| m.slab) + d(|m| m.page_tables) + d(|m| m.percpu) + d(|m| m.shmem) + d(|m| m.vmalloc).max(d(|m| m.kernel_stack));
        let n = n as u64;
        PerUnit { pss: pss_total / n, kernel: kernel / n, whole: whole / n, available: before.available.saturating_sub(after.available) / n }
    }
}

fn pss_kb(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("Pss:")).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.1), at(0.9))
}

fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// A crun runner in a private mount namespace (crun refuses this machine's hybrid cgroups
/// unless the empty v2 tree is unmounted, which only a namespace of its own may do): a re-exec
/// of this binary that runs `crun run` once per line it reads and answers with the time taken,
/// so that crun and vserverctl take turns and see the same machine.
struct Crun {
    child: Child,
    out: std::io::BufReader<std::process::ChildStdout>,
}

impl Crun {
    fn start(root: &Path) -> Option<Crun> {
        if Command::new("crun").arg("--version").output().is_err() {
            return None;
        }
        let mut child = Command::new("unshare")
            .args(["--mount", "--propagation", "private"])
            .arg(std::env::current_exe().unwrap())
            .args(["--crun-inner", &root.display().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let out = std::io::BufReader::new(child.stdout.take()?);
        Some(Crun { child, out })
    }

    /// One `crun run`, timed inside the namespace.
    fn run(&mut self) -> Option<Duration> {
        use std::io::{BufRead, Write};
        writeln!(self.child.stdin.as_mut()?, "run").ok()?;
        let mut line = String::new();
        self.out.read_line(&mut line).ok()?;
        line.trim().parse::<u64>().ok().map(Duration::from_nanos)
    }

    /// Two batches of `n` containers running `sleep`, measured as the vservers are (see
    /// `crun_memory`).
    fn memory(&mut self, n: u32) -> Option<[PerUnit; 2]> {
        use std::io::{BufRead, Write};
        writeln!(self.child.stdin.as_mut()?, "mem {n}").ok()?;
        let mut line = String::new();
        self.out.read_line(&mut line).ok()?;
        serde_json::from_str(line.trim()).ok()?
    }
}

impl Drop for Crun {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn crun_inner(root: &str) {
    use std::io::BufRead;
    let _ = Command::new("umount").arg("/sys/fs/cgroup/unified").status();
    let bundle = std::env::temp_dir().join(format!("vserver-bench-crun-{}", std::process::id()));
    std::fs::create_dir_all(&bundle).unwrap();
    let st = Command::new("crun").arg("spec").current_dir(&bundle).status().unwrap();
    assert!(st.success());
    let spec = std::fs::read_to_string(bundle.join("config.json")).unwrap();
    let spec = spec
        .replace("\"terminal\": true", "\"terminal\": false")
        .replace("\"path\": \"rootfs\"", &format!("\"path\": {root:?}"))
        .replace("\"readonly\": true", "\"readonly\": false")
        .replace("\"sh\"", "\"/bin/true\"");
    std::fs::write(bundle.join("config.json"), &spec).unwrap();
    // The same container running `sleep`, for the memory measure.
    let sleeper = bundle.join("sleep");
    std::fs::create_dir_all(&sleeper).unwrap();
    std::fs::write(sleeper.join("config.json"), spec.replace("\"/bin/true\"", "\"/bin/sleep\", \"100000\"")).unwrap();
    for (i, line) in std::io::stdin().lock().lines().map_while(Result::ok).enumerate() {
        if let Some(n) = line.strip_prefix("mem ").and_then(|n| n.parse::<u32>().ok()) {
            println!("{}", serde_json::to_string(&crun_memory(&sleeper, n)).unwrap());
            continue;
        }
        let t = Instant::now();
        let st = Command::new("crun").args(["run", "--bundle"]).arg(&bundle).arg(format!("bench{i}")).stdin(Stdio::null()).stdout(Stdio::null()).status().unwrap();
        let d = t.elapsed();
        assert!(st.success(), "crun run failed");
        println!("{}", d.as_nanos());
    }
    let _ = std::fs::remove_dir_all(&bundle);
}

/// Runs of each tool in a block, back to back; the first of a block is not timed.
const BLOCK: usize = 10;

/// `runs` timed starts and stops of the vserver `bench` and `runs` timed crun runs (after 5 of
/// each untimed). Back to back: blocks of `BLOCK` runs of one tool, then of the other, in turn
/// (each block's first run untimed), so that both see the VM at the same speed, which drifts
/// over a minute. Apart: the tools take turns, each run after a pause.
fn timings(dir: &Path, root: &Path, runs: usize, apart: bool) -> (Vec<Duration>, Vec<Duration>, Vec<Duration>) {
    let mut crun = Crun::start(root);
    let (mut starts, mut stops, mut cruns) = (Vec::new(), Vec::new(), Vec::new());
    let ours = |timed: bool, starts: &mut Vec<Duration>, stops: &mut Vec<Duration>| {
        let t = Instant::now();
        vserverctl(dir, &["start", "bench"]);
        let a = t.elapsed();
        let t = Instant::now();
        vserverctl(dir, &["stop", "bench"]);
        let b = t.elapsed();
        if timed {
            starts.push(a);
            stops.push(b);
        }
    };
    for _ in 0..5 {
        ours(false, &mut starts, &mut stops);
        crun.as_mut().and_then(Crun::run);
    }
    if apart {
        for _ in 0..runs {
            std::thread::sleep(Duration::from_millis(30));
            ours(true, &mut starts, &mut stops);
            std::thread::sleep(Duration::from_millis(30));
            cruns.extend(crun.as_mut().and_then(Crun::run));
        }
    } else {
        for _ in 0..runs.div_ceil(BLOCK) {
            for i in 0..=BLOCK {
                ours(i > 0, &mut starts, &mut stops);
            }
            for i in 0..=BLOCK {
                let c = crun.as_mut().and_then(Crun::run);
                if i > 0 {
                    cruns.extend(c);
                }
            }
        }
    }
    (starts, stops, cruns)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--crun-inner") {
        crun_inner(&args[2]);
        return;
    }
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let many: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);

    let dir = std::env::temp_dir().join(format!("vserver-bench-daemon-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (etc, run, log, roots) = (dir.join("etc"), dir.join("run"), dir.join("log"), dir.join("roots"));
    for d in [&etc, &run, &log, &roots] {
        std::fs::create_dir_all(d).unwrap();
    }
    let mut s = Scratch { dir: dir.clone(), bus: None, daemon: None };
    // The run directory on a tmpfs, as /run is on a real host.
    let st = Command::new("mount").args(["-t", "tmpfs", "-o", "mode=0700,size=64m", "vserver-bench-run"]).arg(&run).status().expect("mount");
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

    let root = roots.join("bench");
    make_root(&root);
    write_config(&etc, "bench", &root, 100);
    s.daemon = Some(
        Command::new(target_bin("vserverd"))
            .args(["--config-dir", &etc.display().to_string(), "--run-dir", &run.display().to_string(), "--log-dir", &log.display().to_string()])
            .env("DBUS_SYSTEM_BUS_ADDRESS", bus_addr(&dir))
            .env("VSERVERD_LOG", "warn")
            .spawn()
            .expect("vserverd"),
    );
    let daemon_pid = s.daemon.as_ref().unwrap().id();
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

    // Two ways, each fair in its own sense. Back to back: each run right after the previous one
    // of the same tool, in blocks (what the kernel keeps warm stays warm: crun's cgroup
    // migrations find the cgroup lock in its fast mode). Apart: the tools take turns, each run
    // after a pause of 30 ms, as when a command is typed (crun's first migration after a quiet
    // spell then waits for an RCU grace period; what one tool leaves to the kernel's background
    // work does not land on the other's clock).
    for apart in [false, true] {
        let (starts, stops, cruns) = timings(&dir, &root, runs, apart);
        let how = if apart { "taking turns, each after a 30 ms pause".to_string() } else { format!("back to back, in blocks of {BLOCK} of each tool in turn") };
        println!("# vserverctl start/stop of a busybox vserver and crun run: {runs} runs {how}; milliseconds");
        println!("| what | median | p10 | p90 |");
        println!("|---|---|---|---|");
        let (m, p10, p90) = median(starts);
        println!("| `vserverctl start` until running | {} | {} | {} |", ms(m), ms(p10), ms(p90));
        let start_median = m;
        let (m, p10, p90) = median(stops);
        println!("| `vserverctl stop` until stopped | {} | {} | {} |", ms(m), ms(p10), ms(p90));
        if !cruns.is_empty() {
            let (m, p10, p90) = median(cruns);
            println!("| `crun run` of /bin/true on the same root (start and exit) | {} | {} | {} |", ms(m), ms(p10), ms(p90));
            println!("\nstart / crun = {:.2}\n", start_median.as_secs_f64() / m.as_secs_f64());
        }
    }

    std::thread::sleep(Duration::from_millis(300));
    let idle = rss_kb(daemon_pid);
    // Two batches of `many`: the first from the idle daemon, the second on top of it. The second
    // batch's figures are the marginal cost of one more vserver (slab caches already grown, the
    // daemon's maps already sized), the first's include those one-time effects.
    for i in 0..2 * many {
        let r = roots.join(format!("m{i}"));
        make_root(&r);
        write_config(&etc, &format!("m{i}"), &r, 1000 + i);
    }
    vserverctl(&dir, &["reload"]);
    let pss_of = |range: std::ops::Range<u32>| -> u64 {
        // PSS of each monitor and its pid 1 (shared pages split fairly among their users).
        let mut pss = 0u64;
        for i in range {
            let state = run.join(format!("m{i}/state.json"));
            if let Ok(text) = std::fs::read_to_string(&state) {
                if let Ok(st) = serde_json::from_str::<serde_json::Value>(&text) {
                    pss += pss_kb(st["monitor_pid"].as_i64().unwrap_or(0) as i32) + pss_kb(st["pid"].as_i64().unwrap_or(0) as i32);
                }
            }
        }
        pss
    };
    // crun's containers by the same measure: one process each (no monitor), in namespaces and
    // cgroups of their own.
    let crun_mem = Crun::start(&root).and_then(|mut c| c.memory(many));
    let mut rows = Vec::new();
    let mut elapsed = Duration::ZERO;
    let mut busy = 0;
    for batch in 0..2 {
        let before = settled_meminfo();
        let t = Instant::now();
        for i in batch * many..(batch + 1) * many {
            vserverctl(&dir, &["start", &format!("m{i}")]);
        }
        if batch == 0 {
            elapsed = t.elapsed();
        }
        let after = settled_meminfo();
        if batch == 0 {
            busy = rss_kb(daemon_pid);
        }
        // The PSS of this batch, with the shared pages split among all that run.
        let pss = pss_of(batch * many..(batch + 1) * many);
        rows.push(PerUnit::of(&before, &after, pss, many));
    }
    println!();
    println!("# memory");
    println!("| what | figure |");
    println!("|---|---|");
    println!("| vserverd RSS, idle (1 vserver configured) | {idle} kB |");
    println!("| vserverd RSS, {many} vservers running | {busy} kB |");
    println!("| {many} sequential `vserverctl start` | {:.0} ms |", elapsed.as_secs_f64() * 1e3);
    println!();
    let c = |i: usize, f: fn(&PerUnit) -> u64| crun_mem.as_ref().map(|m| format!("{} kB", f(&m[i]))).unwrap_or_else(|| "-".into());
    println!("| per running vserver or container | vservers: first {many} | the next {many} (marginal) | `crun run -d` containers: first {many} | the next {many} |");
    println!("|---|---|---|---|---|");
    let row = |what: &str, f: fn(&PerUnit) -> u64| {
        println!("| {what} | {} kB | {} kB | {} | {} |", f(&rows[0]), f(&rows[1]), c(0, f), c(1, f));
    };
    row("PSS of its processes (monitor + pid 1; the container's process)", |m| m.pss);
    row("kernel memory (slab, page tables, stacks, per-cpu: namespaces, mounts, cgroups, pty)", |m| m.kernel);
    row("**counted whole** (PSS, kernel memory, vmalloc, tmpfs)", |m| m.whole);
    row("drop of the host's MemAvailable", |m| m.available);
    drop(s);
}
