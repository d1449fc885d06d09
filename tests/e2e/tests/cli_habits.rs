//! The habits of machinectl and systemctl users, through the real CLI and daemon: `show` with
//! `-p` and `--value`, `status` of several vservers, `enable`/`disable` (the file's `onboot`,
//! its comments kept), and `--json=short|pretty`.

use std::fs;
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::pty::{run, vserverctl};
use vserver_e2e::require_root;

const T: Duration = Duration::from_secs(15);

#[test]
fn show_status_enable_disable_and_json_modes() {
    require_root!();
    with_daemon("cli-habits", async |d| {
        d.ctl_root("a");
        d.ctl_root("b");
        d.config("a", &format!("# a: the shop\ncontext = 521\nonboot = false # later\n{CTL_INIT}"));
        d.config("b", &format!("context = 522\n{CTL_INIT}"));
        d.start().await;
        let a = d.address.clone();
        let ctl = |args: &[&str]| run(vserverctl(&a, args), T);
        assert_eq!(ctl(&["start", "a"]).code, Some(0));
        let leader = d.state("a").expect("a runs").pid;

        // show: every property as Key=value, or the ones asked for, or their values alone.
        let o = ctl(&["show", "a"]);
        assert_eq!(o.code, Some(0), "{o:?}");
        for line in ["Name=a", "State=running", "Context=521", &format!("Leader={leader}"), "Onboot=no"] {
            assert!(o.stdout.lines().any(|l| l == line), "{line} in {}", o.stdout);
        }
        let o = ctl(&["show", "a", "-p", "Leader", "--value"]);
        assert_eq!(o.stdout, format!("{leader}\n"), "{o:?}");
        let o = ctl(&["show", "a", "-p", "State,Context"]);
        assert_eq!(o.stdout, "State=running\nContext=521\n", "{o:?}");
        let o = ctl(&["show", "a", "-p", "Pid"]);
        assert_eq!(o.code, Some(2), "an unknown property: {o:?}");
        assert!(o.stderr.contains("\"Pid\"") && o.stderr.contains("Leader"), "{o:?}");
        let o = ctl(&["--json=short", "show", "a", "-p", "Context,Onboot"]);
        assert_eq!(o.stdout, "{\"Context\":521,\"Onboot\":false}\n", "{o:?}");

        // status of several: each shown, the worst code (3: b is not running; 4: no such one).
        let o = ctl(&["status", "a", "b"]);
        assert_eq!(o.code, Some(3), "{o:?}");
        assert!(o.stdout.contains("Name:          a") && o.stdout.contains("Name:          b"), "{o:?}");
        let o = ctl(&["status", "a", "nosuch", "b"]);
        assert_eq!(o.code, Some(4), "{o:?}");
        assert!(o.stderr.contains("nosuch") && o.stdout.contains("Name:          b"), "{o:?}");
        assert_eq!(ctl(&["status", "a"]).code, Some(0));
        // JSON: one array of several; pretty by default, one line with short.
        let o = ctl(&["--json", "status", "a", "b"]);
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        assert_eq!(v.as_array().map(|a| a.len()), Some(2), "{o:?}");
        assert!(o.stdout.lines().count() > 2, "pretty: {o:?}");
        let o = ctl(&["list", "-j"]);
        assert!(o.stdout.lines().count() > 2, "pretty: {o:?}");
        let o = ctl(&["list", "--all", "--json=short"]);
        assert_eq!(o.stdout.lines().count(), 1, "short: {o:?}");
        let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
        assert_eq!(v.as_array().map(|a| a.len()), Some(2), "{o:?}");
        let o = ctl(&["list", "--json=off"]);
        assert!(o.stdout.starts_with("NAME"), "text: {o:?}");

        // enable/disable: the file says so, comments kept; the daemon has it at once.
        let file = d.config_dir.join("a.toml");
        let o = ctl(&["enable", "a", "b"]);
        assert_eq!(o.code, Some(0), "{o:?}");
        let text = fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("# a: the shop\ncontext = 521\nonboot = true # later\n"), "{text}");
        assert!(fs::read_to_string(d.config_dir.join("b.toml")).unwrap().contains("onboot = true"));
        assert_eq!(ctl(&["show", "b", "-p", "Onboot", "--value"]).stdout, "yes\n");
        assert_eq!(d.state_of("a").await, "running", "a running vserver is not touched");
        let o = ctl(&["disable", "a"]);
        assert_eq!(o.code, Some(0), "{o:?}");
        assert!(fs::read_to_string(&file).unwrap().contains("onboot = false # later"));
        assert_eq!(ctl(&["show", "a", "-p", "Onboot", "--value"]).stdout, "no\n");
        // A drop-in that says otherwise wins: the caller is told, not left to wonder.
        fs::create_dir_all(d.config_dir.join("a.toml.d")).unwrap();
        fs::write(d.config_dir.join("a.toml.d/10-boot.toml"), "onboot = false\n").unwrap();
        let o = ctl(&["enable", "a"]);
        assert_eq!(o.code, Some(1), "{o:?}");
        assert!(o.stderr.contains("a.toml.d"), "{o:?}");
        let o = ctl(&["enable", "nosuch"]);
        assert_eq!(o.code, Some(1), "{o:?}");
        assert!(o.stderr.contains("nosuch"), "{o:?}");
        assert_eq!(ctl(&["stop", "a"]).code, Some(0));
    });
}
