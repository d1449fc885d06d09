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
