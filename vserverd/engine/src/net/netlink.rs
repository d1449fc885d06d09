//! A tiny synchronous rtnetlink client: one request and its acknowledgement (or its answer, or a
//! dump) on a blocking socket, built and parsed with `netlink-packet-route`. The socket lives in
//! the network namespace of the thread that opened it, for as long as it is open: a socket
//! opened inside a context's namespace configures that namespace from anywhere, and keeps it
//! alive.

use std::fmt;
use std::os::fd::{AsRawFd, RawFd};

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;

const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_CAPPED: u16 = 0x100;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const HEADER_LEN: usize = 16;

/// A refused request: the errno, and the kernel's own explanation when it gave one (extended
/// ack, such as "Nexthop device is not up").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NlError {
    pub errno: Errno,
    pub message: Option<String>,
}

impl NlError {
    fn errno(e: Errno) -> NlError {
        NlError { errno: e, message: None }
    }
}

impl From<std::io::Error> for NlError {
    fn from(e: std::io::Error) -> NlError {
        NlError::errno(crate::error::io_errno(&e))
    }
}

impl fmt::Display for NlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.errno.desc(), self.errno)?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

/// A NETLINK_ROUTE socket (close-on-exec) bound to the kernel.
pub struct Netlink {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Netlink(fd {})", self.sock.as_raw_fd())
    }
}

impl Netlink {
    /// A socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink, NlError> {
        Self::open_with(32 * 1024)
    }

    /// With a receive buffer of `size` bytes: requests and their answers need a few kB (a
    /// process that lives on, such as a monitor, keeps less); a dump needs 32 kB.
    pub fn open_with(size: usize) -> Result<Netlink, NlError> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        sock.connect(&SocketAddr::new(0, 0))?;
        // The kernel's explanations with errors, and acks without a copy of the request.
        let _ = sock.set_ext_ack(true);
        let _ = sock.set_cap_ack(true);
        Ok(Netlink { sock, seq: 0, buf: vec![0; size] })
    }

    pub fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// The socket `fd` opened by [`Netlink::open_with`] in a program that exec'd this one (a
    /// monitor's end takes over its context's sockets): it stays in the namespace it was
    /// opened in. Taken close-on-exec.
    ///
    /// # Safety
    /// `fd` is such a socket, open, and owned by nothing else in this process.
    pub unsafe fn from_fd(fd: RawFd, size: usize) -> Netlink {
        use std::os::fd::FromRawFd;
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
        Netlink { sock: Socket::from_raw_fd(fd), seq: 0, buf: vec![0; size] }
    }

    fn send(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<u32, NlError> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut m = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        m.finalize();
        let mut out = vec![0; m.buffer_len()];
        m.serialize(&mut out);
        self.sock.send(&out, 0)?;
        Ok(self.seq)
    }

    /// Receives until the message(s) answering `seq`; `each` sees every answer and says
    /// whether it was the last.
    fn receive(&mut self, seq: u32, mut each: impl FnMut(Reply<'_>) -> Result<bool, NlError>) -> Result<(), NlError> {
        loop {
            let n = loop {
                match self.sock.recv(&mut &mut self.buf[..], 0) {
                    Ok(n) => break n,
                    Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
            };
            let mut off = 0;
            while off + HEADER_LEN <= n {
                let b = &self.buf[off..n];
                let len = u32::from_ne_bytes(b[0..4].try_into().unwrap()) as usize;
                if len < HEADER_LEN || len > b.len() {
                    return Err(NlError::errno(Errno::EBADMSG));
                }
                let kind = u16::from_ne_bytes(b[4..6].try_into().unwrap());
                let flags = u16::from_ne_bytes(b[6..8].try_into().unwrap());
                let mseq = u32::from_ne_bytes(b[8..12].try_into().unwrap());
                off += (len + 3) & !3;
                if mseq != seq {
                    continue; // an answer to an earlier request we gave up on
                }
                let reply = match kind {
                    NLMSG_ERROR => Reply::Ack(parse_error(&b[..len], flags)),
                    NLMSG_DONE => Reply::Done,
                    _ => Reply::Message(&b[..len]),
                };
                if each(reply)? {
                    return Ok(());
                }
            }
        }
    }

    /// Sends a request (a change) and waits for the kernel's acknowledgement.
    pub fn ack(&mut self, msg: RouteNetlinkMessage, flags: u16) -> Result<(), NlError> {
        let seq = self.send(msg, flags | NLM_F_ACK)?;
        self.receive(seq, |r| match r {
            Reply::Ack(Ok(())) => Ok(true),
            Reply::Ack(Err(e)) => Err(e),
            _ => Ok(false),
        })
    }

    /// Sends a query for one object and returns the answer.
    pub fn get(&mut self, msg: RouteNetlinkMessage) -> Result<RouteNetlinkMessage, NlError> {
        let seq = self.send(msg, 0)?;
        let mut out = None;
        self.receive(seq, |r| match r {
            Reply::Ack(Err(e)) => Err(e),
            Reply::Ack(Ok(())) | Reply::Done => Ok(true),
            Reply::Message(b) => {
                out = Some(decode(b)?);
                Ok(true)
            }
        })?;
        out.ok_or(NlError::errno(Errno::ENODATA))
    }

    /// Sends a dump request and returns every object; those the parser cannot read are left out.
    pub fn dump(&mut self, msg: RouteNetlinkMessage) -> Result<Vec<RouteNetlinkMessage>, NlError> {
        let seq = self.send(msg, NLM_F_DUMP)?;
        let mut out = Vec::new();
        self.receive(seq, |r| match r {
            Reply::Ack(Err(e)) => Err(e),
            Reply::Ack(Ok(())) | Reply::Done => Ok(true),
            Reply::Message(b) => {
                if let Ok(m) = decode(b) {
                    out.push(m);
                }
                Ok(false)
            }
        })?;
        Ok(out)
    }
}

enum Reply<'a> {
    Ack(Result<(), NlError>),
    Done,
    Message(&'a [u8]),
}

fn decode(b: &[u8]) -> Result<RouteNetlinkMessage, NlError> {
    match NetlinkMessage::<RouteNetlinkMessage>::deserialize(b) {
        Ok(NetlinkMessage { payload: NetlinkPayload::InnerMessage(m), .. }) => Ok(m),
        _ => Err(NlError::errno(Errno::EBADMSG)),
    }
}

/// An NLMSG_ERROR: errno 0 is the acknowledgement; an extended ack's message is kept.
fn parse_error(b: &[u8], flags: u16) -> Result<(), NlError> {
    if b.len() < HEADER_LEN + 4 {
        return Err(NlError::errno(Errno::EBADMSG));
    }
    let code = i32::from_ne_bytes(b[16..20].try_into().unwrap());
    if code == 0 {
        return Ok(());
    }
    let mut message = None;
    if flags & NLM_F_ACK_TLVS != 0 && b.len() >= HEADER_LEN + 4 + HEADER_LEN {
        // The request's header (and its body unless capped) comes first, then attributes.
        let orig_len = u32::from_ne_bytes(b[20..24].try_into().unwrap()) as usize;
        let mut off = HEADER_LEN + 4 + if flags & NLM_F_CAPPED != 0 { HEADER_LEN } else { (orig_len + 3) & !3 };
        while off + 4 <= b.len() {
            let alen = u16::from_ne_bytes(b[off..off + 2].try_into().unwrap()) as usize;
            let akind = u16::from_ne_bytes(b[off + 2..off + 4].try_into().unwrap()) & 0x3fff;
            if alen < 4 || off + alen > b.len() {
                break;
            }
            if akind == NLMSGERR_ATTR_MSG {
                let text = &b[off + 4..off + alen];
                let text = text.split(|c| *c == 0).next().unwrap_or(&[]);
                message = Some(String::from_utf8_lossy(text).into_owned()).filter(|s| !s.is_empty());
            }
            off += (alen + 3) & !3;
        }
    }
    Err(NlError { errno: Errno::from_raw(-code), message })
}
