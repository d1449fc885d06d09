//! `vserverctl console`: the daemon connects to the socket the vserver's monitor serves
//! (see `monitor::console`) for an authorised caller and hands the connected socket over D-Bus.

use std::os::unix::net::UnixStream;

use crate::monitor::console::socket_path;

/// The daemon's side: a connection to the console of running vserver `sup`, for a caller
/// already authorised.
pub fn connect(paths: &vserver_config::paths::Paths, sup: &super::supervisor::Supervisor) -> Result<std::os::fd::OwnedFd, vserver_api::VServerError> {
    use vserver_api::{State, VServerError};
    let st = sup.status();
    if st.state != State::Running || st.run.is_none() {
        return Err(VServerError::NotRunning(format!("{} is {}", sup.name, st.state.as_str())));
    }
    let path = socket_path(&paths.run_dir, &sup.name);
    let c = UnixStream::connect(&path)
        .map_err(|e| VServerError::failed(format!("the console of {} is not reachable ({}: {e})", sup.name, path.display())))?;
    tracing::info!(vserver = %sup.name, "console attached");
    Ok(c.into())
}
