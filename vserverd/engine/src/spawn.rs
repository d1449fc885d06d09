//! Building a context: the parent prepares everything that can be prepared outside (argv,
//! environment, the compiled seccomp filter, the sealed `vserver-init` binary), clones a child
//! into new namespaces, runs its host-side steps, then lets the child run its checklist and exec
//! pid 1.
//!
//! Sync points (parent ↔ child, over a close-on-exec SOCK_SEQPACKET pair):
//! 1. child cloned, waits;
//! 2. parent runs host-side steps (cgroup, links) for the child's pid, then sends "go";
//! 3. child runs its steps; a failure is sent back as data and the child exits;
//! 4. the exec closes the socket: the parent reads end-of-file, pid 1 is running.

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::socket::{recv, send, socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::{SetupError, Step, StepExt};
use crate::plan::{Init, LaunchPlan, LinkMode, Network};
use crate::{caps, cgroup, net, overlaymarks, vserver_init, registry, rootfs, seccomp, sys};

pub(crate) const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How pid 1 of a context ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    /// `reboot` inside: the kernel ended pid 1 with SIGHUP.
    pub fn is_reboot(self) -> bool {
        self == Exit::Signal(libc::SIGHUP)
    }

    /// `halt` or `poweroff` inside: the kernel ended pid 1 with SIGINT.
    pub fn is_halt(self) -> bool {
        self == Exit::Signal(libc::SIGINT)
    }

    /// The shell convention: the code, or 128 + the signal.
    pub fn code(self) -> i32 {
        match self {
            Exit::Code(c) => c,
            Exit::Signal(s) => 128 + s,
        }
    }

    pub fn from_status(ws: WaitStatus) -> Option<Exit> {
        match ws {
            WaitStatus::Exited(_, c) => Some(Exit::Code(c)),
            WaitStatus::Signaled(_, s, _) => Some(Exit::Signal(s as i32)),
            _ => None,
        }
    }
}

/// A running context, as its parent (the monitor) holds it.
#[derive(Debug, Clone)]
pub struct Context {
    pub context: u32,
    /// pid 1 of the context, as the host sees it.
    pub pid: i32,
    /// Its start time in clock ticks since boot: with `pid`, its identity.
    pub start_time: u64,
    pub run_dir: PathBuf,
    /// How long each child step took, when the plan asked for it (benchmarks).
    pub step_times: Vec<(Step, u64)>,
    /// The links made for the context (host ends, proxy entries, a handle on its namespace),
    /// removed by [`Context::cleanup_network`].
    pub network: Option<Arc<Mutex<net::Attached>>>,
    /// Bind mode: the cgroup's socket hooks, the addresses added to the host and the private
    /// loopback slot, removed by [`Context::cleanup_network`].
    pub bound: Option<Arc<Mutex<crate::bindaddr::Bound>>>,
    /// The vserver's name, as its plan said.
    pub name: String,
    /// User-namespace mode: the host ids its ids 0.. are, claimed until [`Context::release`].
    pub idmap: Option<crate::userns::IdMap>,
}

/// Waits for child `pid` to end (retrying on EINTR, skipping stop/continue reports).
pub(crate) fn wait_exit(pid: i32) -> Result<Exit, Errno> {
    loop {
        match waitpid(Pid::from_raw(pid), None) {
            Ok(ws) => {
                if let Some(exit) = Exit::from_status(ws) {
                    return Ok(exit);
                }
            }
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// What [`Context::cleanup_network`] removes, handed over to a program this one execs (a
/// monitor's end): plain data, naming the descriptors left open across the exec.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct NetworkHandover {
    pub attached: Option<net::attach::AttachedRecord>,
    pub bound: Option<crate::bindaddr::Bound>,
}

impl Context {
    /// Its network's handover (see [`NetworkHandover`]): the descriptors it names are left
    /// open across an exec. The context keeps its own: it still tears down if no exec comes.
    pub fn network_handover(&self) -> NetworkHandover {
        let attached = self.network.as_ref().and_then(|n| n.lock().ok().map(|a| a.record()));
        let bound = self.bound.as_ref().and_then(|b| b.lock().ok().map(|b| b.handover()));
        NetworkHandover { attached, bound }
    }

    /// The context a program that exec'd this one built, from its pid 1, registry number and
    /// [`Context::network_handover`]: what [`Context::cleanup_network`] and the registry's
    /// release need.
    ///
    /// # Safety
    /// The descriptors the handover names are the ones it was made with, open, and owned by
    /// nothing else in this process.
    pub unsafe fn taken_over(name: &str, context: u32, pid: i32, start_time: u64, run_dir: PathBuf, h: NetworkHandover) -> Context {
        // The id range is claimed by this very process (the pid and start time an exec keeps).
        let idmap = crate::userns::claimed(&run_dir, name);
        Context {
            context,
            pid,
            start_time,
            step_times: Vec::new(),
            network: h.attached.map(|r| Arc::new(Mutex::new(net::Attached::from_record(r)))),
            bound: h.bound.map(|b| Arc::new(Mutex::new(b))),
            name: name.to_string(),
            idmap,
            run_dir,
        }
    }

    /// Waits for pid 1 to end, then removes the context's links and its registry entry.
    pub fn wait(&self) -> Result<Exit, Errno> {
        let exit = wait_exit(self.pid)?;
        self.cleanup_network();
        self.release();
        Ok(exit)
    }

    /// Gives back the context number and the id range. For a caller that waits for pid 1
    /// itself: once pid 1 has ended and [`Context::cleanup_network`] has run.
    pub fn release(&self) {
        registry::release(&self.run_dir, self.context);
        if self.idmap.is_some() {
            crate::userns::release(&self.run_dir, &self.name);
        }
    }

    /// Removes what the context's links left on the host (the veth host ends with their
    /// routes, the proxy ARP/NDP entries) and the links inside, then lets its network namespace
    /// go. For a caller that waits for pid 1 itself: call it once pid 1 has ended, before the
    /// context number is released (a restart reuses the host ends' names). Idempotent.
    pub fn cleanup_network(&self) {
        if let Some(n) = &self.network {
            if let Ok(mut a) = n.lock() {
                a.teardown();
            }
        }
        if let Some(b) = &self.bound {
            if let Ok(mut b) = b.lock() {
                b.teardown();
            }
        }
    }

    /// The names of the veth host ends made for the context.
    pub fn host_ends(&self) -> Vec<String> {
        self.network.as_ref().and_then(|n| n.lock().ok().map(|a| a.host_ends())).unwrap_or_default()
    }

    pub fn signal(&self, sig: Signal) -> Result<(), Errno> {
        if sys::start_time(self.pid) != Some(self.start_time) {
            return Err(Errno::ESRCH);
        }
        kill(Pid::from_raw(self.pid), sig)
    }
}

#[derive(Debug, Serialize, Deserialize)]
enum ChildMessage {
    Failed(SetupError),
    Times(Vec<(Step, u64)>),
}

/// What the parent prepares so the child only runs system calls.
struct Prepared {
    exec: ExecTarget,
    argv: Vec<CString>,
    envp: Vec<CString>,
    filter: seccomp::Program,
    trace: bool,
}

enum ExecTarget {
    /// A program of the vserver (argv[0]), found in its root after the pivot.
    Program,
    /// `vserver-init` from its sealed memfd ([`vserver_init`](crate::vserver_init)): it runs the start command.
    Init(RawFd),
}

/// Builds the context the plan describes.
pub fn spawn(plan: &LaunchPlan) -> Result<Context, SetupError> {
    spawn_in(plan, Placement::default())
}

/// Where pid 1 is placed: its cgroups, and kernel objects its builder made ahead of the clone.
/// All data: the engine carries it out, no caller code runs inside a spawn.
#[derive(Debug, Default)]
pub struct Placement<'a> {
    /// The vserver's cgroups, made already ([`cgroup::create`]): pid 1 is born in the v2 one
    /// (`CLONE_INTO_CGROUP`: no migration afterwards, which would wait for an RCU grace period)
    /// and put in the others before it runs a single step.
    pub cgroups: Option<&'a cgroup::CgroupPlan>,
    /// A network namespace made ahead with `lo` up ([`net::ns::made_ahead`]), for a plan with
    /// its own network: pid 1 is born in it instead of a new one.
    pub netns: Option<OwnedFd>,
}

/// Builds the context with pid 1 placed as `placement` says.
pub fn spawn_in(plan: &LaunchPlan, placement: Placement<'_>) -> Result<Context, SetupError> {
    validate(plan)?;
    if sys::thread_count() != Some(1) {
        return Err(SetupError::detail(
            Step::SingleThread,
            None,
            "the process building a context must be single-threaded (the daemon re-execs a helper)",
        ));
    }
    let prepared = prepare(plan)?;
    if plan.context != 0 {
        registry::check_free(&plan.run_dir, plan.context)?;
    }
    // Before anything runs on the layer: its marks where this start's overlay reads them.
    if let Some(o) = &plan.overlay {
        let marks = if plan.userns.is_some() { overlaymarks::Marks::User } else { overlaymarks::Marks::Trusted };
        overlaymarks::prepare(&o.upper, marks)?;
    }
    let v2_dir = placement.cgroups.and_then(|c| c.v2_dir.as_deref());
    let cgroup_fd = match v2_dir {
        Some(dir) => Some(sys::open_cgroup_dir(dir).step(Step::HostSetup, &dir.display().to_string())?),
        None => None,
    };
    // A network namespace of a user-namespace context is born with it: owned by it, so that
    // root inside may mount its sysfs.
    let netns = placement.netns.filter(|_| plan.network == Network::None && plan.userns.is_none());
    // Bind mode: the cgroup pid 1 is born in carries the hooks (attached while it builds its root).
    let bind_dir = match &plan.bind {
        Some(b) => Some(b.cgroup.as_deref().or(v2_dir).ok_or_else(|| {
            SetupError::detail(Step::Validate, None, "bind mode needs a cgroup of the v2 tree to carry its socket hooks")
        })?),
        None => None,
    };
    // User-namespace mode: the range, claimed for this process (the monitor) before the clone.
    let idmap = match &plan.userns {
        Some(crate::userns::UserNsPlan::Own) | None => None,
        Some(u) => Some(crate::userns::claim(&plan.run_dir, &plan.name, u)?),
    };
    let done = spawn_prepared(plan, &prepared, placement.cgroups, cgroup_fd.as_ref().map(|f| f.as_raw_fd()), netns, bind_dir, idmap);
    if done.is_err() && idmap.is_some() {
        crate::userns::release(&plan.run_dir, &plan.name);
    }
    done
}

/// The parent's side, in order: clone pid 1 (into its cgroup and namespace when made ahead),
/// place it in its cgroups, attach its links, let it go, read its steps until its exec, and
/// register the context.
fn spawn_prepared(
    plan: &LaunchPlan,
    prepared: &Prepared,
    cgroups: Option<&cgroup::CgroupPlan>,
    cgroup: Option<RawFd>,
    netns: Option<OwnedFd>,
    bind_dir: Option<&std::path::Path>,
    idmap: Option<crate::userns::IdMap>,
) -> Result<Context, SetupError> {
    let (parent_sock, child_sock) =
        socketpair(AddressFamily::Unix, SockType::SeqPacket, None, SockFlag::SOCK_CLOEXEC).step(Step::SyncChannel, "socketpair")?;

    let mut flags = libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if plan.network == Network::None && netns.is_none() {
        flags |= libc::CLONE_NEWNET;
    }
    if plan.userns.is_some() {
        // Every namespace made with it is owned by it: root inside has its capabilities over
        // them, and over nothing of the host's.
        flags |= libc::CLONE_NEWUSER;
    }
    if let Some(m) = &idmap {
        // The console is root's inside (a pty of the host's devpts, owned by host root otherwise).
        if let Some(c) = &plan.console {
            let _ = nix::unistd::chown(c, Some(nix::unistd::Uid::from_raw(m.uid)), Some(nix::unistd::Gid::from_raw(m.gid)));
        }
    }
    let clone = || {
        let born_in = cgroup.map(|fd| sys::clone_into_cgroup(flags, fd));
        match born_in {
            Some(Ok(pid)) => Ok((pid, true)),
            _ => sys::clone_fork(flags).map(|pid| (pid, false)),
        }
    };
    // Born in the namespace made ahead: the parent enters it for the clone and leaves it at
    // once (the child, of course, stays).
    let own_ns = match &netns {
        Some(ns) => Some(net::ns::enter(ns).step(Step::CloneNamespaces, "network namespace made ahead")?),
        None => None,
    };
    let cloned = clone();
    if let (Some(own), false) = (&own_ns, matches!(cloned, Ok((0, _)))) {
        net::ns::leave(own);
    }
    drop(own_ns);
    let own_ids = plan.userns == Some(crate::userns::UserNsPlan::Own);
    let (pid, born_in) = match cloned {
        Err(e) if own_ids => {
            let sysctl = |p: &str| std::fs::read_to_string(format!("/proc/sys/{p}")).ok();
            return Err(SetupError::new(Step::CloneNamespaces, Some(plan.name.clone()), e).with_detail(crate::userns::refusal(e, sysctl)));
        }
        r => r.step(Step::CloneNamespaces, &plan.name)?,
    };
    if pid == 0 {
        drop(parent_sock);
        let err = child_main(plan, prepared, child_sock.as_raw_fd(), netns.is_some());
        let msg = serde_json::to_vec(&ChildMessage::Failed(err)).unwrap_or_default();
        let _ = send(child_sock.as_raw_fd(), &msg, MsgFlags::empty());
        unsafe { libc::_exit(127) };
    }
    drop(child_sock);
    // pid 1's identity, read while it waits for us: its start time is set at the clone and
    // never changes, and read now it cannot race with its exec or its end.
    let start_time = sys::start_time(pid).unwrap_or(0);

    let mut network: Option<net::Attached> = None;
    let mut bound: Option<crate::bindaddr::Bound> = None;
    let fail_with = |e: SetupError, network: &mut Option<net::Attached>, bound: &mut Option<crate::bindaddr::Bound>| -> Result<Context, SetupError> {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = waitpid(Pid::from_raw(pid), None);
        // The namespace is still held by the parent's socket in it: nothing lingers.
        if let Some(n) = network.as_mut() {
            n.teardown();
        }
        if let Some(b) = bound.as_mut() {
            b.teardown();
        }
        Err(e)
    };
    // Its cgroups before it runs a single step: the v2 one it was born in (unless the kernel or
    // the cgroup refused, and it was cloned plainly), the v1 ones a hybrid host needs.
    if let Some(cg) = cgroups {
        let already = if born_in { cg.v2_dir.as_deref() } else { None };
        if let Err(e) = cgroup::attach(cg, pid, already) {
            return fail_with(e.into(), &mut network, &mut bound);
        }
    }
    let mut trees: Vec<OwnedFd> = Vec::new();
    if own_ids {
        let (uid, gid) = (nix::unistd::geteuid().as_raw(), nix::unistd::getegid().as_raw());
        let mapped = match crate::userns::write_subid_maps(pid, uid, gid) {
            Ok(true) => Ok(()),
            Ok(false) => crate::userns::write_own_maps(pid, uid, gid),
            Err(e) => Err(e),
        };
        if let Err(e) = mapped {
            return fail_with(e, &mut network, &mut bound);
        }
    }
    if let Some(m) = &idmap {
        match user_side(plan, pid, m, cgroups) {
            Ok(t) => trees = t,
            Err(e) => return fail_with(e, &mut network, &mut bound),
        }
    }
    let mut step_times = Vec::new();
    if !plan.links.is_empty() {
        match net::attach(plan, pid) {
            Ok(n) => {
                if prepared.trace {
                    step_times.extend(n.times.iter().copied());
                }
                network = Some(n)
            }
            Err(e) => return fail_with(e, &mut network, &mut bound),
        }
    }
    if let Err(e) = send_go(parent_sock.as_fd(), trees) {
        return fail_with(SetupError::new(Step::SyncChannel, Some("go".into()), e), &mut network, &mut bound);
    }
    // Bind mode, while the child builds its root (no socket of its own yet): the hooks on its
    // cgroup, then the word without which it does not exec. No instruction of the guest runs
    // unbound, and the binding costs the start nothing but what the child's steps do not hide.
    if let (Some(b), Some(dir)) = (&plan.bind, bind_dir) {
        // Root of a user namespace holds CAP_NET_BIND_SERVICE over its own namespaces only: the
        // programs let it bind below 1024 on the host's stack, as root of a privileged vserver may.
        match crate::bindaddr::bind(b, &plan.name, plan.context, &plan.run_dir, dir, idmap.map(|m| m.uid)) {
            Ok(x) => bound = Some(x),
            Err(e) => return fail_with(e, &mut network, &mut bound),
        }
        if let Err(e) = send(parent_sock.as_raw_fd(), b"b", MsgFlags::empty()) {
            return fail_with(SetupError::new(Step::SyncChannel, Some("bound".into()), e), &mut network, &mut bound);
        }
    }
    let mut fail = |e: SetupError| fail_with(e, &mut network, &mut bound);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match recv(parent_sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => n,
            Err(Errno::EINTR) => continue,
            Err(e) => return fail(SetupError::new(Step::SyncChannel, Some("result".into()), e)),
        };
        if n == 0 {
            break; // exec happened: the close-on-exec socket is gone.
        }
        match serde_json::from_slice::<ChildMessage>(&buf[..n]) {
            Ok(ChildMessage::Times(t)) => step_times.extend(t),
            Ok(ChildMessage::Failed(e)) => return fail(e),
            Err(e) => return fail(SetupError::detail(Step::SyncChannel, None, format!("bad message from child: {e}"))),
        }
    }
    let (owner_pid, owner_start_time) = registry::me();
    let entry = registry::Entry {
        context: plan.context,
        name: plan.name.clone(),
        pid,
        start_time,
        owner_pid,
        owner_start_time,
        flags: plan.flags,
        caps: plan.caps,
        own_network: plan.network == Network::None,
    };
    // The number is claimed and published in one step now that pid 1 is known.
    let context = match registry::register(&plan.run_dir, &entry) {
        Ok(n) => n,
        Err(e) => return fail(e),
    };
    let network = network.map(|n| Arc::new(Mutex::new(n)));
    let bound = bound.map(|b| Arc::new(Mutex::new(b)));
    Ok(Context { context, pid, start_time, run_dir: plan.run_dir.clone(), step_times, network, bound, name: plan.name.clone(), idmap })
}

/// Step `id-map`, the parent's side for a context in a user namespace: pid 1's maps; its guest
/// cgroup given to its root (a real init manages the tree below); the idmapped trees it
/// attaches (the root, or a unified root's layers; the bind mounts) and, on the host's
/// network, a sysfs of it.
fn user_side(plan: &LaunchPlan, pid: i32, m: &crate::userns::IdMap, cgroups: Option<&cgroup::CgroupPlan>) -> Result<Vec<OwnedFd>, SetupError> {
    use crate::sys::{MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
    use crate::userns::idmapped_tree;
    crate::userns::write_maps(pid, m)?;
    let ns = crate::userns::open_ns(pid)?;
    if let Some(dir) = cgroups.and_then(|c| c.guest_dir.as_deref()) {
        // What systemd delegates: the directory and the files that create and move (the
        // controllers' files stay the host's).
        for f in ["", "cgroup.procs", "cgroup.threads", "cgroup.subtree_control"] {
            let p = if f.is_empty() { dir.to_path_buf() } else { dir.join(f) };
            nix::unistd::chown(&p, Some(nix::unistd::Uid::from_raw(m.uid)), Some(nix::unistd::Gid::from_raw(m.gid)))
                .step(Step::IdMap, &p.display().to_string())?;
        }
    }
    let mut trees = Vec::new();
    match (&plan.overlay, &plan.root) {
        (Some(o), _) => {
            // The template read-only through the idmap as well: nothing inside writes it.
            trees.push(idmapped_tree(&o.lower, ns.as_fd(), MOUNT_ATTR_RDONLY)?);
            let own = o.upper.parent().filter(|p| Some(*p) == o.work.parent()).ok_or_else(|| {
                SetupError::detail(Step::IdMap, Some(o.upper.display().to_string()), "in a user namespace the overlay's upper and work directories must share their parent")
            })?;
            trees.push(idmapped_tree(own, ns.as_fd(), 0)?);
        }
        (None, Some(root)) => trees.push(idmapped_tree(root, ns.as_fd(), 0)?),
        (None, None) => {}
    }
    for b in &plan.mounts {
        let attrs = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | if b.readonly { MOUNT_ATTR_RDONLY } else { 0 };
        let tree = match idmapped_tree(&b.source, ns.as_fd(), attrs) {
            // A filesystem that cannot be idmapped (FUSE, tmpfs before 6.3, NFS) is bound as it
            // is: its files keep their host owners, of which root inside holds none (they show
            // as the overflow id), so it reaches only what their modes give everybody.
            Err(e) if e.errno() == Some(Errno::EINVAL) => crate::userns::plain_tree(&b.source, attrs)?,
            r => r?,
        };
        trees.push(tree);
    }
    if plan.network == Network::Host && plan.root.is_some() {
        let attrs = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        trees.push(crate::sys::fs_create("sysfs", &[], attrs).step(Step::IdMap, "/sys")?);
    }
    Ok(trees)
}

/// Sync point 2's word, with the parent's trees for a user-namespace context: as many messages
/// as the descriptors need (`t`), the last one `g`.
fn send_go(sock: std::os::fd::BorrowedFd<'_>, trees: Vec<OwnedFd>) -> Result<(), Errno> {
    let fds: Vec<std::os::fd::BorrowedFd<'_>> = trees.iter().map(|t| t.as_fd()).collect();
    let mut chunks: Vec<&[std::os::fd::BorrowedFd<'_>]> = fds.chunks(crate::fdpass::MAX_FDS).collect();
    let last = chunks.pop().unwrap_or(&[]);
    for c in chunks {
        crate::fdpass::send(sock, b"t", c)?;
    }
    crate::fdpass::send(sock, b"g", last)
}

/// The child's side of sync point 2: waits for `g`, gathering the trees sent before it.
fn wait_go(sock: RawFd) -> Result<Vec<OwnedFd>, SetupError> {
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    let sock = unsafe { std::os::fd::BorrowedFd::borrow_raw(sock) };
    let mut trees = Vec::new();
    loop {
        match crate::fdpass::recv(sock, 1) {
            Ok(Some((word, fds))) => {
                trees.extend(fds);
                if word.as_slice() == b"g" {
                    return Ok(trees);
                }
            }
            Ok(None) => unsafe { libc::_exit(1) }, // the parent is gone
            Err(e) => return Err(SetupError::new(Step::WaitParent, None, e)),
        }
    }
}

fn validate(plan: &LaunchPlan) -> Result<(), SetupError> {
    let argv = match &plan.init {
        Init::Fake { argv } => argv,
        Init::Rc { start, .. } => start,
    };
    if argv.is_empty() || argv[0].is_empty() {
        return Err(SetupError::detail(Step::Validate, None, "the init command is empty"));
    }
    plan.flags.check().map_err(|e| SetupError::detail(Step::Validate, None, e))?;
    if let Some(root) = &plan.root {
        if !root.is_absolute() {
            return Err(SetupError::detail(Step::Validate, Some(root.display().to_string()), "the root must be an absolute path"));
        }
        let md = std::fs::symlink_metadata(root)
            .map_err(|e| SetupError::new(Step::Validate, Some(root.display().to_string()), crate::error::io_errno(&e)))?;
        if !md.is_dir() {
            return Err(SetupError::detail(Step::Validate, Some(root.display().to_string()), "the root is not a directory"));
        }
    }
    if let Some(o) = &plan.overlay {
        if plan.root.is_none() {
            return Err(SetupError::detail(Step::Validate, None, "an overlay needs a root"));
        }
        for p in [&o.lower, &o.upper, &o.work] {
            let s = p.display().to_string();
            // overlayfs splits its options on these; a path holding one would change their meaning.
            if !p.is_absolute() || s.contains([',', ':', '\\', '\0']) {
                return Err(SetupError::detail(Step::Validate, Some(s), "overlay directories must be absolute paths without ',', ':' or '\\'"));
            }
        }
    }
    if plan.root.is_none() && (plan.init_fs != crate::plan::InitFs::default() || !plan.tmpfs.is_empty()) {
        return Err(SetupError::detail(Step::Validate, None, "the mounts of a real init and tmpfs mounts need a root"));
    }
    for t in &plan.tmpfs {
        if !t.starts_with('/') || t.split('/').any(|c| c == "..") || t.contains('\0') || t.trim_matches('/').is_empty() {
            return Err(SetupError::detail(Step::Validate, Some(t.clone()), "a tmpfs target must be an absolute path below / without '..'"));
        }
    }
    for (k, _) in &plan.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(SetupError::detail(Step::Validate, None, format!("bad environment variable name {k:?}")));
        }
    }
    validate_links(plan)?;
    crate::bindaddr::bound::validate(plan)?;
    for name in [&plan.hostname, &plan.domainname].into_iter().flatten() {
        if name.len() > 64 || name.contains('\0') {
            return Err(SetupError::detail(Step::Validate, None, format!("bad host or domain name {name:?}")));
        }
    }
    Ok(())
}

/// An interface name the kernel accepts: 1 to 15 bytes, no `/`, `:` or white space.
fn valid_ifname(name: &str) -> bool {
    (1..=15).contains(&name.len()) && name != "." && name != ".." && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':')
}

fn validate_links(plan: &LaunchPlan) -> Result<(), SetupError> {
    let bad = |what: String| Err(SetupError::detail(Step::Validate, None, what));
    if !plan.links.is_empty() && plan.network != Network::None {
        return bad("links need a network namespace of the context's own (network none)".into());
    }
    let mut names = std::collections::BTreeSet::new();
    for l in &plan.links {
        if !valid_ifname(&l.name) || l.name == "lo" || !names.insert(l.name.as_str()) {
            return bad(format!("bad or repeated interface name {:?}", l.name));
        }
        for n in l.host_name.iter().chain(&l.device) {
            if !valid_ifname(n) {
                return bad(format!("bad interface name {n:?}"));
            }
        }
        if matches!(l.mode, LinkMode::Macvlan | LinkMode::Bridge) && l.device.is_none() {
            return bad(format!("{} link {} needs a device", l.mode.name(), l.name));
        }
        for a in &l.addresses {
            let max = if a.addr.is_ipv4() { 32 } else { 128 };
            if a.prefix > max || a.addr.is_unspecified() || a.addr.is_multicast() || a.addr.is_loopback() {
                return bad(format!("bad address {a}"));
            }
        }
        for (i, g) in l.gateways.iter().enumerate() {
            if !l.addresses.iter().any(|a| a.addr.is_ipv4() == g.is_ipv4()) {
                return bad(format!("gateway {g} has no address of its family on {}", l.name));
            }
            if l.gateways[..i].iter().any(|o| o.is_ipv4() == g.is_ipv4()) {
                return bad(format!("more than one gateway of the family of {g} on {}", l.name));
            }
        }
    }
    Ok(())
}

fn cstrings(v: &[String], what: &str) -> Result<Vec<CString>, SetupError> {
    v.iter()
        .map(|s| CString::new(s.as_str()).map_err(|_| SetupError::detail(Step::Validate, None, format!("{what} holds a NUL byte"))))
        .collect()
}

/// The environment of pid 1: clean, whatever the caller's was.
pub fn environment(plan: &LaunchPlan) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("container".into(), "vserver".into()),
        ("PATH".into(), DEFAULT_PATH.into()),
        ("TERM".into(), std::env::var("TERM").ok().filter(|t| !t.is_empty() && t.len() < 64).unwrap_or_else(|| "linux".into())),
    ];
    for (k, v) in &plan.env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

fn prepare(plan: &LaunchPlan) -> Result<Prepared, SetupError> {
    let filter = seccomp::program(&plan.flags);
    caps::last_cap(); // read now, so the child does not have to
    let env = environment(plan);
    let envp = cstrings(&env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(), "the environment")?;
    let (exec, argv) = match &plan.init {
        Init::Fake { argv } => (ExecTarget::Program, cstrings(argv, "the init command")?),
        Init::Rc { start, stop, exit_with_start } => {
            let stop = match stop {
                Some(s) if !s.is_empty() => Some(cstrings(s, "the stop command")?),
                _ => None,
            };
            let start = cstrings(start, "the start command")?;
            (ExecTarget::Init(vserver_init::binary()?), vserver_init::argv(&start, stop.as_deref(), *exit_with_start, envp.len())?)
        }
    };
    Ok(Prepared { exec, argv, envp, filter, trace: std::env::var_os("VSERVER_TRACE_STEPS").is_some() })
}

/// The child's checklist. Returns only on failure.
#[allow(unused_assignments)] // the step clock's last update
fn child_main(plan: &LaunchPlan, prep: &Prepared, sock: RawFd, lo_is_up: bool) -> SetupError {
    let mut times: Vec<(Step, u64)> = Vec::new();
    let mut clock = Instant::now();
    macro_rules! step {
        ($step:expr, $e:expr) => {{
            match $e {
                Ok(v) => {
                    if prep.trace {
                        let now = Instant::now();
                        times.push(($step, now.duration_since(clock).as_nanos() as u64));
                        clock = now;
                    }
                    v
                }
                Err(err) => return err,
            }
        }};
    }

    // Sync point 1: die with the parent while half-built; wait for its "go".
    let trees = step!(Step::WaitParent, wait_go(sock));
    let mut user = plan.userns.map(|_| split_trees(plan, trees));
    // pid 1 starts clean: no blocked signal, no ignored signal inherited from the builder.
    reset_signals();
    if plan.init_fs.cgroup {
        // Now that the parent has placed us in our cgroups: where we are becomes the root of
        // the guest's cgroup view, and everything above it (the host's limits) is out of sight.
        step!(Step::CgroupNs, nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP).step(Step::CgroupNs, "cgroup namespace"));
    }

    unsafe { libc::umask(0) };
    match &plan.root {
        Some(root) => {
            step!(Step::MountPrivate, rootfs::make_private());
            let top = match user.as_mut() {
                Some(u) => {
                    // Still uid 0 of the host: the host paths first (the roots' base is 0700).
                    let staged = step!(Step::BindRoot, rootfs::stage_user_root(root, plan.overlay.as_ref(), u));
                    step!(Step::BecomeRoot, become_root_inside());
                    Some(step!(Step::Overlay, rootfs::finish_user_root(staged)))
                }
                None => {
                    if let Some(o) = &plan.overlay {
                        step!(Step::Overlay, rootfs::mount_overlay(root, o));
                    }
                    step!(Step::BindRoot, rootfs::bind_root(root));
                    None
                }
            };
            let mut host = step!(Step::OpenHostMounts, rootfs::open_host_mounts(plan, user.as_mut()));
            match &top {
                Some(t) => step!(Step::PivotRoot, rootfs::pivot_to(t.as_fd())),
                None => step!(Step::PivotRoot, rootfs::pivot(root)),
            }
            drop(top);
            let rootfd = step!(Step::PivotRoot, rootfs::open_root());
            step!(Step::Proc, rootfs::mount_proc(rootfd.as_fd(), &host));
            step!(Step::Sys, rootfs::mount_sys(rootfd.as_fd(), &host));
            if plan.init_fs.cgroup {
                step!(Step::Cgroup, rootfs::mount_cgroup(rootfd.as_fd()));
            }
            step!(Step::Dev, rootfs::mount_dev(rootfd.as_fd(), &mut host));
            if plan.init_fs.run {
                step!(Step::Run, rootfs::mount_run(rootfd.as_fd()));
            }
            step!(Step::Tmpfs, rootfs::mount_tmpfs(rootfd.as_fd(), &plan.tmpfs));
            step!(Step::ProcRestrict, rootfs::restrict_proc(rootfd.as_fd()));
            step!(Step::BindMounts, rootfs::attach_binds(rootfd.as_fd(), &mut host));
        }
        None => {
            step!(Step::MountPrivate, rootfs::make_private());
            if user.is_some() {
                step!(Step::BecomeRoot, become_root_inside());
            }
            step!(Step::Proc, rootfs::remount_proc_in_place());
        }
    }
    unsafe { libc::umask(0o022) };

    if let Some(h) = &plan.hostname {
        step!(Step::Hostname, nix::unistd::sethostname(h).step(Step::Hostname, h));
    }
    if let Some(d) = &plan.domainname {
        step!(Step::Domainname, set_domainname(d));
    }
    if plan.network == Network::None && !lo_is_up {
        step!(Step::Loopback, net::loopback_up());
    }
    step!(Step::Rlimits, apply_rlimits(plan));
    if let Some(n) = plan.nice {
        step!(Step::Nice, apply_nice(n));
    }
    step!(Step::Capabilities, caps::apply(plan.caps).step(Step::Capabilities, "bounding set"));
    step!(Step::Seccomp, prep.filter.load().step(Step::Seccomp, "filter"));
    // Only 0, 1 and 2 survive the exec; the sync socket closes with it and tells the parent.
    step!(Step::CloseFds, sys::cloexec_from(3).step(Step::CloseFds, "3.."));
    if prep.trace {
        let msg = serde_json::to_vec(&ChildMessage::Times(times)).unwrap_or_default();
        let _ = send(sock, &msg, MsgFlags::empty());
    }
    if plan.bind.is_some() {
        // Bind mode: the parent has bound our cgroup by now, or says so before we exec.
        if let Err(e) = wait_parent(sock) {
            return e;
        }
    }
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, 0, 0, 0, 0) };
    if let ExecTarget::Init(fd) = prep.exec {
        return vserver_init::exec(fd, &prep.argv, &prep.envp);
    }
    exec(prep)
}

/// Step `become-root` in a user namespace: uid and gid 0 of it, before anything is made (a
/// file made by an id the namespace does not map is refused); the credentials' change cleared
/// the parent-death signal, set again.
fn become_root_inside() -> Result<(), SetupError> {
    crate::userns::become_root()?;
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    Ok(())
}

/// The parent's trees in the order [`user_side`] made them.
fn split_trees(plan: &LaunchPlan, trees: Vec<OwnedFd>) -> rootfs::UserTrees {
    let mut it = trees.into_iter();
    let mut u = rootfs::UserTrees::default();
    match (&plan.overlay, &plan.root) {
        (Some(_), _) => u.layers = it.next().zip(it.next()),
        (None, Some(_)) => u.root = it.next(),
        (None, None) => {}
    }
    u.binds = it.by_ref().take(plan.mounts.len()).collect();
    u.sys = it.next();
    u
}

/// Empty signal mask, every disposition back to default: a new pid 1 (or an entering command)
/// inherits nothing of the builder's signal handling.
pub(crate) fn reset_signals() {
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
    }
}

fn wait_parent(sock: RawFd) -> Result<(), SetupError> {
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    let mut b = [0u8; 1];
    loop {
        match recv(sock, &mut b, MsgFlags::empty()) {
            Ok(1) => return Ok(()),
            Ok(_) => unsafe { libc::_exit(1) }, // the parent is gone
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(SetupError::new(Step::WaitParent, None, e)),
        }
    }
}

fn set_domainname(name: &str) -> Result<(), SetupError> {
    if unsafe { libc::setdomainname(name.as_ptr() as *const libc::c_char, name.len()) } != 0 {
        return Err(SetupError::new(Step::Domainname, Some(name.to_string()), Errno::last()));
    }
    Ok(())
}

fn apply_rlimits(plan: &LaunchPlan) -> Result<(), SetupError> {
    for r in &plan.rlimits {
        let lim = libc::rlimit { rlim_cur: r.soft, rlim_max: r.hard };
        if unsafe { libc::setrlimit(r.resource.raw(), &lim) } != 0 {
            return Err(SetupError::new(Step::Rlimits, Some(r.resource.name().to_string()), Errno::last()));
        }
    }
    Ok(())
}

/// The paper's S_NICE: pid 1 starts at `nice`, and RLIMIT_NICE keeps every process inside from
/// going below it: the limit becomes 20 - nice, or stays lower if it already is (the usual hard
/// limit is 0: nobody without CAP_SYS_NICE may lower a niceness at all). Raising it back needs
/// CAP_SYS_RESOURCE, which root inside lacks.
fn apply_nice(nice: i32) -> Result<(), SetupError> {
    let nice = nice.clamp(-20, 19);
    if unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) } != 0 {
        return Err(SetupError::new(Step::Nice, Some(nice.to_string()), Errno::last()));
    }
    let mut cur = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    unsafe { libc::getrlimit(libc::RLIMIT_NICE, &mut cur) };
    let ceiling = ((20 - nice) as u64).min(cur.rlim_max);
    let lim = libc::rlimit { rlim_cur: ceiling, rlim_max: ceiling };
    if unsafe { libc::setrlimit(libc::RLIMIT_NICE, &lim) } != 0 {
        return Err(SetupError::new(Step::Nice, Some("RLIMIT_NICE".into()), Errno::last()));
    }
    Ok(())
}

/// Execs `argv[0]` (searched in the vserver's default PATH when it has no `/`); returns only on
/// failure, with the path tried last and the errno.
pub(crate) fn exec_program(argv: &[CString], envp: &[CString]) -> (String, Errno) {
    let prog = argv[0].to_string_lossy().into_owned();
    let candidates: Vec<String> =
        if prog.contains('/') { vec![prog.clone()] } else { DEFAULT_PATH.split(':').map(|d| format!("{d}/{prog}")).collect() };
    for c in &candidates {
        let Ok(path) = CString::new(c.as_str()) else { continue };
        match nix::unistd::execve(&path, argv, envp) {
            Err(Errno::ENOENT) | Err(Errno::ENOTDIR) => continue,
            Err(e) => return (c.clone(), e),
            Ok(_) => unreachable!(),
        }
    }
    (prog, Errno::ENOENT)
}

fn exec(prep: &Prepared) -> SetupError {
    let (path, e) = exec_program(&prep.argv, &prep.envp);
    SetupError::new(Step::Exec, Some(path), e)
}
