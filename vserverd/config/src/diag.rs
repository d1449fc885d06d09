//! Diagnostics: every problem found in the config files, as `path:line:col: error: message`.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// How bad a [`Diagnostic`] is: an error makes its vserver invalid, a warning does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem, at a 1-based line and column (in characters) of one file. Problems with a whole
/// file (unreadable, bad name) are reported at `1:1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
    pub severity: Severity,
    pub message: String,
}

impl Diagnostic {
    /// The message is kept on one line: a line break or another control character in it (a
    /// name quoted from the file) is written escaped, as `\n`.
    pub fn new(path: &Path, line: usize, col: usize, severity: Severity, message: impl Into<String>) -> Self {
        Diagnostic { path: path.to_path_buf(), line, col, severity, message: one_line(message.into()) }
    }

    /// An error about a whole file, at `1:1`.
    pub fn file_error(path: &Path, message: impl Into<String>) -> Self {
        Diagnostic::new(path, 1, 1, Severity::Error, message)
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = one_line(self.path.display().to_string());
        write!(f, "{path}:{}:{}: {}: {}", self.line, self.col, self.severity, self.message)
    }
}

/// `message` with its control characters and line separators escaped.
fn one_line(message: String) -> String {
    let breaks = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !message.contains(breaks) {
        return message;
    }
    message.chars().map(|c| if breaks(c) { c.escape_debug().to_string() } else { c.to_string() }).collect()
}

/// Where a value was written: a file, a 1-based line and column (for diagnostics made after
/// loading, such as the checks against the host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub path: PathBuf,
    pub line: usize,
    pub col: usize,
}

impl Place {
    pub fn diagnostic(&self, severity: Severity, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(&self.path, self.line, self.col, severity, message)
    }
}

/// The text of one loaded file, kept to turn byte offsets into line and column.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    /// 1-based line and column (in characters) of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &self.text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (before.matches('\n').count() + 1, before[line_start..].chars().count() + 1)
    }
}

/// Where a value is: a file (an index into the loader's sources) and a byte range in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loc {
    pub file: usize,
    pub span: Range<usize>,
}

/// Collects diagnostics against the loaded sources.
pub(crate) struct Sink<'a> {
    pub sources: &'a [Source],
    pub list: Vec<Diagnostic>,
}

impl<'a> Sink<'a> {
    pub fn new(sources: &'a [Source]) -> Self {
        Sink { sources, list: Vec::new() }
    }

    pub fn at(&mut self, loc: &Loc, severity: Severity, message: impl Into<String>) {
        let src = &self.sources[loc.file];
        let (line, col) = src.position(loc.span.start);
        self.list.push(Diagnostic::new(&src.path, line, col, severity, message));
    }

    pub fn error(&mut self, loc: &Loc, message: impl Into<String>) {
        self.at(loc, Severity::Error, message)
    }

    pub fn warning(&mut self, loc: &Loc, message: impl Into<String>) {
        self.at(loc, Severity::Warning, message)
    }

    /// `path:line:col` of a location, for messages that refer to another place.
    pub fn describe(&self, loc: &Loc) -> String {
        let src = &self.sources[loc.file];
        let (line, col) = src.position(loc.span.start);
        format!("{}:{line}:{col}", src.path.display())
    }

    /// The file, line and column of a location.
    pub fn place(&self, loc: &Loc) -> Place {
        let src = &self.sources[loc.file];
        let (line, col) = src.position(loc.span.start);
        Place { path: src.path.clone(), line, col }
    }

    pub fn error_count(&self) -> usize {
        self.list.iter().filter(|d| d.is_error()).count()
    }
}
