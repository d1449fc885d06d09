//! The vserver's filesystem view: its root pivoted into place with the host's root detached,
//! and the kernel filesystems a distribution expects (`/proc`, `/sys`, `/dev`).
//!
//! The root's contents are hostile. Every path inside it is opened with `openat2` refusing
//! symbolic links, and every mount is attached to a descriptor (`move_mount`), never to a path
//! that could be swapped. Most of the work happens after `pivot_root`, when the host's tree is
//! already out of reach: a link there can only point back into the vserver.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

use crate::error::{SetupError, Step, StepExt};
use crate::plan::{BindMount, LaunchPlan, OverlayPlan};
use crate::sys::{self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};

/// `/proc` entries made read-only: kernel tunables and triggers shared with the host.
pub const PROC_READONLY: &[&str] = &["bus", "fs", "irq", "sys", "sysrq-trigger"];
/// `/proc` files hidden behind `/dev/null`: kernel memory, keys, timers, scheduler internals.
pub const PROC_MASKED_FILES: &[&str] =
    &["kcore", "keys", "key-users", "timer_list", "timer_stats", "sched_debug", "latency_stats", "kpagecount", "kpageflags", "kpagecgroup"];
/// `/proc` and `/sys` directories hidden behind an empty read-only tmpfs.
pub const MASKED_DIRS: &[&str] = &["proc/acpi", "proc/asound", "proc/scsi", "sys/firmware", "sys/devices/virtual/powercap"];

/// Host objects opened before the pivot, attached after it.
pub struct HostMounts {
    console: Option<OwnedFd>,
    binds: Vec<(OwnedFd, BindMount)>,
    /// The binds came idmapped from the parent with their attributes set.
    binds_ready: bool,
    /// The new procfs and sysfs, made while the host's are still in this mount namespace: in a
    /// user namespace the kernel allows them only next to fully visible ones.
    proc: OwnedFd,
    sys: OwnedFd,
    /// In a user namespace (where no device node can be made): the host's nodes, bound.
    devices: Vec<(&'static str, OwnedFd)>,
}

/// What the parent made for a context in a user namespace ([`crate::userns`]): idmapped trees
/// (only root of the host may idmap a disk filesystem) and, for a context on the host's
/// network, a sysfs (which only an owner of the network namespace may mount).
#[derive(Default)]
pub struct UserTrees {
    /// The root, idmapped (none for a unified root: its layers are).
    pub root: Option<OwnedFd>,
    /// A unified root's template (read-only) and the directory holding `upper` and `work`.
    pub layers: Option<(OwnedFd, OwnedFd)>,
    /// The plan's bind mounts, in order, with their attributes set.
    pub binds: Vec<OwnedFd>,
    pub sys: Option<OwnedFd>,
}

/// A user-namespace root between its two halves: what was opened while the child was still
/// the host's root, for what it does as root of its namespace.
pub enum StagedRoot {
    /// The idmapped root, attached over the root directory: the new root's top.
    Plain(OwnedFd),
    /// A unified root: handles of the template, upper and work directories (through their
    /// idmapped mounts) and of the root directory the overlay goes on.
    Unified { lower: OwnedFd, upper: OwnedFd, work: OwnedFd, target: OwnedFd },
}

/// Steps `bind-root` / `overlay` in a user namespace, first half, while the child still has the
/// host's uid 0 (the owner of the roots' base, mode 0700, which root of the namespace may not
/// cross): the parent's idmapped trees attached over their host paths, in this mount namespace
/// only, and the handles the second half needs.
pub fn stage_user_root(root: &Path, overlay: Option<&OverlayPlan>, u: &mut UserTrees) -> Result<StagedRoot, SetupError> {
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    let open = |path: &Path, step: Step| {
        let p = path.display().to_string();
        sys::openat2(cwd, &p, libc::O_PATH | libc::O_DIRECTORY, 0, 0).step(step, &p)
    };
    let attach = |tree: &OwnedFd, path: &Path, step: Step| -> Result<(), SetupError> {
        let target = open(path, step)?;
        sys::move_mount_to_fd(tree.as_fd(), target.as_fd()).step(step, &path.display().to_string())
    };
    match (overlay, u.layers.take(), u.root.take()) {
        (Some(o), Some((template, own)), _) => {
            attach(&template, &o.lower, Step::Overlay)?;
            attach(&own, o.upper.parent().unwrap_or(Path::new("/")), Step::Overlay)?;
            Ok(StagedRoot::Unified {
                lower: open(&o.lower, Step::Overlay)?,
                upper: open(&o.upper, Step::Overlay)?,
                work: open(&o.work, Step::Overlay)?,
                target: open(root, Step::Overlay)?,
            })
        }
        (None, _, Some(tree)) => {
            attach(&tree, root, Step::BindRoot)?;
            Ok(StagedRoot::Plain(tree))
        }
        _ => Err(SetupError::detail(Step::BindRoot, Some(root.display().to_string()), "the parent sent no idmapped root")),
    }
}

/// Second half, as root of the namespace: a unified root's overlay, mounted here (overlayfs
/// acts with its mounter's ids, which must be the namespace's) from the handles, and attached
/// on the root directory. Returns the new root's top, for [`pivot_to`].
pub fn finish_user_root(staged: StagedRoot) -> Result<OwnedFd, SetupError> {
    match staged {
        StagedRoot::Plain(top) => Ok(top),
        StagedRoot::Unified { lower, upper, work, target } => {
            // The handles by their /proc/self/fd names: no directory above them is crossed.
            let name = |fd: &OwnedFd| format!("/proc/self/fd/{}", fd.as_raw_fd());
            let (l, u, w) = (name(&lower), name(&upper), name(&work));
            let opts = [("lowerdir", Some(l.as_str())), ("upperdir", Some(u.as_str())), ("workdir", Some(w.as_str())), ("userxattr", None)];
            let mnt = sys::fs_create("overlay", &opts, 0).map_err(|e| SetupError::new(Step::Overlay, Some("overlay".into()), e))?;
            sys::move_mount_to_fd(mnt.as_fd(), target.as_fd()).step(Step::Overlay, "root")?;
            Ok(mnt)
        }
    }
}

/// Step `pivot-root` onto a root given by a handle of its top mount.
pub fn pivot_to(top: BorrowedFd<'_>) -> Result<(), SetupError> {
    nix::unistd::fchdir(top.as_raw_fd()).step(Step::PivotRoot, "root")?;
    pivot_here("root")
}

/// pivot_root into the current directory, the old root detached at once.
fn pivot_here(shown: &str) -> Result<(), SetupError> {
    sys::pivot_root(c".", c".").step(Step::PivotRoot, shown)?;
    nix::mount::umount2(".", nix::mount::MntFlags::MNT_DETACH).step(Step::PivotRoot, "old root")?;
    nix::unistd::chdir("/").step(Step::PivotRoot, "/")
}

/// Step `mount-private`: nothing we mount propagates to the host, nothing the host mounts
/// later appears here.
pub fn make_private() -> Result<(), SetupError> {
    mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
        .step(Step::MountPrivate, "/")
}

/// Step `overlay`: a unified vserver's root, an overlay of its template (lower, never written)
/// and its own directory (upper), attached on the root directory in this private mount
/// namespace only: the host never sees it, and it goes away with the namespace. The paths come
/// from the host's configuration (trusted); the target is attached by descriptor.
pub fn mount_overlay(root: &Path, o: &OverlayPlan) -> Result<(), SetupError> {
    let p = root.display().to_string();
    let (lower, upper, work) = (o.lower.display().to_string(), o.upper.display().to_string(), o.work.display().to_string());
    let mnt = sys::fs_create("overlay", &[("lowerdir", Some(&lower)), ("upperdir", Some(&upper)), ("workdir", Some(&work))], 0)
        .map_err(|e| {
            SetupError::new(Step::Overlay, Some(p.clone()), e)
                .with_detail(format!("overlay of {lower} (template) under {upper}, work {work}"))
        })?;
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    let target = sys::openat2(cwd, &p, libc::O_PATH | libc::O_DIRECTORY, 0, 0).step(Step::Overlay, &p)?;
    sys::move_mount_to_fd(mnt.as_fd(), target.as_fd()).step(Step::Overlay, &p)
}

/// Step `bind-root`: the root becomes a mount point of its own (pivot_root needs one).
pub fn bind_root(root: &Path) -> Result<(), SetupError> {
    let p = root.display().to_string();
    mount(Some(root), root, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>).step(Step::BindRoot, &p)
}

/// Step `open-host-mounts`: detached copies of the host trees to bind in (the console pty and
/// the config's mounts), taken while the host's tree is still reachable.
/// In a user namespace, `user` holds what the parent made: the binds and maybe a sysfs.
pub fn open_host_mounts(plan: &LaunchPlan, user: Option<&mut UserTrees>) -> Result<HostMounts, SetupError> {
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    let console = match &plan.console {
        Some(p) => {
            let s = p.display().to_string();
            Some(sys::open_tree_clone(cwd, &s, false).step(Step::OpenHostMounts, &s)?)
        }
        None => None,
    };
    let in_userns = user.is_some();
    let (mut binds, mut sys_tree, mut devices) = (Vec::new(), None, Vec::new());
    match user {
        Some(u) => {
            binds = std::mem::take(&mut u.binds).into_iter().zip(plan.mounts.iter().cloned()).collect();
            sys_tree = u.sys.take();
            for (name, _, _) in DEVICES {
                let path = format!("/dev/{name}");
                devices.push((*name, sys::open_tree_clone(cwd, &path, false).step(Step::OpenHostMounts, &path)?));
            }
        }
        None => {
            for b in &plan.mounts {
                let s = b.source.display().to_string();
                binds.push((sys::open_tree_clone(cwd, &s, true).step(Step::OpenHostMounts, &s)?, b.clone()));
            }
        }
    }
    let proc = sys::fs_create("proc", &[], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC).step(Step::Proc, "/proc")?;
    let sys = match sys_tree {
        Some(t) => t,
        None => sys::fs_create("sysfs", &[], MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC).step(Step::Sys, "/sys")?,
    };
    Ok(HostMounts { console, binds, binds_ready: in_userns, proc, sys, devices })
}

/// Step `pivot-root`: the root becomes `/` and the host's root is detached at once (the
/// pivot_root(".", ".") form leaves no directory through which it could be reached).
pub fn pivot(root: &Path) -> Result<(), SetupError> {
    let p = root.display().to_string();
    nix::unistd::chdir(root).step(Step::PivotRoot, &p)?;
    pivot_here(&p)
}

/// The new root, as a handle.
pub fn open_root() -> Result<OwnedFd, SetupError> {
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    sys::openat2(cwd, "/", libc::O_PATH | libc::O_DIRECTORY, 0, 0).step(Step::PivotRoot, "/")
}

/// Opens (creating if missing) a mount point directory directly under the root; a symbolic
/// link there is refused, whatever it points to.
fn mount_point(root: BorrowedFd<'_>, name: &str, step: Step) -> Result<OwnedFd, SetupError> {
    sys::ensure_dir(root, name, 0o755).map_err(|e| {
        let err = SetupError::new(step, Some(format!("/{name}")), e);
        if e == Errno::ELOOP || e == Errno::ENOTDIR {
            err.with_detail("the vserver's path is a symbolic link or not a directory; refused")
        } else {
            err
        }
    })
}

/// Step `proc`: a procfs of the new PID namespace.
pub fn mount_proc(root: BorrowedFd<'_>, host: &HostMounts) -> Result<(), SetupError> {
    let target = mount_point(root, "proc", Step::Proc)?;
    sys::move_mount_to_fd(host.proc.as_fd(), target.as_fd()).step(Step::Proc, "/proc")
}

/// Step `proc` for a context that keeps the caller's root (chcontext): the new procfs covers
/// the host's `/proc` in this private mount namespace only.
pub fn remount_proc_in_place() -> Result<(), SetupError> {
    let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(Some("proc"), "/proc", Some("proc"), flags, None::<&str>).step(Step::Proc, "/proc")
}

/// Step `sys`: sysfs, read-only.
pub fn mount_sys(root: BorrowedFd<'_>, host: &HostMounts) -> Result<(), SetupError> {
    let target = mount_point(root, "sys", Step::Sys)?;
    sys::move_mount_to_fd(host.sys.as_fd(), target.as_fd()).step(Step::Sys, "/sys")
}

const DEVICES: &[(&str, u64, u64)] =
    &[("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0)];
const DEV_LINKS: &[(&str, &str)] = &[
    ("ptmx", "pts/ptmx"),
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

fn cname(name: &str) -> CString {
    CString::new(name).expect("static names have no NUL")
}

/// Steps `dev` and `devpts`: a tmpfs `/dev` with the safe nodes only, its own devpts instance
/// (a vserver sees only its own ptys), `/dev/shm`, `/dev/mqueue` and the console.
pub fn mount_dev(root: BorrowedFd<'_>, host: &mut HostMounts) -> Result<(), SetupError> {
    let target = mount_point(root, "dev", Step::Dev)?;
    let mnt = sys::fs_create("tmpfs", &[("mode", Some("0755")), ("size", Some("1m")), ("nr_inodes", Some("4096"))], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC)
        .step(Step::Dev, "/dev")?;
    sys::move_mount_to_fd(mnt.as_fd(), target.as_fd()).step(Step::Dev, "/dev")?;
    drop(target);
    // The handle of the tmpfs now on top of /dev.
    let dev = sys::open_dir_strict(root, "dev").step(Step::Dev, "/dev")?;
    let d = dev.as_raw_fd();

    if host.devices.is_empty() {
        for (name, major, minor) in DEVICES {
            let c = cname(name);
            if unsafe { libc::mknodat(d, c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(*major as u32, *minor as u32)) } != 0 {
                return Err(SetupError::new(Step::Dev, Some(format!("/dev/{name}")), Errno::last()));
            }
        }
    }
    // In a user namespace: an empty file for each, the host's node bound on it.
    for (name, node) in host.devices.drain(..) {
        bind_on_new_file(dev.as_fd(), name, 0o666, node.as_fd())?;
    }
    for (name, to) in DEV_LINKS {
        let (c, t) = (cname(name), CString::new(*to).expect("static"));
        if unsafe { libc::symlinkat(t.as_ptr(), d, c.as_ptr()) } != 0 {
            return Err(SetupError::new(Step::Dev, Some(format!("/dev/{name}")), Errno::last()));
        }
    }
    for (name, mode) in [("pts", 0o755), ("shm", 0o1777), ("mqueue", 0o1777)] {
        let c = cname(name);
        if unsafe { libc::mkdirat(d, c.as_ptr(), mode) } != 0 {
            return Err(SetupError::new(Step::Dev, Some(format!("/dev/{name}")), Errno::last()));
        }
        // mkdirat honours the umask; set the exact mode (the sticky bit of shm and mqueue).
        unsafe { libc::fchmodat(d, c.as_ptr(), mode, 0) };
    }

    let pts = sys::open_dir_strict(dev.as_fd(), "pts").step(Step::DevPts, "/dev/pts")?;
    let devpts = sys::fs_create(
        "devpts",
        &[("newinstance", None), ("ptmxmode", Some("0666")), ("mode", Some("0620")), ("gid", Some("5"))],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
    )
    .step(Step::DevPts, "/dev/pts")?;
    sys::move_mount_to_fd(devpts.as_fd(), pts.as_fd()).step(Step::DevPts, "/dev/pts")?;

    for (name, fstype, opts, attrs) in [
        ("shm", "tmpfs", &[("mode", Some("1777")), ("size", Some("64m"))][..], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV),
        ("mqueue", "mqueue", &[][..], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC),
    ] {
        let path = format!("/dev/{name}");
        let t = sys::open_dir_strict(dev.as_fd(), name).step(Step::Dev, &path)?;
        let m = sys::fs_create(fstype, opts, attrs).step(Step::Dev, &path)?;
        sys::move_mount_to_fd(m.as_fd(), t.as_fd()).step(Step::Dev, &path)?;
    }

    // /dev/console: the monitor's pty when there is one, else /dev/null.
    let src = match host.console.take() {
        Some(t) => t,
        None => sys::open_tree_clone(dev.as_fd(), "null", false).step(Step::Dev, "/dev/null")?,
    };
    bind_on_new_file(dev.as_fd(), "console", 0o600, src.as_fd())
}

/// `/dev/NAME`: a new empty file (mode `mode`) in the vserver's `/dev`, with the detached tree
/// `node` (a host device node, the console pty) attached on it.
fn bind_on_new_file(dev: BorrowedFd<'_>, name: &str, mode: libc::mode_t, node: BorrowedFd<'_>) -> Result<(), SetupError> {
    let path = format!("/dev/{name}");
    let c = cname(name);
    let fd = unsafe { libc::openat(dev.as_raw_fd(), c.as_ptr(), libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_CLOEXEC, mode) };
    if fd < 0 {
        return Err(SetupError::new(Step::Dev, Some(path), Errno::last()));
    }
    unsafe { libc::close(fd) };
    let tgt = sys::openat2(dev, name, libc::O_PATH | libc::O_NOFOLLOW, 0, sys::STRICT).step(Step::Dev, &path)?;
    sys::move_mount_to_fd(node, tgt.as_fd()).step(Step::Dev, &path)
}

/// Step `proc-restrict`: kernel tunables read-only, kernel internals masked, in the new procfs
/// and sysfs (both ours, so their paths are trustworthy).
pub fn restrict_proc(root: BorrowedFd<'_>) -> Result<(), SetupError> {
    let proc = sys::open_dir_strict(root, "proc").step(Step::ProcRestrict, "/proc")?;
    for name in PROC_READONLY {
        let path = format!("/proc/{name}");
        let tree = match sys::open_tree_clone(proc.as_fd(), name, true) {
            Ok(t) => t,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(SetupError::new(Step::ProcRestrict, Some(path), e)),
        };
        sys::mount_setattr(tree.as_fd(), MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC, 0, true)
            .step(Step::ProcRestrict, &path)?;
        let target = sys::openat2(proc.as_fd(), name, libc::O_PATH | libc::O_NOFOLLOW, 0, sys::STRICT)
            .step(Step::ProcRestrict, &path)?;
        sys::move_mount_to_fd(tree.as_fd(), target.as_fd()).step(Step::ProcRestrict, &path)?;
    }
    let null = sys::openat2(root, "dev/null", libc::O_PATH | libc::O_NOFOLLOW, 0, sys::STRICT)
        .step(Step::ProcRestrict, "/dev/null")?;
    for name in PROC_MASKED_FILES {
        let path = format!("/proc/{name}");
        let target = match sys::openat2(proc.as_fd(), name, libc::O_PATH | libc::O_NOFOLLOW, 0, sys::STRICT) {
            Ok(t) => t,
            Err(Errno::ENOENT) => continue,
            Err(e) => return Err(SetupError::new(Step::ProcRestrict, Some(path), e)),
        };
        let tree = sys::open_tree_clone(null.as_fd(), "", false).step(Step::ProcRestrict, &path)?;
        sys::move_mount_to_fd(tree.as_fd(), target.as_fd()).step(Step::ProcRestrict, &path)?;
    }
    // One empty tmpfs for all of them (a superblock costs kernel memory): made for the first,
    // bound from there onto the others.
    let sealed = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    let mut empty: Option<OwnedFd> = None;
    for rel in MASKED_DIRS {
        let path = format!("/{rel}");
        let target = match sys::open_dir_strict(root, rel) {
            Ok(t) => t,
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => continue,
            Err(e) => return Err(SetupError::new(Step::ProcRestrict, Some(path), e)),
        };
        let m = match &empty {
            None => sys::fs_create("tmpfs", &[("size", Some("0")), ("nr_inodes", Some("1"))], sealed),
            Some(first) => sys::open_tree_clone(first.as_fd(), "", false)
                .and_then(|t| sys::mount_setattr(t.as_fd(), sealed, 0, false).map(|_| t)),
        }
        .step(Step::ProcRestrict, &path)?;
        sys::move_mount_to_fd(m.as_fd(), target.as_fd()).step(Step::ProcRestrict, &path)?;
        if empty.is_none() {
            // The handle of the tmpfs now on top of the first one.
            empty = Some(sys::open_dir_strict(root, rel).step(Step::ProcRestrict, &path)?);
        }
    }
    Ok(())
}

/// Opens the directory `target` inside the root (created when missing, mode 0755), one
/// component at a time, refusing any symbolic link or non-directory on the way.
fn target_dir(root: BorrowedFd<'_>, target: &str, step: Step) -> Result<OwnedFd, SetupError> {
    let mut dir = sys::open_dir_strict(root, ".").step(step, "/")?;
    for part in Path::new(target.trim_start_matches('/')).iter() {
        let name = std::str::from_utf8(part.as_bytes())
            .map_err(|_| SetupError::detail(step, Some(target.to_string()), "target is not UTF-8"))?;
        if name == ".." {
            return Err(SetupError::detail(step, Some(target.to_string()), "target may not contain '..'"));
        }
        dir = sys::ensure_dir(dir.as_fd(), name, 0o755).map_err(|e| {
            SetupError::new(step, Some(target.to_string()), e)
                .with_detail("the target path holds a symbolic link or a non-directory; refused")
        })?;
    }
    Ok(dir)
}

/// Step `cgroup`: the guest's own cgroup tree at `/sys/fs/cgroup`. A cgroup2 superblock mounted
/// from inside the new cgroup namespace has that namespace's root as its root: the cgroup the
/// parent placed pid 1 in, below the one holding the vserver's limits. Writable (a real init
/// makes its slices and scopes there); the read-only sysfs below it stays read-only.
pub fn mount_cgroup(root: BorrowedFd<'_>) -> Result<(), SetupError> {
    let target = sys::open_dir_strict(root, "sys/fs/cgroup").step(Step::Cgroup, "/sys/fs/cgroup")?;
    let mnt = sys::fs_create("cgroup2", &[], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
        .step(Step::Cgroup, "/sys/fs/cgroup")?;
    sys::move_mount_to_fd(mnt.as_fd(), target.as_fd()).step(Step::Cgroup, "/sys/fs/cgroup")
}

/// A fresh tmpfs on `target` (a directory handle), with systemd's own limits for it.
fn tmpfs_on(target: BorrowedFd<'_>, opts: &[(&str, Option<&str>)], attrs: u64, step: Step, path: &str) -> Result<(), SetupError> {
    let mnt = sys::fs_create("tmpfs", opts, attrs).step(step, path)?;
    sys::move_mount_to_fd(mnt.as_fd(), target).step(step, path)
}

/// Step `run`: `/run` a fresh tmpfs (0755) and `/run/lock` another (1777, noexec, 5 MiB), as
/// systemd mounts them on a host: a real init expects an empty `/run` at every boot.
pub fn mount_run(root: BorrowedFd<'_>) -> Result<(), SetupError> {
    let run = mount_point(root, "run", Step::Run)?;
    tmpfs_on(run.as_fd(), &[("mode", Some("0755")), ("size", Some("20%")), ("nr_inodes", Some("800k"))], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, Step::Run, "/run")?;
    drop(run);
    // The new tmpfs is ours: its paths are trustworthy.
    let run = sys::open_dir_strict(root, "run").step(Step::Run, "/run")?;
    let lock = sys::ensure_dir(run.as_fd(), "lock", 0o755).step(Step::Run, "/run/lock")?;
    tmpfs_on(
        lock.as_fd(),
        &[("mode", Some("1777")), ("size", Some("5m"))],
        MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        Step::Run,
        "/run/lock",
    )
}

/// Step `tmpfs`: the plan's tmpfs mounts (`/tmp`), each a fresh tmpfs (1777, nosuid, nodev,
/// at most half the memory, as systemd's `tmp.mount`) on a target opened without following
/// any of the vserver's links.
pub fn mount_tmpfs(root: BorrowedFd<'_>, targets: &[String]) -> Result<(), SetupError> {
    for t in targets {
        let dir = target_dir(root, t, Step::Tmpfs)?;
        tmpfs_on(dir.as_fd(), &[("mode", Some("1777")), ("size", Some("50%")), ("nr_inodes", Some("1m"))], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, Step::Tmpfs, t)?;
    }
    Ok(())
}

/// Step `bind-mounts`: the config's host directories, each attached to a target opened inside
/// the vserver without following any link (created when missing).
pub fn attach_binds(root: BorrowedFd<'_>, host: &mut HostMounts) -> Result<(), SetupError> {
    for (tree, bind) in host.binds.drain(..) {
        let dir = target_dir(root, &bind.target, Step::BindMounts)?;
        if host.binds_ready {
            // Idmapped by the parent, which set the attributes (the tree is not ours to change).
        } else if bind.readonly {
            sys::mount_setattr(tree.as_fd(), MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, true)
                .step(Step::BindMounts, &bind.target)?;
        } else {
            sys::mount_setattr(tree.as_fd(), MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV, 0, true).step(Step::BindMounts, &bind.target)?;
        }
        sys::move_mount_to_fd(tree.as_fd(), dir.as_fd()).step(Step::BindMounts, &bind.target)?;
    }
    Ok(())
}
