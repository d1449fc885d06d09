//! `[network]` in the config: the checks of the file alone, across vservers (an address used
//! twice), against a made-up host (unknown device, an address the host holds, a routed uplink
//! that does not forward), against the real host, and the links of the launch plan.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use vserver_engine::net::snapshot::{HostLink, Routing};
use vserver_engine::plan::{IfAddr, LinkMode};
use vserver_config::{self as config, host_checks, HostNet, LoadOptions, LoadResult};

mod common;
use common::*;

fn assert_diags(d: &Dir, r: &LoadResult, expected: &[&str]) {
    let got = d.lines_all_relative(r);
    assert_eq!(got.len(), expected.len(), "got {got:#?}");
    for (g, e) in got.iter().zip(expected) {
        assert!(g.starts_with(e), "expected {e:?}, got {g:?}\nall: {got:#?}");
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn an_address_of_two_vservers_is_refused_at_the_later_one() {
    let d = Dir::with(&[
        ("a.toml", "[network]\nmode = \"macvlan\"\ndevice = \"lan0\"\naddresses = [\"192.0.2.10/24\", \"2001:db8::10/64\"]\n"),
        ("b.toml", "[network]\nmode = \"veth\"\naddresses = [\"192.0.2.11/24\", \"2001:db8::10/64\"]\n"),
        // Ignored addresses (mode none) take nothing from anyone.
        ("c.toml", "[network]\naddresses = [\"192.0.2.10/24\"]\n"),
    ]);
    let r = d.load();
    assert_diags(
        &d,
        &r,
        &[
            "b.toml:3:31: error: address 2001:db8::10 is already used by vserver `a` at ",
            "c.toml:2:13: warning: `network.addresses` is ignored with mode \"none\"",
        ],
    );
    assert!(d.lines_all_relative(&r)[0].ends_with("a.toml:4:31"), "{:?}", d.lines_all_relative(&r));
    assert!(r.vservers.contains_key("a") && r.vservers.contains_key("c"));
    assert!(r.invalid.contains("b"));
}

#[test]
fn malformed_addresses_gateways_and_broadcasts_are_positioned() {
    let text = r#"[network]
mode = "macvlan"
device = "lan0"
addresses = ["192.0.2.10/33", "192.0.2.1o/24", "2001:db8::x/64", "127.0.0.2/8", "192.0.2.10/24", "192.0.2.10/25", "2001:db8::10/64"]
broadcast = "198.51.100.255"
gateway = ["198.51.100.1", "192.0.2.1", "192.0.2.2", "2001:db8:1::1", "nope"]
"#;
    let d = Dir::with(&[("w.toml", text)]);
    let r = d.load();
    assert_diags(
        &d,
        &r,
        &[
            "w.toml:4:14: error: invalid address \"192.0.2.10/33\"",
            "w.toml:4:31: error: invalid address \"192.0.2.1o/24\"",
            "w.toml:4:48: error: invalid address \"2001:db8::x/64\"",
            "w.toml:4:66: error: address 127.0.0.2/8 is a loopback address",
            "w.toml:4:98: error: address 192.0.2.10 is listed twice",
            "w.toml:5:13: error: broadcast 198.51.100.255 is not in the network of an IPv4 address (192.0.2.10/24)",
            "w.toml:6:12: error: gateway 198.51.100.1 is not in the network of an IPv4 address (192.0.2.10/24)",
            "w.toml:6:41: error: a second IPv4 gateway (192.0.2.2)",
            "w.toml:6:54: error: gateway 2001:db8:1::1 is not in the network of an IPv6 address (2001:db8::10/64)",
            "w.toml:6:71: error: invalid gateway address \"nope\"",
        ],
    );
    assert!(r.invalid.contains("w"));
}

#[test]
fn gateways_one_per_family_link_local_and_veth() {
    let d = Dir::with(&[
        (
            "m.toml",
            "[network]\nmode = \"bridge\"\ndevice = \"br0\"\naddresses = [\"192.0.2.10/24\", \"2001:db8::10/64\"]\ngateway = [\"192.0.2.1\", \"fe80::1\"]\n",
        ),
        ("s.toml", "[network]\nmode = \"macvlan\"\ndevice = \"lan0\"\naddresses = [\"192.0.2.12/24\"]\ngateway = \"2001:db8::1\"\n"),
        ("v.toml", "[network]\nmode = \"veth\"\naddresses = [\"192.0.2.11/24\"]\ngateway = \"192.0.2.1\"\n"),
    ]);
    let r = d.load();
    assert_diags(
        &d,
        &r,
        &[
            "s.toml:5:11: error: gateway 2001:db8::1 has no IPv6 address to go with",
            "v.toml:4:11: warning: `network.gateway` is not used with mode \"veth\"",
        ],
    );
    assert_eq!(r.vservers["m"].network.gateways, [ip("192.0.2.1"), ip("fe80::1")]);
    assert!(r.vservers["v"].network.gateways.is_empty());
}

fn host() -> HostNet {
    HostNet {
        links: vec![
            HostLink { name: "lo".into(), kind: None },
            HostLink { name: "eth0".into(), kind: None },
            HostLink { name: "br0".into(), kind: Some("bridge".into()) },
        ],
        addresses: vec![(ip("127.0.0.1"), "lo".into()), (ip("192.0.2.2"), "eth0".into()), (ip("2001:db8::2"), "eth0".into())],
        routing: BTreeMap::from([("eth0".to_string(), Routing { ipv4_forwarding: true, ..Routing::default() })]),
        bound: Vec::new(),
    }
}

#[test]
fn host_checks_refuse_unknown_devices_and_the_hosts_addresses() {
    let d = Dir::with(&[
        ("a.toml", "[network]\nmode = \"macvlan\"\ndevice = \"eth9\"\naddresses = [\"192.0.2.10/24\"]\n"),
        ("b.toml", "[network]\nmode = \"bridge\"\ndevice = \"eth0\"\naddresses = [\"192.0.2.11/24\"]\n"),
        ("c.toml", "[network]\nmode = \"macvlan\"\ndevice = \"eth0\"\naddresses = [\"192.0.2.12/24\", \"2001:db8::2/64\"]\n"),
        ("d.toml", "[network]\nmode = \"veth\"\ndevice = \"eth0\"\naddresses = [\"192.0.2.13/24\", \"2001:db8::13/64\"]\n"),
        ("e.toml", "[network]\nmode = \"bridge\"\ndevice = \"br0\"\naddresses = [\"192.0.2.14/24\"]\n"),
        // Not checked: no link of its own.
        ("f.toml", "[network]\nmode = \"host\"\ndevice = \"nope0\"\naddresses = [\"192.0.2.2/24\"]\n"),
    ]);
    let mut r = d.load();
    let before = r.diagnostics.len();
    host_checks(&mut r, &host());
    let lines = d.lines_all_relative(&r);
    let new: Vec<&String> = lines.iter().filter(|l| !l.starts_with("f.toml")).collect();
    assert_eq!(r.diagnostics.len() - before, new.len(), "{lines:#?}");
    let expected = [
        "a.toml:3:10: error: unknown device `eth9`: the host has no such interface",
        "b.toml:3:10: error: `eth0` is not a bridge (network mode \"bridge\" needs one)",
        "c.toml:4:31: error: address 2001:db8::2 is held by the host (on eth0)",
        "d.toml:3:10: warning: `eth0` does not route for the vserver: the LAN reaches it only once these are 1: net.ipv6.conf.eth0.forwarding, net.ipv6.conf.eth0.force_forwarding (or net.ipv6.conf.all.forwarding), net.ipv6.conf.eth0.proxy_ndp",
    ];
    assert_eq!(new.len(), expected.len(), "{lines:#?}");
    for (g, e) in new.iter().zip(expected) {
        assert_eq!(*g, e);
    }
    assert_eq!(r.invalid.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert!(r.vservers.contains_key("d") && r.vservers.contains_key("e") && r.vservers.contains_key("f"));
}

#[test]
fn live_host_checks_read_this_host() {
    // The loopback device always exists and holds 127.0.0.1: no root needed to read either.
    let d = Dir::with(&[
        ("a.toml", "[network]\nmode = \"macvlan\"\ndevice = \"vsnosuch0\"\naddresses = [\"192.0.2.10/24\"]\n"),
        ("b.toml", "[network]\nmode = \"veth\"\naddresses = [\"198.51.100.77/24\"]\n"),
    ]);
    let r = config::load_dir(&d.0, &LoadOptions { root_base: PathBuf::from("/srv/vs"), template_dir: None, host_checks: true });
    assert_diags(&d, &r, &["a.toml:3:10: error: unknown device `vsnosuch0`"]);
    assert!(r.invalid.contains("a") && r.vservers.contains_key("b"));
    let one = config::load_one(&d.0, "a", &LoadOptions { root_base: PathBuf::from("/srv/vs"), template_dir: None, host_checks: true });
    assert_diags(&d, &one, &["a.toml:3:10: error: unknown device `vsnosuch0`"]);
}

#[test]
fn launch_plan_links() {
    let d = Dir::with(&[
        (
            "m.toml",
            "context = 1201\n[network]\nmode = \"macvlan\"\ndevice = \"lan0\"\naddresses = [\"192.0.2.10/24\", \"2001:db8::10/64\"]\nbroadcast = \"192.0.2.255\"\ngateway = [\"192.0.2.1\", \"2001:db8::1\"]\nmtu = 1400\nmac = \"02:00:00:00:00:10\"\n",
        ),
        ("v.toml", "context = 1202\n[network]\nmode = \"veth\"\naddresses = [\"192.0.2.11/24\"]\n"),
        ("n.toml", "context = 1203\n"),
    ]);
    let r = d.load();
    assert_diags(&d, &r, &[]);
    let m = r.vservers["m"].launch_plan(Path::new("/run/vservers"));
    assert_eq!(m.links.len(), 1);
    let l = &m.links[0];
    assert_eq!((l.mode, l.device.as_deref(), l.name.as_str(), l.host_name.as_deref()), (LinkMode::Macvlan, Some("lan0"), "eth0", None));
    assert_eq!(l.addresses, [IfAddr { addr: ip("192.0.2.10"), prefix: 24 }, IfAddr { addr: ip("2001:db8::10"), prefix: 64 }]);
    assert_eq!(l.broadcast, Some("192.0.2.255".parse().unwrap()));
    assert_eq!(l.gateways, [ip("192.0.2.1"), ip("2001:db8::1")]);
    assert_eq!((l.mtu, l.mac), (Some(1400), Some([2, 0, 0, 0, 0, 0x10])));
    let v = r.vservers["v"].launch_plan(Path::new("/run/vservers"));
    assert_eq!((v.links[0].mode, v.links[0].device.as_deref(), v.links[0].host_name.as_deref()), (LinkMode::Veth, None, Some("vs1202h")));
    assert!(r.vservers["n"].launch_plan(Path::new("/run/vservers")).links.is_empty());
    // The plan crosses to the monitor as JSON.
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(serde_json::from_str::<vserver_engine::LaunchPlan>(&json).unwrap(), m);
}
