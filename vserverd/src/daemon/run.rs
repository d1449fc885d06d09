//! The daemon's life: load, adopt, serve the bus, then reload on SIGHUP until SIGTERM, SIGINT
//! or the loss of the bus.

use std::net::SocketAddr;
use std::time::Duration;

use tracing::info;
use vserver_engine::cgroup;
use vserver_api::{BUS_NAME, MANAGER_PATH};

use super::dbus::{manager, objects};
use super::state::Daemon;
use super::{metrics, notify, pool};
use vserver_config::paths::Paths;

/// What the daemon serves besides the bus.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Where the metrics endpoint listens (`--metrics-listen`); none: no endpoint.
    pub metrics_listen: Option<SocketAddr>,
}

/// Runs the daemon until SIGTERM or SIGINT. vservers keep running when it ends.
pub async fn run(paths: Paths, options: Options) -> anyhow::Result<()> {
    // A panic anywhere in the daemon (in one vserver's task, say) ends it at once and non-zero:
    // a supervisor with a task gone or a lock poisoned is worse than a restart, which adopts
    // every vserver again (they run on under their monitors).
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        report(info);
        tracing::error!("panic: {info}; exiting so that vserverd is started again (the vservers keep running)");
        std::process::exit(101);
    }));
    std::fs::create_dir_all(&paths.run_dir)?;
    if let Err(e) = cgroup::delegate_self() {
        tracing::warn!(error = %e, "cannot move into a leaf of the delegated cgroup; limits may fail");
    }
    info!(layout = cgroup::host_layout().kind(), base = %cgroup::host_layout().v2_base, "cgroups");
    let daemon = Daemon::new(paths);
    // Bound before anything else is done: an address in use fails the start, not a scrape.
    let metrics_listener = match options.metrics_listen {
        Some(addr) => Some(metrics::listen(addr).await?),
        None => None,
    };
    let result = daemon.load_config();
    daemon.apply(&result);
    let adopted = daemon.adopt_all().await;
    if !adopted.is_empty() {
        info!(?adopted, "runtime state of unconfigured vservers adopted");
    }

    let conn = zbus::connection::Builder::system()
        .serve_at(MANAGER_PATH, manager::ManagerIface { daemon: daemon.clone() })
        .build()
        .await?;
    *daemon.conn.lock().unwrap() = Some(conn.clone());
    for sup in daemon.all() {
        objects::publish(&conn, sup).await?;
    }
    // The name last, once every object is served: a call that arrives at once finds them all.
    let flags = zbus::fdo::RequestNameFlags::DO_NOT_QUEUE;
    let owned_already = || anyhow::anyhow!("{BUS_NAME} is owned already on this bus: another vserverd runs (`busctl status {BUS_NAME}` names it)");
    match conn.request_name_with_flags(BUS_NAME, flags).await {
        Ok(zbus::fdo::RequestNameReply::PrimaryOwner | zbus::fdo::RequestNameReply::AlreadyOwner) => {}
        Ok(_) | Err(zbus::Error::NameTaken) => return Err(owned_already()),
        Err(e) => return Err(e.into()),
    }
    if let Some(listener) = metrics_listener {
        metrics::serve(listener, daemon.clone());
    }
    pool::refill();
    notify::ready();
    info!(bus = BUS_NAME, "ready");

    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    // `WatchdogSec=`: the pings come from this loop, so that a loop that hangs stops them and the
    // service manager restarts the daemon (the vservers are adopted as after any restart).
    let period = notify::watchdog_period();
    let mut watchdog = tokio::time::interval(period.unwrap_or(Duration::from_secs(3600)));
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = watchdog.tick(), if period.is_some() => notify::watchdog(),
            _ = hup.recv() => {
                objects::reload(&daemon).await;
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            // Without the bus the host has no management: exit at once and non-zero, so that
            // the service manager restarts the daemon (`Restart=on-failure`); the vservers keep
            // running under their monitors and are adopted again.
            _ = conn.closed() => {
                notify::stopping();
                tracing::error!("the connection to the system bus is lost; exiting so that vserverd is started again (the vservers keep running)");
                anyhow::bail!("the connection to the system bus is lost");
            }
        }
    }
    notify::stopping();
    info!("exiting; running vservers stay up under their monitors");
    Ok(())
}
