//! The monitor's reading of a NOTIFY_SOCKET datagram (`readiness::parse`): anything root
//! inside a vserver may send.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vserverd::monitor::readiness::parse;

fuzz_target!(|data: &[u8]| {
    let heard = parse(data);
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    // Ready exactly when one line says READY=1, nothing more, nothing less.
    assert_eq!(heard.ready, lines.iter().any(|l| *l == b"READY=1"));
    // The status is the last STATUS= line's, cut to 256 characters, without control characters.
    let last = lines.iter().rev().find_map(|l| l.strip_prefix(b"STATUS="));
    assert_eq!(heard.status.is_some(), last.is_some());
    if let (Some(status), Some(raw)) = (&heard.status, last) {
        assert!(status.chars().count() <= 256, "{status:?}");
        assert!(!status.chars().any(char::is_control), "{status:?}");
        let clean: String = String::from_utf8_lossy(raw).chars().filter(|c| !c.is_control()).collect();
        assert!(clean.starts_with(status.as_str()));
    }
    // What the monitor logs of it stays on one line.
    assert!(!format!("{heard:?}").contains('\n'));
});
