//! Binding one cgroup to its addresses, and undoing it: the step `bind-addr` (a private
//! loopback slot; the addresses added to `device`, the private IPv6 loopback to `lo`) and the
//! step `bpf-attach` (the programs on the cgroup, its rules written). Used by the engine for a
//! bind-mode context (before pid 1 is born, in the cgroup it is born in) and by `chbind`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, CacheInfo};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use super::lback::{self, Claim, Record};
use super::{ProgramSet, Rules, SetIds};
use crate::error::{SetupError, Step};
use crate::net::addr;
use crate::net::links;
use crate::net::netlink::{Netlink, NlError};
use crate::plan::IfAddr;

/// What a bind-mode context (or `chbind`'s command) may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindPlan {
    /// The addresses, IPv4 and IPv6; the first of each family is what a wildcard bind gets.
    pub addresses: Vec<IfAddr>,
    /// The host interface the addresses are added to for the context's life; `None`: they are
    /// the admin's, and must be on some interface of the host already.
    pub device: Option<String>,
    /// IPROOTBCAST: a broadcast address the context's sockets may bind and receive on; also the
    /// broadcast given to the IPv4 address whose network holds it.
    pub broadcast: Option<Ipv4Addr>,
    /// The cgroup (v2) the programs go on; `None`: the one pid 1 is born in.
    pub cgroup: Option<PathBuf>,
    /// A program set loaded by another process (the daemon's), by id; `None`, or a set that is
    /// gone: loaded here.
    pub programs: Option<SetIds>,
}

impl BindPlan {
    pub fn new(addresses: Vec<IfAddr>, device: Option<&str>) -> BindPlan {
        BindPlan { addresses, device: device.map(str::to_string), broadcast: None, cgroup: None, programs: None }
    }
}

/// The capabilities a bind-mode context never has: it shares the host's network stack.
pub const FORBIDDEN_CAPS: [&str; 4] = ["NET_RAW", "NET_ADMIN", "SYS_ADMIN", "BPF"];

/// A launch plan's bind part, checked before anything is made.
pub fn validate(plan: &crate::plan::LaunchPlan) -> Result<(), SetupError> {
    let Some(b) = &plan.bind else { return Ok(()) };
    let bad = |what: String| Err(SetupError::detail(Step::Validate, None, what));
    if plan.network != crate::plan::Network::Host || !plan.links.is_empty() {
        return bad("bind mode shares the host's network stack: no network namespace, no links".into());
    }
    for name in FORBIDDEN_CAPS {
        if crate::caps::Capability::parse(name).is_ok_and(|c| plan.caps.contains(c)) {
            return bad(format!("a bind-mode context cannot have CAP_{name}: it shares the host's network stack"));
        }
    }
    if b.addresses.is_empty() {
        return bad("bind mode needs at least one address".into());
    }
    for (i, a) in b.addresses.iter().enumerate() {
        let max = if a.addr.is_ipv4() { 32 } else { 128 };
        if a.prefix > max
            || a.addr.is_unspecified()
            || a.addr.is_multicast()
            || a.addr.is_loopback()
            || b.addresses[..i].iter().any(|o| o.addr == a.addr)
        {
            return bad(format!("bad or repeated address {a}"));
        }
    }
    for v4 in [true, false] {
        if b.addresses.iter().filter(|a| a.addr.is_ipv4() == v4).count() > super::rules::MAX_ADDRS {
            return bad(format!("at most {} addresses of each family", super::rules::MAX_ADDRS));
        }
    }
    if let Some(d) = &b.device {
        if d.is_empty() || d.len() > 15 || d.contains(['/', ':']) || d.chars().any(|c| c.is_whitespace()) {
            return bad(format!("bad interface name {d:?}"));
        }
    }
    Ok(())
}

/// The addresses of the host interface `name` a bound command may use (`chbind --ip eth0`):
/// its IPv4 addresses and its IPv6 addresses but link-local ones, as the host holds them.
pub fn interface_addresses(name: &str) -> Result<Vec<IfAddr>, SetupError> {
    let mut nl = Netlink::open().map_err(|e| nl_err("netlink".into(), "open a netlink socket", e))?;
    let link = links::get(&mut nl, name).map_err(|e| nl_err(name.to_string(), "no such interface on the host", e))?;
    let all = addr::all(&mut nl).map_err(|e| nl_err(name.to_string(), "list its addresses", e))?;
    Ok(all
        .into_iter()
        .filter(|(i, a, _)| *i == link.index && !matches!(a, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80))
        .map(|(_, addr, prefix)| IfAddr { addr, prefix })
        .collect())
}

/// A bound cgroup: what [`Bound::teardown`] removes. Plain data (serialized, it is handed to a
/// program this one execs: a monitor's end).
#[derive(Debug, Serialize, Deserialize)]
pub struct Bound {
    pub cgroup: PathBuf,
    pub slot: u16,
    pub rules: Rules,
    claim: Option<Claim>,
    /// (interface index, address) added to the host.
    added: Vec<(u32, IfAddr)>,
}

fn nl_err(object: String, what: &str, e: NlError) -> SetupError {
    let mut s = SetupError::new(Step::BindAddr, Some(object), e.errno);
    s.detail = Some(match e.message {
        Some(m) => format!("{what}: {m}"),
        None => what.to_string(),
    });
    s
}

fn address_message(index: u32, a: IfAddr) -> AddressMessage {
    let mut m = AddressMessage::default();
    m.header.family = if a.addr.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    m.header.prefix_len = a.prefix;
    m.header.index = index;
    m.attributes.push(AddressAttribute::Local(a.addr));
    m.attributes.push(AddressAttribute::Address(a.addr));
    m
}

/// Adds an IPv6 address for the context: without duplicate address detection (services bind
/// it at once) and deprecated (preferred lifetime 0, valid for ever), so that the host's own
/// connections never pick it as their source; a socket bound to it uses it all the same.
fn add_v6(nl: &mut Netlink, index: u32, a: IfAddr) -> Result<(), NlError> {
    let mut m = address_message(index, a);
    m.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
    let mut lifetimes = CacheInfo::default();
    lifetimes.ifa_preferred = 0;
    lifetimes.ifa_valid = u32::MAX;
    m.attributes.push(AddressAttribute::CacheInfo(lifetimes));
    nl.ack(RouteNetlinkMessage::NewAddress(m), NLM_F_CREATE | NLM_F_EXCL)
}

fn delete_address(nl: &mut Netlink, index: u32, a: IfAddr) -> Result<(), NlError> {
    nl.ack(RouteNetlinkMessage::DelAddress(address_message(index, a)), 0)
}

/// The broadcast address to give `a`: `broadcast` when its network holds it, else its network's.
fn broadcast_for(a: Ipv4Addr, prefix: u8, broadcast: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
    match broadcast {
        Some(b) if addr::contains(IpAddr::V4(a), prefix, IpAddr::V4(b)) => Some(b),
        _ => addr::broadcast_of(a, prefix),
    }
}

/// True when the host holds `a` on one of its interfaces: its route (table local) is of type
/// local. One lookup, however many addresses the host has.
fn is_local(nl: &mut Netlink, a: IpAddr) -> Result<bool, SetupError> {
    use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
    let mut m = RouteMessage::default();
    m.header.address_family = if a.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    m.header.destination_prefix_length = if a.is_ipv4() { 32 } else { 128 };
    m.attributes.push(RouteAttribute::Destination(match a {
        IpAddr::V4(v) => RouteAddress::Inet(v),
        IpAddr::V6(v) => RouteAddress::Inet6(v),
    }));
    match nl.get(RouteNetlinkMessage::GetRoute(m)) {
        Ok(RouteNetlinkMessage::NewRoute(r)) => Ok(r.header.kind == RouteType::Local),
        Ok(_) => Ok(false),
        // No route at all (a host without a default route): not local.
        Err(e) if matches!(e.errno, Errno::ENETUNREACH | Errno::EHOSTUNREACH) => Ok(false),
        Err(e) => Err(nl_err(a.to_string(), "look up the address", e)),
    }
}

/// The interface holding `a`, for messages.
fn holder(a: IpAddr) -> String {
    let Ok(mut nl) = Netlink::open() else { return "an interface".into() };
    let held = addr::all(&mut nl).unwrap_or_default();
    let index = held.iter().find(|(_, h, _)| *h == a).map(|(i, _, _)| *i);
    let name = index.and_then(|i| links::all(&mut nl).ok()?.into_iter().find(|l| l.index == i).map(|l| l.name));
    name.unwrap_or_else(|| "an interface".into())
}

/// Removes what a stale record (a killed monitor's) added to the host, where it is still there.
fn sweep(stale: &[(u16, Record)]) {
    if stale.is_empty() {
        return;
    }
    let Ok(mut nl) = Netlink::open() else { return };
    let nl = &mut nl;
    let Ok(held) = addr::all(nl) else { return };
    let Ok(links) = links::all(nl) else { return };
    for (_, r) in stale {
        for (dev, a) in &r.added {
            let Some(l) = links.iter().find(|l| &l.name == dev) else { continue };
            if held.iter().any(|(i, h, _)| *i == l.index && *h == a.addr) {
                let _ = delete_address(nl, l.index, *a);
            }
        }
    }
}

/// Binds the cgroup `cgroup` (v2) as `plan` says, for the context `name` numbered `context`
/// (0: none); the private loopback slot is claimed under `run_dir`. `low_ports_for`: the host
/// uid that may bind ports below 1024 of these addresses without CAP_NET_BIND_SERVICE over the
/// host's network (root of the context's user namespace, which holds that capability over its
/// own namespaces only). On failure nothing of it stays.
pub fn bind(plan: &BindPlan, name: &str, context: u32, run_dir: &Path, cgroup: &Path, low_ports_for: Option<u32>) -> Result<Bound, SetupError> {
    let (cgroup_id, _) = super::identity(cgroup)?;
    let family = |v4: bool| plan.addresses.iter().filter(move |a| a.addr.is_ipv4() == v4).map(|a| a.addr);
    let mut rules = Rules {
        v4: family(true).filter_map(|a| if let IpAddr::V4(v) = a { Some(v) } else { None }).collect(),
        v6: family(false).filter_map(|a| if let IpAddr::V6(v) = a { Some(v) } else { None }).collect(),
        broadcast: plan.broadcast,
        lo4: Ipv4Addr::LOCALHOST,
        lo6: None,
        low_ports_for,
    };
    rules.check().map_err(|e| SetupError::detail(Step::BindAddr, None, e))?;
    // Requests and answers only (a dump opens a socket of its own): a small buffer, so that the
    // monitor that lives on keeps no 32 kB of heap from its start.
    let mut nl = Netlink::open_with(8192).map_err(|e| nl_err("netlink".into(), "open a netlink socket", e))?;
    // The host first: nothing is claimed or added for a plan it refuses.
    let device = check_host(&mut nl, plan)?;
    let lo6 = |slot| IfAddr { addr: IpAddr::V6(lback::lo6(slot)), prefix: 128 };
    let (claim, stale) = lback::claim(run_dir, context, |slot| {
        let mut added: Vec<(String, IfAddr)> = device.iter().flat_map(|(_, dev)| plan.addresses.iter().map(move |a| (dev.clone(), *a))).collect();
        added.push(("lo".into(), lo6(slot)));
        Record { name: name.to_string(), cgroup: cgroup.to_path_buf(), cgroup_id, added }
    })?;
    sweep(&stale);
    let slot = claim.slot;
    rules.lo4 = lback::lo4(slot);
    let mut b = Bound { cgroup: cgroup.to_path_buf(), slot, rules, claim: Some(claim), added: Vec::new() };
    match b.setup(plan, &mut nl, device, lo6(slot)) {
        Ok(()) => Ok(b),
        Err(e) => {
            b.teardown();
            Err(e)
        }
    }
}

/// The host against the plan: `device` exists (its index and name), and the host holds none of
/// the addresses (with a device) or all of them (the admin's).
fn check_host(nl: &mut Netlink, plan: &BindPlan) -> Result<Option<(u32, String)>, SetupError> {
    match &plan.device {
        Some(dev) => {
            let index = links::get(nl, dev)
                .map_err(|e| SetupError::new(Step::BindAddr, Some(dev.clone()), e.errno).with_detail("no such device on the host"))?
                .index;
            for a in &plan.addresses {
                if is_local(nl, a.addr)? {
                    return Err(SetupError::new(Step::BindAddr, Some(a.addr.to_string()), Errno::EADDRINUSE)
                        .with_detail(format!("the host holds this address (on {})", holder(a.addr))));
                }
            }
            Ok(Some((index, dev.clone())))
        }
        None => {
            for a in &plan.addresses {
                if !is_local(nl, a.addr)? {
                    return Err(SetupError::new(Step::BindAddr, Some(a.addr.to_string()), Errno::EADDRNOTAVAIL)
                        .with_detail("no interface of the host holds this address (the admin adds it first)"));
                }
            }
            Ok(None)
        }
    }
}

impl Bound {
    fn setup(&mut self, plan: &BindPlan, nl: &mut Netlink, device: Option<(u32, String)>, lo6: IfAddr) -> Result<(), SetupError> {
        if let Some((index, dev)) = device {
            for a in &plan.addresses {
                match a.addr {
                    IpAddr::V4(v4) => addr::add(nl, index, *a, broadcast_for(v4, a.prefix, plan.broadcast), AddressFlags::empty()),
                    IpAddr::V6(_) => add_v6(nl, index, *a),
                }
                .map_err(|e| nl_err(format!("{a} on {dev}"), "add the address", e))?;
                self.added.push((index, *a));
            }
        }
        // The private IPv6 loopback, on `lo` (127.0.0.0/8 is local already). A host without
        // IPv6 has none: ::1 is then refused inside.
        if let Ok(lo) = links::get(nl, "lo") {
            match add_v6(nl, lo.index, lo6) {
                // EEXIST: left by a killed run of this slot; the slot is ours now, and so is the address.
                Ok(()) | Err(NlError { errno: Errno::EEXIST, .. }) => {
                    self.added.push((lo.index, lo6));
                    self.rules.lo6 = Some(lback::lo6(self.slot));
                }
                Err(_) => {}
            }
        }
        let set = match plan.programs.as_ref().map(ProgramSet::open) {
            Some(Ok(set)) => set,
            // None given, or the daemon that loaded them is gone with them: a set of our own.
            _ => ProgramSet::load()?,
        };
        set.attach(&self.cgroup, &self.rules)
    }

    /// A copy for [`crate::spawn::NetworkHandover`] (this one keeps its claim too: whichever
    /// process tears down first releases the slot).
    pub fn handover(&self) -> Bound {
        Bound {
            cgroup: self.cgroup.clone(),
            slot: self.slot,
            rules: self.rules.clone(),
            claim: self.claim.as_ref().map(|c| c.duplicate()),
            added: self.added.clone(),
        }
    }

    /// Detaches the programs (when the cgroup is still there), removes the addresses added to
    /// the host and frees the loopback slot. Idempotent.
    pub fn teardown(&mut self) {
        if self.cgroup.exists() {
            let _ = super::detach_all(&self.cgroup);
        }
        if !self.added.is_empty() {
            if let Ok(mut nl) = Netlink::open() {
                for (index, a) in self.added.drain(..) {
                    let _ = delete_address(&mut nl, index, a);
                }
            }
        }
        if let Some(c) = self.claim.take() {
            c.release();
        }
    }
}
