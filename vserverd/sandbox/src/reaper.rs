//! pid 1 of an rc-style context (the paper's default start): runs the start command, reaps
//! every orphan, and on a stop request runs the stop command, then ends every process left.
//!
//! It is the context's builder itself, carried on after its last setup step without an exec
//! (so it needs nothing from the vserver's root, not even a dynamic loader). Its `/proc/1/exe`
//! is the builder's binary, which `sealed` makes a sealed in-memory copy.
//!
//! Signals to pid 1 from outside the context (the daemon, the monitor): SIGTERM, SIGPWR, SIGINT
//! or SIGHUP = stop (run the stop command, then SIGTERM to all, exit 0 once none is left);
//! with `chcontext` (the start command is the context's whole life) they are forwarded to it.
//!
//! Signals from inside are what `reboot`, `halt` and `poweroff` send to an init that is not
//! theirs (busybox: SIGTERM = reboot, SIGUSR1 = halt, SIGUSR2 = poweroff; Ctrl-Alt-Del and
//! systemd's `reboot`: SIGINT; systemd's SIGRTMIN+5 = reboot, +3 = halt, +4 = poweroff; SIGPWR
//! = power failure, halt): the reaper runs the stop command (with `VSERVER_TARGET=reboot` or
//! `halt` in its environment, for an rc script to pick `rc 6` or `rc 0`), ends every process
//! left, and then calls `reboot(2)` itself, so that the kernel ends pid 1 exactly as for a
//! `reboot -f` inside: with SIGHUP for a reboot (the daemon restarts the vserver), SIGINT for a
//! halt (the daemon marks it stopped). SIGHUP from inside (sysvinit's "re-read inittab") is
//! ignored. A stop command that itself runs `reboot -f` needs no help from here: the kernel ends
//! pid 1 with SIGHUP at once.

use std::ffi::CString;

use nix::sys::signal::{kill, sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

/// How pid 1 names itself in `ps`.
pub const NAME: &std::ffi::CStr = c"vserver-init";

extern "C" fn noop(_: libc::c_int) {}

fn spawn(argv: &[CString], envp: &[CString], unblock: &SigSet) -> Option<Pid> {
    if argv.is_empty() {
        return None;
    }
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let _ = unblock.thread_unblock();
            for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGPWR, Signal::SIGCHLD] {
                let _ = unsafe { sigaction(s, &SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty())) };
            }
            let (path, e) = crate::spawn::exec_program(argv, envp);
            eprintln!("vserver-init: cannot run {path}: {}", e.desc());
            unsafe { libc::_exit(127) };
        }
        Ok(ForkResult::Parent { child }) => Some(child),
        Err(e) => {
            eprintln!("vserver-init: fork: {}", e.desc());
            None
        }
    }
}

/// Why the context is ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Intent {
    /// Asked from outside: exit 0 when done.
    Stop,
    /// `reboot` from inside: end with `reboot(RB_AUTOBOOT)` (SIGHUP to the monitor).
    Reboot,
    /// `halt` / `poweroff` from inside: end with `reboot(RB_HALT_SYSTEM)` (SIGINT).
    Halt,
}

impl Intent {
    fn target(self) -> &'static str {
        match self {
            Intent::Stop => "stop",
            Intent::Reboot => "reboot",
            Intent::Halt => "halt",
        }
    }
}

/// What a signal from a process inside the context asks for (`None`: nothing).
fn inside_request(sig: libc::c_int) -> Option<Intent> {
    let rt = libc::SIGRTMIN();
    match sig {
        libc::SIGTERM | libc::SIGINT => Some(Intent::Reboot),
        libc::SIGUSR1 | libc::SIGUSR2 | libc::SIGPWR => Some(Intent::Halt),
        s if s == rt + 5 => Some(Intent::Reboot),
        s if s == rt + 3 || s == rt + 4 => Some(Intent::Halt),
        _ => None,
    }
}

/// Waits for one of `set`; returns the signal and whether it came from inside the context (a
/// sender visible in our PID namespace; one outside it shows as pid 0).
fn wait_signal(set: &SigSet) -> Option<(libc::c_int, bool)> {
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let s = unsafe { libc::sigwaitinfo(set.as_ref(), &mut info) };
    if s < 0 {
        return None;
    }
    let from_user = info.si_code == libc::SI_USER || info.si_code == libc::SI_QUEUE || info.si_code == libc::SI_TKILL;
    let inside = from_user && unsafe { info.si_pid() } > 0 && s != libc::SIGCHLD;
    Some((s, inside))
}

/// The stop command's environment: ours plus `VSERVER_TARGET`.
fn stop_env(envp: &[CString], intent: Intent) -> Vec<CString> {
    let mut env: Vec<CString> = envp.iter().filter(|e| !e.as_bytes().starts_with(b"VSERVER_TARGET=")).cloned().collect();
    env.push(CString::new(format!("VSERVER_TARGET={}", intent.target())).expect("no NUL"));
    env
}

/// The end of pid 1 once everything is gone: exit 0 for a stop, the kernel's reboot or halt
/// for a request from inside (needs SYS_BOOT in the context's set; without it, a plain stop).
fn finish(intent: Intent) -> i32 {
    let cmd = match intent {
        Intent::Stop => return 0,
        Intent::Reboot => libc::RB_AUTOBOOT,
        Intent::Halt => libc::RB_HALT_SYSTEM,
    };
    unsafe { libc::sync() };
    unsafe { libc::reboot(cmd) };
    eprintln!("vserver-init: {}: {}", intent.target(), nix::errno::Errno::last().desc());
    0
}

fn status_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// Runs as pid 1 until the context ends; returns pid 1's exit code.
pub fn run(start: &[CString], stop: Option<&[CString]>, exit_with_start: bool, envp: &[CString]) -> i32 {
    unsafe { libc::prctl(libc::PR_SET_NAME, NAME.as_ptr() as libc::c_ulong, 0, 0, 0) };
    // What the builder's heap held is not ours to keep: pid 1 lives as long as its vserver.
    unsafe { libc::malloc_trim(0) };

    // A handler (not SIG_DFL) for each signal we wait on: the kernel drops default-action
    // signals sent to a namespace's pid 1. They stay blocked and are taken by sigwait.
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGPWR, Signal::SIGCHLD, Signal::SIGUSR1, Signal::SIGUSR2] {
        set.add(s);
        let _ = unsafe { sigaction(s, &SigAction::new(SigHandler::Handler(noop), SaFlags::empty(), SigSet::empty())) };
    }
    // systemd's halt, poweroff and reboot requests (nix has no type for real-time signals).
    let rt: Vec<libc::c_int> = (3..=5).map(|n| libc::SIGRTMIN() + n).collect();
    let mut raw_set = *set.as_ref();
    for &s in &rt {
        unsafe {
            libc::sigaddset(&mut raw_set, s);
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = noop as *const () as usize;
            libc::sigaction(s, &sa, std::ptr::null_mut());
        }
    }
    let set = unsafe { SigSet::from_sigset_t_unchecked(raw_set) };
    let _ = set.thread_block();

    let Some(main) = spawn(start, envp, &set) else { return 127 };
    let mut main_alive = true;
    let mut stopping = false;
    let mut intent = Intent::Stop;
    let mut stop_cmd: Option<Pid> = None;

    loop {
        // Reap everything that has ended.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(ws) => {
                    if ws.pid() == Some(main) {
                        main_alive = false;
                        let code = status_code(ws).unwrap_or(1);
                        if exit_with_start {
                            // The context's life was this command: end what it left behind.
                            let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
                            return code;
                        }
                        if code != 0 && !stopping {
                            eprintln!("vserver-init: start command {:?} failed with status {code}", start[0]);
                            let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
                            return code;
                        }
                    }
                    if ws.pid().is_some() && ws.pid() == stop_cmd {
                        stop_cmd = None;
                        // The stop command is done: whatever is left gets SIGTERM.
                        let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
                    }
                }
                Err(nix::errno::Errno::ECHILD) => {
                    if stopping {
                        return finish(intent);
                    }
                    break;
                }
                Err(_) => break,
            }
        }
        let Some((sig, inside)) = wait_signal(&set) else { continue };
        if sig == libc::SIGCHLD {
            continue;
        }
        if exit_with_start {
            // chcontext: the command is the context's life; it gets the signal.
            if main_alive && [libc::SIGTERM, libc::SIGINT, libc::SIGHUP].contains(&sig) {
                let _ = unsafe { libc::kill(main.as_raw(), sig) };
            }
            continue;
        }
        let wanted = if inside {
            match inside_request(sig) {
                Some(i) => i,
                None => continue, // SIGHUP from inside: nothing to re-read
            }
        } else if [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGPWR].contains(&sig) {
            Intent::Stop
        } else {
            continue;
        };
        if !stopping {
            stopping = true;
            intent = wanted;
            if let Some(stop) = stop {
                stop_cmd = spawn(stop, &stop_env(envp, intent), &set);
            }
            if stop_cmd.is_none() {
                let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
            }
        } else if inside {
            // The stop command (or anyone inside) asks for a reboot or a halt on the way out.
            intent = wanted;
        } else {
            // A second stop request from outside: no more patience.
            intent = Intent::Stop;
            let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
        }
    }
}
