//! The network host step: the plan's links made for a child's network namespace, configured
//! on both sides before the child goes on, and removed again when the context ends or a later
//! step fails.
//!
//! Done by the parent (the monitor), in this order, each failure naming its step and object:
//! 1. `net-check`: every `device` exists (a bridge for bridge mode); the host holds none of the
//!    addresses;
//! 2. `net-link`: the link is made with its vserver end created inside the child's namespace
//!    (an fd of `/proc/PID/ns/net`): a macvlan on `device` (up), or a veth pair whose host end
//!    (`vs<ctx>h<i>`, up) stays here (joining the bridge in bridge mode);
//! 3. `net-host` (veth): the host end routes (forwarding, proxy ARP for the vserver, strict
//!    reverse-path filter, `fe80::1` as the vserver's IPv6 next hop), a host route to each
//!    address, and a proxy ARP/NDP entry for each address on `device` when one is named;
//! 4. `net-inside`: through a netlink socket opened inside the child's namespace (the parent
//!    enters it for that one call, before step 2, so that every link made inside is known): a
//!    veth end up, the addresses (IPv6 without duplicate address detection, so
//!    services can bind at once), then the default routes; a macvlan or bridged link's
//!    addresses are announced (gratuitous ARP, unsolicited neighbour advertisement:
//!    [`super::announce`]).

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

use netlink_packet_route::address::AddressFlags;
use nix::errno::Errno;

use super::addr::{self, HOST_END_LL};
use super::links::{self, End};
use super::netlink::{NlError, Netlink};
use super::{ns, sysctl};
use crate::error::{SetupError, Step};
use crate::plan::{IfAddr, LaunchPlan, LinkMode, LinkPlan};

/// What was made for a context's links, so that it can all be removed again.
#[derive(Debug, Default)]
pub struct Attached {
    /// A socket inside the context's namespace: it keeps the namespace (and so its links)
    /// alive until the teardown removes them, so none lingers in a dying namespace.
    inside: Option<Netlink>,
    /// Links made inside (indexes in the context's namespace).
    inside_links: Vec<(u32, String)>,
    /// veth host ends (index, name); their routes go with them.
    host_ends: Vec<(u32, String)>,
    /// Proxy ARP/NDP entries: (device index, device name, address).
    proxies: Vec<(u32, String, IpAddr)>,
    /// How long each step took, in nanoseconds (benchmarks).
    pub times: Vec<(Step, u64)>,
}

/// [`Attached`] handed over to a program this one execs (a monitor's end): what it made, and
/// the descriptor of its socket inside the context's namespace, left open across the exec.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AttachedRecord {
    pub inside: Option<std::os::fd::RawFd>,
    pub inside_links: Vec<(u32, String)>,
    pub host_ends: Vec<(u32, String)>,
    pub proxies: Vec<(u32, String, IpAddr)>,
}

impl Attached {
    /// The record of what was made; the inside socket is left open across an exec
    /// (close-on-exec cleared), so that the program exec'd can take it over.
    pub fn record(&self) -> AttachedRecord {
        let inside = self.inside.as_ref().map(|nl| {
            unsafe { libc::fcntl(nl.fd(), libc::F_SETFD, 0) };
            nl.fd()
        });
        AttachedRecord { inside, inside_links: self.inside_links.clone(), host_ends: self.host_ends.clone(), proxies: self.proxies.clone() }
    }

    /// What a program that exec'd this one made, from its [`Attached::record`].
    ///
    /// # Safety
    /// The record's inside descriptor is the socket it names, open, and owned by nothing else
    /// in this process.
    pub unsafe fn from_record(r: AttachedRecord) -> Attached {
        // The teardown's requests and answers need a few kB.
        let inside = r.inside.map(|fd| Netlink::from_fd(fd, 8 * 1024));
        Attached { inside, inside_links: r.inside_links, host_ends: r.host_ends, proxies: r.proxies, times: Vec::new() }
    }

    /// The host ends' names, for messages and tests.
    pub fn host_ends(&self) -> Vec<String> {
        self.host_ends.iter().map(|(_, n)| n.clone()).collect()
    }

    /// Removes everything made, in reverse: proxy entries, host ends (with their routes and
    /// peers), links inside; then lets the namespace go. Idempotent; what is already gone is
    /// skipped.
    pub fn teardown(&mut self) {
        if !self.proxies.is_empty() || !self.host_ends.is_empty() {
            if let Ok(mut host) = Netlink::open() {
                for (dev, _, a) in self.proxies.drain(..) {
                    let _ = addr::del_proxy(&mut host, dev, a);
                }
                for (index, name) in self.host_ends.drain(..) {
                    // The index is only trusted while it still carries our name.
                    if links::get(&mut host, &name).map(|l| l.index) == Ok(index) {
                        let _ = links::delete(&mut host, index);
                    }
                }
            }
        }
        if let Some(mut inside) = self.inside.take() {
            for (index, _) in self.inside_links.drain(..) {
                let _ = links::delete(&mut inside, index);
            }
        }
    }
}

fn err(step: Step, object: impl Into<String>, what: &str, e: NlError) -> SetupError {
    let detail = match e.message {
        Some(m) => format!("{what}: {m}"),
        None => what.to_string(),
    };
    SetupError { step, path: Some(object.into()), errno: e.errno as i32, detail: Some(detail) }
}

/// The veth host end's name for link `i` of the plan.
pub fn host_name(plan: &LaunchPlan, link: &LinkPlan, i: usize, pid: i32) -> String {
    match &link.host_name {
        Some(n) => n.clone(),
        None if plan.context != 0 => format!("vs{}h{i}", plan.context),
        None => format!("vp{pid}h{i}"),
    }
}

/// Removes what the plan's links may have left on the host when the process that made them
/// died before its teardown (a monitor killed outright): the proxy ARP/NDP entries of its veth
/// links on their devices, and veth host ends still carrying the names the plan gives them (a
/// host end goes with its peer once the context's namespace is gone; this catches the rest).
/// Only for plans whose host ends have fixed names (a vserver's); call it once every process of
/// the context has ended. Best effort: what is already gone is skipped.
pub fn remove_leftovers(plan: &LaunchPlan) {
    let Ok(mut host) = Netlink::open() else { return };
    for (i, link) in plan.links.iter().enumerate().filter(|(_, l)| matches!(l.mode, LinkMode::Veth | LinkMode::Bridge)) {
        if link.mode == LinkMode::Veth {
            if let Some(dev) = link.device.as_deref().and_then(|d| links::get(&mut host, d).ok()) {
                for a in &link.addresses {
                    let _ = addr::del_proxy(&mut host, dev.index, a.addr);
                }
            }
        }
        if link.host_name.is_some() || plan.context != 0 {
            if let Ok(end) = links::get(&mut host, &host_name(plan, link, i, 0)) {
                let _ = links::delete(&mut host, end.index);
            }
        }
    }
}

/// Builds every link of the plan for the child `pid` (see the module documentation). On error
/// whatever was made is removed again before returning.
pub fn attach(plan: &LaunchPlan, pid: i32) -> Result<Attached, SetupError> {
    let t = Instant::now();
    let mut host = Netlink::open().map_err(|e| err(Step::NetCheck, "netlink", "open a netlink socket", e))?;
    let devices = check(&mut host, plan)?;
    let netns = ns::of_pid(pid).map_err(|e| SetupError::new(Step::NetLink, Some(format!("/proc/{pid}/ns/net")), e))?;
    let mut att = Attached::default();
    att.times.push((Step::NetCheck, t.elapsed().as_nanos() as u64));
    match build(plan, pid, &mut host, &devices, &netns, &mut att) {
        Ok(()) => Ok(att),
        Err(e) => {
            att.teardown();
            Err(e)
        }
    }
}

fn build(
    plan: &LaunchPlan,
    pid: i32,
    host: &mut Netlink,
    devices: &[Option<u32>],
    netns: &OwnedFd,
    att: &mut Attached,
) -> Result<(), SetupError> {
    let mut clock = Instant::now();
    let mut lap = |att: &mut Attached, step: Step| {
        let now = Instant::now();
        att.times.push((step, now.duration_since(clock).as_nanos() as u64));
        clock = now;
    };
    // First, so that every link made inside is known (and removed on a failure).
    att.inside = Some(ns::netlink_in(netns).map_err(|e| err(Step::NetInside, "netns", "open a netlink socket inside", e))?);
    for (i, link) in plan.links.iter().enumerate() {
        let up = link.mode == LinkMode::Macvlan;
        let end = End { name: &link.name, up, netns: Some(netns.as_raw_fd()), mtu: link.mtu, mac: link.mac, master: None };
        let device = devices[i];
        match link.mode {
            LinkMode::Macvlan => {
                let parent = device.expect("checked: macvlan has a device");
                let object = format!("macvlan {} on {}", link.name, link.device.as_deref().unwrap_or(""));
                links::create_macvlan(host, parent, &end).map_err(|e| err(Step::NetLink, object.clone(), "create the macvlan", e))?;
                let inside = att.inside.as_mut().expect("opened above");
                let index = links::get(inside, &link.name).map_err(|e| err(Step::NetLink, object, "find the macvlan", e))?.index;
                att.inside_links.push((index, link.name.clone()));
            }
            LinkMode::Veth | LinkMode::Bridge => {
                let name = host_name(plan, link, i, pid);
                let master = if link.mode == LinkMode::Bridge { device } else { None };
                let host_end = End { name: &name, up: true, netns: None, mtu: link.mtu, mac: None, master };
                let what = if master.is_some() { "create the veth pair on the bridge" } else { "create the veth pair" };
                links::create_veth(host, &host_end, &end).map_err(|e| err(Step::NetLink, name.clone(), what, e))?;
                let index = links::get(host, &name).map_err(|e| err(Step::NetLink, name.clone(), "find the host end", e))?.index;
                att.host_ends.push((index, name.clone()));
                if link.mode == LinkMode::Veth {
                    lap(att, Step::NetLink);
                    route_host_end(host, att, link, index, &name, device)?;
                    lap(att, Step::NetHost);
                    continue;
                }
            }
        }
        lap(att, Step::NetLink);
    }
    let inside = att.inside.as_mut().expect("opened above");
    for link in &plan.links {
        let index = links::get(inside, &link.name).map_err(|e| err(Step::NetInside, link.name.clone(), "find the link", e))?.index;
        configure_inside(inside, link, index)?;
        if link.mode != LinkMode::Veth {
            // On the LAN itself: its neighbours learn the (new) MAC address at once.
            let _ = super::announce::announce(netns, &link.name, index, &link.addresses);
        }
    }
    lap(att, Step::NetInside);
    Ok(())
}

/// `net-check`: the devices exist (bridge mode: a bridge), the host holds no address of the
/// plan. Returns each link's device index.
fn check(host: &mut Netlink, plan: &LaunchPlan) -> Result<Vec<Option<u32>>, SetupError> {
    let mut out = Vec::new();
    for link in &plan.links {
        let Some(dev) = &link.device else {
            out.push(None);
            continue;
        };
        let l = links::get(host, dev).map_err(|e| {
            let what = if e.errno == Errno::ENODEV { "no such device on the host" } else { "look up the device" };
            err(Step::NetCheck, dev.clone(), what, e)
        })?;
        if link.mode == LinkMode::Bridge && l.kind.as_deref() != Some("bridge") {
            return Err(SetupError::detail(Step::NetCheck, Some(dev.clone()), "not a bridge (network mode \"bridge\" needs one)"));
        }
        out.push(Some(l.index));
    }
    let held = addr::all(host).map_err(|e| err(Step::NetCheck, "addresses", "list the host's addresses", e))?;
    for link in &plan.links {
        for a in &link.addresses {
            if let Some((index, _, _)) = held.iter().find(|(_, ip, _)| *ip == a.addr) {
                let names = links::all(host).unwrap_or_default();
                let on = names.iter().find(|l| l.index == *index).map(|l| l.name.clone()).unwrap_or_else(|| format!("link {index}"));
                return Err(SetupError {
                    step: Step::NetCheck,
                    path: Some(a.addr.to_string()),
                    errno: Errno::EADDRINUSE as i32,
                    detail: Some(format!("the host holds this address (on {on})")),
                });
            }
        }
    }
    Ok(out)
}

/// `net-host` for a routed veth: the host end forwards and answers ARP for the vserver's
/// neighbours, a host route leads to each address, `device` answers ARP/NDP for them.
fn route_host_end(
    host: &mut Netlink,
    att: &mut Attached,
    link: &LinkPlan,
    index: u32,
    name: &str,
    device: Option<u32>,
) -> Result<(), SetupError> {
    let v4 = link.addresses.iter().any(|a| a.addr.is_ipv4());
    let v6 = link.addresses.iter().any(|a| a.addr.is_ipv6());
    let mut settings: Vec<(&str, &str, &str, &str)> = Vec::new();
    if v4 {
        settings.extend([
            ("ipv4", "conf", "forwarding", "1"),
            ("ipv4", "conf", "proxy_arp", "1"),
            ("ipv4", "conf", "rp_filter", "1"),
            ("ipv4", "neigh", "proxy_delay", "0"),
        ]);
    }
    if v6 {
        // Router behaviour on the host end (no RA or redirect taken from the vserver), and
        // forwarding from it without turning on forwarding for the whole host.
        settings.extend([("ipv6", "conf", "forwarding", "1"), ("ipv6", "conf", "force_forwarding", "1")]);
    }
    for (family, table, key, value) in settings {
        match sysctl::set(family, table, name, key, value) {
            Ok(()) => {}
            Err((_, Errno::ENOENT)) if key == "force_forwarding" => {} // before Linux 6.17
            Err((path, e)) => return Err(SetupError::new(Step::NetHost, Some(path), e)),
        }
    }
    if v6 {
        let ll = IfAddr { addr: IpAddr::V6(HOST_END_LL), prefix: 64 };
        addr::add(host, index, ll, None, AddressFlags::Nodad)
            .map_err(|e| err(Step::NetHost, format!("{ll} on {name}"), "add the vserver's next hop", e))?;
    }
    for a in &link.addresses {
        let dest = IfAddr { addr: a.addr, prefix: if a.addr.is_ipv4() { 32 } else { 128 } };
        addr::add_route(host, Some(dest), index, None, a.addr.is_ipv6())
            .map_err(|e| err(Step::NetHost, format!("{dest} dev {name}"), "add the host route", e))?;
    }
    if let (Some(dev), Some(dev_name)) = (device, &link.device) {
        // The kernel replaces a proxy entry silently: one already there is someone else's
        // (another vserver with this address, the admin's), and must be neither taken over
        // nor removed with ours.
        let present = addr::proxies(host).map_err(|e| err(Step::NetHost, dev_name.clone(), "list the proxy entries", e))?;
        for a in &link.addresses {
            if present.contains(&(dev, a.addr)) {
                return Err(SetupError {
                    step: Step::NetHost,
                    path: Some(format!("{} on {dev_name}", a.addr)),
                    errno: Errno::EEXIST as i32,
                    detail: Some("a proxy ARP/NDP entry for this address is already there".into()),
                });
            }
            addr::add_proxy(host, dev, a.addr)
                .map_err(|e| err(Step::NetHost, format!("{} on {dev_name}", a.addr), "add the proxy ARP/NDP entry", e))?;
            att.proxies.push((dev, dev_name.clone(), a.addr));
        }
    }
    Ok(())
}

/// `net-inside`: the link up (a veth end), its addresses and default routes, inside the
/// vserver's namespace.
fn configure_inside(inside: &mut Netlink, link: &LinkPlan, index: u32) -> Result<(), SetupError> {
    if link.mode != LinkMode::Macvlan {
        links::set_up(inside, index).map_err(|e| err(Step::NetInside, link.name.clone(), "set the link up", e))?;
    }
    let routed = link.mode == LinkMode::Veth;
    for a in &link.addresses {
        let (broadcast, mut flags) = match a.addr {
            IpAddr::V4(v4) => (broadcast_for(link, v4, a.prefix), AddressFlags::empty()),
            IpAddr::V6(_) => (None, AddressFlags::Nodad),
        };
        if routed && a.addr.is_ipv6() {
            // Every IPv6 destination, on-link ones too, goes to the host end.
            flags |= AddressFlags::Noprefixroute;
        }
        addr::add(inside, index, *a, broadcast, flags)
            .map_err(|e| err(Step::NetInside, format!("{a} on {}", link.name), "add the address", e))?;
    }
    let v4 = link.addresses.iter().any(|a| a.addr.is_ipv4());
    let v6 = link.addresses.iter().any(|a| a.addr.is_ipv6());
    let mut routes: Vec<(Option<IpAddr>, bool)> = Vec::new();
    if routed {
        // The host is the router: IPv4 neighbours are answered by the host end (proxy ARP),
        // IPv6 goes through its fe80::1.
        if v4 {
            routes.push((None, false));
        }
        if v6 {
            routes.push((Some(IpAddr::V6(HOST_END_LL)), true));
        }
    } else {
        routes.extend(link.gateways.iter().map(|g| (Some(*g), g.is_ipv6())));
    }
    for (gateway, is_v6) in routes {
        addr::add_route(inside, None, index, gateway, is_v6).map_err(|e| {
            let via = gateway.map(|g| format!(" via {g}")).unwrap_or_default();
            err(Step::NetInside, format!("default{via} dev {}", link.name), "add the default route", e)
        })?;
    }
    Ok(())
}

/// IPROOTBCAST when it lies in this address's network, else the network's own broadcast.
fn broadcast_for(link: &LinkPlan, a: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    match link.broadcast {
        Some(b) if addr::contains(IpAddr::V4(a), prefix, IpAddr::V4(b)) => Some(b),
        _ => addr::broadcast_of(a, prefix),
    }
}
