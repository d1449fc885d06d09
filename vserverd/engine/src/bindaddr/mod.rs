//! Bind mode: the paper's `set_ipv4root` on the host's own network stack. No network namespace:
//! a set of small eBPF programs on a cgroup of the v2 tree decides, for every socket of every
//! process in that cgroup (and below), which addresses it may bind and connect from:
//!
//! - a bind to the wildcard address gets the vserver's first address of that family; to one of
//!   its addresses, that address; to any other address, `EADDRNOTAVAIL`;
//! - TCP connections and UDP datagrams leave from the vserver's address;
//! - loopback is private: 127.0.0.1 (and ::1) stand for an address of the vserver's own,
//!   127.H.L.1 (and fd76:7365:7276:6c6f::N:1, see [`lback`]), which only its own sockets reach and
//!   which applications still see as 127.0.0.1;
//! - abstract unix socket names are refused; raw, packet and ICMP sockets are refused.
//!
//! The programs ([`progs`]) are written in Rust with a tiny assembler ([`asm`]) and loaded
//! with bpf(2) through libc ([`bpf`]): no compiler and no BPF library at run time. They are
//! the same for every vserver and loaded once ([`ProgramSet::load`]); each vserver's addresses
//! are one value of a cgroup-storage map, which the kernel keeps per cgroup and frees with it.
//! Programs attached to a cgroup stay attached when the process that attached them ends: a
//! vserver keeps its rules across a restart of the daemon. Nothing inside can detach them: the
//! `bpf` system call is denied by the seccomp filter, and a bind vserver never has
//! CAP_NET_ADMIN, CAP_SYS_ADMIN or CAP_BPF.

pub mod asm;
pub mod bound;
pub mod bpf;
pub mod btf;
pub mod lback;
pub mod progs;
pub mod rules;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use serde::{Deserialize, Serialize};

pub use bound::{bind, Bound};
pub use rules::Rules;

use crate::error::{SetupError, Step};

/// One program of the set: where it attaches and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hook {
    SockCreate,
    Bind4,
    Bind6,
    Connect4,
    Connect6,
    Sendmsg4,
    Sendmsg6,
    Recvmsg4,
    Recvmsg6,
    Getsockname4,
    Getsockname6,
    Getpeername4,
    Getpeername6,
    Ingress,
    Egress,
    UnixConnect,
    UnixSendmsg,
}

impl Hook {
    pub const ALL: [Hook; 17] = [
        Hook::SockCreate,
        Hook::Bind4,
        Hook::Bind6,
        Hook::Connect4,
        Hook::Connect6,
        Hook::Sendmsg4,
        Hook::Sendmsg6,
        Hook::Recvmsg4,
        Hook::Recvmsg6,
        Hook::Getsockname4,
        Hook::Getsockname6,
        Hook::Getpeername4,
        Hook::Getpeername6,
        Hook::Ingress,
        Hook::Egress,
        Hook::UnixConnect,
        Hook::UnixSendmsg,
    ];

    /// The program's name in the kernel (`bpftool prog` shows it).
    pub fn name(self) -> &'static str {
        match self {
            Hook::SockCreate => "vs_sock_create",
            Hook::Bind4 => "vs_bind4",
            Hook::Bind6 => "vs_bind6",
            Hook::Connect4 => "vs_connect4",
            Hook::Connect6 => "vs_connect6",
            Hook::Sendmsg4 => "vs_sendmsg4",
            Hook::Sendmsg6 => "vs_sendmsg6",
            Hook::Recvmsg4 => "vs_recvmsg4",
            Hook::Recvmsg6 => "vs_recvmsg6",
            Hook::Getsockname4 => "vs_getsockname4",
            Hook::Getsockname6 => "vs_getsockname6",
            Hook::Getpeername4 => "vs_getpeername4",
            Hook::Getpeername6 => "vs_getpeername6",
            Hook::Ingress => "vs_ingress",
            Hook::Egress => "vs_egress",
            Hook::UnixConnect => "vs_unix_connect",
            Hook::UnixSendmsg => "vs_unix_sendmsg",
        }
    }

    /// `enum bpf_attach_type` (include/uapi/linux/bpf.h; the unix ones since Linux 6.7).
    pub fn attach_type(self) -> u32 {
        match self {
            Hook::Ingress => 0,
            Hook::Egress => 1,
            Hook::SockCreate => 2,
            Hook::Bind4 => 8,
            Hook::Bind6 => 9,
            Hook::Connect4 => 10,
            Hook::Connect6 => 11,
            Hook::Sendmsg4 => 14,
            Hook::Sendmsg6 => 15,
            Hook::Recvmsg4 => 19,
            Hook::Recvmsg6 => 20,
            Hook::Getpeername4 => 29,
            Hook::Getpeername6 => 30,
            Hook::Getsockname4 => 31,
            Hook::Getsockname6 => 32,
            Hook::UnixConnect => 49,
            Hook::UnixSendmsg => 50,
        }
    }

    fn prog_type(self) -> u32 {
        match self {
            Hook::Ingress | Hook::Egress => bpf::PROG_TYPE_CGROUP_SKB,
            Hook::SockCreate => bpf::PROG_TYPE_CGROUP_SOCK,
            _ => bpf::PROG_TYPE_CGROUP_SOCK_ADDR,
        }
    }

    fn program(self, unix: progs::UnixCtx) -> asm::Asm {
        match self {
            Hook::SockCreate => progs::sock_create(),
            Hook::Bind4 => progs::bind4(),
            Hook::Bind6 => progs::bind6(),
            Hook::Connect4 => progs::connect4(),
            Hook::Connect6 => progs::connect6(),
            Hook::Sendmsg4 => progs::sendmsg4(),
            Hook::Sendmsg6 => progs::sendmsg6(),
            Hook::Recvmsg4 | Hook::Getsockname4 | Hook::Getpeername4 => progs::show4(),
            Hook::Recvmsg6 | Hook::Getsockname6 | Hook::Getpeername6 => progs::show6(),
            Hook::Ingress => progs::skb(progs::Direction::Ingress),
            Hook::Egress => progs::skb(progs::Direction::Egress),
            Hook::UnixConnect | Hook::UnixSendmsg => progs::unix(unix),
        }
    }

    pub fn by_name(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.name() == name)
    }
}

/// The rules map's name in the kernel.
pub const MAP_NAME: &str = "vs_bind_rules";

/// The loaded programs and their rules map. Dropping it closes the descriptors; the programs
/// live on for as long as a cgroup has them attached.
#[derive(Debug)]
pub struct ProgramSet {
    map: OwnedFd,
    progs: Vec<(Hook, OwnedFd)>,
}

/// A loaded set by its kernel ids: how the daemon tells a monitor which set to attach (root
/// opens them again by id), so that all vservers share one copy of the programs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetIds {
    pub map: u32,
    pub progs: Vec<(Hook, u32)>,
}

/// The unix hooks' view of the kernel context, from the kernel's BTF.
fn unix_ctx() -> Result<progs::UnixCtx, SetupError> {
    let err = |what: String| SetupError::detail(Step::BpfLoad, Some(btf::VMLINUX.into()), what);
    let b = btf::Btf::vmlinux().map_err(|e| err(format!("the kernel's type information (BTF) is needed for the unix-socket hooks: {e}")))?;
    let cast =
        b.func_id("bpf_cast_to_kern_ctx").ok_or_else(|| err("no kernel function bpf_cast_to_kern_ctx (Linux 6.7 or later is needed)".into()))?;
    let field = |m: &str| {
        b.member_offset("bpf_sock_addr_kern", m)
            .and_then(|o| i16::try_from(o).ok())
            .ok_or_else(|| err(format!("no member {m} in struct bpf_sock_addr_kern")))
    };
    Ok(progs::UnixCtx { cast_to_kern_ctx: cast, uaddr: field("uaddr")?, uaddrlen: field("uaddrlen")? })
}

impl ProgramSet {
    /// Makes the rules map and loads every program (the kernel verifies each). An error names
    /// the program and carries the end of the verifier's log.
    pub fn load() -> Result<ProgramSet, SetupError> {
        let unix = unix_ctx()?;
        let map = bpf::map_create(bpf::MAP_TYPE_CGROUP_STORAGE, 8, rules::VALUE_SIZE as u32, MAP_NAME)
            .map_err(|e| SetupError::new(Step::BpfLoad, Some(MAP_NAME.into()), e).with_detail("the rules map (cgroup storage)"))?;
        let mut progs = Vec::new();
        for hook in Hook::ALL {
            let insns =
                hook.program(unix).finish(Some(map.as_raw_fd())).map_err(|e| SetupError::detail(Step::BpfLoad, Some(hook.name().into()), e))?;
            let fd = bpf::prog_load(hook.prog_type(), hook.attach_type(), hook.name(), &insns).map_err(|(e, log)| {
                let detail = if log.is_empty() { "refused by the kernel".to_string() } else { format!("verifier: {log}") };
                SetupError::new(Step::BpfLoad, Some(hook.name().into()), e).with_detail(detail)
            })?;
            progs.push((hook, fd));
        }
        Ok(ProgramSet { map, progs })
    }

    /// The kernel ids of the map and the programs.
    pub fn ids(&self) -> Result<SetIds, SetupError> {
        let err = |what: &str, e| SetupError::new(Step::BpfQuery, Some(what.to_string()), e);
        let (_, map, _, _) = bpf::map_info(self.map.as_fd()).map_err(|e| err(MAP_NAME, e))?;
        let mut progs = Vec::new();
        for (hook, fd) in &self.progs {
            progs.push((*hook, bpf::prog_info(fd.as_fd()).map_err(|e| err(hook.name(), e))?.id));
        }
        Ok(SetIds { map, progs })
    }

    /// Opens a set loaded by another process (the daemon's) by its ids, checking that each is
    /// what it says it is.
    pub fn open(ids: &SetIds) -> Result<ProgramSet, SetupError> {
        let map = bpf::map_by_id(ids.map).map_err(|e| SetupError::new(Step::BpfQuery, Some(format!("map {}", ids.map)), e))?;
        match bpf::map_info(map.as_fd()) {
            Ok((t, _, size, name)) if t == bpf::MAP_TYPE_CGROUP_STORAGE && size as usize == rules::VALUE_SIZE && name == MAP_NAME => {}
            _ => return Err(SetupError::detail(Step::BpfQuery, Some(format!("map {}", ids.map)), "not the bind rules map")),
        }
        let mut progs = Vec::new();
        for hook in Hook::ALL {
            let id = ids.progs.iter().find(|(h, _)| *h == hook).map(|(_, id)| *id);
            let id = id.ok_or_else(|| SetupError::detail(Step::BpfQuery, Some(hook.name().into()), "missing from the program set"))?;
            let fd = bpf::prog_by_id(id).map_err(|e| SetupError::new(Step::BpfQuery, Some(format!("{} (id {id})", hook.name())), e))?;
            let info = bpf::prog_info(fd.as_fd()).map_err(|e| SetupError::new(Step::BpfQuery, Some(hook.name().into()), e))?;
            if info.name != hook.name() || info.prog_type != hook.prog_type() {
                return Err(SetupError::detail(
                    Step::BpfQuery,
                    Some(format!("{} (id {id})", hook.name())),
                    format!("program {id} is {:?}", info.name),
                ));
            }
            progs.push((hook, fd));
        }
        Ok(ProgramSet { map, progs })
    }

    /// Attaches every program to the cgroup `dir` (v2) and writes its rules. On failure nothing
    /// stays attached.
    pub fn attach(&self, dir: &Path, rules: &Rules) -> Result<(), SetupError> {
        let at = |hook: &str| format!("{} ({hook})", dir.display());
        rules.check().map_err(|e| SetupError::detail(Step::BpfAttach, Some(dir.display().to_string()), e))?;
        let cg = open_cgroup(dir, Step::BpfAttach)?;
        let (id, level) = identity(dir)?;
        let mut done: Vec<&(Hook, OwnedFd)> = Vec::new();
        let undo = |done: &[&(Hook, OwnedFd)]| {
            for (hook, fd) in done {
                let _ = bpf::prog_detach(cg.as_fd(), fd.as_fd(), hook.attach_type());
            }
        };
        for p in &self.progs {
            if let Err(e) = bpf::prog_attach(cg.as_fd(), p.1.as_fd(), p.0.attach_type(), bpf::F_ALLOW_MULTI) {
                undo(&done);
                return Err(SetupError::new(Step::BpfAttach, Some(at(p.0.name())), e));
            }
            done.push(p);
        }
        // The kernel made the cgroup's (zeroed) value when the first program using the map was
        // attached; until it is written every program refuses.
        if let Err(e) = bpf::map_update(self.map.as_fd(), &id.to_ne_bytes(), &rules.encode(id, level)) {
            undo(&done);
            return Err(SetupError::new(Step::BpfAttach, Some(at(MAP_NAME)), e).with_detail("writing the rules"));
        }
        Ok(())
    }
}

/// Opens a cgroup v2 directory for bpf(2).
fn open_cgroup(dir: &Path, step: Step) -> Result<OwnedFd, SetupError> {
    std::fs::File::open(dir).map(OwnedFd::from).map_err(|e| SetupError::new(step, Some(dir.display().to_string()), crate::error::io_errno(&e)))
}

/// A cgroup's id (its directory's inode number) and its level in the v2 tree (the root is 0),
/// counted up to the root of the cgroup2 mount it is found through.
pub fn identity(dir: &Path) -> Result<(u64, u32), SetupError> {
    use std::os::unix::fs::MetadataExt;
    let err = |e: Errno| SetupError::new(Step::BpfAttach, Some(dir.display().to_string()), e);
    let is_cgroup2 = crate::cgroup::is_cgroup2;
    if !is_cgroup2(dir) {
        return Err(SetupError::detail(Step::BpfAttach, Some(dir.display().to_string()), "not a cgroup of the v2 tree"));
    }
    let md = std::fs::metadata(dir).map_err(|e| err(crate::error::io_errno(&e)))?;
    let mut level = 0;
    let mut p = dir.to_path_buf();
    loop {
        let Some(parent) = p.parent().map(Path::to_path_buf) else { break };
        let pm = std::fs::metadata(&parent).map_err(|e| err(crate::error::io_errno(&e)))?;
        if pm.dev() != md.dev() || !is_cgroup2(&parent) {
            break;
        }
        level += 1;
        p = parent;
    }
    Ok((md.ino(), level))
}

/// The bind-mode programs attached to the cgroup `dir` itself, by hook: (hook, program id).
pub fn attached(dir: &Path) -> Result<Vec<(Hook, u32)>, SetupError> {
    let cg = open_cgroup(dir, Step::BpfQuery)?;
    let mut out = Vec::new();
    for hook in Hook::ALL {
        let ids = match bpf::prog_query(cg.as_fd(), hook.attach_type(), 0) {
            Ok(ids) => ids,
            // A kernel without this attach type (unix hooks before 6.7).
            Err(Errno::EINVAL) => continue,
            Err(e) => return Err(SetupError::new(Step::BpfQuery, Some(format!("{} ({})", dir.display(), hook.name())), e)),
        };
        for id in ids {
            let Ok(fd) = bpf::prog_by_id(id) else { continue };
            if bpf::prog_info(fd.as_fd()).is_ok_and(|i| i.name == hook.name()) {
                out.push((hook, id));
            }
        }
    }
    Ok(out)
}

/// The ids of every program that runs for sockets of the cgroup `dir` at `hook`, its
/// ancestors' included.
pub fn effective(dir: &Path, hook: Hook) -> Result<Vec<u32>, SetupError> {
    let cg = open_cgroup(dir, Step::BpfQuery)?;
    bpf::prog_query(cg.as_fd(), hook.attach_type(), bpf::QUERY_EFFECTIVE)
        .map_err(|e| SetupError::new(Step::BpfQuery, Some(format!("{} ({})", dir.display(), hook.name())), e))
}

/// True when the bind-mode programs run for sockets of the cgroup `dir` (attached to it or to
/// an ancestor).
pub fn is_bound(dir: &Path) -> bool {
    effective(dir, Hook::Bind4).unwrap_or_default().into_iter().any(|id| {
        bpf::prog_by_id(id).ok().and_then(|fd| bpf::prog_info(fd.as_fd()).ok()).is_some_and(|i| i.name == Hook::Bind4.name())
    })
}

/// Detaches every bind-mode program from the cgroup `dir` (whoever attached it: a daemon that
/// has restarted finds them by name). Returns how many.
pub fn detach_all(dir: &Path) -> Result<usize, SetupError> {
    let list = attached(dir)?;
    let cg = open_cgroup(dir, Step::BpfDetach)?;
    let mut n = 0;
    for (hook, id) in list {
        let fd = bpf::prog_by_id(id).map_err(|e| SetupError::new(Step::BpfDetach, Some(format!("{} (id {id})", hook.name())), e))?;
        bpf::prog_detach(cg.as_fd(), fd.as_fd(), hook.attach_type())
            .map_err(|e| SetupError::new(Step::BpfDetach, Some(format!("{} ({})", dir.display(), hook.name())), e))?;
        n += 1;
    }
    Ok(n)
}

/// Reads back the rules value of the cgroup `dir` from the map of its attached programs (tests).
pub fn read_rules(dir: &Path) -> Result<Vec<u8>, SetupError> {
    let list = attached(dir)?;
    let (hook, id) = list
        .into_iter()
        .find(|(h, _)| *h == Hook::Bind4)
        .ok_or_else(|| SetupError::detail(Step::BpfQuery, Some(dir.display().to_string()), "no bind4 program"))?;
    let fd = bpf::prog_by_id(id).map_err(|e| SetupError::new(Step::BpfQuery, Some(hook.name().into()), e))?;
    let info = bpf::prog_info(fd.as_fd()).map_err(|e| SetupError::new(Step::BpfQuery, Some(hook.name().into()), e))?;
    let map_id = *info.map_ids.first().ok_or_else(|| SetupError::detail(Step::BpfQuery, Some(hook.name().into()), "no map"))?;
    let map = bpf::map_by_id(map_id).map_err(|e| SetupError::new(Step::BpfQuery, Some(MAP_NAME.into()), e))?;
    let (cgid, _) = identity(dir)?;
    let mut v = vec![0u8; rules::VALUE_SIZE];
    bpf::map_lookup(map.as_fd(), &cgid.to_ne_bytes(), &mut v).map_err(|e| SetupError::new(Step::BpfQuery, Some(MAP_NAME.into()), e))?;
    Ok(v)
}

/// What bind mode needs of this host, as a sentence when it is missing: a cgroup v2 tree
/// (`v2_mount`), the kernel's BTF (for the unix hooks), and a kernel that loads the programs.
pub fn host_support(v2_mount: Option<&Path>) -> Result<(), String> {
    match v2_mount {
        None => return Err("bind mode needs the cgroup v2 tree (mounted at /sys/fs/cgroup, or at /sys/fs/cgroup/unified on a hybrid host): its socket hooks carry the vserver's rules; this host has none".into()),
        Some(m) if !m.join("cgroup.procs").exists() => return Err(format!("bind mode needs the cgroup v2 tree: {} is not one", m.display())),
        Some(_) => {}
    }
    unix_ctx().map_err(|e| e.to_string())?;
    Ok(())
}
