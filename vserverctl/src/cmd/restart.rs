//! `vserverctl restart NAME...`: stop and start again (the daemon re-reads the configuration
//! and runs the hooks).

use super::{for_each_name, Ctx};
use crate::error::CtlError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vservers to restart.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, CtlError> {
    let manager = ctx.manager().await?;
    for_each_name(&args.names, None, |name| {
        let manager = &manager;
        async move {
            manager.restart_vserver(&name).await.map_err(|e| CtlError::api(format!("restart {name}"), Some(&name), e))
        }
    })
    .await
}
