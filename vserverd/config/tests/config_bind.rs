//! `[network] mode = "bind"` in the config: the checks of the file alone (addresses, device,
//! the capabilities a bind vserver cannot have), across vservers, against a made-up host (an
//! address the host holds for another purpose, one a bind vserver holds), and the launch plan.

use std::net::IpAddr;
use std::path::Path;

use vserver_engine::net::snapshot::HostLink;
use vserver_engine::plan::{IfAddr, Network};
use vserver_config::{host_checks, HostNet, NetworkMode};

mod common;
use common::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const GOOD: &str = "[network]\nmode = \"bind\"\ndevice = \"eth0\"\naddresses = [\"192.0.2.10/24\", \"2001:db8::10/64\"]\n";

#[test]
fn a_bind_vserver_needs_addresses_and_a_device_and_nothing_more() {
    let nine: Vec<String> = (20..29).map(|i| format!("\"192.0.2.{i}/24\"")).collect();
    let d = Dir::with(&[
        ("a.toml", GOOD),
        ("b.toml", "[network]\nmode = \"bind\"\ndevice = \"eth0\"\n"),
        ("c.toml", "[network]\nmode = \"bind\"\naddresses = [\"192.0.2.12/24\"]\n"),
        ("d.toml", "[network]\nmode = \"bind\"\naddresses = [\"192.0.2.13/24\"]\nmanage_addresses = false\n"),
        ("e.toml", "[network]\nmode = \"bind\"\ndevice = \"eth0\"\naddresses = [\"fe80::1/64\", \"169.254.1.1/16\"]\n"),
        ("f.toml", &format!("[network]\nmode = \"bind\"\ndevice = \"eth0\"\naddresses = [{}]\n", nine.join(", "))),
        ("g.toml", "[network]\nmode = \"bind\"\ndevice = \"eth0\"\naddresses = [\"192.0.2.14/24\"]\ngateway = \"192.0.2.1\"\nmtu = 1400\nbroadcast = \"192.0.2.255\"\n"),
        ("h.toml", "[network]\nmode = \"macvlan\"\ndevice = \"eth0\"\naddresses = [\"192.0.2.15/24\"]\nmanage_addresses = false\n"),
        ("i.toml", "[network]\nmode = \"bindd\"\n"),
    ]);
    let r = d.load();
    let lines = d.lines_all_relative(&r);
    let expected = [
        "b.toml:2:8: error: network mode \"bind\" needs `network.addresses`: a bind vserver may use its own addresses only",
        "c.toml:2:8: error: network mode \"bind\" needs `network.device`, the host interface its addresses are added to (or `manage_addresses = false` when the admin keeps them on the host)",
        "e.toml:4:14: error: address fe80::1 cannot be a bind vserver's (link-local, multicast or unspecified)",
        "e.toml:4:28: error: address 169.254.1.1 cannot be a bind vserver's (link-local, multicast or unspecified)",
        "f.toml:4:150: error: address 192.0.2.28: a bind vserver has at most 8 addresses of each family",
        "g.toml:5:11: warning: `network.gateway` is ignored with mode \"bind\"",
        "g.toml:6:7: warning: `network.mtu` is ignored with mode \"bind\"",
        "h.toml:5:20: warning: `network.manage_addresses` is ignored with mode \"macvlan\"",
        "i.toml:2:8: error: unknown network mode \"bindd\" (expected none, host, macvlan, veth, bridge or bind)",
    ];
    assert_eq!(lines, expected, "{lines:#?}");
    assert_eq!(r.invalid.iter().collect::<Vec<_>>(), ["b", "c", "e", "f", "i"]);
    let a = &r.vservers["a"].network;
    assert_eq!((a.mode, a.manage_addresses, a.device.as_deref()), (NetworkMode::Bind, true, Some("eth0")));
    assert!(!r.vservers["d"].network.manage_addresses);
    assert_eq!(r.vservers["g"].network.broadcast, Some("192.0.2.255".parse().unwrap()));
}

#[test]
fn a_bind_vserver_cannot_have_the_hosts_network_capabilities() {
    let caps = |n: u8, list: &str| {
        format!(
            "[network]\nmode = \"bind\"\ndevice = \"eth0\"\naddresses = [\"192.0.2.{n}/24\", \"2001:db8::{n}/64\"]\n[capabilities]\nadd = [{list}]\n"
        )
    };
    let d = Dir::with(&[
        ("a.toml", &caps(10, "\"NET_RAW\"")),
        ("b.toml", &caps(11, "\"SYS_PTRACE\", \"CAP_NET_ADMIN\"")),
        ("c.toml", &caps(12, "\"SYS_ADMIN\"")),
        ("d.toml", &caps(13, "\"SYS_PTRACE\"")),
        // The same capabilities are fine with a network namespace of its own.
        (
            "e.toml",
            "[network]\nmode = \"macvlan\"\ndevice = \"eth0\"\naddresses = [\"192.0.2.30/24\"]\n[capabilities]\nadd = [\"NET_RAW\", \"NET_ADMIN\"]\n",
        ),
    ]);
    let r = d.load();
    let lines = d.lines_all_relative(&r);
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].starts_with("a.toml:6:8: error: a bind vserver (network mode \"bind\") cannot have NET_RAW: it shares the host's network stack, and raw and packet sockets"), "{lines:#?}");
    assert!(lines[1].starts_with("b.toml:6:22: error: a bind vserver (network mode \"bind\") cannot have NET_ADMIN"), "{lines:#?}");
    assert!(lines[2].starts_with("c.toml:6:8: error: a bind vserver (network mode \"bind\") cannot have SYS_ADMIN"), "{lines:#?}");
    assert_eq!(r.invalid.iter().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert!(r.vservers.contains_key("d") && r.vservers.contains_key("e"));
}

#[test]
fn an_address_of_a_bind_vserver_and_another_vserver_is_refused() {
    let d = Dir::with(&[
        ("a.toml", GOOD),
        ("b.toml", "[network]\nmode = \"macvlan\"\ndevice = \"eth0\"\naddresses = [\"192.0.2.10/24\"]\n"),
        ("c.toml", "[network]\nmode = \"bind\"\ndevice = \"eth1\"\naddresses = [\"2001:db8::10/64\"]\n"),
    ]);
    let r = d.load();
    let lines = d.lines_all_relative(&r);
    assert_eq!(
        lines,
        [
            "b.toml:4:14: error: address 192.0.2.10 is already used by vserver `a` at a.toml:4:14",
            "c.toml:4:14: error: address 2001:db8::10 is already used by vserver `a` at a.toml:4:31",
        ]
    );
}

fn host(bound: &[(&str, &str)]) -> HostNet {
    HostNet {
        links: vec![HostLink { name: "lo".into(), kind: None }, HostLink { name: "eth0".into(), kind: None }],
        addresses: vec![
            (ip("127.0.0.1"), "lo".into()),
            (ip("192.0.2.2"), "eth0".into()),
            (ip("192.0.2.10"), "eth0".into()),
            (ip("192.0.2.40"), "eth0".into()),
        ],
        routing: Default::default(),
        bound: bound.iter().map(|(a, n)| (ip(a), n.to_string())).collect(),
    }
}

#[test]
fn host_checks_tell_the_hosts_addresses_from_a_bind_vservers_own() {
    let d = Dir::with(&[
        ("a.toml", GOOD),
        ("b.toml", "[network]\nmode = \"bind\"\ndevice = \"eth0\"\naddresses = [\"192.0.2.2/24\"]\n"),
        ("c.toml", "[network]\nmode = \"bind\"\ndevice = \"eth9\"\naddresses = [\"192.0.2.31/24\"]\n"),
        ("d.toml", "[network]\nmode = \"bind\"\naddresses = [\"192.0.2.40/24\", \"192.0.2.41/24\"]\nmanage_addresses = false\n"),
        ("e.toml", "[network]\nmode = \"macvlan\"\ndevice = \"eth0\"\naddresses = [\"192.0.2.50/24\"]\n"),
    ]);
    // a runs: 192.0.2.10 is on eth0 because a's start put it there. e's address was left by a
    // bind vserver `z` whose monitor was killed.
    let mut r = d.load();
    host_checks(&mut r, &host(&[("192.0.2.10", "a"), ("192.0.2.50", "z")]));
    let lines = d.lines_all_relative(&r);
    assert_eq!(
        lines,
        [
            "b.toml:4:14: error: address 192.0.2.2 is held by the host (on eth0) for another purpose: a bind vserver's addresses are added at its start (`manage_addresses = false` if they are the admin's)",
            "c.toml:3:10: error: unknown device `eth9`: the host has no such interface",
            "d.toml:3:31: error: address 192.0.2.41 is on no interface of the host (with `manage_addresses = false` the admin adds it)",
            "e.toml:4:14: error: address 192.0.2.50 is held by the bind vserver `z`",
        ],
        "{lines:#?}"
    );
    assert_eq!(r.invalid.iter().collect::<Vec<_>>(), ["b", "c", "d", "e"]);
    // Not running, a's address on eth0 is the host's: refused (the positive control of the first case).
    let mut r = d.load();
    host_checks(&mut r, &host(&[]));
    assert!(d.lines_all_relative(&r).iter().any(|l| l.starts_with("a.toml:4:14: error: address 192.0.2.10 is held by the host (on eth0) for another purpose")));
}

#[test]
fn launch_plan_of_a_bind_vserver() {
    let d = Dir::with(&[
        ("a.toml", &format!("context = 1301\n{GOOD}broadcast = \"192.0.2.255\"\n")),
        ("b.toml", "[network]\nmode = \"bind\"\ndevice = \"eth0\"\naddresses = [\"192.0.2.11/24\"]\nmanage_addresses = false\n"),
    ]);
    let r = d.load();
    assert!(r.diagnostics.is_empty(), "{:#?}", d.lines_all_relative(&r));
    let a = r.vservers["a"].launch_plan(Path::new("/run/vservers"));
    assert_eq!(a.network, Network::Host);
    assert!(a.links.is_empty());
    let b = a.bind.as_ref().unwrap();
    assert_eq!(b.addresses, [IfAddr { addr: ip("192.0.2.10"), prefix: 24 }, IfAddr { addr: ip("2001:db8::10"), prefix: 64 }]);
    assert_eq!((b.device.as_deref(), b.broadcast), (Some("eth0"), Some("192.0.2.255".parse().unwrap())));
    // The admin's addresses: nothing is added to a device.
    let bb = r.vservers["b"].launch_plan(Path::new("/run/vservers"));
    assert_eq!(bb.bind.as_ref().unwrap().device, None);
    let json = serde_json::to_string(&a).unwrap();
    assert_eq!(serde_json::from_str::<vserver_engine::LaunchPlan>(&json).unwrap(), a);
}
