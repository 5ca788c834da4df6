#!/usr/bin/env bash
# Kernel live patching figures (issue 4):
#   1. build time of a one-function kernel patch (`nines build --kernel`), goal <= 10 s;
#   2. time from `apply` to transition complete inside the VM, 1 and 2 vCPUs.
# Usage: bench/kernel_bench.sh [/path/to/nines] [runs]   (default build/src/cli/nines, 5)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NINES="$(realpath "${1:-$ROOT/build/src/cli/nines}")"
RUNS="${2:-5}"
REL="$(cat "${NINES_KERNEL_CACHE:-/var/cache/nines/kernel}/current")"
T="$(mktemp -d /tmp/nines-kbench-XXXXXX)"
trap 'rm -rf "$T"' EXIT
export NINES_BIN="$NINES"

echo "kernel $REL, $(nproc) host CPUs, $RUNS runs"
times=()
for i in $(seq "$RUNS"); do
  # A fresh id each run, so nothing is cached between builds.
  s=$(date +%s.%N)
  "$NINES" build --kernel "$REL" --id "bench-$i" -o "$T/p$i.patch" "$ROOT/tests/kernel/patches/cmdline_v1.c" >/dev/null
  e=$(date +%s.%N)
  times+=("$(awk -v s="$s" -v e="$e" 'BEGIN {printf "%.3f", e - s}')")
done
printf 'build, one-function patch (s):'; printf ' %.2f' "${times[@]}"; echo
printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "build median: %.2f s\n", a[int((NR+1)/2)]}'

cp "$T/p1.patch" "$T/bench.patch"
for cpus in 1 2; do
  out="$("$ROOT/scripts/vm-run" --cpus "$cpus" --file "$T/bench.patch" -- "
    for i in \$(seq $RUNS); do
      nines kernel apply $T/bench.patch | grep -o 'transition complete in [0-9.]* s (module load [0-9.]* s)'
      nines kernel revert bench-1 >/dev/null
    done")"
  echo "$out" | sed "s/^/apply, ${cpus} vCPU: /"
  echo "$out" | grep -o 'complete in [0-9.]*' | awk '{print $3}' | sort -n |
    awk -v c="$cpus" '{a[NR]=$1} END {printf "apply->transition complete, %d vCPU, median: %.3f s\n", c, a[int((NR+1)/2)]}'
done
