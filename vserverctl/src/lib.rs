//! `vserverctl`, the command-line client of `vserverd`.
//!
//! The binary (`main.rs`) only parses, connects, dispatches and maps errors to exit codes; each
//! verb lives in its own module under [`cmd`]. Everything that needs no daemon (argument parsing,
//! signal names, durations and dates, tables, JSON shapes, error mapping, log tailing) is a plain
//! function here and unit-tested.

pub mod cli;
pub mod cmd;
pub mod error;
pub mod output;
pub mod polkit;
pub mod signal;
pub mod term;
pub mod time;

pub use cli::{Cli, Command, JsonMode};
pub use error::CtlError;
pub mod build;
