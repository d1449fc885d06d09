//! Output: aligned tables (header and footer unless `--no-legend`), `Key: value` blocks, JSON.

use std::io::Write;

/// How the user asked for output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Format {
    pub json: bool,
    pub legend: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A table of text cells: columns as wide as their widest cell (header included), two spaces
/// apart, no trailing blanks.
#[derive(Debug, Clone)]
pub struct Table {
    headers: Vec<&'static str>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
    footer: Option<String>,
}

impl Table {
    pub fn new(columns: &[(&'static str, Align)]) -> Table {
        Table {
            headers: columns.iter().map(|c| c.0).collect(),
            align: columns.iter().map(|c| c.1).collect(),
            rows: Vec::new(),
            footer: None,
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        assert_eq!(cells.len(), self.headers.len(), "a row needs one cell per column");
        self.rows.push(cells);
    }

    /// A line printed after the rows (with a blank line before it), legend only.
    pub fn footer(&mut self, text: impl Into<String>) {
        self.footer = Some(text.into());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as text; with `legend` the header line and the footer are included.
    pub fn render(&self, legend: bool) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = vec![0; self.headers.len()];
        let header_row: Vec<String> = self.headers.iter().map(|h| h.to_string()).collect();
        let lines: Vec<&Vec<String>> = legend.then_some(&header_row).into_iter().chain(self.rows.iter()).collect();
        for row in &lines {
            for (w, cell) in widths.iter_mut().zip(row.iter()) {
                *w = (*w).max(width(cell));
            }
        }
        let mut out = String::new();
        for row in &lines {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = " ".repeat(widths[i] - width(cell));
                match self.align[i] {
                    Align::Left => {
                        line.push_str(cell);
                        line.push_str(&pad);
                    }
                    Align::Right => {
                        line.push_str(&pad);
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        if legend {
            if let Some(f) = &self.footer {
                if !self.rows.is_empty() {
                    out.push('\n');
                }
                out.push_str(f);
                out.push('\n');
            }
        }
        out
    }
}

/// `Key: value` lines with the values aligned one column after the longest key.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let w = pairs.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let line = format!("{:<w$} {v}", format!("{k}:"), w = w + 1);
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `--json=short`: one line per document instead of indented JSON. Set once, from the command
/// line, before any output.
static JSON_SHORT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_json_short(short: bool) {
    JSON_SHORT.store(short, std::sync::atomic::Ordering::Relaxed);
}

/// JSON with a final newline: indented (`--json`, `--json=pretty`), or on one line
/// (`--json=short`).
pub fn json_string<T: serde::Serialize + ?Sized>(value: &T) -> String {
    let mut s = if JSON_SHORT.load(std::sync::atomic::Ordering::Relaxed) {
        serde_json::to_string(value)
    } else {
        serde_json::to_string_pretty(value)
    }
    .expect("JSON of plain data");
    s.push('\n');
    s
}

/// Writes text to standard output. A closed pipe (`vserverctl list | head -1`) is not an error.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("vserverctl: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// A list of strings for a table cell: comma-separated, `-` when empty.
pub fn join_or_dash(items: &[String], sep: &str) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        items.join(sep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Table {
        let mut t = Table::new(&[("NAME", Align::Left), ("CONTEXT", Align::Right), ("ADDRESSES", Align::Left)]);
        t.row(vec!["web1".into(), "1001".into(), "192.0.2.10/24".into()]);
        t.row(vec!["database".into(), "7".into(), "-".into()]);
        t.footer("2 vservers listed.");
        t
    }

    #[test]
    fn aligned_with_legend() {
        let expected = "\
NAME      CONTEXT  ADDRESSES
web1         1001  192.0.2.10/24
database        7  -

2 vservers listed.
";
        assert_eq!(sample().render(true), expected);
    }

    #[test]
    fn no_legend_drops_header_and_footer_and_narrows() {
        let expected = "\
web1      1001  192.0.2.10/24
database     7  -
";
        assert_eq!(sample().render(false), expected);
    }

    #[test]
    fn empty_table() {
        let mut t = Table::new(&[("NAME", Align::Left), ("STATE", Align::Left)]);
        assert_eq!(t.render(false), "");
        assert_eq!(t.render(true), "NAME  STATE\n");
        t.footer("0 vservers listed.");
        assert_eq!(t.render(true), "NAME  STATE\n0 vservers listed.\n");
        assert!(t.is_empty());
    }

    #[test]
    fn wide_characters_count_once_and_no_trailing_blanks() {
        let mut t = Table::new(&[("A", Align::Left), ("B", Align::Left)]);
        t.row(vec!["Ünï".into(), "".into()]);
        t.row(vec!["x".into(), "y".into()]);
        assert_eq!(t.render(true), "A    B\nÜnï\nx    y\n");
    }

    #[test]
    fn key_value_block() {
        let s = key_values(&[
            ("Name", "web1".into()),
            ("RootDirectory", "/var/lib/vservers/web1".into()),
            ("LastExit", "".into()),
        ]);
        assert_eq!(s, "Name:          web1\nRootDirectory: /var/lib/vservers/web1\nLastExit:\n");
    }

    #[test]
    fn joins() {
        assert_eq!(join_or_dash(&[], ","), "-");
        assert_eq!(join_or_dash(&["a".into(), "b".into()], ","), "a,b");
    }
}
