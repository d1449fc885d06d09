//! The lock that keeps a vserver from running twice: the monitor of a run holds an exclusive
//! `flock` on `.ROOT.lock` (beside the root directory, where the guest cannot reach it) for its
//! whole life, so it is released when the monitor ends, however it ends. A second start of the
//! same root by any daemon of this host, or of another host that shares the storage with
//! working `flock`s (NFS, GFS2, OCFS2), finds it held and is refused, naming the file and the
//! holder recorded in it: the node, the monitor's pid and run directory, since when.
//!
//! The holder's line is information for the message only: the lock is the `flock` itself, never
//! the file's content or its existence (a file left by a crash locks nothing).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Why a vserver's lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another monitor holds it.
    #[error("{path} is locked: {name} runs already ({holder}); a vserver runs on one host at a time")]
    Held { name: String, path: PathBuf, holder: String },
    #[error("{path}: {step}: {err}")]
    Io { path: PathBuf, step: &'static str, err: std::io::Error },
}

/// A held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct Lease {
    file: File,
    path: PathBuf,
}

/// `.ROOT.lock` beside the root: `/var/lib/vservers/.web1.lock` for the root
/// `/var/lib/vservers/web1`, `BASE/web1/.root.lock` for a unified vserver's `BASE/web1/root`.
/// (No vserver's name starts with a dot, so it is never another vserver's default root.)
pub fn path_for(root: &Path) -> PathBuf {
    let mut file = std::ffi::OsString::from(".");
    file.push(root.file_name().unwrap_or(root.as_os_str()));
    file.push(".lock");
    root.parent().unwrap_or(Path::new("/")).join(file)
}

/// Takes the lock of vserver `name` whose root is `root`, without waiting, and records the
/// holder (`run_dir` names this daemon's run directory).
pub fn take(name: &str, root: &Path, run_dir: &Path) -> Result<Lease, LeaseError> {
    let path = path_for(root);
    let io = |step: &'static str| {
        let path = path.clone();
        move |err| LeaseError::Io { path, step, err }
    };
    // Never through a link, never a device or a fifo: a plain file of root's, made here.
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&path)
        .map_err(io("open"))?;
    let meta = file.metadata().map_err(io("stat"))?;
    if !meta.is_file() {
        return Err(LeaseError::Io { path, step: "check", err: std::io::Error::other("not a regular file") });
    }
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(LeaseError::Io { path, step: "flock", err });
        }
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        let holder = match text.trim() {
            "" => "the holder has not recorded itself".to_owned(),
            t => format!("held by {t}"),
        };
        return Err(LeaseError::Held { name: name.to_owned(), path, holder });
    }
    let line = holder_line(run_dir);
    file.set_len(0).map_err(io("truncate"))?;
    file.seek(SeekFrom::Start(0)).map_err(io("seek"))?;
    file.write_all(line.as_bytes()).map_err(io("write"))?;
    Ok(Lease { file, path })
}

/// Removes the lock file of `root` (`vserverctl destroy`), unless a run holds it: then the
/// error names the holder, and nothing is removed. No file is fine.
pub fn remove_if_free(name: &str, root: &Path) -> Result<(), LeaseError> {
    let path = path_for(root);
    let mut file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(LeaseError::Io { path, step: "open", err }),
    };
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let mut text = String::new();
        let _ = file.read_to_string(&mut text);
        return Err(LeaseError::Held { name: name.to_owned(), path, holder: format!("held by {}", text.trim()) });
    }
    std::fs::remove_file(&path).map_err(|err| LeaseError::Io { path, step: "remove", err })
}

impl Lease {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the lock until this process ends (a monitor lives as long as its vserver); returns
    /// its descriptor, which the monitor leaves open across its execs.
    pub fn hold_until_exit(self) -> std::os::fd::RawFd {
        let fd = self.file.as_raw_fd();
        std::mem::forget(self.file);
        fd
    }
}

/// `node NODE, monitor pid PID, run directory DIR, since YYYY-MM-DD HH:MM:SS UTC`.
fn holder_line(run_dir: &Path) -> String {
    let node = nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "?".into());
    format!("node {node}, monitor pid {}, run directory {}, since {}\n", std::process::id(), run_dir.display(), utc_now())
}

fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = crate::sys::civil_from_days(days as i64);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vserverd-lease-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(d.join("web1")).unwrap();
        d
    }

    #[test]
    fn path_is_beside_the_root() {
        assert_eq!(path_for(Path::new("/var/lib/vservers/web1")), PathBuf::from("/var/lib/vservers/.web1.lock"));
        assert_eq!(path_for(Path::new("/v/web1/root")), PathBuf::from("/v/web1/.root.lock"));
    }

    #[test]
    fn a_second_taker_is_refused_with_the_holder_and_succeeds_once_released() {
        let d = scratch("twice");
        let root = d.join("web1");
        let first = take("web1", &root, Path::new("/run/a")).unwrap();
        // Another open file description: what a second monitor (or host) has.
        let err = take("web1", &root, Path::new("/run/b")).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, LeaseError::Held { .. }), "{msg}");
        assert!(msg.contains(&format!("{}/.web1.lock is locked: web1 runs already", d.display())), "{msg}");
        assert!(msg.contains(&format!("monitor pid {}, run directory /run/a, since ", std::process::id())), "{msg}");
        drop(first);
        let second = take("web1", &root, Path::new("/run/b")).unwrap();
        let text = std::fs::read_to_string(second.path()).unwrap();
        assert!(text.contains("run directory /run/b"), "{text}");
        assert!(!text.contains("/run/a"), "the old holder's line is replaced: {text}");
        drop(second);
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn the_file_is_removed_only_when_free() {
        let d = scratch("remove");
        let root = d.join("web1");
        remove_if_free("web1", &root).unwrap();
        let held = take("web1", &root, Path::new("/run/a")).unwrap();
        let err = remove_if_free("web1", &root).unwrap_err();
        assert!(err.to_string().contains("run directory /run/a"), "{err}");
        assert!(held.path().exists());
        drop(held);
        remove_if_free("web1", &root).unwrap();
        assert!(!path_for(&root).exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_link_in_place_of_the_file_is_refused() {
        let d = scratch("link");
        let target = d.join("target");
        std::fs::write(&target, "keep").unwrap();
        std::os::unix::fs::symlink(&target, d.join(".web1.lock")).unwrap();
        let err = take("web1", &d.join("web1"), Path::new("/run/a")).unwrap_err();
        assert!(matches!(err, LeaseError::Io { step: "open", .. }), "{err}");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn dates() {
        assert_eq!(crate::sys::civil_from_days(0), (1970, 1, 1));
        assert_eq!(crate::sys::civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(crate::sys::civil_from_days(20_513), (2026, 3, 1));
        assert!(utc_now().ends_with(" UTC"));
    }
}
