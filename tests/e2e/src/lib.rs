//! Shared pieces of the end-to-end tests: the static probe, busybox-static vserver roots in
//! throw-away directories, and runs of the `spawn-plan` helper (the engine needs a
//! single-threaded caller; the test harness has many threads).
//!
//! Every test takes a [`TestDir`]: a fresh `/tmp/vserver-e2e-XXXXXX` holding `root/` (the
//! vserver root), `run/` (the registry's run directory, never `/run/vservers`), `host/` (host
//! paths that hostile-root tests watch) and the plans and logs of its runs. Dropping it kills
//! (SIGKILL, by pid and checked start time) every context and helper it started, checks that no
//! mount mentioning it is left in the host's mount table, and removes it.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

pub mod daemon;
pub mod fuse;
pub mod guest;
pub mod lan;
pub mod polkit;
pub mod pty;

pub use vserver_engine::{CapSet, Capability, Exit, Init, LaunchPlan, SetupError, Step};
pub use vserver_engine::userns::{IdMap, UserNsPlan};

/// The path of the `spawn-plan` helper; integration tests pass `env!("CARGO_BIN_EXE_spawn-plan")`.
static SPAWN_PLAN: OnceLock<PathBuf> = OnceLock::new();

/// Busybox applets linked into every root.
pub const APPLETS: &[&str] = &[
    "sh", "ps", "kill", "cat", "ls", "mount", "umount", "reboot", "halt", "poweroff", "sleep", "hostname", "ip", "id",
    "echo", "true", "false", "touch", "mkdir", "test", "env", "sync",
];

pub fn is_root() -> bool {
    unsafe { libc::getuid() == 0 }
}

/// Returns from the test, saying why, when it does not run as root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!("skipped: this end-to-end test needs root (real namespaces and mounts)");
            return;
        }
    };
}

/// The start of every test: skips (returning) when not root, points the harness at the
/// `spawn-plan` helper of the calling test crate, and makes a [`TestDir`] with a busybox root.
#[macro_export]
macro_rules! test_dir {
    ($name:expr) => {{
        $crate::require_root!();
        $crate::set_spawn_plan(env!("CARGO_BIN_EXE_spawn-plan"));
        $crate::TestDir::with_root($name)
    }};
}

/// Tells the harness where the helper binary is (call with `env!("CARGO_BIN_EXE_spawn-plan")`).
pub fn set_spawn_plan(path: &str) {
    let _ = SPAWN_PLAN.set(PathBuf::from(path));
}

fn spawn_plan_bin() -> &'static Path {
    SPAWN_PLAN.get().expect("call vserver_e2e::set_spawn_plan(env!(\"CARGO_BIN_EXE_spawn-plan\")) first")
}

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The static probe: `$VSERVER_PROBE` if set, else built once per test binary.
pub fn probe() -> &'static Path {
    static PROBE: OnceLock<PathBuf> = OnceLock::new();
    PROBE.get_or_init(|| {
        if let Some(p) = std::env::var_os("VSERVER_PROBE") {
            return PathBuf::from(p);
        }
        let ws = workspace_root();
        let target_dir = ws.join("target/probe");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(&ws)
            .args(["build", "-p", "vserver-probe", "--release", "--target", "x86_64-unknown-linux-gnu", "--target-dir"])
            .arg(&target_dir)
            .env("RUSTFLAGS", "-C target-feature=+crt-static")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .expect("run cargo to build the probe");
        assert!(out.status.success(), "building the probe failed:\n{}", String::from_utf8_lossy(&out.stderr));
        target_dir.join("x86_64-unknown-linux-gnu/release/vserver-probe")
    })
}

/// Where the host's busybox-static lives.
pub fn busybox() -> PathBuf {
    for p in ["/bin/busybox", "/usr/bin/busybox"] {
        if Path::new(p).exists() {
            return PathBuf::from(p);
        }
    }
    panic!("busybox not found: apt-get install busybox-static");
}

/// Every pid on the host.
pub fn all_pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse().ok())
        .collect()
}

/// The pids whose PID namespace is `ns` (`pid:[N]`).
pub fn processes_in_pidns(ns: &str) -> Vec<i32> {
    all_pids()
        .into_iter()
        .filter(|p| fs::read_link(format!("/proc/{p}/ns/pid")).map(|l| l.display().to_string() == ns).unwrap_or(false))
        .collect()
}

/// `(pid, start time)` of a process, the identity a recycled pid cannot fake.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// SIGKILL to `pid` if it is still the process that had `start`.
fn kill_checked(pid: i32, start: Option<u64>) {
    if pid > 1 && start.is_some() && start_time(pid) == start {
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
}

fn mkdtemp(prefix: &str) -> PathBuf {
    let tmpl = CString::new(format!("/tmp/{prefix}-XXXXXX")).unwrap();
    let mut bytes = tmpl.into_bytes_with_nul();
    let p = unsafe { libc::mkdtemp(bytes.as_mut_ptr() as *mut libc::c_char) };
    assert!(!p.is_null(), "mkdtemp: {}", std::io::Error::last_os_error());
    bytes.pop();
    PathBuf::from(String::from_utf8(bytes).unwrap())
}

/// Makes `root` a busybox-static vserver root: /bin/busybox and its applets, /probe, and empty
/// proc sys dev tmp etc mnt.
pub fn populate_root_at(root: &Path) {
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "mnt"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(busybox(), root.join("bin/busybox")).unwrap();
    for a in APPLETS {
        symlink("busybox", root.join("bin").join(a)).unwrap();
    }
    fs::copy(probe(), root.join("probe")).unwrap();
    fs::set_permissions(root.join("probe"), fs::Permissions::from_mode(0o755)).unwrap();
}

/// `VSERVER_E2E_USERNS=1`: every plan of [`TestDir::plan`] is in a user namespace of its own
/// (tests/run.sh runs the escape and hostile-root suites once more that way).
pub fn userns_mode() -> bool {
    std::env::var_os("VSERVER_E2E_USERNS").is_some_and(|v| v == "1")
}

/// A test's private directory and everything it started; see the crate documentation.
pub struct TestDir {
    pub path: PathBuf,
    /// `name` + the temp dir's random suffix: unique hostnames and context names.
    pub tag: String,
    started: Mutex<Vec<(i32, Option<u64>)>>,
    runs: Mutex<u32>,
}

impl TestDir {
    /// A fresh directory with an empty `root/`, `run/` and `host/`.
    pub fn new(name: &str) -> TestDir {
        let path = mkdtemp("vserver-e2e");
        let suffix = path.file_name().unwrap().to_string_lossy().rsplit('-').next().unwrap().to_string();
        for d in ["root", "run", "host"] {
            fs::create_dir(path.join(d)).unwrap();
        }
        let mut tag = format!("{name}-{suffix}");
        tag.truncate(60);
        TestDir { path, tag, started: Mutex::new(Vec::new()), runs: Mutex::new(0) }
    }

    /// A fresh directory with a busybox-static root holding `/probe`.
    pub fn with_root(name: &str) -> TestDir {
        let t = TestDir::new(name);
        t.populate_root();
        t
    }

    pub fn root(&self) -> PathBuf {
        self.path.join("root")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.path.join("run")
    }

    pub fn host(&self) -> PathBuf {
        self.path.join("host")
    }

    /// /bin/busybox and its applets, /probe, and empty proc sys dev tmp etc.
    pub fn populate_root(&self) {
        populate_root_at(&self.root());
    }

    /// Copies the shared libraries `spawn-plan` needs into the root: the rc-mode vserver-init is a
    /// re-exec of that (dynamically linked) binary inside the vserver.
    pub fn add_host_libs(&self) {
        let out = Command::new("ldd").arg(spawn_plan_bin()).output().expect("ldd");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let path = line.split_whitespace().find(|w| w.starts_with('/'));
            if let Some(p) = path {
                let dst = self.root().join(p.trim_start_matches('/'));
                fs::create_dir_all(dst.parent().unwrap()).unwrap();
                fs::copy(p, &dst).unwrap();
            }
        }
    }

    /// A plan with the secure defaults for this directory's root: a unique name and hostname,
    /// a dynamic context number, the registry under `run/`.
    pub fn plan(&self, init: Init) -> LaunchPlan {
        let mut p = LaunchPlan::new(&self.tag, Some(self.root()), init);
        p.hostname = Some(self.tag.clone());
        p.run_dir = self.run_dir();
        if userns_mode() {
            p.userns = Some(UserNsPlan::Pick { pool: self.id_pool() });
        }
        p
    }

    /// A pool of host ids of this directory's own (for plans in a user namespace): 8 ranges,
    /// at one of 256 places from 2^30 up, chosen by the directory's name.
    pub fn id_pool(&self) -> IdMap {
        const SLICE: u32 = vserver_engine::userns::SLICE;
        let place = self.tag.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b as u32)) % 256;
        let base = (1 << 30) + place * 8 * SLICE;
        IdMap { uid: base, gid: base, count: 8 * SLICE }
    }

    /// A fakeinit plan running the probe as pid 1 with `args`.
    pub fn probe_plan(&self, args: &[&str]) -> LaunchPlan {
        let mut argv = vec!["/probe".to_string()];
        argv.extend(args.iter().map(|s| s.to_string()));
        self.plan(Init::Fake { argv })
    }

    /// Starts `spawn-plan` on `plan` and returns once pid 1 runs (or the start failed).
    pub fn start(&self, plan: &LaunchPlan) -> Running<'_> {
        let n = {
            let mut r = self.runs.lock().unwrap();
            *r += 1;
            *r
        };
        let plan_file = self.path.join(format!("plan{n}.json"));
        let pid_file = self.path.join(format!("pid{n}"));
        let out = self.path.join(format!("out{n}"));
        let err = self.path.join(format!("err{n}"));
        fs::write(&plan_file, serde_json::to_string_pretty(plan).unwrap()).unwrap();
        let child = Command::new(spawn_plan_bin())
            .arg(&plan_file)
            .arg("--print-pid")
            .arg(&pid_file)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(fs::File::create(&err).unwrap())
            .spawn()
            .expect("run spawn-plan");
        self.started.lock().unwrap().push((child.id() as i32, start_time(child.id() as i32)));
        let mut running =
            Running { _dir: self, child: Some(child), pid1: None, context: None, pidns: None, out, err, status: None };
        // Wait for pid 1 to be reported, or for the helper to end (a setup error, or a context
        // whose life was shorter than our polling).
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(s) = fs::read_to_string(&pid_file) {
                let mut it = s.split_whitespace();
                let pid: i32 = it.next().and_then(|x| x.parse().ok()).expect("pid file");
                running.context = it.next().and_then(|x| x.parse().ok());
                running.pid1 = Some(pid);
                running.pidns = fs::read_link(format!("/proc/{pid}/ns/pid")).ok().map(|p| p.display().to_string());
                self.started.lock().unwrap().push((pid, start_time(pid)));
                break;
            }
            if let Some(st) = running.child.as_mut().unwrap().try_wait().unwrap() {
                running.status = Some(st);
                if let Ok(s) = fs::read_to_string(&pid_file) {
                    running.pid1 = s.split_whitespace().next().and_then(|x| x.parse().ok());
                }
                break;
            }
            assert!(Instant::now() < deadline, "spawn-plan did not start pid 1 within 20 s");
            std::thread::sleep(Duration::from_millis(2));
        }
        running
    }

    /// Runs `plan` to its end (at most `timeout`), returning what happened.
    pub fn run_for(&self, plan: &LaunchPlan, timeout: Duration) -> Run {
        self.start(plan).wait(timeout)
    }

    /// Runs `plan` to its end (at most 20 s).
    pub fn run(&self, plan: &LaunchPlan) -> Run {
        self.run_for(plan, Duration::from_secs(20))
    }

    /// Runs `plan` (whose init prints a probe report) and parses the report; the run must end
    /// with code 0.
    pub fn report(&self, plan: &LaunchPlan) -> Report {
        let r = self.run(plan);
        assert_eq!(r.exit, Some(Exit::Code(0)), "the probe did not end well: {r:?}");
        Report::parse(&r.stdout)
    }

    /// Lines of the host's mount table that mention this directory.
    pub fn host_mounts(&self) -> Vec<String> {
        let me = self.path.display().to_string();
        fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(&me))
            .map(str::to_string)
            .collect()
    }

    /// Processes on the host whose command line mentions this directory (the helpers, and a
    /// context's pid 1 before its exec).
    pub fn host_processes(&self) -> Vec<i32> {
        let me = self.path.display().to_string();
        all_pids()
            .into_iter()
            .filter(|pid| String::from_utf8_lossy(&fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default()).contains(&me))
            .collect()
    }

    /// Runs `sh -c "/probe try A; /probe try B; …"` as pid 1 of `plan` (its init replaced) and
    /// returns the answer of each attempt, in order.
    pub fn try_many(&self, mut plan: LaunchPlan, attempts: &[&str]) -> Vec<String> {
        let script: Vec<String> = attempts.iter().map(|a| format!("/probe try {a}")).collect();
        plan.init = Init::Fake { argv: vec!["/bin/sh".into(), "-c".into(), format!("{}; true", script.join("; "))] };
        let r = self.run(&plan);
        assert_eq!(r.exit, Some(Exit::Code(0)), "{r:?}");
        let answers: Vec<String> = r.stdout.lines().map(str::to_string).collect();
        assert_eq!(answers.len(), attempts.len(), "one answer per attempt: {r:?}");
        answers
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        for (pid, start) in self.started.lock().unwrap().drain(..) {
            kill_checked(pid, start);
        }
        // Reap nothing here: helpers are our children and are reaped by their Running handle;
        // contexts are children of their helper.
        let leaked = self.host_mounts();
        for l in &leaked {
            // Undo what we can before reporting, so one failure does not pin the directory.
            if let Some(mp) = l.split(' ').nth(4) {
                let c = CString::new(mp).unwrap();
                unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
            }
        }
        let _ = fs::remove_dir_all(&self.path);
        if !leaked.is_empty() && !std::thread::panicking() {
            panic!("mounts left on the host mentioning {}:\n{}", self.path.display(), leaked.join("\n"));
        }
    }
}

/// A running (or already ended) `spawn-plan`.
pub struct Running<'a> {
    /// Ties the run to its directory: the directory's guard outlives it.
    _dir: &'a TestDir,
    child: Option<Child>,
    /// pid 1 of the context, as the host sees it (None when the start failed).
    pub pid1: Option<i32>,
    pub context: Option<u32>,
    /// The context's PID namespace (`pid:[N]`), when pid 1 was still there to be asked.
    pub pidns: Option<String>,
    out: PathBuf,
    err: PathBuf,
    status: Option<ExitStatus>,
}

impl Running<'_> {
    /// Waits for the helper to end (SIGKILL to the context and the helper after `timeout`).
    pub fn wait(mut self, timeout: Duration) -> Run {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let status = loop {
            if let Some(s) = self.status.take() {
                break s;
            }
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                if let Some(p) = self.pid1 {
                    unsafe { libc::kill(p, libc::SIGKILL) };
                }
                let _ = child.kill();
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let stdout = fs::read_to_string(&self.out).unwrap_or_default();
        let stderr = fs::read_to_string(&self.err).unwrap_or_default();
        let mut exit = None;
        let mut error = None;
        for line in stderr.lines() {
            if let Some(j) = line.strip_prefix("spawn-plan: exit=") {
                exit = serde_json::from_str(j).ok();
            }
            if let Some(j) = line.strip_prefix("spawn-plan: error=") {
                error = serde_json::from_str(j).ok();
            }
        }
        Run { stdout, stderr, status, exit, error, pid1: self.pid1, context: self.context, pidns: self.pidns.clone(), timed_out }
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            if let Some(p) = self.pid1 {
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// How a run of `spawn-plan` went.
#[derive(Debug)]
pub struct Run {
    /// The context's stdout (the probe's report).
    pub stdout: String,
    pub stderr: String,
    pub status: ExitStatus,
    /// How pid 1 ended, as the engine reported it.
    pub exit: Option<Exit>,
    /// The engine's setup error, when the start failed.
    pub error: Option<SetupError>,
    pub pid1: Option<i32>,
    pub context: Option<u32>,
    pub pidns: Option<String>,
    pub timed_out: bool,
}

impl Run {
    /// The first line of the probe's stdout (`ok`, `err EPERM 1`, …).
    pub fn answer(&self) -> &str {
        self.stdout.lines().next().unwrap_or("")
    }

    /// The errno name of an `err` answer.
    pub fn errno_name(&self) -> Option<&str> {
        let mut w = self.answer().split_whitespace();
        (w.next() == Some("err")).then(|| w.next()).flatten()
    }

    pub fn setup_error(&self) -> &SetupError {
        self.error.as_ref().unwrap_or_else(|| panic!("expected a setup error, got {self:?}"))
    }
}

/// A parsed `probe report`.
#[derive(Debug, Clone)]
pub struct Report {
    pub lines: Vec<(String, String)>,
}

impl Report {
    pub fn parse(text: &str) -> Report {
        Report {
            lines: text
                .lines()
                .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
                .collect(),
        }
    }

    pub fn get(&self, key: &str) -> &str {
        self.lines.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_else(|| panic!("no {key} in report"))
    }

    pub fn all(&self, key: &str) -> Vec<&str> {
        self.lines.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    pub fn hex(&self, key: &str) -> u64 {
        u64::from_str_radix(self.get(key), 16).unwrap_or_else(|_| panic!("{key} is not hex"))
    }

    /// `(mount point, fstype, "ro"|"rw")` of every mount, in mount table order.
    pub fn mounts(&self) -> Vec<(String, String, String)> {
        self.all("mount")
            .into_iter()
            .map(|m| {
                let f: Vec<&str> = m.split(' ').collect();
                (f[0].to_string(), f[1].to_string(), f[2].to_string())
            })
            .collect()
    }

    /// The last (topmost) mount at `point`.
    pub fn mount(&self, point: &str) -> Option<(String, String)> {
        self.mounts().into_iter().rev().find(|(p, _, _)| p == point).map(|(_, t, o)| (t, o))
    }
}

/// Runs the probe on the host (optionally under a wrapper such as `unshare -m`) and returns its
/// answer line.
pub fn host_probe(wrapper: &[&str], args: &[&str]) -> String {
    let mut cmd = if wrapper.is_empty() {
        Command::new(probe())
    } else {
        let mut c = Command::new(wrapper[0]);
        c.args(&wrapper[1..]).arg(probe());
        c
    };
    let out = cmd.args(args).stdin(Stdio::null()).output().expect("run the probe on the host");
    String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or("").to_string()
}

/// A host process to aim at: `sleep 60`, killed on drop.
pub struct Target(pub Child);

impl Target {
    pub fn new() -> Target {
        Target(Command::new("sleep").arg("60").stdin(Stdio::null()).spawn().expect("sleep"))
    }

    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    pub fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Default for Target {
    fn default() -> Self {
        Target::new()
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The capability set of a name list, for readable assertions.
pub fn caps(names: &[&str]) -> CapSet {
    let mut s = CapSet::empty();
    for n in names {
        s.add(Capability::parse(n).unwrap());
    }
    s
}

/// Modification time and contents of every file under `dir` (for "the host was not written").
pub fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let md = fs::symlink_metadata(&d).unwrap();
        out.push((d.clone(), Vec::new(), md.mtime(), md.mtime_nsec()));
        let mut entries: Vec<_> = fs::read_dir(&d).unwrap().flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let md = fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), fs::read(&p).unwrap_or_default(), md.mtime(), md.mtime_nsec()));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
