//! `vserverctl destroy NAME [--force]`: removes a vserver's root (for a unified one its own
//! directory, never its template) and its configuration (NAME.toml, NAME.toml.d/). Refused while
//! it runs; asks on a terminal unless --force. Deletion never follows a symlink.

use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::{bail, Result};
use vserver_api::proxy::{ManagerProxy, VServerProxy};
use vserver_api::{State, VServerError};

use crate::build::{ops, Dirs};
use crate::cli::Cli;
use crate::error::{exit, CtlError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vserver.
    pub name: String,
    /// Do not ask; with vserverd down, destroy when no monitor state exists for the vserver.
    #[arg(short, long)]
    pub force: bool,
    #[command(flatten)]
    pub dirs: Dirs,
}

/// The vserver's state as vserverd knows it: Ok(None) when it does not know it; Err when
/// vserverd cannot be asked.
async fn state(cli: &Cli, name: &str) -> Result<Option<String>, String> {
    let ask = async {
        let conn = super::connect(cli.bus_address.as_deref()).await.map_err(|e| e.to_string())?;
        let m = ManagerProxy::new(&conn).await.map_err(|e| e.to_string())?;
        match m.get_vserver(name).await {
            Ok(path) => {
                let p = VServerProxy::builder(&conn).path(path).build().await.map_err(|e| e.to_string())?;
                p.state().await.map(Some).map_err(|e| e.to_string())
            }
            Err(VServerError::NoSuchVServer(_)) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    };
    tokio::time::timeout(Duration::from_secs(10), ask).await.unwrap_or_else(|_| Err("no answer within 10 s".into()))
}

pub async fn run(cli: &Cli, a: &Args) -> Result<u8> {
    let dirs = a.dirs.clone().absolute();
    let located = ops::locate(&dirs, &a.name)?;
    ops::check_deletable(&dirs, &located.dir)?;
    // Held from the check to the deletion: vserverd takes the same lock to start it.
    let _lock = match vserver_config::run::try_lock_name(&dirs.run_dir, &a.name) {
        Ok(Some(lock)) => lock,
        Ok(None) => bail!("vserver {} is starting (vserverd holds its lock); stop it first", a.name),
        Err(e) => bail!("cannot take the lock {}: {e}", vserver_config::run::lock_path(&dirs.run_dir, &a.name).display()),
    };
    match state(cli, &a.name).await {
        Ok(Some(s)) if !matches!(State::parse(&s), Some(State::Stopped) | Some(State::Failed)) => {
            bail!("vserver {} is {s}; stop it first", a.name)
        }
        Ok(_) => {}
        Err(why) => {
            let state_file = vserver_config::run::state_path(&dirs.run_dir, &a.name);
            if !a.force {
                bail!("cannot ask vserverd whether {} runs ({why}); --force destroys it when no monitor state exists for it", a.name);
            }
            if state_file.exists() {
                bail!("vserverd is not reachable and {} exists: {} may be running", state_file.display(), a.name);
            }
        }
    }
    if !a.force {
        if !crate::term::is_tty(0) {
            return Err(CtlError::Usage(format!("destroy {}: not on a terminal; use --force to destroy without asking", a.name)).into());
        }
        eprint!(
            "Destroy vserver {}: delete {}{} and its configuration? [y/N] ",
            a.name,
            located.dir.display(),
            located.template.as_deref().map(|t| format!(" (template {t} is kept)")).unwrap_or_default()
        );
        std::io::stderr().flush().ok();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        if !matches!(line.trim(), "y" | "Y" | "yes" | "YES") {
            eprintln!("vserverctl: not destroyed");
            return Ok(exit::FAILURE);
        }
    }
    ops::destroy_files(&dirs, &a.name, &located)?;
    eprintln!("vserverctl: vserver {} destroyed ({} removed)", a.name, located.dir.display());
    super::build::reload_daemon(cli).await;
    Ok(exit::OK)
}
