//! Bind-mode benchmark (not a test), in one run: start latency and memory per running vserver
//! for `mode = "bind"` against `none` (a network namespace with `lo`) and `macvlan` (a network
//! namespace with a link of its own), and against crun containers (memory also against `host`:
//! no namespace and no hooks, what bind mode adds shows); then BOOT bind vservers
//! started at once by `vserverctl start --onboot` against the floor of as many contexts without
//! a network namespace (`mode = "host"`: no namespace, no hooks).
//!
//! ```text
//! cargo build --release --workspace --bins && cargo run --release -p vserver-bench --bin vserver-bench-bind -- [RUNS] [VSERVERS] [BOOT]
//! ```
//! Needs root, busybox-static, dbus, crun, iproute2 and a cgroup v2 tree. Everything runs in a
//! network namespace of the benchmark's own (made first thing: the daemon, its vservers and
//! crun inherit it), on a veth pair: `bench0` holds the bind vservers' addresses (198.18.0.0/15,
//! the benchmarking range), `bench1` is the macvlan parent. crun runs through the daemon
//! benchmark's runner (`vserver-bench-daemon --crun-inner`, in a mount namespace of its own
//! where the hybrid's empty v2 tree is unmounted, which crun needs here).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use vserver_bench::{median, ms, pss_kb, settled_meminfo, target_bin, PerUnit, Scratch};

/// Runs of each mode in a block; the first of a block is not timed.
const BLOCK: usize = 10;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Bind,
    None,
    Macvlan,
    Host,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Bind => "bind",
            Mode::None => "none",
            Mode::Macvlan => "macvlan",
            Mode::Host => "host",
        }
    }

    /// The `[network]` table of vserver number `i` in this mode.
    fn network(self, i: u32) -> String {
        match self {
            Mode::Bind => format!("mode = \"bind\"\ndevice = \"bench0\"\naddresses = [\"198.18.{}.{}/15\"]\n", 2 + i / 250, 1 + i % 250),
            Mode::Macvlan => format!("mode = \"macvlan\"\ndevice = \"bench1\"\naddresses = [\"198.19.{}.{}/15\"]\n", 2 + i / 250, 1 + i % 250),
            Mode::None => "mode = \"none\"\n".into(),
            Mode::Host => "mode = \"host\"\n".into(),
        }
    }
}

fn sh(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd).args(args).status().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(st.success(), "{cmd} {args:?} failed");
}

/// This process (still single-threaded) moves to a network namespace of its own with `lo` up
/// and the veth pair `bench0`/`bench1`, up.
fn private_network() {
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        panic!("unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
    }
    sh("ip", &["link", "set", "lo", "up"]);
    sh("ip", &["link", "add", "bench0", "type", "veth", "peer", "name", "bench1"]);
    sh("ip", &["addr", "add", "198.18.0.1/15", "dev", "bench0"]);
    sh("ip", &["link", "set", "bench0", "up"]);
    sh("ip", &["link", "set", "bench1", "up"]);
}

/// A busybox root, its binary hard-linked from `master` (500 roots share one copy on disk).
fn make_root(master: &Path, root: &Path) {
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let bb = root.join("bin/busybox");
    if !bb.exists() {
        std::fs::hard_link(master, &bb).unwrap();
    }
    for a in ["sh", "true", "sleep"] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(a));
    }
}

fn write_config(s: &Scratch, name: &str, context: u32, mode: Mode, index: u32, onboot: bool) {
    let root = s.roots().join(name);
    let body = format!(
        "root = {:?}\ncontext = {context}\nonboot = {onboot}\n[init]\ncommand = [\"/bin/true\"]\nstop_timeout = 5\n[network]\n{}",
        root.display().to_string(),
        mode.network(index)
    );
    std::fs::write(s.etc().join(format!("{name}.toml")), body).unwrap();
}

/// crun through the daemon benchmark's runner: `run` (one `crun run` of /bin/true, timed),
/// `mem N` (two batches of N `crun run -d` containers, measured as ours are).
struct Crun {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Crun {
    fn start(root: &Path) -> Option<Crun> {
        Command::new("crun").arg("--version").output().ok()?;
        let mut child = Command::new("unshare")
            .args(["--mount", "--propagation", "private"])
            .arg(target_bin("vserver-bench-daemon"))
            .args(["--crun-inner", &root.display().to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .ok()?;
        let out = BufReader::new(child.stdout.take()?);
        Some(Crun { child, out })
    }

    fn ask(&mut self, line: &str) -> Option<String> {
        writeln!(self.child.stdin.as_mut()?, "{line}").ok()?;
        let mut answer = String::new();
        self.out.read_line(&mut answer).ok()?;
        Some(answer.trim().to_string())
    }

    fn run(&mut self) -> Option<Duration> {
        self.ask("run")?.parse::<u64>().ok().map(Duration::from_nanos)
    }

    fn memory(&mut self, n: u32) -> Option<[PerUnit; 2]> {
        serde_json::from_str(&self.ask(&format!("mem {n}"))?).ok()?
    }
}

impl Drop for Crun {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Start and stop latency of one vserver per mode and of crun, in blocks of each in turn.
fn latency(s: &Scratch, crun: &mut Option<Crun>, runs: usize) {
    let modes = [Mode::None, Mode::Bind, Mode::Macvlan];
    let mut starts = vec![Vec::new(); modes.len()];
    let mut stops = vec![Vec::new(); modes.len()];
    let mut cruns = Vec::new();
    for _ in 0..runs.div_ceil(BLOCK) {
        for (k, m) in modes.iter().enumerate() {
            let name = format!("lat-{}", m.name());
            for i in 0..=BLOCK {
                let (a, b) = s.start_stop(&name);
                if i > 0 {
                    starts[k].push(a);
                    stops[k].push(b);
                }
            }
        }
        for i in 0..=BLOCK {
            let c = crun.as_mut().and_then(Crun::run);
            if i > 0 {
                cruns.extend(c);
            }
        }
    }
    println!("# start and stop: {runs} of each, back to back in blocks of {BLOCK} of each in turn; milliseconds");
    println!("| what | start median | p10 | p90 | stop median |");
    println!("|---|---|---|---|---|");
    let none_start = median(starts[0].clone()).0;
    for (k, m) in modes.iter().enumerate() {
        let (a, p10, p90) = median(starts[k].clone());
        let (b, _, _) = median(stops[k].clone());
        println!("| `vserverctl start`, network `{}` | {} | {} | {} | {} |", m.name(), ms(a), ms(p10), ms(p90), ms(b));
    }
    if !cruns.is_empty() {
        let (c, p10, p90) = median(cruns);
        println!("| `crun run` of /bin/true on the same root (start and exit) | {} | {} | {} | |", ms(c), ms(p10), ms(p90));
    }
    let bind_start = median(starts[1].clone()).0;
    println!("\nbind start / none start = {:.2}\n", bind_start.as_secs_f64() / none_start.as_secs_f64());
}

/// Two batches of `n` vservers of `mode` (vservers `mem-MODE-I`), each measured whole once the
/// counters settle; all stopped afterwards.
fn memory(s: &Scratch, mode: Mode, n: u32) -> [PerUnit; 2] {
    let names: Vec<String> = (0..2 * n).map(|i| format!("mem-{}-{i}", mode.name())).collect();
    let mut rows = Vec::new();
    for batch in 0..2 {
        let before = settled_meminfo();
        let range = (batch * n) as usize..((batch + 1) * n) as usize;
        for name in &names[range.clone()] {
            s.vserverctl(&["start", name]);
        }
        let after = settled_meminfo();
        let mut pss = 0;
        for name in &names[range] {
            let state = s.run().join(name).join("state.json");
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(state).unwrap_or_default()).unwrap_or_default();
            pss += pss_kb(v["monitor_pid"].as_i64().unwrap_or(0) as i32) + pss_kb(v["pid"].as_i64().unwrap_or(0) as i32);
        }
        rows.push(PerUnit::of(&before, &after, pss, n));
    }
    for name in &names {
        s.vserverctl(&["stop", name]);
    }
    [rows[0], rows[1]]
}

/// `vserverctl start --onboot` of the `boot` vservers `boot-I`, configured in `mode`; the time
/// until it returns (every one running), then all stopped.
fn boot(s: &Scratch, mode: Mode, count: u32) -> Duration {
    for i in 0..count {
        write_config(s, &format!("boot-{i}"), 5000 + i, mode, i, true);
    }
    s.vserverctl(&["reload"]);
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    let out = s.vserverctl(&["start", "--onboot"]);
    let d = t.elapsed();
    let list: serde_json::Value = serde_json::from_str(&s.vserverctl(&["--json", "list"])).unwrap_or_default();
    let running = list
        .as_array()
        .map(|a| a.iter().filter(|v| v["name"].as_str().is_some_and(|n| n.starts_with("boot-")) && v["state"] == "running").count())
        .unwrap_or(0);
    assert_eq!(running, count as usize, "not all {count} booted ({mode_name}):\n{out}", mode_name = mode.name());
    s.vserverctl(&["stop", "--all"]);
    // The kernel frees what they held in the background: the next run starts on a quiet machine.
    let _ = settled_meminfo();
    d
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let many: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(100);
    let boots: u32 = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(500);
    private_network();

    let s = Scratch::start("vserver-bench-bind");
    let master = s.dir.join("busybox");
    std::fs::copy("/bin/busybox", &master).expect("busybox-static (/bin/busybox)");
    let mut ctx = 100;
    let mut add = |name: &str, mode: Mode, index: u32| {
        make_root(&master, &s.roots().join(name));
        write_config(&s, name, ctx, mode, index, false);
        ctx += 1;
    };
    for (i, m) in [Mode::None, Mode::Bind, Mode::Macvlan].into_iter().enumerate() {
        add(&format!("lat-{}", m.name()), m, 900 + i as u32);
    }
    for m in [Mode::Bind, Mode::None, Mode::Macvlan, Mode::Host] {
        for i in 0..2 * many {
            add(&format!("mem-{}-{i}", m.name()), m, 1000 + i);
        }
    }
    for i in 0..boots {
        make_root(&master, &s.roots().join(format!("boot-{i}")));
    }
    s.vserverctl(&["reload"]);

    // Start latency, warmed up first (and the daemon's program set loaded).
    let mut crun = Crun::start(&s.roots().join("lat-none"));
    for m in [Mode::None, Mode::Bind, Mode::Macvlan] {
        for _ in 0..3 {
            s.vserverctl(&["start", &format!("lat-{}", m.name())]);
            s.vserverctl(&["stop", &format!("lat-{}", m.name())]);
        }
    }
    latency(&s, &mut crun, runs);

    // Memory per running vserver, and per crun container by the same measure.
    println!("# memory per running vserver or container: two batches of {many}, counted whole (PSS, kernel memory, vmalloc, tmpfs)");
    println!("| what | first {many}: whole | PSS | kernel | next {many}: whole | PSS | kernel |");
    println!("|---|---|---|---|---|---|---|");
    let row = |what: &str, m: &[PerUnit; 2]| {
        println!("| {what} | {} kB | {} | {} | {} kB | {} | {} |", m[0].whole, m[0].pss, m[0].kernel, m[1].whole, m[1].pss, m[1].kernel);
    };
    let mut results = Vec::new();
    for m in [Mode::Bind, Mode::None, Mode::Macvlan, Mode::Host] {
        let r = memory(&s, m, many);
        row(&format!("vserver, network `{}`", m.name()), &r);
        results.push(r);
    }
    let crun_mem = crun.as_mut().and_then(|c| c.memory(many));
    if let Some(c) = &crun_mem {
        row("`crun run -d` container (`sleep`)", c);
        println!(
            "\nbind / crun, counted whole: {:.2} (first batch), {:.2} (next)\n",
            results[0][0].whole as f64 / c[0].whole as f64,
            results[0][1].whole as f64 / c[1].whole as f64
        );
    }
    drop(crun);

    // Booting many at once.
    let mut floor = Vec::new();
    let mut bound = Vec::new();
    for _ in 0..2 {
        floor.push(boot(&s, Mode::Host, boots));
        bound.push(boot(&s, Mode::Bind, boots));
    }
    println!("# `vserverctl start --onboot` of {boots} vservers until all run; milliseconds, two runs each in turn");
    println!("| what | run 1 | run 2 |");
    println!("|---|---|---|");
    println!("| floor: network `host` (no namespace, no hooks) | {} | {} |", ms(floor[0]), ms(floor[1]));
    println!("| network `bind` | {} | {} |", ms(bound[0]), ms(bound[1]));
    let mean = |v: &[Duration]| v.iter().map(Duration::as_secs_f64).sum::<f64>() / v.len() as f64;
    println!("\nbind / floor = {:.2}", mean(&bound) / mean(&floor));
    let _ = std::io::stdout().flush();
    drop(s);
}
