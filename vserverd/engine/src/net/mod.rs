//! The context's network. With `network = none` the new network namespace holds `lo`, which
//! starts down: the child brings it up (step `loopback`). The plan's links (the paper's IPROOT
//! on IPROOTDEV) are made by the parent through netlink before the child goes on ([`attach`]),
//! and removed when the context ends ([`Attached::teardown`]).
//!
//! One module per concern: [`netlink`] (a tiny synchronous client), [`links`] (macvlan, veth,
//! delete), [`addr`] (addresses, routes, proxy entries), [`sysctl`], [`ns`] (namespaces by fd),
//! [`attach`] (the steps, in order), [`snapshot`] (the host's links and addresses, for checks).

use nix::errno::Errno;

use crate::error::{SetupError, Step};

pub mod addr;
pub mod announce;
pub mod attach;
pub mod links;
pub mod netlink;
pub mod ns;
pub mod snapshot;
pub mod sysctl;

pub use attach::{attach, Attached};
pub use snapshot::{host_snapshot, HostSnapshot};

/// Step `loopback`: `lo` up, through the SIOCSIFFLAGS ioctl (no netlink needed for one flag).
pub fn loopback_up() -> Result<(), SetupError> {
    let err = |e: Errno| SetupError::new(Step::Loopback, Some("lo".into()), e);
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if sock < 0 {
        return Err(err(Errno::last()));
    }
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (i, b) in b"lo\0".iter().enumerate() {
        req.ifr_name[i] = *b as libc::c_char;
    }
    let r = unsafe {
        if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) != 0 {
            -1
        } else {
            req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            libc::ioctl(sock, libc::SIOCSIFFLAGS, &req)
        }
    };
    let e = Errno::last();
    unsafe { libc::close(sock) };
    if r != 0 {
        return Err(err(e));
    }
    Ok(())
}
