//! Network namespaces by file descriptor: a process's, and a netlink socket opened inside one.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use super::netlink::{NlError, Netlink};

fn open(path: &str) -> Result<OwnedFd, Errno> {
    let c = std::ffi::CString::new(path).map_err(|_| Errno::EINVAL)?;
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(Errno::last());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The network namespace of `pid`.
pub fn of_pid(pid: i32) -> Result<OwnedFd, Errno> {
    open(&format!("/proc/{pid}/ns/net"))
}

/// A netlink socket in the namespace `ns`: the calling thread enters it, opens the socket and
/// goes back. The socket stays there (and keeps the namespace alive) until it is closed.
pub fn netlink_in(ns: &OwnedFd) -> Result<Netlink, NlError> {
    let own = enter(ns).map_err(|e| NlError { errno: e, message: None })?;
    let sock = Netlink::open();
    leave(&own);
    sock
}

/// A new network namespace with `lo` up, made ahead of the context it is for: making one is
/// the costliest part of a context's clone (about half a millisecond), so a builder that waits
/// for its next request makes it while it waits ([`crate::spawn::Placement::netns`]). The calling
/// thread enters it, brings `lo` up and goes back.
pub fn made_ahead() -> Result<OwnedFd, Errno> {
    let own = open("/proc/thread-self/ns/net")?;
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(Errno::last());
    }
    let fresh = open("/proc/thread-self/ns/net");
    let lo = super::loopback_up();
    leave(&own);
    lo.map_err(|e| Errno::from_raw(e.errno))?;
    fresh
}

/// Moves the calling thread into the network namespace `ns` and returns a handle of the one it
/// was in, for [`leave`]. A clone in between is born in `ns`.
pub fn enter(ns: &OwnedFd) -> Result<OwnedFd, Errno> {
    let own = open("/proc/thread-self/ns/net")?;
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(Errno::last());
    }
    Ok(own)
}

/// Back to the namespace [`enter`] left. Staying would make every later host step act on the
/// wrong namespace: failing here aborts.
pub fn leave(own: &OwnedFd) {
    if unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        eprintln!("vserver-engine: cannot return to the host's network namespace: {}", Errno::last());
        std::process::abort();
    }
}
