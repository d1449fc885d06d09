//! Durations and dates for humans. `StartedAt` travels as microseconds since the Unix epoch,
//! 0 meaning "not running".

use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the epoch, now.
pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Seconds the vserver has been up at `now_us`, or `None` when `started_at_us` is 0 (not
/// running). A start time in the future (clock stepped back) counts as 0 s.
pub fn uptime_secs(started_at_us: u64, now_us: u64) -> Option<u64> {
    (started_at_us != 0).then(|| now_us.saturating_sub(started_at_us) / 1_000_000)
}

/// A duration in its two largest units: `42s`, `3min 5s`, `2h 7min`, `4d 3h`, `2w 1d`.
pub fn format_duration(secs: u64) -> String {
    const UNITS: [(u64, &str); 5] = [(7 * 86_400, "w"), (86_400, "d"), (3_600, "h"), (60, "min"), (1, "s")];
    if secs == 0 {
        return "0s".into();
    }
    let mut parts = Vec::new();
    let mut rest = secs;
    for (size, unit) in UNITS {
        if parts.is_empty() && rest < size {
            continue;
        }
        let n = rest / size;
        rest %= size;
        parts.push((n, unit));
        if parts.len() == 2 {
            break;
        }
    }
    parts.iter().filter(|(n, _)| *n > 0).map(|(n, u)| format!("{n}{u}")).collect::<Vec<_>>().join(" ")
}

/// The column value of an uptime: the duration, or `-` when not running.
pub fn format_uptime(started_at_us: u64, now_us: u64) -> String {
    uptime_secs(started_at_us, now_us).map(format_duration).unwrap_or_else(|| "-".into())
}

/// (year, month, day) of a count of days since 1970-01-01 (proleptic Gregorian).
pub use vserver_engine::sys::civil_from_days;

/// `YYYY-MM-DD HH:MM:SS ZONE` of `secs` since the epoch, shifted by `offset_secs` east of UTC.
pub fn format_date(secs: i64, offset_secs: i64, zone: &str) -> String {
    let t = secs + offset_secs;
    let (y, mo, d) = civil_from_days(t.div_euclid(86_400));
    let s = t.rem_euclid(86_400);
    format!("{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} {zone}", s / 3600, s / 60 % 60, s % 60)
}

/// The local time zone's offset and abbreviation at `secs` (from the C library, which reads
/// TZ and /etc/localtime), UTC if it cannot tell.
fn local_offset(secs: i64) -> (i64, String) {
    let t = secs as libc::time_t;
    // SAFETY: localtime_r only writes into `tm`, which we own; tm_zone points to static storage
    // of the C library (or is null).
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return (0, "UTC".into());
        }
        let zone = if tm.tm_zone.is_null() {
            String::new()
        } else {
            std::ffi::CStr::from_ptr(tm.tm_zone).to_string_lossy().into_owned()
        };
        (tm.tm_gmtoff as i64, zone)
    }
}

/// A `StartedAt` value as a local date, or `-` when 0.
pub fn format_started_at(started_at_us: u64) -> String {
    if started_at_us == 0 {
        return "-".into();
    }
    let secs = (started_at_us / 1_000_000) as i64;
    let (offset, zone) = local_offset(secs);
    format_date(secs, offset, &zone).trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(format_duration(0), "0s");
        assert_eq!(format_duration(1), "1s");
        assert_eq!(format_duration(59), "59s");
        assert_eq!(format_duration(60), "1min");
        assert_eq!(format_duration(61), "1min 1s");
        assert_eq!(format_duration(3599), "59min 59s");
        assert_eq!(format_duration(3600), "1h");
        assert_eq!(format_duration(3600 + 59), "1h"); // seconds dropped past the hour
        assert_eq!(format_duration(2 * 3600 + 7 * 60 + 30), "2h 7min");
        assert_eq!(format_duration(86_400), "1d");
        assert_eq!(format_duration(4 * 86_400 + 3 * 3600 + 59), "4d 3h");
        assert_eq!(format_duration(86_400 + 60), "1d");
        assert_eq!(format_duration(15 * 86_400 + 7200), "2w 1d");
        assert!(format_duration(u64::MAX).ends_with('w') || format_duration(u64::MAX).ends_with('d'));
    }

    #[test]
    fn uptimes() {
        let now = 1_700_000_000_000_000;
        assert_eq!(uptime_secs(0, now), None);
        assert_eq!(format_uptime(0, now), "-");
        assert_eq!(uptime_secs(now - 90_500_000, now), Some(90));
        assert_eq!(format_uptime(now - 90_500_000, now), "1min 30s");
        assert_eq!(format_uptime(now + 5_000_000, now), "0s");
    }

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(format_date(0, 0, "UTC"), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_date(1_700_000_000, 0, "UTC"), "2023-11-14 22:13:20 UTC");
        assert_eq!(format_date(1_700_000_000, 3600, "CET"), "2023-11-14 23:13:20 CET");
        assert_eq!(format_date(1_700_000_000, 2 * 3600, "EET"), "2023-11-15 00:13:20 EET");
        assert_eq!(format_date(951_782_400, 0, "UTC"), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_started_at(0), "-");
        assert!(format_started_at(1_700_000_000_000_000).starts_with("2023-11-1"));
    }
}
