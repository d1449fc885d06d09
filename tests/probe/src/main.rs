//! `vserver-probe`: a static program placed inside a test vserver. It reports what it sees and
//! tries escapes, so the end-to-end tests can check isolation from the inside.
//!
//! # `probe report`
//! Prints one `key=value` pair per line. Single values appear once; lists repeat their key, one
//! line per element, in a stable order (sorted where the source is unordered):
//!
//! | key | value |
//! |---|---|
//! | `hostname`, `domainname` | from uname(2) |
//! | `uid`, `gid`, `pid`, `ppid` | numbers |
//! | `proc` | `PID COMM` for every process in `/proc` (repeated) |
//! | `CapInh` `CapPrm` `CapEff` `CapBnd` `CapAmb` | hex masks as in `/proc/self/status` |
//! | `Seccomp`, `NoNewPrivs` | as in `/proc/self/status` |
//! | `mount` | `MOUNTPOINT FSTYPE ro|rw` per line of `/proc/self/mountinfo` (repeated; octal escapes kept) |
//! | `dev` | `NAME TYPE [MAJOR:MINOR | -> TARGET]` per entry of `/dev`; TYPE is chr, blk, dir, lnk, reg, fifo, sock (repeated) |
//! | `pts` | names in `/dev/pts` (repeated) |
//! | `fd` | `N TARGET` per open descriptor, the probe's own directory handle left out (repeated) |
//! | `env` | `NAME=VALUE` (repeated) |
//! | `net` | `IFNAME up|down` per interface of `/proc/net/dev` (repeated) |
//! | `rlimit_nofile`, `rlimit_nproc`, `rlimit_nice` | `SOFT HARD` (`inf` for unlimited) |
//! | `nice` | getpriority(2) of the probe |
//! | `cwd`, `root` | readlink of `/proc/self/cwd` and `/proc/self/root` |
//! | `root_ino` | `DEV:INO` of `/` |
//!
//! # `probe try ACTION [ARGS]`
//! Performs one action and prints `ok` (exit 0) or `err ERRNONAME ERRNO` (exit 1). Some actions
//! append details after `ok` (`read`: `ok bytes=N`; `chroot_escape`: `ok escaped`). A usage
//! error prints `usage: …` and exits 2.
//!
//! Actions: `kill PID` (signal 0), `ptrace PID` (attach, then detach), `write PATH [DATA]` (open
//! for writing, then write DATA if given: without DATA nothing is written), `read PATH`,
//! `mknod PATH` (block device 8:0, removed again on success), `mount DIR` (tmpfs, unmounted again
//! on success), `init_module`, `finit_module`, `delete_module`, `kexec_load`, `kexec_file_load`,
//! `open_by_handle_at PATH`, `sethostname NAME`, `setdomainname NAME`, `sysctl PATH VALUE`,
//! `tiocsti` (a fresh pty pair made the controlling terminal of a child, which injects a byte into
//! it; `err ENOTTY` if the pty could not be made the controlling terminal), `unshare FLAG` (NEWNS, NEWUTS, NEWIPC, NEWNET, NEWPID, NEWUSER, NEWCGROUP, NEWTIME),
//! `setns [PATH]` (default `/proc/self/ns/uts`), `clone_newns` (raw clone with CLONE_NEWNS),
//! `clone FLAG` (raw clone with that namespace flag, a child that exits at once), `clone3 [FLAG]`,
//! `keyctl`, `bpf`, `perf_event_open`, `userfaultfd`, `setpriority N`,
//! `nice_below N` (setpriority to N-1), `socket_raw`, `socket_packet`, `chroot_escape MARKER`
//! (the double-chroot escape; `ok escaped` when MARKER is visible afterwards, else the error of
//! the failing step, typically `err ENOENT 2` from looking for MARKER), `reboot restart|halt|poweroff`,
//! `compat32 keyctl|userfaultfd|unshare|unshare_user|tiocsti` (the same calls through the 32-bit `int 0x80` entry,
//! which a filter written for x86_64 numbers alone would miss), `bind ADDR [PORT]` (a TCP socket
//! bound to ADDR, port 0 by default), `connect ADDR PORT [TIMEOUT_MS]` (a TCP connection, default
//! timeout 2000 ms; `ok REPLY` with the first line the server sent), `notify PATH MESSAGE [SECONDS]`
//! (one datagram to the unix socket PATH, as sd_notify sends; then sleeps SECONDS, 0 by default,
//! so that the sender can stay a vserver's pid 1).
//!
//! # `probe serve TEXT ADDR PORT [ADDR PORT…]`
//! Listens on every ADDR:PORT (TCP; IPv6 sockets are IPv6-only, so `0.0.0.0 80 :: 80` is two
//! listeners), prints `listening` once all are bound (or `err ERRNONAME ERRNO ADDR PORT` and
//! exits 1), then answers each connection with the line TEXT and closes it, forever.

use std::ffi::{CStr, CString};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

mod peer;

type Res = Result<String, i32>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("report") => report(),
        Some("race") if args.len() >= 2 => race(&args[1..]),
        Some("serve") if args.len() >= 4 => serve(&args[1], &args[2..]),
        Some("serve-peer") if args.len() >= 5 => peer::serve(&args[1], &args[2], &args[3], &args[4]),
        Some("serve-abstract") if args.len() >= 3 => peer::serve_abstract(&args[1], &args[2]),
        Some("try") if args.len() >= 2 => {
            let rest: Vec<&str> = args[2..].iter().map(String::as_str).collect();
            match act(&args[1], &rest) {
                Some(Ok(extra)) => {
                    if extra.is_empty() {
                        println!("ok");
                    } else {
                        println!("ok {extra}");
                    }
                    std::process::exit(0);
                }
                Some(Err(e)) => {
                    println!("err {} {}", errno_name(e), e);
                    std::process::exit(1);
                }
                None => usage(),
            }
        }
        _ => usage(),
    }
}

fn usage() -> ! {
    println!("usage: probe report | probe try ACTION [ARGS]");
    std::process::exit(2);
}

// ----------------------------------------------------------------------------------------------
// report

fn kv(k: &str, v: impl std::fmt::Display) {
    println!("{k}={v}");
}

fn report() {
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    unsafe { libc::uname(&mut u) };
    kv("hostname", cfield(&u.nodename));
    kv("domainname", cfield(&u.domainname));
    kv("uid", unsafe { libc::getuid() });
    kv("gid", unsafe { libc::getgid() });
    kv("pid", std::process::id());
    kv("ppid", unsafe { libc::getppid() });
    report_procs();
    report_status();
    report_mounts();
    report_dev();
    report_fds();
    for (k, v) in std::env::vars_os() {
        kv("env", format!("{}={}", k.to_string_lossy(), v.to_string_lossy()));
    }
    report_net();
    for (name, res) in [("nofile", libc::RLIMIT_NOFILE), ("nproc", libc::RLIMIT_NPROC), ("nice", libc::RLIMIT_NICE)] {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        unsafe { libc::getrlimit(res, &mut r) };
        kv(&format!("rlimit_{name}"), format!("{} {}", lim(r.rlim_cur), lim(r.rlim_max)));
    }
    unsafe { *libc::__errno_location() = 0 };
    kv("nice", unsafe { libc::getpriority(libc::PRIO_PROCESS, 0) });
    kv("cwd", link("/proc/self/cwd"));
    kv("root", link("/proc/self/root"));
    match fs::metadata("/") {
        Ok(m) => kv("root_ino", format!("{}:{}", m.dev(), m.ino())),
        Err(e) => kv("root_ino", format!("error {e}")),
    }
}

fn cfield(f: &[libc::c_char]) -> String {
    unsafe { CStr::from_ptr(f.as_ptr()) }.to_string_lossy().into_owned()
}

fn lim(v: libc::rlim_t) -> String {
    if v == libc::RLIM_INFINITY {
        "inf".into()
    } else {
        v.to_string()
    }
}

fn link(p: &str) -> String {
    fs::read_link(p).map(|t| t.display().to_string()).unwrap_or_else(|e| format!("error {e}"))
}

fn report_procs() {
    let mut pids: Vec<u32> = fs::read_dir("/proc")
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    pids.sort();
    for pid in pids {
        let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        kv("proc", format!("{pid} {}", comm.trim_end()));
    }
}

fn report_status() {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    for line in status.lines() {
        if let Some((k, v)) = line.split_once(':') {
            if ["Uid", "Gid", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "Seccomp", "NoNewPrivs"].contains(&k) {
                kv(k, v.trim());
            }
        }
    }
}

fn report_mounts() {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for line in info.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else { continue };
        if f.len() < 6 || sep + 1 >= f.len() {
            continue;
        }
        let ro = if f[5].split(',').any(|o| o == "ro") { "ro" } else { "rw" };
        kv("mount", format!("{} {} {ro}", f[4], f[sep + 1]));
    }
}

fn report_dev() {
    let mut names: Vec<String> = fs::read_dir("/dev")
        .map(|rd| rd.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned())).collect())
        .unwrap_or_default();
    names.sort();
    for name in names {
        let p = format!("/dev/{name}");
        let Ok(m) = fs::symlink_metadata(&p) else { continue };
        let t = m.file_type();
        let rdev = || format!("{}:{}", libc::major(m.rdev()), libc::minor(m.rdev()));
        let desc = if t.is_char_device() {
            format!("chr {}", rdev())
        } else if t.is_block_device() {
            format!("blk {}", rdev())
        } else if t.is_symlink() {
            format!("lnk -> {}", link(&p))
        } else if t.is_dir() {
            "dir".into()
        } else if t.is_fifo() {
            "fifo".into()
        } else if t.is_socket() {
            "sock".into()
        } else {
            "reg".into()
        };
        kv("dev", format!("{name} {desc}"));
    }
    let mut pts: Vec<String> = fs::read_dir("/dev/pts")
        .map(|rd| rd.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned())).collect())
        .unwrap_or_default();
    pts.sort();
    for p in pts {
        kv("pts", p);
    }
}

/// Open descriptors, read with a raw directory stream so that its own descriptor is known and
/// left out.
fn report_fds() {
    let dir = unsafe { libc::opendir(c"/proc/self/fd".as_ptr()) };
    if dir.is_null() {
        kv("fd", format!("error {}", errno()));
        return;
    }
    let own = unsafe { libc::dirfd(dir) };
    let mut fds = Vec::new();
    loop {
        let ent = unsafe { libc::readdir(dir) };
        if ent.is_null() {
            break;
        }
        let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) }.to_string_lossy().into_owned();
        if let Ok(n) = name.parse::<i32>() {
            if n != own {
                fds.push(n);
            }
        }
    }
    let mut out = Vec::new();
    for n in &fds {
        out.push((*n, link(&format!("/proc/self/fd/{n}"))));
    }
    unsafe { libc::closedir(dir) };
    out.sort();
    for (n, t) in out {
        kv("fd", format!("{n} {t}"));
    }
}

fn report_net() {
    let dev = fs::read_to_string("/proc/net/dev").unwrap_or_default();
    let sock = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    for line in dev.lines().skip(2) {
        let Some((name, _)) = line.split_once(':') else { continue };
        let name = name.trim();
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        for (i, b) in name.bytes().take(libc::IFNAMSIZ - 1).enumerate() {
            req.ifr_name[i] = b as libc::c_char;
        }
        let up = sock >= 0
            && unsafe { libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) } == 0
            && unsafe { req.ifr_ifru.ifru_flags } as i32 & libc::IFF_UP != 0;
        kv("net", format!("{name} {}", if up { "up" } else { "down" }));
    }
    if sock >= 0 {
        unsafe { libc::close(sock) };
    }
}

// ----------------------------------------------------------------------------------------------
// try

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `Ok("")` when `ret` is not negative, else the errno.
fn check(ret: i64) -> Res {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(String::new())
    }
}

fn cs(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

fn num<T: std::str::FromStr>(s: Option<&&str>) -> Option<T> {
    s?.parse().ok()
}

/// Dispatches one action; `None` means a usage error.
fn act(action: &str, a: &[&str]) -> Option<Res> {
    let arg = |i: usize| a.get(i).copied();
    Some(match action {
        "kill" => try_kill(num(a.first())?),
        "ptrace" => try_ptrace(num(a.first())?),
        "write" => try_write(arg(0)?, arg(1)),
        "read" => try_read(arg(0)?),
        "mknod" => try_mknod(arg(0)?),
        "mount" => try_mount(arg(0)?),
        "init_module" => try_init_module(),
        "finit_module" => try_finit_module(),
        "delete_module" => try_delete_module(),
        "kexec_load" => try_kexec_load(),
        "kexec_file_load" => try_kexec_file_load(),
        "open_by_handle_at" => try_open_by_handle_at(arg(0)?),
        "sethostname" => try_sethostname(arg(0)?),
        "setdomainname" => try_setdomainname(arg(0)?),
        "sysctl" => try_write(arg(0)?, Some(arg(1)?)),
        "tiocsti" => try_tiocsti(false),
        "unshare" => try_unshare(ns_flag(arg(0)?)?),
        "setns" => try_setns(arg(0).unwrap_or("/proc/self/ns/uts")),
        "clone_newns" => try_clone_newns(),
        "clone" => try_clone(ns_flag(arg(0)?)?),
        "clone3" => try_clone3(match arg(0) {
            Some(f) => ns_flag(f)?,
            None => 0,
        }),
        "keyctl" => try_keyctl(),
        "bpf" => try_bpf(),
        "perf_event_open" => try_perf_event_open(),
        "userfaultfd" => try_userfaultfd(),
        "setpriority" => try_setpriority(num(a.first())?),
        "nice_below" => try_setpriority(num::<i32>(a.first())? - 1),
        "socket_raw" => try_socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP),
        "socket_packet" => try_socket(libc::AF_PACKET, libc::SOCK_RAW, (libc::ETH_P_ALL as u16).to_be() as i32),
        "bind" => try_bind(arg(0)?.parse().ok()?, num(a.get(1)).unwrap_or(0)),
        "connect" => try_connect(arg(0)?.parse().ok()?, num(a.get(1))?, num(a.get(2)).unwrap_or(2000)),
        "udp" => peer::try_udp(arg(0)?.parse().ok()?, num(a.get(1))?, num(a.get(2)).unwrap_or(2000)),
        "abstract" => peer::try_abstract(arg(0)?),
        "names" => peer::try_names(arg(0)?.parse().ok()?, num(a.get(1))?),
        "bound" => peer::try_bound(arg(0)?.parse().ok()?, num(a.get(1))?),
        "chroot_escape" => try_chroot_escape(arg(0)?),
        "reboot" => try_reboot(arg(0)?)?,
        "compat32" => try_compat32(arg(0)?)?,
        "unix_request" => try_unix_request(arg(0)?, arg(1)?),
        "notify" => try_notify(arg(0)?, arg(1)?, num(a.get(2)).unwrap_or(0)),
        _ => return None,
    })
}

fn try_kill(pid: i32) -> Res {
    check(unsafe { libc::kill(pid, 0) } as i64)
}

fn try_ptrace(pid: i32) -> Res {
    check(unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) })?;
    let mut st = 0;
    unsafe { libc::waitpid(pid, &mut st, libc::__WALL) };
    check(unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) })
}

fn try_write(path: &str, data: Option<&str>) -> Res {
    let fd = unsafe { libc::open(cs(path).as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    check(fd as i64)?;
    let r = match data {
        Some(d) => check(unsafe { libc::write(fd, d.as_ptr() as *const _, d.len()) } as i64),
        None => Ok(String::new()),
    };
    unsafe { libc::close(fd) };
    r
}

fn try_read(path: &str) -> Res {
    let fd = unsafe { libc::open(cs(path).as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    check(fd as i64)?;
    let mut total = 0usize;
    let mut buf = [0u8; 4096];
    let r = loop {
        let n = unsafe { libc::read(fd, buf.as_mut_ptr() as *mut _, buf.len()) };
        if n < 0 {
            break Err(errno());
        }
        if n == 0 || total > 1 << 20 {
            break Ok(format!("bytes={total}"));
        }
        total += n as usize;
    };
    unsafe { libc::close(fd) };
    r
}

fn try_mknod(path: &str) -> Res {
    let p = cs(path);
    check(unsafe { libc::mknod(p.as_ptr(), libc::S_IFBLK | 0o600, libc::makedev(8, 0)) } as i64)?;
    unsafe { libc::unlink(p.as_ptr()) };
    Ok(String::new())
}

fn try_mount(dir: &str) -> Res {
    let d = cs(dir);
    check(unsafe { libc::mount(c"tmpfs".as_ptr(), d.as_ptr(), c"tmpfs".as_ptr(), 0, std::ptr::null()) } as i64)?;
    unsafe { libc::umount2(d.as_ptr(), libc::MNT_DETACH) };
    Ok(String::new())
}

fn try_init_module() -> Res {
    check(unsafe { libc::syscall(libc::SYS_init_module, std::ptr::null::<u8>(), 0usize, c"".as_ptr()) })
}

fn try_finit_module() -> Res {
    check(unsafe { libc::syscall(libc::SYS_finit_module, -1, c"".as_ptr(), 0) })
}

fn try_delete_module() -> Res {
    check(unsafe { libc::syscall(libc::SYS_delete_module, c"vserver_probe_none".as_ptr(), libc::O_NONBLOCK) })
}

fn try_kexec_load() -> Res {
    check(unsafe { libc::syscall(libc::SYS_kexec_load, 0usize, 0usize, std::ptr::null::<u8>(), 0usize) })
}

fn try_kexec_file_load() -> Res {
    check(unsafe { libc::syscall(libc::SYS_kexec_file_load, -1, -1, 0usize, c"".as_ptr(), 0usize) })
}

/// name_to_handle_at on PATH, then open_by_handle_at with PATH itself as the mount descriptor.
fn try_open_by_handle_at(path: &str) -> Res {
    let p = cs(path);
    // struct file_handle { u32 handle_bytes; i32 handle_type; u8 f_handle[]; }
    let mut buf = [0u64; 17];
    buf[0] = 128; // handle_bytes (low half; handle_type zero)
    let mut mount_id: i32 = 0;
    check(unsafe {
        libc::syscall(libc::SYS_name_to_handle_at, libc::AT_FDCWD, p.as_ptr(), buf.as_mut_ptr(), &mut mount_id, 0)
    })?;
    let mfd = unsafe { libc::open(p.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    check(mfd as i64)?;
    let r = unsafe { libc::syscall(libc::SYS_open_by_handle_at, mfd, buf.as_mut_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    let e = errno();
    unsafe { libc::close(mfd) };
    if r < 0 {
        return Err(e);
    }
    unsafe { libc::close(r as i32) };
    Ok(String::new())
}

fn try_sethostname(name: &str) -> Res {
    check(unsafe { libc::sethostname(name.as_ptr() as *const _, name.len()) } as i64)
}

fn try_setdomainname(name: &str) -> Res {
    check(unsafe { libc::setdomainname(name.as_ptr() as *const _, name.len()) } as i64)
}

/// TIOCSTI on a fresh pty pair: a child starts a session, makes the slave its controlling
/// terminal and injects one byte; its exit code carries the errno.
fn try_tiocsti(compat: bool) -> Res {
    let pid = unsafe { libc::fork() };
    check(pid as i64)?;
    if pid == 0 {
        let code = unsafe {
            libc::setsid();
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY);
            if m < 0 || libc::grantpt(m) != 0 || libc::unlockpt(m) != 0 {
                libc::_exit(errno().clamp(1, 255));
            }
            let name = libc::ptsname(m);
            if name.is_null() {
                libc::_exit(errno().clamp(1, 255));
            }
            let s = libc::open(name, libc::O_RDWR);
            if s < 0 {
                libc::_exit(errno().clamp(1, 255));
            }
            libc::ioctl(s, libc::TIOCSCTTY, 0);
            // Only the controlling terminal answers TIOCGSID: without one, TIOCSTI's EPERM
            // would say nothing about a filter.
            let mut sid: libc::pid_t = 0;
            if libc::ioctl(s, libc::TIOCGSID, &mut sid) != 0 {
                libc::_exit(libc::ENOTTY);
            }
            if compat {
                // The i386 entry: the byte must sit below 4 GiB for a 32-bit pointer.
                let page = libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
                    -1,
                    0,
                );
                if page == libc::MAP_FAILED {
                    libc::_exit(errno().clamp(1, 255));
                }
                *(page as *mut u8) = b'\n';
                match int80(54, s as u32, libc::TIOCSTI as u32, page as u64 as u32) {
                    Ok(_) => 0,
                    Err(e) => e.clamp(1, 255),
                }
            } else {
                let c: libc::c_char = b'\n' as libc::c_char;
                if libc::ioctl(s, libc::TIOCSTI, &c) != 0 {
                    errno().clamp(1, 255)
                } else {
                    0
                }
            }
        };
        unsafe { libc::_exit(code) };
    }
    let mut st = 0;
    unsafe { libc::waitpid(pid, &mut st, 0) };
    if libc::WIFEXITED(st) && libc::WEXITSTATUS(st) == 0 {
        Ok(String::new())
    } else if libc::WIFEXITED(st) {
        Err(libc::WEXITSTATUS(st))
    } else {
        Err(libc::EINTR)
    }
}

fn ns_flag(name: &str) -> Option<i32> {
    let n = name.trim_start_matches("CLONE_");
    Some(match n {
        "NEWNS" => libc::CLONE_NEWNS,
        "NEWUTS" => libc::CLONE_NEWUTS,
        "NEWIPC" => libc::CLONE_NEWIPC,
        "NEWNET" => libc::CLONE_NEWNET,
        "NEWPID" => libc::CLONE_NEWPID,
        "NEWUSER" => libc::CLONE_NEWUSER,
        "NEWCGROUP" => libc::CLONE_NEWCGROUP,
        "NEWTIME" => 0x80,
        _ => return None,
    })
}

fn try_unshare(flag: i32) -> Res {
    check(unsafe { libc::unshare(flag) } as i64)
}

fn try_setns(path: &str) -> Res {
    let fd = unsafe { libc::open(cs(path).as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    check(fd as i64)?;
    let r = check(unsafe { libc::setns(fd, 0) } as i64);
    unsafe { libc::close(fd) };
    r
}

/// Waits for a child that exits at once; the child side never returns.
fn reap(pid: i64) -> Res {
    if pid == 0 {
        unsafe { libc::_exit(0) };
    }
    check(pid)?;
    let mut st = 0;
    unsafe { libc::waitpid(pid as i32, &mut st, 0) };
    Ok(String::new())
}

fn try_clone_newns() -> Res {
    let flags = (libc::CLONE_NEWNS | libc::SIGCHLD) as libc::c_ulong;
    reap(unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) })
}

fn try_clone(flag: i32) -> Res {
    let flags = (flag | libc::SIGCHLD) as libc::c_ulong;
    reap(unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) })
}

fn try_clone3(flags: i32) -> Res {
    // struct clone_args: flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls
    let mut args = [0u64; 8];
    args[0] = flags as u64;
    args[4] = libc::SIGCHLD as u64;
    reap(unsafe { libc::syscall(libc::SYS_clone3, args.as_mut_ptr(), std::mem::size_of_val(&args)) })
}

fn try_keyctl() -> Res {
    const KEYCTL_GET_KEYRING_ID: i64 = 0;
    const KEY_SPEC_SESSION_KEYRING: i64 = -3;
    check(unsafe { libc::syscall(libc::SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) })
}

/// BPF_MAP_CREATE of a one-entry array map.
fn try_bpf() -> Res {
    let mut attr = [0u32; 32];
    attr[0] = 2; // BPF_MAP_TYPE_ARRAY
    attr[1] = 4; // key_size
    attr[2] = 4; // value_size
    attr[3] = 1; // max_entries
    let fd = unsafe { libc::syscall(libc::SYS_bpf, 0 /* BPF_MAP_CREATE */, attr.as_mut_ptr(), 128usize) };
    check(fd)?;
    unsafe { libc::close(fd as i32) };
    Ok(String::new())
}

/// A software CPU clock counter on this process.
fn try_perf_event_open() -> Res {
    let mut attr = [0u8; 128];
    attr[0..4].copy_from_slice(&1u32.to_ne_bytes()); // PERF_TYPE_SOFTWARE
    attr[4..8].copy_from_slice(&128u32.to_ne_bytes()); // size
    attr[8..16].copy_from_slice(&0u64.to_ne_bytes()); // PERF_COUNT_SW_CPU_CLOCK
    attr[40] = 1 | 1 << 5 | 1 << 6; // disabled, exclude_kernel, exclude_hv
    let fd = unsafe { libc::syscall(libc::SYS_perf_event_open, attr.as_mut_ptr(), 0, -1, -1, 0) };
    check(fd)?;
    unsafe { libc::close(fd as i32) };
    Ok(String::new())
}

fn try_userfaultfd() -> Res {
    let fd = unsafe { libc::syscall(libc::SYS_userfaultfd, libc::O_CLOEXEC) };
    check(fd)?;
    unsafe { libc::close(fd as i32) };
    Ok(String::new())
}

fn try_setpriority(n: i32) -> Res {
    check(unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) } as i64)
}

fn try_socket(domain: i32, ty: i32, proto: i32) -> Res {
    let fd = unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, proto) };
    check(fd as i64)?;
    unsafe { libc::close(fd) };
    Ok(String::new())
}

/// The classic escape from a chroot: chroot into a subdirectory while keeping the working
/// directory outside it, climb with `..`, then chroot to where the climb ended.
fn try_chroot_escape(marker: &str) -> Res {
    let dir = format!("/tmp/.probe-chroot-{}", std::process::id());
    let d = cs(&dir);
    let made = unsafe { libc::mkdir(d.as_ptr(), 0o700) } == 0;
    let r = (|| {
        check(unsafe { libc::chdir(c"/".as_ptr()) } as i64)?;
        check(unsafe { libc::chroot(d.as_ptr()) } as i64)?;
        for _ in 0..256 {
            check(unsafe { libc::chdir(c"..".as_ptr()) } as i64)?;
        }
        check(unsafe { libc::chroot(c".".as_ptr()) } as i64)?;
        let m = cs(marker);
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        check(unsafe { libc::stat(m.as_ptr(), &mut st) } as i64)?;
        Ok("escaped".to_string())
    })();
    if made {
        // Best effort: the directory lies in the original root, which may no longer be "/".
        unsafe { libc::rmdir(d.as_ptr()) };
    }
    r
}

fn try_reboot(how: &str) -> Option<Res> {
    let cmd = match how {
        "restart" => libc::RB_AUTOBOOT,
        "halt" => libc::RB_HALT_SYSTEM,
        "poweroff" => libc::RB_POWER_OFF,
        _ => return None,
    };
    unsafe { libc::sync() };
    Some(check(unsafe { libc::reboot(cmd) } as i64))
}

/// A system call through the i386 compatibility entry (`int 0x80`), three arguments.
#[cfg(target_arch = "x86_64")]
fn int80(nr: u32, a: u32, b: u32, c: u32) -> Res {
    let ret: u64;
    // rbx is reserved by LLVM: swap the first argument in and out around the trap.
    unsafe {
        std::arch::asm!(
            "xchg {a:r}, rbx",
            "int 0x80",
            "xchg {a:r}, rbx",
            a = inout(reg) a as u64 => _,
            inlateout("rax") nr as u64 => ret,
            in("rcx") b as u64,
            in("rdx") c as u64,
        );
    }
    let r = ret as u32 as i32;
    if r < 0 && r > -4096 {
        Err(-r)
    } else {
        if r >= 0 && nr == 374 {
            unsafe { libc::close(r) };
        }
        Ok(String::new())
    }
}

#[cfg(target_arch = "x86_64")]
fn try_compat32(call: &str) -> Option<Res> {
    Some(match call {
        "keyctl" => int80(288, 0, -3i32 as u32, 0), // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING)
        "userfaultfd" => int80(374, libc::O_CLOEXEC as u32, 0, 0),
        "unshare" => int80(310, libc::CLONE_NEWNS as u32, 0, 0),
        "unshare_user" => int80(310, libc::CLONE_NEWUSER as u32, 0, 0),
        "tiocsti" => try_tiocsti(true),
        _ => return None,
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn try_compat32(_call: &str) -> Option<Res> {
    Some(Err(libc::ENOSYS))
}

#[cfg(not(target_arch = "x86_64"))]
fn int80(_nr: u32, _a: u32, _b: u32, _c: u32) -> Res {
    Err(libc::ENOSYS)
}

fn errno_name(e: i32) -> &'static str {
    match e {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::ENXIO => "ENXIO",
        libc::E2BIG => "E2BIG",
        libc::ENOEXEC => "ENOEXEC",
        libc::EBADF => "EBADF",
        libc::ECHILD => "ECHILD",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EBUSY => "EBUSY",
        libc::EEXIST => "EEXIST",
        libc::EXDEV => "EXDEV",
        libc::ENODEV => "ENODEV",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::ENFILE => "ENFILE",
        libc::EMFILE => "EMFILE",
        libc::ENOTTY => "ENOTTY",
        libc::ETXTBSY => "ETXTBSY",
        libc::EFBIG => "EFBIG",
        libc::ENOSPC => "ENOSPC",
        libc::ESPIPE => "ESPIPE",
        libc::EROFS => "EROFS",
        libc::EMLINK => "EMLINK",
        libc::EPIPE => "EPIPE",
        libc::ERANGE => "ERANGE",
        libc::ENAMETOOLONG => "ENAMETOOLONG",
        libc::ENOSYS => "ENOSYS",
        libc::ELOOP => "ELOOP",
        libc::ENODATA => "ENODATA",
        libc::ESTALE => "ESTALE",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EPROTONOSUPPORT => "EPROTONOSUPPORT",
        libc::ESOCKTNOSUPPORT => "ESOCKTNOSUPPORT",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ENOKEY => "ENOKEY",
        _ => "E?",
    }
}

// ----------------------------------------------------------------------------------------------
// network

/// A TCP socket bound to `ip:port` (IPv6-only for IPv6, SO_REUSEADDR), or the errno.
fn tcp_socket(ip: std::net::IpAddr, port: u16) -> Result<i32, i32> {
    let (domain, addr, len) = sockaddr(ip, port);
    let fd = unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(errno());
    }
    let one: libc::c_int = 1;
    let sz = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    unsafe {
        libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, &one as *const _ as *const libc::c_void, sz);
        if domain == libc::AF_INET6 {
            libc::setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, &one as *const _ as *const libc::c_void, sz);
        }
    }
    if unsafe { libc::bind(fd, &addr as *const _ as *const libc::sockaddr, len) } != 0 {
        let e = errno();
        unsafe { libc::close(fd) };
        return Err(e);
    }
    Ok(fd)
}

fn sockaddr(ip: std::net::IpAddr, port: u16) -> (i32, libc::sockaddr_storage, libc::socklen_t) {
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match ip {
        std::net::IpAddr::V4(v4) => {
            let sin = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = port.to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(v4.octets());
            (libc::AF_INET, ss, std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t)
        }
        std::net::IpAddr::V6(v6) => {
            let sin6 = unsafe { &mut *(&mut ss as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = port.to_be();
            sin6.sin6_addr.s6_addr = v6.octets();
            (libc::AF_INET6, ss, std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t)
        }
    }
}

fn try_bind(ip: std::net::IpAddr, port: u16) -> Res {
    let fd = tcp_socket(ip, port)?;
    unsafe { libc::close(fd) };
    Ok(String::new())
}

fn try_connect(ip: std::net::IpAddr, port: u16, timeout_ms: u64) -> Res {
    use std::io::Read;
    let timeout = std::time::Duration::from_millis(timeout_ms);
    let mut s = std::net::TcpStream::connect_timeout(&std::net::SocketAddr::new(ip, port), timeout)
        .map_err(|e| e.raw_os_error().unwrap_or(libc::ETIMEDOUT))?;
    let _ = s.set_read_timeout(Some(timeout));
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    Ok(reply.lines().next().unwrap_or("").to_string())
}

fn serve(text: &str, pairs: &[String]) -> ! {
    use std::io::Write;
    let mut fds = Vec::new();
    for pair in pairs.chunks(2) {
        let (Some(ip), Some(port)) = (pair.first().and_then(|a| a.parse().ok()), pair.get(1).and_then(|p| p.parse().ok())) else {
            usage()
        };
        match tcp_socket(ip, port) {
            Ok(fd) if unsafe { libc::listen(fd, 64) } == 0 => fds.push(fd),
            Ok(_) | Err(_) => {
                let e = errno();
                println!("err {} {} {} {}", errno_name(e), e, pair[0], pair[1]);
                std::process::exit(1);
            }
        }
    }
    println!("listening");
    let _ = std::io::stdout().flush();
    let line = format!("{text}\n");
    loop {
        let mut polls: Vec<libc::pollfd> = fds.iter().map(|fd| libc::pollfd { fd: *fd, events: libc::POLLIN, revents: 0 }).collect();
        if unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, -1) } < 0 {
            continue;
        }
        for p in polls.iter().filter(|p| p.revents != 0) {
            let c = unsafe { libc::accept4(p.fd, std::ptr::null_mut(), std::ptr::null_mut(), libc::SOCK_CLOEXEC) };
            if c >= 0 {
                unsafe {
                    libc::write(c, line.as_ptr() as *const libc::c_void, line.len());
                    libc::close(c);
                }
            }
        }
    }
}

// ----------------------------------------------------------------------------------------------
// race: what root inside can get hold of while processes enter the vserver

/// `probe race SECONDS [ptrace] MARKER…`: for SECONDS, watches `/proc` for new processes that
/// entered from outside (parent pid 0 as seen inside) and, for each, at once: opens `/proc/P/exe` for writing, reads `/proc/P/environ` (a MARKER in it is
/// a leak; a variable other than the clean set is unclean), looks at every descriptor (a pipe,
/// a pty of our own devpts or /dev/null are fine; anything else is reported) and, with
/// `ptrace`, attaches and detaches. "sealed" processes are those still running the daemon's
/// sealed copy (before their exec), "hidden" those whose exe we may not even read (not
/// dumpable, and we lack SYS_PTRACE), "exec" the others. Prints `key=count` lines, `detail=` lines,
/// and positive controls on a child of our own (`control_environ`, `control_ptrace`).
fn race(args: &[String]) {
    let secs: u64 = args[0].parse().unwrap_or(5);
    let do_ptrace = args.get(1).map(|a| a == "ptrace").unwrap_or(false);
    let markers: Vec<&str> = args[1..].iter().map(String::as_str).filter(|a| *a != "ptrace").collect();
    const CLEAN: &[&str] = &["container", "PATH", "TERM", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "SHLVL", "OLDPWD"];
    let me = std::process::id();
    let pts_dev = fs::metadata("/dev/pts/ptmx").map(|m| m.dev()).unwrap_or(u64::MAX);
    let mut counts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    let mut details: Vec<String> = Vec::new();
    let bump = |k: &str, counts: &mut std::collections::BTreeMap<String, u64>| *counts.entry(k.to_string()).or_default() += 1;

    // Positive controls: a child of ours with a marker of its own.
    let mut child = std::process::Command::new("/bin/sleep").arg("30").env("RACE_CONTROL", "1").spawn().ok();
    if let Some(c) = &child {
        std::thread::sleep(std::time::Duration::from_millis(50));
        let env = fs::read(format!("/proc/{}/environ", c.id())).unwrap_or_default();
        kv("control_environ", if String::from_utf8_lossy(&env).contains("RACE_CONTROL=1") { "ok" } else { "fail" });
        let ok = unsafe { libc::ptrace(libc::PTRACE_ATTACH, c.id() as i32, 0, 0) } == 0;
        if ok {
            let mut st = 0;
            unsafe { libc::waitpid(c.id() as i32, &mut st, libc::__WALL) };
            unsafe { libc::ptrace(libc::PTRACE_DETACH, c.id() as i32, 0, 0) };
        }
        kv("control_ptrace", if ok { "ok" } else { "fail" });
    }
    let control_pid = child.as_ref().map(|c| c.id()).unwrap_or(0);

    let mut seen: std::collections::HashSet<u32> = fs::read_dir("/proc")
        .map(|rd| rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default();
    let mut refused: Vec<u32> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < deadline {
        let Ok(rd) = fs::read_dir("/proc") else { break };
        for pid in rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok()) {
            if pid == me || pid == control_pid || !seen.insert(pid) {
                continue;
            }
            // Only processes that entered from outside: their parent is not in the vserver.
            let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            if pid == 1 || status.lines().find_map(|l| l.strip_prefix("PPid:")).map(str::trim) != Some("0") {
                continue;
            }
            // "sealed": still the daemon's sealed copy, before the exec; "hidden": not dumpable
            // and we may not look (the same, seen without SYS_PTRACE); "exec": after the exec.
            let (exe, phase) = match fs::read_link(format!("/proc/{pid}/exe")) {
                Ok(t) => {
                    let t = t.display().to_string();
                    let phase = exe_phase(Some(&t));
                    (t, phase)
                }
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => (format!("error {e}"), "hidden"),
                Err(_) => continue, // gone already
            };
            bump("seen", &mut counts);
            bump(&format!("seen_{phase}"), &mut counts);
            if fs::OpenOptions::new().write(true).open(format!("/proc/{pid}/exe")).is_ok() {
                bump("exe_writable", &mut counts);
                details.push(format!("exe of {pid} ({exe}) opened for writing"));
            }
            // What a process was when something succeeded on it is known only afterwards (it
            // may have exec'd in between): look again.
            let phase_now = || exe_phase(fs::read_link(format!("/proc/{pid}/exe")).ok().map(|t| t.display().to_string()).as_deref());
            if let Ok(env) = fs::read(format!("/proc/{pid}/environ")) {
                let phase = if phase == "hidden" { phase_now() } else { phase };
                bump(&format!("environ_read_{phase}"), &mut counts);
                let text = String::from_utf8_lossy(&env);
                for var in text.split('\0').filter(|v| !v.is_empty()) {
                    if markers.iter().any(|m| var.contains(m)) {
                        bump("environ_leak", &mut counts);
                        details.push(format!("environ of {pid} ({exe}): {var}"));
                    } else if !CLEAN.contains(&var.split('=').next().unwrap_or("")) {
                        bump("environ_unclean", &mut counts);
                        details.push(format!("environ of {pid} ({exe}): {var}"));
                    }
                }
            }
            if let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) {
                for fd in fds.flatten() {
                    if fd.file_name().to_str().and_then(|n| n.parse::<u32>().ok()).unwrap_or(0) > 2 {
                        bump("fd_above_2", &mut counts);
                        details.push(format!("fd {} of {pid} ({exe}): {}", fd.file_name().to_string_lossy(), link(&fd.path().display().to_string())));
                    }
                    let Ok(m) = fs::metadata(fd.path()) else { continue };
                    let ft = m.file_type();
                    let fine = ft.is_fifo()
                        || m.dev() == pts_dev
                        || (ft.is_char_device() && (libc::major(m.rdev()), libc::minor(m.rdev())) == (1, 3));
                    if !fine {
                        bump("fd_other", &mut counts);
                        details.push(format!("fd {} of {pid} ({exe}): {}", fd.file_name().to_string_lossy(), link(&fd.path().display().to_string())));
                    }
                }
            }
            if do_ptrace {
                let attached = attach_detach(pid as i32);
                let errno = std::io::Error::last_os_error().raw_os_error();
                if let Some(phase) = attached {
                    bump(&format!("ptrace_{phase}"), &mut counts);
                } else if errno == Some(libc::EPERM) && phase_now() != "exec" {
                    // Refused before its exec: try again once it has exec'd (the control).
                    bump(&format!("ptrace_refused_{}", phase_now()), &mut counts);
                    refused.push(pid);
                }
            }
        }
        // Processes refused before their exec, once they have exec'd: ordinary processes of
        // the vserver, which we may trace (with the same uid and SYS_PTRACE or not).
        refused.retain(|&pid| {
            match fs::read_link(format!("/proc/{pid}/exe")) {
                Ok(t) if exe_phase(Some(&t.display().to_string())) == "exec" => {
                    if attach_detach(pid as i32).is_some() {
                        bump("ptrace_after_exec", &mut counts);
                    }
                    false
                }
                Ok(_) => true,
                Err(e) => e.kind() == std::io::ErrorKind::PermissionDenied && fs::metadata(format!("/proc/{pid}")).is_ok(),
            }
        });
    }
    if let Some(c) = child.as_mut() {
        let _ = c.kill();
        let _ = c.wait();
    }
    for (k, v) in counts {
        kv(&k, v);
    }
    for d in details {
        kv("detail", d);
    }
}

/// What a process runs, by the target of its exe link: "sealed" (the daemon's sealed copy,
/// before the exec), "exec" (after it), "hidden" (`None`: the link could not be read).
fn exe_phase(target: Option<&str>) -> &'static str {
    match target {
        Some(t) if t.contains("memfd:") || t.contains("vserver-sealed") => "sealed",
        Some(_) => "exec",
        None => "hidden",
    }
}

/// Attaches to `pid`, waits for it to stop and lets it go again: the [`exe_phase`] of what it
/// ran while it was stopped (read after the detach, a process gone meanwhile would read like a
/// hidden one), or `None` (errno set) when the attach is refused.
fn attach_detach(pid: i32) -> Option<&'static str> {
    if unsafe { libc::ptrace(libc::PTRACE_ATTACH, pid, 0, 0) } != 0 {
        return None;
    }
    let mut st = 0;
    unsafe { libc::waitpid(pid, &mut st, libc::__WALL) };
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok().map(|t| t.display().to_string());
    let phase = exe_phase(exe.as_deref());
    unsafe { libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0) };
    // The attach's SIGSTOP may still be pending (the stop we saw was another one, an exec's
    // SIGTRAP): let the process go on.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    Some(phase)
}

/// `unix_request PATH LINE`: connects to the unix socket PATH, sends LINE and a newline, and
/// answers `ok ANSWER` with the first line read back.
fn try_unix_request(path: &str, line: &str) -> Res {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(path).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    s.write_all(format!("{line}\n").as_bytes()).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    Ok(answer.lines().next().unwrap_or("").to_string())
}

fn try_notify(path: &str, message: &str, then_sleep: u64) -> Res {
    let s = std::os::unix::net::UnixDatagram::unbound().map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    s.send_to(message.replace("\\n", "\n").as_bytes(), path).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    std::thread::sleep(std::time::Duration::from_secs(then_sleep));
    Ok(String::new())
}
