#!/usr/bin/env bash
# Runs the advisor benchmark (bench/advisor_scan.cc) in a private PID namespace, against
# needrestart on the same state. Usage: bench/advisor_bench.sh [BUILD_DIR] [extra args]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
shift || true
work=$(mktemp -d "$build/advisor-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
exec_args=(--dir "$work" --nines "$build/src/cli/nines" "$@")
command -v needrestart >/dev/null || exec_args=(--dir "$work" "$@")
unshare --pid --fork --mount-proc "$build/tests/advisor/advisor_bench" "${exec_args[@]}"
