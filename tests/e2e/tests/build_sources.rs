//! `vserverctl build` from a busybox tree and from a tarball of it (modes, owners, setuid,
//! symlinks and hard links kept), a vserver so built starts; a refused name, and failed builds
//! (a hostile tarball, a missing source) leave nothing behind; `du` of a plain root.

mod build_support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

use build_support::*;
use vserver_e2e::daemon::*;
use vserver_e2e::{require_root, TestDir};

/// What a vserver's directories hold besides the given names (no temporary left).
fn leftovers(d: &TestDaemon) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(&d.root_base).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    v.extend(fs::read_dir(&d.config_dir).unwrap().flatten().map(|e| format!("etc/{}", e.file_name().to_string_lossy())));
    v.sort();
    v
}

#[test]
fn build_from_a_tree_and_a_tarball_and_start() {
    require_root!();
    let t = TestDir::new("b-src");
    let bus = TestBus::start();
    let tpl = t.path.join("tpl");
    busybox_tree(&tpl);
    let tarball = t.path.join("tpl.tar.gz");
    let st = Command::new("tar").arg("-C").arg(&tpl).arg("-czf").arg(&tarball).arg(".").status().unwrap();
    assert!(st.success());
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        let tree = tpl.display().to_string();
        let tar = tarball.display().to_string();
        ok(&ctl(&d, &["build", "fromdir", "--template", &tree]));
        ok(&ctl(&d, &["build", "fromtar", "--template", &tar]));
        let want = picture(&tpl);
        for name in ["fromdir", "fromtar"] {
            let root = d.root_base.join(name);
            // The same tree, except the fifo (the engine makes /dev; tar's fifos are skipped),
            // the directories every vserver needs, and its name (/etc/hostname, /etc/hosts).
            let added = ["run ", "root ", "etc/hostname ", "etc/hosts "];
            let got: Vec<String> = picture(&root).into_iter().filter(|l| !added.iter().any(|a| l.starts_with(a))).collect();
            let want: Vec<String> = want.iter().filter(|l| name == "fromdir" || !l.starts_with("etc/fifo ")).cloned().collect();
            assert_eq!(got, want, "{name}");
            assert_eq!(fs::read_to_string(root.join("etc/hostname")).unwrap(), format!("{name}\n"));
            assert!(fs::read_to_string(root.join("etc/hosts")).unwrap().contains(&format!("127.0.1.1\t{name}\n")));
            assert_eq!(ino(&root.join("hello")), ino(&root.join("etc/hello-link")), "{name}: hard link kept");
            assert!(d.config_dir.join(format!("{name}.toml")).exists());
        }
        let base = fs::metadata(&d.root_base).unwrap();
        assert_eq!(base.mode() & 0o7777, 0o700, "the root base is the chroot barrier");

        // A NAME that exists is refused, and nothing changes.
        let before = leftovers(&d);
        let err = failed(&ctl(&d, &["build", "fromdir", "--template", &tree]));
        assert!(err.contains("exists already"), "{err}");
        assert_eq!(leftovers(&d), before);

        // du of a plain root: its own blocks (busybox, ~2 MB).
        let du = ok(&ctl(&d, &["--json", "du", "fromtar"]));
        let v: serde_json::Value = serde_json::from_str(&du).unwrap();
        let bytes = v[0]["bytes"].as_u64().unwrap();
        assert!(bytes > 500_000 && bytes < 10_000_000, "{du}");

        // The tarball-built vserver starts and runs its command.
        init_dropin(&d, "fromtar", "echo up > /tmp/up; hostname > /tmp/name");
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("fromtar").await.unwrap_or_else(|e| panic!("start: {e}\n{}", d.daemon_log()));
        assert_eq!(wait_for_text(&d.root_base.join("fromtar/tmp/name")).trim(), "fromtar");
        m.stop_vserver("fromtar").await.unwrap();
    });
}

#[test]
fn a_failed_build_leaves_nothing() {
    require_root!();
    let t = TestDir::new("b-fail");
    let bus = TestBus::start();
    let d = TestDaemon::new(&t, &bus);
    // A tarball with an entry that climbs out of the target (written raw: tar(1) refuses to).
    let evil = t.path.join("evil.tar");
    {
        let mut b = tar_builder(&evil);
        append(&mut b, "./bin/", None);
        append(&mut b, "./bin/ok", Some(b"fine\n"));
        append(&mut b, "../../escaped", Some(b"evil\n"));
        b.into_inner().unwrap();
    }
    let outside = t.path.join("escaped");
    let before = leftovers(&d);
    let err = failed(&ctl(&d, &["build", "evil", "--template", &evil.display().to_string()]));
    assert!(err.contains("refusing the archive"), "{err}");
    assert!(!outside.exists() && !d.root_base.parent().unwrap().join("escaped").exists());
    assert_eq!(leftovers(&d), before, "no root, no temporary, no config");

    let err = failed(&ctl(&d, &["build", "missing", "--template", "/nonexistent/tree"]));
    assert!(err.contains("/nonexistent/tree"), "{err}");
    let err = failed(&ctl(&d, &["build", "nounified", "--unified", "nosuchtemplate"]));
    assert!(err.contains("no such template"), "{err}");
    let err = failed(&ctl(&d, &["build", "../x", "--template", "/"]));
    assert!(err.contains("name"), "{err}");
    assert_eq!(leftovers(&d), before);
    // Usage: two sources.
    let out = ctl(&d, &["build", "two", "--from-host", "--unified", "x"]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A tar writer with raw names (the tar crate's `append_data` refuses `..`).
fn tar_builder(p: &std::path::Path) -> TarWriter {
    TarWriter { f: fs::File::create(p).unwrap() }
}

struct TarWriter {
    f: fs::File,
}

impl TarWriter {
    fn into_inner(mut self) -> std::io::Result<()> {
        use std::io::Write;
        self.f.write_all(&[0u8; 1024])
    }
}

/// A ustar header + data, by hand.
fn append(w: &mut TarWriter, name: &str, data: Option<&[u8]>) {
    use std::io::Write;
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let mode = if data.is_some() { "0000644\0" } else { "0000755\0" };
    h[100..108].copy_from_slice(mode.as_bytes());
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    let size = data.map_or(0, |d| d.len());
    h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
    h[136..148].copy_from_slice(b"00000000000\0");
    h[156] = if data.is_some() { b'0' } else { b'5' };
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|b| *b as u32).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    w.f.write_all(&h).unwrap();
    if let Some(d) = data {
        w.f.write_all(d).unwrap();
        let pad = (512 - d.len() % 512) % 512;
        w.f.write_all(&vec![0u8; pad]).unwrap();
    }
}
