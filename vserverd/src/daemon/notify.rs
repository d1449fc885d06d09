//! sd_notify: tells systemd (Type=notify) that the daemon is ready, reloading or stopping, and
//! that its event loop is alive (`WatchdogSec=`: `WATCHDOG=1`). A no-op outside systemd (no
//! NOTIFY_SOCKET).

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

/// How often to say `WATCHDOG=1`, when the service manager asks for it: half of `WATCHDOG_USEC`
/// (as sd_watchdog_enabled(3) advises), provided `WATCHDOG_PID`, when set, names this process.
pub fn watchdog_period() -> Option<std::time::Duration> {
    watchdog_period_of(std::env::var("WATCHDOG_USEC").ok().as_deref(), std::env::var("WATCHDOG_PID").ok().as_deref(), std::process::id())
}

fn watchdog_period_of(usec: Option<&str>, pid: Option<&str>, me: u32) -> Option<std::time::Duration> {
    if pid.is_some_and(|p| p.parse::<u32>().ok() != Some(me)) {
        return None;
    }
    let usec: u64 = usec?.parse().ok().filter(|&u| u > 0)?;
    Some(std::time::Duration::from_micros(usec / 2))
}

pub fn watchdog() {
    send("WATCHDOG=1");
}

#[cfg(test)]
mod tests {
    use super::watchdog_period_of;
    use std::time::Duration;

    #[test]
    fn the_watchdog_period_is_half_of_what_is_asked_for_this_process() {
        assert_eq!(watchdog_period_of(Some("30000000"), None, 7), Some(Duration::from_secs(15)));
        assert_eq!(watchdog_period_of(Some("30000000"), Some("7"), 7), Some(Duration::from_secs(15)));
        // Meant for another process (a child that inherited it), or not asked for.
        assert_eq!(watchdog_period_of(Some("30000000"), Some("8"), 7), None);
        assert_eq!(watchdog_period_of(None, None, 7), None);
        assert_eq!(watchdog_period_of(Some("0"), None, 7), None);
        assert_eq!(watchdog_period_of(Some("soon"), None, 7), None);
    }
}
