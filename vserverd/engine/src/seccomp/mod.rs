//! The seccomp denylist: the system calls that reach past a vserver into the host kernel's
//! shared state, denied with EPERM for every ABI of the machine (x86_64: native, i386, x32).
//!
//! The rules are in `rules.rs`; the build script compiles them with libseccomp into two BPF
//! programs (without and with the paper's `lock` rules) embedded in the binary. Loading one is
//! a single `seccomp(2)` call in the child, with no `no_new_privs`: setuid programs such as
//! `su` keep working inside, and the bounding set caps what they can gain.

use nix::errno::Errno;

mod rules;
pub use rules::{ALWAYS_DENIED, DENIED_IOCTLS, LOCK_DENIED, NS_FLAGS};

#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);

static PLAIN: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/seccomp-plain.bpf")));
static LOCK: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/seccomp-lock.bpf")));

/// A compiled filter: classic BPF instructions, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    bytes: &'static [u8],
}

/// The filter for a context: with `lock`, also no mounts and no new namespaces.
pub fn program(lock: bool) -> Program {
    Program { bytes: if lock { &LOCK.0 } else { &PLAIN.0 } }
}

impl Program {
    /// Number of BPF instructions.
    pub fn len(&self) -> usize {
        self.bytes.len() / std::mem::size_of::<libc::sock_filter>()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Installs the filter on the calling thread. Needs CAP_SYS_ADMIN (no `no_new_privs` is set).
    pub fn load(&self) -> Result<(), Errno> {
        let prog = libc::sock_fprog { len: self.len() as u16, filter: self.bytes.as_ptr() as *mut libc::sock_filter };
        const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
        let r = unsafe { libc::syscall(libc::SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0 as libc::c_uint, &prog as *const libc::sock_fprog) };
        if r != 0 {
            return Err(Errno::last());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_programs_are_embedded() {
        let plain = program(false);
        let locked = program(true);
        assert!(plain.len() > 10);
        assert!(locked.len() > plain.len(), "lock must add rules");
        assert_eq!(PLAIN.0.as_ptr() as usize % 8, 0, "BPF must be aligned for sock_filter");
    }

    #[test]
    fn lists_are_disjoint_and_name_the_required_calls() {
        for required in ["kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
            "open_by_handle_at", "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd"] {
            assert!(ALWAYS_DENIED.contains(&required), "{required}");
        }
        for required in ["mount", "umount2", "pivot_root", "unshare", "setns"] {
            assert!(LOCK_DENIED.contains(&required), "{required}");
        }
        assert!(ALWAYS_DENIED.iter().all(|n| !LOCK_DENIED.contains(n)));
    }
}
