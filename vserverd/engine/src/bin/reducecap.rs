//! `reducecap`: the paper's tool. Runs a command that, with everything it starts, can never hold
//! the removed capabilities, not even through a setuid-root binary (the bounding set).
//!
//! ```text
//! reducecap [--secure] [--cap '!CAP']... [--show] [--] CMD [ARGS]
//! ```

mod common;

use std::ffi::CString;
use std::process::exit;

use common::Args;
use vserver_engine::caps::{self, CapSet, Capability};

const USAGE: &str = "usage: reducecap [--secure] [--cap '!CAP']... [--show] [--] CMD [ARGS]";

fn die(msg: &str, code: i32) -> ! {
    eprintln!("reducecap: {msg}");
    exit(code)
}

fn show() {
    for field in ["CapBnd", "CapPrm", "CapEff", "CapInh", "CapAmb"] {
        let set = caps::current(field).unwrap_or_default();
        println!("{field}: {:016x} {}", set.0, set.names());
    }
    let nnp = unsafe { libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    println!("NoNewPrivs: {nnp}");
}

fn main() {
    let mut args = Args::new(USAGE, die);
    let mut secure = false;
    let mut remove: Vec<Capability> = Vec::new();
    let mut want_show = false;
    while let Some(a) = args.option() {
        match a.as_str() {
            "--secure" => secure = true,
            "--show" => want_show = true,
            "--cap" => {
                let v = args.value("--cap");
                let name = v.strip_prefix('!').unwrap_or_else(|| {
                    die(&format!("--cap {v}: reducecap only removes capabilities; write --cap '!{v}'"), 2)
                });
                remove.push(Capability::parse(name).unwrap_or_else(|e| die(&e.to_string(), 2)));
            }
            s => args.unknown(s),
        }
    }
    let cmd = args.rest();

    let mut keep = caps::current("CapBnd").unwrap_or_else(CapSet::full);
    if secure {
        keep = CapSet(keep.0 & CapSet::secure_default().0);
    }
    for c in &remove {
        keep.remove(*c);
    }
    match caps::apply(keep) {
        Ok(()) => {}
        // An ordinary user holds no capability, and may not change the bounding set: what the
        // kernel allows instead is no_new_privs, so that nothing the command runs gains one
        // (setuid-root programs, file capabilities).
        Err(nix::errno::Errno::EPERM) if !nix::unistd::geteuid().is_root() && caps::current("CapEff").unwrap_or_default().0 == 0 => {
            if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
                die(&format!("cannot set no_new_privs: {}", nix::errno::Errno::last().desc()), 1);
            }
        }
        Err(e) => die(&format!("cannot reduce the bounding set: {} (dropping capabilities needs CAP_SETPCAP)", e.desc()), 1),
    }
    if let Err(e) = caps::limit_process(keep) {
        die(&format!("cannot reduce the permitted set: {}", e.desc()), 1);
    }
    if want_show {
        show();
    }
    if cmd.is_empty() {
        if want_show {
            exit(0);
        }
        die(&format!("no command given\n{USAGE}"), 2);
    }
    let argv: Vec<CString> = cmd.iter().map(|a| CString::new(a.as_str()).unwrap_or_else(|_| die("NUL in argument", 2))).collect();
    let e = nix::unistd::execvp(&argv[0], &argv).unwrap_err();
    die(&format!("cannot run {}: {}", cmd[0], e.desc()), 127);
}
