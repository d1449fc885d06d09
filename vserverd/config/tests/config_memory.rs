//! `config::load_files`, the loader on files given as text (what the fuzz target `config`
//! runs): the same result as `load_dir` on a directory holding the same files, and the same
//! rules for the paths a directory may hold.

use std::fs;
use std::path::{Path, PathBuf};

use vserver_config::{self as config, LoadOptions, LoadResult};

fn opts() -> LoadOptions {
    LoadOptions { root_base: PathBuf::from("/srv/vs"), template_dir: None, host_checks: false }
}

/// `files` written into a new directory and loaded from it, and loaded as text as if in it.
fn both(files: &[(&str, &str)]) -> (LoadResult, LoadResult) {
    let dir = std::env::temp_dir().join(format!("vserverd-config-memory-{}-{}", std::process::id(), files.len()));
    let _ = fs::remove_dir_all(&dir);
    for (rel, text) in files {
        let p = dir.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }
    let on_disk = config::load_dir(&dir, &opts());
    let in_memory = config::load_files(&dir, files, &opts());
    let _ = fs::remove_dir_all(&dir);
    (on_disk, in_memory)
}

fn assert_same(a: &LoadResult, b: &LoadResult) {
    assert_eq!(a.vservers, b.vservers);
    assert_eq!(a.diagnostics, b.diagnostics);
    assert_eq!(a.invalid, b.invalid);
    assert_eq!(a.network_sites, b.network_sites);
}

#[test]
fn the_same_as_a_directory() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/vservers");
    let example = fs::read_to_string(samples.join("example.toml.sample")).unwrap();
    let defaults = fs::read_to_string(samples.join("defaults.toml.sample")).unwrap();
    let files = [
        ("defaults.toml", defaults.as_str()),
        ("web1.toml", example.as_str()),
        ("db1.toml", "context = 7\n[network]\nmode = \"veth\"\naddresses = [\"198.51.100.7/24\"]\n"),
        ("db1.toml.d/20-b.toml", "[init]\nstop_timeout = 5\n"),
        ("db1.toml.d/10-a.toml", "[init]\nstop_timeout = 0\nstart_timeout = 9\n"),
        ("bad.toml", "context = 0\nnice = 40\n[init]\nstop_signal = \"32\"\n"),
        ("broken.toml", "context = \n"),
        ("cycle.toml", "depends = [\"cycle\"]\n"),
        (".hidden.toml", ""),
        ("orphan.toml.d/x.toml", "nice = 1\n"),
        ("notes.txt", "not a config file"),
    ];
    let (disk, memory) = both(&files);
    assert_same(&disk, &memory);
    // Some of each: valid ones, invalid ones, diagnostics in several files.
    assert!(memory.vservers.contains_key("web1") && memory.vservers.contains_key("db1"), "{:#?}", memory.diagnostics);
    assert_eq!(memory.vservers["db1"].init.start_timeout, 9);
    assert_eq!(memory.vservers["db1"].init.stop_timeout, 5, "drop-ins in lexical order, the last wins");
    for name in ["bad", "broken", "cycle", ".hidden"] {
        assert!(memory.invalid.contains(name), "{name}");
    }
    assert!(memory.diagnostics.len() >= 6, "{:#?}", memory.diagnostics);
}

#[test]
fn paths_a_directory_could_not_hold_are_ignored() {
    let dir = Path::new("/nonexistent/vservers");
    let files = [
        ("a.toml", "context = 5\n"),
        ("/etc/b.toml", "context = 6\n"),
        ("../c.toml", "context = 7\n"),
        ("d.toml/e.toml", "context = 8\n"),
        ("a.toml.d/sub/f.toml", "nice = 40\n"),
        ("a.toml.d/../g.toml", "nice = 40\n"),
        ("a.toml.d/h.conf", "nice = 40\n"),
    ];
    let r = config::load_files(dir, &files, &opts());
    assert_eq!(r.vservers.keys().collect::<Vec<_>>(), ["a"]);
    assert!(r.diagnostics.is_empty(), "{:#?}", r.diagnostics);
    assert_eq!(r.vservers["a"].files, [dir.join("a.toml")]);
    // Nothing there, nothing loaded, nothing said.
    let r = config::load_files(dir, &[], &opts());
    assert!(r.vservers.is_empty() && r.diagnostics.is_empty());
}

#[test]
fn of_two_equal_contexts_the_first_name_keeps_it() {
    let dir = Path::new("/nonexistent/vservers");
    let r = config::load_files(dir, &[("b.toml", "context = 9\n"), ("a.toml", "context = 9\n")], &opts());
    assert_eq!(r.vservers.keys().collect::<Vec<_>>(), ["a"]);
    assert_eq!(r.diagnostics.len(), 1);
    let d = &r.diagnostics[0];
    assert_eq!((d.path.as_path(), d.line, d.col), (dir.join("b.toml").as_path(), 1, 11));
    assert!(d.message.starts_with("context 9 is already used by vserver `a`"), "{}", d.message);
}

#[test]
fn a_later_file_of_the_same_path_replaces_the_earlier() {
    let dir = Path::new("/nonexistent/vservers");
    let r = config::load_files(dir, &[("a.toml", "nice = 40\n"), ("a.toml", "nice = 4\n")], &opts());
    assert_eq!(r.vservers["a"].nice, Some(4));
}

/// Found by the fuzz target `config`: a control character in a comment made a TOML error
/// without a message (`a.toml:1:4: error: `).
#[test]
fn a_toml_error_always_says_what_is_wrong() {
    let r = config::load_files(Path::new("/x"), &[("a.toml", "# '\u{e}\n")], &opts());
    assert_eq!(r.diagnostics.len(), 1);
    let d = &r.diagnostics[0];
    assert_eq!((d.line, d.col), (1, 4));
    assert!(d.message.contains("\\u{e}"), "{d}");
}

/// Found by the fuzz target `config`: names from the file (keys of `[limits]` and
/// `[init.env]`, unknown keys) were written raw into diagnostics, line breaks too.
#[test]
fn every_diagnostic_is_one_line() {
    let files = [
        ("a.toml", "[limits]\n\"bad\\nlimit\" = 1\n"),
        ("b.toml", "[init.env]\n\"A\\rB\" = \"x\\u0000\"\n"),
        ("c.toml", "\"key\\u2028x\" = 1\n"),
    ];
    let r = config::load_files(Path::new("/x"), &files, &opts());
    assert_eq!(r.invalid.len(), 3, "{:#?}", r.diagnostics);
    for d in &r.diagnostics {
        let shown = d.to_string();
        assert!(!shown.contains(['\n', '\r', '\u{2028}']), "{shown:?}");
    }
    assert!(r.diagnostics[0].message.contains("bad\\nlimit"), "{}", r.diagnostics[0]);
}

/// Found by the fuzz target `config`: the default host name is the vserver's name made a host
/// name; a name that makes none needs `hostname`.
#[test]
fn a_default_host_name_is_a_host_name() {
    let files = [("db_1.toml", ""), ("-.toml", ""), ("_.toml", "hostname = \"under\"\n")];
    let r = config::load_files(Path::new("/x"), &files, &opts());
    assert_eq!(r.vservers["db_1"].hostname, "db-1");
    assert_eq!(r.vservers["_"].hostname, "under");
    assert!(r.invalid.contains("-"));
    assert_eq!(r.diagnostics.len(), 1, "{:#?}", r.diagnostics);
    assert_eq!(r.diagnostics[0].to_string(), "/x/-.toml:1:1: error: the vserver name `-` makes no host name: set `hostname`");
}

/// Found by the fuzz target `config`: a file name with a line break (`a\nb.toml`) broke the
/// `path:line:col: error: message` line in two.
#[test]
fn a_diagnostic_is_one_line_whatever_its_file_is_named() {
    let r = config::load_files(Path::new("/x"), &[("a\nb\u{c}.toml", "")], &opts());
    assert_eq!(r.diagnostics.len(), 1);
    let shown = r.diagnostics[0].to_string();
    assert!(shown.starts_with("/x/a\\nb\\u{c}.toml:1:1: error: invalid vserver name"), "{shown:?}");
}

/// Found by the fuzz target `config`: an address written in defaults.toml went to every
/// vserver, and the error said only that it was "already used by vserver `a` at" its own
/// place, not which vserver it made invalid.
#[test]
fn an_address_of_defaults_toml_names_the_vserver_it_invalidates() {
    let net = "[network]\nmode = \"veth\"\naddresses = [\"192.0.2.10/24\"]\n";
    let files = [("defaults.toml", net), ("a.toml", ""), ("b.toml", ""), ("c.toml", "[network]\naddresses = [\"192.0.2.11/24\"]\n")];
    let r = config::load_files(Path::new("/x"), &files, &opts());
    assert_eq!(r.vservers.keys().collect::<Vec<_>>(), ["a", "c"]);
    assert_eq!(r.invalid.iter().collect::<Vec<_>>(), ["b"]);
    assert_eq!(r.diagnostics.len(), 1, "{:#?}", r.diagnostics);
    assert_eq!(
        r.diagnostics[0].to_string(),
        "/x/defaults.toml:3:14: error: address 192.0.2.10 is given to every vserver by this file: `a` has it, \
         so `b` cannot (set `network.addresses` in b.toml)"
    );
}
