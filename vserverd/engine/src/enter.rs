//! Entering a running context (`vserverctl enter` / `exec`, the paper's `vserver NAME enter`,
//! `exec` and `suexec`): a login shell or a command inside the vserver, on a pty of the vserver's
//! own devpts or on plain pipes, as root or as a user of the vserver's own `/etc/passwd`.
//!
//! The process that enters holds nothing of the host by the time anything inside can see it:
//!
//! 1. on the host: the context is found in the registry and pid 1 pinned with a pidfd (its
//!    start time checked after pinning); pid 1's rlimits and niceness are read; the caller's host
//!    steps run (the cgroup: the entering process joins the vserver's cgroups, so its child is
//!    counted and killed with the vserver);
//! 2. the process makes itself non-dumpable and `setns`es into every namespace of pid 1 that
//!    differs from its own (mount, PID, UTS, IPC, network, cgroup…) at once; the mount namespace
//!    puts its root and working directory at the vserver's root;
//! 3. inside the vserver's tree, with paths that cannot leave it (`RESOLVE_IN_ROOT`, no magic
//!    links): the user from `/etc/passwd` and `/etc/group`; the pty from the vserver's own
//!    `/dev/pts/ptmx` (checked to be a devpts ptmx), its slave through `TIOCGPTPEER`;
//! 4. pid 1's rlimits and niceness; the bounding set, the context's seccomp filter, then the
//!    permitted and effective sets lowered to the context's: from here on the process is no
//!    stronger than the vserver's own processes;
//! 5. the host-side ends (the pty master, or the pipes' ends) are handed to the caller, who
//!    passes them on (the daemon: over D-Bus to `vserverctl`) and closes its copies;
//! 6. only then is the child forked into the PID namespace. Its first system call closes every
//!    descriptor but 0, 1 and 2 (the pty slave or the pipes); it starts a session (the pty becomes
//!    its controlling terminal), takes the user's groups, gid and uid, and execs the command with
//!    a clean environment (`container=vserver`, `PATH`, `TERM`, `HOME`, `USER`, `LOGNAME`,
//!    `SHELL`). Its `/proc/PID/exe` until the exec is the sealed in-memory copy of the daemon
//!    (never writable), its environment is empty, and the builder itself stays in the host's PID
//!    namespace, out of sight of everything inside. Run under [`crate::guard::guarded`], the
//!    child is traced by the guard from its fork to its exec, so nothing inside can attach to it
//!    before it runs the command.
//!
//! The caller waits for the command through the returned [`Exit`].

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::unistd::{fork, ForkResult};
use serde::{Deserialize, Serialize};

use crate::caps;
use crate::error::{SetupError, Step, StepExt};
use crate::spawn::{Exit, DEFAULT_PATH};
use crate::{registry, seccomp, sys};

/// A terminal's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WinSize {
    pub rows: u16,
    pub cols: u16,
}

/// What to run inside, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnterSpec {
    /// The context registry (normally `/run/vservers`).
    pub run_dir: std::path::PathBuf,
    pub context: u32,
    /// The command; empty: the user's login shell.
    pub argv: Vec<String>,
    /// A user of the vserver's `/etc/passwd` (a name, or a number); `None`: root.
    pub user: Option<String>,
    /// `Some`: a pty of the vserver's devpts with this size; `None`: three pipes.
    pub tty: Option<WinSize>,
    /// `TERM` of the command (checked: letters, digits, `.+-_`, at most 64).
    pub term: String,
}

/// The host-side ends of the command's standard input, output and error.
#[derive(Debug)]
pub enum HostEnds {
    /// The master of the pty whose slave is the command's controlling terminal and stdio.
    Pty { master: OwnedFd },
    /// The write end of its stdin, the read ends of its stdout and stderr.
    Pipes { stdin: OwnedFd, stdout: OwnedFd, stderr: OwnedFd },
}

/// A user as the vserver's own files say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
    /// Supplementary groups (the primary one included).
    pub groups: Vec<u32>,
}

fn err(path: &str, e: Errno) -> SetupError {
    SetupError::new(Step::Join, Some(path.to_string()), e)
}

fn detail(path: Option<&str>, msg: impl Into<String>) -> SetupError {
    SetupError::detail(Step::Join, path.map(str::to_string), msg)
}

/// True when `term` is a plausible terminal type (it ends up in the command's environment).
pub fn valid_term(term: &str) -> bool {
    !term.is_empty() && term.len() <= 64 && term.bytes().all(|b| b.is_ascii_alphanumeric() || b"._+-".contains(&b))
}

/// The namespaces of `pid` that differ from this process's own (its user namespace among them
/// for a context in one).
pub(crate) fn differing_namespaces(pid: i32) -> libc::c_int {
    const KINDS: [(&str, libc::c_int); 8] = [
        ("user", libc::CLONE_NEWUSER),
        ("mnt", libc::CLONE_NEWNS),
        ("pid", libc::CLONE_NEWPID),
        ("uts", libc::CLONE_NEWUTS),
        ("ipc", libc::CLONE_NEWIPC),
        ("net", libc::CLONE_NEWNET),
        ("cgroup", libc::CLONE_NEWCGROUP),
        ("time", 0x80), // CLONE_NEWTIME
    ];
    let mut flags = 0;
    for (name, flag) in KINDS {
        let mine = std::fs::read_link(format!("/proc/self/ns/{name}"));
        let theirs = std::fs::read_link(format!("/proc/{pid}/ns/{name}"));
        if let (Ok(a), Ok(b)) = (mine, theirs) {
            if a != b {
                flags |= flag;
            }
        }
    }
    flags
}

/// pid 1's resource limits and niceness: what every process of the vserver inherits.
struct Limits {
    rlimits: Vec<(libc::__rlimit_resource_t, libc::rlimit64)>,
    nice: Option<i32>,
}

/// After joining a context's user namespace: its uid and gid 0 (this process's host ids are
/// not mapped there: nothing it made or opened inside could have an owner). Not dumpable again,
/// the credentials' change reset that.
pub(crate) fn become_root_of_joined() -> Result<(), SetupError> {
    crate::userns::become_root().map_err(|e| SetupError { step: Step::Join, ..e })?;
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    Ok(())
}

/// pid 1's root directory, as a handle taken on the host (before any setns).
pub(crate) fn pid1_root(pid: i32) -> Result<std::os::fd::OwnedFd, SetupError> {
    let path = format!("/proc/{pid}/root");
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    // The magic link is followed (it is the kernel's, not the vserver's): to pid 1's root.
    sys::openat2(cwd, &path, libc::O_PATH | libc::O_DIRECTORY, 0, 0).step(Step::Join, &path)
}

/// Into pid 1's very root, whatever the mount namespace's root is (a daemon started in a
/// chroot would otherwise leave the entering process at the namespace's root, above the
/// vserver's).
pub(crate) fn into_root(root: std::os::fd::OwnedFd) -> Result<(), SetupError> {
    nix::unistd::fchdir(root.as_raw_fd()).step(Step::Join, "/")?;
    nix::unistd::chroot(".").step(Step::Join, "/")?;
    nix::unistd::chdir("/").step(Step::Join, "/")
}

fn read_limits(pid: i32) -> Limits {
    let mut rlimits = Vec::new();
    // RLIMIT_CPU (0) … RLIMIT_RTTIME (15): every limit Linux has.
    for res in 0..16 as libc::__rlimit_resource_t {
        let mut old = libc::rlimit64 { rlim_cur: 0, rlim_max: 0 };
        if unsafe { libc::prlimit64(pid, res, std::ptr::null(), &mut old) } == 0 {
            rlimits.push((res, old));
        }
    }
    Errno::clear();
    let n = unsafe { libc::getpriority(libc::PRIO_PROCESS, pid as libc::id_t) };
    let nice = if n == -1 && Errno::last_raw() != 0 { None } else { Some(n) };
    Limits { rlimits, nice }
}

fn apply_limits(l: &Limits) -> Result<(), SetupError> {
    // The niceness first: lowering it may need the RLIMIT_NICE we are about to set.
    if let Some(n) = l.nice {
        if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) } != 0 {
            return Err(SetupError::new(Step::Nice, Some(n.to_string()), Errno::last()));
        }
    }
    for (res, lim) in &l.rlimits {
        if unsafe { libc::prlimit64(0, *res, lim, std::ptr::null_mut()) } != 0 {
            return Err(SetupError::new(Step::Rlimits, Some(format!("resource {res}")), Errno::last()));
        }
    }
    Ok(())
}

/// Moves this process into every cgroup `pid` is in, in every hierarchy the host has mounted
/// (v2, and each v1 controller or named hierarchy): what pid 1 is counted, limited and killed
/// by, the entering process and its command are too. Runs on the host, before any setns.
pub fn join_cgroups_of(pid: i32) -> Result<(), SetupError> {
    let me = std::process::id().to_string();
    let mine = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    for (ctrl_path, dir) in cgroups_of(pid)? {
        if mine.lines().any(|l| l.split_once(':').map(|(_, rest)| rest == ctrl_path).unwrap_or(false)) {
            continue; // already there
        }
        let procs = dir.join("cgroup.procs");
        std::fs::write(&procs, &me).map_err(|e| io_err(&procs.display().to_string(), e).with_detail("joining the vserver's cgroup"))?;
    }
    Ok(())
}

/// The host directory of the v2 cgroup `pid` is in, when the host has a v2 tree: where a
/// process that enters is best born ([`crate::guard::guarded_in`]), so that joining costs no
/// migration (which waits for an RCU grace period, milliseconds).
pub fn v2_cgroup_of(pid: i32) -> Option<std::path::PathBuf> {
    cgroups_of(pid).ok()?.into_iter().find_map(|(ctrl_path, dir)| ctrl_path.starts_with(':').then_some(dir))
}

/// Every cgroup `pid` is in, as `controllers:path` (as `/proc/PID/cgroup` says, v2 with no
/// controllers) and the host directory where this process sees it.
fn cgroups_of(pid: i32) -> Result<Vec<(String, std::path::PathBuf)>, SetupError> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).map_err(|e| io_err("cgroup of pid 1", e))?;
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").map_err(|e| io_err("/proc/self/mountinfo", e))?;
    let all = text
        .lines()
        .filter_map(|line| {
            let mut f = line.splitn(3, ':');
            let (Some(_), Some(ctrl), Some(path)) = (f.next(), f.next(), f.next()) else { return None };
            cgroup_dir(&mounts, ctrl, path).map(|dir| (format!("{ctrl}:{path}"), dir))
        })
        .collect();
    // The host's mount table is of no business of the command, whose memory starts as a copy
    // of ours.
    scrub(mounts);
    Ok(all)
}

/// Overwrites a string's bytes before it is freed.
fn scrub(s: String) {
    let mut bytes = s.into_bytes();
    for b in bytes.iter_mut() {
        unsafe { std::ptr::write_volatile(b, 0) };
    }
}

fn io_err(what: &str, e: std::io::Error) -> SetupError {
    SetupError::new(Step::HostSetup, Some(what.to_string()), crate::error::io_errno(&e))
}

/// The directory of cgroup `path` of the hierarchy whose controllers are `ctrl` ("" = v2), from
/// a mount table (`/proc/self/mountinfo`).
pub fn cgroup_dir(mountinfo: &str, ctrl: &str, path: &str) -> Option<std::path::PathBuf> {
    let wanted: Vec<&str> = ctrl.split(',').filter(|c| !c.is_empty()).collect();
    for l in mountinfo.lines() {
        let Some((left, right)) = l.split_once(" - ") else { continue };
        let lf: Vec<&str> = left.split(' ').collect();
        let rf: Vec<&str> = right.split(' ').collect();
        if lf.len() < 5 || rf.len() < 3 {
            continue;
        }
        let (root, point, fstype, opts) = (lf[3], lf[4], rf[0], rf[2]);
        let matches = if wanted.is_empty() {
            fstype == "cgroup2"
        } else {
            fstype == "cgroup" && { wanted.iter().all(|w| opts.split(',').any(|o| o == *w)) }
        };
        if !matches {
            continue;
        }
        let rel = if root == "/" { Some(path) } else { path.strip_prefix(root).filter(|r| r.is_empty() || r.starts_with('/')) };
        let Some(rel) = rel else { continue };
        return Some(std::path::Path::new(point).join(rel.trim_start_matches('/')));
    }
    None
}

/// Reads a file of the vserver (after the mount namespace is joined): never following a link
/// out of its root or through a magic link, a regular file only, at most 4 MiB, never blocking.
fn read_inside(path: &str) -> Result<Option<String>, SetupError> {
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    let fd = match sys::openat2(
        cwd,
        path,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
        sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_MAGICLINKS,
    ) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(e) => return Err(err(path, e)),
    };
    let f = std::fs::File::from(fd);
    let md = f.metadata().map_err(|e| err(path, crate::error::io_errno(&e)))?;
    if !md.is_file() {
        return Err(detail(Some(path), "not a regular file; refused"));
    }
    let mut text = String::new();
    f.take(4 << 20)
        .read_to_string(&mut text)
        .map_err(|e| err(path, crate::error::io_errno(&e)))?;
    Ok(Some(text))
}

/// Finds `who` (a name, or a number) in the text of a passwd file; a number that is not there
/// stands for itself (uid = gid = the number, home `/`).
pub fn lookup_user(passwd: &str, group: &str, who: &str) -> Option<User> {
    let number: Option<u32> = who.parse().ok();
    let entry = passwd.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        let uid: u32 = f[2].parse().ok()?;
        let gid: u32 = f[3].parse().ok()?;
        let hit = f[0] == who || (number == Some(uid) && !passwd.lines().any(|o| o.split(':').next() == Some(who)));
        hit.then(|| User { name: f[0].to_string(), uid, gid, home: f[5].to_string(), shell: f[6].to_string(), groups: Vec::new() })
    });
    let mut user = match (entry, number) {
        (Some(u), _) => u,
        (None, Some(n)) => User { name: n.to_string(), uid: n, gid: n, home: "/".into(), shell: String::new(), groups: Vec::new() },
        (None, None) => return None,
    };
    let mut groups = vec![user.gid];
    for l in group.lines().filter(|l| !l.starts_with('#')) {
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 {
            continue;
        }
        let Ok(gid) = f[2].parse::<u32>() else { continue };
        if f[3].split(',').any(|m| m.trim() == user.name) && !groups.contains(&gid) {
            groups.push(gid);
        }
    }
    user.groups = groups;
    if user.home.is_empty() {
        user.home = "/".into();
    }
    Some(user)
}

/// The user to run as, from the vserver's own files (read from inside).
fn resolve_user(who: Option<&str>) -> Result<User, SetupError> {
    let passwd = read_inside("/etc/passwd")?.unwrap_or_default();
    match who {
        None | Some("") | Some("root") | Some("0") => {
            let mut root = lookup_user(&passwd, "", "root")
                .filter(|u| u.uid == 0)
                .unwrap_or(User { name: "root".into(), uid: 0, gid: 0, home: "/root".into(), shell: String::new(), groups: Vec::new() });
            root.groups = vec![root.gid];
            Ok(root)
        }
        Some(who) => {
            let group = read_inside("/etc/group")?.unwrap_or_default();
            lookup_user(&passwd, &group, who)
                .ok_or_else(|| detail(Some("/etc/passwd"), format!("no user {who:?} in the vserver's /etc/passwd")))
        }
    }
}

/// A pty of the vserver's own devpts: the master, and the slave opened through it.
fn open_pty(size: WinSize, owner: Option<u32>) -> Result<(OwnedFd, OwnedFd), SetupError> {
    const PTMX: &str = "/dev/pts/ptmx";
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    let master = sys::openat2(
        cwd,
        PTMX,
        libc::O_RDWR | libc::O_NOCTTY,
        0,
        sys::RESOLVE_IN_ROOT | sys::RESOLVE_NO_SYMLINKS | sys::RESOLVE_NO_MAGICLINKS,
    )
    .map_err(|e| err(PTMX, e))?;
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatfs(master.as_raw_fd(), &mut fs) } != 0 || unsafe { libc::fstat(master.as_raw_fd(), &mut st) } != 0 {
        return Err(err(PTMX, Errno::last()));
    }
    let is_ptmx = fs.f_type == libc::DEVPTS_SUPER_MAGIC
        && st.st_mode & libc::S_IFMT == libc::S_IFCHR
        && (libc::major(st.st_rdev), libc::minor(st.st_rdev)) == (5, 2);
    if !is_ptmx {
        return Err(detail(Some(PTMX), "not the ptmx of a devpts instance; refused"));
    }
    let unlock: libc::c_int = 0;
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } != 0 {
        return Err(err(PTMX, Errno::last()));
    }
    if size.rows > 0 && size.cols > 0 {
        let ws = libc::winsize { ws_row: size.rows, ws_col: size.cols, ws_xpixel: 0, ws_ypixel: 0 };
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    }
    let slave = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
    if slave < 0 {
        return Err(err("pty slave", Errno::last()));
    }
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    if let Some(uid) = owner {
        // As login(1) does: the user owns the terminal it logs in on.
        if unsafe { libc::fchown(slave.as_raw_fd(), uid, u32::MAX) } != 0 {
            return Err(err("pty slave", Errno::last()));
        }
    }
    Ok((master, slave))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), SetupError> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).step(Step::Join, "pipe")
}

/// What the child runs: program path, argv, environment, user, home.
struct Command {
    path: Option<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
    user: User,
    home: CString,
}

fn cstring(s: &str, what: &str) -> Result<CString, SetupError> {
    CString::new(s).map_err(|_| SetupError::detail(Step::Validate, None, format!("{what} holds a NUL byte")))
}

fn command(spec: &EnterSpec, user: User) -> Result<Command, SetupError> {
    let shell = if user.shell.is_empty() { "/bin/sh".to_string() } else { user.shell.clone() };
    let (path, argv) = if spec.argv.is_empty() {
        // A login shell: argv[0] is the shell's name with a leading '-'.
        let base = shell.rsplit('/').next().unwrap_or("sh");
        (Some(cstring(&shell, "the shell")?), vec![cstring(&format!("-{base}"), "the shell")?])
    } else {
        (None, spec.argv.iter().map(|a| cstring(a, "the command")).collect::<Result<_, _>>()?)
    };
    let env = [
        ("container", "vserver".to_string()),
        ("PATH", DEFAULT_PATH.to_string()),
        ("TERM", spec.term.clone()),
        ("HOME", user.home.clone()),
        ("USER", user.name.clone()),
        ("LOGNAME", user.name.clone()),
        ("SHELL", shell),
    ];
    let envp = env.iter().map(|(k, v)| cstring(&format!("{k}={v}"), "the environment")).collect::<Result<_, _>>()?;
    let home = cstring(&user.home, "the home directory")?;
    Ok(Command { path, argv, envp, user, home })
}

/// Enters the context `spec` names and runs its command there; `host_steps` runs on the host
/// before any namespace is joined (cgroups); `handover` receives the host-side ends of the
/// command's stdio once the process is as weak as the vserver's own, before the command exists,
/// and must pass them on and close them. Returns how the command ended.
pub fn enter<H, F>(spec: &EnterSpec, host_steps: H, handover: F) -> Result<Exit, SetupError>
where
    H: FnOnce() -> Result<(), SetupError>,
    F: FnOnce(HostEnds) -> Result<(), SetupError>,
{
    if sys::thread_count() != Some(1) {
        return Err(SetupError::detail(Step::SingleThread, None, "the process entering a context must be single-threaded"));
    }
    if !valid_term(&spec.term) {
        return Err(SetupError::detail(Step::Validate, None, format!("bad terminal type {:?}", spec.term)));
    }
    let ctx_name = format!("context {}", spec.context);
    let entry = registry::lookup(&spec.run_dir, spec.context)
        .ok_or_else(|| SetupError::new(Step::Join, Some(ctx_name.clone()), Errno::ESRCH).with_detail("no such running context"))?;
    if entry.flags.private {
        return Err(SetupError::new(Step::Join, Some(ctx_name), Errno::EPERM).with_detail("the vserver is private: nobody may enter it"));
    }
    let filter = seccomp::program(&entry.flags);

    // 1. Pin pid 1, then check it is still the registered process.
    let pidfd = sys::pidfd_open(entry.pid).map_err(|e| err(&ctx_name, crate::error::io_errno(&e)))?;
    if sys::start_time(entry.pid) != Some(entry.start_time) {
        return Err(SetupError::new(Step::Join, Some(ctx_name), Errno::ESRCH).with_detail("the context ended"));
    }
    let ns = differing_namespaces(entry.pid);
    if ns & (libc::CLONE_NEWNS | libc::CLONE_NEWPID) != (libc::CLONE_NEWNS | libc::CLONE_NEWPID) {
        return Err(detail(Some(&ctx_name), "pid 1 shares our mount or PID namespace: not a context"));
    }
    let limits = read_limits(entry.pid);
    let root = pid1_root(entry.pid)?;
    host_steps()?;

    // 2. Out of reach from inside, then in.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if unsafe { libc::setns(pidfd.as_raw_fd(), ns) } != 0 {
        return Err(err(&ctx_name, Errno::last()).with_detail("setns"));
    }
    drop(pidfd);
    if ns & libc::CLONE_NEWUSER != 0 {
        become_root_of_joined()?;
    }
    into_root(root)?;

    // 3. The vserver's user and pty, from its own tree.
    let user = resolve_user(spec.user.as_deref())?;
    let cmd = command(spec, user)?;
    let (far, host): ([OwnedFd; 3], HostEnds) = match spec.tty {
        Some(size) => {
            let owner = (cmd.user.uid != 0).then_some(cmd.user.uid);
            let (master, slave) = open_pty(size, owner)?;
            let a = slave.try_clone().map_err(|_| err("pty slave", Errno::last()))?;
            let b = slave.try_clone().map_err(|_| err("pty slave", Errno::last()))?;
            ([slave, a, b], HostEnds::Pty { master })
        }
        None => {
            let (in_r, in_w) = pipe()?;
            let (out_r, out_w) = pipe()?;
            let (err_r, err_w) = pipe()?;
            ([in_r, out_w, err_w], HostEnds::Pipes { stdin: in_w, stdout: out_r, stderr: err_r })
        }
    };

    // 4. As weak as the vserver's own processes.
    apply_limits(&limits)?;
    caps::apply(entry.caps).step(Step::Capabilities, "bounding set")?;
    filter.load().step(Step::Seccomp, "filter")?;
    caps::limit_process(entry.caps).step(Step::Capabilities, "permitted set")?;

    // 5. The host-side ends leave this process before the command exists.
    handover(host)?;

    // 6. The command's stdio become our 0, 1, 2 (nothing else of ours is needed there), then
    // the child appears inside.
    for (i, fd) in far.iter().enumerate() {
        if unsafe { libc::dup2(fd.as_raw_fd(), i as RawFd) } < 0 {
            return Err(err("stdio", Errno::last()));
        }
    }
    drop(far);
    let tty = spec.tty.is_some();
    match unsafe { fork() }.step(Step::Join, "fork")? {
        ForkResult::Child => {
            // First thing: nothing but 0, 1 and 2.
            let _ = sys::close_from(3);
            child(&cmd, tty)
        }
        ForkResult::Parent { child } => {
            for fd in 0..3 {
                unsafe { libc::close(fd) };
            }
            crate::spawn::wait_exit(child.as_raw()).map_err(|e| SetupError::new(Step::Join, Some("wait".into()), e))
        }
    }
}

/// The forked child, inside: session, terminal, user, directory, exec. Never returns.
fn child(cmd: &Command, tty: bool) -> ! {
    let fail = |what: &str, e: Errno| -> ! {
        let msg = format!("vserver: {what}: {}\n", e.desc());
        unsafe { libc::write(2, msg.as_ptr() as *const libc::c_void, msg.len()) };
        unsafe { libc::_exit(if what.starts_with("cannot run") { 127 } else { 126 }) };
    };
    crate::spawn::reset_signals();
    if unsafe { libc::setsid() } < 0 {
        fail("setsid", Errno::last());
    }
    if tty && unsafe { libc::ioctl(0, libc::TIOCSCTTY, 0) } != 0 {
        fail("the terminal", Errno::last());
    }
    let u = &cmd.user;
    if unsafe { libc::setgroups(u.groups.len(), u.groups.as_ptr()) } != 0 {
        fail(&format!("setgroups for {}", u.name), Errno::last());
    }
    if unsafe { libc::setresgid(u.gid, u.gid, u.gid) } != 0 {
        fail(&format!("setgid {}", u.gid), Errno::last());
    }
    if unsafe { libc::setresuid(u.uid, u.uid, u.uid) } != 0 {
        fail(&format!("setuid {}", u.uid), Errno::last());
    }
    if unsafe { libc::chdir(cmd.home.as_ptr()) } != 0 {
        unsafe { libc::chdir(c"/".as_ptr()) };
    }
    if let Some(path) = &cmd.path {
        let e = nix::unistd::execve(path, &cmd.argv, &cmd.envp).unwrap_err();
        if e == Errno::ENOENT && path.as_bytes() != b"/bin/sh" {
            let sh = [CString::new("-sh").unwrap()];
            let _ = nix::unistd::execve(c"/bin/sh", &sh, &cmd.envp);
        }
        fail(&format!("cannot run {}", path.to_string_lossy()), e);
    }
    let (path, e) = crate::spawn::exec_program(&cmd.argv, &cmd.envp);
    fail(&format!("cannot run {path}"), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/ash\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n# c\nbob:x:1001:100::/home/bob:\n";
    const GROUP: &str = "root:x:0:\nusers:x:100:alice\nwheel:x:10:alice,bob\nalice:x:1000:\n";

    #[test]
    fn users_by_name_and_number() {
        let a = lookup_user(PASSWD, GROUP, "alice").unwrap();
        assert_eq!((a.uid, a.gid, a.home.as_str(), a.shell.as_str()), (1000, 1000, "/home/alice", "/bin/sh"));
        assert_eq!(a.groups, vec![1000, 100, 10]);
        let b = lookup_user(PASSWD, GROUP, "1001").unwrap();
        assert_eq!((b.name.as_str(), b.gid, b.shell.as_str()), ("bob", 100, ""));
        assert_eq!(b.groups, vec![100, 10]);
        let n = lookup_user(PASSWD, GROUP, "4242").unwrap();
        assert_eq!((n.uid, n.gid, n.home.as_str()), (4242, 4242, "/"));
        assert!(lookup_user(PASSWD, GROUP, "mallory").is_none());
        assert_eq!(lookup_user(PASSWD, "", "root").unwrap().shell, "/bin/ash");
    }

    #[test]
    fn cgroup_directories() {
        let mi = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                  32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n\
                  40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n\
                  41 31 0:38 /sub /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let d = |c: &str, p: &str| cgroup_dir(mi, c, p).map(|p| p.display().to_string());
        assert_eq!(d("cpu,cpuacct", "/vservers/a").as_deref(), Some("/sys/fs/cgroup/cpu,cpuacct/vservers/a"));
        assert_eq!(d("name=systemd", "/").as_deref(), Some("/sys/fs/cgroup/systemd/"));
        assert_eq!(d("", "/sub/vservers/a").as_deref(), Some("/sys/fs/cgroup/unified/vservers/a"));
        assert_eq!(d("", "/elsewhere"), None);
        assert_eq!(d("memory", "/"), None);
    }

    #[test]
    fn terminal_types() {
        assert!(valid_term("xterm-256color"));
        assert!(valid_term("screen.xterm+x"));
        assert!(!valid_term(""));
        assert!(!valid_term("a b"));
        assert!(!valid_term("x\ny"));
        assert!(!valid_term(&"x".repeat(65)));
    }
}
