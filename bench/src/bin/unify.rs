//! Unification benchmark (not a test): disk used by ten unified vservers on one Debian minbase
//! template against ten full copies of it, and the start latency (engine: clone to the exit of
//! `/bin/true`) of a unified vserver (overlay mounted in its namespace) against a plain one.
//!
//! ```text
//! cargo build --release -p vserverctl -p vserver-bench
//! cargo run --release -p vserver-bench --bin vserver-bench-unify -- [RUNS] [WORKDIR]   # WORKDIR default /var/tmp/vserver-bench-unify
//! ```
//! Needs root, debootstrap and Debian's package registry (the template is a debootstrap of
//! bookworm, variant minbase, made by `vserverctl template create`); the figures are in
//! docs/build.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vserver_engine::plan::OverlayPlan;
use vserver_engine::{spawn, Init, LaunchPlan};

const N: usize = 10;

fn ctl(exe: &Path, args: &[&str], work: &Path) -> String {
    let out = Command::new(exe)
        .args(args)
        .arg("--config-dir")
        .arg(work.join("etc"))
        .arg("--root-base")
        .arg(work.join("vs"))
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent")
        .output()
        .expect("run vserverctl");
    assert!(out.status.success(), "vserverctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Allocated bytes under `p` on its filesystem, hard links once (du -sx).
fn du(p: &Path) -> u64 {
    let out = Command::new("du").arg("-sx").arg("--block-size=1").arg(p).output().expect("du");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or("0").parse().unwrap_or(0)
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0))
}

fn start(plan: &LaunchPlan) {
    let ctx = spawn(plan).expect("spawn");
    ctx.wait().expect("wait");
}

fn time_runs(runs: usize, plan: &LaunchPlan) -> (Duration, Duration, Duration) {
    for _ in 0..runs.min(10) {
        start(plan);
    }
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            start(plan);
            t.elapsed()
        })
        .collect();
    v.sort();
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.1), at(0.9))
}

fn main() {
    if let Err(e) = vserver_engine::sealed::ensure_sealed_self() {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let work = PathBuf::from(args.get(2).cloned().unwrap_or_else(|| "/var/tmp/vserver-bench-unify".into()));
    // Beside this binary (argv[0]: the running image is a sealed copy of it).
    let exe = std::env::var_os("VSERVERCTL").map(PathBuf::from).unwrap_or_else(|| {
        std::fs::canonicalize(&args[0]).ok().and_then(|p| p.parent().map(|d| d.join("vserverctl"))).unwrap_or_else(|| "vserverctl".into())
    });
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();

    let t = Instant::now();
    ctl(&exe, &["template", "create", "deb", "--debootstrap", "bookworm", "--variant", "minbase"], &work);
    println!("template deb (debootstrap bookworm minbase): {:.1} s", t.elapsed().as_secs_f64());
    let template = work.join("vs/.templates/deb");
    let tpl_bytes = du(&template);

    let t = Instant::now();
    for i in 0..N {
        ctl(&exe, &["build", &format!("u{i}"), "--unified", "deb"], &work);
    }
    let unified_build = t.elapsed() / N as u32;
    let t = Instant::now();
    for i in 0..N {
        ctl(&exe, &["build", &format!("f{i}"), "--template", &template.display().to_string()], &work);
    }
    let full_build = t.elapsed() / N as u32;
    let unified: u64 = (0..N).map(|i| du(&work.join(format!("vs/u{i}")))).sum();
    let full: u64 = (0..N).map(|i| du(&work.join(format!("vs/f{i}")))).sum();

    println!("\n| {N} vservers | disk used | build time each |\n|---|---|---|");
    println!("| unified on one template | {} (template) + {} (their own) = {} | {:.0} ms |", mib(tpl_bytes), mib(unified), mib(tpl_bytes + unified), unified_build.as_secs_f64() * 1e3);
    println!("| full copies | {} | {:.0} ms |", mib(full), full_build.as_secs_f64() * 1e3);

    let run_dir = work.join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let mk = |root: PathBuf| {
        let mut p = LaunchPlan::new("bench", Some(root), Init::Fake { argv: vec!["/bin/true".into()] });
        p.run_dir = run_dir.clone();
        p
    };
    let plain = mk(work.join("vs/f0"));
    let mut uni = mk(work.join("vs/u0/root"));
    uni.overlay = Some(OverlayPlan { lower: template.clone(), upper: work.join("vs/u0/upper"), work: work.join("vs/u0/work") });
    let (pm, p10, p90) = time_runs(runs, &plain);
    let (um, u10, u90) = time_runs(runs, &uni);
    let f = |d: Duration| format!("{:.3}", d.as_secs_f64() * 1e3);
    println!("\n| start to exit of /bin/true ({runs} runs) | median ms | p10 | p90 |\n|---|---|---|---|");
    println!("| plain root (bind + pivot) | {} | {} | {} |", f(pm), f(p10), f(p90));
    println!("| unified root (overlay + bind + pivot) | {} | {} | {} |", f(um), f(u10), f(u90));
    let _ = std::fs::remove_dir_all(&work);
}
