//! What went wrong, said so that the user knows what to do, and the exit code it means.

use std::fmt;
use std::io;

use vserver_api::VServerError;
use zbus::DBusError;

use crate::cli::Verb;

/// Exit codes (see `vserverctl --help`).
pub mod exit {
    pub const OK: u8 = 0;
    /// Any failure; `running`: not running; `check`: invalid configuration.
    pub const FAILURE: u8 = 1;
    /// Wrong usage (clap's own code).
    pub const USAGE: u8 = 2;
    /// `status`: the vserver exists but is not running (LSB).
    pub const NOT_RUNNING: u8 = 3;
    /// `status`: no such vserver (LSB "unknown").
    pub const NO_SUCH_VSERVER: u8 = 4;
}

/// An error of `vserverctl`.
#[derive(Debug)]
pub enum CtlError {
    /// A call to vserverd failed (the daemon's own errors and the bus's).
    Api {
        /// What we tried, as a verb phrase: "start web1", "list the vservers".
        action: String,
        /// The vserver it was about, if one.
        name: Option<String>,
        err: VServerError,
    },
    /// No connection to the bus at all.
    Connect { address: String, err: zbus::Error },
    /// A local file operation (logs, generate).
    Io { what: String, err: io::Error },
    /// Arguments that parse but make no sense together.
    Usage(String),
    /// Anything else, said in full (exit 1).
    Failed(String),
}

/// The kinds of failure the user can act on differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    NoSuchVServer,
    AlreadyRunning,
    NotRunning,
    Busy,
    ConfigInvalid,
    StartFailed,
    HookFailed,
    StopFailed,
    Refused,
    AccessDenied,
    /// The bus is there but nobody owns the daemon's name.
    DaemonDown,
    /// The bus itself cannot be reached (refused, gone, failed authentication).
    BusUnreachable,
    Timeout,
    /// The daemon does not know the method, object or property (version skew).
    Unsupported,
    InvalidArgs,
    Io,
    Usage,
    Other,
}

impl CtlError {
    pub fn api(action: impl Into<String>, name: Option<&str>, err: impl Into<VServerError>) -> CtlError {
        CtlError::Api { action: action.into(), name: name.map(str::to_owned), err: err.into() }
    }

    pub fn io(what: impl Into<String>, err: io::Error) -> CtlError {
        CtlError::Io { what: what.into(), err }
    }

    pub fn kind(&self) -> Kind {
        match self {
            CtlError::Api { err, .. } => kind_of(err),
            CtlError::Connect { .. } => Kind::BusUnreachable,
            CtlError::Io { .. } => Kind::Io,
            CtlError::Usage(_) => Kind::Usage,
            CtlError::Failed(_) => Kind::Other,
        }
    }

    /// The exit code of this error when `verb` failed with it.
    pub fn exit_code(&self, verb: Verb) -> u8 {
        match (self.kind(), verb) {
            (Kind::NoSuchVServer, Verb::Status) => exit::NO_SUCH_VSERVER,
            (Kind::Usage, _) => exit::USAGE,
            _ => exit::FAILURE,
        }
    }
}

/// The kind of a daemon or bus error.
pub fn kind_of(err: &VServerError) -> Kind {
    match err {
        VServerError::NoSuchVServer(_) => Kind::NoSuchVServer,
        VServerError::AlreadyRunning(_) => Kind::AlreadyRunning,
        VServerError::NotRunning(_) => Kind::NotRunning,
        VServerError::Busy(_) => Kind::Busy,
        VServerError::ConfigInvalid(_) => Kind::ConfigInvalid,
        VServerError::StartFailed(_) => Kind::StartFailed,
        VServerError::HookFailed(_) => Kind::HookFailed,
        VServerError::StopFailed(_) => Kind::StopFailed,
        VServerError::Refused(_) => Kind::Refused,
        VServerError::AccessDenied(_) => Kind::AccessDenied,
        VServerError::InvalidArgs(_) => Kind::InvalidArgs,
        VServerError::Failed(_) => Kind::Other,
        VServerError::ZBus(e) => zbus_kind(e),
    }
}

fn zbus_kind(e: &zbus::Error) -> Kind {
    use zbus::Error as E;
    match e {
        E::FDO(f) => fdo_kind(f),
        E::InputOutput(_) | E::Handshake(_) | E::Address(_) => Kind::BusUnreachable,
        E::InterfaceNotFound => Kind::Unsupported,
        E::MethodError(name, _, _) => match name.as_str().rsplit('.').next() {
            Some("AccessDenied") | Some("InteractiveAuthorizationRequired") => Kind::AccessDenied,
            _ => Kind::Other,
        },
        _ => Kind::Other,
    }
}

fn fdo_kind(e: &zbus::fdo::Error) -> Kind {
    use zbus::fdo::Error as F;
    match e {
        F::ZBus(inner) => zbus_kind(inner),
        F::AccessDenied(_) | F::InteractiveAuthorizationRequired(_) => Kind::AccessDenied,
        F::ServiceUnknown(_) | F::NameHasNoOwner(_) | F::SpawnServiceNotFound(_) | F::SpawnExecFailed(_) => {
            Kind::DaemonDown
        }
        F::NoServer(_) | F::Disconnected(_) | F::IOError(_) | F::AuthFailed(_) | F::BadAddress(_) | F::NoNetwork(_) => {
            Kind::BusUnreachable
        }
        F::NoReply(_) | F::Timeout(_) | F::TimedOut(_) => Kind::Timeout,
        F::UnknownMethod(_) | F::UnknownObject(_) | F::UnknownInterface(_) | F::UnknownProperty(_) => Kind::Unsupported,
        F::InvalidArgs(_) | F::InvalidSignature(_) => Kind::InvalidArgs,
        _ => Kind::Other,
    }
}

/// The daemon's own words for an error (its message, or the bus error's description).
pub fn detail(err: &VServerError) -> String {
    match err {
        VServerError::ZBus(e) => zbus_detail(e),
        other => other.message(),
    }
}

fn zbus_detail(e: &zbus::Error) -> String {
    match e {
        zbus::Error::FDO(f) => match f.as_ref() {
            zbus::fdo::Error::ZBus(inner) => zbus_detail(inner),
            f => f.description().map(str::to_owned).unwrap_or_else(|| f.name().to_string()),
        },
        zbus::Error::MethodError(name, desc, _) => match desc {
            Some(d) => format!("{d} ({name})"),
            None => name.to_string(),
        },
        e => e.to_string(),
    }
}

const DAEMON_DOWN: &str =
    "vserverd is not running (start it with `systemctl start vserverd`, or check DBUS_SYSTEM_BUS_ADDRESS)";

/// Indents every line by two spaces.
fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Api { action, name, err } => {
                let msg = detail(err);
                let n = name.as_deref();
                let who = n.unwrap_or("the vserver");
                match kind_of(err) {
                    Kind::NoSuchVServer => match n {
                        Some(n) => write!(
                            f,
                            "no vserver named {n} (is /etc/vservers/{n}.toml there? run `vserverctl list --all`)"
                        ),
                        None => write!(f, "{msg} (run `vserverctl list --all` to see the vservers)"),
                    },
                    Kind::AlreadyRunning => write!(f, "{who} is already running (to start it afresh: `vserverctl restart {who}`)"),
                    // The daemon's words say which state it is in (stopped, stopping, failed).
                    Kind::NotRunning if !msg.is_empty() && msg != format!("{who} is not running") => {
                        write!(f, "{who} is not running: {msg} (start it with `vserverctl start {who}`)")
                    }
                    Kind::NotRunning => write!(f, "{who} is not running (start it with `vserverctl start {who}`)"),
                    Kind::Busy => write!(
                        f,
                        "cannot {action}: another operation on {who} is under way ({msg}); wait for it to finish and try again"
                    ),
                    Kind::ConfigInvalid => {
                        write!(f, "cannot {action}: the configuration is invalid:\n{}\n", indent(&msg))?;
                        match n {
                            Some(n) => write!(f, "fix it, then run `vserverctl check {n}`"),
                            None => write!(f, "fix it, then run `vserverctl check`"),
                        }
                    }
                    Kind::StartFailed => {
                        write!(f, "{who} failed to start: {msg}")?;
                        if let VServerError::StartFailed(failure) = err {
                            if !failure.console.is_empty() {
                                write!(f, "\nthe console's last lines:\n{}", indent(&failure.console))?;
                            }
                        }
                        write!(f, "\n(see `vserverctl logs {who}` and `journalctl -u vserverd`)")
                    }
                    Kind::HookFailed => write!(
                        f,
                        "cannot {action}: a hook failed: {msg}\n(see `vserverctl logs {who}` and `journalctl -u vserverd`)"
                    ),
                    Kind::StopFailed => write!(
                        f,
                        "{who} did not stop: {msg}\n(see `vserverctl ps {who}` and `journalctl -u vserverd`)"
                    ),
                    Kind::Refused => write!(f, "vserverd refused to {action}: {msg}"),
                    Kind::AccessDenied => {
                        // vserverd's refusals (its daemon/auth.rs) that a password would have
                        // turned into a yes: say how to give one.
                        let how = if msg.contains("does not allow interactive authorization") {
                            "run vserverctl on a terminal, without --no-ask-password, to authenticate, or as root"
                        } else if msg.contains("no authentication agent") {
                            "install pkttyagent (package polkitd) and run vserverctl on a terminal to authenticate, or run it as root"
                        } else {
                            "run vserverctl as root (for example with sudo), or as a user polkit authorizes"
                        };
                        write!(f, "permission denied: cannot {action}: {msg}; {how}")
                    }
                    Kind::DaemonDown => f.write_str(DAEMON_DOWN),
                    Kind::BusUnreachable => write!(
                        f,
                        "cannot reach the system bus ({msg}); vserverd is not reachable (is dbus running? start vserverd \
                         with `systemctl start vserverd`, or check DBUS_SYSTEM_BUS_ADDRESS / --bus-address)"
                    ),
                    Kind::Timeout => write!(
                        f,
                        "vserverd did not answer in time to {action} ({msg}); it may still be at work: check with `vserverctl list --all`"
                    ),
                    Kind::Unsupported => write!(
                        f,
                        "cannot {action}: vserverd does not know this request ({msg}); are vserverd and vserverctl of the same version?"
                    ),
                    Kind::InvalidArgs => write!(f, "vserverd rejected the request to {action}: {msg}"),
                    _ => write!(f, "cannot {action}: {msg}"),
                }
            }
            CtlError::Connect { address, err } => write!(
                f,
                "cannot connect to the bus at {address}: {err}; vserverd is not reachable (is dbus running? start vserverd \
                 with `systemctl start vserverd`, or check DBUS_SYSTEM_BUS_ADDRESS / --bus-address)"
            ),
            CtlError::Io { what, err } => {
                write!(f, "{what}: {err}")?;
                match err.kind() {
                    io::ErrorKind::PermissionDenied => f.write_str(" (run vserverctl as root)"),
                    _ => Ok(()),
                }
            }
            CtlError::Usage(msg) | CtlError::Failed(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for CtlError {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn fdo(e: zbus::fdo::Error) -> VServerError {
        VServerError::ZBus(zbus::Error::FDO(Box::new(e)))
    }

    fn api(name: Option<&str>, err: VServerError) -> CtlError {
        CtlError::api(format!("start {}", name.unwrap_or("")), name, err)
    }

    const VERBS: [Verb; 11] = [
        Verb::List,
        Verb::Status,
        Verb::Start,
        Verb::Stop,
        Verb::Restart,
        Verb::Kill,
        Verb::Running,
        Verb::Check,
        Verb::Reload,
        Verb::Logs,
        Verb::Generate,
    ];

    #[test]
    fn no_such_vserver_is_4_for_status_only() {
        let e = api(Some("web1"), VServerError::NoSuchVServer("no vserver web1".into()));
        assert_eq!(e.kind(), Kind::NoSuchVServer);
        for v in VERBS {
            assert_eq!(e.exit_code(v), if v == Verb::Status { 4 } else { 1 }, "{v:?}");
        }
        let msg = e.to_string();
        assert!(msg.contains("no vserver named web1"), "{msg}");
        assert!(msg.contains("/etc/vservers/web1.toml"), "{msg}");
        assert!(msg.contains("vserverctl list --all"), "{msg}");
    }

    #[test]
    fn every_other_error_is_1() {
        let errors = [
            VServerError::AlreadyRunning("x".into()),
            VServerError::NotRunning("x".into()),
            VServerError::Busy("x".into()),
            VServerError::ConfigInvalid("a:1:1: error: x".into()),
            VServerError::StartFailed(vserver_api::StartFailure::new("x")),
            VServerError::HookFailed("x".into()),
            VServerError::StopFailed("x".into()),
            VServerError::Refused("x".into()),
            VServerError::access_denied("x"),
            VServerError::invalid_args("x"),
            VServerError::failed("x"),
            fdo(zbus::fdo::Error::ServiceUnknown("x".into())),
        ];
        for err in errors {
            let e = api(Some("web1"), err);
            for v in VERBS {
                assert_eq!(e.exit_code(v), 1, "{e:?} {v:?}");
            }
        }
        assert_eq!(CtlError::Usage("x".into()).exit_code(Verb::Status), 2);
        assert_eq!(CtlError::io("reading x", io::Error::from(io::ErrorKind::NotFound)).exit_code(Verb::Logs), 1);
    }

    #[test]
    fn kinds_of_bus_errors() {
        assert_eq!(kind_of(&VServerError::access_denied("no")), Kind::AccessDenied);
        assert_eq!(kind_of(&fdo(zbus::fdo::Error::ServiceUnknown("x".into()))), Kind::DaemonDown);
        assert_eq!(kind_of(&fdo(zbus::fdo::Error::NameHasNoOwner("x".into()))), Kind::DaemonDown);
        assert_eq!(kind_of(&fdo(zbus::fdo::Error::NoReply("x".into()))), Kind::Timeout);
        assert_eq!(kind_of(&fdo(zbus::fdo::Error::UnknownMethod("x".into()))), Kind::Unsupported);
        assert_eq!(kind_of(&VServerError::invalid_args("x")), Kind::InvalidArgs);
        assert_eq!(kind_of(&VServerError::failed("x")), Kind::Other);
        let refused = zbus::Error::InputOutput(Arc::new(io::Error::from(io::ErrorKind::ConnectionRefused)));
        assert_eq!(kind_of(&VServerError::ZBus(refused)), Kind::BusUnreachable);
        let nested =
            fdo(zbus::fdo::Error::ZBus(zbus::Error::FDO(Box::new(zbus::fdo::Error::AccessDenied("x".into())))));
        assert_eq!(kind_of(&nested), Kind::AccessDenied);
    }

    #[test]
    fn errors_from_the_wire_become_our_variants() {
        // What zbus hands the proxy for an error reply named under our prefix.
        let e = VServerError::from(zbus::Error::FDO(Box::new(zbus::fdo::Error::ServiceUnknown("gone".into()))));
        assert_eq!(kind_of(&e), Kind::DaemonDown);
        assert_eq!(detail(&e), "gone");
    }

    #[test]
    fn messages_say_what_to_do() {
        let denied = api(Some("web1"), VServerError::access_denied("only root may start vservers")).to_string();
        assert!(denied.starts_with("permission denied: cannot start web1: only root may start vservers"), "{denied}");
        assert!(denied.contains("as root"), "{denied}");
        let needs = VServerError::access_denied(
            "polkit authorizes uid 1000 for org.vserverd.VServer1.manage only after authentication, and the call does not allow interactive authorization",
        );
        let needs = api(Some("web1"), needs).to_string();
        assert!(needs.ends_with("run vserverctl on a terminal, without --no-ask-password, to authenticate, or as root"), "{needs}");
        let no_agent = VServerError::access_denied(
            "polkit authorizes uid 1000 for org.vserverd.VServer1.manage only after authentication, and no authentication agent is registered to ask the caller",
        );
        let no_agent = api(Some("web1"), no_agent).to_string();
        assert!(no_agent.contains("install pkttyagent (package polkitd)"), "{no_agent}");

        let down = api(None, fdo(zbus::fdo::Error::ServiceUnknown("The name is not activatable".into()))).to_string();
        assert_eq!(down, DAEMON_DOWN);

        let invalid =
            api(Some("web1"), VServerError::ConfigInvalid("a.toml:1:2: error: x\na.toml:3:4: error: y".into()))
                .to_string();
        assert!(invalid.contains("\n  a.toml:1:2: error: x\n  a.toml:3:4: error: y\n"), "{invalid}");
        assert!(invalid.ends_with("`vserverctl check web1`"), "{invalid}");

        let mut failure = vserver_api::StartFailure::new("mount /proc: EPERM");
        failure.console = "last words".into();
        let failed = api(Some("web1"), VServerError::StartFailed(failure)).to_string();
        assert!(failed.contains("web1 failed to start: mount /proc: EPERM\nthe console's last lines:\n  last words\n"), "{failed}");
        assert!(failed.contains("vserverctl logs web1"), "{failed}");

        let not = api(Some("web1"), VServerError::NotRunning("web1".into())).to_string();
        assert!(not.contains("vserverctl start web1"), "{not}");

        let conn = CtlError::Connect {
            address: "unix:path=/nope".into(),
            err: zbus::Error::InputOutput(Arc::new(io::Error::from(io::ErrorKind::NotFound))),
        };
        assert_eq!(conn.kind(), Kind::BusUnreachable);
        assert!(conn.to_string().contains("DBUS_SYSTEM_BUS_ADDRESS"));

        let io =
            CtlError::io("cannot read /var/log/vservers/web1.log", io::Error::from(io::ErrorKind::PermissionDenied));
        assert!(io.to_string().ends_with("(run vserverctl as root)"));
    }
}
