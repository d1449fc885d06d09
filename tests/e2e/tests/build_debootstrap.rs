//! Heavy (needs Debian's package registry, about 30 s): `vserverctl build --debootstrap bookworm
//! --variant minbase`, started, and `vserverctl exec` reads /etc/debian_version and runs
//! `apt-get --version` inside. Runs when VSERVER_HEAVY=1 (tests/run.sh sets it in CI), or with
//! `--ignored`.

mod build_support;

use std::time::Duration;

use build_support::*;
use vserver_e2e::daemon::*;
use vserver_e2e::require_root;

#[test]
#[cfg_attr(not(vserver_heavy), ignore = "heavy: set VSERVER_HEAVY=1 (or pass --ignored)")]
fn debootstrap_minbase_vserver_runs_apt_get() {
    require_root!();
    with_daemon("b-deb", async |d| {
        let out = run(
            std::process::Command::new(bin("vserverctl"))
                .args(["build", "deb", "--debootstrap", "bookworm", "--variant", "minbase", "--init", "none"])
                .arg("--config-dir")
                .arg(&d.config_dir)
                .arg("--root-base")
                .arg(&d.root_base)
                .env("DBUS_SYSTEM_BUS_ADDRESS", &d.address),
            Duration::from_secs(600),
        );
        ok(&out);
        init_dropin(&d, "deb", "sleep infinity & true");
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("deb").await.unwrap_or_else(|e| panic!("start: {e}\n{}", d.daemon_log()));
        let v = ok(&ctl_plain(&d, &["exec", "deb", "--", "cat", "/etc/debian_version"]));
        assert!(v.trim().starts_with("12."), "{v}");
        let apt = ok(&ctl_plain(&d, &["exec", "deb", "--", "apt-get", "--version"]));
        assert!(apt.starts_with("apt "), "{apt}");
        m.stop_vserver("deb").await.unwrap();
        ok(&ctl(&d, &["destroy", "--force", "deb"]));
    });
}
