//! Per-interface settings under `/proc/sys/net` (they belong to the namespace of the process
//! that opens the file: the host's, for a veth host end).

use nix::errno::Errno;

/// Writes `value` to `/proc/sys/net/{family}/{table}/{dev}/{key}` (`ipv4`/`ipv6`, `conf`/`neigh`);
/// returns the path written on failure.
pub fn set(family: &str, table: &str, dev: &str, key: &str, value: &str) -> Result<(), (String, Errno)> {
    let path = format!("/proc/sys/net/{family}/{table}/{dev}/{key}");
    std::fs::write(&path, value).map_err(|e| (path, crate::error::io_errno(&e)))
}

/// Reads an integer setting (`None` when missing or unreadable).
pub fn get(family: &str, table: &str, dev: &str, key: &str) -> Option<i64> {
    std::fs::read_to_string(format!("/proc/sys/net/{family}/{table}/{dev}/{key}")).ok()?.trim().parse().ok()
}
