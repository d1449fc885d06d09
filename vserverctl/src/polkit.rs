//! Interactive authorization, as systemctl and machinectl do it. A call that changes something
//! may need polkit to authenticate the user first (`auth_admin`, `auth_self`): vserverd lets
//! polkit ask only when the call carries D-Bus's `ALLOW_INTERACTIVE_AUTHORIZATION` header flag,
//! and polkit asks through an authentication agent registered for the calling process.
//!
//! - The flag is set when standard input is a terminal (someone is there to answer) and
//!   `--no-ask-password` is not given ([`Auth::new`]).
//! - Around such a call, when we are not root (root is never asked: vserverd does not consult
//!   polkit for uid 0), `pkttyagent --process PID --notify-fd N [--fallback]` is started for
//!   this very process, and the call waits until the agent closes N, i.e. has registered, as
//!   systemd's `polkit_agent_open()` does. No pkttyagent installed: no agent, silently; polkit
//!   then refuses as it would without the flag. The agent ends (SIGTERM, then waited for) once
//!   the call has returned, so that it never shares the terminal with a session that follows
//!   (`enter`, `console`).
//! - `--fallback` (leave a desktop's agent, registered for the login session, in charge) only
//!   when we are in a logind session: polkitd (122, and its current source) looks a fallback
//!   agent up only after finding the subject's session, so without a session (no logind, as on
//!   a host without systemd, or a process outside any session) a fallback agent is never asked
//!   and polkit answers "challenge" as if there were none; without a session there is no
//!   session agent to defer to either.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};

use nix::fcntl::OFlag;
use zbus::proxy::MethodFlags;

/// Whether calls may ask the user, and the agent that asks.
#[derive(Debug)]
pub struct Auth {
    interactive: bool,
}

impl Auth {
    /// `ask_password`: not `--no-ask-password`; `stdin_tty`: standard input is a terminal.
    pub fn new(ask_password: bool, stdin_tty: bool) -> Auth {
        Auth { interactive: ask_password && stdin_tty }
    }

    /// The header flags of a call that changes something.
    pub fn flags(&self) -> MethodFlags {
        if self.interactive {
            MethodFlags::ALLOW_INTERACTIVE_AUTH
        } else {
            MethodFlags::empty()
        }
    }

    /// The agent for one call (None: not needed, or not available); it ends when dropped.
    pub fn agent(&self) -> Option<Agent> {
        if !self.interactive || nix::unistd::geteuid().is_root() {
            return None;
        }
        Agent::start("pkttyagent", in_login_session())
    }
}

/// A running `pkttyagent`, registered with polkit for our process.
#[derive(Debug)]
pub struct Agent {
    child: Child,
}

impl Agent {
    /// Starts `program` (found in PATH) as systemd starts its agent and returns once it has
    /// registered (it closes its notify fd then, or when it fails and exits); None when it
    /// cannot be run.
    pub fn start(program: &str, fallback: bool) -> Option<Agent> {
        // The read end stays ours (close-on-exec); the write end is the agent's notify fd.
        let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe2(OFlag::O_CLOEXEC).ok()?;
        let notify = write.as_raw_fd();
        let mut cmd = Command::new(program);
        cmd.args(["--process", &std::process::id().to_string(), "--notify-fd", &notify.to_string()]);
        if fallback {
            cmd.arg("--fallback");
        }
        // Safety: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // The agent inherits the notify fd, and ends with us (its prompt is for our call).
                if libc::fcntl(notify, libc::F_SETFD, 0) < 0 || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // stdin, stdout, stderr: ours, the terminal the agent prompts on.
        let child = cmd.spawn().ok()?;
        drop(write);
        wait_closed(&read);
        Some(Agent { child })
    }
}

/// Whether this process is in a logind session: its cgroup path has a `session-ID.scope`, as
/// `sd_pid_get_session()` reads it.
fn in_login_session() -> bool {
    std::fs::read_to_string("/proc/self/cgroup").is_ok_and(|text| session_in_cgroups(&text))
}

fn session_in_cgroups(text: &str) -> bool {
    // The unified hierarchy (`0::PATH`), or systemd's own (`N:name=systemd:PATH`) on a legacy host.
    text.lines()
        .filter_map(|l| l.strip_prefix("0::").or_else(|| l.split_once(":name=systemd:").map(|(_, p)| p)))
        .any(|path| path.split('/').any(|c| c.starts_with("session-") && c.ends_with(".scope")))
}

/// Blocks until every writer of `fd` has closed it (read gives end of file).
fn wait_closed(fd: &OwnedFd) {
    let mut buf = [0u8; 64];
    loop {
        match nix::unistd::read(fd.as_raw_fd(), &mut buf) {
            Ok(0) => return,
            Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_only_when_asked_and_at_a_terminal() {
        assert_eq!(Auth::new(true, true).flags(), MethodFlags::ALLOW_INTERACTIVE_AUTH);
        assert_eq!(Auth::new(false, true).flags(), MethodFlags::empty(), "--no-ask-password");
        assert_eq!(Auth::new(true, false).flags(), MethodFlags::empty(), "stdin is no terminal");
        assert!(Auth::new(false, true).agent().is_none());
    }

    #[test]
    fn a_missing_agent_is_skipped() {
        assert!(Agent::start("vserverctl-test-no-such-agent", true).is_none());
    }

    #[test]
    fn login_sessions_from_the_cgroup_path() {
        assert!(session_in_cgroups("0::/user.slice/user-1000.slice/session-3.scope\n"));
        assert!(session_in_cgroups("1:name=systemd:/user.slice/user-1000.slice/session-c2.scope\n0::/\n"));
        assert!(!session_in_cgroups("0::/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope\n"));
        assert!(!session_in_cgroups("0::/system.slice/ssh.service\n"), "a service is in no session");
        assert!(!session_in_cgroups("0::/\n4:memory:/session-1.scope\n"), "another controller's path");
    }

    #[test]
    fn start_waits_for_the_notify_fd_and_drop_ends_the_agent() {
        // A stand-in agent: says it registered and closes its notify fd (the argument after
        // --notify-fd) after a moment, then waits to be ended. bash: dash closes fds 0-9 only.
        let dir = std::env::temp_dir().join(format!("vserverctl-agent-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("agent");
        let marker = dir.join("args");
        std::fs::write(
            &script,
            format!(
                "#!/bin/bash\necho \"$@\" > {m}\nsleep 0.3\necho registered >> {m}\neval \"exec $4>&-\"\nexec sleep 30\n",
                m = marker.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let agent = Agent::start(script.to_str().unwrap(), true).expect("the stand-in runs");
        let seen = std::fs::read_to_string(&marker).unwrap();
        assert!(seen.contains("registered"), "start returned before the notify fd closed: {seen}");
        let args: Vec<&str> = seen.lines().next().unwrap().split(' ').collect();
        assert_eq!(args[..2], ["--process", &std::process::id().to_string()][..]);
        assert_eq!((args[2], args[4]), ("--notify-fd", "--fallback"));
        let pid = agent.child.id() as i32;
        drop(agent);
        assert!(nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_err(), "the agent still runs");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
