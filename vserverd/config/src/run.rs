//! A run of a vserver as the daemon, its monitor and the CLI share it: the request the daemon
//! sends a monitor, the monitor's one report, and `RUN_DIR/NAME/state.json` ([`RunState`],
//! written atomically), which holds pid 1's identity and, once it has ended, how. Defined once
//! here: the monitor writes it, the daemon adopts and reconciles from it, `destroy` reads it.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vserver_engine::cgroup::CgroupPlan;
use vserver_engine::{Exit, LaunchPlan, SetupError};

/// What the daemon asks of a monitor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorRequest {
    pub plan: LaunchPlan,
    pub log_file: PathBuf,
    /// Rotate the console log past this size; keep this many old files.
    pub log_max_bytes: u64,
    pub log_keep: u32,
    /// The vserver's cgroups: made before pid 1 exists, pid 1 put in them before it runs
    /// anything, emptied and removed after it ends.
    #[serde(default)]
    pub cgroup: Option<CgroupPlan>,
    /// Where to bind pid 1's `NOTIFY_SOCKET` (the plan's environment names it as seen inside):
    /// the start is reported `booting` until pid 1 says `READY=1` there.
    #[serde(default)]
    pub notify: Option<PathBuf>,
    /// The signal that stops this pid 1 cleanly, kept with the run.
    #[serde(default = "default_stop_signal")]
    pub stop_signal: i32,
}

fn default_stop_signal() -> i32 {
    libc::SIGTERM
}

/// The monitor's one answer on stdout.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MonitorReport {
    Started(RunState),
    Failed(SetupError),
    /// pid 1 said `READY=1` (after `Started` with `booting`).
    Ready,
}

/// A running (or ended) vserver, as its monitor records it in `RUN_DIR/NAME/state.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub name: String,
    pub context: u32,
    /// pid 1 as the host sees it, and its start time (clock ticks since boot).
    pub pid: i32,
    pub start_time: u64,
    pub monitor_pid: i32,
    pub monitor_start_time: u64,
    /// Microseconds since the Unix epoch.
    pub started_at: u64,
    /// The console pty's slave, as the host names it.
    pub console: String,
    /// Set once pid 1 has ended.
    pub exit: Option<Exit>,
    pub ended_at: Option<u64>,
    /// True until pid 1 says it is ready (when it was asked to).
    #[serde(default)]
    pub booting: bool,
    /// The signal that stops pid 1 cleanly.
    #[serde(default = "default_stop_signal")]
    pub stop_signal: i32,
}

pub fn state_path(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(name).join("state.json")
}

/// Writes `state` aside and renames it into place: a reader sees the old or the new file whole.
pub fn write_state(run_dir: &Path, state: &RunState) -> std::io::Result<()> {
    let dir = run_dir.join(&state.name);
    fs::create_dir_all(&dir)?;
    let tmp = dir.join(".state.json.tmp");
    fs::write(&tmp, serde_json::to_vec(state).expect("state serializes"))?;
    fs::rename(&tmp, dir.join("state.json"))
}

pub fn read_state(run_dir: &Path, name: &str) -> Option<RunState> {
    serde_json::from_slice(&fs::read(state_path(run_dir, name)).ok()?).ok()
}

/// The state file of `name`: `Ok(None)` when there is none, an error (saying why) when it is
/// there but cannot be read or parsed.
pub fn load_state(run_dir: &Path, name: &str) -> Result<Option<RunState>, String> {
    match fs::read(state_path(run_dir, name)) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

impl RunState {
    /// A running vserver as the context registry knows it (pid 1 and its monitor, each with its
    /// start time): what a lost or damaged state file is rebuilt from. The console's path and
    /// the stop signal are not in the registry: the caller supplies the signal.
    pub fn from_registry(e: &vserver_engine::registry::Entry, stop_signal: i32) -> RunState {
        RunState {
            name: e.name.clone(),
            context: e.context,
            pid: e.pid,
            start_time: e.start_time,
            monitor_pid: e.owner_pid,
            monitor_start_time: e.owner_start_time,
            started_at: started_at_of(e.start_time),
            console: String::new(),
            exit: None,
            ended_at: None,
            booting: false,
            stop_signal,
        }
    }
}

/// A process start time (clock ticks since boot) as microseconds since the epoch.
fn started_at_of(ticks: u64) -> u64 {
    let boot = fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("btime ")?.trim().parse::<u64>().ok()))
        .unwrap_or(0);
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    boot * 1_000_000 + ticks * 1_000_000 / hz
}

pub fn now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Where the daemon tells a monitor its shared `vserver-init` is (the daemon's init pool).
pub const SHARED_INIT_ENV: &str = "VSERVER_SHARED_INIT";

/// `RUN_DIR/.locks/NAME`, locked (`flock`, exclusive) by the daemon while it starts NAME and by
/// `vserverctl destroy` while it checks and deletes NAME: a start cannot slip in between a
/// destroy's check and its deletion, nor a destroy into a start. (Names never begin with `.`.)
/// Released when dropped, or when its holder dies; never inherited by a child (close-on-exec).
#[derive(Debug)]
pub struct NameLock {
    _file: fs::File,
}

pub fn lock_path(run_dir: &Path, name: &str) -> PathBuf {
    run_dir.join(".locks").join(name)
}

/// Takes the lock of `name` without waiting: `Ok(None)` when another process holds it.
pub fn try_lock_name(run_dir: &Path, name: &str) -> std::io::Result<Option<NameLock>> {
    use std::os::fd::AsRawFd;
    let path = lock_path(run_dir, name);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = fs::OpenOptions::new().create(true).truncate(false).write(true).open(&path)?;
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = std::io::Error::last_os_error();
        return if e.raw_os_error() == Some(libc::EWOULDBLOCK) { Ok(None) } else { Err(e) };
    }
    Ok(Some(NameLock { _file: file }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_written_atomically_and_read_back() {
        let dir = std::env::temp_dir().join(format!("vserverd-state-test-{}", std::process::id()));
        let s = RunState {
            name: "web1".into(),
            context: 1001,
            pid: 42,
            start_time: 7,
            monitor_pid: 41,
            monitor_start_time: 6,
            started_at: 1,
            console: "/dev/pts/3".into(),
            exit: Some(Exit::Signal(1)),
            ended_at: Some(2),
            booting: false,
            stop_signal: 15,
        };
        write_state(&dir, &s).unwrap();
        assert_eq!(read_state(&dir, "web1"), Some(s));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_name_lock_excludes_a_second_holder_until_dropped() {
        let dir = std::env::temp_dir().join(format!("vserver-config-lock-test-{}", std::process::id()));
        let a = try_lock_name(&dir, "web1").unwrap();
        assert!(a.is_some());
        assert!(try_lock_name(&dir, "web1").unwrap().is_none(), "held: a second taker is refused");
        assert!(try_lock_name(&dir, "web2").unwrap().is_some(), "another name has its own lock");
        drop(a);
        assert!(try_lock_name(&dir, "web1").unwrap().is_some(), "free once dropped");
        let _ = fs::remove_dir_all(&dir);
    }
}
