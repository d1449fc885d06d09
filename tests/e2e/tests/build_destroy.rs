//! `vserverctl destroy`: a symlink planted in the root to a host directory is removed as a link,
//! its target untouched; the root, NAME.toml and its drop-ins go; a template is never destroyed;
//! with the daemon down only --force destroys, and not while monitor state exists.

mod build_support;

use std::fs;
use std::os::unix::fs::symlink;

use build_support::*;
use vserver_e2e::daemon::*;
use vserver_e2e::{require_root, TestDir};

#[test]
fn destroy_never_follows_a_symlink_out_of_the_root() {
    require_root!();
    let t = TestDir::new("b-destroy");
    let bus = TestBus::start();
    let tpl = t.path.join("tpl");
    busybox_tree(&tpl);
    let host = t.host();
    fs::create_dir_all(host.join("sub")).unwrap();
    fs::write(host.join("precious"), "keep\n").unwrap();
    fs::write(host.join("sub/also"), "keep\n").unwrap();
    let host_before = picture(&host);
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        ok(&ctl(&d, &["build", "victim", "--template", &tpl.display().to_string()]));
        let root = d.root_base.join("victim");
        // What root inside could plant: links to the host's directory and files, absolute and
        // relative, at several depths.
        symlink(&host, root.join("hostdir")).unwrap();
        symlink(host.join("precious"), root.join("etc/precious")).unwrap();
        symlink("../../../../../../../../..", root.join("etc/up")).unwrap();
        fs::create_dir_all(root.join("var/deep")).unwrap();
        symlink(&host, root.join("var/deep/link")).unwrap();
        fs::create_dir_all(d.config_dir.join("victim.toml.d")).unwrap();
        fs::write(d.config_dir.join("victim.toml.d/x.toml"), "onboot = false\n").unwrap();

        // The daemon is down: refused without --force; with --force refused while a monitor's
        // state file exists.
        let err = failed(&ctl(&d, &["destroy", "victim"]));
        assert!(err.contains("cannot ask vserverd"), "{err}");
        fs::create_dir_all(d.run_dir.join("victim")).unwrap();
        fs::write(d.run_dir.join("victim/state.json"), "{}").unwrap();
        let err = failed(&ctl(&d, &["destroy", "--force", "victim"]));
        assert!(err.contains("may be running"), "{err}");
        fs::remove_dir_all(d.run_dir.join("victim")).unwrap();
        assert!(root.join("bin/busybox").exists());

        // Daemon up, vserver stopped; not a terminal: --force is needed.
        d.start().await;
        let err = failed(&ctl(&d, &["destroy", "victim"]));
        assert!(err.contains("--force"), "{err}");
        ok(&ctl(&d, &["destroy", "--force", "victim"]));
        assert!(!root.exists());
        assert!(!d.config_dir.join("victim.toml").exists() && !d.config_dir.join("victim.toml.d").exists());
        assert_eq!(picture(&host), host_before, "nothing outside the root was deleted");
        assert!(tpl.join("bin/busybox").exists());

        // A root whose `root` names the templates directory is refused.
        ok(&ctl(&d, &["template", "create", "base", "--template", &tpl.display().to_string()]));
        let template = d.root_base.join(".templates/base");
        d.config("sneaky", &format!("root = \"{}\"\n", template.display()));
        let err = failed(&ctl(&d, &["destroy", "--force", "sneaky"]));
        assert!(err.contains("template"), "{err}");
        assert!(template.join("bin/busybox").exists());
        let err = failed(&ctl(&d, &["destroy", "--force", "nosuch"]));
        assert!(err.contains("no such vserver"), "{err}");
    });
}

/// `destroy` and `start` exclude each other (the name's lock, taken by the daemon for a start and
/// by `vserverctl destroy` from its check to its deletion): raced twelve times, never both
/// succeed, and a vserver that started still has its root and its configuration.
#[test]
fn destroy_and_start_raced_never_both_succeed() {
    require_root!();
    with_daemon("b-race", async |d| {
        d.start().await;
        let (mut started, mut destroyed) = (0, 0);
        for round in 0..12u64 {
            let root = d.ctl_root("racer");
            // Enough files that a deletion takes a while: a start that slipped in after the
            // destroy's check would run on a root being deleted under it.
            fs::create_dir_all(root.join("var/filler")).unwrap();
            for i in 0..2000 {
                fs::write(root.join(format!("var/filler/{i}")), "x").unwrap();
            }
            d.config("racer", &format!("context = {}\n{CTL_INIT}", 700 + round));
            d.manager().await.reload().await.unwrap();
            let args: Vec<String> = ["destroy", "--force", "racer", "--config-dir", &d.config_dir.display().to_string()]
                .into_iter()
                .map(String::from)
                .chain(["--root-base".into(), d.root_base.display().to_string(), "--run-dir".into(), d.run_dir.display().to_string()])
                .collect();
            let address = d.address.clone();
            let destroy = std::thread::spawn(move || {
                std::process::Command::new(bin("vserverctl")).args(&args).env("DBUS_SYSTEM_BUS_ADDRESS", address).output().unwrap()
            });
            // The start a little later each round, so that each side is first in some rounds.
            let m = d.manager().await;
            tokio::time::sleep(std::time::Duration::from_millis(2 * round)).await;
            let start = m.start_vserver("racer").await;
            let destroy = destroy.join().unwrap();
            let gone = !d.root_base.join("racer").exists();
            match (&start, destroy.status.success()) {
                (Ok(()), true) => panic!("round {round}: both the start and the destroy succeeded:\n{}", String::from_utf8_lossy(&destroy.stderr)),
                (Ok(()), false) => {
                    started += 1;
                    assert!(!gone && d.config_dir.join("racer.toml").exists(), "round {round}: a started vserver lost its files");
                    assert_eq!(fs::read_dir(root.join("var/filler")).unwrap().count(), 2000, "round {round}: a started vserver lost files");
                    d.manager().await.stop_vserver("racer").await.unwrap();
                    ok(&ctl(&d, &["destroy", "--force", "racer"]));
                }
                (Err(_), true) => {
                    destroyed += 1;
                    assert!(gone, "round {round}");
                }
                (Err(e), false) => panic!("round {round}: neither: {e}; {}", String::from_utf8_lossy(&destroy.stderr)),
            }
            assert!(!d.root_base.join("racer").exists());
        }
        eprintln!("started first {started} times, destroyed first {destroyed} times");
    });
}
