//! pid 1 of an rc-style context (the paper's default start): runs the start command, reaps
//! every orphan, and on a stop request runs the stop command, then ends every process left.
//!
//! It is the context's builder itself, carried on after its last setup step without an exec
//! (so it needs nothing from the vserver's root, not even a dynamic loader). Its `/proc/1/exe`
//! is the builder's binary, which `sealed` makes a sealed in-memory copy.
//!
//! Signals to pid 1: SIGTERM or SIGPWR = stop (run the stop command, then SIGTERM to all,
//! exit 0 once none is left); SIGINT and SIGHUP are forwarded to the start command when it is
//! the context's whole life (`chcontext`), else treated as stop. A `reboot` inside needs no help
//! from here: the kernel ends pid 1 and reports SIGHUP to the monitor.

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

    // A handler (not SIG_DFL) for each signal we wait on: the kernel drops default-action
    // signals sent to a namespace's pid 1. They stay blocked and are taken by sigwait.
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGPWR, Signal::SIGCHLD] {
        set.add(s);
        let _ = unsafe { sigaction(s, &SigAction::new(SigHandler::Handler(noop), SaFlags::empty(), SigSet::empty())) };
    }
    let _ = set.thread_block();

    let Some(main) = spawn(start, envp, &set) else { return 127 };
    let mut main_alive = true;
    let mut stopping = false;
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
                        return 0;
                    }
                    break;
                }
                Err(_) => break,
            }
        }
        let sig = match set.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        match sig {
            Signal::SIGCHLD => {}
            Signal::SIGINT | Signal::SIGHUP if exit_with_start => {
                if main_alive {
                    let _ = kill(main, sig);
                }
            }
            Signal::SIGTERM if exit_with_start => {
                if main_alive {
                    let _ = kill(main, sig);
                }
            }
            _ if !stopping => {
                stopping = true;
                if let Some(stop) = stop {
                    stop_cmd = spawn(stop, envp, &set);
                }
                if stop_cmd.is_none() {
                    let _ = kill(Pid::from_raw(-1), Signal::SIGTERM);
                }
            }
            _ => {
                // A second stop request: no more patience.
                let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
            }
        }
    }
}
