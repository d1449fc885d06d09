//! Fail-over between hosts (docs/failover.md): the OCF resource agent `ocf/vserver`, the lock
//! that keeps a vserver from running on two hosts, and two hosts on one machine.
//!
//! - `ocf-tester` (Debian's resource-agents) passes against a real vserver, the agent starting
//!   vserverd itself first; the vserver booted exactly twice (a start of a started one is a
//!   no-op);
//! - a second daemon sharing the configuration and the roots refuses to start a vserver the
//!   first runs, naming the lock file and its holder; so does the first daemon for a second
//!   vserver with the same root; once it is stopped the second daemon starts it; `destroy`
//!   is refused while a run holds the lock, and removes the lock file with the root after;
//! - two hosts, each a network namespace (and a UTS namespace) with its own bus, daemon, run
//!   directory and cgroups, sharing the configuration and the roots; their `lan0` ports on a
//!   test-LAN bridge whose namespace is also the client. The vserver's macvlan addresses (IPv4 and IPv6) move
//!   with it: started on A through the agent, the client gets its page; A crashes (its daemon,
//!   monitors and vservers stopped, then killed, so that nothing of A cleans up); the agent
//!   starts it on B and the client gets the page again from B's run. A's probe says "not
//!   running" once its daemon is back, a start on A is refused while B runs it, and A starts it
//!   again once B has stopped it, its leftovers in the way of nothing (that last part with the
//!   agent run without the OCF shell functions, as on a host without resource-agents). The time from the crash
//!   to B's first answer is printed (a benchmark figure, see docs/failover.md), not asserted.
//!
//! Addresses from 198.51.100.0/24, only inside namespaces the test makes; this machine's own
//! links are never touched.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use vserver_e2e::daemon::*;
use vserver_e2e::{require_root, start_time, TestDir};

const T: Duration = Duration::from_secs(20);
const OCF_SUCCESS: i32 = 0;
const OCF_ERR_GENERIC: i32 = 1;
const OCF_NOT_RUNNING: i32 = 7;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// A directory every user can traverse (ocf-tester runs the agent's meta-data as `nobody`),
/// removed on drop; it holds a copy of the agent, mode 0755.
struct AgentDir {
    path: PathBuf,
}

impl AgentDir {
    fn new() -> AgentDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = PathBuf::from(format!("/tmp/vserver-e2e-ocf-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        fs::copy(workspace().join("ocf/vserver"), path.join("vserver")).unwrap();
        fs::set_permissions(path.join("vserver"), fs::Permissions::from_mode(0o755)).unwrap();
        AgentDir { path }
    }

    fn agent(&self) -> PathBuf {
        self.path.join("vserver")
    }
}

impl Drop for AgentDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Kills (SIGKILL, its start time checked) the daemon whose pid the agent's start command
/// wrote, when dropped.
struct PidFileGuard(PathBuf);

impl Drop for PidFileGuard {
    fn drop(&mut self) {
        if let Some(pid) = fs::read_to_string(&self.0).ok().and_then(|s| s.trim().parse::<i32>().ok()) {
            if pid > 1 {
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn output_text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn ocf_tester_passes_against_a_real_vserver_and_the_agent_starts_the_daemon() {
    require_root!();
    let tester = Path::new("/usr/sbin/ocf-tester");
    assert!(tester.exists(), "ocf-tester is missing: apt-get install --no-install-recommends resource-agents libxml2-utils");
    let t = TestDir::new("ocf");
    let bus = TestBus::start();
    // The directories and the cleanup of a daemon; the agent starts the daemon itself.
    let d = TestDaemon::new(&t, &bus);
    let root = d.ctl_root("web");
    d.config("web", &format!("context = 4301\n{CTL_INIT}"));
    let dir = AgentDir::new();
    let pid_file = t.path.join("vserverd.pid");
    let _daemon = PidFileGuard(pid_file.clone());
    let script = t.path.join("start-vserverd.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nVSERVERD_LOG=info setsid {} --config-dir {} --run-dir {} --log-dir {} --root-base {} --cgroup-parent {} {} </dev/null >>{} 2>&1 &\necho $! > {}\n",
            bin("vserverd").display(),
            d.config_dir.display(),
            d.run_dir.display(),
            d.log_dir.display(),
            d.root_base.display(),
            d.cgroup_parent(),
            d.userns_args().join(" "),
            d.log.display(),
            pid_file.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();

    let out = Command::new(tester)
        .args(["-n", "web-vs", "-o", "name=web"])
        .arg("-o")
        .arg(format!("config_dir={}", d.config_dir.display()))
        .arg("-o")
        .arg(format!("run_dir={}", d.run_dir.display()))
        .arg("-o")
        .arg(format!("bus_address={}", bus.address))
        .arg("-o")
        .arg(format!("vserverctl={}", bin("vserverctl").display()))
        .arg("-o")
        .arg(format!("daemon={}", script.display()))
        .arg(dir.agent())
        .env_remove("DBUS_SYSTEM_BUS_ADDRESS")
        .stdin(Stdio::null())
        .output()
        .expect("run ocf-tester");
    let text = output_text(&out);
    assert!(out.status.success(), "ocf-tester failed ({}):\n{text}\ndaemon log:\n{}", out.status, d.daemon_log());
    assert!(text.contains("passed all tests"), "{text}");
    // The agent started the daemon (it was not running) ...
    assert!(pid_file.exists(), "the agent did not start vserverd:\n{text}");
    assert!(d.daemon_log().contains("started"), "{}", d.daemon_log());
    // ... and the vserver ran twice: a start of a running vserver is a no-op, and every stop
    // reached its pid 1.
    let events = fs::read_to_string(root.join("tmp/events")).unwrap_or_default();
    assert_eq!(events.lines().filter(|l| *l == "boot").count(), 2, "events:\n{events}\n{text}");
    assert_eq!(events.lines().filter(|l| *l == "term").count(), 2, "events:\n{events}");
    assert!(d.processes_of("web").is_empty(), "{:?}", d.processes_of("web"));
}

/// A second daemon, on a bus of its own, sharing `first`'s configuration and roots (its run
/// directory, logs and cgroups its own).
fn sharing<'a>(t: &'a TestDir, bus: &TestBus, first: &TestDaemon) -> TestDaemon<'a> {
    let mut d = TestDaemon::new(t, bus);
    d.config_dir = first.config_dir.clone();
    d.root_base = first.root_base.clone();
    d
}

#[test]
fn a_root_runs_once_a_second_start_by_any_daemon_sharing_it_is_refused_naming_the_lock() {
    require_root!();
    let (t1, t2) = (TestDir::new("lock1"), TestDir::new("lock2"));
    let (bus1, bus2) = (TestBus::start(), TestBus::start());
    let mut d1 = TestDaemon::new(&t1, &bus1);
    let root = d1.ctl_root("web");
    d1.config("web", &format!("context = 4311\n{CTL_INIT}"));
    // Another name for the same root: a copy of the file under another name.
    d1.config("twin", &format!("context = 4312\nroot = \"{}\"\n{CTL_INIT}", root.display()));
    let mut d2 = sharing(&t2, &bus2, &d1);
    let lock = d1.root_base.join(".web.lock");
    block_on(async {
        d1.start().await;
        d2.start().await;
        d1.manager().await.start_vserver("web").await.unwrap();
        let holder = d1.state("web").expect("state of web");

        // The other host (daemon) is refused, with the lock file and the holder named.
        let err = d2.manager().await.start_vserver("web").await.unwrap_err();
        assert_eq!(error_name(&err), "org.vserverd.VServer1.StartFailed", "{err}");
        let msg = err.to_string();
        assert!(msg.contains(&format!("{} is locked: web runs already", lock.display())), "{msg}");
        assert!(msg.contains(&format!("monitor pid {}, run directory {}", holder.monitor_pid, d1.run_dir.display())), "{msg}");
        // Refused before anything was made: no process, no runtime directory of its own.
        assert_eq!(d2.state_of("web").await, "failed");
        assert!(!d2.run_dir.join("web").exists(), "d2's runtime directory of web");
        let pidns = |p: i32| fs::read_link(format!("/proc/{p}/ns/pid")).ok();
        let procs = d1.processes_of("web");
        assert!(!procs.is_empty() && procs.iter().all(|p| pidns(*p) == pidns(holder.pid)), "only d1's run: {procs:?}");
        assert_eq!(d1.state_of("web").await, "running");

        // The same daemon, the same root under another name: refused alike.
        let err = d1.manager().await.start_vserver("twin").await.unwrap_err();
        assert!(err.to_string().contains(&format!("{} is locked", lock.display())), "{err}");
        assert_eq!(d1.state_of("web").await, "running");

        // Positive control: once web is stopped, the lock is free for the other daemon.
        d1.manager().await.stop_vserver("web").await.unwrap();
        d2.manager().await.start_vserver("web").await.unwrap();
        assert_eq!(d2.state_of("web").await, "running");
        let text = fs::read_to_string(&lock).unwrap();
        assert!(text.contains(&format!("run directory {}", d2.run_dir.display())), "{text}");
        // `destroy` through d1 (for which web is stopped) is refused while d2 runs it.
        let out = destroy(&d1, "web");
        assert!(!out.status.success(), "destroy while d2 runs web: {}", output_text(&out));
        assert!(output_text(&out).contains(".web.lock is locked"), "{}", output_text(&out));
        assert!(root.join("bin/ctl-init").exists() && d1.config_dir.join("web.toml").exists());
        d2.manager().await.stop_vserver("web").await.unwrap();
        // And the twin, the same root, runs as soon as nobody else does.
        d1.manager().await.start_vserver("twin").await.unwrap();
        d1.manager().await.stop_vserver("twin").await.unwrap();
    });
    let events = fs::read_to_string(root.join("tmp/events")).unwrap_or_default();
    assert_eq!(events.lines().filter(|l| *l == "boot").count(), 3, "{events}");
    // Once nothing runs it, destroy takes the lock file with the root.
    let out = destroy(&d1, "web");
    assert!(out.status.success(), "destroy: {}", output_text(&out));
    assert!(!root.exists() && !lock.exists(), "the root or its lock file is left");
}

/// `vserverctl destroy --force NAME` with `d`'s directories, on its bus.
fn destroy(d: &TestDaemon, name: &str) -> std::process::Output {
    Command::new(bin("vserverctl"))
        .args(["destroy", "--force", name, "--config-dir"])
        .arg(&d.config_dir)
        .arg("--root-base")
        .arg(&d.root_base)
        .arg("--run-dir")
        .arg(&d.run_dir)
        .env("DBUS_SYSTEM_BUS_ADDRESS", &d.address)
        .stdin(Stdio::null())
        .output()
        .expect("run vserverctl")
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The LAN (a bridge in a namespace that is also the client, 198.51.100.1/24) and two host
/// namespaces, each with `lan0` on the bridge. Dropped: every namespace, and their links.
struct Lan {
    lan: String,
    hosts: [String; 2],
}

const CLIENT: &str = "198.51.100.1";
const VSERVER: &str = "198.51.100.10";
const CLIENT6: &str = "2001:db8::1";
const VSERVER6: &str = "2001:db8::10";
/// The vserver's page over IPv4 and over IPv6.
const V4: &str = "198.51.100.10";
const V6: &str = "[2001:db8::10]";

impl Lan {
    fn new() -> Lan {
        let id = std::process::id();
        let lan = Lan { lan: format!("vs-fo-lan-{id}"), hosts: [format!("vs-fo-a-{id}"), format!("vs-fo-b-{id}")] };
        ip(&["netns", "add", &lan.lan]);
        ip(&["-n", &lan.lan, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &lan.lan, "addr", "add", &format!("{CLIENT}/24"), "dev", "br0"]);
        ip(&["-n", &lan.lan, "addr", "add", &format!("{CLIENT6}/64"), "dev", "br0", "nodad"]);
        ip(&["-n", &lan.lan, "link", "set", "br0", "up"]);
        ip(&["-n", &lan.lan, "link", "set", "lo", "up"]);
        for (i, h) in lan.hosts.iter().enumerate() {
            let port = format!("p{i}");
            ip(&["netns", "add", h]);
            ip(&["-n", h, "link", "add", "lan0", "type", "veth", "peer", "name", &port, "netns", &lan.lan]);
            ip(&["-n", &lan.lan, "link", "set", &port, "master", "br0", "up"]);
            ip(&["-n", h, "link", "set", "lan0", "up"]);
            ip(&["-n", h, "link", "set", "lo", "up"]);
        }
        lan
    }

    /// A shell line for [`TestDaemon::wrapper`]: the daemon in host `i`'s network namespace
    /// and in a UTS namespace of its own named `host` (only setns for the network: `ip netns
    /// exec` would mount a new /sys, without the cgroup trees).
    fn wrapper(&self, i: usize, host: &str) -> String {
        format!(
            "exec unshare --uts nsenter --net=/run/netns/{} sh -c 'hostname {host} && exec \"$0\" \"$@\"' \"$0\" \"$@\"",
            self.hosts[i]
        )
    }

    /// The client's GET of the vserver's page at `host` ([`V4`], [`V6`]), or None (1 s at most).
    fn get(&self, host: &str) -> Option<String> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.lan, "curl", "-g", "-s", "--max-time", "1", &format!("http://{host}/")])
            .stdin(Stdio::null())
            .output()
            .expect("curl (apt-get install curl)");
        out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The MAC address the client has for `addr`, if any.
    fn neighbour(&self, addr: &str) -> Option<String> {
        let out = Command::new("ip").args(["-n", &self.lan, "neigh", "show", addr, "dev", "br0"]).output().expect("run ip");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.split_whitespace().skip_while(|w| *w != "lladdr").nth(1).map(str::to_owned)
    }

    /// Polls the page at `host` until it reads `want`; the time it took.
    fn wait_page(&self, host: &str, want: &str, limit: Duration) -> Duration {
        let t0 = Instant::now();
        let mut last = None;
        while t0.elapsed() < limit {
            last = self.get(host);
            if last.as_deref() == Some(want) {
                return t0.elapsed();
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("the client did not get {want:?} from {host} within {limit:?}; last answer {last:?}");
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain(std::iter::once(&self.lan)) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}

/// The agent run on host `i` (in its network namespace) for daemon `d`: (exit code, output).
fn agent(dir: &AgentDir, lan: &Lan, i: usize, d: &TestDaemon, action: &str, env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net=/run/netns/{}", lan.hosts[i])).arg(dir.agent()).arg(action);
    cmd.env("OCF_RESOURCE_INSTANCE", "web-vs")
        .env("OCF_RESKEY_name", "web")
        .env("OCF_RESKEY_bus_address", &d.address)
        .env("OCF_RESKEY_vserverctl", bin("vserverctl"))
        .env("OCF_RESKEY_config_dir", &d.config_dir)
        .env("OCF_RESKEY_run_dir", &d.run_dir)
        .env("OCF_RESKEY_daemon", "no")
        .env("OCF_RESKEY_CRM_meta_interval", if action == "monitor" { "10000" } else { "0" })
        .env_remove("DBUS_SYSTEM_BUS_ADDRESS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.stdin(Stdio::null()).output().expect("run the agent");
    (out.status.code().unwrap_or(-1), output_text(&out))
}

/// The MAC address of `eth0` in the network namespace of `pid` (a vserver's pid 1).
fn mac_inside(pid: i32) -> String {
    let out = Command::new("nsenter").arg(format!("--net=/proc/{pid}/ns/net")).args(["ip", "-o", "link", "show", "eth0"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.split_whitespace().skip_while(|w| *w != "link/ether").nth(1).map(str::to_owned).unwrap_or_else(|| panic!("no MAC in {text:?}"))
}

fn ppid(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].split_whitespace().nth(1)?.parse().ok()
}

/// Host A's crash: its daemon, every child of it (the monitors, the ready one too) and the
/// vserver's pid 1 are stopped (SIGSTOP: none can react to another's end) and then killed.
/// Returns when the vserver's processes are gone.
fn crash(d: &mut TestDaemon, name: &str) {
    let daemon = d.pid();
    let run = d.state(name).expect("a run on A");
    let mut victims = vec![(daemon, start_time(daemon))];
    for p in vserver_e2e::all_pids() {
        if ppid(p) == Some(daemon) {
            victims.push((p, start_time(p)));
        }
    }
    victims.push((run.monitor_pid, Some(run.monitor_start_time)));
    victims.push((run.pid, Some(run.start_time)));
    for sig in [libc::SIGSTOP, libc::SIGKILL] {
        for (p, st) in &victims {
            if st.is_some() && start_time(*p) == *st {
                unsafe { libc::kill(*p, sig) };
            }
        }
    }
    // The harness's handle on the daemon (waits for it; it is dead already).
    d.sigkill();
    let deadline = Instant::now() + T;
    while !d.processes_of(name).is_empty() {
        assert!(Instant::now() < deadline, "A's vserver survived the crash: {:?}", d.processes_of(name));
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn two_hosts_the_vserver_and_its_address_move_to_b_when_a_crashes() {
    require_root!();
    let lan = Lan::new();
    let (ta, tb) = (TestDir::new("hosta"), TestDir::new("hostb"));
    let (bus_a, bus_b) = (TestBus::start(), TestBus::start());
    let mut a = TestDaemon::new(&ta, &bus_a);
    a.wrapper = Some(lan.wrapper(0, "vs-host-a"));
    let mut b = sharing(&tb, &bus_b, &a);
    b.wrapper = Some(lan.wrapper(1, "vs-host-b"));

    // A web server whose page counts the boots of its root (shared: A's and B's runs alike).
    let root = a.root("web");
    fs::create_dir_all(root.join("www")).unwrap();
    for applet in ["httpd", "mkdir"] {
        let link = root.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link).unwrap();
        }
    }
    a.script(
        &root,
        "/bin/web-init",
        r#"n=$(cat /boots 2>/dev/null || echo 0); n=$((n + 1)); echo $n > /boots
echo "boot $n" > /www/index.html
httpd -f -p 80 -h /www &
trap 'kill $!; exit 0' TERM
while :; do sleep 1; done"#,
    );
    a.config(
        "web",
        &format!(
            "context = 4321\nflags = [\"fakeinit\"]\n[init]\ncommand = [\"/bin/web-init\"]\nstop_timeout = 2\n\
             [network]\nmode = \"macvlan\"\ndevice = \"lan0\"\naddresses = [\"{VSERVER}/24\", \"{VSERVER6}/64\"]\n"
        ),
    );
    let dir = AgentDir::new();
    // One runtime for the whole test: the harness keeps its bus connections across restarts.
    block_on(async {
        a.start().await;
        b.start().await;
        fail_over(&lan, &dir, &mut a, &mut b).await;
    });
}

async fn fail_over<'t>(lan: &Lan, dir: &AgentDir, a: &mut TestDaemon<'t>, b: &mut TestDaemon<'t>) {
    // Each daemon lives on its own host: its own network and node name.
    let netns_of = |pid: i32| fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    assert_ne!(netns_of(a.pid()), netns_of(b.pid()));
    assert_ne!(netns_of(a.pid()), netns_of(std::process::id() as i32));

    // Probes on both: not running anywhere.
    for (i, d) in [(0, &a), (1, &b)] {
        let (rc, out) = agent(&dir, &lan, i, d, "monitor", &[("OCF_RESKEY_CRM_meta_interval", "0")]);
        assert_eq!(rc, OCF_NOT_RUNNING, "probe on host {i}: {out}");
    }
    let (rc, out) = agent(&dir, &lan, 0, &a, "start", &[]);
    assert_eq!(rc, OCF_SUCCESS, "start on A: {out}\n{}", a.daemon_log());
    assert_eq!(agent(&dir, &lan, 0, &a, "monitor", &[]).0, OCF_SUCCESS);
    assert_eq!(agent(&dir, &lan, 1, &b, "monitor", &[("OCF_RESKEY_CRM_meta_interval", "0")]).0, OCF_NOT_RUNNING);
    lan.wait_page(V4, "boot 1", T);
    lan.wait_page(V6, "boot 1", T);
    let mac_a = lan.neighbour(VSERVER).expect("the client knows A's run");
    assert_eq!(lan.neighbour(VSERVER6).as_deref(), Some(mac_a.as_str()));
    // Depth 10: the probe command inside; one that fails makes the monitor fail.
    let deep = [("OCF_CHECK_LEVEL", "10"), ("OCF_RESKEY_probe", "test -s /www/index.html")];
    assert_eq!(agent(&dir, &lan, 0, &a, "monitor", &deep).0, OCF_SUCCESS);
    let (rc, out) = agent(&dir, &lan, 0, &a, "monitor", &[("OCF_CHECK_LEVEL", "10"), ("OCF_RESKEY_probe", "test -e /nonexistent")]);
    assert_eq!(rc, OCF_ERR_GENERIC, "{out}");
    assert!(out.contains("probe failed"), "{out}");
    // The vserver's link was made in A's namespace.
    let run_a = a.state("web").unwrap();
    assert_eq!(netns_of(run_a.monitor_pid), netns_of(a.pid()));

    // A crashes; the agent starts the vserver on B at once (the cluster's detection and
    // fencing left out), and the client polls until B's run answers.
    let t_crash = Instant::now();
    crash(a, "web");
    let t_dead = t_crash.elapsed();
    let (rc, out) = agent(&dir, &lan, 1, &b, "start", &[]);
    let t_started = t_crash.elapsed();
    assert_eq!(rc, OCF_SUCCESS, "start on B: {out}\n{}", b.daemon_log());
    // B's run has a MAC address of its own, and the client took it from the announcements of
    // the start (a gratuitous ARP, an unsolicited neighbour advertisement), before asking.
    let mac_b = mac_inside(b.state("web").unwrap().pid);
    let heard = (lan.neighbour(VSERVER), lan.neighbour(VSERVER6));
    lan.wait_page(V4, "boot 2", T);
    let t_answer = t_crash.elapsed();
    assert_ne!(mac_a, mac_b);
    assert_eq!(heard.0.as_deref(), Some(mac_b.as_str()), "the client's entry for {VSERVER} (A's run was {mac_a})");
    assert_eq!(heard.1.as_deref(), Some(mac_b.as_str()), "the client's entry for {VSERVER6} (A's run was {mac_a})");
    lan.wait_page(V6, "boot 2", Duration::from_secs(2));
    // The agent's own cost, for the figure: a monitor of the running vserver.
    let t_monitor = Instant::now();
    assert_eq!(agent(&dir, &lan, 1, &b, "monitor", &[]).0, OCF_SUCCESS);
    let t_monitor = t_monitor.elapsed();
    eprintln!(
        "failover: crash to first answer from B {:.1} ms (A's processes gone {:.1} ms, agent start on B returned {:.1} ms; \
         an agent monitor takes {:.1} ms)",
        t_answer.as_secs_f64() * 1e3,
        t_dead.as_secs_f64() * 1e3,
        t_started.as_secs_f64() * 1e3,
        t_monitor.as_secs_f64() * 1e3
    );
    let run_b = b.state("web").unwrap();
    assert_eq!(netns_of(run_b.monitor_pid), netns_of(b.pid()), "B's run is B's");

    // A's leftovers: its run state (no end recorded) and its cgroups.
    let left = vserver_config::run::read_state(&a.run_dir, "web").expect("A's state file is left by the crash");
    assert_eq!(left.exit, None, "nothing of A recorded the end");
    let a_cgroups: Vec<PathBuf> =
        fs::read_dir("/sys/fs/cgroup").unwrap().flatten().map(|h| h.path().join(a.cgroup_parent()).join("web")).filter(|p| p.exists()).collect();
    assert!(!a_cgroups.is_empty(), "the crash left A's cgroups");
    // Its link lived in the vserver's own namespace and went with it: A's host has its own.
    let out = Command::new("ip").args(["-n", &lan.hosts[0], "-o", "link"]).output().unwrap();
    let links: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().split('@').next().unwrap().to_string()))
        .collect();
    assert_eq!(links, ["lo", "lan0"], "links on A after the crash");

    // A comes back: its daemon adopts what is left (the vserver died with its monitor); its
    // probe says "not running", and a start on A is refused while B runs it.
    a.start().await;
    let (rc, out) = agent(&dir, &lan, 0, &a, "monitor", &[("OCF_RESKEY_CRM_meta_interval", "0")]);
    assert_eq!(rc, OCF_NOT_RUNNING, "probe on A after its crash: {out}");
    let (rc, out) = agent(&dir, &lan, 0, &a, "start", &[]);
    assert_eq!(rc, OCF_ERR_GENERIC, "start on A while B runs it: {out}");
    assert!(out.contains(".web.lock is locked") && out.contains("node vs-host-b"), "{out}");
    assert_eq!(agent(&dir, &lan, 1, &b, "monitor", &[]).0, OCF_SUCCESS);
    assert_eq!(lan.get(V4).as_deref(), Some("boot 2"));

    // B stops it (twice: a stop of a stopped resource succeeds); A starts it again. From here
    // on the agent runs without the OCF shell functions, as on a host without resource-agents.
    let plain = ("OCF_FUNCTIONS_DIR", "/nonexistent");
    for _ in 0..2 {
        let (rc, out) = agent(&dir, &lan, 1, &b, "stop", &[plain]);
        assert_eq!(rc, OCF_SUCCESS, "stop on B: {out}");
    }
    assert_eq!(agent(&dir, &lan, 1, &b, "monitor", &[plain]).0, OCF_NOT_RUNNING);
    let (rc, out) = agent(&dir, &lan, 0, &a, "start", &[plain]);
    assert_eq!(rc, OCF_SUCCESS, "start on A again: {out}\n{}", a.daemon_log());
    lan.wait_page(V4, "boot 3", T);
    lan.wait_page(V6, "boot 3", T);
    assert_eq!(agent(&dir, &lan, 0, &a, "monitor", &[plain]).0, OCF_SUCCESS);
    let (rc, out) = agent(&dir, &lan, 0, &a, "stop", &[plain]);
    assert_eq!(rc, OCF_SUCCESS, "stop on A: {out}");
    assert_eq!(agent(&dir, &lan, 0, &a, "monitor", &[plain, ("OCF_RESKEY_CRM_meta_interval", "0")]).0, OCF_NOT_RUNNING);
    assert!(a.processes_of("web").is_empty());
}
