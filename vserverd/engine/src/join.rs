//! Joining a running context (`chcontext --ctx N`): its namespaces and root, under the same
//! capability bounding set and seccomp filter as its own processes.
//!
//! The context is found in the registry and pinned with a pidfd whose start time is checked
//! after opening, so a recycled pid can never be joined by mistake.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::Path;

use nix::errno::Errno;
use nix::unistd::{fork, ForkResult};

use crate::caps::{self, CapSet};
use crate::error::{SetupError, Step, StepExt};
use crate::plan::LaunchPlan;
use crate::spawn::{environment, Exit};
use crate::{registry, seccomp, sys};

/// What the joining command runs as.
pub struct JoinRequest<'a> {
    pub run_dir: &'a Path,
    pub context: u32,
    pub argv: &'a [String],
    /// Extra capabilities to remove on top of the context's own bounding set.
    pub drop: CapSet,
}

/// Runs `argv` inside context `context` and waits for it.
pub fn join(req: &JoinRequest<'_>) -> Result<Exit, SetupError> {
    let ctx_name = req.context.to_string();
    let entry = registry::lookup(req.run_dir, req.context).ok_or_else(|| {
        SetupError::new(Step::Join, Some(format!("context {}", req.context)), Errno::ESRCH).with_detail("no such running context")
    })?;
    if entry.flags.private {
        return Err(SetupError::new(Step::Join, Some(format!("context {}", req.context)), Errno::EPERM)
            .with_detail("the context is private: nobody may enter it"));
    }
    if req.argv.is_empty() {
        return Err(SetupError::detail(Step::Validate, None, "no command given"));
    }
    let filter = seccomp::program(&entry.flags);
    let mut plan = LaunchPlan::new(&entry.name, None, crate::plan::Init::Fake { argv: req.argv.to_vec() });
    plan.caps = CapSet(entry.caps.0 & !req.drop.0);
    let env: Vec<CString> = environment(&plan)
        .into_iter()
        .filter_map(|(k, v)| CString::new(format!("{k}={v}")).ok())
        .collect();
    let argv: Vec<CString> = req.argv.iter().filter_map(|a| CString::new(a.as_str()).ok()).collect();
    // Our caller's environment stays on the host: the child, until its exec, shows our initial
    // environment block in /proc/PID/environ, where root inside could read it.
    sys::scrub_initial_environment();

    // Pin pid 1 of the context, then check it is still the registered process.
    let pidfd = sys::pidfd_open(entry.pid).map_err(|e| SetupError::new(Step::Join, Some(ctx_name.clone()), crate::error::io_errno(&e)))?;
    if sys::start_time(entry.pid) != Some(entry.start_time) {
        return Err(SetupError::new(Step::Join, Some(ctx_name), Errno::ESRCH).with_detail("the context ended"));
    }
    // A bind-mode context's rules are its cgroup's: a process that joins it joins its cgroups.
    if crate::enter::v2_cgroup_of(entry.pid).is_some_and(|d| crate::bindaddr::is_bound(&d)) {
        crate::enter::join_cgroups_of(entry.pid)?;
    }
    let root = crate::enter::pid1_root(entry.pid)?;
    let mut ns = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if entry.own_network {
        ns |= libc::CLONE_NEWNET;
    }
    // A guest with a real init has a cgroup namespace of its own: its view of /proc/PID/cgroup.
    // A context in a user namespace of its own: that one too (all at once, by the pidfd).
    ns |= crate::enter::differing_namespaces(entry.pid) & (libc::CLONE_NEWCGROUP | libc::CLONE_NEWUSER);
    // Not dumpable: only a tracer holding CAP_SYS_PTRACE may look at us from inside.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if unsafe { libc::setns(pidfd.as_raw_fd(), ns) } != 0 {
        return Err(SetupError::new(Step::Join, Some(ctx_name), Errno::last()).with_detail("setns"));
    }
    drop(pidfd);
    if ns & libc::CLONE_NEWUSER != 0 {
        crate::enter::become_root_of_joined()?;
    }
    // Before the capabilities are cut (chroot needs SYS_CHROOT).
    crate::enter::into_root(root)?;
    // Restrict ourselves before a child appears inside the context's PID namespace.
    caps::apply(plan.caps).step(Step::Capabilities, "bounding set")?;
    // The filter first: loading it without no_new_privs needs CAP_SYS_ADMIN, which the
    // context's own set may lack.
    filter.load().step(Step::Seccomp, "filter")?;
    caps::limit_process(plan.caps).step(Step::Capabilities, "permitted set")?;
    nix::unistd::chdir("/").step(Step::Join, "/")?;

    match unsafe { fork() }.step(Step::Join, "fork")? {
        ForkResult::Child => {
            let _ = sys::cloexec_from(3);
            let prog = argv[0].clone();
            let e = if req.argv[0].contains('/') {
                nix::unistd::execve(&prog, &argv, &env).unwrap_err()
            } else {
                nix::unistd::execvpe(&prog, &argv, &env).unwrap_err()
            };
            eprintln!("chcontext: cannot run {}: {}", req.argv[0], e.desc());
            unsafe { libc::_exit(127) };
        }
        ForkResult::Parent { child } => {
            crate::spawn::wait_exit(child.as_raw()).map_err(|e| SetupError::new(Step::Join, Some("wait".into()), e))
        }
    }
}
