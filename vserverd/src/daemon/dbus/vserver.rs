//! `org.vserverd.VServer1.VServer`: one object per vserver.

use std::collections::HashMap;
use std::sync::Arc;

use vserver_api::VServerError;
use zbus::message::Header;
use zbus::{interface, Connection, Variant};

use crate::daemon::auth::{authorize, Action};
use crate::daemon::supervisor::Supervisor;

pub struct VServerIface {
    sup: Arc<Supervisor>,
}

impl VServerIface {
    pub fn new(sup: Arc<Supervisor>) -> VServerIface {
        VServerIface { sup }
    }

    /// The values of the properties that can change (`Name` and `LogFile` cannot), read at once.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            state: self.state(),
            leader: self.leader(),
            context: self.context(),
            started_at: self.started_at(),
            restarts: self.restarts(),
            last_exit: self.last_exit(),
            addresses: self.addresses(),
            onboot: self.onboot(),
            root_directory: self.root_directory(),
            config_file: self.config_file(),
            flags: self.flags(),
            user_ids: self.user_ids(),
        }
    }
}

/// What PropertiesChanged reports: one signal per change of status, carrying every property
/// whose value differs from the last one sent (a consistent set, and no signal for a value
/// that stayed the same).
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    state: String,
    leader: u32,
    context: u32,
    started_at: u64,
    restarts: u32,
    last_exit: String,
    addresses: Vec<String>,
    onboot: bool,
    root_directory: String,
    config_file: String,
    flags: Vec<String>,
    user_ids: String,
}

impl Snapshot {
    /// The properties of `self` that differ from `before`, by their D-Bus names.
    pub fn changed_since(&self, before: &Snapshot) -> HashMap<&'static str, Variant<'_>> {
        let mut out = HashMap::new();
        macro_rules! diff {
            ($($field:ident => $name:literal),* $(,)?) => {
                $(if self.$field != before.$field {
                    out.insert($name, Variant::from(&self.$field));
                })*
            };
        }
        diff!(
            state => "State", leader => "Leader", context => "Context", started_at => "StartedAt",
            restarts => "Restarts", last_exit => "LastExit", addresses => "Addresses", onboot => "Onboot",
            root_directory => "RootDirectory", config_file => "ConfigFile", flags => "Flags", user_ids => "UserIds",
        );
        out
    }
}

#[interface(name = "org.vserverd.VServer1.VServer")]
impl VServerIface {
    async fn start(&self, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<(), VServerError> {
        authorize(conn, &hdr, Action::Manage).await?;
        self.sup.start().await
    }

    async fn stop(&self, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<(), VServerError> {
        authorize(conn, &hdr, Action::Manage).await?;
        self.sup.stop().await
    }

    async fn restart(&self, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<(), VServerError> {
        authorize(conn, &hdr, Action::Manage).await?;
        self.sup.restart().await
    }

    async fn kill(
        &self,
        whom: &str,
        signal: i32,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), VServerError> {
        authorize(conn, &hdr, Action::Manage).await?;
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
        self.sup.config().map(|c| config_file_of(&c.name, &c.files)).unwrap_or_default()
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

    /// The host ids of a running vserver's user namespace ("uids A-B, gids C-D"); "" when root
    /// inside is the host's, or it does not run.
    #[zbus(property)]
    fn user_ids(&self) -> String {
        self.sup.user_ids()
    }

    #[zbus(property)]
    fn flags(&self) -> Vec<String> {
        let Some(c) = self.sup.config() else { return Vec::new() };
        let mut v = Vec::new();
        let f = &c.flags;
        for (on, name) in
            [(f.lock, "lock"), (f.private, "private"), (c.fakeinit, "fakeinit"), (f.nproc, "nproc"), (f.sched, "sched"), (f.nest, "nest")]
        {
            if on {
                v.push(name.to_string());
            }
        }
        v
    }
}

/// NAME.toml among the files a configuration was merged from (defaults.toml comes first, then
/// NAME.toml, then its drop-ins).
fn config_file_of(name: &str, files: &[std::path::PathBuf]) -> String {
    let own = format!("{name}.toml");
    files.iter().find(|f| f.file_name().is_some_and(|n| *n == *own)).map(|f| f.display().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::{config_file_of, Snapshot};

    fn stopped() -> Snapshot {
        Snapshot {
            state: "stopped".into(),
            leader: 0,
            context: 405,
            started_at: 0,
            restarts: 0,
            last_exit: String::new(),
            addresses: vec!["192.0.2.10/24".into()],
            onboot: true,
            root_directory: "/var/lib/vservers/web1".into(),
            config_file: "/etc/vservers/web1.toml".into(),
            flags: vec!["lock".into()],
            user_ids: String::new(),
        }
    }

    #[test]
    fn the_config_file_is_name_toml_not_the_defaults() {
        let files: Vec<std::path::PathBuf> =
            ["/etc/vservers/defaults.toml", "/etc/vservers/web1.toml", "/etc/vservers/web1.d/10-net.toml"].iter().map(Into::into).collect();
        assert_eq!(config_file_of("web1", &files), "/etc/vservers/web1.toml");
        assert_eq!(config_file_of("web1", &files[1..]), "/etc/vservers/web1.toml");
        assert_eq!(config_file_of("web2", &files), "", "another vserver's file is not ours");
    }

    #[test]
    fn only_the_properties_that_changed_are_reported_together() {
        let before = stopped();
        assert!(before.changed_since(&before).is_empty(), "nothing changed, nothing to send");
        let running = Snapshot { state: "running".into(), leader: 4242, started_at: 1_700_000_000, ..stopped() };
        let changed = running.changed_since(&before);
        let mut names: Vec<&str> = changed.keys().copied().collect();
        names.sort();
        assert_eq!(names, ["Leader", "StartedAt", "State"]);
        assert_eq!(u32::try_from(changed["Leader"].try_clone().unwrap()).unwrap(), 4242);
        let renamed = Snapshot { flags: vec![], ..stopped() };
        assert_eq!(renamed.changed_since(&before).keys().copied().collect::<Vec<_>>(), ["Flags"]);
    }
}
