//! Metrics in the Prometheus text format (version 0.0.4), served over HTTP at `GET /metrics`
//! when the daemon is started with `--metrics-listen ADDR:PORT` (off otherwise): each vserver's
//! state, restarts, processes, CPU time, memory and start time, read from its supervisor and its
//! cgroups at each scrape (the figures of `ListStats`), and the daemon's own: how many vservers
//! it knows and how long their starts took.
//!
//! The registry is one [`Metrics`] in the daemon's state; the supervisors hold a handle of its
//! start histogram ([`StartDurations`]). The endpoint answers one request per connection and
//! closes it: a request's head is read within [`READ_TIMEOUT`] and [`MAX_HEAD`] bytes, at most
//! [`MAX_CONNECTIONS`] are served at once, and the figures are gathered off the daemon's thread.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, info, warn};
use vserver_api::{State, VServerStats};

use crate::daemon::state::Daemon;

/// How long a client may take to send its request's head, and to take the answer.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request head (request line and headers) read, bytes.
pub const MAX_HEAD: usize = 8192;
/// Connections served at once; a connection beyond them is closed without an answer.
pub const MAX_CONNECTIONS: usize = 8;

/// The buckets of the start histogram, seconds: a plain start takes a few milliseconds, a
/// guest with a real init boots in a second or so, `init.start_timeout` is 90 s by default.
const START_BUCKETS: [f64; 14] = [0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 90.0];

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("the metrics endpoint cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
}

/// The latencies of completed starts: a handle on the daemon's one histogram (clones observe
/// into the same one).
#[derive(Debug, Clone)]
pub struct StartDurations(Histogram);

impl StartDurations {
    pub fn new() -> StartDurations {
        StartDurations(Histogram::new(START_BUCKETS))
    }

    pub fn observe(&self, took: Duration) {
        self.0.observe(took.as_secs_f64());
    }
}

impl Default for StartDurations {
    fn default() -> StartDurations {
        StartDurations::new()
    }
}

/// One vserver as the metrics show it, read at a scrape.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub state: State,
    pub restarts: u32,
    /// Its current run: when it started (µs since the epoch) and its figures; none when it does
    /// not run.
    pub run: Option<(u64, VServerStats)>,
}

/// Every vserver of `daemon`, from its supervisor's status and its run's figures.
pub fn samples(daemon: &Daemon) -> Vec<Sample> {
    let now = vserver_config::run::now_us();
    daemon
        .all()
        .iter()
        .map(|s| {
            let st = s.status();
            let run = st.run.as_ref().map(|r| (r.started_at, crate::daemon::processes::stats(s, r, now)));
            Sample { name: s.name.clone(), state: st.state, restarts: st.restarts, run }
        })
        .collect()
}

type Gather = Box<dyn Fn() -> Vec<Sample> + Send + Sync>;

/// The per-vserver metrics, gathered at each scrape.
struct VServers(Gather);

impl fmt::Debug for VServers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VServers")
    }
}

impl Collector for VServers {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        encode_samples(&(self.0)(), &mut encoder)
    }
}

/// The daemon's metrics registry: the start histogram and the per-vserver collector.
pub struct Metrics {
    registry: Registry,
    start_durations: StartDurations,
}

impl Metrics {
    /// A registry whose per-vserver metrics come from `gather` at each scrape.
    pub fn new(gather: impl Fn() -> Vec<Sample> + Send + Sync + 'static) -> Metrics {
        let start_durations = StartDurations::new();
        let mut registry = Registry::default();
        registry.register(
            "vserverd_start_duration_seconds",
            "Time from a start request to the vserver running (pid 1 ready), of every start that succeeded",
            start_durations.0.clone(),
        );
        registry.register_collector(Box::new(VServers(Box::new(gather))));
        Metrics { registry, start_durations }
    }

    /// The handle a supervisor observes its starts' latencies with.
    pub fn start_durations(&self) -> StartDurations {
        self.start_durations.clone()
    }

    /// Every metric, in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_text::encode(&mut out, &self.registry).expect("encoding into a String does not fail");
        out
    }
}

/// A value of one series.
enum Value {
    Int(u64),
    Float(f64),
}

/// One metric family: its descriptor, then one series per (labels, value). (`help` ends with a
/// full stop, as the registry adds to the metrics registered with it.)
fn family<'a>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    series: impl Iterator<Item = (Vec<(&'a str, &'a str)>, Value)>,
) -> fmt::Result {
    let mut m = e.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in series {
        let one = m.encode_family(&labels)?;
        match (kind, value) {
            (MetricType::Counter, Value::Int(v)) => ConstCounter::new(v).encode(one)?,
            (MetricType::Counter, Value::Float(v)) => ConstCounter::new(v).encode(one)?,
            (_, Value::Int(v)) => ConstGauge::new(v).encode(one)?,
            (_, Value::Float(v)) => ConstGauge::new(v).encode(one)?,
        }
    }
    Ok(())
}

/// The per-vserver metrics of `samples`, and how many vservers there are.
fn encode_samples(samples: &[Sample], e: &mut DescriptorEncoder) -> fmt::Result {
    use MetricType::{Counter, Gauge};
    let running = || samples.iter().filter_map(|s| s.run.as_ref().map(|(at, st)| (s, *at, st)));
    let secs = |usec: u64| usec as f64 / 1e6;
    let known = std::iter::once((Vec::new(), Value::Int(samples.len() as u64)));
    family(e, "vserverd_vservers", "Vservers the daemon knows (valid configurations, invalid ones, runs adopted without one).", Gauge, known)?;
    let states = samples
        .iter()
        .flat_map(|s| State::ALL.map(|st| (vec![("name", s.name.as_str()), ("state", st.as_str())], Value::Int(u64::from(s.state == st)))));
    family(e, "vserver_state", "1 for the state the vserver is in, 0 for the others.", Gauge, states)?;
    let restarts = samples.iter().map(|s| (vec![("name", s.name.as_str())], Value::Int(u64::from(s.restarts))));
    family(e, "vserver_restarts", "Restarts since the daemon started (restart requests, reboots from inside, init.restart).", Counter, restarts)?;
    let processes = running().map(|(s, _, st)| (vec![("name", s.name.as_str())], Value::Int(st.processes)));
    family(e, "vserver_processes", "Processes in the vserver's cgroups.", Gauge, processes)?;
    let cpu = running().flat_map(|(s, _, st)| {
        [
            (vec![("name", s.name.as_str()), ("mode", "user")], Value::Float(secs(st.user_usec))),
            (vec![("name", s.name.as_str()), ("mode", "system")], Value::Float(secs(st.system_usec))),
        ]
    });
    family(e, "vserver_cpu_seconds", "CPU time of the current run's processes, by mode.", Counter, cpu)?;
    let memory = running().map(|(s, _, st)| (vec![("name", s.name.as_str())], Value::Int(st.rss)));
    family(e, "vserver_memory_bytes", "Memory in use: the vserver's memory cgroup's, else its processes' resident sets.", Gauge, memory)?;
    let started = running().map(|(s, at, _)| (vec![("name", s.name.as_str())], Value::Float(secs(at))));
    family(e, "vserver_start_time_seconds", "When the current run started, seconds since the Unix epoch.", Gauge, started)
}

// --- the endpoint ------------------------------------------------------------------------------

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics` (a query string is ignored); `head`: a `HEAD`, answered without the body.
    Metrics { head: bool },
    /// Another path.
    NotFound,
    /// `/metrics` with another method than GET or HEAD.
    MethodNotAllowed,
    /// Not an HTTP/1 request line.
    BadRequest,
}

/// The route of a request, from its head (the bytes up to the blank line).
pub fn route(head: &[u8]) -> Route {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let Ok(line) = std::str::from_utf8(line) else { return Route::BadRequest };
    let mut parts = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Route::BadRequest;
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Route::BadRequest;
    }
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    match (path, method) {
        ("/metrics", "GET") => Route::Metrics { head: false },
        ("/metrics", "HEAD") => Route::Metrics { head: true },
        ("/metrics", _) => Route::MethodNotAllowed,
        _ => Route::NotFound,
    }
}

/// An HTTP/1.1 response that closes the connection.
pub fn response(status: u16, reason: &str, content_type: &str, body: &str, send_body: bool, extra: &str) -> Vec<u8> {
    let mut out =
        format!("HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n", body.len())
            .into_bytes();
    if send_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Binds the endpoint (before the daemon says it is ready, so that an address in use is an
/// error at start).
pub async fn listen(addr: SocketAddr) -> Result<TcpListener, MetricsError> {
    TcpListener::bind(addr).await.map_err(|source| MetricsError::Listen { addr, source })
}

/// Serves `GET /metrics` on `listener` for as long as the daemon runs.
pub fn serve(listener: TcpListener, daemon: Arc<Daemon>) {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "metrics at http://{addr}/metrics");
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, say: try again a little later rather than spin.
                    warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                debug!("metrics endpoint: too many connections; one closed");
                continue;
            };
            let daemon = daemon.clone();
            tokio::spawn(async move {
                if let Err(e) = answer(stream, daemon).await {
                    debug!(error = %e, "metrics endpoint: connection ended");
                }
                drop(slot);
            });
        }
    });
}

/// Reads the head of one request: the bytes up to and including the blank line. None when it
/// is larger than [`MAX_HEAD`] or the connection ends before it.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

async fn answer(mut stream: TcpStream, daemon: Arc<Daemon>) -> std::io::Result<()> {
    let text = "text/plain; charset=utf-8";
    let reply = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => response(408, "Request Timeout", text, "request timeout\n", true, ""),
        Ok(Ok(None)) => response(400, "Bad Request", text, "bad request\n", true, ""),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(Some(head))) => match route(&head) {
            Route::Metrics { head } => {
                // The figures come from /proc and the cgroup files: off the daemon's thread.
                let body = tokio::task::spawn_blocking(move || daemon.metrics.encode()).await.map_err(std::io::Error::other)?;
                response(200, "OK", prometheus_text::CONTENT_TYPE, &body, !head, "")
            }
            Route::NotFound => response(404, "Not Found", text, "not found; the metrics are at /metrics\n", true, ""),
            Route::MethodNotAllowed => response(405, "Method Not Allowed", text, "method not allowed\n", true, "Allow: GET, HEAD\r\n"),
            Route::BadRequest => response(400, "Bad Request", text, "bad request\n", true, ""),
        },
    };
    tokio::time::timeout(READ_TIMEOUT, stream.write_all(&reply)).await.map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(name: &str) -> VServerStats {
        VServerStats {
            name: name.into(),
            context: 7,
            processes: 3,
            vsz: 1 << 20,
            rss: 409_600,
            user_usec: 1_500_000,
            system_usec: 250_000,
            uptime_usec: 9,
            disk_used: 0,
            disk_limit: 0,
        }
    }

    /// `web` runs (restarted twice), `db` is stopped.
    fn metrics() -> Metrics {
        Metrics::new(|| {
            vec![
                Sample { name: "db".into(), state: State::Stopped, restarts: 0, run: None },
                Sample { name: "web".into(), state: State::Running, restarts: 2, run: Some((1_700_000_000_500_000, stats("web"))) },
            ]
        })
    }

    /// The value of the series written exactly `series` (name and labels) in `text`.
    fn value(text: &str, series: &str) -> Option<String> {
        text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_string))
    }

    #[test]
    fn every_metric_is_encoded_with_its_name_labels_and_type() {
        let m = metrics();
        m.start_durations().observe(Duration::from_millis(4));
        m.start_durations().observe(Duration::from_millis(300));
        let text = m.encode();
        let v = |s: &str| value(&text, s);
        assert_eq!(v("vserverd_vservers").as_deref(), Some("2"), "{text}");
        assert_eq!(v(r#"vserver_state{name="web",state="running"}"#).as_deref(), Some("1"), "{text}");
        assert_eq!(v(r#"vserver_state{name="web",state="stopped"}"#).as_deref(), Some("0"), "{text}");
        assert_eq!(v(r#"vserver_state{name="db",state="stopped"}"#).as_deref(), Some("1"), "{text}");
        for st in State::ALL {
            assert!(v(&format!(r#"vserver_state{{name="db",state="{}"}}"#, st.as_str())).is_some(), "a series per state: {text}");
        }
        assert_eq!(v(r#"vserver_restarts_total{name="web"}"#).as_deref(), Some("2"), "{text}");
        assert_eq!(v(r#"vserver_restarts_total{name="db"}"#).as_deref(), Some("0"), "{text}");
        assert_eq!(v(r#"vserver_processes{name="web"}"#).as_deref(), Some("3"), "{text}");
        assert_eq!(v(r#"vserver_memory_bytes{name="web"}"#).as_deref(), Some("409600"), "{text}");
        assert_eq!(v(r#"vserver_cpu_seconds_total{name="web",mode="user"}"#).as_deref(), Some("1.5"), "{text}");
        assert_eq!(v(r#"vserver_cpu_seconds_total{name="web",mode="system"}"#).as_deref(), Some("0.25"), "{text}");
        assert_eq!(v(r#"vserver_start_time_seconds{name="web"}"#).map(|s| s.parse::<f64>().unwrap()), Some(1_700_000_000.5), "{text}");
        // What does not run has no figures.
        for m in ["vserver_processes", "vserver_memory_bytes", "vserver_start_time_seconds"] {
            assert!(v(&format!(r#"{m}{{name="db"}}"#)).is_none(), "{m} of a stopped vserver: {text}");
        }
        assert!(!text.contains(r#"vserver_cpu_seconds_total{name="db""#), "{text}");
        // The start histogram: two starts, one within 5 ms, both within 0.5 s.
        assert_eq!(v("vserverd_start_duration_seconds_count").as_deref(), Some("2"), "{text}");
        assert_eq!(v(r#"vserverd_start_duration_seconds_bucket{le="0.005"}"#).as_deref(), Some("1"), "{text}");
        assert_eq!(v(r#"vserverd_start_duration_seconds_bucket{le="0.5"}"#).as_deref(), Some("2"), "{text}");
        assert_eq!(v(r#"vserverd_start_duration_seconds_bucket{le="+Inf"}"#).as_deref(), Some("2"), "{text}");
        // The types, as the 0.0.4 format writes them.
        for (name, kind) in [
            ("vserverd_vservers", "gauge"),
            ("vserver_state", "gauge"),
            ("vserver_restarts_total", "counter"),
            ("vserver_processes", "gauge"),
            ("vserver_cpu_seconds_total", "counter"),
            ("vserver_memory_bytes", "gauge"),
            ("vserver_start_time_seconds", "gauge"),
            ("vserverd_start_duration_seconds", "histogram"),
        ] {
            assert!(
                text.contains(&format!("\n# TYPE {name} {kind}\n")) || text.starts_with(&format!("# TYPE {name} {kind}\n")),
                "{name} {kind}: {text}"
            );
            assert!(text.contains(&format!("# HELP {name} ")), "{name} has a help line: {text}");
        }
        // Nothing of the OpenMetrics format, whose content type this is not.
        assert!(!text.contains("# EOF") && !text.contains("_total_total"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let m = Metrics::new(|| vec![Sample { name: "a\"b\\c".into(), state: State::Failed, restarts: 1, run: None }]);
        let text = m.encode();
        assert_eq!(value(&text, r#"vserver_state{name="a\"b\\c",state="failed"}"#).as_deref(), Some("1"), "{text}");
    }

    #[test]
    fn requests_are_routed_by_method_and_path() {
        assert_eq!(route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Route::Metrics { head: false });
        assert_eq!(route(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics { head: false });
        assert_eq!(route(b"HEAD /metrics HTTP/1.1\r\n\r\n"), Route::Metrics { head: true });
        assert_eq!(route(b"GET /other HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /metrics/ HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::MethodNotAllowed);
        assert_eq!(route(b"DELETE /metrics HTTP/1.1\r\n\r\n"), Route::MethodNotAllowed);
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET /metrics HTTP/2\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"\xff /metrics HTTP/1.1\r\n\r\n",
            b"",
            b"GET  /metrics HTTP/1.1\r\n",
        ] {
            assert_eq!(route(bad), Route::BadRequest, "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_response_has_its_length_and_closes() {
        let r = String::from_utf8(response(200, "OK", prometheus_text::CONTENT_TYPE, "abc\n", true, "")).unwrap();
        assert_eq!(
            r,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabc\n"
        );
        let head = String::from_utf8(response(200, "OK", "text/plain", "abc\n", false, "")).unwrap();
        assert!(head.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"), "{head}");
        let r = String::from_utf8(response(405, "Method Not Allowed", "text/plain", "", true, "Allow: GET, HEAD\r\n")).unwrap();
        assert!(r.contains("\r\nAllow: GET, HEAD\r\n\r\n"), "{r}");
    }
}
