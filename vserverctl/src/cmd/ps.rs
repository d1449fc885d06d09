//! `vserverctl ps [NAME]`: the paper's vps: every process on the host with the vserver it belongs
//! to (the host's own processes show as the host), or only those of NAME.

use vserver_api::VProcess;

use super::Ctx;
use crate::error::{exit, CtlError};
use crate::output::{self, Align, Format, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only the processes of this vserver.
    pub name: Option<String>,
}

/// What the VSERVER column says for the host's own processes.
pub const HOST: &str = "(host)";

pub fn render(rows: &[VProcess], format: Format) -> String {
    if format.json {
        return output::json_string(rows);
    }
    let mut t = Table::new(&[
        ("PID", Align::Right),
        ("VPID", Align::Right),
        ("PPID", Align::Right),
        ("VSERVER", Align::Left),
        ("COMMAND", Align::Left),
    ]);
    for p in rows {
        t.row(vec![
            p.pid.to_string(),
            if p.vpid == 0 { "-".into() } else { p.vpid.to_string() },
            p.ppid.to_string(),
            if p.vserver.is_empty() { HOST.into() } else { p.vserver.clone() },
            p.command.clone(),
        ]);
    }
    t.render(format.legend)
}

pub async fn fetch(ctx: &Ctx, name: Option<&str>) -> Result<Vec<VProcess>, CtlError> {
    ctx.manager()
        .await?
        .list_processes(name.unwrap_or(""))
        .await
        .map_err(|e| CtlError::api("list the processes", name, e))
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, CtlError> {
    let rows = fetch(ctx, args.name.as_deref()).await?;
    output::print(&render(&rows, ctx.format));
    Ok(exit::OK)
}
