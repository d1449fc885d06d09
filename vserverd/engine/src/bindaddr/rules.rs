//! What the programs know of one vserver: its addresses, its broadcast address, its private
//! loopback addresses and its cgroup, as one value of the rules map (a cgroup-storage map:
//! the kernel keeps one value per cgroup the programs are attached to, hands each program the
//! value of the cgroup it runs for, and frees it with the cgroup). The programs are the same
//! for every vserver and loaded once; only this value differs.
//!
//! Every address is kept as the kernel keeps it in a socket address: network byte order, read
//! by the programs as 32-bit words.

use std::net::{Ipv4Addr, Ipv6Addr};

/// At most this many addresses of each family.
pub const MAX_ADDRS: usize = 8;

/// `valid` holds this once the value is written: until then every program refuses (a cgroup
/// whose programs are attached but whose rules are not yet written allows nothing).
pub const VALID: u32 = 0x7673_6264;

/// Byte offsets in the value.
pub mod off {
    pub const VALID: i16 = 0;
    /// How many IPv4 addresses (0..=8).
    pub const N4: i16 = 4;
    /// How many IPv6 addresses (0..=8).
    pub const N6: i16 = 8;
    /// The private IPv4 loopback address (127.H.L.1).
    pub const LO4: i16 = 12;
    /// The IPv4 broadcast address a socket may bind (0: none).
    pub const BCAST4: i16 = 16;
    /// The level of the vserver's cgroup in the v2 tree (the root is 0).
    pub const LEVEL: i16 = 20;
    /// The vserver's cgroup id (64 bits).
    pub const CGID: i16 = 24;
    /// The IPv4 addresses, 4 bytes each; the first is what a wildcard bind gets.
    pub const V4: i16 = 32;
    /// The private IPv6 loopback address (all zero: none).
    pub const LO6: i16 = 64;
    /// The IPv6 addresses, 16 bytes each.
    pub const V6: i16 = 80;
    /// The host uid whose binds to ports below 1024 pass without CAP_NET_BIND_SERVICE (root
    /// of the vserver's user namespace; 0: nobody's).
    pub const LOW_PORTS_UID: i16 = 80 + 16 * super::MAX_ADDRS as i16;
}

/// The size of one value.
pub const VALUE_SIZE: usize = 80 + 16 * MAX_ADDRS + 8;

/// One vserver's rules, before they are written for its cgroup.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rules {
    /// The IPv4 addresses: a wildcard bind gets the first, a connection with no address of its
    /// own leaves from it.
    pub v4: Vec<Ipv4Addr>,
    pub v6: Vec<Ipv6Addr>,
    /// A broadcast address its sockets may also bind and receive on (chbind's `--bcast`).
    pub broadcast: Option<Ipv4Addr>,
    /// The loopback address 127.0.0.1 stands for (and 0.0.0.0 as a destination, and the rest
    /// of 127.0.0.0/8).
    pub lo4: Ipv4Addr,
    /// The address ::1 stands for (and :: as a destination); `None`: IPv6 loopback refused.
    pub lo6: Option<Ipv6Addr>,
    /// The host uid whose binds below port 1024 pass without CAP_NET_BIND_SERVICE over the
    /// host's network (root of the vserver's user namespace).
    #[serde(default)]
    pub low_ports_for: Option<u32>,
}

/// A 32-bit word holding `octets` as the kernel holds an address: in memory order.
pub fn word(octets: [u8; 4]) -> u32 {
    u32::from_ne_bytes(octets)
}

impl Rules {
    pub fn check(&self) -> Result<(), String> {
        if self.v4.len() > MAX_ADDRS || self.v6.len() > MAX_ADDRS {
            return Err(format!("at most {MAX_ADDRS} addresses of each family"));
        }
        if !self.lo4.is_loopback() {
            return Err(format!("the private loopback address {} is not in 127.0.0.0/8", self.lo4));
        }
        Ok(())
    }

    /// The map value for the cgroup whose id is `cgroup_id` at `level` in the v2 tree.
    pub fn encode(&self, cgroup_id: u64, level: u32) -> Vec<u8> {
        let mut v = vec![0u8; VALUE_SIZE];
        let mut put = |at: i16, bytes: &[u8]| v[at as usize..at as usize + bytes.len()].copy_from_slice(bytes);
        put(off::VALID, &VALID.to_ne_bytes());
        put(off::N4, &(self.v4.len().min(MAX_ADDRS) as u32).to_ne_bytes());
        put(off::N6, &(self.v6.len().min(MAX_ADDRS) as u32).to_ne_bytes());
        put(off::LO4, &self.lo4.octets());
        if let Some(b) = self.broadcast {
            put(off::BCAST4, &b.octets());
        }
        put(off::LEVEL, &level.to_ne_bytes());
        put(off::CGID, &cgroup_id.to_ne_bytes());
        for (i, a) in self.v4.iter().take(MAX_ADDRS).enumerate() {
            put(off::V4 + 4 * i as i16, &a.octets());
        }
        if let Some(l) = self.lo6 {
            put(off::LO6, &l.octets());
        }
        for (i, a) in self.v6.iter().take(MAX_ADDRS).enumerate() {
            put(off::V6 + 16 * i as i16, &a.octets());
        }
        put(off::LOW_PORTS_UID, &self.low_ports_for.unwrap_or(0).to_ne_bytes());
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_value_holds_each_field_where_the_programs_read_it() {
        let r = Rules {
            v4: vec!["192.0.2.10".parse().unwrap(), "192.0.2.12".parse().unwrap()],
            v6: vec!["2001:db8::10".parse().unwrap()],
            broadcast: Some("192.0.2.255".parse().unwrap()),
            lo4: "127.1.2.1".parse().unwrap(),
            lo6: Some("fd76:7365:7276:6c6f::102:1".parse().unwrap()),
            low_ports_for: Some(1 << 20),
        };
        r.check().unwrap();
        let v = r.encode(0x1122_3344_5566_7788, 3);
        let at = |o: i16, n: usize| &v[o as usize..o as usize + n];
        assert_eq!(at(off::VALID, 4), VALID.to_ne_bytes());
        assert_eq!(at(off::N4, 4), 2u32.to_ne_bytes());
        assert_eq!(at(off::N6, 4), 1u32.to_ne_bytes());
        assert_eq!(at(off::LO4, 4), [127, 1, 2, 1]);
        assert_eq!(at(off::BCAST4, 4), [192, 0, 2, 255]);
        assert_eq!(at(off::LEVEL, 4), 3u32.to_ne_bytes());
        assert_eq!(at(off::CGID, 8), 0x1122_3344_5566_7788u64.to_ne_bytes());
        assert_eq!(at(off::V4 + 4, 4), [192, 0, 2, 12]);
        assert_eq!(at(off::LO6, 16)[15], 1);
        assert_eq!(at(off::V6, 16), "2001:db8::10".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(at(off::LOW_PORTS_UID, 4), (1u32 << 20).to_ne_bytes());
        assert_eq!(v.len(), VALUE_SIZE);
        // The first octet of an address is the first byte of its word, whatever the machine's byte order.
        assert_eq!(word([127, 0, 0, 1]).to_ne_bytes()[0], 127);
    }

    #[test]
    fn too_many_addresses_or_a_bad_loopback_are_refused() {
        let mut r = Rules { v4: vec![Ipv4Addr::new(192, 0, 2, 1); 9], v6: vec![], broadcast: None, lo4: Ipv4Addr::new(127, 1, 0, 1), lo6: None, low_ports_for: None };
        assert!(r.check().is_err());
        r.v4.truncate(1);
        r.lo4 = Ipv4Addr::new(10, 0, 0, 1);
        assert!(r.check().is_err());
    }
}
