//! The configuration's value parsers, each on the same text: sizes, signals, CPU quotas and
//! lists, addresses, MAC addresses, interface names, capabilities, flags, rlimit names and
//! terminal types. What one accepts, it reads back the same from the form it is written in;
//! what it refuses, it says on one line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vserver_engine::caps::Capability;
use vserver_engine::plan::{Flags, Resource};
use vserver_config::values::{check_interface, parse_cpu_quota, parse_cpuset, parse_mac, parse_signal, parse_size};
use vserver_config::IpCidr;
use vserver_fuzz::one_line;

/// A sorted CPU list as the kernel writes it: `0-3,8,10-11`.
fn cpu_list(cpus: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { cpus[i].to_string() } else { format!("{}-{}", cpus[i], cpus[j]) });
        i = j + 1;
    }
    parts.join(",")
}

fn refusal<T, E: std::fmt::Display>(r: &Result<T, E>) {
    if let Err(e) = r {
        assert!(one_line(&e.to_string()), "{e}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let t = text.as_ref();

    let size = parse_size(t);
    refusal(&size);
    if let Ok(n) = size {
        assert_eq!(parse_size(&n.to_string()), Ok(n));
        for (unit, shift) in [("K", 10), ("M", 20), ("G", 30), ("T", 40), ("P", 50)] {
            if n % (1u64 << shift) == 0 {
                assert_eq!(parse_size(&format!("{}{unit}", n >> shift)), Ok(n), "{t:?}");
                assert_eq!(parse_size(&format!("{}{unit}iB", n >> shift)), Ok(n), "{t:?}");
            }
        }
    }

    // The configuration's signals are the API's: one parser, one range, names that read back.
    let signal = parse_signal(t);
    refusal(&signal);
    assert_eq!(signal.clone().ok(), vserver_api::signal::parse(t).ok());
    if let Ok(n) = signal {
        assert_eq!(vserver_api::signal::check(n), Ok(n));
        assert_eq!(parse_signal(&vserver_api::signal::name(n)), Ok(n));
        assert_eq!(parse_signal(&n.to_string()), Ok(n));
    }

    let quota = parse_cpu_quota(t);
    refusal(&quota);
    if let Ok(q) = quota {
        assert!(q > 0);
        assert_eq!(parse_cpu_quota(&format!("{q}%")), Ok(q));
    }

    let cpus = parse_cpuset(t);
    refusal(&cpus);
    if let Ok(cpus) = cpus {
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]), "sorted, each once: {t:?}");
        assert!(cpus.iter().all(|c| *c <= 8191));
        assert_eq!(parse_cpuset(&cpu_list(&cpus)), Ok(cpus));
    }

    let cidr = t.parse::<IpCidr>();
    refusal(&cidr);
    if let Ok(c) = cidr {
        assert!(c.prefix <= if c.addr.is_ipv4() { 32 } else { 128 });
        assert!(!c.addr.is_unspecified() && !c.addr.is_multicast());
        assert_eq!(c.to_string().parse::<IpCidr>(), Ok(c));
    }

    let mac = parse_mac(t);
    refusal(&mac);
    if let Ok(m) = mac {
        assert!(m[0] & 1 == 0 && m != [0; 6]);
        let written = m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
        assert_eq!(parse_mac(&written), Ok(m));
        assert_eq!(parse_mac(&written.to_uppercase().replace(':', "-")), Ok(m));
    }

    let iface = check_interface(t);
    refusal(&iface);
    if iface.is_ok() {
        assert!((1..=15).contains(&t.len()) && !t.contains(['/', ':', ' ', '\0']) && t != "." && t != "..");
    }

    let cap = Capability::parse(t);
    refusal(&cap);
    if let Ok(c) = cap {
        assert_eq!(Capability::parse(c.name()), Ok(c));
        assert_eq!(Capability::parse(&format!("cap_{}", c.name().to_lowercase())), Ok(c));
    }

    let mut flags = Flags::default();
    let flag = flags.set(t);
    refusal(&flag);
    assert_eq!(flag.is_ok(), flags != Flags::default());

    if let Some(r) = Resource::from_name(t) {
        assert_eq!(r.name(), t);
    }

    if vserver_engine::enter::valid_term(t) {
        assert!(!t.is_empty() && t.len() <= 64 && one_line(t) && !t.contains(['\0', '=', '/', ' ']));
    }
});
