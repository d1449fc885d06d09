//! Names and object paths.

/// The well-known bus name (major version 1).
pub const BUS_NAME: &str = "org.vserverd.VServer1";
/// The manager object.
pub const MANAGER_PATH: &str = "/org/vserverd/VServer1";
pub const MANAGER_INTERFACE: &str = "org.vserverd.VServer1.Manager";
/// One object per vserver, under `MANAGER_PATH/vserver/`.
pub const VSERVER_INTERFACE: &str = "org.vserverd.VServer1.VServer";

/// Escapes a vserver name into one object path element: every byte outside `[A-Za-z0-9]`
/// becomes `_xx` (two lowercase hex digits), as systemd does; the empty name becomes `_`.
pub fn escape_path_component(name: &str) -> String {
    if name.is_empty() {
        return "_".into();
    }
    let mut out = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out
}

/// The inverse of [`escape_path_component`]; `None` for an element it cannot have produced
/// (so that one name has one element and one element one name).
pub fn unescape_path_component(elem: &str) -> Option<String> {
    match elem {
        "" => return None,
        "_" => return Some(String::new()),
        _ => {}
    }
    let bytes = elem.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            // Two lowercase hex digits of a byte that is escaped.
            let hex = elem.get(i + 1..i + 3)?;
            if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return None;
            }
            let b = u8::from_str_radix(hex, 16).ok()?;
            if b.is_ascii_alphanumeric() {
                return None;
            }
            out.push(b);
            i += 3;
        } else if bytes[i].is_ascii_alphanumeric() {
            out.push(bytes[i]);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

/// The object path of vserver `name`.
pub fn vserver_path(name: &str) -> String {
    format!("{MANAGER_PATH}/vserver/{}", escape_path_component(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_and_is_a_valid_path_element() {
        for name in ["web1", "db-2", "a.b_c", "x", "", "Ünïcode"] {
            let e = escape_path_component(name);
            assert!(e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{e}");
            assert_eq!(unescape_path_component(&e).as_deref(), Some(name));
        }
        assert_eq!(escape_path_component("web-1.x"), "web_2d1_2ex");
        assert_eq!(vserver_path("a_b"), "/org/vserverd/VServer1/vserver/a_5fb");
        assert_eq!(unescape_path_component("bad_zz"), None);
    }

    /// Found by the fuzz target `names`: elements that escaping never makes were read as names
    /// (`_41` as `A`, `_2F` as `/`, the empty element as the empty name), so that two object
    /// paths named one vserver.
    #[test]
    fn only_the_elements_escaping_makes_are_read() {
        for elem in ["", "_41", "a_30", "_2F", "_+1", "_-1"] {
            assert_eq!(unescape_path_component(elem), None, "{elem:?}");
        }
        assert_eq!(unescape_path_component("_2f").as_deref(), Some("/"));
        assert_eq!(unescape_path_component("_").as_deref(), Some(""));
    }
}
