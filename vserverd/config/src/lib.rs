//! The vservers' configuration: `/etc/vservers/NAME.toml`, its drop-ins
//! `/etc/vservers/NAME.toml.d/*.toml` and `/etc/vservers/defaults.toml` (the paper's
//! `NAME.conf`, one key per variable; `etc/vservers/example.toml.sample` shows every key).
//!
//! - NAME comes from the file name: ASCII letters, digits, `-`, `_`, `.`, at most 64
//!   characters, no leading `.`. Files not ending in `.toml` are ignored; `defaults.toml` is not
//!   a vserver and may not set the per-vserver keys `root`, `hostname`, `context`, `depends`.
//! - Merging: defaults.toml, NAME.toml, then the drop-ins in lexical order; tables merge key by
//!   key, arrays and scalars replace. A diagnostic points into the file the final value came from.
//! - Strict: unknown keys, wrong types, bad values, unknown capabilities or flags, invalid
//!   names, duplicate contexts, a `depends` on a missing vserver or a cycle are errors, reported
//!   as `path:line:col: error: message`, all at once (a file stops at its first syntax or type
//!   error; value errors are all reported). A vserver with an error is invalid; others stay valid.
//! - Contexts: 1 to 49151, unique; when absent, the lowest free number from 1000 up, given in
//!   name order.

mod cross;
mod diag;
pub mod edit;
mod host;
pub mod initkind;
mod launch;
mod limits;
mod load;
mod memory;
mod model;
mod network;
pub mod paths;
mod resolve;
pub mod run;
mod schema;
pub mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, Place, Severity};
pub use host::{host_checks, limits_checks, set_run_dir, HostNet, NetworkSites};
pub use model::*;
pub use values::{IpCidr, ValueError};

/// Where the daemon reads its configuration by default.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/vservers";

/// Settings of the loader (overridable for tests).
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Base of the default roots, `NAME` is appended (default `/var/lib/vservers`).
    pub root_base: PathBuf,
    /// Where templates live (`template = "NAME"`); `None`: ROOT_BASE/.templates.
    pub template_dir: Option<PathBuf>,
    /// Also check against the host's network (devices exist, addresses free): what the daemon,
    /// `check` and `--check-config` do. Off, loading reads nothing but the files.
    pub host_checks: bool,
}

impl LoadOptions {
    /// The templates directory in force.
    pub fn template_dir(&self) -> PathBuf {
        self.template_dir.clone().unwrap_or_else(|| default_template_dir(&self.root_base))
    }
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { root_base: PathBuf::from(DEFAULT_ROOT_BASE), template_dir: None, host_checks: true }
    }
}

/// What loading found: the valid vservers, every diagnostic, and the vservers that have a file
/// but are invalid (the daemon keeps the others running).
#[derive(Debug, Clone, Default)]
pub struct LoadResult {
    pub vservers: BTreeMap<String, VServerConfig>,
    /// Sorted by path, line and column.
    pub diagnostics: Vec<Diagnostic>,
    pub invalid: BTreeSet<String>,
    /// Where the `[network]` values of each valid vserver with a link of its own were written
    /// (for [`host_checks`]).
    pub network_sites: BTreeMap<String, NetworkSites>,
}

impl LoadResult {
    /// True when any diagnostic is an error (`check` then exits 1).
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    /// Makes a valid vserver invalid after a check beyond the files (the host's cgroups, the
    /// root's filesystem): an error on its NAME.toml, and it leaves `vservers`.
    pub fn invalidate(&mut self, name: &str, message: String) {
        let Some(cfg) = self.vservers.remove(name) else { return };
        let main = cfg.files.iter().find(|f| f.file_name().map(|n| n.to_string_lossy() == format!("{name}.toml")).unwrap_or(false));
        let file = main.or(cfg.files.first()).cloned().unwrap_or_default();
        self.diagnostics.push(Diagnostic::file_error(&file, message));
        self.invalid.insert(name.to_string());
    }
}

/// Loads every vserver of `dir`; with `opts.host_checks`, then checks them against the host's
/// network ([`host_checks`] on a [`HostNet`] read now).
pub fn load_dir(dir: &Path, opts: &LoadOptions) -> LoadResult {
    let mut r = load::load_dir(dir, opts);
    if opts.host_checks {
        host::check_live(&mut r, dir);
    }
    r
}

/// Loads a config directory given as text, as [`load_dir`] loads `dir` without its host
/// checks: `files` are (path relative to `dir`, text), such as `("web1.toml", "context = 5")`,
/// `("defaults.toml", …)` or `("web1.toml.d/10-net.toml", …)`; other paths are ignored. No
/// file is read (diagnostics name `dir` joined with the relative path). For tests and the
/// fuzz target `config`.
pub fn load_files(dir: &Path, files: &[(&str, &str)], opts: &LoadOptions) -> LoadResult {
    load::load_tree(&memory::Memory::new(dir, files), dir, opts)
}

/// Loads the directory (contexts and dependencies are checked across all vservers) and keeps
/// what concerns `name`: its configuration if valid, and the diagnostics of its files and of
/// defaults.toml. A missing NAME.toml is an error.
pub fn load_one(dir: &Path, name: &str, opts: &LoadOptions) -> LoadResult {
    let main = dir.join(format!("{name}.toml"));
    if let Err(e) = values::check_name(name) {
        let diagnostics = vec![Diagnostic::file_error(&main, e.to_string())];
        return LoadResult { diagnostics, invalid: BTreeSet::from([name.to_string()]), ..LoadResult::default() };
    }
    let mut r = load_dir(dir, opts);
    let dropins = dir.join(format!("{name}.toml.d"));
    let defaults = dir.join("defaults.toml");
    r.diagnostics.retain(|d| d.path == main || d.path.starts_with(&dropins) || d.path == defaults || d.path == dir);
    r.vservers.retain(|n, _| n == name);
    r.network_sites.retain(|n, _| n == name);
    r.invalid.retain(|n| n == name);
    if !main.is_file() {
        r.diagnostics.insert(0, Diagnostic::file_error(&main, format!("no such vserver: {name}")));
        r.invalid.insert(name.to_string());
    }
    r
}
