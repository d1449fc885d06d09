//! The D-Bus adapters: thin interfaces over the daemon and its supervisors. Every mutating
//! method checks its caller first (`auth`), then forwards to one supervisor.

pub mod manager;
pub mod vserver;

use std::sync::Arc;

use tracing::warn;
use vserver_api::{vserver_path, MANAGER_PATH};
use zbus::object_server::SignalEmitter;
use zbus::wire::OwnedObjectPath;
use zbus::Connection;

use crate::daemon::Daemon;
use crate::supervisor::Supervisor;

/// Serves the object of one vserver and relays its status changes as PropertiesChanged.
pub async fn publish(conn: &Connection, sup: Arc<Supervisor>) -> zbus::Result<()> {
    let path = vserver_path(&sup.name);
    let refused = conn.object_server().at(path.as_str(), vserver::VServerIface::new(sup.clone())).await?;
    if refused.is_some() {
        return Ok(()); // already published
    }
    let iface = conn.object_server().interface::<_, vserver::VServerIface>(path.as_str()).await?;
    let mut rx = sup.changed.subscribe();
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let emitter = iface.signal_emitter();
            let obj = iface.get().await;
            let r = async {
                obj.state_changed(emitter).await?;
                obj.leader_changed(emitter).await?;
                obj.context_changed(emitter).await?;
                obj.started_at_changed(emitter).await?;
                obj.restarts_changed(emitter).await?;
                obj.last_exit_changed(emitter).await?;
                obj.addresses_changed(emitter).await?;
                obj.onboot_changed(emitter).await?;
                obj.root_directory_changed(emitter).await?;
                obj.config_file_changed(emitter).await?;
                obj.flags_changed(emitter).await
            }
            .await;
            if let Err(e) = r {
                // The object was removed: stop relaying.
                warn!(error = %e, "PropertiesChanged not sent");
                break;
            }
        }
    });
    let emitter = SignalEmitter::new(conn, MANAGER_PATH)?;
    let p = OwnedObjectPath::try_from(path).map_err(|e| zbus::Error::Failure(e.to_string()))?;
    manager::ManagerIface::vserver_new(&emitter, &sup.name, p).await
}

/// Removes the object of a vserver that is gone from the configuration.
pub async fn unpublish(conn: &Connection, name: &str) -> zbus::Result<()> {
    let path = vserver_path(name);
    conn.object_server().remove::<vserver::VServerIface, _>(path.as_str()).await?;
    let emitter = SignalEmitter::new(conn, MANAGER_PATH)?;
    let p = OwnedObjectPath::try_from(path).map_err(|e| zbus::Error::Failure(e.to_string()))?;
    manager::ManagerIface::vserver_removed(&emitter, name, p).await
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
