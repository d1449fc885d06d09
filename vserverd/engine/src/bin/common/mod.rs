//! What the paper's tools (`chcontext`, `chbind`, `reducecap`) share on their command line:
//! `OPTIONS... [--] CMD [ARGS]`, `-h`/`--help`, and usage errors (the tool's `die`, exit 2).

#![allow(dead_code)] // each tool uses a part

use std::process::exit;

pub struct Args {
    /// The tool's own `die`: its name and the message on stderr, then the exit.
    die: fn(&str, i32) -> !,
    usage: &'static str,
    it: std::vec::IntoIter<String>,
    cmd: Vec<String>,
}

impl Args {
    /// The process's arguments, for a tool with `usage` that ends through `die`.
    pub fn new(usage: &'static str, die: fn(&str, i32) -> !) -> Args {
        Args { die, usage, it: std::env::args().skip(1).collect::<Vec<_>>().into_iter(), cmd: Vec::new() }
    }

    fn die(&self, msg: &str) -> ! {
        (self.die)(msg, 2)
    }

    /// The next option; `None` once the command begins (after `--`, or at the first word that is
    /// no option). `-h` and `--help` print the usage and exit 0.
    pub fn option(&mut self) -> Option<String> {
        let a = self.it.next()?;
        match a.as_str() {
            "-h" | "--help" => {
                println!("{}", self.usage);
                exit(0)
            }
            "--" => {
                self.cmd = self.it.by_ref().collect();
                None
            }
            s if s.starts_with("--") => Some(a),
            _ => {
                self.cmd = std::iter::once(a).chain(self.it.by_ref()).collect();
                None
            }
        }
    }

    /// The value of option `opt`.
    pub fn value(&mut self, opt: &str) -> String {
        match self.it.next() {
            Some(v) => v,
            None => self.die(&format!("{opt} needs a value\n{}", self.usage)),
        }
    }

    /// An option the tool does not know.
    pub fn unknown(&self, opt: &str) -> ! {
        self.die(&format!("unknown option {opt}\n{}", self.usage))
    }

    /// The command and its arguments, empty when none was given.
    pub fn rest(&mut self) -> Vec<String> {
        std::mem::take(&mut self.cmd)
    }

    /// The command and its arguments; an error when there is none.
    pub fn command(&mut self) -> Vec<String> {
        if self.cmd.is_empty() {
            self.die(&format!("no command given\n{}", self.usage));
        }
        std::mem::take(&mut self.cmd)
    }
}
