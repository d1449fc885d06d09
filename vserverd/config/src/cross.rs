//! Checks across vservers: context numbers (unique, allocated when absent), `depends` (no
//! missing vserver, no cycle) and addresses (each used by one vserver only).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::diag::{Loc, Sink};
use super::model::{FIRST_ALLOCATED_CONTEXT, MAX_STATIC_CONTEXT};
use super::resolve::Resolved;

/// Reports duplicate contexts, then gives every vserver without `context` the lowest free
/// number from 1000 up, in name order. `main` maps a name to the source index of its NAME.toml;
/// `modified` gives a file's modification time.
///
/// Of two vservers that say the same number, the one whose `context` line was written first
/// (its file's modification time; the name on a tie) keeps it and the newcomer gets the error:
/// adding a file never takes the number, and with it the validity, from a vserver that had it.
pub(crate) fn contexts(
    all: &mut BTreeMap<String, Resolved>,
    main: &BTreeMap<String, usize>,
    invalid: &mut BTreeSet<String>,
    sink: &mut Sink,
    modified: &dyn Fn(&std::path::Path) -> Option<std::time::SystemTime>,
) {
    let mut owner: BTreeMap<u32, (String, Option<Loc>)> = BTreeMap::new();
    let written = |loc: &Loc| modified(&sink.sources[loc.file].path);
    let mut given: Vec<(Option<std::time::SystemTime>, &String, u32, &Loc)> =
        all.iter().filter_map(|(name, r)| r.context.as_ref().map(|(n, loc)| (written(loc), name, *n, loc))).collect();
    given.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    for (_, name, n, loc) in given {
        let n = &n;
        match owner.get(n) {
            Some((first, first_loc)) => {
                let place = first_loc.as_ref().map(|l| format!(" at {}", sink.describe(l))).unwrap_or_default();
                sink.error(loc, format!("context {n} is already used by vserver `{first}`{place}"));
                invalid.insert(name.clone());
            }
            None => {
                owner.insert(*n, (name.clone(), Some(loc.clone())));
            }
        }
    }
    let mut next = FIRST_ALLOCATED_CONTEXT;
    for (name, r) in all.iter_mut().filter(|(_, r)| r.context.is_none()) {
        while owner.contains_key(&next) {
            next += 1;
        }
        if next > MAX_STATIC_CONTEXT {
            let loc = Loc { file: main[name], span: 0..0 };
            sink.error(&loc, format!("no free context number left for `{name}` (1000 to {MAX_STATIC_CONTEXT})"));
            invalid.insert(name.clone());
            continue;
        }
        r.config.context = next;
        owner.insert(next, (name.clone(), None));
    }
}

/// Reports an address that two vservers with addresses of their own (links, bind mode) both
/// use, at the later one (in name order), naming the first and where it wrote it.
pub(crate) fn addresses(all: &BTreeMap<String, Resolved>, invalid: &mut BTreeSet<String>, sink: &mut Sink) {
    let mut owner: BTreeMap<std::net::IpAddr, (String, Loc)> = BTreeMap::new();
    for (name, r) in all.iter().filter(|(_, r)| r.config.network.mode.has_addresses()) {
        for (addr, loc) in &r.net_sites.addresses {
            match owner.get(addr) {
                // Both took it from one file: defaults.toml.
                Some((first, first_loc)) if first != name && first_loc.file == loc.file => {
                    let msg = format!(
                        "address {addr} is given to every vserver by this file: `{first}` has it, so `{name}` cannot (set `network.addresses` in {name}.toml)"
                    );
                    sink.error(loc, msg);
                    invalid.insert(name.clone());
                }
                Some((first, first_loc)) if first != name => {
                    let place = sink.describe(first_loc);
                    sink.error(loc, format!("address {addr} is already used by vserver `{first}` at {place}"));
                    invalid.insert(name.clone());
                }
                Some(_) => {}
                None => {
                    owner.insert(*addr, (name.clone(), loc.clone()));
                }
            }
        }
    }
}

/// Reports dependencies on vservers that have no file (`known` holds those that do) and
/// dependency cycles, each at the dependency that is missing or closes the cycle.
pub(crate) fn depends(
    all: &BTreeMap<String, Resolved>,
    known: &BTreeSet<String>,
    invalid: &mut BTreeSet<String>,
    sink: &mut Sink,
) {
    let graph: BTreeMap<&str, Vec<&str>> =
        all.iter().map(|(n, r)| (n.as_str(), r.depends.iter().map(|d| d.0.as_str()).collect())).collect();
    for (name, r) in all {
        for (dep, loc) in &r.depends {
            if dep == name {
                sink.error(loc, format!("dependency cycle: `{name}` depends on itself"));
                invalid.insert(name.clone());
            } else if !known.contains(dep) {
                sink.error(loc, format!("`{name}` depends on `{dep}`, which does not exist (no {dep}.toml)"));
                invalid.insert(name.clone());
            }
        }
        let cycle =
            r.depends.iter().filter(|(d, _)| d != name).find_map(|(d, loc)| Some((path(&graph, d, name)?, loc)));
        if let Some((path, loc)) = cycle {
            sink.error(loc, format!("dependency cycle: {name} -> {}", path.join(" -> ")));
            invalid.insert(name.clone());
        }
    }
}

/// The shortest dependency path from `from` to `to`, both included.
fn path<'a>(graph: &BTreeMap<&'a str, Vec<&'a str>>, from: &'a str, to: &str) -> Option<Vec<&'a str>> {
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = BTreeSet::from([from]);
    while let Some(node) = queue.pop_front() {
        if node == to {
            let mut out = vec![node];
            while let Some(p) = prev.get(out.last().unwrap()) {
                out.push(p);
            }
            out.reverse();
            return Some(out);
        }
        for next in graph.get(node).into_iter().flatten() {
            if seen.insert(next) {
                prev.insert(next, node);
                queue.push_back(next);
            }
        }
    }
    None
}
