//! Unification: two vservers overlaid on one template. A write, a delete and a chmod in one are
//! its own (copied up into its directory): the other vserver and the template see nothing, the
//! template is unchanged byte for byte, the overlay is mounted only inside the vserver, `du` of a
//! fresh unified vserver is near zero; `template remove` is refused while in use; `destroy`
//! keeps the template.

mod build_support;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

use build_support::*;
use vserver_e2e::daemon::*;
use vserver_e2e::{require_root, TestDir};

#[test]
fn unified_vservers_share_a_template_and_keep_their_changes_to_themselves() {
    require_root!();
    let t = TestDir::new("b-uni");
    let bus = TestBus::start();
    let tpl = t.path.join("tpl");
    busybox_tree(&tpl);
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        ok(&ctl(&d, &["template", "create", "base", "--template", &tpl.display().to_string()]));
        let template = d.root_base.join(".templates/base");
        let before = picture(&template);
        ok(&ctl(&d, &["build", "u1", "--unified", "base"]));
        ok(&ctl(&d, &["build", "u2", "--unified", "base"]));
        let list = ok(&ctl(&d, &["template", "list"]));
        assert!(list.contains("base") && list.contains("u1,u2"), "{list}");

        // du of a fresh unified vserver: its own files only, under 1 MB.
        for n in ["u1", "u2"] {
            let v: serde_json::Value = serde_json::from_str(&ok(&ctl(&d, &["--json", "du", n]))).unwrap();
            let bytes = v[0]["bytes"].as_u64().unwrap();
            assert!(bytes < 1_000_000, "du {n}: {bytes}");
        }

        let tpl_path = template.display().to_string();
        init_dropin(
            &d,
            "u1",
            &format!(
                "echo changed > /hello; rm /etc/deleteme; chmod 600 /etc/chmodme; \
                 echo evil > /proc/1/root/etc/suid; echo evil > {tpl_path}/hello 2>/dev/null; \
                 mkdir -p {tpl_path} && echo evil > {tpl_path}/hello; touch /done"
            ),
        );
        init_dropin(&d, "u2", "cat /hello > /view; ls /etc > /view-ls; stat -c %a /etc/chmodme > /view-mode; cat /etc/suid > /view-suid; touch /done");
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("u1").await.unwrap_or_else(|e| panic!("start u1: {e}\n{}", d.daemon_log()));
        let (u1, u2) = (d.root_base.join("u1"), d.root_base.join("u2"));
        wait_for(&u1.join("upper/done"));
        // The overlay is mounted only inside the vserver: the host sees an empty mount point.
        let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&u1.display().to_string()), "{mounts}");
        assert_eq!(fs::read_dir(u1.join("root")).unwrap().count(), 0);
        m.start_vserver("u2").await.unwrap_or_else(|e| panic!("start u2: {e}\n{}", d.daemon_log()));
        wait_for(&u2.join("upper/done"));

        // u1's changes are in its own directory.
        assert_eq!(fs::read_to_string(u1.join("upper/hello")).unwrap(), "changed\n");
        let wh = fs::symlink_metadata(u1.join("upper/etc/deleteme")).unwrap();
        assert!(wh.file_type().is_char_device() && wh.rdev() == 0, "a whiteout records the delete");
        assert_eq!(fs::metadata(u1.join("upper/etc/chmodme")).unwrap().mode() & 0o7777, 0o600);
        assert_eq!(fs::read_to_string(u1.join("upper/etc/suid")).unwrap(), "evil\n");
        // u2 saw the template as it was.
        assert_eq!(fs::read_to_string(u2.join("upper/view")).unwrap(), "hello\n");
        assert!(fs::read_to_string(u2.join("upper/view-ls")).unwrap().lines().any(|l| l == "deleteme"));
        assert_eq!(fs::read_to_string(u2.join("upper/view-mode")).unwrap().trim(), "644");
        assert_eq!(fs::read_to_string(u2.join("upper/view-suid")).unwrap(), "s\n");
        // The template is untouched, byte for byte (modes and owners too).
        assert_eq!(picture(&template), before);

        // In use: the template cannot go; a running vserver cannot be destroyed.
        let err = failed(&ctl(&d, &["template", "remove", "base"]));
        assert!(err.contains("in use by u1, u2"), "{err}");
        let err = failed(&ctl(&d, &["destroy", "--force", "u1"]));
        assert!(err.contains("running"), "{err}");

        m.stop_vserver("u1").await.unwrap();
        m.stop_vserver("u2").await.unwrap();
        assert_eq!(fs::read_dir(u1.join("root")).unwrap().count(), 0, "nothing left mounted or written on the mount point");
        let v: serde_json::Value = serde_json::from_str(&ok(&ctl(&d, &["--json", "du", "u1"]))).unwrap();
        assert!(v[0]["bytes"].as_u64().unwrap() < 1_000_000, "{v}");

        ok(&ctl(&d, &["destroy", "--force", "u1"]));
        ok(&ctl(&d, &["destroy", "--force", "u2"]));
        assert!(!u1.exists() && !u2.exists());
        assert!(!d.config_dir.join("u1.toml").exists() && !d.config_dir.join("u1.toml.d").exists());
        assert_eq!(picture(&template), before, "destroy keeps the template");
        // The daemon was told: u1 is gone from its list.
        let names: Vec<String> = m.list_vservers().await.unwrap().into_iter().map(|v| v.name).collect();
        assert!(!names.contains(&"u1".to_string()), "{names:?}");
        ok(&ctl(&d, &["template", "remove", "base"]));
        assert!(!template.exists());
    });
}
