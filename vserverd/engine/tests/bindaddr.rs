//! Bind mode's programs, each rule proven with a positive control (root; a cgroup v2 tree).
//!
//! Every test runs its own network: the test thread moves to a new network namespace (a
//! namespace is per thread, and the processes it forks inherit it) holding `lo` and `lan0`, a
//! veth whose far end `lan1` lives in a second namespace, the LAN's client. Two "vservers" A and
//! B are two cgroups of the v2 tree bound with [`bindaddr::bind`] to addresses on `lan0`; their
//! processes are children forked from the test and moved into them. Nothing touches the
//! machine's own interfaces; every namespace, cgroup and process is removed by Drop guards.

use std::ffi::CString;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use nix::errno::Errno;
use serde::de::DeserializeOwned;
use serde::Serialize;
use vserver_engine::bindaddr::{self, Bound, Hook};
use vserver_engine::plan::IfAddr;

const UNIFIED: &str = "/sys/fs/cgroup/unified";

fn v2_root() -> Option<PathBuf> {
    let is_v2 = |p: &str| vserver_engine::cgroup::is_cgroup2(std::path::Path::new(p));
    if is_v2("/sys/fs/cgroup") {
        Some(PathBuf::from("/sys/fs/cgroup"))
    } else if is_v2(UNIFIED) {
        Some(PathBuf::from(UNIFIED))
    } else {
        None
    }
}

fn can_run() -> bool {
    nix::unistd::geteuid().is_root() && v2_root().is_some()
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn ifaddr(s: &str) -> IfAddr {
    let (a, p) = s.split_once('/').unwrap();
    IfAddr { addr: a.parse().unwrap(), prefix: p.parse().unwrap() }
}

const A4: &str = "198.51.100.10";
const A4B: &str = "198.51.100.12";
const B4: &str = "198.51.100.11";
const A6: &str = "2001:db8:5::10";
const B6: &str = "2001:db8:5::11";
const HOST4: &str = "198.51.100.2";
const CLIENT4: &str = "198.51.100.1";
const CLIENT6: &str = "2001:db8:5::1";

/// The test's network: this thread in a namespace of its own with `lan0`, and the client's
/// namespace at the far end of the veth.
struct Lan {
    client: String,
}

impl Lan {
    fn new() -> Lan {
        static N: AtomicUsize = AtomicUsize::new(0);
        let client = format!("vs-bindtest-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("a network namespace for this test thread");
        ip(&["link", "set", "lo", "up"]);
        ip(&["netns", "add", &client]);
        let lan = Lan { client };
        ip(&["link", "add", "lan0", "type", "veth", "peer", "name", "lan1", "netns", &lan.client]);
        ip(&["addr", "add", &format!("{HOST4}/24"), "dev", "lan0"]);
        ip(&["addr", "add", "2001:db8:5::2/64", "dev", "lan0", "nodad"]);
        ip(&["link", "set", "lan0", "up"]);
        ip(&["-n", &lan.client, "addr", "add", &format!("{CLIENT4}/24"), "dev", "lan1"]);
        ip(&["-n", &lan.client, "addr", "add", &format!("{CLIENT6}/64"), "dev", "lan1", "nodad"]);
        ip(&["-n", &lan.client, "link", "set", "lan1", "up"]);
        ip(&["-n", &lan.client, "link", "set", "lo", "up"]);
        lan
    }

    fn client_ns(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.client))
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.client]).status();
    }
}

/// A test cgroup of the v2 tree with its sub-cgroups; Drop kills what is in them and removes them.
struct Cg {
    top: PathBuf,
    /// The run directory (loopback slots).
    run: PathBuf,
}

impl Cg {
    fn new() -> Cg {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!("vs-bindtest-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let top = v2_root().unwrap().join(&name);
        std::fs::create_dir_all(&top).unwrap();
        let run = std::env::temp_dir().join(name);
        Cg { top, run }
    }

    fn sub(&self, name: &str) -> PathBuf {
        let p = self.top.join(name);
        std::fs::create_dir_all(&p).unwrap();
        p
    }
}

impl Drop for Cg {
    fn drop(&mut self) {
        let mut dirs = vec![];
        let mut todo = vec![self.top.clone()];
        while let Some(d) = todo.pop() {
            if let Ok(rd) = std::fs::read_dir(&d) {
                todo.extend(rd.flatten().filter(|e| e.file_type().is_ok_and(|t| t.is_dir())).map(|e| e.path()));
            }
            dirs.push(d);
        }
        let _ = std::fs::remove_dir_all(&self.run);
        let _ = std::fs::write(self.top.join("cgroup.kill"), "1");
        for d in dirs.iter().rev() {
            for _ in 0..200 {
                if std::fs::remove_dir(d).is_ok() || !d.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Where a forked child runs.
#[derive(Clone, Copy)]
enum At<'a> {
    /// In this cgroup (a vserver's).
    Cg(&'a Path),
    /// In this network namespace (the LAN's client).
    Ns(&'a Path),
    /// Where the test runs (the host's processes).
    Host,
}

fn enter(at: At<'_>) {
    match at {
        At::Cg(cg) => {
            let f = CString::new(cg.join("cgroup.procs").to_str().unwrap()).unwrap();
            unsafe {
                let fd = libc::open(f.as_ptr(), libc::O_WRONLY);
                if fd < 0 || libc::write(fd, b"0".as_ptr() as *const libc::c_void, 1) != 1 {
                    libc::_exit(111);
                }
                libc::close(fd);
            }
        }
        At::Ns(ns) => {
            let f = std::fs::File::open(ns).unwrap_or_else(|_| unsafe { libc::_exit(112) });
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                unsafe { libc::_exit(113) };
            }
        }
        At::Host => {}
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    (r, w)
}

/// Runs `f` in a child forked at `at` and returns what it returned.
fn run<T: Serialize + DeserializeOwned>(at: At<'_>, f: impl FnOnce() -> T) -> T {
    let (r, w) = pipe();
    match unsafe { libc::fork() } {
        0 => {
            drop(r);
            enter(at);
            let v = serde_json::to_vec(&f()).unwrap();
            let mut out = std::fs::File::from(w);
            let _ = out.write_all(&v);
            unsafe { libc::_exit(0) };
        }
        pid => {
            drop(w);
            let mut s = Vec::new();
            std::fs::File::from(r).read_to_end(&mut s).unwrap();
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
            serde_json::from_slice(&s).unwrap_or_else(|e| panic!("child at pid {pid} said nothing usable ({e}): {:?}", String::from_utf8_lossy(&s)))
        }
    }
}

/// A server child: `serve` reports how its setup went with the callback (one line), then serves
/// until killed.
struct Server {
    pid: i32,
    pub ready: Out,
}

impl Drop for Server {
    fn drop(&mut self) {
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(self.pid), None);
    }
}

fn server(at: At<'_>, serve: impl FnOnce(&mut dyn FnMut(Out))) -> Server {
    let (r, w) = pipe();
    match unsafe { libc::fork() } {
        0 => {
            drop(r);
            enter(at);
            let mut out = Some(std::fs::File::from(w));
            let mut report = |o: Out| {
                if let Some(mut f) = out.take() {
                    let _ = f.write_all(&serde_json::to_vec(&o).unwrap());
                }
            };
            serve(&mut report);
            unsafe { libc::_exit(0) };
        }
        pid => {
            drop(w);
            let mut s = Vec::new();
            std::fs::File::from(r).read_to_end(&mut s).unwrap();
            let ready = serde_json::from_slice(&s).unwrap_or(Err("server said nothing".into()));
            Server { pid, ready }
        }
    }
}

/// An answer or the errno's name.
type Out = Result<String, String>;

fn errname(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(c) => format!("{:?}", Errno::from_raw(c)),
        None => format!("{:?}", e.kind()),
    }
}

fn sa(ip: &str, port: u16) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), port)
}

/// A TCP server that tells each client who it is, whom it sees and where it was reached.
fn tcp_server(name: &'static str, addr: SocketAddr) -> impl FnOnce(&mut dyn FnMut(Out)) {
    move |report| {
        let l = match TcpListener::bind(addr) {
            Ok(l) => l,
            Err(e) => return report(Err(errname(&e))),
        };
        report(Ok(l.local_addr().unwrap().to_string()));
        for c in l.incoming().flatten() {
            let mut c = c;
            let _ = writeln!(c, "{name} {} {}", c.peer_addr().unwrap(), c.local_addr().unwrap());
        }
    }
}

/// A UDP server that answers each datagram with who it is and whom it sees.
fn udp_server(name: &'static str, addr: SocketAddr) -> impl FnOnce(&mut dyn FnMut(Out)) {
    move |report| {
        let s = match UdpSocket::bind(addr) {
            Ok(s) => s,
            Err(e) => return report(Err(errname(&e))),
        };
        report(Ok(s.local_addr().unwrap().to_string()));
        let mut buf = [0u8; 512];
        loop {
            if let Ok((_, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(format!("{name} {from}").as_bytes(), from);
            }
        }
    }
}

/// Connects (3 s at most) and reads the server's line.
fn tcp_ask(to: SocketAddr) -> Out {
    tcp_ask_within(to, 3000)
}

/// As [`tcp_ask`], giving up the connect after `ms` (for connections expected to time out).
fn tcp_ask_within(to: SocketAddr, ms: u64) -> Out {
    let mut c = TcpStream::connect_timeout(&to, Duration::from_millis(ms)).map_err(|e| errname(&e))?;
    c.set_read_timeout(Some(Duration::from_millis(1000))).unwrap();
    let mut line = String::new();
    BufReader::new(&mut c).read_line(&mut line).map_err(|e| errname(&e))?;
    Ok(line.trim().to_string())
}

/// A datagram from an unbound socket (its source chosen at the send), and the answer.
fn udp_ask(to: SocketAddr) -> Out {
    let fam = if to.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 };
    let fd = unsafe { libc::socket(fam, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(errname(&std::io::Error::last_os_error()));
    }
    let s = unsafe { UdpSocket::from_raw_fd(fd) };
    s.set_read_timeout(Some(Duration::from_millis(1000))).unwrap();
    s.send_to(b"who", to).map_err(|e| errname(&e))?;
    let mut buf = [0u8; 512];
    let (n, _) = s.recv_from(&mut buf).map_err(|e| errname(&e))?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// A datagram from a socket connected to `to`, with IP_PKTINFO asking for `source`.
fn udp_spoof(to: SocketAddr, source: Ipv4Addr) -> Out {
    let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| errname(&e))?;
    s.connect(to).map_err(|e| errname(&e))?;
    s.set_read_timeout(Some(Duration::from_millis(700))).unwrap();
    let mut info: libc::in_pktinfo = unsafe { std::mem::zeroed() };
    info.ipi_spec_dst = libc::in_addr { s_addr: u32::from_ne_bytes(source.octets()) };
    let mut cbuf = [0u64; 8];
    let mut iov = libc::iovec { iov_base: b"who".as_ptr() as *mut libc::c_void, iov_len: 3 };
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::in_pktinfo>() as u32) } as usize;
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::IPPROTO_IP;
        (*c).cmsg_type = libc::IP_PKTINFO;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::in_pktinfo>() as u32) as usize;
        std::ptr::copy_nonoverlapping(&info as *const _ as *const u8, libc::CMSG_DATA(c), std::mem::size_of::<libc::in_pktinfo>());
        if libc::sendmsg(s.as_raw_fd(), &msg, 0) < 0 {
            return Err(errname(&std::io::Error::last_os_error()));
        }
    }
    let mut buf = [0u8; 512];
    let n = s.recv(&mut buf).map_err(|e| errname(&e))?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// bind(2) of a TCP socket, and the address it got.
fn bind_tcp(addr: SocketAddr) -> Out {
    TcpListener::bind(addr).map(|l| l.local_addr().unwrap().to_string()).map_err(|e| errname(&e))
}

/// A vserver: a cgroup bound to its addresses on `lan0`.
fn vserver(cg: &Cg, name: &str, addrs: &[&str]) -> (PathBuf, Bound) {
    let dir = cg.sub(name);
    let plan = bindaddr::bound::BindPlan::new(addrs.iter().map(|a| ifaddr(a)).collect(), Some("lan0"));
    let b = bindaddr::bind(&plan, name, 0, &cg.run, &dir, None).unwrap_or_else(|e| panic!("bind {name}: {e}"));
    (dir, b)
}

fn first_word(o: &Out) -> String {
    o.clone().map(|s| s.split(' ').next().unwrap_or("").to_string()).unwrap_or_else(|e| e)
}

#[test]
fn bind_gets_the_vservers_address_and_nothing_else() {
    if !can_run() {
        return;
    }
    let _lan = Lan::new();
    let cg = Cg::new();
    let (a, _ba) = vserver(&cg, "a", &[&format!("{A4}/24"), &format!("{A4B}/24"), &format!("{A6}/64")]);
    let (b, _bb) = vserver(&cg, "b", &[&format!("{B4}/24"), &format!("{B6}/64")]);
    // The wildcard: the first address of the family.
    assert_eq!(run(At::Cg(&a), || bind_tcp(sa("0.0.0.0", 8001))), Ok(format!("{A4}:8001")));
    assert_eq!(run(At::Cg(&a), || bind_tcp(sa("::", 8001))), Ok(format!("[{A6}]:8001")));
    assert_eq!(run(At::Cg(&b), || bind_tcp(sa("0.0.0.0", 8001))), Ok(format!("{B4}:8001")));
    // Its own addresses, the second one too.
    assert_eq!(run(At::Cg(&a), || bind_tcp(sa(A4B, 8002))), Ok(format!("{A4B}:8002")));
    assert_eq!(run(At::Cg(&a), || bind_tcp(sa(A6, 8002))), Ok(format!("[{A6}]:8002")));
    // Nobody else's: the other vserver's, the host's, an address nobody holds.
    for other in [B4, HOST4, B6, "2001:db8:5::2", "198.51.100.99", "::ffff:198.51.100.11"] {
        assert_eq!(run(At::Cg(&a), move || bind_tcp(sa(other, 8003))), Err("EADDRNOTAVAIL".into()), "bind {other} in a");
    }
    // The positive control: a host process binds them all (the host's, the vservers' addresses).
    for other in [B4, HOST4, A4] {
        assert!(run(At::Host, move || bind_tcp(sa(other, 8003))).is_ok(), "the host binds {other}");
    }
    // A dual-stack socket of a v4-only vserver serves IPv4: the wildcard is its v4-mapped address.
    let (c, _bc) = vserver(&cg, "c", &["198.51.100.13/24"]);
    assert_eq!(run(At::Cg(&c), || bind_tcp(sa("::", 8004))), Ok("[::ffff:198.51.100.13]:8004".into()));
    assert_eq!(run(At::Cg(&c), || bind_tcp(sa("0.0.0.0", 8004))), Ok("198.51.100.13:8004".into()));
    // UDP likewise.
    assert_eq!(
        run(At::Cg(&b), || UdpSocket::bind(sa("0.0.0.0", 0)).map(|s| s.local_addr().unwrap().ip().to_string()).map_err(|e| errname(&e))),
        Ok(B4.into())
    );
    assert_eq!(run(At::Cg(&b), || UdpSocket::bind(sa(A4, 0)).map(|_| String::new()).map_err(|e| errname(&e))), Err("EADDRNOTAVAIL".into()));
}

#[test]
fn two_vservers_serve_the_same_port_each_at_its_address() {
    if !can_run() {
        return;
    }
    let lan = Lan::new();
    let cg = Cg::new();
    let (a, _ba) = vserver(&cg, "a", &[&format!("{A4}/24"), &format!("{A6}/64")]);
    let (b, _bb) = vserver(&cg, "b", &[&format!("{B4}/24"), &format!("{B6}/64")]);
    let sa_ = server(At::Cg(&a), tcp_server("a", sa("0.0.0.0", 80)));
    let sb = server(At::Cg(&b), tcp_server("b", sa("0.0.0.0", 80)));
    assert_eq!(sa_.ready, Ok(format!("{A4}:80")));
    assert_eq!(sb.ready, Ok(format!("{B4}:80")));
    let s6a = server(At::Cg(&a), tcp_server("a6", sa("::", 80)));
    let s6b = server(At::Cg(&b), tcp_server("b6", sa("::", 80)));
    assert_eq!((s6a.ready.is_ok(), s6b.ready.is_ok()), (true, true));
    let ns = lan.client_ns();
    let from_client = |to: SocketAddr| run(At::Ns(&ns), move || tcp_ask(to));
    assert_eq!(first_word(&from_client(sa(A4, 80))), "a");
    assert_eq!(first_word(&from_client(sa(B4, 80))), "b");
    assert_eq!(first_word(&from_client(sa(A6, 80))), "a6");
    assert_eq!(first_word(&from_client(sa(B6, 80))), "b6");
    // The host's own address has no server on port 80: the vservers' sockets are not wildcards.
    assert_eq!(from_client(sa(HOST4, 80)), Err("ECONNREFUSED".into()));
    assert_eq!(from_client(sa("2001:db8:5::2", 80)), Err("ECONNREFUSED".into()));
}

#[test]
fn connections_and_datagrams_leave_from_the_vservers_address() {
    if !can_run() {
        return;
    }
    let lan = Lan::new();
    let cg = Cg::new();
    let (a, _ba) = vserver(&cg, "a", &[&format!("{A4}/24"), &format!("{A6}/64")]);
    let ns = lan.client_ns();
    let t4 = server(At::Ns(&ns), tcp_server("lan", sa(CLIENT4, 7000)));
    let t6 = server(At::Ns(&ns), tcp_server("lan", sa(CLIENT6, 7000)));
    let u4 = server(At::Ns(&ns), udp_server("lan", sa(CLIENT4, 7001)));
    let u6 = server(At::Ns(&ns), udp_server("lan", sa(CLIENT6, 7001)));
    for s in [&t4, &t6, &u4, &u6] {
        assert!(s.ready.is_ok(), "{:?}", s.ready);
    }
    let peer = |o: Out| {
        o.map(|s| s.split(' ').nth(1).unwrap_or("").rsplit_once(':').map(|(a, _)| a.trim_matches(['[', ']']).to_string()).unwrap_or_default())
    };
    // The positive control: a host process leaves from the host's address.
    assert_eq!(peer(run(At::Host, || tcp_ask(sa(CLIENT4, 7000)))), Ok(HOST4.into()));
    assert_eq!(peer(run(At::Host, || udp_ask(sa(CLIENT4, 7001)))), Ok(HOST4.into()));
    assert_eq!(peer(run(At::Host, || tcp_ask(sa(CLIENT6, 7000)))), Ok("2001:db8:5::2".into()));
    assert_eq!(peer(run(At::Host, || udp_ask(sa(CLIENT6, 7001)))), Ok("2001:db8:5::2".into()));
    // From the vserver: its address, TCP and UDP, IPv4 and IPv6.
    assert_eq!(peer(run(At::Cg(&a), || tcp_ask(sa(CLIENT4, 7000)))), Ok(A4.into()));
    assert_eq!(peer(run(At::Cg(&a), || tcp_ask(sa(CLIENT6, 7000)))), Ok(A6.into()));
    assert_eq!(peer(run(At::Cg(&a), || udp_ask(sa(CLIENT4, 7001)))), Ok(A4.into()));
    assert_eq!(peer(run(At::Cg(&a), || udp_ask(sa(CLIENT6, 7001)))), Ok(A6.into()));
    // A v4-mapped destination from a dual-stack socket goes the IPv4 way, from its address too.
    let mapped = format!("::ffff:{CLIENT4}");
    assert_eq!(peer(run(At::Cg(&a), move || tcp_ask(sa(&mapped, 7000)))), Ok(A4.into()));
    // IP_PKTINFO cannot pick the host's address as the source: the datagram is refused, or
    // leaves from the vserver's. A host process can (the positive control).
    let host = HOST4.parse().unwrap();
    assert_eq!(peer(run(At::Host, move || udp_spoof(sa(CLIENT4, 7001), host))), Ok(HOST4.into()));
    let spoofed = peer(run(At::Cg(&a), move || udp_spoof(sa(CLIENT4, 7001), host)));
    assert!(spoofed == Ok(A4.into()) || spoofed == Err("EPERM".into()), "{spoofed:?}");
}

#[test]
fn loopback_is_private_to_each_vserver() {
    if !can_run() {
        return;
    }
    let _lan = Lan::new();
    let cg = Cg::new();
    let (a, ba) = vserver(&cg, "a", &[&format!("{A4}/24"), &format!("{A6}/64")]);
    let (b, _bb) = vserver(&cg, "b", &[&format!("{B4}/24"), &format!("{B6}/64")]);
    let lo_a = ba.rules.lo4;
    let lo6_a = ba.rules.lo6.expect("a private IPv6 loopback");
    let sa4 = server(At::Cg(&a), tcp_server("a", sa("127.0.0.1", 9000)));
    let sa6 = server(At::Cg(&a), tcp_server("a6", sa("::1", 9000)));
    let ua4 = server(At::Cg(&a), udp_server("ua", sa("127.0.0.1", 9001)));
    let host4 = server(At::Host, tcp_server("host", sa("127.0.0.1", 9002)));
    let host6 = server(At::Host, tcp_server("host6", sa("::1", 9002)));
    let hostany = server(At::Host, tcp_server("hostany", sa("0.0.0.0", 9003)));
    let hostudp = server(At::Host, udp_server("hostudp", sa("0.0.0.0", 9004)));
    for s in [&sa4, &sa6, &ua4, &host4, &host6, &hostany, &hostudp] {
        assert!(s.ready.is_ok(), "{:?}", s.ready);
    }
    // The vserver's own services on 127.0.0.1 and ::1, reached from inside; both ends see
    // 127.0.0.1 (::1), not the private address behind it.
    assert_eq!(run(At::Cg(&a), || tcp_ask(sa("127.0.0.1", 9000))).map(|s| s.starts_with("a 127.0.0.1:")), Ok(true));
    assert_eq!(run(At::Cg(&a), || tcp_ask(sa("::1", 9000))).map(|s| s.starts_with("a6 [::1]:")), Ok(true));
    assert_eq!(run(At::Cg(&a), || udp_ask(sa("127.0.0.1", 9001))).map(|s| s.starts_with("ua 127.0.0.1:")), Ok(true));
    let local = run(At::Cg(&a), || {
        let c = TcpStream::connect(sa("127.0.0.1", 9000)).map_err(|e| errname(&e))?;
        Ok::<_, String>(format!("{} {}", c.local_addr().unwrap().ip(), c.peer_addr().unwrap().ip()))
    });
    assert_eq!(local, Ok("127.0.0.1 127.0.0.1".into()));
    // Not from the other vserver (its 127.0.0.1 is its own), nor from the host, by 127.0.0.1
    // or by the private address (the first packet is dropped: the connection times out).
    assert_eq!(run(At::Cg(&b), || tcp_ask(sa("127.0.0.1", 9000))), Err("ECONNREFUSED".into()));
    assert_eq!(run(At::Cg(&b), || tcp_ask(sa("::1", 9000))), Err("ECONNREFUSED".into()));
    let lo_a_s = lo_a.to_string();
    let lo6_a_s = lo6_a.to_string();
    let (x, y) = (lo_a_s.clone(), lo6_a_s.clone());
    assert_eq!(run(At::Cg(&b), move || tcp_ask(sa(&x, 9000))), Err("ECONNREFUSED".into()), "b's 127.x is its own");
    assert_eq!(run(At::Cg(&b), move || tcp_ask(sa(&y, 9000))), Err("ECONNREFUSED".into()), "b's lo6 is its own");
    let x = lo_a_s.clone();
    assert_eq!(run(At::Host, move || tcp_ask_within(sa(&x, 9000), 700)), Err("TimedOut".into()));
    let y = lo6_a_s.clone();
    assert_eq!(run(At::Host, move || tcp_ask_within(sa(&y, 9000), 700)), Err("TimedOut".into()));
    let x = lo_a_s.clone();
    assert_eq!(run(At::Host, move || udp_ask(sa(&x, 9001))), Err("EAGAIN".into()));
    // Even from a host process that binds the private address itself first.
    let x = lo_a_s.clone();
    let forged = run(At::Host, move || socket2_like_connect(sa(&x, 0), sa(&x, 9000)));
    assert_eq!(forged, Err("TimedOut".into()));
    assert_eq!(run(At::Host, || tcp_ask(sa("127.0.0.1", 9000))), Err("ECONNREFUSED".into()));
    // The other way: the host's loopback services are out of the vserver's reach, those bound
    // to 127.0.0.1 (refused: the vserver's own 127.0.0.1 has nothing there) and those on the
    // wildcard (the vserver's first packet to them is dropped). The host reaches them (control).
    assert_eq!(first_word(&run(At::Host, || tcp_ask(sa("127.0.0.1", 9002)))), "host");
    assert_eq!(first_word(&run(At::Host, || tcp_ask(sa("::1", 9002)))), "host6");
    assert_eq!(first_word(&run(At::Host, || tcp_ask(sa("127.0.0.1", 9003)))), "hostany");
    assert_eq!(run(At::Cg(&a), || tcp_ask(sa("127.0.0.1", 9002))), Err("ECONNREFUSED".into()));
    assert_eq!(run(At::Cg(&a), || tcp_ask(sa("::1", 9002))), Err("ECONNREFUSED".into()));
    assert_eq!(run(At::Cg(&a), || tcp_ask_within(sa("127.0.0.1", 9003), 700)), Err("TimedOut".into()));
    assert_eq!(run(At::Cg(&a), || tcp_ask_within(sa("0.0.0.0", 9003), 700)), Err("TimedOut".into()));
    let udp_host = run(At::Cg(&a), || udp_ask(sa("127.0.0.1", 9004)));
    assert!(udp_host == Err("EAGAIN".into()) || udp_host == Err("EPERM".into()), "{udp_host:?}");
    // The host's wildcard service stays reachable at the vserver's public address (as from the LAN).
    assert_eq!(first_word(&run(At::Cg(&a), || tcp_ask(sa(A4, 9003)))), "hostany");
}

/// Connects (1 s at most) from a socket bound first to `from` (IPv4).
fn socket2_like_connect(from: SocketAddr, to: SocketAddr) -> Out {
    let raw = |a: SocketAddr| {
        let SocketAddr::V4(v) = a else { unreachable!() };
        libc::sockaddr_in {
            sin_family: libc::AF_INET as u16,
            sin_port: v.port().to_be(),
            sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v.ip().octets()) },
            sin_zero: [0; 8],
        }
    };
    let last = || Err(errname(&std::io::Error::last_os_error()));
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0) };
    let s = unsafe { TcpStream::from_raw_fd(fd) };
    let len = std::mem::size_of::<libc::sockaddr_in>() as u32;
    let (f, t) = (raw(from), raw(to));
    if unsafe { libc::bind(fd, &f as *const _ as *const libc::sockaddr, len) } != 0 {
        return last();
    }
    if unsafe { libc::connect(fd, &t as *const _ as *const libc::sockaddr, len) } != 0 && Errno::last() != Errno::EINPROGRESS {
        return last();
    }
    let mut p = [nix::poll::PollFd::new(std::os::fd::AsFd::as_fd(&s), nix::poll::PollFlags::POLLOUT)];
    match nix::poll::poll(&mut p, nix::poll::PollTimeout::from(1000u16)) {
        Ok(0) => Err("TimedOut".into()),
        _ => match s.take_error() {
            Ok(None) => Ok("connected".into()),
            Ok(Some(e)) | Err(e) => Err(errname(&e)),
        },
    }
}

#[test]
fn abstract_unix_sockets_are_out_of_reach_and_raw_sockets_refused() {
    if !can_run() {
        return;
    }
    let _lan = Lan::new();
    let cg = Cg::new();
    let (a, _ba) = vserver(&cg, "a", &[&format!("{A4}/24")]);
    let name = format!("vs-bindtest-abstract-{}", std::process::id());
    std::fs::create_dir_all(&cg.run).unwrap();
    let path = cg.run.join("sock");
    let host = {
        let name = name.clone();
        let path = path.clone();
        server(At::Host, move |report| {
            use std::os::linux::net::SocketAddrExt;
            let abs = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
            let l1 = UnixListener::bind_addr(&abs).unwrap();
            let l2 = UnixListener::bind(&path).unwrap();
            report(Ok(String::new()));
            std::thread::spawn(move || {
                for c in l2.incoming().flatten() {
                    let mut c = c;
                    let _ = c.write_all(b"path\n");
                }
            });
            for c in l1.incoming().flatten() {
                let mut c = c;
                let _ = c.write_all(b"abstract\n");
            }
        })
    };
    assert!(host.ready.is_ok());
    let ask_abstract = move |n: String| {
        move || {
            use std::os::linux::net::SocketAddrExt;
            let abs = std::os::unix::net::SocketAddr::from_abstract_name(n.as_bytes()).unwrap();
            UnixStream::connect_addr(&abs).map(|_| "connected".to_string()).map_err(|e| errname(&e))
        }
    };
    // The host's processes reach it (the control); the vserver's do not, by connect or by a datagram.
    assert_eq!(run(At::Host, ask_abstract(name.clone())), Ok("connected".into()));
    assert_eq!(run(At::Cg(&a), ask_abstract(name.clone())), Err("EPERM".into()));
    let n2 = name.clone();
    let dgram = run(At::Cg(&a), move || {
        use std::os::linux::net::SocketAddrExt;
        let s = std::os::unix::net::UnixDatagram::unbound().unwrap();
        let abs = std::os::unix::net::SocketAddr::from_abstract_name(n2.as_bytes()).unwrap();
        s.send_to_addr(b"x", &abs).map(|_| String::new()).map_err(|e| errname(&e))
    });
    assert_eq!(dgram, Err("EPERM".into()));
    // Named sockets (a vserver's own files) work.
    let p = path.clone();
    assert_eq!(run(At::Cg(&a), move || UnixStream::connect(&p).map(|_| "connected".to_string()).map_err(|e| errname(&e))), Ok("connected".into()));
    // Only TCP and UDP: no raw socket, no ping socket, no MPTCP. Root on the host may (the control).
    let sock = |fam: i32, ty: i32, proto: i32| {
        move || {
            let fd = unsafe { libc::socket(fam, ty, proto) };
            if fd < 0 {
                Err(errname(&std::io::Error::last_os_error()))
            } else {
                unsafe { libc::close(fd) };
                Ok(String::new())
            }
        }
    };
    // Ping sockets for every group in this test's namespace, so that only the hook refuses them.
    std::fs::write("/proc/sys/net/ipv4/ping_group_range", "0 2147483647").unwrap();
    assert_eq!(run(At::Host, sock(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP)), Ok(String::new()));
    assert_eq!(run(At::Host, sock(libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_ICMP)), Ok(String::new()));
    assert_eq!(run(At::Cg(&a), sock(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP)), Err("EPERM".into()));
    assert_eq!(run(At::Cg(&a), sock(libc::AF_INET6, libc::SOCK_RAW, libc::IPPROTO_ICMPV6)), Err("EPERM".into()));
    assert_eq!(run(At::Cg(&a), sock(libc::AF_INET, libc::SOCK_DGRAM, libc::IPPROTO_ICMP)), Err("EPERM".into()));
    assert_eq!(run(At::Cg(&a), sock(libc::AF_INET, libc::SOCK_STREAM, 262)), Err("EPERM".into()));
    assert_eq!(run(At::Cg(&a), sock(libc::AF_INET, libc::SOCK_STREAM, 0)), Ok(String::new()));
    assert_eq!(run(At::Cg(&a), sock(libc::AF_INET6, libc::SOCK_DGRAM, 0)), Ok(String::new()));
}

#[test]
fn cgroups_below_are_bound_too_and_detaching_leaves_nothing() {
    if !can_run() {
        return;
    }
    let _lan = Lan::new();
    let cg = Cg::new();
    let (a, mut ba) = vserver(&cg, "a", &[&format!("{A4}/24")]);
    // A guest's own cgroup below the vserver's: the same rules.
    let inner = a.join("guest").join("service");
    std::fs::create_dir_all(&inner).unwrap();
    assert_eq!(run(At::Cg(&inner), || bind_tcp(sa("0.0.0.0", 8100))), Ok(format!("{A4}:8100")));
    assert_eq!(run(At::Cg(&inner), || bind_tcp(sa(HOST4, 8100))), Err("EADDRNOTAVAIL".into()));
    let hooks: Vec<Hook> = bindaddr::attached(&a).unwrap().into_iter().map(|(h, _)| h).collect();
    assert_eq!(hooks, Hook::ALL.to_vec());
    assert_eq!(bindaddr::effective(&inner, Hook::Bind4).unwrap().len(), 1);
    // The rules as written: the vserver's address, its cgroup's id and level.
    let v = bindaddr::read_rules(&a).unwrap();
    let (id, level) = bindaddr::identity(&a).unwrap();
    assert_eq!(&v[32..36], &A4.parse::<Ipv4Addr>().unwrap().octets());
    assert_eq!(&v[24..32], &id.to_ne_bytes());
    assert_eq!(level as usize, a.strip_prefix(v2_root().unwrap()).unwrap().components().count());
    // The process that attached them is not needed: the programs stay with the cgroup (this
    // test's set was dropped when `bind` returned).
    let addresses = || String::from_utf8(Command::new("ip").args(["-o", "addr", "show"]).output().unwrap().stdout).unwrap();
    assert!(addresses().contains(A4));
    ba.teardown();
    assert!(bindaddr::attached(&a).unwrap().is_empty());
    assert!(bindaddr::effective(&inner, Hook::Bind4).unwrap().is_empty());
    assert!(!addresses().contains(A4), "the address is gone from lan0");
    assert!(!addresses().contains("fd76:7365:7276:6c6f"), "the private IPv6 loopback is gone from lo");
    // Unbound again: the host's rules (a bind to the host's address works).
    assert!(run(At::Cg(&inner), || bind_tcp(sa(HOST4, 8101))).is_ok());
}

#[test]
fn a_start_that_cannot_bind_leaves_nothing() {
    if !can_run() {
        return;
    }
    let _lan = Lan::new();
    let cg = Cg::new();
    let dir = cg.sub("a");
    // The host holds the address already.
    let plan = bindaddr::bound::BindPlan::new(vec![ifaddr(&format!("{A4}/24")), ifaddr(&format!("{HOST4}/24"))], Some("lan0"));
    let e = bindaddr::bind(&plan, "a", 0, &cg.run, &dir, None).unwrap_err();
    assert!(e.to_string().starts_with(&format!("step bind-addr on {HOST4}: Address already in use")), "{e}");
    assert!(e.to_string().ends_with("the host holds this address (on lan0)"), "{e}");
    // No such device.
    let plan = bindaddr::bound::BindPlan::new(vec![ifaddr(&format!("{A4}/24"))], Some("nosuch0"));
    let e = bindaddr::bind(&plan, "a", 0, &cg.run, &dir, None).unwrap_err();
    assert!(e.to_string().starts_with("step bind-addr on nosuch0: No such device"), "{e}");
    // An admin-managed address that is not there.
    let plan = bindaddr::bound::BindPlan::new(vec![ifaddr(&format!("{A4}/24"))], None);
    let e = bindaddr::bind(&plan, "a", 0, &cg.run, &dir, None).unwrap_err();
    assert!(e.to_string().contains("no interface of the host holds this address"), "{e}");
    // Not a cgroup of the v2 tree.
    let plan = bindaddr::bound::BindPlan::new(vec![ifaddr(&format!("{A4}/24"))], Some("lan0"));
    let e = bindaddr::bind(&plan, "a", 0, &cg.run, Path::new("/tmp"), None).unwrap_err();
    assert!(e.to_string().contains("not a cgroup of the v2 tree"), "{e}");
    // Nothing stayed: no program, no address, no loopback slot.
    assert!(bindaddr::attached(&dir).unwrap().is_empty());
    let out = String::from_utf8(Command::new("ip").args(["-o", "addr", "show"]).output().unwrap().stdout).unwrap();
    assert!(!out.contains(A4) && !out.contains("fd76:"), "{out}");
    assert!(bindaddr::lback::records(&cg.run).is_empty());
    // The positive control: the same plan binds when the host allows it.
    let plan = bindaddr::bound::BindPlan::new(vec![ifaddr(&format!("{A4}/24"))], Some("lan0"));
    let mut b = bindaddr::bind(&plan, "a", 0, &cg.run, &dir, None).unwrap();
    assert_eq!(bindaddr::lback::records(&cg.run).len(), 1);
    b.teardown();
    assert!(bindaddr::lback::records(&cg.run).is_empty());
}

#[test]
fn a_set_loaded_elsewhere_is_opened_by_its_ids() {
    if !can_run() {
        return;
    }
    let _lan = Lan::new();
    let cg = Cg::new();
    let set = bindaddr::ProgramSet::load().unwrap();
    let ids = set.ids().unwrap();
    let mut plan = bindaddr::bound::BindPlan::new(vec![ifaddr(&format!("{A4}/24"))], Some("lan0"));
    plan.programs = Some(ids.clone());
    let dir = cg.sub("a");
    let _b = bindaddr::bind(&plan, "a", 0, &cg.run, &dir, None).unwrap();
    let attached = bindaddr::attached(&dir).unwrap();
    for (hook, id) in &ids.progs {
        assert!(attached.contains(&(*hook, *id)), "{hook:?} {id} is the loaded set's");
    }
    // An id that is not one of the set's programs is refused.
    let mut wrong = ids.clone();
    wrong.progs[1].1 = wrong.progs[0].1;
    assert!(bindaddr::ProgramSet::open(&wrong).is_err());
}
