//! Shared by the build_* tests: a busybox template tree, running `vserverctl` with the test's
//! directories, and a byte-for-byte picture of a tree.

#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use vserver_e2e::daemon::{bin, TestDaemon};

/// Applets of the template's busybox.
pub const APPLETS: &[&str] = &[
    "sh", "cat", "echo", "ls", "sleep", "rm", "chmod", "stat", "mkdir", "touch", "hostname", "test", "true", "false",
    "printf", "id", "init",
];

/// A busybox root tree at `dir`: /bin/busybox and applets, /sbin/init, /hello (0644),
/// /etc/deleteme, /etc/chmodme (0644), a setuid file, a hard link and a fifo.
pub fn busybox_tree(dir: &Path) {
    for d in ["bin", "sbin", "etc", "tmp", "proc", "sys", "dev"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::set_permissions(dir.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();
    fs::copy(vserver_e2e::busybox(), dir.join("bin/busybox")).unwrap();
    fs::set_permissions(dir.join("bin/busybox"), fs::Permissions::from_mode(0o755)).unwrap();
    for a in APPLETS {
        symlink("busybox", dir.join("bin").join(a)).unwrap();
    }
    symlink("../bin/busybox", dir.join("sbin/init")).unwrap();
    for (p, text, mode) in [("hello", "hello\n", 0o644), ("etc/deleteme", "delete me\n", 0o644), ("etc/chmodme", "chmod me\n", 0o644), ("etc/suid", "s\n", 0o4755)] {
        fs::write(dir.join(p), text).unwrap();
        fs::set_permissions(dir.join(p), fs::Permissions::from_mode(mode)).unwrap();
    }
    std::os::unix::fs::chown(dir.join("etc/chmodme"), Some(1000), Some(1000)).unwrap();
    fs::hard_link(dir.join("hello"), dir.join("etc/hello-link")).unwrap();
    let fifo = std::ffi::CString::new(dir.join("etc/fifo").as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
}

/// `vserverctl ARGS --config-dir … --root-base … --run-dir …` (the file verbs), on the
/// daemon's bus; 120 s at most.
pub fn ctl(d: &TestDaemon, args: &[&str]) -> Output {
    let mut full: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    for (flag, dir) in [("--config-dir", &d.config_dir), ("--root-base", &d.root_base), ("--run-dir", &d.run_dir)] {
        full.push(flag.into());
        full.push(dir.display().to_string());
    }
    if let Some(t) = d.template_dir.as_ref().filter(|_| matches!(args.first(), Some(&"build") | Some(&"template") | Some(&"du"))) {
        full.push("--template-dir".into());
        full.push(t.display().to_string());
    }
    run(Command::new(bin("vserverctl")).args(&full).env("DBUS_SYSTEM_BUS_ADDRESS", &d.address), Duration::from_secs(120))
}

/// `vserverctl ARGS` as is, on the daemon's bus.
pub fn ctl_plain(d: &TestDaemon, args: &[&str]) -> Output {
    run(Command::new(bin("vserverctl")).args(args).env("DBUS_SYSTEM_BUS_ADDRESS", &d.address), Duration::from_secs(60))
}

/// Runs `cmd` (stdin closed), killed after `limit`.
pub fn run(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run vserverctl");
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

pub fn ok(out: &Output) -> String {
    assert!(out.status.success(), "vserverctl failed ({}):\nstdout: {}\nstderr: {}", out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "vserverctl should have failed:\nstdout: {}\nstderr: {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every entry under `dir`: path, type and mode, owner, size, contents or link target, device.
pub fn picture(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let mut entries: Vec<PathBuf> = fs::read_dir(&d).unwrap().flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let md = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            let what = if md.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else if md.is_file() {
                let data = fs::read(&p).unwrap();
                format!("{} bytes {:x}", data.len(), data.iter().fold(0u64, |h, b| h.wrapping_mul(1099511628211) ^ *b as u64))
            } else {
                format!("rdev {}", md.rdev())
            };
            out.push(format!("{rel} {:o} {}:{} {what}", md.mode(), md.uid(), md.gid()));
            if md.is_dir() {
                stack.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The (dev, ino) of a path, to see hard links kept.
pub fn ino(p: &Path) -> (u64, u64) {
    let md = fs::symlink_metadata(p).unwrap();
    (md.dev(), md.ino())
}

/// A drop-in giving vserver `name` an rc start command (a reaper as pid 1 keeps it up).
pub fn init_dropin(d: &TestDaemon, name: &str, script: &str) {
    let dir = d.config_dir.join(format!("{name}.toml.d"));
    fs::create_dir_all(&dir).unwrap();
    let script = script.replace('\\', "\\\\").replace('"', "\\\"");
    fs::write(dir.join("init.toml"), format!("[init]\ncommand = [\"/bin/sh\", \"-c\", \"{script}\"]\nstop = [\"/bin/true\"]\nstop_timeout = 2\n")).unwrap();
}

/// Waits (10 s at most) for `p` to exist.
pub fn wait_for(p: &Path) {
    let t0 = Instant::now();
    while !p.exists() {
        assert!(t0.elapsed() < Duration::from_secs(10), "{} did not appear", p.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (10 s at most) for `p` to hold some text, and returns it (a shell's `>` makes the file
/// before it writes it).
pub fn wait_for_text(p: &Path) -> String {
    let t0 = Instant::now();
    loop {
        if let Ok(text) = fs::read_to_string(p) {
            if !text.is_empty() {
                return text;
            }
        }
        assert!(t0.elapsed() < Duration::from_secs(10), "{} got no text", p.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}
