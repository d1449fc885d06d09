//! Who may change anything: the daemon checks every mutating call itself, whatever the bus
//! policy says (the policy lets anyone send, so that this check decides), by polkit action:
//!
//! 1. the caller must live in the host's PID namespace, whoever it is: root inside a vserver is
//!    uid 0 too, and must never reach the host's daemon (polkit is not asked);
//! 2. uid 0 is allowed without asking anyone;
//! 3. any other uid is allowed when polkit says so: `CheckAuthorization` of the action
//!    ([`Action`]) for the caller's process, named by its pid and start time (so that a pid
//!    recycled meanwhile is not taken for the caller) with the uid the bus reports. No polkit on
//!    the bus means root only.
//!
//! polkit may ask the user to authenticate (`auth_admin`, `auth_self`) only when the call
//! carries D-Bus's `ALLOW_INTERACTIVE_AUTHORIZATION` header flag: the daemon then passes
//! polkit's `AllowUserInteraction` flag, and polkit asks through the authentication agent
//! registered for the caller (`vserverctl` starts `pkttyagent` for itself); the answer comes
//! when the user has answered, and the daemon serves other calls meanwhile.
//!
//! Every refusal is `AccessDenied` with a message that names the action ([`AuthError`]).

use std::collections::HashMap;

use thiserror::Error;
use tokio::sync::OnceCell;
use vserver_api::VServerError;
use zbus::message::{Flags, Header};
use zbus::proxy::CacheProperties;
use zbus::{Connection, Variant};

/// What a mutating method lets its caller do, as a polkit action of
/// `/usr/share/polkit-1/actions/org.vserverd.VServer1.policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Start, stop, restart, kill, reload, onboot, KillProcess.
    Manage,
    /// EnterVServer (`vserverctl enter`, `exec`).
    Enter,
    /// OpenConsole.
    Console,
}

impl Action {
    pub fn id(self) -> &'static str {
        match self {
            Action::Manage => "org.vserverd.VServer1.manage",
            Action::Enter => "org.vserverd.VServer1.enter",
            Action::Console => "org.vserverd.VServer1.console",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

/// Why a call was refused; each becomes `AccessDenied` with this text.
#[derive(Debug, Error)]
pub enum AuthError {
    #[error("the call has no sender")]
    NoSender,
    #[error("cannot read the caller's credentials: {0}")]
    Credentials(zbus::fdo::Error),
    #[error("the bus gave no {0} for the caller")]
    Missing(&'static str),
    #[error("the caller lives inside a vserver; only the host may manage vservers ({action})")]
    InsideVServer { action: Action },
    #[error("uid {uid} may only read; changing vservers needs root (no polkit on the bus to authorize {action})")]
    NoPolkit { uid: u32, action: Action },
    #[error("the caller (pid {pid}) has ended; {action} not checked")]
    CallerGone { pid: u32, action: Action },
    #[error("polkit could not check {action} for uid {uid}: {err}")]
    Polkit { uid: u32, action: Action, err: zbus::Error },
    #[error("polkit does not authorize uid {uid} for {action}")]
    NotAuthorized { uid: u32, action: Action },
    #[error("polkit authorizes uid {uid} for {action} only after authentication, and the call does not allow interactive authorization")]
    NeedsAuthentication { uid: u32, action: Action },
    #[error("polkit authorizes uid {uid} for {action} only after authentication, and no authentication agent is registered to ask the caller")]
    NoAgent { uid: u32, action: Action },
}

impl From<AuthError> for VServerError {
    fn from(e: AuthError) -> VServerError {
        VServerError::access_denied(e.to_string())
    }
}

/// The bus driver's proxy, made once (it caches nothing: every call asks the bus afresh).
async fn bus_driver(conn: &Connection) -> Result<&'static zbus::fdo::DBusProxy<'static>, VServerError> {
    static DRIVER: OnceCell<zbus::fdo::DBusProxy<'static>> = OnceCell::const_new();
    DRIVER
        .get_or_try_init(|| async {
            zbus::fdo::DBusProxy::builder(conn).cache_properties(CacheProperties::No).build().await
        })
        .await
        .map_err(VServerError::ZBus)
}

/// polkit's Authority, made once: calls go to whoever owns `org.freedesktop.PolicyKit1` at the
/// time (the bus starts it when it can be activated).
async fn authority(conn: &Connection) -> Result<&'static zbus::Proxy<'static>, zbus::Error> {
    static AUTHORITY: OnceCell<zbus::Proxy<'static>> = OnceCell::const_new();
    AUTHORITY
        .get_or_try_init(|| async {
            zbus::proxy::Builder::<zbus::Proxy<'static>>::new(conn)
                .destination("org.freedesktop.PolicyKit1")
                .path("/org/freedesktop/PolicyKit1/Authority")
                .interface("org.freedesktop.PolicyKit1.Authority")
                .cache_properties(CacheProperties::No)
                .build()
                .await
        })
        .await
}

/// Who called, as the bus knows it.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub pid: u32,
    pub uid: u32,
}

/// Returns the caller when it may do `action`, else `AccessDenied` saying why.
pub async fn authorize(conn: &Connection, hdr: &Header<'_>, action: Action) -> Result<Caller, VServerError> {
    let sender = hdr.sender().ok_or(AuthError::NoSender)?;
    let dbus = bus_driver(conn).await?;
    let creds = dbus.get_connection_credentials(sender.clone().into()).await.map_err(AuthError::Credentials)?;
    let uid = creds.unix_user_id().ok_or(AuthError::Missing("uid"))?;
    let pid = creds.process_id().ok_or(AuthError::Missing("pid"))?;
    if !same_pid_namespace(pid) {
        return Err(AuthError::InsideVServer { action }.into());
    }
    if uid != 0 {
        let interactive = hdr.primary().flags().contains(Flags::ALLOW_INTERACTIVE_AUTH);
        check_polkit(conn, Caller { pid, uid }, action, interactive).await?;
    }
    Ok(Caller { pid, uid })
}

/// polkit's `CheckAuthorization` flag that lets it ask the user (through an agent).
const ALLOW_USER_INTERACTION: u32 = 1;

/// Asks polkit whether `caller` may do `action`.
async fn check_polkit(conn: &Connection, caller: Caller, action: Action, interactive: bool) -> Result<(), AuthError> {
    let Caller { pid, uid } = caller;
    let start_time = vserver_engine::sys::start_time(pid as libc::pid_t).ok_or(AuthError::CallerGone { pid, action })?;
    let subject = unix_process(pid, start_time, uid);
    let details: HashMap<&str, &str> = HashMap::new();
    let flags = if interactive { ALLOW_USER_INTERACTION } else { 0 };
    let polkit = |err| AuthError::Polkit { uid, action, err };
    let authority = authority(conn).await.map_err(polkit)?;
    let reply: Result<(bool, bool, HashMap<String, String>), _> =
        authority.call("CheckAuthorization", &(subject, action.id(), details, flags, "")).await;
    match reply {
        Ok((true, _, _)) => Ok(()),
        // Still a challenge although interaction was allowed: polkit found no agent to ask.
        Ok((false, true, _)) if interactive => Err(AuthError::NoAgent { uid, action }),
        Ok((false, true, _)) => Err(AuthError::NeedsAuthentication { uid, action }),
        // A wrong password, a dismissed prompt, or a plain no.
        Ok((false, false, _)) => Err(AuthError::NotAuthorized { uid, action }),
        Err(e) if no_owner(&e) => Err(AuthError::NoPolkit { uid, action }),
        Err(e) => Err(polkit(e)),
    }
}

/// polkit's subject `unix-process` (`(sa{sv})`): a process named by its pid and its start time
/// (field 22 of /proc/PID/stat), with its uid.
fn unix_process(pid: u32, start_time: u64, uid: u32) -> (&'static str, HashMap<&'static str, Variant<'static>>) {
    let details = HashMap::from([
        ("pid", Variant::from(pid)),
        ("start-time", Variant::from(start_time)),
        ("uid", Variant::from(uid as i32)),
    ]);
    ("unix-process", details)
}

/// True when the call failed because nobody owns polkit's name on the bus.
fn no_owner(e: &zbus::Error) -> bool {
    const NAMES: [&str; 2] = ["org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"];
    match e {
        zbus::Error::MethodError(name, _, _) => NAMES.contains(&name.as_str()),
        zbus::Error::FDO(f) => matches!(**f, zbus::fdo::Error::ServiceUnknown(_) | zbus::fdo::Error::NameHasNoOwner(_)),
        _ => false,
    }
}

/// True when `pid` lives in the daemon's own PID namespace.
pub fn same_pid_namespace(pid: u32) -> bool {
    let mine = std::fs::read_link("/proc/self/ns/pid");
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/pid"));
    matches!((mine, theirs), (Ok(a), Ok(b)) if a == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_are_the_policy_files() {
        let policy = include_str!("../../../systemd/org.vserverd.VServer1.policy");
        for a in [Action::Manage, Action::Enter, Action::Console] {
            assert!(policy.contains(&format!("<action id=\"{}\">", a.id())), "{a} in the policy file");
        }
        // Control: an id the file does not declare is not found.
        assert!(!policy.contains("<action id=\"org.vserverd.VServer1.nothing\">"));
        assert_eq!(policy.matches("<action id=").count(), 3);
    }

    #[test]
    fn the_subject_is_a_unix_process_with_polkits_types() {
        let (kind, details) = unix_process(42, 123456789, 65534);
        assert_eq!(kind, "unix-process");
        assert_eq!(details["pid"], Variant::from(42u32));
        assert_eq!(details["start-time"], Variant::from(123456789u64));
        assert_eq!(details["uid"], Variant::from(65534i32));
        // polkit reads `pid` as u, `start-time` as t, `uid` as i: a wrong type is a different value.
        assert_ne!(details["uid"], Variant::from(65534u32));
        assert_eq!(zbus::DynamicType::signature(&(kind, details)).to_string(), "(sa{sv})");
    }

    #[test]
    fn no_owner_only_for_a_missing_name() {
        assert!(no_owner(&zbus::Error::FDO(Box::new(zbus::fdo::Error::ServiceUnknown("x".into())))));
        assert!(no_owner(&zbus::Error::FDO(Box::new(zbus::fdo::Error::NameHasNoOwner("x".into())))));
        assert!(!no_owner(&zbus::Error::FDO(Box::new(zbus::fdo::Error::AccessDenied("x".into())))));
        assert!(!no_owner(&zbus::Error::Failure("org.freedesktop.DBus.Error.ServiceUnknown".into())));
    }

    #[test]
    fn refusals_name_the_action() {
        let no = VServerError::from(AuthError::NoPolkit { uid: 65534, action: Action::Manage });
        assert_eq!(no.error_name(), "org.freedesktop.DBus.Error.AccessDenied");
        let text = no.to_string();
        assert!(text.contains("uid 65534 may only read") && text.contains("no polkit") && text.contains("org.vserverd.VServer1.manage"), "{text}");
        let not = AuthError::NotAuthorized { uid: 1000, action: Action::Console }.to_string();
        assert!(not.contains("org.vserverd.VServer1.console") && !not.contains("manage"), "{not}");
    }

    #[test]
    fn own_process_is_in_the_same_pid_namespace() {
        assert!(same_pid_namespace(std::process::id()));
        assert!(!same_pid_namespace(u32::MAX), "a pid that cannot exist");
    }
}
