#!/usr/bin/env bash
# The Debian package, as an admin gets it: built with debhelper (debian/), linted (lintian: no
# error and no warning, but the overrides debian/vserver.lintian-overrides justifies), then,
# given a Debian 12 root, installed there with apt, run, and purged:
#   - vserverctl --version, vserverd --check-config and man -w for every page work, and
#     systemd-analyze verify with its man checks passes on the installed units;
#   - the units are enabled, the tmpfiles made, /etc/vservers/defaults.toml is a conffile, the
#     system user vserver has subordinate ids (the pool of `[user] map = "auto"`);
#   - the daemon runs as its units would run it (tests/package-boot.sh, from inside the root, in
#     private mount and PID namespaces: the bus with the installed policy, vserverd by the
#     unit's ExecStart= in a cgroup standing for the unit's), and `vserverctl build web1
#     --debootstrap bookworm && vserverctl start web1` work with no other step, and web1 starts
#     again in a user namespace from that pool; then all of it is stopped and removed
#     (processes, mounts, cgroups);
#   - apt purge leaves no file of the package, nor its user and subordinate ids, and leaves the
#     vservers' roots, saying so.
#
#   tests/package.sh [ROOT]   ROOT: a Debian 12 root to copy and install into (default: the
#                             heavy suite's cached guest root; without one, the install is skipped)
# Environment: VSERVER_CARGO_PROFILE (default package-check, a quicker release build);
# VSERVER_PACKAGE_BOOT=0 skips the daemon's run; VSERVER_PACKAGE_MIRROR: the Debian mirror
# `vserverctl build --debootstrap` uses there (a local mirror or apt-cacher-ng keeps it fast and
# offline; default: debootstrap's own, deb.debian.org).
set -euo pipefail
cd "$(dirname "$0")/.."
export VSERVER_CARGO_PROFILE="${VSERVER_CARGO_PROFILE:-package-check}"
out="$PWD/target/deb"
version=$(dpkg-parsechangelog -S Version)
arch=$(dpkg --print-architecture)
deb="$out/vserver_${version}_${arch}.deb"

echo "package: building vserver $version ($VSERVER_CARGO_PROFILE)"
rm -rf "$out" && mkdir -p "$out"
# -d: the toolchain is cargo's, not a Debian package's.
dpkg-buildpackage -b -us -uc -d >"$out/build.log" 2>&1 || { tail -40 "$out/build.log" >&2; echo "package: the build failed" >&2; exit 1; }
for f in ../vserver_"${version}"_"${arch}".{deb,buildinfo,changes} ../vserver-dbgsym_"${version}"_"${arch}".deb; do
    [ -e "$f" ] && mv "$f" "$out/"
done
debian/rules clean >/dev/null 2>&1 || true

echo "package: lintian"
lintian --fail-on error,warning "$deb" 2>&1 | grep -v "running with root privileges" || true
lintian --fail-on error,warning "$deb" >/dev/null 2>&1 || { echo "package: lintian found errors or warnings" >&2; exit 1; }

src="${1:-$(ls -d target/guest-cache/templates/bookworm-systemd-v* 2>/dev/null | tail -1)}"
if [ -z "$src" ] || [ ! -x "$src/usr/bin/apt-get" ]; then
    echo "package: no Debian 12 root to install into (run the heavy suite first, or give one): install test skipped"
    exit 0
fi
root=$(mktemp -d /var/tmp/vserver-package.XXXXXX)
mounted=()
cleanup() {
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[i]}" 2>/dev/null || true; done
    rm -rf "$root"
}
trap cleanup EXIT
echo "package: installing into a copy of $src"
cp -a "$src/." "$root/"
cp /etc/resolv.conf "$root/etc/resolv.conf"
for fs in proc dev; do
    mount --rbind "/$fs" "$root/$fs" && mounted+=("$root/$fs")
done
cp "$deb" "$root/tmp/"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
in_root apt-get update -qq >"$out/apt.log" 2>&1
in_root apt-get install -y -qq --no-install-recommends man-db >>"$out/apt.log" 2>&1 \
    || { tail -30 "$out/apt.log" >&2; echo "package: apt could not install man-db" >&2; exit 1; }
# As an admin installs it: with its recommends (debootstrap, for `vserverctl build --debootstrap`).
in_root apt-get install -y -qq "/tmp/$(basename "$deb")" >>"$out/apt.log" 2>&1 \
    || { tail -30 "$out/apt.log" >&2; echo "package: apt could not install it" >&2; exit 1; }

fail() { echo "package: $*" >&2; exit 1; }
in_root vserverctl --version | grep -q "^vserverctl $version" || fail "vserverctl --version"
in_root vserverd --version | grep -q "^vserverd $version" || fail "vserverd --version"
in_root vserverd --check-config >/dev/null || fail "vserverd --check-config on the installed /etc/vservers"
for page in vserverd.8 vserverctl.1 vserverctl-start.1 vserver.toml.5 chcontext.8 reducecap.8 chbind.8; do
    in_root man -w "${page##*.}" "${page%.*}" >/dev/null || fail "man -w ${page##*.} ${page%.*}"
done
# The units as installed, with their Documentation= pages looked up (man checks on).
in_root systemd-analyze verify --man=yes /lib/systemd/system/vserverd.service /lib/systemd/system/vservers.service \
    >"$out/verify.log" 2>&1 || { cat "$out/verify.log" >&2; fail "systemd-analyze verify --man=yes"; }
[ -L "$root/etc/systemd/system/multi-user.target.wants/vserverd.service" ] || fail "vserverd.service is not enabled"
[ -L "$root/etc/systemd/system/multi-user.target.wants/vservers.service" ] || fail "vservers.service is not enabled"
[ "$(stat -c %a "$root/var/lib/vservers")" = 700 ] || fail "tmpfiles: /var/lib/vservers is not 0700"
grep -qx " */etc/vservers/defaults.toml [0-9a-f]*" <(in_root dpkg-query -W -f='${Conffiles}\n' vserver) || fail "defaults.toml is not a conffile"
in_root dpkg -L vserver | sort >"$out/files"
# The pool of `[user] map = "auto"`: the system user vserver and its subordinate ids.
in_root getent passwd vserver | grep -q ":/usr/sbin/nologin$" || fail "no system user vserver"
for f in subuid subgid; do
    grep -Eq "^vserver:[0-9]+:268435456$" "$root/etc/$f" || fail "/etc/$f has no range for vserver: $(cat "$root/etc/$f")"
done

# The daemon as the units run it, and the admin's first vserver (tests/package-boot.sh). No
# systemd runs here (nor need it be PID 1 on the host): this stands for the boot -
#   - private mount and PID namespaces (unshare --kill-child: whatever happens, ending the
#     namespace's first process kills every process in it, and its mounts go with it), where the
#     root is bound on itself, gets a /proc of its own, /sys (with the cgroup tree) and /dev as
#     the host has them, a tmpfs /run, and becomes the namespace's root (pivot_root, as a booted
#     /: a chroot would not do, see below);
#   - the unit's cgroup (Delegate=yes): a v2 directory of ours, vserver-package-PID.slice/
#     vserverd.service, with every controller the tree has enabled for it; the v1 hierarchies
#     of a hybrid host are used at their roots (vservers/NAME), as the daemon always does.
# What systemd as PID 1 alone would add is not run: Type=notify's READY=1 and WatchdogSec=
# (no NOTIFY_SOCKET is given: the daemon then sends nothing; `vserverctl list` answering stands
# for ready), D-Bus activation (org.vserverd.VServer1.service hands it to systemd:
# SystemdService=), vservers.service at boot, journald (the output goes to a file).
if [ "${VSERVER_PACKAGE_BOOT:-1}" != 0 ]; then
    boot_t0=$(date +%s)
    v2=""
    for m in /sys/fs/cgroup /sys/fs/cgroup/unified; do
        [ "$(stat -f -c %T "$m" 2>/dev/null)" = cgroup2fs ] && { v2="$m"; break; }
    done
    # web1's cgroups in the v1 hierarchies would be another daemon's: refuse rather than touch them.
    for d in /sys/fs/cgroup/*/vservers/web1; do
        [ -e "$d" ] && fail "$d exists: another vserverd runs a web1 on this host"
    done
    v1_parents_before=$(echo $(ls -d /sys/fs/cgroup/*/vservers 2>/dev/null || true))
    mounts_before=$(grep -c " $root[/ ]" /proc/self/mountinfo || true)
    slice=""
    svc=""
    if [ -n "$v2" ]; then
        slice="$v2/vserver-package-$$.slice"
        svc="$slice/vserverd.service"
        mkdir "$slice" "$svc"
        controllers=$(sed 's/[^ ][^ ]*/+&/g' "$slice/cgroup.controllers")
        [ -z "$controllers" ] || echo "$controllers" >"$slice/cgroup.subtree_control"
    fi
    boot_cleanup() {
        # Every process of the namespace is gone with it; the cgroups left (the unit's, the
        # daemon's leaf, the vservers' parents it made) go, the deepest first.
        if [ -n "$slice" ] && [ -d "$slice" ]; then find "$slice" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
        for d in /sys/fs/cgroup/*/vservers; do
            case " $v1_parents_before " in *" $d "*) ;; *) rmdir "$d/web1" "$d" 2>/dev/null || true ;; esac
        done
    }
    trap 'boot_cleanup; cleanup' EXIT
    cp tests/package-boot.sh "$root/tmp/package-boot.sh"
    set +e
    # shellcheck disable=SC2016 # expanded by the namespace's shell
    unshare --mount --pid --fork --kill-child --propagation private sh -c '
        set -e
        root="$1"; shift
        # The root a mount point of its own, as a booted system'"'"'s / is (making / private, and
        # pivot_root into a vserver, need it).
        mount --rbind "$root" "$root"
        mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
        mount --rbind /sys "$root/sys"
        mount --rbind /dev "$root/dev"
        mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs "$root/run"
        # The root becomes the namespace'"'"'s root (pivot_root), as a booted system'"'"'s is: under
        # a plain chroot the namespace'"'"'s root stays the host'"'"'s, and a process entering a
        # vserver with setns(CLONE_NEWNS) is put there (docs/daemon.md).
        cd "$root" && mkdir -p .package-oldroot && pivot_root . .package-oldroot
        umount -l /.package-oldroot && rmdir /.package-oldroot
        exec chroot / env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 sh /tmp/package-boot.sh "$@"
    ' sh "$root" "$svc" "${VSERVER_PACKAGE_MIRROR:-}" 2>&1 | tee "$out/boot.log" | sed -n 's/^boot: /package: /p'
    rc=${PIPESTATUS[0]}
    set -e
    [ "$rc" -eq 0 ] || { tail -20 "$out/boot.log" >&2; fail "the daemon's run in the root failed (see $out/boot.log)"; }
    # Nothing of it is left: no process in the root, no mount, no cgroup.
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" != "$root" ] || fail "process ${p#/proc/} still runs in the root: $(tr '\0' ' ' <"$p/cmdline")"
    done
    [ "$(grep -c " $root[/ ]" /proc/self/mountinfo || true)" = "$mounts_before" ] || fail "mounts left below $root"
    boot_cleanup
    [ -z "$slice" ] || [ ! -d "$slice" ] || fail "cgroups left: $(find "$slice" -type d)"
    for d in /sys/fs/cgroup/*/vservers/web1; do [ ! -e "$d" ] || fail "cgroup left: $d"; done
    echo "package: the daemon's run and web1's build, start and stop took $(($(date +%s) - boot_t0)) s"
    rm -rf "$root/var/lib/vservers/web1" "$root/etc/vservers/web1.toml"
fi

# A vserver's root and configuration: the admin's, never the package's.
mkdir -p "$root/var/lib/vservers/web1/etc" && echo web1 >"$root/var/lib/vservers/web1/etc/hostname"
printf 'context = 1001\n' >"$root/etc/vservers/web1.toml"
in_root apt-get purge -y -qq vserver >"$out/purge.log" 2>&1 || { cat "$out/purge.log" >&2; fail "apt purge"; }
grep -q "/var/lib/vservers is left in place" "$out/purge.log" || fail "purge did not say the roots stay: $(cat "$out/purge.log")"
[ -f "$root/var/lib/vservers/web1/etc/hostname" ] && [ -f "$root/etc/vservers/web1.toml" ] || fail "purge removed a vserver"
left=()
while read -r f; do
    case "$f" in /. | /etc | /lib | /usr | /usr/* | /var | /var/lib | /var/log | /run) [ -d "$root$f" ] && continue ;; esac
    { [ -e "$root$f" ] || [ -L "$root$f" ]; } && [ ! -d "$root$f" ] && left+=("$f")
done <"$out/files"
[ -e "$root/etc/vservers/defaults.toml" ] && left+=(/etc/vservers/defaults.toml)
[ -e "$root/etc/systemd/system/multi-user.target.wants/vserverd.service" ] && left+=(vserverd.service enabled)
in_root getent passwd vserver >/dev/null && left+=("user vserver")
grep -qs "^vserver:" "$root/etc/subuid" "$root/etc/subgid" && left+=("subordinate ids of vserver")
[ "${#left[@]}" -eq 0 ] || fail "purge left: ${left[*]}"
echo "package: built, lint-clean, installed into Debian 12 ($src), ran, and purged leaving only the vservers"
