//! Servers and clients that say whom they saw: for bind mode's tests of source addresses,
//! private loopback and abstract unix sockets.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};

use crate::Res;

fn errno_of(e: std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// `probe serve-peer tcp|udp TEXT ADDR PORT`: answers every connection (datagram) with
/// `TEXT PEER`, PEER the client's address as this socket sees it; prints `listening` once bound
/// (or `err ERRNO`, and exits 1).
pub fn serve(proto: &str, text: &str, addr: &str, port: &str) -> ! {
    let (Ok(ip), Ok(port)) = (addr.parse::<IpAddr>(), port.parse::<u16>()) else { crate::usage() };
    let at = SocketAddr::new(ip, port);
    let fail = |e: std::io::Error| -> ! {
        let n = errno_of(e);
        println!("err {} {n}", crate::errno_name(n));
        std::process::exit(1)
    };
    match proto {
        "tcp" => {
            let l = TcpListener::bind(at).unwrap_or_else(|e| fail(e));
            println!("listening {}", l.local_addr().map(|a| a.to_string()).unwrap_or_default());
            let _ = std::io::stdout().flush();
            for c in l.incoming().flatten() {
                let mut c = c;
                let peer = c.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
                let _ = writeln!(c, "{text} {peer}");
            }
            std::process::exit(0)
        }
        "udp" => {
            let s = UdpSocket::bind(at).unwrap_or_else(|e| fail(e));
            println!("listening {}", s.local_addr().map(|a| a.to_string()).unwrap_or_default());
            let _ = std::io::stdout().flush();
            let mut buf = [0u8; 512];
            loop {
                if let Ok((_, from)) = s.recv_from(&mut buf) {
                    let _ = s.send_to(format!("{text} {}", from.ip()).as_bytes(), from);
                }
            }
        }
        _ => crate::usage(),
    }
}

/// `probe serve-abstract NAME TEXT`: a stream socket at the abstract name NAME answering TEXT.
pub fn serve_abstract(name: &str, text: &str) -> ! {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap_or_else(|_| crate::usage());
    let l = match std::os::unix::net::UnixListener::bind_addr(&addr) {
        Ok(l) => l,
        Err(e) => {
            let n = errno_of(e);
            println!("err {} {n}", crate::errno_name(n));
            std::process::exit(1)
        }
    };
    println!("listening");
    let _ = std::io::stdout().flush();
    for c in l.incoming().flatten() {
        let mut c = c;
        let _ = writeln!(c, "{text}");
    }
    std::process::exit(0)
}

/// `try udp ADDR PORT [MS]`: a datagram from an unbound socket (its source chosen by the
/// kernel, or by bind mode's hooks), and the answer's first line.
pub fn try_udp(ip: IpAddr, port: u16, timeout_ms: u64) -> Res {
    let fam = if ip.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    let fd = unsafe { libc::socket(fam, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(crate::errno());
    }
    let s = unsafe { <UdpSocket as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(timeout_ms)));
    s.send_to(b"who", SocketAddr::new(ip, port)).map_err(errno_of)?;
    let mut buf = [0u8; 512];
    let (n, _) = s.recv_from(&mut buf).map_err(errno_of)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// `try abstract NAME`: connects to the abstract unix socket NAME; its first line.
pub fn try_abstract(name: &str) -> Res {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).map_err(|_| libc::EINVAL)?;
    let mut s = std::os::unix::net::UnixStream::connect_addr(&addr).map_err(errno_of)?;
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    Ok(answer.lines().next().unwrap_or("").to_string())
}

/// `try names ADDR PORT`: connects, and says the socket's own and its peer's address as
/// getsockname(2) and getpeername(2) give them.
pub fn try_names(ip: IpAddr, port: u16) -> Res {
    let s = std::net::TcpStream::connect_timeout(&SocketAddr::new(ip, port), std::time::Duration::from_secs(2)).map_err(errno_of)?;
    let own = s.local_addr().map_err(errno_of)?;
    let peer = s.peer_addr().map_err(errno_of)?;
    Ok(format!("{} {}", own.ip(), peer.ip()))
}

/// `try bound ADDR PORT`: binds a TCP socket, and says the address it got.
pub fn try_bound(ip: IpAddr, port: u16) -> Res {
    let l = TcpListener::bind(SocketAddr::new(ip, port)).map_err(errno_of)?;
    Ok(l.local_addr().map_err(errno_of)?.to_string())
}
