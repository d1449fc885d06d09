//! `[limits]`: the paper's global limits (cgroups) and ULIMIT (rlimits of init).

use std::ops::RangeInclusive;

use toml::Value;
use vserver_engine::plan::{Resource, Rlimit};

use super::diag::{Loc, Sink};
use super::model::Limits;
use super::schema::{At, Map};
use super::values::{parse_cpu_quota, parse_cpuset, parse_size};

const CGROUP_KEYS: [&str; 8] =
    ["processes", "memory", "memory_swap", "cpu_weight", "cpu_quota", "cpuset", "io_weight", "disk"];

pub(crate) fn resolve(sink: &mut Sink, map: Map<Value>) -> Limits {
    let mut out = Limits::default();
    for (key, at) in map {
        let name = key.get_ref().as_str();
        match name {
            "processes" => out.processes = int(sink, &at, name, 1..=i64::MAX).map(|n| n as u64),
            "memory" => out.memory = size(sink, &at, name, 1),
            "memory_swap" => out.memory_swap = size(sink, &at, name, 0),
            "disk" => out.disk = size(sink, &at, name, 1),
            "cpu_weight" => out.cpu_weight = int(sink, &at, name, 1..=10000).map(|n| n as u32),
            "io_weight" => out.io_weight = int(sink, &at, name, 1..=10000).map(|n| n as u32),
            "cpu_quota" => out.cpu_quota = text(sink, &at, name).and_then(|t| report(sink, &at, parse_cpu_quota(t))),
            "cpuset" => out.cpuset = text(sink, &at, name).and_then(|t| report(sink, &at, parse_cpuset(t))),
            "optional" => out.optional = optional(sink, &at),
            _ => match Resource::from_name(name) {
                Some(resource) => out.rlimits.extend(rlimit(sink, &at, resource)),
                None => {
                    let known: Vec<&str> = CGROUP_KEYS
                        .iter()
                        .copied()
                        .chain(["optional"])
                        .chain(Resource::ALL.iter().map(|r| r.0))
                        .collect();
                    let loc = Loc { file: at.file, span: key.span() };
                    sink.error(&loc, format!("unknown limit `{name}` (known: {})", known.join(", ")));
                }
            },
        }
    }
    out
}

/// `optional = ["io_weight", …]`: cgroup limits that may be skipped where the host lacks
/// their controller (the start then goes on without them).
fn optional(sink: &mut Sink, at: &At<Value>) -> Vec<String> {
    let Value::Array(items) = &at.value else {
        wrong_type(sink, at, "optional", "an array of limit names");
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        match item.as_str() {
            Some(k) if CGROUP_KEYS.contains(&k) => out.push(k.to_string()),
            Some(k) => sink.error(&at.loc(), format!("`limits.optional`: {k:?} is not a cgroup limit (known: {})", CGROUP_KEYS.join(", "))),
            None => wrong_type(sink, at, "optional", "an array of limit names"),
        }
    }
    out
}

fn report<T, E: std::fmt::Display>(sink: &mut Sink, at: &At<Value>, r: Result<T, E>) -> Option<T> {
    r.map_err(|e| sink.error(&at.loc(), e.to_string())).ok()
}

fn wrong_type(sink: &mut Sink, at: &At<Value>, key: &str, expected: &str) {
    sink.error(&at.loc(), format!("invalid type for `limits.{key}`: {}, expected {expected}", at.value.type_str()));
}

fn int(sink: &mut Sink, at: &At<Value>, key: &str, range: RangeInclusive<i64>) -> Option<i64> {
    match at.value {
        Value::Integer(n) if range.contains(&n) => Some(n),
        Value::Integer(n) => {
            sink.error(&at.loc(), format!("`limits.{key}` must be from {} to {}, not {n}", range.start(), range.end()));
            None
        }
        _ => {
            wrong_type(sink, at, key, "an integer");
            None
        }
    }
}

fn text<'a>(sink: &mut Sink, at: &'a At<Value>, key: &str) -> Option<&'a str> {
    match &at.value {
        Value::String(s) => Some(s),
        _ => {
            wrong_type(sink, at, key, "a string");
            None
        }
    }
}

/// Bytes, as an integer or a string such as "512M"; at least `min`.
fn size(sink: &mut Sink, at: &At<Value>, key: &str, min: u64) -> Option<u64> {
    let n = match &at.value {
        Value::Integer(n) => u64::try_from(*n).ok(),
        Value::String(s) => Some(report(sink, at, parse_size(s))?),
        _ => {
            wrong_type(sink, at, key, "a size (bytes, or a string such as \"512M\")");
            return None;
        }
    };
    match n {
        Some(n) if n >= min => Some(n),
        _ => {
            sink.error(&at.loc(), format!("`limits.{key}` must be at least {min} bytes"));
            None
        }
    }
}

/// An rlimit: N, "unlimited", or `{ soft = N, hard = M }`.
fn rlimit(sink: &mut Sink, at: &At<Value>, resource: Resource) -> Option<Rlimit> {
    let key = resource.name();
    let one = |v: &Value| match v {
        Value::Integer(n) => u64::try_from(*n).ok(),
        Value::String(s) if s == "unlimited" => Some(u64::MAX),
        _ => None,
    };
    let expected = "an integer from 0, \"unlimited\", or { soft = N, hard = M }";
    let (soft, hard) = match &at.value {
        Value::Table(t) => {
            let extra: Vec<&String> = t.keys().filter(|k| *k != "soft" && *k != "hard").collect();
            let (soft, hard) = (t.get("soft").and_then(one), t.get("hard").and_then(one));
            if !extra.is_empty() || soft.is_none() || hard.is_none() {
                sink.error(&at.loc(), format!("invalid `limits.{key}`: expected {expected}"));
                return None;
            }
            (soft?, hard?)
        }
        v => match one(v) {
            Some(n) => (n, n),
            None => {
                sink.error(&at.loc(), format!("invalid `limits.{key}`: expected {expected}"));
                return None;
            }
        },
    };
    if soft > hard {
        sink.error(&at.loc(), format!("`limits.{key}`: the soft limit is above the hard limit"));
        return None;
    }
    Some(Rlimit { resource, soft, hard })
}
