//! Copying a root tree: modes (setuid included), owners, times, symlinks as symlinks, hard
//! links kept as links, device nodes and fifos recreated, sockets skipped. The source is never
//! followed through a symlink; the target is a fresh directory of ours.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::Progress;

/// What to do with an entry (by its path relative to the source root).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Copy,
    /// Leave it out.
    Skip,
    /// A directory kept with its subdirectories but none of its files (logs, spools).
    Empty,
}

pub struct Copier<'a> {
    links: HashMap<(u64, u64), PathBuf>,
    rule: &'a dyn Fn(&Path) -> Rule,
    progress: &'a Progress,
    /// Stay on the filesystem each top directory is on.
    one_fs: bool,
    pub files: u64,
    pub bytes: u64,
}

fn cpath(p: &Path) -> Result<CString> {
    Ok(CString::new(p.as_os_str().as_bytes())?)
}

fn lchown(p: &Path, uid: u32, gid: u32) -> Result<()> {
    let c = cpath(p)?;
    if unsafe { libc::lchown(c.as_ptr(), uid, gid) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("chown {}", p.display()));
    }
    Ok(())
}

/// Sets the times of `p` (not following a link).
fn set_times(p: &Path, md: &fs::Metadata) {
    let Ok(c) = cpath(p) else { return };
    let ts = [
        libc::timespec { tv_sec: md.atime(), tv_nsec: md.atime_nsec() },
        libc::timespec { tv_sec: md.mtime(), tv_nsec: md.mtime_nsec() },
    ];
    unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), ts.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
}

/// Counts the entries below `src` that a copy would visit (for the progress bar).
pub fn count(src: &Path, rule: &dyn Fn(&Path) -> Rule) -> u64 {
    fn walk(src: &Path, rel: &Path, rule: &dyn Fn(&Path) -> Rule, n: &mut u64) {
        let Ok(rd) = fs::read_dir(src) else { return };
        for e in rd.flatten() {
            let r = rel.join(e.file_name());
            if rule(&r) == Rule::Skip {
                continue;
            }
            *n += 1;
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&e.path(), &r, rule, n);
            }
        }
    }
    let mut n = 0;
    walk(src, Path::new(""), rule, &mut n);
    n
}

impl<'a> Copier<'a> {
    pub fn new(rule: &'a dyn Fn(&Path) -> Rule, progress: &'a Progress, one_fs: bool) -> Copier<'a> {
        Copier { links: HashMap::new(), rule, progress, one_fs, files: 0, bytes: 0 }
    }

    /// Copies the contents of directory `src` into the existing directory `dst`, then gives
    /// `dst` the mode, owner and times of `src`.
    pub fn copy_contents(&mut self, src: &Path, dst: &Path, rel: &Path) -> Result<()> {
        let md = fs::symlink_metadata(src).with_context(|| format!("reading {}", src.display()))?;
        self.copy_dir_entries(src, dst, rel, md.dev(), false)?;
        self.finish_dir(dst, &md)
    }

    fn finish_dir(&self, dst: &Path, md: &fs::Metadata) -> Result<()> {
        lchown(dst, md.uid(), md.gid())?;
        fs::set_permissions(dst, fs::Permissions::from_mode_bits(md.mode()))
            .with_context(|| format!("chmod {}", dst.display()))?;
        set_times(dst, md);
        Ok(())
    }

    fn copy_dir_entries(&mut self, src: &Path, dst: &Path, rel: &Path, dev: u64, only_dirs: bool) -> Result<()> {
        let mut entries: Vec<_> = fs::read_dir(src)
            .with_context(|| format!("reading {}", src.display()))?
            .collect::<std::io::Result<Vec<_>>>()
            .with_context(|| format!("reading {}", src.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            super::check_interrupted()?;
            let r = rel.join(e.file_name());
            let rule = (self.rule)(&r);
            if rule == Rule::Skip {
                continue;
            }
            let s = e.path();
            let d = dst.join(e.file_name());
            let md = fs::symlink_metadata(&s).with_context(|| format!("reading {}", s.display()))?;
            self.progress.inc(1);
            if md.is_dir() {
                if self.one_fs && md.dev() != dev {
                    // Another filesystem mounted here: an empty mount point, as `cp -x` does.
                    fs::create_dir(&d).with_context(|| format!("creating {}", d.display()))?;
                    self.finish_dir(&d, &md)?;
                    continue;
                }
                fs::create_dir(&d).with_context(|| format!("creating {}", d.display()))?;
                self.copy_dir_entries(&s, &d, &r, dev, only_dirs || rule == Rule::Empty)?;
                self.finish_dir(&d, &md)?;
            } else if only_dirs || rule == Rule::Empty {
                continue;
            } else {
                self.copy_entry(&s, &d, &md)?;
            }
        }
        Ok(())
    }

    fn copy_entry(&mut self, s: &Path, d: &Path, md: &fs::Metadata) -> Result<()> {
        let ft = md.file_type();
        if md.nlink() > 1 && !ft.is_dir() {
            if let Some(first) = self.links.get(&(md.dev(), md.ino())) {
                fs::hard_link(first, d).with_context(|| format!("linking {}", d.display()))?;
                return Ok(());
            }
        }
        if ft.is_symlink() {
            let target = fs::read_link(s).with_context(|| format!("reading link {}", s.display()))?;
            std::os::unix::fs::symlink(&target, d).with_context(|| format!("creating link {}", d.display()))?;
            lchown(d, md.uid(), md.gid())?;
            set_times(d, md);
        } else if ft.is_file() {
            let mut from = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(s)
                .with_context(|| format!("opening {}", s.display()))?;
            let mut to = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(d)
                .with_context(|| format!("creating {}", d.display()))?;
            self.bytes += std::io::copy(&mut from, &mut to).with_context(|| format!("copying {}", s.display()))?;
            fchown_mod(&to, md).with_context(|| format!("chown/chmod {}", d.display()))?;
            // After the chown, which clears file capabilities: `security.capability` (ping's
            // cap_net_raw), ACLs and the rest come along.
            copy_xattrs(&from, &to).with_context(|| format!("extended attributes of {}", s.display()))?;
            drop(to);
            set_times(d, md);
        } else if ft.is_char_device() || ft.is_block_device() || ft.is_fifo() {
            let c = cpath(d)?;
            if unsafe { libc::mknod(c.as_ptr(), md.mode(), md.rdev()) } != 0 {
                return Err(std::io::Error::last_os_error()).with_context(|| format!("mknod {}", d.display()));
            }
            lchown(d, md.uid(), md.gid())?;
            fs::set_permissions(d, fs::Permissions::from_mode_bits(md.mode()))?;
        } else {
            return Ok(()); // a socket: it belongs to a running program, not to a root
        }
        self.files += 1;
        if md.nlink() > 1 {
            self.links.insert((md.dev(), md.ino()), d.to_path_buf());
        }
        Ok(())
    }
}

/// Copies every extended attribute of `from` to `to` (a destination filesystem without
/// extended attributes is no error).
pub fn copy_xattrs(from: &File, to: &File) -> std::io::Result<()> {
    let (f, t) = (from.as_raw_fd(), to.as_raw_fd());
    let size = unsafe { libc::flistxattr(f, std::ptr::null_mut(), 0) };
    if size <= 0 {
        return Ok(()); // none, or the source's filesystem has none
    }
    let mut names = vec![0u8; size as usize];
    let size = unsafe { libc::flistxattr(f, names.as_mut_ptr() as *mut libc::c_char, names.len()) };
    if size < 0 {
        return Err(std::io::Error::last_os_error());
    }
    for name in names[..size as usize].split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let Ok(cname) = CString::new(name) else { continue };
        let len = unsafe { libc::fgetxattr(f, cname.as_ptr(), std::ptr::null_mut(), 0) };
        if len < 0 {
            continue; // gone meanwhile
        }
        let mut value = vec![0u8; len as usize];
        let len = unsafe { libc::fgetxattr(f, cname.as_ptr(), value.as_mut_ptr() as *mut libc::c_void, value.len()) };
        if len < 0 {
            continue;
        }
        if unsafe { libc::fsetxattr(t, cname.as_ptr(), value.as_ptr() as *const libc::c_void, len as usize, 0) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENOTSUP) {
                return Ok(());
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Owner first, then the mode (a chown clears setuid bits).
fn fchown_mod(f: &File, md: &fs::Metadata) -> std::io::Result<()> {
    if unsafe { libc::fchown(f.as_raw_fd(), md.uid(), md.gid()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if unsafe { libc::fchmod(f.as_raw_fd(), md.mode() & 0o7777) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

trait ModeBits {
    fn from_mode_bits(mode: u32) -> fs::Permissions;
}

impl ModeBits for fs::Permissions {
    fn from_mode_bits(mode: u32) -> fs::Permissions {
        std::os::unix::fs::PermissionsExt::from_mode(mode & 0o7777)
    }
}

#[cfg(test)]
mod xattr_tests {
    use super::*;

    #[test]
    fn extended_attributes_are_copied() {
        let dir = std::env::temp_dir().join(format!("vserverctl-xattr-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a"), dir.join("b"));
        fs::write(&a, b"x").unwrap();
        let ca = cpath(&a).unwrap();
        let set = unsafe { libc::setxattr(ca.as_ptr(), c"user.vserver".as_ptr(), b"1".as_ptr() as *const libc::c_void, 1, 0) };
        if set != 0 {
            eprintln!("skipped: no user xattrs on {}", dir.display());
            let _ = fs::remove_dir_all(&dir);
            return;
        }
        let from = File::open(&a).unwrap();
        let to = File::create(&b).unwrap();
        copy_xattrs(&from, &to).unwrap();
        let cb = cpath(&b).unwrap();
        let mut buf = [0u8; 8];
        let n = unsafe { libc::getxattr(cb.as_ptr(), c"user.vserver".as_ptr(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        assert_eq!(n, 1, "the attribute came along");
        assert_eq!(buf[0], b'1');
        let _ = fs::remove_dir_all(&dir);
    }
}
