#!/usr/bin/env bash
# Checks the manual pages: every page (man/*.5, man/*.8, and vserverctl's, generated from its
# command line) formats without a warning; each has EXIT STATUS (but the file format) and SEE
# ALSO; and every option a tool's --help names is in its page, so that they cannot drift.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:-debug}"
bin="target/$(rustc -vV | sed -n 's/^host: //p')/$profile"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

"$bin/vserverctl" generate man "$out" >/dev/null
fail=0
for page in man/*.[58] "$out"/*.1; do
    warnings=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>&1 || true)
    if [ -n "$warnings" ]; then echo "check-man: $page: $warnings" >&2; fail=1; fi
    for section in "SEE ALSO" "EXIT STATUS"; do
        case "$page:$section" in *.5:"EXIT STATUS") continue ;; esac
        # vserverctl's verb pages share the main page's EXIT STATUS and SEE ALSO.
        case "$page" in "$out"/vserverctl-*) continue ;; esac
        grep -q "^\.SH \"\?$section" "$page" || { echo "check-man: $page has no $section" >&2; fail=1; }
    done
done
for tool in vserverd chcontext reducecap chbind; do
    page="man/$tool.8"
    for opt in $("$bin/$tool" --help 2>&1 | grep -o -- '--[a-z][a-z-]*' | sort -u); do
        # In roff a '-' is written '\-'.
        grep -q -- "$(printf '%s' "$opt" | sed 's/-/\\\\-/g')" "$page" || { echo "check-man: $page does not document $opt" >&2; fail=1; }
    done
done
[ "$fail" -eq 0 ] && echo "check-man: every page formats cleanly and documents its options"
exit "$fail"
