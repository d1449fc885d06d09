//! The errors of the API. Each has its own D-Bus error name under the bus name
//! (`org.vserverd.VServer1.NoSuchVServer`, …); access and argument errors use the standard
//! `org.freedesktop.DBus.Error.*` names.

use zbus::DBusError;

#[derive(Debug, DBusError)]
#[zbus(prefix = "org.vserverd.VServer1")]
pub enum VServerError {
    /// A transport error, or a standard `org.freedesktop.DBus.Error.*`.
    #[zbus(error)]
    ZBus(zbus::Error),
    /// No vserver of that name is configured.
    NoSuchVServer(String),
    AlreadyRunning(String),
    NotRunning(String),
    /// Another operation on the vserver is under way.
    Busy(String),
    /// The configuration has errors (`path:line:col: error: message`, one per line).
    ConfigInvalid(String),
    /// Building the context failed: the message names the step, the path and the errno.
    StartFailed(String),
    /// A hook exited non-zero.
    HookFailed(String),
    /// The stop did not end every process in time.
    StopFailed(String),
    /// The request needs a running vserver of a kind it is not (for example a private one).
    Refused(String),
}

impl VServerError {
    /// `org.freedesktop.DBus.Error.AccessDenied`.
    pub fn access_denied(msg: impl Into<String>) -> VServerError {
        VServerError::ZBus(zbus::Error::FDO(Box::new(zbus::fdo::Error::AccessDenied(msg.into()))))
    }

    /// `org.freedesktop.DBus.Error.InvalidArgs`.
    pub fn invalid_args(msg: impl Into<String>) -> VServerError {
        VServerError::ZBus(zbus::Error::FDO(Box::new(zbus::fdo::Error::InvalidArgs(msg.into()))))
    }

    /// `org.freedesktop.DBus.Error.Failed`.
    pub fn failed(msg: impl Into<String>) -> VServerError {
        VServerError::ZBus(zbus::Error::FDO(Box::new(zbus::fdo::Error::Failed(msg.into()))))
    }

    /// The short error name without the prefix, for the CLI's exit codes and messages.
    pub fn kind(&self) -> &'static str {
        match self {
            VServerError::ZBus(_) => "DBus",
            VServerError::NoSuchVServer(_) => "NoSuchVServer",
            VServerError::AlreadyRunning(_) => "AlreadyRunning",
            VServerError::NotRunning(_) => "NotRunning",
            VServerError::Busy(_) => "Busy",
            VServerError::ConfigInvalid(_) => "ConfigInvalid",
            VServerError::StartFailed(_) => "StartFailed",
            VServerError::HookFailed(_) => "HookFailed",
            VServerError::StopFailed(_) => "StopFailed",
            VServerError::Refused(_) => "Refused",
        }
    }
}
