//! `vserverctl pstree NAME`: the paper's vpstree: the process tree of one vserver, with the pids
//! it sees inside (and the host's in parentheses).

use std::collections::BTreeMap;

use vserver_api::VProcess;

use super::Ctx;
use crate::error::{exit, CtlError};
use crate::output;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The vserver.
    pub name: String,
}

/// The tree as text: each process under its parent, roots first (pid 1 of the vserver).
pub fn render(procs: &[VProcess]) -> String {
    let pids: Vec<u32> = procs.iter().map(|p| p.pid).collect();
    let mut children: BTreeMap<u32, Vec<&VProcess>> = BTreeMap::new();
    let mut roots = Vec::new();
    for p in procs {
        if pids.contains(&p.ppid) {
            children.entry(p.ppid).or_default().push(p);
        } else {
            roots.push(p);
        }
    }
    let mut out = String::new();
    fn walk(p: &VProcess, depth: usize, children: &BTreeMap<u32, Vec<&VProcess>>, out: &mut String) {
        out.push_str(&format!("{}{} ({}) {}\n", "  ".repeat(depth), p.vpid, p.pid, p.command));
        for c in children.get(&p.pid).into_iter().flatten() {
            walk(c, depth + 1, children, out);
        }
    }
    for r in roots {
        walk(r, 0, &children, &mut out);
    }
    out
}

pub async fn run(ctx: &Ctx, args: &Args) -> Result<u8, CtlError> {
    let procs = super::ps::fetch(ctx, Some(&args.name)).await?;
    if ctx.format.json {
        output::print(&output::json_string(&procs));
    } else {
        print!("{}", render(&procs));
    }
    Ok(exit::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, vpid: u32, ppid: u32, cmd: &str) -> VProcess {
        VProcess { vserver: "web1".into(), pid, vpid, ppid, command: cmd.into() }
    }

    #[test]
    fn children_sit_under_their_parent() {
        let text = render(&[p(100, 1, 50, "init"), p(101, 2, 100, "sshd"), p(102, 3, 101, "sh")]);
        assert_eq!(text, "1 (100) init\n  2 (101) sshd\n    3 (102) sh\n");
    }
}
