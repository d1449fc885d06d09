#!/usr/bin/env bash
# The Debian package, as an admin gets it: built with debhelper (debian/), linted (lintian: no
# error and no warning, but the overrides debian/vserver.lintian-overrides justifies), then,
# given a Debian 12 root, installed there with apt, run, and purged:
#   - vserverctl --version, vserverd --check-config and man -w for every page work, and
#     systemd-analyze verify with its man checks passes on the installed units;
#   - the units are enabled, the tmpfiles made, /etc/vservers/defaults.toml is a conffile;
#   - apt purge leaves no file of the package, and leaves the vservers' roots, saying so.
#
#   tests/package.sh [ROOT]   ROOT: a Debian 12 root to copy and install into (default: the
#                             heavy suite's cached guest root; without one, the install is skipped)
# Environment: VSERVER_CARGO_PROFILE (default package-check, a quicker release build).
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
in_root apt-get install -y -qq --no-install-recommends man-db "/tmp/$(basename "$deb")" >>"$out/apt.log" 2>&1 \
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
[ "${#left[@]}" -eq 0 ] || fail "purge left: ${left[*]}"
echo "package: built, lint-clean, installed into Debian 12 ($src), ran, and purged leaving only the vservers"
