//! The resolved configuration of one vserver: plain data, every default filled in, every value
//! checked. This is what the daemon works with.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;
use vserver_engine::caps::CapSet;
use vserver_engine::plan::{BindMount, Flags};

use super::values::IpCidr;

/// `[limits]`: defined by the engine, which carries them out.
pub use vserver_engine::cgroup::Limits;

/// Where vserver roots live unless `root` says otherwise: `/var/lib/vservers/NAME`.
pub const DEFAULT_ROOT_BASE: &str = "/var/lib/vservers";
/// Where templates live, under the root base unless configured: `/var/lib/vservers/.templates`
/// (inside the 0700 root base: the paper's chroot barrier covers them too).
pub const TEMPLATES_SUBDIR: &str = ".templates";

/// The templates directory for a root base.
pub fn default_template_dir(root_base: &std::path::Path) -> PathBuf {
    root_base.join(TEMPLATES_SUBDIR)
}

/// A unified vserver (the paper's unification): its root is an overlay of a shared template
/// (read-only, lower) and its own directory (upper), mounted on `root` when it starts, inside
/// its mount namespace only. Layout: the vserver's directory `D` (`root` in the file, default
/// ROOT_BASE/NAME) holds `root/` (the mount point), `upper/` and `work/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unified {
    pub template: String,
    /// TEMPLATE_DIR/TEMPLATE.
    pub lower: PathBuf,
    /// D/upper: the vserver's own files (what `du` counts).
    pub upper: PathBuf,
    /// D/work.
    pub work: PathBuf,
}

/// First context number given to a vserver without `context` (lower ones are left to admins).
pub const FIRST_ALLOCATED_CONTEXT: u32 = 1000;
/// Highest static context number; 49152 and up are dynamic (`chcontext` without `--ctx`).
pub const MAX_STATIC_CONTEXT: u32 = 49151;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VServerConfig {
    pub name: String,
    /// The vserver's root directory (default `/var/lib/vservers/NAME`; for a unified vserver
    /// the overlay's mount point `D/root`).
    pub root: PathBuf,
    /// `template = "NAME"`: the root is an overlay of that template.
    pub unified: Option<Unified>,
    /// S_HOSTNAME (default NAME).
    pub hostname: String,
    /// S_DOMAINNAME.
    pub domainname: Option<String>,
    /// S_CONTEXT, given or allocated.
    pub context: u32,
    /// True when `context` was absent and the number was allocated.
    pub context_allocated: bool,
    /// ONBOOT.
    pub onboot: bool,
    /// Boot order, lower first (default 100).
    pub priority: i32,
    /// Started after these, stopped before them.
    pub depends: Vec<String>,
    /// S_NICE.
    pub nice: Option<i32>,
    /// S_FLAGS acted on by the engine and the daemon.
    pub flags: Flags,
    /// The `fakeinit` flag: the vserver's own init is pid 1.
    pub fakeinit: bool,
    pub init: InitConfig,
    /// S_CAPS: the secure default plus `capabilities.add` minus `capabilities.drop`.
    pub caps: CapSet,
    pub limits: Limits,
    pub network: NetworkConfig,
    pub mounts: Vec<BindMount>,
    /// Directories inside that get a fresh tmpfs at each start (`/tmp`).
    pub tmpfs: Vec<String>,
    pub hooks: Hooks,
    /// `[user] map`: root inside is root of the host, or of a user namespace of its own.
    pub user: UserMap,
    /// The files this configuration was merged from, in order.
    pub files: Vec<PathBuf>,
}

/// `[user] map`: whose ids the vserver's are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum UserMap {
    /// `"no"` (the default): the host's (root inside is uid 0 of the host, with fewer capabilities).
    #[default]
    Host,
    /// `"auto"`: a range of 65536 host ids picked at start from the daemon's pool.
    Auto,
    /// `"BASE"` or `"BASE:COUNT"`: ids 0..COUNT inside are host ids BASE.. (uids and gids alike).
    Fixed(vserver_engine::userns::IdMap),
}

/// When a start is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Ready {
    /// When pid 1 says `READY=1` on its `NOTIFY_SOCKET` (systemd; `vserver-init` once the start
    /// command has exited 0).
    Notify,
    /// When pid 1 has been exec'd (an init that does not speak the protocol; a start command
    /// that never ends).
    Exec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Restart {
    No,
    OnFailure,
    Always,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InitConfig {
    /// Pid 1 with fakeinit (default `/sbin/init`), else the start command (default
    /// `/etc/init.d/rc 3`).
    pub command: Vec<String>,
    /// The stop command without fakeinit (default `/etc/init.d/rc 0` with the default command).
    pub stop: Option<Vec<String>>,
    /// Signal number sent to pid 1 to stop it with fakeinit; `None`: the one its init obeys
    /// (see [`crate::initkind`]).
    pub stop_signal: Option<i32>,
    /// Seconds (1 to 86400) to wait before every process of the vserver is killed (default 30).
    pub stop_timeout: u32,
    /// Seconds (1 to 86400) a start may take to be ready (default 90).
    pub start_timeout: u32,
    /// When the vserver counts as started; `None`: by its init (see [`crate::initkind`]).
    pub ready: Option<Ready>,
    pub restart: Restart,
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NetworkMode {
    /// A network namespace with only `lo`.
    None,
    /// The host's network stack: not isolated.
    Host,
    Macvlan,
    Veth,
    Bridge,
    /// The host's network stack, tied to the vserver's addresses by socket hooks on its cgroup
    /// (the paper's `set_ipv4root`): no network namespace.
    Bind,
}

impl NetworkMode {
    pub const ALL: [(&'static str, NetworkMode); 6] = [
        ("none", NetworkMode::None),
        ("host", NetworkMode::Host),
        ("macvlan", NetworkMode::Macvlan),
        ("veth", NetworkMode::Veth),
        ("bridge", NetworkMode::Bridge),
        ("bind", NetworkMode::Bind),
    ];
}

impl NetworkMode {
    /// True for the modes that give the vserver a link of its own (macvlan, veth, bridge).
    pub fn has_link(self) -> bool {
        matches!(self, NetworkMode::Macvlan | NetworkMode::Veth | NetworkMode::Bridge)
    }

    /// True for the modes whose vserver has addresses of its own (a link's, or bind mode's).
    pub fn has_addresses(self) -> bool {
        self.has_link() || self == NetworkMode::Bind
    }

    pub fn name(self) -> &'static str {
        NetworkMode::ALL.iter().find(|(_, v)| *v == self).map_or("none", |(n, _)| n)
    }
}

/// `[network]` (IPROOT, IPROOTDEV, IPROOTMASK, IPROOTBCAST).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkConfig {
    pub mode: NetworkMode,
    pub device: Option<String>,
    pub addresses: Vec<IpCidr>,
    pub broadcast: Option<std::net::Ipv4Addr>,
    /// Default routes, at most one per family (not used with veth: the host routes).
    pub gateways: Vec<std::net::IpAddr>,
    pub mtu: Option<u32>,
    pub mac: Option<[u8; 6]>,
    /// Bind mode: the daemon adds the addresses to `device` at start and removes them at stop;
    /// `false`: the admin keeps them on the host's interfaces.
    pub manage_addresses: bool,
}

/// Host commands around start and stop, each an argv with an absolute program path.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Hooks {
    pub pre_start: Option<Vec<String>>,
    pub post_start: Option<Vec<String>>,
    pub pre_stop: Option<Vec<String>>,
    pub post_stop: Option<Vec<String>>,
}
