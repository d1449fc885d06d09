//! The operations behind `build`, `template create|remove|list`, `du` and `destroy`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use super::source::{finish_root, is_btrfs, run_quiet, GuestInit, Source};
use vserver_config::initkind::InitKind;
use super::{barrier_dir, check_name, exists, remove, temp_beside, Cleanup, Dirs, Progress};

/// How a vserver's root is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// A root of its own, filled from a source.
    Plain(Source),
    /// An overlay of a template (unification).
    Unified(String),
    /// A writable btrfs snapshot of a template subvolume.
    Snapshot(String),
}

impl Mode {
    fn describe(&self) -> String {
        match self {
            Mode::Plain(s) => s.describe(),
            Mode::Unified(t) => format!("--unified {t}"),
            Mode::Snapshot(t) => format!("--snapshot {t}"),
        }
    }

    /// True when the root at `root` (for a unified vserver: its template) boots with an init of
    /// its own (`fakeinit`): systemd or sysvinit at `/sbin/init`. A debootstrap without one and a
    /// copy of the host (the paper's way, whose init would start the host's services again) use
    /// the plain start instead.
    fn own_init(&self, root: &Path) -> bool {
        match self {
            Mode::Plain(Source::FromHost { .. }) | Mode::Plain(Source::Debootstrap { init: GuestInit::None, .. }) => false,
            _ => {
                let cwd = unsafe { std::os::fd::BorrowedFd::borrow_raw(libc::AT_FDCWD) };
                vserver_engine::sys::openat2(cwd, &root.display().to_string(), libc::O_PATH | libc::O_DIRECTORY, 0, 0)
                    .ok()
                    .and_then(|fd| vserver_config::initkind::kind_in(std::os::fd::AsFd::as_fd(&fd), "/sbin/init"))
                    .is_some_and(|k| matches!(k, InitKind::Systemd | InitKind::SysV))
            }
        }
    }
}

fn is_subvolume(p: &Path) -> bool {
    is_btrfs(p) && fs::symlink_metadata(p).map(|m| m.is_dir() && m.ino() == 256).unwrap_or(false)
}

/// A template directory that exists (not through a symlink).
fn existing_template(dirs: &Dirs, t: &str) -> Result<PathBuf> {
    check_name(t)?;
    let p = dirs.template(t);
    match fs::symlink_metadata(&p) {
        Ok(m) if m.is_dir() => Ok(p),
        Ok(_) => bail!("template {t}: {} is not a directory", p.display()),
        Err(_) => bail!("no such template: {t} (no {}; see `vserverctl template list`)", p.display()),
    }
}

fn make_dir(p: &Path, mode: u32) -> Result<()> {
    fs::create_dir(p).with_context(|| format!("creating {}", p.display()))?;
    fs::set_permissions(p, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// `vserverctl build NAME ...`: the root, then NAME.toml; nothing is left on any failure.
/// Returns the vserver's directory.
pub fn build_vserver(dirs: &Dirs, name: &str, mode: &Mode) -> Result<PathBuf> {
    check_name(name)?;
    let cfg = dirs.config_file(name);
    if exists(&cfg) {
        bail!("vserver {name} exists already ({})", cfg.display());
    }
    let dir = dirs.root_base.join(name);
    if exists(&dir) {
        bail!("vserver {name}: {} exists already", dir.display());
    }
    let template = match mode {
        Mode::Unified(t) | Mode::Snapshot(t) => Some(existing_template(dirs, t)?),
        Mode::Plain(_) => None,
    };
    barrier_dir(&dirs.root_base, 0o700)?;
    fs::create_dir_all(&dirs.config_dir).with_context(|| format!("creating {}", dirs.config_dir.display()))?;
    super::catch_interrupts();
    let progress = Progress::new(&format!("build {name}"));
    let mut cleanup = Cleanup::new();
    let tmp;
    match mode {
        Mode::Plain(src) => {
            tmp = temp_beside(&dir, 0o755, true)?;
            cleanup.add(&tmp);
            src.fill(&tmp, &progress)?;
            finish_root(&tmp)?;
            super::guest::prepare(&tmp, &super::config::host_name(name).0)?;
        }
        Mode::Unified(_) => {
            // D/root: the mount point; D/upper: the vserver's own files; D/work: overlayfs's.
            tmp = temp_beside(&dir, 0o700, false)?;
            cleanup.add(&tmp);
            make_dir(&tmp.join("root"), 0o755)?;
            make_dir(&tmp.join("upper"), 0o755)?;
            make_dir(&tmp.join("work"), 0o700)?;
            // Its own name and machine id, in its own layer over the shared template's.
            let lower = template.as_deref().expect("checked above");
            make_dir(&tmp.join("upper/etc"), 0o755)?;
            if fs::symlink_metadata(lower.join("etc/machine-id")).is_ok_and(|m| m.is_file()) {
                fs::write(tmp.join("upper/etc/machine-id"), "")?;
            }
            super::guest::prepare(&tmp.join("upper"), &super::config::host_name(name).0)?;
        }
        Mode::Snapshot(t) => {
            let lower = template.as_deref().expect("checked above");
            if !is_btrfs(&dirs.root_base) || !is_subvolume(lower) {
                bail!("--snapshot {t}: the root base and the template must be on btrfs, the template a subvolume");
            }
            tmp = dirs.root_base.join(format!(".{name}.build-{}", std::process::id()));
            progress.phase(&format!("snapshot of template {t}"), 0);
            run_quiet("btrfs", &["subvolume".as_ref(), "snapshot".as_ref(), lower.as_os_str(), tmp.as_os_str()])?;
            cleanup.add(&tmp);
            super::guest::prepare(&tmp, &super::config::host_name(name).0)?;
        }
    }
    super::check_interrupted()?;
    fs::rename(&tmp, &dir).with_context(|| format!("renaming {} to {}", tmp.display(), dir.display()))?;
    cleanup.forget(&tmp);
    cleanup.add(&dir);

    let unified = match mode {
        Mode::Unified(t) => Some(t.as_str()),
        _ => None,
    };
    let own_init = mode.own_init(template.as_deref().filter(|_| unified.is_some()).unwrap_or(&dir));
    let text = super::config::text(name, &mode.describe(), unified, &dir, own_init);
    write_new(&cfg, &text, &mut cleanup)?;
    // The file must be valid for the daemon: checked with its own parser.
    let r = vserver_config::load_one(&dirs.config_dir, name, &dirs.load_options());
    if !r.vservers.contains_key(name) {
        let diags: Vec<String> = r.errors().map(|d| d.to_string()).collect();
        bail!("the new configuration is not valid:\n{}", diags.join("\n"));
    }
    super::check_interrupted()?;
    cleanup.keep();
    progress.done(&format!("vserver {name} built in {}", dir.display()));
    Ok(dir)
}

/// Writes a new file (never over an existing one) atomically: a temporary beside it, renamed.
fn write_new(path: &Path, text: &str, cleanup: &mut Cleanup) -> Result<()> {
    let tmp = path.with_extension(format!("toml.tmp-{}", std::process::id()));
    cleanup.add(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    if exists(path) {
        bail!("{} appeared meanwhile", path.display());
    }
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    cleanup.forget(&tmp);
    cleanup.add(path);
    Ok(())
}

/// `vserverctl template create NAME SOURCE`: a template from any build source (a btrfs
/// subvolume where the templates directory is on btrfs, so that `--snapshot` can use it).
pub fn create_template(dirs: &Dirs, name: &str, src: &Source) -> Result<PathBuf> {
    check_name(name)?;
    let td = dirs.template_dir();
    if td.starts_with(&dirs.root_base) {
        barrier_dir(&dirs.root_base, 0o700)?;
    }
    barrier_dir(&td, 0o700)?;
    let target = td.join(name);
    if exists(&target) {
        bail!("template {name} exists already ({})", target.display());
    }
    super::catch_interrupts();
    let progress = Progress::new(&format!("template {name}"));
    let mut cleanup = Cleanup::new();
    let tmp = temp_beside(&target, 0o755, true)?;
    cleanup.add(&tmp);
    src.fill(&tmp, &progress)?;
    finish_root(&tmp)?;
    super::check_interrupted()?;
    fs::rename(&tmp, &target).with_context(|| format!("renaming {} to {}", tmp.display(), target.display()))?;
    cleanup.keep();
    progress.done(&format!("template {name} made in {}", target.display()));
    Ok(target)
}

/// `vserverctl template remove NAME`: refused while a configured vserver uses it.
pub fn remove_template(dirs: &Dirs, name: &str) -> Result<()> {
    let p = existing_template(dirs, name)?;
    let users = super::config::users_of(&dirs.config_dir, name);
    if !users.is_empty() {
        bail!("template {name} is in use by {}; destroy them first", users.join(", "));
    }
    remove::remove_path(&p)
}

/// One row of `template list`.
#[derive(Debug, serde::Serialize)]
pub struct TemplateInfo {
    pub name: String,
    pub path: PathBuf,
    pub used_by: Vec<String>,
    pub bytes: u64,
}

pub fn list_templates(dirs: &Dirs) -> Result<Vec<TemplateInfo>> {
    let td = dirs.template_dir();
    let mut out = Vec::new();
    let rd = match fs::read_dir(&td) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", td.display())),
    };
    for e in rd.flatten() {
        let Some(n) = e.file_name().to_str().map(str::to_string) else { continue };
        if n.starts_with('.') || !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let bytes = super::du::usage(&e.path()).map(|u| u.bytes).unwrap_or(0);
        out.push(TemplateInfo { used_by: super::config::users_of(&dirs.config_dir, &n), path: e.path(), name: n, bytes });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// Where a configured vserver's files are.
#[derive(Debug, Clone)]
pub struct Located {
    /// What `destroy` removes: the root, or for a unified vserver its directory (root/,
    /// upper/, work/).
    pub dir: PathBuf,
    pub root: PathBuf,
    /// The unified vserver's own files (its overlay's upper directory).
    pub upper: Option<PathBuf>,
    pub template: Option<String>,
    /// Its configuration file exists.
    pub configured: bool,
}

/// Finds vserver `name` through its configuration (the daemon's parser); a root left without a
/// configuration is found at ROOT_BASE/NAME.
pub fn locate(dirs: &Dirs, name: &str) -> Result<Located> {
    check_name(name)?;
    let r = vserver_config::load_one(&dirs.config_dir, name, &dirs.load_options());
    if let Some(c) = r.vservers.get(name) {
        let (dir, upper, template) = match &c.unified {
            Some(u) => (c.root.parent().context("a unified root has a parent")?.to_path_buf(), Some(u.upper.clone()), Some(u.template.clone())),
            None => (c.root.clone(), None, None),
        };
        return Ok(Located { dir, root: c.root.clone(), upper, template, configured: true });
    }
    if !exists(&dirs.config_file(name)) {
        let dir = dirs.root_base.join(name);
        if exists(&dir) {
            return Ok(Located { root: dir.clone(), dir, upper: None, template: None, configured: false });
        }
        bail!("no such vserver: {name}");
    }
    let diags: Vec<String> = r.errors().map(|d| d.to_string()).collect();
    bail!("vserver {name}: its configuration is invalid; fix it first:\n{}", diags.join("\n"))
}

/// Refuses to delete what is not a vserver's own directory: `/`, the base directories or an
/// ancestor of one, anything in the templates directory.
pub fn check_deletable(dirs: &Dirs, dir: &Path) -> Result<()> {
    let td = dirs.template_dir();
    let normal = dir.components().filter(|c| matches!(c, std::path::Component::Normal(_))).count();
    if !dir.is_absolute() || normal < 2 {
        bail!("refusing to delete {}", dir.display());
    }
    for base in [&dirs.root_base, &td, &dirs.config_dir, &dirs.run_dir] {
        if base.starts_with(dir) {
            bail!("refusing to delete {}: it holds {}", dir.display(), base.display());
        }
    }
    if dir.starts_with(&td) {
        bail!("refusing to delete {}: it is a template (vserverctl template remove)", dir.display());
    }
    Ok(())
}

/// Removes a vserver's directory, NAME.toml and NAME.toml.d/, and its lock file.
pub fn destroy_files(dirs: &Dirs, name: &str, located: &Located) -> Result<()> {
    check_deletable(dirs, &located.dir)?;
    // Its lock beside the root goes too, unless a run (on any host sharing the storage) holds it.
    vserver_engine::lease::remove_if_free(name, &located.root)?;
    remove::remove_path(&located.dir)?;
    remove::remove_path(&dirs.config_dir.join(format!("{name}.toml.d")))?;
    remove::remove_path(&dirs.config_file(name))?;
    Ok(())
}
