//! User namespaces: root inside a vserver is not root of the host. Its uid and gid 0 map to the
//! first of a range of host ids of the vserver's own (65536 of them, never shared with another
//! running vserver), so a kernel bug reachable from inside meets an unprivileged host user, and
//! its capabilities count only over its own namespaces.
//!
//! Nothing is chowned on disk: the root (or a unified vserver's template and own directory) and
//! the bind mounts are presented through idmapped mounts (`mount_setattr` with
//! `MOUNT_ATTR_IDMAP`), which show on-disk id N as the vserver's id N. A file root writes inside
//! is owned by 0 on disk, exactly as in a privileged vserver; a template shared by several
//! vservers serves each through its own mapping.
//!
//! The ranges: a fixed one from the configuration, or one picked at start from a pool (the
//! `/etc/subuid` and `/etc/subgid` entries of a dedicated user, or a range given to the daemon).
//! A running vserver's claim is a file `RUN_DIR/userns/NAME` owned by its monitor: live while
//! that process is (pid and start time), given back when it ends, taken over when it is stale.

use std::fs;
use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{io_errno, SetupError, Step, StepExt};
use crate::sys;

/// The ids one vserver gets: 65536, as a distribution expects (uids up to 65534, `nobody`).
pub const SLICE: u32 = 65536;

/// The host ids below this are the host's own users: no range may hold one.
pub const FIRST_HOST_ID: u32 = 65536;

/// Ids 0..count inside are host ids `uid..uid+count` (and `gid..gid+count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdMap {
    pub uid: u32,
    pub gid: u32,
    pub count: u32,
}

impl IdMap {
    fn overlaps(&self, o: &IdMap) -> bool {
        let meet = |a: u32, b: u32| (a as u64) < b as u64 + o.count as u64 && (b as u64) < a as u64 + self.count as u64;
        meet(self.uid, o.uid) || meet(self.gid, o.gid)
    }

    /// The range holds none of the host's own ids and stays within 32 bits.
    pub fn check(&self) -> Result<(), String> {
        if self.count == 0 {
            return Err("an id range needs at least one id".into());
        }
        for (what, base) in [("uid", self.uid), ("gid", self.gid)] {
            if base < FIRST_HOST_ID {
                return Err(format!("the {what} range starts at {base}, among the host's own ids: it must start at {FIRST_HOST_ID} or above"));
            }
            if base as u64 + self.count as u64 > u32::MAX as u64 {
                return Err(format!("the {what} range {base}+{} goes past the last id", self.count));
            }
        }
        Ok(())
    }

    /// `BASE:COUNT` (uids and gids alike), or `BASE` alone for [`SLICE`] ids when
    /// `count_optional`; checked as [`IdMap::check`] does.
    pub fn parse(text: &str, count_optional: bool) -> Result<IdMap, String> {
        let (base, count) = match text.split_once(':') {
            Some((b, c)) => (b, Some(c)),
            None if count_optional => (text, None),
            None => return Err(format!("{text:?}: expected BASE:COUNT")),
        };
        let num = |s: &str| s.parse::<u32>().map_err(|_| format!("{s:?} is not a number"));
        let base = num(base)?;
        let map = IdMap { uid: base, gid: base, count: count.map(num).transpose()?.unwrap_or(SLICE) };
        map.check()?;
        Ok(map)
    }
}

impl std::fmt::Display for IdMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "uids {}-{}, gids {}-{}", self.uid, self.uid as u64 + self.count as u64 - 1, self.gid, self.gid as u64 + self.count as u64 - 1)
    }
}

/// How a vserver's range is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserNsPlan {
    /// This range, refused at start while another running vserver holds any of it.
    Fixed(IdMap),
    /// The first free slice of [`SLICE`] ids of this pool.
    Pick { pool: IdMap },
    /// For an ordinary user (`chcontext` unprivileged): that user's own uid and gid are 0
    /// inside, the only ids there; nothing is claimed and nothing idmapped.
    Own,
}

/// A claim as its file holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Claim {
    map: IdMap,
    owner_pid: i32,
    owner_start_time: u64,
}

impl Claim {
    fn is_live(&self) -> bool {
        self.owner_pid > 0 && sys::start_time(self.owner_pid) == Some(self.owner_start_time)
    }
}

fn dir(run_dir: &Path) -> PathBuf {
    run_dir.join("userns")
}

/// Claims the vserver's range for this process (its monitor) and returns it. Under a lock on
/// the claims' directory: two starts never pick the same slice.
pub fn claim(run_dir: &Path, name: &str, plan: &UserNsPlan) -> Result<IdMap, SetupError> {
    let d = dir(run_dir);
    let ds = d.display().to_string();
    fs::create_dir_all(&d).map_err(|e| SetupError::new(Step::IdMap, Some(ds.clone()), io_errno(&e)))?;
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(d.join(".lock"))
        .map_err(|e| SetupError::new(Step::IdMap, Some(ds.clone()), io_errno(&e)))?;
    if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) } != 0 {
        return Err(SetupError::new(Step::IdMap, Some(ds), Errno::last()));
    }
    let mut held: Vec<(String, IdMap)> = Vec::new();
    if let Ok(entries) = fs::read_dir(&d) {
        for e in entries.flatten() {
            let other = e.file_name().to_string_lossy().into_owned();
            if other.starts_with('.') || other == name {
                continue;
            }
            match fs::read(e.path()).ok().and_then(|b| serde_json::from_slice::<Claim>(&b).ok()) {
                Some(c) if c.is_live() => held.push((other, c.map)),
                // A monitor that ended without giving its range back (killed): the range is free.
                _ => {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
    let map = match plan {
        UserNsPlan::Fixed(m) => {
            m.check().map_err(|e| SetupError::detail(Step::IdMap, None, e))?;
            if let Some((other, o)) = held.iter().find(|(_, o)| o.overlaps(m)) {
                return Err(SetupError::detail(Step::IdMap, None, format!("the range ({m}) overlaps the one of running vserver {other} ({o})")));
            }
            *m
        }
        UserNsPlan::Pick { pool } => pick(pool, held.iter().map(|(_, m)| m))?,
        UserNsPlan::Own => return Err(SetupError::detail(Step::IdMap, None, "a user's own ids are not claimed")),
    };
    let (owner_pid, owner_start_time) = crate::registry::me();
    let body = serde_json::to_vec(&Claim { map, owner_pid, owner_start_time }).expect("a claim serializes");
    let tmp = d.join(format!(".{name}.{owner_pid}"));
    let write = || -> std::io::Result<()> {
        let mut f = fs::OpenOptions::new().create(true).truncate(true).write(true).mode(0o644).open(&tmp)?;
        f.write_all(&body)?;
        fs::rename(&tmp, d.join(name))
    };
    write().map_err(|e| SetupError::new(Step::IdMap, Some(d.join(name).display().to_string()), io_errno(&e)))?;
    Ok(map)
}

/// The first slice of `pool` that no range in `held` touches.
fn pick<'a>(pool: &IdMap, held: impl Iterator<Item = &'a IdMap> + Clone) -> Result<IdMap, SetupError> {
    pool.check().map_err(|e| SetupError::detail(Step::IdMap, None, format!("the pool of ids: {e}")))?;
    let slices = pool.count / SLICE;
    for i in 0..slices {
        let m = IdMap { uid: pool.uid + i * SLICE, gid: pool.gid + i * SLICE, count: SLICE };
        if !held.clone().any(|o| o.overlaps(&m)) {
            return Ok(m);
        }
    }
    Err(SetupError::detail(Step::IdMap, None, format!("every one of the {slices} ranges of {SLICE} ids in the pool ({pool}) is in use")))
}

/// Gives the vserver's range back, if this process holds it.
pub fn release(run_dir: &Path, name: &str) {
    let path = dir(run_dir).join(name);
    if let Some(c) = fs::read(&path).ok().and_then(|b| serde_json::from_slice::<Claim>(&b).ok()) {
        if (c.owner_pid, c.owner_start_time) == crate::registry::me() {
            let _ = fs::remove_file(path);
        }
    }
}

/// The range a running vserver holds (for `status` and the tests).
pub fn claimed(run_dir: &Path, name: &str) -> Option<IdMap> {
    fs::read(dir(run_dir).join(name)).ok().and_then(|b| serde_json::from_slice::<Claim>(&b).ok()).filter(Claim::is_live).map(|c| c.map)
}

/// Step `id-map`, parent side: pid 1's uid and gid maps, written by its parent (root of the
/// host, so any range may be written and `setgroups` stays allowed inside).
pub fn write_maps(pid: i32, map: &IdMap) -> Result<(), SetupError> {
    for (file, base) in [("uid_map", map.uid), ("gid_map", map.gid)] {
        let path = format!("/proc/{pid}/{file}");
        fs::write(&path, format!("0 {base} {}\n", map.count)).map_err(|e| SetupError::new(Step::IdMap, Some(path), io_errno(&e)))?;
    }
    Ok(())
}

/// Step `id-map` for an ordinary user's context: its one uid and gid become 0 inside. Without
/// privilege the kernel wants `setgroups` denied first (else the user could drop a group that
/// denies it access somewhere).
pub fn write_own_maps(pid: i32, uid: u32, gid: u32) -> Result<(), SetupError> {
    for (file, line) in [("setgroups", "deny".to_string()), ("uid_map", format!("0 {uid} 1\n")), ("gid_map", format!("0 {gid} 1\n"))] {
        let path = format!("/proc/{pid}/{file}");
        fs::write(&path, line).map_err(|e| SetupError::new(Step::IdMap, Some(path), io_errno(&e)))?;
    }
    Ok(())
}

/// Step `id-map` for an ordinary user with subordinate ids (`/etc/subuid`, `/etc/subgid`) and
/// the setuid helpers `newuidmap` and `newgidmap` (package uidmap): the user is 0 inside, and
/// ids 1..=COUNT are its subordinate ones, so that users inside (`su`, services) have ids of
/// their own. `Ok(false)`: no such ids or no helpers, nothing done (the caller maps the user
/// alone).
pub fn write_subid_maps(pid: i32, uid: u32, gid: u32) -> Result<bool, SetupError> {
    let helper = |name: &str| ["/usr/bin", "/bin", "/usr/sbin"].iter().map(|d| Path::new(d).join(name)).find(|p| p.exists());
    let (Some(newuidmap), Some(newgidmap)) = (helper("newuidmap"), helper("newgidmap")) else { return Ok(false) };
    // The user's name (a uid /etc/passwd does not know keeps its number as name).
    let Some(name) = host_user(&uid.to_string()).map(|u| u.name) else { return Ok(false) };
    let entry = |file: &str| fs::read_to_string(file).ok().and_then(|t| subid_entry(&t, &name, Some(uid)));
    let (Some(u), Some(g)) = (entry("/etc/subuid"), entry("/etc/subgid")) else { return Ok(false) };
    for (helper, own, (first, count)) in [(&newuidmap, uid, u), (&newgidmap, gid, g)] {
        let out = std::process::Command::new(helper)
            .args([pid.to_string(), "0".into(), own.to_string(), "1".into(), "1".into(), first.to_string(), count.to_string()])
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| SetupError::new(Step::IdMap, Some(helper.display().to_string()), io_errno(&e)))?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(SetupError::detail(Step::IdMap, Some(helper.display().to_string()), format!("{} failed: {said}", helper.display())));
        }
    }
    Ok(true)
}

/// Why the kernel refused an ordinary user a user namespace (`errno` of the clone), naming the
/// setting that forbids it when one does. `read` gives a sysctl's value by its /proc/sys path.
pub fn refusal(errno: Errno, read: impl Fn(&str) -> Option<String>) -> String {
    let val = |p: &str| read(p).map(|v| v.trim().to_string());
    let why = if val("kernel/unprivileged_userns_clone").as_deref() == Some("0") {
        "the host forbids them to ordinary users (sysctl kernel.unprivileged_userns_clone = 0)".to_string()
    } else if val("user/max_user_namespaces").as_deref() == Some("0") {
        "the host allows none (sysctl user.max_user_namespaces = 0)".to_string()
    } else if val("kernel/apparmor_restrict_unprivileged_userns").as_deref() == Some("1") {
        "AppArmor restricts them to programs with a profile that allows it (sysctl kernel.apparmor_restrict_unprivileged_userns = 1)".to_string()
    } else if errno == Errno::ENOSPC {
        "the limit of user namespaces is reached (sysctl user.max_user_namespaces)".to_string()
    } else {
        format!("the kernel refused ({})", errno.desc())
    };
    format!("a security context for an ordinary user needs a user namespace: {why}")
}

/// A handle on pid 1's user namespace.
pub fn open_ns(pid: i32) -> Result<OwnedFd, SetupError> {
    let path = format!("/proc/{pid}/ns/user");
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    sys::openat2(cwd, &path, libc::O_RDONLY, 0, 0).step(Step::IdMap, &path)
}

/// A detached copy of the tree at `path` (a host path from the configuration), idmapped
/// through `userns` with `attrs` (read-only, nosuid, nodev…) set on every mount of it. Made by
/// the parent: only root of the host may idmap a disk filesystem.
pub fn idmapped_tree(path: &Path, userns: BorrowedFd<'_>, attrs: u64) -> Result<OwnedFd, SetupError> {
    let p = path.display().to_string();
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    let tree = sys::open_tree_clone(cwd, &p, true).step(Step::IdMap, &p)?;
    sys::mount_setattr_idmap(tree.as_fd(), userns, attrs, true).map_err(|e| {
        let err = SetupError::new(Step::IdMap, Some(p.clone()), e);
        if e == Errno::EINVAL {
            err.with_detail("the filesystem (or one mounted below it) cannot be idmapped")
        } else {
            err
        }
    })?;
    Ok(tree)
}

/// A detached copy of the tree at `path`, not idmapped, with `attrs` set (made by the parent:
/// the tree is then the host's to change, not the namespace's).
pub fn plain_tree(path: &Path, attrs: u64) -> Result<OwnedFd, SetupError> {
    let p = path.display().to_string();
    let cwd = unsafe { BorrowedFd::borrow_raw(libc::AT_FDCWD) };
    let tree = sys::open_tree_clone(cwd, &p, true).step(Step::IdMap, &p)?;
    sys::mount_setattr(tree.as_fd(), attrs, 0, true).step(Step::IdMap, &p)?;
    Ok(tree)
}

/// Step `become-root`, child side, once its maps are written: uid and gid 0 of its own
/// namespace, no supplementary group. The capabilities stay (the old uid was not this
/// namespace's root), the parent-death signal the credential change cleared is set again.
pub fn become_root() -> Result<(), SetupError> {
    if unsafe { libc::setresgid(0, 0, 0) } != 0 {
        return Err(SetupError::new(Step::BecomeRoot, Some("gid 0".into()), Errno::last()));
    }
    // Denied (EPERM) in an ordinary user's namespace: its groups stay, unmapped.
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 && Errno::last() != Errno::EPERM {
        return Err(SetupError::new(Step::BecomeRoot, Some("groups".into()), Errno::last()));
    }
    if unsafe { libc::setresuid(0, 0, 0) } != 0 {
        return Err(SetupError::new(Step::BecomeRoot, Some("uid 0".into()), Errno::last()));
    }
    Ok(())
}

/// A user of the host's /etc/passwd, by name or number (read as entering a vserver reads its
/// own: NSS does not work in a static binary).
fn host_user(who: &str) -> Option<crate::enter::User> {
    crate::enter::lookup_user(&fs::read_to_string("/etc/passwd").ok()?, "", who)
}

/// An `/etc/subuid` or `/etc/subgid` entry of `user` (`NAME:FIRST:COUNT`; the first entry
/// naming the user, by name or by its number `uid`).
pub fn subid_entry(text: &str, user: &str, uid: Option<u32>) -> Option<(u32, u32)> {
    text.lines().filter(|l| !l.trim_start().starts_with('#')).find_map(|l| {
        let mut f = l.trim().split(':');
        let (who, first, count) = (f.next()?, f.next()?, f.next()?);
        if f.next().is_some() || (who != user && Some(who) != uid.map(|u| u.to_string()).as_deref()) {
            return None;
        }
        Some((first.parse().ok()?, count.parse().ok()?))
    })
}

/// The pool of `user`'s subordinate ids: its `/etc/subuid` and `/etc/subgid` entries (their
/// common size, whole slices only).
pub fn pool_from_files(subuid: &Path, subgid: &Path, user: &str) -> Result<IdMap, String> {
    let read = |p: &Path| fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()));
    let uid = host_user(user).map(|u| u.uid);
    let u = subid_entry(&read(subuid)?, user, uid).ok_or_else(|| format!("{}: no entry for user {user}", subuid.display()))?;
    let g = subid_entry(&read(subgid)?, user, uid).ok_or_else(|| format!("{}: no entry for user {user}", subgid.display()))?;
    let count = u.1.min(g.1) / SLICE * SLICE;
    if count == 0 {
        return Err(format!("the subordinate ids of {user} in {} and {} hold fewer than {SLICE}", subuid.display(), subgid.display()));
    }
    let pool = IdMap { uid: u.0, gid: g.0, count };
    pool.check()?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_overlap_by_uid_or_gid() {
        let a = IdMap { uid: 100_000, gid: 100_000, count: SLICE };
        assert!(a.overlaps(&IdMap { uid: 165_535, gid: 300_000, count: 1 }));
        assert!(!a.overlaps(&IdMap { uid: 165_536, gid: 300_000, count: SLICE }));
        assert!(a.overlaps(&IdMap { uid: 500_000, gid: 99_999, count: 2 }));
        assert!(!a.overlaps(&IdMap { uid: 500_000, gid: 99_999, count: 1 }));
    }

    #[test]
    fn ranges_keep_off_the_hosts_ids() {
        assert!(IdMap { uid: 1000, gid: 100_000, count: SLICE }.check().unwrap_err().contains("host's own ids"));
        assert!(IdMap { uid: 100_000, gid: 100_000, count: 0 }.check().is_err());
        assert!(IdMap { uid: u32::MAX - 10, gid: 100_000, count: SLICE }.check().unwrap_err().contains("past the last id"));
        assert!(IdMap { uid: 100_000, gid: 200_000, count: SLICE }.check().is_ok());
    }

    #[test]
    fn picks_the_first_free_slice() {
        let pool = IdMap { uid: 1 << 20, gid: 2 << 20, count: 4 * SLICE };
        let first = pick(&pool, [].iter()).unwrap();
        assert_eq!(first, IdMap { uid: 1 << 20, gid: 2 << 20, count: SLICE });
        let taken = [first, IdMap { uid: (1 << 20) + 2 * SLICE, gid: 0x7000_0000, count: 10 }];
        assert_eq!(pick(&pool, taken.iter()).unwrap().uid, (1 << 20) + SLICE);
        let full = [IdMap { uid: 1 << 20, gid: 2 << 20, count: 4 * SLICE }];
        assert!(pick(&pool, full.iter()).unwrap_err().to_string().contains("every one of the 4 ranges"));
    }

    #[test]
    fn refusals_name_the_setting() {
        let sysctls = |pairs: &'static [(&'static str, &'static str)]| move |p: &str| pairs.iter().find(|(k, _)| *k == p).map(|(_, v)| v.to_string());
        assert!(refusal(Errno::EPERM, sysctls(&[("kernel/unprivileged_userns_clone", "0\n")])).contains("kernel.unprivileged_userns_clone = 0"));
        assert!(refusal(Errno::ENOSPC, sysctls(&[("user/max_user_namespaces", "0")])).contains("user.max_user_namespaces = 0"));
        assert!(refusal(Errno::EACCES, sysctls(&[("kernel/apparmor_restrict_unprivileged_userns", "1")])).contains("AppArmor"));
        assert!(refusal(Errno::ENOSPC, sysctls(&[])).contains("limit of user namespaces"));
        assert!(refusal(Errno::EPERM, sysctls(&[("user/max_user_namespaces", "100")])).starts_with("a security context for an ordinary user needs a user namespace: the kernel refused"));
    }

    #[test]
    fn subid_files() {
        let text = "# comment\nalice:100000:65536\nvserver:1048576:1048576\n1001:300000:65536\nbad:line\n";
        assert_eq!(subid_entry(text, "vserver", None), Some((1_048_576, 1_048_576)));
        assert_eq!(subid_entry(text, "bob", Some(1001)), Some((300_000, 65_536)));
        assert_eq!(subid_entry(text, "carol", None), None);
        let dir = std::env::temp_dir().join(format!("vserver-subid-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("subuid"), "vs:1048576:200000\n").unwrap();
        fs::write(dir.join("subgid"), "vs:2097152:131072\n").unwrap();
        let pool = pool_from_files(&dir.join("subuid"), &dir.join("subgid"), "vs").unwrap();
        assert_eq!(pool, IdMap { uid: 1_048_576, gid: 2_097_152, count: 2 * SLICE });
        assert!(pool_from_files(&dir.join("subuid"), &dir.join("subgid"), "other").unwrap_err().contains("no entry for user other"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn claims_are_exclusive_and_given_back() {
        let run = std::env::temp_dir().join(format!("vserver-claims-{}", std::process::id()));
        let pool = UserNsPlan::Pick { pool: IdMap { uid: 1 << 24, gid: 1 << 24, count: 2 * SLICE } };
        let a = claim(&run, "a", &pool).unwrap();
        let b = claim(&run, "b", &pool).unwrap();
        assert_ne!(a, b, "two running vservers never share a range");
        assert_eq!(claimed(&run, "a"), Some(a));
        assert!(claim(&run, "c", &pool).unwrap_err().to_string().contains("in use"));
        let fixed = UserNsPlan::Fixed(IdMap { uid: (1 << 24) + 5, gid: 1 << 28, count: 10 });
        assert!(claim(&run, "d", &fixed).unwrap_err().to_string().contains("overlaps the one of running vserver a"));
        release(&run, "a");
        assert_eq!(claimed(&run, "a"), None);
        assert_eq!(claim(&run, "c", &pool).unwrap(), a, "a range given back is picked again");
        // A stale claim (its owner gone) is taken over.
        fs::write(dir(&run).join("ghost"), br#"{"map":{"uid":16777216,"gid":16777216,"count":65536},"owner_pid":2147483000,"owner_start_time":1}"#)
            .unwrap();
        release(&run, "c");
        assert_eq!(claim(&run, "e", &pool).unwrap(), a);
        fs::remove_dir_all(&run).unwrap();
    }
}
