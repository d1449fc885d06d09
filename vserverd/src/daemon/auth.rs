//! Who may change anything: the daemon checks every mutating call itself, whatever the bus
//! policy says. The caller must be uid 0 *and* live in the host's PID namespace: root inside a
//! vserver is uid 0 too, and must never reach the host's daemon.

use tokio::sync::OnceCell;
use vserver_api::VServerError;
use zbus::message::Header;
use zbus::proxy::CacheProperties;
use zbus::Connection;

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

/// Returns the caller's pid when it may call a mutating method.
pub async fn require_host_root(conn: &Connection, hdr: &Header<'_>) -> Result<u32, VServerError> {
    let sender = hdr.sender().ok_or_else(|| VServerError::access_denied("the call has no sender"))?;
    let dbus = bus_driver(conn).await?;
    let creds = dbus
        .get_connection_credentials(sender.clone().into())
        .await
        .map_err(|e| VServerError::access_denied(format!("cannot read the caller's credentials: {e}")))?;
    let uid = creds.unix_user_id().ok_or_else(|| VServerError::access_denied("the bus gave no uid for the caller"))?;
    if uid != 0 {
        return Err(VServerError::access_denied(format!("uid {uid} may only read; changing vservers needs root")));
    }
    let pid = creds.process_id().ok_or_else(|| VServerError::access_denied("the bus gave no pid for the caller"))?;
    if !same_pid_namespace(pid) {
        return Err(VServerError::access_denied("the caller lives inside a vserver; only the host may manage vservers"));
    }
    Ok(pid)
}

/// True when `pid` lives in the daemon's own PID namespace.
pub fn same_pid_namespace(pid: u32) -> bool {
    let mine = std::fs::read_link("/proc/self/ns/pid");
    let theirs = std::fs::read_link(format!("/proc/{pid}/ns/pid"));
    matches!((mine, theirs), (Ok(a), Ok(b)) if a == b)
}
