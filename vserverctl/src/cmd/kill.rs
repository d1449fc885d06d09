//! `vserverctl kill NAME [-s SIG] [--whom leader|all]`, and the paper's vkill:
//! `vserverctl kill NAME [-s SIG] [--host-pid] PID` (PID as the vserver sees it, or the host).

use super::Ctx;
use crate::error::{exit, CtlError};
use crate::signal;

/// Which processes of the vserver get the signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Whom {
    /// The vserver's pid 1 (its init).
    Leader,
    /// Every process of the vserver.
    All,
}

impl Whom {
    pub fn as_str(self) -> &'static str {
        match self {
            Whom::Leader => "leader",
            Whom::All => "all",
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vserver.
    pub name: String,
    /// The signal: a name (TERM, SIGKILL, hup, RTMIN+1) or a number.
    #[arg(short, long, value_name = "SIGNAL", default_value = "TERM", value_parser = signal::parse)]
    pub signal: i32,
    /// Send it to the vserver's init only, or to all of its processes.
    #[arg(long, value_enum, default_value_t = Whom::All, conflicts_with = "pid")]
    pub whom: Whom,
    /// One process only (vkill): its pid inside the vserver, or on the host with --host-pid.
    pub pid: Option<u32>,
    /// PID is a host pid (it must still belong to the vserver).
    #[arg(long, requires = "pid")]
    pub host_pid: bool,
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, CtlError> {
    if let Some(pid) = args.pid {
        let action = format!("send {} to process {pid} of {}", signal::name(args.signal), args.name);
        ctx.manager()
            .await?
            .kill_process(&args.name, pid, !args.host_pid, args.signal)
            .await
            .map_err(|e| CtlError::api(action, Some(&args.name), e))?;
        return Ok(exit::OK);
    }
    let action = format!("send {} to {} ({})", signal::name(args.signal), args.name, args.whom.as_str());
    ctx.manager()
        .await?
        .kill_vserver(&args.name, args.whom.as_str(), args.signal)
        .await
        .map_err(|e| CtlError::api(action, Some(&args.name), e))?;
    Ok(exit::OK)
}
