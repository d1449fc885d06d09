//! The real polkit on a [`TestBus`], for the authorization tests: the installed `polkitd` runs
//! in a mount namespace of its own, where `/usr/share/polkit-1/actions` holds only the repo's
//! `systemd/org.vserverd.VServer1.policy` and the rules directories only the test's rules, and
//! connects to the test bus. A [`BusMonitor`] records every call to it (`dbus-monitor`), so that
//! a test sees what the daemon asked: the subject's pid, start time and uid, the action, the
//! flags.
//!
//! The bus must let polkitd own its name and everyone call it: [`bus_policy`] is the extra
//! configuration of [`TestBus::with_extra`] (polkit's own bus policy file, as installed, and the
//! monitoring interface of the bus for root).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use zbus::fdo::DBusProxy;

use crate::daemon::{connect, TestBus};
use crate::workspace_root;

pub const POLKITD: &str = "/usr/lib/polkit-1/polkitd";
/// polkit's bus policy, as the polkitd package installs it.
pub const POLKIT_BUS_POLICY: &str = "/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf";
pub const POLKIT_NAME: &str = "org.freedesktop.PolicyKit1";

/// The extra bus configuration for polkitd and a [`BusMonitor`].
pub fn bus_policy() -> String {
    format!(
        "<include>{POLKIT_BUS_POLICY}</include>\n<policy user=\"root\"><allow send_destination=\"org.freedesktop.DBus\" \
         send_interface=\"org.freedesktop.DBus.Monitoring\"/></policy>"
    )
}

/// A polkitd on a test bus; killed (by pid) on drop.
pub struct TestPolkit {
    pub dir: PathBuf,
    /// Its output: what it logs, and the rules' `polkit.log()` lines.
    pub log: PathBuf,
    child: Child,
}

impl TestPolkit {
    /// polkitd on `bus` with the repo's actions and `rules` (JavaScript, polkit's rules
    /// language); returns once it owns its name on that bus.
    pub async fn start(bus: &TestBus, rules: &str) -> TestPolkit {
        assert!(fs::metadata(POLKITD).is_ok(), "{POLKITD} missing: apt-get install polkitd");
        assert!(fs::metadata(POLKIT_BUS_POLICY).is_ok(), "{POLKIT_BUS_POLICY} missing: apt-get install polkitd");
        // polkitd reads its files as user polkitd: everything here is world-readable, in the
        // bus's directory (mode 0755).
        let dir = bus.dir.join("polkit");
        let (actions, rules_dir) = (dir.join("actions"), dir.join("rules.d"));
        for d in [&dir, &actions, &rules_dir] {
            fs::create_dir_all(d).unwrap();
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        }
        let policy = workspace_root().join("systemd/org.vserverd.VServer1.policy");
        fs::copy(&policy, actions.join("org.vserverd.VServer1.policy")).unwrap();
        fs::write(rules_dir.join("50-test.rules"), rules).unwrap();
        for f in [actions.join("org.vserverd.VServer1.policy"), rules_dir.join("50-test.rules")] {
            fs::set_permissions(f, fs::Permissions::from_mode(0o644)).unwrap();
        }
        let log = dir.join("polkitd.log");
        // unshare(1) makes the new mount namespace's mounts private: the bind mounts stay in it.
        let script = r#"mount --bind "$1" /usr/share/polkit-1/actions && mount --bind "$2" /usr/share/polkit-1/rules.d &&
            { [ ! -d /etc/polkit-1/rules.d ] || mount --bind "$2" /etc/polkit-1/rules.d; } && exec "$3""#;
        let child = Command::new("unshare")
            .args(["--mount", "sh", "-c", script, "sh"])
            .args([&actions, &rules_dir])
            .arg(POLKITD)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("DBUS_SYSTEM_BUS_ADDRESS", &bus.address)
            .stdin(Stdio::null())
            .stdout(fs::File::create(&log).unwrap())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("run polkitd");
        let mut p = TestPolkit { dir, log, child };
        p.wait_owner(bus).await;
        p
    }

    async fn wait_owner(&mut self, bus: &TestBus) {
        let conn = connect(&bus.address).await;
        let dbus = DBusProxy::new(&conn).await.unwrap();
        let pid = self.child.id();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // `unshare` and `sh` exec: the owner is this very child.
            if let Ok(owner) = dbus.get_connection_unix_process_id(POLKIT_NAME.try_into().unwrap()).await {
                assert_eq!(owner, pid, "{POLKIT_NAME} owned by another process");
                return;
            }
            if let Some(st) = self.child.try_wait().unwrap() {
                panic!("polkitd ended ({st}) before owning {POLKIT_NAME}:\n{}", self.output());
            }
            assert!(Instant::now() < deadline, "polkitd did not own {POLKIT_NAME} within 20 s:\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for TestPolkit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What polkit's authentication needs around a client on a test bus, for a test that answers
/// polkit's password prompt: the command prefix of [`AgentWorld::wrap`] runs the client in a
/// mount namespace of its own where
/// - `/run/dbus/system_bus_socket` is the test bus: `polkit-agent-helper-1` (set-uid root, run
///   by the agent to check the password) clears its environment and answers polkitd on the
///   default system bus address;
/// - `/etc/pam.d` holds only `polkit-1`, whose `auth` accepts one password and nothing else
///   (`pam_exec` hands the typed password to a script), so that no account of the host is
///   involved and the host's PAM configuration stays as it is.
pub struct AgentWorld {
    dir: PathBuf,
    bus_dir: PathBuf,
}

impl AgentWorld {
    pub fn new(bus: &TestBus, password: &str) -> AgentWorld {
        let dir = bus.dir.join("agent-world");
        let pam = dir.join("pam.d");
        fs::create_dir_all(&pam).unwrap();
        for d in [&dir, &pam] {
            fs::set_permissions(d, fs::Permissions::from_mode(0o755)).unwrap();
        }
        // pam_exec runs the script as the real uid of the helper (the agent's user), the
        // password on its stdin, NUL-terminated.
        let check = dir.join("check-password");
        fs::write(&check, format!("#!/bin/sh\n[ \"$(tr -d '\\000')\" = '{password}' ]\n")).unwrap();
        fs::set_permissions(&check, fs::Permissions::from_mode(0o755)).unwrap();
        let stack = format!(
            "auth required pam_exec.so expose_authtok quiet {}\naccount required pam_permit.so\n\
             password required pam_deny.so\nsession required pam_permit.so\n",
            check.display()
        );
        fs::write(pam.join("polkit-1"), stack).unwrap();
        fs::set_permissions(pam.join("polkit-1"), fs::Permissions::from_mode(0o644)).unwrap();
        AgentWorld { dir, bus_dir: bus.dir.clone() }
    }

    /// The argv prefix that runs the rest of the command line in that world (it execs: the
    /// command keeps the pid, the terminal and the session of the prefix).
    pub fn wrap(&self) -> Vec<String> {
        let script = r#"mount -t tmpfs -o mode=0755 tmpfs /run && mkdir /run/dbus && mount --bind "$1" /run/dbus &&
            mount --bind "$2" /etc/pam.d && shift 2 && exec "$@""#;
        let pam = self.dir.join("pam.d");
        ["unshare", "--mount", "sh", "-c", script, "sh"]
            .iter()
            .map(|s| s.to_string())
            .chain([self.bus_dir.display().to_string(), pam.display().to_string()])
            .collect()
    }
}

/// The `pkttyagent` processes registered for process `pid` (`--process PID` on their command
/// line).
pub fn agents_for(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let is_agent = args.first().is_some_and(|a| a.ends_with(b"pkttyagent"));
        if is_agent && args.windows(2).any(|w| w[0] == b"--process" && w[1] == pid.to_string().as_bytes()) {
            found.push(p);
        }
    }
    found
}

/// One `CheckAuthorization` seen on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub kind: String,
    pub pid: u32,
    pub start_time: u64,
    pub uid: i32,
    pub action: String,
    pub flags: u32,
    pub cancellation_id: String,
}

/// `dbus-monitor` on a test bus, watching calls to polkit's name; killed (by pid) on drop.
pub struct BusMonitor {
    out: PathBuf,
    child: Child,
}

impl BusMonitor {
    /// Returns once the monitor is in place: a connection that becomes a monitor loses its
    /// unique name, and dbus-monitor prints that `NameLost`.
    pub async fn start(bus: &TestBus) -> BusMonitor {
        let out = bus.dir.join(format!("monitor-{}.txt", std::process::id()));
        let child = Command::new("dbus-monitor")
            .args(["--address", &bus.address, &format!("type='method_call',destination='{POLKIT_NAME}'")])
            .stdin(Stdio::null())
            .stdout(fs::File::create(&out).unwrap())
            .stderr(Stdio::null())
            .spawn()
            .expect("run dbus-monitor");
        let mut m = BusMonitor { out, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !fs::read_to_string(&m.out).unwrap_or_default().contains("member=NameLost") {
            assert!(m.child.try_wait().unwrap().is_none(), "dbus-monitor ended");
            assert!(Instant::now() < deadline, "dbus-monitor was not a monitor within 10 s");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        m
    }

    /// Every `CheckAuthorization` call seen so far, in order.
    pub fn checks(&self) -> Vec<Check> {
        parse_checks(&fs::read_to_string(&self.out).unwrap_or_default())
    }

    /// The `CheckAuthorization` calls once there are at least `n` (at most 5 s): dbus-monitor
    /// writes a call down on its own time, maybe after the caller already has its answer.
    pub fn wait_checks(&self, n: usize) -> Vec<Check> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let checks = self.checks();
            if checks.len() >= n || Instant::now() > deadline {
                return checks;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The number of calls to polkit of any method.
    pub fn calls(&self) -> usize {
        fs::read_to_string(&self.out).unwrap_or_default().matches("destination=org.freedesktop.PolicyKit1").count()
    }
}

impl Drop for BusMonitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `CheckAuthorization` calls in dbus-monitor's text: each message starts on a line of its
/// own, its arguments follow, one value a line (`uint32 7`, `string "x"`…).
fn parse_checks(text: &str) -> Vec<Check> {
    let mut out = Vec::new();
    for block in format!("\n{text}").split("\nmethod call ").skip(1) {
        if !block.lines().next().unwrap_or("").contains("member=CheckAuthorization") {
            continue;
        }
        let values: Vec<&str> = block.lines().skip(1).map(str::trim).collect();
        let after = |key: &str| values.iter().position(|l| *l == format!("string \"{key}\"")).and_then(|i| values.get(i + 1)).copied();
        let number = |line: Option<&str>| line.and_then(|l| l.split_whitespace().last()).unwrap_or("").to_string();
        let strings: Vec<String> = values.iter().filter_map(|l| l.strip_prefix("string \"")?.strip_suffix('"').map(String::from)).collect();
        // Strings in order: kind, "pid", "start-time", "uid" (in some order), action, cancellation id.
        let top: Vec<&String> = strings.iter().filter(|s| !matches!(s.as_str(), "pid" | "start-time" | "uid")).collect();
        let flags = values.iter().rev().find(|l| l.starts_with("uint32 ")).copied();
        out.push(Check {
            kind: top.first().map(|s| s.to_string()).unwrap_or_default(),
            pid: number(after("pid")).parse().unwrap_or(0),
            start_time: number(after("start-time")).parse().unwrap_or(0),
            uid: number(after("uid")).parse().unwrap_or(-1),
            action: top.get(1).map(|s| s.to_string()).unwrap_or_default(),
            flags: number(flags).parse().unwrap_or(u32::MAX),
            cancellation_id: top.get(2).map(|s| s.to_string()).unwrap_or_default(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dbus_monitors_text() {
        let text = r#"signal time=1.0 sender=org.freedesktop.DBus -> destination=:1.9 serial=2 path=/org/freedesktop/DBus; interface=org.freedesktop.DBus; member=NameAcquired
   string ":1.9"
method call time=2.0 sender=:1.4 -> destination=org.freedesktop.PolicyKit1 serial=9 path=/org/freedesktop/PolicyKit1/Authority; interface=org.freedesktop.PolicyKit1.Authority; member=CheckAuthorization
   struct {
      string "unix-process"
      array [
         dict entry(
            string "uid"
            variant                int32 65534
         )
         dict entry(
            string "pid"
            variant                uint32 4242
         )
         dict entry(
            string "start-time"
            variant                uint64 987654
         )
      ]
   }
   string "org.vserverd.VServer1.manage"
   array [
   ]
   uint32 0
   string ""
method call time=3.0 sender=:1.4 -> destination=org.freedesktop.PolicyKit1 serial=10 path=/org/freedesktop/PolicyKit1/Authority; interface=org.freedesktop.DBus.Properties; member=GetAll
   string "org.freedesktop.PolicyKit1.Authority"
"#;
        let checks = parse_checks(text);
        assert_eq!(
            checks,
            vec![Check {
                kind: "unix-process".into(),
                pid: 4242,
                start_time: 987654,
                uid: 65534,
                action: "org.vserverd.VServer1.manage".into(),
                flags: 0,
                cancellation_id: "".into(),
            }]
        );
        // Control: without the CheckAuthorization call, nothing.
        assert!(parse_checks(&text.replace("member=CheckAuthorization", "member=Other")).is_empty());
    }
}
