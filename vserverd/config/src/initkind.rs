//! Which init a `fakeinit` vserver runs as pid 1, read from its root at each start: the signal
//! it obeys to shut down, and whether it says when it is ready.
//!
//! The root is hostile: its `/sbin/init` is resolved with `openat2(RESOLVE_IN_ROOT)`, so its
//! links are followed inside the root only, and nothing of it is executed or trusted beyond the
//! name of the file it leads to. A unified root is looked up in the vserver's own layer first,
//! then in its template.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::Path;

use vserver_engine::sys;

use crate::{Ready, VServerConfig};

/// What the vserver's pid 1 is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitKind {
    /// systemd: halts on SIGRTMIN+3, speaks sd_notify (`READY=1`).
    Systemd,
    /// sysvinit: halts on SIGPWR (see [`InitKind::stop_signal`]), says nothing when ready.
    SysV,
    /// Anything else (busybox init, a service run directly): SIGTERM, ready at its exec.
    Other,
    /// Not `fakeinit`: `vserver-init` runs the start command and says `READY=1` once it has
    /// exited 0.
    Rc,
}

impl InitKind {
    pub fn name(self) -> &'static str {
        match self {
            InitKind::Systemd => "systemd",
            InitKind::SysV => "sysvinit",
            InitKind::Other => "other",
            InitKind::Rc => "rc",
        }
    }

    /// The signal that asks it to shut down cleanly. systemd: SIGRTMIN+3 (halt.target).
    /// sysvinit: SIGPWR, a power failure; Debian's `/etc/inittab` answers it with its
    /// `powerwait`/`powerfailnow` entries, which `vserverctl build` points at `/sbin/init 0`
    /// (LXC's `lxc.signal.halt` is SIGPWR for the same reason). `vserver-init` and the rest:
    /// SIGTERM.
    pub fn stop_signal(self) -> i32 {
        match self {
            InitKind::Systemd => libc::SIGRTMIN() + 3,
            InitKind::SysV => libc::SIGPWR,
            InitKind::Other | InitKind::Rc => libc::SIGTERM,
        }
    }

    /// When a start of it is done, unless the configuration says.
    pub fn ready(self) -> Ready {
        match self {
            InitKind::Systemd | InitKind::Rc => Ready::Notify,
            InitKind::SysV | InitKind::Other => Ready::Exec,
        }
    }
}

/// The signal that stops the pid 1 of `cfg` (of kind `kind`) cleanly: `init.stop_signal` for a
/// real init (`fakeinit`), else its kind's.
pub fn stop_signal(cfg: &VServerConfig, kind: InitKind) -> i32 {
    cfg.init.stop_signal.filter(|_| cfg.fakeinit).unwrap_or(kind.stop_signal())
}

/// The kind of init `cfg` starts.
pub fn detect(cfg: &VServerConfig) -> InitKind {
    if !cfg.fakeinit {
        return InitKind::Rc;
    }
    let Some(program) = cfg.init.command.first().filter(|p| p.starts_with('/')) else {
        return InitKind::Other;
    };
    let layers: Vec<&Path> = match &cfg.unified {
        Some(u) => vec![u.upper.as_path(), u.lower.as_path()],
        None => vec![cfg.root.as_path()],
    };
    for layer in layers {
        let Ok(root) = sys::openat2(cwd(), &layer.display().to_string(), libc::O_PATH | libc::O_DIRECTORY, 0, 0) else {
            continue;
        };
        if let Some(kind) = kind_in(root.as_fd(), program) {
            return kind;
        }
    }
    InitKind::Other
}

fn cwd() -> BorrowedFd<'static> {
    unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) }
}

/// The kind of `program` inside the root `root`; `None` when it is not there.
pub fn kind_in(root: BorrowedFd<'_>, program: &str) -> Option<InitKind> {
    let resolve = sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS;
    let target = sys::openat2(root, program.trim_start_matches('/'), libc::O_PATH, 0, resolve).ok()?;
    // The file the links led to, named by the kernel.
    let path = std::fs::read_link(format!("/proc/self/fd/{}", target.as_raw_fd())).ok()?;
    let file = path.file_name()?.to_str()?;
    if file == "systemd" {
        return Some(InitKind::Systemd);
    }
    let inittab = sys::openat2(root, "etc/inittab", libc::O_PATH, 0, resolve).is_ok();
    Some(if file == "init" && inittab { InitKind::SysV } else { InitKind::Other })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn open(p: &Path) -> std::os::fd::OwnedFd {
        sys::openat2(cwd(), &p.display().to_string(), libc::O_PATH | libc::O_DIRECTORY, 0, 0).unwrap()
    }

    #[test]
    fn follows_links_inside_the_root_only() {
        let dir = std::env::temp_dir().join(format!("vserverd-initkind-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for d in ["sd/sbin", "sd/lib/systemd", "sysv/sbin", "sysv/etc", "bb/sbin", "bb/bin", "out/sbin"] {
            std::fs::create_dir_all(dir.join(d)).unwrap();
        }
        // systemd-sysv: /sbin/init -> /lib/systemd/systemd (absolute: it must resolve in the root).
        std::fs::write(dir.join("sd/lib/systemd/systemd"), b"").unwrap();
        symlink("/lib/systemd/systemd", dir.join("sd/sbin/init")).unwrap();
        // sysvinit-core: a file of its own, and /etc/inittab.
        std::fs::write(dir.join("sysv/sbin/init"), b"").unwrap();
        std::fs::write(dir.join("sysv/etc/inittab"), b"").unwrap();
        // busybox: /sbin/init -> ../bin/busybox.
        std::fs::write(dir.join("bb/bin/busybox"), b"").unwrap();
        symlink("../bin/busybox", dir.join("bb/sbin/init")).unwrap();
        // A link that would lead to the host's systemd if it were followed on the host.
        std::fs::create_dir_all(dir.join("hostlike/lib/systemd")).unwrap();
        std::fs::write(dir.join("hostlike/lib/systemd/systemd"), b"").unwrap();
        symlink(dir.join("hostlike/lib/systemd/systemd"), dir.join("out/sbin/init")).unwrap();

        assert_eq!(kind_in(open(&dir.join("sd")).as_fd(), "/sbin/init"), Some(InitKind::Systemd));
        assert_eq!(kind_in(open(&dir.join("sysv")).as_fd(), "/sbin/init"), Some(InitKind::SysV));
        assert_eq!(kind_in(open(&dir.join("bb")).as_fd(), "/sbin/init"), Some(InitKind::Other));
        // The absolute link resolves inside `out`, where it leads nowhere.
        assert_eq!(kind_in(open(&dir.join("out")).as_fd(), "/sbin/init"), None);
        assert_eq!(kind_in(open(&dir.join("sd")).as_fd(), "/sbin/missing"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn signals_and_readiness_by_kind() {
        assert_eq!(InitKind::Systemd.stop_signal(), libc::SIGRTMIN() + 3);
        assert_eq!(InitKind::SysV.stop_signal(), libc::SIGPWR);
        assert_eq!(InitKind::Other.stop_signal(), libc::SIGTERM);
        assert_eq!(InitKind::Systemd.ready(), Ready::Notify);
        assert_eq!(InitKind::Rc.ready(), Ready::Notify);
        assert_eq!(InitKind::Other.ready(), Ready::Exec);
    }
}
