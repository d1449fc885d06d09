//! polkit decides for callers other than root, on a real polkitd (the installed one, with the
//! repo's `systemd/org.vserverd.VServer1.policy` and the rules below) on the test bus, every
//! call to it recorded by a bus monitor: uid 65534 may manage (the rules say yes) but not enter
//! (no) nor use the console (only after authentication); the daemon names the caller by its pid
//! and start time; root never makes the daemon ask; a caller in another PID namespace is refused
//! before polkit is asked, root or not, even though polkit would say yes.
//!
//! Interactive authorization, end to end: `vserverctl` on a terminal, as uid 65534, for an
//! action polkit grants only after authentication; the real `pkttyagent` it starts asks for the
//! password on that terminal, polkit's real helper checks it (through a PAM stack of the test's,
//! see [`AgentWorld`]): a wrong one is refused, the right one lets the call through; without a
//! terminal, with `--no-ask-password`, or without pkttyagent, the call is refused saying why.

use std::process::{Command, Stdio};
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::polkit::{agents_for, bus_policy, AgentWorld, BusMonitor, TestPolkit};
use vserver_e2e::pty::PtySession;
use vserver_e2e::{require_root, start_time, TestDir};

const T: Duration = Duration::from_secs(10);
const NOBODY: &[&str] = &["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
const ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";
const M: &str = "org.vserverd.VServer1.Manager";
const MANAGE: &str = "org.vserverd.VServer1.manage";
const ENTER: &str = "org.vserverd.VServer1.enter";
const CONSOLE: &str = "org.vserverd.VServer1.console";

/// Every question of vserverd is logged; uid 65534 (`nobody`) may manage, never enter, and use
/// the console only after authenticating as an administrator.
const RULES: &str = r#"polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.vserverd.VServer1.") != 0) return polkit.Result.NOT_HANDLED;
    polkit.log("vserverd asks " + action.id + " for " + subject.user + " pid " + subject.pid);
    if (action.id == "org.vserverd.VServer1.manage") return subject.user == "nobody" ? polkit.Result.YES : polkit.Result.NO;
    if (action.id == "org.vserverd.VServer1.console") return polkit.Result.AUTH_ADMIN;
    return polkit.Result.NO;
});
"#;

/// `bus-call` under `wrapper` on the manager: its answer, and its pid and start time (the
/// wrappers exec: the pid is bus-call's own).
fn call_as(wrapper: &[&str], address: &str, method: &str, args: &[&str]) -> ((String, String), u32, u64) {
    let mut cmd = Command::new(wrapper[0]);
    cmd.args(&wrapper[1..]).arg(bin("bus-call")).args([address, MANAGER_PATH, M, method]).args(args);
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run bus-call");
    let pid = child.id();
    let started = start_time(pid as i32).expect("the caller's start time");
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines().map(String::from);
    let answer = (lines.next().unwrap_or_default(), lines.next().unwrap_or_default());
    assert!(!answer.0.is_empty(), "bus-call {method} gave no answer: {}", String::from_utf8_lossy(&out.stderr));
    (answer, pid, started)
}

/// `vserverctl ARGS` as uid 65534: exit code and output.
fn ctl_as_nobody(address: &str, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(NOBODY[0])
        .args(&NOBODY[1..])
        .arg(bin("vserverctl"))
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("DBUS_SYSTEM_BUS_ADDRESS", address)
        .stdin(Stdio::null())
        .output()
        .expect("run vserverctl as uid 65534");
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

async fn daemon_with_a<'a>(t: &'a TestDir, bus: &TestBus) -> TestDaemon<'a> {
    let mut d = TestDaemon::new(t, bus);
    d.ctl_root("a");
    d.config("a", &format!("context = 511\n{CTL_INIT}"));
    d.start().await;
    d
}

#[test]
fn polkit_decides_for_non_root_by_action() {
    require_root!();
    let t = TestDir::new("d-polkit");
    let bus = TestBus::with_extra(&bus_policy());
    block_on(async {
        let polkit = TestPolkit::start(&bus, RULES).await;
        let monitor = BusMonitor::start(&bus).await;
        let d = daemon_with_a(&t, &bus).await;

        // Root: allowed, and polkit is never asked.
        assert_eq!(call_as(&["env"], &bus.address, "StartVServer", &["a"]).0, ("ok".into(), "".into()));
        assert_eq!(d.state_of("a").await, "running");
        assert_eq!(call_as(&["env"], &bus.address, "StopVServer", &["a"]).0 .0, "ok");
        d.wait_state("a", "stopped", T).await;
        assert_eq!(monitor.checks(), vec![], "root made the daemon ask polkit");

        // uid 65534 starts `a` through the bus: polkit is asked about this very process.
        let (answer, pid, started) = call_as(NOBODY, &bus.address, "StartVServer", &["a"]);
        assert_eq!(answer, ("ok".into(), "".into()), "polkit's yes lets uid 65534 start a");
        assert_eq!(d.state_of("a").await, "running");
        let checks = monitor.wait_checks(1);
        assert_eq!(checks.len(), 1, "one question: {checks:?}");
        let c = &checks[0];
        assert_eq!((c.kind.as_str(), c.pid, c.start_time, c.uid), ("unix-process", pid, started, 65534), "the subject is the caller");
        assert_eq!((c.action.as_str(), c.flags, c.cancellation_id.as_str()), (MANAGE, 0, ""));
        // polkitd, which checks the start time against the pid, saw user nobody.
        assert!(polkit.output().contains(&format!("vserverd asks {MANAGE} for nobody pid {pid}")), "{}", polkit.output());

        // …and through vserverctl: stop and start again.
        let (code, out) = ctl_as_nobody(&bus.address, &["stop", "a"]);
        assert_eq!(code, Some(0), "uid 65534: vserverctl stop a: {out}");
        d.wait_state("a", "stopped", T).await;
        let (code, out) = ctl_as_nobody(&bus.address, &["start", "a"]);
        assert_eq!(code, Some(0), "uid 65534: vserverctl start a: {out}");
        assert_eq!(d.state_of("a").await, "running");
        assert_eq!(monitor.wait_checks(3).len(), 3);

        // Entering: polkit says no; the refusal names the action.
        let (code, out) = ctl_as_nobody(&bus.address, &["exec", "a", "--", "true"]);
        assert_ne!(code, Some(0), "uid 65534 entered a: {out}");
        assert!(out.contains(&format!("polkit does not authorize uid 65534 for {ENTER}")), "{out}");
        assert_eq!(monitor.wait_checks(4).last().map(|c| c.action.clone()), Some(ENTER.into()));

        // The console: only after authentication, which a call without the interactive flag
        // does not allow; with the flag, polkit is told it may ask (no agent here: still no,
        // saying so).
        let ((name, msg), _, _) = call_as(NOBODY, &bus.address, "OpenConsole", &["a"]);
        assert_eq!(name, ACCESS_DENIED, "{msg}");
        assert!(msg.contains(CONSOLE) && msg.contains("only after authentication"), "{msg}");
        assert_eq!(monitor.wait_checks(5).last().map(|c| (c.action.clone(), c.flags)), Some((CONSOLE.into(), 0)));
        let interactive: Vec<&str> = ["env", "BUS_CALL_INTERACTIVE=1"].iter().chain(NOBODY).copied().collect();
        let ((name, msg), _, _) = call_as(&interactive, &bus.address, "OpenConsole", &["a"]);
        assert_eq!(name, ACCESS_DENIED, "{msg}");
        assert!(msg.contains(CONSOLE) && msg.contains("no authentication agent is registered"), "{msg}");
        assert_eq!(monitor.wait_checks(6).last().map(|c| (c.action.clone(), c.flags)), Some((CONSOLE.into(), 1)), "AllowUserInteraction");
        assert_eq!(monitor.checks().len(), 6);

        // Root again: still no question.
        assert_eq!(call_as(&["env"], &bus.address, "StopVServer", &["a"]).0 .0, "ok");
        d.wait_state("a", "stopped", T).await;
        assert_eq!(monitor.checks().len(), 6, "root made the daemon ask polkit");
    });
}

#[test]
fn another_pid_namespace_is_refused_before_polkit_is_asked() {
    require_root!();
    let t = TestDir::new("d-polkit-pidns");
    let bus = TestBus::with_extra(&bus_policy());
    block_on(async {
        let _polkit = TestPolkit::start(&bus, RULES).await;
        let monitor = BusMonitor::start(&bus).await;
        let d = daemon_with_a(&t, &bus).await;
        let inside: &[&str] = &["unshare", "--pid", "--fork"];
        let nobody_inside: Vec<&str> = inside.iter().chain(NOBODY).copied().collect();
        for wrapper in [inside, &nobody_inside[..]] {
            // `unshare --fork` does not exec: take the answer only.
            let (name, msg) = bus_call(wrapper, &bus.address, &[MANAGER_PATH, M, "StartVServer", "a"]);
            assert_eq!(name, ACCESS_DENIED, "{wrapper:?}: {msg}");
            assert!(msg.contains("inside a vserver") && msg.contains(MANAGE), "{wrapper:?}: {msg}");
        }
        assert_eq!(d.state_of("a").await, "stopped");
        assert_eq!(monitor.calls(), 0, "polkit was asked about a caller in another PID namespace");
        // Control: the same uid 65534 from the host's PID namespace is asked about, and let in.
        assert_eq!(bus_call(NOBODY, &bus.address, &[MANAGER_PATH, M, "StartVServer", "a"]).0, "ok");
        assert_eq!(d.state_of("a").await, "running");
        assert_eq!(monitor.wait_checks(1).len(), 1);
        assert_eq!(call_as(&["env"], &bus.address, "StopVServer", &["a"]).0 .0, "ok");
        d.wait_state("a", "stopped", T).await;
    });
}

/// uid 65534 may manage after authenticating as an administrator (root), and may do nothing
/// else.
const ASK_RULES: &str = r#"polkit.addAdminRule(function(action, subject) { return ["unix-user:root"]; });
polkit.addRule(function(action, subject) {
    if (action.id.indexOf("org.vserverd.VServer1.") != 0) return polkit.Result.NOT_HANDLED;
    if (action.id == "org.vserverd.VServer1.manage" && subject.user == "nobody") return polkit.Result.AUTH_ADMIN;
    return polkit.Result.NO;
});
"#;
const PASSWORD: &str = "vserver-test-password";
const PKTTYAGENT: &str = "/usr/bin/pkttyagent";

/// `vserverctl ARGS` as uid 65534 on a terminal of its own, in `world`, with `path` as PATH
/// (where it looks for pkttyagent).
fn ctl_on_a_terminal(world: &AgentWorld, address: &str, path: &str, args: &[&str]) -> PtySession {
    let wrap = world.wrap();
    let mut cmd = Command::new(&wrap[0]);
    cmd.args(&wrap[1..]).args(NOBODY).arg("env").arg("-i").arg(format!("PATH={path}"));
    cmd.arg(format!("DBUS_SYSTEM_BUS_ADDRESS={address}")).arg("TERM=dumb").arg(bin("vserverctl")).args(args);
    cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin");
    PtySession::spawn(cmd, 24, 120)
}

#[test]
fn vserverctl_asks_for_a_password_through_pkttyagent() {
    require_root!();
    assert!(std::fs::metadata(PKTTYAGENT).is_ok(), "{PKTTYAGENT} missing: apt-get install polkitd");
    let t = TestDir::new("d-polkit-ask");
    let bus = TestBus::with_extra(&bus_policy());
    block_on(async {
        let polkit = TestPolkit::start(&bus, ASK_RULES).await;
        let monitor = BusMonitor::start(&bus).await;
        let d = daemon_with_a(&t, &bus).await;
        let world = AgentWorld::new(&bus, PASSWORD);
        let path = "/usr/sbin:/usr/bin:/sbin:/bin";
        let last_flags = |n: usize| monitor.wait_checks(n).last().map(|c| (c.action.clone(), c.flags));
        let needs_auth = "only after authentication, and the call does not allow interactive authorization";

        // Standard input is no terminal: the call does not allow interaction; the refusal says so.
        let (code, out) = ctl_as_nobody(&bus.address, &["start", "a"]);
        assert_eq!(code, Some(1), "{out}");
        assert!(out.contains(MANAGE) && out.contains(needs_auth), "{out}");
        assert_eq!(last_flags(1), Some((MANAGE.into(), 0)));

        // On a terminal with --no-ask-password: the same, and no agent asks.
        let mut s = ctl_on_a_terminal(&world, &bus.address, path, &["--no-ask-password", "start", "a"]);
        assert_eq!(s.wait(T).code(), Some(1), "{}", s.all());
        assert!(s.all().contains(needs_auth) && !s.all().contains("AUTHENTICATING"), "{}", s.all());
        assert_eq!(last_flags(2), Some((MANAGE.into(), 0)));
        assert_eq!(monitor.checks().len(), 2);

        // On a terminal: the call allows interaction, the agent registered for vserverctl asks
        // for root's password there; a wrong one is refused.
        let mut s = ctl_on_a_terminal(&world, &bus.address, path, &["start", "a"]);
        s.expect(&format!("AUTHENTICATING FOR {MANAGE}"), T);
        s.expect("Password:", T);
        let pid = s.pid();
        assert_eq!(agents_for(pid).len(), 1, "one pkttyagent for vserverctl (pid {pid})");
        assert_eq!(last_flags(3), Some((MANAGE.into(), 1)), "AllowUserInteraction");
        // While polkit waits for the password, the daemon answers others, reading or changing.
        let m = d.manager().await;
        let busy = async { (m.list_vservers().await.is_ok(), m.reload().await.is_ok()) };
        assert_eq!(tokio::time::timeout(Duration::from_secs(3), busy).await.ok(), Some((true, true)), "the daemon waited for the prompt");
        s.line("not-the-password");
        assert_eq!(s.wait(T).code(), Some(1), "{}", s.all());
        assert!(s.all().contains(&format!("polkit does not authorize uid 65534 for {MANAGE}")), "{}", s.all());
        assert_eq!(agents_for(pid), Vec::<u32>::new(), "the agent outlived the call");
        assert_eq!(d.state_of("a").await, "stopped");

        // The right password: started.
        let mut s = ctl_on_a_terminal(&world, &bus.address, path, &["start", "a"]);
        s.expect("Password:", T);
        s.line(PASSWORD);
        assert_eq!(s.wait(T).code(), Some(0), "{}", s.all());
        assert!(s.all().contains("AUTHENTICATION COMPLETE"), "{}", s.all());
        assert_eq!(d.state_of("a").await, "running");
        assert_eq!(agents_for(s.pid()), Vec::<u32>::new(), "the agent outlived the call");
        assert_eq!(last_flags(4), Some((MANAGE.into(), 1)));
        assert_eq!(monitor.checks().len(), 4);

        // No pkttyagent to be found: the call still allows interaction, nobody asks, polkit says
        // no agent was there.
        let mut s = ctl_on_a_terminal(&world, &bus.address, "/nonexistent", &["stop", "a"]);
        assert_eq!(s.wait(T).code(), Some(1), "{}", s.all());
        assert!(s.all().contains("no authentication agent is registered to ask the caller"), "{}", s.all());
        assert!(!s.all().contains("AUTHENTICATING"), "{}", s.all());
        assert_eq!(last_flags(5), Some((MANAGE.into(), 1)));
        assert_eq!(d.state_of("a").await, "running");

        // Anything else is refused outright, asked or not.
        let mut s = ctl_on_a_terminal(&world, &bus.address, path, &["exec", "a", "--", "true"]);
        assert_ne!(s.wait(T).code(), Some(0), "{}", s.all());
        assert!(s.all().contains(&format!("polkit does not authorize uid 65534 for {ENTER}")), "{}", s.all());
        assert!(!s.all().contains("AUTHENTICATING"), "{}", s.all());
        assert_eq!(last_flags(6), Some((ENTER.into(), 1)));

        assert_eq!(call_as(&["env"], &bus.address, "StopVServer", &["a"]).0 .0, "ok");
        d.wait_state("a", "stopped", T).await;
        drop(polkit);
    });
}
