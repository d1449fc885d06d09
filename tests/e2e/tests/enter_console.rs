//! `vserverctl console`: two viewers attached to the console of pid 1 at once, both see what it
//! writes (which also goes to the console log), what one types reaches pid 1, Ctrl-] three
//! times detaches one and leaves the other attached, and the end of the vserver closes the rest.

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
