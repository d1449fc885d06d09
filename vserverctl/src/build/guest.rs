//! What a new root needs to boot cleanly as a guest of its own: its host name, a machine id of
//! its own (a copied or debootstrapped root carries its source's, and two systems with one id
//! confuse journald, D-Bus and DHCP), `/etc/hosts`, and for sysvinit an inittab whose getty
//! runs on the console (a vserver has no virtual terminals) and whose power-failure entry halts
//! the guest: SIGPWR is the signal `vserverctl stop` sends sysvinit (as LXC does).
//!
//! The root may come from an untrusted template: every file is written under `etc/` opened
//! without following a link, to a temporary name then renamed over the target, so a symbolic
//! link planted at `etc/hostname` is replaced, never written through.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::path::Path;

use anyhow::{Context as _, Result};
use vserver_engine::sys;

/// The inittab lines a guest needs: the console getty, halt on a power failure, reboot on
/// Ctrl-Alt-Del (SIGINT).
pub const INITTAB_LINES: &[&str] = &[
    "co:2345:respawn:/sbin/getty --noclear 38400 console",
    "p0::powerfail:/sbin/init 0",
    "p6::ctrlaltdel:/sbin/init 6",
];

/// Prepares the root at `root` (a directory on the host) for `hostname`. Files that the root
/// lacks are left alone but for `/etc/hostname` and `/etc/hosts`; a root without `/etc` is
/// left alone.
pub fn prepare(root: &Path, hostname: &str) -> Result<()> {
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    let Ok(rootfd) = sys::openat2(cwd, &root.display().to_string(), libc::O_PATH | libc::O_DIRECTORY, 0, 0) else { return Ok(()) };
    let etc = match sys::open_dir_strict(rootfd.as_fd(), "etc") {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => anyhow::bail!("{}/etc: {} (a symbolic link or not a directory; refused)", root.display(), e.desc()),
    };
    let at = |f: &str| format!("{}/etc/{f}", root.display());
    replace(etc.as_fd(), "hostname", format!("{hostname}\n").as_bytes(), 0o644).with_context(|| at("hostname"))?;
    if !exists(etc.as_fd(), "hosts") {
        let hosts = format!("127.0.0.1\tlocalhost\n127.0.1.1\t{hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n");
        replace(etc.as_fd(), "hosts", hosts.as_bytes(), 0o644).with_context(|| at("hosts"))?;
    }
    if exists(etc.as_fd(), "machine-id") {
        let id = machine_id()?;
        replace(etc.as_fd(), "machine-id", format!("{id}\n").as_bytes(), 0o444).with_context(|| at("machine-id"))?;
        // D-Bus's copy, where it is a file of its own rather than a link to /etc/machine-id.
        if let Ok(dbus) = sys::open_dir_strict(rootfd.as_fd(), "var/lib/dbus") {
            if is_regular(dbus.as_fd(), "machine-id") {
                replace(dbus.as_fd(), "machine-id", format!("{id}\n").as_bytes(), 0o444)
                    .with_context(|| format!("{}/var/lib/dbus/machine-id", root.display()))?;
            }
        }
    }
    if is_regular(etc.as_fd(), "inittab") {
        let old = read(etc.as_fd(), "inittab").with_context(|| at("inittab"))?;
        replace(etc.as_fd(), "inittab", inittab(&old).as_bytes(), 0o644).with_context(|| at("inittab"))?;
    }
    Ok(())
}

/// A sysvinit inittab for a guest: the virtual terminals' gettys and the power entries go,
/// [`INITTAB_LINES`] come in their place (once).
pub fn inittab(old: &str) -> String {
    let mut out: Vec<&str> = old
        .lines()
        .filter(|l| {
            let fields: Vec<&str> = l.splitn(4, ':').collect();
            let getty_on_tty = fields.len() == 4 && fields[2] == "respawn" && fields[3].contains("getty") && fields[3].contains("tty");
            let power = fields.len() == 4 && ["powerwait", "powerfail", "powerfailnow", "powerokwait", "ctrlaltdel"].contains(&fields[2]);
            !(getty_on_tty || power || INITTAB_LINES.contains(l))
        })
        .collect();
    out.push("# vserver: the console getty, halt on SIGPWR (vserverctl stop), reboot on SIGINT.");
    out.extend(INITTAB_LINES);
    out.join("\n") + "\n"
}

/// 128 random bits in the machine-id format: 32 lowercase hex digits.
fn machine_id() -> Result<String> {
    let mut b = [0u8; 16];
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    anyhow::ensure!(n == 16, "getrandom: {}", std::io::Error::last_os_error());
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

fn stat(dir: BorrowedFd<'_>, name: &str) -> Option<libc::stat> {
    let c = CString::new(name).ok()?;
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    (unsafe { libc::fstatat(dir.as_raw_fd(), c.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } == 0).then_some(st)
}

fn exists(dir: BorrowedFd<'_>, name: &str) -> bool {
    stat(dir, name).is_some()
}

fn is_regular(dir: BorrowedFd<'_>, name: &str) -> bool {
    stat(dir, name).is_some_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
}

fn read(dir: BorrowedFd<'_>, name: &str) -> Result<String> {
    let fd = sys::openat2(dir, name, libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK, 0, sys::STRICT)?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::Read::take(std::fs::File::from(fd), 1 << 20), &mut text)?;
    Ok(text)
}

/// Writes `data` to a new file beside `name` in `dir` and renames it over `name`: whatever was
/// there (a link included) is replaced, never followed.
fn replace(dir: BorrowedFd<'_>, name: &str, data: &[u8], mode: u32) -> Result<()> {
    let tmp = format!(".{name}.vserver-{}", std::process::id());
    let (ctmp, cname) = (CString::new(tmp.as_str())?, CString::new(name)?);
    let fd = unsafe {
        libc::openat(dir.as_raw_fd(), ctmp.as_ptr(), libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC, mode)
    };
    anyhow::ensure!(fd >= 0, "creating {tmp}: {}", std::io::Error::last_os_error());
    let mut f = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let written = f.write_all(data).and_then(|_| f.sync_all());
    unsafe { libc::fchmod(f.as_raw_fd(), mode) };
    drop(f);
    let renamed = written.map_err(anyhow::Error::from).and_then(|_| {
        let r = unsafe { libc::renameat(dir.as_raw_fd(), ctmp.as_ptr(), dir.as_raw_fd(), cname.as_ptr()) };
        anyhow::ensure!(r == 0, "renaming {tmp} to {name}: {}", std::io::Error::last_os_error());
        Ok(())
    });
    if renamed.is_err() {
        unsafe { libc::unlinkat(dir.as_raw_fd(), ctmp.as_ptr(), 0) };
    }
    renamed
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEBIAN: &str = "id:2:initdefault:\nsi::sysinit:/etc/init.d/rcS\nl0:0:wait:/etc/init.d/rc 0\n\
        ca:12345:ctrlaltdel:/sbin/shutdown -t1 -a -r now\npf::powerwait:/etc/init.d/powerfail start\n\
        pn::powerfailnow:/etc/init.d/powerfail now\npo::powerokwait:/etc/init.d/powerfail stop\n\
        1:2345:respawn:/sbin/getty --noclear 38400 tty1\n2:23:respawn:/sbin/getty 38400 tty2\n";

    #[test]
    fn inittab_gets_a_console_getty_and_halts_on_sigpwr() {
        let t = inittab(DEBIAN);
        assert!(t.contains("l0:0:wait:/etc/init.d/rc 0\n") && t.starts_with("id:2:initdefault:\n"));
        assert!(!t.contains("tty1") && !t.contains("tty2") && !t.contains("powerfail start") && !t.contains("shutdown -t1"), "{t}");
        for l in INITTAB_LINES {
            assert_eq!(t.matches(l).count(), 1, "{t}");
        }
        // Twice is the same as once.
        assert_eq!(inittab(&t).matches("p0::powerfail").count(), 1);
    }

    #[test]
    fn writes_names_and_ids_and_never_through_a_link() {
        let dir = std::env::temp_dir().join(format!("vserverctl-guest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::create_dir_all(root.join("var/lib/dbus")).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "host file\n").unwrap();
        std::os::unix::fs::symlink(&victim, root.join("etc/hostname")).unwrap();
        std::fs::write(root.join("etc/machine-id"), "45f0eb21866d453586a5954efa409a99\n").unwrap();
        std::fs::write(root.join("var/lib/dbus/machine-id"), "45f0eb21866d453586a5954efa409a99\n").unwrap();
        std::fs::write(root.join("etc/inittab"), DEBIAN).unwrap();
        prepare(&root, "web1").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host file\n", "the link was replaced, not followed");
        assert_eq!(std::fs::read_to_string(root.join("etc/hostname")).unwrap(), "web1\n");
        assert!(std::fs::read_to_string(root.join("etc/hosts")).unwrap().contains("127.0.1.1\tweb1\n"));
        let id = std::fs::read_to_string(root.join("etc/machine-id")).unwrap();
        assert!(id.len() == 33 && id.trim().bytes().all(|b| b.is_ascii_hexdigit()) && id != "45f0eb21866d453586a5954efa409a99\n");
        assert_eq!(std::fs::read_to_string(root.join("var/lib/dbus/machine-id")).unwrap(), id);
        assert!(std::fs::read_to_string(root.join("etc/inittab")).unwrap().contains("p0::powerfail:/sbin/init 0"));
        prepare(&root, "web1").unwrap();
        assert_ne!(std::fs::read_to_string(root.join("etc/machine-id")).unwrap(), id, "a new one each build");
        // A root whose etc is a link is refused.
        let bad = dir.join("bad");
        std::fs::create_dir_all(&bad).unwrap();
        std::os::unix::fs::symlink("/etc", bad.join("etc")).unwrap();
        assert!(prepare(&bad, "x").is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
