//! The host as the paper's spectator context: it sees every process and knows to which vserver
//! each belongs (`vps`, `vserver-stat`); acting on a vserver's processes goes through the daemon
//! (`vkill`).

use std::fs;

use vserver_api::VServerStats;
use vserver_config::run::RunState;
use vserver_engine::cgroup;

use crate::daemon::supervisor::Supervisor;

/// One process as the spectator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// The vserver it belongs to; empty for the host's own.
    pub vserver: String,
    pub pid: u32,
    /// Its pid as the vserver sees it (0 for the host's).
    pub vpid: u32,
    pub ppid: u32,
    pub command: String,
}

/// The vserver a host process belongs to, from its cgroup: the v2 line (`0::PATH`), or on a
/// v1-only host the pids line (`N:pids:PATH`).
pub fn vserver_of(pid: u32) -> Option<String> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let layout = cgroup::host_layout();
    let (controller, base) = if layout.v2_mount.is_some() { ("", layout.v2_base.as_str()) } else { ("pids", "/vservers") };
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrl, path) = (parts.next()?, parts.next()?, parts.next()?);
        if ctrl != controller {
            return None;
        }
        let rest = path.strip_prefix(base)?.strip_prefix('/')?;
        Some(rest.split('/').next()?.to_string())
    })
}

fn status_field<'a>(status: &'a str, key: &str) -> Option<&'a str> {
    status.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':')).map(str::trim)
}

/// Every process on the host (or only those of `only`), with its vserver.
pub fn processes(only: Option<&str>) -> Vec<Process> {
    let Ok(rd) = fs::read_dir("/proc") else { return Vec::new() };
    let mut out = Vec::new();
    for pid in rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
        let vserver = vserver_of(pid).unwrap_or_default();
        if let Some(n) = only {
            if vserver != n {
                continue;
            }
        }
        let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) else { continue };
        let ppid = status_field(&status, "PPid").and_then(|v| v.parse().ok()).unwrap_or(0);
        let vpid = if vserver.is_empty() {
            0
        } else {
            status_field(&status, "NSpid").and_then(|v| v.split_whitespace().last()?.parse().ok()).unwrap_or(0)
        };
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let mut command: String =
            cmdline.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" ");
        if command.is_empty() {
            command = format!("[{}]", status_field(&status, "Name").unwrap_or("?"));
        }
        out.push(Process { vserver, pid, vpid, ppid, command });
    }
    out.sort_by_key(|p| p.pid);
    out
}

/// The figures of vserver `sup`'s run `run` (the paper's `vserver-stat`: `ListStats`, and the
/// metrics): its processes and their memory and CPU time from its cgroups, its uptime at
/// `now_us` (µs since the epoch), and its disk use when it has a quota.
pub fn stats(sup: &Supervisor, run: &RunState, now_us: u64) -> VServerStats {
    let plan = cgroup::membership(&sup.name);
    let st = cgroup::stats(&plan);
    let disk = sup.config().filter(|c| c.limits.disk.is_some()).and_then(|c| vserver_engine::quota::usage(&c.root)).unwrap_or((0, 0));
    VServerStats {
        name: sup.name.clone(),
        context: run.context,
        processes: st.processes,
        vsz: vsz(&cgroup::procs(&plan)),
        rss: st.memory,
        user_usec: st.user_usec,
        system_usec: st.system_usec,
        uptime_usec: now_us.saturating_sub(run.started_at),
        disk_used: disk.0,
        disk_limit: disk.1,
    }
}

/// Virtual memory of the given processes, bytes (the paper's VSZ column).
pub fn vsz(pids: &[i32]) -> u64 {
    pids.iter()
        .filter_map(|p| fs::read_to_string(format!("/proc/{p}/status")).ok())
        .filter_map(|s| status_field(&s, "VmSize").and_then(|v| v.trim_end_matches("kB").trim().parse::<u64>().ok()))
        .sum::<u64>()
        * 1024
}

/// The host pid of `pid` as vserver `name` sees it (`inner`), or `pid` itself after checking that
/// it belongs to that vserver. None when it is not one of the vserver's.
pub fn resolve_pid(name: &str, pid: u32, inner: bool) -> Option<u32> {
    let plan = cgroup::membership(name);
    let members = cgroup::procs(&plan);
    if !inner {
        return members.contains(&(pid as i32)).then_some(pid);
    }
    members.into_iter().map(|p| p as u32).find(|p| {
        fs::read_to_string(format!("/proc/{p}/status"))
            .ok()
            .and_then(|s| status_field(&s, "NSpid").and_then(|v| v.split_whitespace().last()?.parse::<u32>().ok()))
            == Some(pid)
    })
}
