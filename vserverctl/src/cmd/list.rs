//! `vserverctl list [--all]`: the vservers from `ListVServers`, active ones unless `--all`.

use serde::Serialize;
use vserver_api::{State, VServerSummary};

use super::Ctx;
use crate::error::{exit, CtlError};
use crate::output::{self, join_or_dash, Align, Format, Table};
use crate::time;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Include vservers that are not running (stopped, failed).
    #[arg(short, long)]
    pub all: bool,
    /// The paper's vserver-stat columns instead (processes, VSZ, RSS, CPU, uptime, disk): as `stat`.
    #[arg(short, long, conflicts_with = "all")]
    pub stat: bool,
}

/// One vserver as `list --json` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub name: String,
    pub state: String,
    pub context: u32,
    /// pid 1 of the vserver as the host sees it; null when not running.
    pub leader: Option<u32>,
    pub addresses: Vec<String>,
    /// Microseconds since the epoch; null when not running.
    pub started_at: Option<u64>,
    pub uptime_seconds: Option<u64>,
    pub path: String,
}

/// Whether a state counts as active (starting, running, stopping). A state this client does
/// not know is shown rather than hidden.
fn is_active(state: &str) -> bool {
    match State::parse(state) {
        Some(s) => s.is_active(),
        None => true,
    }
}

/// The rows to show, sorted by name: active ones, or all with `all`.
pub fn rows(list: Vec<VServerSummary>, all: bool, now_us: u64) -> Vec<Row> {
    let mut rows: Vec<Row> = list
        .into_iter()
        .filter(|s| all || is_active(&s.state))
        .map(|s| Row {
            uptime_seconds: time::uptime_secs(s.started_at, now_us),
            started_at: (s.started_at != 0).then_some(s.started_at),
            leader: (s.leader != 0).then_some(s.leader),
            name: s.name,
            state: s.state,
            context: s.context,
            addresses: s.addresses,
            path: s.path.to_string(),
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// The table or JSON of `rows`; `hidden` inactive vservers are mentioned in the footer.
pub fn render(rows: &[Row], hidden: usize, format: Format) -> String {
    if format.json {
        return output::json_string(rows);
    }
    let mut t = Table::new(&[
        ("NAME", Align::Left),
        ("STATE", Align::Left),
        ("CONTEXT", Align::Right),
        ("LEADER", Align::Right),
        ("ADDRESSES", Align::Left),
        ("UPTIME", Align::Left),
    ]);
    for r in rows {
        t.row(vec![
            r.name.clone(),
            r.state.clone(),
            r.context.to_string(),
            r.leader.map_or_else(|| "-".into(), |l| l.to_string()),
            join_or_dash(&r.addresses, ","),
            r.uptime_seconds.map_or_else(|| "-".into(), time::format_duration),
        ]);
    }
    let n = rows.len();
    let mut footer = format!("{n} vserver{} listed.", if n == 1 { "" } else { "s" });
    if hidden > 0 {
        footer.push_str(&format!(" {hidden} not running (see `vserverctl list --all`)."));
    }
    t.footer(footer);
    t.render(format.legend)
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, CtlError> {
    if args.stat {
        return super::stat::run(ctx, &super::stat::Args {}).await;
    }
    let list = ctx.manager().await?.list_vservers().await.map_err(|e| CtlError::api("list the vservers", None, e))?;
    let total = list.len();
    let rows = rows(list, args.all, time::now_us());
    output::print(&render(&rows, total - rows.len(), ctx.format));
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use zbus::wire::OwnedObjectPath;

    const NOW: u64 = 1_700_000_000_000_000;

    fn summary(name: &str, state: &str, leader: u32, addrs: &[&str], up_secs: Option<u64>) -> VServerSummary {
        VServerSummary {
            name: name.into(),
            state: state.into(),
            context: 1000 + name.len() as u32,
            leader,
            addresses: addrs.iter().map(|s| s.to_string()).collect(),
            started_at: up_secs.map_or(0, |s| NOW - s * 1_000_000),
            path: OwnedObjectPath::try_from(vserver_api::vserver_path(name)).unwrap(),
        }
    }

    fn sample() -> Vec<VServerSummary> {
        vec![
            summary("web1", "running", 4242, &["192.0.2.10/24", "2001:db8::10/64"], Some(7380)),
            summary("db", "stopped", 0, &[], None),
            summary("mail", "starting", 777, &["192.0.2.11/24"], Some(3)),
            summary("old", "failed", 0, &["192.0.2.12/24"], None),
        ]
    }

    #[test]
    fn default_shows_active_only_sorted() {
        let r = rows(sample(), false, NOW);
        assert_eq!(r.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["mail", "web1"]);
        let r = rows(sample(), true, NOW);
        assert_eq!(r.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["db", "mail", "old", "web1"]);
        assert!(is_active("some-future-state"));
    }

    #[test]
    fn table() {
        let r = rows(sample(), false, NOW);
        let expected = "\
NAME  STATE     CONTEXT  LEADER  ADDRESSES                      UPTIME
mail  starting     1004     777  192.0.2.11/24                  3s
web1  running      1004    4242  192.0.2.10/24,2001:db8::10/64  2h 3min

2 vservers listed. 2 not running (see `vserverctl list --all`).
";
        assert_eq!(render(&r, 2, Format { json: false, legend: true }), expected);
        let expected = "\
mail  starting  1004   777  192.0.2.11/24                  3s
web1  running   1004  4242  192.0.2.10/24,2001:db8::10/64  2h 3min
";
        assert_eq!(render(&r, 2, Format { json: false, legend: false }), expected);
        let all = rows(sample(), true, NOW);
        let text = render(&all, 0, Format { json: false, legend: true });
        assert!(text.contains("\ndb    stopped      1002       -  -                              -\n"), "{text}");
        assert!(text.ends_with("\n4 vservers listed.\n"), "{text}");
    }

    #[test]
    fn json_shape() {
        let r = rows(sample(), true, NOW);
        let v: serde_json::Value = serde_json::from_str(&render(&r, 0, Format { json: true, legend: true })).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 4);
        assert_eq!(
            v[0],
            serde_json::json!({
                "name": "db", "state": "stopped", "context": 1002, "leader": null, "addresses": [],
                "started_at": null, "uptime_seconds": null, "path": "/org/vserverd/VServer1/vserver/db"
            })
        );
        assert_eq!(
            v[3],
            serde_json::json!({
                "name": "web1", "state": "running", "context": 1004, "leader": 4242,
                "addresses": ["192.0.2.10/24", "2001:db8::10/64"],
                "started_at": NOW - 7_380_000_000, "uptime_seconds": 7380,
                "path": "/org/vserverd/VServer1/vserver/web1"
            })
        );
        // --no-legend does not change JSON; an empty list is an empty array.
        assert_eq!(render(&[], 3, Format { json: true, legend: false }), "[]\n");
    }
}
