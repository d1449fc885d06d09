//! `vserverctl enter NAME [--user USER] [-- CMD [ARGS]]` and `vserverctl exec NAME [--user USER]
//! [-t] -- CMD [ARGS]`: the paper's `vserver NAME enter`, `exec` and `suexec`.
//!
//! vserverd builds the entering process (we never join a namespace ourselves) and hands us our
//! ends of its stdio over D-Bus: with a terminal, the master of a pty of the vserver's own devpts
//! (our terminal goes raw and its size follows), else three pipes. The exit code of the command
//! is ours (128 + N when a signal N ended it; 255 when the session was lost).

use std::os::fd::OwnedFd;

use super::Ctx;
use crate::error::CtlError;
use crate::term::{self, Ended};

#[derive(Debug, clap::Args)]
pub struct EnterArgs {
    /// Run as this user of the vserver's own /etc/passwd (a name or a number; default root).
    #[arg(short, long, value_name = "USER")]
    pub user: Option<String>,
    /// The vserver.
    pub name: String,
    /// The command and its arguments (default: the user's login shell).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "CMD")]
    pub command: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// Run as this user of the vserver's own /etc/passwd (a name or a number; default root).
    #[arg(short, long, value_name = "USER")]
    pub user: Option<String>,
    /// Give the command a pty (when standard input is a terminal), as `enter` does.
    #[arg(short, long)]
    pub tty: bool,
    /// The vserver.
    pub name: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Exit code when the session is lost (the helper died) or ended in an error after it began.
pub const LOST: u8 = 255;

pub async fn run_enter(ctx: &Ctx, args: &EnterArgs) -> Result<u8, CtlError> {
    session(ctx, &args.name, args.user.as_deref(), &args.command, term::is_tty(0)).await
}

pub async fn run_exec(ctx: &Ctx, args: &ExecArgs) -> Result<u8, CtlError> {
    session(ctx, &args.name, args.user.as_deref(), &args.command, args.tty && term::is_tty(0)).await
}

async fn session(ctx: &Ctx, name: &str, user: Option<&str>, command: &[String], tty: bool) -> Result<u8, CtlError> {
    let action = format!("enter {name}");
    let (rows, cols) = if tty { term::size(0) } else { (0, 0) };
    let argv: Vec<&str> = command.iter().map(String::as_str).collect();
    let (input, output, error, status) = ctx
        .manager()
        .await?
        .enter_vserver(name, user.unwrap_or(""), &argv, tty, &term::term(), rows, cols)
        .await
        .map_err(|e| CtlError::api(action, Some(name), e))?;
    let (input, output, error, status): (OwnedFd, OwnedFd, OwnedFd, OwnedFd) = (input.into(), output.into(), error.into(), status.into());
    // The D-Bus part is over: from here on a plain poll loop (this thread only).
    let ended = if tty {
        drop((output, error));
        term::pty_session(input, status)
    } else {
        term::pipe_session(input, output, error, status)
    };
    Ok(match ended {
        Ended::Code(c) => c,
        Ended::Error(msg) => {
            super::warn(format!("{name}: {msg}"));
            LOST
        }
        Ended::Lost => {
            super::warn(format!("{name}: the session was lost (the daemon's enter helper ended)"));
            LOST
        }
    })
}
