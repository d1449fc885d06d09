//! Signal names and numbers, one set for the whole contract: `Kill`, `KillVServer` and
//! `KillProcess` take these numbers, `init.stop_signal` in the configuration and
//! `vserverctl kill --signal` take these names and numbers.
//!
//! The numbers are Linux's (x86, arm, riscv and the other architectures of the generic table):
//! 1 to 31, and the real-time signals from glibc's SIGRTMIN (34) to SIGRTMAX (64). 32 and 33 are
//! real-time signals for the kernel, but glibc keeps them for its threads (cancellation,
//! set*id across threads): sent to a glibc process they do what its libc wants, not what its
//! program asked for, so they are refused everywhere.

use thiserror::Error;

/// glibc's SIGRTMIN, which init systems inside count from (systemd halts on SIGRTMIN+3).
pub const RTMIN: i32 = 34;
/// SIGRTMAX.
pub const RTMAX: i32 = 64;

/// The standard signals by name, without `SIG`; the first name of a number is its own.
pub const NAMES: [(&str, i32); 34] = [
    ("HUP", 1),
    ("INT", 2),
    ("QUIT", 3),
    ("ILL", 4),
    ("TRAP", 5),
    ("ABRT", 6),
    ("IOT", 6),
    ("BUS", 7),
    ("FPE", 8),
    ("KILL", 9),
    ("USR1", 10),
    ("SEGV", 11),
    ("USR2", 12),
    ("PIPE", 13),
    ("ALRM", 14),
    ("TERM", 15),
    ("STKFLT", 16),
    ("CHLD", 17),
    ("CLD", 17),
    ("CONT", 18),
    ("STOP", 19),
    ("TSTP", 20),
    ("TTIN", 21),
    ("TTOU", 22),
    ("URG", 23),
    ("XCPU", 24),
    ("XFSZ", 25),
    ("VTALRM", 26),
    ("PROF", 27),
    ("WINCH", 28),
    ("IO", 29),
    ("POLL", 29),
    ("PWR", 30),
    ("SYS", 31),
];

/// Why a signal was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignalError {
    #[error("unknown signal {0:?} (expected a name such as TERM, SIGKILL, SIGPWR or SIGRTMIN+3, or a number)")]
    Unknown(String),
    #[error("signal number {0} is out of range (1 to 31 and {RTMIN} to {RTMAX})")]
    OutOfRange(String),
    #[error("signal {0} is reserved by the C library (glibc's threads use 32 and 33; SIGRTMIN is {RTMIN})")]
    Reserved(i32),
}

/// A signal number that may be sent: 1 to 31, or SIGRTMIN to SIGRTMAX.
pub fn check(n: i32) -> Result<i32, SignalError> {
    match n {
        1..=31 | RTMIN..=RTMAX => Ok(n),
        32 | 33 => Err(SignalError::Reserved(n)),
        _ => Err(SignalError::OutOfRange(n.to_string())),
    }
}

/// A signal from its name or number: `TERM`, `SIGTERM`, `sigterm`, `SIGRTMIN+3`, `RTMAX-1`, `15`
/// (white space around it is ignored). Every number it gives passes [`check`].
pub fn parse(text: &str) -> Result<i32, SignalError> {
    let unknown = || SignalError::Unknown(text.to_string());
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return match t.parse::<i32>() {
            Ok(n) => check(n),
            Err(_) => Err(SignalError::OutOfRange(t.to_string())),
        };
    }
    let upper = t.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Some(&(_, n)) = NAMES.iter().find(|(name, _)| *name == bare) {
        return Ok(n);
    }
    // SIGRTMIN, SIGRTMIN+N, SIGRTMAX, SIGRTMAX-N: N in digits, the result within the range.
    let offset = |rest: &str, sign: char| -> Option<i32> {
        if rest.is_empty() {
            return Some(0);
        }
        let digits = rest.strip_prefix(sign)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i32>().ok().filter(|k| *k <= RTMAX - RTMIN)
    };
    let n = if let Some(rest) = bare.strip_prefix("RTMIN") {
        RTMIN + offset(rest, '+').ok_or_else(unknown)?
    } else if let Some(rest) = bare.strip_prefix("RTMAX") {
        RTMAX - offset(rest, '-').ok_or_else(unknown)?
    } else {
        return Err(unknown());
    };
    Ok(n)
}

/// The conventional name of a signal number (`SIGTERM`, `SIGRTMIN`, `SIGRTMIN+3`); `signal N`
/// for a number that is not a signal. [`parse`] reads every name it gives back to the number.
pub fn name(n: i32) -> String {
    if let Some((name, _)) = NAMES.iter().find(|(_, v)| *v == n) {
        return format!("SIG{name}");
    }
    match n {
        RTMIN => "SIGRTMIN".into(),
        _ if (RTMIN..=RTMAX).contains(&n) => format!("SIGRTMIN+{}", n - RTMIN),
        _ => format!("signal {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers() {
        assert_eq!(parse("SIGTERM"), Ok(15));
        assert_eq!(parse("TERM"), Ok(15));
        assert_eq!(parse(" sigpwr "), Ok(30));
        assert_eq!(parse("cld"), Ok(17));
        assert_eq!(parse("SIGSYS"), Ok(31));
        assert_eq!(parse("SIGRTMIN"), Ok(34));
        assert_eq!(parse("SIGRTMIN+3"), Ok(37));
        assert_eq!(parse("RTMAX-1"), Ok(63));
        assert_eq!(parse("SIGRTMAX"), Ok(64));
        assert_eq!(parse("RTMIN+30"), Ok(64));
        assert_eq!(parse("15"), Ok(15));
        assert_eq!(parse("064"), Ok(64));
    }

    #[test]
    fn refusals() {
        for bad in ["", " ", "SIG", "SIGFOO", "SIGSIGTERM", "SIG15", "+15", "-9", "1.5", "9x", "TERMINATE"] {
            assert_eq!(parse(bad), Err(SignalError::Unknown(bad.into())), "{bad:?}");
        }
        for bad in ["SIGRTMIN+31", "SIGRTMIN-1", "SIGRTMIN+", "RTMAX+1", "RTMAX-31", "RTMINx", "RTMIN+-1", "RTMIN+99999999999"] {
            assert_eq!(parse(bad), Err(SignalError::Unknown(bad.into())), "{bad:?}");
        }
        for bad in ["0", "65", "99999999999"] {
            assert_eq!(parse(bad), Err(SignalError::OutOfRange(bad.into())), "{bad:?}");
        }
        assert_eq!(parse("32"), Err(SignalError::Reserved(32)));
        assert_eq!(parse("33"), Err(SignalError::Reserved(33)));
        assert_eq!(check(-9), Err(SignalError::OutOfRange("-9".into())));
        assert!(parse("NOPE").unwrap_err().to_string().starts_with("unknown signal \"NOPE\""));
    }

    #[test]
    fn every_name_reads_back_and_every_number_is_checked() {
        for n in -1..=70 {
            let s = name(n);
            match check(n) {
                Ok(_) => assert_eq!(parse(&s), Ok(n), "{s}"),
                Err(_) => assert_eq!(s, format!("signal {n}")),
            }
            if let Ok(m) = parse(&n.to_string()) {
                assert_eq!(check(m), Ok(n));
            }
        }
        assert_eq!(name(6), "SIGABRT");
        assert_eq!(name(37), "SIGRTMIN+3");
    }
}
