//! The config module against real files in a temporary directory: every error class at its
//! exact position, merging, defaults, contexts, dependencies, names, and the shipped samples.

use std::fs;
use std::path::{Path, PathBuf};

use vserver_engine::caps::{CapSet, Capability};
use vserver_engine::plan::{Init, Network, Resource, Rlimit};
use vserver_config::{self as config, Diagnostic, LoadResult, NetworkMode, Ready, Restart, Severity};

mod common;
use common::*;

/// Asserts that exactly these diagnostics were reported, each starting as given.
fn assert_diags(d: &Dir, r: &LoadResult, expected: &[&str]) {
    let got = d.lines(r);
    assert_eq!(got.len(), expected.len(), "got {got:#?}");
    for (g, e) in got.iter().zip(expected) {
        assert!(g.starts_with(e), "expected {e:?}, got {g:?}\nall: {got:#?}");
    }
}

#[test]
fn diagnostic_display_form() {
    let e = Diagnostic::new(Path::new("/etc/vservers/a.toml"), 3, 7, Severity::Error, "bad");
    assert_eq!(e.to_string(), "/etc/vservers/a.toml:3:7: error: bad");
    let w = Diagnostic::new(Path::new("a.toml"), 1, 1, Severity::Warning, "hm");
    assert_eq!(w.to_string(), "a.toml:1:1: warning: hm");
}

#[test]
fn samples_are_valid() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../etc/vservers");
    let d = Dir::new();
    d.write("web1.toml", &fs::read_to_string(samples.join("example.toml.sample")).unwrap());
    d.write("defaults.toml", &fs::read_to_string(samples.join("defaults.toml.sample")).unwrap());
    d.write("db1.toml", "");
    let r = d.load();
    assert_diags(&d, &r, &[]);
    assert!(r.invalid.is_empty());
    let web = &r.vservers["web1"];
    assert_eq!(web.context, 1001);
    assert!(!web.context_allocated);
    assert_eq!(r.vservers["db1"].context, 1000);
    assert_eq!(web.domainname.as_deref(), Some("example.org"));
    assert!(web.fakeinit && web.flags.lock);
    assert_eq!(web.init.stop_signal, Some(37));
    assert_eq!(web.init.stop_timeout, 30, "NAME.toml overrides defaults.toml");
    assert_eq!(web.init.restart, Restart::OnFailure);
    assert_eq!(web.init.env["LANG"], "C.UTF-8");
    assert_eq!(web.init.env["TZ"], "UTC", "env merges key by key with defaults.toml");
    assert!(web.caps.contains(Capability::parse("NET_RAW").unwrap()));
    assert!(!web.caps.contains(Capability::parse("SYS_CHROOT").unwrap()));
    assert!(!web.caps.contains(Capability::parse("SYS_PTRACE").unwrap()), "capabilities.add replaced");
    assert_eq!(web.limits.memory, Some(1 << 30));
    assert_eq!(web.limits.processes, Some(1000));
    assert_eq!(web.limits.cpuset, Some(vec![0, 1, 3]));
    assert!(web.limits.rlimits.contains(&Rlimit { resource: Resource::Nproc, soft: 2000, hard: 4000 }));
    assert!(web.limits.rlimits.contains(&Rlimit { resource: Resource::Core, soft: u64::MAX, hard: u64::MAX }));
    assert_eq!(web.network.mode, NetworkMode::Bridge);
    assert_eq!(web.network.addresses.len(), 2);
    assert_eq!(web.mounts.len(), 2);
    assert!(web.mounts[0].readonly && !web.mounts[1].readonly);
    assert_eq!(web.hooks.post_stop.as_ref().unwrap()[0], "/usr/local/sbin/cleanup");
    assert_eq!((web.init.ready, web.init.start_timeout), (Some(Ready::Notify), 90));
    assert_eq!(web.tmpfs, ["/tmp"]);
    let db = &r.vservers["db1"];
    assert_eq!(db.root, Path::new("/srv/vs/db1"));
    assert!(db.onboot, "from defaults.toml");
    assert_eq!(db.caps, CapSet::from_changes(CapSet::secure_default(), &["SYS_PTRACE"], &[]).unwrap(), "add from defaults.toml");
}

#[test]
fn the_default_set_has_no_ptrace_nor_read_search_and_add_gives_them_back() {
    let d = Dir::with(&[
        ("plain.toml", ""),
        ("back.toml", "[capabilities]\nadd = [\"SYS_PTRACE\", \"CAP_DAC_READ_SEARCH\"]\n"),
        ("typo.toml", "[capabilities]\nadd = [\"SYS_PTRACER\"]\n"),
    ]);
    let r = d.load();
    assert_diags(&d, &r, &["typo.toml:2:8: error: unknown capability \"SYS_PTRACER\""]);
    let (ptrace, read_search) = (Capability::parse("SYS_PTRACE").unwrap(), Capability::parse("DAC_READ_SEARCH").unwrap());
    let plain = &r.vservers["plain"];
    assert_eq!(plain.caps, CapSet::secure_default());
    assert!(!plain.caps.contains(ptrace) && !plain.caps.contains(read_search));
    assert_eq!(plain.caps.0 & (1 << 19 | 1 << 2), 0, "bits 19 and 2 of CapBnd");
    assert!(plain.caps.contains(Capability::parse("DAC_OVERRIDE").unwrap()));
    let back = &r.vservers["back"];
    assert_eq!(back.caps.0, CapSet::secure_default().0 | 1 << 19 | 1 << 2);
    assert_eq!(back.launch_plan(Path::new("/run/vservers")).caps, back.caps, "the plan carries the set");
}

#[test]
fn the_nest_flag_allows_user_namespaces_and_excludes_lock() {
    let d = Dir::with(&[
        ("plain.toml", ""),
        ("nested.toml", "flags = [\"nest\", \"fakeinit\"]\n"),
        ("both.toml", "flags = [\"lock\", \"nest\"]\n"),
        ("typo.toml", "flags = [\"nested\"]\n"),
    ]);
    let r = d.load();
    assert_diags(
        &d,
        &r,
        &[
            "both.toml:1:18: error: the flags `lock` and `nest` exclude each other",
            "typo.toml:1:10: error: unknown flag \"nested\" (known: lock, private, fakeinit, nproc, sched, nest)",
        ],
    );
    assert!(r.invalid.contains("both") && r.invalid.contains("typo"));
    assert!(!r.vservers["plain"].flags.nest, "off by default");
    let nested = &r.vservers["nested"];
    assert!(nested.flags.nest && nested.fakeinit && !nested.flags.lock);
    let plan = nested.launch_plan(Path::new("/run/vservers"));
    assert!(plan.flags.nest, "the plan carries the flag");
}

#[test]
fn readiness_start_timeout_and_tmpfs() {
    let d = Dir::with(&[
        ("plain.toml", ""),
        ("bad.toml", "tmpfs = [\"/tmp\", \"var/tmp\", \"/tmp/\", \"/\"]\n[init]\nready = \"soon\"\nstart_timeout = 0\n"),
        ("exec.toml", "tmpfs = [\"/tmp\", \"/var/tmp/\"]\n[init]\nready = \"exec\"\nstart_timeout = 600\n"),
    ]);
    let r = d.load();
    assert_diags(
        &d,
        &r,
        &[
            "bad.toml:1:18: error: `tmpfs` must be an absolute path: \"var/tmp\"",
            "bad.toml:1:29: error: `tmpfs` names \"/tmp\" twice",
            "bad.toml:1:38: error: `tmpfs` must not be `/`",
            "bad.toml:3:9: error: unknown readiness \"soon\" (expected \"notify\" or \"exec\")",
            "bad.toml:4:17: error: `init.start_timeout` must be from 1 to 86400, not 0",
        ],
    );
    // The defaults: the init decides (at each start), 90 s, no tmpfs.
    let plain = &r.vservers["plain"];
    assert_eq!((plain.init.ready, plain.init.stop_signal, plain.init.start_timeout), (None, None, 90));
    assert!(plain.tmpfs.is_empty());
    let exec = &r.vservers["exec"];
    assert_eq!((exec.init.ready, exec.init.start_timeout), (Some(Ready::Exec), 600));
    assert_eq!(exec.tmpfs, ["/tmp", "/var/tmp"]);
    let plan = exec.launch_plan(Path::new("/run/vservers"));
    assert_eq!(plan.tmpfs, ["/tmp", "/var/tmp"]);
    assert!(!plan.init_fs.run, "rc style: /run stays the root's");
}

#[test]
fn syntax_type_and_unknown_key_errors_are_positioned() {
    let d = Dir::with(&[
        ("a.toml", "hostname = \"a\"\nbogus = 1\n"),
        ("b.toml", "onboot = \"yes\"\n"),
        ("c.toml", "\n\nhostname = \n"),
        ("d.toml", "[init]\ncommand = [\"/bin/sh\", 3]\n"),
        ("e.toml", "[network]\nmode = \"none\"\nspeed = 10\n"),
        ("ok.toml", ""),
    ]);
    let r = d.load();
    assert_diags(
        &d,
        &r,
        &[
            "a.toml:2:1: error: unknown field `bogus`, expected one of `root`",
            "b.toml:1:10: error: invalid type: string \"yes\", expected a boolean",
            "c.toml:3:12: error: ",
            "d.toml:2:23: error: invalid type: integer `3`, expected a string",
            "e.toml:3:1: error: unknown field `speed`",
        ],
    );
    assert_eq!(r.invalid.iter().map(String::as_str).collect::<Vec<_>>(), ["a", "b", "c", "d", "e"]);
    assert_eq!(r.vservers.keys().collect::<Vec<_>>(), ["ok"]);
}

#[test]
fn every_value_error_of_a_file_is_reported() {
    let text = r#"root = "relative/root"
nice = 40
context = 0
flags = ["lock", "bogus"]
depends = []
[init]
command = []
stop_signal = "SIGFOO"
stop_timeout = 0
restart = "sometimes"
[capabilities]
add = ["NET_RAW", "NET_RAWX"]
drop = ["CAP_NOPE"]
[limits]
memory = "1X"
cpu_weight = 0
cpu_quota = "150"
cpuset = "3-1"
nofile = { soft = 10, hard = 5 }
stack = -1
bogus = 3
[network]
mode = "wifi"
addresses = ["192.0.2.1/24", "192.0.2.300/24"]
mac = "01:00:5e:00:00:01"
mtu = 10
[[mounts]]
source = "srv"
target = "/a/../b"
[hooks]
pre_start = ["prep"]
post_stop = []
"#;
    let d = Dir::with(&[("web1.toml", text)]);
    let r = d.load();
    assert_diags(
        &d,
        &r,
        &[
            "web1.toml:1:8: error: `root` must be an absolute path",
            "web1.toml:2:8: error: `nice` must be from -20 to 19, not 40",
            "web1.toml:3:11: error: `context` must be from 1 to 49151, not 0",
            "web1.toml:4:18: error: unknown flag \"bogus\"",
            "web1.toml:7:11: error: `init.command` must not be empty",
            "web1.toml:8:15: error: unknown signal \"SIGFOO\"",
            "web1.toml:9:16: error: `init.stop_timeout` must be from 1 to 86400, not 0",
            "web1.toml:10:11: error: unknown restart policy \"sometimes\"",
            "web1.toml:12:19: error: unknown capability \"NET_RAWX\"",
            "web1.toml:13:9: error: unknown capability \"CAP_NOPE\"",
            "web1.toml:15:10: error: invalid size \"1X\"",
            "web1.toml:16:14: error: `limits.cpu_weight` must be from 1 to 10000, not 0",
            "web1.toml:17:13: error: invalid CPU quota \"150\"",
            "web1.toml:18:10: error: invalid CPU list \"3-1\"",
            "web1.toml:19:10: error: `limits.nofile`: the soft limit is above the hard limit",
            "web1.toml:20:9: error: invalid `limits.stack`",
            "web1.toml:21:1: error: unknown limit `bogus`",
            "web1.toml:23:8: error: unknown network mode \"wifi\"",
            "web1.toml:24:30: error: invalid address \"192.0.2.300/24\"",
            "web1.toml:25:7: error: invalid MAC address",
            "web1.toml:26:7: error: `network.mtu` must be from 68 to 65535, not 10",
            "web1.toml:28:10: error: `source` must be an absolute path",
            "web1.toml:29:10: error: `target` must not contain `..`",
            "web1.toml:31:14: error: `hooks.pre_start` must start with an absolute program path",
            "web1.toml:32:13: error: `hooks.post_stop` must not be empty",
        ],
    );
    assert!(r.invalid.contains("web1") && r.vservers.is_empty());
}

#[test]
fn errors_of_two_bad_files_are_reported_together() {
    let d = Dir::with(&[
        ("a.toml", "nice = [\n"),
        ("b.toml", "[capabilities]\nadd = [\"NET_RAW\", \"FLY\"]\n"),
        ("c.toml", "nice = 3\n"),
    ]);
    let r = d.load();
    let lines = d.lines(&r);
    assert_eq!(lines.len(), 2, "{lines:#?}");
    assert!(lines[0].starts_with("a.toml:2:1: error: "), "{lines:#?}");
    assert!(lines[1].starts_with("b.toml:2:19: error: unknown capability \"FLY\""), "{lines:#?}");
    assert!(r.has_errors());
    assert_eq!(r.invalid.len(), 2);
    assert_eq!(r.vservers["c"].nice, Some(3));
}

#[test]
fn dropins_merge_in_lexical_order_and_errors_point_into_them() {
    let d = Dir::with(&[
        ("web1.toml", "nice = 1\nflags = [\"lock\"]\n[init]\nstop_timeout = 5\nrestart = \"always\"\n"),
        ("web1.toml.d/20-b.toml", "[init]\nstop_timeout = 9\n"),
        ("web1.toml.d/10-a.toml", "flags = [\"private\"]\n[init]\nstop_timeout = 7\n"),
        ("web1.toml.d/30-c.toml.bak", "garbage ="),
        ("db.toml", "nice = 1\n"),
        ("db.toml.d/10-x.toml", "\nnice = 99\n"),
    ]);
    let r = d.load();
    assert_diags(&d, &r, &["db.toml.d/10-x.toml:2:8: error: `nice` must be from -20 to 19, not 99"]);
    let w = &r.vservers["web1"];
    assert_eq!(w.init.stop_timeout, 9, "the last drop-in wins");
    assert_eq!(w.init.restart, Restart::Always, "tables merge key by key");
    assert!(w.flags.private && !w.flags.lock, "arrays replace");
    assert_eq!(w.nice, Some(1));
    assert_eq!(w.files.len(), 3);
    assert!(w.files[2].ends_with("web1.toml.d/20-b.toml"));
    assert!(r.invalid.contains("db"));
}

#[test]
fn defaults_apply_and_their_errors_point_into_defaults_toml() {
    let d = Dir::with(&[
        (
            "defaults.toml",
            "domainname = \"example.org\"\nnice = 5\n[init]\nenv = { A = \"1\", B = \"2\" }\n[limits]\nnofile = 100\n",
        ),
        ("web1.toml", "[init]\nenv = { B = \"3\" }\n"),
        ("web2.toml", "nice = -3\ndomainname = \"other.org\"\n"),
    ]);
    let r = d.load();
    assert_diags(&d, &r, &[]);
    let w1 = &r.vservers["web1"];
    assert_eq!(w1.domainname.as_deref(), Some("example.org"));
    assert_eq!(w1.nice, Some(5));
    assert_eq!(w1.init.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(), ["A=1", "B=3"]);
    assert_eq!(w1.limits.rlimits, [Rlimit { resource: Resource::Nofile, soft: 100, hard: 100 }]);
    assert!(w1.files[0].ends_with("defaults.toml"));
    let w2 = &r.vservers["web2"];
    assert_eq!((w2.nice, w2.domainname.as_deref()), (Some(-3), Some("other.org")));
    assert!(!r.vservers.contains_key("defaults"), "defaults.toml is not a vserver");

    // A bad value in defaults.toml is reported once, there, and makes every vserver invalid.
    let d =
        Dir::with(&[("defaults.toml", "onboot = true\nnice = 50\n"), ("web1.toml", ""), ("web2.toml", "nice = 1\n")]);
    let r = d.load();
    assert_diags(&d, &r, &["defaults.toml:2:8: error: `nice` must be from -20 to 19, not 50"]);
    assert!(r.vservers.is_empty());
    assert_eq!(r.invalid.len(), 2);

    // Per-vserver keys are refused in defaults.toml.
    let d = Dir::with(&[("defaults.toml", "context = 5\nroot = \"/x\"\n"), ("web1.toml", "")]);
    let r = d.load();
    assert_diags(
        &d,
        &r,
        &[
            "defaults.toml:1:11: error: `context` cannot be set in defaults.toml",
            "defaults.toml:2:8: error: `root` cannot be set in defaults.toml",
        ],
    );
    assert!(r.invalid.contains("web1"));
}

#[test]
fn contexts_are_allocated_in_name_order_and_duplicates_refused() {
    let d = Dir::with(&[
        ("a.toml", ""),
        ("b.toml", "context = 1000\n"),
        ("c.toml", ""),
        ("d.toml", "context = 1001\n"),
        ("e.toml", "\ncontext = 1000\n"),
        ("f.toml", "context = 49152\n"),
        ("g.toml", "context = 7\n"),
    ]);
    let r = d.load();
    let b = d.0.join("b.toml");
    assert_diags(
        &d,
        &r,
        &[
            &format!("e.toml:2:11: error: context 1000 is already used by vserver `b` at {}:1:11", b.display()),
            "f.toml:1:11: error: `context` must be from 1 to 49151, not 49152",
        ],
    );
    let ctx = |n: &str| r.vservers[n].context;
    assert_eq!((ctx("a"), ctx("b"), ctx("c"), ctx("d"), ctx("g")), (1002, 1000, 1003, 1001, 7));
    assert!(r.vservers["a"].context_allocated && !r.vservers["b"].context_allocated);
    assert_eq!(r.invalid.iter().collect::<Vec<_>>(), ["e", "f"]);
}

#[test]
fn a_duplicate_context_is_the_newcomers_error() {
    // web1 has had 1001 for a day; aaa, added now, says 1001 too. The newcomer is refused even
    // though its name comes first.
    let d = Dir::with(&[("web1.toml", "context = 1001\n"), ("aaa.toml", "context = 1001\n")]);
    let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(86400);
    fs::File::options().write(true).open(d.0.join("web1.toml")).unwrap().set_modified(day_ago).unwrap();
    let r = d.load();
    let web1 = d.0.join("web1.toml");
    assert_diags(&d, &r, &[&format!("aaa.toml:1:11: error: context 1001 is already used by vserver `web1` at {}:1:11", web1.display())]);
    assert_eq!(r.vservers["web1"].context, 1001);
    assert_eq!(r.invalid.iter().collect::<Vec<_>>(), ["aaa"]);
}

#[test]
fn depends_on_missing_vservers_and_cycles_are_refused() {
    let d = Dir::with(&[
        ("app.toml", "depends = [\"db\", \"zz\"]\n"),
        ("db.toml", ""),
        ("x.toml", "depends = [\"y\"]\n"),
        ("y.toml", "depends = [\"db\", \"z\"]\n"),
        ("z.toml", "depends = [\"x\"]\n"),
        ("me.toml", "depends = [\"me\"]\n"),
    ]);
    let r = d.load();
    assert_diags(
        &d,
        &r,
        &[
            "app.toml:1:18: error: `app` depends on `zz`, which does not exist",
            "me.toml:1:12: error: dependency cycle: `me` depends on itself",
            "x.toml:1:12: error: dependency cycle: x -> y -> z -> x",
            "y.toml:1:18: error: dependency cycle: y -> z -> x -> y",
            "z.toml:1:12: error: dependency cycle: z -> x -> y -> z",
        ],
    );
    assert_eq!(r.vservers.keys().collect::<Vec<_>>(), ["db"]);
}

#[test]
fn vserver_names_follow_the_rules() {
    let long = "n".repeat(65);
    let ok64 = "n".repeat(64);
    let d = Dir::with(&[
        (&format!("{long}.toml"), ""),
        (&format!("{ok64}.toml"), ""),
        (".hidden.toml", ""),
        ("we$b.toml", ""),
        ("web-1_x.y.toml", ""),
        ("notes.txt", "not = toml = at all"),
        ("web.toml.sample", "garbage ="),
    ]);
    let r = d.load();
    assert_diags(
        &d,
        &r,
        &[
            ".hidden.toml:1:1: error: invalid vserver name \".hidden\": starts with '.'",
            &format!("{long}.toml:1:1: error: invalid vserver name \"{long}\": longer than 64 characters"),
            "we$b.toml:1:1: error: invalid vserver name \"we$b\"",
        ],
    );
    assert_eq!(r.vservers.keys().collect::<Vec<_>>(), [&ok64, "web-1_x.y"]);
    assert_eq!(r.invalid.len(), 3);
}

#[test]
fn host_network_warns_and_macvlan_needs_a_device() {
    let d = Dir::with(&[
        ("h.toml", "[network]\nmode = \"host\"\naddresses = [\"192.0.2.1/24\"]\n"),
        ("m.toml", "[network]\nmode = \"macvlan\"\n"),
    ]);
    let r = d.load();
    assert_diags(
        &d,
        &r,
        &[
            "h.toml:2:8: warning: network mode \"host\" is not isolated",
            "h.toml:3:13: warning: `network.addresses` is ignored with mode \"host\"",
            "m.toml:2:8: error: network mode \"macvlan\" needs `network.device`",
            "m.toml:2:8: warning: network mode \"macvlan\" without `network.addresses`",
        ],
    );
    assert_eq!(r.vservers["h"].network.mode, NetworkMode::Host);
    assert!(r.invalid.contains("m"));
}

#[test]
fn sizes_and_signals_in_files() {
    let d = Dir::with(&[(
        "a.toml",
        "[init]\nstop_signal = \"PWR\"\n[limits]\nmemory = 536870912\nmemory_swap = \"512M\"\ndisk = \"1.5G\"\nas = \"unlimited\"\n",
    )]);
    let r = d.load();
    assert_diags(&d, &r, &[]);
    let a = &r.vservers["a"];
    assert_eq!(a.init.stop_signal, Some(30));
    assert_eq!(a.limits.memory, a.limits.memory_swap);
    assert_eq!(a.limits.disk, Some(3 << 29));
    assert_eq!(a.limits.rlimits, [Rlimit { resource: Resource::As, soft: u64::MAX, hard: u64::MAX }]);
}

#[test]
fn launch_plan_from_config() {
    let d = Dir::with(&[(
        "web1.toml",
        "nice = 2\nflags = [\"lock\"]\n[capabilities]\nadd = [\"cap_net_raw\"]\n[init]\nenv = { A = \"b\" }\n[[mounts]]\nsource = \"/srv\"\ntarget = \"/srv\"\n",
    )]);
    let r = d.load();
    assert_diags(&d, &r, &[]);
    let plan = r.vservers["web1"].launch_plan(Path::new("/tmp/run"));
    assert_eq!(plan.name, "web1");
    assert_eq!(plan.root.as_deref(), Some(Path::new("/srv/vs/web1")));
    assert_eq!(plan.hostname.as_deref(), Some("web1"));
    assert_eq!(plan.context, 1000);
    assert_eq!(
        plan.init,
        Init::Rc {
            start: vec!["/etc/init.d/rc".into(), "3".into()],
            stop: Some(vec!["/etc/init.d/rc".into(), "0".into()]),
            exit_with_start: false
        }
    );
    assert!(plan.caps.contains(Capability::parse("NET_RAW").unwrap()));
    assert!(plan.flags.lock);
    assert_eq!(plan.nice, Some(2));
    assert_eq!(plan.env, [("A".to_string(), "b".to_string())]);
    assert_eq!(plan.network, Network::None);
    assert_eq!(plan.mounts.len(), 1);
    assert_eq!(plan.run_dir, Path::new("/tmp/run"));

    let d = Dir::with(&[("w.toml", "flags = [\"fakeinit\"]\n[network]\nmode = \"host\"\n")]);
    let plan = d.load().vservers["w"].launch_plan(Path::new("/run/vservers"));
    assert_eq!(plan.init, Init::Fake { argv: vec!["/sbin/init".into()] });
    assert_eq!(plan.network, Network::Host);
}

#[test]
fn load_one_keeps_what_concerns_the_name() {
    let d = Dir::with(&[("a.toml", "nice = 99\n"), ("b.toml", "nice = 1\n"), ("c.toml", "depends = [\"a\"]\n")]);
    let r = config::load_one(&d.0, "b", &opts());
    assert_diags(&d, &r, &[]);
    assert_eq!(r.vservers.keys().collect::<Vec<_>>(), ["b"]);
    let r = config::load_one(&d.0, "a", &opts());
    assert_diags(&d, &r, &["a.toml:1:8: error: `nice` must be from -20 to 19"]);
    assert!(r.vservers.is_empty() && r.invalid.contains("a"));
    let r = config::load_one(&d.0, "nope", &opts());
    assert_diags(&d, &r, &["nope.toml:1:1: error: no such vserver: nope"]);
    let r = config::load_one(&d.0, ".bad", &opts());
    assert_diags(&d, &r, &[".bad.toml:1:1: error: invalid vserver name"]);
}

#[test]
fn a_missing_directory_is_an_error() {
    let r = config::load_dir(Path::new("/nonexistent/vservers"), &opts());
    assert!(r.has_errors());
    assert!(r.diagnostics[0]
        .to_string()
        .starts_with("/nonexistent/vservers:1:1: error: cannot read the config directory"));
}

#[test]
fn template_makes_a_unified_root_and_is_checked() {
    let d = Dir::with(&[
        ("u.toml", "template = \"base\"\n"),
        ("r.toml", "root = \"/data/r\"\ntemplate = \"base\"\n"),
        ("bad.toml", "template = \"../etc\"\n"),
    ]);
    let r = d.load();
    assert_diags(&d, &r, &["bad.toml:1:12: error: `template`: "]);
    let def = Dir::with(&[("defaults.toml", "template = \"base\"\n")]);
    let dr = def.load();
    assert_diags(&def, &dr, &["defaults.toml:1:12: error: `template` cannot be set in defaults.toml"]);
    let u = &r.vservers["u"];
    assert_eq!(u.root, Path::new("/srv/vs/u/root"));
    let un = u.unified.as_ref().unwrap();
    assert_eq!((un.template.as_str(), un.lower.as_path()), ("base", Path::new("/srv/vs/.templates/base")));
    assert_eq!((un.upper.as_path(), un.work.as_path()), (Path::new("/srv/vs/u/upper"), Path::new("/srv/vs/u/work")));
    let plan = u.launch_plan(Path::new("/run/vservers"));
    let o = plan.overlay.unwrap();
    assert_eq!((o.lower, o.upper), (un.lower.clone(), un.upper.clone()));
    assert_eq!(r.vservers["r"].root, Path::new("/data/r/root"));
    let mut opts = opts();
    opts.template_dir = Some(PathBuf::from("/tpl"));
    let r = config::load_dir(&d.0, &opts);
    assert_eq!(r.vservers["u"].unified.as_ref().unwrap().lower, Path::new("/tpl/base"));
    assert!(r.vservers["u"].launch_plan(Path::new("/run")).overlay.is_some());
    // A plain vserver has no overlay.
    let p = Dir::with(&[("p.toml", "")]);
    let r = p.load();
    assert!(r.vservers["p"].unified.is_none() && r.vservers["p"].launch_plan(Path::new("/run")).overlay.is_none());
}
