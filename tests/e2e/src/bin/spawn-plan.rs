//! `spawn-plan PLAN.json [--print-pid FILE] [--netns PATH]`: builds the context a JSON
//! [`vserver_engine::LaunchPlan`] describes, waits for its pid 1 and reports how it ended.
//!
//! The engine needs a single-threaded caller, which the test harness is not; the tests run this
//! helper instead. It prints nothing on stdout (that belongs to the context, which inherits
//! fds 0, 1 and 2), and one line on stderr:
//! `spawn-plan: exit=<json of Exit>` (then exits with the shell code of that exit) or
//! `spawn-plan: error=<json of SetupError>` (then exits 125).
//! With `--print-pid FILE`, `PID CONTEXT` (pid 1 as the host sees it, and the context number) is
//! written to FILE (atomically) once pid 1 runs. With `--netns PATH` the helper first enters that
//! network namespace (a test "host" whose links and addresses it then works with).

use std::path::PathBuf;

fn main() {
    // pid 1 shows this binary as /proc/PID/exe until its exec: from a sealed copy.
    if let Err(e) = vserver_engine::sealed::ensure_sealed_self() {
        eprintln!("{e}");
        std::process::exit(1);
    }

    let mut plan_path: Option<PathBuf> = None;
    let mut pid_file: Option<PathBuf> = None;
    let mut netns: Option<PathBuf> = None;
    let mut args = std::env::args_os().skip(1);
    while let Some(a) = args.next() {
        if a == "--print-pid" {
            pid_file = args.next().map(PathBuf::from);
        } else if a == "--netns" {
            netns = args.next().map(PathBuf::from);
        } else if plan_path.is_none() {
            plan_path = Some(PathBuf::from(a));
        } else {
            usage();
        }
    }
    let Some(plan_path) = plan_path else { usage() };
    if let Some(ns) = netns {
        let entered = std::fs::File::open(&ns).and_then(|f| {
            use std::os::fd::AsRawFd;
            if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
        if let Err(e) = entered {
            eprintln!("spawn-plan: cannot enter {}: {e}", ns.display());
            std::process::exit(2);
        }
    }
    let text = std::fs::read_to_string(&plan_path).unwrap_or_else(|e| {
        eprintln!("spawn-plan: cannot read {}: {e}", plan_path.display());
        std::process::exit(2)
    });
    let plan: vserver_engine::LaunchPlan = serde_json::from_str(&text).unwrap_or_else(|e| {
        eprintln!("spawn-plan: bad plan {}: {e}", plan_path.display());
        std::process::exit(2)
    });

    let ctx = match vserver_engine::spawn(&plan) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("spawn-plan: error={}", serde_json::to_string(&e).unwrap_or_default());
            std::process::exit(125);
        }
    };
    if let Some(f) = pid_file {
        let tmp = f.with_extension("tmp");
        if std::fs::write(&tmp, format!("{} {}\n", ctx.pid, ctx.context)).and_then(|_| std::fs::rename(&tmp, &f)).is_err() {
            eprintln!("spawn-plan: cannot write {}", f.display());
        }
    }
    match ctx.wait() {
        Ok(exit) => {
            eprintln!("spawn-plan: exit={}", serde_json::to_string(&exit).unwrap_or_default());
            std::process::exit(exit.code());
        }
        Err(e) => {
            eprintln!("spawn-plan: wait failed: {e}");
            std::process::exit(126);
        }
    }
}

fn usage() -> ! {
    eprintln!("usage: spawn-plan PLAN.json [--print-pid FILE] [--netns PATH]");
    std::process::exit(2)
}
