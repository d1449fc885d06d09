//! Each vserver in its own cgroup: the paper's `nproc` and `sched` flags and its global limits
//! (memory, processes, CPU share), on a pure v2 host, a v1 host and the hybrid of the two.
//!
//! The daemon resolves a vserver's `[limits]` against the host's [`Layout`] into a
//! [`CgroupPlan`]: plain data, the directories to make and the files to write, in order. The
//! monitor carries it out (no policy there): it makes the cgroups before the context exists,
//! puts pid 1 in them before pid 1 runs anything, and after pid 1 ends kills whatever is left and
//! removes them. The daemon uses the same plan to kill every process of a vserver at stop.

mod layout;
mod limits;
mod ops;

pub use layout::{is_cgroup2, own_v2, Layout, CGROUP_ROOT};
pub use limits::{plan, CgroupPlan, Limits, GUEST};
pub use ops::{attach, create, kill_all, procs, remove, stats, Stats};

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use thiserror::Error;

static PARENT: OnceLock<String> = OnceLock::new();

/// The name of the directory holding the vservers' cgroups (default `vservers`); set once, first
/// thing, by `vserverd --cgroup-parent` (tests run daemons side by side with their own).
pub fn set_parent(name: &str) {
    let _ = PARENT.set(name.to_string());
}

/// This host's layout, read once per process (the daemon's own cgroup decides where vservers go).
pub fn host_layout() -> &'static Layout {
    static LAYOUT: OnceLock<Layout> = OnceLock::new();
    LAYOUT.get_or_init(|| Layout::detect(Path::new(CGROUP_ROOT), PARENT.get().map(String::as_str).unwrap_or("vservers")))
}

/// The cgroups of vserver `name` whatever its limits: enough to list, count, kill and remove
/// (each reads and kills the whole tree below the vserver's cgroups). Besides the ones every
/// vserver has, the v1 cgroups of that name that exist (made for limits at its start, whatever
/// the configuration says now).
pub fn membership(name: &str) -> CgroupPlan {
    let layout = host_layout();
    let mut p = plan(layout, name, &Limits::default(), false).unwrap_or_default();
    for (h, mount) in &layout.v1 {
        let d = mount.join(&layout.parent).join(name);
        if !p.dirs.contains(&d) && d.is_dir() {
            if h == "freezer" {
                p.freezer_dir.get_or_insert(d.clone());
            }
            p.dirs.push(d);
        }
    }
    p
}

/// Before a start: cgroups of `name` left by a crash are removed when empty, or refused with
/// the processes they still hold (a start must never join processes that are not its own).
/// Says whether there was something to remove (the caller logs it).
pub fn clear_stale(name: &str) -> Result<bool, CgroupError> {
    let m = membership(name);
    let tops: Vec<&PathBuf> = m.v2_dir.iter().chain(m.dirs.iter().filter(|d| !m.v2_dir.as_ref().is_some_and(|v| d.starts_with(v)))).collect();
    for top in tops.into_iter().filter(|d| d.exists()) {
        let pids = ops::tree_pids(top);
        if !pids.is_empty() {
            return Err(CgroupError::Occupied { path: top.clone(), pids });
        }
    }
    let stale = m.dirs.iter().chain(&m.v2_dir).any(|d| d.exists());
    if stale {
        remove(&m);
    }
    Ok(stale)
}

/// Under a delegated v2 subtree (systemd's `Delegate=yes`), moves the daemon into a leaf of its
/// own cgroup, `…/daemon`, so that the subtree may hand controllers down to `…/vservers` (v2 allows
/// no processes in a cgroup that does). The monitors the daemon starts inherit the leaf.
pub fn delegate_self() -> Result<(), CgroupError> {
    let layout = host_layout();
    let Some(mount) = &layout.v2_mount else { return Ok(()) };
    let own = layout.v2_base.trim_end_matches(&format!("/{}", layout.parent)).trim_start_matches('/').to_string();
    if own.is_empty() {
        return Ok(()); // the root cgroup: no systemd above us, nothing to move
    }
    let leaf = mount.join(&own).join("daemon");
    std::fs::create_dir_all(&leaf).map_err(|e| CgroupError::io(&leaf, "mkdir", e))?;
    let procs = leaf.join("cgroup.procs");
    std::fs::write(&procs, std::process::id().to_string()).map_err(|e| CgroupError::io(&procs, "move the daemon", e))
}

#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub enum CgroupError {
    #[error("[limits] {key} needs the {controller} cgroup controller, which this host lacks ({layout} cgroups); add {key:?} to limits.optional to start without it")]
    MissingController { key: String, controller: String, layout: String },
    #[error("cgroup {path}: {op}: {message}")]
    Io { path: PathBuf, op: String, message: String },
    #[error("cgroup {path}: processes still there after {secs} s of killing")]
    NotEmpty { path: PathBuf, secs: u64 },
    #[error("cgroup {path} exists already and holds processes of no run of this vserver (pids {pids:?}): end them, or move them out, before it starts")]
    Occupied { path: PathBuf, pids: Vec<i32> },
}

impl CgroupError {
    pub(crate) fn io(path: impl Into<PathBuf>, op: &str, e: std::io::Error) -> CgroupError {
        CgroupError::Io { path: path.into(), op: op.to_string(), message: e.to_string() }
    }
}

/// A cgroup failure as a step of the context's setup (made before pid 1 exists, or placing it).
impl From<CgroupError> for crate::SetupError {
    fn from(e: CgroupError) -> crate::SetupError {
        let path = match &e {
            CgroupError::Io { path, .. } | CgroupError::NotEmpty { path, .. } | CgroupError::Occupied { path, .. } => Some(path.display().to_string()),
            CgroupError::MissingController { .. } => None,
        };
        crate::SetupError::detail(crate::Step::HostSetup, path, e.to_string())
    }
}
