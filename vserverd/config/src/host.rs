//! Checks against the host's network: a vserver's `device` exists (a bridge for bridge mode),
//! the host holds none of its addresses, and a routed vserver's uplink forwards. They need the
//! host's state, so they are a pass of their own over a load result, with that state as plain
//! data ([`HostNet`]): the loader stays pure, and tests pass a made-up host.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use vserver_engine::net::snapshot::{HostLink, Routing};

use super::diag::{Diagnostic, Place, Severity};
use super::model::NetworkMode;
use super::LoadResult;

/// Where a vserver's `[network]` values were written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSites {
    pub mode: Option<Place>,
    pub device: Option<Place>,
    pub addresses: Vec<(IpAddr, Place)>,
}

/// What the checks need to know of the host's network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostNet {
    pub links: Vec<HostLink>,
    /// (address, the interface holding it).
    pub addresses: Vec<(IpAddr, String)>,
    /// The routing settings of routed (veth) vservers' uplinks, by interface name.
    pub routing: BTreeMap<String, Routing>,
}

impl HostNet {
    /// Reads the host's links and addresses (netlink) and the uplinks' settings (`/proc/sys`).
    pub fn read(r: &LoadResult) -> Result<HostNet, String> {
        let snap = vserver_engine::net::host_snapshot().map_err(|e| e.to_string())?;
        let routing = r
            .vservers
            .values()
            .filter(|c| c.network.mode == NetworkMode::Veth)
            .filter_map(|c| c.network.device.clone())
            .map(|d| {
                let rt = Routing::read(&d);
                (d, rt)
            })
            .collect();
        Ok(HostNet { links: snap.links, addresses: snap.addresses, routing })
    }
}

/// Runs the checks against `host` on every valid vserver with a link of its own: errors make
/// the vserver invalid, as the loader's do.
pub fn host_checks(r: &mut LoadResult, host: &HostNet) {
    let mut invalid = BTreeSet::new();
    let mut diags = Vec::new();
    for (name, cfg) in &r.vservers {
        let net = &cfg.network;
        if !net.mode.has_link() {
            continue;
        }
        let sites = r.network_sites.get(name).cloned().unwrap_or_default();
        let fallback = || Place { path: cfg.files.last().cloned().unwrap_or_default(), line: 1, col: 1 };
        let mut error = |place: Option<&Place>, msg: String| {
            diags.push(place.cloned().unwrap_or_else(fallback).diagnostic(Severity::Error, msg));
            invalid.insert(name.clone());
        };
        if let Some(dev) = &net.device {
            match host.links.iter().find(|l| &l.name == dev) {
                None => error(sites.device.as_ref(), format!("unknown device `{dev}`: the host has no such interface")),
                Some(l) if net.mode == NetworkMode::Bridge && l.kind.as_deref() != Some("bridge") => {
                    error(sites.device.as_ref(), format!("`{dev}` is not a bridge (network mode \"bridge\" needs one)"))
                }
                Some(_) => {}
            }
        }
        for (addr, place) in &sites.addresses {
            if let Some((_, on)) = host.addresses.iter().find(|(a, _)| a == addr) {
                error(Some(place), format!("address {addr} is held by the host (on {on})"));
            }
        }
        if let (NetworkMode::Veth, Some(dev), Some(place)) = (net.mode, &net.device, &sites.device) {
            let rt = host.routing.get(dev).copied().unwrap_or_default();
            let mut missing = Vec::new();
            if net.addresses.iter().any(|a| a.addr.is_ipv4()) && !rt.ipv4_forwarding {
                missing.push(format!("net.ipv4.conf.{dev}.forwarding"));
            }
            if net.addresses.iter().any(|a| a.addr.is_ipv6()) {
                if !rt.ipv6_forwarding {
                    missing.push(format!("net.ipv6.conf.{dev}.forwarding"));
                }
                if !rt.ipv6_forwards {
                    missing.push(format!("net.ipv6.conf.{dev}.force_forwarding (or net.ipv6.conf.all.forwarding)"));
                }
                if !rt.ipv6_proxy_ndp {
                    missing.push(format!("net.ipv6.conf.{dev}.proxy_ndp"));
                }
            }
            if !missing.is_empty() {
                let msg = format!(
                    "`{dev}` does not route for the vserver: the LAN reaches it only once these are 1: {}",
                    missing.join(", ")
                );
                diags.push(place.diagnostic(Severity::Warning, msg));
            }
        }
    }
    for name in &invalid {
        r.vservers.remove(name);
        r.network_sites.remove(name);
    }
    r.invalid.extend(invalid);
    r.diagnostics.extend(diags);
    r.diagnostics.sort_by(|a, b| {
        (&a.path, a.line, a.col, a.severity, &a.message).cmp(&(&b.path, b.line, b.col, b.severity, &b.message))
    });
    r.diagnostics.dedup();
}

/// Reads the host and runs [`host_checks`], when some vserver has a link of its own; a host
/// that cannot be read is reported as a warning at `dir`.
pub(crate) fn check_live(r: &mut LoadResult, dir: &std::path::Path) {
    if !r.vservers.values().any(|c| c.network.mode.has_link()) {
        return;
    }
    match HostNet::read(r) {
        Ok(h) => host_checks(r, &h),
        Err(e) => r.diagnostics.push(Diagnostic::new(
            dir,
            1,
            1,
            Severity::Warning,
            format!("cannot read the host's network ({e}): devices and addresses not checked"),
        )),
    }
}

/// The checks of a loaded configuration against this host's cgroups and the roots' filesystems:
/// a vserver whose limits need a cgroup controller the host lacks (and not listed in
/// `limits.optional`), or a `disk` limit on a root that cannot carry one (checked when the root
/// exists; a root built later is checked at its start), is invalid, so `check` says so and no
/// start is tried.
pub fn limits_checks(r: &mut LoadResult) {
    use vserver_engine::{cgroup, quota};
    let layout = cgroup::host_layout();
    let bad: Vec<(String, String)> = r
        .vservers
        .iter()
        .filter_map(|(name, cfg)| {
            let cgroups = cgroup::plan(layout, name, &cfg.limits, cfg.fakeinit).err().map(|e| e.to_string());
            let disk = || cfg.limits.disk.filter(|_| cfg.root.exists()).and_then(|_| quota::check(&cfg.root).err()).map(|e| e.to_string());
            cgroups.or_else(disk).map(|m| (name.clone(), m))
        })
        .collect();
    for (name, message) in bad {
        r.invalidate(&name, message);
    }
}
