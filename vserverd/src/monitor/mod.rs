//! The per-vserver monitor: a small single-threaded process (a re-exec of `vserverd` as
//! `vserverd monitor NAME`) that builds the context with the engine and stays as the parent of
//! its pid 1. It alone sees how pid 1 ends, and it outlives a restart of the daemon. Once pid 1
//! is ready it execs a program of a few pages that serves the vserver until pid 1 ends, and that
//! execs `vserverd monitor-end` for the end ([`handover`]): one process all along.
//!
//! Protocol with the daemon: the request (JSON [`MonitorRequest`]) on stdin; one JSON line
//! [`MonitorReport`] on stdout once pid 1 runs or the start failed, then stdout is closed.
//! From then on everything goes through files in `RUN_DIR/NAME/` (see `vserver_config::run`):
//! `state.json` holds pid 1's identity and, once it has ended, how. The console (a pty the monitor holds) is copied to `LOG_DIR/NAME.log`, rotated by size.

pub mod console;
pub mod handover;
pub mod readiness;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use vserver_config::run::{now_us, state_path, write_state, MonitorReport, MonitorRequest, RunState, SHARED_INIT_ENV};
use vserver_engine::{Exit, SetupError};

/// `vserverd monitor NAME`: never returns.
pub fn main(name: &str) -> ! {
    // Our own session: the daemon's terminal or process group signals never reach us.
    let _ = nix::unistd::setsid();
    // Named as in `ps` through its execs (an exec through a descriptor names it by the number).
    set_name();
    // What does not depend on the request is made while we wait for it (a ready monitor waits
    // for the next start): the console pty, and a network namespace with `lo` up.
    let prepared = Prepared { console: open_console().ok(), netns: vserver_engine::net::ns::made_ahead().ok() };
    if let Some(path) = std::env::var_os(SHARED_INIT_ENV) {
        // Otherwise the engine makes a copy of its own.
        vserver_engine::vserver_init::share(Path::new(&path));
    }
    if let Some(path) = std::env::var_os(handover::SHARED_ENV) {
        // Opened now: the daemon that gave it may be gone by the time it is exec'd.
        handover::share(Path::new(&path));
    }
    // Read once now, not during the start.
    vserver_engine::caps::last_cap();
    vserver_engine::registry::me();
    let req = read_request(name);
    // The report channel is stdout now; pid 1 gets the console pty as 0, 1 and 2.
    let report = unsafe { OwnedFd::from_raw_fd(libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3)) };
    let mut report = File::from(report);
    match run(req, prepared, &mut report) {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            let line = serde_json::to_string(&MonitorReport::Failed(e)).expect("report serializes");
            let _ = writeln!(report, "{line}");
            std::process::exit(1);
        }
    }
}

/// `comm`: `vserver-monitor`, as the serving program names itself too.
pub(crate) fn set_name() {
    unsafe { libc::prctl(libc::PR_SET_NAME, c"vserver-monitor".as_ptr()) };
}

/// The request on stdin (end-of-file without one: the daemon has gone). Not inlined: the
/// parser's frames stay below the monitor's, and the serve loop gives them back.
#[inline(never)]
fn read_request(name: &str) -> MonitorRequest {
    // Room for a usual request (under 1 kB), so that it comes in one read.
    let mut input = String::with_capacity(4096);
    // Straight from fd 0: `std::io::stdin()` would keep an 8 kB buffer for the monitor's life.
    let mut stdin = std::mem::ManuallyDrop::new(unsafe { File::from_raw_fd(0) });
    if stdin.read_to_string(&mut input).is_err() {
        std::process::exit(2);
    }
    if input.is_empty() {
        // A monitor started ahead of time that no start needed: the daemon has gone.
        std::process::exit(0);
    }
    match serde_json::from_str(&input) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vserverd monitor{}{name}: bad request: {e}", if name.is_empty() { "" } else { " " });
            std::process::exit(2);
        }
    }
}

/// A pty pair: the master stays here, the slave (its path, and the slave opened) is pid 1's
/// console.
fn open_console() -> Result<(OwnedFd, String, OwnedFd), SetupError> {
    let err = |e: Errno| SetupError::new(vserver_engine::Step::Validate, Some("/dev/ptmx".into()), e).with_detail("console pty");
    let master = nix::pty::posix_openpt(nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC).map_err(err)?;
    nix::pty::grantpt(&master).map_err(err)?;
    nix::pty::unlockpt(&master).map_err(err)?;
    let slave = nix::pty::ptsname_r(&master).map_err(err)?;
    let fd = unsafe { OwnedFd::from_raw_fd(master.as_raw_fd()) };
    std::mem::forget(master);
    let slave_fd = nix::fcntl::open(slave.as_str(), nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
        .map_err(|e| SetupError::new(vserver_engine::Step::Validate, Some(slave.clone()), e))?;
    Ok((fd, slave, unsafe { OwnedFd::from_raw_fd(slave_fd) }))
}

/// Kernel objects a monitor makes before its request arrives.
struct Prepared {
    console: Option<(OwnedFd, String, OwnedFd)>,
    netns: Option<OwnedFd>,
}

/// A vserver whose pid 1 runs, as its monitor serves it.
struct Running {
    ctx: vserver_engine::Context,
    state: RunState,
    run_dir: PathBuf,
    master: OwnedFd,
    sfd: SignalFd,
    cg: vserver_engine::cgroup::CgroupPlan,
    log: ConsoleLog,
    viewers: console::Viewers,
    boot: Option<Boot>,
    /// The descriptor of the root's lease, held until the monitor ends.
    lease: Option<RawFd>,
}

/// A pid 1 that has not said it is ready yet: its notify socket, and the report channel the
/// daemon waits on for [`MonitorReport::Ready`].
struct Boot {
    socket: crate::monitor::readiness::NotifySocket,
    report: File,
}

/// The console as the serve loop copies it: the pty's master, the log, the viewers.
struct Console<'a> {
    master: std::os::fd::BorrowedFd<'a>,
    log: &'a mut ConsoleLog,
    viewers: &'a mut console::Viewers,
}

fn run(req: MonitorRequest, prepared: Prepared, report: &mut File) -> Result<(), SetupError> {
    let Running { ctx, mut state, run_dir, master, sfd, cg, mut log, mut viewers, mut boot, lease } = start(req, prepared, report)?;
    // The setup's heap (the request, the plan, the engine's buffers) and stack go back to the
    // kernel: a monitor lives as long as its vserver, and one per vserver runs (they matter
    // when it serves on itself, without the serving program).
    unsafe { libc::malloc_trim(0) };
    release_stack_below_here();
    let mut hand_over = true;
    let exit = loop {
        let mut console = Console { master: master.as_fd(), log: &mut log, viewers: &mut viewers };
        match serve(ctx.pid, &sfd, &mut console, &mut boot, &mut state, &run_dir, hand_over) {
            Served::Ended(exit) => break exit,
            Served::Ready => {
                // pid 1 runs and is ready: the serving program takes over (no return).
                let h = handover::Handover {
                    state: state.clone(),
                    run_dir: run_dir.clone(),
                    cgroup: cg.clone(),
                    network: ctx.network_handover(),
                    log_file: log.path.clone(),
                    log_max: log.max,
                    log_keep: log.keep,
                    lease,
                };
                let served = handover::ServedConsole {
                    pid: ctx.pid,
                    master: master.as_raw_fd(),
                    slave: &state.console,
                    listener: viewers.listener_fd(),
                    viewers: viewers.viewer_fds(),
                    log: &log,
                };
                let e = handover::exec_serving(&state.name, &served, &h);
                log.write(format!("vserver-monitor: cannot exec the serving program: {e}; serving on\n").as_bytes());
                hand_over = false;
            }
        }
    };
    // The viewers see the console close; the socket goes.
    drop(viewers);
    end(&ctx, &cg, &run_dir, state, &mut log, exit);
    Ok(())
}

/// The monitor's end, once pid 1 has ended (here, or in `vserverd monitor-end` after the
/// serving program): nothing of the vserver is left, and `state.json` says how pid 1 ended.
pub(crate) fn end(ctx: &vserver_engine::Context, cg: &vserver_engine::cgroup::CgroupPlan, run_dir: &Path, mut state: RunState, log: &mut ConsoleLog, exit: Exit) {
    // Processes that entered later are in the cgroup too: none survives its vserver.
    if let Err(e) = vserver_engine::cgroup::kill_all(cg, std::time::Duration::from_secs(10)) {
        log.write(format!("vserver-monitor: {e}\n").as_bytes());
    }
    vserver_engine::cgroup::remove(cg);
    // The links go before the number is released: a restart reuses the host ends' names.
    ctx.cleanup_network();
    // The context number, and the id range of a user namespace.
    ctx.release();
    state.exit = Some(exit);
    state.ended_at = Some(now_us());
    let _ = write_state(run_dir, &state);
}

/// Why the serve loop returned.
enum Served {
    Ended(Exit),
    /// pid 1 is ready (or was never asked to say so): the serving program may take over.
    Ready,
}

/// Builds the context and reports it. Not inlined: its frames (the engine's among them) lie
/// below the serve loop's, whose stack stays small once they are given back.
#[inline(never)]
fn start(req: MonitorRequest, prepared: Prepared, report: &mut File) -> Result<Running, SetupError> {
    let mut plan = req.plan;
    let run_dir = plan.run_dir.clone();
    // One run of a root at a time, on this host and on any host sharing its storage.
    let lease = match &plan.root {
        Some(root) => Some(vserver_engine::lease::take(&plan.name, root, &run_dir).map_err(lease_error)?.hold_until_exit()),
        None => None,
    };
    let (master, slave, slave_fd) = match prepared.console {
        Some(c) => c,
        None => open_console()?,
    };
    plan.console = Some(PathBuf::from(&slave));

    // SIGCHLD through a signalfd, blocked before pid 1 exists so no exit is missed.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block().map_err(|e| SetupError::new(vserver_engine::Step::Validate, None, e))?;
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)
        .map_err(|e| SetupError::new(vserver_engine::Step::Validate, None, e))?;

    // pid 1 inherits 0, 1, 2: make them the console's slave.
    for target in 0..3 {
        unsafe { libc::dup2(slave_fd.as_raw_fd(), target) };
    }
    drop(slave_fd);

    // Bound before pid 1 exists, so that nothing it says is lost.
    let notify = match &req.notify {
        Some(p) => Some(crate::monitor::readiness::NotifySocket::bind(p).map_err(|e| {
            SetupError::new(vserver_engine::Step::HostSetup, Some(p.display().to_string()), e).with_detail("pid 1's notify socket")
        })?),
        None => None,
    };
    let cg = req.cgroup.clone().unwrap_or_default();
    vserver_engine::cgroup::create(&cg)?;
    // Sync point 2 of the engine: pid 1 enters its cgroups before it runs a single step. It is
    // born in its v2 cgroup (no migration: a migration waits for an RCU grace period, several
    // milliseconds); the v1 hierarchies a hybrid host needs for limits take it afterwards.
    // A plan without a namespace of its own (host, bind) leaves the one made ahead unused: it
    // goes once the start is reported, so that its teardown (which takes the kernel's network
    // lock) does not land on the start.
    let (netns, unused_netns) =
        if plan.network == vserver_engine::Network::None { (prepared.netns, None) } else { (None, prepared.netns) };
    let placement = vserver_engine::Placement { cgroups: Some(&cg), netns };
    let ctx = match vserver_engine::spawn_in(&plan, placement) {
        Ok(ctx) => ctx,
        Err(e) => {
            vserver_engine::cgroup::remove(&cg);
            return Err(e);
        }
    };
    let (monitor_pid, monitor_start_time) = vserver_engine::registry::me();
    let state = RunState {
        name: plan.name.clone(),
        context: ctx.context,
        pid: ctx.pid,
        start_time: ctx.start_time,
        monitor_pid,
        monitor_start_time,
        started_at: now_us(),
        console: slave,
        exit: None,
        ended_at: None,
        booting: notify.is_some(),
        stop_signal: req.stop_signal,
    };
    // The log and the viewers' socket exist before anyone is told the vserver runs: a client
    // that attaches the moment it is reported running finds the socket listening.
    let log = ConsoleLog::open(&req.log_file, req.log_max_bytes, req.log_keep);
    let viewers = console::Viewers::open(&console::socket_path(&run_dir, &plan.name));
    if let Err(e) = write_state(&run_dir, &state) {
        let _ = nix::sys::signal::kill(Pid::from_raw(ctx.pid), Signal::SIGKILL);
        let _ = ctx.wait();
        return Err(SetupError::new(vserver_engine::Step::Registry, Some(state_path(&run_dir, &plan.name).display().to_string()), Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))));
    }
    let line = serde_json::to_string(&MonitorReport::Started(state.clone())).expect("report serializes");
    let _ = writeln!(report, "{line}");
    drop(unused_netns);
    // Nothing of the daemon's is kept: stdin and stdout go, the host's /dev/null takes their place.
    if let Ok(null) = File::open("/dev/null") {
        unsafe {
            libc::dup2(null.as_raw_fd(), 0);
            libc::dup2(null.as_raw_fd(), 1);
            libc::dup2(null.as_raw_fd(), 2);
        }
    }
    // A pid 1 that will say when it is ready keeps the report channel until it does.
    let boot = match (notify, report.try_clone()) {
        (Some(socket), Ok(report)) => Some(Boot { socket, report }),
        _ => None,
    };

    Ok(Running { ctx, state, run_dir, master, sfd, cg, log, viewers, boot, lease })
}

/// pid 1 said it is ready: the state says so, the daemon is told, and the notify socket goes
/// (nothing else of the protocol is served).
fn booted(boot: Boot, state: &mut RunState, run_dir: &Path, log: &mut ConsoleLog) {
    state.booting = false;
    if let Err(e) = write_state(run_dir, state) {
        log.write(format!("vserver-monitor: {}: {e}\n", state_path(run_dir, &state.name).display()).as_bytes());
    }
    // The socket goes before the daemon hears of it: whoever sees the vserver running finds
    // no notify socket left.
    let Boot { socket, mut report } = boot;
    drop(socket);
    let line = serde_json::to_string(&MonitorReport::Ready).expect("report serializes");
    // A daemon restarted meanwhile no longer reads it: it watches the state file.
    let _ = writeln!(report, "{line}");
}

/// Gives back the stack pages below the caller's frame, which the setup (the request's parsing,
/// the engine) touched and the serve loop will not need: the kernel zero-fills any page it
/// touches again (the loop's own frames fault in the few they use).
#[inline(never)]
fn release_stack_below_here() {
    const MARGIN: usize = 4096;
    let marker = 0u8; // on this frame's stack (a `&0u8` would point at a constant)
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    let Ok(maps) = fs::read_to_string("/proc/self/maps") else { return };
    let Some(bottom) = maps
        .lines()
        .find(|l| l.ends_with("[stack]"))
        .and_then(|l| l.split('-').next())
        .and_then(|a| usize::from_str_radix(a, 16).ok())
    else {
        return;
    };
    let end = here.saturating_sub(MARGIN) & !4095;
    if end > bottom {
        unsafe { libc::madvise(bottom as *mut libc::c_void, end - bottom, libc::MADV_DONTNEED) };
    }
}

/// The lock's message names its file already.
fn lease_error(e: vserver_engine::lease::LeaseError) -> SetupError {
    SetupError::detail(vserver_engine::Step::Validate, None, e.to_string())
}

/// Copies the console to the log and to its viewers (and what they type to it) until pid 1
/// ends, or, with `hand_over`, until it is ready; returns which.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
fn serve(pid: i32, sfd: &SignalFd, console: &mut Console<'_>, boot: &mut Option<Boot>, state: &mut RunState, run_dir: &Path, hand_over: bool) -> Served {
    let Console { master, log, viewers } = console;
    let master = *master;
    // One page: the loop's whole stack stays within a few pages for the vserver's life.
    let mut buf = [0u8; 4096];
    let mut console_open = true;
    // A slave of our own, opened once nobody inside holds one: a real init hangs up its
    // console (vhangup) and opens it again, and the master reads EIO in between.
    let mut held_slave: Option<OwnedFd>;
    // Reopens with no data read since: a console that keeps failing is given up.
    let mut reopens = 0;
    // Never block on the console: a pid 1 that does not read its input loses what viewers type.
    let _ = nix::fcntl::fcntl(master.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
    loop {
        if hand_over && boot.is_none() {
            return Served::Ready;
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        if console_open {
            fds.push(PollFd::new(master, PollFlags::POLLIN));
        }
        // The notify socket, unless pid 1's datagrams are past their rate for this second.
        let mut timeout = PollTimeout::NONE;
        let notify_at = match boot.as_ref().map(|b| (b.socket.paused_for(), b)) {
            Some((None, b)) => {
                fds.push(PollFd::new(b.socket.fd(), PollFlags::POLLIN));
                Some(fds.len() - 1)
            }
            Some((Some(wait), _)) => {
                timeout = PollTimeout::try_from(wait.as_millis().min(1000) as i32 + 1).unwrap_or(PollTimeout::NONE);
                None
            }
            None => None,
        };
        let first_viewer_fd = fds.len();
        let viewer_fds = viewers.fds();
        fds.extend(viewer_fds.iter().map(|f| PollFd::new(*f, PollFlags::POLLIN)));
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => {}
        }
        let ready: Vec<bool> = fds.iter().map(|f| f.revents().map(|r| !r.is_empty()).unwrap_or(false)).collect();
        drop(fds);
        drop(viewer_fds);
        if notify_at.is_some_and(|i| ready[i]) && boot.as_mut().is_some_and(|b| b.socket.read(pid).ready) {
            if let Some(b) = boot.take() {
                booted(b, state, run_dir, log);
            }
        }
        // The listener (when there is one) comes first among the viewer descriptors.
        let mut gone = Vec::new();
        for (k, is_ready) in ready.iter().enumerate().skip(first_viewer_fd) {
            if !is_ready {
                continue;
            }
            let idx = k - first_viewer_fd;
            if idx == 0 && viewers.has_listener() {
                continue; // accepted below, after the indices stop mattering
            }
            let i = idx - usize::from(viewers.has_listener());
            match viewers.read(i, &mut buf) {
                Some(0) => {}
                Some(n) => {
                    if console_open {
                        let _ = nix::unistd::write(master, &buf[..n]);
                    }
                }
                None => gone.push(i),
            }
        }
        viewers.drop_viewers(gone);
        // The console after the viewers' input: a broadcast drops a viewer that has gone, which
        // would shift the indices the loop above reads `ready` by.
        let console_ready = console_open && ready.get(1).copied().unwrap_or(false);
        if console_ready {
            match nix::unistd::read(master.as_raw_fd(), &mut buf) {
                Ok(0) => console_open = false,
                Ok(n) => {
                    reopens = 0;
                    log.write(&buf[..n]);
                    viewers.broadcast(&buf[..n]);
                }
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
                // EIO: no process holds the slave open any more (or it was hung up). Holding
                // one keeps the console readable for whoever opens it next; if that fails too,
                // the console is gone.
                Err(_) if reopens >= 3 => console_open = false,
                Err(_) => {
                    reopens += 1;
                    held_slave = nix::fcntl::open(
                        state.console.as_str(),
                        nix::fcntl::OFlag::O_RDWR | nix::fcntl::OFlag::O_NOCTTY | nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK,
                        nix::sys::stat::Mode::empty(),
                    )
                    .ok()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
                    console_open = held_slave.is_some();
                }
            }
        }
        if viewers.has_listener() && ready.get(first_viewer_fd).copied().unwrap_or(false) {
            viewers.accept();
        }
        while let Ok(Some(_)) = sfd.read_signal() {}
        match waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(ws) => {
                if let Some(exit) = Exit::from_status(ws) {
                    drain(master.as_raw_fd(), log);
                    return Served::Ended(exit);
                }
            }
            Err(Errno::EINTR) => {}
            Err(_) => return Served::Ended(Exit::Code(255)),
        }
    }
}

fn drain(master: RawFd, log: &mut ConsoleLog) {
    let mut buf = [0u8; 4096];
    let _ = nix::fcntl::fcntl(master, nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK));
    while let Ok(n) = nix::unistd::read(master, &mut buf) {
        if n == 0 {
            break;
        }
        log.write(&buf[..n]);
    }
}

/// The console log, rotated by size: `NAME.log` → `NAME.log.1` → … → `NAME.log.KEEP`.
pub struct ConsoleLog {
    path: PathBuf,
    file: Option<File>,
    size: u64,
    max: u64,
    keep: u32,
}

impl ConsoleLog {
    pub fn open(path: &Path, max: u64, keep: u32) -> ConsoleLog {
        if let Some(dir) = path.parent() {
            let _ = fs::create_dir_all(dir);
        }
        let file = OpenOptions::new().create(true).append(true).open(path).ok();
        let size = file.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.len()).unwrap_or(0);
        ConsoleLog { path: path.to_path_buf(), file, size, max: max.max(4096), keep }
    }

    pub fn write(&mut self, data: &[u8]) {
        if self.size + data.len() as u64 > self.max {
            self.rotate();
        }
        if let Some(f) = &mut self.file {
            if f.write_all(data).is_ok() {
                self.size += data.len() as u64;
            }
        }
    }

    fn rotate(&mut self) {
        self.file = None;
        let name = |i: u32| PathBuf::from(format!("{}.{i}", self.path.display()));
        if self.keep == 0 {
            let _ = fs::remove_file(&self.path);
        } else {
            for i in (1..self.keep).rev() {
                let _ = fs::rename(name(i), name(i + 1));
            }
            let _ = fs::rename(&self.path, name(1));
        }
        self.file = OpenOptions::new().create(true).append(true).open(&self.path).ok();
        self.size = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_rotates_by_size_and_keeps_n() {
        let dir = std::env::temp_dir().join(format!("vserverd-log-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("x.log");
        let mut log = ConsoleLog::open(&path, 4096, 2);
        for _ in 0..5 {
            log.write(&[b'a'; 3000]);
        }
        assert!(path.exists());
        assert!(PathBuf::from(format!("{}.1", path.display())).exists());
        assert!(PathBuf::from(format!("{}.2", path.display())).exists());
        assert!(!PathBuf::from(format!("{}.3", path.display())).exists());
        assert!(fs::metadata(&path).unwrap().len() <= 4096);
        let _ = fs::remove_dir_all(&dir);
    }
}
