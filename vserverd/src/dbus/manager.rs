//! `org.vserverd.VServer1.Manager` at `/org/vserverd/VServer1`.

use std::sync::Arc;

use vserver_api::{vserver_path, BootReport, VServerError, VServerSummary};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::wire::OwnedObjectPath;
use zbus::{interface, Connection};

use crate::auth::require_host_root;
use crate::daemon::Daemon;

pub struct ManagerIface {
    pub daemon: Arc<Daemon>,
}

fn path(name: &str) -> OwnedObjectPath {
    OwnedObjectPath::try_from(vserver_path(name)).expect("escaped names make valid paths")
}

#[interface(name = "org.vserverd.VServer1.Manager")]
impl ManagerIface {
    #[zbus(name = "ListVServers")]
    fn list_vservers(&self) -> Vec<VServerSummary> {
        self.daemon
            .all()
            .into_iter()
            .map(|s| {
                let st = s.status();
                let cfg = s.config();
                VServerSummary {
                    name: s.name.clone(),
                    state: st.state.as_str().to_string(),
                    context: st.run.as_ref().map(|r| r.context).or(cfg.as_ref().map(|c| c.context)).unwrap_or(0),
                    leader: st.run.as_ref().map(|r| r.pid as u32).unwrap_or(0),
                    addresses: cfg.map(|c| c.network.addresses.iter().map(|a| a.to_string()).collect()).unwrap_or_default(),
                    started_at: st.run.as_ref().map(|r| r.started_at).unwrap_or(0),
                    path: path(&s.name),
                }
            })
            .collect()
    }

    #[zbus(name = "GetVServer")]
    fn get_vserver(&self, name: &str) -> Result<OwnedObjectPath, VServerError> {
        self.daemon.get(name).map(|s| path(&s.name))
    }

    #[zbus(name = "StartVServer")]
    async fn start_vserver(&self, name: &str, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<(), VServerError> {
        require_host_root(conn, &hdr).await?;
        self.daemon.get(name)?.start().await
    }

    #[zbus(name = "StopVServer")]
    async fn stop_vserver(&self, name: &str, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<(), VServerError> {
        require_host_root(conn, &hdr).await?;
        self.daemon.get(name)?.stop().await
    }

    #[zbus(name = "RestartVServer")]
    async fn restart_vserver(&self, name: &str, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<(), VServerError> {
        require_host_root(conn, &hdr).await?;
        self.daemon.get(name)?.restart().await
    }

    #[zbus(name = "KillVServer")]
    async fn kill_vserver(
        &self,
        name: &str,
        whom: &str,
        signal: i32,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), VServerError> {
        require_host_root(conn, &hdr).await?;
        self.daemon.get(name)?.kill(whom, signal)
    }

    #[zbus(name = "Reload")]
    async fn reload(&self, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<Vec<String>, VServerError> {
        require_host_root(conn, &hdr).await?;
        Ok(crate::reload(&self.daemon).await)
    }

    #[zbus(name = "CheckConfig")]
    fn check_config(&self, name: &str) -> (bool, Vec<String>) {
        let paths = &self.daemon.paths;
        let r = if name.is_empty() {
            crate::config::load_dir(&paths.config_dir, &paths.load_options())
        } else {
            crate::config::load_one(&paths.config_dir, name, &paths.load_options())
        };
        (!r.has_errors(), r.diagnostics.iter().map(|d| d.to_string()).collect())
    }

    #[zbus(name = "StartOnboot")]
    async fn start_onboot(&self, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<Vec<BootReport>, VServerError> {
        require_host_root(conn, &hdr).await?;
        Ok(self.daemon.start_onboot().await)
    }

    #[zbus(name = "StopAll")]
    async fn stop_all(&self, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<Vec<BootReport>, VServerError> {
        require_host_root(conn, &hdr).await?;
        Ok(self.daemon.stop_all().await)
    }

    #[zbus(signal, name = "VServerNew")]
    pub async fn vserver_new(emitter: &SignalEmitter<'_>, name: &str, path: OwnedObjectPath) -> zbus::Result<()>;

    #[zbus(signal, name = "VServerRemoved")]
    pub async fn vserver_removed(emitter: &SignalEmitter<'_>, name: &str, path: OwnedObjectPath) -> zbus::Result<()>;
}
