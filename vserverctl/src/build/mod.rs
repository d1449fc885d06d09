//! Building vservers and templates on the host's files (the paper's `vserver NAME build`,
//! `vunify`, `vdu`), with no daemon needed: like `lxc-create`, this is root's own file work,
//! shown on root's terminal. The daemon is only asked to `Reload` afterwards (if it runs).
//!
//! - [`source`]: where a root comes from (a tree, a tarball, the host, debootstrap);
//! - [`copy`]: a tree copy keeping modes, owners, times, symlinks and hard links;
//! - [`archive`]: tarball extraction that never writes outside the target;
//! - [`remove`]: deletion relative to directory descriptors, never following a symlink;
//! - [`du`]: the disk space a tree really uses;
//! - [`config`]: the commented NAME.toml a build writes.
//!
//! Every build goes to a temporary directory beside its target and is renamed into place at
//! the end; on any error (or SIGINT/SIGTERM) what was made is removed.

pub mod archive;
pub mod config;
pub mod copy;
pub mod ops;
pub mod du;
pub mod guest;
pub mod remove;
pub mod source;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{bail, Context as _, Result};

/// Where things are (every one overridable for tests).
#[derive(Debug, Clone, clap::Args)]
pub struct Dirs {
    /// Where NAME.toml files live.
    #[arg(long, value_name = "DIR", default_value = vserver_config::DEFAULT_CONFIG_DIR, help_heading = "Directories")]
    pub config_dir: PathBuf,
    /// Where roots live (NAME appended); kept at mode 0700, the paper's chroot barrier.
    #[arg(long, value_name = "DIR", default_value = vserver_config::DEFAULT_ROOT_BASE, help_heading = "Directories")]
    pub root_base: PathBuf,
    /// Where templates live (default: ROOT_BASE/.templates).
    #[arg(long, value_name = "DIR", help_heading = "Directories")]
    pub template_dir: Option<PathBuf>,
    /// vserverd's runtime state (a vserver with state there may be running).
    #[arg(long, value_name = "DIR", default_value = vserver_engine::registry::DEFAULT_RUN_DIR, help_heading = "Directories")]
    pub run_dir: PathBuf,
}

impl Dirs {
    pub fn absolute(mut self) -> Dirs {
        let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        self.config_dir = abs(&self.config_dir);
        self.root_base = abs(&self.root_base);
        self.template_dir = self.template_dir.as_deref().map(abs);
        self.run_dir = abs(&self.run_dir);
        self
    }

    pub fn template_dir(&self) -> PathBuf {
        self.template_dir.clone().unwrap_or_else(|| vserver_config::default_template_dir(&self.root_base))
    }

    pub fn template(&self, name: &str) -> PathBuf {
        self.template_dir().join(name)
    }

    pub fn load_options(&self) -> vserver_config::LoadOptions {
        vserver_config::LoadOptions {
            root_base: self.root_base.clone(),
            template_dir: Some(self.template_dir()),
            host_checks: false,
        }
    }

    pub fn config_file(&self, name: &str) -> PathBuf {
        self.config_dir.join(format!("{name}.toml"))
    }
}

// --- interruption ------------------------------------------------------------------------

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// From now on SIGINT, SIGTERM and SIGHUP only set a flag that long steps check, so that a
/// build stopped by Ctrl-C still removes what it made.
pub fn catch_interrupts() {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        unsafe { libc::signal(sig, on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t) };
    }
}

pub fn check_interrupted() -> Result<()> {
    if INTERRUPTED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

// --- progress -----------------------------------------------------------------------------

/// A progress bar on a terminal, plain lines otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    what: String,
}

impl Progress {
    pub fn new(what: &str) -> Progress {
        let bar = crate::term::is_tty(2).then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template("{prefix} {spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b.set_prefix(what.to_string());
            b.enable_steady_tick(std::time::Duration::from_millis(200));
            b
        });
        Progress { bar, what: what.to_string() }
    }

    /// A new phase: a message line (plain) or the bar's message, and its length (0: unknown).
    pub fn phase(&self, msg: &str, len: u64) {
        match &self.bar {
            Some(b) => {
                b.set_length(len);
                b.set_position(0);
                b.set_message(msg.to_string());
            }
            None => eprintln!("vserverctl: {}: {msg}", self.what),
        }
    }

    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    pub fn set(&self, pos: u64) {
        if let Some(b) = &self.bar {
            b.set_position(pos);
        }
    }

    /// A line of a child's output (debootstrap): the bar's message, or printed as is.
    pub fn line(&self, line: &str) {
        match &self.bar {
            Some(b) => b.set_message(line.to_string()),
            None => eprintln!("{line}"),
        }
    }

    pub fn done(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        eprintln!("vserverctl: {}: {msg}", self.what);
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

// --- names and guards ----------------------------------------------------------------------

/// A vserver or template name: the config's rules (it becomes a file and a directory name).
pub fn check_name(name: &str) -> Result<()> {
    vserver_config::values::check_name(name).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Removes a path it guards when dropped, unless [`Cleanup::keep`] was called.
pub struct Cleanup {
    paths: Vec<PathBuf>,
}

impl Cleanup {
    pub fn new() -> Cleanup {
        Cleanup { paths: Vec::new() }
    }

    pub fn add(&mut self, p: &Path) {
        self.paths.push(p.to_path_buf());
    }

    /// Stops guarding `p` (it is in place now).
    pub fn forget(&mut self, p: &Path) {
        self.paths.retain(|q| q != p);
    }

    pub fn keep(mut self) {
        self.paths.clear();
    }
}

impl Default for Cleanup {
    fn default() -> Self {
        Cleanup::new()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for p in self.paths.iter().rev() {
            if let Err(e) = remove::remove_path(p) {
                eprintln!("vserverctl: cleaning up {}: {e:#}", p.display());
            }
        }
    }
}

/// Makes `dir` (and its parents) exist with mode `mode`: the root base and the templates
/// directory are 0700, the paper's chroot barrier (nobody but root may walk into a root from
/// the host, where setuid binaries of the vservers would otherwise be within reach).
pub fn barrier_dir(dir: &Path, mode: u32) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let md = std::fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if !md.is_dir() {
        bail!("{} is not a directory", dir.display());
    }
    if md.mode() & 0o7777 != mode {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting mode {mode:o} on {}", dir.display()))?;
    }
    Ok(())
}

/// A fresh temporary directory beside `target` (`.NAME.build-PID`), empty, made with `mode`.
/// On btrfs with `subvolume`, a subvolume (a vserver root can carry a disk quota, a template
/// can be snapshotted).
pub fn temp_beside(target: &Path, mode: u32, subvolume: bool) -> Result<PathBuf> {
    let parent = target.parent().context("a target has a parent")?;
    let name = target.file_name().context("a target has a name")?.to_string_lossy();
    let tmp = parent.join(format!(".{name}.build-{}", std::process::id()));
    if std::fs::symlink_metadata(&tmp).is_ok() {
        remove::remove_path(&tmp)?;
    }
    if subvolume && source::is_btrfs(parent) {
        source::run_quiet("btrfs", &["subvolume".as_ref(), "create".as_ref(), tmp.as_os_str()])?;
    } else {
        std::fs::create_dir(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    }
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
    Ok(tmp)
}

/// Whether anything (even a dangling symlink) is at `p`.
pub fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}
