//! `[network]`: the paper's IPROOT, IPROOTDEV, IPROOTMASK, IPROOTBCAST. The checks here need
//! nothing but the file; those against the host's interfaces are in `host`, those across
//! vservers in `cross`.

use std::net::{IpAddr, Ipv4Addr};

use super::diag::{Loc, Sink};
use super::model::{NetworkConfig, NetworkMode};
use super::schema::{checked, int_in, NetworkLayer, OneOrMany};
use super::values::{check_interface, parse_mac, IpCidr};

/// Where the network values were written: for checks made after resolving (across vservers,
/// against the host).
#[derive(Debug, Clone, Default)]
pub(crate) struct Sites {
    pub mode: Option<Loc>,
    pub device: Option<Loc>,
    pub addresses: Vec<(IpAddr, Loc)>,
}

impl Sites {
    pub fn places(&self, sink: &Sink) -> super::host::NetworkSites {
        super::host::NetworkSites {
            mode: self.mode.as_ref().map(|l| sink.place(l)),
            device: self.device.as_ref().map(|l| sink.place(l)),
            addresses: self.addresses.iter().map(|(a, l)| (*a, sink.place(l))).collect(),
        }
    }
}

/// True when `a` lies in the network `net/prefix`.
pub(crate) fn contains(net: &IpCidr, a: IpAddr) -> bool {
    vserver_engine::net::addr::contains(net.addr, net.prefix, a)
}

pub(crate) fn resolve(sink: &mut Sink, net: NetworkLayer) -> (NetworkConfig, Sites) {
    let NetworkLayer { mode, device, addresses, broadcast, gateway, mtu, mac, manage_addresses } = net;
    let mode_value = mode.as_ref().and_then(|m| match NetworkMode::ALL.iter().find(|(n, _)| *n == m.value) {
        Some((_, v)) => Some(*v),
        None => {
            sink.error(
                &m.loc(),
                format!("unknown network mode {:?} (expected none, host, macvlan, veth, bridge or bind)", m.value),
            );
            None
        }
    });
    let mode_known = mode.is_none() || mode_value.is_some();
    let mode_value = mode_value.unwrap_or(NetworkMode::None);
    let mode_name = mode_value.name();
    if let (NetworkMode::Host, Some(m)) = (mode_value, &mode) {
        sink.warning(&m.loc(), "network mode \"host\" is not isolated: the vserver shares the host's network stack");
    }

    // Keys that mean nothing in the mode: addresses without addresses of the vserver's own,
    // link settings without a link.
    let mut set: Vec<(&str, Loc, bool)> = Vec::new();
    let addrs = mode_value.has_addresses();
    let link = mode_value.has_link();
    set.extend(device.as_ref().map(|v| ("device", v.loc(), addrs)));
    set.extend(addresses.as_ref().map(|v| ("addresses", v.loc(), addrs)));
    set.extend(broadcast.as_ref().map(|v| ("broadcast", v.loc(), addrs)));
    set.extend(gateway.as_ref().map(|v| ("gateway", v.loc(), link)));
    set.extend(mtu.as_ref().map(|v| ("mtu", v.loc(), link)));
    set.extend(mac.as_ref().map(|v| ("mac", v.loc(), link)));
    set.extend(manage_addresses.as_ref().map(|v| ("manage_addresses", v.loc(), mode_value == NetworkMode::Bind)));
    if mode_known {
        for (key, loc, _) in set.iter().filter(|(_, _, meaningful)| !meaningful) {
            sink.warning(loc, format!("`network.{key}` is ignored with mode \"{mode_name}\""));
        }
    }
    if let (NetworkMode::Macvlan | NetworkMode::Bridge, None, Some(m)) = (mode_value, &device, &mode) {
        sink.error(
            &m.loc(),
            format!("network mode \"{mode_name}\" needs `network.device` (the host interface or bridge)"),
        );
    }
    if let (true, None, Some(m)) = (mode_value.has_link(), &addresses, &mode) {
        sink.warning(&m.loc(), format!("network mode \"{mode_name}\" without `network.addresses`: the vserver's link has no address"));
    }
    let manage = manage_addresses.as_ref().map_or(true, |m| m.value);
    if let (NetworkMode::Bind, Some(m)) = (mode_value, &mode) {
        if addresses.as_ref().map_or(true, |a| a.value.is_empty()) {
            sink.error(&m.loc(), "network mode \"bind\" needs `network.addresses`: a bind vserver may use its own addresses only");
        }
        if manage && device.is_none() {
            sink.error(
                &m.loc(),
                "network mode \"bind\" needs `network.device`, the host interface its addresses are added to (or `manage_addresses = false` when the admin keeps them on the host)",
            );
        }
    }

    let mut sites = Sites { mode: mode.as_ref().map(|m| m.loc()), device: device.as_ref().map(|d| d.loc()), addresses: Vec::new() };
    let device = device.and_then(|d| checked(sink, &d, check_interface(&d.value)));
    let mut cidrs: Vec<IpCidr> = Vec::new();
    for (at, s) in addresses.iter().flat_map(|at| at.value.iter().map(move |s| (at, s))) {
        let loc = at.inner(s);
        match s.get_ref().parse::<IpCidr>() {
            Ok(c) if c.addr.is_loopback() => sink.error(&loc, format!("address {c} is a loopback address")),
            Ok(c) if mode_value == NetworkMode::Bind && !bindable(c.addr) => {
                sink.error(&loc, format!("address {} cannot be a bind vserver's (link-local, multicast or unspecified)", c.addr))
            }
            Ok(c) if mode_value == NetworkMode::Bind && cidrs.iter().filter(|o| o.addr.is_ipv4() == c.addr.is_ipv4()).count() >= BIND_MAX_ADDRS => {
                sink.error(&loc, format!("address {}: a bind vserver has at most {BIND_MAX_ADDRS} addresses of each family", c.addr))
            }
            Ok(c) if cidrs.iter().any(|o| o.addr == c.addr) => sink.error(&loc, format!("address {} is listed twice", c.addr)),
            Ok(c) => {
                sites.addresses.push((c.addr, loc));
                cidrs.push(c);
            }
            Err(e) => sink.error(&loc, e.to_string()),
        }
    }
    let v4_nets: Vec<&IpCidr> = cidrs.iter().filter(|c| c.addr.is_ipv4()).collect();
    let list = |nets: &[&IpCidr]| nets.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ");
    let broadcast = broadcast.and_then(|b| match b.value.parse::<Ipv4Addr>() {
        Ok(a) if mode_value.has_addresses() && !v4_nets.is_empty() && !v4_nets.iter().any(|n| contains(n, IpAddr::V4(a))) => {
            sink.error(&b.loc(), format!("broadcast {a} is not in the network of an IPv4 address ({})", list(&v4_nets)));
            None
        }
        Ok(a) => Some(a),
        Err(_) => {
            sink.error(&b.loc(), format!("invalid broadcast address {:?} (expected an IPv4 address)", b.value));
            None
        }
    });
    let gateways = gateway.map(|g| gateways(sink, &g, mode_value, &cidrs)).unwrap_or_default();
    let config = NetworkConfig {
        mode: mode_value,
        device,
        addresses: cidrs,
        broadcast,
        gateways,
        mtu: mtu.and_then(|m| int_in(sink, &m, 68..=65535, "network.mtu")),
        mac: mac.and_then(|m| match parse_mac(&m.value) {
            Ok(v) => Some(v),
            Err(e) => {
                sink.error(&m.loc(), e.to_string());
                None
            }
        }),
        manage_addresses: manage,
    };
    (config, sites)
}

/// How many addresses of each family the bind-mode programs hold.
const BIND_MAX_ADDRS: usize = vserver_engine::bindaddr::rules::MAX_ADDRS;

/// An address a bind vserver may have: one a socket can bind and a peer can reach.
fn bindable(a: IpAddr) -> bool {
    let link_local = matches!(a, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
        || matches!(a, IpAddr::V4(v4) if v4.is_link_local());
    !(link_local || a.is_multicast() || a.is_unspecified())
}

/// The capabilities a bind vserver cannot have: it shares the host's network stack. `added`
/// holds each `capabilities.add` entry and where it was written.
pub(crate) fn check_bind_caps(sink: &mut Sink, mode: NetworkMode, caps: vserver_engine::CapSet, added: &[(String, Loc)]) {
    if mode != NetworkMode::Bind {
        return;
    }
    const WHY: [(&str, &str); 4] = [
        ("NET_RAW", "raw and packet sockets would see and send any traffic of the host's interfaces"),
        ("NET_ADMIN", "it would configure the host's own interfaces, addresses, routes and firewall"),
        ("SYS_ADMIN", "it could leave its cgroup, and with it the socket hooks that tie it to its addresses"),
        ("BPF", "it could load programs of its own beside the socket hooks"),
    ];
    for (name, why) in WHY {
        let Ok(cap) = vserver_engine::Capability::parse(name) else { continue };
        if !caps.contains(cap) {
            continue;
        }
        let at = added.iter().find(|(n, _)| vserver_engine::Capability::parse(n).is_ok_and(|c| c == cap));
        if let Some((_, loc)) = at {
            sink.error(loc, format!("a bind vserver (network mode \"bind\") cannot have {name}: it shares the host's network stack, and {why}"));
        }
    }
}

/// `gateway = "192.0.2.1"` or `["192.0.2.1", "2001:db8::1"]`: at most one per family, each in
/// the network of an address of its family (IPv6: or link-local).
fn gateways(sink: &mut Sink, at: &super::schema::At<OneOrMany>, mode: NetworkMode, cidrs: &[IpCidr]) -> Vec<IpAddr> {
    let items: Vec<(String, Loc)> = match &at.value {
        OneOrMany::One(s) => vec![(s.clone(), at.loc())],
        OneOrMany::Many(v) => v.iter().map(|s| (s.get_ref().clone(), at.inner(s))).collect(),
    };
    if mode == NetworkMode::Veth {
        sink.warning(&at.loc(), "`network.gateway` is not used with mode \"veth\": the host routes the vserver");
        return Vec::new();
    }
    let mut out: Vec<IpAddr> = Vec::new();
    for (text, loc) in items {
        let Ok(g) = text.parse::<IpAddr>() else {
            sink.error(&loc, format!("invalid gateway address {text:?} (expected an IPv4 or IPv6 address)"));
            continue;
        };
        if !mode.has_link() {
            continue; // ignored, and said so
        }
        let family = if g.is_ipv4() { "IPv4" } else { "IPv6" };
        let nets: Vec<&IpCidr> = cidrs.iter().filter(|c| c.addr.is_ipv4() == g.is_ipv4()).collect();
        let link_local = matches!(g, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80);
        if out.iter().any(|o| o.is_ipv4() == g.is_ipv4()) {
            sink.error(&loc, format!("a second {family} gateway ({g}): one default route per family"));
        } else if nets.is_empty() {
            sink.error(&loc, format!("gateway {g} has no {family} address to go with in `network.addresses`"));
        } else if !link_local && !nets.iter().any(|n| contains(n, g)) {
            let list = nets.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ");
            sink.error(&loc, format!("gateway {g} is not in the network of an {family} address ({list})"));
        } else {
            out.push(g);
        }
    }
    out
}
