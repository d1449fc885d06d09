//! From `[limits]` to the files of each hierarchy.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::layout::Layout;
use super::CgroupError;
use crate::plan::Rlimit;

/// `[limits]`: cgroup limits for the whole vserver, and rlimits for its init.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// pids.max.
    pub processes: Option<u64>,
    /// memory.max, bytes.
    pub memory: Option<u64>,
    /// memory.swap.max, bytes.
    pub memory_swap: Option<u64>,
    /// cpu.weight, 1..=10000.
    pub cpu_weight: Option<u32>,
    /// Percent of one CPU (cpu.max quota over period).
    pub cpu_quota: Option<u32>,
    /// cpuset.cpus, sorted.
    pub cpuset: Option<Vec<u32>>,
    /// io.weight, 1..=10000.
    pub io_weight: Option<u32>,
    /// Disk space for the root, bytes.
    pub disk: Option<u64>,
    /// Rlimits of init, by their `ulimit` names ("unlimited" is `u64::MAX`).
    pub rlimits: Vec<Rlimit>,
    /// Cgroup limits that may be skipped where the host lacks their controller.
    pub optional: Vec<String>,
}

/// What the monitor does for one vserver, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupPlan {
    /// The shared parents (`…/vservers` of each hierarchy): made if missing, removed at the end
    /// when no other vserver is in them.
    pub parents: Vec<PathBuf>,
    /// The vserver's own cgroups, one per hierarchy: pid 1 goes in each.
    pub dirs: Vec<PathBuf>,
    /// Files written, in order, before pid 1 is attached: (file, value).
    pub writes: Vec<(PathBuf, String)>,
    /// The v2 directory (for cgroup.kill and cgroup.events), when the host has a v2 tree.
    pub v2_dir: Option<PathBuf>,
    /// A guest with a real init: `v2_dir/guest`, where pid 1 is born and the root of its cgroup
    /// namespace. The limits stay on `v2_dir`, above it, out of the guest's sight and reach.
    #[serde(default)]
    pub guest_dir: Option<PathBuf>,
    /// The v1 freezer directory (to kill everything on a v1-only host).
    pub freezer_dir: Option<PathBuf>,
    /// Where the figures come from: (pids, memory, cpu) directories, each v2 or v1.
    pub pids_dir: Option<PathBuf>,
    pub memory_dir: Option<(PathBuf, bool)>,
    pub cpuacct_dir: Option<(PathBuf, bool)>,
}

struct Builder<'a> {
    layout: &'a Layout,
    name: &'a str,
    optional: &'a [String],
    plan: CgroupPlan,
}

impl Builder<'_> {
    fn v2_dir(&self) -> Option<PathBuf> {
        self.layout.v2_mount.as_ref().map(|m| m.join(self.layout.v2_base.trim_start_matches('/')).join(self.name))
    }

    fn v1_dir(&self, hierarchy: &str) -> Option<PathBuf> {
        self.layout.v1_path(hierarchy).map(|p| p.join(&self.layout.parent).join(self.name))
    }

    /// Where `controller`'s files for this vserver live, and whether that is v2.
    fn dir_for(&self, controller: &str, key: &str) -> Result<Option<(PathBuf, bool)>, CgroupError> {
        if self.layout.is_v2(controller) {
            return Ok(self.v2_dir().map(|d| (d, true)));
        }
        let v1 = match controller {
            "io" => "blkio",
            other => other,
        };
        if let Some(d) = self.v1_dir(v1) {
            return Ok(Some((d, false)));
        }
        if self.optional.iter().any(|o| o == key) {
            return Ok(None);
        }
        Err(CgroupError::MissingController { key: key.into(), controller: controller.into(), layout: self.layout.kind().into() })
    }

    fn write(&mut self, dir: &Path, file: &str, value: impl Into<String>) {
        self.plan.writes.push((dir.join(file), value.into()));
    }
}

fn read_first_line(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok().map(|s| s.lines().next().unwrap_or("").trim().to_string())
}

/// The name of the cgroup below a vserver's own where a guest with a real init lives.
pub const GUEST: &str = "guest";

/// Resolves `limits` for vserver `name` on `layout`. A limit whose controller the host lacks
/// is an error naming the controller, unless the key is listed in `limits.optional`. With
/// `guest` (a real init, which manages its own cgroup tree), pid 1 goes one level below the
/// vserver's v2 cgroup, and every controller the vserver has is handed down to it.
/// A host without a v2 tree (pure v1) has no cgroup to give a guest: `guest_dir` stays `None`.
pub fn plan(layout: &Layout, name: &str, limits: &Limits, guest: bool) -> Result<CgroupPlan, CgroupError> {
    let mut b = Builder { layout, name, optional: &limits.optional, plan: CgroupPlan::default() };

    // The v2 tree: every vserver has a cgroup there when the host has the tree, for
    // cgroup.kill and cgroup.events even without controllers (the hybrid).
    let wanted_v2: Vec<&str> = ["pids", "memory", "cpu", "io", "cpuset"].into_iter().filter(|c| layout.is_v2(c)).collect();
    if let (Some(mount), Some(dir)) = (layout.v2_mount.clone(), b.v2_dir()) {
        let base = mount.join(layout.v2_base.trim_start_matches('/'));
        b.plan.parents.push(base.clone());
        if !wanted_v2.is_empty() {
            // Controllers are handed down one level at a time: the daemon's own cgroup (or the
            // root), then the vservers' parent.
            let own = base.parent().map(Path::to_path_buf).unwrap_or(mount.clone());
            let enable = wanted_v2.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
            b.write(&own, "cgroup.subtree_control", enable.clone());
            b.write(&base, "cgroup.subtree_control", enable);
        }
        if guest {
            let inner = dir.join(GUEST);
            if !wanted_v2.is_empty() {
                // v2 allows no processes in a cgroup that hands controllers down: pid 1 and
                // everything it starts live below, the vserver's own cgroup holds only limits.
                let enable = wanted_v2.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
                b.write(&dir, "cgroup.subtree_control", enable);
            }
            b.plan.dirs.push(inner.clone());
            b.plan.guest_dir = Some(inner);
        } else {
            b.plan.dirs.push(dir.clone());
        }
        b.plan.v2_dir = Some(dir);
    }
    // Only the v1 hierarchies this vserver needs: each costs a cgroup to make and remove at
    // every start and stop, kernel memory while it runs (a memory cgroup most of all), and a
    // migration at start (pid 1 is born in its v2 cgroup, but joins a v1
    // one by a write to cgroup.procs, which waits for an RCU grace period). So: the controllers
    // its limits use where the v2 tree lacks them, and, without a v2 tree, memory, pids,
    // cpuacct and freezer for the figures, membership and killing. Without a memory cgroup the
    // memory figure is the processes' resident sets.
    let no_v2 = layout.v2_mount.is_none();
    let needed = |h: &str| -> bool {
        let v1 = |c: &str| !layout.is_v2(c);
        match h {
            "memory" => (no_v2 || limits.memory.is_some() || limits.memory_swap.is_some()) && v1("memory"),
            "pids" => no_v2 || (limits.processes.is_some() && v1("pids")),
            "cpu" => (limits.cpu_weight.is_some() || limits.cpu_quota.is_some()) && v1("cpu"),
            "cpuset" => limits.cpuset.is_some() && v1("cpuset"),
            "blkio" => limits.io_weight.is_some() && v1("io"),
            "cpuacct" | "freezer" => no_v2,
            _ => false,
        }
    };
    for (h, mount) in layout.v1.iter().filter(|(h, _)| needed(h)) {
        let dir = mount.join(&layout.parent).join(name);
        b.plan.parents.push(mount.join(&layout.parent));
        b.plan.dirs.push(dir.clone());
        if h == "cpuset" {
            // A v1 cpuset cgroup starts with no CPU and no memory node: give both levels the
            // root's, so that attaching works (a configured cpuset narrows it below).
            let base = mount.join(&layout.parent);
            for f in ["cpuset.cpus", "cpuset.mems"] {
                if let Some(v) = read_first_line(&mount.join(f)) {
                    b.write(&base, f, v.clone());
                    b.write(&dir, f, v);
                }
            }
        }
        if h == "freezer" {
            b.plan.freezer_dir = Some(dir.clone());
        }
    }

    if let Some(n) = limits.processes {
        if let Some((d, _)) = b.dir_for("pids", "processes")? {
            b.write(&d, "pids.max", n.to_string());
        }
    }
    if let Some(bytes) = limits.memory {
        if let Some((d, v2)) = b.dir_for("memory", "memory")? {
            b.write(&d, if v2 { "memory.max" } else { "memory.limit_in_bytes" }, bytes.to_string());
        }
    }
    if let Some(bytes) = limits.memory_swap {
        if let Some((d, v2)) = b.dir_for("memory", "memory_swap")? {
            if v2 {
                b.write(&d, "memory.swap.max", bytes.to_string());
            } else {
                // v1 counts memory and swap together.
                b.write(&d, "memory.memsw.limit_in_bytes", (bytes + limits.memory.unwrap_or(0)).to_string());
            }
        }
    }
    if let Some(w) = limits.cpu_weight {
        if let Some((d, v2)) = b.dir_for("cpu", "cpu_weight")? {
            if v2 {
                b.write(&d, "cpu.weight", w.to_string());
            } else {
                // v2's default weight 100 is v1's default 1024 shares.
                b.write(&d, "cpu.shares", ((w as u64 * 1024 / 100).max(2)).to_string());
            }
        }
    }
    if let Some(pct) = limits.cpu_quota {
        if let Some((d, v2)) = b.dir_for("cpu", "cpu_quota")? {
            let quota = pct as u64 * 1000; // per 100 ms period
            if v2 {
                b.write(&d, "cpu.max", format!("{quota} 100000"));
            } else {
                b.write(&d, "cpu.cfs_period_us", "100000");
                b.write(&d, "cpu.cfs_quota_us", quota.to_string());
            }
        }
    }
    if let Some(cpus) = &limits.cpuset {
        if let Some((d, _)) = b.dir_for("cpuset", "cpuset")? {
            let list = cpus.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",");
            b.write(&d, "cpuset.cpus", list);
        }
    }
    if let Some(w) = limits.io_weight {
        if let Some((d, v2)) = b.dir_for("io", "io_weight")? {
            if v2 {
                b.write(&d, "io.weight", format!("default {w}"));
            } else {
                b.write(&d, "blkio.weight", (w / 10).clamp(10, 1000).to_string());
            }
        }
    }

    // Where the figures come from.
    b.plan.pids_dir = if layout.is_v2("pids") { b.v2_dir() } else { b.v1_dir("pids") };
    b.plan.memory_dir = if layout.is_v2("memory") {
        b.v2_dir().map(|d| (d, true))
    } else {
        b.v1_dir("memory").filter(|d| b.plan.dirs.contains(d)).map(|d| (d, false))
    };
    b.plan.cpuacct_dir = match (b.v2_dir(), b.v1_dir("cpuacct")) {
        // cpu.stat is in every v2 cgroup, controller or not.
        (Some(d), _) => Some((d, true)),
        (None, Some(d)) => Some((d, false)),
        _ => None,
    };
    Ok(b.plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_layout() -> Layout {
        Layout {
            v2_mount: Some("/sys/fs/cgroup".into()),
            v2_controllers: vec!["cpuset".into(), "cpu".into(), "io".into(), "memory".into(), "pids".into()],
            v2_base: "/system.slice/vserverd.service/vservers".into(),
            v1: vec![],
            parent: "vservers".into(),
        }
    }

    fn hybrid_layout() -> Layout {
        Layout {
            v2_mount: Some("/sys/fs/cgroup/unified".into()),
            v2_controllers: vec![],
            v2_base: "/vservers".into(),
            v1: ["pids", "memory", "cpu", "cpuacct", "freezer"].iter().map(|c| (c.to_string(), PathBuf::from(format!("/sys/fs/cgroup/{c}")))).collect(),
            parent: "vservers".into(),
        }
    }

    fn limits() -> Limits {
        Limits { processes: Some(100), memory: Some(512 << 20), cpu_weight: Some(200), cpu_quota: Some(150), ..Limits::default() }
    }

    fn has(plan: &CgroupPlan, file: &str, value: &str) -> bool {
        plan.writes.iter().any(|(f, v)| f.to_str().unwrap() == file && v == value)
    }

    #[test]
    fn pure_v2_under_a_delegated_service() {
        let p = plan(&v2_layout(), "web1", &limits(), false).unwrap();
        let d = "/sys/fs/cgroup/system.slice/vserverd.service/vservers/web1";
        assert_eq!(p.v2_dir.as_deref(), Some(Path::new(d)));
        assert!(has(&p, "/sys/fs/cgroup/system.slice/vserverd.service/cgroup.subtree_control", "+pids +memory +cpu +io +cpuset"));
        assert!(has(&p, &format!("{d}/pids.max"), "100"));
        assert!(has(&p, &format!("{d}/memory.max"), &(512u64 << 20).to_string()));
        assert!(has(&p, &format!("{d}/cpu.weight"), "200"));
        assert!(has(&p, &format!("{d}/cpu.max"), "150000 100000"));
        // Enabling controllers comes before any limit is written.
        let first_limit = p.writes.iter().position(|(f, _)| f.ends_with("pids.max")).unwrap();
        let last_enable = p.writes.iter().rposition(|(f, _)| f.ends_with("cgroup.subtree_control")).unwrap();
        assert!(last_enable < first_limit);
    }

    #[test]
    fn hybrid_puts_limits_on_v1_and_membership_on_the_unified_tree() {
        let p = plan(&hybrid_layout(), "web1", &limits(), false).unwrap();
        assert_eq!(p.v2_dir.as_deref(), Some(Path::new("/sys/fs/cgroup/unified/vservers/web1")));
        assert!(has(&p, "/sys/fs/cgroup/pids/vservers/web1/pids.max", "100"));
        assert!(has(&p, "/sys/fs/cgroup/memory/vservers/web1/memory.limit_in_bytes", &(512u64 << 20).to_string()));
        assert!(has(&p, "/sys/fs/cgroup/cpu/vservers/web1/cpu.shares", "2048"));
        assert!(has(&p, "/sys/fs/cgroup/cpu/vservers/web1/cpu.cfs_quota_us", "150000"));
        assert!(!p.writes.iter().any(|(f, _)| f.ends_with("cgroup.subtree_control")), "no controllers to enable in the unified tree");
        // The unified tree kills and counts: no freezer or cpuacct cgroup to make.
        assert_eq!(p.freezer_dir, None);
        assert!(!p.dirs.iter().any(|d| d.starts_with("/sys/fs/cgroup/cpuacct")));
        let bare = plan(&hybrid_layout(), "web2", &Limits::default(), false).unwrap();
        let hierarchies: Vec<_> = bare.dirs.iter().map(|d| d.components().nth(4).unwrap().as_os_str().to_owned()).collect();
        assert_eq!(hierarchies, ["unified"], "a vserver without limits costs one cgroup here");
        assert_eq!(bare.memory_dir, None, "its memory figure comes from its processes");
        assert_eq!(p.memory_dir.as_ref().map(|(d, v2)| (d.as_path(), *v2)), Some((Path::new("/sys/fs/cgroup/memory/vservers/web1"), false)));
    }

    #[test]
    fn a_guest_lives_one_level_below_its_limits() {
        // Pure v2: the limits and the hand-down on NAME, pid 1 in NAME/guest.
        let p = plan(&v2_layout(), "web1", &limits(), true).unwrap();
        let top = "/sys/fs/cgroup/system.slice/vserverd.service/vservers/web1";
        assert_eq!(p.v2_dir.as_deref(), Some(Path::new(top)));
        assert_eq!(p.guest_dir, Some(PathBuf::from(format!("{top}/guest"))));
        assert_eq!(p.dirs, [PathBuf::from(format!("{top}/guest"))], "pid 1 goes below the limits");
        assert!(has(&p, &format!("{top}/pids.max"), "100"));
        assert!(has(&p, &format!("{top}/memory.max"), &(512u64 << 20).to_string()));
        assert!(has(&p, &format!("{top}/cgroup.subtree_control"), "+pids +memory +cpu +io +cpuset"));
        assert!(!p.writes.iter().any(|(f, _)| f.starts_with(format!("{top}/guest"))), "nothing is written in the guest's own cgroup");
        // Hybrid: membership nested in the unified tree, the limits on v1 beside it.
        let p = plan(&hybrid_layout(), "web1", &limits(), true).unwrap();
        assert_eq!(p.guest_dir.as_deref(), Some(Path::new("/sys/fs/cgroup/unified/vservers/web1/guest")));
        assert!(p.dirs.contains(&PathBuf::from("/sys/fs/cgroup/unified/vservers/web1/guest")));
        assert!(p.dirs.contains(&PathBuf::from("/sys/fs/cgroup/pids/vservers/web1")));
        assert!(!p.writes.iter().any(|(f, _)| f.ends_with("cgroup.subtree_control")), "no controllers in the unified tree");
        // Pure v1: nothing to give a guest.
        let v1 = Layout { v2_mount: None, v2_controllers: vec![], v2_base: "/vservers".into(), ..hybrid_layout() };
        assert_eq!(plan(&v1, "web1", &limits(), true).unwrap().guest_dir, None);
    }

    #[test]
    fn a_missing_controller_is_named_unless_optional() {
        let mut l = Limits { io_weight: Some(500), ..Limits::default() };
        let e = plan(&hybrid_layout(), "web1", &l, false).unwrap_err();
        assert!(matches!(&e, CgroupError::MissingController { controller, key, .. } if controller == "io" && key == "io_weight"), "{e}");
        assert!(e.to_string().contains("io"), "{e}");
        l.optional = vec!["io_weight".into()];
        let p = plan(&hybrid_layout(), "web1", &l, false).unwrap();
        assert!(!p.writes.iter().any(|(f, _)| f.to_str().unwrap().contains("weight")));
    }
}
