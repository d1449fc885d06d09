//! The paper's `vreboot` / `vhalt` (rebootmgr): a control socket inside each running vserver
//! through which root inside may restart or stop *its own* vserver and read its status.
//!
//! Each run gets a host directory `RUN_DIR/NAME/guest/`, bound read-only at `/run/vserver`
//! inside. It holds `control`, a unix socket (mode 0600: root inside only) on which the daemon
//! listens for this vserver alone, and `vreboot`, `vhalt`, `vstatus`: one static, free-standing
//! binary ([`vserver_engine::freestanding::VTOOL`]) under three names. The daemon knows which
//! vserver asks from the socket the request arrived on, never from the request; nothing else is
//! reachable through it (no other vserver, no host operation). Because the directory, not the
//! socket, is bound in, a restarted daemon re-creates the socket in it and the vserver sees the
//! new one.
//!
//! Protocol: one request line, `reboot` (a full restart: stop, hooks with
//! `VSERVER_TARGET=reboot`, start; `Restarts` + 1), `halt` (a stop) or `status`; one answer
//! line, `ok …` or `error …`. At most [`RATE_LIMIT`] requests per vserver per
//! [`RATE_WINDOW`], whatever they are.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tracing::{info, warn};
use vserver_api::{State, VServerError};
use vserver_engine::plan::{BindMount, LaunchPlan};

use vserver_config::paths::Paths;
use vserver_engine::freestanding::VTOOL;

/// What the control socket needs of a vserver; its supervisor provides it (the socket knows
/// nothing else of the daemon).
pub trait Controlled: Send + Sync + 'static {
    fn name(&self) -> &str;
    /// Its state, the run's pid 1 with its start time and the context, and the restart count.
    fn control_status(&self) -> (State, Option<(i32, u64, u32)>, u32);
    /// Changes whenever the status does.
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;
    fn restart(self: &Arc<Self>) -> impl std::future::Future<Output = Result<(), VServerError>> + Send;
    fn stop(self: &Arc<Self>) -> impl std::future::Future<Output = Result<(), VServerError>> + Send;
    /// Root inside, as the host sees it: 0, or the first id of the vserver's range when it runs
    /// in a user namespace of its own.
    fn root_uid(&self) -> u32 {
        0
    }
}

/// Where the guest directory appears inside.
pub const INSIDE: &str = "/run/vserver";
/// Requests per vserver per window.
pub const RATE_LIMIT: usize = 5;
pub const RATE_WINDOW: Duration = Duration::from_secs(60);
/// The names the tool answers to.
pub const TOOLS: [&str; 3] = ["vreboot", "vhalt", "vstatus"];

/// `RUN_DIR/NAME/guest`.
pub fn guest_dir(paths: &Paths, name: &str) -> PathBuf {
    paths.vserver_run_dir(name).join("guest")
}

/// The host path of the control socket of `name`.
pub fn socket_path(paths: &Paths, name: &str) -> PathBuf {
    guest_dir(paths, name).join("control")
}

/// The tools, written once per daemon as `RUN_DIR/.vtool` (read-only, only ever reached inside a
/// vserver through a read-only bind); each vserver's guest directory links to it.
fn shared_tool(paths: &Paths) -> std::io::Result<PathBuf> {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    if let Some(p) = DONE.get() {
        if p.exists() {
            return Ok(p.clone());
        }
    }
    let p = paths.run_dir.join(".vtool");
    let tmp = paths.run_dir.join(format!(".vtool.{}", std::process::id()));
    std::fs::create_dir_all(&paths.run_dir)?;
    std::fs::write(&tmp, VTOOL)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555))?;
    std::fs::rename(&tmp, &p)?;
    let _ = DONE.set(p.clone());
    Ok(p)
}

/// Before a start: the guest directory with the tools, and its read-only bind in the plan.
pub fn with_guest_dir(paths: &Paths, name: &str, mut plan: LaunchPlan) -> Result<LaunchPlan, VServerError> {
    let dir = guest_dir(paths, name);
    let e = |what: &Path, err: std::io::Error| VServerError::failed(format!("{name}: {}: {err}", what.display()));
    std::fs::create_dir_all(&dir).map_err(|err| e(&dir, err))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).map_err(|err| e(&dir, err))?;
    let shared = shared_tool(paths).map_err(|err| e(&paths.run_dir, err))?;
    for tool in TOOLS {
        let p = dir.join(tool);
        let _ = std::fs::remove_file(&p);
        // A hard link to the daemon's one copy: nothing to write at a start.
        if std::fs::hard_link(&shared, &p).is_err() {
            let tmp = dir.join(format!(".{tool}.tmp"));
            std::fs::write(&tmp, VTOOL).map_err(|err| e(&tmp, err))?;
            std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o555)).map_err(|err| e(&tmp, err))?;
            std::fs::rename(&tmp, &p).map_err(|err| e(&p, err))?;
        }
    }
    if !plan.mounts.iter().any(|m| m.target.trim_end_matches('/') == INSIDE) {
        plan.mounts.push(BindMount { source: dir, target: INSIDE.into(), readonly: true });
    }
    Ok(plan)
}

/// Requests seen per vserver (kept across runs: a vserver cannot reset its budget by rebooting).
fn budget() -> &'static Mutex<HashMap<String, Vec<Instant>>> {
    static B: OnceLock<Mutex<HashMap<String, Vec<Instant>>>> = OnceLock::new();
    B.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Counts one request of `name`; false when over the limit.
fn allowed(name: &str) -> bool {
    let mut b = budget().lock().unwrap();
    let v = b.entry(name.to_string()).or_default();
    let now = Instant::now();
    v.retain(|t| now.duration_since(*t) < RATE_WINDOW);
    if v.len() >= RATE_LIMIT {
        return false;
    }
    v.push(now);
    true
}

/// After a start or an adoption: listens on the control socket of the current run of `sup`
/// until that run is over.
pub fn serve<V: Controlled>(sup: &Arc<V>, paths: &Paths) {
    let Some((pid, start_time, _)) = sup.control_status().1 else { return };
    let key = (pid, start_time);
    let dir = guest_dir(paths, sup.name());
    if !dir.is_dir() {
        return; // a run started without one (by an older daemon)
    }
    let path = socket_path(paths, sup.name());
    let _ = std::fs::remove_file(&path);
    let old = unsafe { libc::umask(0o177) };
    let bound = std::os::unix::net::UnixListener::bind(&path);
    unsafe { libc::umask(old) };
    let listener = match bound.and_then(|l| {
        l.set_nonblocking(true)?;
        tokio::net::UnixListener::from_std(l)
    }) {
        Ok(l) => l,
        Err(e) => {
            warn!(vserver = %sup.name(), error = %e, path = %path.display(), "no control socket");
            return;
        }
    };
    let sup = Arc::clone(sup);
    tokio::spawn(async move {
        let mut changed = sup.changes();
        loop {
            tokio::select! {
                r = listener.accept() => match r {
                    Ok((stream, _)) => {
                        let sup = Arc::clone(&sup);
                        tokio::spawn(async move { handle(sup, stream).await });
                    }
                    Err(e) => {
                        warn!(vserver = %sup.name(), error = %e, "control socket");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                r = changed.changed() => {
                    let (state, run, _) = sup.control_status();
                    let same_run = run.map(|(pid, start_time, _)| (pid, start_time)) == Some(key);
                    if r.is_err() || !same_run || !state.is_active() {
                        break;
                    }
                }
            }
        }
        // The socket file goes with the run directory; a newer run has bound its own already.
    });
}

/// The most read of a request: a request is one short word and a newline.
pub const MAX_REQUEST: usize = 128;

/// A request on the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Reboot,
    Halt,
    Status,
}

impl Request {
    /// One request line (white space around it is ignored); `None` for anything else.
    pub fn parse(line: &str) -> Option<Request> {
        match line.trim() {
            "reboot" => Some(Request::Reboot),
            "halt" => Some(Request::Halt),
            "status" => Some(Request::Status),
            _ => None,
        }
    }
}

/// The request line in what was read from the socket (at most [`MAX_REQUEST`] bytes are
/// looked at, up to the first newline), trimmed; `None` when nothing came or it is not UTF-8
/// (the connection is then closed without an answer).
pub fn request_line(read: &[u8]) -> Option<&str> {
    let read = &read[..read.len().min(MAX_REQUEST)];
    if read.is_empty() {
        return None;
    }
    let line = read.split(|b| *b == b'\n').next().unwrap_or_default();
    std::str::from_utf8(line).ok().map(str::trim)
}

/// The vserver that asks, as its answer needs it.
#[derive(Debug, Clone, Copy)]
pub struct Asker<'a> {
    pub name: &'a str,
    pub state: State,
    pub context: u32,
    pub restarts: u32,
}

/// The answer to a request line (one line, `ok …` or `error …`), and what to do once it is
/// sent: only a request answered `ok` acts, and only `reboot` and `halt` of a running vserver
/// are answered `ok` with an act.
pub fn answer(line: &str, asker: &Asker) -> (String, Option<Request>) {
    let Asker { name, state, context, restarts } = *asker;
    match Request::parse(line) {
        Some(Request::Status) => (format!("ok {name} {} context={context} restarts={restarts}\n", state.as_str()), None),
        Some(Request::Reboot) if state == State::Running => ("ok rebooting\n".into(), Some(Request::Reboot)),
        Some(Request::Halt) if state == State::Running => ("ok halting\n".into(), Some(Request::Halt)),
        Some(Request::Reboot | Request::Halt) => (format!("error {name} is {}\n", state.as_str()), None),
        None => ("error unknown request (reboot, halt or status)\n".into(), None),
    }
}

/// One request: read a line, answer a line, act.
async fn handle<V: Controlled>(sup: Arc<V>, mut stream: tokio::net::UnixStream) {
    // Root inside only (the socket's mode says so already).
    let peer = stream.peer_cred().ok();
    if peer.map(|c| c.uid()) != Some(sup.root_uid()) {
        let _ = stream.write_all(b"error root only\n").await;
        return;
    }
    let pid = peer.and_then(|c| c.pid()).unwrap_or(0);
    let (rd, mut wr) = stream.split();
    let mut read = Vec::new();
    let mut reader = BufReader::new(rd.take(MAX_REQUEST as u64));
    let got = tokio::time::timeout(Duration::from_secs(5), reader.read_until(b'\n', &mut read)).await;
    if !matches!(got, Ok(Ok(_))) {
        return;
    }
    let Some(request) = request_line(&read) else { return };
    let name = sup.name();
    if !allowed(name) {
        warn!(vserver = %name, request, peer_pid = pid, "control request refused: rate limit");
        let _ = wr.write_all(format!("error rate limited: at most {RATE_LIMIT} requests per {} s\n", RATE_WINDOW.as_secs()).as_bytes()).await;
        return;
    }
    info!(vserver = %name, request, peer_pid = pid, "control request from inside");
    let (state, run, restarts) = sup.control_status();
    let asker = Asker { name, state, context: run.map(|(_, _, context)| context).unwrap_or(0), restarts };
    let (answer, act) = answer(request, &asker);
    let _ = wr.write_all(answer.as_bytes()).await;
    let _ = wr.shutdown().await;
    drop(reader);
    // The answer is out; now the act, which ends the asker too.
    let r = match act {
        Some(Request::Reboot) => sup.restart().await,
        Some(Request::Halt) => sup.stop().await,
        Some(Request::Status) | None => Ok(()),
    };
    if let Err(e) = r {
        warn!(vserver = %sup.name(), request, error = %e, "control request failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tool_is_embedded_and_static() {
        assert!(VTOOL.starts_with(b"\x7fELF"));
        assert!(VTOOL.len() < 64 * 1024, "a small free-standing binary");
    }

    #[test]
    fn request_lines_and_answers() {
        assert_eq!(request_line(b"status\n"), Some("status"));
        assert_eq!(request_line(b" reboot \r\nhalt\n"), Some("reboot"));
        assert_eq!(request_line(b"\n"), Some(""));
        assert_eq!(request_line(b""), None);
        assert_eq!(request_line(b"\xff\n"), None);
        let long = [b"halt".as_slice(), &[b' '; MAX_REQUEST], b"x\n"].concat();
        assert_eq!(request_line(&long), Some("halt"), "what lies past the limit is never read");
        let running = Asker { name: "web1", state: State::Running, context: 1001, restarts: 2 };
        let stopped = Asker { state: State::Stopped, ..running };
        assert_eq!(answer("status", &running), ("ok web1 running context=1001 restarts=2\n".into(), None));
        assert_eq!(answer("reboot", &running), ("ok rebooting\n".into(), Some(Request::Reboot)));
        assert_eq!(answer("halt", &running), ("ok halting\n".into(), Some(Request::Halt)));
        assert_eq!(answer("halt", &stopped), ("error web1 is stopped\n".into(), None));
        assert_eq!(answer("HALT", &running).1, None);
        assert_eq!(answer("halt now", &running), ("error unknown request (reboot, halt or status)\n".into(), None));
    }

    #[test]
    fn requests_are_rate_limited_per_vserver() {
        for _ in 0..RATE_LIMIT {
            assert!(allowed("rate-a"));
        }
        assert!(!allowed("rate-a"));
        assert!(allowed("rate-b"), "another vserver has its own budget");
    }
}
