//! `org.vserverd.VServer1.Manager` at `/org/vserverd/VServer1`.

use std::sync::Arc;

use vserver_api::{vserver_path, BootReport, VProcess, VServerError, VServerStats, VServerSummary};
use zbus::message::Header;
use zbus::object_server::SignalEmitter;
use zbus::wire::OwnedObjectPath;
use zbus::{interface, Connection};

use crate::daemon::auth::{authorize, Action};
use crate::daemon::state::Daemon;

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
            .map(|s| VServerSummary {
                name: s.name.clone(),
                state: s.status().state.as_str().to_string(),
                context: s.context(),
                leader: s.leader(),
                addresses: s.addresses(),
                started_at: s.started_at(),
                path: path(&s.name),
            })
            .collect()
    }

    #[zbus(name = "GetVServer")]
    fn get_vserver(&self, name: &str) -> Result<OwnedObjectPath, VServerError> {
        self.daemon.get(name).map(|s| path(&s.name))
    }

    #[zbus(name = "StartVServer")]
    async fn start_vserver(&self, name: &str, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<(), VServerError> {
        authorize(conn, &hdr, Action::Manage).await?;
        self.daemon.get(name)?.start().await
    }

    #[zbus(name = "StopVServer")]
    async fn stop_vserver(&self, name: &str, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<(), VServerError> {
        authorize(conn, &hdr, Action::Manage).await?;
        self.daemon.get(name)?.stop().await
    }

    #[zbus(name = "RestartVServer")]
    async fn restart_vserver(&self, name: &str, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<(), VServerError> {
        authorize(conn, &hdr, Action::Manage).await?;
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
        authorize(conn, &hdr, Action::Manage).await?;
        self.daemon.get(name)?.kill(whom, signal)
    }

    #[zbus(name = "Reload")]
    async fn reload(&self, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<Vec<String>, VServerError> {
        authorize(conn, &hdr, Action::Manage).await?;
        Ok(super::objects::reload(&self.daemon).await)
    }

    #[zbus(name = "CheckConfig")]
    fn check_config(&self, name: &str) -> (bool, Vec<String>) {
        let paths = &self.daemon.paths;
        let mut r = if name.is_empty() {
            vserver_config::load_dir(&paths.config_dir, &paths.load_options())
        } else {
            vserver_config::load_one(&paths.config_dir, name, &paths.load_options())
        };
        vserver_config::limits_checks(&mut r);
        (!r.has_errors(), r.diagnostics.iter().map(|d| d.to_string()).collect())
    }

    #[zbus(name = "SetOnboot")]
    async fn set_onboot(&self, name: &str, onboot: bool, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<(), VServerError> {
        authorize(conn, &hdr, Action::Manage).await?;
        self.daemon.get(name)?;
        let file = self.daemon.paths.config_dir.join(format!("{name}.toml"));
        let changed = tokio::task::spawn_blocking({
            let file = file.clone();
            move || vserver_config::edit::set_onboot(&file, onboot)
        })
        .await
        .map_err(|e| VServerError::Failed(e.to_string()))?
        .map_err(|e| VServerError::Failed(e.to_string()))?;
        if changed {
            super::objects::reload(&self.daemon).await;
        }
        // What the vserver now has: a drop-in may say otherwise, or the file may be invalid.
        let taken = self.daemon.get(name)?.config().map(|c| c.onboot);
        if taken != Some(onboot) {
            return Err(VServerError::Failed(format!(
                "{} says onboot = {onboot} now, but {name} {}",
                file.display(),
                match taken {
                    Some(v) => format!("keeps onboot = {v}: a file of {name}.toml.d sets it, or the files are invalid (vserverctl check {name})"),
                    None => format!("has no valid configuration (vserverctl check {name})"),
                }
            )));
        }
        Ok(())
    }

    #[zbus(name = "StartOnboot")]
    async fn start_onboot(&self, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<Vec<BootReport>, VServerError> {
        authorize(conn, &hdr, Action::Manage).await?;
        Ok(self.daemon.start_onboot().await)
    }

    #[zbus(name = "StopAll")]
    async fn stop_all(&self, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<Vec<BootReport>, VServerError> {
        authorize(conn, &hdr, Action::Manage).await?;
        Ok(self.daemon.stop_all().await)
    }

    // `vserverctl enter` / `exec`: runs `command` (empty: `user`'s login shell) inside running
    // vserver `name` as `user` (empty: root), on a pty of the vserver's own devpts of `rows` ×
    // `columns` with `tty`, else on pipes; `term` is its TERM. Returns the caller's ends of the
    // command's stdin, stdout and stderr (with a tty, the pty master each time) and a status
    // pipe that gives one line, `exit N` or `signal N`, when the command ends.
    #[zbus(name = "EnterVServer")]
    #[allow(clippy::too_many_arguments)]
    async fn enter_vserver(
        &self,
        name: &str,
        user: &str,
        command: Vec<String>,
        tty: bool,
        term: &str,
        rows: u16,
        columns: u16,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(zbus::wire::OwnedFd, zbus::wire::OwnedFd, zbus::wire::OwnedFd, zbus::wire::OwnedFd), VServerError> {
        let caller = authorize(conn, &hdr, Action::Enter).await?;
        let sup = self.daemon.get(name)?;
        let req = crate::daemon::enter::Request {
            user: user.to_string(),
            argv: command,
            tty,
            term: term.to_string(),
            size: vserver_engine::enter::WinSize { rows, cols: columns },
        };
        let e = crate::daemon::enter::enter(&self.daemon.paths, &sup, req, caller.pid).await?;
        Ok((e.input.into(), e.output.into(), e.error.into(), e.status.into()))
    }

    // `vserverctl console`: a connection to the console of vserver `name`'s pid 1 (its
    // monitor fans it out to every viewer): read what pid 1 writes, write what it should read.
    #[zbus(name = "OpenConsole")]
    async fn open_console(&self, name: &str, #[zbus(connection)] conn: &Connection, #[zbus(header)] hdr: Header<'_>) -> Result<zbus::wire::OwnedFd, VServerError> {
        authorize(conn, &hdr, Action::Console).await?;
        let sup = self.daemon.get(name)?;
        crate::daemon::console::connect(&self.daemon.paths, &sup).map(Into::into)
    }

    #[zbus(name = "ListStats")]
    fn list_stats(&self) -> Vec<VServerStats> {
        let now = vserver_config::run::now_us();
        self.daemon.all().into_iter().filter_map(|s| Some(crate::daemon::processes::stats(&s, &s.status().run?, now))).collect()
    }

    #[zbus(name = "ListProcesses")]
    fn list_processes(&self, name: &str) -> Result<Vec<VProcess>, VServerError> {
        if !name.is_empty() {
            self.daemon.get(name)?;
        }
        let only = (!name.is_empty()).then_some(name);
        Ok(crate::daemon::processes::processes(only)
            .into_iter()
            .map(|p| VProcess { vserver: p.vserver, pid: p.pid, vpid: p.vpid, ppid: p.ppid, command: p.command })
            .collect())
    }

    #[zbus(name = "KillProcess")]
    async fn kill_process(
        &self,
        name: &str,
        pid: u32,
        inner: bool,
        signal: i32,
        #[zbus(connection)] conn: &Connection,
        #[zbus(header)] hdr: Header<'_>,
    ) -> Result<(), VServerError> {
        authorize(conn, &hdr, Action::Manage).await?;
        let signal = super::args::signal(signal)?;
        super::args::pid(pid)?;
        self.daemon.get(name)?;
        let host_pid = crate::daemon::processes::resolve_pid(name, pid, inner).ok_or_else(|| {
            VServerError::invalid_args(format!("{name} has no process {pid} ({} pid)", if inner { "vserver" } else { "host" }))
        })?;
        if unsafe { libc::kill(host_pid as i32, signal) } != 0 {
            return Err(VServerError::failed(format!("kill {host_pid}: {}", std::io::Error::last_os_error())));
        }
        Ok(())
    }

    #[zbus(signal, name = "VServerNew")]
    pub async fn vserver_new(emitter: &SignalEmitter<'_>, name: &str, path: OwnedObjectPath) -> zbus::Result<()>;

    #[zbus(signal, name = "VServerRemoved")]
    pub async fn vserver_removed(emitter: &SignalEmitter<'_>, name: &str, path: OwnedObjectPath) -> zbus::Result<()>;
}
