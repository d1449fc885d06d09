//! Where a root comes from: a root tree or a tarball (`--template`), a copy of the host
//! (`--from-host`, the paper's way), or Debian's `debootstrap`.

use std::ffi::OsStr;
use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context as _, Result};

use super::copy::{Copier, Rule};
use super::{archive, Progress};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A root tree (directory) or a tar of one.
    Template(PathBuf),
    /// The host's /bin /sbin /lib* /usr /etc /var.
    FromHost { exclude: Vec<PathBuf> },
    Debootstrap { suite: String, mirror: Option<String>, variant: Option<String>, init: GuestInit, include: Vec<String> },
}

/// The init a debootstrapped root gets, to boot as a guest of its own (`fakeinit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum GuestInit {
    /// systemd-sysv, with dbus and libpam-systemd (logins get logind sessions).
    #[default]
    Systemd,
    /// sysvinit-core.
    Sysvinit,
    /// No init of its own: the paper's plain start, an rc script run by the vserver's reaper.
    None,
}

impl GuestInit {
    pub fn name(self) -> &'static str {
        match self {
            GuestInit::Systemd => "systemd",
            GuestInit::Sysvinit => "sysvinit",
            GuestInit::None => "none",
        }
    }

    /// debootstrap's `--include` and `--exclude` for it.
    fn packages(self) -> (&'static str, Option<&'static str>) {
        match self {
            GuestInit::Systemd => ("systemd-sysv,dbus,libpam-systemd", None),
            GuestInit::Sysvinit => ("sysvinit-core", Some("systemd-sysv")),
            GuestInit::None => ("", None),
        }
    }
}

impl Source {
    pub fn describe(&self) -> String {
        match self {
            Source::Template(p) => format!("--template {}", p.display()),
            Source::FromHost { .. } => "--from-host".into(),
            Source::Debootstrap { suite, variant, init, include, .. } => format!(
                "--debootstrap {suite}{}{}{}",
                variant.as_deref().map(|v| format!(" --variant {v}")).unwrap_or_default(),
                if *init == GuestInit::Systemd { String::new() } else { format!(" --init {}", init.name()) },
                if include.is_empty() { String::new() } else { format!(" --include {}", include.join(",")) }
            ),
        }
    }

    /// Fills the empty directory `dst` with a root.
    pub fn fill(&self, dst: &Path, progress: &Progress) -> Result<()> {
        match self {
            Source::Template(p) if archive::is_archive(p) => {
                let n = archive::unpack(p, dst, progress)?;
                progress.done(&format!("{n} entries unpacked"));
            }
            Source::Template(p) => {
                let md = std::fs::metadata(p).with_context(|| format!("the template {}", p.display()))?;
                if !md.is_dir() {
                    bail!("{} is neither a directory nor a tarball", p.display());
                }
                let keep = |_: &Path| Rule::Copy;
                progress.phase(&format!("counting {}", p.display()), 0);
                let total = super::copy::count(p, &keep);
                progress.phase(&format!("copying {}", p.display()), total);
                let mut c = Copier::new(&keep, progress, false);
                c.copy_contents(p, dst, Path::new(""))?;
                progress.done(&format!("{} files, {} bytes copied", c.files, c.bytes));
            }
            Source::FromHost { exclude } => from_host(dst, exclude, progress)?,
            Source::Debootstrap { suite, mirror, variant, init, include } => {
                debootstrap(dst, suite, mirror.as_deref(), variant.as_deref(), *init, include, progress)?
            }
        }
        Ok(())
    }
}

/// The top directories the paper's `vserver NAME build` copies from the host.
pub fn host_tops() -> Vec<PathBuf> {
    let mut tops: Vec<PathBuf> = ["bin", "sbin", "usr", "etc", "var"].iter().map(PathBuf::from).collect();
    if let Ok(rd) = std::fs::read_dir("/") {
        for e in rd.flatten() {
            let n = e.file_name();
            if n.to_string_lossy().starts_with("lib") {
                tops.push(PathBuf::from(n));
            }
        }
    }
    tops.sort();
    tops
}

/// What `--from-host` leaves out (paths relative to `/`): kernel modules, the contents of logs,
/// spools, caches and run state, the vservers' own directories and configuration, the host's
/// fstab (a dummy one is written instead).
pub fn host_rule(rel: &Path, exclude: &[PathBuf]) -> Rule {
    let abs = Path::new("/").join(rel);
    if exclude.iter().any(|x| abs == *x || abs.starts_with(x)) {
        return Rule::Skip;
    }
    let s = rel.to_string_lossy();
    const SKIP: &[&str] = &[
        "lib/modules",
        "usr/lib/modules",
        "lib/firmware",
        "usr/lib/firmware",
        "etc/vservers",
        "etc/fstab",
        "etc/mtab",
        "var/lib/vservers",
        "var/cache/apt/archives",
        "var/lib/apt/lists",
        "var/backups",
    ];
    const EMPTY: &[&str] = &["var/log", "var/spool", "var/run", "var/lock", "var/tmp", "var/cache", "var/mail", "var/crash"];
    if SKIP.iter().any(|p| s == *p || s.starts_with(&format!("{p}/"))) {
        return Rule::Skip;
    }
    if EMPTY.iter().any(|p| s == *p || s.starts_with(&format!("{p}/"))) {
        return Rule::Empty;
    }
    Rule::Copy
}

fn from_host(dst: &Path, exclude: &[PathBuf], progress: &Progress) -> Result<()> {
    let tops = host_tops();
    let rule = |rel: &Path| host_rule(rel, exclude);
    progress.phase("counting the host's files", 0);
    let total: u64 = tops.iter().map(|t| super::copy::count(&Path::new("/").join(t), &|r: &Path| rule(&t.join(r))) + 1).sum();
    progress.phase("copying the host's /bin /sbin /lib* /usr /etc /var", total);
    let mut c = Copier::new(&rule, progress, true);
    for t in &tops {
        let src = Path::new("/").join(t);
        let md = std::fs::symlink_metadata(&src)?;
        progress.inc(1);
        if md.file_type().is_symlink() {
            // Merged /usr: /bin -> usr/bin and the like stay links.
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, dst.join(t))?;
            continue;
        }
        if !md.is_dir() {
            continue;
        }
        std::fs::create_dir(dst.join(t))?;
        c.copy_contents(&src, &dst.join(t), t)?;
    }
    std::fs::write(dst.join("etc/fstab"), "# vserver: the host mounts this root; nothing to mount from inside.\n")?;
    progress.done(&format!("{} files, {} bytes copied from the host", c.files, c.bytes));
    Ok(())
}

fn debootstrap(
    dst: &Path,
    suite: &str,
    mirror: Option<&str>,
    variant: Option<&str>,
    init: GuestInit,
    extra: &[String],
    progress: &Progress,
) -> Result<()> {
    let name_ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.+".contains(&b));
    if !name_ok(suite) {
        bail!("bad suite name {suite:?}");
    }
    if let Some(p) = extra.iter().find(|p| !name_ok(p)) {
        bail!("bad package name {p:?}");
    }
    let mut cmd = Command::new("debootstrap");
    if let Some(v) = variant {
        cmd.arg(format!("--variant={v}"));
    }
    let (init_packages, exclude) = init.packages();
    let include: Vec<&str> = init_packages.split(',').filter(|p| !p.is_empty()).chain(extra.iter().map(String::as_str)).collect();
    if !include.is_empty() {
        cmd.arg(format!("--include={}", include.join(",")));
    }
    if let Some(x) = exclude {
        cmd.arg(format!("--exclude={x}"));
    }
    cmd.arg(suite).arg(dst);
    if let Some(m) = mirror {
        cmd.arg(m);
    }
    progress.phase(&format!("debootstrap {suite}"), 0);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running debootstrap (apt-get install debootstrap)")?;
    let err = child.stderr.take().context("debootstrap's stderr")?;
    let errs = std::thread::spawn(move || std::io::BufReader::new(err).lines().map_while(Result::ok).collect::<Vec<_>>());
    let out = child.stdout.take().context("debootstrap's stdout")?;
    for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
        progress.line(&line);
    }
    let st = child.wait()?;
    let errs = errs.join().unwrap_or_default();
    super::check_interrupted()?;
    if !st.success() {
        let tail = errs.iter().rev().take(10).rev().cloned().collect::<Vec<_>>().join("\n");
        let log = std::fs::read_to_string(dst.join("debootstrap/debootstrap.log")).unwrap_or_default();
        let log_tail: Vec<&str> = log.lines().rev().take(10).collect::<Vec<_>>().into_iter().rev().collect();
        bail!("debootstrap {suite} failed ({st}):\n{tail}\n{}", log_tail.join("\n"));
    }
    progress.done(&format!("debootstrap {suite} done"));
    Ok(())
}

/// The directories every vserver root needs (made when missing, never through a symlink).
pub fn finish_root(root: &Path) -> Result<()> {
    for (d, mode) in [("dev", 0o755), ("proc", 0o555), ("sys", 0o555), ("tmp", 0o1777), ("run", 0o755), ("root", 0o700), ("etc", 0o755)] {
        let p = root.join(d);
        if std::fs::symlink_metadata(&p).is_err() {
            std::fs::create_dir(&p).with_context(|| format!("creating {}", p.display()))?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode))?;
        }
    }
    Ok(())
}

/// Whether `p` is on btrfs.
pub fn is_btrfs(p: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()) else { return false };
    let mut s: libc::statfs = unsafe { std::mem::zeroed() };
    unsafe { libc::statfs(c.as_ptr(), &mut s) == 0 && s.f_type as i64 == 0x9123_683e }
}

/// Runs a host tool, its output kept for the error message only.
pub fn run_quiet(tool: &str, args: &[&OsStr]) -> Result<()> {
    let out = Command::new(tool).args(args).stdin(Stdio::null()).output().with_context(|| format!("running {tool}"))?;
    if !out.status.success() {
        bail!(
            "{tool} {} failed: {}",
            args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_rules() {
        let ex = vec![PathBuf::from("/var/lib/vservers"), PathBuf::from("/srv/vs")];
        assert_eq!(host_rule(Path::new("usr/bin"), &ex), Rule::Copy);
        assert_eq!(host_rule(Path::new("usr/lib/modules"), &ex), Rule::Skip);
        assert_eq!(host_rule(Path::new("lib/modules/6.1/kernel"), &ex), Rule::Skip);
        assert_eq!(host_rule(Path::new("var/log"), &ex), Rule::Empty);
        assert_eq!(host_rule(Path::new("var/log/apt/history.log"), &ex), Rule::Empty);
        assert_eq!(host_rule(Path::new("var/spool/cron"), &ex), Rule::Empty);
        assert_eq!(host_rule(Path::new("var/lib/vservers/web"), &ex), Rule::Skip);
        assert_eq!(host_rule(Path::new("etc/fstab"), &ex), Rule::Skip);
        assert_eq!(host_rule(Path::new("etc/passwd"), &ex), Rule::Copy);
        assert_eq!(host_rule(Path::new("var/logs"), &ex), Rule::Copy);
    }
}
