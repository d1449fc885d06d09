//! Announcements: once a link on the LAN (macvlan, bridge) has its addresses, each IPv4 address
//! is broadcast in a gratuitous ARP (an ARP request for the address from itself), each IPv6
//! address in an unsolicited neighbour advertisement (RFC 4861 7.2.6: to all nodes, with the
//! override flag and the link-layer address). Neighbours that cached the address with another
//! MAC address (the same vserver's earlier run: a new macvlan gets a new MAC address; or its run
//! on another host, after a fail-over) take the new one at once, and switches learn the port it
//! is behind, instead of sending to the old one until their entries age out (up to a minute on
//! Linux, hours on some routers). Neighbours that had no entry make none.
//!
//! Best effort: a link that cannot be announced still works, and is answered as soon as a
//! neighbour asks again; nothing here fails a start.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use super::ns;
use crate::plan::IfAddr;

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IP: u16 = 0x0800;

/// An ARP request (RFC 826) for `ip` from `ip` itself at `mac`: the form of RFC 5227's
/// announcement, which every Linux neighbour table takes as an update.
pub fn packet(mac: [u8; 6], ip: std::net::Ipv4Addr) -> [u8; 28] {
    let mut p = [0u8; 28];
    p[0..2].copy_from_slice(&1u16.to_be_bytes()); // Ethernet
    p[2..4].copy_from_slice(&ETH_P_IP.to_be_bytes());
    p[4] = 6;
    p[5] = 4;
    p[6..8].copy_from_slice(&1u16.to_be_bytes()); // request
    p[8..14].copy_from_slice(&mac);
    p[14..18].copy_from_slice(&ip.octets());
    // Target hardware address left zero.
    p[24..28].copy_from_slice(&ip.octets());
    p
}

/// An unsolicited neighbour advertisement of `ip` at `mac` (the ICMPv6 message; the kernel
/// fills in the checksum).
pub fn advertisement(mac: [u8; 6], ip: std::net::Ipv6Addr) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[0] = 136; // neighbour advertisement, code 0
    p[4] = 0x20; // override; neither router nor solicited
    p[8..24].copy_from_slice(&ip.octets());
    p[24] = 2; // target link-layer address option, 8 bytes
    p[25] = 1;
    p[26..32].copy_from_slice(&mac);
    p
}

/// Announces `addrs` on link `name` (index `index`) of the network namespace `netns`. Returns
/// how many announcements were sent.
pub fn announce(netns: &OwnedFd, name: &str, index: u32, addrs: &[IfAddr]) -> Result<usize, Errno> {
    if addrs.is_empty() {
        return Ok(0);
    }
    // Sockets belong to the namespace they were made in.
    let own = ns::enter(netns)?;
    let packet_fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, i32::from(ETH_P_ARP.to_be())) };
    let packet_err = Errno::last();
    // One ICMPv6 socket per IPv6 address: each is bound to its address, the advertisement's source.
    let icmp: Vec<Option<OwnedFd>> = addrs
        .iter()
        .map(|a| {
            let fd = match a.addr {
                std::net::IpAddr::V6(_) => unsafe { libc::socket(libc::AF_INET6, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::IPPROTO_ICMPV6) },
                std::net::IpAddr::V4(_) => -1,
            };
            (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
        })
        .collect();
    ns::leave(&own);
    if packet_fd < 0 {
        return Err(packet_err);
    }
    let packet = unsafe { OwnedFd::from_raw_fd(packet_fd) };
    let mac = hardware_address(&packet, name)?;
    let mut sent = 0;
    for (a, icmp) in addrs.iter().zip(&icmp) {
        match (a.addr, icmp) {
            (std::net::IpAddr::V4(ip), _) => send_arp(&packet, index, mac, ip)?,
            (std::net::IpAddr::V6(ip), Some(icmp)) => send_na(icmp, index, mac, ip)?,
            (std::net::IpAddr::V6(_), None) => continue,
        }
        sent += 1;
    }
    Ok(sent)
}

fn send_arp(sock: &OwnedFd, index: u32, mac: [u8; 6], ip: std::net::Ipv4Addr) -> Result<(), Errno> {
    let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    to.sll_family = libc::AF_PACKET as u16;
    to.sll_protocol = ETH_P_ARP.to_be();
    to.sll_ifindex = index as i32;
    to.sll_halen = 6;
    to.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    let p = packet(mac, ip);
    let n = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            p.as_ptr().cast(),
            p.len(),
            0,
            (&to as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    if n < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// From `ip` itself, to all nodes on the link, with the hop limit of 255 that receivers
/// require of neighbour discovery.
fn send_na(sock: &OwnedFd, index: u32, mac: [u8; 6], ip: std::net::Ipv6Addr) -> Result<(), Errno> {
    let fd = sock.as_raw_fd();
    let set = |opt: i32, value: i32| {
        let r = unsafe {
            libc::setsockopt(fd, libc::IPPROTO_IPV6, opt, (&value as *const i32).cast(), std::mem::size_of::<i32>() as u32)
        };
        if r != 0 {
            Err(Errno::last())
        } else {
            Ok(())
        }
    };
    set(libc::IPV6_MULTICAST_HOPS, 255)?;
    set(libc::IPV6_MULTICAST_IF, index as i32)?;
    let mut from: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    from.sin6_family = libc::AF_INET6 as u16;
    from.sin6_addr.s6_addr = ip.octets();
    if unsafe { libc::bind(fd, (&from as *const libc::sockaddr_in6).cast(), std::mem::size_of::<libc::sockaddr_in6>() as u32) } != 0 {
        return Err(Errno::last());
    }
    let mut to: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
    to.sin6_family = libc::AF_INET6 as u16;
    to.sin6_addr.s6_addr = std::net::Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1).octets();
    to.sin6_scope_id = index;
    let p = advertisement(mac, ip);
    let n = unsafe {
        libc::sendto(fd, p.as_ptr().cast(), p.len(), 0, (&to as *const libc::sockaddr_in6).cast(), std::mem::size_of::<libc::sockaddr_in6>() as u32)
    };
    if n < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// The MAC address of link `name`, in the socket's namespace.
fn hardware_address(sock: &OwnedFd, name: &str) -> Result<[u8; 6], Errno> {
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= req.ifr_name.len() {
        return Err(Errno::ENAMETOOLONG);
    }
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR, &mut req) } != 0 {
        return Err(Errno::last());
    }
    let data = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(data.iter()) {
        *d = *s as u8;
    }
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advertisement_layout() {
        let p = advertisement([2, 0, 0, 0, 0, 0x10], "2001:db8::10".parse().unwrap());
        assert_eq!(&p[..8], &[136, 0, 0, 0, 0x20, 0, 0, 0]);
        assert_eq!(&p[8..24], &"2001:db8::10".parse::<std::net::Ipv6Addr>().unwrap().octets());
        assert_eq!(&p[24..32], &[2, 1, 2, 0, 0, 0, 0, 0x10]);
    }

    #[test]
    fn packet_layout() {
        let p = packet([2, 0, 0, 0, 0, 0x10], "198.51.100.10".parse().unwrap());
        assert_eq!(&p[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&p[8..14], &[2, 0, 0, 0, 0, 0x10]);
        assert_eq!(&p[14..18], &[198, 51, 100, 10]);
        assert_eq!(&p[18..24], &[0; 6]);
        assert_eq!(&p[24..28], &[198, 51, 100, 10]);
    }
}
