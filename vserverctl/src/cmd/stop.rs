//! `vserverctl stop NAME...` and `vserverctl stop --all`.

use super::{for_each_name, render_reports, Ctx};
use crate::error::{CtlError, Kind};
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vservers to stop.
    #[arg(value_name = "NAME", required_unless_present = "all", conflicts_with = "all")]
    pub names: Vec<String>,
    /// Stop every running vserver (exit 1 if any failed).
    #[arg(long)]
    pub all: bool,
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, CtlError> {
    let manager = ctx.manager().await?;
    if args.all {
        let reports = manager.stop_all().await.map_err(|e| CtlError::api("stop all vservers", None, e))?;
        let (text, code) = render_reports(&reports, ctx.format, "stopped");
        output::print(&text);
        return Ok(code);
    }
    for_each_name(&args.names, Some((Kind::NotRunning, "is not running")), |name| {
        let manager = &manager;
        async move { manager.stop_vserver(&name).await.map_err(|e| CtlError::api(format!("stop {name}"), Some(&name), e)) }
    })
    .await
}
