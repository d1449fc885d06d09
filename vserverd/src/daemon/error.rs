//! Why a start failed, as data: made where the failure happens, turned into the API's
//! `StartFailed` (its message and its fields: step, path, errno, detail, console) in one place,
//! [`From<StartError> for VServerError`]. The daemon writes facts; the hints are the client's.

use thiserror::Error;
use vserver_api::{StartFailure, VServerError};
use vserver_engine::cgroup::CgroupError;
use vserver_engine::quota::QuotaError;
use vserver_engine::SetupError;

#[derive(Debug, Error)]
pub enum StartError {
    /// The vserver's cgroups: a stale one that holds processes, a controller the host lacks.
    #[error("{name}: {err}")]
    Cgroup { name: String, err: CgroupError },
    #[error("{name}: {err}")]
    Quota { name: String, err: QuotaError },
    /// `[user] map = "auto"` and no pool of host ids to take a range from.
    #[error("{name}: {why}")]
    UserIds { name: String, why: String },
    /// The engine, in the monitor, could not build the context.
    #[error("{name}: start failed: {err}")]
    Setup { name: String, err: SetupError },
    /// The monitor ended before it reported the start (killed, or it crashed).
    #[error("{name}: its monitor ended ({status}) before it reported the start; every process of the vserver was ended")]
    MonitorDied { name: String, status: String },
    /// pid 1 ran, but the start did not complete: it ended, or was not ready in time.
    #[error("{name}: start failed: {why}")]
    NotReady { name: String, why: String, console: String },
}

impl StartError {
    fn step(&self) -> String {
        match self {
            StartError::Cgroup { .. } => "cgroup".into(),
            StartError::Quota { .. } => "quota".into(),
            StartError::UserIds { .. } => "id-map".into(),
            StartError::Setup { err, .. } => err.step.to_string(),
            StartError::MonitorDied { .. } => "monitor".into(),
            StartError::NotReady { .. } => "ready".into(),
        }
    }
}

impl From<StartError> for VServerError {
    fn from(e: StartError) -> VServerError {
        let mut f = StartFailure::new(e.to_string());
        f.step = e.step();
        match e {
            StartError::Setup { err, .. } => {
                f.path = err.path.unwrap_or_default();
                f.errno = err.errno;
                f.detail = err.detail.unwrap_or_default();
            }
            StartError::Cgroup { err, .. } => {
                f.path = match &err {
                    CgroupError::Io { path, .. } | CgroupError::NotEmpty { path, .. } | CgroupError::Occupied { path, .. } => path.display().to_string(),
                    CgroupError::MissingController { .. } => String::new(),
                };
                f.detail = err.to_string();
            }
            StartError::Quota { err, .. } => f.detail = err.to_string(),
            StartError::UserIds { why, .. } => f.detail = why,
            StartError::MonitorDied { status, .. } => f.detail = status,
            StartError::NotReady { why, console, .. } => {
                f.detail = why;
                f.console = console;
            }
        }
        VServerError::StartFailed(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::errno::Errno;
    use vserver_engine::Step;

    #[test]
    fn a_setup_error_reaches_the_client_as_fields() {
        let err = SetupError::new(Step::Proc, Some("/proc".into()), Errno::EPERM).with_detail("proc");
        let VServerError::StartFailed(f) = VServerError::from(StartError::Setup { name: "web1".into(), err }) else { panic!() };
        assert_eq!((f.step.as_str(), f.path.as_str(), f.errno, f.detail.as_str()), (Step::Proc.to_string().as_str(), "/proc", libc::EPERM, "proc"));
        assert!(f.message.starts_with("web1: start failed: "), "{}", f.message);
    }

    #[test]
    fn a_boot_failure_carries_the_console_apart_from_the_message() {
        let e = StartError::NotReady { name: "g".into(), why: "pid 1 ended".into(), console: "last words".into() };
        let VServerError::StartFailed(f) = VServerError::from(e) else { panic!() };
        assert_eq!(f.message, "g: start failed: pid 1 ended");
        assert_eq!((f.step.as_str(), f.console.as_str()), ("ready", "last words"));
    }
}
