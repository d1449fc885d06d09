//! Context numbers (the paper's S_CONTEXT): a small registry under the run directory mapping a
//! number to its pid 1, that pid's start time and what a joiner must take on (flags, caps).
//! A pid alone is never trusted: an entry is live only while the pid still has the recorded
//! start time, so a recycled pid is never mistaken for a context.
//!
//! An entry is one file, `RUN_DIR/contexts/N`, written whole aside and then hard-linked into
//! place: the link both claims the number (it fails if the name exists) and publishes complete
//! content, in one step.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::caps::CapSet;
use crate::error::{SetupError, Step};
use crate::plan::Flags;
use crate::sys;

pub use crate::plan::DEFAULT_RUN_DIR;

/// Contexts that `chcontext` allocates without `--ctx` come from here up (as util-vserver's
/// dynamic contexts did); configured vservers use numbers below.
pub const DYNAMIC_FIRST: u32 = 49152;
pub const DYNAMIC_LAST: u32 = 65535;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The number: the entry's file name.
    #[serde(skip)]
    pub context: u32,
    pub name: String,
    /// pid 1 of the context, as the host sees it, and its start time.
    pub pid: i32,
    pub start_time: u64,
    /// The process that built the context (its monitor) and that process's start time.
    pub owner_pid: i32,
    pub owner_start_time: u64,
    pub flags: Flags,
    pub caps: CapSet,
    /// True when the context has its own network namespace.
    pub own_network: bool,
}

impl Entry {
    /// True while the entry's pid 1 is the very process recorded.
    pub fn is_live(&self) -> bool {
        self.pid > 0 && sys::start_time(self.pid) == Some(self.start_time)
    }
}

/// This process's pid and start time (read once).
pub fn me() -> (i32, u64) {
    static ME: OnceLock<(i32, u64)> = OnceLock::new();
    *ME.get_or_init(|| {
        let pid = std::process::id() as i32;
        (pid, sys::start_time(pid).unwrap_or(0))
    })
}

fn dir(run_dir: &Path) -> PathBuf {
    run_dir.join("contexts")
}

fn path(run_dir: &Path, context: u32) -> PathBuf {
    dir(run_dir).join(context.to_string())
}

fn err(path: &Path, e: std::io::Error) -> SetupError {
    SetupError::new(Step::Registry, Some(path.display().to_string()), crate::error::io_errno(&e))
}

fn read(run_dir: &Path, context: u32) -> Option<Entry> {
    let text = fs::read_to_string(path(run_dir, context)).ok()?;
    let mut entry: Entry = serde_json::from_str(&text).ok()?;
    entry.context = context;
    Some(entry)
}

/// Reads a live entry; a stale one reads as absent.
pub fn lookup(run_dir: &Path, context: u32) -> Option<Entry> {
    read(run_dir, context).filter(Entry::is_live)
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

/// Fails with EEXIST when a live context holds `context` (checked before a start, to fail early).
pub fn check_free(run_dir: &Path, context: u32) -> Result<(), SetupError> {
    match lookup(run_dir, context) {
        Some(e) => Err(SetupError::new(Step::Registry, Some(path(run_dir, context).display().to_string()), Errno::EEXIST)
            .with_detail(format!("context {context} is in use by {:?} (pid {})", e.name, e.pid))),
        None => Ok(()),
    }
}

/// Registers `entry` under `entry.context`, or, when it is 0, under the first free dynamic
/// number; returns the number. A stale entry in the way is replaced.
pub fn register(run_dir: &Path, entry: &Entry) -> Result<u32, SetupError> {
    let d = dir(run_dir);
    let tmp = d.join(format!(".new.{}", std::process::id()));
    let body = serde_json::to_string(entry).expect("entry serializes");
    if let Err(e) = fs::write(&tmp, &body) {
        if e.kind() != ErrorKind::NotFound {
            return Err(err(&tmp, e));
        }
        fs::create_dir_all(&d).map_err(|e| err(&d, e))?;
        fs::write(&tmp, &body).map_err(|e| err(&tmp, e))?;
    }
    let numbers: Box<dyn Iterator<Item = u32>> =
        if entry.context == 0 { Box::new(DYNAMIC_FIRST..=DYNAMIC_LAST) } else { Box::new(std::iter::once(entry.context)) };
    let mut result = Err(SetupError::detail(Step::Registry, Some(d.display().to_string()), "no free context number"));
    // Deciding that an entry is stale and replacing it must be one step among all claimants.
    let lock = lock_dir(&d)?;
    for n in numbers {
        let p = path(run_dir, n);
        let mut attempt = fs::hard_link(&tmp, &p);
        if matches!(&attempt, Err(e) if e.kind() == ErrorKind::AlreadyExists) && lookup(run_dir, n).is_none() {
            let _ = fs::remove_file(&p); // stale: its context is gone
            attempt = fs::hard_link(&tmp, &p);
        }
        match attempt {
            Ok(()) => {
                result = Ok(n);
                break;
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists && entry.context == 0 => continue,
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                result = Err(SetupError::new(Step::Registry, Some(p.display().to_string()), Errno::EEXIST)
                    .with_detail(format!("context {n} is in use")));
                break;
            }
            Err(e) => {
                result = Err(err(&p, e));
                break;
            }
        }
    }
    drop(lock);
    let _ = fs::remove_file(&tmp);
    result
}

/// An exclusive `flock` on `contexts/.lock`, held while numbers are claimed.
fn lock_dir(d: &Path) -> Result<fs::File, SetupError> {
    let p = d.join(".lock");
    let f = fs::OpenOptions::new().create(true).write(true).truncate(false).open(&p).map_err(|e| err(&p, e))?;
    loop {
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&f), libc::LOCK_EX) } == 0 {
            return Ok(f);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != ErrorKind::Interrupted {
            return Err(err(&p, e));
        }
    }
}

/// Removes the entry of a context that has ended (or that this process built).
pub fn release(run_dir: &Path, context: u32) {
    if let Some(entry) = read(run_dir, context) {
        if entry.owner_pid == me().0 || !entry.is_live() {
            let _ = fs::remove_file(path(run_dir, context));
        }
    }
}
