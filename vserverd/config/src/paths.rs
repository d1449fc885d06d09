//! Where the daemon keeps things; every path is overridable for tests.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Paths {
    /// `/etc/vservers`: NAME.toml, NAME.toml.d/, defaults.toml, the paper's NAME.sh.
    pub config_dir: PathBuf,
    /// `/run/vservers`: NAME/state.json, contexts/.
    pub run_dir: PathBuf,
    /// `/var/log/vservers`: NAME.log, the console of each vserver.
    pub log_dir: PathBuf,
    /// Base of default roots (`/var/lib/vservers`).
    pub root_base: PathBuf,
    /// Templates of unified vservers; `None`: ROOT_BASE/.templates.
    pub template_dir: Option<PathBuf>,
}

impl Default for Paths {
    fn default() -> Self {
        Paths {
            config_dir: PathBuf::from(crate::DEFAULT_CONFIG_DIR),
            run_dir: PathBuf::from(vserver_engine::registry::DEFAULT_RUN_DIR),
            log_dir: PathBuf::from("/var/log/vservers"),
            root_base: PathBuf::from(crate::DEFAULT_ROOT_BASE),
            template_dir: None,
        }
    }
}

impl Paths {
    pub fn vserver_run_dir(&self, name: &str) -> PathBuf {
        self.run_dir.join(name)
    }

    pub fn log_file(&self, name: &str) -> PathBuf {
        self.log_dir.join(format!("{name}.log"))
    }

    /// The paper's `/etc/vservers/NAME.sh`, called as `NAME.sh PHASE NAME`.
    pub fn legacy_script(&self, name: &str) -> PathBuf {
        self.config_dir.join(format!("{name}.sh"))
    }

    pub fn load_options(&self) -> crate::LoadOptions {
        crate::LoadOptions { root_base: self.root_base.clone(), template_dir: self.template_dir.clone(), host_checks: true }
    }

    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }
}
