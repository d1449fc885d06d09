//! Parsers for the config's value syntaxes: names, sizes, signals, CPU lists, addresses.
//! Pure functions; the messages of [`ValueError`] become diagnostics.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use thiserror::Error;

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ValueError {
    #[error("invalid vserver name {0:?}: {1}")]
    Name(String, &'static str),
    #[error("invalid host name {0:?}: {1}")]
    HostName(String, &'static str),
    #[error("invalid size {0:?} (expected bytes, or a number with K, M, G, T or P, such as \"512M\")")]
    Size(String),
    #[error(transparent)]
    Signal(vserver_api::signal::SignalError),
    #[error("invalid CPU quota {0:?} (expected a percentage of one CPU above 0, such as \"150%\")")]
    CpuQuota(String),
    #[error("invalid CPU list {0:?} (expected CPU numbers and ranges, such as \"0-1,3\")")]
    CpuSet(String),
    #[error("invalid address {0:?} (expected address/prefix, such as \"192.0.2.10/24\" or \"2001:db8::10/64\")")]
    Cidr(String),
    #[error("invalid MAC address {0:?} (expected six hex octets such as \"02:00:00:00:00:01\", not multicast)")]
    Mac(String),
    #[error("invalid interface name {0:?} (1 to 15 characters, no '/', ':' or white space)")]
    Interface(String),
}

/// The rules for a vserver name (the file name before `.toml`): ASCII letters, digits, `-`,
/// `_`, `.`, at most 64 characters, no leading `.`. `defaults` is reserved for defaults.toml.
pub fn check_name(name: &str) -> Result<(), ValueError> {
    let bad = |why| Err(ValueError::Name(name.to_string(), why));
    if name.is_empty() {
        return bad("empty");
    }
    if name.len() > 64 {
        return bad("longer than 64 characters");
    }
    if name.starts_with('.') {
        return bad("starts with '.'");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return bad("only ASCII letters, digits, '-', '_' and '.' are allowed");
    }
    if name == "defaults" {
        return bad("reserved for defaults.toml");
    }
    Ok(())
}

/// A host or domain name: dot-separated labels of ASCII letters, digits and `-` (not at either
/// end of a label), at most 64 bytes (the kernel's limit).
pub fn check_hostname(name: &str) -> Result<(), ValueError> {
    let bad = |why| Err(ValueError::HostName(name.to_string(), why));
    if name.is_empty() || name.len() > 64 {
        return bad("must be 1 to 64 characters");
    }
    for label in name.split('.') {
        if label.is_empty() {
            return bad("empty label");
        }
        if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return bad("only ASCII letters, digits, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label cannot start or end with '-'");
        }
    }
    Ok(())
}

/// The host name of a vserver without `hostname`: its name, made a host name where it is not
/// one (a vserver name may hold `_` and labels a host name may not: `db_1` is `db-1`, `a..b`
/// is `a.b`, `-x-` is `x`). `None` when nothing of the name is left (`-`, `_`).
pub fn default_hostname(name: &str) -> Option<String> {
    if check_hostname(name).is_ok() {
        return Some(name.to_string());
    }
    let mapped: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' { c } else { '-' }).collect();
    let labels: Vec<&str> = mapped.split('.').map(|l| l.trim_matches('-')).filter(|l| !l.is_empty()).collect();
    let host = labels.join(".");
    check_hostname(&host).is_ok().then_some(host)
}

/// A size in bytes: `"4096"`, `"512K"`, `"512M"`, `"1.5G"`, `"2T"`, `"1P"` (binary units; an
/// optional `B` or `iB` after the unit is accepted).
pub fn parse_size(text: &str) -> Result<u64, ValueError> {
    let err = || ValueError::Size(text.to_string());
    let t = text.trim();
    let t = t.strip_suffix("iB").or_else(|| t.strip_suffix('B')).unwrap_or(t);
    let (num, shift) = match t.as_bytes().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_uppercase() {
                b'K' => 10,
                b'M' => 20,
                b'G' => 30,
                b'T' => 40,
                b'P' => 50,
                _ => return Err(err()),
            };
            (&t[..t.len() - 1], shift)
        }
        _ => (t, 0),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if !digits(int) || (num.contains('.') && !digits(frac)) || frac.len() > 18 {
        return Err(err());
    }
    // Exact: (int.frac) << shift must be a whole number of bytes.
    let scale = 10u128.pow(frac.len() as u32);
    let mantissa: u128 = format!("{int}{frac}").parse().map_err(|_| err())?;
    let scaled = mantissa.checked_mul(1u128 << shift).ok_or_else(err)?;
    if scaled % scale != 0 {
        return Err(err());
    }
    u64::try_from(scaled / scale).map_err(|_| err())
}

/// A signal number from a name or a number: `SIGTERM`, `TERM`, `sigpwr`, `SIGRTMIN+3`,
/// `RTMAX-1`, `15`: the API's own rules ([`vserver_api::signal::parse`]), so that what the
/// configuration accepts, `Kill` accepts too (32 and 33, glibc's own, are refused by both).
pub fn parse_signal(text: &str) -> Result<i32, ValueError> {
    vserver_api::signal::parse(text).map_err(ValueError::Signal)
}

/// A CPU quota in percent of one CPU: `"150%"` is one and a half CPUs.
pub fn parse_cpu_quota(text: &str) -> Result<u32, ValueError> {
    let err = || ValueError::CpuQuota(text.to_string());
    let n = text.trim().strip_suffix('%').ok_or_else(err)?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    n.parse::<u32>().ok().filter(|v| *v > 0).ok_or_else(err)
}

/// The highest CPU number accepted in a CPU list.
const MAX_CPU: u32 = 8191;

/// A CPU list as the kernel writes it (`"0-1,3"`): the CPUs, sorted, without duplicates.
pub fn parse_cpuset(text: &str) -> Result<Vec<u32>, ValueError> {
    let err = || ValueError::CpuSet(text.to_string());
    let num = |s: &str| -> Result<u32, ValueError> {
        let s = s.trim();
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        s.parse::<u32>().ok().filter(|n| *n <= MAX_CPU).ok_or_else(err)
    };
    let mut cpus = Vec::new();
    for part in text.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if lo > hi {
            return Err(err());
        }
        cpus.extend(lo..=hi);
    }
    cpus.sort_unstable();
    cpus.dedup();
    Ok(cpus)
}

/// An interface address with its prefix length, such as `192.0.2.10/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct IpCidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl FromStr for IpCidr {
    type Err = ValueError;

    fn from_str(text: &str) -> Result<Self, ValueError> {
        let err = || ValueError::Cidr(text.to_string());
        let (a, p) = text.split_once('/').ok_or_else(err)?;
        let addr: IpAddr = a.parse().map_err(|_| err())?;
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let prefix: u8 = p.parse().map_err(|_| err())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max || addr.is_unspecified() || addr.is_multicast() {
            return Err(err());
        }
        Ok(IpCidr { addr, prefix })
    }
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A unicast MAC address, `"02:00:00:00:00:01"` (`-` accepted as separator too).
pub fn parse_mac(text: &str) -> Result<[u8; 6], ValueError> {
    let err = || ValueError::Mac(text.to_string());
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(err());
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 {
            return Err(err());
        }
        *byte = u8::from_str_radix(part, 16).map_err(|_| err())?;
    }
    if mac[0] & 1 != 0 || mac == [0; 6] {
        return Err(err());
    }
    Ok(mac)
}

/// A network interface name as the kernel accepts it.
pub fn check_interface(name: &str) -> Result<(), ValueError> {
    let ok = (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(())
    } else {
        Err(ValueError::Interface(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512K"), Ok(512 << 10));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("1GB"), Ok(1 << 30));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("0.5K"), Ok(512));
        assert_eq!(parse_size("2T"), Ok(2 << 40));
        assert_eq!(parse_size("1P"), Ok(1 << 50));
        for bad in ["", "G", "1X", "-1M", "1.G", ".5G", "1..5G", "1 G G", "0.3", "99999999999P", "1e3"] {
            assert!(parse_size(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM"), Ok(15));
        assert_eq!(parse_signal("TERM"), Ok(15));
        assert_eq!(parse_signal("sigpwr"), Ok(30));
        assert_eq!(parse_signal("SIGKILL"), Ok(9));
        assert_eq!(parse_signal("SIGSYS"), Ok(31));
        assert_eq!(parse_signal("SIGRTMIN"), Ok(34));
        assert_eq!(parse_signal("SIGRTMIN+3"), Ok(37));
        assert_eq!(parse_signal("RTMAX-1"), Ok(63));
        assert_eq!(parse_signal("SIGRTMAX"), Ok(64));
        assert_eq!(parse_signal("15"), Ok(15));
        for bad in ["", "SIG", "SIGFOO", "SIGRTMIN+31", "SIGRTMIN-1", "SIGRTMIN+", "0", "65", "+15", "RTMAX+1", "32", "33"] {
            assert!(parse_signal(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn names() {
        assert!(check_name("web1").is_ok());
        assert!(check_name("a.b-c_D9").is_ok());
        assert!(check_name(&"x".repeat(64)).is_ok());
        assert!(check_name(&"x".repeat(65)).is_err());
        assert!(check_name(".hidden").is_err());
        assert!(check_name("we b").is_err());
        assert!(check_name("wéb").is_err());
        assert!(check_name("defaults").is_err());
        assert!(check_hostname("web1.example.org").is_ok());
        assert!(check_hostname("-web").is_err());
        assert!(check_hostname("a..b").is_err());
    }

    /// Found by the fuzz target `config`: a vserver named `-` (or `db_1`) got its name as its
    /// host name, which `hostname = "db_1"` itself is refused as.
    #[test]
    fn default_host_names_are_host_names() {
        assert_eq!(default_hostname("web1").as_deref(), Some("web1"));
        assert_eq!(default_hostname("web1.example.org").as_deref(), Some("web1.example.org"));
        assert_eq!(default_hostname("db_1").as_deref(), Some("db-1"));
        assert_eq!(default_hostname("web-1_x.y").as_deref(), Some("web-1-x.y"));
        assert_eq!(default_hostname("a..b").as_deref(), Some("a.b"));
        assert_eq!(default_hostname("-x-._y_").as_deref(), Some("x.y"));
        assert_eq!(default_hostname("x."), Some("x".into()));
        for none in ["-", "_", "-.-", "_._"] {
            assert_eq!(default_hostname(none), None, "{none:?}");
        }
        let long = format!("{}_", "x".repeat(63));
        assert_eq!(default_hostname(&long), Some("x".repeat(63)));
    }

    #[test]
    fn cpus_quota_addresses() {
        assert_eq!(parse_cpuset("0-1,3"), Ok(vec![0, 1, 3]));
        assert_eq!(parse_cpuset("3,0-1,1"), Ok(vec![0, 1, 3]));
        assert!(parse_cpuset("1-0").is_err());
        assert!(parse_cpuset("").is_err());
        assert!(parse_cpuset("a").is_err());
        assert_eq!(parse_cpu_quota("150%"), Ok(150));
        assert!(parse_cpu_quota("0%").is_err());
        assert!(parse_cpu_quota("150").is_err());
        assert_eq!("192.0.2.10/24".parse::<IpCidr>().unwrap().prefix, 24);
        assert!("2001:db8::1/64".parse::<IpCidr>().is_ok());
        assert!("192.0.2.10/33".parse::<IpCidr>().is_err());
        assert!("192.0.2.10".parse::<IpCidr>().is_err());
        assert!("2001:db8::1/129".parse::<IpCidr>().is_err());
        assert_eq!(parse_mac("02:00:00:00:00:01"), Ok([2, 0, 0, 0, 0, 1]));
        assert!(parse_mac("01:00:5e:00:00:01").is_err());
        assert!(parse_mac("02:00:00:00:00").is_err());
        assert!(check_interface("eth0").is_ok());
        assert!(check_interface("averyveryverylongname").is_err());
    }
}

/// `[user] map`: `"no"`, `"auto"`, `"BASE"` or `"BASE:COUNT"` (COUNT 65536 when absent).
pub fn parse_user_map(text: &str) -> Result<super::model::UserMap, String> {
    use super::model::UserMap;
    use vserver_engine::userns::IdMap;
    let bad = |why: String| format!("`user.map` must be \"auto\", \"no\", \"BASE\" or \"BASE:COUNT\" (host ids): {why}");
    match text {
        "no" => return Ok(UserMap::Host),
        "auto" => return Ok(UserMap::Auto),
        _ => {}
    }
    IdMap::parse(text, true).map(UserMap::Fixed).map_err(bad)
}
