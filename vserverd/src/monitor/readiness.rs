//! Readiness of a vserver's pid 1: systemd's notification protocol (`sd_notify`), served by the
//! vserver's monitor. The monitor binds a datagram socket in the vserver's guest directory
//! (`/run/vserver/notify` inside, see `control`), pid 1 gets `NOTIFY_SOCKET` pointing there, and
//! the start is done when pid 1 sends `READY=1`: systemd once its default target is reached,
//! `vserver-init` once the start command has exited 0.
//!
//! Root inside is hostile, and the monitor is small and single-threaded, so it reads with care:
//! - only a datagram whose credentials (set by the kernel, which root without CAP_SYS_ADMIN
//!   cannot forge) name pid 1 counts; anyone else's is read and dropped;
//! - a datagram longer than [`MAX_DATAGRAM`] is cut by the kernel and dropped whole;
//! - descriptors passed along (`FDSTORE=1`) are closed at once;
//! - at most [`RATE`] datagrams a second are read; past that the monitor stops reading until
//!   the second is over (the socket's queue fills, and senders wait or get EAGAIN);
//! - the socket is closed once pid 1 is ready: nothing else of the protocol is served.

use std::io::IoSliceMut;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{bind, recvmsg, setsockopt, socket, sockopt, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr};

/// Where the socket appears inside the vserver.
pub const INSIDE: &str = "/run/vserver/notify";
/// The file name of the socket in the guest directory.
pub const FILE: &str = "notify";
/// The longest datagram read whole (systemd's own messages are far below).
pub const MAX_DATAGRAM: usize = 4096;
/// Datagrams read per second, at most.
pub const RATE: u32 = 64;

/// The monitor's end of pid 1's `NOTIFY_SOCKET`.
pub struct NotifySocket {
    fd: OwnedFd,
    path: std::path::PathBuf,
    window: Instant,
    count: u32,
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What one read of the socket found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Heard {
    /// pid 1 said `READY=1`.
    pub ready: bool,
    /// pid 1's last `STATUS=` text, if it sent one.
    pub status: Option<String>,
}

impl NotifySocket {
    /// Binds the socket at `path` (a stale one is replaced), mode 0600: only root inside may
    /// send to it.
    pub fn bind(path: &Path) -> Result<NotifySocket, Errno> {
        let _ = std::fs::remove_file(path);
        let fd = socket(AddressFamily::Unix, SockType::Datagram, SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK, None)?;
        let addr = UnixAddr::new(path)?;
        let old = unsafe { libc::umask(0o177) };
        let bound = bind(fd.as_raw_fd(), &addr);
        unsafe { libc::umask(old) };
        bound?;
        setsockopt(&fd, sockopt::PassCred, &true)?;
        Ok(NotifySocket { fd, path: path.to_path_buf(), window: Instant::now(), count: 0 })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `None` while it may be read; otherwise how long until it may be read again.
    pub fn paused_for(&self) -> Option<Duration> {
        let left = Duration::from_secs(1).checked_sub(self.window.elapsed())?;
        (self.count >= RATE).then_some(left)
    }

    /// Reads what is queued, within the rate; only pid 1's datagrams (`pid1`, as the host sees
    /// it) count.
    pub fn read(&mut self, pid1: i32) -> Heard {
        let mut heard = Heard::default();
        let mut buf = [0u8; MAX_DATAGRAM];
        loop {
            if self.window.elapsed() >= Duration::from_secs(1) {
                self.window = Instant::now();
                self.count = 0;
            }
            if self.count >= RATE {
                return heard;
            }
            let mut iov = [IoSliceMut::new(&mut buf)];
            let mut cmsg = nix::cmsg_space!(libc::ucred, [std::os::fd::RawFd; 16]);
            let (len, truncated, sender) = match recvmsg::<()>(self.fd.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
                Ok(msg) => {
                    let mut sender = None;
                    for c in msg.cmsgs().into_iter().flatten() {
                        match c {
                            ControlMessageOwned::ScmCredentials(cred) => sender = Some(cred.pid()),
                            ControlMessageOwned::ScmRights(fds) => {
                                for fd in fds {
                                    unsafe { libc::close(fd) };
                                }
                            }
                            _ => {}
                        }
                    }
                    let cut = msg.flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
                    (msg.bytes, cut, sender)
                }
                Err(Errno::EINTR) => continue,
                Err(_) => return heard, // EAGAIN: nothing more queued
            };
            self.count += 1;
            if truncated || sender != Some(pid1) {
                continue;
            }
            let h = parse(&buf[..len]);
            heard.ready |= h.ready;
            if h.status.is_some() {
                heard.status = h.status;
            }
        }
    }
}

/// The assignments of one datagram that the monitor acts on (systemd's format: `KEY=VALUE`
/// lines).
pub fn parse(datagram: &[u8]) -> Heard {
    let mut heard = Heard::default();
    for line in datagram.split(|b| *b == b'\n') {
        if line == b"READY=1" {
            heard.ready = true;
        } else if let Some(s) = line.strip_prefix(b"STATUS=") {
            let text: String = String::from_utf8_lossy(s).chars().filter(|c| !c.is_control()).take(256).collect();
            heard.status = Some(text);
        }
    }
    heard
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn parses_ready_and_status() {
        assert_eq!(parse(b"READY=1\nSTATUS=Startup finished in 412ms."), Heard { ready: true, status: Some("Startup finished in 412ms.".into()) });
        assert!(!parse(b"READY=0").ready);
        assert!(!parse(b"XREADY=1").ready);
        assert!(!parse(b"READY=1 ").ready);
        let long = format!("STATUS={}\x1b[2J", "x".repeat(1000));
        assert_eq!(parse(long.as_bytes()).status.unwrap().len(), 256);
    }

    #[test]
    fn counts_only_pid1_and_bounds_the_rate() {
        let dir = std::env::temp_dir().join(format!("vserverd-notify-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("notify");
        let mut s = NotifySocket::bind(&path).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let me = std::process::id() as i32;
        let c = UnixDatagram::unbound().unwrap();
        // From us, but we are not pid 1 of anything: dropped.
        c.send_to(b"READY=1", &path).unwrap();
        assert_eq!(s.read(me + 1), Heard::default());
        // From "pid 1" (us, as far as this test says): heard.
        c.send_to(b"STATUS=booting", &path).unwrap();
        c.send_to(b"READY=1", &path).unwrap();
        assert_eq!(s.read(me), Heard { ready: true, status: Some("booting".into()) });
        // Too long: cut by the kernel, dropped whole.
        let mut big = b"READY=1\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', MAX_DATAGRAM));
        c.send_to(&big, &path).unwrap();
        assert!(!s.read(me).ready);
        // A flood: no more than RATE read this second, the rest waits in the queue.
        let mut s = NotifySocket::bind(&path).unwrap();
        c.set_nonblocking(true).unwrap();
        let mut rounds = 0;
        while s.paused_for().is_none() {
            while c.send_to(b"STATUS=x", &path).is_ok() {}
            s.read(me);
            rounds += 1;
            assert!(rounds <= RATE, "never paused");
        }
        c.send_to(b"READY=1", &path).ok();
        assert!(!s.read(me).ready, "read past the rate");
        std::thread::sleep(Duration::from_millis(1050));
        assert!(s.paused_for().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
