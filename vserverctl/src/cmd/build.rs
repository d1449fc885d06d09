//! `vserverctl build NAME (--template DIR|TARBALL | --from-host | --debootstrap SUITE |
//! --unified TEMPLATE | --snapshot TEMPLATE)`: the paper's `vserver NAME build`. Root's own file
//! work on the host (no daemon needed); vserverd is asked to reload afterwards if it runs.
//! Also the other verbs that work on the vservers' files: `template`, `du`, `destroy`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use crate::build::ops::{self, Mode};
use crate::build::source::{GuestInit, Source};
use crate::build::Dirs;
use crate::cli::{Cli, Command};
use crate::error::{exit, CtlError};

/// One source of a root.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SourceArgs {
    /// A root tree (a directory) or a tar of one (.tar, .tar.gz; .tar.xz, .tar.zst, .tar.bz2 with
    /// the host's xz, zstd, bzip2).
    #[arg(long, value_name = "DIR|TARBALL")]
    pub template: Option<PathBuf>,
    /// A copy of the host's /bin /sbin /lib* /usr /etc /var (the paper's way): logs, spools and
    /// run state emptied, kernel modules left out, a dummy fstab.
    #[arg(long)]
    pub from_host: bool,
    /// Debian's debootstrap of SUITE (for example bookworm).
    #[arg(long, value_name = "SUITE")]
    pub debootstrap: Option<String>,
    /// The mirror debootstrap uses (default: debootstrap's own).
    #[arg(long, value_name = "URL", requires = "debootstrap")]
    pub mirror: Option<String>,
    /// debootstrap's variant (for example minbase).
    #[arg(long, value_name = "VARIANT", requires = "debootstrap")]
    pub variant: Option<String>,
    /// The init the debootstrapped root boots with (the vserver's own, `fakeinit`), or none
    /// (an rc script started by the vserver's reaper).
    #[arg(long, value_enum, value_name = "INIT", default_value_t, requires = "debootstrap")]
    pub init: GuestInit,
    /// More packages for debootstrap to install (comma-separated, or the option repeated).
    #[arg(long, value_name = "PACKAGES", value_delimiter = ',', requires = "debootstrap")]
    pub include: Vec<String>,
}

impl SourceArgs {
    fn count(&self) -> usize {
        self.template.is_some() as usize + self.from_host as usize + self.debootstrap.is_some() as usize
    }

    /// The source; `exclude` is what `--from-host` must never copy (the vservers' own trees).
    pub fn source(&self, dirs: &Dirs) -> Option<Source> {
        if let Some(t) = &self.template {
            return Some(Source::Template(std::path::absolute(t).unwrap_or_else(|_| t.clone())));
        }
        if self.from_host {
            let exclude = vec![dirs.root_base.clone(), dirs.template_dir(), dirs.config_dir.clone(), dirs.run_dir.clone()];
            return Some(Source::FromHost { exclude });
        }
        self.debootstrap.as_ref().map(|suite| Source::Debootstrap {
            suite: suite.clone(),
            mirror: self.mirror.clone(),
            variant: self.variant.clone(),
            init: self.init,
            include: self.include.clone(),
        })
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The new vserver.
    pub name: String,
    #[command(flatten)]
    pub source: SourceArgs,
    /// Make the root an overlay of TEMPLATE (shared, read-only) under the vserver's own files.
    #[arg(long, value_name = "TEMPLATE")]
    pub unified: Option<String>,
    /// Make the root a writable btrfs snapshot of TEMPLATE (a subvolume).
    #[arg(long, value_name = "TEMPLATE")]
    pub snapshot: Option<String>,
    #[command(flatten)]
    pub dirs: Dirs,
}

/// Runs the verbs that work on files (build, template, du, destroy); `None` for the others.
pub async fn run_local(cli: &Cli) -> Result<Option<u8>> {
    let code = match &cli.command {
        Command::Build(a) => run(cli, a).await?,
        Command::Template(a) => super::template::run(cli, a).await?,
        Command::Du(a) => super::du::run(cli, a)?,
        Command::Destroy(a) => super::destroy::run(cli, a).await?,
        _ => return Ok(None),
    };
    Ok(Some(code))
}

async fn run(cli: &Cli, a: &Args) -> Result<u8> {
    let dirs = a.dirs.clone().absolute();
    let n = a.source.count() + a.unified.is_some() as usize + a.snapshot.is_some() as usize;
    if n != 1 {
        return Err(CtlError::Usage(
            "build needs exactly one of --template, --from-host, --debootstrap, --unified, --snapshot".into(),
        )
        .into());
    }
    let mode = if let Some(t) = &a.unified {
        Mode::Unified(t.clone())
    } else if let Some(t) = &a.snapshot {
        Mode::Snapshot(t.clone())
    } else {
        Mode::Plain(a.source.source(&dirs).expect("one source"))
    };
    let dir = ops::build_vserver(&dirs, &a.name, &mode)?;
    println!("{}", dir.display());
    reload_daemon(cli).await;
    Ok(exit::OK)
}

/// Asks vserverd to re-read the configuration; nothing happens when it does not run.
pub async fn reload_daemon(cli: &Cli) {
    let reload = async {
        let conn = super::connect(cli.bus_address.as_deref()).await.ok()?;
        let m = vserver_api::proxy::ManagerProxy::new(&conn).await.ok()?;
        m.reload().await.ok()
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), reload).await;
}
