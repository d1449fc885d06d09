//! Deleting a tree without ever following a symbolic link: every entry is opened or unlinked
//! relative to its directory's descriptor (`openat(O_NOFOLLOW|O_DIRECTORY)`, `unlinkat`), so a
//! symlink planted inside a vserver's root (to `/etc`, say) is removed as a link and its target
//! is untouched. Mount points below are detached first; btrfs subvolumes are emptied and removed.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use nix::errno::Errno;

const BTRFS_SUPER_MAGIC: i64 = 0x9123_683e;

fn fstat(fd: libc::c_int) -> std::io::Result<libc::stat> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(st)
}

fn open_dir_at(dirfd: libc::c_int, name: &CStr) -> std::io::Result<OwnedFd> {
    let fd = unsafe {
        libc::openat(dirfd, name.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn is_btrfs_subvolume(fd: libc::c_int, st: &libc::stat) -> bool {
    let mut sfs: libc::statfs = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::fstatfs(fd, &mut sfs) } == 0;
    ok && sfs.f_type as i64 == BTRFS_SUPER_MAGIC && st.st_ino == 256
}

/// Removes `path` (a file, a link, or a directory tree). The last component is not followed
/// either: a symlink at `path` is removed as a link. Missing: fine.
pub fn remove_path(path: &Path) -> Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().with_context(|| format!("refusing to remove {}", path.display()))?;
    let pfd = match std::fs::File::open(parent) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("opening {}", parent.display())),
    };
    let cname = CString::new(name.as_bytes())?;
    remove_at(pfd.as_raw_fd(), &cname, path).with_context(|| format!("removing {}", path.display()))
}

/// Removes the entry `name` of directory `dirfd` (`shown` is its path, for messages).
fn remove_at(dirfd: libc::c_int, name: &CStr, shown: &Path) -> Result<()> {
    // Not a directory (or a symlink to one): one unlinkat, no following.
    if unsafe { libc::unlinkat(dirfd, name.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    match Errno::last() {
        Errno::ENOENT => return Ok(()),
        Errno::EISDIR | Errno::EPERM => {}
        e => bail!("{}: {e}", shown.display()),
    }
    let parent_dev = fstat(dirfd)?.st_dev;
    let mut dir = match open_dir_at(dirfd, name) {
        Ok(d) => d,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => bail!("{}: {e}", shown.display()),
    };
    let mut st = fstat(dir.as_raw_fd())?;
    if st.st_dev != parent_dev && !is_btrfs_subvolume(dir.as_raw_fd(), &st) {
        // A mount point (a leftover of debootstrap, say): detach it, never delete into it.
        drop(dir);
        let p = CString::new(shown.as_os_str().as_bytes())?;
        unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
        dir = open_dir_at(dirfd, name)?;
        st = fstat(dir.as_raw_fd())?;
        if st.st_dev != parent_dev && !is_btrfs_subvolume(dir.as_raw_fd(), &st) {
            bail!("{} is a mount point; not removing into another filesystem", shown.display());
        }
    }
    empty_dir(dir, shown)?;
    if unsafe { libc::unlinkat(dirfd, name.as_ptr(), libc::AT_REMOVEDIR) } != 0 {
        let e = Errno::last();
        if e == Errno::ENOENT {
            return Ok(());
        }
        // An empty btrfs subvolume that rmdir will not take: the tool's way.
        if is_btrfs_subvolume_path(shown) {
            super::source::run_quiet("btrfs", &["subvolume".as_ref(), "delete".as_ref(), shown.as_os_str()])?;
            return Ok(());
        }
        bail!("{}: {e}", shown.display());
    }
    Ok(())
}

fn is_btrfs_subvolume_path(p: &Path) -> bool {
    match std::fs::File::open(p) {
        Ok(f) => fstat(f.as_raw_fd()).map(|st| is_btrfs_subvolume(f.as_raw_fd(), &st)).unwrap_or(false),
        Err(_) => false,
    }
}

/// Removes every entry of the open directory `dir`.
fn empty_dir(dir: OwnedFd, shown: &Path) -> Result<()> {
    super::check_interrupted()?;
    let dup = nix::unistd::dup(dir.as_raw_fd())?;
    let mut d = nix::dir::Dir::from_fd(dup)?;
    let mut names: Vec<CString> = Vec::new();
    for e in d.iter() {
        let e = e?;
        let n = e.file_name();
        if n.to_bytes() == b"." || n.to_bytes() == b".." {
            continue;
        }
        names.push(n.to_owned());
    }
    for n in names {
        let child = shown.join(std::ffi::OsStr::from_bytes(n.to_bytes()));
        remove_at(dir.as_raw_fd(), &n, &child)?;
    }
    Ok(())
}
