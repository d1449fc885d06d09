//! One supervisor per vserver: its state machine (`stopped → starting → running → stopping →
//! stopped | failed`), its operations (start, stop, restart, kill), and what happens when its
//! pid 1 ends by itself (restart policy, reboot, halt).
//!
//! One operation at a time: a second request while one runs is refused with `Busy` at once, so
//! a stop that hangs on one vserver never delays another. Status is kept apart from the
//! operation lock so that properties can always be read.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tracing::{info, warn};
use vserver_api::{State, VServerError};
use vserver_sandbox::Exit;

use crate::config::{Restart, VServerConfig};
use crate::hooks::{self, Phase, Target};
use crate::monitor::{self, MonitorReport, MonitorRequest, RunState};
use crate::paths::Paths;

/// After a stop's timeout, how long the final SIGKILL may take to end everything.
const KILL_GRACE: Duration = Duration::from_secs(10);
/// How long a monitor may take to report a start.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Reboots from inside: more than this many within the window and the vserver is failed.
const REBOOT_LIMIT: usize = 5;
const REBOOT_WINDOW: Duration = Duration::from_secs(60);

/// What the properties show.
#[derive(Debug, Clone)]
pub struct Status {
    pub state: State,
    pub run: Option<RunState>,
    pub restarts: u32,
    pub last_exit: String,
    pub last_error: String,
}

pub struct Supervisor {
    pub name: String,
    paths: Arc<Paths>,
    op: tokio::sync::Mutex<()>,
    config: Mutex<Option<Arc<VServerConfig>>>,
    status: Mutex<Status>,
    /// The exit of the current run, once its monitor has ended.
    exit_rx: Mutex<Option<watch::Receiver<Option<Exit>>>>,
    generation: Mutex<u64>,
    reboots: Mutex<Vec<Instant>>,
    /// The diagnostics that make its configuration invalid (empty when it is valid).
    problems: Mutex<Vec<String>>,
    /// Bumped on every status change; the D-Bus object emits PropertiesChanged from it.
    pub changed: watch::Sender<u64>,
}

fn describe_exit(e: Exit) -> String {
    match e {
        Exit::Code(c) => format!("exited {c}"),
        Exit::Signal(s) => {
            let name = nix::sys::signal::Signal::try_from(s).map(|s| s.as_str().to_string()).unwrap_or_else(|_| s.to_string());
            match s {
                libc::SIGHUP => format!("rebooted ({name})"),
                libc::SIGINT => format!("halted ({name})"),
                _ => format!("killed by {name}"),
            }
        }
    }
}

impl Supervisor {
    pub fn new(name: &str, paths: Arc<Paths>, config: Option<Arc<VServerConfig>>) -> Arc<Supervisor> {
        let (changed, _) = watch::channel(0);
        Arc::new(Supervisor {
            name: name.to_string(),
            paths,
            op: tokio::sync::Mutex::new(()),
            config: Mutex::new(config),
            status: Mutex::new(Status { state: State::Stopped, run: None, restarts: 0, last_exit: String::new(), last_error: String::new() }),
            exit_rx: Mutex::new(None),
            generation: Mutex::new(0),
            reboots: Mutex::new(Vec::new()),
            problems: Mutex::new(Vec::new()),
            changed,
        })
    }

    pub fn status(&self) -> Status {
        self.status.lock().unwrap().clone()
    }

    pub fn set_problems(&self, problems: Vec<String>) {
        *self.problems.lock().unwrap() = problems;
    }

    /// Its context number: the running one, else the configured one.
    pub fn context(&self) -> u32 {
        self.status().run.map(|r| r.context).or_else(|| self.config().map(|c| c.context)).unwrap_or(0)
    }

    /// pid 1 as the host sees it; 0 when not running.
    pub fn leader(&self) -> u32 {
        self.status().run.map(|r| r.pid as u32).unwrap_or(0)
    }

    /// When the current run started (µs since the epoch); 0 when not running.
    pub fn started_at(&self) -> u64 {
        self.status().run.map(|r| r.started_at).unwrap_or(0)
    }

    /// The addresses of its configuration.
    pub fn addresses(&self) -> Vec<String> {
        self.config().map(|c| c.network.addresses.iter().map(|a| a.to_string()).collect()).unwrap_or_default()
    }

    /// The console log of this vserver.
    pub fn log_file(&self) -> std::path::PathBuf {
        self.paths.log_file(&self.name)
    }

    pub fn config(&self) -> Option<Arc<VServerConfig>> {
        self.config.lock().unwrap().clone()
    }

    /// A new configuration from a reload; a running vserver keeps running (it takes the new
    /// configuration at its next start).
    pub fn set_config(&self, cfg: Option<Arc<VServerConfig>>) {
        if cfg.is_some() {
            self.problems.lock().unwrap().clear();
        }
        *self.config.lock().unwrap() = cfg;
        self.notify();
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn set_state(&self, state: State) {
        self.status.lock().unwrap().state = state;
        self.notify();
    }

    fn lock_op(&self) -> Result<tokio::sync::MutexGuard<'_, ()>, VServerError> {
        self.op.try_lock().map_err(|_| VServerError::Busy(format!("{}: another operation is under way; try again when it is done", self.name)))
    }

    // --- start -------------------------------------------------------------------------------

    pub async fn start(self: &Arc<Self>) -> Result<(), VServerError> {
        let _op = self.lock_op()?;
        self.start_locked(Target::Start).await
    }

    async fn start_locked(self: &Arc<Self>, target: Target) -> Result<(), VServerError> {
        let state = self.status().state;
        if state.is_active() {
            return Err(VServerError::AlreadyRunning(format!("{} is {}", self.name, state.as_str())));
        }
        let cfg = self.config().ok_or_else(|| {
            let problems = self.problems.lock().unwrap().join("\n");
            VServerError::ConfigInvalid(format!("{} has no valid configuration (`vserverctl check {}`):\n{problems}", self.name, self.name))
        })?;
        self.set_state(State::Starting);
        let started = self.start_run(&cfg, target).await;
        // The next start's monitor, now that this one no longer needs the CPU.
        crate::pool::refill();
        match started {
            Ok(()) => Ok(()),
            Err(e) => {
                let mut st = self.status.lock().unwrap();
                st.state = State::Failed;
                st.last_error = e.to_string();
                drop(st);
                self.notify();
                Err(e)
            }
        }
    }

    async fn start_run(self: &Arc<Self>, cfg: &Arc<VServerConfig>, target: Target) -> Result<(), VServerError> {
        let t0 = Instant::now();
        hooks::run(&self.paths, cfg, Phase::PreStart, target).await.map_err(|e| VServerError::HookFailed(e.to_string()))?;

        let run_dir = self.paths.vserver_run_dir(&self.name);
        std::fs::create_dir_all(&run_dir).map_err(|e| VServerError::failed(format!("{}: {e}", run_dir.display())))?;
        let _ = std::fs::remove_file(monitor::state_path(&self.paths.run_dir, &self.name));
        if let Some(bytes) = cfg.limits.disk {
            crate::quota::apply(&cfg.root, bytes).map_err(|e| VServerError::StartFailed(format!("{}: {e}", self.name)))?;
        }
        let cgroup = crate::cgroup::plan(crate::cgroup::host_layout(), &self.name, &cfg.limits)
            .map_err(|e| VServerError::StartFailed(format!("{}: {e}", self.name)))?;
        let req = MonitorRequest {
            cgroup: Some(cgroup),
            // The control socket's directory (vreboot, vhalt) is bound in at /run/vserver.
            plan: crate::control::with_guest_dir(&self.paths, &self.name, cfg.launch_plan(&self.paths.run_dir))?,
            log_file: self.paths.log_file(&self.name),
            log_max_bytes: 1 << 20,
            log_keep: 3,
        };
        // The monitor is this very program, run from the daemon's own sealed copy.
        let crate::pool::Monitor { mut child, pidfd, .. } =
            crate::pool::take().map_err(|e| VServerError::failed(format!("cannot start the monitor: {e}")))?;
        let t_spawned = t0.elapsed();
        let mut stdin = child.stdin.take().expect("piped");
        let body = serde_json::to_vec(&req).expect("request serializes");
        stdin.write_all(&body).await.map_err(|e| VServerError::failed(format!("monitor: {e}")))?;
        drop(stdin);
        let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
        let line = match tokio::time::timeout(START_TIMEOUT, lines.next_line()).await {
            Ok(Ok(Some(l))) => l,
            Ok(_) => String::new(),
            Err(_) => {
                let _ = child.start_kill();
                String::new()
            }
        };
        let report: Option<MonitorReport> = serde_json::from_str(&line).ok();
        let run = match report {
            Some(MonitorReport::Started(run)) => run,
            Some(MonitorReport::Failed(err)) => {
                let _ = child.wait().await;
                let _ = std::fs::remove_dir_all(&run_dir);
                let msg = format!("{}: start failed: {err}", self.name);
                warn!(vserver = %self.name, step = %err.step, path = ?err.path, errno = err.errno, "start failed");
                hooks::run(&self.paths, cfg, Phase::PostStop, Target::Stop).await.ok();
                return Err(VServerError::StartFailed(msg));
            }
            None => {
                let _ = child.wait().await;
                let _ = std::fs::remove_dir_all(&run_dir);
                return Err(VServerError::StartFailed(format!("{}: the monitor ended without a report", self.name)));
            }
        };
        // tokio reaps the monitor when it exits; we watch it through the pidfd.
        drop(child);
        info!(
            vserver = %self.name,
            pid = run.pid,
            context = run.context,
            us = t0.elapsed().as_micros() as u64,
            monitor_spawn_us = t_spawned.as_micros() as u64,
            "started"
        );
        self.attach(run, pidfd);

        if let Err(e) = hooks::run(&self.paths, cfg, Phase::PostStart, target).await {
            warn!(vserver = %self.name, error = %e, "post-start hook failed; stopping");
            let _ = self.stop_locked(Target::Stop).await;
            return Err(VServerError::HookFailed(e.to_string()));
        }
        Ok(())
    }

    /// Takes `run` as the current run and watches its monitor.
    fn attach(self: &Arc<Self>, run: RunState, pidfd: OwnedFd) {
        let (tx, rx) = watch::channel(None);
        *self.exit_rx.lock().unwrap() = Some(rx);
        let gen = {
            let mut g = self.generation.lock().unwrap();
            *g += 1;
            *g
        };
        {
            let mut st = self.status.lock().unwrap();
            st.state = State::Running;
            st.run = Some(run);
            st.last_error.clear();
            st.last_exit.clear();
        }
        self.notify();
        let me = Arc::clone(self);
        tokio::spawn(async move {
            wait_pidfd(pidfd).await;
            let exit = monitor::read_state(&me.paths.run_dir, &me.name).and_then(|s| s.exit).unwrap_or(Exit::Code(255));
            let _ = tx.send(Some(exit));
            me.on_exit(gen, exit).await;
        });
        crate::control::serve(self, &self.paths);
    }

    /// Re-adopts a vserver found running at daemon start (its monitor outlived the daemon).
    pub fn adopt(self: &Arc<Self>) -> bool {
        let Some(run) = monitor::read_state(&self.paths.run_dir, &self.name) else { return false };
        if run.exit.is_some() {
            return false;
        }
        let monitor_ok = vserver_sandbox::sys::start_time(run.monitor_pid) == Some(run.monitor_start_time);
        let leader_ok = vserver_sandbox::sys::start_time(run.pid) == Some(run.start_time);
        if !monitor_ok || !leader_ok {
            return false;
        }
        let Ok(pidfd) = pidfd_open(run.monitor_pid) else { return false };
        // Checked again now that the pid is pinned: a recycled pid is never adopted.
        if vserver_sandbox::sys::start_time(run.monitor_pid) != Some(run.monitor_start_time) {
            return false;
        }
        info!(vserver = %self.name, pid = run.pid, "re-adopted running vserver");
        self.attach(run, pidfd);
        true
    }

    /// A run that ended while the daemon was down: record how, run the post-stop hooks.
    pub async fn collect_ended(self: &Arc<Self>) {
        let Some(run) = monitor::read_state(&self.paths.run_dir, &self.name) else { return };
        let Some(exit) = run.exit else { return };
        info!(vserver = %self.name, exit = %describe_exit(exit), "ended while the daemon was down");
        if let Some(cfg) = self.config() {
            let _ = hooks::run(&self.paths, &cfg, Phase::PostStop, Target::Stop).await;
        }
        let _ = std::fs::remove_dir_all(self.paths.vserver_run_dir(&self.name));
        let mut st = self.status.lock().unwrap();
        st.last_exit = describe_exit(exit);
        st.state = if matches!(exit, Exit::Code(0)) || exit.is_halt() { State::Stopped } else { State::Failed };
        drop(st);
        self.notify();
    }

    // --- exits -------------------------------------------------------------------------------

    async fn on_exit(self: Arc<Self>, gen: u64, exit: Exit) {
        // A stop in progress handles its own exit; wait for any operation, then look.
        let op = self.op.lock().await;
        if *self.generation.lock().unwrap() != gen || self.status().state != State::Running {
            return;
        }
        info!(vserver = %self.name, exit = %describe_exit(exit), "pid 1 ended");
        let target = if exit.is_reboot() { Target::Reboot } else { Target::Stop };
        self.finish(exit, target).await;
        let restart_policy = self.config().map(|c| c.init.restart).unwrap_or(Restart::No);
        let again = if exit.is_reboot() {
            self.reboot_allowed()
        } else if exit.is_halt() {
            false
        } else {
            match restart_policy {
                Restart::No => false,
                Restart::Always => true,
                Restart::OnFailure => exit != Exit::Code(0),
            }
        };
        if exit.is_reboot() && !again {
            warn!(vserver = %self.name, "reboot loop: more than {REBOOT_LIMIT} reboots in {} s; not restarting", REBOOT_WINDOW.as_secs());
            self.set_state(State::Failed);
        }
        if again {
            self.status.lock().unwrap().restarts += 1;
            self.notify();
            // A reboot is a full restart: the configuration is read again. A restart per
            // `init.restart` is a new start.
            let target = if exit.is_reboot() {
                self.reread_config();
                Target::Reboot
            } else {
                Target::Start
            };
            if let Err(e) = self.start_locked(target).await {
                warn!(vserver = %self.name, error = %e, "restart failed");
            }
        }
        drop(op);
    }

    /// Reads this vserver's files again; when they are invalid now, the last good
    /// configuration stays.
    fn reread_config(&self) {
        let r = crate::config::load_one(&self.paths.config_dir, &self.name, &self.paths.load_options());
        match r.vservers.get(&self.name) {
            Some(cfg) => self.set_config(Some(Arc::new(cfg.clone()))),
            None => {
                let diags: Vec<String> = r.errors().map(|d| d.to_string()).collect();
                warn!(vserver = %self.name, "configuration invalid; rebooting with the last good one: {}", diags.join("; "));
            }
        }
    }

    fn reboot_allowed(&self) -> bool {
        let mut r = self.reboots.lock().unwrap();
        let now = Instant::now();
        r.retain(|t| now.duration_since(*t) < REBOOT_WINDOW);
        r.push(now);
        r.len() <= REBOOT_LIMIT
    }

    /// After pid 1 ended: post-stop hooks, runtime state removed, status updated.
    async fn finish(&self, exit: Exit, target: Target) {
        if let Some(cfg) = self.config() {
            if let Err(e) = hooks::run(&self.paths, &cfg, Phase::PostStop, target).await {
                warn!(vserver = %self.name, error = %e, "post-stop hook failed");
            }
        }
        let _ = std::fs::remove_dir_all(self.paths.vserver_run_dir(&self.name));
        let mut st = self.status.lock().unwrap();
        st.last_exit = describe_exit(exit);
        st.run = None;
        st.state = if matches!(exit, Exit::Code(0)) || exit.is_halt() || target == Target::Stop && exit == Exit::Signal(libc::SIGKILL) {
            State::Stopped
        } else {
            State::Failed
        };
        drop(st);
        self.notify();
    }

    // --- stop --------------------------------------------------------------------------------

    pub async fn stop(self: &Arc<Self>) -> Result<(), VServerError> {
        let _op = self.lock_op()?;
        self.stop_locked(Target::Stop).await
    }

    async fn stop_locked(self: &Arc<Self>, target: Target) -> Result<(), VServerError> {
        let st = self.status();
        let Some(run) = st.run.clone().filter(|_| st.state == State::Running) else {
            return Err(VServerError::NotRunning(format!("{} is {}", self.name, st.state.as_str())));
        };
        self.set_state(State::Stopping);
        let cfg = self.config();
        if let Some(cfg) = &cfg {
            if let Err(e) = hooks::run(&self.paths, cfg, Phase::PreStop, target).await {
                warn!(vserver = %self.name, error = %e, "pre-stop hook failed; stopping anyway");
            }
        }
        let (signal, timeout) = match &cfg {
            Some(c) if c.fakeinit => (c.init.stop_signal, Duration::from_secs(c.init.stop_timeout as u64)),
            Some(c) => (libc::SIGTERM, Duration::from_secs(c.init.stop_timeout as u64)),
            None => (libc::SIGTERM, Duration::from_secs(30)),
        };
        let mut rx = self.exit_rx.lock().unwrap().clone().expect("a running vserver has an exit channel");
        let _ = self.signal_leader(&run, signal);
        let exit = match tokio::time::timeout(timeout, wait_exit(&mut rx)).await {
            Ok(e) => e,
            Err(_) => {
                warn!(vserver = %self.name, "did not stop within {} s; killing every process", timeout.as_secs());
                // pid 1 of a PID namespace takes every process of the namespace with it,
                // double-forked and setsid'd ones too; the cgroup catches anything else.
                let _ = self.signal_leader(&run, libc::SIGKILL);
                let cg = crate::cgroup::membership(&self.name);
                let _ = tokio::task::spawn_blocking(move || crate::cgroup::kill_all(&cg, KILL_GRACE)).await;
                match tokio::time::timeout(KILL_GRACE, wait_exit(&mut rx)).await {
                    Ok(e) => e,
                    Err(_) => {
                        self.set_state(State::Failed);
                        return Err(VServerError::StopFailed(format!("{}: processes survived SIGKILL for {} s", self.name, KILL_GRACE.as_secs())));
                    }
                }
            }
        };
        info!(vserver = %self.name, exit = %describe_exit(exit), "stopped");
        self.finish(exit, target).await;
        if self.status().state == State::Failed && target == Target::Stop {
            // A stop that ended pid 1 the way we asked is a clean stop.
            self.set_state(State::Stopped);
        }
        Ok(())
    }

    fn signal_leader(&self, run: &RunState, signal: i32) -> Result<(), VServerError> {
        if vserver_sandbox::sys::start_time(run.pid) != Some(run.start_time) {
            return Err(VServerError::NotRunning(format!("{}: pid 1 is gone", self.name)));
        }
        let r = unsafe { libc::kill(run.pid, signal) };
        if r != 0 {
            return Err(VServerError::failed(format!("kill {}: {}", run.pid, std::io::Error::last_os_error())));
        }
        Ok(())
    }

    // --- restart, kill -------------------------------------------------------------------------

    pub async fn restart(self: &Arc<Self>) -> Result<(), VServerError> {
        let _op = self.lock_op()?;
        if self.status().state == State::Running {
            self.stop_locked(Target::Reboot).await?;
        }
        self.status.lock().unwrap().restarts += 1;
        self.start_locked(Target::Reboot).await
    }

    /// Sends `signal` to pid 1 (`leader`) or to every process of the vserver (`all`).
    pub fn kill(&self, whom: &str, signal: i32) -> Result<(), VServerError> {
        if nix::sys::signal::Signal::try_from(signal).is_err() && !(libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&signal) {
            return Err(VServerError::invalid_args(format!("{signal} is not a signal number")));
        }
        let st = self.status();
        let Some(run) = st.run.filter(|_| st.state.is_active()) else {
            return Err(VServerError::NotRunning(format!("{} is {}", self.name, st.state.as_str())));
        };
        match whom {
            "leader" => self.signal_leader(&run, signal),
            "all" => {
                let ns = std::fs::read_link(format!("/proc/{}/ns/pid", run.pid))
                    .map_err(|_| VServerError::NotRunning(format!("{}: pid 1 is gone", self.name)))?;
                // Its PID namespace, and its cgroup (which also holds what entered it).
                let mut pids = processes_in_pid_ns(&ns);
                pids.extend(crate::cgroup::procs(&crate::cgroup::membership(&self.name)));
                pids.sort_unstable();
                pids.dedup();
                for pid in pids {
                    unsafe { libc::kill(pid, signal) };
                }
                Ok(())
            }
            other => Err(VServerError::invalid_args(format!("whom must be \"leader\" or \"all\", not {other:?}"))),
        }
    }
}

/// Every host pid whose PID namespace is `ns` (the link text of /proc/PID/ns/pid).
pub fn processes_in_pid_ns(ns: &std::path::Path) -> Vec<i32> {
    let Ok(rd) = std::fs::read_dir("/proc") else { return Vec::new() };
    rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/pid")).map(|l| l == ns).unwrap_or(false))
        .collect()
}

async fn wait_exit(rx: &mut watch::Receiver<Option<Exit>>) -> Exit {
    loop {
        if let Some(e) = *rx.borrow_and_update() {
            return e;
        }
        if rx.changed().await.is_err() {
            return rx.borrow().unwrap_or(Exit::Code(255));
        }
    }
}

pub fn pidfd_open(pid: i32) -> std::io::Result<OwnedFd> {
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// Resolves when the process a pidfd pins has ended (a pidfd polls readable then).
async fn wait_pidfd(fd: OwnedFd) {
    // Safety: the pidfd is owned here and stays open for as long as the AsyncFd lives.
    match unsafe { AsyncFd::register(fd) } {
        Ok(afd) => {
            let _ = afd.readable().await;
        }
        Err(e) => {
            let (fd, e) = e.into_parts();
            warn!(error = %e, "cannot watch a pidfd; polling it");
            // Signal 0 through the pidfd fails with ESRCH once the process has ended.
            while unsafe { libc::syscall(libc::SYS_pidfd_send_signal, fd.as_raw_fd(), 0, std::ptr::null::<libc::siginfo_t>(), 0) } == 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
