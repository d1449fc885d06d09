//! Boot benchmark (not a test): a stock Debian 12 root with systemd, booted until systemd says
//! `READY=1` (`running`, its default target reached) by `vserverctl start` (which returns
//! then) against `systemd-nspawn --boot --notify-ready=yes` (READY=1 relayed on its own notify
//! socket), in blocks of each tool in turn; each also shut down again (`vserverctl stop`;
//! SIGTERM to nspawn, which powers the guest off). Then the memory per idle booted guest: N
//! guests of each tool at once, counted whole as in the daemon benchmark (PSS of every process
//! of the guests and of their supervisors, kernel memory, tmpfs, once the counters settle).
//! `lxc-start` is measured the same way where the lxc package is installed (containers under
//! the scratch directory, `lxc-start -P`).
//!
//! ```text
//! cargo build --release --workspace --bins && cargo run --release -p vserver-bench --bin vserver-bench-boot -- [BOOTS] [GUESTS] [ROOT]
//! ```
//! Needs root, dbus, systemd-container (systemd-nspawn). ROOT is a Debian 12 root with systemd
//! (default: the heavy tests' cached guest, `target/guest-cache/templates/bookworm-systemd-v2`,
//! which `VSERVER_HEAVY=1 tests/run.sh` makes; or `vserverctl build NAME --debootstrap bookworm
//! --variant minbase --include nginx-light,openssh-server`). Every guest boots a copy of its own
//! (`vserverctl build --template ROOT` for ours, `cp -a` and a machine id of its own for
//! nspawn's), so that neither tool shares page cache the other does not.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vserver_bench::{median, ms, pss_tree_kb, repo_file, settled_meminfo, Meminfo, PerUnit, Scratch};

/// Boots of each tool in a block; the first of a block is not timed.
const BLOCK: usize = 5;

/// One nspawn guest, booted and waited for.
struct Nspawn {
    child: Child,
    notify: PathBuf,
}

impl Nspawn {
    /// Boots `root` as machine `name`; returns once the guest said READY=1 (nspawn relays it).
    fn boot(root: &Path, name: &str) -> (Nspawn, Duration) {
        let notify = std::env::temp_dir().join(format!("vserver-bench-boot-{name}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&notify);
        let sock = UnixDatagram::bind(&notify).expect("notify socket");
        sock.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let t = Instant::now();
        let child = Command::new("systemd-nspawn")
            // A network namespace of its own with only `lo`, as a vserver's `mode = "none"`.
            .args(["--boot", "--register=no", "--keep-unit", "--notify-ready=yes", "--private-network", "--quiet", "--machine", name, "-D"])
            .arg(root)
            .env("NOTIFY_SOCKET", &notify)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("systemd-nspawn (apt-get install systemd-container)");
        let mut buf = [0u8; 4096];
        loop {
            let n = sock.recv(&mut buf).expect("no READY=1 from nspawn within 60 s");
            if buf[..n].split(|b| *b == b'\n').any(|l| l == b"READY=1") {
                break;
            }
        }
        (Nspawn { child, notify }, t.elapsed())
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// SIGTERM (nspawn powers the guest off) and the wait for nspawn's exit.
    fn stop(mut self) -> Duration {
        let t = Instant::now();
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
        t.elapsed()
    }
}

impl Drop for Nspawn {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.notify);
    }
}

/// `cp -a ROOT DST` with a machine id and a host name of its own.
fn copy_root(root: &Path, dst: &Path, name: &str) {
    let st = Command::new("cp").arg("-a").arg(root).arg(dst).status().expect("cp");
    assert!(st.success(), "cp -a {} {}", root.display(), dst.display());
    let mut id = [0u8; 16];
    assert_eq!(unsafe { libc::getrandom(id.as_mut_ptr().cast(), 16, 0) }, 16);
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(dst.join("etc/machine-id"), format!("{id}\n")).unwrap();
    std::fs::write(dst.join("etc/hostname"), format!("{name}\n")).unwrap();
}

/// The monitors of the scratch daemon's running vservers (each the parent of its guest's pid 1).
fn monitors(s: &Scratch) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(s.run()).into_iter().flatten().flatten() {
        if let Ok(text) = std::fs::read_to_string(e.path().join("state.json")) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
                out.push(v["monitor_pid"].as_i64().unwrap_or(0) as i32);
            }
        }
    }
    out
}

fn row(what: &str, v: Vec<Duration>) {
    let (m, p10, p90) = median(v);
    println!("| {what} | {} | {} | {} |", ms(m), ms(p10), ms(p90));
}

/// One LXC container on a copy of the root, under the scratch directory (`lxc-start -P`):
/// LXC's common configuration, no network but `lo`, its init told to stop by SIGRTMIN+3 (what
/// systemd obeys). LXC relays no readiness, so the container's init gets a `NOTIFY_SOCKET` of
/// ours, bound in from a host directory.
struct Lxc {
    path: PathBuf,
    name: String,
    notify: UnixDatagram,
}

impl Lxc {
    fn available() -> bool {
        Command::new("lxc-start").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
    }

    fn new(path: &Path, root: &Path, name: &str) -> Lxc {
        let dir = path.join(name);
        std::fs::create_dir_all(dir.join("notify")).unwrap();
        copy_root(root, &dir.join("rootfs"), name);
        std::fs::write(
            dir.join("config"),
            format!(
                "lxc.uts.name = {name}\nlxc.rootfs.path = dir:{rootfs}\nlxc.include = /usr/share/lxc/config/common.conf\n\
                 lxc.net.0.type = empty\nlxc.apparmor.profile = unconfined\nlxc.tty.max = 0\nlxc.signal.halt = SIGRTMIN+3\n\
                 lxc.mount.entry = {notify} vnotify none bind,create=dir 0 0\nlxc.environment = NOTIFY_SOCKET=/vnotify/notify\n",
                rootfs = dir.join("rootfs").display(),
                notify = dir.join("notify").display()
            ),
        )
        .unwrap();
        let notify = UnixDatagram::bind(dir.join("notify/notify")).expect("notify socket");
        notify.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        Lxc { path: path.to_path_buf(), name: name.to_string(), notify }
    }

    fn lxc(&self, tool: &str, args: &[&str]) {
        let st = Command::new(tool).arg("-P").arg(&self.path).args(["-n", &self.name]).args(args).stdin(Stdio::null()).status().expect(tool);
        assert!(st.success(), "{tool} {} failed", self.name);
    }

    /// `lxc-start` until the guest says READY=1.
    fn boot(&self) -> Duration {
        let t = Instant::now();
        self.lxc("lxc-start", &[]);
        let mut buf = [0u8; 4096];
        loop {
            let n = self.notify.recv(&mut buf).expect("no READY=1 from the LXC guest within 60 s");
            if buf[..n].split(|b| *b == b'\n').any(|l| l == b"READY=1") {
                return t.elapsed();
            }
        }
    }

    /// `lxc-stop` (SIGRTMIN+3, waits for the container to end).
    fn stop(&self) -> Duration {
        let t = Instant::now();
        self.lxc("lxc-stop", &["-t", "30"]);
        t.elapsed()
    }

    /// pid 1 of the running container, as the host sees it.
    fn pid(&self) -> i32 {
        let out = Command::new("lxc-info").arg("-P").arg(&self.path).args(["-n", &self.name, "-p", "-H"]).output().expect("lxc-info");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
    }
}

impl Drop for Lxc {
    fn drop(&mut self) {
        let _ = Command::new("lxc-stop").arg("-P").arg(&self.path).args(["-n", &self.name, "-k"]).stderr(Stdio::null()).status();
    }
}

/// The monitor of a running LXC container: the `lxc-start` process, parent of its init.
fn lxc_monitor(pid: i32) -> i32 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s[s.rfind(')')? + 2..].split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(pid)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let boots: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let guests: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(5);
    let root = args.get(3).map(PathBuf::from).unwrap_or_else(|| repo_file("target/guest-cache/templates/bookworm-systemd-v2"));
    assert!(root.join("lib/systemd/systemd").exists(), "{} is not a root with systemd (see the documentation at the top)", root.display());

    let s = Scratch::start("vserver-bench-boot");
    let nspawn_dir = s.dir.join("nspawn");
    let lxc_dir = s.dir.join("lxc");
    std::fs::create_dir_all(&nspawn_dir).unwrap();
    std::fs::create_dir_all(&lxc_dir).unwrap();
    let with_lxc = Lxc::available();
    eprintln!("copying the root for {guests} guests of each tool");
    let mut lxcs = Vec::new();
    for i in 0..guests {
        s.vserverctl(&["build", &format!("vs{i}"), "--template", &root.display().to_string()]);
        copy_root(&root, &nspawn_dir.join(format!("ns{i}")), &format!("ns{i}"));
        if with_lxc {
            lxcs.push(Lxc::new(&lxc_dir, &root, &format!("lx{i}")));
        }
    }
    s.vserverctl(&["reload"]);

    // Boot times, in blocks of each tool in turn (the first boot of a block untimed).
    let (mut ours, mut our_stops, mut theirs, mut their_stops) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut lxc_boots, mut lxc_stops) = (Vec::new(), Vec::new());
    for _ in 0..boots.div_ceil(BLOCK) {
        for i in 0..=BLOCK {
            let t = Instant::now();
            s.vserverctl(&["start", "vs0"]);
            let boot = t.elapsed();
            let t = Instant::now();
            s.vserverctl(&["stop", "vs0"]);
            if i > 0 {
                ours.push(boot);
                our_stops.push(t.elapsed());
            }
        }
        for i in 0..=BLOCK {
            let (n, boot) = Nspawn::boot(&nspawn_dir.join("ns0"), "ns0");
            let stop = n.stop();
            if i > 0 {
                theirs.push(boot);
                their_stops.push(stop);
            }
        }
        for i in 0..=BLOCK * usize::from(with_lxc) {
            let boot = lxcs[0].boot();
            let stop = lxcs[0].stop();
            if i > 0 {
                lxc_boots.push(boot);
                lxc_stops.push(stop);
            }
        }
    }
    println!("# Booting a Debian 12 systemd guest until READY=1: {boots} boots of each tool, in blocks of {BLOCK} in turn; milliseconds");
    println!("| what | median | p10 | p90 |");
    println!("|---|---|---|---|");
    let (our_median, _, _) = median(ours.clone());
    let (their_median, _, _) = median(theirs.clone());
    row("`vserverctl start` (returns at READY=1)", ours);
    row("`systemd-nspawn --boot --notify-ready=yes` until READY=1", theirs);
    let lxc_median = (!lxc_boots.is_empty()).then(|| median(lxc_boots.clone()).0);
    if with_lxc {
        row("`lxc-start` until READY=1", lxc_boots);
    }
    row("`vserverctl stop` (SIGRTMIN+3, until pid 1 has halted)", our_stops);
    row("nspawn's shutdown (SIGTERM, until nspawn has exited)", their_stops);
    if with_lxc {
        row("`lxc-stop` (SIGRTMIN+3, until the container has ended)", lxc_stops);
    }
    println!("\nvserverctl start / nspawn = {:.2}", our_median.as_secs_f64() / their_median.as_secs_f64());
    match lxc_median {
        Some(l) => println!("vserverctl start / lxc-start = {:.2}\n", our_median.as_secs_f64() / l.as_secs_f64()),
        None => println!("lxc-start: not installed (apt-get install lxc); not measured\n"),
    }

    // Memory per idle booted guest: `guests` of each at once, counted whole.
    let idle = || std::thread::sleep(Duration::from_secs(5));
    let before = settled_meminfo();
    for i in 0..guests {
        s.vserverctl(&["start", &format!("vs{i}")]);
    }
    idle();
    let after = settled_meminfo();
    let pss: u64 = monitors(&s).into_iter().map(pss_tree_kb).sum();
    let vs = PerUnit::of(&before, &after, pss, guests);
    s.vserverctl(&["stop", "--all"]);

    let before: Meminfo = settled_meminfo();
    let running: Vec<Nspawn> = (0..guests).map(|i| Nspawn::boot(&nspawn_dir.join(format!("ns{i}")), &format!("ns{i}")).0).collect();
    idle();
    let after = settled_meminfo();
    let pss: u64 = running.iter().map(|n| pss_tree_kb(n.pid())).sum();
    let ns = PerUnit::of(&before, &after, pss, guests);
    for n in running {
        n.stop();
    }
    let lx = with_lxc.then(|| {
        let before = settled_meminfo();
        for l in &lxcs {
            l.boot();
        }
        idle();
        let after = settled_meminfo();
        let pss: u64 = lxcs.iter().map(|l| pss_tree_kb(lxc_monitor(l.pid()))).sum();
        for l in &lxcs {
            l.stop();
        }
        PerUnit::of(&before, &after, pss, guests)
    });
    let lxc_col = |f: fn(&PerUnit) -> u64| lx.as_ref().map(|m| format!(" {} |", f(m))).unwrap_or_default();
    println!("# Memory per idle booted guest ({guests} at once, each tool on its own copies of the root), kB");
    println!("| per guest | vserver | systemd-nspawn |{}", if with_lxc { " LXC |" } else { "" });
    println!("|---|---|---|{}", if with_lxc { "---|" } else { "" });
    println!("| PSS of its processes (the supervisor's included: the monitor; nspawn; lxc-start) | {} | {} |{}", vs.pss, ns.pss, lxc_col(|m| m.pss));
    println!("| kernel memory (slab, page tables, stacks, per-cpu) | {} | {} |{}", vs.kernel, ns.kernel, lxc_col(|m| m.kernel));
    println!("| **counted whole** (PSS, kernel memory, vmalloc, tmpfs) | {} | {} |{}", vs.whole, ns.whole, lxc_col(|m| m.whole));
    println!("| drop of the host's MemAvailable | {} | {} |{}", vs.available, ns.available, lxc_col(|m| m.available));
    drop(lxcs);
    drop(s);
}
