#!/bin/sh
# Runs inside a Debian 12 root where the vserver package is installed (tests/package.sh copies
# it to /tmp and runs it with chroot, in private mount and PID namespaces): what the boot of
# that system would do for the package, as its units say, then the admin's first steps.
#
#   1. the runtime directories (systemd-tmpfiles on the package's tmpfiles.d file, as
#      systemd-tmpfiles-setup.service does);
#   2. the system bus: dbus-daemon --system, reading the installed bus policy
#      (/usr/share/dbus-1/system.d/org.vserverd.VServer1.conf) like every other;
#   3. vserverd with the ExecStart= of the installed vserverd.service, in the v2 cgroup CGROUP
#      that stands for the unit's own (Delegate=yes: the daemon puts its vservers below it);
#   4. vserverctl build web1 --debootstrap bookworm [--mirror MIRROR]; vserverctl start web1;
#      vserverctl status web1 says running; vserverctl exec runs in it; stop; status says
#      stopped; then again with `[user] map = "auto"` (the package's pool), its root shown
#      through an idmapped mount;
#   5. the daemon stopped as systemctl stop would (SIGTERM to the main process, KillMode=process),
#      the bus ended.
#
#   package-boot.sh CGROUP [MIRROR]    CGROUP: a directory of the v2 tree, or "" (none)
set -eu
cg="$1"
mirror="${2:-}"
unit=/lib/systemd/system/vserverd.service
say() { echo "boot: $*"; }
fail() {
    echo "boot: $*" >&2
    [ -f /var/log/vserverd.out ] && { echo "--- vserverd's output:" >&2; tail -30 /var/log/vserverd.out >&2; }
    exit 1
}
elapsed() { echo $(($(date +%s) - $1)); }

# 1. The runtime directories of the package, and the bus's.
systemd-tmpfiles --create /usr/lib/tmpfiles.d/vserver.conf || fail "systemd-tmpfiles --create vserver.conf"
[ "$(stat -c %a /run/vservers)" = 700 ] || fail "/run/vservers is not 0700"
mkdir -p /run/dbus

# 2. The system bus, with every policy installed (the package's among them).
dbus-daemon --system --fork --print-pid=1 >/run/dbus/test.pid || fail "dbus-daemon --system"
bus_pid=$(cat /run/dbus/test.pid)

# 3. vserverd as the unit starts it: its ExecStart= line, run in the unit's cgroup.
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
case "$exec_start" in
    "" | [-@:+!]*) fail "$unit: an ExecStart= this test does not run: '$exec_start'" ;;
esac
say "ExecStart=$exec_start"
# shellcheck disable=SC2086 # the unit's command line, split as systemd splits a plain one
sh -c '[ -z "$1" ] || echo $$ >"$1/cgroup.procs"; shift; exec "$@"' sh "$cg" $exec_start \
    </dev/null >/var/log/vserverd.out 2>&1 &
daemon_pid=$!
t=0
until vserverctl list >/dev/null 2>&1; do
    kill -0 "$daemon_pid" 2>/dev/null || fail "vserverd ended before owning its bus name"
    t=$((t + 1))
    [ "$t" -lt 200 ] || fail "vserverd did not answer on the bus within 20 s"
    sleep 0.1
done
say "vserverd (pid $daemon_pid) answers on the system bus"

# 4. The admin's first steps, as the issue has them.
t0=$(date +%s)
vserverctl build web1 --debootstrap bookworm ${mirror:+--mirror "$mirror"} >/var/log/build-web1.out 2>&1 \
    || { tail -20 /var/log/build-web1.out >&2; fail "vserverctl build web1 --debootstrap bookworm"; }
say "vserverctl build web1 --debootstrap bookworm: $(elapsed "$t0") s"
t0=$(date +%s)
vserverctl start web1 || fail "vserverctl start web1"
say "vserverctl start web1: $(elapsed "$t0") s"
status=$(vserverctl status web1) || fail "vserverctl status web1 (exit $?): $status"
echo "$status" | grep -Eq "^State: *running$" || fail "vserverctl status web1 does not say running: $status"
echo "$status" | grep -Eq "^ConfigFile: */etc/vservers/web1.toml$" || fail "vserverctl status web1: the wrong ConfigFile: $status"
[ -d "$cg/vservers/web1" ] || [ -z "$cg" ] || fail "web1's cgroup is not below the unit's ($cg/vservers/web1)"
version=$(vserverctl exec web1 -- cat /etc/debian_version) || fail "vserverctl exec web1"
case "$version" in 12.*) ;; *) fail "web1's /etc/debian_version: $version" ;; esac
init=$(vserverctl exec web1 -- cat /proc/1/comm) || fail "vserverctl exec web1 (pid 1)"
[ "$init" = systemd ] || fail "web1's pid 1 is $init, not systemd"
# Its boot ends: running, or degraded (a unit that needs what a vserver does not have).
t0=$(date +%s)
booted=$(timeout 120 vserverctl exec web1 -- systemctl is-system-running --wait) || true
case "$booted" in running | degraded) ;; *) fail "web1's systemd did not finish booting: '$booted'" ;; esac
failed=$(vserverctl exec web1 -- systemctl --failed --plain --no-legend 2>/dev/null | cut -d' ' -f1 | tr '\n' ' ')
say "web1's systemd: $booted after $(elapsed "$t0") s more${failed:+ (failed: $failed)}"
vserverctl stop web1 || fail "vserverctl stop web1"
code=0
vserverctl status web1 >/dev/null || code=$?
[ "$code" = 3 ] || fail "vserverctl status web1 after stop: exit $code, not 3"
[ ! -d "$cg/vservers/web1" ] || fail "web1's cgroup is left after its stop"
say "web1 built, started (its systemd is pid 1), stopped"

# 4b. The same vserver in a user namespace, from the pool the package gave the user vserver.
printf '\n[user]\nmap = "auto"\n' >>/etc/vservers/web1.toml
vserverctl reload >/dev/null || fail "vserverctl reload"
vserverctl start web1 || fail "vserverctl start web1 with [user] map = \"auto\""
pool=$(sed -n 's/^vserver:\([0-9]*\):.*/\1/p' /etc/subuid)
uidmap=$(vserverctl exec web1 -- cat /proc/self/uid_map | tr -s ' ') || fail "vserverctl exec web1 (uid_map)"
[ "$uidmap" = " 0 $pool 65536" ] || fail "web1's uid_map is '$uidmap', not the first range of the pool at $pool"
owner=$(vserverctl exec web1 -- stat -c %u /etc/debian_version) || fail "vserverctl exec web1 (stat)"
[ "$owner" = 0 ] || fail "web1's files are owned by $owner inside, not 0 (the idmapped root)"
vserverctl stop web1 || fail "vserverctl stop web1 (user namespace)"
[ "$(stat -c %u /var/lib/vservers/web1/etc/debian_version)" = 0 ] || fail "web1's files were chowned on disk"
say "web1 started again in a user namespace (root inside is host uid $pool), stopped"

# 5. systemctl stop vserverd (KillMode=process: SIGTERM to the main process only), then the bus.
kill -TERM "$daemon_pid"
wait "$daemon_pid" || fail "vserverd exited $? on SIGTERM"
kill -TERM "$bus_pid"
say "vserverd and the bus stopped"
