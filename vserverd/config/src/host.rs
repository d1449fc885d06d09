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
    /// Addresses added to the host's interfaces for bind vservers: (address, vserver).
    pub bound: Vec<(IpAddr, String)>,
}

static RUN_DIR: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();

/// Where running bind vservers record what they added to the host (the daemon's run
/// directory); set once, first thing (default `/run/vservers`).
pub fn set_run_dir(dir: &std::path::Path) {
    let _ = RUN_DIR.set(dir.to_path_buf());
}

/// The addresses bind vservers added to the host's interfaces, from their records: those of
/// running vservers, and those a killed monitor left (the vserver's next start, or any bind
/// start, removes them).
fn bound_addresses() -> Vec<(IpAddr, String)> {
    let dir = RUN_DIR.get().cloned().unwrap_or_else(|| vserver_engine::registry::DEFAULT_RUN_DIR.into());
    vserver_engine::bindaddr::lback::records(&dir)
        .into_iter()
        .flat_map(|(_, r)| r.added.into_iter().filter(|(dev, _)| dev != "lo").map(move |(_, a)| (a.addr, r.name.clone())))
        .collect()
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
        Ok(HostNet { links: snap.links, addresses: snap.addresses, routing, bound: bound_addresses() })
    }
}

/// Runs the checks against `host` on every valid vserver with addresses of its own (a link's,
/// or bind mode's): errors make the vserver invalid, as the loader's do.
pub fn host_checks(r: &mut LoadResult, host: &HostNet) {
    let mut invalid = BTreeSet::new();
    let mut diags = Vec::new();
    for (name, cfg) in &r.vservers {
        let net = &cfg.network;
        if !net.mode.has_addresses() {
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
        let bind = net.mode == NetworkMode::Bind;
        for (addr, place) in &sites.addresses {
            let held = host.addresses.iter().find(|(a, _)| a == addr).map(|(_, on)| on);
            match (host.bound.iter().find(|(a, _)| a == addr).map(|(_, n)| n), held) {
                // A running bind vserver's: its own (added at its start), or another's.
                (Some(owner), _) if owner == name && bind => {}
                (Some(owner), on) => {
                    let on = on.map(|d| format!(" (on {d})")).unwrap_or_default();
                    error(Some(place), format!("address {addr} is held by the bind vserver `{owner}`{on}"))
                }
                (None, Some(on)) if bind && net.manage_addresses => error(
                    Some(place),
                    format!("address {addr} is held by the host (on {on}) for another purpose: a bind vserver's addresses are added at its start (`manage_addresses = false` if they are the admin's)"),
                ),
                (None, None) if bind && !net.manage_addresses => error(
                    Some(place),
                    format!("address {addr} is on no interface of the host (with `manage_addresses = false` the admin adds it)"),
                ),
                (None, Some(on)) if !bind => error(Some(place), format!("address {addr} is held by the host (on {on})")),
                _ => {}
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
    if !r.vservers.values().any(|c| c.network.mode.has_addresses()) {
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
    bind_checks(r);
}

/// Whether this host has what bind mode needs (read once): a cgroup v2 tree, the kernel's BTF.
fn bind_support() -> &'static Result<(), String> {
    static SUPPORT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    SUPPORT.get_or_init(|| vserver_engine::bindaddr::host_support(vserver_engine::cgroup::host_layout().v2_mount.as_deref()))
}

/// A bind vserver on a host without what bind mode needs is invalid, and `check` says why.
fn bind_checks(r: &mut LoadResult) {
    let bind: Vec<String> = r.vservers.iter().filter(|(_, c)| c.network.mode == NetworkMode::Bind).map(|(n, _)| n.clone()).collect();
    if bind.is_empty() {
        return;
    }
    if let Err(why) = bind_support() {
        for name in bind {
            r.invalidate(&name, format!("network mode \"bind\": {why}"));
        }
    }
}
