//! `vserverctl generate completions SHELL [DIR]` and `vserverctl generate man DIR`: shell
//! completions and man pages (one per subcommand), both from the clap definition.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;
use crate::error::{exit, CtlError};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, clap::Subcommand)]
pub enum What {
    /// Shell completions, written into DIR (as the shell names the file) or to standard output.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
        /// The directory to write into (default: standard output).
        #[arg(value_hint = clap::ValueHint::DirPath)]
        dir: Option<PathBuf>,
    },
    /// Man pages, vserverctl.1 and one vserverctl-VERB.1 per verb, written into DIR.
    Man {
        /// The directory to write into (created if missing).
        #[arg(value_hint = clap::ValueHint::DirPath)]
        dir: PathBuf,
    },
}

const BIN: &str = "vserverctl";

/// Writes the completions of `shell` into `dir`; returns the file written.
pub fn completions_to(shell: Shell, dir: &Path) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    clap_complete::generate_to(shell, &mut Cli::command(), BIN, dir)
}

/// The main page's own sections, after the generated ones: the exit codes as a list, and the
/// pages of the rest of the project.
const MAIN_PAGE_END: &str = r#".SH "EXIT STATUS"
.TP
.B 0
Success (\fBstatus\fR: the vserver is running).
.TP
.B 1
Failure; \fBrunning\fR: not running; \fBcheck\fR: an invalid configuration.
.TP
.B 2
Wrong usage.
.TP
.B 3
\fBstatus\fR: a vserver is not running.
.TP
.B 4
\fBstatus\fR: no such vserver.
.SH "SEE ALSO"
.BR vserverd (8),
.BR vserver.toml (5),
.BR chcontext (8),
.BR reducecap (8),
.BR chbind (8),
.BR machinectl (1)
"#;

/// Writes the man pages into `dir`; returns the files written, the main page first.
pub fn man_pages_to(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    fn walk(cmd: &clap::Command, dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let man = clap_mangen::Man::new(cmd.clone());
        if cmd.get_name() == BIN {
            // The generated page, its EXTRA section (the --help text of the exit codes) replaced
            // by sections of their own.
            let mut page = Vec::new();
            man.render(&mut page)?;
            let page = String::from_utf8_lossy(&page).into_owned();
            let page = match (page.find(".SH EXTRA\n"), page.find(".SH VERSION\n")) {
                (Some(extra), Some(version)) if extra < version => format!("{}{MAIN_PAGE_END}{}", &page[..extra], &page[version..]),
                _ => page + MAIN_PAGE_END,
            };
            let path = dir.join(man.get_filename());
            std::fs::write(&path, page)?;
            out.push(path);
        } else {
            out.push(man.generate_to(dir)?);
        }
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, dir, out)?;
        }
        Ok(())
    }
    std::fs::create_dir_all(dir)?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    walk(&cmd, dir, &mut written)?;
    Ok(written)
}

pub fn run(args: &Args) -> Result<u8, CtlError> {
    let written = match &args.what {
        What::Completions { shell, dir: None } => {
            let mut out = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), BIN, &mut out);
            crate::output::print(&String::from_utf8_lossy(&out));
            return Ok(exit::OK);
        }
        What::Completions { shell, dir: Some(dir) } => completions_to(*shell, dir)
            .map(|p| vec![p])
            .map_err(|e| CtlError::io(format!("cannot write {shell} completions into {}", dir.display()), e))?,
        What::Man { dir } => {
            man_pages_to(dir).map_err(|e| CtlError::io(format!("cannot write man pages into {}", dir.display()), e))?
        }
    };
    let mut out = std::io::stdout().lock();
    for p in written {
        let _ = writeln!(out, "{}", p.display());
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("vserverctl-gen-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        p
    }

    #[test]
    fn man_page_per_verb() {
        let dir = tmp("man");
        let written = man_pages_to(&dir).unwrap();
        let names: Vec<String> =
            written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        for verb in [
            "",
            "-list",
            "-status",
            "-start",
            "-stop",
            "-restart",
            "-kill",
            "-running",
            "-check",
            "-reload",
            "-logs",
            "-generate",
        ] {
            assert!(names.contains(&format!("vserverctl{verb}.1")), "{verb}: {names:?}");
        }
        let kill = std::fs::read_to_string(dir.join("vserverctl-kill.1")).unwrap();
        assert!(kill.contains("whom"), "{kill}");
        let main = std::fs::read_to_string(dir.join("vserverctl.1")).unwrap();
        assert!(main.contains(".SH \"EXIT STATUS\"") && main.contains(".SH \"SEE ALSO\""), "{main}");
        assert!(!main.contains(".SH EXTRA") && main.contains(".SH VERSION"), "{main}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn completions_for_each_shell() {
        let dir = tmp("comp");
        for (shell, file) in
            [(Shell::Bash, "vserverctl.bash"), (Shell::Zsh, "_vserverctl"), (Shell::Fish, "vserverctl.fish")]
        {
            let p = completions_to(shell, &dir).unwrap();
            assert_eq!(p.file_name().unwrap(), file);
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(text.contains("onboot") && text.contains("no-legend"), "{shell}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
