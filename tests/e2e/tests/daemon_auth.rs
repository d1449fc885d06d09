//! Authorization, on a real `dbus-daemon` that includes the repo's policy file: only root may
//! own the name; everyone may send every method (the policy's part ends there), and the daemon
//! decides each mutating call itself. Here the test bus has no polkit: uid 65534 may read and is
//! refused every change by the daemon, saying there is no polkit to ask; root living in another
//! PID namespace is refused too. With polkit on the bus: daemon_polkit.rs.

use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::{require_root, TestDir};

const T: Duration = Duration::from_secs(10);
const NOBODY: &[&str] = &["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
const ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";
const M: &str = "org.vserverd.VServer1.Manager";
const V: &str = "org.vserverd.VServer1.VServer";
const PROPS: &str = "org.freedesktop.DBus.Properties";

/// (path, interface, method, args) of every read-only call.
fn read_only(vpath: &str) -> Vec<(String, &'static str, &'static str, Vec<&'static str>)> {
    vec![
        (MANAGER_PATH.into(), M, "ListVServers", vec![]),
        (MANAGER_PATH.into(), M, "GetVServer", vec!["a"]),
        (MANAGER_PATH.into(), M, "CheckConfig", vec![""]),
        (MANAGER_PATH.into(), M, "ListStats", vec![]),
        (MANAGER_PATH.into(), M, "ListProcesses", vec![""]),
        (MANAGER_PATH.into(), M, "ListProcesses", vec!["a"]),
        (MANAGER_PATH.into(), "org.freedesktop.DBus.Introspectable", "Introspect", vec![]),
        (MANAGER_PATH.into(), "org.freedesktop.DBus.Peer", "Ping", vec![]),
        (vpath.into(), PROPS, "Get", vec![V, "State"]),
        (vpath.into(), PROPS, "GetAll", vec![V]),
        (vpath.into(), "org.freedesktop.DBus.Introspectable", "Introspect", vec![]),
    ]
}

/// Every mutating call, each harmless if it went through to a stopped `a`… except that it
/// would start it: the tests check `a` stays stopped.
fn mutating(vpath: &str) -> Vec<(String, &'static str, &'static str, Vec<&'static str>)> {
    vec![
        (MANAGER_PATH.into(), M, "StartVServer", vec!["a"]),
        (MANAGER_PATH.into(), M, "StopVServer", vec!["a"]),
        (MANAGER_PATH.into(), M, "RestartVServer", vec!["a"]),
        (MANAGER_PATH.into(), M, "KillVServer", vec!["a", "leader", "i:15"]),
        (MANAGER_PATH.into(), M, "Reload", vec![]),
        (MANAGER_PATH.into(), M, "StartOnboot", vec![]),
        (MANAGER_PATH.into(), M, "StopAll", vec![]),
        (vpath.into(), V, "Start", vec![]),
        (vpath.into(), V, "Stop", vec![]),
        (vpath.into(), V, "Restart", vec![]),
        (vpath.into(), V, "Kill", vec!["leader", "i:15"]),
        (MANAGER_PATH.into(), M, "SetOnboot", vec!["a", "b:false"]),
    ]
}

fn call(wrapper: &[&str], address: &str, c: &(String, &str, &str, Vec<&str>)) -> (String, String) {
    let mut args = vec![c.0.as_str(), c.1, c.2];
    args.extend(c.3.iter().copied());
    bus_call(wrapper, address, &args)
}

async fn daemon_with_a<'a>(t: &'a TestDir, bus: &TestBus) -> TestDaemon<'a> {
    let mut d = TestDaemon::new(t, bus);
    d.ctl_root("a");
    d.config("a", &format!("context = 501\nonboot = true\n{CTL_INIT}"));
    d.start().await;
    d
}

#[test]
fn without_polkit_the_daemon_refuses_non_root_every_change() {
    require_root!();
    let t = TestDir::new("d-policy");
    let bus = TestBus::start();
    block_on(async {
        let d = daemon_with_a(&t, &bus).await;
        let vpath = vserver_path("a");
        for c in read_only(&vpath) {
            assert_eq!(call(NOBODY, &bus.address, &c).0, "ok", "uid 65534 may call {}.{}", c.1, c.2);
        }
        let console = (MANAGER_PATH.to_string(), M, "OpenConsole", vec!["a"]);
        for c in mutating(&vpath).iter().chain([&console]) {
            let (name, msg) = call(NOBODY, &bus.address, c);
            assert_eq!(name, ACCESS_DENIED, "uid 65534 calling {}.{}: {msg}", c.1, c.2);
            // Let through by the bus, refused by the daemon, which names the action.
            assert!(!msg.contains("Rejected send message"), "{}.{}: {msg}", c.1, c.2);
            let action = if c.2 == "OpenConsole" { "org.vserverd.VServer1.console" } else { "org.vserverd.VServer1.manage" };
            assert_eq!(
                msg,
                format!("uid 65534 may only read; changing vservers needs root (no polkit on the bus to authorize {action})"),
                "{}.{}",
                c.1,
                c.2
            );
        }
        let (name, msg) = bus_call(NOBODY, &bus.address, &["own"]);
        assert_eq!(name, ACCESS_DENIED, "uid 65534 may not own {BUS_NAME}: {msg}");
        assert!(msg.contains("Rejected send message") || msg.contains("not allowed to own"), "the bus refuses owning: {msg}");
        assert_eq!(d.state_of("a").await, "stopped");

        // Root may call everything (positive control).
        let start = &mutating(&vpath)[0];
        assert_eq!(call(&[], &bus.address, start), ("ok".into(), "".into()));
        assert_eq!(d.state_of("a").await, "running");
        d.state("a");
        let stop = &mutating(&vpath)[8];
        assert_eq!(call(&[], &bus.address, stop).0, "ok");
        d.wait_state("a", "stopped", T).await;
    });
}

/// What `vserverctl --help` promises ("reading is open to every user") holds: every reading
/// verb works for uid 65534 through the repo's policy; a changing verb is refused (control).
#[test]
fn every_reading_verb_of_the_cli_works_for_every_user() {
    require_root!();
    let t = TestDir::new("d-cli-read");
    let bus = TestBus::start();
    block_on(async {
        let d = daemon_with_a(&t, &bus).await;
        d.config("b", &format!("context = 502\n{CTL_INIT}"));
        d.ctl_root("b");
        assert_eq!(call(&[], &bus.address, &(MANAGER_PATH.into(), M, "Reload", vec![])).0, "ok");
        assert_eq!(call(&[], &bus.address, &(MANAGER_PATH.into(), M, "StartVServer", vec!["a"])).0, "ok");
        let ctl = |args: &[&str]| {
            let out = std::process::Command::new(NOBODY[0])
                .args(&NOBODY[1..])
                .arg(bin("vserverctl"))
                .args(args)
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
                .output()
                .expect("run vserverctl as uid 65534");
            (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
        };
        for (args, code) in [
            (&["list"][..], 0),
            (&["list", "--all"], 0),
            (&["--json", "list"], 0),
            (&["status", "a"], 0),
            (&["status", "b"], 3),
            (&["stat"], 0),
            (&["ps"], 0),
            (&["ps", "a"], 0),
            (&["pstree", "a"], 0),
            (&["running", "a"], 0),
            (&["running", "b"], 1),
            (&["check", "a"], 0),
        ] {
            let (got, out) = ctl(args);
            assert_eq!(got, Some(code), "uid 65534: vserverctl {args:?}: {out}");
            assert!(!out.contains("AccessDenied") && !out.contains("denied"), "uid 65534: vserverctl {args:?}: {out}");
        }
        let (_, ps) = ctl(&["ps", "a"]);
        assert!(ps.lines().count() >= 2, "uid 65534 sees a's processes: {ps}");
        // Changing needs root here, with no polkit to ask (control: the same runner is refused).
        let (got, out) = ctl(&["stop", "a"]);
        assert_ne!(got, Some(0), "uid 65534 stopped a: {out}");
        assert!(out.contains("no polkit on the bus"), "{out}");
        assert_eq!(d.state_of("a").await, "running");
        assert_eq!(call(&[], &bus.address, &(MANAGER_PATH.into(), M, "StopVServer", vec!["a"])).0, "ok");
        d.wait_state("a", "stopped", T).await;
    });
}

#[test]
fn a_caller_in_another_pid_namespace_is_refused_even_as_root() {
    require_root!();
    let t = TestDir::new("d-pidns");
    let bus = TestBus::start();
    block_on(async {
        let d = daemon_with_a(&t, &bus).await;
        let vpath = vserver_path("a");
        let inside: &[&str] = &["unshare", "--pid", "--fork"];
        // Reading is fine from anywhere.
        assert_eq!(call(inside, &bus.address, &read_only(&vpath)[0]).0, "ok");
        for c in mutating(&vpath) {
            let (name, msg) = call(inside, &bus.address, &c);
            assert_eq!(name, ACCESS_DENIED, "root in a PID namespace calling {}.{}: {msg}", c.1, c.2);
            assert!(msg.contains("inside a vserver"), "{}.{}: {msg}", c.1, c.2);
        }
        assert_eq!(d.state_of("a").await, "stopped");
        // The same call from the host's PID namespace succeeds.
        let start = &mutating(&vpath)[0];
        assert_eq!(call(&[], &bus.address, start).0, "ok");
        assert_eq!(d.state_of("a").await, "running");
        d.state("a");
        let (name, _) = call(inside, &bus.address, &mutating(&vpath)[1]);
        assert_eq!(name, ACCESS_DENIED);
        assert_eq!(d.state_of("a").await, "running", "the refused stop changed nothing");
    });
}
