//! The monitor's later lives. Once its vserver runs and pid 1 is ready, the monitor execs the
//! serving program (`vserver-monitor`, `engine/c/monitor.c`: free-standing, a few pages), which
//! copies the console and waits for pid 1's end; then it execs this binary again as
//! `vserverd monitor-end NAME code|signal N`, which does the end: the cgroups emptied and
//! removed, the network undone, the context number released, the end written to `state.json`.
//!
//! One process all along: its pid and start time (what the daemon knows the monitor by, in
//! `state.json` and in the registry), its parenthood of pid 1 and its signal mask (SIGCHLD
//! blocked) stay. What the end needs goes through both execs as a [`Handover`] in the
//! environment (JSON; the serving program passes it on unread), with the descriptors it names
//! left open: the root's lease and the network's sockets. Everything else is close-on-exec.
//!
//! vserverd with its runtime and libraries, and the pages and page tables its setup touched,
//! cost each vserver about 200 kB for its whole life; the serving program costs a few pages
//! (docs/daemon.md, the benchmark). The end runs the same build that started the vserver: it is
//! exec'd from the descriptor of the monitor's own binary (the daemon's sealed copy), kept by the
//! serving program, whatever the daemon has become since.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use vserver_config::run::RunState;
use vserver_engine::cgroup::CgroupPlan;
use vserver_engine::spawn::NetworkHandover;
use vserver_engine::Exit;

use super::ConsoleLog;

/// Where the daemon tells a monitor its shared copy of the serving program is (the daemon's pool).
pub const SHARED_ENV: &str = "VSERVER_SHARED_MONITOR";
/// The [`Handover`]'s variable.
pub const HANDOVER_ENV: &str = "VSERVER_MONITOR_HANDOVER";

/// What the end of a monitor needs, from its start.
#[derive(Debug, Serialize, Deserialize)]
pub struct Handover {
    pub state: RunState,
    pub run_dir: PathBuf,
    pub cgroup: CgroupPlan,
    pub network: NetworkHandover,
    pub log_file: PathBuf,
    pub log_max: u64,
    pub log_keep: u32,
    /// The descriptor holding the root's lease (released when the monitor ends).
    pub lease: Option<RawFd>,
}

/// The console as the serving program takes it over.
pub struct ServedConsole<'a> {
    pub pid: i32,
    pub master: RawFd,
    /// The pty's slave, as the host names it.
    pub slave: &'a str,
    pub listener: Option<RawFd>,
    pub viewers: Vec<RawFd>,
    pub log: &'a ConsoleLog,
}

static PROGRAM: vserver_engine::sealed::SharedProgram =
    vserver_engine::sealed::SharedProgram::new(c"vserver-monitor", vserver_engine::freestanding::MONITOR);

/// The sealed memfd holding the serving program: the daemon's, when [`share`] took it;
/// otherwise made here (then this monitor has a copy of its own).
fn binary() -> Result<RawFd, Errno> {
    PROGRAM.fd()
}

/// The daemon's copy of the serving program, for its pool (`/proc/PID/fd/N` of it is given to
/// each monitor, which opens it at once: see [`share`]).
pub fn daemon_copy() -> Option<RawFd> {
    binary().ok()
}

/// Takes the serving program's memfd another process made (`path`: its `/proc/PID/fd/N`), so
/// that all the monitors run the same pages. Used only if it is a memfd sealed for good holding
/// this very program.
pub fn share(path: &Path) -> bool {
    PROGRAM.share(path)
}

fn set_cloexec(fd: RawFd, on: bool) {
    unsafe { libc::fcntl(fd, libc::F_SETFD, if on { libc::FD_CLOEXEC } else { 0 }) };
}

/// Execs the serving program for `served`, with `handover` for the end. Returns only when it
/// could not: then the monitor serves on itself (the descriptors it left open for the exec are
/// harmless: it runs nothing afterwards).
pub fn exec_serving(name: &str, served: &ServedConsole<'_>, handover: &Handover) -> Errno {
    let program = match binary() {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    // The monitor's own binary (the daemon's sealed copy), for the end: open across the exec.
    let exe = match nix::fcntl::open("/proc/self/exe", nix::fcntl::OFlag::O_RDONLY, nix::sys::stat::Mode::empty()) {
        Ok(fd) => unsafe { OwnedFd::from_raw_fd(fd) },
        Err(e) => return e,
    };
    let json = serde_json::to_string(handover).expect("handover serializes");
    let viewers: Vec<String> = served.viewers.iter().map(|f| f.to_string()).collect();
    let env = [
        format!("{HANDOVER_ENV}={json}"),
        format!("VSERVER_SERVE_PID={}", served.pid),
        format!("VSERVER_SERVE_EXE={}", exe.as_raw_fd()),
        format!("VSERVER_SERVE_CONSOLE={}", served.master),
        format!("VSERVER_SERVE_SLAVE={}", served.slave),
        format!("VSERVER_SERVE_LISTENER={}", served.listener.unwrap_or(-1)),
        format!("VSERVER_SERVE_VIEWERS={}", viewers.join(",")),
        format!("VSERVER_SERVE_LOG={}", served.log.path.display()),
        format!("VSERVER_SERVE_LOG_MAX={}", served.log.max),
        format!("VSERVER_SERVE_LOG_KEEP={}", served.log.keep),
    ];
    let Ok(envp) = env.into_iter().map(CString::new).collect::<Result<Vec<_>, _>>() else { return Errno::EINVAL };
    let Ok(argv) = ["vserver-monitor", "monitor", name].into_iter().map(CString::new).collect::<Result<Vec<_>, _>>() else {
        return Errno::EINVAL;
    };
    // Nothing but what is named above goes on: every other descriptor closes at the exec.
    if let Err(e) = vserver_engine::sys::cloexec_from(3) {
        return e;
    }
    let passed = [exe.as_raw_fd(), served.master].into_iter().chain(served.listener).chain(served.viewers.iter().copied()).chain(handover.lease);
    let network = handover.network.attached.as_ref().and_then(|a| a.inside);
    for fd in passed.chain(network) {
        set_cloexec(fd, false);
    }
    vserver_engine::sys::execveat_fd(program, &argv, &envp)
}

/// `vserverd monitor-end NAME code|signal N`, exec'd by the serving program once pid 1 has
/// ended (and been reaped): the monitor's end, as [`super::run`] does it. Never returns.
pub fn end_main(argv: &[String]) -> ! {
    super::set_name();
    let exit = match (argv.get(3).map(String::as_str), argv.get(4).and_then(|n| n.parse::<i32>().ok())) {
        (Some("code"), Some(n)) => Exit::Code(n),
        (Some("signal"), Some(n)) => Exit::Signal(n),
        _ => {
            eprintln!("vserverd monitor-end: expects NAME code|signal N (run by the monitor)");
            std::process::exit(2);
        }
    };
    let Some(h) = std::env::var(HANDOVER_ENV).ok().and_then(|j| serde_json::from_str::<Handover>(&j).ok()) else {
        // The daemon sees the monitor end without a record, and ends what is left.
        eprintln!("vserverd monitor-end: no handover in {HANDOVER_ENV}");
        std::process::exit(2);
    };
    let Handover { state, run_dir, cgroup, network, log_file, log_max, log_keep, lease: _ } = h;
    // The descriptors the handover names were left open for this exec, and are ours now.
    let ctx = unsafe { vserver_engine::Context::taken_over(&state.name, state.context, state.pid, state.start_time, run_dir.clone(), network) };
    let mut log = ConsoleLog::open(&log_file, log_max, log_keep);
    // The serving program's viewers saw the console close at the exec; their socket goes.
    let _ = std::fs::remove_file(super::console::socket_path(&run_dir, &state.name));
    super::end(&ctx, &cgroup, &run_dir, state, &mut log, exit);
    std::process::exit(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_serving_program_is_small_static_and_shared_only_sealed() {
        let bin = vserver_engine::freestanding::MONITOR;
        assert!(bin.starts_with(b"\x7fELF"));
        assert!(bin.len() < 16 * 1024, "{} bytes", bin.len());
        let fd = binary().unwrap();
        let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
        assert!(seals & libc::F_SEAL_WRITE != 0 && seals & libc::F_SEAL_SEAL != 0, "seals {seals:#x}");
        let plain = std::env::temp_dir().join(format!("vserver-monitor-test-{}", std::process::id()));
        std::fs::write(&plain, bin).unwrap();
        assert!(vserver_engine::sealed::open_shared(&plain, bin).is_none(), "an unsealed file is refused");
        let _ = std::fs::remove_file(&plain);
        let own = PathBuf::from(format!("/proc/self/fd/{fd}"));
        assert!(vserver_engine::sealed::open_shared(&own, bin).is_some());
        assert!(vserver_engine::sealed::open_shared(&own, vserver_engine::freestanding::INIT).is_none(), "another program is refused");
    }

    #[test]
    fn a_handover_goes_through_the_environment_whole() {
        let attached = vserver_engine::net::attach::AttachedRecord {
            inside: Some(7),
            inside_links: vec![(2, "eth0".into())],
            host_ends: vec![(41, "vs101h0".into())],
            proxies: vec![(3, "lan0".into(), "192.0.2.5".parse().unwrap())],
        };
        let state = RunState {
            name: "web".into(),
            context: 101,
            pid: 4242,
            start_time: 99,
            monitor_pid: 4240,
            monitor_start_time: 98,
            started_at: 1,
            console: "/dev/pts/3".into(),
            exit: None,
            ended_at: None,
            booting: false,
            stop_signal: libc::SIGTERM,
        };
        let h = Handover {
            state: state.clone(),
            run_dir: "/run/vservers".into(),
            cgroup: CgroupPlan::default(),
            network: NetworkHandover { attached: Some(attached.clone()), bound: None },
            log_file: "/var/log/vservers/web.log".into(),
            log_max: 1 << 20,
            log_keep: 3,
            lease: Some(5),
        };
        let json = serde_json::to_string(&h).unwrap();
        assert!(!json.contains('\0'));
        let back: Handover = serde_json::from_str(&json).unwrap();
        assert_eq!(back.state, state);
        assert_eq!(back.network.attached, Some(attached));
        assert_eq!((back.lease, back.log_max, back.log_keep), (Some(5), 1 << 20, 3));
    }
}
