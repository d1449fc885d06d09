//! `vserverctl start NAME...` and `vserverctl start --onboot`.

use super::{for_each_name, render_reports, Ctx};
use crate::error::{CtlError, Kind};
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vservers to start.
    #[arg(value_name = "NAME", required_unless_present = "onboot", conflicts_with = "onboot")]
    pub names: Vec<String>,
    /// Start every vserver marked onboot, in their configured order (exit 1 if any failed).
    #[arg(long)]
    pub onboot: bool,
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, CtlError> {
    let manager = ctx.manager().await?;
    if args.onboot {
        let reports = manager.start_onboot().await.map_err(|e| CtlError::api("start the onboot vservers", None, e))?;
        let (text, code) = render_reports(&reports, ctx.format, "started");
        output::print(&text);
        return Ok(code);
    }
    for_each_name(&args.names, Some((Kind::AlreadyRunning, "is already running")), |name| {
        let manager = &manager;
        async move {
            manager.start_vserver(&name).await.map_err(|e| CtlError::api(format!("start {name}"), Some(&name), e))
        }
    })
    .await
}
