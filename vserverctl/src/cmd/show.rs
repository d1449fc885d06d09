//! `vserverctl show NAME [-p PROP]... [--value]`: the vserver object's properties as the bus has
//! them (`org.vserverd.VServer1.VServer`, every one, sorted), one `Key=value` line each, as
//! `machinectl show` prints them: for scripts (`show web1 -p Leader --value`). Booleans are
//! `yes`/`no`, lists space-separated, times in microseconds since the epoch.

use std::collections::BTreeMap;

use zbus::fdo::PropertiesProxy;
use zbus::Variant;

use super::Ctx;
use crate::error::{exit, CtlError};
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vserver.
    pub name: String,
    /// Only these properties (repeat the option, or separate them by commas).
    #[arg(short = 'p', long = "property", value_name = "NAME", value_delimiter = ',')]
    pub properties: Vec<String>,
    /// Print the values only, without `Key=`.
    #[arg(long)]
    pub value: bool,
}

/// A property's value as text.
fn text(v: &Variant<'_>) -> String {
    match v {
        Variant::Bool(b) => if *b { "yes" } else { "no" }.into(),
        Variant::Str(s) => s.as_str().to_owned(),
        Variant::ObjectPath(p) => p.as_str().to_owned(),
        Variant::Variant(inner) => text(inner),
        Variant::Array(a) => a.inner().iter().map(text).collect::<Vec<_>>().join(" "),
        Variant::U8(n) => n.to_string(),
        Variant::I16(n) => n.to_string(),
        Variant::U16(n) => n.to_string(),
        Variant::I32(n) => n.to_string(),
        Variant::U32(n) => n.to_string(),
        Variant::I64(n) => n.to_string(),
        Variant::U64(n) => n.to_string(),
        Variant::F64(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// A property's value as JSON: booleans, numbers, strings and lists as such.
fn json(v: &Variant<'_>) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Variant::Bool(b) => Value::Bool(*b),
        Variant::Variant(inner) => json(inner),
        Variant::Array(a) => Value::Array(a.inner().iter().map(json).collect()),
        Variant::U8(n) => Value::from(*n),
        Variant::U16(n) => Value::from(*n),
        Variant::U32(n) => Value::from(*n),
        Variant::U64(n) => Value::from(*n),
        Variant::I16(n) => Value::from(*n),
        Variant::I32(n) => Value::from(*n),
        Variant::I64(n) => Value::from(*n),
        Variant::F64(n) => Value::from(*n),
        other => Value::String(text(other)),
    }
}

/// The lines of `properties` (name to value), only `wanted` ones when given, in their order.
pub fn render(properties: &BTreeMap<String, String>, wanted: &[String], value_only: bool) -> Result<String, String> {
    let names: Vec<&String> = if wanted.is_empty() { properties.keys().collect() } else { wanted.iter().collect() };
    let mut out = String::new();
    for name in names {
        let v = properties
            .get(name.as_str())
            .ok_or_else(|| format!("no property {name:?} (there are: {})", properties.keys().cloned().collect::<Vec<_>>().join(", ")))?;
        if !value_only {
            out.push_str(name);
            out.push('=');
        }
        out.push_str(v);
        out.push('\n');
    }
    Ok(out)
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, CtlError> {
    let action = format!("read the properties of {}", args.name);
    let path = ctx.manager().await?.get_vserver(&args.name).await.map_err(|e| CtlError::api(&action, Some(&args.name), e))?;
    let props = PropertiesProxy::builder(&ctx.conn)
        .destination(vserver_api::BUS_NAME)
        .path(path)
        .build()
        .await
        .map_err(|e| CtlError::api(&action, Some(&args.name), e))?;
    let interface = zbus::names::InterfaceName::from_static_str_unchecked(vserver_api::VSERVER_INTERFACE);
    let all = props.get_all(interface).await.map_err(|e| CtlError::api(&action, Some(&args.name), zbus::Error::from(e)))?;
    if ctx.format.json {
        let map: BTreeMap<&String, serde_json::Value> =
            all.iter().filter(|(k, _)| args.properties.is_empty() || args.properties.contains(k)).map(|(k, v)| (k, json(v))).collect();
        output::print(&output::json_string(&map));
        return Ok(exit::OK);
    }
    let texts: BTreeMap<String, String> = all.iter().map(|(k, v)| (k.clone(), text(v))).collect();
    match render(&texts, &args.properties, args.value) {
        Ok(out) => {
            output::print(&out);
            Ok(exit::OK)
        }
        Err(msg) => Err(CtlError::Usage(format!("{}: {msg}", args.name))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props() -> BTreeMap<String, String> {
        [("State", "running"), ("Leader", "4242"), ("Onboot", "yes"), ("Addresses", "192.0.2.10/24 2001:db8::10/64")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn every_property_sorted_or_the_ones_asked_for_in_their_order() {
        assert_eq!(render(&props(), &[], false).unwrap(), "Addresses=192.0.2.10/24 2001:db8::10/64\nLeader=4242\nOnboot=yes\nState=running\n");
        let wanted = ["State".to_owned(), "Leader".to_owned()];
        assert_eq!(render(&props(), &wanted, false).unwrap(), "State=running\nLeader=4242\n");
        assert_eq!(render(&props(), &wanted, true).unwrap(), "running\n4242\n");
        let e = render(&props(), &["Pid".to_owned()], false).unwrap_err();
        assert!(e.contains("\"Pid\"") && e.contains("Leader"), "{e}");
    }

    #[test]
    fn values_as_text() {
        assert_eq!(text(&Variant::Bool(true)), "yes");
        assert_eq!(text(&Variant::U32(7)), "7");
        assert_eq!(text(&Variant::U64(1_700_000_000_000_000)), "1700000000000000");
        assert_eq!(text(&Variant::from("web1")), "web1");
        assert_eq!(json(&Variant::U32(7)), serde_json::json!(7));
        assert_eq!(json(&Variant::Bool(false)), serde_json::json!(false));
    }
}
