//! The D-Bus adapters: thin interfaces over the daemon and its supervisors. Every mutating
//! method checks its caller first (`auth`), then forwards to one supervisor.

pub mod args;
pub mod manager;
pub mod objects;
pub mod vserver;
