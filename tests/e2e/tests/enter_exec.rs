//! `vserverctl exec` on pipes: stdin, stdout and stderr kept apart, exit codes and signals,
//! a large stream through `cat`, `--user` from the vserver's own /etc/passwd, and the refusals:
//! a private vserver, a vserver that is not running, a caller that is not root.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::pty::{run, run_with_input, vserverctl};
use vserver_e2e::{require_root, Report, TestDir};

const T: Duration = Duration::from_secs(20);

#[test]
fn exec_on_pipes_keeps_streams_apart_and_passes_exit_codes() {
    require_root!();
    with_daemon("exec-pipes", async |d| {
        d.ctl_root("x1");
        d.config("x1", &format!("context = 511\n{CTL_INIT}"));
        d.start().await;
        d.manager().await.start_vserver("x1").await.unwrap();
        d.state("x1");
        let a = d.address.clone();

        // echo x | vserverctl exec x1 -- cat
        let o = run_with_input(vserverctl(&a, &["exec", "x1", "--", "cat"]), b"x\n", T);
        assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (Some(0), "x\n", ""));

        // Without `--`, and options of the command left alone.
        let o = run(vserverctl(&a, &["exec", "x1", "sh", "-c", "echo out; echo err >&2; exit 42"]), T);
        assert_eq!((o.code, o.stdout.as_str(), o.stderr.as_str()), (Some(42), "out\n", "err\n"));
        let o = run(vserverctl(&a, &["exec", "--user", "0", "x1", "--", "sh", "-c", "kill -KILL $$"]), T);
        assert_eq!(o.code, Some(128 + 9));
        let o = run(vserverctl(&a, &["exec", "x1", "--", "/no/such/program"]), T);
        assert_eq!(o.code, Some(127), "{o:?}");
        assert!(o.stderr.contains("cannot run /no/such/program"), "{o:?}");

        // A megabyte through cat and back, in both directions at once.
        let big: Vec<u8> = (0..(1 << 20)).map(|i| b'a' + (i % 26) as u8).collect();
        let o = run_with_input(vserverctl(&a, &["exec", "x1", "--", "cat"]), &big, T);
        assert_eq!(o.code, Some(0));
        assert_eq!(o.stdout.len(), big.len());
        assert!(o.stdout.as_bytes() == big.as_slice());

        // A command that never reads its stdin still ends, and so do we.
        let o = run_with_input(vserverctl(&a, &["exec", "x1", "--", "true"]), &big, T);
        assert_eq!(o.code, Some(0), "{o:?}");

        // What the command sees: the vserver's root, only its three pipes, a clean environment.
        let mut cmd = vserverctl(&a, &["exec", "x1", "--", "/probe", "report"]);
        cmd.env("HOST_ONLY_MARKER", "1").env("TERM", "vt100");
        let o = run(cmd, T);
        assert_eq!(o.code, Some(0), "{o:?}");
        let r = Report::parse(&o.stdout);
        let fds = r.all("fd");
        assert_eq!(fds.len(), 3, "{fds:?}");
        assert!(fds.iter().all(|f| f.contains("pipe:")), "{fds:?}");
        let mut env: Vec<&str> = r.all("env");
        env.sort();
        assert_eq!(
            env,
            vec![
                "HOME=/root",
                "LOGNAME=root",
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "SHELL=/bin/sh",
                "TERM=vt100",
                "USER=root",
                "container=vserver",
            ]
        );
        assert_eq!(r.get("ppid"), "0");
        assert_eq!(r.get("root"), "/");
    });
}

#[test]
fn exec_as_a_user_of_the_vserver() {
    require_root!();
    let t = TestDir::new("exec-user");
    let bus = TestBus::start();
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        let root = d.ctl_root("u1");
        fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\n").unwrap();
        fs::write(root.join("etc/group"), "root:x:0:\nalice:x:1000:\nstaff:x:50:alice\n").unwrap();
        fs::create_dir_all(root.join("home/alice")).unwrap();
        std::os::unix::fs::chown(root.join("home/alice"), Some(1000), Some(1000)).unwrap();
        // The host has no alice: the name must come from the vserver's file.
        d.config("u1", &format!("context = 512\n{CTL_INIT}"));
        d.start().await;
        d.manager().await.start_vserver("u1").await.unwrap();
        let st = d.state("u1").unwrap();
        let a = d.address.clone();

        let o = run(vserverctl(&a, &["exec", "--user", "alice", "u1", "--", "/probe", "report"]), T);
        assert_eq!(o.code, Some(0), "{o:?}");
        let r = Report::parse(&o.stdout);
        assert_eq!((r.get("uid"), r.get("gid")), ("1000", "1000"));
        assert_eq!(r.get("CapEff"), "0000000000000000", "a user holds no capability");
        let bnd = fs::read_to_string(format!("/proc/{}/status", st.pid)).unwrap();
        assert!(bnd.contains(&format!("CapBnd:\t{}", r.get("CapBnd"))), "the vserver's bounding set");
        assert_eq!(r.get("cwd"), "/home/alice");
        for want in ["HOME=/home/alice", "USER=alice", "LOGNAME=alice", "SHELL=/bin/sh"] {
            assert!(r.all("env").contains(&want), "{want}: {:?}", r.all("env"));
        }
        let o = run(vserverctl(&a, &["exec", "-u", "alice", "u1", "--", "id", "-G"]), T);
        assert_eq!(o.stdout.trim(), "1000 50", "{o:?}");

        // A login shell as alice (enter without a terminal: pipes).
        let o = run_with_input(vserverctl(&a, &["enter", "--user", "alice", "u1"]), b"echo $0 $(id -u) $PWD\n", T);
        assert_eq!(o.stdout.trim(), "-sh 1000 /home/alice", "{o:?}");

        // A number not in the file stands for itself.
        let o = run(vserverctl(&a, &["exec", "--user", "4242", "u1", "--", "id", "-u"]), T);
        assert_eq!(o.stdout.trim(), "4242", "{o:?}");

        // Unknown users are refused before anything runs.
        let o = run(vserverctl(&a, &["exec", "--user", "mallory", "u1", "--", "true"]), T);
        assert_eq!(o.code, Some(1));
        assert!(o.stderr.contains("no user \"mallory\" in the vserver's /etc/passwd"), "{o:?}");

        // A hostile /etc/passwd (a link to a host-looking path, a FIFO) is never followed out
        // of the root nor waited on.
        fs::write(t.path.join("host-passwd"), "mallory:x:0:0::/:/bin/sh\n").unwrap();
        fs::remove_file(root.join("etc/passwd")).unwrap();
        std::os::unix::fs::symlink(t.path.join("host-passwd"), root.join("etc/passwd")).unwrap();
        let o = run(vserverctl(&a, &["exec", "--user", "mallory", "u1", "--", "true"]), T);
        assert_eq!(o.code, Some(1), "{o:?}");
        assert!(o.stderr.contains("no user \"mallory\""), "the link resolves inside the vserver only: {o:?}");
        fs::remove_file(root.join("etc/passwd")).unwrap();
        nix::unistd::mkfifo(&root.join("etc/passwd"), nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let o = run(vserverctl(&a, &["exec", "--user", "alice", "u1", "--", "true"]), T);
        assert_eq!(o.code, Some(1), "{o:?}");
        assert!(o.stderr.contains("not a regular file"), "{o:?}");
        let _ = fs::set_permissions(root.join("etc"), fs::Permissions::from_mode(0o755));
    });
}

#[test]
fn private_stopped_and_unauthorised_are_refused() {
    require_root!();
    with_daemon("exec-refused", async |d| {
        d.ctl_root("priv");
        d.ctl_root("open");
        d.config("priv", "context = 513\nflags = [\"fakeinit\", \"private\"]\n[init]\ncommand = [\"/bin/ctl-init\"]\nstop_timeout = 2\n");
        d.config("open", &format!("context = 514\n{CTL_INIT}"));
        d.start().await;
        let a = d.address.clone();

        // Not running yet.
        let o = run(vserverctl(&a, &["exec", "open", "--", "true"]), T);
        assert_eq!(o.code, Some(1));
        assert!(o.stderr.contains("open is not running"), "{o:?}");
        let o = run(vserverctl(&a, &["exec", "nosuch", "--", "true"]), T);
        assert!(o.stderr.contains("no vserver named nosuch"), "{o:?}");

        let m = d.manager().await;
        m.start_vserver("priv").await.unwrap();
        m.start_vserver("open").await.unwrap();
        d.state("priv");
        d.state("open");
        for verb in [&["enter", "priv"][..], &["exec", "priv", "--", "true"]] {
            let o = run(vserverctl(&a, verb), T);
            assert_eq!(o.code, Some(1), "{verb:?}: {o:?}");
            assert!(o.stderr.contains("priv is private: nobody may enter it"), "{o:?}");
        }
        let r = m.enter_vserver("priv", "", &["true"], false, "xterm", 0, 0).await;
        assert_eq!(outcome(&r), "org.vserverd.VServer1.Refused");
        for p in d.processes_of("priv") {
            let comm = fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            // ctl-init's own (busybox runs an applet as /proc/self/exe at times: `exe`).
            assert!(["ctl-init\n", "sleep\n", "exe\n", ""].contains(&comm.as_str()), "nothing entered: {p} {comm}");
        }

        // Only root of the host here, with no polkit on the test bus (the daemon checks the
        // caller itself, see daemon_auth.rs and daemon_polkit.rs).
        let o = run(
            {
                let mut c = std::process::Command::new("setpriv");
                c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                    .arg(bin("vserverctl"))
                    .args(["exec", "open", "--", "true"])
                    .env("DBUS_SYSTEM_BUS_ADDRESS", &a);
                c
            },
            T,
        );
        assert_eq!(o.code, Some(1), "{o:?}");
        assert!(o.stderr.contains("permission denied"), "{o:?}");
        // And the open one lets root in.
        let o = run(vserverctl(&a, &["exec", "open", "--", "hostname"]), T);
        assert_eq!(o.code, Some(0), "{o:?}");
    });
}

#[test]
fn exec_into_an_rc_style_vserver() {
    require_root!();
    with_daemon("exec-rc", async |d| {
        d.rc_root("rc1");
        d.config("rc1", "context = 515\n[init]\nstop_timeout = 2\n");
        d.start().await;
        d.manager().await.start_vserver("rc1").await.unwrap();
        let st = d.state("rc1").unwrap();
        let o = run(vserverctl(&d.address, &["exec", "rc1", "--", "cat", "/proc/1/comm"]), T);
        assert_eq!((o.code, o.stdout.as_str()), (Some(0), "vserver-init\n"), "{o:?}");
        // pid 1 holds no more than the vserver's set, or root inside (given SYS_PTRACE back)
        // could borrow its capabilities by tracing it.
        let status = fs::read_to_string(format!("/proc/{}/status", st.pid)).unwrap();
        let field = |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).unwrap().trim().to_string();
        assert_eq!(field("CapPrm:"), field("CapBnd:"));
        assert_eq!(field("CapEff:"), field("CapBnd:"));
        // It runs from the sealed memfd, with nothing but the console open.
        let exe = fs::read_link(format!("/proc/{}/exe", st.pid)).unwrap();
        assert!(exe.display().to_string().contains("memfd:vserver-init"), "{exe:?}");
        let mut fds: Vec<String> = fs::read_dir(format!("/proc/{}/fd", st.pid)).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        fds.sort();
        assert_eq!(fds, ["0", "1", "2"]);
        // Root inside cannot write through /proc/1/exe; the same write to a file of its own works.
        let o = run(vserverctl(&d.address, &["exec", "rc1", "--", "sh", "-c", "echo x >> /proc/1/exe"]), T);
        assert_ne!(o.code, Some(0), "{o:?}");
        let o = run(vserverctl(&d.address, &["exec", "rc1", "--", "sh", "-c", "echo x >> /tmp/exe-control"]), T);
        assert_eq!(o.code, Some(0), "the control write: {o:?}");
    });
}
