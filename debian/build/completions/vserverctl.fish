# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_vserverctl_global_optspecs
    string join \n j/json= no-legend bus-address= h/help V/version
end

function __fish_vserverctl_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_vserverctl_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_vserverctl_using_subcommand
    set -l cmd (__fish_vserverctl_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c vserverctl -n "__fish_vserverctl_needs_command" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_needs_command" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_needs_command" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "list" -d 'List vservers: name, state, context, leader, addresses, uptime'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "ls" -d 'List vservers: name, state, context, leader, addresses, uptime'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "status" -d 'Show every property of vservers (exit 0 all running, 3 one is not, 4 one does not exist)'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "show" -d 'The vserver object\'s D-Bus properties as Key=value lines, for scripts (-p, --value)'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "enable" -d 'Mark vservers to start at boot (`onboot = true` in NAME.toml; comments kept)'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "disable" -d 'Unmark vservers to start at boot (`onboot = false` in NAME.toml)'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "start" -d 'Start vservers, or every vserver marked onboot'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "stop" -d 'Stop vservers, or every running vserver'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "restart" -d 'Stop and start vservers again, re-reading their configuration'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "kill" -d 'Send a signal to a vserver\'s init or to all of its processes'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "stat" -d 'Per running vserver: context, processes, VSZ, RSS, CPU times, uptime (vserver-stat)'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "ps" -d 'Every process on the host with the vserver it belongs to, or those of one vserver (vps)'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "pstree" -d 'The process tree of a vserver, with its own pids and the host\'s (vpstree)'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "running" -d 'Exit 0 if the vserver is running, 1 if not; print nothing'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "check" -d 'Check the configuration on disk without applying it (exit 1 when invalid)'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "reload" -d 'Make vserverd re-read its configuration'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "logs" -d 'Print (or follow) the console log of a vserver'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "enter" -d 'An interactive login shell (or CMD) inside a running vserver, on a pty when stdin is a terminal'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "exec" -d 'Run CMD inside a running vserver on pipes (-t: on a pty); its exit code is ours'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "console" -d 'Attach to the console of a vserver\'s init (detach: Ctrl-] three times)'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "build" -d 'Build a new vserver: a root from a template, the host or debootstrap, or unified'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "template" -d 'Templates of unified vservers: list, create, remove'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "du" -d 'The disk space vservers really use, not counting what they share with a template (vdu)'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "destroy" -d 'Remove a stopped vserver\'s root and configuration'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "generate" -d 'Generate shell completions or man pages (for packagers)'
complete -c vserverctl -n "__fish_vserverctl_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand list" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand list" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand list" -s a -l all -d 'Include vservers that are not running (stopped, failed)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand list" -s s -l stat -d 'The paper\'s vserver-stat columns instead (processes, VSZ, RSS, CPU, uptime, disk): as `stat`'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand list" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand list" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand list" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand ls" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand ls" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand ls" -s a -l all -d 'Include vservers that are not running (stopped, failed)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand ls" -s s -l stat -d 'The paper\'s vserver-stat columns instead (processes, VSZ, RSS, CPU, uptime, disk): as `stat`'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand ls" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand ls" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand ls" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand status" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand status" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand status" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand status" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand status" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand show" -s p -l property -d 'Only these properties (repeat the option, or separate them by commas)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand show" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand show" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand show" -l value -d 'Print the values only, without `Key=`'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand show" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand show" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand show" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand enable" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand enable" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand enable" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand enable" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand enable" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand disable" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand disable" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand disable" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand disable" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand disable" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand start" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand start" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand start" -l onboot -d 'Start every vserver marked onboot, in their configured order (exit 1 if any failed)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand start" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand start" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand start" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand stop" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand stop" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand stop" -l all -d 'Stop every running vserver (exit 1 if any failed)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand stop" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand stop" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand stop" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand restart" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand restart" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand restart" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand restart" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand restart" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand kill" -s s -l signal -d 'The signal: a name (TERM, SIGKILL, hup, RTMIN+1) or a number' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand kill" -l whom -d 'Send it to the vserver\'s init only, or to all of its processes' -r -f -a "leader\t'The vserver\'s pid 1 (its init)'
all\t'Every process of the vserver'"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand kill" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand kill" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand kill" -l host-pid -d 'PID is a host pid (it must still belong to the vserver)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand kill" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand kill" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand kill" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand stat" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand stat" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand stat" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand stat" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand stat" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand ps" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand ps" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand ps" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand ps" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand ps" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand pstree" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand pstree" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand pstree" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand pstree" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand pstree" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand running" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand running" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand running" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand running" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand running" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand check" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand check" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand check" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand check" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand check" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand reload" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand reload" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand reload" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand reload" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand reload" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand logs" -s n -l lines -d 'How many of the last lines to print first' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand logs" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand logs" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand logs" -s f -l follow -d 'Keep printing what is appended to the log; reopen it when it is rotated or truncated'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand logs" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand logs" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand logs" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand enter" -s u -l user -d 'Run as this user of the vserver\'s own /etc/passwd (a name or a number; default root)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand enter" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand enter" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand enter" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand enter" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand enter" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand exec" -s u -l user -d 'Run as this user of the vserver\'s own /etc/passwd (a name or a number; default root)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand exec" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand exec" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand exec" -s t -l tty -d 'Give the command a pty (when standard input is a terminal), as `enter` does'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand exec" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand exec" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand exec" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand console" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand console" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand console" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand console" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand console" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -l template -d 'A root tree (a directory) or a tar of one (.tar, .tar.gz; .tar.xz, .tar.zst, .tar.bz2 with the host\'s xz, zstd, bzip2)' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -l debootstrap -d 'Debian\'s debootstrap of SUITE (for example bookworm)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -l mirror -d 'The mirror debootstrap uses (default: debootstrap\'s own)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -l variant -d 'debootstrap\'s variant (for example minbase)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -l init -d 'The init the debootstrapped root boots with (the vserver\'s own, `fakeinit`), or none (an rc script started by the vserver\'s reaper)' -r -f -a "systemd\t'systemd-sysv, with dbus and libpam-systemd (logins get logind sessions)'
sysvinit\t'sysvinit-core'
none\t'No init of its own: the paper\'s plain start, an rc script run by the vserver\'s reaper'"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -l include -d 'More packages for debootstrap to install (comma-separated, or the option repeated)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -l unified -d 'Make the root an overlay of TEMPLATE (shared, read-only) under the vserver\'s own files' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -l snapshot -d 'Make the root a writable btrfs snapshot of TEMPLATE (a subvolume)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -l config-dir -d 'Where NAME.toml files live' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -l root-base -d 'Where roots live (NAME appended); kept at mode 0700, the paper\'s chroot barrier' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -l template-dir -d 'Where templates live (default: ROOT_BASE/.templates)' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -l run-dir -d 'vserverd\'s runtime state (a vserver with state there may be running)' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -l from-host -d 'A copy of the host\'s /bin /sbin /lib* /usr /etc /var (the paper\'s way): logs, spools and run state emptied, kernel modules left out, a dummy fstab'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand build" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and not __fish_seen_subcommand_from list create remove help" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and not __fish_seen_subcommand_from list create remove help" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and not __fish_seen_subcommand_from list create remove help" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and not __fish_seen_subcommand_from list create remove help" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and not __fish_seen_subcommand_from list create remove help" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and not __fish_seen_subcommand_from list create remove help" -f -a "list" -d 'Every template: name, size, the vservers using it'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and not __fish_seen_subcommand_from list create remove help" -f -a "create" -d 'Make a template from any source of `build`'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and not __fish_seen_subcommand_from list create remove help" -f -a "remove" -d 'Remove a template (refused while a configured vserver uses it)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and not __fish_seen_subcommand_from list create remove help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from list" -l config-dir -d 'Where NAME.toml files live' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from list" -l root-base -d 'Where roots live (NAME appended); kept at mode 0700, the paper\'s chroot barrier' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from list" -l template-dir -d 'Where templates live (default: ROOT_BASE/.templates)' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from list" -l run-dir -d 'vserverd\'s runtime state (a vserver with state there may be running)' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from list" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from list" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from list" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -l template -d 'A root tree (a directory) or a tar of one (.tar, .tar.gz; .tar.xz, .tar.zst, .tar.bz2 with the host\'s xz, zstd, bzip2)' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -l debootstrap -d 'Debian\'s debootstrap of SUITE (for example bookworm)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -l mirror -d 'The mirror debootstrap uses (default: debootstrap\'s own)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -l variant -d 'debootstrap\'s variant (for example minbase)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -l init -d 'The init the debootstrapped root boots with (the vserver\'s own, `fakeinit`), or none (an rc script started by the vserver\'s reaper)' -r -f -a "systemd\t'systemd-sysv, with dbus and libpam-systemd (logins get logind sessions)'
sysvinit\t'sysvinit-core'
none\t'No init of its own: the paper\'s plain start, an rc script run by the vserver\'s reaper'"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -l include -d 'More packages for debootstrap to install (comma-separated, or the option repeated)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -l config-dir -d 'Where NAME.toml files live' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -l root-base -d 'Where roots live (NAME appended); kept at mode 0700, the paper\'s chroot barrier' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -l template-dir -d 'Where templates live (default: ROOT_BASE/.templates)' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -l run-dir -d 'vserverd\'s runtime state (a vserver with state there may be running)' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -l from-host -d 'A copy of the host\'s /bin /sbin /lib* /usr /etc /var (the paper\'s way): logs, spools and run state emptied, kernel modules left out, a dummy fstab'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from remove" -l config-dir -d 'Where NAME.toml files live' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from remove" -l root-base -d 'Where roots live (NAME appended); kept at mode 0700, the paper\'s chroot barrier' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from remove" -l template-dir -d 'Where templates live (default: ROOT_BASE/.templates)' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from remove" -l run-dir -d 'vserverd\'s runtime state (a vserver with state there may be running)' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from remove" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from remove" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from remove" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from remove" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from remove" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from help" -f -a "list" -d 'Every template: name, size, the vservers using it'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from help" -f -a "create" -d 'Make a template from any source of `build`'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from help" -f -a "remove" -d 'Remove a template (refused while a configured vserver uses it)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand template; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand du" -l config-dir -d 'Where NAME.toml files live' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand du" -l root-base -d 'Where roots live (NAME appended); kept at mode 0700, the paper\'s chroot barrier' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand du" -l template-dir -d 'Where templates live (default: ROOT_BASE/.templates)' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand du" -l run-dir -d 'vserverd\'s runtime state (a vserver with state there may be running)' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand du" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand du" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand du" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand du" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand du" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand destroy" -l config-dir -d 'Where NAME.toml files live' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand destroy" -l root-base -d 'Where roots live (NAME appended); kept at mode 0700, the paper\'s chroot barrier' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand destroy" -l template-dir -d 'Where templates live (default: ROOT_BASE/.templates)' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand destroy" -l run-dir -d 'vserverd\'s runtime state (a vserver with state there may be running)' -r -F
complete -c vserverctl -n "__fish_vserverctl_using_subcommand destroy" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand destroy" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand destroy" -s f -l force -d 'Do not ask; with vserverd down, destroy when no monitor state exists for the vserver'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand destroy" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand destroy" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand destroy" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -f -a "completions" -d 'Shell completions, written into DIR (as the shell names the file) or to standard output'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -f -a "man" -d 'Man pages, vserverctl.1 and one vserverctl-VERB.1 per verb, written into DIR'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and not __fish_seen_subcommand_from completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and __fish_seen_subcommand_from completions" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and __fish_seen_subcommand_from completions" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and __fish_seen_subcommand_from completions" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and __fish_seen_subcommand_from completions" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and __fish_seen_subcommand_from completions" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and __fish_seen_subcommand_from man" -s j -l json -d 'Print machine-readable JSON instead of text: indented (`pretty`, the default of a bare `--json` or `-j`), one line per document (`short`), or text after all (`off`)' -r -f -a "pretty\t''
short\t''
off\t''"
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and __fish_seen_subcommand_from man" -l bus-address -d 'Talk to the bus at this D-Bus address instead of the system bus (for example unix:path=/run/dbus/system_bus_socket)' -r
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and __fish_seen_subcommand_from man" -l no-legend -d 'Leave out table headers and footers'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and __fish_seen_subcommand_from man" -s h -l help -d 'Print help'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and __fish_seen_subcommand_from man" -s V -l version -d 'Print version'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "completions" -d 'Shell completions, written into DIR (as the shell names the file) or to standard output'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "man" -d 'Man pages, vserverctl.1 and one vserverctl-VERB.1 per verb, written into DIR'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand generate; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "list" -d 'List vservers: name, state, context, leader, addresses, uptime'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "status" -d 'Show every property of vservers (exit 0 all running, 3 one is not, 4 one does not exist)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "show" -d 'The vserver object\'s D-Bus properties as Key=value lines, for scripts (-p, --value)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "enable" -d 'Mark vservers to start at boot (`onboot = true` in NAME.toml; comments kept)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "disable" -d 'Unmark vservers to start at boot (`onboot = false` in NAME.toml)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "start" -d 'Start vservers, or every vserver marked onboot'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "stop" -d 'Stop vservers, or every running vserver'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "restart" -d 'Stop and start vservers again, re-reading their configuration'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "kill" -d 'Send a signal to a vserver\'s init or to all of its processes'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "stat" -d 'Per running vserver: context, processes, VSZ, RSS, CPU times, uptime (vserver-stat)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "ps" -d 'Every process on the host with the vserver it belongs to, or those of one vserver (vps)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "pstree" -d 'The process tree of a vserver, with its own pids and the host\'s (vpstree)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "running" -d 'Exit 0 if the vserver is running, 1 if not; print nothing'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "check" -d 'Check the configuration on disk without applying it (exit 1 when invalid)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "reload" -d 'Make vserverd re-read its configuration'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "logs" -d 'Print (or follow) the console log of a vserver'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "enter" -d 'An interactive login shell (or CMD) inside a running vserver, on a pty when stdin is a terminal'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "exec" -d 'Run CMD inside a running vserver on pipes (-t: on a pty); its exit code is ours'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "console" -d 'Attach to the console of a vserver\'s init (detach: Ctrl-] three times)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "build" -d 'Build a new vserver: a root from a template, the host or debootstrap, or unified'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "template" -d 'Templates of unified vservers: list, create, remove'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "du" -d 'The disk space vservers really use, not counting what they share with a template (vdu)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "destroy" -d 'Remove a stopped vserver\'s root and configuration'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "generate" -d 'Generate shell completions or man pages (for packagers)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and not __fish_seen_subcommand_from list status show enable disable start stop restart kill stat ps pstree running check reload logs enter exec console build template du destroy generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and __fish_seen_subcommand_from template" -f -a "list" -d 'Every template: name, size, the vservers using it'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and __fish_seen_subcommand_from template" -f -a "create" -d 'Make a template from any source of `build`'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and __fish_seen_subcommand_from template" -f -a "remove" -d 'Remove a template (refused while a configured vserver uses it)'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "completions" -d 'Shell completions, written into DIR (as the shell names the file) or to standard output'
complete -c vserverctl -n "__fish_vserverctl_using_subcommand help; and __fish_seen_subcommand_from generate" -f -a "man" -d 'Man pages, vserverctl.1 and one vserverctl-VERB.1 per verb, written into DIR'
