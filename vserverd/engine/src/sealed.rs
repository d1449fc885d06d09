//! The host binary is never writable from inside a vserver.
//!
//! A context's pid 1, between its clone and its exec, still shows the builder's binary as
//! `/proc/PID/exe`. Root inside could open that link and, once nothing executes the file any
//! more, write through it (the runc `/proc/self/exe` attack). So every binary that builds
//! contexts first re-execs itself from a sealed in-memory copy: `/proc/PID/exe` then leads to a
//! memfd sealed against writing, growing and shrinking, whose seals cannot be removed. The
//! engine's own pid 1 for rc-style contexts runs from such a memfd too ([`crate::vserver_init`]). The
//! copy is made once per program start (the daemon's monitors are exec'd from the daemon's own
//! sealed copy, through `/proc/self/exe`, and copy nothing).

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use crate::error::{io_errno, SetupError, Step};
use crate::sys;

pub(crate) const SEALS: libc::c_int = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;

/// True when this process runs from a memfd carrying all the seals.
pub fn is_sealed() -> bool {
    let Ok(f) = std::fs::File::open("/proc/self/exe") else { return false };
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    seals >= 0 && seals & SEALS == SEALS
}

/// Re-execs this program from a sealed copy of itself, unless it already runs from one.
/// Returns only on failure (or when already sealed). Call it first thing in `main`, before any
/// thread exists.
pub fn ensure_sealed_self() -> Result<(), SetupError> {
    if is_sealed() {
        // An exec through a descriptor names the process after the descriptor's number: take
        // the program's own name back for `ps` and `top`.
        if let Some(name) = std::env::args_os().next().and_then(|a| {
            let a = std::path::PathBuf::from(a);
            a.file_name().map(|n| n.to_os_string())
        }) {
            let mut bytes = name.into_encoded_bytes();
            bytes.truncate(15);
            if let Ok(c) = CString::new(bytes) {
                unsafe { libc::prctl(libc::PR_SET_NAME, c.as_ptr() as libc::c_ulong, 0, 0, 0) };
            }
        }
        return Ok(());
    }
    let memfd = sealed_copy()?;
    let argv: Vec<CString> = std::env::args_os().filter_map(|a| CString::new(a.into_encoded_bytes()).ok()).collect();
    let envp: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.into_encoded_bytes();
            kv.push(b'=');
            kv.extend(v.into_encoded_bytes());
            CString::new(kv).ok()
        })
        .collect();
    let e = sys::execveat_fd(memfd.as_raw_fd(), &argv, &envp);
    Err(SetupError::new(Step::SealedExe, Some("/proc/self/exe".into()), e).with_detail("re-exec from the sealed copy"))
}

fn sealed_copy() -> Result<OwnedFd, SetupError> {
    let e = |errno: Errno| SetupError::new(Step::SealedExe, Some("/proc/self/exe".into()), errno);
    let mut src = std::fs::File::open("/proc/self/exe").map_err(|err| e(io_errno(&err)))?;
    memfd(c"vserver-sealed", &mut src).map_err(e)
}

/// A free-standing program (`vserver-init`, the serving monitor) run from one sealed memfd per
/// process: made here on first use, or taken from another process ([`SharedProgram::share`]) so
/// that every process running it shares its pages.
pub struct SharedProgram {
    name: &'static std::ffi::CStr,
    bytes: &'static [u8],
    fd: std::sync::OnceLock<OwnedFd>,
}

impl SharedProgram {
    pub const fn new(name: &'static std::ffi::CStr, bytes: &'static [u8]) -> SharedProgram {
        SharedProgram { name, bytes, fd: std::sync::OnceLock::new() }
    }

    /// The sealed memfd holding the program (made once per process, unless shared).
    pub fn fd(&self) -> Result<std::os::fd::RawFd, Errno> {
        if let Some(fd) = self.fd.get() {
            return Ok(fd.as_raw_fd());
        }
        let fd = memfd(self.name, &mut &self.bytes[..])?;
        Ok(self.fd.get_or_init(|| fd).as_raw_fd())
    }

    /// Takes the memfd another process made (`path`: its `/proc/PID/fd/N`): only if it is
    /// sealed for good and holds this very program, and none was made here yet.
    pub fn share(&self, path: &std::path::Path) -> bool {
        let Some(fd) = open_shared(path, self.bytes) else { return false };
        self.fd.set(fd).is_ok()
    }
}

/// Another process's sealed copy of a program (`path`: its `/proc/PID/fd/N`), opened so that
/// the processes running it share its pages: only if it is a memfd sealed for good holding
/// exactly `program`.
pub fn open_shared(path: &std::path::Path, program: &[u8]) -> Option<OwnedFd> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let seals = unsafe { libc::fcntl(f.as_raw_fd(), libc::F_GET_SEALS) };
    if seals < 0 || seals & SEALS != SEALS {
        return None;
    }
    let mut bytes = Vec::with_capacity(program.len() + 1);
    if f.read_to_end(&mut bytes).is_err() || bytes != program {
        return None;
    }
    Some(OwnedFd::from(f))
}

/// An executable memfd named `name` holding what `src` reads, sealed for good against writing,
/// growing and shrinking: whoever reaches it through `/proc/PID/exe` can read and run it, never
/// change it. Close-on-exec.
pub fn memfd(name: &std::ffi::CStr, src: &mut dyn std::io::Read) -> Result<OwnedFd, Errno> {
    const MFD_EXEC: libc::c_uint = 0x10;
    let mut fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING | MFD_EXEC) };
    if fd < 0 && Errno::last() == Errno::EINVAL {
        // A kernel before 6.3 knows no MFD_EXEC (its memfds are executable anyway).
        fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
    }
    if fd < 0 {
        return Err(Errno::last());
    }
    let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut dst = std::fs::File::from(memfd.try_clone().map_err(|e| io_errno(&e))?);
    std::io::copy(src, &mut dst).map_err(|e| io_errno(&e))?;
    dst.flush().map_err(|e| io_errno(&e))?;
    drop(dst);
    seal(memfd.as_raw_fd())?;
    Ok(memfd)
}

/// Adds [`SEALS`] to a memfd. The kernel refuses `F_SEAL_WRITE` with EBUSY while anything
/// else holds a reference to one of the file's pages (a pipe, an I/O in flight, a page being
/// migrated or compacted), after waiting about 150 ms for them to go: on a loaded host such a
/// transient reference can outlast that wait, so the seal is asked again, for at most about
/// three seconds in all, before the error is given.
fn seal(fd: std::os::fd::RawFd) -> Result<(), Errno> {
    const ATTEMPTS: u32 = 20;
    let mut attempt = 1;
    while unsafe { libc::fcntl(fd, libc::F_ADD_SEALS, SEALS) } != 0 {
        let errno = Errno::last();
        if errno != Errno::EBUSY || attempt == ATTEMPTS {
            return Err(errno);
        }
        attempt += 1;
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A memfd whose first page is held by a pipe (vmsplice of a read-only shared mapping):
    /// the kernel cannot seal it for writing until the pipe is read.
    struct Pinned {
        memfd: OwnedFd,
        map: *mut libc::c_void,
        pipe: (OwnedFd, OwnedFd),
    }

    const PAGE: usize = 4096;

    fn pinned() -> Pinned {
        let fd = unsafe { libc::memfd_create(c"pinned".as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING) };
        assert!(fd >= 0, "memfd_create: {}", Errno::last());
        let memfd = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut f = std::fs::File::from(memfd.try_clone().unwrap());
        f.write_all(&[7u8; PAGE]).unwrap();
        // Mapped through a read-only descriptor: a shared mapping of a writable one counts as
        // writable (it could be made so) and refuses the seal by itself.
        let ro = std::fs::File::open(format!("/proc/self/fd/{fd}")).unwrap();
        let map = unsafe { libc::mmap(std::ptr::null_mut(), PAGE, libc::PROT_READ, libc::MAP_SHARED, ro.as_raw_fd(), 0) };
        assert_ne!(map, libc::MAP_FAILED, "mmap: {}", Errno::last());
        let pipe = nix::unistd::pipe().unwrap();
        let iov = libc::iovec { iov_base: map, iov_len: PAGE };
        let n = unsafe { libc::vmsplice(pipe.1.as_raw_fd(), &iov, 1, 0) };
        assert_eq!(n, PAGE as isize, "vmsplice: {}", Errno::last());
        Pinned { memfd, map, pipe }
    }

    impl Drop for Pinned {
        fn drop(&mut self) {
            unsafe { libc::munmap(self.map, PAGE) };
        }
    }

    fn drain(pipe: &OwnedFd) {
        use std::io::Read;
        std::fs::File::from(pipe.try_clone().unwrap()).read_exact(&mut [0u8; PAGE]).unwrap();
    }

    #[test]
    fn a_page_held_by_a_pipe_refuses_the_seal_once() {
        // Positive control of the test below: a single F_ADD_SEALS while the pipe holds the
        // page fails with EBUSY, so the pin is real.
        let p = pinned();
        let r = unsafe { libc::fcntl(p.memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) };
        assert_eq!((r, Errno::last()), (-1, Errno::EBUSY));
        drain(&p.pipe.0);
        assert_eq!(unsafe { libc::fcntl(p.memfd.as_raw_fd(), libc::F_ADD_SEALS, SEALS) }, 0, "{}", Errno::last());
    }

    #[test]
    fn the_seal_waits_out_a_transient_page_reference() {
        let p = pinned();
        let reader = p.pipe.0.try_clone().unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(400));
            drain(&reader);
        });
        assert_eq!(seal(p.memfd.as_raw_fd()), Ok(()));
        t.join().unwrap();
        let seals = unsafe { libc::fcntl(p.memfd.as_raw_fd(), libc::F_GET_SEALS) };
        assert_eq!(seals & SEALS, SEALS);
    }

    #[test]
    fn a_reference_that_stays_is_reported() {
        let p = pinned();
        assert_eq!(seal(p.memfd.as_raw_fd()), Err(Errno::EBUSY));
    }
}
