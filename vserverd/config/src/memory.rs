//! A config directory given as text: what [`super::load_files`] loads, with the loader of
//! the directories on disk. Paths are relative to the directory: `defaults.toml`, `NAME.toml`,
//! `NAME.toml.d/FILE.toml`; every other path is ignored, as a file of another kind or a deeper
//! one in a directory is.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::diag::Diagnostic;
use super::load::{Listing, Tree};

/// Files by their full path (`dir` joined with the relative one).
pub(crate) struct Memory {
    dir: PathBuf,
    files: BTreeMap<PathBuf, String>,
}

impl Memory {
    /// The files of `dir`; of two with the same path, the later one is kept.
    pub fn new(dir: &Path, files: &[(&str, &str)]) -> Memory {
        let files = files.iter().map(|(p, t)| (dir.join(p), t.to_string())).collect();
        Memory { dir: dir.to_path_buf(), files }
    }

    /// The relative paths, split at the first `/`: (first element, the rest if any).
    fn relative(&self) -> impl Iterator<Item = (&str, Option<&str>, &PathBuf)> + '_ {
        self.files.keys().filter_map(|p| {
            let rel = p.strip_prefix(&self.dir).ok()?.to_str()?;
            Some(match rel.split_once('/') {
                Some((first, rest)) => (first, Some(rest), p),
                None => (rel, None, p),
            })
        })
    }
}

impl Tree for Memory {
    fn list(&self, dir: &Path, _early: &mut Vec<Diagnostic>) -> io::Result<Listing> {
        let mut out = Listing::default();
        for (first, rest, path) in self.relative() {
            match (first.strip_suffix(".toml.d"), first.strip_suffix(".toml"), rest) {
                (Some(name), _, Some(_)) => {
                    out.dropin_dirs.insert(name.to_string(), dir.join(first));
                }
                (None, Some(_), None) if first == "defaults.toml" => out.defaults = Some(path.clone()),
                (None, Some(name), None) => {
                    out.vservers.insert(name.to_string(), path.clone());
                }
                _ => {}
            }
        }
        Ok(out)
    }

    fn dropins(&self, dir: &Path, _early: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
        // Already in lexical order of their names: one directory's files sort by name.
        self.files
            .keys()
            .filter(|p| p.parent() == Some(dir) && p.extension().is_some_and(|x| x == "toml"))
            .filter(|p| p.strip_prefix(dir).ok().and_then(Path::to_str).is_some_and(|rel| !rel.contains('/')))
            .cloned()
            .collect()
    }

    fn read(&self, path: &Path) -> io::Result<String> {
        self.files.get(path).cloned().ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    /// None: of two equal contexts, the first by name keeps it.
    fn modified(&self, _path: &Path) -> Option<std::time::SystemTime> {
        None
    }
}
