//! Context start benchmark: time from asking the engine for a context to the exec of
//! `/bin/true` inside and its exit, side by side with `unshare` and `bwrap` on the same
//! busybox root, in one run. Median (p10, p90) over N runs, and what each step costs. Then the
//! network modes: start latency (until pid 1 runs) with a link of the vserver's own (veth,
//! macvlan, bridge) against `none`, measured in a private network namespace of the benchmark's
//! own (holding a test veth as the macvlan parent and a bridge), so the host is never touched.
//!
//! ```text
//! cargo run --release -p vserver-bench --bin vserver-bench -- [RUNS]
//! ```
//! Needs root and busybox-static (`/bin/busybox`); bwrap is measured when installed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vserver_engine::net::links::{self, End};
use vserver_engine::net::netlink::Netlink;
use vserver_engine::{spawn, IfAddr, Init, LaunchPlan, LinkMode, LinkPlan, Network, Step};

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
    if let Err(e) = vserver_engine::sealed::ensure_sealed_self() {
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

    {
        // As the daemon's ready monitor does: the namespace is made while nothing waits for it,
        // so only the spawn is timed.
        let p = plan(&root, &run_dir, Network::None);
        let mut v = Vec::with_capacity(runs);
        for i in 0..runs + runs.min(10) {
            let placement = vserver_engine::Placement { cgroups: None, netns: Some(vserver_engine::net::ns::made_ahead().expect("netns")) };
            let t = Instant::now();
            let c = vserver_engine::spawn_in(&p, placement).expect("engine spawn");
            let e = c.wait().expect("wait");
            if i >= runs.min(10) {
                v.push(t.elapsed());
            }
            assert_eq!(e.code(), 0);
        }
        row("engine, full vserver context, network none, namespace made ahead", stats(v));
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

    network_rows(&root, &run_dir, runs);

    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&run_dir);
}

/// Start latency (spawn() until pid 1 runs) and stop (pid 1's exit, then the links removed) per
/// network mode, in a private network namespace that ends with the benchmark.
fn network_rows(root: &Path, run_dir: &Path, runs: usize) {
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        eprintln!("network rows skipped: unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error());
        return;
    }
    let mut nl = Netlink::open().expect("netlink");
    let up = |name| End { name, up: true, netns: None, mtu: None, mac: None, master: None };
    links::create_veth(&mut nl, &up("bench0"), &End { up: false, ..up("bench1") }).expect("test veth");
    links::create_bridge(&mut nl, &up("benchbr0")).expect("test bridge");
    for name in ["bench1", "lo"] {
        let index = links::get(&mut nl, name).expect("link").index;
        links::set_up(&mut nl, index).expect("up");
    }
    let addresses = vec![
        IfAddr { addr: "198.51.100.10".parse().unwrap(), prefix: 24 },
        IfAddr { addr: "2001:db8::10".parse().unwrap(), prefix: 64 },
    ];
    let with = |mode: Option<(LinkMode, Option<&str>)>| {
        let mut p = plan(root, run_dir, Network::None);
        if let Some((mode, device)) = mode {
            let mut l = LinkPlan::new(mode, device);
            l.addresses = addresses.clone();
            if mode != LinkMode::Veth {
                l.gateways = vec!["198.51.100.1".parse().unwrap(), "2001:db8::1".parse().unwrap()];
            }
            p.links = vec![l];
        }
        p
    };
    type Mode<'a> = Option<(LinkMode, Option<&'a str>)>;
    let cases: [(&str, Mode); 5] = [
        ("none (lo only)", None),
        ("veth, routed (host routes)", Some((LinkMode::Veth, None))),
        ("veth, routed, proxy ARP/NDP on an uplink", Some((LinkMode::Veth, Some("bench0")))),
        ("macvlan on a veth", Some((LinkMode::Macvlan, Some("bench0")))),
        ("bridge", Some((LinkMode::Bridge, Some("benchbr0")))),
    ];
    println!();
    println!("# network: {runs} runs each, modes in turn, 10 ms apart; milliseconds; one IPv4 and one IPv6 address; start = spawn() until pid 1 runs, stop = its exit and the links removed");
    println!("| mode | start median | p10 | p90 | start − none | stop median |");
    println!("|---|---|---|---|---|---|");
    // The modes take turns, and each start comes after a 10 ms pause: the kernel finishes a
    // namespace's teardown in the background, which would otherwise weigh on the next start.
    let plans: Vec<LaunchPlan> = cases.iter().map(|(_, m)| with(*m)).collect();
    let mut starts: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); cases.len()];
    let mut stops: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); cases.len()];
    for i in 0..runs + runs.min(10) {
        for (k, p) in plans.iter().enumerate() {
            std::thread::sleep(Duration::from_millis(10));
            let t = Instant::now();
            let c = spawn(p).unwrap_or_else(|e| panic!("{}: {e}", cases[k].0));
            let started = t.elapsed();
            let t = Instant::now();
            assert_eq!(c.wait().expect("wait").code(), 0);
            if i >= runs.min(10) {
                starts[k].push(started);
                stops[k].push(t.elapsed());
            }
        }
    }
    let none = stats(starts[0].clone()).median;
    for (k, (name, _)) in cases.iter().enumerate() {
        let s = stats(starts[k].clone());
        let extra = s.median.saturating_sub(none);
        println!("| {name} | {} | {} | {} | +{} | {} |", ms(s.median), ms(s.p10), ms(s.p90), ms(extra), ms(stats(stops[k].clone()).median));
    }
    // Where the network's part of the start goes (the parent's steps, traced).
    std::env::set_var("VSERVER_TRACE_STEPS", "1");
    let steps = [Step::NetCheck, Step::NetLink, Step::NetHost, Step::NetInside];
    println!();
    println!("# network steps in the parent, medians in microseconds");
    println!("| mode | {} |", steps.map(|s| s.name()).join(" | "));
    println!("|---|---|---|---|---|");
    for (name, mode) in cases.iter().filter(|(_, m)| m.is_some()) {
        let p = with(*mode);
        let mut per: Vec<Vec<Duration>> = vec![Vec::new(); steps.len()];
        for _ in 0..runs {
            std::thread::sleep(Duration::from_millis(10));
            let c = spawn(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
            c.wait().expect("wait");
            for (i, step) in steps.iter().enumerate() {
                let ns: u64 = c.step_times.iter().filter(|(s, _)| s == step).map(|(_, n)| n).sum();
                per[i].push(Duration::from_nanos(ns));
            }
        }
        let cells: Vec<String> = per.into_iter().map(|v| format!("{:.0}", stats(v).median.as_secs_f64() * 1e6)).collect();
        println!("| {name} | {} |", cells.join(" | "));
    }
    std::env::remove_var("VSERVER_TRACE_STEPS");
}
