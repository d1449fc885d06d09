//! `chcontext`: the paper's tool. Runs a command in a new security context (new PID, IPC and
//! UTS namespaces with its own /proc, same root), or with `--ctx N` in the existing context N.
//!
//! ```text
//! chcontext [--ctx N] [--cap CAP | --cap '!CAP']... [--secure] [--flag lock|private|fakeinit|nproc|sched|nest]...
//!           [--hostname H] [--domainname D] [--disconnect] [--silent] [--] CMD [ARGS]
//! ```
//!
//! A new context runs under a vserver's seccomp filter for its flags: by default no user
//! namespaces inside (`unshare`/`clone` with CLONE_NEWUSER fail with EPERM), `--flag nest`
//! allows them, `--flag lock` refuses every new namespace and every mount (`lock` and `nest`
//! exclude each other). `--ctx N` takes on context N's own filter.
//!
//! An ordinary user gets a new context too (the paper's 2.6.1 experiment, run as a user): a
//! user namespace maps that user to root inside (its only id), and owns the new PID, IPC, UTS
//! and mount namespaces; the context's number is registered under the user's own run directory
//! (`$XDG_RUNTIME_DIR/vservers`, else `/tmp/vservers-UID`). Entering a context (`--ctx`) stays
//! root's.

mod common;

use std::path::PathBuf;
use std::process::exit;

use common::Args;
use vserver_engine::caps::{self, CapSet, Capability};
use vserver_engine::guard;
use vserver_engine::join::{join, JoinRequest};
use vserver_engine::plan::{Init, LaunchPlan, Network};
use vserver_engine::registry::DEFAULT_RUN_DIR;

const USAGE: &str = "usage: chcontext [--ctx N] [--cap CAP|--cap '!CAP']... [--secure] [--flag FLAG]... \
[--hostname H] [--domainname D] [--disconnect] [--silent] [--] CMD [ARGS]";

#[derive(Default)]
struct Options {
    ctx: Option<u32>,
    add: Vec<Capability>,
    remove: Vec<Capability>,
    secure: bool,
    flags: Vec<String>,
    hostname: Option<String>,
    domainname: Option<String>,
    disconnect: bool,
    silent: bool,
    cmd: Vec<String>,
}

fn die(msg: &str, code: i32) -> ! {
    eprintln!("chcontext: {msg}");
    exit(code)
}

fn parse(mut args: Args) -> Options {
    let mut o = Options::default();
    while let Some(a) = args.option() {
        match a.as_str() {
            "--ctx" => {
                let v = args.value("--ctx");
                o.ctx = Some(v.parse().unwrap_or_else(|_| die(&format!("--ctx: {v:?} is not a context number"), 2)));
            }
            "--cap" => {
                let v = args.value("--cap");
                let (neg, name) = match v.strip_prefix('!') {
                    Some(n) => (true, n),
                    None => (false, v.as_str()),
                };
                let cap = Capability::parse(name).unwrap_or_else(|e| die(&format!("--cap: {e}"), 2));
                if neg { o.remove.push(cap) } else { o.add.push(cap) }
            }
            "--secure" => o.secure = true,
            "--flag" => o.flags.push(args.value("--flag")),
            "--hostname" => o.hostname = Some(args.value("--hostname")),
            "--domainname" => o.domainname = Some(args.value("--domainname")),
            "--disconnect" => o.disconnect = true,
            "--silent" => o.silent = true,
            s => args.unknown(s),
        }
    }
    o.cmd = args.command();
    o
}

fn main() {
    if let Err(e) = vserver_engine::sealed::ensure_sealed_self() {
        eprintln!("{e}");
        std::process::exit(1);
    }
    let o = parse(Args::new(USAGE, die));
    let ordinary = !nix::unistd::geteuid().is_root();
    let run_dir = match std::env::var_os("VSERVER_RUN_DIR") {
        Some(d) => PathBuf::from(d),
        None if ordinary => user_run_dir().unwrap_or_else(|e| die(&e, 1)),
        None => PathBuf::from(DEFAULT_RUN_DIR),
    };
    if ordinary && o.ctx.is_some() {
        die("entering an existing security context (--ctx) needs root", 1);
    }

    // The ceiling: what this process may pass on (the secure list with --secure), then --cap.
    let mut set = if o.secure { CapSet::secure_default() } else { caps::current("CapBnd").unwrap_or_else(CapSet::full) };
    for c in &o.add {
        set.add(*c);
    }
    for c in &o.remove {
        set.remove(*c);
    }

    if let Some(ctx) = o.ctx {
        if o.hostname.is_some() || o.domainname.is_some() || !o.flags.is_empty() {
            die("--hostname, --domainname and --flag apply to a new context, not with --ctx", 2);
        }
        let drop = CapSet(!set.0 & CapSet::full().0);
        let req = JoinRequest { run_dir: &run_dir, context: ctx, argv: &o.cmd, drop };
        // The joining worker under a ptrace guard: nothing inside can attach to the command
        // between its fork and its exec (see `vserver_engine::guard`).
        let worker = || match join(&req) {
            Ok(exit_status) => exit_status,
            Err(e) => die(&e.to_string(), 1),
        };
        match guard::guarded(worker) {
            Ok(exit_status) => exit(exit_status.code()),
            Err(e) => die(&e.to_string(), 1),
        }
    }

    let fakeinit = o.flags.iter().any(|f| f == "fakeinit");
    let init = if fakeinit {
        Init::Fake { argv: o.cmd.clone() }
    } else {
        Init::Rc { start: o.cmd.clone(), stop: None, exit_with_start: true }
    };
    let mut plan = LaunchPlan::new(&o.cmd[0], None, init);
    plan.network = Network::Host;
    plan.caps = set;
    plan.hostname = o.hostname.clone();
    plan.domainname = o.domainname.clone();
    plan.run_dir = run_dir;
    if ordinary {
        plan.userns = Some(vserver_engine::userns::UserNsPlan::Own);
    }
    for f in o.flags.iter().filter(|f| *f != "fakeinit") {
        if let Err(e) = plan.flags.set(f) {
            die(&format!("--flag: {e}"), 2);
        }
    }
    if let Err(e) = plan.flags.check() {
        die(&format!("--flag: {e}"), 2);
    }

    if o.disconnect {
        // Detach: the context's parent becomes a session leader of its own and nobody waits.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Parent { .. }) => exit(0),
            Ok(nix::unistd::ForkResult::Child) => {
                let _ = nix::unistd::setsid();
            }
            Err(e) => die(&format!("fork: {}", e.desc()), 1),
        }
    }
    // Like system(3): the terminal's SIGINT and SIGQUIT are for the command, not for us.
    for s in [nix::sys::signal::Signal::SIGINT, nix::sys::signal::Signal::SIGQUIT] {
        unsafe {
            let _ = nix::sys::signal::signal(s, nix::sys::signal::SigHandler::SigIgn);
        }
    }
    let ctx = match vserver_engine::spawn(&plan) {
        Ok(c) => c,
        Err(e) => die(&e.to_string(), 1),
    };
    if !o.silent {
        eprintln!("New security context is {}", ctx.context);
    }
    match ctx.wait() {
        Ok(status) => exit(status.code()),
        Err(e) => die(&format!("wait: {}", e.desc()), 1),
    }
}

/// An ordinary user's registry: `$XDG_RUNTIME_DIR/vservers`, else `/tmp/vservers-UID` (made
/// 0700; refused unless it is a directory of the user's own, not a link).
fn user_run_dir() -> Result<PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let uid = nix::unistd::geteuid().as_raw();
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => PathBuf::from(d).join("vservers"),
        None => PathBuf::from(format!("/tmp/vservers-{uid}")),
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    let md = std::fs::symlink_metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    if !md.is_dir() || md.uid() != uid || md.mode() & 0o022 != 0 {
        return Err(format!("{}: not a directory of user {uid}'s own that only it may write; refused", dir.display()));
    }
    Ok(dir)
}
