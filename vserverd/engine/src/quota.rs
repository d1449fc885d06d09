//! Disk quota per vserver (the paper's 6.2.1, `[limits] disk = "10G"`).
//!
//! On btrfs the vserver's root is a subvolume and gets a qgroup limit on the data it references,
//! set through the kernel's ioctls (quota enabled on the filesystem first). ext4 and XFS project
//! quotas keyed by the context number need QFMT_V2 / XFS_QUOTA in the kernel; where the kernel
//! lacks them (as on the CI machine) the check says so and the start is refused.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::errno::Errno;
use thiserror::Error;

const BTRFS_SUPER_MAGIC: i64 = 0x9123_683e;
const EXT4_SUPER_MAGIC: i64 = 0xef53;
const XFS_SUPER_MAGIC: i64 = 0x5846_5342;
/// The inode number of every btrfs subvolume's root directory.
const BTRFS_FIRST_FREE_OBJECTID: u64 = 256;

const fn ioc(dir: u64, nr: u64, size: u64) -> u64 {
    (dir << 30) | (size << 16) | (0x94 << 8) | nr
}
const IOC_WRITE: u64 = 1;
const IOC_READ: u64 = 2;
const BTRFS_IOC_QUOTA_CTL: u64 = ioc(IOC_READ | IOC_WRITE, 40, 16);
const BTRFS_IOC_QGROUP_LIMIT: u64 = ioc(IOC_READ, 43, 48);
const BTRFS_IOC_FS_INFO: u64 = ioc(IOC_READ, 31, 1024);
const BTRFS_IOC_INO_LOOKUP: u64 = ioc(IOC_READ | IOC_WRITE, 18, 4096);
const BTRFS_QUOTA_CTL_ENABLE: u64 = 1;
const BTRFS_QGROUP_LIMIT_MAX_RFER: u64 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QuotaError {
    #[error("disk quota for {root}: its filesystem is {fstype}; quotas need btrfs (a subvolume per vserver){hint}")]
    Unsupported { root: String, fstype: String, hint: &'static str },
    #[error("disk quota for {root}: the root is not a btrfs subvolume (make it one: btrfs subvolume create)")]
    NotSubvolume { root: String },
    #[error("disk quota for {root}: {op}: {errno}")]
    Ioctl { root: String, op: &'static str, errno: String },
}

#[repr(C)]
struct QuotaCtl {
    cmd: u64,
    status: u64,
}

#[repr(C)]
struct QgroupLimit {
    qgroupid: u64,
    flags: u64,
    max_rfer: u64,
    max_excl: u64,
    rsv_rfer: u64,
    rsv_excl: u64,
}

#[repr(C)]
struct InoLookup {
    treeid: u64,
    objectid: u64,
    name: [u8; 4080],
}

#[repr(C)]
struct FsInfo {
    max_id: u64,
    num_devices: u64,
    fsid: [u8; 16],
    rest: [u8; 1024 - 32],
}

fn open_dir(root: &Path) -> Result<OwnedFd, QuotaError> {
    let c = CString::new(root.as_os_str().as_bytes()).map_err(|_| QuotaError::Ioctl { root: root.display().to_string(), op: "open", errno: "NUL in path".into() })?;
    let fd = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(QuotaError::Ioctl { root: root.display().to_string(), op: "open", errno: Errno::last().to_string() });
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn ioctl<T>(fd: &OwnedFd, req: u64, arg: &mut T, root: &Path, op: &'static str) -> Result<(), QuotaError> {
    if unsafe { libc::ioctl(fd.as_raw_fd(), req as libc::c_ulong, arg as *mut T) } != 0 {
        return Err(QuotaError::Ioctl { root: root.display().to_string(), op, errno: Errno::last().to_string() });
    }
    Ok(())
}

/// Whether a disk quota can be set on `root`: a btrfs subvolume.
pub fn check(root: &Path) -> Result<(), QuotaError> {
    let r = root.display().to_string();
    let st = nix::sys::statfs::statfs(root).map_err(|e| QuotaError::Ioctl { root: r.clone(), op: "statfs", errno: e.to_string() })?;
    let kind = st.filesystem_type().0 as i64;
    if kind != BTRFS_SUPER_MAGIC {
        let (fstype, hint) = match kind {
            EXT4_SUPER_MAGIC => ("ext4", "; ext4 project quotas need a kernel with QFMT_V2, which this one lacks"),
            XFS_SUPER_MAGIC => ("xfs", "; XFS project quotas need a kernel with XFS_QUOTA, which this one lacks"),
            _ => ("not btrfs", ""),
        };
        return Err(QuotaError::Unsupported { root: r, fstype: fstype.into(), hint });
    }
    let md = std::fs::metadata(root).map_err(|e| QuotaError::Ioctl { root: r.clone(), op: "stat", errno: e.to_string() })?;
    if md.ino() != BTRFS_FIRST_FREE_OBJECTID {
        return Err(QuotaError::NotSubvolume { root: r });
    }
    Ok(())
}

/// Limits what the subvolume `root` references to `bytes` (quota enabled on its filesystem first).
pub fn apply(root: &Path, bytes: u64) -> Result<(), QuotaError> {
    check(root)?;
    let fd = open_dir(root)?;
    let mut ctl = QuotaCtl { cmd: BTRFS_QUOTA_CTL_ENABLE, status: 0 };
    // Enabling quota where it is on already is harmless (the kernel answers 0 or EEXIST).
    if let Err(e) = ioctl(&fd, BTRFS_IOC_QUOTA_CTL, &mut ctl, root, "enable quota") {
        if !matches!(&e, QuotaError::Ioctl { errno, .. } if errno.contains("EEXIST")) {
            return Err(e);
        }
    }
    let mut lim = QgroupLimit { qgroupid: 0, flags: BTRFS_QGROUP_LIMIT_MAX_RFER, max_rfer: bytes, max_excl: 0, rsv_rfer: 0, rsv_excl: 0 };
    ioctl(&fd, BTRFS_IOC_QGROUP_LIMIT, &mut lim, root, "set the qgroup limit")
}

/// (used, limit) in bytes of the subvolume `root`, from the kernel's qgroup figures in sysfs.
pub fn usage(root: &Path) -> Option<(u64, u64)> {
    let dir = qgroup_dir(root)?;
    let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok()?.trim().parse::<u64>().ok();
    Some((read("referenced")?, read("max_referenced").unwrap_or(0)))
}

/// The bytes only the subvolume `root` holds (not shared with a snapshot's origin or another
/// snapshot): the qgroup's `exclusive` figure; `None` when quotas are off.
pub fn exclusive(root: &Path) -> Option<u64> {
    let dir = qgroup_dir(root)?;
    std::fs::read_to_string(format!("{dir}/exclusive")).ok()?.trim().parse::<u64>().ok()
}

/// The sysfs directory of the qgroup of the subvolume `root`.
fn qgroup_dir(root: &Path) -> Option<String> {
    check(root).ok()?;
    let fd = open_dir(root).ok()?;
    let mut info: FsInfo = unsafe { std::mem::zeroed() };
    ioctl(&fd, BTRFS_IOC_FS_INFO, &mut info, root, "fs info").ok()?;
    let mut look = InoLookup { treeid: 0, objectid: BTRFS_FIRST_FREE_OBJECTID, name: [0; 4080] };
    ioctl(&fd, BTRFS_IOC_INO_LOOKUP, &mut look, root, "subvolume id").ok()?;
    let u = info.fsid;
    let uuid = format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]
    );
    Some(format!("/sys/fs/btrfs/{uuid}/qgroups/0_{}", look.treeid))
}
