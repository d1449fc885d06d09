//! The bpf(2) commands bind mode uses, through libc: load a program, make the rules map and
//! write it, attach to and detach from a cgroup, list what a cgroup has attached, and open a
//! program or map by its id. Each `union bpf_attr` layout is a `#[repr(C)]` struct of its own
//! (include/uapi/linux/bpf.h), passed with its own size: the kernel reads that much and takes
//! the rest as zero.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use super::asm::Insn;

pub const PROG_TYPE_CGROUP_SKB: u32 = 8;
pub const PROG_TYPE_CGROUP_SOCK: u32 = 9;
pub const PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
pub const MAP_TYPE_CGROUP_STORAGE: u32 = 19;

const CMD_MAP_CREATE: i32 = 0;
const CMD_MAP_LOOKUP_ELEM: i32 = 1;
const CMD_MAP_UPDATE_ELEM: i32 = 2;
const CMD_PROG_LOAD: i32 = 5;
const CMD_PROG_ATTACH: i32 = 8;
const CMD_PROG_DETACH: i32 = 9;
const CMD_PROG_GET_FD_BY_ID: i32 = 13;
const CMD_MAP_GET_FD_BY_ID: i32 = 14;
const CMD_OBJ_GET_INFO_BY_FD: i32 = 15;
const CMD_PROG_QUERY: i32 = 16;

/// Several programs of one type on one cgroup, each run in turn (and kept by a descendant's).
pub const F_ALLOW_MULTI: u32 = 2;

unsafe fn bpf<T>(cmd: i32, attr: &mut T) -> Result<i64, Errno> {
    let r = libc::syscall(libc::SYS_bpf, cmd, attr as *mut T as *mut libc::c_void, std::mem::size_of::<T>() as u32);
    if r < 0 {
        Err(Errno::last())
    } else {
        Ok(r)
    }
}

fn fd_result(r: Result<i64, Errno>) -> Result<OwnedFd, Errno> {
    r.map(|fd| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn name16(name: &str) -> [u8; 16] {
    let mut n = [0u8; 16];
    for (d, s) in n.iter_mut().zip(name.bytes().take(15)) {
        *d = s;
    }
    n
}

#[repr(C)]
#[derive(Default)]
struct MapCreate {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

/// A map of `map_type` (close-on-exec fd).
pub fn map_create(map_type: u32, key_size: u32, value_size: u32, name: &str) -> Result<OwnedFd, Errno> {
    let mut a = MapCreate { map_type, key_size, value_size, map_name: name16(name), ..Default::default() };
    fd_result(unsafe { bpf(CMD_MAP_CREATE, &mut a) })
}

#[repr(C)]
#[derive(Default)]
struct MapElem {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

pub fn map_update(map: BorrowedFd<'_>, key: &[u8], value: &[u8]) -> Result<(), Errno> {
    let mut a = MapElem { map_fd: map.as_raw_fd() as u32, key: key.as_ptr() as u64, value: value.as_ptr() as u64, ..Default::default() };
    unsafe { bpf(CMD_MAP_UPDATE_ELEM, &mut a) }.map(|_| ())
}

pub fn map_lookup(map: BorrowedFd<'_>, key: &[u8], value: &mut [u8]) -> Result<(), Errno> {
    let mut a = MapElem { map_fd: map.as_raw_fd() as u32, key: key.as_ptr() as u64, value: value.as_mut_ptr() as u64, ..Default::default() };
    unsafe { bpf(CMD_MAP_LOOKUP_ELEM, &mut a) }.map(|_| ())
}

#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// Loads a program. A refusal comes with the verifier's log (its last lines), from a second
/// try that asks for it: the first try keeps no log, which costs nothing when all is well.
pub fn prog_load(prog_type: u32, attach_type: u32, name: &str, insns: &[Insn]) -> Result<OwnedFd, (Errno, String)> {
    const LICENSE: &CStr = c"GPL";
    let mut a = ProgLoad {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        prog_name: name16(name),
        expected_attach_type: attach_type,
        ..Default::default()
    };
    match fd_result(unsafe { bpf(CMD_PROG_LOAD, &mut a) }) {
        Ok(fd) => Ok(fd),
        Err(e) => {
            let mut log = vec![0u8; 256 * 1024];
            a.log_level = 1;
            a.log_size = log.len() as u32;
            a.log_buf = log.as_mut_ptr() as u64;
            let again = unsafe { bpf(CMD_PROG_LOAD, &mut a) };
            if let Ok(fd) = again {
                // Loaded after all (a transient failure): keep it.
                return Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) });
            }
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let tail: Vec<&str> = text.lines().rev().take(6).collect();
            Err((e, tail.into_iter().rev().collect::<Vec<_>>().join(" | ")))
        }
    }
}

#[repr(C)]
#[derive(Default)]
struct ProgAttach {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

pub fn prog_attach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>, attach_type: u32, flags: u32) -> Result<(), Errno> {
    let mut a = ProgAttach {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type,
        attach_flags: flags,
        ..Default::default()
    };
    unsafe { bpf(CMD_PROG_ATTACH, &mut a) }.map(|_| ())
}

pub fn prog_detach(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>, attach_type: u32) -> Result<(), Errno> {
    let mut a = ProgAttach { target_fd: cgroup.as_raw_fd() as u32, attach_bpf_fd: prog.as_raw_fd() as u32, attach_type, ..Default::default() };
    unsafe { bpf(CMD_PROG_DETACH, &mut a) }.map(|_| ())
}

#[repr(C)]
#[derive(Default)]
struct ProgQuery {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

/// Query flag: the programs that run for the cgroup (its own and its ancestors').
pub const QUERY_EFFECTIVE: u32 = 1;

/// The ids of the programs attached to the cgroup for `attach_type` (with [`QUERY_EFFECTIVE`]:
/// those that run there, inherited ones included).
pub fn prog_query(cgroup: BorrowedFd<'_>, attach_type: u32, flags: u32) -> Result<Vec<u32>, Errno> {
    let mut ids = vec![0u32; 64];
    let mut a = ProgQuery {
        target_fd: cgroup.as_raw_fd() as u32,
        attach_type,
        query_flags: flags,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    unsafe { bpf(CMD_PROG_QUERY, &mut a) }?;
    ids.truncate(a.prog_cnt as usize);
    Ok(ids)
}

#[repr(C)]
#[derive(Default)]
struct GetFdById {
    id: u32,
    next_id: u32,
    open_flags: u32,
}

pub fn prog_by_id(id: u32) -> Result<OwnedFd, Errno> {
    let mut a = GetFdById { id, ..Default::default() };
    fd_result(unsafe { bpf(CMD_PROG_GET_FD_BY_ID, &mut a) })
}

pub fn map_by_id(id: u32) -> Result<OwnedFd, Errno> {
    let mut a = GetFdById { id, ..Default::default() };
    fd_result(unsafe { bpf(CMD_MAP_GET_FD_BY_ID, &mut a) })
}

#[repr(C)]
#[derive(Default)]
struct GetInfo {
    bpf_fd: u32,
    info_len: u32,
    info: u64,
}

/// What the kernel says of a loaded program (the fields bind mode reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgInfo {
    pub prog_type: u32,
    pub id: u32,
    pub name: String,
    pub map_ids: Vec<u32>,
}

/// `struct bpf_prog_info` up to its name (the kernel fills what fits).
#[repr(C)]
struct RawProgInfo {
    prog_type: u32,
    id: u32,
    tag: [u8; 8],
    jited_prog_len: u32,
    xlated_prog_len: u32,
    jited_prog_insns: u64,
    xlated_prog_insns: u64,
    load_time: u64,
    created_by_uid: u32,
    nr_map_ids: u32,
    map_ids: u64,
    name: [u8; 16],
}

pub fn prog_info(prog: BorrowedFd<'_>) -> Result<ProgInfo, Errno> {
    let mut maps = [0u32; 4];
    let mut info: RawProgInfo = unsafe { std::mem::zeroed() };
    info.nr_map_ids = maps.len() as u32;
    info.map_ids = maps.as_mut_ptr() as u64;
    let mut a = GetInfo { bpf_fd: prog.as_raw_fd() as u32, info_len: std::mem::size_of::<RawProgInfo>() as u32, info: &mut info as *mut _ as u64 };
    unsafe { bpf(CMD_OBJ_GET_INFO_BY_FD, &mut a) }?;
    let end = info.name.iter().position(|b| *b == 0).unwrap_or(16);
    let n = (info.nr_map_ids as usize).min(maps.len());
    Ok(ProgInfo {
        prog_type: info.prog_type,
        id: info.id,
        name: String::from_utf8_lossy(&info.name[..end]).into_owned(),
        map_ids: maps[..n].to_vec(),
    })
}

/// `struct bpf_map_info` up to its name.
#[repr(C)]
struct RawMapInfo {
    map_type: u32,
    id: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    name: [u8; 16],
}

/// A map's (type, id, value size, name).
pub fn map_info(map: BorrowedFd<'_>) -> Result<(u32, u32, u32, String), Errno> {
    let mut info: RawMapInfo = unsafe { std::mem::zeroed() };
    let mut a = GetInfo { bpf_fd: map.as_raw_fd() as u32, info_len: std::mem::size_of::<RawMapInfo>() as u32, info: &mut info as *mut _ as u64 };
    unsafe { bpf(CMD_OBJ_GET_INFO_BY_FD, &mut a) }?;
    let end = info.name.iter().position(|b| *b == 0).unwrap_or(16);
    Ok((info.map_type, info.id, info.value_size, String::from_utf8_lossy(&info.name[..end]).into_owned()))
}
