//! Which cgroup hierarchies this host has, and where vservers go in each.
//!
//! - pure v2: one tree at /sys/fs/cgroup with the controllers;
//! - hybrid: controllers on v1 hierarchies (/sys/fs/cgroup/memory, …) and a v2 tree at
//!   /sys/fs/cgroup/unified without controllers, which still gives cgroup.kill and cgroup.events;
//! - pure v1: only the v1 hierarchies.
//!
//! Under systemd with `Delegate=yes` the daemon's own v2 cgroup is its subtree: vservers go below
//! it (`…/vserverd.service/vservers/NAME`) and the daemon moves itself to a leaf first
//! (`…/vserverd.service/daemon`), as the v2 rule of no processes in inner cgroups requires.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The v1 controllers the daemon uses, by hierarchy name.
pub const V1_CONTROLLERS: &[&str] = &["pids", "memory", "cpu", "cpuacct", "cpuset", "blkio", "freezer"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// The v2 tree's mount point, if any (pure v2 or the hybrid's unified tree).
    pub v2_mount: Option<PathBuf>,
    /// Controllers available in the v2 tree where vservers go.
    pub v2_controllers: Vec<String>,
    /// Where vservers go in the v2 tree (`…/vservers`), relative to `v2_mount`.
    pub v2_base: String,
    /// The v1 hierarchies with their mount points (name, mount).
    pub v1: Vec<(String, PathBuf)>,
    /// The name of the vservers' parent directory in every hierarchy.
    pub parent: String,
}

/// True when `path` is on a cgroup2 filesystem (a directory of the v2 tree).
pub fn is_cgroup2(path: &Path) -> bool {
    nix::sys::statfs::statfs(path).map(|s| s.filesystem_type().0 == CGROUP2_SUPER_MAGIC).unwrap_or(false)
}

/// This process's cgroup in the v2 tree, as `/proc/self/cgroup` names it (`/a/b`).
pub fn own_v2() -> Option<String> {
    std::fs::read_to_string("/proc/self/cgroup").ok()?.lines().find_map(|l| l.strip_prefix("0::").map(|p| p.trim().to_string()))
}

impl Layout {
    /// Reads the layout under `root` (normally /sys/fs/cgroup) and the daemon's own v2 cgroup
    /// (from /proc/self/cgroup).
    pub fn detect(root: &Path, parent: &str) -> Layout {
        Self::detect_with(root, &own_v2().unwrap_or_else(|| "/".into()), parent)
    }

    /// `parent` names the directory that holds the vservers' cgroups (`vservers`).
    pub fn detect_with(root: &Path, own_v2: &str, parent: &str) -> Layout {
        let unified = root.join("unified");
        let v2_mount = if is_cgroup2(root) {
            Some(root.to_path_buf())
        } else if is_cgroup2(&unified) {
            Some(unified)
        } else {
            None
        };
        let v1: Vec<(String, PathBuf)> = V1_CONTROLLERS
            .iter()
            .map(|c| (c.to_string(), root.join(c)))
            .filter(|(_, p)| p.join("cgroup.procs").exists() && !is_cgroup2(p))
            .collect();
        let own = own_v2.trim().trim_end_matches('/');
        let v2_base = if own.is_empty() || own == "/" { format!("/{parent}") } else { format!("{own}/{parent}") };
        let v2_controllers = v2_mount
            .as_ref()
            .and_then(|m| std::fs::read_to_string(m.join(own.trim_start_matches('/')).join("cgroup.controllers")).ok())
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        Layout { v2_mount, v2_controllers, v2_base, v1, parent: parent.to_string() }
    }

    pub fn v1_path(&self, controller: &str) -> Option<&Path> {
        self.v1.iter().find(|(c, _)| c == controller).map(|(_, p)| p.as_path())
    }

    /// True when `controller` is usable, in the v2 tree or on a v1 hierarchy.
    pub fn has(&self, controller: &str) -> bool {
        let v1_name = match controller {
            "io" => "blkio",
            other => other,
        };
        self.v2_controllers.iter().any(|c| c == controller) || self.v1_path(v1_name).is_some()
    }

    /// The controllers a vserver's limits may use, in the v2 tree (when there).
    pub fn is_v2(&self, controller: &str) -> bool {
        self.v2_controllers.iter().any(|c| c == controller)
    }

    /// A short name for messages and `check`: "v2", "hybrid" or "v1".
    pub fn kind(&self) -> &'static str {
        match (&self.v2_mount, self.v1.is_empty()) {
            (Some(_), true) => "v2",
            (Some(_), false) => "hybrid",
            (None, _) => "v1",
        }
    }

    /// The directories of vserver `name`: the v2 one first (if any), then one per v1 hierarchy.
    pub fn dirs(&self, name: &str) -> Vec<PathBuf> {
        let mut v = Vec::new();
        if let Some(m) = &self.v2_mount {
            v.push(m.join(self.v2_base.trim_start_matches('/')).join(name));
        }
        for (_, p) in &self.v1 {
            v.push(p.join(&self.parent).join(name));
        }
        v
    }
}
