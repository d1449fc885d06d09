//! Helpers of the fuzz targets (fuzz_targets/*.rs).

/// The files of a config directory written as one text: a line `--- PATH` starts the file PATH
/// (relative to the directory); text before the first such line is `a.toml`. The seeds in
/// corpus/config are written so, and read as they read.
pub fn split_files(text: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    let mut name = "a.toml".to_string();
    let mut body = String::new();
    let mut started = false;
    for line in text.split_inclusive('\n') {
        if let Some(header) = line.strip_prefix("--- ") {
            if started || !body.is_empty() {
                files.push((std::mem::take(&mut name), std::mem::take(&mut body)));
            }
            name = header.trim_end_matches(['\n', '\r']).to_string();
            started = true;
        } else {
            body.push_str(line);
        }
    }
    if started || !body.is_empty() {
        files.push((name, body));
    }
    files
}

/// True when `s` is one line: no line break of any kind.
pub fn one_line(s: &str) -> bool {
    !s.contains(['\n', '\r', '\u{0b}', '\u{0c}', '\u{85}', '\u{2028}', '\u{2029}'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_one_text() {
        assert_eq!(split_files(""), Vec::<(String, String)>::new());
        assert_eq!(split_files("context = 5\n"), [("a.toml".into(), "context = 5\n".into())]);
        assert_eq!(
            split_files("--- web.toml\nnice = 1\n--- defaults.toml\n--- web.toml.d/1.toml\nnice = 2"),
            [
                ("web.toml".into(), "nice = 1\n".into()),
                ("defaults.toml".into(), String::new()),
                ("web.toml.d/1.toml".into(), "nice = 2".into()),
            ]
        );
    }
}
