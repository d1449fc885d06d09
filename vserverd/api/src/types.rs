//! Types that travel over the bus.

use serde::{Deserialize, Serialize};
use zbus::wire::{OwnedObjectPath, Type};

/// A vserver's lifecycle state: `stopped → starting → [booting →] running → stopping →
/// stopped | failed`. `booting`: pid 1 runs and has not said it is ready yet (systemd before
/// `READY=1`, an rc start command still running).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Stopped,
    Starting,
    Booting,
    Running,
    Stopping,
    Failed,
}

impl State {
    /// Every state, in the order of the lifecycle.
    pub const ALL: [State; 6] = [State::Stopped, State::Starting, State::Booting, State::Running, State::Stopping, State::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Booting => "booting",
            State::Running => "running",
            State::Stopping => "stopping",
            State::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn is_active(self) -> bool {
        matches!(self, State::Starting | State::Booting | State::Running | State::Stopping)
    }
}

/// One row of `ListVServers`: D-Bus signature `(ssuuasto)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct VServerSummary {
    pub name: String,
    /// [`State::as_str`].
    pub state: String,
    pub context: u32,
    /// pid 1 of the vserver as the host sees it; 0 when not running.
    pub leader: u32,
    pub addresses: Vec<String>,
    /// Microseconds since the Unix epoch; 0 when not running.
    pub started_at: u64,
    pub path: OwnedObjectPath,
}

/// One vserver's outcome in `StartOnboot` / `StopAll`: `(sbs)` = name, ok, message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct BootReport {
    pub name: String,
    pub ok: bool,
    pub message: String,
}

/// One row of `ListStats`, the paper's vserver-stat: `(sutttttttt)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct VServerStats {
    pub name: String,
    pub context: u32,
    pub processes: u64,
    /// Virtual memory of its processes, bytes (VSZ).
    pub vsz: u64,
    /// Memory charged to its cgroup, bytes (RSS).
    pub rss: u64,
    pub user_usec: u64,
    pub system_usec: u64,
    pub uptime_usec: u64,
    /// Disk space its root uses and its quota, bytes (0 when it has no quota).
    pub disk_used: u64,
    pub disk_limit: u64,
}

/// One process as the host sees it (the paper's `vps`): `(suuus)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Type)]
pub struct VProcess {
    /// The vserver it belongs to; empty for the host's own processes.
    pub vserver: String,
    /// Its pid on the host.
    pub pid: u32,
    /// Its pid inside its vserver (0 for the host's own).
    pub vpid: u32,
    pub ppid: u32,
    pub command: String,
}
