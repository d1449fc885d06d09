//! Thin wrappers over the system calls the engine needs and that `nix` does not carry:
//! `openat2`, the fd-based mount API (`fsopen`, `fsmount`, `move_mount`, `open_tree`,
//! `mount_setattr`), `pivot_root`, `close_range`, fork-style `clone` and `memfd`.
//!
//! Every wrapper returns the raw errno; callers attach the step and the path.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

pub type SysResult<T> = Result<T, Errno>;

fn check(ret: libc::c_long) -> SysResult<libc::c_long> {
    if ret < 0 {
        Err(Errno::last())
    } else {
        Ok(ret)
    }
}

fn cstr(s: &str) -> SysResult<CString> {
    CString::new(s).map_err(|_| Errno::EINVAL)
}

// --- openat2 ------------------------------------------------------------------------------

pub const RESOLVE_NO_XDEV: u64 = 0x01;
pub const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
pub const RESOLVE_NO_SYMLINKS: u64 = 0x04;
pub const RESOLVE_BENEATH: u64 = 0x08;
pub const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `openat2(dirfd, path, how)`; the descriptor is always close-on-exec.
pub fn openat2(dirfd: BorrowedFd<'_>, path: &str, flags: i32, mode: u32, resolve: u64) -> SysResult<OwnedFd> {
    let path = cstr(path)?;
    let how = OpenHow { flags: (flags | libc::O_CLOEXEC) as u64, mode: mode as u64, resolve };
    let fd = check(unsafe {
        libc::syscall(
            libc::SYS_openat2,
            dirfd.as_raw_fd(),
            path.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Resolution rules for paths inside a vserver root: stay beneath the directory, never
/// follow a symbolic link (plain or magic).
pub const STRICT: u64 = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;

/// Opens an existing directory beneath `dirfd` as an `O_PATH` handle, following no link.
pub fn open_dir_strict(dirfd: BorrowedFd<'_>, path: &str) -> SysResult<OwnedFd> {
    openat2(dirfd, path, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0, STRICT)
}

/// Makes `name` a directory inside `dirfd` if it is missing (never following a link), then opens it.
pub fn ensure_dir(dirfd: BorrowedFd<'_>, name: &str, mode: u32) -> SysResult<OwnedFd> {
    match open_dir_strict(dirfd, name) {
        Ok(fd) => Ok(fd),
        Err(Errno::ENOENT) => {
            let c = cstr(name)?;
            match check(unsafe { libc::mkdirat(dirfd.as_raw_fd(), c.as_ptr(), mode) } as libc::c_long) {
                Ok(_) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e),
            }
            open_dir_strict(dirfd, name)
        }
        Err(e) => Err(e),
    }
}

// --- the fd-based mount API ------------------------------------------------------------------

pub const FSOPEN_CLOEXEC: u32 = 0x1;
pub const FSCONFIG_SET_STRING: u32 = 1;
pub const FSCONFIG_SET_FLAG: u32 = 0;
pub const FSCONFIG_CMD_CREATE: u32 = 6;
pub const FSMOUNT_CLOEXEC: u32 = 0x1;
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
pub const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;
pub const OPEN_TREE_CLONE: u32 = 1;
pub const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;
pub const AT_RECURSIVE: u32 = 0x8000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Creates a detached mount of a fresh `fstype` instance with string options and flags.
pub fn fs_create(fstype: &str, options: &[(&str, Option<&str>)], attrs: u64) -> SysResult<OwnedFd> {
    let t = cstr(fstype)?;
    let fsfd = check(unsafe { libc::syscall(libc::SYS_fsopen, t.as_ptr(), FSOPEN_CLOEXEC) })? as RawFd;
    let fsfd = unsafe { OwnedFd::from_raw_fd(fsfd) };
    for (key, value) in options {
        let k = cstr(key)?;
        match value {
            Some(v) => {
                let v = cstr(v)?;
                check(unsafe {
                    libc::syscall(libc::SYS_fsconfig, fsfd.as_raw_fd(), FSCONFIG_SET_STRING, k.as_ptr(), v.as_ptr(), 0)
                })?;
            }
            None => {
                check(unsafe {
                    libc::syscall(
                        libc::SYS_fsconfig,
                        fsfd.as_raw_fd(),
                        FSCONFIG_SET_FLAG,
                        k.as_ptr(),
                        std::ptr::null::<libc::c_char>(),
                        0,
                    )
                })?;
            }
        }
    }
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fsfd.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<libc::c_char>(),
            std::ptr::null::<libc::c_char>(),
            0,
        )
    })?;
    let mfd = check(unsafe { libc::syscall(libc::SYS_fsmount, fsfd.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(mfd as RawFd) })
}

/// Attaches the detached mount `mnt` on the directory (or file) that `target` is an handle of.
/// No path is resolved, so nothing inside the vserver root can redirect it.
pub fn move_mount_to_fd(mnt: BorrowedFd<'_>, target: BorrowedFd<'_>) -> SysResult<()> {
    let empty = c"";
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            target.as_raw_fd(),
            empty.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })?;
    Ok(())
}

/// A detached copy (bind) of the mount tree at `path` (relative to `dirfd`; "" means dirfd itself).
pub fn open_tree_clone(dirfd: BorrowedFd<'_>, path: &str, recursive: bool) -> SysResult<OwnedFd> {
    let p = cstr(path)?;
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    if path.is_empty() {
        flags |= libc::AT_EMPTY_PATH as u32;
    }
    let fd = check(unsafe { libc::syscall(libc::SYS_open_tree, dirfd.as_raw_fd(), p.as_ptr(), flags) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sets or clears mount attributes on the mount `fd` refers to (and below it when `recursive`).
pub fn mount_setattr(fd: BorrowedFd<'_>, set: u64, clear: u64, recursive: bool) -> SysResult<()> {
    let attr = MountAttr { attr_set: set, attr_clr: clear, propagation: 0, userns_fd: 0 };
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    check(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    })?;
    Ok(())
}

/// `MOUNT_ATTR_IDMAP`: the mount shows its files' owners through a user namespace's mapping.
pub const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;

/// Makes the detached mount tree `fd` an idmapped one (with `extra` attributes such as
/// read-only): on-disk id N is seen, and written, as the id N maps to in `userns` (a handle of a
/// user namespace). Only a detached tree not yet idmapped can be; the caller needs
/// CAP_SYS_ADMIN over the filesystem's own user namespace (the host's, for a disk filesystem).
pub fn mount_setattr_idmap(fd: BorrowedFd<'_>, userns: BorrowedFd<'_>, extra: u64, recursive: bool) -> SysResult<()> {
    let attr = MountAttr { attr_set: MOUNT_ATTR_IDMAP | extra, attr_clr: 0, propagation: 0, userns_fd: userns.as_raw_fd() as u64 };
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= AT_RECURSIVE;
    }
    check(unsafe {
        libc::syscall(libc::SYS_mount_setattr, fd.as_raw_fd(), c"".as_ptr(), flags, &attr as *const MountAttr, std::mem::size_of::<MountAttr>())
    })?;
    Ok(())
}

// --- classic calls ------------------------------------------------------------------------------

pub fn pivot_root(new_root: &CStr, put_old: &CStr) -> SysResult<()> {
    check(unsafe { libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr()) })?;
    Ok(())
}

pub const CLOSE_RANGE_CLOEXEC: u32 = 1 << 2;

/// Marks every descriptor from `first` up close-on-exec.
pub fn cloexec_from(first: u32) -> SysResult<()> {
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, CLOSE_RANGE_CLOEXEC) })?;
    Ok(())
}

/// Closes every descriptor from `first` up.
pub fn close_from(first: u32) -> SysResult<()> {
    check(unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0u32) })?;
    Ok(())
}

/// Fork-style `clone`: both processes return, the child with 0. Only sound in a
/// single-threaded process, which is what the engine requires of its caller.
pub fn clone_fork(flags: libc::c_int) -> SysResult<libc::pid_t> {
    let ret = check(unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            std::ptr::null::<libc::c_void>(),
            std::ptr::null::<libc::c_int>(),
            std::ptr::null::<libc::c_int>(),
            0 as libc::c_ulong,
        )
    })?;
    Ok(ret as libc::pid_t)
}

/// A cgroup v2 directory of the host, opened for [`clone_into_cgroup`] (close-on-exec).
pub fn open_cgroup_dir(path: &std::path::Path) -> SysResult<OwnedFd> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| Errno::EINVAL)?;
    let fd = check(unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC) } as libc::c_long)?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `clone3` like [`clone_fork`], born inside the cgroup v2 directory `cgroup` (an open
/// directory descriptor) with `CLONE_INTO_CGROUP`: no migration afterwards, which would take the
/// kernel's cgroup write lock (and wait for an RCU grace period, milliseconds).
pub fn clone_into_cgroup(flags: libc::c_int, cgroup: RawFd) -> SysResult<libc::pid_t> {
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: flags as u32 as u64 | CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup as u64,
        ..Default::default()
    };
    let ret = check(unsafe { libc::syscall(libc::SYS_clone3, &args as *const CloneArgs, std::mem::size_of::<CloneArgs>()) })?;
    Ok(ret as libc::pid_t)
}

/// The number of threads of this process: procfs gives `/proc/self/task` one link per thread
/// plus two (one `stat` call, no parsing).
pub fn thread_count() -> Option<u32> {
    let md = std::fs::metadata("/proc/self/task").ok()?;
    Some(std::os::unix::fs::MetadataExt::nlink(&md).saturating_sub(2) as u32)
}

/// Start time of `pid` in clock ticks since boot (field 22 of /proc/PID/stat): with the pid,
/// the identity of a process that a recycled pid cannot fake. `None` when the process is gone
/// or a zombie (it has ended; only its exit status is left).
pub fn start_time(pid: libc::pid_t) -> Option<u64> {
    let mut buf = [0u8; 4096]; // 52 numbers and a name of at most 64 bytes
    let stat = read_small(&format!("/proc/{pid}/stat"), &mut buf)?;
    let after = &stat[stat.rfind(')')? + 2..];
    let mut fields = after.split_whitespace();
    if matches!(fields.next(), Some("Z") | Some("X") | Some("x")) {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// A small procfs file read whole into `buf` (one read where `fs::read_to_string` makes six
/// growing ones after a `statx`); None when it cannot be read, is not UTF-8 or does not fit.
pub fn read_small<'a>(path: &str, buf: &'a mut [u8]) -> Option<&'a str> {
    use std::io::Read;
    let mut f = std::fs::File::open(path).ok()?;
    let mut len = 0;
    loop {
        match f.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
        if len == buf.len() {
            return None;
        }
    }
    std::str::from_utf8(&buf[..len]).ok()
}

/// Zeroes this process's initial environment block (what `/proc/self/environ` shows), for a
/// process about to be seen from inside a context before its exec. The environment reads empty
/// afterwards: take what is needed from it first.
pub fn scrub_initial_environment() {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return };
    let Some(close) = stat.rfind(')') else { return };
    // Fields 50 and 51 (env_start, env_end); the first after the name is field 3.
    let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
    let (Some(start), Some(end)) = (fields.get(47).and_then(|v| v.parse::<usize>().ok()), fields.get(48).and_then(|v| v.parse::<usize>().ok()))
    else {
        return;
    };
    if start == 0 || end <= start || end - start > 1 << 20 {
        return;
    }
    for addr in start..end {
        // Safety: [env_start, env_end) is the block the kernel wrote onto our stack at exec
        // time, mapped and writable for as long as the process lives.
        unsafe { std::ptr::write_volatile(addr as *mut u8, 0) };
    }
}

/// `execveat(fd, "", argv, envp, AT_EMPTY_PATH)`: runs the program a descriptor refers to.
pub fn execveat_fd(fd: RawFd, argv: &[CString], envp: &[CString]) -> Errno {
    let argv_p: Vec<*const libc::c_char> =
        argv.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    let envp_p: Vec<*const libc::c_char> =
        envp.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            fd,
            c"".as_ptr(),
            argv_p.as_ptr(),
            envp_p.as_ptr(),
            libc::AT_EMPTY_PATH,
        );
    }
    Errno::last()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_small_file_is_read_whole_or_not_at_all() {
        let mut buf = [0u8; 4096];
        let whole = std::fs::read_to_string("/proc/self/cmdline").unwrap();
        assert_eq!(super::read_small("/proc/self/cmdline", &mut buf), Some(whole.as_str()));
        let mut tiny = [0u8; 4];
        assert_eq!(super::read_small("/proc/self/cmdline", &mut tiny), None, "a file larger than the buffer");
        assert_eq!(super::read_small("/proc/self/no-such-file", &mut buf), None);
        let me = std::process::id() as i32;
        assert!(super::start_time(me).is_some_and(|t| t > 0));
    }

    #[test]
    fn the_initial_environment_is_scrubbed() {
        assert!(std::fs::read("/proc/self/environ").unwrap().iter().any(|b| *b != 0), "the control: it has an environment");
        // In a child, so that the test process keeps its own (glibc's malloc is fork-safe).
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            super::scrub_initial_environment();
            let env = std::fs::read("/proc/self/environ").unwrap_or_default();
            let clean = !env.is_empty() && env.iter().all(|b| *b == 0);
            unsafe { libc::_exit(if clean { 0 } else { 1 }) };
        }
        let mut st = 0;
        unsafe { libc::waitpid(pid, &mut st, 0) };
        assert!(libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0, "status {st:#x}");
    }
}

/// A pidfd for `pid` (pidfd_open(2)): pins the process, polls readable once it has ended.
pub fn pidfd_open(pid: i32) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// The proleptic Gregorian date of a count of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}
