//! `vserverctl console NAME`: attach to the console of the vserver's pid 1 (what it writes, also
//! in `vserverctl logs NAME`; what we type goes to it). Detach with Ctrl-] three times within a
//! second, as machinectl has it. Several viewers may be attached at once.

use std::os::fd::{AsFd, OwnedFd};

use super::Ctx;
use crate::error::{exit, CtlError};
use crate::term;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vserver.
    pub name: String,
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, CtlError> {
    let sock = ctx
        .manager()
        .await?
        .open_console(&args.name)
        .await
        .map_err(|e| CtlError::api(format!("attach to the console of {}", args.name), Some(&args.name), e))?;
    let sock: OwnedFd = sock.into();
    eprintln!("Connected to the console of {}. Press Ctrl-] three times within 1 s to detach.", args.name);
    let detached = term::socket_session(sock.as_fd(), term::Detach::ctrl_bracket());
    if detached {
        eprintln!("\r\nDetached from {}.", args.name);
    } else {
        eprintln!("\r\nThe console of {} closed (its pid 1 ended).", args.name);
    }
    Ok(exit::OK)
}
