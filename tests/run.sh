#!/usr/bin/env bash
# The whole test suite, as root: unit tests, D-Bus tests over a private bus, and end-to-end
# tests that build real vservers (busybox-static roots, namespaces, mounts) and check them
# from inside with a static probe.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "tests/run.sh: the end-to-end tests need root" >&2
    exit 1
fi

# The probe runs inside busybox roots, so it must be a static binary.
RUSTFLAGS='-C target-feature=+crt-static' cargo build --quiet -p vserver-probe --release \
    --target x86_64-unknown-linux-gnu --target-dir target/probe
export VSERVER_PROBE="$PWD/target/probe/x86_64-unknown-linux-gnu/release/vserver-probe"

cargo build --quiet --workspace --bins
./tests/verify-units.sh debug
./tests/check-man.sh debug
cargo test --workspace -- --test-threads=2
# The end-to-end suite once more with every vserver in a user namespace of its own: every plan
# of the engine's tests, every configuration of the daemon's (`[user] map = "auto"`, the daemon
# given a pool of the test's own; tests/e2e/src/lib.rs and daemon.rs).
VSERVER_E2E_USERNS=1 cargo test -p vserver-e2e -- --test-threads=2

# The Debian package: built, linted, and (heavy: into the guests' cached Debian 12 root, made by
# the tests above) installed, run and purged.
if [ -n "${VSERVER_HEAVY:-}" ]; then
    ./tests/package.sh
fi

# The fuzz stage (tests/fuzz, docs/daemon.md "Fuzzing"): every fuzz target for that many seconds.
if [ -n "${VSERVER_FUZZ_SECONDS:-}" ]; then
    ./tests/fuzz/run.sh "$VSERVER_FUZZ_SECONDS"
fi
