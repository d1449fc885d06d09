//! What the configuration's test files share: a scratch directory of config files.
#![allow(dead_code)] // each test file uses a part

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use vserver_config::{LoadOptions, LoadResult};

/// The options of a load that reads nothing but the files (no host checks).
pub fn opts() -> LoadOptions {
    LoadOptions { root_base: PathBuf::from("/srv/vs"), template_dir: None, host_checks: false }
}

/// A temporary config directory, removed on drop.
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new() -> Dir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let exe = std::env::current_exe().ok().and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned())).unwrap_or_default();
        let path = std::env::temp_dir().join(format!("vserverd-{exe}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    pub fn with(files: &[(&str, &str)]) -> Dir {
        let d = Dir::new();
        for (name, text) in files {
            d.write(name, text);
        }
        d
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.0.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    pub fn load(&self) -> LoadResult {
        vserver_config::load_dir(&self.0, &opts())
    }

    /// The diagnostics as printed, each with its own path relative to the directory (a second
    /// path in a message, the place of a conflict, stays whole).
    pub fn lines(&self, r: &LoadResult) -> Vec<String> {
        let prefix = format!("{}/", self.0.display());
        r.diagnostics.iter().map(|d| d.to_string().replacen(&prefix, "", 1)).collect()
    }

    /// The diagnostics as printed, with every path relative to the directory.
    pub fn lines_all_relative(&self, r: &LoadResult) -> Vec<String> {
        let prefix = format!("{}/", self.0.display());
        r.diagnostics.iter().map(|d| d.to_string().replace(&prefix, "")).collect()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
