//! Signal names and numbers for `kill -s`.

/// The standard Linux signals by name (without the `SIG` prefix).
const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("IOT", libc::SIGIOT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("STKFLT", libc::SIGSTKFLT),
    ("CHLD", libc::SIGCHLD),
    ("CLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("POLL", libc::SIGPOLL),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

fn rtmin() -> i32 {
    libc::SIGRTMIN()
}

fn rtmax() -> i32 {
    libc::SIGRTMAX()
}

/// Parses a signal given as a name (`TERM`, `SIGTERM`, `term`, `RTMIN+2`, `SIGRTMAX-1`) or a
/// number (`15`). Signal 0 and numbers beyond the real-time range are refused.
pub fn parse(s: &str) -> Result<i32, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("empty signal; give a name like TERM or a number like 15".into());
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return match t.parse::<i32>() {
            Ok(n) if (1..=rtmax()).contains(&n) => Ok(n),
            _ => Err(format!("signal number {t} is out of range 1..={}", rtmax())),
        };
    }
    let upper = t.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = SIGNALS.iter().find(|(name, _)| *name == bare) {
        return Ok(n);
    }
    if let Some(n) = parse_realtime(bare) {
        return Ok(n);
    }
    Err(format!("unknown signal {s:?}; give a name like TERM, SIGKILL, HUP, RTMIN+1, or a number"))
}

fn parse_realtime(bare: &str) -> Option<i32> {
    let (base, rest) = if let Some(rest) = bare.strip_prefix("RTMIN") {
        (rtmin(), rest)
    } else if let Some(rest) = bare.strip_prefix("RTMAX") {
        (rtmax(), rest)
    } else {
        return None;
    };
    let n = if rest.is_empty() {
        base
    } else if let Some(off) = rest.strip_prefix('+') {
        base + off.parse::<i32>().ok()?
    } else if let Some(off) = rest.strip_prefix('-') {
        base - off.parse::<i32>().ok()?
    } else {
        return None;
    };
    (rtmin()..=rtmax()).contains(&n).then_some(n)
}

/// The conventional name of a signal number (`SIGTERM`, `SIGRTMIN+3`), for messages.
pub fn name(n: i32) -> String {
    if let Some((name, _)) = SIGNALS.iter().find(|(_, v)| *v == n) {
        return format!("SIG{name}");
    }
    if (rtmin()..=rtmax()).contains(&n) {
        return if n == rtmin() { "SIGRTMIN".into() } else { format!("SIGRTMIN+{}", n - rtmin()) };
    }
    format!("signal {n}")
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
