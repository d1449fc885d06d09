//! One monitor kept ready for the next start. The daemon never forks itself: a monitor is an
//! exec of its own sealed binary (`/proc/self/exe`), and that exec costs a start about half a
//! millisecond. So the daemon starts the next monitor ahead of time; it waits on its stdin for a
//! request, and one that is never used reads end-of-file when the daemon exits and goes away.
//! While it waits it also makes what does not depend on the request: the console pty and a
//! network namespace with `lo` up (see `monitor::main`).

use std::os::fd::OwnedFd;
use std::process::Stdio;
use std::sync::{Mutex, OnceLock};

use tokio::process::{Child, Command};

use vserver_engine::sys::pidfd_open;

/// A monitor process, and a pidfd taken while it was still our unreaped child (so its pid can
/// never be a recycled one).
pub struct Monitor {
    pub child: Child,
    pub pidfd: OwnedFd,
    pub pid: i32,
}

static READY: Mutex<Option<Monitor>> = Mutex::new(None);

/// The daemon's sealed copy of `vserver-init` (pid 1 of rc-style vservers), as a path each
/// monitor opens: all the vservers share its pages instead of one copy each.
fn shared_init() -> Option<&'static str> {
    static PATH: OnceLock<Option<String>> = OnceLock::new();
    PATH.get_or_init(|| vserver_engine::vserver_init::binary().ok().map(|fd| format!("/proc/{}/fd/{fd}", std::process::id()))).as_deref()
}

/// The daemon's sealed copy of the serving program each monitor execs once its vserver is ready
/// (`monitor::handover`), shared the same way.
fn shared_serving() -> Option<&'static str> {
    static PATH: OnceLock<Option<String>> = OnceLock::new();
    PATH.get_or_init(|| crate::monitor::handover::daemon_copy().map(|fd| format!("/proc/{}/fd/{fd}", std::process::id()))).as_deref()
}

fn spawn() -> std::io::Result<Monitor> {
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0("vserver-monitor").arg("monitor").env_clear();
    if let Some(path) = shared_init() {
        cmd.env(vserver_config::run::SHARED_INIT_ENV, path);
    }
    if let Some(path) = shared_serving() {
        cmd.env(crate::monitor::handover::SHARED_ENV, path);
    }
    let child = cmd
        .current_dir("/")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let pid = child.id().unwrap_or(0) as i32;
    let pidfd = pidfd_open(pid)?;
    Ok(Monitor { child, pidfd, pid })
}

/// The ready monitor (or a new one if there is none, or it died). The next one comes with
/// [`refill`].
pub fn take() -> std::io::Result<Monitor> {
    let ready = READY.lock().unwrap().take().and_then(|mut m| matches!(m.child.try_wait(), Ok(None)).then_some(m));
    match ready {
        Some(m) => Ok(m),
        None => spawn(),
    }
}

/// Starts the next ready monitor (in the background of the daemon's loop). Called once a start
/// is done, not when it takes its monitor: the new monitor's exec and the kernel objects it
/// makes ahead would otherwise compete for the CPU with the start under way.
pub fn refill() {
    tokio::spawn(async {
        let mut ready = READY.lock().unwrap();
        if ready.is_none() {
            *ready = spawn().ok();
        }
    });
}
