//! Context start benchmark: time from asking the engine for a context to the exec of
//! `/bin/true` inside and its exit, side by side with `unshare` and `bwrap` on the same
//! busybox root, in one run. Median (p10, p90) over N runs, and what each step costs.
//!
//! ```text
//! cargo build --release -p vserver-bench && sudo target/release/vserver-bench [RUNS]
//! ```
//! Needs root and busybox-static (`/bin/busybox`); bwrap is measured when installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vserver_sandbox::{spawn, Init, LaunchPlan, Network};

fn make_root() -> PathBuf {
    let root = std::env::temp_dir().join(format!("vserver-bench-root-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev"] {
        std::fs::create_dir_all(root.join(d)).expect("make root dirs");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static must be installed (/bin/busybox)");
    for applet in ["true", "sh"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("symlink");
    }
    root
}

struct Stats {
    median: Duration,
    p10: Duration,
    p90: Duration,
}

fn stats(mut v: Vec<Duration>) -> Stats {
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    Stats { median: at(0.5), p10: at(0.1), p90: at(0.9) }
}

fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1e3)
}

fn time_runs(runs: usize, mut f: impl FnMut()) -> Stats {
    for _ in 0..runs.min(10) {
        f(); // warm-up
    }
    let mut v = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f();
        v.push(t.elapsed());
    }
    stats(v)
}

fn plan(root: &Path, run_dir: &Path, network: Network) -> LaunchPlan {
    let mut p = LaunchPlan::new("bench", Some(root.to_path_buf()), Init::Fake { argv: vec!["/bin/true".into()] });
    p.hostname = Some("bench".into());
    p.network = network;
    p.run_dir = run_dir.to_path_buf();
    p
}

fn run_cmd(cmd: &mut Command) {
    let st = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().expect("run");
    assert!(st.success(), "{cmd:?} failed");
}

fn main() {
    if let Err(e) = vserver_sandbox::sealed::ensure_sealed_self() {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let root = make_root();
    let run_dir = root.with_extension("run");
    let r = root.display().to_string();

    println!("# context start: {runs} runs each, milliseconds (median, p10, p90)");
    println!("| what | median | p10 | p90 |");
    println!("|---|---|---|---|");
    let row = |name: &str, s: Stats| println!("| {name} | {} | {} | {} |", ms(s.median), ms(s.p10), ms(s.p90));

    row("fork+exec /bin/true (no isolation)", time_runs(runs, || run_cmd(&mut Command::new(root.join("bin/true")))));
    row(
        "unshare --pid --fork --mount --uts --ipc --root=ROOT /bin/true",
        time_runs(runs, || run_cmd(Command::new("unshare").args(["--pid", "--fork", "--mount", "--uts", "--ipc", &format!("--root={r}"), "/bin/true"]))),
    );
    if Path::new("/usr/bin/bwrap").exists() {
        row(
            "bwrap --unshare-pid --unshare-uts --unshare-ipc --bind ROOT / /bin/true",
            time_runs(runs, || run_cmd(Command::new("bwrap").args(["--unshare-pid", "--unshare-uts", "--unshare-ipc", "--bind", &r, "/", "/bin/true"]))),
        );
        row(
            "bwrap … --proc /proc --dev /dev --unshare-net (closer to a vserver)",
            time_runs(runs, || {
                run_cmd(Command::new("bwrap").args([
                    "--unshare-pid", "--unshare-uts", "--unshare-ipc", "--unshare-net", "--bind", &r, "/", "--proc", "/proc", "--dev", "/dev", "/bin/true",
                ]))
            }),
        );
    }
    for (name, network) in [("engine, full vserver context, network host", Network::Host), ("engine, full vserver context, network none (own netns)", Network::None)] {
        let p = plan(&root, &run_dir, network);
        row(
            name,
            time_runs(runs, || {
                let c = spawn(&p).expect("engine spawn");
                let e = c.wait().expect("wait");
                assert_eq!(e.code(), 0);
            }),
        );
    }

    // What each step costs (the child reports its step times when VSERVER_TRACE_STEPS is set).
    std::env::set_var("VSERVER_TRACE_STEPS", "1");
    let p = plan(&root, &run_dir, Network::None);
    let mut per_step: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut spawn_only = Vec::new();
    let mut wait_only = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        let c = spawn(&p).expect("engine spawn");
        spawn_only.push(t.elapsed());
        let t = Instant::now();
        c.wait().expect("wait");
        wait_only.push(t.elapsed());
        let mut this_run: BTreeMap<String, u64> = BTreeMap::new();
        for (step, ns) in &c.step_times {
            let k = step.name().to_string();
            if !order.contains(&k) {
                order.push(k.clone());
            }
            *this_run.entry(k).or_default() += ns;
        }
        for (k, ns) in this_run {
            per_step.entry(k).or_default().push(Duration::from_nanos(ns));
        }
    }
    std::env::remove_var("VSERVER_TRACE_STEPS");
    println!();
    println!("# engine (network none): where the time goes, medians in microseconds");
    println!("| part | µs |");
    println!("|---|---|");
    let us = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1e6);
    println!("| spawn() until pid 1 execs | {} |", us(stats(spawn_only).median));
    for k in &order {
        println!("| · step {k} (in the child) | {} |", us(stats(per_step[k].clone()).median));
    }
    println!("| wait() for exit and teardown | {} |", us(stats(wait_only).median));

    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&run_dir);
}
