//! A FUSE file system that hangs: it answers the kernel's `INIT` and `GETATTR` of its root, and
//! never answers anything else. A process that looks a name up in it waits for the answer in
//! uninterruptible sleep (state D: once a request has been read by the server, not even
//! SIGKILL ends the wait), as behind a hung network file system. Dropping the [`HungFuse`]
//! closes `/dev/fuse`, which aborts the connection: every waiting request fails with ENOTCONN
//! and its process goes on; then the mount is detached.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

const FUSE_LOOKUP: u32 = 1;
const FUSE_GETATTR: u32 = 3;
const FUSE_INIT: u32 = 26;

pub struct HungFuse {
    pub mountpoint: PathBuf,
    dev: Option<File>,
    stop: Arc<AtomicBool>,
    lookups: Arc<AtomicU32>,
    server: Option<std::thread::JoinHandle<()>>,
}

impl HungFuse {
    /// Mounts the file system on `mountpoint` (a directory) and serves it from a thread.
    pub fn mount(mountpoint: &Path) -> HungFuse {
        let dev = OpenOptions::new().read(true).write(true).open("/dev/fuse").expect("/dev/fuse");
        let opts = std::ffi::CString::new(format!("fd={},rootmode=40000,user_id=0,group_id=0", dev.as_raw_fd())).unwrap();
        let target = std::ffi::CString::new(mountpoint.as_os_str().as_encoded_bytes()).unwrap();
        let r = unsafe {
            libc::mount(c"vserver-test-fuse".as_ptr(), target.as_ptr(), c"fuse".as_ptr(), libc::MS_NOSUID | libc::MS_NODEV, opts.as_ptr().cast())
        };
        assert_eq!(r, 0, "mount fuse: {}", std::io::Error::last_os_error());
        let stop = Arc::new(AtomicBool::new(false));
        let lookups = Arc::new(AtomicU32::new(0));
        let mut reader = dev.try_clone().unwrap();
        let (s, l) = (stop.clone(), lookups.clone());
        let server = std::thread::spawn(move || serve(&mut reader, &s, &l));
        HungFuse { mountpoint: mountpoint.to_path_buf(), dev: Some(dev), stop, lookups, server: Some(server) }
    }

    /// How many lookups it has read (and left unanswered).
    pub fn hung_lookups(&self) -> u32 {
        self.lookups.load(Ordering::SeqCst)
    }

    /// Aborts the connection: the processes waiting on it go on (with ENOTCONN).
    pub fn abort(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Closing every descriptor of /dev/fuse aborts the connection (the server's clone too,
        // which it closes when it sees the flag).
        self.dev.take();
        if let Some(s) = self.server.take() {
            let _ = s.join();
        }
    }
}

impl Drop for HungFuse {
    fn drop(&mut self) {
        self.abort();
        let target = std::ffi::CString::new(self.mountpoint.as_os_str().as_encoded_bytes()).unwrap();
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes(b[at..at + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_ne_bytes(b[at..at + 8].try_into().unwrap())
}

/// One answer: `fuse_out_header` (len, error, unique) and the body.
fn reply(dev: &mut File, unique: u64, body: &[u8]) {
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend(((16 + body.len()) as u32).to_ne_bytes());
    out.extend(0i32.to_ne_bytes());
    out.extend(unique.to_ne_bytes());
    out.extend(body);
    let _ = dev.write_all(&out);
}

fn serve(dev: &mut File, stop: &AtomicBool, lookups: &AtomicU32) {
    let mut buf = vec![0u8; 1 << 20 | 4096];
    loop {
        // Poll, so that the flag is seen even while no request comes.
        let mut pfd = libc::pollfd { fd: dev.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        if unsafe { libc::poll(&mut pfd, 1, 50) } <= 0 {
            continue;
        }
        let n = match dev.read(&mut buf) {
            Ok(n) if n >= 40 => n,
            _ => {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        // fuse_in_header: len, opcode, unique, nodeid, uid, gid, pid, …
        let (opcode, unique, nodeid) = (u32_at(&buf, 4), u64_at(&buf, 8), u64_at(&buf, 16));
        let _ = n;
        match opcode {
            FUSE_INIT => {
                // fuse_init_out: major 7, minor 31, max_readahead, flags, max_background,
                // congestion_threshold, max_write, time_gran, max_pages, map_alignment, flags2,
                // max_stack_depth, unused[6].
                let mut body = Vec::new();
                for v in [7u32, 31, 1 << 16, 0] {
                    body.extend(v.to_ne_bytes());
                }
                body.extend(16u16.to_ne_bytes());
                body.extend(12u16.to_ne_bytes());
                body.extend((1u32 << 16).to_ne_bytes());
                body.extend(1u32.to_ne_bytes());
                body.extend(0u16.to_ne_bytes());
                body.extend(0u16.to_ne_bytes());
                body.extend([0u8; 4 + 4 + 24]);
                reply(dev, unique, &body);
            }
            FUSE_GETATTR if nodeid == 1 => {
                // fuse_attr_out: attr_valid, attr_valid_nsec, dummy, then fuse_attr.
                let mut body = Vec::new();
                body.extend(1u64.to_ne_bytes());
                body.extend(0u32.to_ne_bytes());
                body.extend(0u32.to_ne_bytes());
                for v in [1u64, 0, 0, 0, 0, 0] {
                    body.extend(v.to_ne_bytes()); // ino, size, blocks, atime, mtime, ctime
                }
                for v in [0u32, 0, 0, 0o40755, 2, 0, 0, 0, 4096, 0] {
                    body.extend(v.to_ne_bytes()); // nsecs, mode, nlink, uid, gid, rdev, blksize, flags
                }
                reply(dev, unique, &body);
            }
            FUSE_LOOKUP => {
                lookups.fetch_add(1, Ordering::SeqCst);
            }
            // Everything else is left unanswered too.
            _ => {}
        }
    }
}
