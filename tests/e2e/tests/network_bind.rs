//! Bind mode through the daemon (root): the paper's bound IP on the host's own network stack.
//!
//! The test LAN of tests/e2e/tests/network.rs: a client namespace (`lan1`: 192.0.2.1/24,
//! 2001:db8::1/64) and a namespace playing the vserver host (`lan0`: 192.0.2.2/24,
//! 2001:db8::2/64), joined by a veth pair. The daemon runs in the host namespace (through
//! `nsenter --net`, which changes nothing else), so its bind vservers share that namespace's
//! stack and their addresses go on its `lan0`: nothing touches the machine's own interfaces.
//! Vservers are busybox roots whose start command runs probes serving on the wildcard address,
//! on 127.0.0.1 and ::1.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use vserver_e2e::daemon::*;
use vserver_e2e::lan::{ip, TestLan};
use vserver_e2e::pty::{run, vserverctl};
use vserver_e2e::{require_root, TestDir};
use vserver_engine::bindaddr::{self, Hook};

const T: Duration = Duration::from_secs(20);

/// The test LAN: namespaces `host` (where the daemon runs) and `client`.
struct Lan(TestLan);

impl std::ops::Deref for Lan {
    type Target = TestLan;
    fn deref(&self) -> &TestLan {
        &self.0
    }
}

impl Lan {
    fn new() -> Lan {
        Lan(TestLan::new("bind"))
    }

    fn enter_host(&self) -> String {
        format!("--net=/run/netns/{}", self.host)
    }

    /// The probe run in the host namespace (a host process there).
    fn probe_on_host(&self, args: &[&str]) -> String {
        vserver_e2e::host_probe(&["nsenter", &self.enter_host()], args)
    }

    fn probe_on_client(&self, args: &[&str]) -> String {
        vserver_e2e::host_probe(&["ip", "netns", "exec", &self.client], args)
    }

    /// A probe server in the client (`on_host` false) or host namespace, once it listens.
    fn server(&self, on_host: bool, args: &[&str]) -> Server {
        let mut cmd = if on_host {
            let mut c = Command::new("nsenter");
            c.arg(self.enter_host());
            c
        } else {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", &self.client]);
            c
        };
        let mut child = cmd.arg(vserver_e2e::probe()).args(args).stdin(Stdio::null()).stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.starts_with("listening"), "probe {args:?}: {line}");
        Server(child, None)
    }

    /// The addresses of the host namespace, one `ip -o addr` line each.
    fn host_addresses(&self) -> String {
        ip(&["-n", &self.host, "-o", "addr"])
    }
}

/// A server process; with a cgroup (chbind's), every process in it goes with it.
struct Server(Child, Option<PathBuf>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(cg) = &self.1 {
            let _ = fs::write(cg.join("cgroup.kill"), "1");
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A daemon in the LAN's host namespace.
fn daemon<'a>(t: &'a TestDir, bus: &TestBus, lan: &Lan) -> TestDaemon<'a> {
    let mut d = TestDaemon::new(t, bus);
    d.wrapper = Some(format!("exec nsenter --net=/run/netns/{} \"$0\" \"$@\"", lan.host));
    d
}

/// A bind vserver `name` at `addresses` on `lan0` whose start command runs `servers` (probe
/// argument lists), each writing `listening` to /tmp/sN when it is up.
fn bind_vserver(d: &TestDaemon<'_>, name: &str, addresses: &[&str], servers: &[&str]) -> PathBuf {
    let root = d.root(name);
    // The start command's first act: bind the host's address and a wildcard (pid 1 and its
    // first child run bound from their first instruction).
    let mut script = vec!["/probe try bind 192.0.2.2 0 > /tmp/first; /probe try bound 0.0.0.0 0 >> /tmp/first;".to_string()];
    script.extend(servers.iter().enumerate().map(|(i, s)| format!("/probe {s} > /tmp/s{i} 2>&1 &")));
    let list = addresses.iter().map(|a| format!("\"{a}\"")).collect::<Vec<_>>().join(", ");
    d.config(
        name,
        &format!(
            "[init]\ncommand = [\"/bin/sh\", \"-c\", {:?}]\n[network]\nmode = \"bind\"\ndevice = \"lan0\"\naddresses = [{list}]\n",
            script.join(" ")
        ),
    );
    root
}

fn wait_servers(root: &Path, n: usize) {
    let deadline = Instant::now() + T;
    for i in 0..n {
        let f = root.join(format!("tmp/s{i}"));
        loop {
            let text = fs::read_to_string(&f).unwrap_or_default();
            if text.starts_with("listening") {
                break;
            }
            assert!(!text.starts_with("err"), "server {i} in {}: {text}", root.display());
            assert!(Instant::now() < deadline, "server {i} in {} did not listen", root.display());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `/probe try ARGS` inside vserver `name`, through `vserverctl exec`.
fn inside(d: &TestDaemon<'_>, name: &str, args: &[&str]) -> String {
    inside_as(d, name, "0", args)
}

/// `/probe try ARGS` inside vserver `name` as `user`.
fn inside_as(d: &TestDaemon<'_>, name: &str, user: &str, args: &[&str]) -> String {
    let mut a = vec!["exec", "--user", user, name, "--", "/probe", "try"];
    a.extend_from_slice(args);
    let o = run(vserverctl(&d.address, &a), T);
    o.stdout.lines().next().unwrap_or("").to_string()
}

/// The cgroup v2 tree: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host.
fn v2_root() -> PathBuf {
    vserver_engine::cgroup::host_layout().v2_mount.clone().expect("bind mode's tests need the cgroup v2 tree")
}

/// The v2 cgroup of vserver `name` of this daemon.
fn cgroup_of(d: &TestDaemon<'_>, name: &str) -> PathBuf {
    v2_root().join(d.cgroup_parent()).join(name)
}

/// Every cgroup of the v2 tree that has one of `ids` attached.
fn holders(ids: &[u32]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![v2_root()];
    while let Some(dir) = todo.pop() {
        if let Ok(rd) = fs::read_dir(&dir) {
            todo.extend(rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
        }
        if bindaddr::attached(&dir).unwrap_or_default().iter().any(|(_, id)| ids.contains(id)) {
            out.push(dir);
        }
    }
    out
}

/// The private loopback address of the running vserver `name`, from its slot's record.
fn lo4_of(d: &TestDaemon<'_>, name: &str) -> String {
    let (slot, _) = bindaddr::lback::records(&d.run_dir).into_iter().find(|(_, r)| r.name == name).expect("a loopback slot");
    bindaddr::lback::lo4(slot).to_string()
}

#[test]
fn two_bind_vservers_serve_one_port_each_at_its_address() {
    require_root!();
    let t = TestDir::new("bind-two");
    let bus = TestBus::start();
    let lan = Lan::new();
    let servers = |n: &str| {
        [
            format!("serve-peer tcp {n} 0.0.0.0 80"),
            format!("serve-peer tcp {n}6 :: 80"),
            format!("serve-peer udp {n} 0.0.0.0 53"),
            format!("serve-peer tcp lo-{n} 127.0.0.1 9000"),
            format!("serve-peer tcp lo6-{n} ::1 9000"),
        ]
    };
    block_on(async {
        let mut d = daemon(&t, &bus, &lan);
        let sa = servers("a");
        let sb = servers("b");
        let root_a = bind_vserver(&d, "a", &["192.0.2.10/24", "2001:db8::10/64"], &sa.iter().map(String::as_str).collect::<Vec<_>>());
        let root_b = bind_vserver(&d, "b", &["192.0.2.11/24", "2001:db8::11/64"], &sb.iter().map(String::as_str).collect::<Vec<_>>());
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("a").await.unwrap_or_else(|e| panic!("{e}\n{}", d.daemon_log()));
        m.start_vserver("b").await.unwrap();
        wait_servers(&root_a, 5);
        wait_servers(&root_b, 5);
        // No network namespace of its own: the daemon's.
        let ns = |pid: i32| fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
        assert_eq!(ns(d.state("a").unwrap().pid), ns(d.pid()));

        // Both serve port 80, each at its own address, to a client on the LAN.
        assert_eq!(lan.probe_on_client(&["try", "connect", "192.0.2.10", "80"]), "ok a 192.0.2.1");
        assert_eq!(lan.probe_on_client(&["try", "connect", "192.0.2.11", "80"]), "ok b 192.0.2.1");
        assert_eq!(lan.probe_on_client(&["try", "connect", "2001:db8::10", "80"]), "ok a6 2001:db8::1");
        assert_eq!(lan.probe_on_client(&["try", "connect", "2001:db8::11", "80"]), "ok b6 2001:db8::1");
        assert_eq!(lan.probe_on_client(&["try", "udp", "192.0.2.11", "53"]), "ok b 192.0.2.1");
        // The host's own address has nothing on port 80: the vservers' sockets are no wildcards.
        assert_eq!(lan.probe_on_client(&["try", "connect", "192.0.2.2", "80"]), "err ECONNREFUSED 111");

        // Binding the other's address fails; its own works (and the host's fails too).
        assert_eq!(inside(&d, "a", &["bind", "192.0.2.11", "8080"]), "err EADDRNOTAVAIL 99");
        assert_eq!(inside(&d, "a", &["bind", "2001:db8::11", "8080"]), "err EADDRNOTAVAIL 99");
        assert_eq!(inside(&d, "a", &["bind", "192.0.2.2", "8080"]), "err EADDRNOTAVAIL 99");
        assert_eq!(inside(&d, "a", &["bind", "192.0.2.10", "8080"]), "ok");
        assert_eq!(inside(&d, "b", &["bind", "192.0.2.11", "8080"]), "ok");
        // Below port 1024 root inside binds its addresses (with the host's ids it holds
        // NET_BIND_SERVICE; in a user namespace, where that counts over its own namespaces only,
        // the programs let root of the namespace and nobody else); another user inside may
        // not, and binds above 1024 (the control).
        assert_eq!(inside(&d, "a", &["bind", "192.0.2.10", "81"]), "ok");
        assert_eq!(inside(&d, "a", &["bind", "2001:db8::10", "81"]), "ok");
        assert_eq!(inside_as(&d, "a", "4242", &["bind", "192.0.2.10", "81"]), "err EACCES 13");
        assert_eq!(inside_as(&d, "a", "4242", &["bind", "2001:db8::10", "81"]), "err EACCES 13");
        assert_eq!(inside_as(&d, "a", "4242", &["bind", "192.0.2.10", "8081"]), "ok");

        // The source address a peer sees is the vserver's: TCP and UDP, IPv4 and IPv6. A host
        // process leaves from the host's (the control).
        let _peers = [
            lan.server(false, &["serve-peer", "tcp", "lan", "192.0.2.1", "7000"]),
            lan.server(false, &["serve-peer", "udp", "lan", "192.0.2.1", "7001"]),
            lan.server(false, &["serve-peer", "tcp", "lan", "2001:db8::1", "7000"]),
            lan.server(false, &["serve-peer", "udp", "lan", "2001:db8::1", "7001"]),
        ];
        assert_eq!(lan.probe_on_host(&["try", "connect", "192.0.2.1", "7000"]), "ok lan 192.0.2.2");
        assert_eq!(lan.probe_on_host(&["try", "udp", "2001:db8::1", "7001"]), "ok lan 2001:db8::2");
        assert_eq!(inside(&d, "a", &["connect", "192.0.2.1", "7000"]), "ok lan 192.0.2.10");
        assert_eq!(inside(&d, "a", &["udp", "192.0.2.1", "7001"]), "ok lan 192.0.2.10");
        assert_eq!(inside(&d, "a", &["connect", "2001:db8::1", "7000"]), "ok lan 2001:db8::10");
        assert_eq!(inside(&d, "a", &["udp", "2001:db8::1", "7001"]), "ok lan 2001:db8::10");
        assert_eq!(inside(&d, "b", &["connect", "192.0.2.1", "7000"]), "ok lan 192.0.2.11");
        assert_eq!(inside(&d, "b", &["udp", "2001:db8::1", "7001"]), "ok lan 2001:db8::11");

        // Loopback is private. Inside, 127.0.0.1 and ::1 reach the vserver's own services, and
        // both ends see 127.0.0.1.
        assert_eq!(inside(&d, "a", &["connect", "127.0.0.1", "9000"]), "ok lo-a 127.0.0.1");
        assert_eq!(inside(&d, "a", &["connect", "::1", "9000"]), "ok lo6-a ::1");
        assert_eq!(inside(&d, "a", &["names", "127.0.0.1", "9000"]), "ok 127.0.0.1 127.0.0.1");
        assert_eq!(inside(&d, "b", &["connect", "127.0.0.1", "9000"]), "ok lo-b 127.0.0.1");
        // The other vserver and the host's processes do not reach them: not by 127.0.0.1 (their
        // own loopback), nor by the private address behind it (its first packet is dropped).
        let lo_a = lo4_of(&d, "a");
        assert_ne!(lo_a, lo4_of(&d, "b"));
        assert_eq!(lan.probe_on_host(&["try", "connect", "127.0.0.1", "9000"]), "err ECONNREFUSED 111");
        assert_eq!(lan.probe_on_host(&["try", "connect", &lo_a, "9000", "700"]), "err ETIMEDOUT 110");
        assert_eq!(inside(&d, "b", &["connect", &lo_a, "9000"]), "ok lo-b 127.0.0.1", "b's 127.x.y.z is its own");
        // The vserver does not reach the host's loopback services; the host does (the control).
        let _host_lo = lan.server(true, &["serve-peer", "tcp", "host", "127.0.0.1", "9100"]);
        let _host_any = lan.server(true, &["serve-peer", "tcp", "hostany", "0.0.0.0", "9101"]);
        assert_eq!(lan.probe_on_host(&["try", "connect", "127.0.0.1", "9100"]), "ok host 127.0.0.1");
        assert_eq!(inside(&d, "a", &["connect", "127.0.0.1", "9100"]), "err ECONNREFUSED 111");
        assert_eq!(inside(&d, "a", &["connect", "127.0.0.1", "9101", "700"]), "err ETIMEDOUT 110");

        // An abstract unix socket of the host is out of reach; the host's processes reach it.
        let abstract_name = format!("vs-e2e-bind-{}", std::process::id());
        let _abs = lan.server(true, &["serve-abstract", &abstract_name, "host"]);
        assert_eq!(lan.probe_on_host(&["try", "abstract", &abstract_name]), "ok host");
        assert_eq!(inside(&d, "a", &["abstract", &abstract_name]), "err EPERM 1");
        // Nothing inside can detach the hooks: no bpf(2), and no cgroup tree to leave by.
        assert_eq!(inside(&d, "a", &["bpf"]), "err EPERM 1");
        assert!(inside(&d, "a", &["write", &format!("{}/cgroup.procs", v2_root().display()), "0"]).starts_with("err "));

        // The programs on each vserver's cgroup: every hook, one shared set.
        let on_a = bindaddr::attached(&cgroup_of(&d, "a")).unwrap();
        let on_b = bindaddr::attached(&cgroup_of(&d, "b")).unwrap();
        assert_eq!(on_a.iter().map(|(h, _)| *h).collect::<Vec<_>>(), Hook::ALL.to_vec());
        assert_eq!(on_a, on_b, "the two vservers share the daemon's programs");
        assert!(lan.host_addresses().contains("192.0.2.10/24"));

        // After stop: no program stays attached anywhere, the addresses are gone.
        m.stop_vserver("a").await.unwrap();
        m.stop_vserver("b").await.unwrap();
        let ids: Vec<u32> = on_a.iter().map(|(_, id)| *id).collect();
        assert_eq!(holders(&ids), Vec::<PathBuf>::new());
        assert!(!cgroup_of(&d, "a").exists() && !cgroup_of(&d, "b").exists());
        let addrs = lan.host_addresses();
        for gone in ["192.0.2.10", "192.0.2.11", "2001:db8::10", "2001:db8::11", "fd76:"] {
            assert!(!addrs.contains(gone), "{gone} is left:\n{addrs}");
        }
        assert!(bindaddr::lback::records(&d.run_dir).is_empty());
        assert_eq!(lan.probe_on_client(&["try", "connect", "192.0.2.10", "80", "500"]).split(' ').next(), Some("err"));
    });
}

#[test]
fn the_hooks_survive_a_daemon_sigkill_and_its_restart() {
    require_root!();
    let t = TestDir::new("bind-survive");
    let bus = TestBus::start();
    let lan = Lan::new();
    block_on(async {
        let mut d = daemon(&t, &bus, &lan);
        let root = bind_vserver(&d, "a", &["192.0.2.10/24"], &["serve-peer tcp a 0.0.0.0 80"]);
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("a").await.unwrap_or_else(|e| panic!("{e}\n{}", d.daemon_log()));
        wait_servers(&root, 1);
        let first = fs::read_to_string(root.join("tmp/first")).unwrap();
        assert!(first.starts_with("err EADDRNOTAVAIL 99\nok 192.0.2.10:"), "{first}");
        let cg = cgroup_of(&d, "a");
        let before = bindaddr::attached(&cg).unwrap();
        assert_eq!(before.len(), Hook::ALL.len());

        d.sigkill();
        // The daemon (and the program set it loaded) is gone; the rules stay with the cgroup.
        assert_eq!(bindaddr::attached(&cg).unwrap(), before);
        assert_eq!(lan.probe_on_client(&["try", "connect", "192.0.2.10", "80"]), "ok a 192.0.2.1");

        d.start().await;
        let m = d.manager().await;
        assert_eq!(d.state_of("a").await, "running");
        assert_eq!(bindaddr::attached(&cg).unwrap(), before);
        assert_eq!(inside(&d, "a", &["bind", "192.0.2.2", "8080"]), "err EADDRNOTAVAIL 99");
        assert_eq!(inside(&d, "a", &["bind", "192.0.2.10", "8080"]), "ok");
        // The restarted daemon starts another bind vserver with a set of its own.
        let root_b = bind_vserver(&d, "b", &["192.0.2.11/24"], &["serve-peer tcp b 0.0.0.0 80"]);
        m.reload().await.unwrap();
        m.start_vserver("b").await.unwrap();
        wait_servers(&root_b, 1);
        assert_eq!(lan.probe_on_client(&["try", "connect", "192.0.2.11", "80"]), "ok b 192.0.2.1");

        m.stop_vserver("a").await.unwrap();
        m.stop_vserver("b").await.unwrap();
        let ids: Vec<u32> = before.iter().map(|(_, id)| *id).collect();
        assert_eq!(holders(&ids), Vec::<PathBuf>::new());
        let addrs = lan.host_addresses();
        assert!(!addrs.contains("192.0.2.10") && !addrs.contains("192.0.2.11") && !addrs.contains("fd76:"), "{addrs}");
    });
}

#[test]
fn check_refuses_conflicts_and_a_failed_start_leaves_nothing() {
    require_root!();
    let t = TestDir::new("bind-check");
    let bus = TestBus::start();
    let lan = Lan::new();
    let vserverd = bin("vserverd");

    // check: the host's own address, a capability a bind vserver cannot have, no device.
    let conf = t.path.join("conf");
    fs::create_dir_all(&conf).unwrap();
    let file = |name: &str, body: &str| fs::write(conf.join(format!("{name}.toml")), body).unwrap();
    file("a", "[network]\nmode = \"bind\"\ndevice = \"lan0\"\naddresses = [\"192.0.2.2/24\"]\n");
    file("b", "[network]\nmode = \"bind\"\ndevice = \"lan0\"\naddresses = [\"192.0.2.21/24\"]\n[capabilities]\nadd = [\"NET_RAW\"]\n");
    file("c", "[network]\nmode = \"bind\"\naddresses = [\"192.0.2.22/24\"]\n");
    file("d", "[network]\nmode = \"bind\"\ndevice = \"lan0\"\naddresses = [\"192.0.2.23/24\"]\n");
    let check = |wrapper: &[&str]| {
        let mut c = Command::new(wrapper[0]);
        c.args(&wrapper[1..]).arg(&vserverd).arg("--check-config").arg(&conf);
        let out = c.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).replace(&format!("{}/", conf.display()), "");
        (out.status.code(), text.lines().map(str::to_string).collect::<Vec<_>>())
    };
    let enter = lan.enter_host();
    let (code, lines) = check(&["nsenter", &enter]);
    assert_eq!(code, Some(1), "{lines:#?}");
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].starts_with("a.toml:4:14: error: address 192.0.2.2 is held by the host (on lan0) for another purpose"), "{lines:#?}");
    assert!(lines[1].starts_with("b.toml:6:8: error: a bind vserver (network mode \"bind\") cannot have NET_RAW"), "{lines:#?}");
    assert!(lines[2].starts_with("c.toml:2:8: error: network mode \"bind\" needs `network.device`"), "{lines:#?}");
    // A host without the cgroup v2 tree: said at check.
    let umount = format!("umount -l {} && exec nsenter {enter} \"$@\"", v2_root().display());
    let (code, lines) = check(&["unshare", "-m", "sh", "-c", &umount, "sh"]);
    assert_eq!(code, Some(1));
    assert!(lines.iter().any(|l| l.starts_with("d.toml:1:1: error: network mode \"bind\": bind mode needs the cgroup v2 tree")), "{lines:#?}");

    // A start the host refuses (it took the address after the configuration was loaded) fails
    // with the address named, and leaves nothing: no cgroup, no program, no address, no slot.
    block_on(async {
        let mut d = daemon(&t, &bus, &lan);
        bind_vserver(&d, "e", &["192.0.2.24/24", "2001:db8::24/64"], &["serve-peer tcp e 0.0.0.0 80"]);
        d.start().await;
        ip(&["-n", &lan.host, "addr", "add", "192.0.2.24/24", "dev", "lan0"]);
        let m = d.manager().await;
        let e = m.start_vserver("e").await.unwrap_err().to_string();
        assert!(e.contains("192.0.2.24") && (e.contains("the host holds this address (on lan0)") || e.contains("held by the host")), "{e}");
        assert!(!cgroup_of(&d, "e").exists());
        assert!(bindaddr::lback::records(&d.run_dir).is_empty());
        let addrs = lan.host_addresses();
        assert_eq!(addrs.matches("192.0.2.24/24").count(), 1, "{addrs}");
        assert!(!addrs.contains("2001:db8::24") && !addrs.contains("fd76:"), "{addrs}");
        // Once the host gives the address back, the same vserver starts (the positive control).
        ip(&["-n", &lan.host, "addr", "del", "192.0.2.24/24", "dev", "lan0"]);
        m.start_vserver("e").await.unwrap_or_else(|e| panic!("{e}"));
        assert!(lan.host_addresses().contains("192.0.2.24/24"));
        m.stop_vserver("e").await.unwrap();
        assert!(!lan.host_addresses().contains("192.0.2.24/24"));
    });
}

/// `chbind ARGS` run in the LAN's host namespace: (exit code, stdout, stderr).
fn chbind(lan: &Lan, run_dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new("nsenter")
        .arg(lan.enter_host())
        .arg(bin("chbind"))
        .args(args)
        .env("VSERVER_RUN_DIR", run_dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).trim().to_string(), String::from_utf8_lossy(&out.stderr).trim().to_string())
}

/// This process's cgroup of the v2 tree (where chbind, run from here, makes its own).
fn own_v2_cgroup() -> PathBuf {
    let own = fs::read_to_string("/proc/self/cgroup").unwrap();
    v2_root().join(own.lines().find_map(|l| l.strip_prefix("0::")).unwrap().trim().trim_start_matches('/'))
}

/// The `chbind-PID` cgroups below the v2 cgroup `dir` (chbind makes them below its caller's).
fn chbind_cgroups(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("chbind-"))).collect())
        .unwrap_or_default()
}

#[test]
fn chbind_ties_a_host_command_and_its_children_to_addresses() {
    require_root!();
    let t = TestDir::new("chbind");
    let lan = Lan::new();
    let run_dir = t.path.join("run");
    fs::create_dir_all(&run_dir).unwrap();
    ip(&["-n", &lan.host, "addr", "add", "192.0.2.3/24", "dev", "lan0"]);
    let probe = vserver_e2e::probe().display().to_string();
    let home = own_v2_cgroup();

    // The wildcard gets the given address; --ip IFACE takes the interface's (its first IPv4
    // address, its IPv6 address); the message names them unless --silent.
    let (code, out, err) = chbind(&lan, &run_dir, &["--ip", "192.0.2.3", &probe, "try", "bound", "0.0.0.0", "0"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("ok 192.0.2.3:"), "{out}");
    assert!(err.starts_with("chbind: ") && err.contains("bound to 192.0.2.3 (loopback 127."), "{err}");
    let (_, out, err) = chbind(&lan, &run_dir, &["--ip", "lan0", "--silent", "--", &probe, "try", "bound", "::", "0"]);
    assert!(out.starts_with("ok [2001:db8::2]:"), "{out}");
    assert_eq!(err, "");
    assert!(chbind(&lan, &run_dir, &["--ip", "lan0", &probe, "try", "bound", "0.0.0.0", "0"]).1.starts_with("ok 192.0.2.2:"));

    // Its children too: another address is refused, where an unbound host process binds it.
    let script = format!("{probe} try bind 192.0.2.2 0");
    assert_eq!(chbind(&lan, &run_dir, &["--ip", "192.0.2.3", "--", "sh", "-c", &script]).1, "err EADDRNOTAVAIL 99");
    assert_eq!(lan.probe_on_host(&["try", "bind", "192.0.2.2", "0"]), "ok");

    // Connections leave from the address.
    let _peer = lan.server(false, &["serve-peer", "tcp", "lan", "192.0.2.1", "7000"]);
    assert_eq!(chbind(&lan, &run_dir, &["--ip", "192.0.2.3", &probe, "try", "connect", "192.0.2.1", "7000"]).1, "ok lan 192.0.2.3");
    assert_eq!(lan.probe_on_host(&["try", "connect", "192.0.2.1", "7000"]), "ok lan 192.0.2.2");

    // A host service on 0.0.0.0:8000 answers at its address alone; the service is the very
    // process chbind was (it execs).
    let mut svc = Command::new("nsenter")
        .arg(lan.enter_host())
        .arg(bin("chbind"))
        .args(["--silent", "--ip", "192.0.2.3", &probe, "serve-peer", "tcp", "svc", "0.0.0.0", "8000"])
        .env("VSERVER_RUN_DIR", &run_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let svc_cgroup = home.join(format!("chbind-{}", svc.id()));
    let mut line = String::new();
    BufReader::new(svc.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "listening 192.0.2.3:8000");
    let exe = fs::read_link(format!("/proc/{}/exe", svc.id())).unwrap();
    assert_eq!(exe.file_name(), vserver_e2e::probe().file_name());
    assert_eq!(lan.probe_on_client(&["try", "connect", "192.0.2.3", "8000"]), "ok svc 192.0.2.1");
    assert_eq!(lan.probe_on_client(&["try", "connect", "192.0.2.2", "8000"]), "err ECONNREFUSED 111");
    assert_eq!(chbind_cgroups(&home), [svc_cgroup.clone()], "the service's cgroup");
    drop(Server(svc, Some(svc_cgroup)));

    // Addresses the host does not hold, and unknown interfaces, are refused before anything runs.
    let (code, _, err) = chbind(&lan, &run_dir, &["--ip", "192.0.2.99", "touch", "/tmp/never"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("192.0.2.99") && err.contains("no interface of the host holds this address"), "{err}");
    let (code, _, err) = chbind(&lan, &run_dir, &["--ip", "nosuch0", "true"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("nosuch0") && err.contains("No such device"), "{err}");
    let (code, _, err) = chbind(&lan, &run_dir, &["true"]);
    assert_eq!(code, Some(2), "{err}");

    // Once the last process of each is gone, its cgroup, hooks and private loopback are removed.
    let deadline = Instant::now() + T;
    while !chbind_cgroups(&home).is_empty() || !bindaddr::lback::records(&run_dir).is_empty() {
        assert!(Instant::now() < deadline, "left: {:?} {:?}", chbind_cgroups(&home), bindaddr::lback::records(&run_dir));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!lan.host_addresses().contains("fd76:"), "{}", lan.host_addresses());
}

/// The per-user firewall of docs/network.md: a user's session under chbind with an address of
/// its own, and nftables rules keyed on that address.
const PER_USER_RULES: &str = "table inet vs_peruser {
    chain output {
        type filter hook output priority filter; policy accept;
        ip saddr 192.0.2.50 ct state established,related accept
        ip saddr 192.0.2.50 tcp dport { 80, 443, 7000 } accept
        ip saddr 192.0.2.50 udp dport 53 accept
        ip saddr 192.0.2.50 meta l4proto tcp counter reject with tcp reset
        ip saddr 192.0.2.50 counter reject
    }
    chain input {
        type filter hook input priority filter; policy accept;
        ip daddr 192.0.2.50 ct state established,related accept
        ip daddr 192.0.2.50 tcp dport 2222 accept
        ip daddr 192.0.2.50 counter drop
    }
}
";

#[test]
fn per_user_firewall_by_the_sessions_address() {
    require_root!();
    let t = TestDir::new("bind-peruser");
    let lan = Lan::new();
    let run_dir = t.path.join("run");
    fs::create_dir_all(&run_dir).unwrap();
    // The admin's part: the user's address, and the rules.
    ip(&["-n", &lan.host, "addr", "add", "192.0.2.50/24", "dev", "lan0"]);
    let rules = t.path.join("peruser.nft");
    fs::write(&rules, PER_USER_RULES).unwrap();
    let out = Command::new("ip").args(["netns", "exec", &lan.host, "nft", "-f"]).arg(&rules).output().expect("nft (apt-get install nftables)");
    assert!(out.status.success(), "nft: {}", String::from_utf8_lossy(&out.stderr));
    let probe = vserver_e2e::probe().display().to_string();
    // The user's session: `chbind --ip 192.0.2.50 -- runuser -u USER -- …` (here USER nobody).
    let session = |args: &[&str]| -> Vec<String> {
        let mut a = vec!["--silent", "--ip", "192.0.2.50", "--", "runuser", "-u", "nobody", "--", &probe];
        a.extend_from_slice(args);
        a.into_iter().map(str::to_string).collect()
    };
    let in_session = |args: &[&str]| {
        let a = session(args);
        chbind(&lan, &run_dir, &a.iter().map(String::as_str).collect::<Vec<_>>()).1
    };
    let _peers = [
        lan.server(false, &["serve-peer", "tcp", "lan", "192.0.2.1", "7000"]),
        lan.server(false, &["serve-peer", "tcp", "lan", "192.0.2.1", "7002"]),
    ];
    // Out: the session reaches what its rules allow, from its address; anything else is reset.
    // The same user outside the session is not concerned (the control).
    assert_eq!(in_session(&["try", "connect", "192.0.2.1", "7000"]), "ok lan 192.0.2.50");
    assert_eq!(in_session(&["try", "connect", "192.0.2.1", "7002"]), "err ECONNREFUSED 111");
    let out = Command::new("nsenter")
        .arg(lan.enter_host())
        .args(["runuser", "-u", "nobody", "--", &probe, "try", "connect", "192.0.2.1", "7002"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok lan 192.0.2.2");

    // In: the session's services on the allowed port are reached, the others are not.
    let serve = |port: &str| {
        let a = session(&["serve-peer", "tcp", "svc", "0.0.0.0", port]);
        let mut c = Command::new("nsenter")
            .arg(lan.enter_host())
            .arg(bin("chbind"))
            .args(&a)
            .env("VSERVER_RUN_DIR", &run_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(c.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), format!("listening 192.0.2.50:{port}"));
        // runuser waits for the service as its parent: the service goes with chbind's cgroup.
        let cg = own_v2_cgroup().join(format!("chbind-{}", c.id()));
        Server(c, Some(cg))
    };
    let _allowed = serve("2222");
    let _closed = serve("8080");
    assert_eq!(lan.probe_on_client(&["try", "connect", "192.0.2.50", "2222"]), "ok svc 192.0.2.1");
    assert_eq!(lan.probe_on_client(&["try", "connect", "192.0.2.50", "8080", "500"]), "err ETIMEDOUT 110");
    let counters = ip(&["netns", "exec", &lan.host, "nft", "list", "table", "inet", "vs_peruser"]);
    assert!(counters.contains("reject with tcp reset") && !counters.contains("counter packets 0 bytes 0 reject with tcp reset"), "{counters}");
}
