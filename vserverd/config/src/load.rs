//! Finding, reading, parsing and merging the files of a config directory, then resolving and
//! cross-checking every vserver. Nothing is read from inside a vserver root.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use super::diag::{Diagnostic, Loc, Sink, Source};
use super::resolve::{resolve, Resolved};
use super::schema::{Layer, Overlay};
use super::values::{check_name, default_hostname};
use super::{cross, LoadOptions, LoadResult};

/// The config files of a directory.
#[derive(Default)]
pub(crate) struct Listing {
    pub defaults: Option<PathBuf>,
    /// NAME -> NAME.toml.
    pub vservers: BTreeMap<String, PathBuf>,
    /// NAME.toml.d directories, by NAME.
    pub dropin_dirs: BTreeMap<String, PathBuf>,
}

/// Where the loader finds its files: the directory on disk, or files given as text
/// (`super::memory`).
pub(crate) trait Tree {
    /// The config files of the directory `dir`.
    fn list(&self, dir: &Path, early: &mut Vec<Diagnostic>) -> std::io::Result<Listing>;
    /// The `*.toml` files of the drop-in directory `dir`, in lexical order of their names.
    fn dropins(&self, dir: &Path, early: &mut Vec<Diagnostic>) -> Vec<PathBuf>;
    fn read(&self, path: &Path) -> std::io::Result<String>;
    /// The modification time of a file (which of two equal contexts was written first).
    fn modified(&self, path: &Path) -> Option<std::time::SystemTime>;
}

/// The files of a directory on disk.
pub(crate) struct Disk;

impl Tree for Disk {
    fn list(&self, dir: &Path, early: &mut Vec<Diagnostic>) -> std::io::Result<Listing> {
        list(dir, early)
    }

    fn dropins(&self, dir: &Path, early: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
        dropins(dir, early)
    }

    fn read(&self, path: &Path) -> std::io::Result<String> {
        fs::read_to_string(path)
    }

    fn modified(&self, path: &Path) -> Option<std::time::SystemTime> {
        fs::metadata(path).and_then(|m| m.modified()).ok()
    }
}

fn list(dir: &Path, early: &mut Vec<Diagnostic>) -> std::io::Result<Listing> {
    let mut out = Listing::default();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(file_name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else { continue };
        if let Some(name) = file_name.strip_suffix(".toml.d") {
            if path.is_dir() {
                out.dropin_dirs.insert(name.to_string(), path);
            }
        } else if let Some(name) = file_name.strip_suffix(".toml") {
            if !path.is_file() {
                continue;
            }
            if path.file_name().and_then(|n| n.to_str()).is_none() {
                early.push(Diagnostic::file_error(&path, "the file name is not valid UTF-8"));
            } else if file_name == "defaults.toml" {
                out.defaults = Some(path);
            } else {
                out.vservers.insert(name.to_string(), path);
            }
        }
    }
    Ok(out)
}

/// `*.toml` files of a drop-in directory, in lexical order of their names.
fn dropins(dir: &Path, early: &mut Vec<Diagnostic>) -> Vec<PathBuf> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            early.push(Diagnostic::file_error(dir, format!("cannot read the drop-in directory: {e}")));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    files
}

/// Reads and parses one file; its text is kept in `sources` for positions.
fn parse(tree: &dyn Tree, path: &Path, sources: &mut Vec<Source>, early: &mut Vec<Diagnostic>) -> Option<(usize, Layer)> {
    let text = match tree.read(path) {
        Ok(t) => t,
        Err(e) => {
            early.push(Diagnostic::file_error(path, format!("cannot read: {e}")));
            return None;
        }
    };
    let src = Source { path: path.to_path_buf(), text };
    let parsed = toml::from_str::<Layer>(&src.text);
    sources.push(src);
    let index = sources.len() - 1;
    match parsed {
        Ok(layer) => Some((index, layer)),
        Err(e) => {
            let src = &sources[index];
            let (line, col) = e.span().map_or((1, 1), |s| src.position(s.start));
            let message = match e.message().trim() {
                // Some errors come without a message (a control character in a comment).
                "" => format!("unexpected character {:?}", e.span().and_then(|s| src.text.get(s.start..)?.chars().next()).unwrap_or('\0')),
                m => m.replace('\n', "; "),
            };
            early.push(Diagnostic::new(path, line, col, super::Severity::Error, message));
            None
        }
    }
}

/// Keys that only make sense per vserver are refused in defaults.toml.
fn strip_per_vserver_keys(layer: &mut Layer, sink: &mut Sink) -> bool {
    let mut found: Vec<(&str, Loc)> = Vec::new();
    found.extend(layer.root.take().map(|v| ("root", v.loc())));
    found.extend(layer.hostname.take().map(|v| ("hostname", v.loc())));
    found.extend(layer.context.take().map(|v| ("context", v.loc())));
    found.extend(layer.depends.take().map(|v| ("depends", v.loc())));
    found.extend(layer.template.take().map(|v| ("template", v.loc())));
    for (key, loc) in &found {
        sink.error(loc, format!("`{key}` cannot be set in defaults.toml (it is per vserver)"));
    }
    found.is_empty()
}

/// One vserver's parsed files: the source index of NAME.toml, and each layer (None: failed).
struct Files {
    main: usize,
    layers: Vec<Option<(usize, Layer)>>,
    paths: Vec<PathBuf>,
}

pub(crate) fn load_dir(dir: &Path, opts: &LoadOptions) -> LoadResult {
    load_tree(&Disk, dir, opts)
}

pub(crate) fn load_tree(tree: &dyn Tree, dir: &Path, opts: &LoadOptions) -> LoadResult {
    let mut early = Vec::new();
    let listing = match tree.list(dir, &mut early) {
        Ok(l) => l,
        Err(e) => {
            let d = Diagnostic::file_error(dir, format!("cannot read the config directory: {e}"));
            return LoadResult { diagnostics: vec![d], ..LoadResult::default() };
        }
    };
    let mut sources = Vec::new();
    let mut invalid = BTreeSet::new();

    // Phase 1: read and parse every file.
    let defaults = listing.defaults.as_ref().map(|p| parse(tree, p, &mut sources, &mut early));
    for (name, path) in &listing.dropin_dirs {
        if !listing.vservers.contains_key(name) {
            let msg = format!("drop-in directory without {name}.toml: ignored");
            early.push(Diagnostic::new(path, 1, 1, super::Severity::Warning, msg));
        }
    }
    let mut parsed: BTreeMap<String, Files> = BTreeMap::new();
    for (name, path) in &listing.vservers {
        if let Err(e) = check_name(name) {
            early.push(Diagnostic::file_error(path, e.to_string()));
            invalid.insert(name.clone());
        }
        let mut paths = vec![path.clone()];
        paths.extend(listing.dropin_dirs.get(name).map(|d| tree.dropins(d, &mut early)).unwrap_or_default());
        let main = sources.len();
        let layers: Vec<_> = paths.iter().map(|p| parse(tree, p, &mut sources, &mut early)).collect();
        paths.splice(0..0, listing.defaults.clone());
        parsed.insert(name.clone(), Files { main, layers, paths });
    }

    // Phase 2: merge, resolve and check.
    let mut sink = Sink::new(&sources);
    sink.list = early;
    let (defaults_ok, defaults) = match defaults {
        None => (true, None),
        Some(None) => (false, None),
        Some(Some((index, mut layer))) => {
            // Checked on its own too, so that its errors show even where every vserver
            // overrides the value (the repeats under each vserver are removed below).
            let mut ok = strip_per_vserver_keys(&mut layer, &mut sink);
            let mut alone = Layer::default();
            alone.overlay(layer.clone(), index);
            let before = sink.error_count();
            resolve("defaults", alone, Vec::new(), opts, &mut sink);
            ok &= sink.error_count() == before;
            (ok, Some((index, layer)))
        }
    };
    let mut all: BTreeMap<String, Resolved> = BTreeMap::new();
    let mut main = BTreeMap::new();
    for (name, files) in parsed {
        main.insert(name.clone(), files.main);
        if files.layers.iter().any(Option::is_none) {
            invalid.insert(name);
            continue;
        }
        let mut merged = Layer::default();
        for (index, layer) in defaults.iter().cloned().chain(files.layers.into_iter().flatten()) {
            merged.overlay(layer, index);
        }
        let before = sink.error_count();
        if merged.hostname.is_none() && check_name(&name).is_ok() && default_hostname(&name).is_none() {
            let loc = Loc { file: files.main, span: 0..0 };
            sink.error(&loc, format!("the vserver name `{name}` makes no host name: set `hostname`"));
        }
        let resolved = resolve(&name, merged, files.paths, opts, &mut sink);
        if sink.error_count() > before {
            invalid.insert(name.clone());
        }
        all.insert(name, resolved);
    }
    let known: BTreeSet<String> = listing.vservers.keys().cloned().collect();
    cross::contexts(&mut all, &main, &mut invalid, &mut sink, &|p| tree.modified(p));
    cross::depends(&all, &known, &mut invalid, &mut sink);
    cross::addresses(&all, &mut invalid, &mut sink);
    if !defaults_ok {
        invalid.extend(known.iter().cloned());
    }

    let network_sites = all
        .iter()
        .filter(|(n, r)| !invalid.contains(*n) && r.config.network.mode.has_addresses())
        .map(|(n, r)| (n.clone(), r.net_sites.places(&sink)))
        .collect();
    let mut diagnostics = sink.list;
    diagnostics.sort_by(|a, b| {
        (&a.path, a.line, a.col, a.severity, &a.message).cmp(&(&b.path, b.line, b.col, b.severity, &b.message))
    });
    diagnostics.dedup();
    let vservers = all.into_iter().filter(|(n, _)| !invalid.contains(n)).map(|(n, r)| (n, r.config)).collect();
    LoadResult { vservers, diagnostics, invalid, network_sites }
}
