//! The seccomp denylist: the system calls that reach past a vserver into the host kernel's
//! shared state, denied with EPERM for every ABI of the machine (native, 32-bit, x32).
//!
//! The filter is compiled (libseccomp) by the parent before the context is cloned and loaded
//! as raw BPF by the child, so building a context costs no compile and the child sets no
//! `no_new_privs` (setuid programs such as `su` keep working inside; the bounding set caps them).

use std::io::{Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall};
use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Always denied: module loading, kexec, handles to host inodes, the kernel keyring (not
/// namespaced), eBPF and perf (kernel-wide), userfaultfd (a kernel-exploit primitive).
pub const ALWAYS_DENIED: &[&str] = &[
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "open_by_handle_at",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "lookup_dcookie",
    "uselib",
    "nfsservctl",
];

/// Denied with the paper's `lock` flag: no new contexts and no mounts from inside.
pub const LOCK_DENIED: &[&str] = &[
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "unshare",
    "setns",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
];

/// ioctl requests denied everywhere: TIOCSTI pushes input into another session's terminal,
/// TIOCLINUX reads and pastes the host's virtual console selection.
pub const DENIED_IOCTLS: &[(&str, u64)] = &[("TIOCSTI", libc::TIOCSTI as u64), ("TIOCLINUX", libc::TIOCLINUX as u64)];

/// Namespace flags that `clone` may not carry under `lock`.
const NS_FLAGS: &[u64] = &[
    libc::CLONE_NEWNS as u64,
    libc::CLONE_NEWCGROUP as u64,
    libc::CLONE_NEWUTS as u64,
    libc::CLONE_NEWIPC as u64,
    libc::CLONE_NEWUSER as u64,
    libc::CLONE_NEWPID as u64,
    libc::CLONE_NEWNET as u64,
    0x80, // CLONE_NEWTIME
];

#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("seccomp filter: {what}: {message}")]
pub struct SeccompError {
    pub what: String,
    pub message: String,
}

fn err<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> SeccompError + '_ {
    move |e| SeccompError { what: what.to_string(), message: e.to_string() }
}

/// A compiled filter: classic BPF instructions, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.
#[derive(Debug, Clone)]
pub struct Program {
    insns: Vec<libc::sock_filter>,
}

impl Program {
    pub fn len(&self) -> usize {
        self.insns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// Installs the filter on the calling thread. Needs CAP_SYS_ADMIN (no `no_new_privs` is set).
    pub fn load(&self) -> Result<(), Errno> {
        let prog = libc::sock_fprog { len: self.insns.len() as u16, filter: self.insns.as_ptr() as *mut _ };
        let r = unsafe {
            libc::syscall(libc::SYS_seccomp, 0 /* SECCOMP_SET_MODE_FILTER */, 0, &prog as *const libc::sock_fprog)
        };
        if r != 0 {
            return Err(Errno::last());
        }
        Ok(())
    }
}

/// Compiles the denylist; `lock` adds the paper's lock rules.
pub fn compile(lock: bool) -> Result<Program, SeccompError> {
    let eperm = ScmpAction::Errno(libc::EPERM);
    let mut ctx = ScmpFilterContext::new(ScmpAction::Allow).map_err(err("create"))?;
    for arch in [ScmpArch::X8664, ScmpArch::X86, ScmpArch::X32] {
        if ScmpArch::native() == ScmpArch::X8664 || arch == ScmpArch::native() {
            ctx.add_arch(arch).map_err(err("add architecture"))?;
        }
    }
    ctx.set_ctl_nnp(false).map_err(err("no_new_privs"))?;

    let mut names: Vec<&str> = ALWAYS_DENIED.to_vec();
    if lock {
        names.extend_from_slice(LOCK_DENIED);
    }
    for name in names {
        // A name the running architecture lacks (umount on x86_64) is skipped, not an error.
        let Ok(sys) = ScmpSyscall::from_name(name) else { continue };
        ctx.add_rule(eperm, sys).map_err(err(name))?;
    }

    let ioctl = ScmpSyscall::from_name("ioctl").map_err(err("ioctl"))?;
    for (name, request) in DENIED_IOCTLS {
        let cmp = ScmpArgCompare::new(1, ScmpCompareOp::MaskedEqual(0xffff_ffff), *request);
        ctx.add_rule_conditional(eperm, ioctl, &[cmp]).map_err(err(name))?;
    }

    if lock {
        let clone = ScmpSyscall::from_name("clone").map_err(err("clone"))?;
        for flag in NS_FLAGS {
            let cmp = ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(*flag), *flag);
            ctx.add_rule_conditional(eperm, clone, &[cmp]).map_err(err("clone flags"))?;
        }
        // clone3 passes its flags in memory, out of a filter's reach: answer ENOSYS so that
        // libc falls back to clone, whose flags the rules above see.
        if let Ok(clone3) = ScmpSyscall::from_name("clone3") {
            ctx.add_rule(ScmpAction::Errno(libc::ENOSYS), clone3).map_err(err("clone3"))?;
        }
    }

    // Export the BPF through a memfd: libseccomp 2.5 writes it to a descriptor.
    let fd = unsafe { libc::memfd_create(c"vserver-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(SeccompError { what: "memfd".into(), message: Errno::last().to_string() });
    }
    let mut file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    ctx.export_bpf(&file).map_err(err("export"))?;
    let mut bytes = Vec::new();
    file.rewind().map_err(err("rewind"))?;
    file.read_to_end(&mut bytes).map_err(err("read"))?;
    let _ = file.as_raw_fd();
    let n = std::mem::size_of::<libc::sock_filter>();
    let insns = bytes
        .chunks_exact(n)
        .map(|c| libc::sock_filter {
            code: u16::from_ne_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    Ok(Program { insns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_with_and_without_lock() {
        let plain = compile(false).unwrap();
        let locked = compile(true).unwrap();
        assert!(!plain.is_empty());
        assert!(locked.len() > plain.len(), "lock must add rules");
    }
}
