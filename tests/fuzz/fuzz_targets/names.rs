//! Vserver names (`check_name`, the rule for `NAME.toml`), host names, and the escaping of a
//! name into a D-Bus object path element and back (`escape_path_component`,
//! `unescape_path_component`): a D-Bus caller gives any string as a name, and any path.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vserver_api::{escape_path_component, unescape_path_component, vserver_path};
use vserver_config::values::{check_hostname, check_name};
use zbus::wire::ObjectPath;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let s = text.as_ref();

    match check_name(s) {
        Ok(()) => {
            assert!((1..=64).contains(&s.len()) && !s.starts_with('.') && s != "defaults", "{s:?}");
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{s:?}");
            // A name is one path element under every directory it is joined to, never `..`.
            let base = Path::new("/run/vservers");
            let joined = base.join(s);
            assert_eq!(joined.parent(), Some(base), "{s:?}");
            assert_eq!(joined.file_name().and_then(|n| n.to_str()), Some(s));
            let file = Path::new("/etc/vservers").join(format!("{s}.toml"));
            assert_eq!(file.parent(), Some(Path::new("/etc/vservers")), "{s:?}");
        }
        Err(e) => assert!(vserver_fuzz::one_line(&e.to_string()), "{e}"),
    }
    if check_hostname(s).is_ok() {
        assert!((1..=64).contains(&s.len()), "{s:?}");
        assert!(s.split('.').all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-')), "{s:?}");
    }

    // Escaping: any string gives one valid object path element, and comes back whole.
    let e = escape_path_component(s);
    assert!(!e.is_empty() && e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{e:?}");
    assert_eq!(unescape_path_component(&e).as_deref(), Some(s));
    let path = vserver_path(s);
    assert!(ObjectPath::try_from(path.as_str()).is_ok(), "{path:?}");
    assert_eq!(path.rsplit('/').next(), Some(e.as_str()));
    // Two names, two paths.
    let other = format!("{s}_");
    assert_ne!(escape_path_component(&other), e);

    // Unescaping takes only what escaping makes: one element per name, one name per element.
    if let Some(u) = unescape_path_component(s) {
        assert_eq!(escape_path_component(&u), s, "{s:?} is not the element of {u:?}");
    }
});
