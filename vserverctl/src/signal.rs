//! Signal names and numbers for `kill -s`: the API's own ([`vserver_api::signal`]), so that
//! every signal this parses the daemon accepts, and the configuration's `init.stop_signal` too.

/// Parses a signal given as a name (`TERM`, `SIGTERM`, `term`, `RTMIN+2`, `SIGRTMAX-1`) or a
/// number (`15`). Signal 0, 32 and 33 (glibc's own) and numbers beyond SIGRTMAX are refused.
pub fn parse(s: &str) -> Result<i32, String> {
    vserver_api::signal::parse(s).map_err(|e| e.to_string())
}

/// The conventional name of a signal number (`SIGTERM`, `SIGRTMIN+3`), for messages.
pub fn name(n: i32) -> String {
    vserver_api::signal::name(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_and_without_prefix_any_case() {
        assert_eq!(parse("TERM"), Ok(libc::SIGTERM));
        assert_eq!(parse("SIGTERM"), Ok(libc::SIGTERM));
        assert_eq!(parse("sigterm"), Ok(libc::SIGTERM));
        assert_eq!(parse("kill"), Ok(9));
        assert_eq!(parse("HUP"), Ok(1));
        assert_eq!(parse("SIGINT"), Ok(2));
        assert_eq!(parse("USR1"), Ok(libc::SIGUSR1));
        assert_eq!(parse("WINCH"), Ok(libc::SIGWINCH));
        assert_eq!(parse(" PWR "), Ok(libc::SIGPWR));
    }

    #[test]
    fn numbers() {
        assert_eq!(parse("9"), Ok(9));
        assert_eq!(parse("15"), Ok(15));
        assert_eq!(parse(&libc::SIGRTMAX().to_string()), Ok(libc::SIGRTMAX()));
        assert!(parse("0").is_err());
        assert!(parse("-9").is_err());
        assert!(parse(&(libc::SIGRTMAX() + 1).to_string()).is_err());
        assert!(parse("99999999999").is_err());
        assert!(parse("32").unwrap_err().contains("reserved"));
        assert!(parse("33").is_err());
    }

    #[test]
    fn the_names_are_this_system_s() {
        assert_eq!(vserver_api::signal::RTMIN, libc::SIGRTMIN());
        assert_eq!(vserver_api::signal::RTMAX, libc::SIGRTMAX());
        for (name, n) in vserver_api::signal::NAMES {
            let sys = nix::sys::signal::Signal::try_from(n).unwrap_or_else(|_| panic!("{name}"));
            if !["IOT", "CLD", "POLL"].contains(&name) {
                assert_eq!(sys.as_str(), format!("SIG{name}"));
            }
        }
    }

    #[test]
    fn realtime() {
        assert_eq!(parse("RTMIN"), Ok(libc::SIGRTMIN()));
        assert_eq!(parse("SIGRTMIN+2"), Ok(libc::SIGRTMIN() + 2));
        assert_eq!(parse("rtmax-1"), Ok(libc::SIGRTMAX() - 1));
        assert!(parse("RTMAX+1").is_err());
        assert!(parse("RTMIN-1").is_err());
        assert!(parse("RTMINx").is_err());
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "SIG", "TERMINATE", "SIGSIGTERM", "1.5", "+9", "9x"] {
            assert!(parse(s).is_err(), "{s:?}");
        }
        assert!(parse("NOPE").unwrap_err().contains("unknown signal"));
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(name(libc::SIGTERM), "SIGTERM");
        assert_eq!(name(9), "SIGKILL");
        assert_eq!(name(libc::SIGRTMIN() + 3), "SIGRTMIN+3");
        for n in 1..=libc::SIGRTMAX() {
            let s = name(n);
            if !s.starts_with("signal ") {
                assert_eq!(parse(&s), Ok(n), "{s}");
            }
        }
    }
}
