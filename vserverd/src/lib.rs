//! vserverd: reads one TOML file per vserver, builds each context with the engine through a
//! single-threaded monitor process, supervises it, and serves the D-Bus API.
//!
//! One folder per process the binary runs as:
//! - [`daemon`]: `vserverd`, the long-running daemon (tokio, D-Bus, one supervisor per vserver);
//! - [`monitor`]: `vserverd monitor NAME`, the small single-threaded parent of a vserver's pid 1;
//! - [`enter`]: `vserverd enter NAME`, the helper that joins a running vserver for `enter`/`exec`.
//!
//! What they share is in the libraries beside this crate: `vserver-config` (the configuration,
//! the paths, the run state), `vserver-engine` (the kernel's concepts), `vserver-api` (D-Bus).

pub mod daemon;
pub mod enter;
pub mod monitor;

pub use daemon::run::run;
