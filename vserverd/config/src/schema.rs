//! The file format: one "layer" per file (defaults.toml, NAME.toml, each drop-in), every key
//! optional and remembering where it was written. Layers merge key by key; arrays and scalars
//! replace, tables merge. Values are checked later (see `resolve`), against the merged layer.

use std::collections::BTreeMap;
use std::ops::RangeInclusive;

use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::diag::{Loc, Sink};

/// A value with its place: the byte span in its file, and the file (set when merged).
#[derive(Debug, Clone)]
pub(crate) struct At<T> {
    pub value: T,
    pub span: std::ops::Range<usize>,
    pub file: usize,
}

impl<T> At<T> {
    pub fn loc(&self) -> Loc {
        Loc { file: self.file, span: self.span.clone() }
    }

    /// The place of something inside this value (an array element), in the same file.
    pub fn inner<U>(&self, s: &Spanned<U>) -> Loc {
        Loc { file: self.file, span: s.span() }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for At<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<T>::deserialize(d)?;
        Ok(At { span: s.span(), value: s.into_inner(), file: 0 })
    }
}

/// A list of strings, each with its own span (capability names, argv, dependencies).
pub(crate) type Strings = At<Vec<Spanned<String>>>;

/// A table whose keys are free (environment, limits); it merges key by key.
pub(crate) type Map<V> = BTreeMap<Spanned<String>, At<V>>;

/// Lays a later layer over this one; `file` is the later layer's source index.
pub(crate) trait Overlay {
    fn overlay(&mut self, later: Self, file: usize);
}

impl<T> Overlay for Option<At<T>> {
    fn overlay(&mut self, later: Self, file: usize) {
        if let Some(mut v) = later {
            v.file = file;
            *self = Some(v);
        }
    }
}

impl<V> Overlay for Map<V> {
    fn overlay(&mut self, later: Self, file: usize) {
        for (k, mut v) in later {
            v.file = file;
            self.remove(&k); // so that the key's span is the later one too
            self.insert(k, v);
        }
    }
}

/// Implements [`Overlay`] field by field; the destructuring makes forgetting a field an error.
macro_rules! overlay_fields {
    ($t:ident { $($f:ident),* $(,)? }) => {
        impl Overlay for $t {
            fn overlay(&mut self, later: Self, file: usize) {
                let $t { $($f),* } = later;
                $( self.$f.overlay($f, file); )*
            }
        }
    };
}

/// One file's worth of configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a vserver configuration table")]
pub(crate) struct Layer {
    pub root: Option<At<String>>,
    /// Unification: the shared template this vserver's root is an overlay of.
    pub template: Option<At<String>>,
    pub hostname: Option<At<String>>,
    pub domainname: Option<At<String>>,
    pub context: Option<At<i64>>,
    pub onboot: Option<At<bool>>,
    pub priority: Option<At<i64>>,
    pub depends: Option<Strings>,
    pub nice: Option<At<i64>>,
    pub flags: Option<Strings>,
    #[serde(default)]
    pub init: InitLayer,
    #[serde(default)]
    pub capabilities: CapsLayer,
    #[serde(default)]
    pub limits: Map<toml::Value>,
    #[serde(default)]
    pub network: NetworkLayer,
    pub mounts: Option<At<Vec<MountLayer>>>,
    pub tmpfs: Option<Strings>,
    #[serde(default)]
    pub hooks: HooksLayer,
    #[serde(default)]
    pub user: UserLayer,
}
overlay_fields!(Layer {
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
});

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [init] table")]
pub(crate) struct InitLayer {
    pub command: Option<Strings>,
    pub stop: Option<Strings>,
    pub stop_signal: Option<At<String>>,
    pub stop_timeout: Option<At<i64>>,
    pub start_timeout: Option<At<i64>>,
    pub ready: Option<At<String>>,
    pub restart: Option<At<String>>,
    #[serde(default)]
    pub env: Map<String>,
}
overlay_fields!(InitLayer { command, stop, stop_signal, stop_timeout, start_timeout, ready, restart, env });

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [capabilities] table")]
pub(crate) struct CapsLayer {
    pub add: Option<Strings>,
    pub drop: Option<Strings>,
}
overlay_fields!(CapsLayer { add, drop });

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [network] table")]
pub(crate) struct NetworkLayer {
    pub mode: Option<At<String>>,
    pub device: Option<At<String>>,
    pub addresses: Option<Strings>,
    pub broadcast: Option<At<String>>,
    pub gateway: Option<At<OneOrMany>>,
    pub mtu: Option<At<i64>>,
    pub mac: Option<At<String>>,
    pub manage_addresses: Option<At<bool>>,
}
overlay_fields!(NetworkLayer { mode, device, addresses, broadcast, gateway, mtu, mac, manage_addresses });

/// A string, or an array of strings each with its own span (`network.gateway`).
#[derive(Debug, Clone)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(s.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element::<Spanned<String>>()? {
                    v.push(x);
                }
                Ok(OneOrMany::Many(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// One `[[mounts]]` entry; the array as a whole replaces an earlier one.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[mounts]] table")]
pub(crate) struct MountLayer {
    pub source: Spanned<String>,
    pub target: Spanned<String>,
    #[serde(default)]
    pub readonly: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [hooks] table")]
pub(crate) struct HooksLayer {
    pub pre_start: Option<Strings>,
    pub post_start: Option<Strings>,
    pub pre_stop: Option<Strings>,
    pub post_stop: Option<Strings>,
}
overlay_fields!(HooksLayer { pre_start, post_start, pre_stop, post_stop });

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "the [user] table")]
pub(crate) struct UserLayer {
    pub map: Option<At<String>>,
}
overlay_fields!(UserLayer { map });

/// Reports `result`'s error at `at`; gives the value when it is good.
pub(crate) fn checked<T: Clone, E: std::fmt::Display>(sink: &mut Sink, at: &At<T>, result: Result<(), E>) -> Option<T> {
    match result {
        Ok(()) => Some(at.value.clone()),
        Err(e) => {
            sink.error(&at.loc(), e.to_string());
            None
        }
    }
}

/// An integer within `range`, converted to `T`.
pub(crate) fn int_in<T: TryFrom<i64>>(
    sink: &mut Sink,
    at: &At<i64>,
    range: RangeInclusive<i64>,
    key: &str,
) -> Option<T> {
    if range.contains(&at.value) {
        T::try_from(at.value).ok()
    } else {
        sink.error(&at.loc(), format!("`{key}` must be from {} to {}, not {}", range.start(), range.end(), at.value));
        None
    }
}
