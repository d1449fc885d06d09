//! The host's links and addresses, read through netlink: what configuration checks compare a
//! vserver's `device` and addresses against.

use std::net::IpAddr;

use super::netlink::{NlError, Netlink};
use super::{addr, links, sysctl};

/// One host link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLink {
    pub name: String,
    /// `bridge`, `veth`, `macvlan`…; `None` for a physical device.
    pub kind: Option<String>,
}

/// The routing settings that a routed vserver's uplink needs (from `/proc/sys/net`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Routing {
    pub ipv4_forwarding: bool,
    pub ipv6_forwarding: bool,
    /// `net.ipv6.conf.DEV.force_forwarding` or `net.ipv6.conf.all.forwarding`.
    pub ipv6_forwards: bool,
    pub ipv6_proxy_ndp: bool,
}

impl Routing {
    /// Reads the settings of `dev` in the calling process's namespace.
    pub fn read(dev: &str) -> Routing {
        let on = |family, dev, key| sysctl::get(family, "conf", dev, key).is_some_and(|v| v != 0);
        Routing {
            ipv4_forwarding: on("ipv4", dev, "forwarding"),
            ipv6_forwarding: on("ipv6", dev, "forwarding"),
            ipv6_forwards: on("ipv6", dev, "force_forwarding") || on("ipv6", "all", "forwarding"),
            ipv6_proxy_ndp: on("ipv6", dev, "proxy_ndp") || on("ipv6", "all", "proxy_ndp"),
        }
    }
}

/// Links and addresses of the host's network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSnapshot {
    pub links: Vec<HostLink>,
    /// (address, name of the link holding it).
    pub addresses: Vec<(IpAddr, String)>,
}

/// Reads the links and addresses of the calling process's network namespace.
pub fn host_snapshot() -> Result<HostSnapshot, NlError> {
    let mut nl = Netlink::open()?;
    let all = links::all(&mut nl)?;
    let addresses = addr::all(&mut nl)?
        .into_iter()
        .map(|(index, ip, _)| {
            let name = all.iter().find(|l| l.index == index).map(|l| l.name.clone()).unwrap_or_default();
            (ip, name)
        })
        .collect();
    let links = all.into_iter().map(|l| HostLink { name: l.name, kind: l.kind }).collect();
    Ok(HostSnapshot { links, addresses })
}
