#!/usr/bin/env bash
# Sets up and runs vserver on a fresh Debian machine, as root: installs what it needs, builds,
# starts a system bus if none runs, starts vserverd with the example configuration and a busybox
# demo vserver built on the fly, starts the demo, and shows it running.
set -euo pipefail
cd "$(dirname "$0")"
[ "$(id -u)" -eq 0 ] || { echo "run.sh: run as root" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
need=(busybox-static iproute2 libseccomp-dev pkg-config dbus procps psmisc)
missing=()
for p in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; fi
command -v cargo >/dev/null || { echo "run.sh: needs a Rust toolchain (cargo)" >&2; exit 1; }

echo "== building"
cargo build --release --quiet --workspace --bins
# Binaries are built for the host triple (.cargo/config.toml: static executables).
bin="$PWD/target/$(rustc -vV | sed -n 's/^host: //p')/release"

echo "== the demo vserver: a busybox root with an rc script that starts a web server"
install -d -m 0700 /var/lib/vservers /run/vservers
install -d -m 0750 /var/log/vservers
install -d -m 0755 /etc/vservers
root=/var/lib/vservers/demo
if [ ! -x "$root/bin/busybox" ]; then
    install -d "$root"/{bin,etc/init.d,tmp,proc,sys,dev,root,www,var/run}
    cp /bin/busybox "$root/bin/busybox"
    for a in $("$root/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"; done
    echo "<h1>hello from the demo vserver</h1>" > "$root/www/index.html"
    cat > "$root/etc/init.d/rc" <<'RC'
#!/bin/sh
# The paper's rc: `rc 3` starts the services, `rc 0` stops them.
case "$1" in
  3) httpd -p 80 -h /www && echo "demo: httpd started on port 80 ($(hostname))" ;;
  0) killall httpd 2>/dev/null; echo "demo: services stopped" ;;
esac
RC
    chmod 755 "$root/etc/init.d/rc"
fi
cat > /etc/vservers/demo.toml <<'TOML'
# The demo vserver (made by run.sh). Every key is explained in etc/vservers/example.toml.sample.
hostname = "demo"
onboot = true
[init]
command = ["/etc/init.d/rc", "3"]
stop = ["/etc/init.d/rc", "0"]
stop_timeout = 10
[network]
mode = "none"
TOML

echo "== the system bus, with vserverd's policy"
install -D -m644 systemd/org.vserverd.VServer1.conf /etc/dbus-1/system.d/org.vserverd.VServer1.conf
# The polkit actions, for users other than root (used when polkit runs).
install -D -m644 systemd/org.vserverd.VServer1.policy /usr/share/polkit-1/actions/org.vserverd.VServer1.policy
if ! busctl status >/dev/null 2>&1; then
    install -d /run/dbus
    rm -f /run/dbus/system_bus_socket /run/dbus/pid
    dbus-daemon --system --fork
else
    busctl call org.freedesktop.DBus / org.freedesktop.DBus ReloadConfig >/dev/null
fi

echo "== vserverd"
if ! busctl status org.vserverd.VServer1 >/dev/null 2>&1; then
    nohup "$bin/vserverd" >>/var/log/vservers/vserverd.log 2>&1 &
    for _ in $(seq 100); do busctl status org.vserverd.VServer1 >/dev/null 2>&1 && break; sleep 0.1; done
else
    "$bin/vserverctl" reload
fi
"$bin/vserverctl" check demo
"$bin/vserverctl" running demo || "$bin/vserverctl" start demo
sleep 0.3
echo
"$bin/vserverctl" list
echo
"$bin/vserverctl" status demo || true
echo
echo "== inside, the web server answers on the vserver's own loopback (vserverctl exec):"
"$bin/vserverctl" exec demo -- wget -qO- http://127.0.0.1/ || true
echo
"$bin/vserverctl" stat || true
echo
echo "vserverd runs in the background (log: /var/log/vservers/vserverd.log); stop the demo with: $bin/vserverctl stop demo"
