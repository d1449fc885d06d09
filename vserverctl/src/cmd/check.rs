//! `vserverctl check [NAME]`: check the configuration on disk without applying it.

use serde::Serialize;
use vserver_api::VServerError;

use super::Ctx;
use crate::error::{detail, exit, CtlError};
use crate::output::{self, Format};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Check only this vserver (default: all of them).
    pub name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub valid: bool,
    pub diagnostics: Vec<String>,
}

/// The diagnostics, one per line, then a verdict when there is nothing else to say.
pub fn render(o: &Outcome, name: Option<&str>, format: Format) -> String {
    if format.json {
        return output::json_string(o);
    }
    let mut out: String = o.diagnostics.iter().map(|d| format!("{d}\n")).collect();
    let what = match name {
        Some(n) => format!("the configuration of {n}"),
        None => "the configuration".to_owned(),
    };
    if o.valid && o.diagnostics.is_empty() {
        out.push_str(&format!("{what} is valid\n"));
    } else if !o.valid && o.diagnostics.is_empty() {
        out.push_str(&format!("{what} is invalid\n"));
    }
    out
}

pub fn exit_code(o: &Outcome) -> u8 {
    if o.valid {
        exit::OK
    } else {
        exit::FAILURE
    }
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, CtlError> {
    let name = args.name.as_deref();
    let action = match name {
        Some(n) => format!("check the configuration of {n}"),
        None => "check the configuration".to_owned(),
    };
    let outcome = match ctx.manager().await?.check_config(name.unwrap_or("")).await {
        Ok((valid, diagnostics)) => Outcome { valid, diagnostics },
        // A daemon may also answer with the error rather than (false, diagnostics).
        Err(e @ VServerError::ConfigInvalid(_)) => {
            Outcome { valid: false, diagnostics: detail(&e).lines().map(str::to_owned).collect() }
        }
        Err(e) => return Err(CtlError::api(action, name, e)),
    };
    output::print(&render(&outcome, name, ctx.format));
    Ok(exit_code(&outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts() {
        let text = Format::default();
        let ok = Outcome { valid: true, diagnostics: vec![] };
        assert_eq!(render(&ok, Some("web1"), text), "the configuration of web1 is valid\n");
        assert_eq!(exit_code(&ok), 0);
        let warn = Outcome { valid: true, diagnostics: vec!["/etc/vservers/a.toml:3:1: warning: x".into()] };
        assert_eq!(render(&warn, None, text), "/etc/vservers/a.toml:3:1: warning: x\n");
        let bad = Outcome { valid: false, diagnostics: vec!["a:1:1: error: x".into(), "a:2:1: error: y".into()] };
        assert_eq!(render(&bad, None, text), "a:1:1: error: x\na:2:1: error: y\n");
        assert_eq!(exit_code(&bad), 1);
        let v: serde_json::Value =
            serde_json::from_str(&render(&bad, None, Format { json: true, legend: true })).unwrap();
        assert_eq!(v, serde_json::json!({"valid": false, "diagnostics": ["a:1:1: error: x", "a:2:1: error: y"]}));
    }
}
