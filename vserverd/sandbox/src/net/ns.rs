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
    let own = open("/proc/thread-self/ns/net").map_err(|e| NlError { errno: e, message: None })?;
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(NlError { errno: Errno::last(), message: None });
    }
    let sock = Netlink::open();
    if unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        // Staying in the vserver's namespace would make every later host step act on it.
        eprintln!("vserver-sandbox: cannot return to the host's network namespace: {}", Errno::last());
        std::process::abort();
    }
    sock
}
