//! `vserverctl exec --all -- CMD` and `exec A B C -- CMD` over three running vservers (built with
//! `vserverctl build`), one of which fails: every vserver's output and exit code is reported,
//! and the exit code says not all succeeded.

mod build_support;

use std::time::Instant;

use build_support::*;
use vserver_e2e::daemon::*;
use vserver_e2e::{require_root, TestDir};

#[test]
fn exec_over_several_vservers_reports_each() {
    require_root!();
    let t = TestDir::new("b-exec");
    let bus = TestBus::start();
    let tpl = t.path.join("tpl");
    busybox_tree(&tpl);
    block_on(async {
        let mut d = TestDaemon::new(&t, &bus);
        ok(&ctl(&d, &["template", "create", "base", "--template", &tpl.display().to_string()]));
        for n in ["e1", "e2", "e3"] {
            ok(&ctl(&d, &["build", n, "--unified", "base"]));
            init_dropin(&d, n, "sleep 1000 & touch /up");
        }
        // A stopped one, named explicitly below only.
        ok(&ctl(&d, &["build", "off", "--unified", "base"]));
        d.start().await;
        let m = d.manager().await;
        for n in ["e1", "e2", "e3"] {
            m.start_vserver(n).await.unwrap_or_else(|e| panic!("start {n}: {e}\n{}", d.daemon_log()));
            wait_for(&d.root_base.join(n).join("upper/up"));
        }
        let script = "echo out-$(hostname); sleep 1; [ $(hostname) != e2 ] || { echo bad >&2; exit 7; }";
        let t0 = Instant::now();
        let out = ctl_plain(&d, &["--json", "exec", "--all", "--", "sh", "-c", script]);
        assert!(t0.elapsed().as_secs_f64() < 2.9, "in parallel: {:?}", t0.elapsed());
        assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let rows = v.as_array().unwrap();
        assert_eq!(rows.len(), 3, "{v}");
        for (row, n) in rows.iter().zip(["e1", "e2", "e3"]) {
            assert_eq!(row["name"], n);
            assert_eq!(row["stdout"], format!("out-{n}\n"));
            let (code, err) = if n == "e2" { (7, "bad\n") } else { (0, "") };
            assert_eq!((row["exit"].as_i64().unwrap(), row["stderr"].as_str().unwrap()), (code, err), "{row}");
        }

        // Named explicitly, text output; one of them not running.
        let out = ctl_plain(&d, &["exec", "-j", "2", "e1", "e3", "off", "--", "hostname"]);
        assert_eq!(out.status.code(), Some(1));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("==> e1 <== exit 0\ne1\n") && text.contains("==> e3 <== exit 0\ne3\n"), "{text}");
        assert!(text.contains("==> off <== exit 1"), "{text}");
        assert!(text.contains("2 succeeded, 1 failed."), "{text}");
        let out = ctl_plain(&d, &["exec", "e1", "e3", "--", "true"]);
        assert_eq!(out.status.code(), Some(0));
        for n in ["e1", "e2", "e3"] {
            m.stop_vserver(n).await.unwrap();
        }
    });
}
