//! From a vserver's configuration to the engine's launch plan.

use std::path::Path;

use vserver_sandbox::plan::{Init, LaunchPlan, Network};

use super::model::{NetworkMode, VServerConfig};

impl VServerConfig {
    /// The engine's plan for this vserver. `run_dir` is the runtime state directory (normally
    /// `/run/vservers`). Network modes with links of their own (macvlan, veth, bridge) get a
    /// network namespace holding only `lo` here; the daemon moves their link in.
    /// The console is left for the daemon to set.
    pub fn launch_plan(&self, run_dir: &Path) -> LaunchPlan {
        let init = if self.fakeinit {
            Init::Fake { argv: self.init.command.clone() }
        } else {
            Init::Rc { start: self.init.command.clone(), stop: self.init.stop.clone(), exit_with_start: false }
        };
        let mut plan = LaunchPlan::new(&self.name, Some(self.root.clone()), init);
        plan.hostname = Some(self.hostname.clone());
        plan.domainname = self.domainname.clone();
        plan.context = self.context;
        plan.env = self.init.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        plan.caps = self.caps;
        plan.flags = self.flags;
        plan.rlimits = self.limits.rlimits.clone();
        plan.nice = self.nice;
        plan.network = match self.network.mode {
            NetworkMode::Host => Network::Host,
            NetworkMode::None | NetworkMode::Macvlan | NetworkMode::Veth | NetworkMode::Bridge => Network::None,
        };
        plan.mounts = self.mounts.clone();
        plan.run_dir = run_dir.to_path_buf();
        plan
    }
}
