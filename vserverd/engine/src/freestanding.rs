//! The engine's free-standing programs (`c/`), built by the build script into static binaries
//! without libc or loader and embedded here: they run inside a vserver, whose root may hold
//! neither, and each costs a vserver only a few pages.

/// pid 1 of an rc-style context (`c/init.c`): see [`crate::vserver_init`].
pub static INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/init"));

/// `vreboot`, `vhalt`, `vstatus` (`c/vtool.c`): root inside asks the daemon, through its
/// vserver's control socket, to restart or stop its own vserver.
pub static VTOOL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vtool"));

/// `vserver-monitor` serving (`c/monitor.c`): what a vserver's monitor (vserverd's) execs once
/// the vserver runs and is ready, to serve its console and wait for pid 1's end in a few pages.
pub static MONITOR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/monitor"));
