//! `vserverctl running NAME`: exit 0 if the vserver is running, 1 if not, printing nothing
//! (the paper's `vserver NAME running`, for scripts). Errors still go to standard error.

use vserver_api::State;

use super::Ctx;
use crate::error::{exit, CtlError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vserver.
    pub name: String,
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, CtlError> {
    let action = format!("get the state of {}", args.name);
    let proxy = ctx.vserver(&args.name, &action, false).await?;
    let state = proxy.state().await.map_err(|e| CtlError::api(&action, Some(&args.name), e))?;
    Ok(if State::parse(&state) == Some(State::Running) { exit::OK } else { exit::FAILURE })
}
