//! Carrying out a [`CgroupPlan`]: make, attach, kill everything, remove, read the figures.
//! Synchronous file work, used by the monitor and the daemon alike.

use std::fs;
use std::path::Path;
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

/// The host pids in the vserver's cgroup.
pub fn procs(plan: &CgroupPlan) -> Vec<i32> {
    let Some(d) = plan.v2_dir.as_ref().or(plan.dirs.last()) else { return Vec::new() };
    read_pids(d)
}

fn read_pids(d: &Path) -> Vec<i32> {
    fs::read_to_string(d.join("cgroup.procs")).map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect()).unwrap_or_default()
}

fn empty(plan: &CgroupPlan) -> bool {
    plan.dirs.iter().all(|d| read_pids(d).is_empty())
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
    for d in &plan.dirs {
        for pid in read_pids(d) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
    if let Some(f) = freezer {
        let _ = fs::write(f.join("freezer.state"), "THAWED");
    }
}

/// Removes the vserver's cgroups (they must be empty), and the shared parents when this was
/// the last vserver in them (a parent still in use refuses with EBUSY and stays).
pub fn remove(plan: &CgroupPlan) {
    for d in plan.dirs.iter().chain(&plan.parents) {
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
