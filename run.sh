#!/usr/bin/env bash
# Sets up and runs vserver on a fresh Debian machine, as root: installs what it needs, builds,
# makes a busybox demo vserver root and starts a security context in it, then shows it running.
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

cargo build --release --quiet --workspace --bins
bin="$PWD/target/release"

# A busybox demo root: the paper's /vservers/NAME (parent 0700: the chroot barrier).
root=/var/lib/vservers/demo
install -d -m 0700 /var/lib/vservers
if [ ! -x "$root/bin/busybox" ]; then
    install -d "$root"/{bin,etc,tmp,proc,sys,dev,root}
    cp /bin/busybox "$root/bin/busybox"
    for a in $("$root/bin/busybox" --list); do ln -sf busybox "$root/bin/$a"; done
fi

echo "== a new security context (chcontext), the paper's section 2.6.1: the host is invisible inside"
"$bin/chcontext" --secure --hostname demo -- sh -c 'echo "hostname: $(hostname)"; echo "processes seen:"; ps -e -o pid,comm | head; grep -E "^(CapBnd|Seccomp):" /proc/self/status'
echo
echo "== the demo vserver's root is ready at $root; the paper's tools are in $bin (chcontext, reducecap)"
