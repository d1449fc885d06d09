//! Private loopback addresses (Linux-VServer's "lback"): each bound cgroup gets a slot N, and
//! with it 127.H.L.1 (H = N / 256, L = N % 256) and `fd76:7365:7276:6c6f::N:1` (N as one
//! 16-bit group). The programs make 127.0.0.1 (and the rest of 127.0.0.0/8) and
//! ::1 stand for them. Slots start at 256 (127.1.0.1): 127.0.0.0/16 stays the host's
//! (127.0.0.1, Debian's 127.0.1.1, systemd-resolved's 127.0.0.53).
//!
//! A slot is claimed by a file `RUN_DIR/lback/N` holding a [`Record`]: the cgroup that holds
//! it (path and id) and what was added to the host for it. A record whose cgroup is gone is
//! stale (its monitor was killed): the next claim removes what it recorded and frees the slot.

use std::fs;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::error::{SetupError, Step};
use crate::plan::IfAddr;

pub const FIRST: u16 = 256;
pub const LAST: u16 = 65535;

/// A context numbered N (a vserver's: 1 to 49151) has slot 256 + N, found at once; contexts
/// without a number (`chbind`'s commands) take a free slot from here up.
pub const DYNAMIC_FIRST: u16 = FIRST + 49152;

/// The slot of context `context`, when it has a fixed one.
pub fn slot_of(context: u32) -> Option<u16> {
    u16::try_from(context).ok().filter(|c| *c > 0 && (*c as u32) < (DYNAMIC_FIRST - FIRST) as u32).map(|c| c + FIRST)
}

/// The IPv6 prefix of every private loopback address (a unique local /64).
pub const PREFIX6: [u16; 4] = [0xfd76, 0x7365, 0x7276, 0x6c6f];

pub fn lo4(slot: u16) -> Ipv4Addr {
    Ipv4Addr::new(127, (slot >> 8) as u8, slot as u8, 1)
}

pub fn lo6(slot: u16) -> Ipv6Addr {
    let p = PREFIX6;
    Ipv6Addr::new(p[0], p[1], p[2], p[3], 0, 0, slot, 1)
}

/// What a slot's file records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The vserver (or `chbind`'s command) it is for.
    pub name: String,
    pub cgroup: PathBuf,
    pub cgroup_id: u64,
    /// Addresses added to host interfaces: (interface, address).
    #[serde(default)]
    pub added: Vec<(String, IfAddr)>,
}

impl Record {
    /// True while the cgroup it names is the very one it was made for.
    pub fn is_live(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        fs::metadata(&self.cgroup).is_ok_and(|m| m.ino() == self.cgroup_id)
    }
}

/// A claimed slot; [`Claim::release`] gives it back.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Claim {
    pub slot: u16,
    path: PathBuf,
}

fn dir(run_dir: &Path) -> PathBuf {
    run_dir.join("lback")
}

fn io_err(path: &Path, e: std::io::Error) -> SetupError {
    SetupError::new(Step::BindAddr, Some(path.display().to_string()), crate::error::io_errno(&e))
}

fn lock(d: &Path) -> Result<fs::File, SetupError> {
    fs::create_dir_all(d).map_err(|e| io_err(d, e))?;
    let p = d.join(".lock");
    let f = fs::OpenOptions::new().create(true).write(true).truncate(false).open(&p).map_err(|e| io_err(&p, e))?;
    loop {
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) } == 0 {
            return Ok(f);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != ErrorKind::Interrupted {
            return Err(io_err(&p, e));
        }
    }
}

fn write(path: &Path, record: &Record) -> Result<(), SetupError> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, serde_json::to_vec(record).expect("record serializes")).map_err(|e| io_err(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_err(path, e))
}

/// Every record, with its slot.
pub fn records(run_dir: &Path) -> Vec<(u16, Record)> {
    let Ok(rd) = fs::read_dir(dir(run_dir)) else { return Vec::new() };
    let mut v: Vec<(u16, Record)> = rd
        .flatten()
        .filter_map(|e| {
            let slot: u16 = e.file_name().to_str()?.parse().ok()?;
            let r: Record = serde_json::from_slice(&fs::read(e.path()).ok()?).ok()?;
            Some((slot, r))
        })
        .collect();
    v.sort_by_key(|(s, _)| *s);
    v
}

/// Claims a slot for context `context`: its own (`slot_of`), or the first free one from
/// [`DYNAMIC_FIRST`] up, and writes its record, `record(slot)` (what will be added to the host
/// for it, written before it is added: a monitor killed at any point leaves nothing
/// unrecorded). Records found stale on the way are removed and returned, so that the caller
/// removes what they added to the host.
pub fn claim(run_dir: &Path, context: u32, record: impl FnOnce(u16) -> Record) -> Result<(Claim, Vec<(u16, Record)>), SetupError> {
    let d = dir(run_dir);
    // A context's own slot, free (the usual case): claimed by making its file, no lock needed
    // (nobody else claims that number).
    if let Some(slot) = slot_of(context) {
        let path = d.join(slot.to_string());
        let open = |p: &Path| fs::OpenOptions::new().write(true).create_new(true).open(p);
        let made = match open(&path) {
            Err(e) if e.kind() == ErrorKind::NotFound => fs::create_dir_all(&d).and_then(|_| open(&path)),
            other => other,
        };
        if let Ok(mut f) = made {
            use std::io::Write;
            f.write_all(&serde_json::to_vec(&record(slot)).expect("record serializes")).map_err(|e| io_err(&path, e))?;
            return Ok((Claim { slot, path }, Vec::new()));
        }
    }
    let _lock = lock(&d)?;
    let mut stale = Vec::new();
    // A slot file: free (none, or stale: handed back), or taken.
    let free = |slot: u16, stale: &mut Vec<(u16, Record)>| -> bool {
        let p = d.join(slot.to_string());
        match fs::read(&p) {
            Err(e) if e.kind() == ErrorKind::NotFound => true,
            Ok(b) => match serde_json::from_slice::<Record>(&b) {
                Ok(r) if !r.is_live() => {
                    let _ = fs::remove_file(&p);
                    stale.push((slot, r));
                    true
                }
                // Live, or unreadable (a claim that did not finish): not ours to judge.
                _ => false,
            },
            Err(_) => false,
        }
    };
    let slot = match slot_of(context) {
        Some(slot) if free(slot, &mut stale) => slot,
        Some(slot) => {
            return Err(SetupError::new(Step::BindAddr, Some(d.join(slot.to_string()).display().to_string()), Errno::EBUSY)
                .with_detail(format!("the private loopback slot of context {context} is held by a running context")))
        }
        None => (DYNAMIC_FIRST..=LAST)
            .find(|s| free(*s, &mut stale))
            .ok_or_else(|| SetupError::detail(Step::BindAddr, Some(d.display().to_string()), "no free private loopback slot"))?,
    };
    let path = d.join(slot.to_string());
    write(&path, &record(slot))?;
    Ok((Claim { slot, path }, stale))
}

impl Claim {
    /// The same claim, for a process that takes over the teardown.
    pub(crate) fn duplicate(&self) -> Claim {
        Claim { slot: self.slot, path: self.path.clone() }
    }

    pub fn release(self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_map_to_addresses_outside_the_hosts_own() {
        assert_eq!(lo4(FIRST), Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(lo4(0x1234), Ipv4Addr::new(127, 0x12, 0x34, 1));
        assert_eq!(lo4(LAST), Ipv4Addr::new(127, 255, 255, 1));
        assert_eq!(lo6(0x1234).to_string(), "fd76:7365:7276:6c6f::1234:1");
        assert!(lo4(FIRST).is_loopback());
        assert_eq!(slot_of(0), None);
        assert_eq!(slot_of(1), Some(257));
        assert_eq!(slot_of(49151), Some(DYNAMIC_FIRST - 1));
        assert_eq!(slot_of(49152), None);
    }

    #[test]
    fn a_claim_takes_a_free_slot_and_stale_records_are_handed_back() {
        let run = std::env::temp_dir().join(format!("vs-lback-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&run);
        // A live record: its "cgroup" is a directory that exists, with its inode.
        use std::os::unix::fs::MetadataExt;
        let live_dir = run.join("live");
        fs::create_dir_all(&live_dir).unwrap();
        let live = Record { name: "a".into(), cgroup: live_dir.clone(), cgroup_id: fs::metadata(&live_dir).unwrap().ino(), added: vec![] };
        let (c1, stale) = claim(&run, 0, |_| live.clone()).unwrap();
        assert_eq!((c1.slot, stale.len()), (DYNAMIC_FIRST, 0));
        let gone = Record {
            name: "b".into(),
            cgroup: run.join("gone"),
            cgroup_id: 1,
            added: vec![("eth9".into(), "192.0.2.9/24".parse::<IfAddrText>().unwrap().0)],
        };
        let (c2, _) = claim(&run, 0, |_| gone.clone()).unwrap();
        assert_eq!(c2.slot, DYNAMIC_FIRST + 1);
        // The second record's cgroup never existed: the next claim finds it stale and reuses its slot.
        let (c3, stale) = claim(&run, 0, |_| live.clone()).unwrap();
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].1, gone);
        assert_eq!(c3.slot, DYNAMIC_FIRST + 1);
        // A numbered context has its own slot; a second live claim of it is refused.
        let (c4, _) = claim(&run, 1001, |_| live.clone()).unwrap();
        assert_eq!(c4.slot, FIRST + 1001);
        assert!(claim(&run, 1001, |_| live.clone()).unwrap_err().to_string().contains("held by a running context"));
        assert_eq!(records(&run).len(), 3);
        c1.release();
        c3.release();
        c4.release();
        assert!(records(&run).is_empty());
        let _ = fs::remove_dir_all(&run);
    }

    struct IfAddrText(IfAddr);
    impl std::str::FromStr for IfAddrText {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, String> {
            let (a, p) = s.split_once('/').ok_or("no prefix")?;
            Ok(IfAddrText(IfAddr { addr: a.parse().map_err(|_| "addr")?, prefix: p.parse().map_err(|_| "prefix")? }))
        }
    }
}
