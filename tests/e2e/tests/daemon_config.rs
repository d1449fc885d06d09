//! Bad configurations, through the running daemon (`CheckConfig`, `Reload`, `StartVServer`)
//! and offline (`vserverd --check-config`): every error class, reported as
//! `path:line:col: severity: message`; an invalid vserver refuses to start, the others work.

use std::fs;
use std::process::Command;
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::require_root;

const CONFIG_INVALID: &str = "org.vserverd.VServer1.ConfigInvalid";

/// An expected diagnostic: (line, col, severity, message prefix).
type Want = (usize, usize, &'static str, &'static str);

/// (file, content, expected diagnostics).
fn cases() -> Vec<(&'static str, &'static str, Vec<Want>)> {
    vec![
        // A TOML syntax error (the message is the parser's).
        ("syntax.toml", "context = 601\nhostname = \n", vec![(2, 12, "error", "")]),
        ("unknown.toml", "context = 602\ncolour = \"red\"\n", vec![(2, 1, "error", "unknown field `colour`, expected one of `root`")]),
        ("wrongtype.toml", "context = 603\nonboot = \"yes\"\n", vec![(2, 10, "error", "invalid type: string \"yes\", expected a boolean")]),
        ("badvalue.toml", "context = 0\npriority = 5\n", vec![(1, 11, "error", "`context` must be from 1 to 49151, not 0")]),
        (
            "badcap.toml",
            "context = 605\n[capabilities]\nadd = [\"NET_RAW\", \"FLY\"]\n",
            vec![(3, 19, "error", "unknown capability \"FLY\"")],
        ),
        ("badflag.toml", "context = 606\nflags = [\"lock\", \"turbo\"]\n", vec![(2, 18, "error", "unknown flag \"turbo\"")]),
        ("bad name!.toml", "context = 607\n", vec![(1, 1, "error", "invalid vserver name \"bad name!\"")]),
        ("first.toml", "context = 608\n", vec![]),
        (
            "second.toml",
            "# the same number\ncontext = 608\n",
            vec![(2, 11, "error", "context 608 is already used by vserver `first` at ")],
        ),
        (
            "orphan.toml",
            "context = 609\ndepends = [\"ghost\"]\n",
            vec![(2, 12, "error", "`orphan` depends on `ghost`, which does not exist (no ghost.toml)")],
        ),
        ("cyc1.toml", "context = 610\ndepends = [\"cyc2\"]\n", vec![(2, 12, "error", "dependency cycle: cyc1 -> cyc2 -> cyc1")]),
        ("cyc2.toml", "context = 611\ndepends = [\"cyc1\"]\n", vec![(2, 12, "error", "dependency cycle: cyc2 -> cyc1 -> cyc2")]),
        ("self.toml", "context = 617\ndepends = [\"self\"]\n", vec![(2, 12, "error", "dependency cycle: `self` depends on itself")]),
        ("dropin.toml", "context = 612\n", vec![]),
        ("dropin.toml.d/10-x.toml", "[init]\nstop_timeout = 0\n", vec![(2, 16, "error", "`init.stop_timeout` must be from 1 to 86400, not 0")]),
        (
            "init.toml",
            "context = 613\n[init]\nstop_signal = \"SIGFOO\"\nrestart = \"sometimes\"\ncommand = []\n",
            vec![
                (3, 15, "error", "unknown signal \"SIGFOO\""),
                (4, 11, "error", "unknown restart policy \"sometimes\""),
                (5, 11, "error", "`init.command` must not be empty"),
            ],
        ),
        (
            "hook.toml",
            "context = 615\n[hooks]\npre_start = [\"relative/prog\"]\n",
            vec![(3, 14, "error", "`hooks.pre_start` must start with an absolute program path")],
        ),
        // A warning does not make the vserver invalid.
        ("hostnet.toml", "context = 614\n[network]\nmode = \"host\"\n", vec![(3, 8, "warning", "network mode \"host\" is not isolated")]),
        ("good.toml", "context = 616\nflags = [\"fakeinit\"]\n[init]\ncommand = [\"/bin/ctl-init\"]\nstop_timeout = 2\n", vec![]),
    ]
}

fn check(diags: &[String], d: &TestDaemon) {
    let mut want: Vec<(String, &str)> = Vec::new();
    for (file, _, expected) in cases() {
        for (line, col, sev, msg) in expected {
            want.push((format!("{}:{line}:{col}: {sev}: ", d.config_dir.join(file).display()), msg));
        }
    }
    assert_eq!(diags.len(), want.len(), "one diagnostic per problem, all at once:\n{}", diags.join("\n"));
    for (prefix, msg) in &want {
        assert!(
            diags.iter().any(|l| l.starts_with(prefix) && l[prefix.len()..].starts_with(msg)),
            "missing {prefix}{msg}… in:\n{}",
            diags.join("\n")
        );
    }
}

#[test]
fn every_error_class_is_reported_with_its_position() {
    require_root!();
    with_daemon("d-badcfg", async |d| {
        for (file, text, _) in cases() {
            let p = d.config_dir.join(file);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, text).unwrap();
        }
        d.ctl_root("good");
        d.start().await;
        let m = d.manager().await;

        let (ok, diags) = m.check_config("").await.unwrap();
        assert!(!ok);
        check(&diags, &d);
        assert_eq!(m.reload().await.unwrap(), diags, "Reload reports the same");

        // Offline, the same lines and exit status 1.
        let out = Command::new(bin("vserverd")).arg("--check-config").arg(&d.config_dir).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let offline: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect();
        assert_eq!(offline, diags);

        // One vserver's check holds its own files only.
        let (ok, one) = m.check_config("init").await.unwrap();
        assert!(!ok);
        assert_eq!(one.len(), 3, "{one:?}");
        let (ok, one) = m.check_config("dropin").await.unwrap();
        assert!(!ok);
        assert!(one[0].contains("dropin.toml.d/10-x.toml:2:16: error:"), "{one:?}");
        assert!(m.check_config("hostnet").await.unwrap().0, "a warning is not an error");

        // Invalid vservers refuse to start; the valid ones start.
        for name in ["syntax", "unknown", "wrongtype", "badvalue", "badcap", "badflag", "second", "orphan", "cyc1", "self", "dropin", "init", "hook"] {
            let r = m.start_vserver(name).await;
            assert_eq!(outcome(&r), CONFIG_INVALID, "{name}");
            let e = r.unwrap_err().to_string();
            assert!(e.contains(&format!("{name} has no valid configuration:\n")) && e.contains("error:"), "{e}");
        }
        m.start_vserver("good").await.unwrap_or_else(|e| panic!("{e}\n{}", d.daemon_log()));
        d.state("good");
        assert_eq!(d.state_of("good").await, "running");
        d.vserver("good").await.stop().await.unwrap();
    });
}

#[test]
fn an_error_in_defaults_toml_invalidates_every_vserver() {
    require_root!();
    with_daemon("d-defaults", async |d| {
        d.ctl_root("x");
        d.config("x", &format!("context = 620\n{CTL_INIT}"));
        fs::write(d.config_dir.join("defaults.toml"), "onboot = true\nroot = \"/srv/all\"\n").unwrap();
        d.start().await;
        let m = d.manager().await;
        let (ok, diags) = m.check_config("x").await.unwrap();
        assert!(!ok);
        let defaults = d.config_dir.join("defaults.toml").display().to_string();
        assert_eq!(diags, vec![format!("{defaults}:2:8: error: `root` cannot be set in defaults.toml (it is per vserver)")]);
        assert_eq!(outcome(&m.start_vserver("x").await), CONFIG_INVALID);

        // Fixed and reloaded: the default applies.
        fs::write(d.config_dir.join("defaults.toml"), "onboot = true\n").unwrap();
        assert_eq!(m.reload().await.unwrap(), Vec::<String>::new());
        assert!(d.vserver("x").await.onboot().await.unwrap(), "onboot comes from defaults.toml");
        m.start_vserver("x").await.unwrap();
        d.state("x");
    });
}

#[test]
fn a_bad_edit_never_stops_a_running_vserver_and_a_good_one_applies_at_the_next_start() {
    require_root!();
    with_daemon("d-edit", async |d| {
        d.ctl_root("keep");
        d.config("keep", &format!("context = 621\n{CTL_INIT}"));
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("keep").await.unwrap();
        let st = d.state("keep").unwrap();

        d.config("keep", &format!("context = 622\nnice = 99\n{CTL_INIT}"));
        let diags = m.reload().await.unwrap();
        assert_eq!(diags.len(), 1, "{diags:?}");
        assert!(diags[0].contains("keep.toml:2:8: error: `nice` must be from -20 to 19, not 99"), "{diags:?}");
        let v = d.vserver("keep").await;
        assert_eq!(v.state().await.unwrap(), "running");
        assert_eq!(v.leader().await.unwrap(), st.pid as u32);
        assert_eq!(v.context().await.unwrap(), 621, "the last good configuration stays");

        d.config("keep", &format!("context = 623\n{CTL_INIT}"));
        assert_eq!(m.reload().await.unwrap(), Vec::<String>::new());
        assert_eq!(v.state().await.unwrap(), "running", "a reload restarts nothing");
        assert_eq!(d.state("keep").unwrap().context, 621);
        m.restart_vserver("keep").await.unwrap();
        assert_eq!(d.state("keep").unwrap().context, 623, "the new configuration at the next start");
        assert_eq!(v.context().await.unwrap(), 623);
        tokio::time::sleep(Duration::from_millis(10)).await;
    });
}
