//! `vserverd`, the daemon: one supervisor per vserver ([`supervisor`]) in the daemon's state
//! ([`state`]), shown on the bus ([`dbus`]), started, adopted and reloaded by [`run`]; the
//! monitors it starts ([`pool`]), the hooks it runs, the control socket inside each vserver,
//! the enter helper it execs, the checks of its callers ([`auth`]), and its metrics endpoint
//! ([`metrics`], off by default).

pub mod auth;
pub mod bindmode;
pub mod console;
pub mod control;
pub mod dbus;
pub mod enter;
pub mod error;
pub mod hooks;
pub mod idpool;
pub mod metrics;
pub mod notify;
pub mod pool;
pub mod processes;
pub mod run;
pub mod state;
pub mod supervisor;
