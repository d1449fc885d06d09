//! The command line, defined once with clap: parsing, `--help`, completions and man pages all
//! come from these types.

use clap::{Parser, Subcommand};

use crate::cmd;

const EXIT_STATUS: &str = "\
Exit status:
  0  success (status: the vserver is running)
  1  failure; `running`: not running; `check`: invalid configuration
  2  wrong usage
  3  status: the vserver is not running
  4  status: no such vserver";

/// Control the virtual servers run by vserverd.
#[derive(Debug, Parser)]
#[command(
    name = "vserverctl",
    version,
    about = "Control the virtual servers run by vserverd",
    long_about = "Control the virtual servers run by vserverd: list them, start, stop, restart \
                  and signal them, check and reload their configuration, read their console logs.\n\n\
                  vserverctl talks to vserverd over the system bus (DBUS_SYSTEM_BUS_ADDRESS, or \
                  --bus-address). Reading is open to every user; changing anything needs root, or polkit's authorization.\n\n\
                  When polkit allows a change only after authentication (auth_admin, auth_self) and standard input \
                  is a terminal, vserverctl lets it ask: the call carries D-Bus's interactive-authorization flag and \
                  pkttyagent (package polkitd), started for the time of the call, asks for the password on the \
                  terminal, as systemctl and machinectl do. --no-ask-password turns that off.",
    after_help = EXIT_STATUS,
    propagate_version = true,
    infer_subcommands = false
)]
pub struct Cli {
    /// Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare
    /// `--json` or `-j`), one line per document (`short`), or text after all (`off`).
    #[arg(
        short = 'j',
        long,
        global = true,
        value_name = "MODE",
        value_enum,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "pretty",
        help_heading = "Global options"
    )]
    pub json: Option<JsonMode>,

    /// Leave out table headers and footers.
    #[arg(long, global = true, help_heading = "Global options")]
    pub no_legend: bool,

    /// Talk to the bus at this D-Bus address instead of the system bus
    /// (for example unix:path=/run/dbus/system_bus_socket).
    #[arg(long, global = true, value_name = "ADDRESS", help_heading = "Global options")]
    pub bus_address: Option<String>,

    /// Do not let polkit ask for a password: a change that polkit allows only after
    /// authentication is refused. Without it, when standard input is a terminal, such a
    /// change asks for one there (through pkttyagent, when installed).
    #[arg(long, global = true, help_heading = "Global options")]
    pub no_ask_password: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// `--json=MODE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum JsonMode {
    Pretty,
    Short,
    Off,
}

impl Cli {
    /// Whether the output is JSON.
    pub fn json(&self) -> bool {
        matches!(self.json, Some(JsonMode::Pretty | JsonMode::Short))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List vservers: name, state, context, leader, addresses, uptime.
    #[command(visible_alias = "ls")]
    List(cmd::list::Args),
    /// Show every property of vservers (exit 0 all running, 3 one is not, 4 one does not exist).
    Status(cmd::status::Args),
    /// The vserver object's D-Bus properties as Key=value lines, for scripts (-p, --value).
    Show(cmd::show::Args),
    /// Mark vservers to start at boot (`onboot = true` in NAME.toml; comments kept).
    Enable(cmd::onboot::Args),
    /// Unmark vservers to start at boot (`onboot = false` in NAME.toml).
    Disable(cmd::onboot::Args),
    /// Start vservers, or every vserver marked onboot.
    Start(cmd::start::Args),
    /// Stop vservers, or every running vserver.
    Stop(cmd::stop::Args),
    /// Stop and start vservers again, re-reading their configuration.
    Restart(cmd::restart::Args),
    /// Send a signal to a vserver's init or to all of its processes.
    Kill(cmd::kill::Args),
    /// Per running vserver: context, processes, VSZ, RSS, CPU times, uptime (vserver-stat).
    Stat(cmd::stat::Args),
    /// Every process on the host with the vserver it belongs to, or those of one vserver (vps).
    Ps(cmd::ps::Args),
    /// The process tree of a vserver, with its own pids and the host's (vpstree).
    Pstree(cmd::pstree::Args),
    /// Exit 0 if the vserver is running, 1 if not; print nothing.
    Running(cmd::running::Args),
    /// Check the configuration on disk without applying it (exit 1 when invalid).
    Check(cmd::check::Args),
    /// Make vserverd re-read its configuration.
    Reload(cmd::reload::Args),
    /// Print (or follow) the console log of a vserver.
    Logs(cmd::logs::Args),
    /// An interactive login shell (or CMD) inside a running vserver, on a pty when stdin is a terminal.
    Enter(cmd::enter::EnterArgs),
    /// Run CMD inside a running vserver on pipes (-t: on a pty); its exit code is ours.
    Exec(cmd::enter::ExecArgs),
    /// Attach to the console of a vserver's init (detach: Ctrl-] three times).
    Console(cmd::console::Args),
    /// Build a new vserver: a root from a template, the host or debootstrap, or unified.
    Build(cmd::build::Args),
    /// Templates of unified vservers: list, create, remove.
    Template(cmd::template::Args),
    /// The disk space vservers really use, not counting what they share with a template (vdu).
    Du(cmd::du::Args),
    /// Remove a stopped vserver's root and configuration.
    Destroy(cmd::destroy::Args),
    /// Generate shell completions or man pages (for packagers).
    Generate(cmd::generate::Args),
}

/// Which verb ran, for the exit code of an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    List,
    Status,
    Show,
    Enable,
    Disable,
    Start,
    Stop,
    Restart,
    Kill,
    Stat,
    Ps,
    Pstree,
    Running,
    Check,
    Reload,
    Logs,
    Enter,
    Exec,
    Console,
    Build,
    Template,
    Du,
    Destroy,
    Generate,
}

impl Command {
    pub fn verb(&self) -> Verb {
        match self {
            Command::List(_) => Verb::List,
            Command::Status(_) => Verb::Status,
            Command::Show(_) => Verb::Show,
            Command::Enable(_) => Verb::Enable,
            Command::Disable(_) => Verb::Disable,
            Command::Start(_) => Verb::Start,
            Command::Stop(_) => Verb::Stop,
            Command::Restart(_) => Verb::Restart,
            Command::Kill(_) => Verb::Kill,
            Command::Stat(_) => Verb::Stat,
            Command::Ps(_) => Verb::Ps,
            Command::Pstree(_) => Verb::Pstree,
            Command::Running(_) => Verb::Running,
            Command::Check(_) => Verb::Check,
            Command::Reload(_) => Verb::Reload,
            Command::Logs(_) => Verb::Logs,
            Command::Enter(_) => Verb::Enter,
            Command::Exec(_) => Verb::Exec,
            Command::Console(_) => Verb::Console,
            Command::Build(_) => Verb::Build,
            Command::Template(_) => Verb::Template,
            Command::Du(_) => Verb::Du,
            Command::Destroy(_) => Verb::Destroy,
            Command::Generate(_) => Verb::Generate,
        }
    }

    /// Whether the verb talks to vserverd (all but `generate`).
    pub fn needs_bus(&self) -> bool {
        !matches!(self, Command::Generate(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::generate::What;
    use crate::cmd::kill::Whom;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("vserverctl").chain(args.iter().copied()))
    }

    fn ok(args: &[&str]) -> Cli {
        parse(args).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    fn usage_error(args: &[&str]) {
        match parse(args) {
            Ok(c) => panic!("{args:?} parsed as {c:?}"),
            Err(e) => assert_eq!(e.exit_code(), 2, "{args:?}: {e}"),
        }
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_anywhere() {
        let c = ok(&["--json", "list"]);
        assert!(c.json() && !c.no_legend && c.bus_address.is_none());
        assert!(matches!(c.command, Command::List(_)), "a bare --json takes no verb as its mode");
        assert_eq!(ok(&["-j", "list"]).json, Some(JsonMode::Pretty));
        assert_eq!(ok(&["list", "--json=short"]).json, Some(JsonMode::Short));
        assert!(!ok(&["--json=off", "list"]).json());
        usage_error(&["--json=yaml", "list"]);
        let c = ok(&["list", "--no-legend", "--bus-address", "unix:path=/tmp/x"]);
        assert!(!c.json() && c.no_legend);
        assert_eq!(c.bus_address.as_deref(), Some("unix:path=/tmp/x"));
        usage_error(&[]);
        usage_error(&["frobnicate"]);
    }

    #[test]
    fn list() {
        match ok(&["list"]).command {
            Command::List(a) => assert!(!a.all),
            c => panic!("{c:?}"),
        }
        match ok(&["ls", "--all"]).command {
            Command::List(a) => assert!(a.all),
            c => panic!("{c:?}"),
        }
        match ok(&["list", "-a"]).command {
            Command::List(a) => assert!(a.all),
            c => panic!("{c:?}"),
        }
        usage_error(&["list", "web1"]);
    }

    #[test]
    fn status_running_restart() {
        match ok(&["status", "web1"]).command {
            Command::Status(a) => assert_eq!(a.names, ["web1"]),
            c => panic!("{c:?}"),
        }
        match ok(&["status", "web1", "web2"]).command {
            Command::Status(a) => assert_eq!(a.names, ["web1", "web2"]),
            c => panic!("{c:?}"),
        }
        usage_error(&["status"]);
        match ok(&["show", "web1", "-p", "State,Leader", "--property", "Onboot", "--value"]).command {
            Command::Show(a) => {
                assert_eq!(a.name, "web1");
                assert_eq!(a.properties, ["State", "Leader", "Onboot"]);
                assert!(a.value);
            }
            c => panic!("{c:?}"),
        }
        match ok(&["enable", "a", "b"]).command {
            Command::Enable(a) => assert_eq!(a.names, ["a", "b"]),
            c => panic!("{c:?}"),
        }
        usage_error(&["disable"]);
        match ok(&["disable", "a"]).command {
            Command::Disable(a) => assert_eq!(a.names, ["a"]),
            c => panic!("{c:?}"),
        }
        match ok(&["running", "web1"]).command {
            Command::Running(a) => assert_eq!(a.name, "web1"),
            c => panic!("{c:?}"),
        }
        match ok(&["restart", "a", "b"]).command {
            Command::Restart(a) => assert_eq!(a.names, ["a", "b"]),
            c => panic!("{c:?}"),
        }
        usage_error(&["status"]);
        usage_error(&["running"]);
        usage_error(&["restart"]);
    }

    #[test]
    fn start_and_stop() {
        match ok(&["start", "a", "b"]).command {
            Command::Start(a) => {
                assert_eq!(a.names, ["a", "b"]);
                assert!(!a.onboot);
            }
            c => panic!("{c:?}"),
        }
        match ok(&["start", "--onboot"]).command {
            Command::Start(a) => assert!(a.onboot && a.names.is_empty()),
            c => panic!("{c:?}"),
        }
        match ok(&["stop", "a"]).command {
            Command::Stop(a) => assert!(a.names == ["a"] && !a.all),
            c => panic!("{c:?}"),
        }
        match ok(&["stop", "--all"]).command {
            Command::Stop(a) => assert!(a.all && a.names.is_empty()),
            c => panic!("{c:?}"),
        }
        usage_error(&["start"]);
        usage_error(&["start", "--onboot", "a"]);
        usage_error(&["stop"]);
        usage_error(&["stop", "--all", "a"]);
    }

    #[test]
    fn kill() {
        match ok(&["kill", "web1"]).command {
            Command::Kill(a) => {
                assert_eq!(a.name, "web1");
                assert_eq!(a.signal, libc::SIGTERM);
                assert_eq!(a.whom, Whom::All);
            }
            c => panic!("{c:?}"),
        }
        match ok(&["kill", "-s", "KILL", "--whom", "leader", "web1"]).command {
            Command::Kill(a) => {
                assert_eq!(a.signal, libc::SIGKILL);
                assert_eq!(a.whom, Whom::Leader);
            }
            c => panic!("{c:?}"),
        }
        match ok(&["kill", "web1", "--signal=SIGHUP"]).command {
            Command::Kill(a) => assert_eq!(a.signal, libc::SIGHUP),
            c => panic!("{c:?}"),
        }
        match ok(&["kill", "-s", "9", "web1"]).command {
            Command::Kill(a) => assert_eq!(a.signal, 9),
            c => panic!("{c:?}"),
        }
        usage_error(&["kill"]);
        usage_error(&["kill", "-s", "NOPE", "web1"]);
        usage_error(&["kill", "-s", "0", "web1"]);
        usage_error(&["kill", "--whom", "everyone", "web1"]);
    }

    #[test]
    fn check_reload() {
        match ok(&["check"]).command {
            Command::Check(a) => assert_eq!(a.name, None),
            c => panic!("{c:?}"),
        }
        match ok(&["check", "web1"]).command {
            Command::Check(a) => assert_eq!(a.name.as_deref(), Some("web1")),
            c => panic!("{c:?}"),
        }
        assert!(matches!(ok(&["reload"]).command, Command::Reload(_)));
        usage_error(&["reload", "web1"]);
    }

    #[test]
    fn logs() {
        match ok(&["logs", "web1"]).command {
            Command::Logs(a) => assert!(a.name == "web1" && !a.follow && a.lines == 10),
            c => panic!("{c:?}"),
        }
        match ok(&["logs", "-f", "-n", "50", "web1"]).command {
            Command::Logs(a) => assert!(a.follow && a.lines == 50),
            c => panic!("{c:?}"),
        }
        match ok(&["logs", "--follow", "--lines=0", "web1"]).command {
            Command::Logs(a) => assert!(a.follow && a.lines == 0),
            c => panic!("{c:?}"),
        }
        usage_error(&["logs"]);
        usage_error(&["logs", "-n", "-3", "web1"]);
        usage_error(&["logs", "-n", "many", "web1"]);
    }

    #[test]
    fn generate() {
        match ok(&["generate", "completions", "bash"]).command {
            Command::Generate(a) => match a.what {
                What::Completions { shell, dir } => {
                    assert_eq!(shell, clap_complete::Shell::Bash);
                    assert_eq!(dir, None);
                }
                w => panic!("{w:?}"),
            },
            c => panic!("{c:?}"),
        }
        match ok(&["generate", "completions", "zsh", "/tmp/c"]).command {
            Command::Generate(a) => match a.what {
                What::Completions { shell, dir } => {
                    assert_eq!(shell, clap_complete::Shell::Zsh);
                    assert_eq!(dir.as_deref(), Some(std::path::Path::new("/tmp/c")));
                }
                w => panic!("{w:?}"),
            },
            c => panic!("{c:?}"),
        }
        match ok(&["generate", "man", "/tmp/m"]).command {
            Command::Generate(a) => assert!(matches!(a.what, What::Man { .. })),
            c => panic!("{c:?}"),
        }
        usage_error(&["generate", "completions", "tcsh"]);
        usage_error(&["generate", "man"]);
    }

    #[test]
    fn enter_and_exec() {
        match ok(&["enter", "web1"]).command {
            Command::Enter(a) => assert!(a.name == "web1" && a.user.is_none() && a.command.is_empty()),
            c => panic!("{c:?}"),
        }
        match ok(&["enter", "--user", "alice", "web1", "--", "ls", "-l"]).command {
            Command::Enter(a) => assert!(a.user.as_deref() == Some("alice") && a.command == ["ls", "-l"]),
            c => panic!("{c:?}"),
        }
        match ok(&["exec", "web1", "--", "cat"]).command {
            Command::Exec(a) => assert!(a.name == "web1" && !a.tty && a.command == ["cat"]),
            c => panic!("{c:?}"),
        }
        // Without `--`, the command's own options stay its own.
        match ok(&["exec", "-u", "0", "-t", "web1", "sh", "-c", "exit 3"]).command {
            Command::Exec(a) => assert!(a.tty && a.user.as_deref() == Some("0") && a.command == ["sh", "-c", "exit 3"]),
            c => panic!("{c:?}"),
        }
        match ok(&["console", "web1"]).command {
            Command::Console(a) => assert_eq!(a.name, "web1"),
            c => panic!("{c:?}"),
        }
        usage_error(&["console"]);
        usage_error(&["exec", "web1"]);
        usage_error(&["exec"]);
        usage_error(&["enter"]);
    }

    #[test]
    fn verbs() {
        assert_eq!(ok(&["status", "x"]).command.verb(), Verb::Status);
        assert!(!ok(&["generate", "man", "d"]).command.needs_bus());
        assert!(ok(&["list"]).command.needs_bus());
    }
}
