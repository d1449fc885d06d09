//! User-namespace benchmark: `vserverctl start` until running and `vserverctl stop` of a busybox
//! vserver with the host's ids and in a user namespace of its own (`[user] map = "auto"`), taking
//! turns in one run; then memory per running vserver counted whole (as docs/daemon.md counts it)
//! for N of each.
//!
//! ```text
//! cargo build --release --workspace --bins && cargo run --release -p vserver-bench --bin vserver-bench-userns -- [RUNS] [VSERVERS]
//! ```
//! Needs root, busybox-static and dbus. Starts its own private bus and daemon on scratch
//! directories, with a pool of host ids from 2^30 up.

use std::path::Path;
use std::time::Duration;

use vserver_bench::{busybox_root, median, ms, pss_kb, settled_meminfo, PerUnit, Scratch};

const MODES: [(&str, &str); 2] = [("h", "host ids"), ("u", "user namespace")];

fn write_config(etc: &Path, name: &str, root: &Path, context: u32, userns: bool) {
    let user = if userns { "[user]\nmap = \"auto\"\n" } else { "" };
    let body = format!(
        "root = {root:?}\ncontext = {context}\n[init]\ncommand = [\"/bin/true\"]\nstop_timeout = 5\n[network]\nmode = \"none\"\n{user}",
        root = root.display().to_string()
    );
    std::fs::write(etc.join(format!("{name}.toml")), body).unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    let many: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(50);
    let pool = format!("{}:{}", 1u32 << 30, (many + 2) * 65536);
    let s = Scratch::start_with("vserver-bench-userns", &["--userns-pool", &pool]);
    let (etc, run, roots) = (s.etc(), s.run(), s.roots());
    for (i, (tag, _)) in MODES.iter().enumerate() {
        let root = roots.join(format!("bench-{tag}"));
        busybox_root(&root);
        write_config(&etc, &format!("bench-{tag}"), &root, 100 + i as u32, *tag == "u");
    }
    s.vserverctl(&["reload"]);

    // Start and stop, the two modes taking turns.
    let mut times: Vec<(Vec<Duration>, Vec<Duration>)> = vec![(Vec::new(), Vec::new()); 2];
    for round in 0..runs + 5 {
        for (i, (tag, _)) in MODES.iter().enumerate() {
            let name = format!("bench-{tag}");
            let (a, b) = s.start_stop(&name);
            if round >= 5 {
                times[i].0.push(a);
                times[i].1.push(b);
            }
        }
    }
    println!("# vserverctl start/stop of a busybox vserver: {runs} runs, the two modes taking turns; milliseconds");
    println!("| what | median | p10 | p90 |");
    println!("|---|---|---|---|");
    let mut start_medians = Vec::new();
    for (i, (_, what)) in MODES.iter().enumerate() {
        let (m, p10, p90) = median(times[i].0.clone());
        start_medians.push(m);
        println!("| `vserverctl start` until running, {what} | {} | {} | {} |", ms(m), ms(p10), ms(p90));
        let (m, p10, p90) = median(times[i].1.clone());
        println!("| `vserverctl stop` until stopped, {what} | {} | {} | {} |", ms(m), ms(p10), ms(p90));
    }
    println!("\nstart in a user namespace / with the host's ids = {:.2}\n", start_medians[1].as_secs_f64() / start_medians[0].as_secs_f64());

    // Memory: `many` of each mode, one batch after the other.
    for (tag, _) in MODES {
        for i in 0..many {
            let r = roots.join(format!("m{tag}{i}"));
            busybox_root(&r);
            write_config(&etc, &format!("m{tag}{i}"), &r, if tag == "h" { 1000 } else { 2000 } + i, tag == "u");
        }
    }
    s.vserverctl(&["reload"]);
    let mut rows = Vec::new();
    let mut deltas = Vec::new();
    for (tag, _) in MODES {
        let before = settled_meminfo();
        for i in 0..many {
            s.vserverctl(&["start", &format!("m{tag}{i}")]);
        }
        let after = settled_meminfo();
        let mut pss = 0;
        for i in 0..many {
            let text = std::fs::read_to_string(run.join(format!("m{tag}{i}/state.json"))).unwrap_or_default();
            if let Ok(st) = serde_json::from_str::<serde_json::Value>(&text) {
                pss += pss_kb(st["monitor_pid"].as_i64().unwrap_or(0) as i32) + pss_kb(st["pid"].as_i64().unwrap_or(0) as i32);
            }
        }
        rows.push(PerUnit::of(&before, &after, pss, many));
        deltas.push((before, after));
    }
    println!("# memory per running vserver, {many} of each (the host's ids first, then on top of them the user namespaces)");
    println!("| per running vserver | host ids | user namespace |");
    println!("|---|---|---|");
    let row = |what: &str, f: fn(&PerUnit) -> u64| println!("| {what} | {} kB | {} kB |", f(&rows[0]), f(&rows[1]));
    row("PSS of its processes (monitor + pid 1)", |m| m.pss);
    row("kernel memory (slab, page tables, stacks, per-cpu)", |m| m.kernel);
    row("**counted whole** (PSS, kernel memory, vmalloc, tmpfs)", |m| m.whole);
    row("drop of the host's MemAvailable", |m| m.available);
    println!();
    println!("| kernel counter, per vserver | host ids | user namespace |");
    println!("|---|---|---|");
    let fields: [(&str, fn(&vserver_bench::Meminfo) -> u64); 6] = [
        ("Slab", |m| m.slab),
        ("PageTables", |m| m.page_tables),
        ("KernelStack", |m| m.kernel_stack),
        ("Percpu", |m| m.percpu),
        ("VmallocUsed", |m| m.vmalloc),
        ("Shmem", |m| m.shmem),
    ];
    for (name, f) in fields {
        let per = |(b, a): &(vserver_bench::Meminfo, vserver_bench::Meminfo)| f(a) as i64 - f(b) as i64;
        println!("| {name} | {} kB | {} kB |", per(&deltas[0]) / many as i64, per(&deltas[1]) / many as i64);
    }
    drop(s);
}
