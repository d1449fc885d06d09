//! The local end of a session inside a vserver: the terminal in raw mode (restored on every way
//! out), its size followed (SIGWINCH → `TIOCSWINSZ` on the pty master), and the copy loops
//! between our stdio and the descriptors vserverd handed us. Plain `poll(2)`, no runtime: the
//! loops run after the D-Bus call is done.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

/// True when `fd` is a terminal.
pub fn is_tty(fd: RawFd) -> bool {
    unsafe { libc::isatty(fd) == 1 }
}

/// The size of the terminal on `fd`, (rows, columns); (0, 0) when unknown.
pub fn size(fd: RawFd) -> (u16, u16) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 {
        (ws.ws_row, ws.ws_col)
    } else {
        (0, 0)
    }
}

/// Gives the pty behind `master` the size of the terminal on `from`.
pub fn copy_size(from: RawFd, master: RawFd) {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    if unsafe { libc::ioctl(from, libc::TIOCGWINSZ, &mut ws) } == 0 {
        unsafe { libc::ioctl(master, libc::TIOCSWINSZ, &ws) };
    }
}

/// `TERM` for the session: ours when it is sane, else `linux`.
pub fn term() -> String {
    std::env::var("TERM")
        .ok()
        .filter(|t| !t.is_empty() && t.len() <= 64 && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b)))
        .unwrap_or_else(|| "linux".into())
}

/// The terminal on a descriptor in raw mode while this lives.
pub struct RawMode {
    fd: RawFd,
    saved: libc::termios,
}

impl RawMode {
    pub fn enable(fd: RawFd) -> Option<RawMode> {
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return None;
        }
        let mut raw = saved;
        unsafe { libc::cfmakeraw(&mut raw) };
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return None;
        }
        Some(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        unsafe { libc::tcsetattr(self.fd, libc::TCSADRAIN, &self.saved) };
    }
}

static SIG_PIPE_W: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIG_PIPE_W.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        unsafe { libc::write(fd, &b as *const u8 as *const libc::c_void, 1) };
    }
}

/// SIGWINCH, SIGTERM, SIGHUP and SIGINT as bytes on a pipe (the self-pipe trick), for `poll`.
pub struct Signals {
    read: OwnedFd,
    _write: OwnedFd,
}

impl Signals {
    pub fn install(signals: &[libc::c_int]) -> std::io::Result<Signals> {
        let mut fds = [0; 2];
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        SIG_PIPE_W.store(write.as_raw_fd(), Ordering::Relaxed);
        for &s in signals {
            let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
            sa.sa_sigaction = on_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            unsafe { libc::sigaction(s, &sa, std::ptr::null_mut()) };
        }
        Ok(Signals { read, _write: write })
    }

    pub fn fd(&self) -> RawFd {
        self.read.as_raw_fd()
    }

    /// The signals that arrived since the last call.
    pub fn take(&self) -> Vec<libc::c_int> {
        let mut buf = [0u8; 64];
        let mut out = Vec::new();
        loop {
            let n = unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            if n <= 0 {
                return out;
            }
            out.extend(buf[..n as usize].iter().map(|b| *b as libc::c_int));
        }
    }
}

fn set_nonblock(fd: RawFd) {
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

/// `read(2)`: Ok(0) at end of file (EIO on a pty master whose slave is closed counts as that),
/// Err(WouldBlock) when nothing is there.
pub fn read(fd: RawFd, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = std::io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EIO) => return Ok(0),
            _ => return Err(e),
        }
    }
}

/// Writes all of `data` to a blocking descriptor.
pub fn write_all(fd: RawFd, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        let n = unsafe { libc::write(fd, data.as_ptr() as *const libc::c_void, data.len()) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EAGAIN) => {
                    let mut p = libc::pollfd { fd, events: libc::POLLOUT, revents: 0 };
                    unsafe { libc::poll(&mut p, 1, -1) };
                    continue;
                }
                _ => return Err(e),
            }
        }
        data = &data[n as usize..];
    }
    Ok(())
}

/// How a session ended, as the status pipe said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// `exit N` / `signal N`: the exit code for us (128 + N for a signal).
    Code(u8),
    /// `error MSG` after the command should have started.
    Error(String),
    /// The status pipe closed without a line: the helper died.
    Lost,
}

/// Parses the status line.
pub fn parse_status(line: &str) -> Ended {
    let line = line.trim_end();
    if let Some(n) = line.strip_prefix("exit ").and_then(|n| n.parse::<i32>().ok()) {
        return Ended::Code((n & 0xff) as u8);
    }
    if let Some(n) = line.strip_prefix("signal ").and_then(|n| n.parse::<i32>().ok()) {
        return Ended::Code((128 + n).clamp(0, 255) as u8);
    }
    if let Some(m) = line.strip_prefix("error ") {
        return Ended::Error(m.to_string());
    }
    Ended::Lost
}

/// The status pipe: everything up to end of file.
fn read_status(fd: RawFd) -> Ended {
    let mut text = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
                unsafe { libc::poll(&mut p, 1, -1) };
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&text);
    // The last line counts: anything before it could only come from inside.
    text.lines().last().map(parse_status).unwrap_or(Ended::Lost)
}

/// Reads what is left in `fd` without waiting, into `out`.
fn drain(fd: RawFd, out: RawFd) {
    set_nonblock(fd);
    let mut buf = [0u8; 16384];
    while let Ok(n) = read(fd, &mut buf) {
        if n == 0 || write_all(out, &buf[..n]).is_err() {
            break;
        }
    }
}

fn poll(fds: &mut [libc::pollfd]) {
    loop {
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if r >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return;
        }
    }
}

fn ready(p: &libc::pollfd) -> bool {
    p.fd >= 0 && p.revents != 0
}

/// Watches stdin for the detach sequence: `count` times `key` within `window`.
pub struct Detach {
    key: u8,
    count: usize,
    window: std::time::Duration,
    seen: Vec<std::time::Instant>,
}

impl Detach {
    /// Ctrl-] three times within a second, as machinectl has it.
    pub fn ctrl_bracket() -> Detach {
        Detach { key: 0x1d, count: 3, window: std::time::Duration::from_secs(1), seen: Vec::new() }
    }

    /// Feeds input bytes; returns how many of them to forward and whether to detach.
    pub fn feed(&mut self, data: &[u8]) -> (usize, bool) {
        for (i, b) in data.iter().enumerate() {
            if *b == self.key {
                let now = std::time::Instant::now();
                self.seen.retain(|t| now.duration_since(*t) <= self.window);
                self.seen.push(now);
                if self.seen.len() >= self.count {
                    return (i, true);
                }
            } else {
                self.seen.clear();
            }
        }
        (data.len(), false)
    }
}

/// A pty session: our terminal (raw, when stdin is one) ↔ `master`, until the status pipe
/// speaks. Returns how it ended.
pub fn pty_session(master: OwnedFd, status: OwnedFd) -> Ended {
    let m = master.as_raw_fd();
    let raw = if is_tty(0) { RawMode::enable(0) } else { None };
    let signals = Signals::install(&[libc::SIGWINCH, libc::SIGTERM, libc::SIGHUP]).ok();
    if is_tty(0) {
        copy_size(0, m);
    }
    set_nonblock(m);
    let mut pending: Vec<u8> = Vec::new();
    let mut stdin_open = true;
    let mut master_open = true;
    let mut buf = [0u8; 16384];
    let ended = loop {
        let mut fds = [
            libc::pollfd { fd: if stdin_open && pending.is_empty() { 0 } else { -1 }, events: libc::POLLIN, revents: 0 },
            libc::pollfd {
                fd: if master_open { m } else { -1 },
                events: libc::POLLIN | if pending.is_empty() { 0 } else { libc::POLLOUT },
                revents: 0,
            },
            libc::pollfd { fd: status.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: signals.as_ref().map(|s| s.fd()).unwrap_or(-1), events: libc::POLLIN, revents: 0 },
        ];
        poll(&mut fds);
        if ready(&fds[3]) {
            let mut quit = None;
            for s in signals.as_ref().map(|s| s.take()).unwrap_or_default() {
                match s {
                    libc::SIGWINCH => copy_size(0, m),
                    other => quit = Some(other),
                }
            }
            if let Some(s) = quit {
                // We were told to go (SIGTERM, or our terminal hung up): the pty master closes
                // with us, which hangs up the session inside.
                break Ended::Code((128 + s) as u8);
            }
        }
        if ready(&fds[0]) {
            stdin_open = read_stdin(&mut buf, &mut pending);
        }
        if ready(&fds[1]) {
            if fds[1].revents & libc::POLLOUT != 0 && !pending.is_empty() {
                let n = unsafe { libc::write(m, pending.as_ptr() as *const libc::c_void, pending.len()) };
                if n > 0 {
                    pending.drain(..n as usize);
                }
            }
            if fds[1].revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                match read(m, &mut buf) {
                    Ok(0) => master_open = false,
                    Ok(n) => {
                        if write_all(1, &buf[..n]).is_err() {
                            master_open = false;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => master_open = false,
                }
            }
        }
        if ready(&fds[2]) {
            let ended = read_status(status.as_raw_fd());
            if master_open {
                drain(m, 1);
            }
            break ended;
        }
    };
    drop(raw);
    ended
}

/// A pipe session: stdin → `input`, `output` → stdout, `error` → stderr, until the status pipe
/// speaks; then what the command left in its pipes is copied out. Returns how it ended.
pub fn pipe_session(input: OwnedFd, output: OwnedFd, error: OwnedFd, status: OwnedFd) -> Ended {
    let mut input = Some(input);
    if let Some(i) = &input {
        set_nonblock(i.as_raw_fd());
    }
    let mut pending: Vec<u8> = Vec::new();
    let mut stdin_open = true;
    let mut out_open = true;
    let mut err_open = true;
    let mut buf = [0u8; 16384];
    loop {
        if !stdin_open && pending.is_empty() {
            input = None; // end of file for the command
        }
        let in_fd = input.as_ref().map(|i| i.as_raw_fd()).unwrap_or(-1);
        let mut fds = [
            libc::pollfd { fd: if stdin_open && pending.is_empty() && in_fd >= 0 { 0 } else { -1 }, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: if pending.is_empty() { -1 } else { in_fd }, events: libc::POLLOUT, revents: 0 },
            libc::pollfd { fd: if out_open { output.as_raw_fd() } else { -1 }, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: if err_open { error.as_raw_fd() } else { -1 }, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: status.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        poll(&mut fds);
        if ready(&fds[0]) {
            stdin_open = read_stdin(&mut buf, &mut pending);
        }
        if ready(&fds[1]) {
            let n = unsafe { libc::write(in_fd, pending.as_ptr() as *const libc::c_void, pending.len()) };
            if n > 0 {
                pending.drain(..n as usize);
            } else if n < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN) {
                // The command closed its stdin: nothing more goes there.
                pending.clear();
                stdin_open = false;
            }
        }
        for (i, (open, src, dst)) in [(&mut out_open, &output, 1), (&mut err_open, &error, 2)].into_iter().enumerate() {
            if ready(&fds[2 + i]) {
                match read(src.as_raw_fd(), &mut buf) {
                    Ok(0) => *open = false,
                    Ok(n) => {
                        if write_all(dst, &buf[..n]).is_err() {
                            *open = false;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => *open = false,
                }
            }
        }
        if ready(&fds[4]) {
            let ended = read_status(status.as_raw_fd());
            if out_open {
                drain(output.as_raw_fd(), 1);
            }
            if err_open {
                drain(error.as_raw_fd(), 2);
            }
            return ended;
        }
    }
}

/// A console session over a connected socket: our terminal (raw) ↔ the socket, until the
/// socket closes or the user types the detach sequence. Returns true when detached.
pub fn socket_session(sock: BorrowedFd<'_>, mut detach: Detach) -> bool {
    let s = sock.as_raw_fd();
    let raw = if is_tty(0) { RawMode::enable(0) } else { None };
    let signals = Signals::install(&[libc::SIGTERM, libc::SIGHUP]).ok();
    let mut buf = [0u8; 16384];
    let mut stdin_open = true;
    let detached = loop {
        let mut fds = [
            libc::pollfd { fd: if stdin_open { 0 } else { -1 }, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: s, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: signals.as_ref().map(|s| s.fd()).unwrap_or(-1), events: libc::POLLIN, revents: 0 },
        ];
        poll(&mut fds);
        if ready(&fds[2]) && signals.as_ref().map(|s| !s.take().is_empty()).unwrap_or(false) {
            break true;
        }
        if ready(&fds[0]) {
            match read(0, &mut buf) {
                Ok(0) => stdin_open = false,
                Ok(n) => {
                    let (fwd, stop) = detach.feed(&buf[..n]);
                    if write_all(s, &buf[..fwd]).is_err() {
                        break false;
                    }
                    if stop {
                        break true;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => stdin_open = false,
            }
        }
        if ready(&fds[1]) {
            match read(s, &mut buf) {
                Ok(0) => break false,
                Ok(n) => {
                    if write_all(1, &buf[..n]).is_err() {
                        break false;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => break false,
            }
        }
    };
    drop(raw);
    detached
}

/// Reads what stdin has into `pending`; false once it is closed (end of file or an error).
fn read_stdin(buf: &mut [u8], pending: &mut Vec<u8>) -> bool {
    match read(0, buf) {
        Ok(0) => false,
        Ok(n) => {
            pending.extend_from_slice(&buf[..n]);
            true
        }
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status("exit 0\n"), Ended::Code(0));
        assert_eq!(parse_status("exit 42"), Ended::Code(42));
        assert_eq!(parse_status("signal 9\n"), Ended::Code(137));
        assert_eq!(parse_status("error step join: no"), Ended::Error("step join: no".into()));
        assert_eq!(parse_status(""), Ended::Lost);
        assert_eq!(parse_status("garbage"), Ended::Lost);
    }

    #[test]
    fn detach_needs_three_in_a_row() {
        let mut d = Detach::ctrl_bracket();
        assert_eq!(d.feed(b"ab\x1d"), (3, false));
        assert_eq!(d.feed(b"\x1dx\x1d"), (3, false), "another key in between starts over");
        assert_eq!(d.feed(b"\x1d"), (1, false));
        assert_eq!(d.feed(b"q\x1d\x1d\x1dz"), (3, true), "the bytes before the third are forwarded");
    }

    #[test]
    fn pipe_session_copies_and_reports() {
        // A fake command: its stdout and status written before the session starts.
        let (in_r, in_w) = pipe();
        let (out_r, out_w) = pipe();
        let (err_r, err_w) = pipe();
        let (st_r, st_w) = pipe();
        write_all(out_w.as_raw_fd(), b"").unwrap();
        write_all(st_w.as_raw_fd(), b"exit 7\n").unwrap();
        drop((out_w, err_w, st_w, in_r));
        assert_eq!(pipe_session(in_w, out_r, err_r, st_r), Ended::Code(7));
    }

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
    }
}

