//! The launch plan: plain data saying what context to build. Nothing here touches the system;
//! the daemon builds a plan from a vserver's config, `chcontext` from its options.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::caps::CapSet;

/// The paper's S_FLAGS that the engine acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    /// No new contexts from inside: seccomp also denies mount, umount2, pivot_root, unshare,
    /// setns and clone/clone3 with namespace flags.
    pub lock: bool,
    /// Nobody may enter the context later (`chcontext --ctx`, `vserverctl enter`).
    pub private: bool,
    /// The paper's `nproc` (a process cap for the whole vserver): acted on by the daemon's cgroup.
    pub nproc: bool,
    /// The paper's `sched` (the vserver weighs as one unit): acted on by the daemon's cgroup.
    pub sched: bool,
}

impl Flags {
    /// Parses a flag name of the paper; `fakeinit` is not a flag here but an [`Init`] mode.
    pub fn set(&mut self, name: &str) -> Result<(), String> {
        match name {
            "lock" => self.lock = true,
            "private" => self.private = true,
            "nproc" => self.nproc = true,
            "sched" => self.sched = true,
            other => return Err(format!("unknown flag {other:?} (known: lock, private, fakeinit, nproc, sched)")),
        }
        Ok(())
    }
}

/// What runs as pid 1 of the context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Init {
    /// The paper's `fakeinit`: the vserver's own init (for example `/sbin/init`) is pid 1.
    Fake { argv: Vec<String> },
    /// The paper's default: a tiny reaper is pid 1; it runs `start`, reaps orphans, and at stop
    /// runs `stop` (if any) before ending every process.
    Rc {
        start: Vec<String>,
        stop: Option<Vec<String>>,
        /// End the context when `start` exits (chcontext's behaviour), rather than keep
        /// serving the services it started (a vserver's behaviour).
        exit_with_start: bool,
    },
}

/// Which namespaces are new. A vserver gets all; `chcontext` without a root keeps the network
/// and changes no root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// A new network namespace holding only `lo`, up.
    None,
    /// The host's network namespace (the paper's untied `IPROOT=0.0.0.0`).
    Host,
}

/// One resource limit (the paper's ULIMIT), applied to pid 1 and inherited by all below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    pub resource: Resource,
    pub soft: u64,
    pub hard: u64,
}

/// The rlimits a config may set, by their `ulimit` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resource {
    Nofile,
    Nproc,
    Memlock,
    As,
    Core,
    Cpu,
    Data,
    Fsize,
    Locks,
    Msgqueue,
    Rss,
    Rtprio,
    Sigpending,
    Stack,
}

impl Resource {
    pub const ALL: [(&'static str, Resource); 14] = [
        ("nofile", Resource::Nofile),
        ("nproc", Resource::Nproc),
        ("memlock", Resource::Memlock),
        ("as", Resource::As),
        ("core", Resource::Core),
        ("cpu", Resource::Cpu),
        ("data", Resource::Data),
        ("fsize", Resource::Fsize),
        ("locks", Resource::Locks),
        ("msgqueue", Resource::Msgqueue),
        ("rss", Resource::Rss),
        ("rtprio", Resource::Rtprio),
        ("sigpending", Resource::Sigpending),
        ("stack", Resource::Stack),
    ];

    pub fn from_name(name: &str) -> Option<Resource> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
    }

    pub fn name(self) -> &'static str {
        Self::ALL.iter().find(|(_, r)| *r == self).map(|(n, _)| *n).unwrap_or("?")
    }

    pub(crate) fn raw(self) -> libc::__rlimit_resource_t {
        match self {
            Resource::Nofile => libc::RLIMIT_NOFILE,
            Resource::Nproc => libc::RLIMIT_NPROC,
            Resource::Memlock => libc::RLIMIT_MEMLOCK,
            Resource::As => libc::RLIMIT_AS,
            Resource::Core => libc::RLIMIT_CORE,
            Resource::Cpu => libc::RLIMIT_CPU,
            Resource::Data => libc::RLIMIT_DATA,
            Resource::Fsize => libc::RLIMIT_FSIZE,
            Resource::Locks => libc::RLIMIT_LOCKS,
            Resource::Msgqueue => libc::RLIMIT_MSGQUEUE,
            Resource::Rss => libc::RLIMIT_RSS,
            Resource::Rtprio => libc::RLIMIT_RTPRIO,
            Resource::Sigpending => libc::RLIMIT_SIGPENDING,
            Resource::Stack => libc::RLIMIT_STACK,
        }
    }
}

/// A host directory bound into the vserver (the paper's `NAME.sh` `mount --bind` use).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindMount {
    /// Host path (trusted: it comes from the host's config).
    pub source: PathBuf,
    /// Path inside the vserver, resolved without following any of the vserver's links.
    pub target: String,
    pub readonly: bool,
}

/// Everything the engine needs to build one context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchPlan {
    /// Used in messages and the registry.
    pub name: String,
    /// The vserver root; `None` keeps the caller's root (chcontext) and mounts only a new /proc.
    pub root: Option<PathBuf>,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// The paper's S_CONTEXT: the context number (registered under the run directory).
    pub context: u32,
    pub init: Init,
    /// Extra environment for pid 1, on top of `container=vserver`, PATH and TERM.
    pub env: Vec<(String, String)>,
    /// The capability bounding set of every process in the context.
    pub caps: CapSet,
    pub flags: Flags,
    pub rlimits: Vec<Rlimit>,
    /// The paper's S_NICE: pid 1's niceness, and a floor nobody inside can go below.
    pub nice: Option<i32>,
    pub network: Network,
    pub mounts: Vec<BindMount>,
    /// A host pty slave (path) to appear as /dev/console; /dev/null stands in when absent.
    pub console: Option<PathBuf>,
    /// Where the context registry lives (default `/run/vservers`).
    pub run_dir: PathBuf,
}

impl LaunchPlan {
    /// A plan with the secure defaults, running `argv` as pid 1 (fakeinit) in `root`.
    pub fn new(name: &str, root: Option<PathBuf>, init: Init) -> LaunchPlan {
        LaunchPlan {
            name: name.to_string(),
            root,
            hostname: None,
            domainname: None,
            context: 0,
            init,
            env: Vec::new(),
            caps: CapSet::secure_default(),
            flags: Flags::default(),
            rlimits: Vec::new(),
            nice: None,
            network: Network::None,
            mounts: Vec::new(),
            console: None,
            run_dir: PathBuf::from(crate::registry::DEFAULT_RUN_DIR),
        }
    }
}
