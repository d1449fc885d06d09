//! Heavy (a debootstrap of Debian 12 once per run, see `vserver_e2e::guest`): stock
//! distributions booting their own init as vservers, without CAP_SYS_ADMIN.
//!
//! - a systemd guest boots to `running` with no failed unit; `journalctl`, `loginctl` and
//!   `vserverctl console` work; nginx serves a client on the test LAN; root logs in over ssh
//!   and gets a session; `reboot` inside restarts it with its configuration read again,
//!   `poweroff` inside stops it, `vserverctl stop` shuts it down cleanly;
//! - five at once;
//! - from inside, its limits, the cgroups above its own and mounting are out of reach, with
//!   the same moves inside its own tree as positive controls;
//! - a sysvinit guest boots and stops with its signal (SIGPWR).
//!
//! Runs when VSERVER_HEAVY=1 (CI sets it), or with `--ignored`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vserver_e2e::daemon::*;
use vserver_e2e::guest::{self, Lan};
use vserver_e2e::pty::{vserverctl, PtySession};
use vserver_e2e::{require_root, TestDir};

const T: Duration = Duration::from_secs(60);

/// A daemon whose templates are the cached guests.
fn daemon<'a>(t: &'a TestDir, bus: &TestBus) -> TestDaemon<'a> {
    let mut d = TestDaemon::new(t, bus);
    d.template_dir = Some(guest::template_dir());
    d
}

/// `vserverctl ARGS` with the daemon's directories (the file verbs), on its bus.
fn ctl(d: &TestDaemon, args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(bin("vserverctl"));
    cmd.args(args).env("DBUS_SYSTEM_BUS_ADDRESS", &d.address);
    if matches!(args.first(), Some(&"build") | Some(&"destroy")) {
        cmd.arg("--config-dir").arg(&d.config_dir).arg("--root-base").arg(&d.root_base).arg("--run-dir").arg(&d.run_dir);
        cmd.arg("--template-dir").arg(guest::template_dir());
    }
    guest::output(&mut cmd, Duration::from_secs(120))
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "failed ({}):\nstdout: {}\nstderr: {}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `vserverctl exec NAME -- ARGS`: (exit code, stdout).
fn exec(d: &TestDaemon, name: &str, args: &[&str]) -> (i32, String) {
    let mut full = vec!["exec", name, "--"];
    full.extend_from_slice(args);
    let out = ctl(d, &full);
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

/// A unified vserver `name` of template `template` (its own files in its upper layer, written
/// through `upper()`), with `extra` configuration (a drop-in).
fn guest_vserver(d: &TestDaemon, name: &str, template: &str, extra: &str) -> PathBuf {
    ok(&ctl(d, &["build", name, "--unified", template]));
    let dropin = d.config_dir.join(format!("{name}.toml.d"));
    fs::create_dir_all(&dropin).unwrap();
    fs::write(dropin.join("test.toml"), vserver_e2e::daemon::with_userns(extra)).unwrap();
    d.root_base.join(name).join("upper")
}

/// The host pids in vserver `name`'s cgroup tree (whatever its layout).
fn members(d: &TestDaemon, name: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for base in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        let top = Path::new(base).join(d.cgroup_parent()).join(name);
        let mut todo = vec![top];
        while let Some(dir) = todo.pop() {
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    todo.push(e.path());
                }
            }
            out.extend(fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default().lines().filter_map(|l| l.parse::<i32>().ok()));
        }
    }
    out
}

fn cgroup_exists(d: &TestDaemon, name: &str) -> bool {
    fs::read_dir("/sys/fs/cgroup").unwrap().flatten().any(|h| h.path().join(d.cgroup_parent()).join(name).exists())
}

/// What systemd inside says: `is-system-running` and the failed units.
fn system_state(d: &TestDaemon, name: &str) -> (String, String) {
    let (_, state) = exec(d, name, &["systemctl", "is-system-running", "--wait"]);
    let (_, failed) = exec(d, name, &["systemctl", "--failed", "--no-legend", "--plain"]);
    (state.trim().to_string(), failed.trim().to_string())
}

#[test]
#[cfg_attr(not(vserver_heavy), ignore = "heavy: set VSERVER_HEAVY=1 (or pass --ignored)")]
fn a_systemd_guest_boots_serves_and_reboots_without_cap_sys_admin() {
    require_root!();
    let template = guest::debian_template("systemd");
    let t = TestDir::new("g-sd");
    let bus = TestBus::start();
    let lan = Lan::new();
    block_on(async {
        let mut d = daemon(&t, &bus);
        let upper = guest_vserver(&d, "web1", &template, &format!("[init]\nstop_timeout = 20\n{}", lan.network("198.51.100.10")));
        // A page of its own for nginx, and root's key for ssh, in its own layer.
        fs::create_dir_all(upper.join("var/www/html")).unwrap();
        fs::write(upper.join("var/www/html/index.html"), "served by web1\n").unwrap();
        let (key, public) = guest::ssh_key(&t.path);
        fs::create_dir_all(upper.join("root/.ssh")).unwrap();
        fs::write(upper.join("root/.ssh/authorized_keys"), public).unwrap();
        d.start().await;
        let m = d.manager().await;
        let v = d.vserver("web1").await;

        // The start returns once systemd says READY=1: already running, nothing failed.
        let t0 = Instant::now();
        m.start_vserver("web1").await.unwrap_or_else(|e| panic!("start: {e}\n{}", d.daemon_log()));
        let boot = t0.elapsed();
        assert_eq!(v.state().await.unwrap(), "running");
        let (state, failed) = system_state(&d, "web1");
        assert_eq!(state, "running", "failed units: {failed}\n{}", fs::read_to_string(d.log_dir.join("web1.log")).unwrap_or_default());
        assert_eq!(failed, "", "no unit may fail");
        eprintln!("web1 booted in {boot:?}");
        if vserver_e2e::userns_mode() {
            // The suite's second run: systemd booted as root of a user namespace of its own.
            let map = fs::read_to_string(format!("/proc/{}/uid_map", d.state("web1").unwrap().pid)).unwrap();
            assert_eq!(map.split_whitespace().nth(2), Some("65536"), "{map}");
        }

        // What it was given: no CAP_SYS_ADMIN, container=vserver, its own cgroup tree, tmpfs /run.
        let (_, status) = exec(&d, "web1", &["grep", "-E", "^Cap(Eff|Bnd):", "/proc/1/status"]);
        for line in status.lines() {
            let caps = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
            assert_eq!(caps & (1 << 21), 0, "CAP_SYS_ADMIN inside: {line}");
        }
        let (_, environ) = exec(&d, "web1", &["sh", "-c", "tr '\\0' '\\n' < /proc/1/environ"]);
        assert!(environ.lines().any(|l| l == "container=vserver"), "{environ}");
        let (_, mounts) = exec(&d, "web1", &["findmnt", "-rn", "-o", "TARGET,FSTYPE,OPTIONS"]);
        for (point, fstype) in [("/run", "tmpfs"), ("/run/lock", "tmpfs"), ("/sys/fs/cgroup", "cgroup2"), ("/sys", "sysfs"), ("/proc/sys", "proc")] {
            assert!(mounts.lines().any(|l| l.starts_with(&format!("{point} {fstype} "))), "{point} ({fstype}):\n{mounts}");
        }
        assert!(mounts.lines().any(|l| l.starts_with("/sys sysfs ro,")), "/sys read-only:\n{mounts}");
        assert!(mounts.lines().any(|l| l.starts_with("/proc/sys proc ro,")), "/proc/sys read-only:\n{mounts}");
        let (_, cg) = exec(&d, "web1", &["cat", "/proc/1/cgroup"]);
        assert!(cg.lines().any(|l| l == "0::/init.scope"), "systemd manages its own tree: {cg}");

        // journalctl, loginctl, the console.
        let (code, journal) = exec(&d, "web1", &["journalctl", "-b", "--no-pager", "-o", "cat"]);
        assert_eq!(code, 0, "{journal}");
        assert!(journal.contains("Startup finished"), "{journal}");
        assert_eq!(exec(&d, "web1", &["loginctl", "list-sessions"]).0, 0);
        let log = d.log_dir.join("web1.log");
        eventually("the login prompt in the console log", T, || async { fs::read_to_string(&log).unwrap().contains("web1 login:").then_some(()) }).await;
        let mut console = PtySession::spawn(vserverctl(&d.address, &["console", "web1"]), 24, 80);
        console.expect("Connected to the console of web1", T);
        console.send(b"\r");
        console.expect("web1 login:", T);
        console.send(b"\x1d\x1d\x1d");
        assert_eq!(console.wait(T).code(), Some(0), "{}", console.all());

        // nginx answers a client on the LAN; root logs in over ssh and gets a logind session.
        let page = guest::output(&mut lan.client_cmd("curl", &["-s", "--max-time", "10", "http://198.51.100.10/"]), T);
        assert_eq!(String::from_utf8_lossy(&page.stdout), "served by web1\n", "{}", String::from_utf8_lossy(&page.stderr));
        let ssh = guest::output(
            &mut lan.client_cmd(
                "ssh",
                &[
                    "-i",
                    key.to_str().unwrap(),
                    "-o",
                    "StrictHostKeyChecking=no",
                    "-o",
                    "UserKnownHostsFile=/dev/null",
                    "-o",
                    "BatchMode=yes",
                    "-o",
                    "ConnectTimeout=10",
                    "root@198.51.100.10",
                    "echo ssh-ok $(hostname); loginctl show-session $XDG_SESSION_ID -p Active",
                ],
            ),
            T,
        );
        let said = String::from_utf8_lossy(&ssh.stdout);
        assert!(said.contains("ssh-ok web1") && said.contains("Active=yes"), "{said}\n{}", String::from_utf8_lossy(&ssh.stderr));

        // reboot inside: a restart with the configuration read again (a new host name).
        fs::write(d.config_dir.join("web1.toml.d/name.toml"), "hostname = \"web1b\"\n").unwrap();
        let first = d.state("web1").unwrap();
        exec(&d, "web1", &["systemctl", "reboot"]);
        eventually("the reboot", T, || async { (v.restarts().await.unwrap() == 1 && v.state().await.unwrap() == "running").then_some(()) }).await;
        let second = d.state("web1").unwrap();
        assert_ne!(second.pid, first.pid);
        assert_eq!(exec(&d, "web1", &["hostname"]).1.trim(), "web1b");
        assert_eq!(system_state(&d, "web1").0, "running");

        // poweroff inside: stopped, and nothing left.
        exec(&d, "web1", &["systemctl", "poweroff"]);
        d.wait_state("web1", "stopped", T).await;
        assert_eq!(v.last_exit().await.unwrap(), "halted (SIGINT)");
        assert_eq!(v.restarts().await.unwrap(), 1);
        assert!(members(&d, "web1").is_empty() && !cgroup_exists(&d, "web1"));

        // vserverctl stop: systemd shuts down (it halts itself: SIGINT, not a kill) in time.
        m.start_vserver("web1").await.unwrap();
        let t0 = Instant::now();
        m.stop_vserver("web1").await.unwrap();
        let took = t0.elapsed();
        assert_eq!(v.last_exit().await.unwrap(), "halted (SIGINT)", "a clean shutdown, not the timeout's kill");
        assert!(took < Duration::from_secs(20), "the stop took {took:?}");
        eprintln!("web1 stopped in {took:?}");
        assert!(members(&d, "web1").is_empty() && !cgroup_exists(&d, "web1"));
        ok(&ctl(&d, &["destroy", "--force", "web1"]));
    });
}

#[test]
#[cfg_attr(not(vserver_heavy), ignore = "heavy: set VSERVER_HEAVY=1 (or pass --ignored)")]
fn five_systemd_guests_boot_at_once() {
    require_root!();
    let template = guest::debian_template("systemd");
    let t = TestDir::new("g-five");
    let bus = TestBus::start();
    block_on(async {
        let mut d = daemon(&t, &bus);
        let names: Vec<String> = (1..=5).map(|i| format!("g{i}")).collect();
        for n in &names {
            guest_vserver(&d, n, &template, "onboot = true\n");
        }
        d.start().await;
        let m = d.manager().await;
        let t0 = Instant::now();
        let report = m.start_onboot().await.unwrap();
        eprintln!("five guests booted in {:?}", t0.elapsed());
        assert!(report.iter().all(|r| r.ok), "{report:?}");
        for n in &names {
            let (state, failed) = system_state(&d, n);
            assert_eq!((state.as_str(), failed.as_str()), ("running", ""), "{n}");
            assert_eq!(exec(&d, n, &["hostname"]).1.trim(), n);
        }
        // Each its own machine: one id per guest.
        let mut ids: Vec<String> = names.iter().map(|n| exec(&d, n, &["cat", "/etc/machine-id"]).1).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 5, "{ids:?}");
        let report = m.stop_all().await.unwrap();
        assert!(report.iter().all(|r| r.ok), "{report:?}");
        for n in &names {
            assert_eq!(d.vserver(n).await.last_exit().await.unwrap(), "halted (SIGINT)", "{n}");
            assert!(members(&d, n).is_empty() && !cgroup_exists(&d, n), "{n}");
        }
    });
}

#[test]
#[cfg_attr(not(vserver_heavy), ignore = "heavy: set VSERVER_HEAVY=1 (or pass --ignored)")]
fn a_systemd_guest_cannot_reach_its_limits_leave_its_cgroup_or_mount() {
    require_root!();
    let template = guest::debian_template("systemd");
    let t = TestDir::new("g-sec");
    let bus = TestBus::start();
    block_on(async {
        let mut d = daemon(&t, &bus);
        let upper = guest_vserver(&d, "s1", &template, "[limits]\nprocesses = 400\n");
        let probe = upper.join("probe");
        fs::copy(vserver_e2e::probe(), &probe).unwrap();
        d.start().await;
        d.manager().await.start_vserver("s1").await.unwrap_or_else(|e| panic!("start: {e}\n{}", d.daemon_log()));
        let limit = |d: &TestDaemon| -> Vec<(PathBuf, String)> {
            fs::read_dir("/sys/fs/cgroup")
                .unwrap()
                .flatten()
                .map(|h| h.path().join(d.cgroup_parent()).join("s1/pids.max"))
                .filter_map(|p| fs::read_to_string(&p).ok().map(|v| (p, v)))
                .collect()
        };
        let before = limit(&d);
        assert!(before.iter().any(|(_, v)| v.trim() == "400"), "the host set the limit: {before:?}");

        // Its own tree is its to manage (the positive controls): a cgroup made and a process
        // moved into it.
        let (code, out) = exec(&d, "s1", &["sh", "-c", "mkdir /sys/fs/cgroup/mine && echo $$ > /sys/fs/cgroup/mine/cgroup.procs && cat /proc/self/cgroup"]);
        assert_eq!(code, 0, "{out}");
        assert!(out.lines().any(|l| l == "0::/mine"), "{out}");
        // Above its root there is nothing to see or write: `..` of the mount is the mount.
        let (_, up) = exec(&d, "s1", &["sh", "-c", "ls /sys/fs/cgroup/.. /sys/fs/cgroup/../.. | sort -u; ls /sys/fs/cgroup | grep -c . "]);
        assert!(!up.contains("s1") && !up.contains("guest"), "{up}");
        for f in ["pids.max", "cgroup.procs", "cgroup.subtree_control"] {
            // Whatever it may write in its own root changes nothing the host set.
            exec(&d, "s1", &["sh", "-c", &format!("echo max > /sys/fs/cgroup/{f}")]);
        }
        assert_eq!(limit(&d), before, "the host's limit is untouched");
        // Moving itself to the host's root cgroup would need a cgroup2 mount of its own.
        let (_, r) = exec(&d, "s1", &["/probe", "try", "mount", "/mnt"]);
        assert!(r.starts_with("err EPERM"), "{r}");
        let (_, r) = exec(&d, "s1", &["/probe", "try", "unshare", "NEWCGROUP"]);
        assert!(r.starts_with("err EPERM"), "{r}");
        let (code, r) = exec(&d, "s1", &["mount", "-t", "cgroup2", "none", "/mnt"]);
        assert_ne!(code, 0, "{r}");
        let (code, r) = exec(&d, "s1", &["mount", "-t", "tmpfs", "none", "/mnt"]);
        assert_ne!(code, 0, "{r}");
        // The probe's escapes: the same answers as in any vserver.
        for (attempt, args) in [
            ("sethostname", vec!["sethostname", "x"]),
            ("kexec_load", vec!["kexec_load"]),
            ("init_module", vec!["init_module"]),
            // (on /dev, a tmpfs: the overlay root gives out no file handles to try with)
            ("open_by_handle_at", vec!["open_by_handle_at", "/dev"]),
            ("sysctl", vec!["sysctl", "/proc/sys/kernel/hostname", "x"]),
            ("keyctl", vec!["keyctl"]),
            ("bpf", vec!["bpf"]),
        ] {
            let mut full = vec!["/probe", "try"];
            full.extend(args.iter());
            let (_, r) = exec(&d, "s1", &full);
            assert!(["err EPERM", "err EROFS", "err EACCES"].iter().any(|e| r.starts_with(e)), "{attempt}: {r}");
        }
        d.manager().await.stop_vserver("s1").await.unwrap();
        assert!(members(&d, "s1").is_empty() && !cgroup_exists(&d, "s1"));
    });
}

#[test]
#[cfg_attr(not(vserver_heavy), ignore = "heavy: set VSERVER_HEAVY=1 (or pass --ignored)")]
fn a_sysvinit_guest_boots_and_stops_with_sigpwr() {
    require_root!();
    let template = guest::debian_template("sysvinit");
    let t = TestDir::new("g-sysv");
    let bus = TestBus::start();
    block_on(async {
        let mut d = daemon(&t, &bus);
        guest_vserver(&d, "sv1", &template, "[init]\nstop_timeout = 30\n");
        d.start().await;
        let m = d.manager().await;
        let v = d.vserver("sv1").await;
        m.start_vserver("sv1").await.unwrap_or_else(|e| panic!("start: {e}\n{}", d.daemon_log()));
        // sysvinit says nothing when it is ready: running at its exec; its getty comes up.
        assert_eq!(v.state().await.unwrap(), "running");
        let log = d.log_dir.join("sv1.log");
        eventually("the console getty", T, || async { fs::read_to_string(&log).unwrap_or_default().contains("sv1 login:").then_some(()) }).await;
        let (_, ps) = exec(&d, "sv1", &["ps", "-e", "-o", "comm="]);
        assert!(ps.lines().any(|l| l == "sshd"), "its rc started sshd: {ps}");
        // SIGPWR: inittab's powerfail entry runs `init 0`, which halts it.
        let t0 = Instant::now();
        m.stop_vserver("sv1").await.unwrap();
        eprintln!("sv1 stopped in {:?}", t0.elapsed());
        assert_eq!(v.last_exit().await.unwrap(), "halted (SIGINT)", "{}", fs::read_to_string(&log).unwrap_or_default());
        assert!(fs::read_to_string(&log).unwrap().contains("Will now halt"));
        assert!(members(&d, "sv1").is_empty() && !cgroup_exists(&d, "sv1"));
    });
}
