//! Bind mode (`[network] mode = "bind"`) in the daemon: one copy of the socket-hook programs
//! shared by every bind vserver it starts (their monitors open it by id), and the check that
//! this host can carry them at all.

use std::sync::{Mutex, OnceLock};

use vserver_engine::bindaddr::{self, ProgramSet, SetIds};

use crate::config::{LoadResult, NetworkMode};

static SET: Mutex<Option<ProgramSet>> = Mutex::new(None);

/// The ids of the daemon's program set, loaded at the first bind start. `None` when it cannot
/// be loaded: the monitor then loads a set of its own, and its error says why.
pub fn shared_programs() -> Option<SetIds> {
    let mut set = SET.lock().unwrap_or_else(|e| e.into_inner());
    if set.is_none() {
        match ProgramSet::load() {
            Ok(s) => *set = Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot load the bind-mode programs");
                return None;
            }
        }
    }
    set.as_ref().and_then(|s| s.ids().ok())
}

/// Whether this host has what bind mode needs (read once): a cgroup v2 tree, the kernel's BTF.
fn support() -> &'static Result<(), String> {
    static SUPPORT: OnceLock<Result<(), String>> = OnceLock::new();
    SUPPORT.get_or_init(|| bindaddr::host_support(crate::cgroup::host_layout().v2_mount.as_deref()))
}

/// A bind vserver on a host without what bind mode needs is invalid, and `check` says why.
pub fn check_config(r: &mut LoadResult) {
    let bind: Vec<String> = r.vservers.iter().filter(|(_, c)| c.network.mode == NetworkMode::Bind).map(|(n, _)| n.clone()).collect();
    if bind.is_empty() {
        return;
    }
    if let Err(why) = support() {
        for name in bind {
            r.invalidate(&name, format!("network mode \"bind\": {why}"));
        }
    }
}
