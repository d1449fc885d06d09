//! Step `overlay-marks`: a unified vserver's own directory (overlayfs's upper layer) keeps its
//! marks in extended attributes of one namespace: `trusted.overlay.*` when the host's root
//! mounts the overlay, `user.overlay.*` when root of a user namespace does (`userxattr`). The
//! mark that matters is the opaque directory (removed, then made again inside: the template's
//! entries below it stay hidden); read in the other namespace it would be lost, and the
//! template's files would come back. Whiteouts are device nodes 0/0 in both.
//!
//! A file `overlay-marks` beside the layer names the namespace last used. When a start uses
//! the other one (or the file is missing), the opaque marks are moved over first, directory by
//! directory, before anything runs: the vserver is stopped, and the walk never follows a link
//! nor leaves the layer (what is below it was written by root inside). Redirects and metacopy
//! (only made when the host enables them for overlayfs) cannot be read with `userxattr`: such
//! a layer is refused for a user namespace, naming the file.

use std::ffi::{CStr, CString, OsStr};
use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::error::{SetupError, Step, StepExt};
use crate::sys;

/// The namespace a layer's marks are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marks {
    Trusted,
    User,
}

impl Marks {
    fn name(self) -> &'static str {
        match self {
            Marks::Trusted => "trusted",
            Marks::User => "user",
        }
    }

    fn attr(self, what: &str) -> CString {
        CString::new(format!("{}.overlay.{what}", self.name())).expect("no NUL")
    }

    fn other(self) -> Marks {
        match self {
            Marks::Trusted => Marks::User,
            Marks::User => Marks::Trusted,
        }
    }
}

/// Directories deeper than this below the layer's top are refused rather than walked (each
/// level holds a descriptor open).
const MAX_DEPTH: usize = 256;

/// The file beside `upper` that names its marks' namespace.
fn record_of(upper: &Path) -> PathBuf {
    upper.parent().unwrap_or(Path::new("/")).join("overlay-marks")
}

/// Makes `upper`'s marks readable by a mount in namespace `want`: moves them over if they were
/// last written in the other one (or nobody said), then records `want`.
pub fn prepare(upper: &Path, want: Marks) -> Result<(), SetupError> {
    let record = record_of(upper);
    let shown = record.display().to_string();
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    let last = match sys::openat2(cwd, &shown, libc::O_RDONLY | libc::O_NOFOLLOW, 0, 0) {
        Ok(fd) => {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut fs::File::from(fd), &mut text);
            match text.trim() {
                "trusted" => Some(Marks::Trusted),
                "user" => Some(Marks::User),
                _ => None,
            }
        }
        Err(Errno::ENOENT) => None,
        Err(e) => return Err(SetupError::new(Step::OverlayMarks, Some(shown), e)),
    };
    if last == Some(want) {
        return Ok(());
    }
    let top = sys::openat2(cwd, &upper.display().to_string(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0, 0)
        .step(Step::OverlayMarks, &upper.display().to_string())?;
    // No record while the marks move: a walk cut short (or refused) leaves them in both
    // namespaces, and the next start, in either mode, walks again.
    match fs::remove_file(&record) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(&record, e)),
    }
    move_marks(top, upper, want)?;
    // Written anew (never through what is there), then renamed over.
    let tmp = record.with_file_name(".overlay-marks.new");
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(|e| io_error(&tmp, e))?;
    f.write_all(format!("{}\n", want.name()).as_bytes()).map_err(|e| io_error(&tmp, e))?;
    fs::rename(&tmp, &record).map_err(|e| io_error(&record, e))
}

fn io_error(p: &Path, e: std::io::Error) -> SetupError {
    SetupError::new(Step::OverlayMarks, Some(p.display().to_string()), crate::error::io_errno(&e))
}

/// The walk: every directory of the layer, depth first, each opened below its parent by its
/// single name without following a link (a name read from a directory holds no `/`).
fn move_marks(top: OwnedFd, upper: &Path, want: Marks) -> Result<(), SetupError> {
    let from = want.other();
    let names = Names {
        opaque_from: from.attr("opaque"),
        opaque_to: want.attr("opaque"),
        unreadable: [Marks::Trusted.attr("redirect"), Marks::Trusted.attr("metacopy")],
    };
    walk(top, upper, 0, want, &names)
}

struct Names {
    opaque_from: CString,
    opaque_to: CString,
    unreadable: [CString; 2],
}

fn walk(dir: OwnedFd, path: &Path, depth: usize, want: Marks, n: &Names) -> Result<(), SetupError> {
    let shown = || path.display().to_string();
    if let Some(v) = get(dir.as_fd(), &n.opaque_from).step(Step::OverlayMarks, &shown())? {
        set(dir.as_fd(), &n.opaque_to, &v).step(Step::OverlayMarks, &shown())?;
        remove(dir.as_fd(), &n.opaque_from).step(Step::OverlayMarks, &shown())?;
    }
    if want == Marks::User {
        for a in &n.unreadable {
            if get(dir.as_fd(), a).step(Step::OverlayMarks, &shown())?.is_some() {
                let why = format!(
                    "holds {} (the host's overlayfs redirect_dir or metacopy): an overlay in a user namespace cannot read it",
                    a.to_string_lossy()
                );
                return Err(SetupError::detail(Step::OverlayMarks, Some(shown()), why));
            }
        }
    }
    // The listing holds this level's one descriptor.
    let mut listing = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dir)).step(Step::OverlayMarks, &shown())?;
    let fd = listing.as_raw_fd();
    for e in listing.iter() {
        let e = e.step(Step::OverlayMarks, &shown())?;
        let name = e.file_name();
        if name == c"." || name == c".." {
            continue;
        }
        // Only directories are marked opaque; files (whiteouts too) need nothing.
        if !matches!(e.file_type(), Some(nix::dir::Type::Directory) | None) {
            continue;
        }
        let child = path.join(OsStr::from_bytes(name.to_bytes()));
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let sub = match Errno::result(unsafe { libc::openat(fd, name.as_ptr(), flags) }) {
            Ok(raw) => unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) },
            // Not a directory after all (an unknown type), or gone: nothing to mark.
            Err(Errno::ENOTDIR | Errno::ELOOP | Errno::ENOENT) => continue,
            Err(err) => return Err(SetupError::new(Step::OverlayMarks, Some(child.display().to_string()), err)),
        };
        if depth + 1 > MAX_DEPTH {
            return Err(SetupError::detail(Step::OverlayMarks, Some(child.display().to_string()), format!("deeper than {MAX_DEPTH} directories")));
        }
        walk(sub, &child, depth + 1, want, n)?;
    }
    Ok(())
}

fn get(fd: BorrowedFd<'_>, name: &CStr) -> Result<Option<Vec<u8>>, Errno> {
    let mut buf = [0u8; 256];
    let n = unsafe { libc::fgetxattr(fd.as_raw_fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n >= 0 {
        return Ok(Some(buf[..n as usize].to_vec()));
    }
    match Errno::last() {
        Errno::ENODATA | Errno::EOPNOTSUPP => Ok(None),
        e => Err(e),
    }
}

fn set(fd: BorrowedFd<'_>, name: &CStr, value: &[u8]) -> Result<(), Errno> {
    Errno::result(unsafe { libc::fsetxattr(fd.as_raw_fd(), name.as_ptr(), value.as_ptr().cast(), value.len(), 0) }).map(drop)
}

fn remove(fd: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    match Errno::result(unsafe { libc::fremovexattr(fd.as_raw_fd(), name.as_ptr()) }) {
        Ok(_) | Err(Errno::ENODATA) => Ok(()),
        Err(e) => Err(e),
    }
}
