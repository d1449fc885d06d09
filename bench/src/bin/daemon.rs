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

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vserver_bench::{busybox_root, median, ms, pss_kb, rss_kb, settled_meminfo, PerUnit, Scratch};

fn write_config(etc: &Path, name: &str, root: &Path, context: u32) {
    let body = format!(
        "root = {root:?}\ncontext = {context}\n[init]\ncommand = [\"/bin/true\"]\nstop_timeout = 5\n[network]\nmode = \"none\"\n",
        root = root.display().to_string()
    );
    std::fs::write(etc.join(format!("{name}.toml")), body).unwrap();
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
fn timings(s: &Scratch, root: &Path, runs: usize, apart: bool) -> (Vec<Duration>, Vec<Duration>, Vec<Duration>) {
    let mut crun = Crun::start(root);
    let (mut starts, mut stops, mut cruns) = (Vec::new(), Vec::new(), Vec::new());
    let ours = |timed: bool, starts: &mut Vec<Duration>, stops: &mut Vec<Duration>| {
        let t = Instant::now();
        s.vserverctl(&["start", "bench"]);
        let a = t.elapsed();
        let t = Instant::now();
        s.vserverctl(&["stop", "bench"]);
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

    let s = Scratch::start("vserver-bench-daemon");
    let (etc, run, roots) = (s.etc(), s.run(), s.roots());
    let root = roots.join("bench");
    busybox_root(&root);
    write_config(&etc, "bench", &root, 100);
    s.vserverctl(&["reload"]);
    let daemon_pid = s.daemon_pid();

    // Two ways, each fair in its own sense. Back to back: each run right after the previous one
    // of the same tool, in blocks (what the kernel keeps warm stays warm: crun's cgroup
    // migrations find the cgroup lock in its fast mode). Apart: the tools take turns, each run
    // after a pause of 30 ms, as when a command is typed (crun's first migration after a quiet
    // spell then waits for an RCU grace period; what one tool leaves to the kernel's background
    // work does not land on the other's clock).
    for apart in [false, true] {
        let (starts, stops, cruns) = timings(&s, &root, runs, apart);
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
        busybox_root(&r);
        write_config(&etc, &format!("m{i}"), &r, 1000 + i);
    }
    s.vserverctl(&["reload"]);
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
            s.vserverctl(&["start", &format!("m{i}")]);
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
