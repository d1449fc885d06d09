//! From a merged layer to a [`VServerConfig`]: defaults filled in, every value checked, every
//! problem reported at its place (one bad value does not hide the next).

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use vserver_engine::caps::{CapSet, Capability};
use vserver_engine::plan::{BindMount, Flags};

use super::diag::{Loc, Sink};
use super::model::*;
use super::schema::{checked, int_in, At, CapsLayer, HooksLayer, InitLayer, Layer, MountLayer, Strings};
use super::values::{check_hostname, default_hostname, parse_signal};
use super::{limits, network, LoadOptions};

/// A resolved vserver with what the checks across vservers need.
pub(crate) struct Resolved {
    pub config: VServerConfig,
    /// The explicit `context`, where it was written.
    pub context: Option<(u32, Loc)>,
    /// Each dependency, where it was written.
    pub depends: Vec<(String, Loc)>,
    /// Where `[network]` values were written.
    pub net_sites: network::Sites,
}

pub(crate) fn resolve(name: &str, layer: Layer, files: Vec<PathBuf>, opts: &LoadOptions, sink: &mut Sink) -> Resolved {
    let Layer {
        root,
        template,
        hostname,
        domainname,
        context,
        onboot,
        priority,
        depends,
        nice,
        flags,
        init,
        capabilities,
        limits,
        network,
        mounts,
        tmpfs,
        hooks,
        user,
    } = layer;
    let root = match root {
        Some(r) => abs_path(sink, &r.loc(), &r.value, "root", true).unwrap_or_default(),
        None => opts.root_base.join(name),
    };
    let template = template.and_then(|t| checked(sink, &t, super::values::check_name(&t.value).map_err(|e| format!("`template`: {e}"))));
    let (root, unified) = match template {
        Some(t) => {
            let u = Unified { lower: opts.template_dir().join(&t), upper: root.join("upper"), work: root.join("work"), template: t };
            (root.join("root"), Some(u))
        }
        None => (root, None),
    };
    let hostname = match hostname {
        Some(h) => checked(sink, &h, check_hostname(&h.value)).unwrap_or_default(),
        // The loader reports a name that makes none.
        None => default_hostname(name).unwrap_or_default(),
    };
    let domainname = domainname.and_then(|d| checked(sink, &d, check_hostname(&d.value)));
    let context =
        context.and_then(|c| int_in::<u32>(sink, &c, 1..=MAX_STATIC_CONTEXT as i64, "context").map(|n| (n, c.loc())));
    let depends: Vec<(String, Loc)> =
        depends.map(|d| d.value.iter().map(|s| (s.get_ref().clone(), d.inner(s))).collect()).unwrap_or_default();
    let (flags, fakeinit) = flags.map(|f| parse_flags(sink, &f)).unwrap_or_default();
    let (network, net_sites) = network::resolve(sink, network);
    let caps_added: Vec<(String, Loc)> =
        capabilities.add.iter().flat_map(|at| at.value.iter().map(move |s| (s.get_ref().clone(), at.inner(s)))).collect();
    let config = VServerConfig {
        name: name.to_string(),
        root,
        unified,
        hostname,
        domainname,
        context: context.as_ref().map_or(0, |c| c.0),
        context_allocated: context.is_none(),
        onboot: onboot.is_some_and(|o| o.value),
        priority: priority.and_then(|p| int_in(sink, &p, i32::MIN as i64..=i32::MAX as i64, "priority")).unwrap_or(100),
        depends: depends.iter().map(|d| d.0.clone()).collect(),
        nice: nice.and_then(|n| int_in(sink, &n, -20..=19, "nice")),
        flags,
        fakeinit,
        init: resolve_init(sink, init, fakeinit),
        caps: resolve_caps(sink, capabilities),
        limits: limits::resolve(sink, limits),
        network,
        mounts: mounts.map(|m| resolve_mounts(sink, &m)).unwrap_or_default(),
        tmpfs: tmpfs.map(|t| resolve_tmpfs(sink, &t)).unwrap_or_default(),
        hooks: resolve_hooks(sink, hooks),
        user: user.map.and_then(|m| checked_value(sink, &m.loc(), super::values::parse_user_map(&m.value))).unwrap_or_default(),
        files,
    };
    network::check_bind_caps(sink, config.network.mode, config.caps, &caps_added);
    Resolved { config, context, depends, net_sites }
}

/// The value, or its error reported at `loc`.
fn checked_value<T>(sink: &mut Sink, loc: &Loc, r: Result<T, String>) -> Option<T> {
    r.map_err(|e| sink.error(loc, e)).ok()
}

/// An absolute path without `..`; `not_root` refuses `/` itself.
fn abs_path(sink: &mut Sink, loc: &Loc, text: &str, key: &str, not_root: bool) -> Option<PathBuf> {
    let path = Path::new(text);
    let problem = if !path.is_absolute() {
        Some("must be an absolute path")
    } else if path.components().any(|c| c == Component::ParentDir) {
        Some("must not contain `..`")
    } else if text.contains('\0') {
        Some("must not contain a NUL byte")
    } else if not_root && path.components().all(|c| c == Component::RootDir || c == Component::CurDir) {
        Some("must not be `/`")
    } else {
        None
    };
    match problem {
        Some(p) => {
            sink.error(loc, format!("`{key}` {p}: {text:?}"));
            None
        }
        None => Some(path.to_path_buf()),
    }
}

fn parse_flags(sink: &mut Sink, at: &Strings) -> (Flags, bool) {
    let mut flags = Flags::default();
    let mut fakeinit = false;
    for f in &at.value {
        if f.get_ref() == "fakeinit" {
            fakeinit = true;
        } else if let Err(e) = flags.set(f.get_ref()) {
            sink.error(&at.inner(f), e);
        }
    }
    if let Err(e) = flags.check() {
        let nest = at.value.iter().find(|f| f.get_ref() == "nest").map(|f| at.inner(f)).unwrap_or_else(|| at.loc());
        sink.error(&nest, e);
    }
    (flags, fakeinit)
}

/// A command line: not empty, no NUL bytes; with `absolute`, the program is an absolute path.
fn argv(sink: &mut Sink, at: &Strings, key: &str, absolute: bool) -> Option<Vec<String>> {
    let Some(first) = at.value.first() else {
        sink.error(&at.loc(), format!("`{key}` must not be empty"));
        return None;
    };
    let mut ok = true;
    if absolute && !first.get_ref().starts_with('/') {
        sink.error(
            &at.inner(first),
            format!("`{key}` must start with an absolute program path, not {:?}", first.get_ref()),
        );
        ok = false;
    } else if first.get_ref().is_empty() {
        sink.error(&at.inner(first), format!("`{key}` must start with a program"));
        ok = false;
    }
    for s in at.value.iter().filter(|s| s.get_ref().contains('\0')) {
        sink.error(&at.inner(s), format!("`{key}` must not contain a NUL byte"));
        ok = false;
    }
    ok.then(|| at.value.iter().map(|s| s.get_ref().clone()).collect())
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn resolve_init(sink: &mut Sink, init: InitLayer, fakeinit: bool) -> InitConfig {
    let InitLayer { command, stop, stop_signal, stop_timeout, start_timeout, ready, restart, env } = init;
    let given = command.as_ref().and_then(|c| argv(sink, c, "init.command", false));
    let stop_given = stop.as_ref().and_then(|s| argv(sink, s, "init.stop", false));
    let (command, stop) = match (command.is_some(), fakeinit) {
        (true, _) => (given.unwrap_or_default(), stop_given),
        (false, true) => (strings(&["/sbin/init"]), None),
        (false, false) => {
            (strings(&["/etc/init.d/rc", "3"]), stop_given.or_else(|| Some(strings(&["/etc/init.d/rc", "0"]))))
        }
    };
    let stop_signal = stop_signal.and_then(|s| match parse_signal(&s.value) {
        Ok(n) => Some(n),
        Err(e) => {
            sink.error(&s.loc(), e.to_string());
            None
        }
    });
    let ready = ready.and_then(|r| match r.value.as_str() {
        "notify" => Some(Ready::Notify),
        "exec" => Some(Ready::Exec),
        other => {
            sink.error(&r.loc(), format!("unknown readiness {other:?} (expected \"notify\" or \"exec\")"));
            None
        }
    });
    let restart = restart.and_then(|r| match r.value.as_str() {
        "no" => Some(Restart::No),
        "on-failure" => Some(Restart::OnFailure),
        "always" => Some(Restart::Always),
        other => {
            sink.error(
                &r.loc(),
                format!("unknown restart policy {other:?} (expected \"no\", \"on-failure\" or \"always\")"),
            );
            None
        }
    });
    let mut vars = BTreeMap::new();
    for (k, v) in env {
        let key = k.get_ref();
        if key.is_empty() || key.contains(['=', '\0']) {
            sink.error(&Loc { file: v.file, span: k.span() }, format!("invalid environment variable name {key:?}"));
        } else if v.value.contains('\0') {
            sink.error(&v.loc(), format!("the value of {key} must not contain a NUL byte"));
        } else {
            vars.insert(key.clone(), v.value);
        }
    }
    InitConfig {
        command,
        stop,
        stop_signal,
        stop_timeout: stop_timeout.and_then(|t| int_in(sink, &t, 1..=86400, "init.stop_timeout")).unwrap_or(30),
        start_timeout: start_timeout.and_then(|t| int_in(sink, &t, 1..=86400, "init.start_timeout")).unwrap_or(90),
        ready,
        restart: restart.unwrap_or(Restart::No),
        env: vars,
    }
}

fn resolve_caps(sink: &mut Sink, caps: CapsLayer) -> CapSet {
    let mut names = |list: &Option<Strings>| -> Vec<String> {
        let Some(at) = list else { return Vec::new() };
        at.value
            .iter()
            .filter(|s| match Capability::parse(s.get_ref()) {
                Ok(_) => true,
                Err(e) => {
                    sink.error(&at.inner(s), e.to_string());
                    false
                }
            })
            .map(|s| s.get_ref().clone())
            .collect()
    };
    let (add, drop) = (names(&caps.add), names(&caps.drop));
    CapSet::from_changes(CapSet::secure_default(), &add, &drop).unwrap_or_else(|_| CapSet::secure_default())
}

fn resolve_mounts(sink: &mut Sink, at: &At<Vec<MountLayer>>) -> Vec<BindMount> {
    let mut out = Vec::new();
    for m in &at.value {
        let source = abs_path(sink, &at.inner(&m.source), m.source.get_ref(), "source", false);
        let target = abs_path(sink, &at.inner(&m.target), m.target.get_ref(), "target", true);
        if let (Some(source), Some(_)) = (source, target) {
            out.push(BindMount { source, target: m.target.get_ref().clone(), readonly: m.readonly });
        }
    }
    out
}

/// `tmpfs = ["/tmp"]`: absolute paths inside, not `/`, each once.
fn resolve_tmpfs(sink: &mut Sink, at: &Strings) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in &at.value {
        if abs_path(sink, &at.inner(t), t.get_ref(), "tmpfs", true).is_none() {
            continue;
        }
        let norm = t.get_ref().trim_end_matches('/').to_string();
        if out.contains(&norm) {
            sink.error(&at.inner(t), format!("`tmpfs` names {norm:?} twice"));
        } else {
            out.push(norm);
        }
    }
    out
}

fn resolve_hooks(sink: &mut Sink, hooks: HooksLayer) -> Hooks {
    let HooksLayer { pre_start, post_start, pre_stop, post_stop } = hooks;
    let mut one = |h: Option<Strings>, key: &str| h.and_then(|h| argv(sink, &h, key, true));
    Hooks {
        pre_start: one(pre_start, "hooks.pre_start"),
        post_start: one(post_start, "hooks.post_start"),
        pre_stop: one(pre_stop, "hooks.pre_stop"),
        post_stop: one(post_stop, "hooks.post_stop"),
    }
}
