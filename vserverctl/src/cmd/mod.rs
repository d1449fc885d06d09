//! The verbs, one module each, and what they share: the bus connection, the proxies, the
//! per-vserver loop and the report table of `start --onboot` / `stop --all`.

pub mod build;
pub mod check;
pub mod console;
pub mod destroy;
pub mod du;
pub mod exec_many;
pub mod enter;
pub mod generate;
pub mod kill;
pub mod list;
pub mod logs;
pub mod onboot;
pub mod ps;
pub mod pstree;
pub mod reload;
pub mod restart;
pub mod running;
pub mod show;
pub mod start;
pub mod stat;
pub mod status;
pub mod stop;
pub mod template;

use vserver_api::proxy::{ManagerProxy, VServerProxy};
use vserver_api::{BootReport, VServerError};
use zbus::proxy::CacheProperties;
use zbus::wire::OwnedFd;
use zbus::Connection;

use crate::error::{exit, CtlError, Kind};
use crate::output::{self, Align, Format, Table};
use crate::polkit::Auth;

/// The default system bus address of the D-Bus specification.
const DEFAULT_SYSTEM_BUS: &str = "unix:path=/var/run/dbus/system_bus_socket";

/// Everything a verb that talks to vserverd needs.
pub struct Ctx {
    pub conn: Connection,
    pub format: Format,
    /// Whether calls that change something may make polkit ask the user.
    pub auth: Auth,
}

/// The address we connect to, for messages.
pub fn bus_address_for_display(explicit: Option<&str>) -> String {
    explicit
        .map(str::to_owned)
        .or_else(|| std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| DEFAULT_SYSTEM_BUS.to_owned())
}

/// Connects to the system bus, or to `address` when given.
pub async fn connect(address: Option<&str>) -> Result<Connection, CtlError> {
    let built = match address {
        Some(a) => zbus::connection::Builder::address(a).build().await,
        None => Connection::system().await,
    };
    built.map_err(|err| CtlError::Connect { address: bus_address_for_display(address), err })
}

impl Ctx {
    pub async fn manager(&self) -> Result<Manager<'_>, CtlError> {
        let proxy = ManagerProxy::new(&self.conn).await.map_err(|e| CtlError::api("reach vserverd", None, e))?;
        Ok(Manager { proxy, auth: &self.auth })
    }

    /// The object of vserver `name` (via `GetVServer`, which says when there is no such
    /// vserver). With `cache`, every property is fetched at once (one consistent snapshot).
    pub async fn vserver(&self, name: &str, action: &str, cache: bool) -> Result<VServerProxy<'static>, CtlError> {
        let path = self.manager().await?.get_vserver(name).await.map_err(|e| CtlError::api(action, Some(name), e))?;
        VServerProxy::builder(&self.conn)
            .path(path)
            .cache_properties(if cache { CacheProperties::Yes } else { CacheProperties::No })
            .build()
            .await
            .map_err(|e| CtlError::api(action, Some(name), e))
    }
}

/// The manager object. Reading goes through [`ManagerProxy`] (`Deref`); every method that
/// changes something (those vserverd authorizes, see its `daemon/auth.rs`) is one of ours,
/// sent with the interactive-authorization header flag when [`Auth`] says so, a polkit agent
/// running for the time of the call.
pub struct Manager<'c> {
    proxy: ManagerProxy<'static>,
    auth: &'c Auth,
}

impl std::ops::Deref for Manager<'_> {
    type Target = ManagerProxy<'static>;
    fn deref(&self) -> &ManagerProxy<'static> {
        &self.proxy
    }
}

impl Manager<'_> {
    async fn change<B, R>(&self, method: &'static str, body: &B) -> Result<R, VServerError>
    where
        B: serde::Serialize + zbus::DynamicType,
        R: for<'d> zbus::wire::DynamicDeserialize<'d>,
    {
        let _agent = self.auth.agent();
        let reply = self.proxy.inner().call_with_flags(method, self.auth.flags(), body).await?;
        // Only a NO_REPLY_EXPECTED call has no reply, and we never send one.
        reply.ok_or_else(|| VServerError::ZBus(zbus::Error::Failure(format!("{method}: no reply"))))
    }

    pub async fn start_vserver(&self, name: &str) -> Result<(), VServerError> {
        self.change("StartVServer", &(name,)).await
    }
    pub async fn stop_vserver(&self, name: &str) -> Result<(), VServerError> {
        self.change("StopVServer", &(name,)).await
    }
    pub async fn restart_vserver(&self, name: &str) -> Result<(), VServerError> {
        self.change("RestartVServer", &(name,)).await
    }
    pub async fn kill_vserver(&self, name: &str, whom: &str, signal: i32) -> Result<(), VServerError> {
        self.change("KillVServer", &(name, whom, signal)).await
    }
    pub async fn kill_process(&self, name: &str, pid: u32, inner: bool, signal: i32) -> Result<(), VServerError> {
        self.change("KillProcess", &(name, pid, inner, signal)).await
    }
    pub async fn reload(&self) -> Result<Vec<String>, VServerError> {
        self.change("Reload", &()).await
    }
    pub async fn set_onboot(&self, name: &str, onboot: bool) -> Result<(), VServerError> {
        self.change("SetOnboot", &(name, onboot)).await
    }
    pub async fn start_onboot(&self) -> Result<Vec<BootReport>, VServerError> {
        self.change("StartOnboot", &()).await
    }
    pub async fn stop_all(&self) -> Result<Vec<BootReport>, VServerError> {
        self.change("StopAll", &()).await
    }
    #[allow(clippy::too_many_arguments)]
    pub async fn enter_vserver(
        &self,
        name: &str,
        user: &str,
        command: &[&str],
        tty: bool,
        term: &str,
        rows: u16,
        columns: u16,
    ) -> Result<(OwnedFd, OwnedFd, OwnedFd, OwnedFd), VServerError> {
        self.change("EnterVServer", &(name, user, command, tty, term, rows, columns)).await
    }
    pub async fn open_console(&self, name: &str) -> Result<OwnedFd, VServerError> {
        self.change("OpenConsole", &(name,)).await
    }
}

/// Prints a message on standard error, prefixed like every message of ours.
pub fn warn(msg: impl std::fmt::Display) {
    eprintln!("vserverctl: {msg}");
}

/// Errors after which acting on the next vserver of a list is pointless.
fn is_global(kind: Kind) -> bool {
    matches!(kind, Kind::DaemonDown | Kind::BusUnreachable | Kind::AccessDenied | Kind::Unsupported | Kind::Timeout)
}

/// Runs `op` for each name in turn. An error about one vserver is printed and the others are
/// still tried (exit 1 at the end); an error about the bus or the daemon ends the loop; the
/// kind `benign` (for example "already running" for `start`) is only a notice: NAME and its text.
pub async fn for_each_name<F, Fut>(names: &[String], benign: Option<(Kind, &str)>, mut op: F) -> Result<u8, CtlError>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), CtlError>>,
{
    let mut code = exit::OK;
    for name in names {
        match op(name.clone()).await {
            Ok(()) => {}
            Err(e) if Some(e.kind()) == benign.map(|b| b.0) => {
                warn(format!("{name} {}", benign.map(|b| b.1).unwrap_or_default()))
            }
            Err(e) if is_global(e.kind()) => return Err(e),
            Err(e) => {
                warn(e);
                code = exit::FAILURE;
            }
        }
    }
    Ok(code)
}

/// The outcome of `StartOnboot` / `StopAll`: a NAME RESULT MESSAGE table (or JSON), and
/// exit 1 when any failed.
pub fn render_reports(reports: &[BootReport], format: Format, done: &str) -> (String, u8) {
    let failed = reports.iter().filter(|r| !r.ok).count();
    let code = if failed > 0 { exit::FAILURE } else { exit::OK };
    if format.json {
        return (output::json_string(reports), code);
    }
    let mut t = Table::new(&[("NAME", Align::Left), ("RESULT", Align::Left), ("MESSAGE", Align::Left)]);
    for r in reports {
        let result = if r.ok { done } else { "failed" };
        t.row(vec![r.name.clone(), result.to_owned(), r.message.clone()]);
    }
    t.footer(format!("{} {done}, {failed} failed.", reports.len() - failed));
    (t.render(format.legend), code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each changing call names a method of the D-Bus contract with as many arguments as it
    /// sends (they are written out here beside the proxy's, for the per-call flag): a typo or a
    /// drift fails here rather than at run time.
    #[test]
    fn changing_calls_match_the_contract() {
        let contract = include_str!("../../../vserverd/api/org.vserverd.VServer1.xml");
        let in_args = |method: &str| -> Option<usize> {
            let start = contract.find(&format!("<method name=\"{method}\">"))?;
            let body = &contract[start..start + contract[start..].find("</method>")?];
            Some(body.matches("direction=\"in\"").count())
        };
        let source = include_str!("mod.rs");
        let calls: Vec<(&str, usize)> = source
            .split("self.change(\"")
            .skip(1)
            .filter_map(|rest| {
                let (method, rest) = rest.split_once('"')?;
                let args = rest.strip_prefix(", &(")?.split_once(')')?.0;
                Some((method, args.split(',').filter(|a| !a.trim().is_empty()).count()))
            })
            .collect();
        assert!(calls.len() >= 11, "the calls were not found: {calls:?}");
        for (method, n) in calls {
            assert_eq!(in_args(method), Some(n), "{method} with {n} arguments is not in the contract");
        }
    }

    fn report(name: &str, ok: bool, message: &str) -> BootReport {
        BootReport { name: name.into(), ok, message: message.into() }
    }

    #[test]
    fn reports_table_and_exit_code() {
        let reports = [report("web1", true, ""), report("db", false, "mount /proc: EPERM")];
        let (text, code) = render_reports(&reports, Format { json: false, legend: true }, "started");
        assert_eq!(code, 1);
        assert_eq!(
            text,
            "NAME  RESULT   MESSAGE\nweb1  started\ndb    failed   mount /proc: EPERM\n\n1 started, 1 failed.\n"
        );
        let (text, code) = render_reports(&reports[..1], Format { json: false, legend: false }, "stopped");
        assert_eq!((text.as_str(), code), ("web1  stopped\n", 0));
    }

    #[test]
    fn reports_json() {
        let (text, code) = render_reports(&[report("a", false, "x")], Format { json: true, legend: true }, "started");
        assert_eq!(code, 1);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v, serde_json::json!([{"name": "a", "ok": false, "message": "x"}]));
    }

    #[test]
    fn bus_address_shown() {
        assert_eq!(bus_address_for_display(Some("unix:path=/x")), "unix:path=/x");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn for_each_name_goes_on_after_a_vserver_error_and_stops_on_a_bus_error() {
        use vserver_api::VServerError;
        let names: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let mut seen = Vec::new();
        let code = for_each_name(&names, Some((Kind::AlreadyRunning, "is already running")), |n| {
            seen.push(n.clone());
            async move {
                match n.as_str() {
                    "a" => Err(CtlError::api("start a", Some("a"), VServerError::AlreadyRunning("a".into()))),
                    _ => Ok(()),
                }
            }
        })
        .await
        .unwrap();
        assert_eq!((code, seen.len()), (0, 3));

        let code = for_each_name(&names, None, |n| async move {
            match n.as_str() {
                "b" => Err(CtlError::api("start b", Some("b"), VServerError::StartFailed(vserver_api::StartFailure::new("x")))),
                _ => Ok(()),
            }
        })
        .await
        .unwrap();
        assert_eq!(code, 1);

        let mut tried = 0;
        let err = for_each_name(&names, None, |_| {
            tried += 1;
            async { Err(CtlError::api("start", None, VServerError::access_denied("root only"))) }
        })
        .await
        .unwrap_err();
        assert_eq!((err.kind(), tried), (Kind::AccessDenied, 1));
    }
}
