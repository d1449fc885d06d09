#!/usr/bin/env bash
# Checks the systemd units and the tmpfiles.d file offline, in a scratch root that holds the
# built binaries where the units expect them (no systemd as PID 1 is needed); then the bus
# policy and the polkit actions against their DTDs (libxml2-utils, and polkitd for its DTD).
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-debug}"
# Binaries are built for the host triple (.cargo/config.toml).
bin="target/$(rustc -vV | sed -n 's/^host: //p')/$profile"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root/usr/lib/systemd"
cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
install -D -m755 /bin/kill "$root/bin/kill"
install -D -m755 "$bin/vserverd" "$root/usr/sbin/vserverd"
install -D -m755 "$bin/vserverctl" "$root/usr/bin/vserverctl"
for u in vserverd.service vservers.service; do
    install -D -m644 "systemd/$u" "$root/etc/systemd/system/$u"
done
systemd-analyze verify --man=no --recursive-errors=yes --root="$root" \
    "$root/etc/systemd/system/vserverd.service" "$root/etc/systemd/system/vservers.service"
systemd-tmpfiles --root="$root" --create "$PWD/systemd/vserver.tmpfiles.conf"
for d in run/vservers var/lib/vservers; do
    [ "$(stat -c %a "$root/$d")" = 700 ] || { echo "verify-units: $d is not 0700" >&2; exit 1; }
done
xmllint --noout --nonet systemd/org.vserverd.VServer1.conf
# Without its DOCTYPE, whose DTD is on the network: validated against polkit's installed copy.
sed '/<!DOCTYPE/,/>/d' systemd/org.vserverd.VServer1.policy |
    xmllint --noout --nonet --dtdvalid /usr/share/polkit-1/policyconfig-1.dtd -
echo "verify-units: vserverd.service, vservers.service, vserver.tmpfiles.conf and the polkit actions are valid"
