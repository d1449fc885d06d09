//! The console of a vserver's pid 1 for `vserverctl console`: its monitor holds the pty master
//! and fans it out. Viewers connect to `RUN_DIR/NAME/console.sock` (a host socket, mode 0600,
//! in the root-only run directory; the daemon connects for an authorised caller and hands the
//! connected socket over D-Bus). Everything pid 1 writes goes to the console log and to every
//! viewer; what a viewer types goes to pid 1's terminal. The monitor is single-threaded and
//! never blocks on a viewer: a viewer that does not keep up loses output, never the log.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// At most this many viewers at once.
pub const MAX_VIEWERS: usize = 16;

/// Where the monitor of `name` listens for viewers.
pub fn socket_path(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(name).join("console.sock")
}

/// The monitor's side: the listening socket and the connected viewers.
pub struct Viewers {
    path: PathBuf,
    listener: Option<UnixListener>,
    conns: Vec<UnixStream>,
}

impl Viewers {
    /// Listens at `path` (replacing a stale socket), mode 0600. Without it the console still
    /// goes to the log.
    pub fn open(path: &Path) -> Viewers {
        let _ = std::fs::remove_file(path);
        let old = unsafe { libc::umask(0o177) };
        let listener = UnixListener::bind(path).ok();
        unsafe { libc::umask(old) };
        if let Some(l) = &listener {
            let _ = l.set_nonblocking(true);
        }
        Viewers { path: path.to_path_buf(), listener, conns: Vec::new() }
    }

    /// The listener, then each viewer, for `poll`.
    pub fn fds(&self) -> Vec<BorrowedFd<'_>> {
        self.listener.iter().map(|l| l.as_fd()).chain(self.conns.iter().map(|c| c.as_fd())).collect()
    }

    /// The listening socket's descriptor (for the serving program).
    pub fn listener_fd(&self) -> Option<std::os::fd::RawFd> {
        self.listener.as_ref().map(std::os::fd::AsRawFd::as_raw_fd)
    }

    /// The connected viewers' descriptors (for the serving program).
    pub fn viewer_fds(&self) -> Vec<std::os::fd::RawFd> {
        self.conns.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect()
    }

    pub fn has_listener(&self) -> bool {
        self.listener.is_some()
    }

    pub fn count(&self) -> usize {
        self.conns.len()
    }

    /// Takes the viewers waiting to connect.
    pub fn accept(&mut self) {
        let Some(l) = &self.listener else { return };
        while let Ok((c, _)) = l.accept() {
            if self.conns.len() >= MAX_VIEWERS {
                let mut c = c;
                let _ = c.write_all(b"vserver: too many console viewers\r\n");
                continue;
            }
            let _ = c.set_nonblocking(true);
            self.conns.push(c);
        }
    }

    /// Reads what viewer `i` typed (into `buf`); `None` when it has gone (it is dropped).
    pub fn read(&mut self, i: usize, buf: &mut [u8]) -> Option<usize> {
        let c = self.conns.get_mut(i)?;
        match c.read(buf) {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => Some(0),
            Err(_) => None,
        }
    }

    /// Drops the viewers at the given indices.
    pub fn drop_viewers(&mut self, mut gone: Vec<usize>) {
        gone.sort_unstable();
        gone.dedup();
        for i in gone.into_iter().rev() {
            if i < self.conns.len() {
                self.conns.remove(i);
            }
        }
    }

    /// Console output to every viewer, without ever waiting: a full viewer misses this piece,
    /// a gone one is dropped.
    pub fn broadcast(&mut self, data: &[u8]) {
        self.conns.retain_mut(|c| {
            let mut rest = data;
            while !rest.is_empty() {
                match c.write(rest) {
                    Ok(0) => return false,
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                }
            }
            true
        });
    }
}

impl Drop for Viewers {
    fn drop(&mut self) {
        if self.listener.is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fans_out_and_takes_input() {
        let dir = std::env::temp_dir().join(format!("vserverd-console-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("console.sock");
        let mut v = Viewers::open(&path);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let mut a = UnixStream::connect(&path).unwrap();
        let mut b = UnixStream::connect(&path).unwrap();
        v.accept();
        assert_eq!(v.count(), 2);
        v.broadcast(b"hello");
        let mut buf = [0u8; 5];
        a.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        b.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        a.write_all(b"x").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        let mut got = [0u8; 8];
        assert_eq!(v.read(0, &mut got), Some(1));
        drop(b);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(v.read(1, &mut got), None);
        v.drop_viewers(vec![1]);
        assert_eq!(v.count(), 1);
        drop(v);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
