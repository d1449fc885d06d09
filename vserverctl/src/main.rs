//! `vserverctl`: parse, connect, dispatch, and turn errors into messages and exit codes. The
//! verbs are in `cmd/`, one file each.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use vserverctl::cmd::{self, Ctx};
use vserverctl::error::{exit, CtlError};
use vserverctl::output::{self, Format};
use vserverctl::polkit::Auth;
use vserverctl::{Cli, Command, JsonMode};

fn main() -> ExitCode {
    // `exec --all -- CMD`, `exec A B … -- CMD`: several vservers, each by the single-vserver exec.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(many) = cmd::exec_many::detect(&args) {
        return ExitCode::from(cmd::exec_many::run(&many));
    }
    let cli = Cli::parse();
    let verb = cli.command.verb();
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => match e.downcast_ref::<CtlError>() {
            Some(err) => {
                eprintln!("vserverctl: {err}");
                ExitCode::from(err.exit_code(verb))
            }
            None => {
                eprintln!("vserverctl: {e:#}");
                ExitCode::from(exit::FAILURE)
            }
        },
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    if let Command::Generate(args) = &cli.command {
        return Ok(cmd::generate::run(args)?);
    }
    let format = Format { json: cli.json(), legend: !cli.no_legend };
    output::set_json_short(cli.json == Some(JsonMode::Short));
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the tokio runtime")?;
    runtime.block_on(async {
        // Verbs working on the vservers' files need no daemon (build, template, du, destroy).
        if let Some(code) = cmd::build::run_local(&cli).await? {
            return Ok(code);
        }
        let conn = cmd::connect(cli.bus_address.as_deref()).await?;
        let ctx = Ctx { conn, format, auth: Auth::new(!cli.no_ask_password, vserverctl::term::is_tty(0)) };
        let code = match &cli.command {
            Command::List(a) => cmd::list::run(&ctx, a).await?,
            Command::Status(a) => cmd::status::run(&ctx, a).await?,
            Command::Show(a) => cmd::show::run(&ctx, a).await?,
            Command::Enable(a) => cmd::onboot::run(&ctx, a, true).await?,
            Command::Disable(a) => cmd::onboot::run(&ctx, a, false).await?,
            Command::Start(a) => cmd::start::run(&ctx, a).await?,
            Command::Stop(a) => cmd::stop::run(&ctx, a).await?,
            Command::Restart(a) => cmd::restart::run(&ctx, a).await?,
            Command::Kill(a) => cmd::kill::run(&ctx, a).await?,
            Command::Stat(a) => cmd::stat::run(&ctx, a).await?,
            Command::Ps(a) => cmd::ps::run(&ctx, a).await?,
            Command::Pstree(a) => cmd::pstree::run(&ctx, a).await?,
            Command::Running(a) => cmd::running::run(&ctx, a).await?,
            Command::Check(a) => cmd::check::run(&ctx, a).await?,
            Command::Reload(a) => cmd::reload::run(&ctx, a).await?,
            Command::Logs(a) => cmd::logs::run(&ctx, a).await?,
            Command::Enter(a) => cmd::enter::run_enter(&ctx, a).await?,
            Command::Exec(a) => cmd::enter::run_exec(&ctx, a).await?,
            Command::Console(a) => cmd::console::run(&ctx, a).await?,
            Command::Generate(_) => unreachable!("handled above"),
            Command::Build(_) | Command::Template(_) | Command::Du(_) | Command::Destroy(_) => unreachable!("handled above"),
        };
        Ok(code)
    })
}
