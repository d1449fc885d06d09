//! Changes to a vserver's own file made for the admin (`vserverctl enable`/`disable`): one
//! top-level key set, every comment, blank line and other key kept as written, the file
//! replaced at once (a temporary file beside it, renamed over it, with the old one's mode).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{path}: {err}")]
    Read { path: PathBuf, err: std::io::Error },
    #[error("{path}: not valid TOML, left as it is: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: cannot write it: {err}")]
    Write { path: PathBuf, err: std::io::Error },
}

/// Sets `onboot = VALUE` at the top level of `file`; says whether the file changed.
pub fn set_onboot(file: &Path, value: bool) -> Result<bool, EditError> {
    let text = fs::read_to_string(file).map_err(|err| EditError::Read { path: file.to_path_buf(), err })?;
    let Some(new) = with_onboot(&text, value).map_err(|message| EditError::Parse { path: file.to_path_buf(), message })? else {
        return Ok(false);
    };
    replace(file, &new).map_err(|err| EditError::Write { path: file.to_path_buf(), err })?;
    Ok(true)
}

/// The text with `onboot = VALUE` (added after the last top-level key when missing), or `None`
/// when it says so already.
fn with_onboot(text: &str, value: bool) -> Result<Option<String>, String> {
    let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| e.message().replace('\n', " "))?;
    if doc.get("onboot").and_then(|v| v.as_bool()) == Some(value) {
        return Ok(None);
    }
    match doc.get_mut("onboot").and_then(|i| i.as_value_mut()) {
        // The value replaced, its comments and spacing kept.
        Some(v) => {
            let decor = v.decor().clone();
            *v = toml_edit::Value::from(value);
            *v.decor_mut() = decor;
        }
        None => {
            doc.insert("onboot", toml_edit::value(value));
        }
    }
    Ok(Some(doc.to_string()))
}

fn replace(file: &Path, text: &str) -> std::io::Result<()> {
    let mode = fs::metadata(file)?.permissions().mode() & 0o7777;
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = file.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut f = fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, file)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_changes_and_nothing_else() {
        let text = "# web1: the shop\ncontext = 5\nonboot = false   # not yet\n\n[init]\n# rc\ncommand = [\"/etc/init.d/rc\", \"3\"]\n";
        let new = with_onboot(text, true).unwrap().unwrap();
        assert_eq!(new, text.replace("onboot = false   # not yet", "onboot = true   # not yet"));
        assert_eq!(with_onboot(&new, true).unwrap(), None, "said so already");
    }

    #[test]
    fn a_missing_key_goes_with_the_top_level_keys() {
        let text = "context = 5\n\n[init]\ncommand = [\"/bin/true\"]\n";
        let new = with_onboot(text, true).unwrap().unwrap();
        let parsed: toml::Table = new.parse().unwrap();
        assert_eq!(parsed["onboot"].as_bool(), Some(true));
        assert_eq!(parsed["init"]["command"][0].as_str(), Some("/bin/true"));
        assert!(new.find("onboot").unwrap() < new.find("[init]").unwrap(), "{new}");
        assert_eq!(with_onboot(text, false).unwrap().unwrap().parse::<toml::Table>().unwrap()["onboot"].as_bool(), Some(false));
    }

    #[test]
    fn an_invalid_file_is_left_alone() {
        let dir = std::env::temp_dir().join(format!("vserver-edit-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("web1.toml");
        fs::write(&file, "context = = 5\n").unwrap();
        let e = set_onboot(&file, true).unwrap_err();
        assert!(matches!(e, EditError::Parse { .. }) && e.to_string().starts_with(&file.display().to_string()), "{e}");
        assert_eq!(fs::read_to_string(&file).unwrap(), "context = = 5\n");
        // A valid one changes, keeps its mode, and leaves no temporary file.
        fs::write(&file, "context = 5\n").unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(set_onboot(&file, true).unwrap());
        assert!(!set_onboot(&file, true).unwrap());
        assert_eq!(fs::read_to_string(&file).unwrap(), "context = 5\nonboot = true\n");
        assert_eq!(fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
