//! The pool of host ids that `[user] map = "auto"` vservers take their ranges from: the range
//! given with `--userns-pool BASE:COUNT`, or else the subordinate ids of the user `vserver` in
//! `/etc/subuid` and `/etc/subgid` (read at each start, so an admin's change needs no restart).

use std::path::Path;
use std::sync::OnceLock;

use vserver_engine::userns::{pool_from_files, IdMap};

/// The user whose subordinate ids are the pool.
pub const POOL_USER: &str = "vserver";

static GIVEN: OnceLock<IdMap> = OnceLock::new();

/// The pool given on the command line (once, at startup).
pub fn set_given(pool: IdMap) {
    let _ = GIVEN.set(pool);
}

/// The pool in force, or why there is none.
pub fn pool() -> Result<IdMap, String> {
    if let Some(p) = GIVEN.get() {
        return Ok(*p);
    }
    pool_from_files(Path::new("/etc/subuid"), Path::new("/etc/subgid"), POOL_USER).map_err(|e| {
        format!(
            "`[user] map = \"auto\"` needs a pool of host ids: {e}; add a line such as `{POOL_USER}:1000000:1000000` to /etc/subuid and \
             /etc/subgid, or start vserverd with --userns-pool BASE:COUNT"
        )
    })
}

/// `BASE:COUNT` (uids and gids alike), as `--userns-pool` takes it.
pub fn parse(text: &str) -> Result<IdMap, String> {
    const SLICE: u32 = vserver_engine::userns::SLICE;
    let mut pool = IdMap::parse(text, false)?;
    // Whole slices only.
    pool.count = pool.count / SLICE * SLICE;
    if pool.count == 0 {
        return Err(format!("{text:?}: the pool must hold at least {SLICE} ids"));
    }
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pools_on_the_command_line() {
        assert_eq!(parse("1000000:200000").unwrap(), IdMap { uid: 1_000_000, gid: 1_000_000, count: 196_608 });
        assert!(parse("1000000").unwrap_err().contains("BASE:COUNT"));
        assert!(parse("1000000:1000").unwrap_err().contains("at least 65536"));
        assert!(parse("100:65536").unwrap_err().contains("host's own ids"));
    }
}
