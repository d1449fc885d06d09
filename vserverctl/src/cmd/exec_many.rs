//! `vserverctl exec --all -- CMD` and `vserverctl exec NAME1 NAME2 … -- CMD`: the paper's
//! `vrpm ALL` pattern. CMD runs in each vserver named (or every running one) by the
//! single-vserver `vserverctl exec NAME -- CMD` (see `enter.rs`), at most `--jobs` at a time;
//! each vserver's output and exit code are printed, in the order of the names, when all are
//! done. Our exit code is 0 when every run exited 0, else 1.
//!
//! The single-vserver form keeps its own parser; this one takes over only when the arguments
//! before `--` hold `--all` or more than one vserver name.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use clap::Parser;
use serde::Serialize;

use crate::error::exit;
use crate::output::{self, Align, Table};

#[derive(Debug, Parser)]
#[command(name = "vserverctl exec", about = "Run CMD in several running vservers (or --all), in parallel")]
pub struct ManyArgs {
    /// Every running vserver.
    #[arg(long)]
    pub all: bool,
    /// Run as this user of each vserver's own /etc/passwd.
    #[arg(short, long, value_name = "USER")]
    pub user: Option<String>,
    /// How many vservers at a time.
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub jobs: u16,
    /// The global `--json[=MODE]` (before the verb; `-j` there is `--json`, here `--jobs`).
    #[arg(long, hide = true, value_enum, num_args = 0..=1, require_equals = true, default_missing_value = "pretty")]
    pub json: Option<crate::cli::JsonMode>,
    #[arg(long, hide = true)]
    pub no_legend: bool,
    #[arg(long, value_name = "ADDRESS", hide = true)]
    pub bus_address: Option<String>,
    /// The global `--no-ask-password` (each run's stdin is not a terminal: never asked anyway).
    #[arg(long, hide = true)]
    pub no_ask_password: bool,
    /// The vservers.
    pub names: Vec<String>,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Global options that take a value (to find the verb).
const VALUE_GLOBALS: &[&str] = &["--bus-address"];

/// The multi-vserver form, when `args` (argv without argv[0]) is one.
pub fn detect(args: &[String]) -> Option<ManyArgs> {
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        i += if VALUE_GLOBALS.contains(&args[i].as_str()) { 2 } else { 1 };
    }
    if args.get(i).map(String::as_str) != Some("exec") {
        return None;
    }
    let rest = &args[i + 1..];
    let dd = rest.iter().position(|a| a == "--")?;
    let before = &rest[..dd];
    let mut names = 0;
    let mut all = false;
    let mut j = 0;
    while j < before.len() {
        let a = before[j].as_str();
        match a {
            "--all" => all = true,
            "-u" | "--user" | "-j" | "--jobs" | "--bus-address" => j += 1,
            _ if a.starts_with('-') => {}
            _ => names += 1,
        }
        j += 1;
    }
    if !all && names < 2 {
        return None;
    }
    // Before the verb, `-j` is the global `--json`; after it, this form's `--jobs`.
    let globals = args[..i].iter().map(|a| if a == "-j" { "--json".to_string() } else { a.clone() });
    let argv: Vec<String> = std::iter::once("vserverctl exec".to_string()).chain(globals).chain(rest.iter().cloned()).collect();
    match ManyArgs::try_parse_from(argv) {
        Ok(a) => Some(a),
        Err(e) => e.exit(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub name: String,
    /// The command's exit code (255: the session was lost or could not start).
    pub exit: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The running vservers, from vserverd.
async fn running(bus: Option<&str>) -> Result<Vec<String>, crate::CtlError> {
    let conn = super::connect(bus).await?;
    let m = vserver_api::proxy::ManagerProxy::new(&conn).await.map_err(|e| crate::CtlError::api("reach vserverd", None, e))?;
    let list = m.list_vservers().await.map_err(|e| crate::CtlError::api("list the vservers", None, e))?;
    Ok(list.into_iter().filter(|v| v.state == "running").map(|v| v.name).collect())
}

/// Runs the multi-vserver exec; returns our exit code.
pub fn run(a: &ManyArgs) -> u8 {
    let mut names = a.names.clone();
    if a.all {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => {
                super::warn(e);
                return exit::FAILURE;
            }
        };
        match rt.block_on(running(a.bus_address.as_deref())) {
            Ok(r) => {
                for n in r {
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
            }
            Err(e) => {
                super::warn(e);
                return exit::FAILURE;
            }
        }
    }
    if names.is_empty() {
        super::warn("no running vserver");
        return exit::OK;
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| "vserverctl".into());
    let queue = Arc::new(Mutex::new(names.iter().cloned().enumerate().collect::<Vec<_>>()));
    let results: Arc<Mutex<Vec<Option<Outcome>>>> = Arc::new(Mutex::new(vec![None; names.len()]));
    let workers: Vec<_> = (0..(a.jobs as usize).min(names.len()))
        .map(|_| {
            let (queue, results, exe) = (queue.clone(), results.clone(), exe.clone());
            let (user, bus, command) = (a.user.clone(), a.bus_address.clone(), a.command.clone());
            std::thread::spawn(move || loop {
                let Some((i, name)) = queue.lock().unwrap().pop() else { return };
                let mut cmd = Command::new(&exe);
                if let Some(b) = &bus {
                    cmd.arg("--bus-address").arg(b);
                }
                cmd.arg("exec");
                if let Some(u) = &user {
                    cmd.arg("--user").arg(u);
                }
                cmd.arg(&name).arg("--").args(&command);
                let out = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).output();
                let o = match out {
                    Ok(o) => Outcome {
                        name,
                        exit: o.status.code().unwrap_or(255),
                        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                    },
                    Err(e) => Outcome { name, exit: 255, stdout: String::new(), stderr: format!("vserverctl: cannot run exec: {e}\n") },
                };
                results.lock().unwrap()[i] = Some(o);
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let results: Vec<Outcome> = results.lock().unwrap().iter().flatten().cloned().collect();
    let failed = results.iter().filter(|o| o.exit != 0).count();
    if matches!(a.json, Some(crate::cli::JsonMode::Pretty | crate::cli::JsonMode::Short)) {
        output::set_json_short(a.json == Some(crate::cli::JsonMode::Short));
        output::print(&output::json_string(&results));
    } else {
        for o in &results {
            println!("==> {} <== exit {}", o.name, o.exit);
            print!("{}", o.stdout);
            if !o.stdout.is_empty() && !o.stdout.ends_with('\n') {
                println!();
            }
            eprint!("{}", o.stderr);
        }
        let mut t = Table::new(&[("NAME", Align::Left), ("EXIT", Align::Right)]);
        for o in &results {
            t.row(vec![o.name.clone(), o.exit.to_string()]);
        }
        t.footer(format!("{} succeeded, {failed} failed.", results.len() - failed));
        output::print(&t.render(!a.no_legend));
    }
    if failed == 0 {
        exit::OK
    } else {
        exit::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn single_form_is_left_alone() {
        assert!(detect(&args(&["exec", "web1", "--", "ls"])).is_none());
        assert!(detect(&args(&["exec", "-u", "0", "-t", "web1", "sh", "-c", "exit 3"])).is_none());
        assert!(detect(&args(&["exec", "-u", "alice", "web1", "--", "id"])).is_none());
        assert!(detect(&args(&["list"])).is_none());
    }

    #[test]
    fn many_forms() {
        let a = detect(&args(&["exec", "--all", "--", "apt-get", "-v"])).unwrap();
        assert!(a.all && a.names.is_empty() && a.command == ["apt-get", "-v"]);
        let a = detect(&args(&["--bus-address", "unix:path=/x", "exec", "a", "b", "-j", "2", "--", "id"])).unwrap();
        assert_eq!((a.names.clone(), a.jobs, a.bus_address.as_deref()), (vec!["a".to_string(), "b".to_string()], 2, Some("unix:path=/x")));
        // -j before the verb is the global --json, after it --jobs; every JSON mode is taken.
        let a = detect(&args(&["-j", "exec", "a", "b", "-j", "3", "--", "id"])).unwrap();
        assert_eq!((a.json, a.jobs), (Some(crate::cli::JsonMode::Pretty), 3));
        let a = detect(&args(&["--json=short", "exec", "a", "b", "--", "id"])).unwrap();
        assert_eq!(a.json, Some(crate::cli::JsonMode::Short));
        assert_eq!(detect(&args(&["exec", "a", "b", "--", "id"])).unwrap().json, None);
    }
}
