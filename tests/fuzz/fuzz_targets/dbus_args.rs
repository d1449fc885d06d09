//! The checks the daemon applies to D-Bus method arguments before it acts (`dbus::args`):
//! signal numbers of `Kill`, `KillVServer` and `KillProcess`, `whom`, process ids, the
//! `EnterVServer` request, and the error for an unknown vserver name. A caller sends any
//! values; every refusal is `InvalidArgs` (or `NoSuchVServer`) with a one-line message.
#![no_main]

use std::path::{Path, PathBuf};

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use vserver_api::VServerError;
use vserver_engine::enter::{EnterSpec, WinSize};
use vserverd::daemon::dbus::args::{self, Whom};
use vserverd::daemon::enter::Request;
use vserver_fuzz::one_line;

#[derive(Debug, Arbitrary)]
struct Call {
    signal: i32,
    pid: u32,
    whom: String,
    name: String,
    user: String,
    command: Vec<String>,
    tty: bool,
    term: String,
    rows: u16,
    columns: u16,
}

fn refused_with_one_line<T>(r: &Result<T, VServerError>) {
    if let Err(e) = r {
        assert!(matches!(e, VServerError::InvalidArgs(_)), "{e:?}");
        assert!(one_line(&e.message()), "{e:?}");
    }
}

fuzz_target!(|call: Call| {
    // Signals: the contract's set, the same as the configuration's `init.stop_signal`.
    let signal = args::signal(call.signal);
    refused_with_one_line(&signal);
    let expected = (1..=31).contains(&call.signal) || (34..=64).contains(&call.signal);
    assert_eq!(signal.is_ok(), expected, "{}", call.signal);
    let by_config = vserver_config::values::parse_signal(&call.signal.to_string());
    assert_eq!(signal.as_ref().ok(), by_config.as_ref().ok());
    if let Ok(n) = signal {
        assert_eq!(vserver_config::values::parse_signal(&vserver_api::signal::name(n)), Ok(n));
    }

    let whom = Whom::parse(&call.whom);
    refused_with_one_line(&whom);
    if let Ok(w) = whom {
        assert_eq!(w.as_str(), call.whom);
    }

    let pid = args::pid(call.pid);
    refused_with_one_line(&pid);
    if let Ok(p) = pid {
        assert!(p > 0 && p as u32 == call.pid);
    }

    let req = Request {
        user: call.user.clone(),
        argv: call.command.clone(),
        tty: call.tty,
        term: call.term.clone(),
        size: WinSize { rows: call.rows, cols: call.columns },
    };
    let checked = args::enter_request(&req);
    refused_with_one_line(&checked);
    if let Ok(term) = checked {
        assert!(!call.user.contains(['\0', ':', '\n']));
        assert!(call.command.iter().all(|a| !a.contains('\0')));
        assert!(vserver_engine::enter::valid_term(&term));
        assert!(call.term.is_empty() || term == call.term);
        // What the daemon sends its enter helper reads back the same.
        let spec = EnterSpec {
            run_dir: PathBuf::from("/run/vservers"),
            context: 1001,
            argv: req.argv.clone(),
            user: (!req.user.is_empty()).then(|| req.user.clone()),
            tty: req.tty.then_some(req.size),
            term,
        };
        let body = serde_json::to_vec(&spec).expect("spec serializes");
        assert_eq!(serde_json::from_slice::<EnterSpec>(&body).expect("spec reads back"), spec);
    }

    let unknown = args::no_such_vserver(Path::new("/etc/vservers"), &call.name);
    assert!(matches!(unknown, VServerError::NoSuchVServer(_)));
    let message = unknown.message();
    assert!(one_line(&message), "{message:?}");
    // An invalid name is refused as such, never looked up as a file (the name itself may
    // contain anything, ".toml" included, so the message is checked by its shape).
    if vserver_config::values::check_name(&call.name).is_err() {
        let why = vserver_config::values::check_name(&call.name).unwrap_err();
        assert_eq!(message, format!("no vserver named {:?}: {why}", call.name));
    }
});
