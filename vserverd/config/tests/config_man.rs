//! The manual page vserver.toml(5) cannot drift from the schema: every key the loader accepts,
//! as the loader itself lists them (its error for an unknown key names all the known ones), is
//! documented there, and the sample configuration shows it.

use std::path::Path;

use vserver_config::{load_files, LoadOptions};

/// The keys the loader knows in the table that `prefix` opens, from its error for `zzz`.
fn known_keys(prefix: &str) -> Vec<String> {
    let text = format!("{prefix}zzz = 1\n");
    let r = load_files(Path::new("/etc/vservers"), &[("web1.toml", &text)], &LoadOptions::default());
    let message = r.diagnostics.iter().map(|d| d.to_string()).find(|m| m.contains("zzz")).unwrap_or_else(|| panic!("no error for zzz in {prefix:?}"));
    let list: Vec<String> = if let Some((_, rest)) = message.split_once(", expected ") {
        // serde: "expected one of `a`, `b`, `c`", "expected `a` or `b`": the quoted names.
        rest.split('`').skip(1).step_by(2).map(str::to_owned).collect()
    } else if let Some((_, rest)) = message.split_once("(known: ") {
        rest.trim_end_matches(')').split(", ").map(str::to_owned).collect()
    } else {
        panic!("no list of keys in {message:?}");
    };
    assert!(list.len() >= 2, "{prefix:?}: {list:?} from {message:?}");
    list
}

fn read(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_manual_and_the_sample_name_every_key() {
    let man = read("man/vserver.toml.5");
    let sample = read("etc/vservers/example.toml.sample");
    let tables = [
        ("", ""),
        ("[init]\n", "[init]"),
        ("[capabilities]\n", "[capabilities]"),
        ("[limits]\n", "[limits]"),
        ("[network]\n", "[network]"),
        ("[hooks]\n", "[hooks]"),
        ("[[mounts]]\nsource = \"/a\"\ntarget = \"/b\"\n", "[[mounts]]"),
    ];
    let mut checked = 0;
    for (prefix, section) in tables {
        if !section.is_empty() {
            assert!(man.contains(&format!(".SH {section}")), "vserver.toml.5 has no section {section}");
        }
        for key in known_keys(prefix) {
            // A key is written in bold: `.B key` on a line of its own, or `\fBkey\fR` in a list.
            let documented =
                man.lines().any(|l| l == format!(".B {key}") || l.starts_with(&format!(".B {key}\\fR"))) || man.contains(&format!("\\fB{key}\\fR")) || man.contains(&format!("\\fB{key}\n"));
            assert!(documented, "vserver.toml.5 does not document {section} {key}");
            let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
            assert!(sample.split(|c: char| !word(c)).any(|w| w == key), "example.toml.sample does not show {section} {key}");
            checked += 1;
        }
    }
    assert!(checked > 50, "{checked} keys");
}
