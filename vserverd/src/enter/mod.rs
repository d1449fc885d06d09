//! `vserverd enter NAME` (named `vserver-enter`): the helper that joins a running vserver for
//! `vserverctl enter` and `exec`. The daemon (see `daemon::enter`) execs it from its own sealed
//! binary and talks to it over a `SOCK_SEQPACKET` pair that is its stdin: the request
//! ([`EnterSpec`] as JSON) in, a [`Reply`] with the host-side ends of the command's stdio out;
//! then it waits for the command and ends the way the command ended.

use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use vserver_engine::enter::{EnterSpec, HostEnds};
use vserver_engine::fdpass;
use vserver_engine::{Exit, SetupError, Step};

/// The helper's answer.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    /// Followed by the descriptors: `[master]` with a tty, `[stdin, stdout, stderr]` without.
    Ready { tty: bool },
    Failed(SetupError),
}

/// `vserverd enter NAME`: the helper. Never returns.
pub fn helper_main(name: &str) -> ! {
    // Out of reach of everything inside from the start, and out of the daemon's session.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    let _ = nix::unistd::setsid();
    // The control socket is our stdin: it becomes 3, and nothing else of what we inherited
    // stays (whatever the daemon was started with).
    if unsafe { libc::dup2(0, 3) } != 3 || vserver_engine::sys::close_from(4).is_err() {
        std::process::exit(2);
    }
    unsafe { libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC) };
    let ctl = unsafe { OwnedFd::from_raw_fd(3) };
    // 0 stays taken until the command's stdin takes its place.
    if let Ok(null) = std::fs::File::open("/dev/null") {
        unsafe { libc::dup2(null.as_raw_fd(), 0) };
    }
    let spec: EnterSpec = match fdpass::recv(ctl.as_fd(), 64 * 1024) {
        Ok(Some((data, _))) => match serde_json::from_slice(&data) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("vserver-enter {name}: bad request: {e}");
                std::process::exit(2);
            }
        },
        _ => std::process::exit(2),
    };
    // The joining runs in a worker under a ptrace guard (this process, which stays on the
    // host): the command is traced by us from its fork to its exec, so nothing inside can
    // attach to it while it still runs our code. We end the way the worker ended, which is the
    // way the command did; the daemon tells the caller.
    // The worker is born in the vserver's v2 cgroup: joining it later would be a migration,
    // which waits for an RCU grace period (milliseconds).
    let pid1 = vserver_engine::registry::lookup(&spec.run_dir, spec.context).map(|e| e.pid);
    let v2 = pid1.and_then(vserver_engine::enter::v2_cgroup_of);
    match vserver_engine::guard::guarded_in(v2.as_deref(), || work(name, &spec, pid1, ctl)) {
        Ok(exit) => vserver_engine::guard::end_as(exit),
        Err(e) => {
            eprintln!("vserver-enter {name}: {e}");
            std::process::exit(255);
        }
    }
}

/// The guarded worker: joins the vserver, hands the host-side ends over `ctl` and waits for the
/// command. Returns how the command ended (setup failures are reported over `ctl`).
fn work(name: &str, spec: &EnterSpec, pid1: Option<i32>, ctl: OwnedFd) -> Exit {
    let ctl = Rc::new(RefCell::new(Some(ctl)));
    let ctl2 = ctl.clone();
    let result = vserver_engine::enter::enter(
        spec,
        || match pid1 {
            // The vserver's cgroups are the ones its pid 1 is in, whatever made them.
            // TODO(cgroups): if the daemon's cgroup plan ever places an entered process apart
            // from pid 1 (a sub-cgroup for sessions), attach to that plan here instead.
            Some(pid) => vserver_engine::enter::join_cgroups_of(pid),
            None => Ok(()),
        },
        move |ends| {
            let sock = ctl2.borrow_mut().take().expect("handover happens once");
            let (tty, fds): (bool, Vec<std::os::fd::BorrowedFd<'_>>) = match &ends {
                HostEnds::Pty { master } => (true, vec![master.as_fd()]),
                HostEnds::Pipes { stdin, stdout, stderr } => (false, vec![stdin.as_fd(), stdout.as_fd(), stderr.as_fd()]),
            };
            let body = serde_json::to_vec(&Reply::Ready { tty }).expect("reply serializes");
            fdpass::send(sock.as_fd(), &body, &fds).map_err(|e| SetupError::new(Step::Join, Some("handover".into()), e))?;
            // Ours go now, the control socket too: the caller holds the only host-side ends,
            // and when the command is forked we hold nothing but its stdio.
            drop(fds);
            drop(ends);
            drop(sock);
            Ok(())
        },
    );
    match result {
        Ok(exit) => exit,
        Err(e) => {
            let sock = ctl.borrow_mut().take();
            match sock {
                Some(sock) => fail(&sock, e),
                None => {
                    // After the handover: the daemon's log says why, the caller sees 255.
                    eprintln!("vserver-enter {name}: {e}");
                    Exit::Code(255)
                }
            }
        }
    }
}

fn fail(ctl: &OwnedFd, e: SetupError) -> ! {
    let body = serde_json::to_vec(&Reply::Failed(e)).expect("reply serializes");
    let _ = fdpass::send(ctl.as_fd(), &body, &[]);
    std::process::exit(1);
}
