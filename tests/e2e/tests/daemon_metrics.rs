//! The metrics endpoint (`--metrics-listen`, docs/daemon.md "Metrics"): off by default; with the
//! option, `GET /metrics` on a real daemon shows a vserver's state, processes, memory,
//! restarts and the start histogram as they change, and other requests are refused.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use vserver_e2e::daemon::*;
use vserver_e2e::require_root;

const T: Duration = Duration::from_secs(10);

/// A port of 127.0.0.1 that nothing listens on now (the kernel's pick for port 0).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// One HTTP/1.1 exchange of `request_line` with the endpoint at `addr`: (status, headers, body).
fn http(addr: SocketAddr, request_line: &str) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, T)?;
    s.set_read_timeout(Some(T))?;
    write!(s, "{request_line}\r\nHost: {addr}\r\nUser-Agent: vserver-e2e\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no end of the head: {text:?}"));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status: {head:?}"));
    Ok((status, head.to_string(), body.to_string()))
}

/// The value of the series written exactly `series` (name and labels), if it is there.
fn value(body: &str, series: &str) -> Option<f64> {
    body.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn metrics(addr: SocketAddr) -> String {
    let (status, head, body) = http(addr, "GET /metrics HTTP/1.1").expect("GET /metrics");
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(head.to_ascii_lowercase().contains("\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8"), "{head}");
    body
}

#[test]
fn metrics_are_served_with_the_option_and_only_then() {
    require_root!();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let config = format!("context = 741\n{CTL_INIT}");

    // Control: a daemon without the option, with a running vserver, listens on no port.
    with_daemon("d-metrics-off", async |d| {
        d.ctl_root("m");
        d.config("m", &config);
        d.start().await;
        d.manager().await.start_vserver("m").await.unwrap();
        let refused = http(addr, "GET /metrics HTTP/1.1").expect_err("nothing listens without --metrics-listen");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused, "{refused}");
        d.manager().await.stop_vserver("m").await.unwrap();
    });

    with_daemon("d-metrics", async |d| {
        d.ctl_root("m");
        d.config("m", &config);
        d.args = vec!["--metrics-listen".into(), addr.to_string()];
        d.start().await;

        // Before any start: known, stopped, no figures, no start observed.
        let body = metrics(addr);
        assert_eq!(value(&body, "vserverd_vservers"), Some(1.0), "{body}");
        assert_eq!(value(&body, r#"vserver_state{name="m",state="stopped"}"#), Some(1.0), "{body}");
        assert_eq!(value(&body, r#"vserver_state{name="m",state="running"}"#), Some(0.0), "{body}");
        assert_eq!(value(&body, r#"vserver_processes{name="m"}"#), None, "{body}");
        assert_eq!(value(&body, "vserverd_start_duration_seconds_count"), Some(0.0), "{body}");

        // Running: its state, processes, memory and start time; one start in the histogram.
        let m = d.manager().await;
        m.start_vserver("m").await.unwrap();
        let body = metrics(addr);
        assert_eq!(value(&body, r#"vserver_state{name="m",state="running"}"#), Some(1.0), "{body}");
        assert_eq!(value(&body, r#"vserver_state{name="m",state="stopped"}"#), Some(0.0), "{body}");
        let processes = value(&body, r#"vserver_processes{name="m"}"#).expect("processes of a running vserver");
        assert!(processes >= 1.0, "{body}");
        let memory = value(&body, r#"vserver_memory_bytes{name="m"}"#).expect("memory of a running vserver");
        assert!(memory > 0.0, "{body}");
        assert!(value(&body, r#"vserver_cpu_seconds_total{name="m",mode="user"}"#).is_some(), "{body}");
        let started = value(&body, r#"vserver_start_time_seconds{name="m"}"#).expect("start time");
        assert!((started - d.summary("m").await.started_at as f64 / 1e6).abs() < 0.001, "StartedAt, in seconds: {body}");
        assert_eq!(value(&body, "vserverd_start_duration_seconds_count"), Some(1.0), "{body}");
        assert_eq!(value(&body, r#"vserverd_start_duration_seconds_bucket{le="+Inf"}"#), Some(1.0), "{body}");
        assert!(value(&body, "vserverd_start_duration_seconds_sum").unwrap() > 0.0, "{body}");
        assert_eq!(value(&body, r#"vserver_restarts_total{name="m"}"#), Some(0.0), "{body}");

        // A restart is counted, and is a second start.
        m.restart_vserver("m").await.unwrap();
        let body = metrics(addr);
        assert_eq!(value(&body, r#"vserver_restarts_total{name="m"}"#), Some(1.0), "{body}");
        assert_eq!(value(&body, "vserverd_start_duration_seconds_count"), Some(2.0), "{body}");

        // Stopped: the state follows, the run's figures go.
        m.stop_vserver("m").await.unwrap();
        let body = metrics(addr);
        assert_eq!(value(&body, r#"vserver_state{name="m",state="stopped"}"#), Some(1.0), "{body}");
        assert_eq!(value(&body, r#"vserver_state{name="m",state="running"}"#), Some(0.0), "{body}");
        assert_eq!(value(&body, r#"vserver_processes{name="m"}"#), None, "{body}");
        assert_eq!(value(&body, r#"vserver_memory_bytes{name="m"}"#), None, "{body}");

        // Other paths, other methods, garbage.
        let (status, _, _) = http(addr, "GET /other HTTP/1.1").unwrap();
        assert_eq!(status, 404);
        let (status, head, _) = http(addr, "POST /metrics HTTP/1.1").unwrap();
        assert_eq!(status, 405);
        assert!(head.contains("\r\nAllow: GET, HEAD"), "{head}");
        let (status, _, _) = http(addr, "hello").unwrap();
        assert_eq!(status, 400);
        // A client that sends nothing is answered and closed after the read timeout, and the
        // endpoint still serves meanwhile.
        let mut idle = TcpStream::connect(addr).unwrap();
        assert!(metrics(addr).contains("vserverd_vservers 1\n"));
        idle.set_read_timeout(Some(T)).unwrap();
        let mut text = String::new();
        idle.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 408 "), "{text:?}");
        // A head larger than the limit ends the connection (with a 400 the client may not get
        // to read once the endpoint closes on the rest), and the endpoint serves on.
        let mut big = TcpStream::connect(addr).unwrap();
        big.set_read_timeout(Some(T)).unwrap();
        let _ = big.write_all(format!("GET /metrics HTTP/1.1\r\nX-Filler: {}\r\n", "x".repeat(20_000)).as_bytes());
        let mut text = Vec::new();
        let ended = big.read_to_end(&mut text);
        assert!(!matches!(&ended, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)), "{ended:?}");
        assert!(!String::from_utf8_lossy(&text).starts_with("HTTP/1.1 200"), "{}", String::from_utf8_lossy(&text));
        assert!(metrics(addr).contains("vserverd_vservers 1\n"));
    });
}
