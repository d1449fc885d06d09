//! The launch plan: plain data saying what context to build. Nothing here touches the system;
//! the daemon builds a plan from a vserver's config, `chcontext` from its options.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// Where the daemon and the engine keep run state (`NAME/state.json`, `contexts/`, `.locks/`).
pub const DEFAULT_RUN_DIR: &str = "/run/vservers";

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
    /// Nested containers: root inside may make user namespaces (`unshare`, `clone` with
    /// CLONE_NEWUSER, `clone3`), which the seccomp filter refuses by default. Excludes `lock`.
    #[serde(default)]
    pub nest: bool,
}

impl Flags {
    /// Parses a flag name of the paper; `fakeinit` is not a flag here but an [`Init`] mode.
    pub fn set(&mut self, name: &str) -> Result<(), String> {
        match name {
            "lock" => self.lock = true,
            "private" => self.private = true,
            "nproc" => self.nproc = true,
            "sched" => self.sched = true,
            "nest" => self.nest = true,
            other => return Err(format!("unknown flag {other:?} (known: lock, private, fakeinit, nproc, sched, nest)")),
        }
        Ok(())
    }

    /// Flags that contradict each other: `lock` refuses every new namespace, `nest` allows
    /// user namespaces.
    pub fn check(&self) -> Result<(), String> {
        if self.lock && self.nest {
            return Err("the flags `lock` and `nest` exclude each other: `lock` refuses every new namespace, `nest` allows user namespaces".into());
        }
        Ok(())
    }
}

/// What runs as pid 1 of the context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Init {
    /// The paper's `fakeinit`: the vserver's own init (for example `/sbin/init`) is pid 1.
    Fake { argv: Vec<String> },
    /// The paper's default: a tiny `vserver-init` is pid 1; it runs `start`, reaps orphans, and at stop
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
    /// A new network namespace holding `lo`, up, and the plan's links (none: only `lo`).
    None,
    /// The host's network namespace (the paper's untied `IPROOT=0.0.0.0`).
    Host,
}

/// How a link of the vserver's own reaches the host's network (the paper's IPROOTDEV).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkMode {
    /// A macvlan (bridge mode) on `device`, made inside the vserver's network namespace.
    Macvlan,
    /// A veth pair whose host end is routed: a host route to each address, and proxy ARP/NDP
    /// entries on `device` (the uplink) when one is named.
    Veth,
    /// A veth pair whose host end joins the existing bridge `device`.
    Bridge,
}

impl LinkMode {
    pub fn name(self) -> &'static str {
        match self {
            LinkMode::Macvlan => "macvlan",
            LinkMode::Veth => "veth",
            LinkMode::Bridge => "bridge",
        }
    }
}

/// An interface address with its prefix length (IPROOT + IPROOTMASK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfAddr {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl std::fmt::Display for IfAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// One network link of the context, in place (up, addressed, routed) before pid 1 runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkPlan {
    pub mode: LinkMode,
    /// The host interface: the macvlan parent, the bridge, or the veth uplink for proxy
    /// ARP/NDP (optional for veth).
    pub device: Option<String>,
    /// The interface name inside the vserver (normally `eth0`).
    pub name: String,
    /// The veth host end's name (veth, bridge); `None`: `vs<context>h<i>` (`vp<pid>h<i>` when
    /// the context number is allocated at start).
    pub host_name: Option<String>,
    pub addresses: Vec<IfAddr>,
    /// IPROOTBCAST for the IPv4 address whose network holds it; the others get their
    /// network's broadcast address.
    pub broadcast: Option<Ipv4Addr>,
    /// Default routes, at most one per family (macvlan, bridge; with veth the host routes).
    pub gateways: Vec<IpAddr>,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
}

impl LinkPlan {
    /// A link of `mode` named `eth0` inside, without addresses.
    pub fn new(mode: LinkMode, device: Option<&str>) -> LinkPlan {
        LinkPlan {
            mode,
            device: device.map(str::to_string),
            name: "eth0".into(),
            host_name: None,
            addresses: Vec::new(),
            broadcast: None,
            gateways: Vec::new(),
            mtu: None,
            mac: None,
        }
    }
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

/// A unified root (the paper's unification): an overlay mounted on `root` inside the context's
/// mount namespace only, so the host never sees it and it vanishes with the context. The lower
/// directory (the shared template) is never written: overlayfs copies a file up to `upper`
/// before changing it, and records deletions there as whiteouts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayPlan {
    /// The shared, read-only template.
    pub lower: PathBuf,
    /// The vserver's own changes.
    pub upper: PathBuf,
    /// overlayfs's work directory, on the filesystem of `upper`.
    pub work: PathBuf,
}

/// What a real init (systemd above all) expects its manager to have mounted before it runs:
/// systemd's "Container Interface". Without CAP_SYS_ADMIN it cannot mount these itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InitFs {
    /// `/run` and `/run/lock`: fresh tmpfs mounts (nosuid, nodev; `/run/lock` noexec, 1777).
    pub run: bool,
    /// A cgroup namespace rooted at the cgroup pid 1 was placed in, and that cgroup's v2 tree
    /// mounted at `/sys/fs/cgroup` for the guest to manage below its root. Whatever the host
    /// set above it (the vserver's limits) is out of the guest's sight and reach.
    pub cgroup: bool,
}

/// Everything the engine needs to build one context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LaunchPlan {
    /// Used in messages and the registry.
    pub name: String,
    /// The vserver root; `None` keeps the caller's root (chcontext) and mounts only a new /proc.
    pub root: Option<PathBuf>,
    /// With a root: mount an overlay on it first (a unified vserver).
    #[serde(default)]
    pub overlay: Option<OverlayPlan>,
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
    /// Links of the vserver's own (with `Network::None`): made by the parent for the child's
    /// network namespace before the child goes on, removed when the context ends.
    #[serde(default)]
    pub links: Vec<LinkPlan>,
    /// Bind mode (with `Network::Host`): the host's stack, tied to these addresses by socket
    /// hooks on the cgroup pid 1 is born in, attached before it is born ([`crate::bindaddr`]).
    #[serde(default)]
    pub bind: Option<crate::bindaddr::bound::BindPlan>,
    pub mounts: Vec<BindMount>,
    /// Directories inside that get a fresh tmpfs each (nosuid, nodev, mode 1777), such as
    /// `/tmp`; resolved without following any of the vserver's links.
    #[serde(default)]
    pub tmpfs: Vec<String>,
    /// The mounts a real init expects (with `Init::Fake`).
    #[serde(default)]
    pub init_fs: InitFs,
    /// A user namespace of the context's own: root inside is a range of host ids, the root and
    /// the bind mounts are idmapped ([`crate::userns`]). `None`: root inside is the host's.
    #[serde(default)]
    pub userns: Option<crate::userns::UserNsPlan>,
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
            overlay: None,
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
            links: Vec::new(),
            bind: None,
            mounts: Vec::new(),
            tmpfs: Vec::new(),
            init_fs: InitFs::default(),
            userns: None,
            console: None,
            run_dir: PathBuf::from(DEFAULT_RUN_DIR),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_by_name_and_nest_excludes_lock() {
        let mut f = Flags::default();
        assert!(!f.nest && f.check().is_ok(), "nest is off by default");
        f.set("nest").unwrap();
        assert!(f.nest && f.check().is_ok());
        f.set("lock").unwrap();
        assert!(f.check().unwrap_err().contains("`lock` and `nest` exclude each other"));
        assert!(Flags::default().set("nested").unwrap_err().contains("known: lock, private, fakeinit, nproc, sched, nest"));
        // A registry entry written before the flag existed still reads, without it.
        let old: Flags = serde_json::from_str(r#"{"lock":false,"private":true,"nproc":false,"sched":false}"#).unwrap();
        assert!(old.private && !old.nest);
    }
}
