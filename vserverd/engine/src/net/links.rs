//! Links through netlink: look one up, create a macvlan or a veth pair with its vserver end
//! made straight inside a network namespace (given by an fd), delete one.

use std::os::fd::RawFd;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage, MacVlanMode,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::netlink::{NlError, Netlink};

/// A link as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfoLite {
    pub index: u32,
    pub name: String,
    /// `veth`, `bridge`, `macvlan`…; `None` for a physical device.
    pub kind: Option<String>,
}

fn lite(m: &LinkMessage) -> LinkInfoLite {
    let mut name = String::new();
    let mut kind = None;
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        kind = Some(k.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    LinkInfoLite { index: m.header.index, name, kind }
}

/// The link named `name` in the socket's namespace.
pub fn get(nl: &mut Netlink, name: &str) -> Result<LinkInfoLite, NlError> {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::IfName(name.to_string()));
    match nl.get(RouteNetlinkMessage::GetLink(m))? {
        RouteNetlinkMessage::NewLink(l) => Ok(lite(&l)),
        _ => Err(NlError { errno: nix::errno::Errno::EBADMSG, message: None }),
    }
}

/// Every link of the socket's namespace.
pub fn all(nl: &mut Netlink) -> Result<Vec<LinkInfoLite>, NlError> {
    let out = nl.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()))?;
    Ok(out
        .iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(lite(l)),
            _ => None,
        })
        .collect())
}

/// What a new link's end looks like: its name, optionally in another namespace, up from the
/// start, with an MTU and a MAC address. (A veth peer cannot be made up: the kernel configures
/// it before the pair is joined, and opening a veth without its peer fails with ENOTCONN.)
pub struct End<'a> {
    pub name: &'a str,
    pub up: bool,
    pub netns: Option<RawFd>,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    /// The bridge it joins.
    pub master: Option<u32>,
}

fn message(end: &End<'_>) -> LinkMessage {
    let mut m = LinkMessage::default();
    if end.up {
        m.header.flags = LinkFlags::Up;
        m.header.change_mask = LinkFlags::Up;
    }
    m.attributes.push(LinkAttribute::IfName(end.name.to_string()));
    if let Some(fd) = end.netns {
        m.attributes.push(LinkAttribute::NetNsFd(fd));
    }
    if let Some(mtu) = end.mtu {
        m.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = end.mac {
        m.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
    if let Some(master) = end.master {
        m.attributes.push(LinkAttribute::Controller(master));
    }
    m
}

/// A macvlan in bridge mode on `parent` (an index in the socket's namespace), made as `end`.
pub fn create_macvlan(nl: &mut Netlink, parent: u32, end: &End<'_>) -> Result<(), NlError> {
    let mut m = message(end);
    m.attributes.push(LinkAttribute::Link(parent));
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::MacVlan),
        LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(MacVlanMode::Bridge)])),
    ]));
    nl.ack(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
}

/// A veth pair: `host` stays in the socket's namespace, `peer` goes where it says.
pub fn create_veth(nl: &mut Netlink, host: &End<'_>, peer: &End<'_>) -> Result<(), NlError> {
    let mut m = message(host);
    m.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(message(peer)))),
    ]));
    nl.ack(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
}

/// A bridge, made as `end` (the host's side of bridge mode; tests and benchmarks make theirs).
pub fn create_bridge(nl: &mut Netlink, end: &End<'_>) -> Result<(), NlError> {
    let mut m = message(end);
    m.attributes.push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(InfoKind::Bridge)]));
    nl.ack(RouteNetlinkMessage::NewLink(m), NLM_F_CREATE | NLM_F_EXCL)
}

/// Sets the link with this index up.
pub fn set_up(nl: &mut Netlink, index: u32) -> Result<(), NlError> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    m.header.flags = LinkFlags::Up;
    m.header.change_mask = LinkFlags::Up;
    nl.ack(RouteNetlinkMessage::SetLink(m), 0)
}

/// Deletes the link with this index (a veth pair goes whole, with the routes through it).
pub fn delete(nl: &mut Netlink, index: u32) -> Result<(), NlError> {
    let mut m = LinkMessage::default();
    m.header.index = index;
    nl.ack(RouteNetlinkMessage::DelLink(m), 0)
}
