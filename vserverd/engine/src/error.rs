//! The engine's error: which step failed, on what, and the errno. It is plain data so that it
//! crosses from the half-built context to its parent, and later from the monitor to the
//! daemon and over D-Bus, without turning into a string on the way.

use std::fmt;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The named steps of building a context, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Step {
    /// The plan is checked before anything is changed.
    Validate,
    /// The caller must be single-threaded: a fork from a threaded process is unsound.
    SingleThread,
    /// A unified vserver's own directory: its overlay marks moved to the namespace this start
    /// mounts it in (trusted.* or user.*), when the last start used the other.
    OverlayMarks,
    SealedExe,
    SyncChannel,
    /// clone(2) with the new namespaces.
    CloneNamespaces,
    /// The parent's host-side steps (cgroup, network links) before the child goes on.
    HostSetup,
    /// The plan's links against the host: its devices exist, it holds none of the addresses.
    NetCheck,
    /// A link made in the host's namespace and moved into the context's (macvlan, veth pair).
    NetLink,
    /// The host side of a link: the veth host end up, its routes, proxy ARP/NDP entries.
    NetHost,
    /// Inside the context's namespace: addresses, the link up, routes.
    NetInside,
    /// Bind mode: a private loopback slot, the addresses added to the host's device.
    BindAddr,
    /// Bind mode: a program (or the rules map) loaded into the kernel.
    BpfLoad,
    /// Bind mode: the programs attached to the context's cgroup and its rules written.
    BpfAttach,
    /// Bind mode: what a cgroup has attached, or a loaded program found by its id.
    BpfQuery,
    /// Bind mode: the programs detached from a cgroup.
    BpfDetach,
    /// User-namespace mode: the parent writes pid 1's uid and gid maps, claims its id range and
    /// makes the idmapped trees (the root, the overlay's layers, the bind mounts).
    IdMap,
    WaitParent,
    /// User-namespace mode: the child takes uid and gid 0 of its own user namespace.
    BecomeRoot,
    /// A cgroup namespace rooted where the parent placed pid 1 (a real init's guests).
    CgroupNs,
    MountPrivate,
    /// A unified vserver's root: an overlay of its template (read-only) and its own directory.
    Overlay,
    BindRoot,
    OpenHostMounts,
    PivotRoot,
    Proc,
    Sys,
    /// The guest's cgroup tree at /sys/fs/cgroup.
    Cgroup,
    Dev,
    DevPts,
    /// `/run` and `/run/lock` as tmpfs.
    Run,
    /// The plan's tmpfs mounts (`/tmp`).
    Tmpfs,
    ProcRestrict,
    BindMounts,
    Hostname,
    Domainname,
    Loopback,
    Rlimits,
    Nice,
    Capabilities,
    Seccomp,
    CloseFds,
    Exec,
    Registry,
    Join,
    /// The ptrace guard over a process that enters a context from outside.
    Guard,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Validate => "validate",
            Step::SingleThread => "single-thread",
            Step::SealedExe => "sealed-exe",
            Step::SyncChannel => "sync-channel",
            Step::CloneNamespaces => "clone-namespaces",
            Step::HostSetup => "host-setup",
            Step::NetCheck => "net-check",
            Step::NetLink => "net-link",
            Step::NetHost => "net-host",
            Step::NetInside => "net-inside",
            Step::BindAddr => "bind-addr",
            Step::BpfLoad => "bpf-load",
            Step::BpfAttach => "bpf-attach",
            Step::BpfQuery => "bpf-query",
            Step::BpfDetach => "bpf-detach",
            Step::IdMap => "id-map",
            Step::WaitParent => "wait-parent",
            Step::BecomeRoot => "become-root",
            Step::CgroupNs => "cgroup-ns",
            Step::MountPrivate => "mount-private",
            Step::Overlay => "overlay",
            Step::OverlayMarks => "overlay-marks",
            Step::BindRoot => "bind-root",
            Step::OpenHostMounts => "open-host-mounts",
            Step::PivotRoot => "pivot-root",
            Step::Proc => "proc",
            Step::Sys => "sys",
            Step::Cgroup => "cgroup",
            Step::Dev => "dev",
            Step::DevPts => "devpts",
            Step::Run => "run",
            Step::Tmpfs => "tmpfs",
            Step::ProcRestrict => "proc-restrict",
            Step::BindMounts => "bind-mounts",
            Step::Hostname => "hostname",
            Step::Domainname => "domainname",
            Step::Loopback => "loopback",
            Step::Rlimits => "rlimits",
            Step::Nice => "nice",
            Step::Capabilities => "capabilities",
            Step::Seccomp => "seccomp",
            Step::CloseFds => "close-fds",
            Step::Exec => "exec",
            Step::Registry => "registry",
            Step::Join => "join",
            Step::Guard => "guard",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed step: the step, the object it worked on, the errno and an optional explanation.
#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
pub struct SetupError {
    pub step: Step,
    /// The path (inside the vserver once its root is pivoted) or object the step worked on.
    pub path: Option<String>,
    /// The raw errno, 0 when the failure is not a system call's.
    pub errno: i32,
    pub detail: Option<String>,
}

impl SetupError {
    pub fn new(step: Step, path: impl Into<Option<String>>, errno: Errno) -> SetupError {
        SetupError { step, path: path.into(), errno: errno as i32, detail: None }
    }

    pub fn detail(step: Step, path: impl Into<Option<String>>, detail: impl Into<String>) -> SetupError {
        SetupError { step, path: path.into(), errno: 0, detail: Some(detail.into()) }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> SetupError {
        self.detail = Some(detail.into());
        self
    }

    pub fn errno(&self) -> Option<Errno> {
        (self.errno != 0).then(|| Errno::from_raw(self.errno))
    }
}

impl fmt::Display for SetupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {}", self.step)?;
        if let Some(p) = &self.path {
            write!(f, " on {p}")?;
        }
        if let Some(e) = self.errno() {
            write!(f, ": {} ({})", e.desc(), e)?;
        }
        if let Some(d) = &self.detail {
            write!(f, ": {d}")?;
        }
        Ok(())
    }
}

/// The errno of a failed I/O call (`EIO` when it carries none).
pub(crate) fn io_errno(e: &std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Shorthand: map an errno result to a step error on a path.
pub(crate) trait StepExt<T> {
    fn step(self, step: Step, path: &str) -> Result<T, SetupError>;
}

impl<T> StepExt<T> for Result<T, Errno> {
    fn step(self, step: Step, path: &str) -> Result<T, SetupError> {
        self.map_err(|e| SetupError::new(step, Some(path.to_string()), e))
    }
}
