//! A pty harness: runs a program (normally `vserverctl`) with a fresh pty as its controlling
//! terminal and stdio, as a user at a terminal would; the test types into the master, reads
//! what appears there (collected by a thread), resizes the terminal and waits for the exit.
//! Also [`vserverctl`]: a `Command` for the workspace's `vserverctl` on a test bus.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::daemon::bin;

/// `vserverctl ARGS` talking to the bus at `address`, with a clean environment (PATH, TERM and
/// the bus address only) unless the test adds more.
pub fn vserverctl(address: &str, args: &[&str]) -> Command {
    let mut c = Command::new(bin("vserverctl"));
    c.args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("DBUS_SYSTEM_BUS_ADDRESS", address);
    c
}

/// What a finished `vserverctl` run gave.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `cmd` with `input` on its stdin (pipes all round), at most `timeout`.
pub fn run_with_input(mut cmd: Command, input: &[u8], timeout: Duration) -> Output {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&input);
    });
    let out = wait_output(child, timeout);
    let _ = writer.join();
    out
}

fn wait_output(mut child: Child, timeout: Duration) -> Output {
    use std::io::Read;
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = so.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = se.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let st = child.wait().unwrap();
            let _ = (t_out.join(), t_err.join());
            panic!("timed out after {timeout:?} (killed: {st})");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap()).into_owned();
    Output { code: status.code(), stdout, stderr }
}

/// Runs `cmd` with stdin from /dev/null.
pub fn run(cmd: Command, timeout: Duration) -> Output {
    run_with_input(cmd, b"", timeout)
}

/// A program running on a pty of ours.
pub struct PtySession {
    master: OwnedFd,
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
    /// Where the next `expect` starts looking.
    mark: usize,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl PtySession {
    /// Starts `cmd` on a new pty of `rows` × `cols`, in a session of its own with the pty as its
    /// controlling terminal.
    pub fn spawn(mut cmd: Command, rows: u16, cols: u16) -> PtySession {
        let pty = nix::pty::openpty(Some(&nix::pty::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 }), None)
            .expect("openpty");
        let slave = pty.slave;
        let master = pty.master;
        unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
        let dup = |f: &OwnedFd| Stdio::from(f.try_clone().unwrap());
        cmd.stdin(dup(&slave)).stdout(dup(&slave)).stderr(dup(&slave));
        unsafe {
            cmd.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on a pty");
        drop(slave);
        let output = Arc::new(Mutex::new(Vec::new()));
        let out2 = output.clone();
        let rfd = unsafe { libc::dup(master.as_raw_fd()) };
        let rfd = unsafe { OwnedFd::from_raw_fd(rfd) };
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = unsafe { libc::read(rfd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
                if n <= 0 {
                    if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                        continue;
                    }
                    return; // EIO: the last slave descriptor is closed
                }
                out2.lock().unwrap().extend_from_slice(&buf[..n as usize]);
            }
        });
        PtySession { master, child, output, mark: 0, reader: Some(reader) }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Types `data`.
    pub fn send(&self, data: &[u8]) {
        let mut d = data;
        while !d.is_empty() {
            let n = unsafe { libc::write(self.master.as_raw_fd(), d.as_ptr() as *const libc::c_void, d.len()) };
            assert!(n > 0, "write to the pty: {}", std::io::Error::last_os_error());
            d = &d[n as usize..];
        }
    }

    /// Types `line` and a carriage return (Enter).
    pub fn line(&self, line: &str) {
        self.send(format!("{line}\r").as_bytes());
    }

    /// Everything seen so far.
    pub fn all(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until `needle` appears after the last match; returns the text up to and including
    /// it (from the last match).
    pub fn expect(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let out = self.output.lock().unwrap();
                let text = String::from_utf8_lossy(&out[self.mark..]).into_owned();
                if let Some(i) = text.find(needle) {
                    let end = i + needle.len();
                    self.mark += text[..end].len();
                    return text[..end].to_string();
                }
            }
            if Instant::now() > deadline {
                panic!("timed out after {timeout:?} waiting for {needle:?}; the terminal shows:\n{}", self.all());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Resizes the terminal (the kernel sends SIGWINCH to its foreground process group).
    pub fn resize(&self, rows: u16, cols: u16) {
        let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        assert_eq!(unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) }, 0);
    }

    /// Waits for the program to end (at most `timeout`, then SIGKILL and a panic).
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Give the reader what was still in flight.
                std::thread::sleep(Duration::from_millis(50));
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("the program on the pty did not end within {timeout:?}; the terminal shows:\n{}", self.all());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for PtySession {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Closing the master ends the reader (its dup sees EIO once the slave side is gone).
        let _ = self.reader.take();
    }
}
