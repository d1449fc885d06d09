//! The paper's tools, as its section 2.6.1 walks through them: `chcontext` hides the host's
//! processes, nests, and leaving it restores the earlier view; it refuses user namespaces unless
//! `--flag nest`; `reducecap --secure` takes the power to reconfigure the network away from root.
//!
//! Runs the host's own `sh`, `ps` and `pstree` (chcontext keeps the root). Needs root.

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

fn bin(name: &str) -> PathBuf {
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|d| d.parent()).expect("target dir");
    let p = dir.join(name);
    assert!(p.exists(), "{} not built: run `cargo build --workspace --bins` first", p.display());
    p
}

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipped: needs root");
    false
}

fn run_dir() -> tempdir::Dir {
    tempdir::Dir::new("paper-tools")
}

mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p = std::env::temp_dir().join(format!("vserver-e2e-{tag}-{}-{n}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A host process that the test ends itself, also on failure.
struct HostSleep(Child);

impl HostSleep {
    fn start() -> HostSleep {
        HostSleep(Command::new("sleep").arg("300").spawn().expect("sleep"))
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for HostSleep {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chcontext(run_dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(bin("chcontext"))
        .args(args)
        .env("VSERVER_RUN_DIR", run_dir)
        .stdin(Stdio::null())
        .output()
        .expect("run chcontext")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn new_context_hides_the_host_and_announces_its_number() {
    if !is_root() {
        return;
    }
    let rd = run_dir();
    let host = HostSleep::start();
    let script = format!(
        "ps -e -o pid= | wc -l; pstree -p | head -5; kill -0 {pid} 2>/dev/null && echo kill=ok || echo kill=failed",
        pid = host.pid()
    );
    let out = chcontext(&rd.0, &["--", "sh", "-c", &script]);
    assert!(out.status.success(), "chcontext failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = text(&out);
    let mut lines = stdout.lines();
    let count: usize = lines.next().unwrap().trim().parse().expect("a process count");
    // vserver-init, sh, ps and wc: nothing of the host.
    assert!(count <= 5, "a new context should see almost nothing, saw {count} processes:\n{stdout}");
    assert!(!stdout.contains("sleep"), "the host's sleep is visible inside:\n{stdout}");
    assert!(stdout.contains("kill=failed"), "kill of a host process must fail inside:\n{stdout}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("New security context is "), "no announcement: {stderr}");

    // Positive control: the same probe on the host sees many processes and can signal the sleep.
    let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
    let stdout = text(&out);
    let count: usize = stdout.lines().next().unwrap().trim().parse().unwrap();
    assert!(count > 5, "the host should see more processes than a new context: {count}");
    assert!(stdout.contains("kill=ok"), "the probe cannot signal on the host either:\n{stdout}");
}

#[test]
fn nested_context_isolates_again_and_leaving_restores_the_view() {
    if !is_root() {
        return;
    }
    let rd = run_dir();
    let inner = format!("{} --silent -- sh -c 'ps -e -o pid=,args='", bin("chcontext").display());
    // Section markers are computed by the shell so that they never appear in a process's args.
    let script = format!(
        "sleep 300 & outer=$!; echo \"@@$((1))outer\"; ps -e -o pid=,args=; echo \"@@$((1))inner\"; {inner}; echo \"@@$((1))back\"; ps -e -o pid=,args=; kill $outer"
    );
    let out = chcontext(&rd.0, &["--silent", "--", "sh", "-c", &script]);
    assert!(out.status.success(), "chcontext failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = text(&out);
    let section = |name: &str| -> String {
        let marker = format!("@@1{name}\n");
        let start = stdout.find(&marker).unwrap_or_else(|| panic!("no {marker} in:\n{stdout}")) + marker.len();
        let rest = &stdout[start..];
        rest[..rest.find("@@1").unwrap_or(rest.len())].to_string()
    };
    let outer = section("outer");
    let inner_view = section("inner");
    let back = section("back");
    assert!(outer.contains("sleep 300"), "the outer context sees its own sleep:\n{outer}");
    assert!(!inner_view.contains("sleep 300"), "a nested context must not see the outer context's sleep:\n{inner_view}");
    assert!(back.contains("sleep 300"), "leaving the nested context restores the outer view:\n{back}");
}

#[test]
fn enter_an_existing_context_and_private_refuses() {
    if !is_root() {
        return;
    }
    let rd = run_dir();
    let mark = rd.0.join("ready");
    // A context that lives while the test needs it, then ends by itself.
    let mut ctx = Command::new(bin("chcontext"))
        .args(["--hostname", "joinme", "--", "sh", "-c"])
        .arg(format!("touch {}; sleep 30", mark.display()))
        .env("VSERVER_RUN_DIR", &rd.0)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    /// Ends the chcontext process and, by pid, every context it registered.
    struct Kill<'a>(&'a mut Child, &'a std::path::Path);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            for n in registered(self.1) {
                if let Some(e) = vserver_engine::registry::lookup(self.1, n) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(e.pid), nix::sys::signal::Signal::SIGKILL);
                }
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    fn registered(run_dir: &std::path::Path) -> Vec<u32> {
        vserver_engine::registry::list(run_dir).into_iter().map(|e| e.context).collect()
    }
    let guard = Kill(&mut ctx, &rd.0);
    for _ in 0..200 {
        if mark.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let n = *registered(&rd.0).first().expect("a registered context");
    let out = chcontext(&rd.0, &["--ctx", &n.to_string(), "--", "sh", "-c", "hostname; ps -e -o args="]);
    assert!(out.status.success(), "join failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = text(&out);
    assert!(stdout.starts_with("joinme\n"), "joined the wrong UTS namespace:\n{stdout}");
    assert!(stdout.contains("sleep 30"), "the joined context's processes are not visible:\n{stdout}");
    drop(guard);

    let out = chcontext(&rd.0, &["--ctx", "65000", "--", "true"]);
    assert!(!out.status.success(), "joining a context that does not exist must fail");

    // A private context refuses to be entered.
    let mark2 = rd.0.join("ready2");
    let mut pctx = Command::new(bin("chcontext"))
        .args(["--flag", "private", "--", "sh", "-c"])
        .arg(format!("touch {}; sleep 30", mark2.display()))
        .env("VSERVER_RUN_DIR", &rd.0)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let guard = Kill(&mut pctx, &rd.0);
    for _ in 0..200 {
        if mark2.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let n = *registered(&rd.0).first().expect("the private context is registered");
    let out = chcontext(&rd.0, &["--ctx", &n.to_string(), "--", "true"]);
    assert!(!out.status.success(), "a private context must refuse to be entered");
    assert!(String::from_utf8_lossy(&out.stderr).contains("private"), "{}", String::from_utf8_lossy(&out.stderr));
    drop(guard);
}

#[test]
fn a_new_context_refuses_user_namespaces_unless_nest() {
    if !is_root() {
        return;
    }
    let rd = run_dir();
    let host = Command::new("unshare").args(["--user", "true"]).output().unwrap();
    assert!(host.status.success(), "control: the host makes a user namespace: {}", String::from_utf8_lossy(&host.stderr));
    // chcontext gives its context a vserver's filter: no user namespace by default, even to
    // root holding every capability (no --secure here).
    let out = chcontext(&rd.0, &["--silent", "--", "unshare", "--user", "true"]);
    assert!(!out.status.success(), "unshare --user inside a new context must fail");
    assert!(String::from_utf8_lossy(&out.stderr).contains("Operation not permitted"), "{}", String::from_utf8_lossy(&out.stderr));
    // The positive control: the same command with --flag nest.
    let out = chcontext(&rd.0, &["--silent", "--flag", "nest", "--", "unshare", "--user", "true"]);
    assert!(out.status.success(), "with --flag nest: {}", String::from_utf8_lossy(&out.stderr));
    let out = chcontext(&rd.0, &["--flag", "lock", "--flag", "nest", "--", "true"]);
    assert_eq!(out.status.code(), Some(2), "lock and nest together are a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("exclude each other"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn reducecap_secure_denies_network_configuration_even_to_root() {
    if !is_root() {
        return;
    }
    // Both runs happen in a fresh network namespace of their own: the host's `lo` is never touched.
    let positive = Command::new("unshare").args(["--net", "sh", "-c", "ip link set lo down"]).output().unwrap();
    assert!(positive.status.success(), "control: root can set lo down without reducecap: {}", String::from_utf8_lossy(&positive.stderr));

    let reduced = Command::new("unshare")
        .args(["--net"])
        .arg(bin("reducecap"))
        .args(["--secure", "--", "sh", "-c", "ip link set lo down"])
        .output()
        .unwrap();
    assert!(!reduced.status.success(), "reducecap --secure must deny ip link set");

    // Not even a setuid-root program gets the capability back: the bounding set is the ceiling.
    let shown = Command::new(bin("reducecap")).args(["--secure", "--cap", "!SYS_CHROOT", "--show"]).output().unwrap();
    let s = text(&shown);
    let bnd = s.lines().find(|l| l.starts_with("CapBnd:")).expect("CapBnd line");
    assert!(!bnd.contains("NET_ADMIN") && !bnd.contains("SYS_ADMIN") && !bnd.contains("SYS_CHROOT"), "{bnd}");
    assert!(bnd.contains("CHOWN") && bnd.contains("KILL"), "{bnd}");
}
