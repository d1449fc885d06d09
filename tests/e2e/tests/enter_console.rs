//! `vserverctl console`: two viewers attached to the console of pid 1 at once, both see what it
//! writes (which also goes to the console log), what one types reaches pid 1, Ctrl-] three
//! times detaches one and leaves the other attached, and the end of the vserver closes the rest;
//! the console log rotated by size (by the serving program the monitor becomes).

use std::fs;
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::pty::{run, vserverctl, PtySession};
use vserver_e2e::require_root;

const T: Duration = Duration::from_secs(15);

#[test]
fn console_attach_sees_output_takes_input_and_detaches() {
    require_root!();
    with_daemon("console", async |d| {
        let root = d.root("c1");
        d.script(
            &root,
            "/bin/console-init",
            r#"trap 'exit 0' TERM
(while :; do echo tick; sleep 0.3; done) &
while :; do
    if read -r line; then echo "got: $line"; else sleep 0.1; fi
done"#,
        );
        d.config("c1", "context = 541\nflags = [\"fakeinit\"]\n[init]\ncommand = [\"/bin/console-init\"]\nstop_timeout = 2\n");
        d.start().await;
        let a = d.address.clone();

        let o = run(vserverctl(&a, &["console", "c1"]), T);
        assert_eq!(o.code, Some(1));
        assert!(o.stderr.contains("c1 is not running"), "{o:?}");

        d.manager().await.start_vserver("c1").await.unwrap();
        d.state("c1");
        let mut one = PtySession::spawn(vserverctl(&a, &["console", "c1"]), 24, 80);
        let mut two = PtySession::spawn(vserverctl(&a, &["console", "c1"]), 24, 80);
        for s in [&mut one, &mut two] {
            s.expect("Connected to the console of c1. Press Ctrl-] three times within 1 s to detach.", T);
            s.expect("tick", T);
        }

        // What one viewer types reaches pid 1; what pid 1 answers reaches both.
        one.send(b"hello there\r");
        one.expect("got: hello there", T);
        two.expect("got: hello there", T);
        let log = fs::read_to_string(d.log_dir.join("c1.log")).unwrap();
        assert!(log.contains("got: hello there"), "the console log has it too: {log:?}");

        // Ctrl-] three times: the first viewer leaves, the second stays.
        one.send(b"\x1d\x1d\x1d");
        assert_eq!(one.wait(T).code(), Some(0), "{}", one.all());
        assert!(one.all().contains("Detached from c1."), "{}", one.all());
        two.expect("tick", T);
        two.expect("tick", T);
        assert_eq!(d.state_of("c1").await, "running");

        // A single Ctrl-] is passed on (it is not a detach).
        two.send(b"\x1dx\r");
        two.expect("got: ", T);

        // The vserver ends: the console closes under the remaining viewer.
        d.manager().await.stop_vserver("c1").await.unwrap();
        assert_eq!(two.wait(T).code(), Some(0), "{}", two.all());
        assert!(two.all().contains("The console of c1 closed"), "{}", two.all());
        assert!(!d.run_dir.join("c1/console.sock").exists());
    });
}

#[test]
fn the_served_console_log_is_rotated_by_size() {
    require_root!();
    with_daemon("console-rot", async |d| {
        let root = d.root("r1");
        // Five times the log's size limit (1 MiB, three kept), in lines of 1 kB, once
        // pid 1 runs (the serving program copies the console from then on).
        d.script(
            &root,
            "/bin/chatty-init",
            r#"trap 'exit 0' TERM
while [ ! -e /tmp/go ]; do sleep 0.05; done
line=x
for k in 1 2 3 4 5 6 7 8 9 10; do line="$line$line"; done
i=0
while [ $i -lt 5000 ]; do echo "$line"; i=$((i+1)); done
echo done-writing
while :; do sleep 1; done"#,
        );
        d.config("r1", "context = 542\nflags = [\"fakeinit\"]\n[init]\ncommand = [\"/bin/chatty-init\"]\nstop_timeout = 2\n");
        d.start().await;
        d.manager().await.start_vserver("r1").await.unwrap();
        let st = d.state("r1").expect("running");
        let mon = st.monitor_pid;
        // The monitor runs the serving program (its comm is `vserver-monitor` either way).
        let serving = || fs::read_link(format!("/proc/{mon}/exe")).is_ok_and(|e| e.display().to_string().contains("memfd:vserver-monitor"));
        eventually("the serving program serves", T, || async { serving().then_some(()) }).await;
        fs::write(root.join("tmp/go"), "").unwrap();
        let log = d.log_dir.join("r1.log");
        eventually("pid 1 wrote it all", Duration::from_secs(60), || async {
            fs::read_to_string(&log).unwrap_or_default().contains("done-writing").then_some(())
        })
        .await;
        let size = |i: u32| fs::metadata(if i == 0 { log.clone() } else { d.log_dir.join(format!("r1.log.{i}")) }).map(|m| m.len()).ok();
        let sizes: Vec<Option<u64>> = (0..5).map(size).collect();
        for (i, s) in sizes.iter().enumerate().take(4) {
            let s = s.unwrap_or_else(|| panic!("log {i} missing: {sizes:?}"));
            assert!(s <= 1 << 20, "log {i} past the limit: {sizes:?}");
        }
        assert!(sizes[1..4].iter().all(|s| s.unwrap() > 1_000_000), "{sizes:?}");
        assert_eq!(sizes[4], None, "three rotated logs kept: {sizes:?}");
        assert!(serving(), "the serving program rotated it");
        d.manager().await.stop_vserver("r1").await.unwrap();
        assert_eq!(d.state_of("r1").await, "stopped");
    });
}
