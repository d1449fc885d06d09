//! pid 1 of an rc-style context (the paper's default start): `vserver-init`, a free-standing
//! program (`c/init.c`, [`crate::freestanding::INIT`]) that runs the start command, reaps every
//! orphan, and on a stop request runs the stop command, then ends every process left. Its
//! comment describes the signals it answers: a stop from outside; `reboot`, `halt` and
//! `poweroff` from inside, which end pid 1 through `reboot(2)` as the kernel's SIGHUP or SIGINT.
//!
//! One runs per vserver for the vserver's whole life, so it is as small as a process gets: no
//! libc, no heap, three pages of its own and the fewest page tables. It needs nothing from the
//! vserver's root: the engine execs it from a sealed memfd ([`crate::sealed::memfd`]) as the
//! last step of the checklist, like any pid 1, so it holds only what the exec leaves it (the
//! context's bounding set, no descriptor but 0, 1 and 2).

use std::ffi::CString;
use std::os::fd::RawFd;

use nix::errno::Errno;

use crate::error::{SetupError, Step};

/// How pid 1 names itself in `ps`.
pub const NAME: &str = "vserver-init";

/// The most words of a stop command, and of entries in the environment, `vserver-init` takes.
pub const MAX_WORDS: usize = 1024;

static PROGRAM: crate::sealed::SharedProgram = crate::sealed::SharedProgram::new(c"vserver-init", crate::freestanding::INIT);

/// The sealed memfd holding `vserver-init`, made once per process, unless [`share`] gave one.
pub fn binary() -> Result<RawFd, SetupError> {
    PROGRAM.fd().map_err(|e| SetupError::new(Step::SealedExe, Some(NAME.into()), e))
}

/// Takes the `vserver-init` memfd another process made (`path`: its `/proc/PID/fd/N`), so that
/// the contexts of many builders (the daemon's monitors) share its pages.
pub fn share(path: &std::path::Path) -> bool {
    PROGRAM.share(path)
}

/// `vserver-init`'s argv: `vserver-init rc|chcontext NSTART START... [STOP...]`; refused when
/// the stop command or the environment (`env_len` entries) is longer than it takes.
pub fn argv(start: &[CString], stop: Option<&[CString]>, exit_with_start: bool, env_len: usize) -> Result<Vec<CString>, SetupError> {
    let stop = stop.unwrap_or_default();
    if stop.len() > MAX_WORDS {
        return Err(SetupError::detail(Step::Validate, None, format!("the stop command has more than {MAX_WORDS} words")));
    }
    if env_len > MAX_WORDS {
        return Err(SetupError::detail(Step::Validate, None, format!("more than {MAX_WORDS} environment variables")));
    }
    let mode = if exit_with_start { "chcontext" } else { "rc" };
    let mut argv = vec![CString::new(NAME).expect("no NUL"), CString::new(mode).expect("no NUL")];
    argv.push(CString::new(start.len().to_string()).expect("no NUL"));
    argv.extend(start.iter().cloned());
    argv.extend(stop.iter().cloned());
    Ok(argv)
}

/// Execs `vserver-init` with `argv` and `envp`; returns only on failure.
pub(crate) fn exec(fd: RawFd, argv: &[CString], envp: &[CString]) -> SetupError {
    let e: Errno = crate::sys::execveat_fd(fd, argv, envp);
    SetupError::new(Step::Exec, Some(NAME.into()), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(v: &[&str]) -> Vec<CString> {
        v.iter().map(|s| CString::new(*s).unwrap()).collect()
    }

    #[test]
    fn argv_counts_the_start_command_and_appends_the_stop_command() {
        let a = argv(&c(&["/etc/init.d/rc", "3"]), Some(&c(&["/etc/init.d/rc", "0"])), false, 3).unwrap();
        assert_eq!(a, c(&["vserver-init", "rc", "2", "/etc/init.d/rc", "3", "/etc/init.d/rc", "0"]));
        let a = argv(&c(&["/bin/sh"]), None, true, 3).unwrap();
        assert_eq!(a, c(&["vserver-init", "chcontext", "1", "/bin/sh"]));
        let long = vec![CString::new("x").unwrap(); MAX_WORDS + 1];
        assert!(argv(&c(&["/bin/sh"]), Some(&long), false, 3).is_err());
        assert!(argv(&c(&["/bin/sh"]), None, false, MAX_WORDS + 1).is_err());
    }

    #[test]
    fn the_embedded_init_is_a_small_static_program() {
        let bin = crate::freestanding::INIT;
        assert!(bin.starts_with(b"\x7fELF"));
        assert!(bin.len() < 32 * 1024, "{} bytes", bin.len());
        let fd = binary().unwrap();
        let seals = unsafe { libc::fcntl(fd, libc::F_GET_SEALS) };
        assert!(seals & libc::F_SEAL_WRITE != 0 && seals & libc::F_SEAL_SEAL != 0, "seals {seals:#x}");
        assert_eq!(binary().unwrap(), fd, "made once");
        // Another process's copy is taken only when sealed and the same program.
        let plain = std::env::temp_dir().join(format!("vserver-init-test-{}", std::process::id()));
        std::fs::write(&plain, crate::freestanding::INIT).unwrap();
        assert!(!share(&plain), "an unsealed file is refused");
        let _ = std::fs::remove_file(&plain);
        assert!(!share(std::path::Path::new(&format!("/proc/self/fd/{fd}"))), "already set in this process");
    }
}
