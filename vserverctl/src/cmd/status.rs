//! `vserverctl status NAME...`: every property of each vserver object. Exit 0 all running, 3
//! one is not running, 4 one does not exist (LSB init-script codes; the worst one wins).

use serde::Serialize;
use vserver_api::proxy::VServerProxy;
use vserver_api::State;

use super::Ctx;
use crate::error::{exit, CtlError};
use crate::output::{self, key_values, Format};
use crate::time;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vservers.
    #[arg(required = true, value_name = "NAME")]
    pub names: Vec<String>,
}

/// The properties of one vserver, as `status --json` prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Info {
    pub name: String,
    pub state: String,
    pub context: u32,
    pub leader: Option<u32>,
    pub addresses: Vec<String>,
    pub onboot: bool,
    pub root_directory: String,
    pub config_file: String,
    /// Microseconds since the epoch; null when not running.
    pub started_at: Option<u64>,
    pub uptime_seconds: Option<u64>,
    pub restarts: u32,
    /// How the last run ended; null while running or never run.
    pub last_exit: Option<String>,
    pub log_file: String,
    pub flags: Vec<String>,
    /// The host ids of its user namespace while it runs in one ("uids A-B, gids C-D").
    pub user_ids: Option<String>,
}

impl Info {
    pub fn is_running(&self) -> bool {
        State::parse(&self.state) == Some(State::Running)
    }

    /// The exit code of `status`: 0 running, 3 otherwise.
    pub fn exit_code(&self) -> u8 {
        if self.is_running() {
            exit::OK
        } else {
            exit::NOT_RUNNING
        }
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s.to_owned()
    }
}

/// The text or JSON of `info` at `now_us`.
pub fn render(info: &Info, format: Format, now_us: u64) -> String {
    if format.json {
        return output::json_string(info);
    }
    let started = match info.started_at {
        Some(us) => format!("{} (up {})", time::format_started_at(us), time::format_uptime(us, now_us)),
        None => "-".into(),
    };
    key_values(&[
        ("Name", info.name.clone()),
        ("State", info.state.clone()),
        ("Context", info.context.to_string()),
        ("Leader", info.leader.map_or_else(|| "-".into(), |l| l.to_string())),
        ("Addresses", output::join_or_dash(&info.addresses, ", ")),
        ("Onboot", if info.onboot { "yes" } else { "no" }.into()),
        ("RootDirectory", or_dash(&info.root_directory)),
        ("ConfigFile", or_dash(&info.config_file)),
        ("StartedAt", started),
        ("Restarts", info.restarts.to_string()),
        ("LastExit", or_dash(info.last_exit.as_deref().unwrap_or(""))),
        ("LogFile", or_dash(&info.log_file)),
        ("Flags", output::join_or_dash(&info.flags, ", ")),
        ("UserIds", or_dash(info.user_ids.as_deref().unwrap_or(""))),
    ])
}

/// Reads every property (from the snapshot the proxy took when it was built).
async fn fetch(p: &VServerProxy<'_>, now_us: u64) -> zbus::Result<Info> {
    let started_at = p.started_at().await?;
    let last_exit = p.last_exit().await?;
    Ok(Info {
        name: p.name().await?,
        state: p.state().await?,
        context: p.context().await?,
        leader: Some(p.leader().await?).filter(|&l| l != 0),
        addresses: p.addresses().await?,
        onboot: p.onboot().await?,
        root_directory: p.root_directory().await?,
        config_file: p.config_file().await?,
        started_at: (started_at != 0).then_some(started_at),
        uptime_seconds: time::uptime_secs(started_at, now_us),
        restarts: p.restarts().await?,
        last_exit: (!last_exit.is_empty()).then_some(last_exit),
        log_file: p.log_file().await?,
        flags: p.flags().await?,
        user_ids: Some(p.user_ids().await?).filter(|u| !u.is_empty()),
    })
}

async fn one(ctx: &Ctx, name: &str, now: u64) -> Result<Info, CtlError> {
    let action = format!("get the status of {name}");
    let proxy = ctx.vserver(name, &action, true).await?;
    fetch(&proxy, now).await.map_err(|e| CtlError::api(&action, Some(name), e))
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, CtlError> {
    let now = time::now_us();
    if let [name] = args.names.as_slice() {
        let info = one(ctx, name, now).await?;
        output::print(&render(&info, ctx.format, now));
        return Ok(info.exit_code());
    }
    // Several: each in turn (a blank line apart, or one JSON array); one that fails is
    // reported on standard error and the others are still shown.
    let mut infos = Vec::new();
    let mut code = exit::OK;
    for name in &args.names {
        match one(ctx, name, now).await {
            Ok(info) => {
                code = worse(code, info.exit_code());
                infos.push(info);
            }
            Err(e) => {
                code = worse(code, e.exit_code(crate::cli::Verb::Status));
                super::warn(&e);
            }
        }
    }
    if ctx.format.json {
        output::print(&output::json_string(&infos));
    } else {
        output::print(&infos.iter().map(|i| render(i, ctx.format, now)).collect::<Vec<_>>().join("\n"));
    }
    Ok(code)
}

/// The code of several: no such vserver (4) before not running (3) before a failure (1).
fn worse(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        exit::OK => 0,
        exit::FAILURE => 1,
        exit::NOT_RUNNING => 2,
        _ => 3,
    };
    if rank(b) > rank(a) {
        b
    } else {
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000_000;

    fn running() -> Info {
        Info {
            name: "web1".into(),
            state: "running".into(),
            context: 1001,
            leader: Some(4242),
            addresses: vec!["192.0.2.10/24".into(), "2001:db8::10/64".into()],
            onboot: true,
            root_directory: "/var/lib/vservers/web1".into(),
            config_file: "/etc/vservers/web1.toml".into(),
            started_at: Some(NOW - 90_000_000),
            uptime_seconds: Some(90),
            restarts: 2,
            last_exit: Some("killed by SIGHUP".into()),
            log_file: "/var/log/vservers/web1.log".into(),
            flags: vec!["lock".into(), "private".into()],
            user_ids: Some("uids 1073741824-1073807359, gids 1073741824-1073807359".into()),
        }
    }

    #[test]
    fn exit_codes() {
        assert_eq!(running().exit_code(), 0);
        for state in ["stopped", "starting", "stopping", "failed"] {
            let info = Info { state: state.into(), ..running() };
            assert_eq!(info.exit_code(), 3, "{state}");
        }
    }

    #[test]
    fn text() {
        let text = render(&running(), Format::default(), NOW);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 14);
        assert_eq!(lines[0], "Name:          web1");
        assert_eq!(lines[4], "Addresses:     192.0.2.10/24, 2001:db8::10/64");
        assert_eq!(lines[5], "Onboot:        yes");
        assert!(lines[8].starts_with("StartedAt:     2023-11-1"), "{}", lines[8]);
        assert!(lines[8].ends_with(" (up 1min 30s)"), "{}", lines[8]);
        assert_eq!(lines[10], "LastExit:      killed by SIGHUP");
        assert_eq!(lines[12], "Flags:         lock, private");
        assert_eq!(lines[13], "UserIds:       uids 1073741824-1073807359, gids 1073741824-1073807359");

        let stopped = Info {
            state: "stopped".into(),
            leader: None,
            started_at: None,
            uptime_seconds: None,
            last_exit: None,
            flags: vec![],
            user_ids: None,
            ..running()
        };
        let text = render(&stopped, Format::default(), NOW);
        assert!(text.contains("\nLeader:        -\n"), "{text}");
        assert!(text.contains("\nStartedAt:     -\n"), "{text}");
        assert!(text.contains("\nLastExit:      -\n"), "{text}");
        assert!(text.contains("\nFlags:         -\n"), "{text}");
        assert!(text.ends_with("\nUserIds:       -\n"), "{text}");
    }

    #[test]
    fn json_shape() {
        let v: serde_json::Value =
            serde_json::from_str(&render(&running(), Format { json: true, legend: true }, NOW)).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec![
            "name",
            "state",
            "context",
            "leader",
            "addresses",
            "onboot",
            "root_directory",
            "config_file",
            "started_at",
            "uptime_seconds",
            "restarts",
            "last_exit",
            "log_file",
            "flags",
            "user_ids",
        ];
        expected.sort();
        let mut keys = keys;
        keys.sort();
        assert_eq!(keys, expected);
        assert_eq!(v["started_at"], NOW - 90_000_000);
        assert_eq!(v["flags"], serde_json::json!(["lock", "private"]));
    }
}
