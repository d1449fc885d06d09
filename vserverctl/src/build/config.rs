//! The NAME.toml a build writes (commented: every key a new vserver is likely to need), and
//! which configured vservers use a template.

use std::path::Path;

/// The host name a new vserver's root is given (its /etc/hostname, /etc/hosts): the one the
/// daemon will give it, its name made a host name (`db_1` is `db-1`); `localhost` for a name
/// that makes none (`-`), which its NAME.toml then sets, since the default would be refused.
pub fn host_name(name: &str) -> (String, bool) {
    match vserver_config::values::default_hostname(name) {
        Some(h) => (h, false),
        None => ("localhost".into(), true),
    }
}

/// The commented configuration of a new vserver; `own_init`: its root boots with an init of
/// its own (`fakeinit`).
pub fn text(name: &str, source: &str, template: Option<&str>, root_shown: &Path, own_init: bool) -> String {
    let unified = match template {
        Some(t) => format!(
            "# Unification: the root is an overlay of the shared, read-only template {t:?} under this\n\
             # vserver's own files ({root}/upper), mounted on {root}/root when it starts, inside\n\
             # its mount namespace only. `vserverctl du {name}` counts only its own files.\n\
             template = \"{t}\"\n\n",
            root = root_shown.display()
        ),
        None => String::new(),
    };
    let hostname_line = match host_name(name) {
        (h, true) => format!("hostname = \"{h}\""),
        (h, false) => format!("# hostname = \"{h}\""),
    };
    format!(
        "# vserver {name}: made by `vserverctl build {name} {source}`.\n\
         # Every key is optional; etc/vservers/example.toml.sample explains each one. Check with\n\
         # `vserverctl check {name}`, start with `vserverctl start {name}`.\n\n\
         # The root (default ROOT_BASE/NAME): {root}\n\
         {unified}\
         # S_HOSTNAME (default: the name as a host name), S_CONTEXT (default: the lowest free\n\
         # from 1000 up).\n\
         {hostname_line}\n\
         # context = 1000\n\
         # Started by `vserverctl start --onboot` at boot.\n\
         # onboot = false\n\
         # `fakeinit`: the vserver's own /sbin/init is pid 1 (else a reaper runs init.command).\n\
         {flags}\n\n\
         [init]\n\
         {init}\
         # restart = \"no\"\n\n\
         [network]\n\
         # none (loopback only), host, macvlan, veth or bridge; with a link: device, addresses.\n\
         # mode = \"none\"\n\
         # device = \"eth0\"\n\
         # addresses = [\"192.0.2.10/24\"]\n",
        root = root_shown.display(),
        flags = if own_init { "flags = [\"fakeinit\"]" } else { "# flags = [\"fakeinit\"]" },
        init = if own_init {
            "# Its init (systemd: stopped with SIGRTMIN+3, ready at READY=1; sysvinit: SIGPWR) and\n\
             # how long it may take to boot and to shut down.\n\
             # command = [\"/sbin/init\"]\n\
             # start_timeout = 90\n\
             # stop_timeout = 30\n"
        } else {
            "# The start and stop commands of the paper's plain start (rc scripts).\n\
             # command = [\"/etc/init.d/rc\", \"3\"]\n\
             # stop = [\"/etc/init.d/rc\", \"0\"]\n"
        },
    )
}

/// The vservers whose files (NAME.toml or a drop-in) say `template = "TEMPLATE"`, read as
/// plain TOML so that an invalid configuration still counts.
pub fn users_of(config_dir: &Path, template: &str) -> Vec<String> {
    let mut users = Vec::new();
    let Ok(rd) = std::fs::read_dir(config_dir) else { return users };
    let mut names: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".toml")).map(str::to_string))
        .filter(|n| n != "defaults")
        .collect();
    names.sort();
    for name in names {
        let mut files = vec![config_dir.join(format!("{name}.toml"))];
        if let Ok(rd) = std::fs::read_dir(config_dir.join(format!("{name}.toml.d"))) {
            files.extend(rd.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")));
        }
        let uses = files.iter().any(|f| {
            std::fs::read_to_string(f)
                .ok()
                .and_then(|t| t.parse::<toml::Table>().ok())
                .is_some_and(|v| v.get("template").and_then(|t| t.as_str()) == Some(template))
        });
        if uses {
            users.push(name);
        }
    }
    users
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_root_gets_the_host_name_the_daemon_will_give() {
        assert_eq!(host_name("web1"), ("web1".to_string(), false));
        assert_eq!(host_name("db_1"), ("db-1".to_string(), false));
        // A name that makes no host name: the file sets one, else the vserver would be invalid.
        assert_eq!(host_name("-"), ("localhost".to_string(), true));
        let dash = text("-", "--from-host", None, Path::new("/var/lib/vservers/-"), false);
        assert!(dash.lines().any(|l| l == "hostname = \"localhost\""), "{dash}");
        let db = text("db_1", "--from-host", None, Path::new("/var/lib/vservers/db_1"), false);
        assert!(db.lines().any(|l| l == "# hostname = \"db-1\""), "{db}");
    }
}
