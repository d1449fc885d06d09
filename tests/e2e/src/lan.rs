//! The test LAN of the network tests: two network namespaces of the test's own, `host` (playing
//! the vserver host) and `client`, joined by a veth pair: `lan0` in `host` (192.0.2.2/24,
//! 2001:db8::2/64) and `lan1` in `client` (192.0.2.1/24, 2001:db8::1/64). Nothing touches this
//! machine's own interfaces (its `eth0` is on 192.0.2.0/24 too). Names carry the test's pid and
//! a counter; both namespaces are deleted on drop, also when a test fails.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `ip ARGS`, which must succeed; its output.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub struct TestLan {
    pub host: String,
    pub client: String,
}

impl TestLan {
    /// The namespaces `vs-KINDhost-…` and `vs-KINDclient-…`, the pair between them, up.
    pub fn new(kind: &str) -> TestLan {
        static N: AtomicUsize = AtomicUsize::new(0);
        let id = format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let lan = TestLan { host: format!("vs-{kind}host-{id}"), client: format!("vs-{kind}client-{id}") };
        ip(&["netns", "add", &lan.host]);
        ip(&["netns", "add", &lan.client]);
        let (h, c) = (lan.host.as_str(), lan.client.as_str());
        ip(&["-n", h, "link", "add", "lan0", "type", "veth", "peer", "name", "lan1", "netns", c]);
        ip(&["-n", h, "addr", "add", "192.0.2.2/24", "dev", "lan0"]);
        ip(&["-n", h, "addr", "add", "2001:db8::2/64", "dev", "lan0", "nodad"]);
        ip(&["-n", c, "addr", "add", "192.0.2.1/24", "dev", "lan1"]);
        ip(&["-n", c, "addr", "add", "2001:db8::1/64", "dev", "lan1", "nodad"]);
        for (ns, dev) in [(h, "lo"), (h, "lan0"), (c, "lo"), (c, "lan1")] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        lan
    }
}

impl Drop for TestLan {
    fn drop(&mut self) {
        for ns in [&self.host, &self.client] {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
