//! Addresses, routes and proxy neighbour entries through netlink.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::netlink::{NlError, Netlink};
use crate::plan::IfAddr;

fn family(a: IpAddr) -> AddressFamily {
    match a {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    }
}

/// The broadcast address of `a`'s network, when it has one (prefixes up to /30).
pub fn broadcast_of(a: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    (prefix <= 30).then(|| {
        let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
        Ipv4Addr::from((u32::from(a) & mask) | !mask)
    })
}

/// True when `a` lies in the network `net/prefix`.
pub fn contains(net: IpAddr, prefix: u8, a: IpAddr) -> bool {
    match (net, a) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix.min(32)) };
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix.min(128) as u32) };
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// Adds `a` to the link `index`. IPv4 gets `broadcast`; `flags` carries NODAD, NOPREFIXROUTE.
pub fn add(nl: &mut Netlink, index: u32, a: IfAddr, broadcast: Option<Ipv4Addr>, flags: AddressFlags) -> Result<(), NlError> {
    let mut m = AddressMessage::default();
    m.header.family = family(a.addr);
    m.header.prefix_len = a.prefix;
    m.header.index = index;
    m.header.scope = match a.addr {
        IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => AddressScope::Link,
        _ => AddressScope::Universe,
    };
    m.attributes.push(AddressAttribute::Local(a.addr));
    m.attributes.push(AddressAttribute::Address(a.addr));
    if let Some(b) = broadcast {
        m.attributes.push(AddressAttribute::Broadcast(b));
    }
    if !flags.is_empty() {
        m.attributes.push(AddressAttribute::Flags(flags));
    }
    nl.ack(RouteNetlinkMessage::NewAddress(m), NLM_F_CREATE | NLM_F_EXCL)
}

/// Every address of the socket's namespace: (link index, address, prefix).
pub fn all(nl: &mut Netlink) -> Result<Vec<(u32, IpAddr, u8)>, NlError> {
    let out = nl.dump(RouteNetlinkMessage::GetAddress(AddressMessage::default()))?;
    let mut v = Vec::new();
    for m in out {
        let RouteNetlinkMessage::NewAddress(a) = m else { continue };
        // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer's on point-to-point links).
        let local = a.attributes.iter().find_map(|x| match x {
            AddressAttribute::Local(ip) => Some(*ip),
            _ => None,
        });
        let addr = local.or_else(|| {
            a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            })
        });
        if let Some(ip) = addr {
            v.push((a.header.index, ip, a.header.prefix_len));
        }
    }
    Ok(v)
}

/// A route in the main table: to `dest` (None: the default route) through the link `oif`,
/// via `gateway` when given (else the destination is on the link).
pub fn add_route(nl: &mut Netlink, dest: Option<IfAddr>, oif: u32, gateway: Option<IpAddr>, v6: bool) -> Result<(), NlError> {
    let mut m = RouteMessage::default();
    m.header.address_family = if v6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.protocol = RouteProtocol::Static;
    m.header.kind = RouteType::Unicast;
    m.header.scope = if gateway.is_none() && !v6 { RouteScope::Link } else { RouteScope::Universe };
    if let Some(d) = dest {
        m.header.destination_prefix_length = d.prefix;
        m.attributes.push(RouteAttribute::Destination(route_addr(d.addr)));
    }
    if let Some(g) = gateway {
        m.attributes.push(RouteAttribute::Gateway(route_addr(g)));
    }
    m.attributes.push(RouteAttribute::Oif(oif));
    m.header.flags = RouteFlags::empty();
    nl.ack(RouteNetlinkMessage::NewRoute(m), NLM_F_CREATE | NLM_F_EXCL)
}

fn route_addr(a: IpAddr) -> RouteAddress {
    match a {
        IpAddr::V4(v) => RouteAddress::Inet(v),
        IpAddr::V6(v) => RouteAddress::Inet6(v),
    }
}

fn proxy_message(dev: u32, a: IpAddr) -> NeighbourMessage {
    let mut m = NeighbourMessage::default();
    m.header.family = family(a);
    m.header.ifindex = dev;
    m.header.state = NeighbourState::Permanent;
    m.header.flags = NeighbourFlags::Proxy;
    m.attributes.push(NeighbourAttribute::Destination(match a {
        IpAddr::V4(v) => NeighbourAddress::Inet(v),
        IpAddr::V6(v) => NeighbourAddress::Inet6(v),
    }));
    m
}

/// A proxy ARP (IPv4) or proxy NDP (IPv6) entry: the host answers for `a` on the link `dev`.
pub fn add_proxy(nl: &mut Netlink, dev: u32, a: IpAddr) -> Result<(), NlError> {
    nl.ack(RouteNetlinkMessage::NewNeighbour(proxy_message(dev, a)), NLM_F_CREATE | NLM_F_EXCL)
}

pub fn del_proxy(nl: &mut Netlink, dev: u32, a: IpAddr) -> Result<(), NlError> {
    nl.ack(RouteNetlinkMessage::DelNeighbour(proxy_message(dev, a)), 0)
}

/// Every proxy neighbour entry of the socket's namespace: (link index, address).
pub fn proxies(nl: &mut Netlink) -> Result<Vec<(u32, IpAddr)>, NlError> {
    let mut q = NeighbourMessage::default();
    q.header.flags = NeighbourFlags::Proxy;
    let out = nl.dump(RouteNetlinkMessage::GetNeighbour(q))?;
    let mut v = Vec::new();
    for m in out {
        let RouteNetlinkMessage::NewNeighbour(n) = m else { continue };
        if !n.header.flags.contains(NeighbourFlags::Proxy) {
            continue;
        }
        for a in &n.attributes {
            match a {
                NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)) => v.push((n.header.ifindex, IpAddr::V4(*ip))),
                NeighbourAttribute::Destination(NeighbourAddress::Inet6(ip)) => v.push((n.header.ifindex, IpAddr::V6(*ip))),
                _ => {}
            }
        }
    }
    Ok(v)
}

/// The link-local address the veth host end holds (without duplicate address detection): the
/// IPv6 next hop of every routed vserver.
pub const HOST_END_LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcast_and_contains() {
        let a: Ipv4Addr = "192.0.2.10".parse().unwrap();
        assert_eq!(broadcast_of(a, 24), Some("192.0.2.255".parse().unwrap()));
        assert_eq!(broadcast_of(a, 30), Some("192.0.2.11".parse().unwrap()));
        assert_eq!(broadcast_of(a, 31), None);
        assert_eq!(broadcast_of(a, 0), Some(Ipv4Addr::BROADCAST));
        assert!(contains("192.0.2.10".parse().unwrap(), 24, "192.0.2.1".parse().unwrap()));
        assert!(!contains("192.0.2.10".parse().unwrap(), 24, "198.51.100.1".parse().unwrap()));
        assert!(contains("2001:db8::10".parse().unwrap(), 64, "2001:db8::1".parse().unwrap()));
        assert!(!contains("2001:db8::10".parse().unwrap(), 64, "2001:db8:1::1".parse().unwrap()));
        assert!(!contains("2001:db8::10".parse().unwrap(), 64, "192.0.2.1".parse().unwrap()));
    }
}
