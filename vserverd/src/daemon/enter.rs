//! `EnterVServer`: a shell or a command inside a running vserver, for `vserverctl enter` and
//! `exec` (the paper's `enter`, `exec` and `suexec`).
//!
//! The daemon never joins a context itself (it is multi-threaded and must stay on the host): it
//! execs a helper from its own sealed binary, `vserverd enter NAME` (named `vserver-enter`), the
//! way it starts monitors. The helper runs the engine's [`vserver_engine::enter`] and talks to
//! the daemon over a `SOCK_SEQPACKET` pair that is its stdin:
//!
//! 1. daemon → helper: the request ([`EnterSpec`] as JSON);
//! 2. helper → daemon: `Ready` with the host-side ends of the command's stdio (the pty master of
//!    the vserver's devpts, or three pipe ends), or `Failed` with the engine's error as data;
//! 3. the daemon hands those descriptors to the caller over D-Bus, with the read end of a status
//!    pipe whose write end only the daemon holds, and closes its copies;
//! 4. the helper waits for the command and ends the way it ended (its exit code, or the same
//!    signal); the daemon reaps it and writes `exit N` or `signal N` (one line) to the status
//!    pipe. The status never travels through a descriptor that a process inside could hold:
//!    when the command is forked, the helper holds nothing but the command's own stdio.
//!
//! Only callers that [`super::auth::authorize`] lets in get here; a `private` vserver is
//! refused (by the daemon, and again by the engine from the context's registry entry).

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::Stdio;
use std::time::Duration;

use nix::errno::Errno;
use tokio::io::unix::AsyncFd;
use tracing::{info, warn};
use vserver_api::{State, VServerError};
use vserver_config::paths::Paths;
use vserver_engine::enter::{EnterSpec, WinSize};
use vserver_engine::fdpass;
use vserver_engine::{Exit, SetupError, Step};

use super::supervisor::Supervisor;
use crate::enter::Reply;

/// How long the helper may take to join and hand over the descriptors.
const HELPER_TIMEOUT: Duration = Duration::from_secs(15);

/// What the caller of `EnterVServer` gets: its ends of the command's stdin, stdout and stderr
/// (with a tty, the pty master three times) and the status pipe.
pub struct Entered {
    pub input: OwnedFd,
    pub output: OwnedFd,
    pub error: OwnedFd,
    pub status: OwnedFd,
}

/// What `EnterVServer` asks for.
#[derive(Debug, Clone)]
pub struct Request {
    pub user: String,
    pub argv: Vec<String>,
    pub tty: bool,
    pub term: String,
    pub size: WinSize,
}

/// The status line for the caller when the command (its helper) ended.
pub fn status_line(exit: Exit) -> String {
    match exit {
        Exit::Code(c) => format!("exit {c}\n"),
        Exit::Signal(s) => format!("signal {s}\n"),
    }
}

/// How the helper's own end reads as the command's.
fn helper_exit(st: std::io::Result<std::process::ExitStatus>) -> Exit {
    use std::os::unix::process::ExitStatusExt;
    match st {
        Ok(st) => match (st.code(), st.signal()) {
            (Some(c), _) => Exit::Code(c),
            (_, Some(s)) => Exit::Signal(s),
            _ => Exit::Code(255),
        },
        Err(_) => Exit::Code(255),
    }
}

/// The engine's error, as the D-Bus error the caller sees.
fn to_api_error(name: &str, e: &SetupError) -> VServerError {
    let text = e.to_string();
    if text.contains("private") {
        return VServerError::Refused(format!("{name} is private: nobody may enter it (the paper's `private` flag)"));
    }
    match (e.step, e.errno()) {
        (Step::Validate, _) => VServerError::invalid_args(format!("{name}: {text}")),
        (_, Some(Errno::ESRCH)) => VServerError::NotRunning(format!("{name} is not running")),
        _ if text.contains("no user") => VServerError::invalid_args(format!("{name}: {}", e.detail.clone().unwrap_or(text))),
        _ => VServerError::failed(text),
    }
}

/// Runs a command in vserver `sup` (which must be running) for a caller already authorised.
pub async fn enter(paths: &Paths, sup: &Supervisor, req: Request, caller: u32) -> Result<Entered, VServerError> {
    let name = sup.name.clone();
    let st = sup.status();
    // While it boots too: a boot that hangs is looked at from inside.
    let run = match (&st.run, st.state) {
        (Some(run), State::Running | State::Booting) => run.clone(),
        _ => return Err(VServerError::NotRunning(format!("{name} is {}", st.state.as_str()))),
    };
    if sup.config().map(|c| c.flags.private).unwrap_or(false) {
        return Err(VServerError::Refused(format!("{name} is private: nobody may enter it (the paper's `private` flag)")));
    }
    let term = crate::daemon::dbus::args::enter_request(&req)?;
    let spec = EnterSpec {
        run_dir: paths.run_dir.clone(),
        context: run.context,
        argv: req.argv.clone(),
        user: (!req.user.is_empty()).then(|| req.user.clone()),
        tty: req.tty.then_some(req.size),
        term,
    };
    info!(
        vserver = %name,
        caller_pid = caller,
        user = if req.user.is_empty() { "root" } else { req.user.as_str() },
        command = req.argv.first().map(String::as_str).unwrap_or("(login shell)"),
        tty = req.tty,
        "enter"
    );

    let (ours, theirs) = fdpass::seqpacket_pair().map_err(|e| VServerError::failed(format!("socketpair: {e}")))?;
    // The helper is this very program, run from the daemon's own sealed copy.
    let mut child = tokio::process::Command::new("/proc/self/exe")
        .arg0("vserver-enter")
        .arg("enter")
        .arg(&name)
        .env_clear()
        .current_dir("/")
        .stdin(Stdio::from(theirs))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| VServerError::failed(format!("cannot start the enter helper: {e}")))?;
    let body = serde_json::to_vec(&spec).expect("spec serializes");
    fdpass::send(ours.as_fd(), &body, &[]).map_err(|e| VServerError::failed(format!("enter helper: {e}")))?;

    let reply = tokio::time::timeout(HELPER_TIMEOUT, receive(ours)).await;
    if reply.is_err() {
        warn!(vserver = %name, "the enter helper did not answer in time; killing it");
        let _ = child.start_kill();
    }
    // The status pipe: its write end stays here; the helper's end is written to it.
    let (status_r, status_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| VServerError::failed(format!("pipe: {e}")))?;
    let ready = matches!(&reply, Ok(Ok(Some((data, _)))) if serde_json::from_slice::<Reply>(data).map(|r| matches!(r, Reply::Ready { .. })).unwrap_or(false));
    let vname = name.clone();
    // The helper lives on while the command runs; it is reaped whenever it ends.
    tokio::spawn(async move {
        let exit = helper_exit(child.wait().await);
        if ready {
            info!(vserver = %vname, exit = %status_line(exit).trim(), "entered command ended");
            let mut f = std::fs::File::from(status_w);
            let _ = f.write_all(status_line(exit).as_bytes());
        }
    });
    let (data, mut fds) = match reply {
        Ok(Ok(Some(r))) => r,
        Ok(Ok(None)) => return Err(VServerError::failed("the enter helper ended without an answer")),
        Ok(Err(e)) => return Err(VServerError::failed(e.to_string())),
        Err(_) => return Err(VServerError::failed(format!("the enter helper gave no answer within {} s", HELPER_TIMEOUT.as_secs()))),
    };
    match serde_json::from_slice::<Reply>(&data) {
        Ok(Reply::Ready { tty: true }) if fds.len() == 1 => {
            let status = status_r;
            let master = fds.pop().unwrap();
            let dup = |f: &OwnedFd| f.try_clone().map_err(|e| VServerError::failed(format!("dup: {e}")));
            Ok(Entered { output: dup(&master)?, error: dup(&master)?, input: master, status })
        }
        Ok(Reply::Ready { tty: false }) if fds.len() == 3 => {
            let status = status_r;
            let error = fds.pop().unwrap();
            let output = fds.pop().unwrap();
            let input = fds.pop().unwrap();
            Ok(Entered { input, output, error, status })
        }
        Ok(Reply::Failed(e)) => {
            info!(vserver = %name, error = %e, "enter refused or failed");
            // A stop (or an end) that came meanwhile is the cause, whatever the join ran into
            // (a fork in a PID namespace whose pid 1 has gone fails with ENOMEM).
            let now = sup.status();
            if !matches!(now.state, State::Running | State::Booting) || now.run.map(|r| (r.pid, r.start_time)) != Some((run.pid, run.start_time)) {
                return Err(VServerError::NotRunning(format!("{name} is {}", now.state.as_str())));
            }
            Err(to_api_error(&name, &e))
        }
        _ => Err(VServerError::failed("a malformed answer from the enter helper")),
    }
}

async fn receive(sock: OwnedFd) -> std::io::Result<Option<fdpass::Message>> {
    nix::fcntl::fcntl(sock.as_raw_fd(), nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK))?;
    // Safety: the socket is owned here and stays open for as long as the AsyncFd lives.
    let afd = unsafe { AsyncFd::register(sock) }.map_err(|e| e.into_parts().1)?;
    loop {
        let mut guard = afd.readable().await?;
        match guard.try_io(|s| fdpass::recv(s.get_ref().as_fd(), 64 * 1024).map_err(std::io::Error::from)) {
            Ok(r) => return r,
            Err(_would_block) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(status_line(Exit::Code(3)), "exit 3\n");
        assert_eq!(status_line(Exit::Signal(9)), "signal 9\n");
    }

    #[test]
    fn errors_for_the_caller() {
        let private = SetupError::new(Step::Join, Some("context 5".into()), Errno::EPERM).with_detail("the vserver is private: nobody may enter it");
        assert!(matches!(to_api_error("w", &private), VServerError::Refused(_)));
        let gone = SetupError::new(Step::Join, Some("context 5".into()), Errno::ESRCH);
        assert!(matches!(to_api_error("w", &gone), VServerError::NotRunning(_)));
        let user = SetupError::detail(Step::Join, Some("/etc/passwd".into()), "no user \"bob\" in the vserver's /etc/passwd");
        match to_api_error("w", &user) {
            VServerError::InvalidArgs(m) => assert!(m.contains("no user \"bob\""), "{m}"),
            e => panic!("{e:?}"),
        }
    }
}
