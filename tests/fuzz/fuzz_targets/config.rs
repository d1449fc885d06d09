//! The whole configuration pipeline on files given as text (`config::load_files`): listing,
//! TOML parsing, merging of defaults, vserver and drop-ins, resolving every value, the checks
//! across vservers. The input is a config directory written as one text (`--- PATH` lines
//! start a file, see `vserver_fuzz::split_files`).
//!
//! Checked: no panic; every diagnostic is one line at a place in one of the files; diagnostics
//! sorted; a vserver is valid or invalid, never both, and an invalid one has an error in its
//! files; a valid one holds only checked values (contexts unique and in range, names, signals,
//! CPU lists...) and makes a launch plan; and the files written again by the TOML serializer
//! (another layout, the same values) load to the same vservers.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use vserver_config::values::{check_hostname, check_name};
use vserver_config::{load_files, LoadOptions, LoadResult, Severity, MAX_STATIC_CONTEXT};
use vserver_fuzz::{one_line, split_files};

const DIR: &str = "/fuzz/vservers";

fn opts() -> LoadOptions {
    LoadOptions { root_base: PathBuf::from("/fuzz/roots"), template_dir: None, host_checks: false }
}

fn load(files: &[(String, String)]) -> LoadResult {
    let refs: Vec<(&str, &str)> = files.iter().map(|(p, t)| (p.as_str(), t.as_str())).collect();
    load_files(Path::new(DIR), &refs, &opts())
}

fn check(files: &[(String, String)], r: &LoadResult) {
    let dir = Path::new(DIR);
    let texts: BTreeMap<PathBuf, &str> = files.iter().map(|(p, t)| (dir.join(p), t.as_str())).collect();
    // The vservers: NAME.toml directly in the directory.
    let names: BTreeSet<String> = texts
        .keys()
        .filter(|p| p.parent() == Some(dir))
        .filter_map(|p| p.file_name()?.to_str()?.strip_suffix(".toml").map(str::to_string))
        .filter(|n| n != "defaults")
        .collect();

    for d in &r.diagnostics {
        let shown = d.to_string();
        assert!(one_line(&shown), "{shown:?}");
        assert!(d.line >= 1 && d.col >= 1, "{shown}");
        assert!(!d.message.is_empty(), "{shown}");
        match texts.get(&d.path) {
            Some(text) => {
                assert!(d.line <= text.split('\n').count(), "{shown}");
                let line = text.split('\n').nth(d.line - 1).unwrap_or_default();
                assert!(d.col <= line.chars().count() + 1, "{shown}");
            }
            // A drop-in directory, or the directory itself.
            None => assert!(d.path == dir || d.path.parent() == Some(dir), "{shown}"),
        }
    }
    let keys: Vec<_> = r.diagnostics.iter().map(|d| (&d.path, d.line, d.col, d.severity, &d.message)).collect();
    assert!(keys.windows(2).all(|w| w[0] < w[1]), "sorted, each once");

    for name in r.vservers.keys() {
        assert!(!r.invalid.contains(name), "{name} is valid and invalid");
    }
    for name in &names {
        assert!(r.vservers.contains_key(name) || r.invalid.contains(name), "{name} is neither valid nor invalid");
    }
    assert!(r.invalid.is_subset(&names));
    let defaults = dir.join("defaults.toml");
    for name in &r.invalid {
        let main = dir.join(format!("{name}.toml"));
        let dropins = dir.join(format!("{name}.toml.d"));
        let own = |p: &Path| p == main || p.starts_with(&dropins) || p == defaults;
        assert!(r.errors().any(|d| own(&d.path)), "{name} is invalid without an error in its files: {:#?}", r.diagnostics);
    }

    let mut contexts = BTreeSet::new();
    for (name, c) in &r.vservers {
        let main = dir.join(format!("{name}.toml"));
        let dropins = dir.join(format!("{name}.toml.d"));
        assert!(
            !r.errors().any(|d| d.path == main || d.path.starts_with(&dropins)),
            "{name} is valid with an error in its files: {:#?}",
            r.diagnostics
        );
        // An error in defaults.toml makes every vserver invalid, or names the one it makes
        // invalid (an address given to several).
        assert!(
            r.errors().filter(|d| d.path == defaults).all(|d| r.invalid.iter().any(|i| d.message.contains(&format!("so `{i}` cannot")))),
            "{name} is valid with an error in defaults.toml: {:#?}",
            r.diagnostics
        );
        assert_eq!(&c.name, name);
        assert!(check_name(name).is_ok());
        assert!((1..=MAX_STATIC_CONTEXT).contains(&c.context), "{name}: context {}", c.context);
        assert!(contexts.insert(c.context), "{name}: context {} twice", c.context);
        assert!(check_hostname(&c.hostname).is_ok(), "{name}: {:?}", c.hostname);
        assert!(c.domainname.as_deref().is_none_or(|d| check_hostname(d).is_ok()));
        assert!(c.depends.iter().all(|d| names.contains(d) && d != name), "{name}: {:?}", c.depends);
        assert!(c.root.is_absolute(), "{name}: {:?}", c.root);
        assert!(c.nice.is_none_or(|n| (-20..=19).contains(&n)));
        if let Some(s) = c.init.stop_signal {
            assert_eq!(vserver_api::signal::check(s), Ok(s));
        }
        assert!((1..=86400).contains(&c.init.stop_timeout) && (1..=86400).contains(&c.init.start_timeout));
        assert!(!c.init.command.is_empty());
        assert!(c.init.env.keys().all(|k| !k.is_empty() && !k.contains(['=', '\0'])));
        if let Some(cpus) = &c.limits.cpuset {
            assert!(!cpus.is_empty() && cpus.windows(2).all(|w| w[0] < w[1]));
        }
        for l in &c.limits.rlimits {
            assert!(l.soft <= l.hard);
        }
        let addrs: BTreeSet<_> = c.network.addresses.iter().map(|a| a.addr).collect();
        assert_eq!(addrs.len(), c.network.addresses.len(), "{name}: an address twice");
        assert!(c.network.addresses.iter().all(|a| !a.addr.is_loopback()));
        assert!(c.network.mtu.is_none_or(|m| (68..=65535).contains(&m)));
        assert!(c.tmpfs.iter().all(|t| t.starts_with('/')));
        assert!(c.mounts.iter().all(|m| m.source.is_absolute() && m.target.starts_with('/')));
        for hook in [&c.hooks.pre_start, &c.hooks.post_start, &c.hooks.pre_stop, &c.hooks.post_stop].into_iter().flatten() {
            assert!(hook.first().is_some_and(|p| p.starts_with('/')));
        }
        let plan = c.launch_plan(Path::new("/run/vservers"));
        assert_eq!(plan.context, c.context);
        serde_json::to_string(c).expect("a configuration serializes");
    }
}

/// Each file as the TOML serializer writes its values: `None` when one is not TOML.
fn rewritten(files: &[(String, String)]) -> Option<Vec<(String, String)>> {
    files
        .iter()
        .map(|(p, t)| {
            let table: toml::Table = toml::from_str(t).ok()?;
            Some((p.clone(), toml::to_string(&table).ok()?))
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let files = split_files(&text);
    let r = load(&files);
    check(&files, &r);
    assert_eq!(r.has_errors(), r.diagnostics.iter().any(|d| d.severity == Severity::Error));

    // The same values written another way load to the same vservers.
    if let Some(again) = rewritten(&files) {
        let r2 = load(&again);
        check(&again, &r2);
        assert_eq!(r.vservers, r2.vservers, "{again:#?}");
        assert_eq!(r.invalid, r2.invalid, "{again:#?}\n{:#?}\n{:#?}", r.diagnostics, r2.diagnostics);
    }
});
