#!/usr/bin/env bash
# Agent costs (issue 7 targets: idle resident memory <= 10 MB, no measurable CPU between
# checks, a check with nothing new <= 50 ms of CPU with 500 processes). Runs a real
# `nines serve`, one published patch applied to 10 target processes, 490 other processes,
# and the agent, all inside a private PID namespace.
# Usage: bench/agent_bench.sh BUILD_DIR [PROCESSES]   (root; needs unshare)
set -euo pipefail
if [ -z "${NINES_AGENT_BENCH_IN_PIDNS:-}" ]; then
  exec unshare --pid --fork --mount-proc env NINES_AGENT_BENCH_IN_PIDNS=1 "$0" "$@"
fi
BUILD="$(cd "$1" && pwd)"
NPROC="${2:-500}"
NINES="$BUILD/src/cli/nines"
ULP="$(cd "$(dirname "$0")/../tests/ulp" && pwd)"
T="$(mktemp -d /tmp/nines-agent-bench-XXXXXX)"
export NINES_ROOT="$T/root"
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
cd "$T"
gcc -O2 -fPIC -shared -Wl,--build-id -o libulptarget.so "$ULP/fixtures/libulptarget.c"
gcc -O2 -o ulptarget "$ULP/fixtures/ulptarget.c" -L. -lulptarget -Wl,-rpath,"$T" -lpthread
"$NINES" build --target libulptarget.so --id fix-lib -o v1.patch "$ULP/patches/lib_v1.c" >/dev/null
"$NINES" keygen -o keys >/dev/null
mkdir trust && cp keys/publisher.pub trust/
cat >v1.toml <<'TOML'
id = "fix-lib"
version = 1
kind = "userspace"
published = "2026-11-01T00:00:00Z"
[[cves]]
id = "CVE-2026-0001"
severity = "critical"
description = "bench"
url = "https://example.org/cve"
TOML
"$NINES" bundle create --patch v1.patch --manifest v1.toml --key keys/publisher.key -o v1.bundle >/dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
"$NINES" serve --listen "127.0.0.1:$PORT" --data "$T/data" --trust "$T/trust" >serve.log 2>&1 &
for _ in $(seq 100); do curl -sf "$URL/v1/health" >/dev/null 2>&1 && break; sleep 0.1; done
ADMIN=$(cat data/admin-token)
ENROLL=$("$NINES" admin --server "$URL" --admin-token "$ADMIN" token create --tier stable)
"$NINES" admin --server "$URL" --admin-token "$ADMIN" publish v1.bundle --tier stable >/dev/null
for i in $(seq 10); do mkfifo "in$i"; ./ulptarget 0 <"in$i" >/dev/null 2>&1 & exec {fd}>"in$i"; done
for i in $(seq $((NPROC - 10))); do sleep 100000 & done
"$NINES" config trust-dir="$T/trust" check-interval=1h >/dev/null
"$NINES" enable "$ENROLL" --server "$URL" >/dev/null
"$NINES" agent >agent.log 2>&1 &
AGENT=$!
for _ in $(seq 100); do [ -S "$NINES_ROOT/run/nines/agent.sock" ] && break; sleep 0.1; done
for _ in $(seq 100); do
  "$NINES" status --format json | grep -q '"state": "applied"' && break; sleep 0.2
done
# A refresh returns when a check has ended: the first one (apply, report with the advisor's
# verdict) is over and its exchange process reaped before the idle measurement starts.
"$NINES" refresh >/dev/null
sleep 3
RSS=$(awk '/VmRSS/ {print $2}' "/proc/$AGENT/status")
PSS=$(awk '/^Pss:/ {print $2}' "/proc/$AGENT/smaps_rollup")
PRIV=$(awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' "/proc/$AGENT/smaps_rollup")
# Where the resident pages are: the largest mappings by object.
TOP=$(awk '/^[0-9a-f]+-/ {n = ($6 == "" ? "[anon]" : $6)} /^Rss:/ {r[n] += $2}
  END {for (n in r) print r[n], n}' "/proc/$AGENT/smaps" | sort -rn | head -12 | sed 's/^/  /')
# CPU of the agent to the nanosecond: the run time of each of its threads (schedstat).
run_ns() { cat /proc/$AGENT/task/*/schedstat | awk '{s += $1} END {print s}'; }
# CPU of its reaped children (the exchange process of each check), in clock ticks.
child_ms() { awk '{print ($16 + $17) * 1000 / '"$(getconf CLK_TCK)"'}' "/proc/$AGENT/stat"; }
# Idle: the only processes created meanwhile are this script's own cat and awk, twice.
N0=$(run_ns); sleep 10; N1=$(run_ns)
A=(); C=()
for i in $(seq 10); do
  a=$(run_ns); c=$(child_ms); "$NINES" refresh >/dev/null; b=$(run_ns); d=$(child_ms)
  A+=("$(awk "BEGIN {printf \"%.1f\", ($b - $a) / 1e6}")"); C+=("$(awk "BEGIN {print $d - $c}")")
done
PATCHED=$("$NINES" status --format json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["targets"][0]["patched"]))')
echo "processes: $NPROC (patched: $PATCHED)"
echo "idle resident memory: RSS $RSS kB, PSS $PSS kB, private $PRIV kB; largest (kB):"
echo "$TOP"
echo "idle CPU over 10 s: $(awk "BEGIN {printf \"%.2f\", ($N1 - $N0) / 1e6}") ms"
echo "CPU per check with nothing new (10 runs): agent ${A[*]} ms;" \
  "exchange process ${C[*]} ms (clock ticks of $((1000 / $(getconf CLK_TCK))) ms)"
echo "  mean per check: $(printf '%s\n' "${A[@]}" | awk '{s += $1} END {printf "%.1f", s / NR}') ms +" \
  "$(printf '%s\n' "${C[@]}" | awk '{s += $1} END {printf "%.1f", s / NR}') ms"
