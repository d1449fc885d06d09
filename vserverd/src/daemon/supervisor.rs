//! One supervisor per vserver: its state machine (`stopped → starting → running → stopping →
//! stopped | failed`), its operations (start, stop, restart, kill), and what happens when its
//! pid 1 ends by itself (restart policy, reboot, halt).
//!
//! One operation at a time: a second request while one runs is refused with `Busy` at once, so
//! a stop that hangs on one vserver never delays another. What the supervisor knows (status,
//! configuration, current run's exit channel, reboots) is one state behind one lock, apart from
//! the operation lock so that properties can always be read; the state moves only as
//! [`allowed`] says.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;
use tracing::{info, warn};
use vserver_api::{State, VServerError};
use vserver_engine::Exit;

use vserver_config::{Ready, Restart, VServerConfig};
use vserver_config::initkind::InitKind;
use crate::daemon::dbus::args::Whom;
use crate::daemon::error::StartError;
use crate::daemon::hooks::{self, Phase, Target};
use crate::daemon::metrics::StartDurations;
use vserver_config::run::{self, MonitorReport, MonitorRequest, RunState};
use vserver_config::paths::Paths;

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
    /// One operation (start, stop, restart) at a time.
    op: tokio::sync::Mutex<()>,
    inner: Mutex<Inner>,
    /// Bumped on every status change; the D-Bus object emits PropertiesChanged from it.
    pub changed: watch::Sender<u64>,
    /// The daemon's histogram of start latencies.
    start_durations: StartDurations,
}

/// Everything a supervisor knows, behind one lock. Its state changes only through
/// [`Inner::enter`], which allows the moves of [`allowed`] and no other.
struct Inner {
    status: Status,
    config: Option<Arc<VServerConfig>>,
    /// The diagnostics that make its configuration invalid (empty when it is valid).
    problems: Vec<String>,
    /// The exit of the current run, once its monitor has ended.
    exit_rx: Option<watch::Receiver<Option<Exit>>>,
    /// Bumped for each run taken on: a late event of an older run is recognised and ignored.
    generation: u64,
    /// Reboots asked for from inside, within the last REBOOT_WINDOW.
    reboots: Vec<Instant>,
}

impl Inner {
    /// Moves to `to` if the state machine allows it from where it is; says whether it did.
    fn enter(&mut self, to: State, name: &str) -> bool {
        let from = self.status.state;
        if !allowed(from, to) {
            warn!(vserver = %name, from = from.as_str(), to = to.as_str(), "state change refused");
            return false;
        }
        self.status.state = to;
        true
    }
}

/// The moves of a vserver's state machine: `stopped → starting → (booting →) running →
/// stopping → stopped`, `failed` from anywhere, and a run taken on (adopted, recovered) from
/// stopped or failed. A failed run that still has processes may be stopped again.
pub fn allowed(from: State, to: State) -> bool {
    use State::*;
    match (from, to) {
        (_, Failed) => true,
        (Stopped | Failed, Starting) => true,
        (Stopped | Failed | Starting, Booting | Running) => true,
        (Booting, Running) => true,
        (Booting | Running | Failed, Stopping) => true,
        (Starting | Booting | Running | Stopping | Failed, Stopped) => true,
        (from, to) => from == to,
    }
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

impl crate::daemon::control::Controlled for Supervisor {
    fn name(&self) -> &str {
        &self.name
    }

    fn root_uid(&self) -> u32 {
        vserver_engine::userns::claimed(&self.paths.run_dir, &self.name).map_or(0, |m| m.uid)
    }

    fn control_status(&self) -> (State, Option<(i32, u64, u32)>, u32) {
        let st = self.status();
        (st.state, st.run.map(|r| (r.pid, r.start_time, r.context)), st.restarts)
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    async fn restart(self: &Arc<Self>) -> Result<(), VServerError> {
        Supervisor::restart(self).await
    }

    async fn stop(self: &Arc<Self>) -> Result<(), VServerError> {
        Supervisor::stop(self).await
    }
}

impl Supervisor {
    /// The host ids of the running vserver's user namespace ("uids A-B, gids C-D"); "" when
    /// root inside is the host's, or it does not run.
    pub fn user_ids(&self) -> String {
        if self.status().state != State::Running {
            return String::new();
        }
        vserver_engine::userns::claimed(&self.paths.run_dir, &self.name).map(|m| m.to_string()).unwrap_or_default()
    }

    pub fn new(name: &str, paths: Arc<Paths>, config: Option<Arc<VServerConfig>>, start_durations: StartDurations) -> Arc<Supervisor> {
        let (changed, _) = watch::channel(0);
        Arc::new(Supervisor {
            name: name.to_string(),
            paths,
            op: tokio::sync::Mutex::new(()),
            inner: Mutex::new(Inner {
                status: Status { state: State::Stopped, run: None, restarts: 0, last_exit: String::new(), last_error: String::new() },
                config,
                problems: Vec::new(),
                exit_rx: None,
                generation: 0,
                reboots: Vec::new(),
            }),
            changed,
            start_durations,
        })
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// Changes what the supervisor knows under its lock, then tells the watchers.
    fn update<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let r = f(&mut self.inner());
        self.notify();
        r
    }

    pub fn status(&self) -> Status {
        self.inner().status.clone()
    }

    pub fn set_problems(&self, problems: Vec<String>) {
        self.inner().problems = problems;
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
        self.inner().config.clone()
    }

    /// A new configuration from a reload; a running vserver keeps running (it takes the new
    /// configuration at its next start).
    pub fn set_config(&self, cfg: Option<Arc<VServerConfig>>) {
        self.update(|i| {
            if cfg.is_some() {
                i.problems.clear();
            }
            i.config = cfg;
        });
    }

    fn notify(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    fn set_state(&self, state: State) {
        self.update(|i| i.enter(state, &self.name));
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
        let st = self.status();
        if st.state.is_active() {
            return Err(VServerError::AlreadyRunning(format!("{} is {}", self.name, st.state.as_str())));
        }
        if let Some(run) = st.run.filter(|r| vserver_engine::sys::start_time(r.pid) == Some(r.start_time)) {
            // A stop that failed left processes (see `stop_locked`).
            return Err(VServerError::AlreadyRunning(format!(
                "{} still has processes of its last run (pid 1 is {}; its stop failed: {}); stop it again once they can end",
                self.name, run.pid, st.last_error
            )));
        }
        let cfg = self.config().ok_or_else(|| {
            let problems = self.inner().problems.join("\n");
            VServerError::ConfigInvalid(format!("{} has no valid configuration:\n{problems}", self.name))
        })?;
        // A destroy under way holds the name's lock (vserverctl takes it to check and delete);
        // the start holds it until its run is reported, so neither slips into the other.
        let _name = match run::try_lock_name(&self.paths.run_dir, &self.name) {
            Ok(Some(lock)) => lock,
            Ok(None) => return Err(VServerError::Busy(format!("{} is being destroyed (its lock {} is held)", self.name, run::lock_path(&self.paths.run_dir, &self.name).display()))),
            Err(e) => {
                let path = run::lock_path(&self.paths.run_dir, &self.name);
                return Err(VServerError::failed(format!("{}: cannot take the lock {}: {e}", self.name, path.display())));
            }
        };
        self.set_state(State::Starting);
        let started = self.start_run(&cfg, target).await;
        // The next start's monitor, now that this one no longer needs the CPU.
        crate::daemon::pool::refill();
        match started {
            Ok(()) => Ok(()),
            Err(e) => {
                self.update(|i| {
                    i.enter(State::Failed, &self.name);
                    i.status.last_error = e.to_string();
                });
                Err(e)
            }
        }
    }

    async fn start_run(self: &Arc<Self>, cfg: &Arc<VServerConfig>, target: Target) -> Result<(), VServerError> {
        let t0 = Instant::now();
        // Cgroups left by a crash: removed when empty, refused when they hold processes.
        if vserver_engine::cgroup::clear_stale(&self.name).map_err(|err| StartError::Cgroup { name: self.name.clone(), err })? {
            warn!(vserver = %self.name, "removed cgroups left by an earlier run");
        }
        hooks::run(&self.paths, cfg, Phase::PreStart, target).await.map_err(|e| VServerError::HookFailed(e.to_string()))?;

        let run_dir = self.paths.vserver_run_dir(&self.name);
        std::fs::create_dir_all(&run_dir).map_err(|e| VServerError::failed(format!("{}: {e}", run_dir.display())))?;
        let _ = std::fs::remove_file(run::state_path(&self.paths.run_dir, &self.name));
        if let Some(bytes) = cfg.limits.disk {
            vserver_engine::quota::apply(&cfg.root, bytes).map_err(|err| StartError::Quota { name: self.name.clone(), err })?;
        }
        // What pid 1 is decides how it is stopped and when it is ready.
        let kind = vserver_config::initkind::detect(cfg);
        let ready = cfg.init.ready.unwrap_or(kind.ready());
        let stop_signal = vserver_config::initkind::stop_signal(cfg, kind);
        // A real init manages its own cgroup tree, one level below the vserver's limits.
        let cgroup = vserver_engine::cgroup::plan(vserver_engine::cgroup::host_layout(), &self.name, &cfg.limits, cfg.fakeinit)
            .map_err(|err| StartError::Cgroup { name: self.name.clone(), err })?;
        let mut plan = cfg.launch_plan(&self.paths.run_dir);
        plan.init_fs.cgroup = cgroup.guest_dir.is_some();
        if let Some(vserver_engine::userns::UserNsPlan::Pick { pool }) = plan.userns.as_mut() {
            *pool = crate::daemon::idpool::pool().map_err(|why| StartError::UserIds { name: self.name.clone(), why })?;
        }
        if let Some(b) = plan.bind.as_mut() {
            // One copy of the programs for every bind vserver.
            b.programs = match crate::daemon::bindmode::loaded_programs() {
                Some(ids) => Some(ids),
                // Loaded once, off the daemon's thread (the kernel verifies 17 programs).
                None => tokio::task::spawn_blocking(crate::daemon::bindmode::shared_programs).await.ok().flatten(),
            };
        }
        let notify = (ready == Ready::Notify).then(|| {
            plan.env.push(("NOTIFY_SOCKET".into(), crate::monitor::readiness::INSIDE.into()));
            crate::daemon::control::guest_dir(&self.paths, &self.name).join(crate::monitor::readiness::FILE)
        });
        let req = MonitorRequest {
            cgroup: Some(cgroup),
            // The control socket's directory (vreboot, vhalt) is bound in at /run/vserver.
            plan: crate::daemon::control::with_guest_dir(&self.paths, &self.name, plan)?,
            log_file: self.paths.log_file(&self.name),
            log_max_bytes: 1 << 20,
            log_keep: 3,
            notify,
            stop_signal,
        };
        // Where this run's console output will begin in its log (shown if the start fails).
        let log_start = std::fs::metadata(self.paths.log_file(&self.name)).map(|m| m.len()).unwrap_or(0);
        // The monitor is this very program, run from the daemon's own sealed copy.
        let crate::daemon::pool::Monitor { mut child, pidfd, .. } =
            crate::daemon::pool::take().map_err(|e| VServerError::failed(format!("cannot start the monitor: {e}")))?;
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
        let mut run = match report {
            Some(MonitorReport::Started(run)) => run,
            Some(MonitorReport::Failed(err)) => {
                let _ = child.wait().await;
                let _ = std::fs::remove_dir_all(&run_dir);
                warn!(vserver = %self.name, step = %err.step, path = ?err.path, errno = err.errno, "start failed");
                hooks::run(&self.paths, cfg, Phase::PostStop, Target::Stop).await.ok();
                return Err(StartError::Setup { name: self.name.clone(), err }.into());
            }
            Some(MonitorReport::Ready) | None => {
                // The monitor died before it said anything: pid 1, if it was exec'd already,
                // is ended through the cgroups with whatever it started.
                let status = child.wait().await.map(|s| s.to_string()).unwrap_or_default();
                self.end_orphaned(None).await;
                let _ = std::fs::remove_dir_all(&run_dir);
                hooks::run(&self.paths, cfg, Phase::PostStop, Target::Stop).await.ok();
                return Err(StartError::MonitorDied { name: self.name.clone(), status }.into());
            }
        };
        if run.booting {
            // pid 1 runs; the start is done when it says it is ready.
            self.update(|i| {
                i.enter(State::Booting, &self.name);
                i.status.run = Some(run.clone());
            });
            let deadline = t0 + Duration::from_secs(cfg.init.start_timeout as u64);
            let heard = tokio::time::timeout_at(deadline.into(), lines.next_line()).await;
            let why = match heard {
                Ok(Ok(Some(l))) if matches!(serde_json::from_str(&l), Ok(MonitorReport::Ready)) => None,
                Ok(_) => {
                    // The monitor ended: pid 1 did, before it was ready, or the monitor died.
                    let status = child.wait().await.map(|s| s.to_string()).unwrap_or_default();
                    let recorded = run::read_state(&self.paths.run_dir, &self.name).and_then(|s| s.exit);
                    let exit = recorded.unwrap_or(Exit::Signal(libc::SIGKILL));
                    if recorded.is_none() {
                        self.end_orphaned(Some(&run)).await;
                        self.finish(exit, Target::Stop).await;
                        Some(format!("its monitor ended ({status}) while it booted; every process of the vserver was ended"))
                    } else if exit.is_reboot() || exit.is_halt() {
                        // A reboot or halt asked for from inside is no failure of the start: it
                        // is handled as at any other time (a reboot restarts the vserver).
                        None
                    } else {
                        self.finish(exit, Target::Stop).await;
                        let command = cfg.init.command.join(" ");
                        Some(match kind {
                            InitKind::Rc => format!("the start command {command:?} failed ({})", describe_exit(exit)),
                            _ => format!("pid 1 ({command}) ended before it was ready: {}", describe_exit(exit)),
                        })
                    }
                }
                Err(_) => {
                    // Not ready in time: everything goes, as at the end of a stop's timeout.
                    warn!(vserver = %self.name, "not ready within {} s; killing every process", cfg.init.start_timeout);
                    let _ = self.signal_pid1(&run, libc::SIGKILL);
                    let cg = vserver_engine::cgroup::membership(&self.name);
                    let _ = tokio::task::spawn_blocking(move || vserver_engine::cgroup::kill_all(&cg, KILL_GRACE)).await;
                    let _ = tokio::time::timeout(KILL_GRACE, child.wait()).await;
                    let exit = run::read_state(&self.paths.run_dir, &self.name).and_then(|s| s.exit).unwrap_or(Exit::Signal(libc::SIGKILL));
                    self.finish(exit, Target::Stop).await;
                    Some(format!("not ready within {} s (init.start_timeout); every process was killed", cfg.init.start_timeout))
                }
            };
            if let Some(why) = why {
                let console = console_tail(&self.paths.log_file(&self.name), log_start, CONSOLE_TAIL_LINES);
                warn!(vserver = %self.name, "start failed: {why}");
                return Err(StartError::NotReady { name: self.name.clone(), why, console }.into());
            }
            run.booting = false;
        }
        // tokio reaps the monitor when it exits; we watch it through the pidfd.
        drop(child);
        // Fault injection for the tests, in debug builds only: a panic in one vserver's start.
        #[cfg(debug_assertions)]
        if std::env::var_os("VSERVERD_TEST_PANIC_AFTER_START").is_some_and(|v| v == self.name.as_str()) {
            panic!("test-only panic after the start of {}", self.name);
        }
        let took = t0.elapsed();
        self.start_durations.observe(took);
        info!(
            vserver = %self.name,
            pid = run.pid,
            context = run.context,
            init = kind.name(),
            us = took.as_micros() as u64,
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
        let booting = run.booting;
        let gen = self.update(|i| {
            i.exit_rx = Some(rx);
            i.generation += 1;
            i.enter(if booting { State::Booting } else { State::Running }, &self.name);
            i.status.run = Some(run);
            i.status.last_error.clear();
            i.status.last_exit.clear();
            i.generation
        });
        if booting {
            // Adopted while booting: the report channel went with the old daemon; the state
            // file says when pid 1 is ready.
            tokio::spawn(Arc::clone(self).watch_boot(gen));
        }
        let me = Arc::clone(self);
        tokio::spawn(async move {
            wait_pidfd(pidfd).await;
            let (exit, orphaned) = match run::read_state(&me.paths.run_dir, &me.name).and_then(|s| s.exit) {
                Some(exit) => (exit, false),
                None => {
                    // The monitor died without recording pid 1's end (killed outright): the
                    // vserver dies with it, every process ended through its cgroups.
                    let run = me.status().run;
                    me.end_orphaned(run.as_ref()).await;
                    (Exit::Signal(libc::SIGKILL), true)
                }
            };
            let _ = tx.send(Some(exit));
            me.on_exit(gen, exit, orphaned).await;
        });
        crate::daemon::control::serve(self, &self.paths);
    }

    /// Ends what is left of a run whose monitor died without recording pid 1's end (documented
    /// behaviour: the vserver dies with its monitor): everything in its cgroups (pid 1 among
    /// them, which takes its PID namespace with it), which are removed; what its links left on
    /// the host (proxy entries, host ends); its context number. Processes are found through the
    /// cgroups alone, never by a recorded pid. Safe to call when nothing is left.
    async fn end_orphaned(&self, run: Option<&RunState>) {
        warn!(vserver = %self.name, monitor = run.map(|r| r.monitor_pid), "the monitor died; ending every process of the vserver");
        let cg = vserver_engine::cgroup::membership(&self.name);
        let plan = self.config().map(|c| c.launch_plan(&self.paths.run_dir));
        let (run_dir, context) = (self.paths.run_dir.clone(), run.map(|r| r.context));
        let ended = tokio::task::spawn_blocking(move || {
            let killed = vserver_engine::cgroup::kill_all(&cg, KILL_GRACE);
            vserver_engine::cgroup::remove(&cg);
            if let Some(plan) = plan {
                vserver_engine::net::attach::remove_leftovers(&plan);
            }
            if let Some(c) = context {
                vserver_engine::registry::release(&run_dir, c);
            }
            killed
        })
        .await;
        if let Ok(Err(e)) = ended {
            warn!(vserver = %self.name, error = %e, "processes outlived their monitor");
        }
    }

    /// A vserver adopted while booting: running once its state file says pid 1 is ready;
    /// killed if that takes longer than its start timeout (from its start).
    async fn watch_boot(self: Arc<Self>, gen: u64) {
        let timeout = self.config().map(|c| c.init.start_timeout as u64).unwrap_or(90);
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (st, current) = {
                let i = self.inner();
                (i.status.clone(), i.generation == gen)
            };
            let Some(run) = st.run.filter(|_| st.state == State::Booting && current) else { return };
            match run::read_state(&self.paths.run_dir, &self.name) {
                Some(s) if s.exit.is_none() && !s.booting => {
                    self.update(|i| {
                        if i.status.state == State::Booting && i.enter(State::Running, &self.name) {
                            i.status.run = Some(s);
                        }
                    });
                    return;
                }
                Some(s) if s.exit.is_some() => return, // its monitor's end is handled by on_exit
                _ => {}
            }
            if run::now_us().saturating_sub(run.started_at) > timeout * 1_000_000 {
                warn!(vserver = %self.name, "not ready within {timeout} s; killing every process");
                let _ = self.signal_pid1(&run, libc::SIGKILL);
                return;
            }
        }
    }

    /// At daemon start: what became of this vserver's run while no daemon watched. Its state
    /// file says (a damaged or lost one is rebuilt from the context registry, where the run is
    /// still live, and logged with its path); then: re-adopted (its monitor outlived the
    /// daemon), or its end collected (hooks, last exit), or, when its monitor died without
    /// recording pid 1's end, everything of it ended (as at any other time its monitor dies).
    pub async fn recover(self: &Arc<Self>) {
        let path = run::state_path(&self.paths.run_dir, &self.name);
        let (run, rebuilt) = match run::load_state(&self.paths.run_dir, &self.name) {
            Ok(Some(run)) => (run, false),
            Ok(None) => match self.registry_run() {
                Some(run) => (run, true),
                None => return,
            },
            Err(e) => {
                warn!(vserver = %self.name, path = %path.display(), error = %e, "state file unreadable; reconciling from the context registry and the cgroups");
                match self.registry_run() {
                    Some(run) => (run, true),
                    None => {
                        // No live run: whatever it left goes, and it is shown failed.
                        self.end_orphaned(None).await;
                        let _ = std::fs::remove_dir_all(self.paths.vserver_run_dir(&self.name));
                        self.set_exit(State::Failed, format!("unknown: its state file ({}) was unreadable: {e}", path.display()));
                        return;
                    }
                }
            }
        };
        if let Some(exit) = run.exit {
            return self.collect_ended(exit).await;
        }
        let monitor_ok = vserver_engine::sys::start_time(run.monitor_pid) == Some(run.monitor_start_time);
        let leader_ok = vserver_engine::sys::start_time(run.pid) == Some(run.start_time);
        let pinned = monitor_ok.then(|| vserver_engine::sys::pidfd_open(run.monitor_pid).ok()).flatten();
        // Checked again now that the pid is pinned: a recycled pid is never adopted.
        let pinned = pinned.filter(|_| vserver_engine::sys::start_time(run.monitor_pid) == Some(run.monitor_start_time));
        match pinned {
            Some(pidfd) if leader_ok => {
                if rebuilt {
                    if let Err(e) = run::write_state(&self.paths.run_dir, &run) {
                        warn!(vserver = %self.name, path = %path.display(), error = %e, "cannot write the rebuilt state file");
                    }
                }
                info!(vserver = %self.name, pid = run.pid, rebuilt, "re-adopted running vserver");
                self.attach(run, pidfd);
            }
            Some(_) => {
                // The monitor lives and pid 1 does not: it is recording the end (or the pids
                // were recycled); nothing to adopt, and nothing is touched.
                warn!(vserver = %self.name, pid = run.pid, "pid 1 of the recorded run is gone; not adopted");
                if let Ok(Some(now)) = run::load_state(&self.paths.run_dir, &self.name) {
                    if let Some(exit) = now.exit {
                        self.collect_ended(exit).await;
                    }
                }
            }
            None => {
                // Its monitor is gone without a record of pid 1's end: the vserver goes with it.
                self.end_orphaned(Some(&run)).await;
                if let Some(cfg) = self.config() {
                    let _ = hooks::run(&self.paths, &cfg, Phase::PostStop, Target::Stop).await;
                }
                let _ = std::fs::remove_dir_all(self.paths.vserver_run_dir(&self.name));
                self.set_exit(State::Failed, "its monitor died while the daemon was down; every process was killed".into());
            }
        }
    }

    /// The live run of this vserver in the context registry, if any.
    fn registry_run(&self) -> Option<RunState> {
        let entry = vserver_engine::registry::list(&self.paths.run_dir).into_iter().find(|e| e.name == self.name && e.is_live())?;
        let signal = self.config().map(|c| vserver_config::initkind::stop_signal(&c, vserver_config::initkind::detect(&c))).unwrap_or(libc::SIGTERM);
        Some(RunState::from_registry(&entry, signal))
    }

    fn set_exit(&self, state: State, last_exit: String) {
        self.update(|i| {
            i.enter(state, &self.name);
            i.status.last_exit = last_exit;
        });
    }

    /// A run that ended while the daemon was down: record how, run the post-stop hooks.
    async fn collect_ended(self: &Arc<Self>, exit: Exit) {
        info!(vserver = %self.name, exit = %describe_exit(exit), "ended while the daemon was down");
        if let Some(cfg) = self.config() {
            let _ = hooks::run(&self.paths, &cfg, Phase::PostStop, Target::Stop).await;
        }
        let _ = std::fs::remove_dir_all(self.paths.vserver_run_dir(&self.name));
        let state = if matches!(exit, Exit::Code(0)) || exit.is_halt() { State::Stopped } else { State::Failed };
        self.set_exit(state, describe_exit(exit));
    }

    // --- exits -------------------------------------------------------------------------------

    async fn on_exit(self: Arc<Self>, gen: u64, exit: Exit, orphaned: bool) {
        // A stop in progress handles its own exit; wait for any operation, then look.
        let op = self.op.lock().await;
        let st = self.status();
        // A failed stop keeps the run until its last process has ended.
        let ours = matches!(st.state, State::Running | State::Booting) || (st.state == State::Failed && st.run.is_some());
        if self.inner().generation != gen || !ours {
            return;
        }
        info!(vserver = %self.name, exit = %describe_exit(exit), "pid 1 ended");
        let target = if exit.is_reboot() { Target::Reboot } else { Target::Stop };
        self.finish(exit, target).await;
        if orphaned {
            self.set_exit(State::Failed, "its monitor died; every process was killed".into());
        }
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
            self.update(|i| i.status.restarts += 1);
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
        let r = vserver_config::load_one(&self.paths.config_dir, &self.name, &self.paths.load_options());
        match r.vservers.get(&self.name) {
            Some(cfg) => self.set_config(Some(Arc::new(cfg.clone()))),
            None => {
                let diags: Vec<String> = r.errors().map(|d| d.to_string()).collect();
                warn!(vserver = %self.name, "configuration invalid; rebooting with the last good one: {}", diags.join("; "));
            }
        }
    }

    fn reboot_allowed(&self) -> bool {
        let r = &mut self.inner().reboots;
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
        let state = if matches!(exit, Exit::Code(0)) || exit.is_halt() || target == Target::Stop && exit == Exit::Signal(libc::SIGKILL) {
            State::Stopped
        } else {
            State::Failed
        };
        self.update(|i| {
            i.status.run = None;
            i.status.last_exit = describe_exit(exit);
            i.enter(state, &self.name);
        });
    }

    // --- stop --------------------------------------------------------------------------------

    pub async fn stop(self: &Arc<Self>) -> Result<(), VServerError> {
        let _op = self.lock_op()?;
        self.stop_locked(Target::Stop).await
    }

    async fn stop_locked(self: &Arc<Self>, target: Target) -> Result<(), VServerError> {
        let st = self.status();
        // A failed stop (processes left) may be tried again.
        let Some(run) = st.run.clone().filter(|_| matches!(st.state, State::Running | State::Booting | State::Failed)) else {
            return Err(VServerError::NotRunning(format!("{} is {}", self.name, st.state.as_str())));
        };
        self.set_state(State::Stopping);
        let cfg = self.config();
        if let Some(cfg) = &cfg {
            if let Err(e) = hooks::run(&self.paths, cfg, Phase::PreStop, target).await {
                warn!(vserver = %self.name, error = %e, "pre-stop hook failed; stopping anyway");
            }
        }
        // The signal chosen at its start, for the init it started.
        let signal = run.stop_signal;
        let timeout = Duration::from_secs(cfg.as_ref().map(|c| c.init.stop_timeout as u64).unwrap_or(30));
        let mut rx = self.inner().exit_rx.clone().expect("a running vserver has an exit channel");
        let _ = self.signal_pid1(&run, signal);
        let exit = match tokio::time::timeout(timeout, wait_exit(&mut rx)).await {
            Ok(e) => e,
            Err(_) => {
                warn!(vserver = %self.name, "did not stop within {} s; killing every process", timeout.as_secs());
                // pid 1 of a PID namespace takes every process of the namespace with it,
                // double-forked and setsid'd ones too; the cgroup catches anything else.
                let _ = self.signal_pid1(&run, libc::SIGKILL);
                let cg = vserver_engine::cgroup::membership(&self.name);
                let emptied = matches!(tokio::task::spawn_blocking(move || vserver_engine::cgroup::kill_all(&cg, KILL_GRACE)).await, Ok(Ok(())));
                // Once the cgroups are empty pid 1 ends at once; if they could not be emptied
                // in KILL_GRACE, waiting as long again changes nothing.
                let grace = if emptied { KILL_GRACE } else { Duration::from_millis(500) };
                match tokio::time::timeout(grace, wait_exit(&mut rx)).await {
                    Ok(e) => e,
                    Err(_) => {
                        // The run stays: `stop` may be tried again, `kill` and `ps` still reach
                        // it, and it is finished when its last process ends.
                        let stuck = describe_processes(&vserver_engine::cgroup::procs(&vserver_engine::cgroup::membership(&self.name)));
                        let msg = format!(
                            "{}: processes survived SIGKILL for {} s: {stuck}; a process in uninterruptible sleep (state D) waits on a file system or device (a hung FUSE or NFS mount) and ends only once that answers or is aborted; the vserver stays failed until then",
                            self.name,
                            KILL_GRACE.as_secs()
                        );
                        warn!(vserver = %self.name, "{msg}");
                        self.update(|i| {
                            i.enter(State::Failed, &self.name);
                            i.status.last_error = msg.clone();
                        });
                        return Err(VServerError::StopFailed(msg));
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

    fn signal_pid1(&self, run: &RunState, signal: i32) -> Result<(), VServerError> {
        if vserver_engine::sys::start_time(run.pid) != Some(run.start_time) {
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
        self.update(|i| i.status.restarts += 1);
        self.start_locked(Target::Reboot).await
    }

    /// Sends `signal` to pid 1 (`leader`) or to every process of the vserver (`all`).
    pub fn kill(&self, whom: &str, signal: i32) -> Result<(), VServerError> {
        let signal = crate::daemon::dbus::args::signal(signal)?;
        let whom = Whom::parse(whom)?;
        let st = self.status();
        // A run is there while its pid 1 is: after a failed stop too.
        let Some(run) = st.run.filter(|_| st.state.is_active() || st.state == State::Failed) else {
            return Err(VServerError::NotRunning(format!("{} is {}", self.name, st.state.as_str())));
        };
        match whom {
            Whom::Leader => self.signal_pid1(&run, signal),
            Whom::All => {
                let ns = std::fs::read_link(format!("/proc/{}/ns/pid", run.pid))
                    .map_err(|_| VServerError::NotRunning(format!("{}: pid 1 is gone", self.name)))?;
                // Its PID namespace, and its cgroup (which also holds what entered it).
                let mut pids = processes_in_pid_ns(&ns);
                pids.extend(vserver_engine::cgroup::procs(&vserver_engine::cgroup::membership(&self.name)));
                pids.sort_unstable();
                pids.dedup();
                for pid in pids {
                    unsafe { libc::kill(pid, signal) };
                }
                Ok(())
            }
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

/// Processes as a stop's error names them: `PID COMM (STATE, waiting in WCHAN)`, at most 8.
fn describe_processes(pids: &[i32]) -> String {
    let mut out: Vec<String> = pids
        .iter()
        .take(8)
        .map(|pid| {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_string();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let state = stat.rfind(')').and_then(|i| stat.get(i + 2..i + 3)).unwrap_or("?").to_string();
            let wchan = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
            match wchan.trim() {
                "" | "0" => format!("{pid} {comm} ({state})"),
                w => format!("{pid} {comm} ({state}, waiting in {w})"),
            }
        })
        .collect();
    if pids.len() > 8 {
        out.push(format!("and {} more", pids.len() - 8));
    }
    if out.is_empty() {
        return "none in its cgroups, but its pid 1 has not ended".into();
    }
    out.join(", ")
}

/// How many lines of the console a failed start shows.
const CONSOLE_TAIL_LINES: usize = 15;

/// The last `n` lines a run wrote to its console log from offset `since` on (from the start
/// if the log was rotated meanwhile), without terminal escapes and control characters, one per
/// line ("" when there is nothing).
pub fn console_tail(log: &std::path::Path, since: u64, n: usize) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(log) else { return String::new() };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let since = if since > len { 0 } else { since };
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(16 * 1024).max(since)));
    let mut bytes = Vec::new();
    let _ = f.read_to_end(&mut bytes);
    let text = strip_escapes(&String::from_utf8_lossy(&bytes));
    let lines: Vec<&str> = text.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect();
    let from = lines.len().saturating_sub(n);
    lines[from..].join("\n")
}

/// Text without ANSI escape sequences (CSI `ESC [ … letter`, and two-byte ones) or other
/// control characters but tab and newline.
fn strip_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() || d == '~' {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if !c.is_control() || c == '\n' || c == '\t' {
            out.push(c);
        }
    }
    out
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

#[cfg(test)]
mod tests {
    use vserver_api::State::*;

    #[test]
    fn the_state_machine_allows_the_lifecycle() {
        // start, boot, ready, stop; a plain start; a failed start; adoption; a stop that failed
        // and is tried again.
        for path in [
            &[Stopped, Starting, Booting, Running, Stopping, Stopped][..],
            &[Stopped, Starting, Running, Stopping, Stopped],
            &[Failed, Starting, Failed],
            &[Stopped, Running, Stopped],
            &[Failed, Booting, Running, Failed],
            &[Running, Stopping, Failed, Stopping, Stopped],
            &[Booting, Stopped, Starting, Running],
        ] {
            for w in path.windows(2) {
                assert!(allowed(w[0], w[1]), "{:?} → {:?} in {path:?}", w[0], w[1]);
            }
        }
    }

    #[test]
    fn the_state_machine_refuses_the_rest() {
        for (from, to) in [
            (Running, Starting),
            (Booting, Starting),
            (Stopping, Starting),
            (Starting, Stopping),
            (Stopping, Running),
            (Stopping, Booting),
            (Running, Booting),
            (Stopped, Stopping),
        ] {
            assert!(!allowed(from, to), "{from:?} → {to:?}");
        }
        // Failure is reachable from everywhere.
        for from in [Stopped, Starting, Booting, Running, Stopping, Failed] {
            assert!(allowed(from, Failed));
        }
    }

    #[test]
    fn a_refused_move_leaves_the_state_as_it_was() {
        let sup = Supervisor::new("t", Arc::new(Paths::default()), None, StartDurations::new());
        sup.set_state(Starting);
        sup.set_state(Stopping);
        assert_eq!(sup.status().state, Starting);
        sup.set_state(Running);
        assert_eq!(sup.status().state, Running);
    }

    use super::*;

    #[test]
    fn console_tail_strips_escapes_and_keeps_the_last_lines() {
        let dir = std::env::temp_dir().join(format!("vserverd-tail-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let log = dir.join("x.log");
        let mut text = String::new();
        for i in 0..30 {
            text.push_str(&format!("[\x1b[0;32m  OK  \x1b[0m] line {i}\r\n"));
        }
        text.push_str("vserver-init: cannot run /etc/init.d/rc: No such file or directory\n");
        std::fs::write(&log, format!("an earlier run\n{text}")).unwrap();
        let tail = console_tail(&log, 15, 3);
        assert!(tail.ends_with("line 28\n[  OK  ] line 29\nvserver-init: cannot run /etc/init.d/rc: No such file or directory"), "{tail}");
        assert!(!tail.contains('\x1b') && !tail.contains('\r') && !tail.contains("line 27"), "{tail}");
        assert_eq!(console_tail(&dir.join("missing.log"), 0, 3), "");
        // Only what this run wrote; all of it after a rotation.
        assert!(!console_tail(&log, 15, 100).contains("earlier"));
        assert!(console_tail(&log, 1 << 40, 100).contains("an earlier run"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
