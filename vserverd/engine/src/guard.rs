//! A ptrace guard for processes that appear inside a running context from outside (`enter`,
//! `exec`, `chcontext --ctx`).
//!
//! SYS_PTRACE is out of a vserver's default set, but an admin may add it back (for `strace` and
//! `gdb` on any process inside), and then the guard is what keeps entering processes out of
//! reach; without it the guard costs little and stays on. A process forked into the vserver's
//! PID namespace from outside is visible there from its first instruction, and until its `exec`
//! it still runs our code: a tracer inside could attach in that moment. A process can have one tracer only, so the guard makes sure that tracer
//! is already ours when the process is born:
//!
//! 1. the caller (on the host, out of sight of everything inside) forks the worker that will do
//!    the joining, seizes it with `PTRACE_O_TRACEFORK` / `TRACEVFORK` / `TRACECLONE` /
//!    `TRACEEXEC` / `EXITKILL`, and only then lets it run;
//! 2. every process the worker forks is attached to the guard by the kernel inside `fork`
//!    itself, before its pid exists in any namespace: `PTRACE_ATTACH` from inside fails with
//!    EPERM from the start;
//! 3. at its `exec` (the event stop comes after the new program has replaced ours) the guard
//!    detaches it: from then on it is an ordinary process of the vserver, which root inside may
//!    trace like any other;
//! 4. signals pass through unchanged, group stops stay stops (`PTRACE_LISTEN`); if the guard
//!    dies, every process still under it is killed (`EXITKILL`), so none runs on unguarded.
//!
//! The guard's own process must be single-threaded (ptrace is per thread) and is the worker's
//! parent; it returns how the worker ended.

use nix::errno::Errno;

use crate::error::{SetupError, Step};
use crate::spawn::Exit;

const OPTIONS: libc::c_int = libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEEXEC
    | libc::PTRACE_O_EXITKILL;

fn fail(what: &str, e: Errno) -> SetupError {
    SetupError::new(Step::Guard, Some(what.to_string()), e)
}

/// Runs `work` in a child process whose own children are traced by this process from their
/// birth until their `exec`; the child ends the way `work` says ([`end_as`]). Returns how it
/// ended. `work` runs in the child only; what it owns is dropped here, in the caller's process,
/// as soon as the child exists.
pub fn guarded<W: FnOnce() -> Exit>(work: W) -> Result<Exit, SetupError> {
    guarded_in(None, work)
}

/// [`guarded`], with the worker born in the cgroup v2 directory `cgroup` (`CLONE_INTO_CGROUP`;
/// a plain fork where the kernel refuses). The worker closes its handle of the directory before
/// anything else: nothing it forks later may hold a host directory.
pub fn guarded_in<W: FnOnce() -> Exit>(cgroup: Option<&std::path::Path>, work: W) -> Result<Exit, SetupError> {
    if crate::sys::thread_count() != Some(1) {
        return Err(SetupError::detail(Step::SingleThread, None, "the ptrace guard must be single-threaded"));
    }
    // The worker waits on this pipe until it is seized.
    let mut go = [0 as libc::c_int; 2];
    if unsafe { libc::pipe2(go.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(fail("pipe", Errno::last()));
    }
    let dir = cgroup.and_then(|d| crate::sys::open_cgroup_dir(d).ok()).map(std::os::fd::IntoRawFd::into_raw_fd);
    let born = dir.and_then(|fd| crate::sys::clone_into_cgroup(0, fd).ok());
    let pid = match born {
        Some(pid) => pid,
        None => unsafe { libc::fork() },
    };
    if pid != 0 {
        if let Some(fd) = dir {
            unsafe { libc::close(fd) };
        }
    }
    if pid < 0 {
        let e = Errno::last();
        unsafe {
            libc::close(go[0]);
            libc::close(go[1]);
        }
        return Err(fail("fork", e));
    }
    if pid == 0 {
        if let Some(fd) = dir {
            unsafe { libc::close(fd) };
        }
        unsafe { libc::close(go[1]) };
        let mut b = 0u8;
        let n = loop {
            let n = unsafe { libc::read(go[0], &mut b as *mut u8 as *mut libc::c_void, 1) };
            if n >= 0 || Errno::last() != Errno::EINTR {
                break n;
            }
        };
        unsafe { libc::close(go[0]) };
        if n != 1 {
            // Not seized: never go on unguarded.
            unsafe { libc::_exit(126) };
        }
        end_as(work());
    }
    // What the worker owns (descriptors for the worker only) goes from this process at once.
    drop(work);
    unsafe { libc::close(go[0]) };
    let seized = unsafe { libc::ptrace(libc::PTRACE_SEIZE, pid, 0, OPTIONS as libc::c_long) } == 0;
    let seize_err = Errno::last();
    // Where the kernel forbids ptrace to everyone (Yama's ptrace_scope 3), nothing inside can
    // attach either: the worker goes on unguarded. Otherwise it never does.
    let go_on = seized || ptrace_disabled();
    if go_on {
        unsafe { libc::write(go[1], b"g".as_ptr() as *const libc::c_void, 1) };
    }
    unsafe { libc::close(go[1]) };
    let exit = if seized { supervise(pid) } else { crate::spawn::wait_exit(pid) };
    let exit = exit.map_err(|e| fail("wait", e))?;
    if !go_on {
        return Err(fail("ptrace seize", seize_err).with_detail("cannot trace the worker"));
    }
    Ok(exit)
}

/// True when Yama forbids every ptrace attach on this host (`kernel.yama.ptrace_scope = 3`).
fn ptrace_disabled() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").map(|s| s.trim() == "3").unwrap_or(false)
}

/// The tracer's loop: until the worker ends, lets every stop of every tracee go on the way it
/// would have without us, and detaches each tracee at its exec.
fn supervise(worker: libc::pid_t) -> Result<Exit, Errno> {
    loop {
        let mut st: libc::c_int = 0;
        let pid = unsafe { libc::waitpid(-1, &mut st, libc::__WALL) };
        if pid < 0 {
            match Errno::last() {
                Errno::EINTR => continue,
                e => return Err(e),
            }
        }
        if libc::WIFEXITED(st) || libc::WIFSIGNALED(st) {
            if pid == worker {
                return Ok(if libc::WIFEXITED(st) { Exit::Code(libc::WEXITSTATUS(st)) } else { Exit::Signal(libc::WTERMSIG(st)) });
            }
            continue; // a tracee that ended before its exec: its parent reaps it
        }
        if !libc::WIFSTOPPED(st) {
            continue;
        }
        let sig = libc::WSTOPSIG(st);
        let event = (st >> 16) & 0xff;
        // Errors below mean the tracee is gone (killed meanwhile): its end comes as an event.
        match event {
            0 => {
                // A signal on its way: deliver it as it is.
                unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, sig as libc::c_long) };
            }
            libc::PTRACE_EVENT_EXEC => {
                // The new program has replaced ours: it is the vserver's own now.
                unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
            }
            libc::PTRACE_EVENT_STOP if matches!(sig, libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU) => {
                // A group stop: stopped it stays, until SIGCONT.
                unsafe { libc::ptrace(libc::PTRACE_LISTEN, pid, 0, 0) };
            }
            _ => {
                // A fork or clone event, a new tracee's first stop, an interrupt.
                unsafe { libc::ptrace(libc::PTRACE_CONT, pid, 0, 0) };
            }
        }
    }
}

/// Ends this process the way `exit` says: with its code, or killed by the same signal.
pub fn end_as(exit: Exit) -> ! {
    match exit {
        Exit::Code(c) => unsafe { libc::_exit(c) },
        Exit::Signal(s) => {
            unsafe {
                libc::signal(s, libc::SIG_DFL);
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, s);
                libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
                libc::kill(libc::getpid(), s);
                libc::_exit(128 + s)
            }
        }
    }
}
