//! The daemon's end-to-end harness: a private `dbus-daemon` that includes the repo's real
//! policy file ([`TestBus`]), and a `vserverd` running on it with every directory inside a
//! [`TestDir`] ([`TestDaemon`]). Clients are the API crate's zbus proxies, on a tokio
//! current-thread runtime per test ([`block_on`]).
//!
//! Cleanup on drop, also when a test fails: the bus is killed by pid; the daemon is SIGKILLed,
//! then every monitor and every vserver pid 1 it started (from the run directory's
//! `NAME/state.json`, and every one seen during the test) is SIGKILLed after its start time is
//! checked; finally no process of a vserver of this daemon may be left: a process outside the
//! host's PID namespace whose root directory is one of the daemon's vserver roots. (A root
//! directory cannot be mistaken for another test's while it exists; a PID namespace's inode
//! number is reused as soon as the namespace is gone, so it never identifies a dead vserver.)

use std::fs::{self, OpenOptions};
use std::future::Future;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use vserver_api::proxy::{ManagerProxy, VServerProxy};
pub use vserver_api::{vserver_path, BootReport, VServerError, VServerSummary, BUS_NAME, MANAGER_PATH};
pub use vserver_config::run::RunState;
use zbus::fdo::DBusProxy;
use zbus::proxy::CacheProperties;
use zbus::Connection;

use crate::{all_pids, kill_checked, mkdtemp, start_time, workspace_root, TestDir};

/// Busybox applets that daemon tests' roots have on top of [`crate::APPLETS`].
pub const DAEMON_APPLETS: &[&str] = &["rm", "setsid", "init", "grep", "wc", "cat", "cp", "seq"];

/// The config lines of a fakeinit vserver run by `ctl-init` (see [`TestDaemon::ctl_root`]).
pub const CTL_INIT: &str = "flags = [\"fakeinit\"]\n[init]\ncommand = [\"/bin/ctl-init\"]\nstop_timeout = 2\n";

/// A binary of the workspace, next to the test executable: `target/<profile>/NAME`
/// (`cargo build --workspace --bins` builds them; tests/run.sh does that first).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let p = dir.join(name);
    assert!(p.exists(), "{} not built: run `cargo build --workspace --bins` first", p.display());
    p
}

/// The repo's bus policy, `systemd/org.vserverd.VServer1.conf`, as an absolute path.
pub fn policy_file() -> PathBuf {
    workspace_root().join("systemd/org.vserverd.VServer1.conf")
}

/// Runs `f` on a fresh tokio current-thread runtime.
pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime").block_on(f)
}

/// The fixture of most daemon tests: a scratch directory named after `name`, a private bus with
/// the project's policy, and a [`TestDaemon`] on them (not started: configure its vservers,
/// then `d.start().await`). Everything is removed when `f` returns or panics.
pub fn with_daemon(name: &str, f: impl AsyncFnOnce(&mut TestDaemon<'_>)) {
    let t = crate::TestDir::new(name);
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        f(&mut d).await;
    })
}

/// Polls `f` every 20 ms until it gives `Some`, for at most `timeout`; panics saying `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The next item of a stream (signals), or `None` after `timeout`.
pub async fn next_within<S>(s: &mut S, timeout: Duration) -> Option<S::Item>
where
    S: zbus::export::futures_core::Stream + Unpin,
{
    let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut *s).poll_next(cx));
    tokio::time::timeout(timeout, next).await.ok().flatten()
}

/// The D-Bus error name of a failed call (`org.vserverd.VServer1.NotRunning`,
/// `org.freedesktop.DBus.Error.AccessDenied`, …).
pub fn error_name(e: &VServerError) -> String {
    use zbus::DBusError;
    match e {
        VServerError::ZBus(zbus::Error::MethodError(name, _, _)) => name.to_string(),
        VServerError::ZBus(zbus::Error::FDO(f)) => f.name().to_string(),
        other => other.name().to_string(),
    }
}

/// The error name of `r`, or "ok".
pub fn outcome<T>(r: &Result<T, VServerError>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => error_name(e),
    }
}

/// Connects to the bus at `address`.
pub async fn connect(address: &str) -> Connection {
    zbus::connection::Builder::address(address).build().await.expect("connect to the test bus")
}

/// Runs the `bus-call` helper (`ADDRESS PATH INTERFACE METHOD ARG…`, or `ADDRESS own`) under
/// `wrapper` (for example `setpriv --reuid=65534 …` or `unshare --pid --fork`); returns its
/// answer: `("ok", "")` or `(error name, error message)`.
pub fn bus_call(wrapper: &[&str], address: &str, args: &[&str]) -> (String, String) {
    let helper = bin("bus-call");
    let mut cmd = if wrapper.is_empty() {
        Command::new(&helper)
    } else {
        let mut c = Command::new(wrapper[0]);
        c.args(&wrapper[1..]).arg(&helper);
        c
    };
    let out = cmd.arg(address).args(args).stdin(Stdio::null()).output().expect("run bus-call");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("").to_string();
    let second = lines.next().unwrap_or("").to_string();
    assert!(
        !first.is_empty(),
        "bus-call {args:?} under {wrapper:?} gave no answer ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    (first, second)
}

/// A private system-style bus: `tests/bus/system-bus.conf.in` with the repo's policy file
/// included, in a directory of its own (mode 0755, so that other users can reach the socket).
pub struct TestBus {
    pub dir: PathBuf,
    pub address: String,
    child: Child,
}

/// Starts dbus-daemon on `conf`; its address, or a panic with its errors.
fn bus_daemon(conf_path: &Path, err_path: &Path) -> (Child, String) {
    let mut child = Command::new("dbus-daemon")
        .arg(format!("--config-file={}", conf_path.display()))
        .args(["--nofork", "--print-address"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(err_path).unwrap())
        .spawn()
        .expect("run dbus-daemon (apt-get install dbus-daemon)");
    let mut line = String::new();
    let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
    // Without the server's guid: a bus started again at the same socket has a new one.
    let address = line.trim().split(",guid=").next().unwrap_or("").to_string();
    if address.is_empty() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("dbus-daemon did not start:\n{}", fs::read_to_string(err_path).unwrap_or_default());
    }
    (child, address)
}

impl TestBus {
    pub fn start() -> TestBus {
        TestBus::with_extra("")
    }

    /// A bus whose configuration has `extra` (XML) after the repo's policy.
    pub fn with_extra(extra: &str) -> TestBus {
        let dir = mkdtemp("vserver-e2e-bus");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.join("system_bus_socket");
        let template = fs::read_to_string(workspace_root().join("tests/bus/system-bus.conf.in")).expect("bus config template");
        let conf = template
            .replace("@SOCKET@", &socket.display().to_string())
            .replace("@POLICY@", &policy_file().display().to_string())
            .replace("@EXTRA@", extra);
        let conf_path = dir.join("bus.conf");
        fs::write(&conf_path, conf).unwrap();
        let (child, address) = bus_daemon(&conf_path, &dir.join("bus.err"));
        TestBus { dir, address, child }
    }

    /// The bus goes away (SIGKILL) and a new one takes its place, at the same address.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_file(self.dir.join("system_bus_socket"));
        let (child, address) = bus_daemon(&self.dir.join("bus.conf"), &self.dir.join("bus.err"));
        assert_eq!(address, self.address);
        self.child = child;
    }

    pub async fn connect(&self) -> Connection {
        connect(&self.address).await
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A `vserverd` on a [`TestBus`], with its config, run, log and root-base directories under a
/// [`TestDir`] (`etc/`, `vrun/`, `log/`, `vservers/`).
/// With `VSERVER_E2E_USERNS=1`, a configuration without a `[user]` table gets
/// `map = "auto"` (and the daemon a pool of the test's own): the daemon suites run again with
/// every vserver in a user namespace.
pub fn with_userns(toml: &str) -> String {
    if crate::userns_mode() && !toml.contains("[user]") {
        format!("{toml}\n[user]\nmap = \"auto\"\n")
    } else {
        toml.to_string()
    }
}

pub struct TestDaemon<'a> {
    pub t: &'a TestDir,
    pub address: String,
    pub config_dir: PathBuf,
    pub run_dir: PathBuf,
    pub log_dir: PathBuf,
    pub root_base: PathBuf,
    /// Where templates live, when not ROOT_BASE/.templates (the heavy tests' shared guests).
    pub template_dir: Option<PathBuf>,
    /// A shell line the daemon is started through: `"$0" "$@"` is the daemon (to hand it
    /// descriptors, say).
    pub wrapper: Option<String>,
    /// Options given to the daemon at every start, after the directories (`--metrics-listen`…).
    pub args: Vec<String>,
    /// The daemon's stderr, over all its runs.
    pub log: PathBuf,
    child: Option<Child>,
    conn: Mutex<Option<Connection>>,
    /// Monitors and pids 1 seen: (pid, start time).
    tracked: Mutex<Vec<(i32, u64)>>,
    /// Vserver roots made by [`TestDaemon::root`].
    roots: Mutex<Vec<PathBuf>>,
}

impl<'a> TestDaemon<'a> {
    /// The directories, not the daemon yet (see [`TestDaemon::start`]).
    pub fn new(t: &'a TestDir, bus: &TestBus) -> TestDaemon<'a> {
        let d = TestDaemon {
            t,
            address: bus.address.clone(),
            config_dir: t.path.join("etc"),
            run_dir: t.path.join("vrun"),
            log_dir: t.path.join("log"),
            root_base: t.path.join("vservers"),
            template_dir: None,
            wrapper: None,
            args: Vec::new(),
            log: t.path.join("vserverd.log"),
            child: None,
            conn: Mutex::new(None),
            tracked: Mutex::new(Vec::new()),
            roots: Mutex::new(Vec::new()),
        };
        for dir in [&d.config_dir, &d.run_dir, &d.log_dir, &d.root_base] {
            fs::create_dir_all(dir).unwrap();
        }
        d
    }

    /// Starts the daemon and returns once it owns `org.vserverd.VServer1`.
    pub async fn start(&mut self) {
        self.start_with(&[]).await
    }

    /// Starts the daemon with `args` instead of the absolute directory options (`cwd` the test
    /// directory), when `args` is not empty.
    pub async fn start_with(&mut self, args: &[&str]) {
        assert!(self.child.is_none(), "the daemon is already running");
        let mut log = OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        writeln!(log, "--- vserverd starts ---").unwrap();
        let mut cmd = match &self.wrapper {
            Some(line) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(line).arg(bin("vserverd"));
                c
            }
            None => Command::new(bin("vserverd")),
        };
        if args.is_empty() {
            cmd.arg("--config-dir")
                .arg(&self.config_dir)
                .arg("--run-dir")
                .arg(&self.run_dir)
                .arg("--log-dir")
                .arg(&self.log_dir)
                .arg("--root-base")
                .arg(&self.root_base);
            if let Some(t) = &self.template_dir {
                cmd.arg("--template-dir").arg(t);
            }
        } else {
            cmd.args(args);
        }
        // Daemons of parallel tests keep their vservers' cgroups apart.
        cmd.arg("--cgroup-parent").arg(self.cgroup_parent());
        if !self.args.iter().any(|a| a == "--userns-pool") {
            cmd.args(self.userns_args());
        }
        cmd.args(&self.args);
        let child = cmd
            .current_dir(&self.t.path)
            .env("DBUS_SYSTEM_BUS_ADDRESS", &self.address)
            .env("VSERVERD_LOG", "info")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run vserverd");
        self.child = Some(child);
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let conn = self.conn().await;
        let dbus = DBusProxy::new(&conn).await.unwrap();
        let pid = self.pid() as u32;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // The owner must be this very daemon: a killed one may not be forgotten yet.
            if let Ok(owner) = dbus.get_connection_unix_process_id(BUS_NAME.try_into().unwrap()).await {
                if owner == pid {
                    return;
                }
            }
            if let Some(st) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                panic!("vserverd ended ({st}) before owning {BUS_NAME}:\n{}", self.daemon_log());
            }
            assert!(Instant::now() < deadline, "vserverd did not own {BUS_NAME} within 20 s:\n{}", self.daemon_log());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// With `VSERVER_E2E_USERNS=1`: the daemon's option giving it the test's pool of ids.
    pub fn userns_args(&self) -> Vec<String> {
        if !crate::userns_mode() {
            return Vec::new();
        }
        let pool = self.t.id_pool();
        vec!["--userns-pool".into(), format!("{}:{}", pool.uid, pool.count)]
    }

    /// The daemon's pid.
    /// The cgroup parent of this daemon's vservers (unique per test directory).
    pub fn cgroup_parent(&self) -> String {
        format!("vservers-e2e-{}", self.t.path.file_name().unwrap().to_string_lossy())
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("the daemon is running").id() as i32
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// SIGKILL to the daemon (its monitors are remembered first, to be cleaned up).
    pub fn sigkill(&mut self) {
        let mut child = self.child.take().expect("the daemon is running");
        self.track_children(child.id() as i32);
        self.track_states();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// SIGTERM to the daemon; returns how it ended (SIGKILL after 10 s).
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the daemon is running");
        self.track_children(child.id() as i32);
        self.track_states();
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                return child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits (at most `timeout`) for the daemon to end by itself; how it ended.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.child.as_mut().expect("the daemon was started").try_wait().unwrap() {
                let child = self.child.take().unwrap();
                self.track_children(child.id() as i32);
                self.track_states();
                *self.conn.lock().unwrap() = None;
                return Some(st);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (if running) and start again.
    pub async fn restart(&mut self) {
        if self.child.is_some() {
            self.sigkill();
        }
        self.start().await;
    }

    /// The daemon's stderr so far (all runs).
    pub fn daemon_log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The bus connection of this test (one, shared).
    pub async fn conn(&self) -> Connection {
        if let Some(c) = self.conn.lock().unwrap().clone() {
            return c;
        }
        let c = connect(&self.address).await;
        self.conn.lock().unwrap().get_or_insert(c).clone()
    }

    pub async fn manager(&self) -> ManagerProxy<'static> {
        ManagerProxy::builder(&self.conn().await).cache_properties(CacheProperties::No).build().await.unwrap()
    }

    /// The object of vserver `name` (its path from `GetVServer`), properties not cached.
    pub async fn vserver(&self, name: &str) -> VServerProxy<'static> {
        let path = self.manager().await.get_vserver(name).await.unwrap_or_else(|e| panic!("GetVServer({name}): {e}"));
        VServerProxy::builder(&self.conn().await).path(path).cache_properties(CacheProperties::No).build().await.unwrap()
    }

    /// The row of `name` in `ListVServers`.
    pub async fn summary(&self, name: &str) -> VServerSummary {
        let list = self.manager().await.list_vservers().await.unwrap();
        list.into_iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name} not in ListVServers"))
    }

    pub async fn state_of(&self, name: &str) -> String {
        self.vserver(name).await.state().await.unwrap()
    }

    /// Waits until vserver `name` is in `state` (at most `timeout`).
    pub async fn wait_state(&self, name: &str, state: &str, timeout: Duration) {
        let v = self.vserver(name).await;
        let deadline = Instant::now() + timeout;
        loop {
            let now = v.state().await.unwrap();
            if now == state {
                return;
            }
            assert!(Instant::now() < deadline, "{name} is {now}, not {state}, after {timeout:?}\n{}", self.daemon_log());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes `etc/NAME.toml`.
    pub fn config(&self, name: &str, toml: &str) {
        fs::write(self.config_dir.join(format!("{name}.toml")), with_userns(toml)).unwrap();
    }

    /// The default root of `name` (`vservers/NAME`), made a busybox root with `/sbin/init`
    /// (busybox init) and the applets of [`DAEMON_APPLETS`].
    pub fn root(&self, name: &str) -> PathBuf {
        let root = self.root_base.join(name);
        crate::populate_root_at(&root);
        for a in DAEMON_APPLETS {
            let link = root.join("bin").join(a);
            if !link.exists() {
                symlink("busybox", link).unwrap();
            }
        }
        fs::create_dir_all(root.join("sbin")).unwrap();
        symlink("../bin/busybox", root.join("sbin/init")).unwrap();
        self.roots.lock().unwrap().push(root.clone());
        root
    }

    /// A root whose `/bin/ctl-init` is a pid 1 steered from the host through `/ctl` (see
    /// [`TestDaemon::ctl`]): `exit N`, `reboot` (`reboot -f` inside), `halt` (`halt -f`).
    /// It logs `boot` to `/tmp/events` when it starts and ends with 0 on SIGTERM. Use it with
    /// `flags = ["fakeinit"]` and `init.command = ["/bin/ctl-init"]` ([`CTL_INIT`]).
    pub fn ctl_root(&self, name: &str) -> PathBuf {
        let root = self.root(name);
        self.script(
            &root,
            "/bin/ctl-init",
            r#"trap 'echo term >> /tmp/events; exit 0' TERM
echo boot >> /tmp/events
while :; do
    if [ -e /ctl ]; then
        c=$(cat /ctl); rm -f /ctl
        case "$c" in
            exit*) exit ${c#exit } ;;
            reboot) reboot -f ;;
            halt) halt -f ;;
        esac
    fi
    sleep 0.05
done"#,
        );
        root
    }

    /// A root for rc style (no fakeinit): `/etc/init.d/rc 3` prints `rc 3`, starts `sleep 1000`
    /// as a service (its pid in `/tmp/service.pid`); `rc 0` prints `rc 0` and writes
    /// `/tmp/rc-stopped`.
    pub fn rc_root(&self, name: &str) -> PathBuf {
        let root = self.root(name);
        self.script(
            &root,
            "/etc/init.d/rc",
            r#"echo "rc $1"
case "$1" in
    3) /bin/sleep 1000 & echo $! > /tmp/service.pid ;;
    0) echo stopped > /tmp/rc-stopped ;;
esac"#,
        );
        root
    }

    /// Tells the `ctl-init` of vserver `name` to do `cmd` (written whole, then renamed).
    pub fn ctl(&self, name: &str, cmd: &str) {
        let root = self.root_base.join(name);
        fs::write(root.join(".ctl.tmp"), cmd).unwrap();
        fs::rename(root.join(".ctl.tmp"), root.join("ctl")).unwrap();
    }

    /// Writes an executable script (`#!/bin/sh` + `body`) at `path` inside `root`.
    pub fn script(&self, root: &Path, path: &str, body: &str) {
        let p = root.join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A host hook script appending `TAG $VSERVER_HOOK $VSERVER_TARGET $VSERVER_NAME
    /// $VSERVER_CONTEXT $VSERVER_ROOT` to `log`; returns the `[hooks]` table that calls it
    /// (TAG "hook") for the four phases.
    pub fn hooks_table(&self, log: &Path) -> String {
        let script = self.t.path.join("hook.sh");
        if !script.exists() {
            fs::write(
                &script,
                "#!/bin/sh\necho \"$1 $VSERVER_HOOK $VSERVER_TARGET $VSERVER_NAME $VSERVER_CONTEXT $VSERVER_ROOT\" >> \"$2\"\n",
            )
            .unwrap();
            fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let s = script.display();
        let l = log.display();
        format!(
            "[hooks]\npre_start = [\"{s}\", \"hook\", \"{l}\"]\npost_start = [\"{s}\", \"hook\", \"{l}\"]\npre_stop = [\"{s}\", \"hook\", \"{l}\"]\npost_stop = [\"{s}\", \"hook\", \"{l}\"]\n"
        )
    }

    /// The paper's `etc/NAME.sh PHASE NAME`, appending `NAME.sh PHASE NAME $VSERVER_HOOK
    /// $VSERVER_TARGET $VSERVER_NAME $VSERVER_CONTEXT $VSERVER_ROOT` to `log`.
    pub fn legacy_script(&self, name: &str, log: &Path) {
        let p = self.config_dir.join(format!("{name}.sh"));
        fs::write(
            &p,
            format!(
                "#!/bin/sh\necho \"{name}.sh $1 $2 $VSERVER_HOOK $VSERVER_TARGET $VSERVER_NAME $VSERVER_CONTEXT $VSERVER_ROOT\" >> {}\n",
                log.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// `RUN_DIR/NAME/state.json`, remembered for cleanup.
    pub fn state(&self, name: &str) -> Option<RunState> {
        let s = vserver_config::run::read_state(&self.run_dir, name)?;
        self.track(&s);
        Some(s)
    }

    fn track(&self, s: &RunState) {
        let mut t = self.tracked.lock().unwrap();
        for p in [(s.monitor_pid, s.monitor_start_time), (s.pid, s.start_time)] {
            if !t.contains(&p) {
                t.push(p);
            }
        }
    }

    /// Remembers every vserver the run directory shows.
    pub fn track_states(&self) {
        let Ok(rd) = fs::read_dir(&self.run_dir) else { return };
        for e in rd.flatten() {
            if let Some(name) = e.file_name().to_str() {
                self.state(name);
            }
        }
    }

    /// Remembers the children of `pid` (the daemon's monitors and hooks).
    fn track_children(&self, pid: i32) {
        for p in all_pids() {
            if ppid(p) == Some(pid) {
                if let Some(st) = start_time(p) {
                    self.tracked.lock().unwrap().push((p, st));
                }
            }
        }
    }

    /// The processes of this daemon's vservers: outside the host's PID namespace, with one of
    /// its vserver roots as their root directory. Zombies do not count.
    pub fn vserver_processes(&self) -> Vec<i32> {
        let roots = self.roots.lock().unwrap().clone();
        processes_with_root(&roots)
    }

    /// The processes of vserver `name` (see [`TestDaemon::vserver_processes`]).
    pub fn processes_of(&self, name: &str) -> Vec<i32> {
        processes_with_root(&[self.root_base.join(name)])
    }
}

/// Live processes outside the host's PID namespace whose root directory is one of `roots`.
pub fn processes_with_root(roots: &[PathBuf]) -> Vec<i32> {
    let host = fs::read_link("/proc/self/ns/pid").ok();
    let ids: Vec<(u64, u64)> = roots.iter().filter_map(|r| fs::metadata(r).ok()).map(|m| (m.dev(), m.ino())).collect();
    all_pids()
        .into_iter()
        .filter(|p| {
            let Ok(ns) = fs::read_link(format!("/proc/{p}/ns/pid")) else { return false };
            if Some(&ns) == host.as_ref() || is_zombie(*p) {
                return false;
            }
            fs::metadata(format!("/proc/{p}/root")).map(|m| ids.contains(&(m.dev(), m.ino()))).unwrap_or(false)
        })
        .collect()
}

fn ppid(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].split_whitespace().nth(1)?.parse().ok()
}

fn is_zombie(pid: i32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return true };
    stat.rfind(')').map(|i| stat[i + 2..].starts_with('Z') || stat[i + 2..].starts_with('X')).unwrap_or(true)
}

/// Removes `/sys/fs/cgroup/*/PARENT/*` and `PARENT` itself; returns what is still there.
pub fn remove_cgroups(parent: &str) -> Vec<PathBuf> {
    let mut left = Vec::new();
    let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") else { return left };
    for h in hierarchies.flatten() {
        let p = h.path().join(parent);
        if !p.is_dir() {
            continue;
        }
        remove_tree(&p);
        if p.exists() {
            left.push(p);
        }
    }
    left
}

/// Removes a cgroup directory and every cgroup below it, the deepest first (a guest with a
/// real init makes its own).
fn remove_tree(p: &std::path::Path) {
    if let Ok(children) = fs::read_dir(p) {
        for c in children.flatten().filter(|c| c.file_type().map(|t| t.is_dir()).unwrap_or(false)) {
            remove_tree(&c.path());
        }
    }
    let _ = fs::remove_dir(p);
}

impl Drop for TestDaemon<'_> {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            self.track_children(child.id() as i32);
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.track_states();
        for (pid, st) in self.tracked.lock().unwrap().iter() {
            kill_checked(*pid, Some(*st));
        }
        // pid 1 of a PID namespace takes the namespace with it; give the kernel a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut left = self.vserver_processes();
        while !left.is_empty() && Instant::now() < deadline {
            for p in &left {
                kill_checked(*p, start_time(*p));
            }
            std::thread::sleep(Duration::from_millis(20));
            left = self.vserver_processes();
        }
        // The monitors were killed too, so nobody removed the vservers' cgroups: do it here
        // (an rmdir fails on a cgroup that still has members; retry while they die).
        let parent = self.cgroup_parent();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let left = remove_cgroups(&parent);
            if left.is_empty() || Instant::now() > deadline {
                if !left.is_empty() && !std::thread::panicking() {
                    panic!("cgroups left after the test: {left:?}");
                }
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !left.is_empty() && !std::thread::panicking() {
            let desc: Vec<String> = left
                .iter()
                .map(|p| format!("{p} {}", String::from_utf8_lossy(&fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default()).replace('\0', " ")))
                .collect();
            panic!("vserver processes survived the test:\n{}", desc.join("\n"));
        }
    }
}
