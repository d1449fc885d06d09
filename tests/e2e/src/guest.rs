//! Debian guests for the heavy tests: stock Debian 12 roots that boot their own init, and a test
//! LAN to reach them on.
//!
//! A root is made once per run (per machine, while its cache lives) by the project's own
//! `vserverctl build --debootstrap bookworm --variant minbase --init INIT --include
//! nginx-light,openssh-server`, under `target/guest-cache/` (or `$VSERVER_GUEST_CACHE`), with a
//! file lock so that test binaries and threads wait for one build instead of making their own.
//! Tests use it as a template: each vserver is unified (`vserverctl build --unified`), its own
//! files in its own upper layer, the shared root never written.
//!
//! The LAN: a veth pair whose far end (`lan1`, 198.51.100.1/24) lives in a client namespace the
//! test makes; the near end stays in the host's namespace without any address and is the
//! parent of the vservers' macvlan links (their addresses live in their own namespaces). The
//! client's namespace goes with the [`Lan`], and the veth pair with it.

use std::fs::{self, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::daemon::bin;
use crate::workspace_root;

/// Bumped when what a cached root holds changes (its packages, the build's guest set-up).
const CACHE_VERSION: u32 = 2;

/// The packages every test guest has on top of its init.
pub const PACKAGES: &str = "nginx-light,openssh-server";

/// Where cached roots live (`target/guest-cache`).
pub fn cache_dir() -> PathBuf {
    std::env::var_os("VSERVER_GUEST_CACHE").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target/guest-cache"))
}

/// The template directory holding the cached roots (give it to vserverd and vserverctl as
/// `--template-dir`).
pub fn template_dir() -> PathBuf {
    cache_dir().join("templates")
}

/// The name of the template of a Debian 12 guest booting `init` ("systemd" or "sysvinit"),
/// built first if the cache lacks it.
pub fn debian_template(init: &str) -> String {
    let name = format!("bookworm-{init}-v{CACHE_VERSION}");
    let dir = cache_dir();
    fs::create_dir_all(&dir).unwrap();
    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(".lock")).unwrap();
    assert_eq!(unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) }, 0, "lock {}", dir.display());
    let done = dir.join(format!("{name}.done"));
    if !done.exists() {
        let t0 = Instant::now();
        let _ = Command::new("rm").arg("-rf").arg(template_dir().join(&name)).arg(dir.join("etc")).status();
        let out = output(
            Command::new(bin("vserverctl"))
                .args(["build", &name, "--debootstrap", "bookworm", "--variant", "minbase", "--init", init, "--include", PACKAGES])
                .arg("--config-dir")
                .arg(dir.join("etc"))
                .arg("--root-base")
                .arg(template_dir())
                .arg("--run-dir")
                .arg(dir.join("run")),
            Duration::from_secs(900),
        );
        assert!(out.status.success(), "building the {init} guest failed:\n{}", String::from_utf8_lossy(&out.stderr));
        fs::write(&done, format!("built in {:?}\n", t0.elapsed())).unwrap();
    }
    name
}

/// Runs `cmd` (stdin closed) and kills it after `limit`.
pub fn output(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let pid = child.id() as i32;
    let start = Instant::now();
    let watchdog = std::thread::spawn(move || {
        while start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(100));
            if fs::metadata(format!("/proc/{pid}")).is_err() {
                return;
            }
        }
        unsafe { libc::kill(pid, libc::SIGKILL) };
    });
    let out = child.wait_with_output().unwrap();
    drop(watchdog);
    out
}

/// The test LAN (see the module's documentation).
pub struct Lan {
    /// The client's namespace (`ip netns exec CLIENT …`).
    pub client: String,
    /// The near end, in the host's namespace: the vservers' macvlan parent.
    pub device: String,
}

/// The client's address on the LAN.
pub const CLIENT: &str = "198.51.100.1";

impl Lan {
    pub fn new() -> Lan {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let lan = Lan { client: format!("vs-guestlan-{}-{n}", std::process::id()), device: format!("vsg{}x{n}", std::process::id() % 100_000) };
        ip(&["netns", "add", &lan.client]);
        ip(&["link", "add", &lan.device, "type", "veth", "peer", "name", "lan1", "netns", &lan.client]);
        ip(&["-n", &lan.client, "addr", "add", &format!("{CLIENT}/24"), "dev", "lan1"]);
        ip(&["-n", &lan.client, "link", "set", "lan1", "up"]);
        ip(&["-n", &lan.client, "link", "set", "lo", "up"]);
        ip(&["link", "set", &lan.device, "up"]);
        lan
    }

    /// `cmd ARGS` run in the client's namespace.
    pub fn client_cmd(&self, cmd: &str, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.client, cmd]).args(args);
        c
    }

    /// The `[network]` table of a vserver at `addr` (198.51.100.X) on this LAN.
    pub fn network(&self, addr: &str) -> String {
        format!("[network]\nmode = \"macvlan\"\ndevice = \"{}\"\naddresses = [\"{addr}/24\"]\n", self.device)
    }
}

impl Default for Lan {
    fn default() -> Lan {
        Lan::new()
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // The client's end goes with its namespace, and the host's end with it.
        let _ = Command::new("ip").args(["netns", "del", &self.client]).status();
        let _ = Command::new("ip").args(["link", "del", &self.device]).stderr(Stdio::null()).status();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// An ssh key pair for root of a guest: `DIR/id` (private) and the line for authorized_keys.
pub fn ssh_key(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("id");
    let out = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).output().expect("ssh-keygen (openssh-client)");
    assert!(out.status.success(), "ssh-keygen: {}", String::from_utf8_lossy(&out.stderr));
    let public = fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public)
}
