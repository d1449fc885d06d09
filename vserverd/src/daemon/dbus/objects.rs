//! The objects on the bus: one per vserver, published and removed as the configuration changes,
//! with the Manager's VServerNew / VServerRemoved signals and each vserver's PropertiesChanged.

use std::borrow::Cow;
use std::sync::Arc;

use tracing::warn;
use tracing::info;
use vserver_api::{vserver_path, MANAGER_INTERFACE, MANAGER_PATH};
use zbus::object_server::SignalEmitter;
use zbus::wire::OwnedObjectPath;
use zbus::Connection;

use super::vserver;
use crate::daemon::state::Daemon;
use crate::daemon::supervisor::Supervisor;

/// Serves the object of one vserver and relays its status changes as PropertiesChanged.
pub async fn publish(conn: &Connection, sup: Arc<Supervisor>) -> zbus::Result<()> {
    let path = vserver_path(&sup.name);
    // Subscribed, then the values, then published: a change at any point is either in what a
    // client can first read or relayed.
    let mut rx = sup.changed.subscribe();
    let mut sent = vserver::VServerIface::new(sup.clone()).snapshot();
    let refused = conn.object_server().at(path.as_str(), vserver::VServerIface::new(sup.clone())).await?;
    if refused.is_some() {
        return Ok(()); // already published
    }
    let iface = conn.object_server().interface::<_, vserver::VServerIface>(path.as_str()).await?;
    tokio::spawn(async move {
        let name = <vserver::VServerIface as zbus::object_server::Interface>::name();
        while rx.changed().await.is_ok() {
            let now = iface.get().await.snapshot();
            let changed = now.changed_since(&sent);
            if changed.is_empty() {
                continue;
            }
            let r = zbus::fdo::Properties::properties_changed(iface.signal_emitter(), name.clone(), changed, Cow::Borrowed(&[])).await;
            if let Err(e) = r {
                // The object was removed: stop relaying.
                warn!(error = %e, "PropertiesChanged not sent");
                break;
            }
            sent = now;
        }
    });
    let emitter = SignalEmitter::new(conn, MANAGER_PATH)?;
    let p = OwnedObjectPath::try_from(path).map_err(|e| zbus::Error::Failure(e.to_string()))?;
    emitter.emit(MANAGER_INTERFACE, "VServerNew", &(sup.name.as_str(), p)).await
}

/// Removes the object of a vserver that is gone from the configuration.
pub async fn unpublish(conn: &Connection, name: &str) -> zbus::Result<()> {
    let path = vserver_path(name);
    conn.object_server().remove::<vserver::VServerIface, _>(path.as_str()).await?;
    let emitter = SignalEmitter::new(conn, MANAGER_PATH)?;
    let p = OwnedObjectPath::try_from(path).map_err(|e| zbus::Error::Failure(e.to_string()))?;
    emitter.emit(MANAGER_INTERFACE, "VServerRemoved", &(name, p)).await
}

/// Publishes and unpublishes after a (re)load.
pub async fn sync_objects(daemon: &Arc<Daemon>, added: &[String], removed: &[String]) {
    let Some(conn) = daemon.conn.lock().unwrap().clone() else { return };
    for name in removed {
        if let Err(e) = unpublish(&conn, name).await {
            warn!(vserver = %name, error = %e, "cannot remove D-Bus object");
        }
    }
    for name in added {
        if let Ok(sup) = daemon.get(name) {
            if let Err(e) = publish(&conn, sup).await {
                warn!(vserver = %name, error = %e, "cannot publish D-Bus object");
            }
        }
    }
}

/// Re-reads the configuration and applies it (SIGHUP, `Reload`, `SetOnboot`); returns the
/// diagnostics, one per line. The service manager sees the unit reloading until it is done, so
/// that `systemctl reload` (`ExecReload=`: `vserverctl reload`) returns when it has happened.
pub async fn reload(daemon: &Arc<Daemon>) -> Vec<String> {
    crate::daemon::notify::reloading();
    let result = daemon.load_config();
    let (added, removed) = daemon.apply(&result);
    sync_objects(daemon, &added, &removed).await;
    info!(vservers = result.vservers.len(), invalid = result.invalid.len(), "configuration loaded");
    crate::daemon::notify::ready();
    daemon.diagnostics.lock().unwrap().clone()
}
