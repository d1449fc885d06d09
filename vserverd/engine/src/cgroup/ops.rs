//! Carrying out a [`CgroupPlan`]: make, attach, kill everything, remove, read the figures.
//! Synchronous file work, used by the monitor and the daemon alike.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::limits::CgroupPlan;
use super::CgroupError;

/// Makes the cgroups and writes the limits. On failure, removes what it made.
pub fn create(plan: &CgroupPlan) -> Result<(), CgroupError> {
    let attempt = || {
        for d in plan.parents.iter().chain(&plan.dirs) {
            fs::create_dir_all(d).map_err(|e| CgroupError::io(d, "mkdir", e))?;
        }
        for (file, value) in &plan.writes {
            fs::write(file, value).map_err(|e| CgroupError::io(file, &format!("write {value:?}"), e))?;
        }
        Ok(())
    };
    // Once more if the shared parent vanished under us (the last vserver's monitor removing it).
    let result = attempt().or_else(|_| attempt());
    if result.is_err() {
        remove(plan);
    }
    result
}

/// Puts `pid` (and, later, everything it starts) in every cgroup of the plan but `already`
/// (the one it was born in).
pub fn attach(plan: &CgroupPlan, pid: i32, already: Option<&Path>) -> Result<(), CgroupError> {
    for d in plan.dirs.iter().filter(|d| Some(d.as_path()) != already) {
        let f = d.join("cgroup.procs");
        fs::write(&f, pid.to_string()).map_err(|e| CgroupError::io(&f, &format!("attach {pid}"), e))?;
    }
    Ok(())
}

/// The host pids in the vserver's cgroup and every cgroup below it (a guest's init makes its
/// own; an agent on the host may too).
pub fn procs(plan: &CgroupPlan) -> Vec<i32> {
    let Some(d) = plan.v2_dir.as_ref().or(plan.dirs.last()) else { return Vec::new() };
    tree_pids(d)
}

fn read_pids(d: &Path) -> Vec<i32> {
    fs::read_to_string(d.join("cgroup.procs")).map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect()).unwrap_or_default()
}

/// `d` and every cgroup below it, the deepest first (the order they can be removed in). A walk
/// with a stack of its own: a guest may nest its cgroups deeper than a small stack recurses.
pub(crate) fn subtree(d: &Path) -> Vec<PathBuf> {
    let mut order = Vec::new();
    let mut todo = vec![d.to_path_buf()];
    while let Some(dir) = todo.pop() {
        if let Ok(rd) = fs::read_dir(&dir) {
            todo.extend(rd.flatten().filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false)).map(|e| e.path()));
        }
        order.push(dir);
    }
    // Parents were pushed before their children: reversed, every child comes before its parent.
    order.reverse();
    order
}

pub(crate) fn tree_pids(d: &Path) -> Vec<i32> {
    subtree(d).iter().flat_map(|c| read_pids(c)).collect()
}

/// The vserver's own directories and the parents of `dirs` below them (a guest's `v2_dir`).
fn tops(plan: &CgroupPlan) -> Vec<&PathBuf> {
    let mut v: Vec<&PathBuf> = plan.v2_dir.iter().collect();
    v.extend(plan.dirs.iter().filter(|d| !plan.v2_dir.as_ref().is_some_and(|top| d.starts_with(top))));
    v
}

fn empty(plan: &CgroupPlan) -> bool {
    tops(plan).into_iter().all(|d| tree_pids(d).is_empty())
}

/// Kills every process of the vserver and waits until its cgroups are empty: `cgroup.kill`
/// where the v2 tree has it (one write, atomic against forks), else freeze, SIGKILL each, thaw,
/// until nothing is left. Bounded by `timeout`.
pub fn kill_all(plan: &CgroupPlan, timeout: Duration) -> Result<(), CgroupError> {
    let start = Instant::now();
    let kill_file = plan.v2_dir.as_ref().map(|d| d.join("cgroup.kill")).filter(|f| f.exists());
    loop {
        if empty(plan) {
            return Ok(());
        }
        if start.elapsed() > timeout {
            let path = plan.dirs.first().cloned().unwrap_or_default();
            return Err(CgroupError::NotEmpty { path, secs: timeout.as_secs() });
        }
        match &kill_file {
            Some(f) => {
                let _ = fs::write(f, "1");
            }
            None => kill_frozen(plan),
        }
        std::thread::sleep(Duration::from_millis(5));
        if !empty(plan) {
            thaw_elsewhere(plan);
        }
    }
}

/// A task frozen by a v1 freezer ends with SIGKILL only once thawed, and a vserver's processes
/// may have been frozen in a freezer cgroup that is not the vserver's (by an agent on the host,
/// with other processes in it). Each remaining process is moved to the freezer hierarchy's root,
/// which is never frozen: the move thaws it, and nothing else in its old cgroup is touched.
fn thaw_elsewhere(plan: &CgroupPlan) {
    let Some(root) = super::host_layout().v1_path("freezer") else { return };
    let procs = root.join("cgroup.procs");
    for d in tops(plan) {
        for pid in tree_pids(d) {
            let frozen_elsewhere = fs::read_to_string(format!("/proc/{pid}/cgroup"))
                .map(|s| s.lines().any(|l| l.split(':').nth(1).is_some_and(|c| c.split(',').any(|c| c == "freezer")) && !l.ends_with(":/")))
                .unwrap_or(false);
            if frozen_elsewhere {
                let _ = fs::write(&procs, pid.to_string());
            }
        }
    }
}

/// v1: a frozen cgroup cannot fork while its members are signalled, so a fork bomb cannot
/// outrun the kill.
fn kill_frozen(plan: &CgroupPlan) {
    let freezer = plan.freezer_dir.as_ref();
    if let Some(f) = freezer {
        let _ = fs::write(f.join("freezer.state"), "FROZEN");
        for _ in 0..200 {
            if fs::read_to_string(f.join("freezer.state")).map(|s| s.trim() == "FROZEN").unwrap_or(true) {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    for d in tops(plan) {
        for pid in tree_pids(d) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    if let Some(f) = freezer {
        let _ = fs::write(f.join("freezer.state"), "THAWED");
    }
}

/// Removes the vserver's cgroups (they must be empty) with every cgroup made below them, the
/// deepest first, and the shared parents when this was the last vserver in them (a parent
/// still in use refuses with EBUSY and stays).
pub fn remove(plan: &CgroupPlan) {
    for top in tops(plan) {
        for d in subtree(top) {
            // A process that has just been killed leaves its cgroup a moment after it is reaped.
            for _ in 0..50 {
                match fs::remove_dir(&d) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => std::thread::sleep(Duration::from_millis(2)),
                    _ => break,
                }
            }
        }
    }
    for d in &plan.parents {
        let _ = fs::remove_dir(d);
    }
}

/// The paper's vserver-stat figures of one vserver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub processes: u64,
    /// Memory charged to the cgroup, bytes.
    pub memory: u64,
    pub user_usec: u64,
    pub system_usec: u64,
}

fn read_u64(p: &Path) -> Option<u64> {
    fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn keyed(p: &Path, key: &str) -> Option<u64> {
    fs::read_to_string(p).ok()?.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}

/// The resident set of `pid` in bytes (`/proc/PID/statm`).
fn resident_bytes(pid: i32) -> Option<u64> {
    let statm = fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64)
}

pub fn stats(plan: &CgroupPlan) -> Stats {
    let processes = plan.pids_dir.as_ref().and_then(|d| read_u64(&d.join("pids.current"))).unwrap_or_else(|| procs(plan).len() as u64);
    let memory = match &plan.memory_dir {
        Some((d, true)) => read_u64(&d.join("memory.current")),
        Some((d, false)) => read_u64(&d.join("memory.usage_in_bytes")),
        // No memory controller for this vserver (a hybrid host, no memory limit): the resident
        // sets of its processes (shared pages counted in each).
        None => Some(procs(plan).into_iter().filter_map(resident_bytes).sum()),
    }
    .unwrap_or(0);
    let (user_usec, system_usec) = match &plan.cpuacct_dir {
        Some((d, true)) => (keyed(&d.join("cpu.stat"), "user_usec").unwrap_or(0), keyed(&d.join("cpu.stat"), "system_usec").unwrap_or(0)),
        Some((d, false)) => (
            read_u64(&d.join("cpuacct.usage_user")).unwrap_or(0) / 1000,
            read_u64(&d.join("cpuacct.usage_sys")).unwrap_or(0) / 1000,
        ),
        None => (0, 0),
    };
    Stats { processes, memory, user_usec, system_usec }
}
