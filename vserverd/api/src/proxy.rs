//! Client proxies for both interfaces (used by `vserverctl` and the tests).

use zbus::proxy;
use zbus::wire::OwnedObjectPath;

use crate::error::VServerError;
use crate::types::{BootReport, VProcess, VServerStats, VServerSummary};

#[proxy(
    interface = "org.vserverd.VServer1.Manager",
    default_service = "org.vserverd.VServer1",
    default_path = "/org/vserverd/VServer1"
)]
pub trait Manager {
    /// Every configured vserver, running or not.
    #[zbus(name = "ListVServers")]
    fn list_vservers(&self) -> Result<Vec<VServerSummary>, VServerError>;
    /// The object path of vserver `name`.
    #[zbus(name = "GetVServer")]
    fn get_vserver(&self, name: &str) -> Result<OwnedObjectPath, VServerError>;
    #[zbus(name = "StartVServer")]
    fn start_vserver(&self, name: &str) -> Result<(), VServerError>;
    #[zbus(name = "StopVServer")]
    fn stop_vserver(&self, name: &str) -> Result<(), VServerError>;
    #[zbus(name = "RestartVServer")]
    fn restart_vserver(&self, name: &str) -> Result<(), VServerError>;
    /// Sends `signal` to the vserver's pid 1 (`whom = "leader"`) or to every process (`"all"`).
    #[zbus(name = "KillVServer")]
    fn kill_vserver(&self, name: &str, whom: &str, signal: i32) -> Result<(), VServerError>;
    /// Re-reads the configuration; returns its diagnostics, one per line (empty when clean).
    #[zbus(name = "Reload")]
    fn reload(&self) -> Result<Vec<String>, VServerError>;
    /// Checks the configuration on disk (all vservers when `name` is empty) without applying it:
    /// (valid, diagnostics).
    #[zbus(name = "CheckConfig")]
    fn check_config(&self, name: &str) -> Result<(bool, Vec<String>), VServerError>;
    /// Sets `onboot` in vserver `name`'s own file (`NAME.toml`: its comments and other keys
    /// kept) and reloads the configuration (`vserverctl enable`/`disable`). `Failed` when a
    /// drop-in (`NAME.toml.d/`) or the file's state keeps the vserver from taking the value.
    #[zbus(name = "SetOnboot")]
    fn set_onboot(&self, name: &str, onboot: bool) -> Result<(), VServerError>;
    #[zbus(name = "StartOnboot")]
    fn start_onboot(&self) -> Result<Vec<BootReport>, VServerError>;
    #[zbus(name = "StopAll")]
    fn stop_all(&self) -> Result<Vec<BootReport>, VServerError>;
    /// Runs `command` (empty: `user`'s login shell) inside running vserver `name` as `user`
    /// (empty: root): on a pty of the vserver's devpts (`tty`, `rows` × `columns`, TERM `term`)
    /// or on pipes. Returns (stdin, stdout, stderr, status): with a tty the first three are the
    /// pty master; the status pipe gives `exit N` or `signal N` when the command ends.
    /// `org.vserverd.VServer1.Refused` for a private vserver.
    #[zbus(name = "EnterVServer")]
    #[allow(clippy::too_many_arguments)]
    fn enter_vserver(
        &self,
        name: &str,
        user: &str,
        command: &[&str],
        tty: bool,
        term: &str,
        rows: u16,
        columns: u16,
    ) -> Result<(zbus::wire::OwnedFd, zbus::wire::OwnedFd, zbus::wire::OwnedFd, zbus::wire::OwnedFd), VServerError>;
    /// A connection to the console of vserver `name`'s pid 1: what it writes comes out, what is
    /// written goes to its terminal. Several viewers may be attached at once.
    #[zbus(name = "OpenConsole")]
    fn open_console(&self, name: &str) -> Result<zbus::wire::OwnedFd, VServerError>;

    /// The paper's vserver-stat: one row per running vserver.
    #[zbus(name = "ListStats")]
    fn list_stats(&self) -> Result<Vec<VServerStats>, VServerError>;
    /// The paper's vps: every process on the host with its vserver ("" = all, else one vserver).
    #[zbus(name = "ListProcesses")]
    fn list_processes(&self, name: &str) -> Result<Vec<VProcess>, VServerError>;
    /// The paper's vkill: `signal` to one process of vserver `name`, `pid` as the vserver sees
    /// it (`inner`) or as the host does.
    #[zbus(name = "KillProcess")]
    fn kill_process(&self, name: &str, pid: u32, inner: bool, signal: i32) -> Result<(), VServerError>;

    #[zbus(signal, name = "VServerNew")]
    fn vserver_new(&self, name: &str, path: OwnedObjectPath) -> zbus::Result<()>;
    #[zbus(signal, name = "VServerRemoved")]
    fn vserver_removed(&self, name: &str, path: OwnedObjectPath) -> zbus::Result<()>;
}

#[proxy(interface = "org.vserverd.VServer1.VServer", default_service = "org.vserverd.VServer1")]
pub trait VServer {
    #[zbus(property, name = "Name")]
    fn name(&self) -> zbus::Result<String>;
    #[zbus(property, name = "State")]
    fn state(&self) -> zbus::Result<String>;
    #[zbus(property, name = "Context")]
    fn context(&self) -> zbus::Result<u32>;
    #[zbus(property, name = "Leader")]
    fn leader(&self) -> zbus::Result<u32>;
    #[zbus(property, name = "Addresses")]
    fn addresses(&self) -> zbus::Result<Vec<String>>;
    #[zbus(property, name = "Onboot")]
    fn onboot(&self) -> zbus::Result<bool>;
    #[zbus(property, name = "RootDirectory")]
    fn root_directory(&self) -> zbus::Result<String>;
    #[zbus(property, name = "ConfigFile")]
    fn config_file(&self) -> zbus::Result<String>;
    #[zbus(property, name = "StartedAt")]
    fn started_at(&self) -> zbus::Result<u64>;
    #[zbus(property, name = "Restarts")]
    fn restarts(&self) -> zbus::Result<u32>;
    /// How the last run ended: "" while running or never run, else e.g. "exited 0", "killed by SIGHUP".
    #[zbus(property, name = "LastExit")]
    fn last_exit(&self) -> zbus::Result<String>;
    #[zbus(property, name = "LogFile")]
    fn log_file(&self) -> zbus::Result<String>;
    #[zbus(property, name = "Flags")]
    fn flags(&self) -> zbus::Result<Vec<String>>;
    /// The host ids of a running vserver's user namespace ("uids A-B, gids C-D"); "" when root
    /// inside is the host's, or it does not run.
    #[zbus(property, name = "UserIds")]
    fn user_ids(&self) -> zbus::Result<String>;

    #[zbus(name = "Start")]
    fn start(&self) -> Result<(), VServerError>;
    #[zbus(name = "Stop")]
    fn stop(&self) -> Result<(), VServerError>;
    #[zbus(name = "Restart")]
    fn restart(&self) -> Result<(), VServerError>;
    #[zbus(name = "Kill")]
    fn kill(&self, whom: &str, signal: i32) -> Result<(), VServerError>;
}
