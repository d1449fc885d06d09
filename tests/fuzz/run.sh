#!/usr/bin/env bash
# The fuzz stage: builds every fuzz target of tests/fuzz (cargo-fuzz, libFuzzer, on the stable
# toolchain: no sanitizer, coverage instrumentation only) and runs each for SECONDS, starting
# from its seed corpus (corpus/TARGET). Exits non-zero when a target crashes (a panic, a failed
# assertion, a hang past 10 s, 2 GiB of memory), and prints the input that did it and the
# command that replays it.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]   run (all targets when none is named)
#   tests/fuzz/run.sh --install             install the pinned cargo-fuzz when it is missing
#
# Environment: VSERVER_FUZZ_JOBS (targets run at once; default: the number of CPUs),
# VSERVER_FUZZ_TARGET_DIR (the build's target directory; default tests/fuzz/target).
# New inputs that a run finds stay in the target directory (…/corpus/TARGET), not in the tree.
set -euo pipefail
cd "$(dirname "$0")/../.."

CARGO_FUZZ_VERSION=0.13.2
fuzz_dir=tests/fuzz

install() {
    if cargo fuzz --version 2>/dev/null | grep -qx "cargo-fuzz $CARGO_FUZZ_VERSION"; then
        return
    fi
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
    cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
}

if [ "${1:-}" = "--install" ]; then
    install
    exit 0
fi
secs="${1:?usage: tests/fuzz/run.sh SECONDS [TARGET...] | --install}"
shift
case "$secs" in
    '' | *[!0-9]*) echo "fuzz: SECONDS must be a whole number, not '$secs'" >&2; exit 2 ;;
esac
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: cargo-fuzz is missing: tests/fuzz/run.sh --install (cargo install --locked cargo-fuzz --version $CARGO_FUZZ_VERSION)" >&2
    exit 2
fi

target_dir="${VSERVER_FUZZ_TARGET_DIR:-$PWD/$fuzz_dir/target}"
# The flags of every cargo-fuzz call here: the build is the same each time, and a second call
# builds nothing.
flags=(--fuzz-dir "$fuzz_dir" --sanitizer none --codegen-units 16 --target-dir "$target_dir")
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list --fuzz-dir "$fuzz_dir")
fi

started=$(date +%s)
mkdir -p "$target_dir"
echo "fuzz: building ${targets[*]}"
cargo fuzz build "${flags[@]}" >"$target_dir/fuzz-build.log" 2>&1 || {
    cat "$target_dir/fuzz-build.log" >&2
    echo "fuzz: the build failed" >&2
    exit 1
}
built=$(date +%s)
echo "fuzz: built in $((built - started)) s; running each target for $secs s, ${VSERVER_FUZZ_JOBS:-$(nproc)} at a time"

logs="$target_dir/fuzz-logs"
mkdir -p "$logs"
bin_dir="$target_dir/$(rustc -vV | sed -n 's/^host: //p')/release"
run_one() {
    local t=$1 work="$target_dir/corpus/$1" art="$target_dir/artifacts/$1/" seeds=() dict=()
    mkdir -p "$work" "$art"
    [ -d "$fuzz_dir/corpus/$t" ] && seeds=("$fuzz_dir/corpus/$t")
    [ -f "$fuzz_dir/dict/$t.dict" ] && dict=(-dict="$fuzz_dir/dict/$t.dict")
    # The built target itself, not `cargo fuzz run`, which would write what it finds into the
    # seed directory: new inputs go to the first directory, the seeds are only read.
    "$bin_dir/$t" "$work" "${seeds[@]}" "${dict[@]}" \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$art" -print_final_stats=1 \
        >"$logs/$t.log" 2>&1
}

jobs_max="${VSERVER_FUZZ_JOBS:-$(nproc)}"
declare -A pid_of
for t in "${targets[@]}"; do
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do
        wait -n || true
    done
    run_one "$t" &
    pid_of[$t]=$!
done

passed=0
failed=0
printf 'fuzz: %-10s %12s %10s %6s %7s %7s\n' target runs exec/s cov features corpus
for t in "${targets[@]}"; do
    status=0
    wait "${pid_of[$t]}" || status=$?
    log="$logs/$t.log"
    final_stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$done_line")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$done_line")
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$done_line")
    runs=$(final_stat number_of_executed_units)
    per_sec=$(final_stat average_exec_per_sec)
    if [ "$status" -eq 0 ] && [ -n "$done_line" ]; then
        passed=$((passed + 1))
        printf 'fuzz: %-10s %12s %10s %6s %7s %7s\n' "$t" "${runs:-?}" "${per_sec:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}"
    else
        failed=$((failed + 1))
        echo "fuzz: $t FAILED (exit $status); its log: $log" >&2
        grep -E "panicked at|^assertion|left:|right:|ERROR: libFuzzer|SUMMARY" "$log" | head -12 >&2 || true
        input=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        if [ -n "$input" ]; then
            echo "fuzz: $t: the crashing input is $input" >&2
            echo "fuzz: replay it with: $bin_dir/$t $input" >&2
            echo "fuzz:   (or: cargo fuzz run ${flags[*]} $t $input)" >&2
        else
            tail -20 "$log" >&2
        fi
    fi
done
echo "fuzz: $((passed + failed)) targets in $(($(date +%s) - started)) s (build $((built - started)) s)"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
