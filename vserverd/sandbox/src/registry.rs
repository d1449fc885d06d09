//! Context numbers (the paper's S_CONTEXT): a small registry under the run directory mapping a
//! number to its pid 1, that pid's start time and what a joiner must take on (flags, caps).
//! A pid alone is never trusted: an entry is live only while the pid still has the recorded
//! start time, so a recycled pid is never mistaken for a context.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::caps::CapSet;
use crate::error::{SetupError, Step};
use crate::plan::Flags;
use crate::sys;

pub const DEFAULT_RUN_DIR: &str = "/run/vservers";

/// Contexts that `chcontext` allocates without `--ctx` come from here up (as util-vserver's
/// dynamic contexts did); configured vservers use numbers below.
pub const DYNAMIC_FIRST: u32 = 49152;
pub const DYNAMIC_LAST: u32 = 65535;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub context: u32,
    pub name: String,
    /// pid 1 of the context, as the host sees it, and its start time.
    pub pid: i32,
    pub start_time: u64,
    /// The process that claimed the number (the monitor) and its start time: a claim whose
    /// owner is gone is stale.
    pub owner_pid: i32,
    pub owner_start_time: u64,
    pub flags: Flags,
    pub caps: CapSet,
    /// True when the context has its own network namespace.
    pub own_network: bool,
}

impl Entry {
    /// True while the entry's pid 1, or before it exists its owner, is the very process recorded.
    pub fn is_live(&self) -> bool {
        let alive = |pid: i32, start: u64| pid > 0 && sys::start_time(pid) == Some(start);
        if self.pid > 0 {
            alive(self.pid, self.start_time)
        } else {
            alive(self.owner_pid, self.owner_start_time)
        }
    }
}

fn dir(run_dir: &Path) -> PathBuf {
    run_dir.join("contexts")
}

fn path(run_dir: &Path, context: u32) -> PathBuf {
    dir(run_dir).join(context.to_string())
}

fn err(path: &Path, e: std::io::Error) -> SetupError {
    SetupError::new(Step::Registry, Some(path.display().to_string()), Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO)))
}

/// Reads a live entry; a stale one reads as absent.
pub fn lookup(run_dir: &Path, context: u32) -> Option<Entry> {
    let text = fs::read_to_string(path(run_dir, context)).ok()?;
    let entry: Entry = serde_json::from_str(&text).ok()?;
    entry.is_live().then_some(entry)
}

/// Every live entry.
pub fn list(run_dir: &Path) -> Vec<Entry> {
    let Ok(rd) = fs::read_dir(dir(run_dir)) else { return Vec::new() };
    let mut out: Vec<Entry> = rd
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|n| lookup(run_dir, n))
        .collect();
    out.sort_by_key(|e| e.context);
    out
}

/// Claims `context` for the calling process (the monitor). Fails with EEXIST when a live
/// entry holds it; a stale entry is replaced.
pub fn claim(run_dir: &Path, context: u32, name: &str) -> Result<Entry, SetupError> {
    let d = dir(run_dir);
    fs::create_dir_all(&d).map_err(|e| err(&d, e))?;
    let me = std::process::id() as i32;
    let entry = Entry {
        context,
        name: name.to_string(),
        pid: 0,
        start_time: 0,
        owner_pid: me,
        owner_start_time: sys::start_time(me).unwrap_or(0),
        flags: Flags::default(),
        caps: CapSet::empty(),
        own_network: false,
    };
    let p = path(run_dir, context);
    for _ in 0..2 {
        match fs::OpenOptions::new().write(true).create_new(true).mode(0o644).open(&p) {
            Ok(mut f) => {
                f.write_all(serde_json::to_string(&entry).expect("entry serializes").as_bytes())
                    .map_err(|e| err(&p, e))?;
                return Ok(entry);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if lookup(run_dir, context).is_some() {
                    return Err(SetupError::new(Step::Registry, Some(p.display().to_string()), Errno::EEXIST)
                        .with_detail(format!("context {context} is in use")));
                }
                let _ = fs::remove_file(&p);
            }
            Err(e) => return Err(err(&p, e)),
        }
    }
    Err(SetupError::new(Step::Registry, Some(p.display().to_string()), Errno::EEXIST))
}

/// Claims the first free dynamic context number.
pub fn claim_dynamic(run_dir: &Path, name: &str) -> Result<Entry, SetupError> {
    for n in DYNAMIC_FIRST..=DYNAMIC_LAST {
        match claim(run_dir, n, name) {
            Ok(e) => return Ok(e),
            Err(e) if e.errno == libc::EEXIST => continue,
            Err(e) => return Err(e),
        }
    }
    Err(SetupError::detail(Step::Registry, Some(dir(run_dir).display().to_string()), "no free context number"))
}

/// Records the running context (atomically: written aside, then renamed over the claim).
pub fn publish(run_dir: &Path, entry: &Entry) -> Result<(), SetupError> {
    let p = path(run_dir, entry.context);
    let tmp = dir(run_dir).join(format!(".{}.tmp", entry.context));
    fs::write(&tmp, serde_json::to_string(entry).expect("entry serializes")).map_err(|e| err(&tmp, e))?;
    fs::rename(&tmp, &p).map_err(|e| err(&p, e))
}

/// Removes the entry if it still belongs to the calling process or to a dead context.
pub fn release(run_dir: &Path, context: u32) {
    let p = path(run_dir, context);
    if let Ok(text) = fs::read_to_string(&p) {
        if let Ok(entry) = serde_json::from_str::<Entry>(&text) {
            let mine = entry.owner_pid == std::process::id() as i32;
            if mine || !entry.is_live() {
                let _ = fs::remove_file(&p);
            }
        }
    }
}
