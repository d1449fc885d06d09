//! The bind-mode programs, one function each, written with [`super::asm`]. All of them are
//! loaded once and attached to every bind vserver's cgroup; what differs between vservers is
//! the rules value the kernel hands them for the cgroup they run for ([`super::rules`]).
//!
//! Registers by convention: r6 the program's context, r7 the rules value; r1–r5, r0, r8 and
//! r9 scratch. A context field is read and written as the kernel documents it in
//! include/uapi/linux/bpf.h (`struct bpf_sock_addr`, `struct bpf_sock`, `struct __sk_buff`).
//!
//! | program | attach type | what it does |
//! |---|---|---|
//! | `vs_sock_create` | cgroup/sock_create | only TCP stream and UDP datagram sockets (no raw, ping, SCTP, MPTCP) |
//! | `vs_bind4`, `vs_bind6` | cgroup/bind4, bind6 | the wildcard becomes the first address; loopback the private one; own addresses pass (root of the vserver's user namespace also below port 1024); anything else EADDRNOTAVAIL |
//! | `vs_connect4`, `vs_connect6` | cgroup/connect4, connect6 | loopback (and the wildcard) becomes the private loopback; the socket is bound to the vserver's address first (the `bpf_bind` helper), so it leaves from there |
//! | `vs_sendmsg4`, `vs_sendmsg6` | cgroup/sendmsg4, sendmsg6 | likewise for unconnected UDP; the source is always set (IP_PKTINFO cannot choose another) |
//! | `vs_recvmsg4/6`, `vs_getsockname4/6`, `vs_getpeername4/6` | cgroup/recvmsg…, getsockname…, getpeername… | the private loopback address is shown as 127.0.0.1 (::1) |
//! | `vs_ingress` | cgroup_skb/ingress | a vserver's socket receives only what is addressed to its addresses; to its private loopback, only from its own sockets |
//! | `vs_egress` | cgroup_skb/egress | a vserver's socket sends only from its addresses; to its private loopback, only to its own sockets |
//! | `vs_unix_connect`, `vs_unix_sendmsg` | cgroup/connect_unix, sendmsg_unix | abstract names are refused (EPERM): the host's and other vservers' abstract sockets are out of reach |

use super::asm::{helper, Asm, Cmp, Reg, Size, FP, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9};
use super::rules::{off, word, MAX_ADDRS, VALID};

// struct bpf_sock_addr
const USER_IP4: i16 = 4;
const USER_IP6: i16 = 8;
const MSG_SRC_IP4: i16 = 40;
const MSG_SRC_IP6: i16 = 44;
const SK: i16 = 64;
// struct bpf_sock
const SOCK_TYPE: i16 = 8;
const SOCK_PROTOCOL: i16 = 12;
const SOCK_SRC_IP4: i16 = 24;
const SOCK_SRC_IP6: i16 = 28;

const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;
const SOCK_STREAM: u32 = 1;
const SOCK_DGRAM: u32 = 2;
const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;
const EADDRNOTAVAIL: i32 = 99;
const ENETUNREACH: i32 = 101;

/// The first octet of an IPv4 word, and 127 in that place.
fn first_octet_mask() -> i32 {
    word([0xff, 0, 0, 0]) as i32
}
fn net127() -> u32 {
    word([127, 0, 0, 0])
}
/// The third word of a v4-mapped IPv6 address (::ffff:a.b.c.d).
fn mapped() -> u32 {
    word([0, 0, 0xff, 0xff])
}
fn one() -> u32 {
    word([0, 0, 0, 1])
}
/// The first two words of every vserver's private IPv6 loopback address
/// (fd76:7365:7276:6c6f::/64, see [`super::lback`]).
fn lo6_prefix() -> [u32; 2] {
    [word([0xfd, 0x76, 0x73, 0x65]), word([0x72, 0x76, 0x6c, 0x6f])]
}

/// r6 = the context; r7 = the rules of the cgroup; rules not (yet) written: goto `invalid`.
fn prologue(a: &mut Asm, invalid: &str) {
    a.mov(R6, R1);
    a.ld_map(R1);
    a.mov_imm(R2, 0);
    a.call(helper::GET_LOCAL_STORAGE);
    a.mov(R7, R0);
    a.load(Size::W, R0, R7, off::VALID);
    a.jmp32_imm(Cmp::Ne, R0, VALID, invalid);
}

/// At `label`: the call fails with `errno`.
fn refuse_with(a: &mut Asm, label: &str, errno: i32) {
    a.label(label);
    a.mov_imm(R1, -errno);
    a.call(helper::SET_RETVAL);
    a.ret(0);
}

/// if `addr` (a 32-bit word) is one of the vserver's IPv4 addresses goto `yes`. Clobbers `t1`, `t2`.
fn v4_member(a: &mut Asm, addr: Reg, t1: Reg, t2: Reg, yes: &str) {
    let no = a.fresh("v4.no");
    a.load(Size::W, t1, R7, off::N4);
    for i in 0..MAX_ADDRS {
        a.jmp32_imm(Cmp::Eq, t1, i as u32, &no);
        a.load(Size::W, t2, R7, off::V4 + 4 * i as i16);
        a.jmp32(Cmp::Eq, addr, t2, yes);
    }
    a.label(&no);
}

/// if the IPv6 address in `w` equals the 16 bytes at `base + at` goto `yes`. Clobbers `t`.
fn v6_equal(a: &mut Asm, w: [Reg; 4], base: Reg, at: i16, t: Reg, yes: &str) {
    let no = a.fresh("v6.ne");
    for (j, r) in w.iter().enumerate() {
        a.load(Size::W, t, base, at + 4 * j as i16);
        a.jmp32(Cmp::Ne, *r, t, &no);
    }
    a.ja(yes);
    a.label(&no);
}

/// if the IPv6 address in `w` is one of the vserver's goto `yes`. Clobbers `t1`, `t2`.
fn v6_member(a: &mut Asm, w: [Reg; 4], t1: Reg, t2: Reg, yes: &str) {
    let no = a.fresh("v6.no");
    a.load(Size::W, t1, R7, off::N6);
    for i in 0..MAX_ADDRS {
        a.jmp32_imm(Cmp::Eq, t1, i as u32, &no);
        v6_equal(a, w, R7, off::V6 + 16 * i as i16, t2, yes);
    }
    a.label(&no);
}

/// Copies 16 bytes from `src + from` to `dst + to` through `t`.
fn copy16(a: &mut Asm, src: Reg, from: i16, dst: Reg, to: i16, t: Reg) {
    for j in 0..4 {
        a.load(Size::W, t, src, from + 4 * j);
        a.store(Size::W, dst, to + 4 * j, t);
    }
}

/// The IPv6 address of the context (`user_ip6`) into r2–r5.
const W: [Reg; 4] = [R2, R3, R4, R5];
fn load_user_ip6(a: &mut Asm) {
    for (j, r) in W.iter().enumerate() {
        a.load(Size::W, *r, R6, USER_IP6 + 4 * j as i16);
    }
}

/// Classifies the IPv6 address in r2–r5: `::` to `wildcard`, `::1` to `loopback`, `::ffff:x`
/// to `mapped` (x in r5); otherwise falls through.
fn classify6(a: &mut Asm, wildcard: &str, loopback: &str, mapped_to: &str) {
    let other = a.fresh("other");
    a.jmp32_imm(Cmp::Ne, R2, 0, &other);
    a.jmp32_imm(Cmp::Ne, R3, 0, &other);
    a.jmp32_imm(Cmp::Eq, R4, mapped(), mapped_to);
    a.jmp32_imm(Cmp::Ne, R4, 0, &other);
    a.jmp32_imm(Cmp::Eq, R5, 0, wildcard);
    a.jmp32_imm(Cmp::Eq, R5, one(), loopback);
    a.label(&other);
}

/// if the IPv4 word in `r` is 0.0.0.0 or in 127.0.0.0/8 goto `yes`. Clobbers `t`.
fn is_local4(a: &mut Asm, r: Reg, t: Reg, yes: &str) {
    a.jmp32_imm(Cmp::Eq, r, 0, yes);
    a.mov(t, r);
    a.and_imm(t, first_octet_mask());
    a.jmp32_imm(Cmp::Eq, t, net127(), yes);
}

/// cgroup/sock_create: TCP and UDP sockets only. Raw and ICMP ("ping") sockets would choose
/// their source address unseen by the address hooks; packet sockets need CAP_NET_RAW, which
/// a bind vserver never has.
pub fn sock_create() -> Asm {
    let mut a = Asm::new();
    a.load(Size::W, R2, R1, SOCK_TYPE);
    a.load(Size::W, R3, R1, SOCK_PROTOCOL);
    a.jmp32_imm(Cmp::Ne, R2, SOCK_STREAM, "dgram");
    a.jmp32_imm(Cmp::Eq, R3, IPPROTO_TCP, "allow");
    a.ja("deny");
    a.label("dgram");
    a.jmp32_imm(Cmp::Ne, R2, SOCK_DGRAM, "deny");
    a.jmp32_imm(Cmp::Eq, R3, IPPROTO_UDP, "allow");
    a.label("deny");
    a.ret(0);
    a.label("allow");
    a.ret(1);
    a
}

/// cgroup/bind4.
pub fn bind4() -> Asm {
    let mut a = Asm::new();
    prologue(&mut a, "refuse");
    a.load(Size::W, R1, R6, USER_IP4);
    a.jmp32_imm(Cmp::Eq, R1, 0, "wildcard");
    a.mov(R2, R1);
    a.and_imm(R2, first_octet_mask());
    a.jmp32_imm(Cmp::Eq, R2, net127(), "loopback");
    a.load(Size::W, R2, R7, off::BCAST4);
    a.jmp32(Cmp::Eq, R1, R2, "allow");
    v4_member(&mut a, R1, R2, R3, "allow");
    a.ja("refuse");

    a.label("wildcard");
    a.load(Size::W, R2, R7, off::N4);
    a.jmp32_imm(Cmp::Eq, R2, 0, "refuse");
    a.load(Size::W, R2, R7, off::V4);
    a.store(Size::W, R6, USER_IP4, R2);
    a.ja("allow");

    a.label("loopback");
    a.load(Size::W, R2, R7, off::LO4);
    a.store(Size::W, R6, USER_IP4, R2);

    a.label("allow");
    allow_bind(&mut a);
    refuse_with(&mut a, "refuse", EADDRNOTAVAIL);
    a
}

/// A bind that passes: by root of the vserver's user namespace (the rules' host uid), also
/// below port 1024 without CAP_NET_BIND_SERVICE over the host's network (return value 3: the
/// kernel's BPF_RET_BIND_NO_CAP_NET_BIND_SERVICE, since Linux 5.12); by anybody else, as the
/// kernel decides.
fn allow_bind(a: &mut Asm) {
    let plain = a.fresh("allow.plain");
    a.call(helper::GET_CURRENT_UID_GID);
    a.load(Size::W, R1, R7, off::LOW_PORTS_UID);
    a.jmp32_imm(Cmp::Eq, R1, 0, &plain);
    a.jmp32(Cmp::Ne, R0, R1, &plain);
    a.ret(3);
    a.label(&plain);
    a.ret(1);
}

/// cgroup/bind6. A wildcard bind gets the first IPv6 address, or, in a vserver without one,
/// the first IPv4 address v4-mapped (a dual-stack socket then serves IPv4).
pub fn bind6() -> Asm {
    let mut a = Asm::new();
    prologue(&mut a, "refuse");
    load_user_ip6(&mut a);
    classify6(&mut a, "wildcard", "loopback", "mapped");
    v6_equal(&mut a, W, R7, off::LO6, R0, "allow");
    v6_member(&mut a, W, R0, R1, "allow");
    a.ja("refuse");

    a.label("mapped");
    a.jmp32_imm(Cmp::Eq, R5, 0, "mapped.wildcard");
    a.mov(R0, R5);
    a.and_imm(R0, first_octet_mask());
    a.jmp32_imm(Cmp::Eq, R0, net127(), "mapped.loopback");
    a.load(Size::W, R0, R7, off::BCAST4);
    a.jmp32(Cmp::Eq, R5, R0, "allow");
    v4_member(&mut a, R5, R0, R1, "allow");
    a.ja("refuse");
    a.label("mapped.wildcard");
    a.load(Size::W, R0, R7, off::N4);
    a.jmp32_imm(Cmp::Eq, R0, 0, "refuse");
    a.load(Size::W, R0, R7, off::V4);
    a.store(Size::W, R6, USER_IP6 + 12, R0);
    a.ja("allow");
    a.label("mapped.loopback");
    a.load(Size::W, R0, R7, off::LO4);
    a.store(Size::W, R6, USER_IP6 + 12, R0);
    a.ja("allow");

    a.label("wildcard");
    a.load(Size::W, R0, R7, off::N6);
    a.jmp32_imm(Cmp::Eq, R0, 0, "wildcard.v4");
    copy16(&mut a, R7, off::V6, R6, USER_IP6, R0);
    a.ja("allow");
    a.label("wildcard.v4");
    a.load(Size::W, R0, R7, off::N4);
    a.jmp32_imm(Cmp::Eq, R0, 0, "refuse");
    a.mov_imm(R0, mapped() as i32);
    a.store(Size::W, R6, USER_IP6 + 8, R0);
    a.load(Size::W, R0, R7, off::V4);
    a.store(Size::W, R6, USER_IP6 + 12, R0);
    a.ja("allow");

    a.label("loopback");
    a.load(Size::W, R0, R7, off::LO6);
    a.jmp32_imm(Cmp::Eq, R0, 0, "refuse");
    copy16(&mut a, R7, off::LO6, R6, USER_IP6, R0);

    a.label("allow");
    allow_bind(&mut a);
    refuse_with(&mut a, "refuse", EADDRNOTAVAIL);
    a
}

/// cgroup/connect4: the destination 0.0.0.0 or 127.x.y.z becomes the private loopback; the
/// socket is bound to its source (port left to the connect) before the kernel picks one. A
/// socket bound already keeps its address (its bind went through `vs_bind4`).
pub fn connect4() -> Asm {
    let mut a = Asm::new();
    prologue(&mut a, "unreachable");
    a.load(Size::W, R1, R6, USER_IP4);
    is_local4(&mut a, R1, R2, "loopback");
    a.load(Size::W, R2, R7, off::N4);
    a.jmp32_imm(Cmp::Eq, R2, 0, "unreachable");
    a.load(Size::W, R8, R7, off::V4);
    a.ja("bind");

    a.label("loopback");
    a.load(Size::W, R8, R7, off::LO4);
    a.store(Size::W, R6, USER_IP4, R8);

    // struct sockaddr_in { family, port 0, address, zero } at fp-16.
    a.label("bind");
    a.store_imm(Size::DW, FP, -16, 0);
    a.store_imm(Size::DW, FP, -8, 0);
    a.store_imm(Size::H, FP, -16, AF_INET);
    a.store(Size::W, FP, -12, R8);
    bind_source(&mut a, -16, 16);
    a
}

/// The end of connect4/6: binds the socket to the source address built on the stack at `at`
/// (`len` bytes of sockaddr) and lets the connect go on; `unreachable` refuses it.
fn bind_source(a: &mut Asm, at: i32, len: i32) {
    a.mov(R1, R6);
    a.mov(R2, FP);
    a.add_imm(R2, at);
    a.mov_imm(R3, len);
    a.call(helper::BIND);
    a.ret(1);
    refuse_with(a, "unreachable", ENETUNREACH);
}

/// cgroup/connect6, as connect4: `::`, `::1` and any vserver's private IPv6 loopback become
/// this one's; `::ffff:0.0.0.0` and `::ffff:127.x.y.z` the v4-mapped private loopback.
pub fn connect6() -> Asm {
    let mut a = Asm::new();
    prologue(&mut a, "unreachable");
    // struct sockaddr_in6 { family, port, flowinfo, address at +8, scope id } at fp-32.
    for o in [-32, -24, -16, -8] {
        a.store_imm(Size::DW, FP, o, 0);
    }
    a.store_imm(Size::H, FP, -32, AF_INET6);
    load_user_ip6(&mut a);
    classify6(&mut a, "loopback", "loopback", "mapped");
    let [p0, p1] = lo6_prefix();
    a.jmp32_imm(Cmp::Ne, R2, p0, "outside");
    a.jmp32_imm(Cmp::Eq, R3, p1, "loopback");

    a.label("outside");
    a.load(Size::W, R0, R7, off::N6);
    a.jmp32_imm(Cmp::Eq, R0, 0, "unreachable");
    copy16(&mut a, R7, off::V6, FP, -24, R0);
    a.ja("bind");

    a.label("loopback");
    a.load(Size::W, R0, R7, off::LO6);
    a.jmp32_imm(Cmp::Eq, R0, 0, "unreachable");
    copy16(&mut a, R7, off::LO6, R6, USER_IP6, R0);
    copy16(&mut a, R7, off::LO6, FP, -24, R0);
    a.ja("bind");

    a.label("mapped");
    is_local4(&mut a, R5, R0, "mapped.loopback");
    a.load(Size::W, R0, R7, off::N4);
    a.jmp32_imm(Cmp::Eq, R0, 0, "unreachable");
    a.load(Size::W, R8, R7, off::V4);
    a.ja("mapped.source");
    a.label("mapped.loopback");
    a.load(Size::W, R8, R7, off::LO4);
    a.store(Size::W, R6, USER_IP6 + 12, R8);
    a.label("mapped.source");
    a.mov_imm(R0, mapped() as i32);
    a.store(Size::W, FP, -16, R0);
    a.store(Size::W, FP, -12, R8);

    a.label("bind");
    bind_source(&mut a, -32, 28);
    a
}

/// cgroup/sendmsg4 (unconnected UDP): the destination as in connect4; the source is the
/// socket's bound address, or the vserver's (the private loopback towards loopback).
pub fn sendmsg4() -> Asm {
    let mut a = Asm::new();
    prologue(&mut a, "unreachable");
    a.load(Size::W, R1, R6, USER_IP4);
    is_local4(&mut a, R1, R2, "loopback");
    a.mov_imm(R8, 0);
    a.load(Size::W, R2, R7, off::N4);
    a.jmp32_imm(Cmp::Eq, R2, 0, "source");
    a.load(Size::W, R8, R7, off::V4);
    a.ja("source");

    a.label("loopback");
    a.load(Size::W, R8, R7, off::LO4);
    a.store(Size::W, R6, USER_IP4, R8);

    a.label("source");
    a.load(Size::DW, R2, R6, SK);
    a.load(Size::W, R3, R2, SOCK_SRC_IP4);
    a.jmp32_imm(Cmp::Eq, R3, 0, "unbound");
    a.mov(R8, R3);
    a.label("unbound");
    a.jmp32_imm(Cmp::Eq, R8, 0, "unreachable");
    a.store(Size::W, R6, MSG_SRC_IP4, R8);
    a.ret(1);
    refuse_with(&mut a, "unreachable", ENETUNREACH);
    a
}

/// cgroup/sendmsg6. A v4-mapped destination never comes here: the kernel sends it on the IPv4
/// path, through `vs_sendmsg4`.
pub fn sendmsg6() -> Asm {
    let mut a = Asm::new();
    prologue(&mut a, "unreachable");
    // The default source at fp-16; r8 = 1 when there is one.
    a.mov_imm(R8, 0);
    load_user_ip6(&mut a);
    classify6(&mut a, "loopback", "loopback", "outside");
    let [p0, p1] = lo6_prefix();
    a.jmp32_imm(Cmp::Ne, R2, p0, "outside");
    a.jmp32_imm(Cmp::Eq, R3, p1, "loopback");

    a.label("outside");
    a.load(Size::W, R0, R7, off::N6);
    a.jmp32_imm(Cmp::Eq, R0, 0, "source");
    copy16(&mut a, R7, off::V6, FP, -16, R0);
    a.mov_imm(R8, 1);
    a.ja("source");

    a.label("loopback");
    a.load(Size::W, R0, R7, off::LO6);
    a.jmp32_imm(Cmp::Eq, R0, 0, "unreachable");
    copy16(&mut a, R7, off::LO6, R6, USER_IP6, R0);
    copy16(&mut a, R7, off::LO6, FP, -16, R0);
    a.mov_imm(R8, 1);

    a.label("source");
    a.load(Size::DW, R1, R6, SK);
    for (j, r) in W.iter().enumerate() {
        a.load(Size::W, *r, R1, SOCK_SRC_IP6 + 4 * j as i16);
    }
    a.jmp32_imm(Cmp::Ne, R2, 0, "bound");
    a.jmp32_imm(Cmp::Ne, R3, 0, "bound");
    a.jmp32_imm(Cmp::Ne, R4, 0, "bound");
    a.jmp32_imm(Cmp::Ne, R5, 0, "bound");
    a.jmp32_imm(Cmp::Eq, R8, 0, "unreachable");
    copy16(&mut a, FP, -16, R6, MSG_SRC_IP6, R0);
    a.ret(1);
    a.label("bound");
    for (j, r) in W.iter().enumerate() {
        a.store(Size::W, R6, MSG_SRC_IP6 + 4 * j as i16, *r);
    }
    a.ret(1);
    refuse_with(&mut a, "unreachable", ENETUNREACH);
    a
}

/// cgroup/recvmsg4, getsockname4, getpeername4: the private loopback address is shown as
/// 127.0.0.1. These hooks must always return 1.
pub fn show4() -> Asm {
    let mut a = Asm::new();
    prologue(&mut a, "done");
    a.load(Size::W, R1, R6, USER_IP4);
    a.load(Size::W, R2, R7, off::LO4);
    a.jmp32(Cmp::Ne, R1, R2, "done");
    a.mov_imm(R1, word([127, 0, 0, 1]) as i32);
    a.store(Size::W, R6, USER_IP4, R1);
    a.label("done");
    a.ret(1);
    a
}

/// cgroup/recvmsg6, getsockname6, getpeername6: the private loopback as ::1, and the v4-mapped
/// private loopback as ::ffff:127.0.0.1.
pub fn show6() -> Asm {
    let mut a = Asm::new();
    prologue(&mut a, "done");
    load_user_ip6(&mut a);
    a.load(Size::W, R0, R7, off::LO6);
    a.jmp32_imm(Cmp::Eq, R0, 0, "mapped");
    v6_equal(&mut a, W, R7, off::LO6, R0, "loopback");
    a.label("mapped");
    a.jmp32_imm(Cmp::Ne, R2, 0, "done");
    a.jmp32_imm(Cmp::Ne, R3, 0, "done");
    a.jmp32_imm(Cmp::Ne, R4, mapped(), "done");
    a.load(Size::W, R0, R7, off::LO4);
    a.jmp32(Cmp::Ne, R5, R0, "done");
    a.mov_imm(R0, word([127, 0, 0, 1]) as i32);
    a.store(Size::W, R6, USER_IP6 + 12, R0);
    a.ja("done");
    a.label("loopback");
    a.mov_imm(R0, 0);
    for j in 0..3 {
        a.store(Size::W, R6, USER_IP6 + 4 * j, R0);
    }
    a.mov_imm(R0, one() as i32);
    a.store(Size::W, R6, USER_IP6 + 12, R0);
    a.label("done");
    a.ret(1);
    a
}

/// Which way a packet goes through a cgroup_skb program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

// Stack of the cgroup_skb programs: the IP header (40 bytes) at HDR, the ports at PORTS, the
// TCP flags byte at FLAGS, the socket lookup tuple at TUPLE.
const HDR: i16 = -64;
const PORTS: i16 = -24;
const FLAGS: i16 = -20;
const TUPLE: i16 = -112;

/// bpf_skb_load_bytes(skb, `offset` (a register or a constant), fp + `to`, `len`); failure: goto `fail`.
fn skb_load(a: &mut Asm, offset: Result<Reg, i32>, to: i16, len: i32, fail: &str) {
    a.mov(R1, R6);
    match offset {
        Ok(r) => a.mov(R2, r),
        Err(k) => a.mov_imm(R2, k),
    }
    a.mov(R3, FP);
    a.add_imm(R3, to as i32);
    a.mov_imm(R4, len);
    a.call(helper::SKB_LOAD_BYTES);
    a.jmp_imm(Cmp::Ne, R0, 0, fail);
}

fn copy_stack(a: &mut Asm, from: i16, to: i16, len: i16) {
    let mut o = 0;
    while o + 4 <= len {
        a.load(Size::W, R1, FP, from + o);
        a.store(Size::W, FP, to + o, R1);
        o += 4;
    }
    if o < len {
        a.load(Size::H, R1, FP, from + o);
        a.store(Size::H, FP, to + o, R1);
    }
}

/// The loopback check of a cgroup_skb program, for a packet to the vserver's private loopback
/// whose header is at HDR, `l4` (register) the offset of its transport header, `proto`
/// (register) its protocol, `alen` 4 or 16. It finds the socket at the other end (ingress: the
/// sender, by the tuple a reply would have; egress: the receiver, by the packet's own tuple) and
/// passes the packet only if that socket belongs to the vserver's cgroup (or below). For TCP
/// only a connection's first packet (SYN without ACK) is looked at: a connection that could not
/// start has no later packets. Ends the program.
fn loopback_peer_check(a: &mut Asm, dir: Direction, l4: Reg, proto: Reg, alen: i16, pass: &str, drop: &str) {
    let (src, dst) = if alen == 4 { (HDR + 12, HDR + 16) } else { (HDR + 8, HDR + 24) };
    let udp = a.fresh("udp");
    let lookup = a.fresh("lookup");
    let owner = a.fresh("owner");
    // r8 = l4 and r9 = proto survive the calls below.
    a.mov(R8, l4);
    a.mov(R9, proto);
    skb_load(a, Ok(R8), PORTS, 4, drop);
    a.jmp32_imm(Cmp::Eq, R9, IPPROTO_UDP, &udp);
    a.jmp32_imm(Cmp::Ne, R9, IPPROTO_TCP, drop);
    a.add_imm(R8, 13);
    skb_load(a, Ok(R8), FLAGS, 1, drop);
    a.load(Size::B, R1, FP, FLAGS);
    a.and_imm(R1, 0x12); // SYN | ACK
    a.jmp32_imm(Cmp::Ne, R1, 0x02, pass);
    a.mov_imm(R9, helper::SK_LOOKUP_TCP);
    a.ja(&lookup);
    a.label(&udp);
    a.mov_imm(R9, helper::SK_LOOKUP_UDP);

    // struct bpf_sock_tuple: the remote address, the local address, the remote port, the
    // local port, as the looked-up socket would receive the packet.
    a.label(&lookup);
    let (remote, local, rport, lport) = match dir {
        Direction::Ingress => (dst, src, PORTS + 2, PORTS),
        Direction::Egress => (src, dst, PORTS, PORTS + 2),
    };
    copy_stack(a, remote, TUPLE, alen);
    copy_stack(a, local, TUPLE + alen, alen);
    copy_stack(a, rport, TUPLE + 2 * alen, 2);
    copy_stack(a, lport, TUPLE + 2 * alen + 2, 2);
    a.mov(R1, R6);
    a.mov(R2, FP);
    a.add_imm(R2, TUPLE as i32);
    a.mov_imm(R3, (2 * alen + 4) as i32);
    a.mov_imm(R4, -1); // BPF_F_CURRENT_NETNS
    a.mov_imm(R5, 0);
    // Two call sites, one per protocol: a helper's number is part of the instruction.
    let tcp_call = a.fresh("tcp");
    a.jmp32_imm(Cmp::Eq, R9, helper::SK_LOOKUP_TCP as u32, &tcp_call);
    a.call(helper::SK_LOOKUP_UDP);
    a.ja(&owner);
    a.label(&tcp_call);
    a.call(helper::SK_LOOKUP_TCP);

    a.label(&owner);
    // No socket there: the sender is gone (ingress: refuse), or nobody receives (egress: the
    // kernel answers with a reset or an ICMP error, let it).
    a.jmp_imm(Cmp::Eq, R0, 0, if dir == Direction::Ingress { drop } else { pass });
    a.mov(R8, R0);
    a.mov(R1, R8);
    a.load(Size::W, R2, R7, off::LEVEL);
    a.call(helper::SK_ANCESTOR_CGROUP_ID);
    a.mov(R9, R0);
    a.mov(R1, R8);
    a.call(helper::SK_RELEASE);
    a.load(Size::DW, R1, R7, off::CGID);
    a.jmp(Cmp::Eq, R9, R1, pass);
    a.ja(drop);
}

/// cgroup_skb/ingress and egress.
pub fn skb(dir: Direction) -> Asm {
    let mut a = Asm::new();
    prologue(&mut a, "drop");
    skb_load(&mut a, Err(0), HDR, 20, "drop");
    a.load(Size::B, R1, FP, HDR);
    a.and_imm(R1, 0xf0);
    a.jmp32_imm(Cmp::Eq, R1, 0x60, "v6");
    a.jmp32_imm(Cmp::Ne, R1, 0x40, "drop");

    // IPv4.
    match dir {
        Direction::Ingress => {
            a.load(Size::W, R1, FP, HDR + 16);
            a.load(Size::W, R2, R7, off::BCAST4);
            a.jmp32(Cmp::Eq, R1, R2, "pass");
            v4_member(&mut a, R1, R2, R3, "pass");
            a.load(Size::W, R2, R7, off::LO4);
            a.jmp32(Cmp::Ne, R1, R2, "drop");
        }
        Direction::Egress => {
            a.load(Size::W, R1, FP, HDR + 12);
            a.load(Size::W, R2, R7, off::LO4);
            a.jmp32(Cmp::Eq, R1, R2, "v4.source");
            v4_member(&mut a, R1, R2, R3, "v4.source");
            a.ja("drop");
            a.label("v4.source");
            a.load(Size::W, R1, FP, HDR + 16);
            a.load(Size::W, R2, R7, off::LO4);
            a.jmp32(Cmp::Eq, R1, R2, "v4.loopback");
            // Any other loopback destination: never one of the vserver's.
            is_local4(&mut a, R1, R2, "drop");
            a.ja("pass");
            a.label("v4.loopback");
        }
    }
    a.load(Size::B, R4, FP, HDR);
    a.and_imm(R4, 0x0f);
    a.lsh_imm(R4, 2);
    a.load(Size::B, R5, FP, HDR + 9);
    loopback_peer_check(&mut a, dir, R4, R5, 4, "pass", "drop");

    // IPv6 (a transport header right after the fixed header: a packet with extension headers
    // to the private loopback is dropped).
    a.label("v6");
    skb_load(&mut a, Err(0), HDR, 40, "drop");
    let (first, second) = match dir {
        Direction::Ingress => (HDR + 24, None),
        Direction::Egress => (HDR + 8, Some(HDR + 24)),
    };
    for (j, r) in W.iter().enumerate() {
        a.load(Size::W, *r, FP, first + 4 * j as i16);
    }
    if let Some(dst) = second {
        v6_equal(&mut a, W, R7, off::LO6, R0, "v6.source");
        v6_member(&mut a, W, R0, R1, "v6.source");
        a.ja("drop");
        a.label("v6.source");
        for (j, r) in W.iter().enumerate() {
            a.load(Size::W, *r, FP, dst + 4 * j as i16);
        }
        a.load(Size::W, R0, R7, off::LO6);
        a.jmp32_imm(Cmp::Eq, R0, 0, "v6.other");
        v6_equal(&mut a, W, R7, off::LO6, R0, "v6.loopback");
        a.label("v6.other");
        // ::1 or another vserver's private loopback: never one of the vserver's.
        let [p0, p1] = lo6_prefix();
        a.jmp32_imm(Cmp::Ne, R2, p0, "v6.not_private");
        a.jmp32_imm(Cmp::Eq, R3, p1, "drop");
        a.label("v6.not_private");
        a.jmp32_imm(Cmp::Ne, R2, 0, "pass");
        a.jmp32_imm(Cmp::Ne, R3, 0, "pass");
        a.jmp32_imm(Cmp::Ne, R4, 0, "pass");
        a.jmp32_imm(Cmp::Eq, R5, one(), "drop");
        a.ja("pass");
    } else {
        v6_member(&mut a, W, R0, R1, "pass");
        a.load(Size::W, R0, R7, off::LO6);
        a.jmp32_imm(Cmp::Eq, R0, 0, "drop");
        v6_equal(&mut a, W, R7, off::LO6, R0, "v6.loopback");
        a.ja("drop");
    }
    a.label("v6.loopback");
    a.mov_imm(R4, 40);
    a.load(Size::B, R5, FP, HDR + 6);
    loopback_peer_check(&mut a, dir, R4, R5, 16, "pass", "drop");

    a.label("pass");
    a.ret(1);
    a.label("drop");
    a.ret(0);
    a
}

/// Where a unix hook's kernel context keeps the address (from the kernel's BTF).
#[derive(Debug, Clone, Copy)]
pub struct UnixCtx {
    /// The BTF id of the kernel function `bpf_cast_to_kern_ctx`.
    pub cast_to_kern_ctx: u32,
    /// Offsets of `uaddr` and `uaddrlen` in `struct bpf_sock_addr_kern`.
    pub uaddr: i16,
    pub uaddrlen: i16,
}

/// cgroup/connect_unix and sendmsg_unix: an abstract name (a `sun_path` starting with a NUL
/// byte) is refused with EPERM. Path names (the vserver's own files) and unnamed sockets pass.
pub fn unix(ctx: UnixCtx) -> Asm {
    let mut a = Asm::new();
    a.call_kfunc(ctx.cast_to_kern_ctx); // r1 is the context already
    a.load(Size::W, R2, R0, ctx.uaddrlen);
    // No more than the family: no name at all.
    a.jmp32_imm(Cmp::Gt, R2, 2, "named");
    a.ret(1);
    a.label("named");
    a.load(Size::DW, R1, R0, ctx.uaddr);
    a.load(Size::B, R3, R1, 2); // sun_path[0]
    a.jmp32_imm(Cmp::Eq, R3, 0, "abstract");
    a.ret(1);
    a.label("abstract");
    a.ret(0);
    a
}

/// Every program's size in instruction slots, for the docs and a test that keeps them small.
pub fn sizes(unix_ctx: UnixCtx) -> Vec<(&'static str, usize)> {
    vec![
        ("sock_create", sock_create().len()),
        ("bind4", bind4().len()),
        ("bind6", bind6().len()),
        ("connect4", connect4().len()),
        ("connect6", connect6().len()),
        ("sendmsg4", sendmsg4().len()),
        ("sendmsg6", sendmsg6().len()),
        ("show4", show4().len()),
        ("show6", show6().len()),
        ("ingress", skb(Direction::Ingress).len()),
        ("egress", skb(Direction::Egress).len()),
        ("unix", unix(unix_ctx).len()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_program_assembles_and_stays_small() {
        let ctx = UnixCtx { cast_to_kern_ctx: 1, uaddr: 8, uaddrlen: 32 };
        for (name, n) in sizes(ctx) {
            assert!(n > 0 && n < 600, "{name}: {n} instructions");
        }
        for p in [
            sock_create(),
            bind4(),
            bind6(),
            connect4(),
            connect6(),
            sendmsg4(),
            sendmsg6(),
            show4(),
            show6(),
            skb(Direction::Ingress),
            skb(Direction::Egress),
        ] {
            p.finish(Some(3)).unwrap();
        }
        unix(ctx).finish(None).unwrap();
    }
}
