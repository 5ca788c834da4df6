#!/usr/bin/env bash
# Kernel patch generation figures (issue 14):
#   1. the first build of a release: fetch linux-source-6.1, copy, olddefconfig,
#      modules_prepare, then one one-file fix (goal <= 10 minutes on 2 cores);
#   2. every later build of a one-file fix (goal <= 60 s).
# Wall-clock and CPU (user+sys of nines and its children) are both printed: the host is
# shared, so the wall clock depends on what else runs.
# Usage: bench/kgen_bench.sh [/path/to/nines] [runs] [--first]
#   --first: also measure the first build, in a fresh cache (NINES_KGEN_CACHE and
#            NINES_KERNEL_SOURCE_CACHE under /var/tmp; removed afterwards).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
NINES="$(realpath "${1:-$ROOT/build/src/cli/nines}")"
RUNS="${2:-3}"
FIRST="${3:-}"
REL="$(cat "${NINES_KERNEL_CACHE:-/var/cache/nines/kernel}/current")"
FIX="$ROOT/tests/kernel/fixes/cmdline_show.patch"
T="$(mktemp -d /tmp/nines-kgbench-XXXXXX)"
trap 'rm -rf "$T"' EXIT

run() {  # run LABEL: one generation, prints wall and cpu seconds
  /usr/bin/time -f "%e %U %S" -o "$T/time" "$NINES" build --kernel "$REL" --source deb: \
    --diff "$FIX" -o "$T/out.patch" >"$T/log" 2>&1 || { cat "$T/log"; exit 1; }
  read -r wall user sys <"$T/time"
  printf '%s: wall %.1f s, cpu %.1f s (%s)\n' "$1" "$wall" "$(echo "$user + $sys" | bc)" \
    "$(head -n1 "$T/log")"
}

echo "kernel $REL, $(nproc) host CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$FIRST" = "--first" ]; then
  C="$(mktemp -d /var/tmp/nines-kgbench-cache-XXXXXX)"
  NINES_KGEN_CACHE="$C/kgen" NINES_KERNEL_SOURCE_CACHE="$C/src" run "first build (fetch + prepare + fix)"
  rm -rf "$C"
fi
for i in $(seq "$RUNS"); do run "one-file fix, run $i"; done
