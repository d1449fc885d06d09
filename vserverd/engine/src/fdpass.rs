//! Descriptors over unix sockets (SCM_RIGHTS): one message with its descriptors, sent and
//! received whole. Used between the daemon and its enter helpers and monitors.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// At most this many descriptors travel in one message.
pub const MAX_FDS: usize = 8;

/// Sends `data` with `fds` (the descriptors stay open here; the caller closes them).
pub fn send(sock: BorrowedFd<'_>, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let iov = [IoSlice::new(data)];
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &cmsg };
    loop {
        match sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(_) => return Ok(()),
        }
    }
}

/// A message and the descriptors that came with it.
pub type Message = (Vec<u8>, Vec<OwnedFd>);

/// Receives one message (at most `max` bytes) and its descriptors (close-on-exec). `Ok(None)`
/// at end of file.
pub fn recv(sock: BorrowedFd<'_>, max: usize) -> Result<Option<Message>, Errno> {
    let mut buf = vec![0u8; max];
    let mut space = nix::cmsg_space!([RawFd; MAX_FDS]);
    loop {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = match recvmsg::<()>(sock.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::MSG_CMSG_CLOEXEC) {
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
            Ok(m) => m,
        };
        let mut fds = Vec::new();
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    fds.extend(raw.into_iter().map(|f| unsafe { OwnedFd::from_raw_fd(f) }));
                }
            }
        }
        let n = msg.bytes;
        if n == 0 && fds.is_empty() {
            return Ok(None);
        }
        buf.truncate(n);
        return Ok(Some((buf, fds)));
    }
}

/// A connected `SOCK_SEQPACKET` pair, both ends close-on-exec.
pub fn seqpacket_pair() -> Result<(OwnedFd, OwnedFd), Errno> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn descriptors_travel_with_their_message() {
        let (a, b) = seqpacket_pair().unwrap();
        let (r, w) = nix::unistd::pipe().unwrap();
        send(a.as_fd(), b"hello", &[w.as_fd()]).unwrap();
        drop(w);
        let (data, fds) = recv(b.as_fd(), 64).unwrap().unwrap();
        assert_eq!(data, b"hello");
        assert_eq!(fds.len(), 1);
        nix::unistd::write(&fds[0], b"x").unwrap();
        let mut buf = [0u8; 1];
        nix::unistd::read(r.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(&buf, b"x");
        drop(a);
        assert!(recv(b.as_fd(), 64).unwrap().is_none());
    }
}
