#!/usr/bin/env bash
# `nines apply --all` and `nines revert --all`, inside a private PID namespace where the
# processes this test starts are the only ones visible: never touches the machine's own.
set -euo pipefail
NINES=$1 FIX=$2 PATCHES=$3 WORK=$4
mkdir -p "$WORK"
"$NINES" build --target "$FIX/libulptarget.so" -o "$WORK/all.patch" "$PATCHES/lib_v1.c" >/dev/null
exec unshare --pid --fork --mount-proc bash -s "$NINES" "$FIX" "$WORK" <<'INNER'
set -euo pipefail
NINES=$1 FIX=$2 WORK=$3
pids=()
for i in 1 2 3 4 5; do
  mkfifo "$WORK/in$i" 2>/dev/null || true
  # each target reads commands from its fifo and writes answers to a file
  (exec "$FIX/ulptarget_pie" 1 <"$WORK/in$i" >"$WORK/out$i") &
  pids+=($!)
  exec {fd}>"$WORK/in$i"
  eval "fd$i=$fd"
done
sleep 0.5
# A process that does not map the library: must be left alone.
sleep 30 & other=$!
out=$("$NINES" apply "$WORK/all.patch" --all --no-stack-check)
echo "$out"
echo "$out" | grep -q "5 of 5 processes patched"
for i in 1 2 3 4 5; do
  fd=fd$i; echo values >&${!fd}
done
sleep 0.3
for i in 1 2 3 4 5; do
  grep -q "lib=2 other=200" "$WORK/out$i" || { echo "target $i not patched"; cat "$WORK/out$i"; exit 1; }
done
grep -q TracerPid:.0 /proc/$other/status
"$NINES" list --format json | grep -c '"id": "all"' | grep -qx 5
"$NINES" revert all --all --no-stack-check
for i in 1 2 3 4 5; do
  fd=fd$i; echo values >&${!fd}
done
sleep 0.3
for i in 1 2 3 4 5; do
  tail -1 "$WORK/out$i" | grep -q "lib=1 other=100" || { echo "target $i not reverted"; exit 1; }
done
kill "${pids[@]}" "$other" 2>/dev/null || true
echo "apply --all and revert --all in a PID namespace: ok"
INNER
