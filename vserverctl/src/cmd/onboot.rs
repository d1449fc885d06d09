//! `vserverctl enable NAME...` / `disable NAME...`: whether a vserver starts at boot (`start
//! --onboot`), as `systemctl enable` and `machinectl enable` say it. The daemon sets `onboot` in
//! NAME.toml, keeping its comments, and reloads; a running vserver is not touched.

use super::{for_each_name, Ctx};
use crate::error::CtlError;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vservers.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

pub async fn run(ctx: &Ctx, args: &Args, onboot: bool) -> Result<u8, CtlError> {
    let manager = ctx.manager().await?;
    let verb = if onboot { "enable" } else { "disable" };
    for_each_name(&args.names, None, |name| {
        let manager = &manager;
        async move { manager.set_onboot(&name, onboot).await.map_err(|e| CtlError::api(format!("{verb} {name}"), Some(&name), e)) }
    })
    .await
}
