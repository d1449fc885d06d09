//! The vserver engine: turns a plain-data [`LaunchPlan`] into a running, isolated process tree
//! (the Linux-VServer paper's security context, on a stock kernel).
//!
//! Synchronous and single-threaded by design: the process that calls [`spawn`] must have one
//! thread (the daemon re-execs a helper for it). One module per kernel concept.

pub mod bindaddr;
pub mod caps;
pub mod cgroup;
pub mod enter;
pub mod error;
pub mod fdpass;
pub mod freestanding;
pub mod guard;
pub mod join;
pub mod lease;
pub mod net;
pub mod overlaymarks;
pub mod plan;
pub mod quota;
pub mod vserver_init;
pub mod registry;
pub mod rootfs;
pub mod sealed;
pub mod seccomp;
pub mod spawn;
pub mod sys;
pub mod userns;

pub use caps::{CapSet, Capability};
pub use error::{SetupError, Step};
pub use plan::{BindMount, Flags, IfAddr, Init, InitFs, LaunchPlan, LinkMode, LinkPlan, Network, Resource, Rlimit};
pub use spawn::{spawn, spawn_in, Context, Exit, Placement};
