//! The defaults every vserver gets, through its configuration and the daemon: no SYS_PTRACE and
//! no DAC_READ_SEARCH in the bounding set of pid 1 and of what `exec` runs, and no user
//! namespaces inside (`unshare` and `clone` with CLONE_NEWUSER fail with EPERM, `clone3` with
//! ENOSYS), for pid 1's own processes and for entered ones. The positive control is a vserver
//! whose configuration gives them back: `[capabilities] add` and `flags = ["nest"]`.

use std::fs;
use std::path::Path;
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::pty::{run, vserverctl};
use vserver_e2e::{require_root, Report};

const T: Duration = Duration::from_secs(20);
const PTRACE: u64 = 1 << 19;
const READ_SEARCH: u64 = 1 << 2;
const ATTEMPTS: [&str; 4] = ["unshare NEWUSER", "clone NEWUSER", "clone3 NEWUSER", "compat32 unshare_user"];

/// pid 1: tries each of [`ATTEMPTS`] at boot, its answers in `/tmp/pid1-userns`, then waits.
const INIT: &str = r#"trap 'exit 0' TERM
for a in "unshare NEWUSER" "clone NEWUSER" "clone3 NEWUSER" "compat32 unshare_user"; do /probe try $a; done > /tmp/pid1-userns.tmp
mv /tmp/pid1-userns.tmp /tmp/pid1-userns
while :; do sleep 0.1; done"#;

fn status_field(pid: i32, key: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let v = status.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(':')).unwrap();
    u64::from_str_radix(v.trim(), 16).unwrap()
}

/// The answers of pid 1's attempts, once it has written them.
async fn pid1_answers(root: &Path) -> Vec<String> {
    let file = root.join("tmp/pid1-userns");
    let text = eventually("pid 1's answers", T, || {
        let file = file.clone();
        async move { fs::read_to_string(&file).ok() }
    })
    .await;
    text.lines().map(str::to_string).collect()
}

#[test]
fn ptrace_read_search_and_user_namespaces_are_off_by_default_and_come_back_by_configuration() {
    require_root!();
    with_daemon("defaults", async |d| {
        let init = "[init]\ncommand = [\"/bin/init-userns\"]\nstop_timeout = 2\n";
        let plain = d.root("plain");
        let given = d.root("given");
        for root in [&plain, &given] {
            d.script(root, "/bin/init-userns", INIT);
        }
        d.config("plain", &format!("context = 561\nflags = [\"fakeinit\"]\n{init}"));
        d.config(
            "given",
            &format!("context = 562\nflags = [\"fakeinit\", \"nest\"]\n{init}[capabilities]\nadd = [\"SYS_PTRACE\", \"DAC_READ_SEARCH\"]\n"),
        );
        d.start().await;
        let m = d.manager().await;
        m.start_vserver("plain").await.unwrap();
        m.start_vserver("given").await.unwrap();
        let a = d.address.clone();

        // The default: pid 1 and an exec'd process hold neither capability.
        let st = d.state("plain").unwrap();
        let bnd = status_field(st.pid, "CapBnd");
        assert_eq!(bnd & (PTRACE | READ_SEARCH), 0, "pid 1's CapBnd {bnd:016x}");
        assert_eq!(bnd, vserver_engine::CapSet::secure_default().0, "pid 1's CapBnd");
        let o = run(vserverctl(&a, &["exec", "plain", "--", "/probe", "report"]), T);
        assert_eq!(o.code, Some(0), "{o:?}");
        let r = Report::parse(&o.stdout);
        assert_eq!(r.hex("CapBnd"), bnd, "an exec'd process has pid 1's set");
        assert_eq!(r.hex("CapEff") & (PTRACE | READ_SEARCH), 0);

        // The positive control: [capabilities] add gives both back, to pid 1 and to exec.
        let st = d.state("given").unwrap();
        let given_bnd = status_field(st.pid, "CapBnd");
        assert_eq!(given_bnd, bnd | PTRACE | READ_SEARCH, "pid 1's CapBnd {given_bnd:016x}");
        let o = run(vserverctl(&a, &["exec", "given", "--", "/probe", "report"]), T);
        assert_eq!(o.code, Some(0), "{o:?}");
        let r = Report::parse(&o.stdout);
        assert_eq!(r.hex("CapBnd"), given_bnd);
        assert_eq!(r.hex("CapEff"), given_bnd, "root's effective set holds them");

        // User namespaces: refused by default, for pid 1's processes and for entered ones.
        let refused = ["err EPERM 1", "err EPERM 1", "err ENOSYS 38", "err EPERM 1"];
        assert_eq!(pid1_answers(&plain).await, refused, "pid 1's processes: {ATTEMPTS:?}");
        for (attempt, want) in ATTEMPTS.iter().zip(refused) {
            let argv: Vec<&str> = ["exec", "plain", "--", "/probe", "try"].into_iter().chain(attempt.split(' ')).collect();
            let o = run(vserverctl(&a, &argv), T);
            assert_eq!(o.stdout.trim(), want, "exec {attempt}: {o:?}");
        }
        // With nest the same attempts succeed (the positive control), and a plain fork works in
        // both (libc's fallback from clone3 to clone).
        assert_eq!(pid1_answers(&given).await, ["ok", "ok", "ok", "ok"], "pid 1's processes with nest: {ATTEMPTS:?}");
        for attempt in ATTEMPTS {
            let argv: Vec<&str> = ["exec", "given", "--", "/probe", "try"].into_iter().chain(attempt.split(' ')).collect();
            let o = run(vserverctl(&a, &argv), T);
            assert_eq!(o.stdout.trim(), "ok", "exec {attempt} with nest: {o:?}");
        }
        for name in ["plain", "given"] {
            let o = run(vserverctl(&a, &["exec", name, "--", "sh", "-c", "echo $(echo forked)"]), T);
            assert_eq!((o.code, o.stdout.as_str()), (Some(0), "forked\n"), "{name}: {o:?}");
        }

        // The D-Bus property names the flag.
        let flags = d.vserver("given").await.flags().await.unwrap();
        assert!(flags.contains(&"nest".to_string()) && flags.contains(&"fakeinit".to_string()), "{flags:?}");
        assert!(!d.vserver("plain").await.flags().await.unwrap().contains(&"nest".to_string()));
    });
}

#[test]
fn lock_and_nest_together_are_a_configuration_error() {
    require_root!();
    with_daemon("defaults-both", async |d| {
        d.root("both");
        d.config("both", "context = 563\nflags = [\"lock\", \"nest\"]\n");
        d.start().await;
        let r = d.manager().await.start_vserver("both").await;
        assert_eq!(outcome(&r), "org.vserverd.VServer1.ConfigInvalid");
        assert!(r.unwrap_err().to_string().contains("exclude each other"), "the message says why");
        // The same vserver without lock starts (the positive control).
        d.config("both", "context = 563\nflags = [\"nest\"]\n[init]\ncommand = [\"/bin/true\"]\n");
        d.manager().await.reload().await.unwrap();
        d.manager().await.start_vserver("both").await.unwrap();
        d.state("both");
    });
}
