//! The paper's tools for an ordinary user (its section 2.6.1 experiment, run "as the same user
//! ID" in two windows): `chcontext` makes a new context in a user namespace that maps the user
//! to root, and a process of the same user outside can no longer be seen or signalled from
//! inside; `reducecap` sets no_new_privs, so a setuid-root program gains nothing. The positive
//! controls: the same probe as the same user on the host. Needs root (to become uid 65534).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use vserver_e2e::{probe, require_root, Report, TestDir};

const NOBODY: u32 = 65534;

fn bin(name: &str) -> PathBuf {
    vserver_e2e::daemon::bin(name)
}

/// `argv` as uid and gid 65534, without supplementary groups, with `env`.
fn as_nobody(argv: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(argv[0]);
    c.args(&argv[1..]).uid(NOBODY).gid(NOBODY).env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c
}

fn out(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// The other window: a process of user 65534 on the host, ended by the test.
struct OtherWindow(Child);

impl Drop for OtherWindow {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory user 65534 may use: the test's own, handed over (a tmpfs-free /tmp path).
fn users_dir(t: &TestDir, name: &str) -> PathBuf {
    let d = t.path.join(name);
    fs::create_dir_all(&d).unwrap();
    std::os::unix::fs::chown(&d, Some(NOBODY), Some(NOBODY)).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o700)).unwrap();
    // The test directory itself (mkdtemp: 0700) must let the user through.
    fs::set_permissions(&t.path, fs::Permissions::from_mode(0o711)).unwrap();
    d
}

#[test]
fn an_ordinary_users_chcontext_runs_the_papers_experiment() {
    require_root!();
    let t = TestDir::new("user-chcontext");
    let runtime = users_dir(&t, "xdg");
    let xdg = runtime.to_str().unwrap();
    let other = OtherWindow(as_nobody(&["sleep", "300"], &[]).spawn().unwrap());
    let pid = other.0.id();
    let script = format!(
        "id -u; ps -e -o pid= | wc -l; ps -e -o args= | grep -c '^sleep 300' ; kill -0 {pid} 2>/dev/null && echo kill=ok || echo kill=failed"
    );

    let o = as_nobody(&[bin("chcontext").to_str().unwrap(), "--", "sh", "-c", &script], &[("XDG_RUNTIME_DIR", xdg)]).output().unwrap();
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "chcontext as an ordinary user: {stderr}");
    let n: u32 = stderr.trim().strip_prefix("New security context is ").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{stderr}"));
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(lines[0], "0", "root inside: {stdout}");
    let count: u32 = lines[1].parse().unwrap();
    assert!(count <= 5, "the context sees its own processes only: {stdout}");
    assert_eq!(lines[2..], ["0", "kill=failed"], "the other window is out of sight and reach: {stdout}");
    // The number was registered under the user's own run directory, and released.
    assert!(runtime.join("vservers/contexts").is_dir(), "the user's registry");
    assert!(!runtime.join(format!("vservers/contexts/{n}")).exists(), "released at the end");

    // Positive control: the same user on the host sees and signals the other window.
    let o = as_nobody(&["sh", "-c", &script], &[]).output().unwrap();
    let (stdout, _) = out(&o);
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    assert_eq!(lines[0], NOBODY.to_string());
    assert!(lines[1].parse::<u32>().unwrap() > 5, "{stdout}");
    assert_eq!(lines[3], "kill=ok", "{stdout}");

    // Entering a context stays root's, said plainly.
    let o = as_nobody(&[bin("chcontext").to_str().unwrap(), "--ctx", &n.to_string(), "--", "true"], &[("XDG_RUNTIME_DIR", xdg)]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).1.contains("--ctx) needs root"), "{:?}", out(&o));
}

#[test]
fn an_ordinary_users_reducecap_leaves_setuid_programs_powerless() {
    require_root!();
    let t = TestDir::new("user-reducecap");
    let dir = t.path.join("open");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&t.path, fs::Permissions::from_mode(0o711)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let suid = dir.join("probe");
    fs::copy(probe(), &suid).unwrap();
    fs::set_permissions(&suid, fs::Permissions::from_mode(0o4755)).unwrap();
    let suid = suid.to_str().unwrap();

    // Positive control: run plainly, the setuid-root probe is root (effective).
    let r = Report::parse(&out(&as_nobody(&[suid, "report"], &[]).output().unwrap()).0);
    assert_eq!((r.get("Uid"), r.get("NoNewPrivs")), ("65534\t0\t0\t0", "0"));
    // Under reducecap: no_new_privs, the setuid bit gives nothing.
    let o = as_nobody(&[bin("reducecap").to_str().unwrap(), "--", suid, "report"], &[]).output().unwrap();
    assert!(o.status.success(), "{:?}", out(&o));
    let r = Report::parse(&out(&o).0);
    assert_eq!((r.get("Uid"), r.get("NoNewPrivs")), ("65534\t65534\t65534\t65534", "1"));
    // As root reducecap still cuts the bounding set (and sets nothing else).
    let o = Command::new(bin("reducecap")).args(["--cap", "!NET_ADMIN", "--", suid, "report"]).output().unwrap();
    let r = Report::parse(&out(&o).0);
    assert_eq!(r.hex("CapBnd") & (1 << 12), 0, "NET_ADMIN out of the bounding set");
    assert_eq!(r.get("NoNewPrivs"), "0");
}

/// A line of the test's own in `/etc/subuid` and `/etc/subgid` (files made when missing),
/// taken out again on drop, also when the test fails.
struct SubIds {
    line: String,
    made: Vec<&'static str>,
}

impl SubIds {
    fn add(line: &str) -> SubIds {
        let mut made = Vec::new();
        for f in ["/etc/subuid", "/etc/subgid"] {
            let old = fs::read_to_string(f).unwrap_or_else(|_| {
                made.push(f);
                String::new()
            });
            fs::write(f, format!("{old}{line}\n")).unwrap();
        }
        SubIds { line: line.to_string(), made }
    }
}

impl Drop for SubIds {
    fn drop(&mut self) {
        for f in ["/etc/subuid", "/etc/subgid"] {
            if self.made.contains(&f) {
                let _ = fs::remove_file(f);
                continue;
            }
            if let Ok(text) = fs::read_to_string(f) {
                let kept: String = text.lines().filter(|l| *l != self.line).map(|l| format!("{l}\n")).collect();
                let _ = fs::write(f, kept);
            }
        }
    }
}

#[test]
fn an_ordinary_user_with_subordinate_ids_gets_them_inside() {
    require_root!();
    if !std::path::Path::new("/usr/bin/newuidmap").exists() {
        eprintln!("no newuidmap (package uidmap): not tried");
        return;
    }
    let name = fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.get(2) == Some(&"65534")).then(|| f[0].to_string())
        })
        .expect("a user 65534 in /etc/passwd");
    let t = TestDir::new("user-subids");
    let runtime = users_dir(&t, "xdg");
    let base = 0x6000_0000u32 + (std::process::id() % 1024) * 65536;
    let ids = SubIds::add(&format!("{name}:{base}:65536"));
    let script = "cat /proc/self/uid_map /proc/self/gid_map; id -u; touch /tmp/x && chown 1000:1000 /tmp/x && stat -c %u /tmp/x; rm -f /tmp/x";
    // The root is the host's (chcontext keeps it): /tmp of the host, written as the user.
    let o = as_nobody(&[bin("chcontext").to_str().unwrap(), "--silent", "--", "sh", "-c", script], &[("XDG_RUNTIME_DIR", runtime.to_str().unwrap())])
        .output()
        .unwrap();
    drop(ids);
    let (stdout, stderr) = out(&o);
    assert!(o.status.success(), "{stderr}");
    let rows: Vec<Vec<&str>> = stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    let (b, n) = (base.to_string(), "65536".to_string());
    assert_eq!(rows[0], ["0", "65534", "1"], "the user is root inside: {stdout}");
    assert_eq!(rows[1], ["1", b.as_str(), n.as_str()], "its subordinate uids are 1..=65536 inside: {stdout}");
    assert_eq!(rows[2], ["0", "65534", "1"], "{stdout}");
    assert_eq!(rows[3], ["1", b.as_str(), n.as_str()], "and its subordinate gids: {stdout}");
    assert_eq!(rows[4], ["0"]);
    assert_eq!(rows[5], ["1000"], "root inside gives a file to a user of its own: {stdout}");
}
