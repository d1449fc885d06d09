//! From a vserver's configuration to the engine's launch plan.

use std::path::Path;

use vserver_engine::plan::{IfAddr, Init, LaunchPlan, LinkMode, LinkPlan, Network, OverlayPlan};

use vserver_engine::userns::{IdMap, UserNsPlan};

use super::model::{NetworkMode, UserMap, VServerConfig};

impl VServerConfig {
    /// The engine's plan for this vserver. `run_dir` is the runtime state directory (normally
    /// `/run/vservers`). Network modes with a link of their own (macvlan, veth, bridge) get it
    /// as `eth0` in the vserver's network namespace, the veth host end named `vs<context>h`.
    /// The console is left for the daemon to set.
    pub fn launch_plan(&self, run_dir: &Path) -> LaunchPlan {
        let init = if self.fakeinit {
            Init::Fake { argv: self.init.command.clone() }
        } else {
            Init::Rc { start: self.init.command.clone(), stop: self.init.stop.clone(), exit_with_start: false }
        };
        let mut plan = LaunchPlan::new(&self.name, Some(self.root.clone()), init);
        plan.overlay = self.unified.as_ref().map(|u| OverlayPlan { lower: u.lower.clone(), upper: u.upper.clone(), work: u.work.clone() });
        plan.hostname = Some(self.hostname.clone());
        plan.domainname = self.domainname.clone();
        plan.context = self.context;
        plan.env = self.init.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        plan.caps = self.caps;
        plan.flags = self.flags;
        plan.rlimits = self.limits.rlimits.clone();
        plan.nice = self.nice;
        plan.network = match self.network.mode {
            NetworkMode::Host | NetworkMode::Bind => Network::Host,
            NetworkMode::None | NetworkMode::Macvlan | NetworkMode::Veth | NetworkMode::Bridge => Network::None,
        };
        plan.links = self.link_plan().into_iter().collect();
        plan.bind = (self.network.mode == NetworkMode::Bind).then(|| {
            let addresses = self.network.addresses.iter().map(|a| IfAddr { addr: a.addr, prefix: a.prefix }).collect();
            let device = self.network.device.as_deref().filter(|_| self.network.manage_addresses);
            let mut b = vserver_engine::bindaddr::bound::BindPlan::new(addresses, device);
            b.broadcast = self.network.broadcast;
            b
        });
        plan.mounts = self.mounts.clone();
        plan.tmpfs = self.tmpfs.clone();
        // `auto` gets an empty pool, which no start accepts: the daemon puts its own in.
        plan.userns = match self.user {
            UserMap::Host => None,
            UserMap::Auto => Some(UserNsPlan::Pick { pool: IdMap { uid: 0, gid: 0, count: 0 } }),
            UserMap::Fixed(m) => Some(UserNsPlan::Fixed(m)),
        };
        // A real init expects an empty /run (and /run/lock) at every boot.
        plan.init_fs.run = self.fakeinit;
        plan.run_dir = run_dir.to_path_buf();
        plan
    }
}

impl VServerConfig {
    /// The vserver's link, for the modes that have one.
    fn link_plan(&self) -> Option<LinkPlan> {
        let net = &self.network;
        let mode = match net.mode {
            NetworkMode::Macvlan => LinkMode::Macvlan,
            NetworkMode::Veth => LinkMode::Veth,
            NetworkMode::Bridge => LinkMode::Bridge,
            NetworkMode::None | NetworkMode::Host | NetworkMode::Bind => return None,
        };
        let mut link = LinkPlan::new(mode, net.device.as_deref());
        link.host_name = (mode != LinkMode::Macvlan).then(|| format!("vs{}h", self.context));
        link.addresses = net.addresses.iter().map(|a| IfAddr { addr: a.addr, prefix: a.prefix }).collect();
        link.broadcast = net.broadcast;
        link.gateways = net.gateways.clone();
        link.mtu = net.mtu;
        link.mac = net.mac;
        Some(link)
    }
}
