//! The daemon's shared state: the configuration, one supervisor per vserver, the D-Bus
//! connection that shows them, and the metrics registry. Reload, boot order and shutdown live
//! here.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock, Weak};

use tracing::{info, warn};
use vserver_api::{BootReport, State, VServerError};
use zbus::Connection;

use vserver_config::{self as config, LoadResult, VServerConfig};
use vserver_config::paths::Paths;
use crate::daemon::metrics::{self, Metrics};
use crate::daemon::supervisor::Supervisor;

pub struct Daemon {
    pub paths: Arc<Paths>,
    supervisors: RwLock<BTreeMap<String, Arc<Supervisor>>>,
    /// The diagnostics of the last load, one `path:line:col: severity: message` per line.
    pub diagnostics: Mutex<Vec<String>>,
    pub conn: Mutex<Option<Connection>>,
    /// Every metric (served only with `--metrics-listen`): the supervisors observe their starts
    /// into its histogram, the rest is read from them at each scrape.
    pub metrics: Metrics,
}

impl Daemon {
    pub fn new(paths: Paths) -> Arc<Daemon> {
        Arc::new_cyclic(|me: &Weak<Daemon>| {
            let me = me.clone();
            Daemon {
                paths: Arc::new(paths),
                supervisors: RwLock::new(BTreeMap::new()),
                diagnostics: Mutex::new(Vec::new()),
                conn: Mutex::new(None),
                metrics: Metrics::new(move || me.upgrade().map(|d| metrics::samples(&d)).unwrap_or_default()),
            }
        })
    }

    pub fn get(&self, name: &str) -> Result<Arc<Supervisor>, VServerError> {
        self.supervisors.read().unwrap().get(name).cloned().ok_or_else(|| crate::daemon::dbus::args::no_such_vserver(&self.paths.config_dir, name))
    }

    pub fn all(&self) -> Vec<Arc<Supervisor>> {
        self.supervisors.read().unwrap().values().cloned().collect()
    }

    pub fn load_config(&self) -> LoadResult {
        let mut r = config::load_dir(&self.paths.config_dir, &self.paths.load_options());
        vserver_config::limits_checks(&mut r);
        r
    }

    /// Applies a fresh load: new vservers appear, changed ones take the new configuration at their
    /// next start, removed ones disappear once stopped. A vserver whose files are now invalid
    /// keeps its last good configuration (and keeps running): a bad file never stops anything.
    /// Returns (added, removed) names.
    pub fn apply(&self, result: &LoadResult) -> (Vec<String>, Vec<String>) {
        let diags: Vec<String> = result.diagnostics.iter().map(|d| d.to_string()).collect();
        for d in &diags {
            warn!("{d}");
        }
        *self.diagnostics.lock().unwrap() = diags;
        let mut added = Vec::new();
        let mut removed = Vec::new();
        let mut sups = self.supervisors.write().unwrap();
        for (name, cfg) in &result.vservers {
            let cfg = Arc::new(cfg.clone());
            match sups.get(name) {
                Some(s) => s.set_config(Some(cfg)),
                None => {
                    sups.insert(name.clone(), Supervisor::new(name, self.paths.clone(), Some(cfg), self.metrics.start_durations()));
                    added.push(name.clone());
                }
            }
        }
        let gone: Vec<String> = sups
            .keys()
            .filter(|n| !result.vservers.contains_key(*n) && !result.invalid.contains(*n))
            .cloned()
            .collect();
        for name in gone {
            let s = &sups[&name];
            if s.status().state.is_active() {
                // Its file is gone but it runs: keep it manageable until it is stopped.
                continue;
            }
            sups.remove(&name);
            removed.push(name);
        }
        for name in &result.invalid {
            // What is wrong with it, for the refusal of a start.
            let own = |d: &&config::Diagnostic| {
                let f = d.path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                let parent = d.path.parent().and_then(|p| p.file_name()).map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                d.is_error() && (f == format!("{name}.toml") || parent == format!("{name}.toml.d") || f == "defaults.toml")
            };
            let problems: Vec<String> = result.diagnostics.iter().filter(own).map(|d| d.to_string()).collect();
            match sups.get(name) {
                // A running vserver keeps the configuration it runs with; a stopped one must not
                // start from a configuration that no longer is on disk.
                Some(s) if s.status().state.is_active() => s.set_problems(problems),
                Some(s) => {
                    s.set_config(None);
                    s.set_problems(problems);
                }
                None => {
                    // Shown (and refusing to start) so that `list --all` and `check` explain it.
                    let s = Supervisor::new(name, self.paths.clone(), None, self.metrics.start_durations());
                    s.set_problems(problems);
                    sups.insert(name.clone(), s);
                    added.push(name.clone());
                }
            }
        }
        (added, removed)
    }

    /// At daemon start: take back the vservers that kept running, collect the ones that ended
    /// meanwhile. Runtime directories of unknown vservers are adopted under a supervisor without
    /// configuration so that they can still be stopped.
    pub async fn adopt_all(&self) -> Vec<String> {
        let mut added = Vec::new();
        if let Ok(rd) = std::fs::read_dir(&self.paths.run_dir) {
            for e in rd.flatten() {
                let Some(name) = e.file_name().to_str().map(str::to_string) else { continue };
                if name == "contexts" || !e.path().join("state.json").exists() {
                    continue;
                }
                let mut sups = self.supervisors.write().unwrap();
                if !sups.contains_key(&name) {
                    sups.insert(name.clone(), Supervisor::new(&name, self.paths.clone(), None, self.metrics.start_durations()));
                    added.push(name);
                }
            }
        }
        for s in self.all() {
            s.recover().await;
        }
        added
    }

    /// `StartOnboot`: every `onboot` vserver in priority and `depends` order, independent ones in
    /// parallel; a failure is reported and does not stop the others (its dependents are skipped).
    pub async fn start_onboot(&self) -> Vec<BootReport> {
        let configs: Vec<Arc<VServerConfig>> = self.all().iter().filter_map(|s| s.config()).filter(|c| c.onboot).collect();
        let waves = boot_waves(&configs);
        let mut reports: BTreeMap<String, BootReport> = BTreeMap::new();
        for wave in waves {
            let mut set = tokio::task::JoinSet::new();
            for cfg in wave {
                if let Some(dep) = cfg.depends.iter().find(|d| reports.get(*d).map(|r| !r.ok).unwrap_or(false)) {
                    reports.insert(cfg.name.clone(), BootReport { name: cfg.name.clone(), ok: false, message: format!("not started: dependency {dep} failed") });
                    continue;
                }
                let Ok(sup) = self.get(&cfg.name) else { continue };
                set.spawn(async move {
                    let r = if sup.status().state == State::Running { Ok(()) } else { sup.start().await };
                    (sup.name.clone(), r)
                });
            }
            while let Some(Ok((name, r))) = set.join_next().await {
                let report = match r {
                    Ok(()) => BootReport { name: name.clone(), ok: true, message: "started".into() },
                    Err(e) => BootReport { name: name.clone(), ok: false, message: e.to_string() },
                };
                info!(vserver = %name, ok = report.ok, "{}", report.message);
                reports.insert(name, report);
            }
        }
        reports.into_values().collect()
    }

    /// `StopAll`: every running vserver, dependents before what they depend on, in parallel
    /// within each wave; each stop is bounded by its own `stop_timeout` and the final kill.
    pub async fn stop_all(&self) -> Vec<BootReport> {
        let running: Vec<Arc<Supervisor>> = self.all().into_iter().filter(|s| s.status().state.is_active()).collect();
        let configs: Vec<Arc<VServerConfig>> = running.iter().filter_map(|s| s.config()).collect();
        let mut waves: Vec<Vec<Arc<Supervisor>>> = boot_waves(&configs)
            .into_iter()
            .rev()
            .map(|wave| wave.iter().filter_map(|c| self.get(&c.name).ok()).collect())
            .collect();
        // Running vservers without a configuration go in the first wave.
        if waves.is_empty() {
            waves.push(Vec::new());
        }
        waves[0].extend(running.iter().filter(|s| s.config().is_none()).cloned());
        let mut reports = Vec::new();
        for wave in waves {
            let mut set = tokio::task::JoinSet::new();
            for sup in wave {
                set.spawn(async move { (sup.name.clone(), sup.stop().await) });
            }
            while let Some(Ok((name, r))) = set.join_next().await {
                reports.push(match r {
                    Ok(()) | Err(VServerError::NotRunning(_)) => BootReport { name, ok: true, message: "stopped".into() },
                    Err(e) => BootReport { name, ok: false, message: e.to_string() },
                });
            }
        }
        reports
    }
}

/// Start order: waves of vservers whose dependencies (among those given) are all in earlier
/// waves; within the constraints, lower `priority` first (a higher priority never starts in a
/// wave before a lower one's).
pub fn boot_waves(configs: &[Arc<VServerConfig>]) -> Vec<Vec<Arc<VServerConfig>>> {
    let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
    let mut done: Vec<String> = Vec::new();
    let mut left: Vec<Arc<VServerConfig>> = configs.to_vec();
    left.sort_by(|a, b| (a.priority, &a.name).cmp(&(b.priority, &b.name)));
    let mut waves = Vec::new();
    while !left.is_empty() {
        let min_priority = left.iter().map(|c| c.priority).min().unwrap();
        let ready: Vec<Arc<VServerConfig>> = left
            .iter()
            .filter(|c| c.priority == min_priority)
            .filter(|c| c.depends.iter().all(|d| !names.contains(&d.as_str()) || done.contains(d)))
            .cloned()
            .collect();
        // A dependency on a later priority pulls that dependency forward (only what the waiting
        // ones need, lowest priority first); a cycle (rejected by config checks) would stop
        // here, so take the rest as they are.
        let ready = if ready.is_empty() {
            let mut needed: Vec<String> = left.iter().filter(|c| c.priority == min_priority).flat_map(|c| c.depends.clone()).collect();
            let mut i = 0;
            while i < needed.len() {
                if let Some(c) = left.iter().find(|c| c.name == needed[i]) {
                    for d in &c.depends {
                        if !needed.contains(d) {
                            needed.push(d.clone());
                        }
                    }
                }
                i += 1;
            }
            let pulled: Vec<Arc<VServerConfig>> = left
                .iter()
                .filter(|c| needed.contains(&c.name))
                .filter(|c| c.depends.iter().all(|d| !names.contains(&d.as_str()) || done.contains(d)))
                .cloned()
                .collect();
            match pulled.iter().map(|c| c.priority).min() {
                Some(p) => pulled.into_iter().filter(|c| c.priority == p).collect(),
                None => left.clone(),
            }
        } else {
            ready
        };
        left.retain(|c| !ready.iter().any(|r| r.name == c.name));
        done.extend(ready.iter().map(|c| c.name.clone()));
        waves.push(ready);
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The valid configurations of `files` (name, TOML), loaded from a scratch directory.
    fn configs(files: &[(&str, &str)]) -> Vec<Arc<VServerConfig>> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("vserverd-waves-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, toml) in files {
            std::fs::write(dir.join(format!("{name}.toml")), toml).unwrap();
        }
        let opts = config::LoadOptions { root_base: dir.join("roots"), template_dir: None, host_checks: false };
        let r = config::load_dir(&dir, &opts);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(r.invalid.is_empty(), "{:?}", r.diagnostics);
        r.vservers.into_values().map(Arc::new).collect()
    }

    fn names(waves: &[Vec<Arc<VServerConfig>>]) -> Vec<Vec<&str>> {
        waves.iter().map(|w| w.iter().map(|c| c.name.as_str()).collect()).collect()
    }

    #[test]
    fn waves_follow_priority_then_name() {
        let c = configs(&[("b", "priority = 10\n"), ("a", "priority = 10\n"), ("z", "priority = 5\n"), ("m", "priority = 20\n")]);
        assert_eq!(names(&boot_waves(&c)), vec![vec!["z"], vec!["a", "b"], vec!["m"]]);
    }

    #[test]
    fn a_dependency_starts_in_an_earlier_wave() {
        let c = configs(&[("web", "depends = [\"db\"]\n"), ("db", ""), ("cache", "")]);
        assert_eq!(names(&boot_waves(&c)), vec![vec!["cache", "db"], vec!["web"]]);
    }

    #[test]
    fn a_dependency_of_a_later_priority_is_pulled_forward_alone() {
        let c = configs(&[("web", "priority = 1\ndepends = [\"db\"]\n"), ("db", "priority = 50\ndepends = [\"store\"]\n"), ("store", "priority = 90\n"), ("late", "priority = 90\n")]);
        assert_eq!(names(&boot_waves(&c)), vec![vec!["store"], vec!["db"], vec!["web"], vec!["late"]]);
    }

    #[test]
    fn a_dependency_that_is_not_onboot_does_not_hold_the_wave() {
        // Only the vservers given take part; a `depends` on one not in the set is satisfied.
        let all = configs(&[("web", "depends = [\"db\"]\n"), ("db", "")]);
        let web: Vec<_> = all.into_iter().filter(|c| c.name == "web").collect();
        assert_eq!(names(&boot_waves(&web)), vec![vec!["web"]]);
    }
}
