//! sd_notify: tells systemd (Type=notify) that the daemon is ready, reloading or stopping. A
//! no-op outside systemd (no NOTIFY_SOCKET).

use std::os::unix::net::UnixDatagram;

fn send(msg: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let Ok(sock) = UnixDatagram::unbound() else { return };
    let bytes = path.as_encoded_bytes();
    let _ = if let Some(abstract_name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        match std::os::unix::net::SocketAddr::from_abstract_name(abstract_name) {
            Ok(addr) => sock.send_to_addr(msg.as_bytes(), &addr),
            Err(e) => Err(e),
        }
    } else {
        sock.send_to(msg.as_bytes(), &path)
    };
}

pub fn ready() {
    send("READY=1\nSTATUS=serving");
}

pub fn reloading() {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let now = ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000;
    send(&format!("RELOADING=1\nMONOTONIC_USEC={now}"));
}

pub fn stopping() {
    send("STOPPING=1");
}
