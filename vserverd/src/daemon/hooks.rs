//! Host-side hooks around start and stop: the paper's `/etc/vservers/NAME.sh PHASE NAME` when it
//! is there and executable, then the config's `[hooks]` command for the phase. Both run with a
//! clean environment (PATH and the `VSERVER_*` variables only) and a time limit.

use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::Duration;

use thiserror::Error;
use tokio::process::Command;

use vserver_config::VServerConfig;
use vserver_config::paths::Paths;

/// A hook may take this long before it is killed and counted as failed.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    PreStart,
    PostStart,
    PreStop,
    PostStop,
}

impl Phase {
    /// The paper's spelling, passed to NAME.sh and as VSERVER_HOOK.
    pub fn name(self) -> &'static str {
        match self {
            Phase::PreStart => "pre-start",
            Phase::PostStart => "post-start",
            Phase::PreStop => "pre-stop",
            Phase::PostStop => "post-stop",
        }
    }

    fn command(self, cfg: &VServerConfig) -> Option<&Vec<String>> {
        match self {
            Phase::PreStart => cfg.hooks.pre_start.as_ref(),
            Phase::PostStart => cfg.hooks.post_start.as_ref(),
            Phase::PreStop => cfg.hooks.pre_stop.as_ref(),
            Phase::PostStop => cfg.hooks.post_stop.as_ref(),
        }
    }
}

/// Why a stop (or a start) happens: `VSERVER_TARGET`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Start,
    Stop,
    Reboot,
}

impl Target {
    pub fn name(self) -> &'static str {
        match self {
            Target::Start => "start",
            Target::Stop => "stop",
            Target::Reboot => "reboot",
        }
    }
}

#[derive(Debug, Error)]
pub enum HookError {
    #[error("{phase} hook {program}: cannot run: {error}")]
    Spawn { phase: &'static str, program: String, error: std::io::Error },
    #[error("{phase} hook {program} exited with status {code}")]
    Failed { phase: &'static str, program: String, code: i32 },
    #[error("{phase} hook {program} did not finish within {secs} s and was killed")]
    Timeout { phase: &'static str, program: String, secs: u64 },
}

/// Runs the hooks of `phase`; the first failure stops the phase.
pub async fn run(paths: &Paths, cfg: &VServerConfig, phase: Phase, target: Target) -> Result<(), HookError> {
    let script = paths.legacy_script(&cfg.name);
    let script_ok = std::fs::metadata(&script).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false);
    if script_ok {
        let argv = vec![script.display().to_string(), phase.name().to_string(), cfg.name.clone()];
        run_one(cfg, phase, target, &argv).await?;
    }
    if let Some(argv) = phase.command(cfg) {
        run_one(cfg, phase, target, argv).await?;
    }
    Ok(())
}

async fn run_one(cfg: &VServerConfig, phase: Phase, target: Target, argv: &[String]) -> Result<(), HookError> {
    let program = argv[0].clone();
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .env_clear()
        .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .env("VSERVER_NAME", &cfg.name)
        .env("VSERVER_ROOT", &cfg.root)
        .env("VSERVER_CONTEXT", cfg.context.to_string())
        .env("VSERVER_HOOK", phase.name())
        .env("VSERVER_TARGET", target.name())
        .current_dir("/")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|error| HookError::Spawn { phase: phase.name(), program: program.clone(), error })?;
    match tokio::time::timeout(HOOK_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(HookError::Failed { phase: phase.name(), program, code: status.code().unwrap_or(128) }),
        Ok(Err(error)) => Err(HookError::Spawn { phase: phase.name(), program, error }),
        Err(_) => {
            let _ = child.kill().await;
            Err(HookError::Timeout { phase: phase.name(), program, secs: HOOK_TIMEOUT.as_secs() })
        }
    }
}
