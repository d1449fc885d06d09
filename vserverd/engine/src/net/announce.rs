//! Gratuitous ARP: once a link on the LAN (macvlan, bridge) has its IPv4 addresses, one ARP
//! request for each address, from the address itself, is broadcast on it. Neighbours that
//! cached the address with another MAC address (the same vserver's earlier run: a new macvlan
//! gets a new MAC address; or its run on another host, after a fail-over) take the new one at
//! once, and switches learn the port it is behind, instead of sending to the old one until
//! their entries age out (a minute on Linux, hours on some routers).
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

/// Announces the IPv4 addresses among `addrs` on link `name` (index `index`) of the network
/// namespace `netns`. Returns how many were sent.
pub fn announce(netns: &OwnedFd, name: &str, index: u32, addrs: &[IfAddr]) -> Result<usize, Errno> {
    let v4: Vec<std::net::Ipv4Addr> = addrs
        .iter()
        .filter_map(|a| match a.addr {
            std::net::IpAddr::V4(v) => Some(v),
            std::net::IpAddr::V6(_) => None,
        })
        .collect();
    if v4.is_empty() {
        return Ok(0);
    }
    // A packet socket belongs to the namespace it was made in.
    let own = ns::enter(netns)?;
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, i32::from(ETH_P_ARP.to_be())) };
    let made = Errno::last();
    ns::leave(&own);
    if fd < 0 {
        return Err(made);
    }
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let mac = hardware_address(&sock, name)?;
    let mut to: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    to.sll_family = libc::AF_PACKET as u16;
    to.sll_protocol = ETH_P_ARP.to_be();
    to.sll_ifindex = index as i32;
    to.sll_halen = 6;
    to.sll_addr[..6].copy_from_slice(&[0xff; 6]);
    let mut sent = 0;
    for ip in v4 {
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
        sent += 1;
    }
    Ok(sent)
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
    fn packet_layout() {
        let p = packet([2, 0, 0, 0, 0, 0x10], "198.51.100.10".parse().unwrap());
        assert_eq!(&p[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&p[8..14], &[2, 0, 0, 0, 0, 0x10]);
        assert_eq!(&p[14..18], &[198, 51, 100, 10]);
        assert_eq!(&p[18..24], &[0; 6]);
        assert_eq!(&p[24..28], &[198, 51, 100, 10]);
    }
}
