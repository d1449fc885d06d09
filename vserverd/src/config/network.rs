//! `[network]`: the paper's IPROOT, IPROOTDEV, IPROOTMASK, IPROOTBCAST.

use std::net::{IpAddr, Ipv4Addr};

use super::diag::{Loc, Sink};
use super::model::{NetworkConfig, NetworkMode};
use super::resolve::{checked, int_in};
use super::schema::NetworkLayer;
use super::values::{check_interface, parse_mac, IpCidr};

pub(crate) fn resolve(sink: &mut Sink, net: NetworkLayer) -> NetworkConfig {
    let NetworkLayer { mode, device, addresses, broadcast, gateway, mtu, mac } = net;
    let mode_value = mode.as_ref().and_then(|m| match NetworkMode::ALL.iter().find(|(n, _)| *n == m.value) {
        Some((_, v)) => Some(*v),
        None => {
            sink.error(
                &m.loc(),
                format!("unknown network mode {:?} (expected none, host, macvlan, veth or bridge)", m.value),
            );
            None
        }
    });
    let mode_known = mode.is_none() || mode_value.is_some();
    let mode_value = mode_value.unwrap_or(NetworkMode::None);
    let mode_name = NetworkMode::ALL.iter().find(|(_, v)| *v == mode_value).map_or("none", |(n, _)| n);
    if let (NetworkMode::Host, Some(m)) = (mode_value, &mode) {
        sink.warning(&m.loc(), "network mode \"host\" is not isolated: the vserver shares the host's network stack");
    }

    // Keys that mean nothing without a link of the vserver's own.
    let mut set: Vec<(&str, Loc)> = Vec::new();
    set.extend(device.as_ref().map(|v| ("device", v.loc())));
    set.extend(addresses.as_ref().map(|v| ("addresses", v.loc())));
    set.extend(broadcast.as_ref().map(|v| ("broadcast", v.loc())));
    set.extend(gateway.as_ref().map(|v| ("gateway", v.loc())));
    set.extend(mtu.as_ref().map(|v| ("mtu", v.loc())));
    set.extend(mac.as_ref().map(|v| ("mac", v.loc())));
    if mode_known && matches!(mode_value, NetworkMode::None | NetworkMode::Host) {
        for (key, loc) in &set {
            sink.warning(loc, format!("`network.{key}` is ignored with mode \"{mode_name}\""));
        }
    }
    if let (NetworkMode::Macvlan | NetworkMode::Bridge, None, Some(m)) = (mode_value, &device, &mode) {
        sink.error(
            &m.loc(),
            format!("network mode \"{mode_name}\" needs `network.device` (the host interface or bridge)"),
        );
    }

    let device = device.and_then(|d| checked(sink, &d, check_interface(&d.value)));
    let mut cidrs = Vec::new();
    for a in addresses.iter().flat_map(|at| at.value.iter().map(move |s| (at, s))) {
        match a.1.get_ref().parse::<IpCidr>() {
            Ok(c) => cidrs.push(c),
            Err(e) => sink.error(&a.0.inner(a.1), e.to_string()),
        }
    }
    let broadcast = broadcast.and_then(|b| match b.value.parse::<Ipv4Addr>() {
        Ok(a) => Some(a),
        Err(_) => {
            sink.error(&b.loc(), format!("invalid broadcast address {:?} (expected an IPv4 address)", b.value));
            None
        }
    });
    let gateway = gateway.and_then(|g| match g.value.parse::<IpAddr>() {
        Ok(a) => Some(a),
        Err(_) => {
            sink.error(&g.loc(), format!("invalid gateway address {:?} (expected an IPv4 or IPv6 address)", g.value));
            None
        }
    });
    NetworkConfig {
        mode: mode_value,
        device,
        addresses: cidrs,
        broadcast,
        gateway,
        mtu: mtu.and_then(|m| int_in(sink, &m, 68..=65535, "network.mtu")),
        mac: mac.and_then(|m| match parse_mac(&m.value) {
            Ok(v) => Some(v),
            Err(e) => {
                sink.error(&m.loc(), e.to_string());
                None
            }
        }),
    }
}
