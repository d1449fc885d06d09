//! `bus-call ADDRESS PATH INTERFACE METHOD [ARG…]`: one method call to `org.vserverd.VServer1`
//! on the bus at ADDRESS, for the authorization tests (run as another user, or in another PID
//! namespace). An ARG is a string, `i:N` for an int32 or `b:true`/`b:false` for a boolean.
//! `bus-call ADDRESS own` asks for the name `org.vserverd.VServer1` instead. With
//! `BUS_CALL_INTERACTIVE=1` in the environment, the call allows interactive authorization (the
//! message flag); its reply must then have no arguments to count as `ok`.
//!
//! Prints `ok` (exit 0), or the D-Bus error name on the first line and its message on the
//! second (exit 1); any other failure goes to stderr (exit 2).

use vserver_api::BUS_NAME;
use zbus::fdo::{DBusProxy, RequestNameFlags, RequestNameReply};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 2 {
        eprintln!("usage: bus-call ADDRESS PATH INTERFACE METHOD [ARG…] | bus-call ADDRESS own");
        std::process::exit(2);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let code = rt.block_on(run(&args));
    std::process::exit(code);
}

async fn run(args: &[String]) -> i32 {
    let conn = match zbus::connection::Builder::address(args[0].as_str()).build().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bus-call: connect: {e}");
            return 2;
        }
    };
    let result = if args[1] == "own" {
        let dbus = match DBusProxy::new(&conn).await {
            Ok(p) => p,
            Err(e) => return report(Err(e)),
        };
        match dbus.request_name(BUS_NAME.try_into().unwrap(), RequestNameFlags::DO_NOT_QUEUE).await {
            Ok(RequestNameReply::PrimaryOwner) => Ok(()),
            Ok(other) => {
                println!("not-owner\n{other:?}");
                return 1;
            }
            Err(e) => Err(e.into()),
        }
    } else {
        if args.len() < 4 {
            eprintln!("bus-call: PATH INTERFACE METHOD needed");
            return 2;
        }
        call(&conn, &args[1], &args[2], &args[3], &args[4..]).await
    };
    report(result)
}

fn report(r: zbus::Result<()>) -> i32 {
    match r {
        Ok(()) => {
            println!("ok");
            0
        }
        Err(zbus::Error::MethodError(name, desc, _)) => {
            println!("{}\n{}", name.as_str(), desc.unwrap_or_default());
            1
        }
        Err(zbus::Error::FDO(e)) => {
            use zbus::DBusError;
            println!("{}\n{}", e.name(), e.description().unwrap_or_default());
            1
        }
        Err(e) => {
            eprintln!("bus-call: {e}");
            2
        }
    }
}

async fn call(conn: &zbus::Connection, path: &str, iface: &str, method: &str, args: &[String]) -> zbus::Result<()> {
    let interactive = std::env::var_os("BUS_CALL_INTERACTIVE").is_some_and(|v| v == "1");
    let int = |s: &str| s.strip_prefix("i:").and_then(|n| n.parse::<i32>().ok());
    let boolean = |s: &str| s.strip_prefix("b:").and_then(|b| b.parse::<bool>().ok());
    let kinds: String = args.iter().map(|a| if int(a).is_some() { 'i' } else if boolean(a).is_some() { 'b' } else { 's' }).collect();
    let call = Call { conn, path, iface, method, interactive };
    match (kinds.as_str(), args) {
        ("", _) => call.send(&()).await,
        ("s", [a]) => call.send(&(a,)).await,
        ("si", [a, b]) => call.send(&(a, int(b).unwrap())).await,
        ("sb", [a, b]) => call.send(&(a, boolean(b).unwrap())).await,
        ("ss", [a, b]) => call.send(&(a, b)).await,
        ("ssi", [a, b, c]) => call.send(&(a, b, int(c).unwrap())).await,
        _ => Err(zbus::Error::Failure(format!("argument kinds {kinds:?} not supported"))),
    }
}

struct Call<'a> {
    conn: &'a zbus::Connection,
    path: &'a str,
    iface: &'a str,
    method: &'a str,
    interactive: bool,
}

impl Call<'_> {
    async fn send<B: zbus::export::serde::Serialize + zbus::DynamicType>(&self, body: &B) -> zbus::Result<()> {
        if !self.interactive {
            return self.conn.call_method(Some(BUS_NAME), self.path, Some(self.iface), self.method, body).await.map(|_| ());
        }
        let proxy = zbus::proxy::Builder::<zbus::Proxy<'_>>::new(self.conn)
            .destination(BUS_NAME)
            .path(self.path)
            .interface(self.iface)
            .cache_properties(zbus::proxy::CacheProperties::No)
            .build()
            .await?;
        proxy.call_with_flags::<_, _, ()>(self.method, zbus::proxy::MethodFlags::ALLOW_INTERACTIVE_AUTH, body).await.map(|_| ())
    }
}
