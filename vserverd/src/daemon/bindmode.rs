//! Bind mode (`[network] mode = "bind"`) in the daemon: one copy of the socket-hook programs
//! shared by every bind vserver it starts (their monitors open it by id). (The check that this
//! host can carry them is the config crate's, with the other host checks.)

use std::sync::Mutex;

use vserver_engine::bindaddr::{ProgramSet, SetIds};

/// The daemon's program set (its descriptors keep it loaded) and its ids.
static SET: Mutex<Option<(ProgramSet, SetIds)>> = Mutex::new(None);

/// The ids of the daemon's program set, loaded at the first bind start. `None` when it cannot
/// be loaded: the monitor then loads a set of its own, and its error says why.
pub fn shared_programs() -> Option<SetIds> {
    let mut set = SET.lock().unwrap_or_else(|e| e.into_inner());
    if set.is_none() {
        match ProgramSet::load().and_then(|s| s.ids().map(|ids| (s, ids))) {
            Ok(loaded) => *set = Some(loaded),
            Err(e) => {
                tracing::warn!(error = %e, "cannot load the bind-mode programs");
                return None;
            }
        }
    }
    set.as_ref().map(|(_, ids)| ids.clone())
}

/// The ids of the program set when it is loaded already (no waiting).
pub fn loaded_programs() -> Option<SetIds> {
    SET.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(_, ids)| ids.clone())
}
