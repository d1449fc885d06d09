//! `vserverd`: wiring only. `vserverd monitor NAME` is the per-vserver monitor (re-exec'd by the
//! daemon, single-threaded), `vserverd monitor-end NAME …` its end (exec'd by the serving
//! program it becomes); anything else runs the daemon.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

#[derive(Parser)]
#[command(name = "vserverd", version, about = "The vserver host daemon: builds and supervises vservers, serves org.vserverd.VServer1")]
struct Args {
    /// Where NAME.toml files live.
    #[arg(long, default_value = vserver_config::DEFAULT_CONFIG_DIR)]
    config_dir: PathBuf,
    /// Runtime state (monitors' state files, the context registry).
    #[arg(long, default_value = vserver_engine::registry::DEFAULT_RUN_DIR)]
    run_dir: PathBuf,
    /// Console logs, NAME.log.
    #[arg(long, default_value = "/var/log/vservers")]
    log_dir: PathBuf,
    /// Where default roots live (NAME appended).
    #[arg(long, default_value = vserver_config::DEFAULT_ROOT_BASE)]
    root_base: PathBuf,
    /// Where templates of unified vservers live (default: ROOT_BASE/.templates).
    #[arg(long, value_name = "DIR")]
    template_dir: Option<PathBuf>,
    /// The directory that holds the vservers' cgroups in each hierarchy.
    #[arg(long, default_value = "vservers", value_name = "NAME")]
    cgroup_parent: String,
    /// Serve metrics in the Prometheus text format at http://ADDR:PORT/metrics (off when absent;
    /// no authentication: a loopback address, or a firewall, keeps them to the host).
    #[arg(long, value_name = "ADDR:PORT")]
    metrics_listen: Option<SocketAddr>,
    /// The host ids `[user] map = "auto"` vservers take their ranges of 65536 from (default:
    /// the subordinate ids of user `vserver` in /etc/subuid and /etc/subgid, which the Debian
    /// package makes).
    #[arg(long, value_name = "BASE:COUNT", value_parser = vserverd::daemon::idpool::parse)]
    userns_pool: Option<vserver_engine::userns::IdMap>,
    /// Check the configuration in DIR (default: --config-dir) offline and exit: 0 valid, 1 not.
    #[arg(long, value_name = "DIR", num_args = 0..=1)]
    check_config: Option<Option<PathBuf>>,
}

fn main() -> anyhow::Result<()> {
    if let Err(e) = vserver_engine::sealed::ensure_sealed_self() {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("monitor") {
        let name = argv.get(2).cloned().unwrap_or_default();
        vserverd::monitor::main(&name);
    }
    if argv.get(1).map(String::as_str) == Some("monitor-end") {
        vserverd::monitor::handover::end_main(&argv);
    }
    if argv.get(1).map(String::as_str) == Some("enter") {
        let name = argv.get(2).cloned().unwrap_or_default();
        vserverd::enter::helper_main(&name);
    }
    daemon()
}

/// The daemon (and `--check-config`). A function of its own, not inlined: its frame is large
/// (the runtime, the argument parser), and a monitor, which lives as long as its vserver, would
/// otherwise carry those stack pages for nothing.
#[inline(never)]
fn daemon() -> anyhow::Result<()> {
    close_inherited_fds();
    let args = Args::parse();
    vserver_engine::cgroup::set_parent(&args.cgroup_parent);
    // Monitors and hooks run in "/": relative directories are resolved here, once.
    let abs = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    let paths = vserver_config::paths::Paths {
        config_dir: abs(args.config_dir.clone()),
        run_dir: abs(args.run_dir),
        log_dir: abs(args.log_dir),
        root_base: abs(args.root_base),
        template_dir: args.template_dir.map(abs),
    };
    vserver_config::set_run_dir(&paths.run_dir);
    if let Some(dir) = args.check_config {
        let dir = dir.unwrap_or(args.config_dir);
        let mut r = vserver_config::load_dir(&dir, &paths.load_options());
        vserver_config::limits_checks(&mut r);
        for d in &r.diagnostics {
            println!("{d}");
        }
        std::process::exit(if r.has_errors() { 1 } else { 0 });
    }
    if let Some(pool) = args.userns_pool {
        vserverd::daemon::idpool::set_given(pool);
    }
    init_logging();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let options = vserverd::daemon::run::Options { metrics_listen: args.metrics_listen };
    rt.block_on(vserverd::run(paths, options))
}

/// To the journal when stderr is the journal (systemd sets JOURNAL_STREAM to its dev:ino),
/// plain stderr otherwise.
fn init_logging() {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("VSERVERD_LOG").unwrap_or_else(|_| "info".into());
    if stderr_is_journal() {
        if let Ok(layer) = tracing_journald::layer() {
            tracing_subscriber::registry().with(filter).with(layer).init();
            return;
        }
    }
    tracing_subscriber::registry().with(filter).with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(false)).init();
}

fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(js) = std::env::var("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = js.split_once(':') else { return false };
    let Ok(md) = std::fs::metadata("/proc/self/fd/2") else { return false };
    dev.parse::<u64>().ok() == Some(md.dev()) && ino.parse::<u64>().ok() == Some(md.ino())
}

/// Descriptors the daemon inherited from whatever started it (a shell's, a supervisor's) would
/// otherwise stay open for its whole life and pass on to every monitor. Everything above 2 goes,
/// but the sockets systemd passes on purpose (`LISTEN_FDS` for this very process).
fn close_inherited_fds() {
    let pid = std::process::id().to_string();
    let listen = match std::env::var("LISTEN_PID") {
        Ok(p) if p == pid => std::env::var("LISTEN_FDS").ok().and_then(|n| n.parse::<u32>().ok()).unwrap_or(0),
        _ => 0,
    };
    let _ = vserver_engine::sys::close_from(3 + listen.min(1024));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_config_takes_a_directory_or_none() {
        let parse = |args: &[&str]| Args::try_parse_from(std::iter::once("vserverd").chain(args.iter().copied()));
        assert_eq!(parse(&["--check-config"]).unwrap().check_config, Some(None));
        assert_eq!(parse(&["--check-config", "/tmp/x"]).unwrap().check_config, Some(Some(PathBuf::from("/tmp/x"))));
        assert_eq!(parse(&[]).unwrap().check_config, None);
    }
}
