//! `chbind`: the paper's tool. Runs a command that, with every process it starts, may only use
//! the given addresses: a bind to the wildcard address gets the first of them (of its family),
//! a bind to any other address fails (`EADDRNOTAVAIL`), connections and datagrams leave from
//! them, and its loopback is private. `--ip eth0` takes the addresses eth0 has.
//!
//! ```text
//! chbind [--ip ADDR|IFACE]... [--bcast ADDR] [--silent] [--] CMD [ARGS]
//! ```
//!
//! It uses bind mode's socket hooks ([`vserver_engine::bindaddr`]) on a cgroup of its own below
//! the caller's v2 cgroup (`…/chbind-PID`), moves itself there and execs the command (which
//! keeps chbind's pid, so a service manager sees no difference). A small process left behind,
//! outside the cgroup and no child of the command, removes the cgroup, its hooks and its private
//! loopback once the last process in it has ended.

mod common;

use std::ffi::CString;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::exit;

use common::Args;
use vserver_engine::bindaddr::bound::{self, BindPlan, Bound};
use vserver_engine::plan::IfAddr;
use vserver_engine::registry::DEFAULT_RUN_DIR;

const USAGE: &str = "usage: chbind [--ip ADDR|IFACE]... [--bcast ADDR] [--silent] [--] CMD [ARGS]";

fn die(msg: &str, code: i32) -> ! {
    eprintln!("chbind: {msg}");
    exit(code)
}

#[derive(Default)]
struct Options {
    ips: Vec<String>,
    bcast: Option<std::net::Ipv4Addr>,
    silent: bool,
    cmd: Vec<String>,
}

fn parse(mut args: Args) -> Options {
    let mut o = Options::default();
    while let Some(a) = args.option() {
        match a.as_str() {
            "--ip" => o.ips.push(args.value("--ip")),
            "--bcast" => {
                let v = args.value("--bcast");
                o.bcast = Some(v.parse().unwrap_or_else(|_| die(&format!("--bcast: {v:?} is not an IPv4 address"), 2)));
            }
            "--silent" => o.silent = true,
            s => args.unknown(s),
        }
    }
    if o.ips.is_empty() {
        die(&format!("no address given (--ip ADDR or --ip IFACE)\n{USAGE}"), 2);
    }
    o.cmd = args.command();
    o
}

/// `--ip` values as addresses: an address (a `/prefix` is allowed and ignored), or an
/// interface's addresses (IPv4, and IPv6 but link-local).
fn addresses(ips: &[String]) -> Vec<IfAddr> {
    let mut out: Vec<IfAddr> = Vec::new();
    for v in ips {
        let text = v.split('/').next().unwrap_or("");
        let found = match text.parse::<IpAddr>() {
            Ok(addr) => vec![IfAddr { addr, prefix: if addr.is_ipv4() { 32 } else { 128 } }],
            Err(_) => match bound::interface_addresses(v) {
                Ok(list) if list.is_empty() => die(&format!("--ip {v}: the interface has no address"), 1),
                Ok(list) => list,
                Err(e) => die(&format!("--ip {v}: {e}"), 1),
            },
        };
        for a in found {
            if !out.iter().any(|o| o.addr == a.addr) {
                out.push(a);
            }
        }
    }
    out
}

/// The caller's own cgroup of the v2 tree, as a directory.
fn own_cgroup() -> Result<PathBuf, String> {
    let v2 = ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(Path::new)
        .find(|p| nix::sys::statfs::statfs(*p).is_ok_and(|s| s.filesystem_type().0 == 0x6367_7270))
        .ok_or("this host has no cgroup v2 tree (at /sys/fs/cgroup or /sys/fs/cgroup/unified): chbind's hooks need one")?;
    let own = std::fs::read_to_string("/proc/self/cgroup").map_err(|e| format!("/proc/self/cgroup: {e}"))?;
    let path = own.lines().find_map(|l| l.strip_prefix("0::")).ok_or("/proc/self/cgroup names no cgroup of the v2 tree")?;
    Ok(v2.join(path.trim().trim_start_matches('/')))
}

fn write_procs(dir: &Path, what: &str) -> std::io::Result<()> {
    std::fs::write(dir.join("cgroup.procs"), what)
}

/// The process left behind: outside the cgroup, in a session of its own, no child of the
/// command. Waits until nobody is left in the cgroup, then unbinds and removes it.
fn clean_up_after(cgroup: &Path, home: &Path, mut bound: Bound) -> ! {
    let _ = nix::unistd::setsid();
    let _ = write_procs(home, "0");
    if let Ok(null) = std::fs::OpenOptions::new().read(true).write(true).open("/dev/null") {
        for fd in 0..3 {
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    let events = cgroup.join("cgroup.events");
    loop {
        match std::fs::read_to_string(&events) {
            Ok(s) if s.lines().any(|l| l == "populated 1") => {}
            _ => break,
        }
        // The kernel wakes a poll for POLLPRI on cgroup.events at each change; the timeout is a
        // safety net only.
        if let Ok(f) = std::fs::File::open(&events) {
            let mut p = libc::pollfd { fd: f.as_raw_fd(), events: libc::POLLPRI, revents: 0 };
            let mut buf = [0u8; 64];
            unsafe { libc::read(f.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            unsafe { libc::poll(&mut p, 1, 10_000) };
        }
    }
    bound.teardown();
    for _ in 0..500 {
        if std::fs::remove_dir(cgroup).is_ok() || !cgroup.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    exit(0)
}

fn main() {
    let o = parse(Args::new(USAGE, die));
    if !nix::unistd::geteuid().is_root() {
        die("binding a command to addresses needs root (cgroups and socket hooks)", 1);
    }
    let run_dir = PathBuf::from(std::env::var("VSERVER_RUN_DIR").unwrap_or_else(|_| DEFAULT_RUN_DIR.into()));
    let mut plan = BindPlan::new(addresses(&o.ips), None);
    plan.broadcast = o.bcast;

    let home = own_cgroup().unwrap_or_else(|e| die(&e, 1));
    let cgroup = home.join(format!("chbind-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir(&cgroup) {
        die(&format!("{}: {e}", cgroup.display()), 1);
    }
    let name = format!("chbind {}", o.cmd[0]);
    let mut b = match vserver_engine::bindaddr::bind(&plan, &name, 0, &run_dir, &cgroup, None) {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_dir(&cgroup);
            die(&e.to_string(), 1)
        }
    };
    // Into the bound cgroup: from here on every process we start is bound.
    if let Err(e) = write_procs(&cgroup, "0") {
        b.teardown();
        let _ = std::fs::remove_dir(&cgroup);
        die(&format!("{}: {e}", cgroup.join("cgroup.procs").display()), 1);
    }
    // The cleaner: forked twice, so that it is no child of the command.
    match unsafe { libc::fork() } {
        0 => {
            if unsafe { libc::fork() } == 0 {
                clean_up_after(&cgroup, &home, b);
            }
            unsafe { libc::_exit(0) };
        }
        pid if pid > 0 => {
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
        }
        _ => {
            let e = std::io::Error::last_os_error();
            let _ = write_procs(&home, "0");
            b.teardown();
            let _ = std::fs::remove_dir(&cgroup);
            die(&format!("fork: {e}"), 1);
        }
    }
    if !o.silent {
        let list: Vec<String> = plan.addresses.iter().map(|a| a.addr.to_string()).collect();
        eprintln!("chbind: {} bound to {} (loopback {})", o.cmd[0], list.join(", "), b.rules.lo4);
    }
    let argv: Vec<CString> = o.cmd.iter().map(|a| CString::new(a.as_str()).unwrap_or_else(|_| die("an argument holds a NUL byte", 2))).collect();
    let e = nix::unistd::execvp(&argv[0], &argv).unwrap_err();
    die(&format!("cannot run {}: {}", o.cmd[0], e.desc()), 127);
}
