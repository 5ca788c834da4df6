#!/usr/bin/env bash
# User-space live patching benchmarks (results go to docs/PERFORMANCE.md):
#   1. stop window for 1, 4, 16, 64, 256 busy threads (median and p90 of 50 applies)
#   2. extra cost of a patched call (identical body: only the redirect differs)
#   3. 1,000 small processes patched by one `nines apply --all`, in a private PID namespace
# Usage: bench/ulp_bench.sh [BUILD_DIR]   (build the `ulp_stop_window ulp_bench_busy
# ulp_bench_callcost nines` targets first; run as root)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
B="$(cd "${1:-$ROOT/build}" && pwd)"
NINES="$B/src/cli/nines"
LIB="$B/tests/ulp/fixtures/libulptarget.so"
W=$(mktemp -d /tmp/nines-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
"$NINES" build --target "$LIB" -o "$W/v1.patch" "$ROOT/tests/ulp/patches/lib_v1.c" >/dev/null
"$NINES" build --target "$LIB" -o "$W/identity.patch" "$ROOT/bench/ulp/identity.c" >/dev/null

echo "== machine: $(nproc) cores, $(uname -r), load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 1. stop window (microseconds), ${RUNS:-50} applies + reverts per row"
RUNS=${RUNS:-50} "$B/bench/ulp_stop_window" "$B/bench/ulp_bench_busy" "$W/v1.patch" ${THREADS:-1 4 16 64 256}

echo "== 2. cost of a patched call (ns per call, best of 5 x 5e7 calls)"
coproc CC { exec "$B/bench/ulp_bench_callcost"; }
read -r ready <&"${CC[0]}"
echo measure >&"${CC[1]}"; read -r before <&"${CC[0]}"
"$NINES" apply "$W/identity.patch" --pid "$CC_PID" >/dev/null
echo measure >&"${CC[1]}"; read -r after <&"${CC[0]}"
kill "$CC_PID"
echo "unpatched ${before} ns, patched ${after} ns, difference $(echo "$after - $before" | bc -l) ns"

echo "== 3. one nines apply --all over ${PROCS:-1000} processes in a private PID namespace"
unshare --pid --fork --mount-proc bash -s "$NINES" "$B/bench/ulp_bench_busy" "$W/v1.patch" "${PROCS:-1000}" <<'INNER'
set -euo pipefail
NINES=$1 BUSY=$2 PATCH=$3 N=$4
for i in $(seq "$N"); do "$BUSY" 0 >/dev/null & done
sleep 2
start=$(date +%s.%N)
out=$("$NINES" apply "$PATCH" --all)
end=$(date +%s.%N)
echo "$out" | tail -1
echo "total $(echo "$end - $start" | bc -l) s for $N processes"
INNER
