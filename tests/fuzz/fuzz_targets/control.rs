//! The control socket inside each vserver (`/run/vserver/control`): root inside writes any
//! bytes; the daemon reads one request line and answers one line (`control::request_line`,
//! `control::answer`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use vserver_api::State;
use vserverd::daemon::control::{answer, request_line, Asker, Request, MAX_REQUEST};

const STATES: [State; 6] = [State::Stopped, State::Starting, State::Booting, State::Running, State::Stopping, State::Failed];

fuzz_target!(|data: &[u8]| {
    let line = request_line(data);
    // Nothing past the limit is looked at.
    assert_eq!(line, request_line(&data[..data.len().min(MAX_REQUEST)]));
    let Some(line) = line else {
        assert!(data.is_empty() || std::str::from_utf8(&data[..data.len().min(MAX_REQUEST)].split(|b| *b == b'\n').next().unwrap()).is_err());
        return;
    };
    assert!(line.len() <= MAX_REQUEST && !line.contains('\n'));
    assert_eq!(line, line.trim());
    let request = Request::parse(line);
    for state in STATES {
        let asker = Asker { name: "web1", state, context: 1001, restarts: 3 };
        let (text, act) = answer(line, &asker);
        // One line, `ok …` or `error …`, whatever was asked.
        assert!(text.ends_with('\n') && text.matches('\n').count() == 1, "{text:?}");
        assert!(vserver_fuzz::one_line(text.trim_end_matches('\n')), "{text:?}");
        assert!(text.starts_with("ok ") || text.starts_with("error "), "{text:?}");
        assert!(text.len() <= 128, "{text:?}");
        // Only reboot and halt of a running vserver act, and only after `ok`.
        match act {
            Some(a) => {
                assert!(text.starts_with("ok "), "{text:?}");
                assert_eq!(state, State::Running);
                assert_eq!(Some(a), request);
                assert!(matches!(a, Request::Reboot | Request::Halt));
            }
            None => assert!(!matches!(request, Some(Request::Reboot | Request::Halt)) || state != State::Running),
        }
        if request.is_none() {
            assert_eq!(text, "error unknown request (reboot, halt or status)\n");
        }
    }
});
