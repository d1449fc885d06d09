//! The vserverd D-Bus contract, shared by the daemon and `vserverctl`: the bus name, object
//! paths, interface names, the types that travel, the errors, and client proxies. No runtime,
//! no system calls.
//!
//! Conventions follow systemd-machined: a manager object at the root path, one object per
//! vserver at `…/vserver/<escaped name>`, UpperCamelCase methods, read-only properties with
//! `PropertiesChanged`, signals for vservers that appear and disappear.

pub mod error;
pub mod names;
pub mod proxy;
pub mod signal;
pub mod types;

pub use error::{StartFailure, VServerError};
pub use names::{escape_path_component, unescape_path_component, vserver_path, BUS_NAME, MANAGER_INTERFACE, MANAGER_PATH, VSERVER_INTERFACE};
pub use types::{BootReport, State, VProcess, VServerStats, VServerSummary};
