//! `org.vserverd.VServer1.VServer`: one object per vserver.

use std::sync::Arc;

use vserver_api::VServerError;
use zbus::message::Header;
use zbus::{interface, Connection};

use crate::auth::require_host_root;
use crate::supervisor::Supervisor;

pub struct VServerIface {
    sup: Arc<Supervisor>,
}

impl VServerIface {
    pub fn new(sup: Arc<Supervisor>) -> VServerIface {
        VServerIface { sup }
    }
}

#[interface(name = "org.vserverd.VServer1.VServer")]
impl VServerIface {
    async fn start(&self, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<(), VServerError> {
        require_host_root(conn, &hdr).await?;
        self.sup.start().await
    }

    async fn stop(&self, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<(), VServerError> {
        require_host_root(conn, &hdr).await?;
        self.sup.stop().await
    }

    async fn restart(&self, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<(), VServerError> {
        require_host_root(conn, &hdr).await?;
        self.sup.restart().await
    }

    async fn kill(
        &self,
        whom: &str,
        signal: i32,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), VServerError> {
        require_host_root(conn, &hdr).await?;
        self.sup.kill(whom, signal)
    }

    #[zbus(property)]
    fn name(&self) -> String {
        self.sup.name.clone()
    }

    #[zbus(property)]
    fn state(&self) -> String {
        self.sup.status().state.as_str().to_string()
    }

    #[zbus(property)]
    fn context(&self) -> u32 {
        self.sup.context()
    }

    #[zbus(property)]
    fn leader(&self) -> u32 {
        self.sup.leader()
    }

    #[zbus(property)]
    fn addresses(&self) -> Vec<String> {
        self.sup.addresses()
    }

    #[zbus(property)]
    fn onboot(&self) -> bool {
        self.sup.config().map(|c| c.onboot).unwrap_or(false)
    }

    #[zbus(property)]
    fn root_directory(&self) -> String {
        self.sup.config().map(|c| c.root.display().to_string()).unwrap_or_default()
    }

    #[zbus(property)]
    fn config_file(&self) -> String {
        self.sup.config().and_then(|c| c.files.iter().find(|f| f.extension().map(|e| e == "toml").unwrap_or(false)).map(|f| f.display().to_string())).unwrap_or_default()
    }

    #[zbus(property)]
    fn started_at(&self) -> u64 {
        self.sup.started_at()
    }

    #[zbus(property)]
    fn restarts(&self) -> u32 {
        self.sup.status().restarts
    }

    #[zbus(property)]
    fn last_exit(&self) -> String {
        self.sup.status().last_exit
    }

    #[zbus(property)]
    fn log_file(&self) -> String {
        self.sup.log_file().display().to_string()
    }

    #[zbus(property)]
    fn flags(&self) -> Vec<String> {
        let Some(c) = self.sup.config() else { return Vec::new() };
        let mut v = Vec::new();
        for (on, name) in [(c.flags.lock, "lock"), (c.flags.private, "private"), (c.fakeinit, "fakeinit"), (c.flags.nproc, "nproc"), (c.flags.sched, "sched")] {
            if on {
                v.push(name.to_string());
            }
        }
        v
    }
}
