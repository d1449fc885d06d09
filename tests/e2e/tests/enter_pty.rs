//! `vserverctl enter` on a real terminal (our pty harness): a login shell inside the running
//! vserver on a pty of the vserver's own devpts, with the vserver's hostname, pid 1,
//! capabilities, seccomp filter, rlimits and cgroups and a clean environment; the window size
//! follows the terminal; the exit code of the shell is vserverctl's.

use std::fs;
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::pty::{vserverctl, PtySession};
use vserver_e2e::{require_root, Report};

const T: Duration = Duration::from_secs(15);

fn status_field(pid: i32, key: &str) -> String {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':')).map(|v| v.trim().to_string()).unwrap()
}

/// The report of `/probe report` printed on the pty, from its output.
fn report_from_terminal(text: &str) -> Report {
    Report::parse(&text.replace("\r\n", "\n"))
}

#[test]
fn enter_gives_a_login_shell_on_a_pty_of_the_vserver() {
    require_root!();
    with_daemon("enter-pty", async |d| {
        let root = d.ctl_root("e1");
        fs::create_dir_all(root.join("root")).unwrap();
        d.config(
            "e1",
            &format!("context = 501\nhostname = \"inside-e1\"\n{CTL_INIT}[limits]\nnofile = 777\n"),
        );
        d.start().await;
        d.manager().await.start_vserver("e1").await.unwrap_or_else(|e| panic!("{e}\n{}", d.daemon_log()));
        let st = d.state("e1").unwrap();

        // A login shell: a prompt, a pty of the vserver's own devpts, its size ours.
        let mut cmd = vserverctl(&d.address, &["enter", "e1"]);
        cmd.env("TERM", "xterm-test").env("SECRET_OF_THE_HOST", "leak");
        let mut s = PtySession::spawn(cmd, 33, 101);
        s.expect("# ", T);
        s.line("echo $0 ; tty ; stty size ; hostname ; echo PARENT=$PPID ; echo DO''NE");
        let text = s.expect("DONE", T);
        assert!(text.contains("\r\nPARENT=0\r\n"), "the shell's parent (the helper) is not in the vserver: {text:?}");
        assert!(text.contains("\r\n-sh\r\n"), "a login shell: {text:?}");
        assert!(text.contains("\r\n/dev/pts/0\r\n"), "the vserver's first pty: {text:?}");
        assert!(text.contains("\r\n33 101\r\n"), "the size of our terminal: {text:?}");
        assert!(text.contains("\r\ninside-e1\r\n"), "{text:?}");
        // The pty belongs to the vserver's devpts: it is listed there, and nothing else is.
        s.line("ls -1 /dev/pts ; echo LS''DONE");
        let text = s.expect("LSDONE", T);
        assert!(text.contains("\r\n0\r\nptmx\r\n"), "{text:?}");

        // The window size follows the terminal.
        // (The new size travels through vserverctl and the daemon's helper: asked until it
        // arrives, a few times at most.)
        s.resize(40, 120);
        let mut text = String::new();
        for _ in 0..20 {
            s.line("stty size ; echo SI''ZED");
            text = s.expect("SIZED", T);
            if text.contains("\r\n40 120\r\n") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(text.contains("\r\n40 120\r\n"), "resized: {text:?}");

        // What the shell is: pid 1 is the vserver's init; its parent is outside; the same
        // capabilities, filter, limits and cgroups as pid 1; nothing of the host's environment.
        s.line("/probe report ; echo RE''PORTED");
        let r = report_from_terminal(&s.expect("REPORTED", T));
        assert_eq!(r.get("hostname"), "inside-e1");
        assert_eq!(r.get("uid"), "0");
        assert!(r.all("proc").contains(&"1 ctl-init"), "{:?}", r.all("proc"));
        assert_eq!(r.get("CapBnd"), status_field(st.pid, "CapBnd"));
        assert_eq!(r.get("CapEff"), status_field(st.pid, "CapBnd"), "root inside holds the bounding set");
        assert_eq!(r.get("CapAmb"), "0000000000000000");
        assert_eq!(r.get("Seccomp"), "2");
        assert_eq!(r.get("NoNewPrivs"), "0");
        assert_eq!(r.get("rlimit_nofile"), "777 777");
        let fds = r.all("fd");
        assert_eq!(fds, vec!["0 /dev/pts/0", "1 /dev/pts/0", "2 /dev/pts/0"], "only the pty: {fds:?}");
        for v in r.all("env") {
            assert!(!v.contains("SECRET_OF_THE_HOST") && !v.starts_with("CARGO") && !v.starts_with("DBUS"), "{v}");
        }
        assert!(r.all("env").contains(&"TERM=xterm-test"));
        assert!(r.all("env").contains(&"container=vserver"));
        assert!(r.all("env").contains(&"HOME=/root"));
        assert_eq!(r.get("cwd"), "/root");

        // The cgroups are pid 1's (both seen from inside: pid 1, its own init, has a cgroup
        // namespace, and the shell is in it too).
        s.line("cat /proc/self/cgroup > /tmp/cg ; cat /proc/1/cgroup > /tmp/cg1 ; echo CG''DONE");
        s.expect("CGDONE", T);
        let inside = fs::read_to_string(root.join("tmp/cg")).unwrap();
        let pid1 = fs::read_to_string(root.join("tmp/cg1")).unwrap();
        assert_eq!(inside, pid1);
        assert!(inside.lines().any(|l| l == "0::/"), "the namespace's root: {inside}");

        // The exit code of the shell is ours; the terminal is given back as it was.
        s.line("exit 7");
        let status = s.wait(T);
        assert_eq!(status.code(), Some(7), "{}", s.all());
        // Nothing but pid 1 and its `sleep`s stays (a `sleep` just forked is still named
        // `ctl-init` for a moment before its exec: hence polled).
        let others = || d.processes_of("e1").into_iter().filter(|p| *p != st.pid).filter_map(|p| fs::read_to_string(format!("/proc/{p}/comm")).ok());
        eventually("the shell and the helper gone", T, || async { others().all(|c| c.trim() == "sleep").then_some(()) }).await;
    });
}

#[test]
fn enter_runs_a_command_on_a_pty_and_passes_its_exit_code() {
    require_root!();
    with_daemon("enter-cmd", async |d| {
        d.ctl_root("e2");
        d.config("e2", &format!("context = 502\n{CTL_INIT}"));
        d.start().await;
        d.manager().await.start_vserver("e2").await.unwrap();
        d.state("e2");

        let mut s = PtySession::spawn(vserverctl(&d.address, &["enter", "e2", "--", "/bin/sh", "-c", "tty; stty size; exit 3"]), 20, 70);
        let status = s.wait(T);
        let out = s.all();
        assert_eq!(status.code(), Some(3), "{out}");
        assert!(out.contains("/dev/pts/") && out.contains("20 70"), "{out:?}");

        // A signal that ends the command: 128 + N.
        let mut s = PtySession::spawn(vserverctl(&d.address, &["enter", "e2", "--", "/bin/sh", "-c", "kill -TERM $$"]), 20, 70);
        assert_eq!(s.wait(T).code(), Some(128 + libc::SIGTERM), "{}", s.all());

        // `exec -t` gives a pty too; `exec` without it gives pipes even on a terminal.
        let mut s = PtySession::spawn(vserverctl(&d.address, &["exec", "-t", "e2", "--", "busybox", "tty"]), 20, 70);
        assert_eq!(s.wait(T).code(), Some(0));
        assert!(s.all().contains("/dev/pts/"), "{}", s.all());
        let mut s = PtySession::spawn(vserverctl(&d.address, &["exec", "e2", "--", "busybox", "tty"]), 20, 70);
        assert_eq!(s.wait(T).code(), Some(1), "no terminal on pipes: {}", s.all());
        assert!(s.all().contains("not a tty"), "{}", s.all());
    });
}
