//! Capabilities: the paper's capability ceiling (`reducecap`, `--secure`, S_CAPS), built as the
//! bounding set of every process in a context, with the ambient and inheritable sets cleared.
//!
//! Root inside keeps only what it needs to run services. The secure default, entry by entry:
//!
//! | capability | why root inside keeps it |
//! |---|---|
//! | CHOWN, FOWNER, FSETID | package managers and daemons own and chmod their files |
//! | DAC_OVERRIDE | root reads and writes every file of its own tree (backups, cron) |
//! | KILL | signal any process of the vserver (the PID namespace hides all others) |
//! | SETUID, SETGID | daemons drop to their users; `su`, `login`, `sshd` |
//! | NET_BIND_SERVICE | services listen on ports below 1024 |
//! | SYS_CHROOT | `sshd` privilege separation, bind's chroot; it cannot leave the pivoted root |
//! | SYS_TTY_CONFIG | `vhangup` by `login`/`getty` on the vserver's own ptys |
//! | LEASE | file leases (Samba, NFS servers in user space) |
//! | SETPCAP | daemons drop capabilities of their own (systemd units, `capsh`); it cannot raise the bounding set |
//! | SETFCAP | package managers install binaries with file capabilities (`ping`), still capped by the bounding set |
//! | AUDIT_WRITE | `login`, `sshd`, `sudo` write audit records and fail without it |
//! | SYS_BOOT | `reboot` inside restarts the vserver (the kernel ends its pid 1 with SIGHUP); `kexec_load` stays denied by seccomp |
//!
//! Out by default, as in Docker's default set; `[capabilities] add` gives them back:
//!
//! | capability | what adding it back gives, and costs |
//! |---|---|
//! | SYS_PTRACE | `strace`/`gdb` of processes of other users or holding more than the tracer, reading their `/proc/PID/environ`, `fd`, `mem`; inside the PID namespace only. Without it root still traces its own processes with the same credentials. Processes entering from the host stay out of reach until their exec ([`crate::guard`]) |
//! | DAC_READ_SEARCH | next to nothing, as DAC_OVERRIDE already reads and searches every file: a few explicit checks (`linkat` with `AT_EMPTY_PATH`) and `open_by_handle_at`, the call of the "shocker" escape, which seccomp denies anyway |
//!
//! Left out on purpose: SYS_ADMIN (mount, namespaces, most of the kernel), NET_ADMIN and NET_RAW
//! (the paper's S_CAPS gives them back: `add = ["NET_RAW"]` for ping), SYS_MODULE, SYS_RAWIO,
//! MKNOD, SYS_TIME, SYS_NICE, SYS_RESOURCE, IPC_LOCK, IPC_OWNER, MAC_*, SYSLOG, BPF, PERFMON,
//! AUDIT_CONTROL, WAKE_ALARM, BLOCK_SUSPEND, LINUX_IMMUTABLE, SYS_PACCT, CHECKPOINT_RESTORE.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Every capability this engine knows, by number, with its name without the `CAP_` prefix.
pub const NAMES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// The paper's `--secure` keep-list plus what a modern distribution needs inside, less
/// SYS_PTRACE and DAC_READ_SEARCH (see the module documentation for each entry).
pub const SECURE_DEFAULT: [&str; 15] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "SYS_TTY_CONFIG",
    "LEASE",
    "SETPCAP",
    "SETFCAP",
    "AUDIT_WRITE",
    "SYS_BOOT",
];

#[derive(Debug, Clone, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("unknown capability {name:?} (expected a name such as NET_RAW or CAP_NET_RAW)")]
pub struct UnknownCapability {
    pub name: String,
}

/// One capability, by its kernel number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Capability(pub u8);

impl Capability {
    /// Parses `NET_RAW`, `net_raw` or `CAP_NET_RAW`.
    pub fn parse(name: &str) -> Result<Capability, UnknownCapability> {
        let upper = name.trim().to_ascii_uppercase();
        let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
        NAMES
            .iter()
            .position(|n| *n == bare)
            .map(|i| Capability(i as u8))
            .ok_or_else(|| UnknownCapability { name: name.to_string() })
    }

    pub fn name(self) -> &'static str {
        NAMES.get(self.0 as usize).copied().unwrap_or("UNKNOWN")
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of capabilities as the kernel's 64-bit mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CapSet(pub u64);

impl CapSet {
    pub fn empty() -> CapSet {
        CapSet(0)
    }

    /// Every capability the engine knows.
    pub fn full() -> CapSet {
        CapSet((1u64 << NAMES.len()) - 1)
    }

    pub fn secure_default() -> CapSet {
        let mut set = CapSet::empty();
        for name in SECURE_DEFAULT {
            set.add(Capability::parse(name).expect("the default list names known capabilities"));
        }
        set
    }

    /// The secure default (or `base`), plus `add`, minus `drop`: the config's `[capabilities]`.
    pub fn from_changes<S: AsRef<str>>(base: CapSet, add: &[S], drop: &[S]) -> Result<CapSet, UnknownCapability> {
        let mut set = base;
        for name in add {
            set.add(Capability::parse(name.as_ref())?);
        }
        for name in drop {
            set.remove(Capability::parse(name.as_ref())?);
        }
        Ok(set)
    }

    pub fn add(&mut self, cap: Capability) {
        self.0 |= 1 << cap.0;
    }

    pub fn remove(&mut self, cap: Capability) {
        self.0 &= !(1 << cap.0);
    }

    pub fn contains(self, cap: Capability) -> bool {
        self.0 & (1 << cap.0) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Capability> {
        (0..NAMES.len() as u8).map(Capability).filter(move |c| self.contains(*c))
    }

    /// Names, comma-separated, for `reducecap --show` and messages.
    pub fn names(self) -> String {
        self.iter().map(|c| c.name()).collect::<Vec<_>>().join(",")
    }
}

/// Cuts this process's bounding set down to `keep` (every other capability the kernel has is
/// dropped, also those newer than this engine) and clears the ambient and inheritable sets.
/// After the next `execve`, root holds exactly `keep`; nothing can raise it again, not even a
/// setuid-root binary.
pub fn apply(keep: CapSet) -> Result<(), nix::errno::Errno> {
    let last = last_cap();
    for n in 0..=last {
        if n < 64 && keep.0 & (1u64 << n) != 0 {
            continue;
        }
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, n as libc::c_ulong, 0, 0, 0) } != 0 {
            let e = nix::errno::Errno::last();
            if e != nix::errno::Errno::EINVAL {
                return Err(e);
            }
        }
    }
    if unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(nix::errno::Errno::last());
    }
    caps::clear(None, caps::CapSet::Inheritable).map_err(|_| nix::errno::Errno::last())?;
    Ok(())
}

/// Lowers this process's permitted and effective sets to `keep` (as well as the bounding set,
/// through [`apply`]), so that what it starts before an exec holds no more than `keep`.
pub fn limit_process(keep: CapSet) -> Result<(), nix::errno::Errno> {
    let wanted: caps::CapsHashSet = caps::all().into_iter().filter(|c| keep.contains(Capability(c.index()))).collect();
    for set in [caps::CapSet::Effective, caps::CapSet::Permitted] {
        let now = caps::read(None, set).map_err(|_| nix::errno::Errno::EPERM)?;
        let target: caps::CapsHashSet = now.intersection(&wanted).copied().collect();
        caps::set(None, set, &target).map_err(|_| nix::errno::Errno::EPERM)?;
    }
    Ok(())
}

/// The highest capability number of the running kernel.
pub fn last_cap() -> u32 {
    static LAST: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *LAST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(63)
    })
}

/// Reads one of the capability masks (`CapBnd`, `CapEff`, …) of this process.
pub fn current(field: &str) -> Option<CapSet> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .map(CapSet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_spellings() {
        assert_eq!(Capability::parse("NET_RAW").unwrap(), Capability(13));
        assert_eq!(Capability::parse("cap_net_raw").unwrap(), Capability(13));
        assert_eq!(Capability::parse("CAP_SYS_ADMIN").unwrap(), Capability(21));
        assert_eq!(Capability::parse("CHECKPOINT_RESTORE").unwrap(), Capability(40));
        assert!(Capability::parse("NET_RAWX").is_err());
        assert!(Capability::parse("").is_err());
    }

    #[test]
    fn secure_default_is_the_documented_list() {
        let d = CapSet::secure_default();
        assert_eq!(d.iter().count(), SECURE_DEFAULT.len());
        for bad in ["SYS_ADMIN", "NET_ADMIN", "NET_RAW", "SYS_MODULE", "MKNOD", "SYS_RAWIO", "BPF", "SYS_PTRACE", "DAC_READ_SEARCH"] {
            assert!(!d.contains(Capability::parse(bad).unwrap()), "{bad} must not be kept");
        }
        assert!(d.contains(Capability::parse("SYS_BOOT").unwrap()));
        assert!(d.contains(Capability::parse("DAC_OVERRIDE").unwrap()));
        // Bits 19 and 2, as /proc/PID/status shows them.
        assert_eq!(d.0 & (1 << 19 | 1 << 2), 0);
    }

    #[test]
    fn ptrace_and_read_search_come_back_with_add() {
        let s = CapSet::from_changes(CapSet::secure_default(), &["SYS_PTRACE", "CAP_DAC_READ_SEARCH"], &[]).unwrap();
        assert_eq!(s.0, CapSet::secure_default().0 | 1 << 19 | 1 << 2);
    }

    #[test]
    fn add_and_drop_change_the_default() {
        let s = CapSet::from_changes(CapSet::secure_default(), &["NET_RAW"], &["SYS_CHROOT"]).unwrap();
        assert!(s.contains(Capability::parse("NET_RAW").unwrap()));
        assert!(!s.contains(Capability::parse("SYS_CHROOT").unwrap()));
        let e = CapSet::from_changes(CapSet::secure_default(), &["NOPE"], &[]).unwrap_err();
        assert_eq!(e.name, "NOPE");
    }

    #[test]
    fn names_round_trip() {
        for (i, n) in NAMES.iter().enumerate() {
            assert_eq!(Capability::parse(n).unwrap().0 as usize, i);
        }
        assert_eq!(CapSet::full().iter().count(), NAMES.len());
    }
}
