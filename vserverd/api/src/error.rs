//! The errors of the API. Each has its own D-Bus error name under the bus name
//! (`org.vserverd.VServer1.NoSuchVServer`, …); access, argument and generic failures use the
//! standard `org.freedesktop.DBus.Error.*` names (the `DBusError` derive cannot mix the two
//! prefixes, so the trait is implemented here by hand).

use std::collections::HashMap;
use std::fmt;

use zbus::message::{Header, Message};
use zbus::names::ErrorName;
use zbus::DBusError;

#[derive(Debug)]
pub enum VServerError {
    /// A transport error, or an error name this contract does not know.
    ZBus(zbus::Error),
    /// No vserver of that name is configured.
    NoSuchVServer(String),
    AlreadyRunning(String),
    NotRunning(String),
    /// Another operation on the vserver is under way.
    Busy(String),
    /// The configuration has errors (`path:line:col: error: message`, one per line).
    ConfigInvalid(String),
    /// The start failed: the message, and what failed as fields ([`StartFailure`]).
    StartFailed(StartFailure),
    /// A hook exited non-zero.
    HookFailed(String),
    /// The stop did not end every process in time.
    StopFailed(String),
    /// The request needs a vserver of another kind (for example not a private one).
    Refused(String),
    /// `org.freedesktop.DBus.Error.AccessDenied`.
    AccessDenied(String),
    /// `org.freedesktop.DBus.Error.InvalidArgs`.
    InvalidArgs(String),
    /// `org.freedesktop.DBus.Error.Failed`.
    Failed(String),
}

/// What a failed start carries besides its message. On the bus the error's body is the message
/// then these fields as `a{sv}` (`step`, `path`, `errno`, `detail`, `console`; those that are
/// empty or 0 are left out), so a client that reads only the first string still has the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartFailure {
    /// The whole story in one line, for clients that show only that.
    pub message: String,
    /// The engine's step that failed (`mount-proc`, `pivot-root`, …), or the daemon's
    /// (`cgroup`, `quota`, `monitor`, `ready`); empty when unknown.
    pub step: String,
    /// The object the step acted on.
    pub path: String,
    /// The errno, 0 when none.
    pub errno: i32,
    /// What else the failing side said.
    pub detail: String,
    /// The last lines the vserver's console showed in this run.
    pub console: String,
}

impl StartFailure {
    pub fn new(message: impl Into<String>) -> StartFailure {
        StartFailure { message: message.into(), ..Default::default() }
    }

    fn fields(&self) -> HashMap<&'static str, zbus::Variant<'_>> {
        let mut f = HashMap::new();
        for (k, v) in [("step", &self.step), ("path", &self.path), ("detail", &self.detail), ("console", &self.console)] {
            if !v.is_empty() {
                f.insert(k, zbus::Variant::from(v.as_str()));
            }
        }
        if self.errno != 0 {
            f.insert("errno", zbus::Variant::from(self.errno));
        }
        f
    }

    /// The fields of an error reply's body (after the message), where it has them.
    fn read_fields(&mut self, msg: &Message) {
        let Ok((_, fields)) = msg.body().deserialize::<(String, HashMap<String, zbus::OwnedVariant>)>() else { return };
        let text = |k: &str| fields.get(k).and_then(|v| String::try_from(v.clone()).ok()).unwrap_or_default();
        self.step = text("step");
        self.path = text("path");
        self.detail = text("detail");
        self.console = text("console");
        self.errno = fields.get("errno").and_then(|v| i32::try_from(v.clone()).ok()).unwrap_or(0);
    }
}

/// Makes the variant of one error name from its message.
type Make = fn(String) -> VServerError;

fn start_failed(m: String) -> VServerError {
    VServerError::StartFailed(StartFailure::new(m))
}

const OWN: &[(&str, Make)] = &[
    ("org.vserverd.VServer1.NoSuchVServer", VServerError::NoSuchVServer),
    ("org.vserverd.VServer1.AlreadyRunning", VServerError::AlreadyRunning),
    ("org.vserverd.VServer1.NotRunning", VServerError::NotRunning),
    ("org.vserverd.VServer1.Busy", VServerError::Busy),
    ("org.vserverd.VServer1.ConfigInvalid", VServerError::ConfigInvalid),
    ("org.vserverd.VServer1.StartFailed", start_failed),
    ("org.vserverd.VServer1.HookFailed", VServerError::HookFailed),
    ("org.vserverd.VServer1.StopFailed", VServerError::StopFailed),
    ("org.vserverd.VServer1.Refused", VServerError::Refused),
    ("org.freedesktop.DBus.Error.AccessDenied", VServerError::AccessDenied),
    ("org.freedesktop.DBus.Error.InvalidArgs", VServerError::InvalidArgs),
    ("org.freedesktop.DBus.Error.Failed", VServerError::Failed),
];

impl VServerError {
    pub fn access_denied(msg: impl Into<String>) -> VServerError {
        VServerError::AccessDenied(msg.into())
    }

    pub fn invalid_args(msg: impl Into<String>) -> VServerError {
        VServerError::InvalidArgs(msg.into())
    }

    pub fn failed(msg: impl Into<String>) -> VServerError {
        VServerError::Failed(msg.into())
    }

    /// The D-Bus error name.
    pub fn error_name(&self) -> &str {
        match self {
            VServerError::ZBus(zbus::Error::MethodError(name, _, _)) => name.as_str(),
            VServerError::ZBus(_) => "org.freedesktop.DBus.Error.Failed",
            VServerError::NoSuchVServer(_) => OWN[0].0,
            VServerError::AlreadyRunning(_) => OWN[1].0,
            VServerError::NotRunning(_) => OWN[2].0,
            VServerError::Busy(_) => OWN[3].0,
            VServerError::ConfigInvalid(_) => OWN[4].0,
            VServerError::StartFailed(_) => OWN[5].0,
            VServerError::HookFailed(_) => OWN[6].0,
            VServerError::StopFailed(_) => OWN[7].0,
            VServerError::Refused(_) => OWN[8].0,
            VServerError::AccessDenied(_) => OWN[9].0,
            VServerError::InvalidArgs(_) => OWN[10].0,
            VServerError::Failed(_) => OWN[11].0,
        }
    }

    /// The short name (the last element of the error name), for messages and exit codes.
    pub fn kind(&self) -> &str {
        let n = self.error_name();
        n.rsplit('.').next().unwrap_or(n)
    }

    /// The human-readable message.
    pub fn message(&self) -> String {
        match self {
            VServerError::ZBus(zbus::Error::MethodError(..)) => self.text().unwrap_or_default().to_string(),
            VServerError::ZBus(e) => e.to_string(),
            _ => self.text().unwrap_or_default().to_string(),
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            VServerError::ZBus(zbus::Error::MethodError(_, desc, _)) => desc.as_deref(),
            VServerError::ZBus(_) => None,
            VServerError::NoSuchVServer(m)
            | VServerError::AlreadyRunning(m)
            | VServerError::NotRunning(m)
            | VServerError::Busy(m)
            | VServerError::ConfigInvalid(m)
            | VServerError::HookFailed(m)
            | VServerError::StopFailed(m)
            | VServerError::Refused(m)
            | VServerError::AccessDenied(m)
            | VServerError::InvalidArgs(m)
            | VServerError::Failed(m) => Some(m),
            VServerError::StartFailed(f) => Some(&f.message),
        }
    }
}

impl DBusError for VServerError {
    fn create_reply(&self, call: &Header<'_>) -> zbus::Result<Message> {
        match self {
            VServerError::StartFailed(f) => Message::error(call, self.name()).build(&(f.message.as_str(), f.fields())),
            _ => Message::error(call, self.name()).build(&(self.message(),)),
        }
    }

    fn name(&self) -> ErrorName<'_> {
        ErrorName::try_from(self.error_name()).unwrap_or_else(|_| ErrorName::from_static_str_unchecked("org.freedesktop.DBus.Error.Failed"))
    }

    fn description(&self) -> Option<&str> {
        self.text()
    }
}

/// What a proxy call returns on an error reply: the variant of its name when it is one of ours.
impl From<zbus::Error> for VServerError {
    fn from(e: zbus::Error) -> VServerError {
        let (name, desc) = match &e {
            zbus::Error::MethodError(name, desc, _) => (name.as_str().to_string(), desc.clone().unwrap_or_default()),
            zbus::Error::FDO(f) => (f.name().as_str().to_string(), f.description().unwrap_or_default().to_string()),
            _ => return VServerError::ZBus(e),
        };
        match OWN.iter().find(|(n, _)| *n == name) {
            Some((_, make)) => match (make(desc), &e) {
                (VServerError::StartFailed(mut f), zbus::Error::MethodError(_, _, msg)) => {
                    f.read_fields(msg);
                    VServerError::StartFailed(f)
                }
                (made, _) => made,
            },
            None => VServerError::ZBus(e),
        }
    }
}

impl fmt::Display for VServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for VServerError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_ours_or_the_standard_ones() {
        assert_eq!(VServerError::NoSuchVServer("x".into()).error_name(), "org.vserverd.VServer1.NoSuchVServer");
        assert_eq!(VServerError::access_denied("x").error_name(), "org.freedesktop.DBus.Error.AccessDenied");
        assert_eq!(VServerError::invalid_args("x").kind(), "InvalidArgs");
        for (name, make) in OWN {
            let e = make("m".into());
            assert_eq!(e.error_name(), *name);
            assert_eq!(e.description(), Some("m"));
        }
    }
}
