//! The D-Bus contract without a bus and without root: the daemon's interfaces served on one
//! end of a socket pair (a peer-to-peer connection), the proxies of `vserver-api` on the other.
//! The read-only methods, properties and errors answer as they do on the system bus; every
//! mutating method is refused (a peer-to-peer call has no sender the bus could vouch for); and
//! the introspection data is the checked-in `vserverd/api/org.vserverd.VServer1.xml`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use vserver_api::proxy::{ManagerProxy, VServerProxy};
use vserver_api::{vserver_path, VServerError, MANAGER_PATH};
use vserver_config::paths::Paths;
use vserverd::daemon::dbus::{manager::ManagerIface, objects};
use vserverd::daemon::state::Daemon;
use zbus::fdo::IntrospectableProxy;
use zbus::Connection;

/// A scratch directory with the daemon's paths below it, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!("vserverd-p2p-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
        let _ = fs::remove_dir_all(&p);
        for d in ["etc", "run", "log", "roots"] {
            fs::create_dir_all(p.join(d)).unwrap();
        }
        Scratch(p)
    }

    fn paths(&self) -> Paths {
        Paths { config_dir: self.0.join("etc"), run_dir: self.0.join("run"), log_dir: self.0.join("log"), root_base: self.0.join("roots"), template_dir: None }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The daemon's objects for the configurations `files` on one end of a socket pair; the client
/// connection on the other.
async fn serve(s: &Scratch, files: &[(&str, &str)]) -> (Connection, Connection) {
    for (name, toml) in files {
        fs::write(s.0.join("etc").join(format!("{name}.toml")), toml).unwrap();
    }
    let daemon = Daemon::new(s.paths());
    let loaded = daemon.load_config();
    daemon.apply(&loaded);
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    let guid = zbus::Guid::generate();
    let server = zbus::connection::Builder::unix_stream(a).server(guid).p2p().serve_at(MANAGER_PATH, ManagerIface { daemon: daemon.clone() }).build();
    let client = zbus::connection::Builder::unix_stream(b).p2p().build();
    let (server, client) = tokio::join!(server, client);
    let (server, client) = (server.unwrap(), client.unwrap());
    for sup in daemon.all() {
        objects::publish(&server, sup).await.unwrap();
    }
    (server, client)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

#[test]
fn read_only_methods_properties_and_errors() {
    let s = Scratch::new();
    block_on(async {
        let (_server, conn) = serve(&s, &[("a", "context = 401\nonboot = true\n"), ("bad", "context = 402\ncolour = \"red\"\n")]).await;
        let m = ManagerProxy::new(&conn).await.unwrap();
        let list = m.list_vservers().await.unwrap();
        let names: Vec<&str> = list.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["a", "bad"]);
        assert_eq!((list[0].state.as_str(), list[0].context, list[0].leader), ("stopped", 401, 0));
        assert_eq!(m.get_vserver("a").await.unwrap().as_str(), vserver_path("a"));
        match m.get_vserver("nosuch").await {
            Err(VServerError::NoSuchVServer(msg)) => assert!(msg.contains("nosuch"), "{msg}"),
            other => panic!("{other:?}"),
        }
        let (ok, diags) = m.check_config("bad").await.unwrap();
        assert!(!ok && diags.iter().any(|d| d.contains("bad.toml") && d.contains("colour")), "{diags:?}");
        assert!(m.check_config("a").await.unwrap().0);

        let v = VServerProxy::builder(&conn).path(vserver_path("a")).build().await.unwrap();
        assert_eq!(v.name().await.unwrap(), "a");
        assert_eq!(v.state().await.unwrap(), "stopped");
        assert_eq!(v.context().await.unwrap(), 401);
        assert_eq!(v.leader().await.unwrap(), 0);
    });
}

#[test]
fn every_mutating_method_is_refused_without_a_bus_to_vouch_for_the_caller() {
    let s = Scratch::new();
    block_on(async {
        let (_server, conn) = serve(&s, &[("a", "context = 401\n")]).await;
        let m = ManagerProxy::new(&conn).await.unwrap();
        let v = VServerProxy::builder(&conn).path(vserver_path("a")).build().await.unwrap();
        let refused = |r: Result<(), VServerError>, what: &str| match r {
            Err(VServerError::AccessDenied(msg)) => assert!(msg.contains("no sender"), "{what}: {msg}"),
            other => panic!("{what}: {other:?}"),
        };
        refused(m.start_vserver("a").await, "StartVServer");
        refused(m.stop_vserver("a").await, "StopVServer");
        refused(v.start().await, "Start");
        refused(v.stop().await, "Stop");
        refused(v.restart().await, "Restart");
        refused(v.kill("all", 15).await, "Kill");
        match m.reload().await {
            Err(VServerError::AccessDenied(_)) => {}
            other => panic!("Reload: {other:?}"),
        }
        assert_eq!(v.state().await.unwrap(), "stopped", "nothing was done");
    });
}

#[test]
fn introspection_matches_the_checked_in_xml() {
    let s = Scratch::new();
    block_on(async {
        let (_server, conn) = serve(&s, &[("x", "context = 406\n")]).await;
        let mut running = Vec::new();
        for path in [MANAGER_PATH.to_string(), vserver_path("x")] {
            let p = IntrospectableProxy::builder(&conn).destination(vserver_api::BUS_NAME).path(path).build().await.unwrap();
            running.extend(vserver_interfaces(&p.introspect().await.unwrap()));
        }
        assert!(running.iter().any(|l| l.contains("org.vserverd.VServer1.Manager")));
        assert!(running.iter().any(|l| l.contains("org.vserverd.VServer1.VServer")));

        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("api/org.vserverd.VServer1.xml");
        if std::env::var_os("VSERVERD_BLESS").is_some() {
            fs::write(&file, format!("{XML_HEAD}\n{}\n</node>\n", running.join("\n"))).unwrap();
        }
        let checked_in = vserver_interfaces(&fs::read_to_string(&file).unwrap_or_default());
        if checked_in != running {
            let a = s.0.join("checked-in.xml");
            let b = s.0.join("running.xml");
            fs::write(&a, checked_in.join("\n") + "\n").unwrap();
            fs::write(&b, running.join("\n") + "\n").unwrap();
            let diff = std::process::Command::new("diff").arg("-u").arg(&a).arg(&b).output().unwrap();
            panic!("the daemon's D-Bus API differs from {} (VSERVERD_BLESS=1 rewrites it):\n{}", file.display(), String::from_utf8_lossy(&diff.stdout));
        }
    });
}

/// The `org.vserverd.VServer1.*` interfaces of an introspection document's own object (child
/// nodes are left out), one element per line, indented by depth.
fn vserver_interfaces(xml: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut depth = 0usize;
    let mut child = 0usize;
    for raw in xml.lines() {
        let l = raw.trim();
        if l.starts_with("<node name=") && !l.ends_with("/>") {
            child += 1;
            continue;
        }
        if child > 0 {
            if l == "</node>" {
                child -= 1;
            }
            continue;
        }
        if l.starts_with("<interface ") {
            inside = l.starts_with("<interface name=\"org.vserverd.VServer1.");
            depth = 1;
        }
        if !inside || l.is_empty() || l.starts_with("<!--") {
            continue;
        }
        if l.starts_with("</") {
            depth -= 1;
        }
        out.push(format!("{}{l}", "  ".repeat(depth)));
        if l.starts_with('<') && !l.starts_with("</") && !l.ends_with("/>") && !l.contains("</") {
            depth += 1;
        }
        if l == "</interface>" {
            inside = false;
        }
    }
    out
}

const XML_HEAD: &str = r#"<!DOCTYPE node PUBLIC "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd">
<!-- The D-Bus API of vserverd: the manager at /org/vserverd/VServer1 and one object per vserver
     at /org/vserverd/VServer1/vserver/<escaped name>. Generated from the running daemon and
     checked by vserverd/tests/dbus_p2p.rs (VSERVERD_BLESS=1 rewrites it). -->
<node>"#;

