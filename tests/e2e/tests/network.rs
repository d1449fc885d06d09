//! Bound IP: every vserver gets its own addresses, in its own network namespace (issue 4).
//!
//! A test "LAN": a veth pair whose far end (`lan1`, 192.0.2.1/24 and 2001:db8::1/64) lives in a
//! test namespace playing a client host. Its near end (`lan0`, 192.0.2.2/24, 2001:db8::2/64)
//! lives in a second test namespace playing the vserver host: the engine runs there (the
//! `spawn-plan` helper enters it first), so the macvlan parent, the veth host ends, their routes,
//! the proxy entries and the routing settings all stay out of the real host. (This machine's own
//! `eth0` holds 192.0.2.2/24 with 192.0.2.1 as its gateway: routed from the real host, a reply to
//! the test client would leave through `eth0`.) Nothing here touches `eth0`, and no traffic
//! leaves the machine. Names carry the test's pid and a counter; Drop guards kill the vservers
//! and delete both namespaces, also when a test fails.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use vserver_e2e::lan::{ip, TestLan};
use vserver_e2e::{start_time, test_dir, Init, LaunchPlan, SetupError, Step, TestDir};
use vserver_engine::plan::{IfAddr, LinkMode, LinkPlan};

fn sysctl_in(ns: &str, key: &str, value: &str) {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let out = Command::new("ip").args(["netns", "exec", ns, "sh", "-c", &format!("echo {value} > {path}")]).output().unwrap();
    assert!(out.status.success(), "{key}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The test LAN (see the crate documentation): namespaces `host` and `client`.
struct Lan(TestLan);

impl std::ops::Deref for Lan {
    type Target = TestLan;
    fn deref(&self) -> &TestLan {
        &self.0
    }
}

impl Lan {
    fn new() -> Lan {
        let lan = Lan(TestLan::new("lan"));
        let h = lan.host.as_str();
        // The admin's part on the test host's uplink, for the routed (veth) vserver.
        for key in ["net.ipv4.conf.lan0.forwarding", "net.ipv6.conf.lan0.forwarding", "net.ipv6.conf.lan0.proxy_ndp"] {
            sysctl_in(h, key, "1");
        }
        // IPv6 forwarding from lan0 only (Linux 6.17+), else for the whole (test) host.
        if std::path::Path::new("/proc/sys/net/ipv6/conf/lo/force_forwarding").exists() {
            sysctl_in(h, "net.ipv6.conf.lan0.force_forwarding", "1");
        } else {
            sysctl_in(h, "net.ipv6.conf.all.forwarding", "1");
        }
        sysctl_in(h, "net.ipv4.neigh.lan0.proxy_delay", "0");
        sysctl_in(h, "net.ipv6.neigh.lan0.proxy_delay", "0");
        lan
    }

    fn host_ns(&self) -> String {
        format!("/run/netns/{}", self.host)
    }

    /// `ip -n HOST ARGS`.
    fn host_ip(&self, args: &[&str]) -> String {
        let mut a = vec!["-n", self.host.as_str()];
        a.extend_from_slice(args);
        ip(&a)
    }

    /// The probe run on the client host.
    fn probe_from_client(&self, args: &[&str]) -> String {
        vserver_e2e::host_probe(&["ip", "netns", "exec", &self.client], args)
    }

    /// The probe run on the test vserver host.
    fn probe_from_host(&self, args: &[&str]) -> String {
        vserver_e2e::host_probe(&["ip", "netns", "exec", &self.host], args)
    }

    /// The links of the test host other than `lo`, `lan0` and `keep`.
    fn extra_links(&self, keep: &[&str]) -> Vec<String> {
        self.host_ip(&["-o", "link"])
            .lines()
            .filter_map(|l| l.split(':').nth(1).map(|n| n.trim().split('@').next().unwrap().to_string()))
            .filter(|n| n != "lo" && n != "lan0" && !keep.contains(&n.as_str()))
            .collect()
    }

    /// Everything a vserver may leave on the test host: links, routes to vserver addresses
    /// (192.0.2.1x, 2001:db8::1x), proxy entries.
    fn leftovers(&self, keep: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = self.extra_links(keep).into_iter().map(|l| format!("link {l}")).collect();
        for fam in ["-4", "-6"] {
            for r in self.host_ip(&[fam, "route"]).lines() {
                if r.starts_with("192.0.2.1") || r.starts_with("2001:db8::1") || r.contains(" dev vp") || r.contains(" dev vs") {
                    out.push(format!("route {r}"));
                }
            }
        }
        out.extend(self.host_ip(&["neigh", "show", "proxy"]).lines().map(|l| format!("proxy {l}")));
        out
    }
}

/// One vserver run by `spawn-plan` inside the test host's namespace.
struct Vs {
    child: Option<Child>,
    pid1: Option<i32>,
    start: Option<u64>,
    out: PathBuf,
    err: PathBuf,
}

fn start(dir: &TestDir, lan: &Lan, plan: &LaunchPlan) -> Vs {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::SeqCst);
    let plan_file = dir.path.join(format!("net-plan{n}.json"));
    let pid_file = dir.path.join(format!("net-pid{n}"));
    let out = dir.path.join(format!("net-out{n}"));
    let err = dir.path.join(format!("net-err{n}"));
    fs::write(&plan_file, serde_json::to_string_pretty(plan).unwrap()).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_spawn-plan"))
        .arg(&plan_file)
        .arg("--print-pid")
        .arg(&pid_file)
        .arg("--netns")
        .arg(lan.host_ns())
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out).unwrap())
        .stderr(fs::File::create(&err).unwrap())
        .spawn()
        .expect("run spawn-plan");
    let mut vs = Vs { child: Some(child), pid1: None, start: None, out, err };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(s) = fs::read_to_string(&pid_file) {
            let pid: i32 = s.split_whitespace().next().and_then(|x| x.parse().ok()).expect("pid file");
            vs.pid1 = Some(pid);
            vs.start = start_time(pid);
            return vs;
        }
        if vs.child.as_mut().unwrap().try_wait().unwrap().is_some() {
            return vs;
        }
        assert!(Instant::now() < deadline, "spawn-plan did not start pid 1 within 20 s");
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl Vs {
    /// The context's stdout once it holds `line` (at most 10 s).
    fn output_with(&self, line: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = fs::read_to_string(&self.out).unwrap_or_default();
            if s.lines().any(|l| l == line) {
                return s;
            }
            assert!(Instant::now() < deadline, "no {line:?} from the vserver: {s}\n{}", fs::read_to_string(&self.err).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn netns(&self) -> String {
        fs::read_link(format!("/proc/{}/ns/net", self.pid1.unwrap())).unwrap().display().to_string()
    }

    /// Stops the vserver (SIGKILL to pid 1) and waits for the helper, which then removes its
    /// links; returns the helper's stderr.
    fn stop(mut self) -> String {
        self.kill_pid1();
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "spawn-plan did not end");
            std::thread::sleep(Duration::from_millis(2));
        }
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Waits for the helper of a start that failed and returns the engine's error.
    fn failed(mut self) -> SetupError {
        let status = self.child.take().unwrap().wait().unwrap();
        let err = fs::read_to_string(&self.err).unwrap_or_default();
        assert_eq!(status.code(), Some(125), "the start should have failed: {err}");
        let json = err.lines().find_map(|l| l.strip_prefix("spawn-plan: error=")).expect("an error line");
        serde_json::from_str(json).unwrap()
    }

    fn kill_pid1(&self) {
        if let (Some(p), Some(s)) = (self.pid1, self.start) {
            if start_time(p) == Some(s) {
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
    }
}

impl Drop for Vs {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            self.kill_pid1();
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn addrs(list: &[&str]) -> Vec<IfAddr> {
    list.iter()
        .map(|s| {
            let (a, p) = s.split_once('/').unwrap();
            IfAddr { addr: a.parse().unwrap(), prefix: p.parse().unwrap() }
        })
        .collect()
}

fn link(mode: LinkMode, device: Option<&str>, list: &[&str]) -> LinkPlan {
    let mut l = LinkPlan::new(mode, device);
    l.addresses = addrs(list);
    l
}

/// A plan for the shared busybox root: `script` as pid 1 under `sh -c`.
fn plan(dir: &TestDir, name: &str, script: &str, links: Vec<LinkPlan>) -> LaunchPlan {
    let mut p = dir.plan(Init::Fake { argv: vec!["/bin/sh".into(), "-c".into(), script.into()] });
    p.name = format!("{}-{name}", dir.tag);
    p.hostname = Some(name.to_string());
    p.links = links;
    p
}

/// What a vserver checks of itself before it serves: its interfaces, which addresses it can
/// bind, raw sockets, and changing its addresses, routes and links (all `key=value` lines).
fn self_checks(own: [&str; 2], other: [&str; 2]) -> String {
    format!(
        "/probe report; \
         echo bind_own4=$(/probe try bind {}); echo bind_own6=$(/probe try bind {}); \
         echo bind_other4=$(/probe try bind {}); echo bind_other6=$(/probe try bind {}); \
         echo raw=$(/probe try socket_raw); echo packet=$(/probe try socket_packet); \
         ip addr add 198.51.100.9/24 dev eth0 2>/dev/null; echo ip_addr=$?; \
         ip route add 203.0.113.0/24 dev eth0 2>/dev/null; echo ip_route=$?; \
         ip link set eth0 down 2>/dev/null; echo ip_link=$?; \
         ip link set eth0 mtu 1280 2>/dev/null; echo ip_mtu=$?; ",
        own[0], own[1], other[0], other[1]
    )
}

fn value<'a>(out: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    out.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap_or_else(|| panic!("no {key} in {out}"))
}

fn values<'a>(out: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}=");
    out.lines().filter_map(|l| l.strip_prefix(prefix.as_str())).collect()
}

/// The processes whose network namespace is `ns` (`net:[N]`).
fn in_netns(ns: &str) -> Vec<i32> {
    vserver_e2e::all_pids()
        .into_iter()
        .filter(|p| fs::read_link(format!("/proc/{p}/ns/net")).map(|l| l.display().to_string() == ns).unwrap_or(false))
        .collect()
}

#[test]
fn two_vservers_on_the_lan_each_at_its_own_addresses() {
    let dir = test_dir!("net-lan");
    let lan = Lan::new();

    // vserver a: a macvlan on lan0; vserver b: a routed veth, proxied on lan0, with NET_RAW.
    // The same service on the same port in both (the paper's "vanilla" configurations).
    let a_script = format!("{}exec /probe serve vs-a 0.0.0.0 80 :: 80", self_checks(["192.0.2.10", "2001:db8::10"], ["192.0.2.11", "2001:db8::11"]));
    let b_script = format!("{}exec /probe serve vs-b 0.0.0.0 80 :: 80", self_checks(["192.0.2.11", "2001:db8::11"], ["192.0.2.10", "2001:db8::10"]));
    let a_plan = plan(&dir, "a", &a_script, vec![link(LinkMode::Macvlan, Some("lan0"), &["192.0.2.10/24", "2001:db8::10/64"])]);
    let mut b_plan = plan(&dir, "b", &b_script, vec![link(LinkMode::Veth, Some("lan0"), &["192.0.2.11/24", "2001:db8::11/64"])]);
    b_plan.caps.add(vserver_e2e::Capability::parse("NET_RAW").unwrap());
    let a = start(&dir, &lan, &a_plan);
    let b = start(&dir, &lan, &b_plan);
    let a_out = a.output_with("listening");
    let b_out = b.output_with("listening");

    // Inside: only lo and its own link, up.
    for out in [&a_out, &b_out] {
        let mut nets = values(out, "net");
        nets.sort();
        assert_eq!(nets, ["eth0 up", "lo up"], "{out}");
        // Its own addresses bind, the other vserver's do not.
        assert_eq!((value(out, "bind_own4"), value(out, "bind_own6")), ("ok", "ok"), "{out}");
        assert_eq!(value(out, "bind_other4"), "err EADDRNOTAVAIL 99", "{out}");
        assert_eq!(value(out, "bind_other6"), "err EADDRNOTAVAIL 99", "{out}");
        // Without NET_ADMIN: no address, route or link changes.
        for key in ["ip_addr", "ip_route", "ip_link", "ip_mtu"] {
            assert_ne!(value(out, key), "0", "{key} succeeded inside: {out}");
        }
    }
    // Raw and packet sockets only with NET_RAW.
    assert_eq!((value(&a_out, "raw"), value(&a_out, "packet")), ("err EPERM 1", "err EPERM 1"));
    assert_eq!((value(&b_out, "raw"), value(&b_out, "packet")), ("ok", "ok"));

    // From the client host: each vserver answers at its own addresses, as itself.
    for (addr, who) in [("192.0.2.10", "vs-a"), ("2001:db8::10", "vs-a"), ("192.0.2.11", "vs-b"), ("2001:db8::11", "vs-b")] {
        assert_eq!(lan.probe_from_client(&["try", "connect", addr, "80"]), format!("ok {who}"), "connect to {addr}");
        // Another port of the same vserver: its stack refuses.
        assert_eq!(lan.probe_from_client(&["try", "connect", addr, "81"]), "err ECONNREFUSED 111", "port 81 of {addr}");
    }
    // An address nobody holds reaches nobody.
    for addr in ["192.0.2.12", "2001:db8::12"] {
        let r = lan.probe_from_client(&["try", "connect", addr, "80", "1000"]);
        assert!(r.starts_with("err"), "{addr}: {r}");
    }
    // The routed vserver is reachable from its host too.
    assert_eq!(lan.probe_from_host(&["try", "connect", "192.0.2.11", "80"]), "ok vs-b");
    assert_eq!(lan.probe_from_host(&["try", "connect", "2001:db8::11", "80"]), "ok vs-b");

    // On the host while they run: b's host end with a route to each address, proxy entries.
    let ends = lan.extra_links(&[]);
    assert_eq!(ends.len(), 1, "{ends:?}");
    let route4 = lan.host_ip(&["-4", "route", "show", "192.0.2.11"]);
    assert!(route4.contains(&format!("dev {}", ends[0])), "{route4}");
    let route6 = lan.host_ip(&["-6", "route", "show", "2001:db8::11"]);
    assert!(route6.contains(&format!("dev {}", ends[0])), "{route6}");
    let proxies = lan.host_ip(&["neigh", "show", "proxy"]);
    assert!(proxies.contains("192.0.2.11 dev lan0") && proxies.contains("2001:db8::11 dev lan0"), "{proxies}");

    // Stopped: nothing left on the host, and the namespaces are gone.
    let (a_ns, b_ns) = (a.netns(), b.netns());
    a.stop();
    b.stop();
    assert_eq!(lan.leftovers(&[]), Vec::<String>::new());
    assert_eq!(in_netns(&a_ns), Vec::<i32>::new());
    assert_eq!(in_netns(&b_ns), Vec::<i32>::new());
    assert!(lan.probe_from_client(&["try", "connect", "192.0.2.11", "80", "500"]).starts_with("err"));
}

#[test]
fn failed_starts_name_the_device_or_address_and_leave_nothing() {
    let dir = test_dir!("net-fail");
    let lan = Lan::new();

    // An unknown device: refused before anything is made.
    let p = plan(&dir, "nodev", "true", vec![link(LinkMode::Macvlan, Some("nosuch0"), &["192.0.2.30/24"])]);
    let e = start(&dir, &lan, &p).failed();
    assert_eq!((e.step, e.path.as_deref(), e.errno), (Step::NetCheck, Some("nosuch0"), libc::ENODEV), "{e}");
    assert!(e.to_string().contains("no such device on the host"), "{e}");

    // A bridge that is not one.
    let p = plan(&dir, "nobr", "true", vec![link(LinkMode::Bridge, Some("lan0"), &["192.0.2.31/24"])]);
    let e = start(&dir, &lan, &p).failed();
    assert_eq!((e.step, e.path.as_deref()), (Step::NetCheck, Some("lan0")), "{e}");

    // An address the host holds.
    let p = plan(&dir, "held", "true", vec![link(LinkMode::Veth, None, &["192.0.2.2/24"])]);
    let e = start(&dir, &lan, &p).failed();
    assert_eq!((e.step, e.path.as_deref(), e.errno), (Step::NetCheck, Some("192.0.2.2"), libc::EADDRINUSE), "{e}");
    assert!(e.to_string().contains("the host holds this address (on lan0)"), "{e}");
    assert_eq!(lan.leftovers(&[]), Vec::<String>::new());

    // A failure half-way through the host side (a proxy entry already there, not ours): what
    // was made goes, what was there stays.
    lan.host_ip(&["neigh", "add", "proxy", "192.0.2.21", "dev", "lan0"]);
    let p = plan(&dir, "mid", "true", vec![link(LinkMode::Veth, Some("lan0"), &["192.0.2.20/24", "192.0.2.21/24"])]);
    let e = start(&dir, &lan, &p).failed();
    assert_eq!((e.step, e.path.as_deref(), e.errno), (Step::NetHost, Some("192.0.2.21 on lan0"), libc::EEXIST), "{e}");
    assert_eq!(lan.leftovers(&[]), ["proxy 192.0.2.21 dev lan0 proxy "]);
    lan.host_ip(&["neigh", "del", "proxy", "192.0.2.21", "dev", "lan0"]);

    // A start made to fail late (pid 1 cannot be executed), after every link was in place.
    let p = plan(&dir, "late", "true", vec![
        link(LinkMode::Macvlan, Some("lan0"), &["192.0.2.10/24", "2001:db8::10/64"]),
        {
            let mut l = link(LinkMode::Veth, Some("lan0"), &["192.0.2.11/24", "2001:db8::11/64"]);
            l.name = "eth1".into();
            l
        },
    ]);
    let mut p = p;
    p.init = Init::Fake { argv: vec!["/nonexistent".into()] };
    let e = start(&dir, &lan, &p).failed();
    assert_eq!(e.step, Step::Exec, "{e}");
    assert_eq!(lan.leftovers(&[]), Vec::<String>::new());

    // The same context number and host end name again at once: the first run's are gone.
    let mut p = plan(&dir, "again", "true", vec![link(LinkMode::Veth, Some("lan0"), &["192.0.2.11/24"])]);
    p.context = 4242;
    for _ in 0..3 {
        let vs = start(&dir, &lan, &p);
        let err = vs.stop();
        assert!(err.contains("spawn-plan: exit="), "{err}");
    }
    assert_eq!(lan.leftovers(&[]), Vec::<String>::new());
}

#[test]
fn bridge_mode_joins_the_hosts_bridge() {
    let dir = test_dir!("net-bridge");
    let lan = Lan::new();
    lan.host_ip(&["link", "add", "br0", "type", "bridge"]);
    lan.host_ip(&["addr", "add", "203.0.113.1/24", "dev", "br0"]);
    lan.host_ip(&["link", "set", "br0", "up"]);

    let mut l = link(LinkMode::Bridge, Some("br0"), &["203.0.113.10/24"]);
    l.gateways = vec!["203.0.113.1".parse().unwrap()];
    l.mtu = Some(1400);
    l.mac = Some([0x02, 0, 0, 0, 0, 0x10]);
    let script = "/probe report; echo mtu=$(cat /sys/class/net/eth0/mtu); echo mac=$(cat /sys/class/net/eth0/address); \
                  echo route=$(ip route | cat); exec /probe serve vs-br 0.0.0.0 80";
    let vs = start(&dir, &lan, &plan(&dir, "br", script, vec![l]));
    let out = vs.output_with("listening");
    assert_eq!(value(&out, "mtu"), "1400");
    assert_eq!(value(&out, "mac"), "02:00:00:00:00:10");
    assert!(value(&out, "route").contains("default via 203.0.113.1 dev eth0"), "{out}");
    assert_eq!(lan.probe_from_host(&["try", "connect", "203.0.113.10", "80"]), "ok vs-br");
    let ports = lan.host_ip(&["-o", "link", "show", "master", "br0"]);
    assert_eq!(ports.lines().count(), 1, "{ports}");
    vs.stop();
    assert_eq!(lan.host_ip(&["-o", "link", "show", "master", "br0"]), "");
    assert_eq!(lan.leftovers(&["br0"]), Vec::<String>::new());
}

/// The daemon's side, in the test host: `vserverd --check-config` reads the host's links and
/// addresses, and a monitor (`vserverd monitor NAME`, as the daemon runs it) builds the links
/// and removes them once pid 1 has ended.
#[test]
fn daemon_checks_and_monitor_cleanup_in_the_test_host() {
    let dir = test_dir!("net-daemon");
    let lan = Lan::new();
    let vserverd = vserver_e2e::daemon::bin("vserverd");
    let enter = format!("--net={}", lan.host_ns());

    // check: an unknown device, an address the host holds, at their places in the file.
    let conf = dir.path.join("conf");
    fs::create_dir_all(&conf).unwrap();
    fs::write(conf.join("a.toml"), "[network]\nmode = \"macvlan\"\ndevice = \"nosuch0\"\naddresses = [\"192.0.2.40/24\"]\n").unwrap();
    fs::write(conf.join("b.toml"), "[network]\nmode = \"veth\"\ndevice = \"lan0\"\naddresses = [\"192.0.2.2/24\"]\n").unwrap();
    fs::write(conf.join("c.toml"), "[network]\nmode = \"veth\"\ndevice = \"lan0\"\naddresses = [\"192.0.2.41/24\"]\n").unwrap();
    let out = Command::new("nsenter").arg(&enter).arg(&vserverd).arg("--check-config").arg(&conf).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace(&format!("{}/", conf.display()), "");
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [
            "a.toml:3:10: error: unknown device `nosuch0`: the host has no such interface",
            "b.toml:4:14: error: address 192.0.2.2 is held by the host (on lan0)",
        ]
    );

    // The monitor: started, serving at its address, then pid 1 ends and nothing is left.
    let mut p = plan(&dir, "mon", "exec /probe serve vs-mon 0.0.0.0 80", vec![link(LinkMode::Veth, Some("lan0"), &["192.0.2.11/24"])]);
    p.context = 4343;
    let log = dir.path.join("mon.log");
    let req = serde_json::json!({ "plan": p, "log_file": log, "log_max_bytes": 1 << 20, "log_keep": 1 });
    let mut child = Command::new("nsenter")
        .arg(&enter)
        .arg(&vserverd)
        .args(["monitor", &p.name])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    {
        use std::io::{BufRead, Write};
        child.stdin.take().unwrap().write_all(req.to_string().as_bytes()).unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let report: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let pid = report["Started"]["pid"].as_i64().unwrap_or_else(|| panic!("not started: {line}")) as i32;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fs::read_to_string(&log).unwrap_or_default().contains("listening") {
            assert!(Instant::now() < deadline, "the vserver did not listen");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(lan.probe_from_client(&["try", "connect", "192.0.2.11", "80"]), "ok vs-mon");
        assert_eq!(lan.extra_links(&[]), ["vs4343h0"]);
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the monitor did not end");
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(lan.leftovers(&[]), Vec::<String>::new());
}
