//! `vserverctl reload`: make vserverd re-read its configuration; prints the diagnostics.

use serde::Serialize;

use super::Ctx;
use crate::error::{exit, CtlError};
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {}

#[derive(Serialize)]
struct Outcome<'a> {
    diagnostics: &'a [String],
}

pub async fn run(ctx: &Ctx, _args: &Args) -> Result<u8, CtlError> {
    let diagnostics =
        ctx.manager().await?.reload().await.map_err(|e| CtlError::api("reload the configuration", None, e))?;
    if ctx.format.json {
        output::print(&output::json_string(&Outcome { diagnostics: &diagnostics }));
    } else {
        output::print(&diagnostics.iter().map(|d| format!("{d}\n")).collect::<String>());
    }
    Ok(exit::OK)
}
