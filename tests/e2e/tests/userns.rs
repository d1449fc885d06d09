//! Vservers in user namespaces (`[user] map`), through the daemon: root inside is a range of
//! host ids of the vserver's own (two vservers get disjoint ones, given back at stop), files
//! keep their on-disk owners through the idmapped root, a setuid-root file planted inside gives
//! a host user nothing, capabilities count inside only, `exec` joins the namespace, `reboot`
//! inside and a daemon restart keep working; two unified vservers share a template that stays
//! untouched, and a unified vserver switched between the modes keeps its opaque directories.
//! The positive controls are the same actions in a privileged vserver or on the host.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::pty::{run, vserverctl};
use vserver_e2e::{require_root, IdMap, Report};
use vserver_engine::userns::SLICE;

const T: Duration = Duration::from_secs(20);

/// A pool of ranges of this test directory's own (the claims are per run directory, but two
/// tests running at once had better not share host ids either).
fn pool(d: &TestDaemon<'_>) -> IdMap {
    d.t.id_pool()
}

/// The first line of `/proc/PID/{uid,gid}_map`: (inside, host, count).
fn map_of(pid: i32, file: &str) -> (u32, u32, u32) {
    let text = fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap();
    let f: Vec<u32> = text.split_whitespace().take(3).map(|x| x.parse().unwrap()).collect();
    (f[0], f[1], f[2])
}

/// The real, effective, saved and file-system uids in `/proc/PID/status`.
fn uids_of(pid: i32) -> Vec<u32> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap().split_whitespace().map(|x| x.parse().unwrap()).collect()
}

/// Runs `argv` as host user 65534 (no supplementary groups) and gives its output and status.
fn as_nobody(argv: &[&str]) -> (i32, String) {
    use std::os::unix::process::CommandExt;
    match std::process::Command::new(argv[0]).args(&argv[1..]).uid(65534).gid(65534).output() {
        Ok(out) => (out.status.code().unwrap_or(-1), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))),
        // The exec itself refused (its errno comes back from the child).
        Err(e) => (-1, e.to_string()),
    }
}

fn exec(d: &TestDaemon<'_>, name: &str, argv: &[&str]) -> vserver_e2e::pty::Output {
    let mut all = vec!["exec", name, "--"];
    all.extend_from_slice(argv);
    run(vserverctl(&d.address, &all), T)
}

#[test]
fn root_inside_is_a_range_of_host_ids_of_its_own() {
    require_root!();
    with_daemon("userns", async |d| {
        let pool = pool(d);
        d.args = vec!["--userns-pool".into(), format!("{}:{}", pool.uid, pool.count)];
        let init = "flags = [\"fakeinit\"]\n[init]\ncommand = [\"/bin/ctl-init\"]\nstop_timeout = 2\n[capabilities]\nadd = [\"SYS_NICE\"]\n";
        let (a, b, p) = (d.ctl_root("a"), d.ctl_root("b"), d.ctl_root("p"));
        for root in [&a, &b, &p] {
            fs::write(root.join("etc/passwd"), "root:x:0:0::/:/bin/sh\nuser:x:1000:1000::/:/bin/sh\n").unwrap();
            fs::write(root.join("etc/group"), "root:x:0:\nuser:x:1000:\n").unwrap();
        }
        d.config("a", &format!("context = 571\n{init}[user]\nmap = \"auto\"\n"));
        d.config("b", &format!("context = 572\n{init}[user]\nmap = \"auto\"\n"));
        d.config("p", &format!("context = 573\n{init}[user]\nmap = \"no\"\n"));
        d.start().await;
        let m = d.manager().await;
        for n in ["a", "b", "p"] {
            m.start_vserver(n).await.unwrap_or_else(|e| panic!("start {n}: {e}\n{}", d.daemon_log()));
        }
        let (pa, pb, pp) = (d.state("a").unwrap().pid, d.state("b").unwrap().pid, d.state("p").unwrap().pid);

        // The maps: 65536 ids each, from the pool, disjoint; the privileged vserver has the host's.
        let (ma, mb) = (map_of(pa, "uid_map"), map_of(pb, "uid_map"));
        for (m, what) in [(ma, "a"), (mb, "b")] {
            assert_eq!((m.0, m.2), (0, SLICE), "{what}'s uid map {m:?}");
            assert!(m.1 >= pool.uid && m.1 + m.2 <= pool.uid + pool.count, "{what}'s range {m:?} lies in the pool {pool:?}");
        }
        assert!(ma.1 + SLICE <= mb.1 || mb.1 + SLICE <= ma.1, "disjoint ranges: {ma:?} {mb:?}");
        assert_eq!(map_of(pa, "gid_map"), (0, ma.1, SLICE), "gids map as uids");
        assert_eq!(map_of(pp, "uid_map"), (0, 0, u32::MAX), "the privileged vserver's ids are the host's");

        // Inside: root. The host sees the range's first id, for pid 1 and for an exec'd process.
        assert_eq!(uids_of(pa), vec![ma.1; 4], "pid 1 of a, from the host");
        assert_eq!(uids_of(pp), vec![0; 4], "pid 1 of the privileged p, from the host");
        // status says which host ids are a's, and none for p.
        let o = run(vserverctl(&d.address, &["status", "a"]), T);
        let want = format!("UserIds:       uids {}-{}, gids {}-{}", ma.1, ma.1 + SLICE - 1, ma.1, ma.1 + SLICE - 1);
        assert!(o.stdout.lines().any(|l| l == want), "{want}\n{o:?}");
        let o = run(vserverctl(&d.address, &["status", "p"]), T);
        assert!(o.stdout.lines().any(|l| l == "UserIds:       -"), "{o:?}");
        let o = exec(d, "a", &["/probe", "report"]);
        assert_eq!(o.code, Some(0), "{o:?}");
        let r = Report::parse(&o.stdout);
        assert_eq!((r.get("uid"), r.get("gid")), ("0", "0"), "id inside");
        assert_eq!(r.hex("CapBnd"), vserver_engine::CapSet::secure_default().0 | (1 << 23), "the bounding set as configured (SYS_NICE added)");
        let o = exec(d, "a", &["sh", "-c", "id -u; id -g; grep ^Uid: /proc/self/status"]);
        assert!(o.stdout.starts_with("0\n0\nUid:\t0\t0\t0\t0"), "{o:?}");

        // Files made inside are owned on disk as the idmap says: root's by 0, user's by 1000,
        // exactly as in a privileged vserver; nothing is owned by the range's host ids.
        let o = exec(d, "a", &["sh", "-c", "touch /by-root && su user -c 'touch /tmp/by-user' && ls -ln /by-root /tmp/by-user"]);
        assert_eq!(o.code, Some(0), "{o:?}");
        assert_eq!(fs::metadata(a.join("by-root")).unwrap().uid(), 0);
        assert_eq!((fs::metadata(a.join("tmp/by-user")).unwrap().uid(), fs::metadata(a.join("tmp/by-user")).unwrap().gid()), (1000, 1000));
        // And a file the host owns by an id outside the map is nobody's inside.
        fs::write(a.join("hosts-own"), "x").unwrap();
        std::os::unix::fs::chown(a.join("hosts-own"), Some(70000), Some(70000)).unwrap();
        let o = exec(d, "a", &["ls", "-ln", "/hosts-own"]);
        let ids: Vec<&str> = o.stdout.split_whitespace().skip(2).take(2).collect();
        assert_eq!(ids, ["65534", "65534"], "an id past the map's 65536 is the overflow id inside: {o:?}");

        // A setuid-root program planted inside: root's on disk, but no host user reaches it (the
        // roots' base is 0700 and the host's root owns it). The positive control: the same
        // program at a place the host user reaches runs as root for it.
        let o = exec(d, "a", &["sh", "-c", "cp /probe /suid && chmod 4755 /suid"]);
        assert_eq!(o.code, Some(0), "{o:?}");
        let planted = a.join("suid");
        let md = fs::metadata(&planted).unwrap();
        assert_eq!((md.uid(), md.mode() & 0o7777), (0, 0o4755));
        let (code, out) = as_nobody(&[planted.to_str().unwrap(), "report"]);
        assert_eq!((code, out.as_str()), (-1, "Permission denied (os error 13)"), "a host user cannot run it");
        let open = d.t.path.parent().unwrap().join(format!("{}-suid", d.t.tag));
        fs::copy(&planted, &open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o4755)).unwrap();
        let (code, out) = as_nobody(&[open.to_str().unwrap(), "report"]);
        fs::remove_file(&open).unwrap();
        assert_eq!((code, Report::parse(&out).get("Uid")), (0, "65534\t0\t0\t0"), "positive control: where a host user reaches it, it runs as root");
        // Inside, it gives root of the namespace (the range's first id for the host).
        let o = exec(d, "a", &["sh", "-c", "su user -c '/suid report'"]);
        assert!(o.stdout.contains("\nUid=1000\t0\t0\t0\n"), "{o:?}");

        // Capabilities count over the vserver's namespaces only: SYS_NICE (added for both)
        // lowers a niceness in the privileged vserver, not in the user namespace.
        assert_eq!(exec(d, "p", &["/probe", "try", "setpriority", "-5"]).stdout.trim(), "ok", "positive control");
        assert_eq!(exec(d, "a", &["/probe", "try", "setpriority", "-5"]).stdout.trim(), "err EACCES 13");

        // The claims, given back at stop; a restart of the daemon (kill -9) keeps a's.
        let claims = d.run_dir.join("userns");
        assert!(claims.join("a").exists() && claims.join("b").exists() && !claims.join("p").exists());
        d.sigkill();
        d.start().await;
        assert_eq!(map_of(d.state("a").unwrap().pid, "uid_map"), ma, "a runs on, adopted");
        assert_eq!(exec(d, "a", &["id", "-u"]).stdout.trim(), "0", "exec after the daemon's restart");
        // reboot inside: a new pid 1, in a user namespace again.
        let v = d.vserver("a").await;
        d.ctl("a", "reboot");
        eventually("a rebooted", T, || async { (v.restarts().await.unwrap() == 1).then_some(()) }).await;
        let pa2 = eventually("a's new pid 1", T, || async { d.state("a").filter(|s| s.pid != pa && s.exit.is_none()).map(|s| s.pid) }).await;
        assert_eq!(map_of(pa2, "uid_map").2, SLICE, "after reboot, still in a user namespace");
        let m = d.manager().await;
        m.stop_vserver("b").await.unwrap();
        assert!(!claims.join("b").exists(), "b's range is given back");
        m.stop_vserver("a").await.unwrap();
        assert!(!claims.join("a").exists(), "a's range is given back");
    });
}

/// The ids of every file below `dir` (itself included), with their paths and modes.
fn picture(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = fs::symlink_metadata(&p).unwrap();
        let content = if md.is_file() { fs::read(&p).unwrap().len().to_string() } else { String::new() };
        out.push(format!("{} {} {} {:o} {content}", p.strip_prefix(dir).unwrap().display(), md.uid(), md.gid(), md.mode()));
        if md.is_dir() {
            stack.extend(fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        }
    }
    out.sort();
    out
}

#[test]
fn unified_vservers_in_user_namespaces_share_an_untouched_template() {
    require_root!();
    with_daemon("userns-uni", async |d| {
        let pool = pool(d);
        d.args = vec!["--userns-pool".into(), format!("{}:{}", pool.uid, pool.count)];
        // The template: a busybox root, with a file to delete and one to change.
        let template = d.root("tpl-src");
        fs::write(template.join("etc/deleteme"), "d").unwrap();
        fs::write(template.join("hello"), "hello\n").unwrap();
        let templates = d.root_base.join(".templates");
        fs::create_dir_all(&templates).unwrap();
        fs::rename(&template, templates.join("base")).unwrap();
        let template = templates.join("base");
        let before = picture(&template);
        for n in ["u1", "u2"] {
            for sub in ["upper", "work", "root"] {
                fs::create_dir_all(d.root_base.join(n).join(sub)).unwrap();
            }
        }
        // u1 rc style (vserver-init as pid 1), u2 its own init.
        d.config("u1", "template = \"base\"\n[init]\ncommand = [\"/bin/true\"]\nstop_timeout = 2\n[user]\nmap = \"auto\"\n");
        d.config("u2", "template = \"base\"\nflags = [\"fakeinit\"]\n[init]\ncommand = [\"/bin/sleep\", \"1000\"]\nstop_timeout = 2\n[user]\nmap = \"auto\"\n");
        d.start().await;
        let m = d.manager().await;
        for n in ["u1", "u2"] {
            m.start_vserver(n).await.unwrap_or_else(|e| panic!("start {n}: {e}\n{}", d.daemon_log()));
        }
        let o = exec(d, "u1", &["sh", "-c", "echo changed > /hello && rm /etc/deleteme && touch /new && id -u"]);
        assert_eq!((o.code, o.stdout.as_str()), (Some(0), "0\n"), "{o:?}");
        // u2 sees the template as it is.
        let o = exec(d, "u2", &["sh", "-c", "cat /hello; ls /etc/deleteme; ls /new 2>&1 | grep -c 'No such'"]);
        assert_eq!(o.stdout, "hello\n/etc/deleteme\n1\n", "{o:?}");
        // u1's changes are in its own directory, owned on disk by 0 (the idmap), the delete a
        // whiteout; overlayfs keeps its marks in user.* attributes (userxattr).
        let up = d.root_base.join("u1/upper");
        assert_eq!(fs::read_to_string(up.join("hello")).unwrap(), "changed\n");
        assert_eq!((fs::metadata(up.join("new")).unwrap().uid(), fs::metadata(up.join("hello")).unwrap().uid()), (0, 0));
        let wh = fs::symlink_metadata(up.join("etc/deleteme")).unwrap();
        assert!(std::os::unix::fs::FileTypeExt::is_char_device(&wh.file_type()) && wh.rdev() == 0, "a whiteout records the delete");
        // The template is untouched: contents, owners, modes.
        assert_eq!(picture(&template), before);
        // The two ranges differ, and the template is read-only inside even for root.
        let (p1, p2) = (d.state("u1").unwrap().pid, d.state("u2").unwrap().pid);
        assert_ne!(map_of(p1, "uid_map").1, map_of(p2, "uid_map").1);
        for n in ["u1", "u2"] {
            m.stop_vserver(n).await.unwrap();
        }
        assert_eq!(picture(&template), before);
    });
}

/// A path and an attribute name as the xattr calls take them.
fn c_strings(path: &Path, name: &str) -> (std::ffi::CString, std::ffi::CString) {
    use std::os::unix::ffi::OsStrExt;
    (std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap(), std::ffi::CString::new(name).unwrap())
}

/// An extended attribute of `path` (not following a link), if it has it.
fn xattr(path: &Path, name: &str) -> Option<String> {
    let (p, n) = c_strings(path, name);
    let mut buf = [0u8; 64];
    let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| String::from_utf8_lossy(&buf[..len as usize]).into_owned())
}

fn set_xattr(path: &Path, name: &str, value: Option<&str>) {
    let (p, n) = c_strings(path, name);
    let r = match value {
        Some(v) => unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), v.as_ptr().cast(), v.len(), 0) },
        None => unsafe { libc::lremovexattr(p.as_ptr(), n.as_ptr()) },
    };
    assert_eq!(r, 0, "{name} on {}: {}", path.display(), std::io::Error::last_os_error());
}

#[test]
fn a_unified_vserver_switched_between_modes_keeps_what_it_deleted() {
    require_root!();
    with_daemon("userns-switch", async |d| {
        let pool = pool(d);
        d.args = vec!["--userns-pool".into(), format!("{}:{}", pool.uid, pool.count)];
        let template = d.root("sw-src");
        fs::create_dir_all(template.join("opt/tree")).unwrap();
        for f in ["a", "b"] {
            fs::write(template.join("opt/tree").join(f), f).unwrap();
        }
        let templates = d.root_base.join(".templates");
        fs::create_dir_all(&templates).unwrap();
        fs::rename(&template, templates.join("base")).unwrap();
        for sub in ["upper", "work", "root"] {
            fs::create_dir_all(d.root_base.join("sw").join(sub)).unwrap();
        }
        let config = |map: &str| format!("template = \"base\"\nflags = [\"fakeinit\"]\n[init]\ncommand = [\"/bin/sleep\", \"1000\"]\nstop_timeout = 2\n[user]\nmap = \"{map}\"\n");
        let (upper, record) = (d.root_base.join("sw/upper"), d.root_base.join("sw/overlay-marks"));
        let tree = upper.join("opt/tree");
        d.config("sw", &config("no"));
        d.start().await;
        let m = d.manager().await;
        // The mode of the next start (the daemon reads the file at a reload).
        let set_mode = async |map: &str| {
            d.config("sw", &config(map));
            m.reload().await.unwrap();
        };
        // What a start of sw shows in /opt/tree.
        let ls_tree = async || {
            m.start_vserver("sw").await.unwrap_or_else(|e| panic!("{e}\n{}", d.daemon_log()));
            let o = exec(d, "sw", &["ls", "/opt/tree"]);
            m.stop_vserver("sw").await.unwrap();
            o
        };

        // Privileged: the directory removed and made again is opaque in trusted.* attributes.
        m.start_vserver("sw").await.unwrap_or_else(|e| panic!("{e}\n{}", d.daemon_log()));
        let o = exec(d, "sw", &["sh", "-c", "rm -r /opt/tree && mkdir /opt/tree && touch /opt/tree/mine && ls /opt/tree"]);
        assert_eq!((o.code, o.stdout.as_str()), (Some(0), "mine\n"), "{o:?}");
        m.stop_vserver("sw").await.unwrap();
        assert_eq!(xattr(&tree, "trusted.overlay.opaque").as_deref(), Some("y"));
        assert_eq!(fs::read_to_string(&record).unwrap(), "trusted\n");

        // In a user namespace: the mark moved to user.*, and the template's files stay hidden.
        set_mode("auto").await;
        let o = ls_tree().await;
        assert_eq!(o.stdout, "mine\n", "{o:?}");
        assert_eq!((xattr(&tree, "user.overlay.opaque").as_deref(), xattr(&tree, "trusted.overlay.opaque")), (Some("y"), None));
        assert_eq!(fs::read_to_string(&record).unwrap(), "user\n");

        // And back.
        set_mode("no").await;
        let o = ls_tree().await;
        assert_eq!(o.stdout, "mine\n", "{o:?}");
        assert_eq!((xattr(&tree, "trusted.overlay.opaque").as_deref(), xattr(&tree, "user.overlay.opaque")), (Some("y"), None));

        // The positive control: a mark left in the other namespace (the record saying it was
        // moved) is lost, and the template's files come back: what the move prevents.
        set_xattr(&tree, "user.overlay.opaque", Some("y"));
        set_xattr(&tree, "trusted.overlay.opaque", None);
        fs::write(&record, "trusted\n").unwrap();
        let o = ls_tree().await;
        assert_eq!(o.stdout, "a\nb\nmine\n", "{o:?}");

        // A redirect (made when the host turns overlayfs's redirect_dir on) cannot be read in a
        // user namespace: refused, naming the directory, and no record is left to trust.
        set_xattr(&upper.join("opt"), "trusted.overlay.redirect", Some("/elsewhere"));
        set_mode("auto").await;
        let e = m.start_vserver("sw").await.unwrap_err().to_string();
        assert!(e.contains("overlay-marks") && e.contains("sw/upper/opt") && e.contains("redirect_dir"), "{e}");
        assert!(!record.exists());
        set_xattr(&upper.join("opt"), "trusted.overlay.redirect", None);
        // (The control above left the mark in user.*: right for this start.)
        assert_eq!(ls_tree().await.stdout, "mine\n");
        assert_eq!(fs::read_to_string(&record).unwrap(), "user\n");
    });
}

#[test]
fn auto_without_a_pool_is_a_clear_start_error() {
    require_root!();
    if vserver_e2e::userns_mode() {
        eprintln!("the suite's user-namespace run gives every daemon a pool: not tried");
        return;
    }
    with_daemon("userns-nopool", async |d| {
        d.root("np");
        d.config("np", "[init]\ncommand = [\"/bin/sleep\", \"1000\"]\n[user]\nmap = \"auto\"\n");
        d.start().await;
        if fs::read_to_string("/etc/subuid").is_ok_and(|t| t.lines().any(|l| l.starts_with("vserver:"))) {
            eprintln!("note: this host gives user vserver subordinate ids; the error cannot be seen");
            return;
        }
        let r = d.manager().await.start_vserver("np").await;
        let e = r.unwrap_err().to_string();
        assert!(e.contains("needs a pool of host ids") && e.contains("/etc/subuid") && e.contains("--userns-pool"), "{e}");
        assert!(d.state("np").is_none(), "nothing ran");
        assert!(!d.run_dir.join("userns/np").exists());
    });
}
