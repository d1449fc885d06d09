//! vserverd over a private bus: every method of both interfaces and its errors, the
//! properties and the signals. (The introspection data is checked without a bus, in
//! `vserverd/tests/dbus_p2p.rs`.)

use std::fs;
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::require_root;
use zbus::fdo::PropertiesProxy;
use zbus::proxy::CacheProperties;

const T: Duration = Duration::from_secs(10);
const NO_SUCH: &str = "org.vserverd.VServer1.NoSuchVServer";
const NOT_RUNNING: &str = "org.vserverd.VServer1.NotRunning";
const ALREADY: &str = "org.vserverd.VServer1.AlreadyRunning";
const INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";

#[test]
fn manager_methods_and_their_errors() {
    require_root!();
    with_daemon("d-manager", async |d| {
        d.ctl_root("a");
        d.config("a", &format!("context = 401\nonboot = true\n{CTL_INIT}"));
        d.config("bad", "context = 402\ncolour = \"red\"\n");
        // No root: the start fails in the engine.
        d.config("noroot", &format!("context = 403\n{CTL_INIT}"));
        d.start().await;
        let m = d.manager().await;

        // ListVServers and GetVServer.
        let list = m.list_vservers().await.unwrap();
        let names: Vec<&str> = list.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "bad", "noroot"]);
        let a = &list[0];
        assert_eq!((a.state.as_str(), a.context, a.leader, a.started_at), ("stopped", 401, 0, 0));
        assert_eq!(a.path.as_str(), vserver_path("a"));
        assert_eq!(list[1].state, "stopped", "an invalid vserver is listed");
        assert_eq!(m.get_vserver("a").await.unwrap().as_str(), "/org/vserverd/VServer1/vserver/a");
        assert_eq!(outcome(&m.get_vserver("nope").await), NO_SUCH);

        // Errors before anything runs.
        assert_eq!(outcome(&m.start_vserver("nope").await), NO_SUCH);
        assert_eq!(outcome(&m.stop_vserver("nope").await), NO_SUCH);
        assert_eq!(outcome(&m.restart_vserver("nope").await), NO_SUCH);
        assert_eq!(outcome(&m.kill_vserver("nope", "leader", 15).await), NO_SUCH);
        assert_eq!(outcome(&m.start_vserver("bad").await), "org.vserverd.VServer1.ConfigInvalid");
        assert_eq!(outcome(&m.stop_vserver("a").await), NOT_RUNNING);
        assert_eq!(outcome(&m.kill_vserver("a", "leader", 15).await), NOT_RUNNING);
        let r = m.start_vserver("noroot").await;
        assert_eq!(outcome(&r), "org.vserverd.VServer1.StartFailed");
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains(&d.root_base.join("noroot").display().to_string()), "the message names the path: {msg}");
        assert_eq!(d.state_of("noroot").await, "failed");
        assert!(!d.run_dir.join("noroot").exists());

        // Start, restart, kill.
        m.start_vserver("a").await.unwrap();
        let first = d.state("a").unwrap();
        assert_eq!(outcome(&m.start_vserver("a").await), ALREADY);
        assert_eq!(outcome(&m.kill_vserver("a", "bogus", 15).await), INVALID_ARGS);
        assert_eq!(outcome(&m.kill_vserver("a", "leader", 999).await), INVALID_ARGS);
        m.restart_vserver("a").await.unwrap();
        let second = d.state("a").unwrap();
        assert_ne!(second.pid, first.pid);
        assert_eq!(d.summary("a").await.leader, second.pid as u32);
        // SIGTERM to pid 1: ctl-init exits 0 on it.
        m.kill_vserver("a", "leader", libc::SIGTERM).await.unwrap();
        d.wait_state("a", "stopped", T).await;
        assert_eq!(d.vserver("a").await.last_exit().await.unwrap(), "exited 0");
        assert_eq!(outcome(&m.restart_vserver("a").await), "ok", "restart of a stopped vserver starts it");
        let third = d.state("a").unwrap();
        m.kill_vserver("a", "all", libc::SIGKILL).await.unwrap();
        eventually("every process killed", T, || async { d.processes_of("a").is_empty().then_some(()) }).await;
        eventually("a is down", T, || async { (d.state_of("a").await != "running").then_some(()) }).await;
        assert_eq!(d.vserver("a").await.last_exit().await.unwrap(), "killed by SIGKILL");
        assert_ne!(third.pid, 0);

        // CheckConfig.
        let (ok, diags) = m.check_config("").await.unwrap();
        assert!(!ok);
        assert_eq!(diags.len(), 1, "{diags:?}");
        let bad = d.config_dir.join("bad.toml").display().to_string();
        assert!(diags[0].starts_with(&format!("{bad}:2:1: error: unknown field `colour`")), "{diags:?}");
        assert_eq!(m.check_config("a").await.unwrap(), (true, vec![]));
        let (ok, diags) = m.check_config("nope").await.unwrap();
        assert!(!ok);
        assert_eq!(diags, vec![format!("{}:1:1: error: no such vserver: nope", d.config_dir.join("nope.toml").display())]);

        // Reload: a new file appears, a removed one goes, each with its signal.
        let mut new = m.receive_vserver_new().await.unwrap();
        let mut removed = m.receive_vserver_removed().await.unwrap();
        d.ctl_root("fresh");
        d.config("fresh", &format!("context = 404\n{CTL_INIT}"));
        fs::remove_file(d.config_dir.join("noroot.toml")).unwrap();
        let diags = m.reload().await.unwrap();
        assert_eq!(diags.len(), 1, "bad.toml still has its error: {diags:?}");
        let sig = next_within(&mut new, T).await.expect("VServerNew");
        let args = sig.args().unwrap();
        assert_eq!((args.name, args.path.as_str()), ("fresh", vserver_path("fresh").as_str()));
        let sig = next_within(&mut removed, T).await.expect("VServerRemoved");
        assert_eq!(sig.args().unwrap().name, "noroot");
        drop((new, removed));
        let names: Vec<String> = m.list_vservers().await.unwrap().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["a", "bad", "fresh"]);
        assert_eq!(outcome(&m.get_vserver("noroot").await), NO_SUCH);

        // StartOnboot and StopAll (their order: daemon_boot.rs).
        let reports = m.start_onboot().await.unwrap();
        assert_eq!(reports, vec![BootReport { name: "a".into(), ok: true, message: "started".into() }]);
        m.start_vserver("fresh").await.unwrap();
        d.state("a");
        d.state("fresh");
        let mut reports = m.stop_all().await.unwrap();
        reports.sort_by(|x, y| x.name.cmp(&y.name));
        assert_eq!(
            reports,
            vec![
                BootReport { name: "a".into(), ok: true, message: "stopped".into() },
                BootReport { name: "fresh".into(), ok: true, message: "stopped".into() },
            ]
        );
        assert!(d.vserver_processes().is_empty());
        assert_eq!(m.stop_all().await.unwrap(), vec![], "nothing left to stop");
    });
}

#[test]
fn vserver_object_methods_properties_and_signals() {
    require_root!();
    with_daemon("d-object", async |d| {
        let root = d.ctl_root("web-1.x");
        d.config(
            "web-1.x",
            "context = 405\nonboot = true\nflags = [\"fakeinit\", \"lock\"]\n[init]\ncommand = [\"/bin/ctl-init\"]\nstop_timeout = 2\n[network]\naddresses = [\"192.0.2.10/24\"]\n",
        );
        d.start().await;
        let v = d.vserver("web-1.x").await;
        assert_eq!(v.inner().path().as_str(), "/org/vserverd/VServer1/vserver/web_2d1_2ex");

        assert_eq!(v.name().await.unwrap(), "web-1.x");
        assert_eq!(v.state().await.unwrap(), "stopped");
        assert_eq!(v.context().await.unwrap(), 405);
        assert_eq!(v.leader().await.unwrap(), 0);
        assert_eq!(v.addresses().await.unwrap(), vec!["192.0.2.10/24".to_string()]);
        assert!(v.onboot().await.unwrap());
        assert_eq!(v.root_directory().await.unwrap(), root.display().to_string());
        assert_eq!(v.config_file().await.unwrap(), d.config_dir.join("web-1.x.toml").display().to_string());
        assert_eq!(v.started_at().await.unwrap(), 0);
        assert_eq!(v.restarts().await.unwrap(), 0);
        assert_eq!(v.last_exit().await.unwrap(), "");
        assert_eq!(v.log_file().await.unwrap(), d.log_dir.join("web-1.x.log").display().to_string());
        assert_eq!(v.flags().await.unwrap(), vec!["lock".to_string(), "fakeinit".to_string()]);

        assert_eq!(outcome(&v.stop().await), NOT_RUNNING);
        assert_eq!(outcome(&v.kill("leader", 1).await), NOT_RUNNING);

        // PropertiesChanged follows the state: one signal per change, with every property that
        // changed together (State with Leader and StartedAt), none that stayed the same.
        let props = PropertiesProxy::builder(&d.conn().await)
            .destination(BUS_NAME)
            .path(vserver_path("web-1.x"))
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .unwrap();
        let mut changes = props.receive_properties_changed().await.unwrap();
        v.start().await.unwrap();
        let st = d.state("web-1.x").unwrap();
        let mut seen_running = false;
        while let Some(sig) = next_within(&mut changes, T).await {
            let args = sig.args().unwrap();
            assert_eq!(args.interface_name.as_str(), "org.vserverd.VServer1.VServer");
            let changed = &args.changed_properties;
            assert!(!changed.contains_key("RootDirectory") && !changed.contains_key("Flags"), "unchanged properties sent: {changed:?}");
            if let Some(s) = changed.get("State") {
                if String::try_from(s.try_clone().unwrap()).unwrap() == "running" {
                    let leader = changed.get("Leader").map(|l| u32::try_from(l.try_clone().unwrap()).unwrap());
                    assert_eq!(leader, Some(st.pid as u32), "Leader in the same signal as State = running: {changed:?}");
                    assert!(changed.contains_key("StartedAt"), "StartedAt in the same signal as State = running: {changed:?}");
                    seen_running = true;
                    break;
                }
            }
        }
        assert!(seen_running, "PropertiesChanged with State = running");
        // An unread signal stream fills up and stalls the connection: let it go.
        drop(changes);

        assert_eq!(v.state().await.unwrap(), "running");
        assert_eq!(v.leader().await.unwrap(), st.pid as u32);
        assert_eq!(v.started_at().await.unwrap(), st.started_at);
        assert_eq!(outcome(&v.start().await), ALREADY);
        assert_eq!(outcome(&v.kill("everyone", 15).await), INVALID_ARGS);
        assert_eq!(outcome(&v.kill("leader", 0x7fff).await), INVALID_ARGS);
        v.restart().await.unwrap();
        assert_eq!(v.restarts().await.unwrap(), 1);
        assert_ne!(v.leader().await.unwrap(), st.pid as u32);
        d.state("web-1.x");
        v.kill("leader", libc::SIGTERM).await.unwrap();
        d.wait_state("web-1.x", "stopped", T).await;
        assert_eq!(v.last_exit().await.unwrap(), "exited 0");
        assert_eq!(v.leader().await.unwrap(), 0);
        v.start().await.unwrap();
        d.state("web-1.x");
        v.stop().await.unwrap();
        assert_eq!(v.state().await.unwrap(), "stopped");
        assert!(d.vserver_processes().is_empty());

        // The object goes with its file.
        fs::remove_file(d.config_dir.join("web-1.x.toml")).unwrap();
        d.manager().await.reload().await.unwrap();
        let gone = v.state().await;
        assert!(gone.is_err(), "the object was removed: {gone:?}");
    });
}
