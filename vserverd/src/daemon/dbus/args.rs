//! The checks of D-Bus method arguments, as pure functions: each method runs them before it
//! acts, and the fuzz target `dbus_args` (tests/fuzz) runs them on any input. A refusal is an
//! `InvalidArgs` (or `NoSuchVServer`) whose message is one line, whatever the caller sent.

use std::path::Path;

use vserver_api::VServerError;

use vserver_config::values::check_name;
use crate::daemon::enter::Request;

/// A signal number for `Kill`, `KillVServer` and `KillProcess`: the contract's set
/// ([`vserver_api::signal::check`]), the same as `init.stop_signal` accepts.
pub fn signal(n: i32) -> Result<i32, VServerError> {
    vserver_api::signal::check(n).map_err(|e| VServerError::invalid_args(e.to_string()))
}

/// Whom `Kill` signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whom {
    /// The vserver's pid 1.
    Leader,
    /// Every process of the vserver.
    All,
}

impl Whom {
    pub fn parse(whom: &str) -> Result<Whom, VServerError> {
        match whom {
            "leader" => Ok(Whom::Leader),
            "all" => Ok(Whom::All),
            other => Err(VServerError::invalid_args(format!("whom must be \"leader\" or \"all\", not {other:?}"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Whom::Leader => "leader",
            Whom::All => "all",
        }
    }
}

/// A process id for `KillProcess`: a positive pid (0 and the negative numbers that a u32 would
/// become would mean a process group or every process to kill(2)).
pub fn pid(pid: u32) -> Result<i32, VServerError> {
    i32::try_from(pid).ok().filter(|p| *p > 0).ok_or_else(|| VServerError::invalid_args(format!("{pid} is not a process id")))
}

/// The checks of an `EnterVServer` request; gives the terminal type in force (`linux` when
/// none is given).
pub fn enter_request(req: &Request) -> Result<String, VServerError> {
    if req.argv.iter().any(|a| a.contains('\0')) || req.user.contains('\0') || req.user.contains(':') || req.user.contains('\n') {
        return Err(VServerError::invalid_args("the command and the user may not contain NUL bytes, ':' or newlines"));
    }
    let term = if req.term.is_empty() { "linux".to_string() } else { req.term.clone() };
    if !vserver_engine::enter::valid_term(&term) {
        return Err(VServerError::invalid_args(format!("bad terminal type {term:?}")));
    }
    Ok(term)
}

/// The error for a name that no vserver has: where its file would be, when the name could be
/// one; why it cannot be, when it could not (the name is quoted, never written raw).
pub fn no_such_vserver(config_dir: &Path, name: &str) -> VServerError {
    VServerError::NoSuchVServer(match check_name(name) {
        Ok(()) => format!(
            "no vserver named {name:?} (no {}/{name}.toml)",
            config_dir.display()
        ),
        Err(e) => format!("no vserver named {name:?}: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vserver_engine::enter::WinSize;

    fn invalid(r: Result<impl std::fmt::Debug, VServerError>) -> String {
        match r {
            Err(VServerError::InvalidArgs(m)) => m,
            other => panic!("expected InvalidArgs, got {other:?}"),
        }
    }

    #[test]
    fn signals_are_the_contract_s() {
        assert_eq!(signal(15).unwrap(), 15);
        assert_eq!(signal(31).unwrap(), 31);
        assert_eq!(signal(34).unwrap(), 34);
        assert_eq!(signal(64).unwrap(), 64);
        for bad in [0, -1, -9, 32, 33, 65, i32::MIN, i32::MAX] {
            assert!(!invalid(signal(bad)).contains('\n'), "{bad}");
        }
        assert!(invalid(signal(32)).contains("reserved"));
    }

    #[test]
    fn whom_and_pid() {
        assert_eq!(Whom::parse("leader").unwrap(), Whom::Leader);
        assert_eq!(Whom::parse("all").unwrap(), Whom::All);
        assert_eq!(invalid(Whom::parse("a\nb")), "whom must be \"leader\" or \"all\", not \"a\\nb\"");
        assert!(Whom::parse("Leader").is_err());
        assert_eq!(pid(1).unwrap(), 1);
        assert_eq!(pid(i32::MAX as u32).unwrap(), i32::MAX);
        for bad in [0, u32::MAX, 1 << 31] {
            invalid(pid(bad));
        }
    }

    #[test]
    fn enter_requests() {
        let req = |user: &str, argv: &[&str], term: &str| Request {
            user: user.into(),
            argv: argv.iter().map(|s| s.to_string()).collect(),
            tty: true,
            term: term.into(),
            size: WinSize { rows: 24, cols: 80 },
        };
        assert_eq!(enter_request(&req("", &[], "")).unwrap(), "linux");
        assert_eq!(enter_request(&req("bob", &["/bin/sh", "-c", "echo a\nb"], "xterm-256color")).unwrap(), "xterm-256color");
        invalid(enter_request(&req("bob:x", &[], "")));
        invalid(enter_request(&req("bob\n", &[], "")));
        invalid(enter_request(&req("", &["a\0b"], "")));
        invalid(enter_request(&req("", &[], "xterm\n")));
        invalid(enter_request(&req("", &[], &"x".repeat(65))));
    }

    #[test]
    fn an_unknown_name_is_quoted_in_one_line() {
        let dir = Path::new("/etc/vservers");
        let m = no_such_vserver(dir, "web9").message();
        assert_eq!(m, "no vserver named \"web9\" (no /etc/vservers/web9.toml)");
        // A name that is no vserver name is not pasted into a path (nor into a second line).
        let m = no_such_vserver(dir, "a\nb/../x").message();
        assert!(!m.contains('\n') && !m.contains(".toml"), "{m}");
        assert!(matches!(no_such_vserver(dir, "x"), VServerError::NoSuchVServer(_)));
        // "defaults" is reserved: the reason names defaults.toml, no vserver's file.
        let m = no_such_vserver(dir, "defaults").message();
        assert!(m.starts_with("no vserver named \"defaults\": ") && !m.contains("/etc/vservers/"), "{m}");
    }
}
