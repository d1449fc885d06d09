//! The seccomp denylist: the system calls that reach past a vserver into the host kernel's
//! shared state, denied with EPERM for every ABI of the machine (x86_64: native, i386, x32).
//!
//! The rules are in `rules.rs`; the build script compiles them with libseccomp into three BPF
//! programs embedded in the binary:
//!
//! - the default: no user namespaces (`unshare` and `clone` with CLONE_NEWUSER fail with EPERM,
//!   `clone3` with ENOSYS, so that libc falls back to `clone`), as Docker's default profile;
//! - `nest`: user namespaces allowed, for nested containers;
//! - `lock` (the paper's flag): no new namespaces at all and no mounts.
//!
//! Loading one is a single `seccomp(2)` call in the child, with no `no_new_privs`: setuid
//! programs such as `su` keep working inside, and the bounding set caps what they can gain. The
//! engine makes every namespace of a context before it loads the filter, as the last step
//! before the exec; a process that joins a context (`enter`, `exec`, `chcontext --ctx`) loads the
//! context's own filter, chosen by the flags in its registry entry.

use nix::errno::Errno;

use crate::plan::Flags;

mod rules;
pub use rules::{ALWAYS_DENIED, DENIED_IOCTLS, LOCK_DENIED, NS_FLAGS, USERNS_FLAG};

#[repr(C, align(8))]
struct Aligned<T: ?Sized>(T);

static PLAIN: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/seccomp-plain.bpf")));
static NEST: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/seccomp-nest.bpf")));
static LOCK: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/seccomp-lock.bpf")));

/// A compiled filter: classic BPF instructions, ready for `seccomp(SECCOMP_SET_MODE_FILTER)`.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    bytes: &'static [u8],
}

/// The filter for a context: by default no user namespaces; with `nest`, user namespaces
/// allowed; with `lock`, no mounts and no new namespaces (`lock` wins over `nest`, a pair
/// [`Flags::check`] refuses).
pub fn program(flags: &Flags) -> Program {
    let bytes: &'static [u8] = if flags.lock {
        &LOCK.0
    } else if flags.nest {
        &NEST.0
    } else {
        &PLAIN.0
    };
    Program { bytes }
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

    fn flags(names: &[&str]) -> Flags {
        let mut f = Flags::default();
        for n in names {
            f.set(n).unwrap();
        }
        f
    }

    #[test]
    fn the_three_programs_are_embedded() {
        let plain = program(&Flags::default());
        let nest = program(&flags(&["nest"]));
        let locked = program(&flags(&["lock"]));
        assert!(nest.len() > 10);
        assert!(plain.len() > nest.len(), "the default must add the user namespace rules");
        assert!(locked.len() > plain.len(), "lock must add rules");
        assert_eq!(program(&flags(&["lock", "nest"])).bytes.as_ptr(), locked.bytes.as_ptr(), "lock wins");
        for p in [&PLAIN.0, &NEST.0, &LOCK.0] {
            assert_eq!(p.as_ptr() as usize % 8, 0, "BPF must be aligned for sock_filter");
        }
    }

    /// Runs `calls` in a forked child under `prog` (loaded with `no_new_privs`, so no privilege
    /// is needed) and returns each call's result: the value, or minus the errno.
    fn under(prog: Program, calls: &[(libc::c_long, libc::c_ulong, libc::c_ulong)]) -> Vec<i64> {
        let mut fds = [0; 2];
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let mut out = [0i64; 8];
            let ok = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } == 0 && prog.load().is_ok();
            for (i, (nr, a, b)) in calls.iter().enumerate() {
                let r = if ok { unsafe { libc::syscall(*nr, *a, *b) } } else { -1 };
                out[i] = if r < 0 { -(Errno::last() as i64) } else { r };
                if r > 0 && (*nr == libc::SYS_clone || *nr == libc::SYS_clone3) {
                    unsafe { libc::waitpid(r as i32, std::ptr::null_mut(), 0) };
                }
                if r == 0 && (*nr == libc::SYS_clone || *nr == libc::SYS_clone3) {
                    unsafe { libc::_exit(0) };
                }
            }
            if !ok {
                out[7] = 1;
            }
            unsafe {
                libc::write(fds[1], out.as_ptr() as *const libc::c_void, std::mem::size_of_val(&out));
                libc::_exit(0);
            }
        }
        unsafe { libc::close(fds[1]) };
        let mut out = [0i64; 8];
        let n = unsafe { libc::read(fds[0], out.as_mut_ptr() as *mut libc::c_void, std::mem::size_of_val(&out)) };
        unsafe {
            libc::close(fds[0]);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        assert_eq!(n as usize, std::mem::size_of_val(&out), "the child reported");
        assert_eq!(out[7], 0, "the child could not load the filter");
        out[..calls.len()].to_vec()
    }

    #[test]
    fn user_namespaces_are_refused_by_default_and_allowed_with_nest() {
        // Calls the kernel refuses with EINVAL once past the filter, so that nothing is made:
        // unshare with an unknown flag bit beside CLONE_NEWUSER, clone with CLONE_NEWUSER and
        // CLONE_FS (an invalid pair), clone3 with a size of 0. EPERM is the filter's answer.
        let user = USERNS_FLAG as libc::c_ulong;
        let calls = [
            (libc::SYS_unshare, user | 0x1, 0),
            (libc::SYS_clone, user | libc::CLONE_FS as libc::c_ulong | libc::SIGCHLD as libc::c_ulong, 0),
            (libc::SYS_clone3, 0, 0),
            // Controls: the same calls without CLONE_NEWUSER (clone with another namespace flag)
            // reach the kernel but under lock.
            (libc::SYS_unshare, 0x1, 0),
            (libc::SYS_clone, (libc::CLONE_NEWNS | libc::CLONE_FS) as libc::c_ulong | libc::SIGCHLD as libc::c_ulong, 0),
        ];
        let (eperm, einval, enosys) = (-(libc::EPERM as i64), -(libc::EINVAL as i64), -(libc::ENOSYS as i64));
        assert_eq!(under(program(&Flags::default()), &calls), vec![eperm, eperm, enosys, einval, einval], "default");
        assert_eq!(under(program(&flags(&["nest"])), &calls), vec![einval, einval, einval, einval, einval], "nest");
        assert_eq!(under(program(&flags(&["lock"])), &calls), vec![eperm, eperm, enosys, eperm, eperm], "lock");
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
        assert!(NS_FLAGS.contains(&USERNS_FLAG), "lock refuses user namespaces too");
    }
}
