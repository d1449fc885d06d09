//! `vserverctl stat`: the paper's vserver-stat, one row per running vserver: context, number of
//! processes, VSZ, RSS (memory charged to its cgroup), user and system CPU time, uptime, disk
//! used/quota, name.

use vserver_api::VServerStats;

use super::Ctx;
use crate::error::{exit, CtlError};
use crate::output::{self, Align, Format, Table};
use crate::time;

#[derive(Debug, clap::Args)]
pub struct Args {}

/// Bytes in the paper's style: K, M, G with one decimal where it helps.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)];
    for (u, n) in UNITS {
        if b >= n {
            let v = b as f64 / n as f64;
            return if v < 10.0 { format!("{v:.1}{u}") } else { format!("{:.0}{u}", v) };
        }
    }
    format!("{b}")
}

/// CPU time as `[H:]MM:SS.ss`.
pub fn cpu_time(usec: u64) -> String {
    let secs = usec / 1_000_000;
    let centis = (usec % 1_000_000) / 10_000;
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}.{centis:02}")
    } else {
        format!("{m:02}:{s:02}.{centis:02}")
    }
}

pub fn render(rows: &[VServerStats], format: Format) -> String {
    if format.json {
        return output::json_string(rows);
    }
    let mut t = Table::new(&[
        ("CTX", Align::Right),
        ("PROC", Align::Right),
        ("VSZ", Align::Right),
        ("RSS", Align::Right),
        ("userTIME", Align::Right),
        ("sysTIME", Align::Right),
        ("UPTIME", Align::Right),
        ("DISK", Align::Right),
        ("NAME", Align::Left),
    ]);
    for r in rows {
        t.row(vec![
            r.context.to_string(),
            r.processes.to_string(),
            human_bytes(r.vsz),
            human_bytes(r.rss),
            cpu_time(r.user_usec),
            cpu_time(r.system_usec),
            time::format_duration(r.uptime_usec / 1_000_000),
            if r.disk_limit == 0 { "-".into() } else { format!("{}/{}", human_bytes(r.disk_used), human_bytes(r.disk_limit)) },
            r.name.clone(),
        ]);
    }
    t.render(format.legend)
}

pub async fn run(ctx: &Ctx, _args: &Args) -> Result<u8, CtlError> {
    let mut rows = ctx.manager().await?.list_stats().await.map_err(|e| CtlError::api("read the vservers' figures", None, e))?;
    rows.sort_by_key(|r| r.context);
    output::print(&render(&rows, ctx.format));
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_like_vserver_stat() {
        assert_eq!(human_bytes(0), "0");
        assert_eq!(human_bytes(1536), "1.5K");
        assert_eq!(human_bytes(300 << 20), "300M");
        assert_eq!(cpu_time(61_250_000), "01:01.25");
        assert_eq!(cpu_time(3_600_000_000), "1:00:00.00");
        let rows = vec![VServerStats { name: "web1".into(), context: 1001, processes: 3, vsz: 4 << 20, rss: 1 << 20, user_usec: 0, system_usec: 10_000, uptime_usec: 65_000_000, disk_used: 1 << 20, disk_limit: 10 << 20 }];
        let text = render(&rows, Format { json: false, legend: true });
        assert!(text.lines().next().unwrap().contains("CTX"), "{text}");
        assert!(text.contains("web1") && text.contains("4.0M") && text.contains("1001"), "{text}");
        assert!(text.contains("1.0M/10M"), "{text}");
    }
}
