#!/usr/bin/env bash
# The same machine state checked by needrestart (`needrestart -b -r l`) and by
# `nines check --format batch`: both must find the same stale processes.
# ctest runs it as PID 1 of `unshare --pid --fork --mount-proc`. The test processes run as
# nobody and needrestart runs as nobody too: in user mode it prints one NEEDRESTART-PID
# line per stale process (in root mode it only names services, and there are none here),
# which nines prints for processes outside any unit. needrestart ignores mappings under
# /tmp and /run, so the libraries live in WORKDIR (the build tree).
# Usage: needrestart_compare_test.sh NINES HOLDER TESTLIB WORKDIR; exit 77 = skipped.
set -uo pipefail
NINES=$(readlink -f "$1") HOLDER=$(readlink -f "$2") LIB=$(readlink -f "$3") WORK=$4
command -v needrestart >/dev/null || { echo "skip: needrestart is not installed"; exit 77; }
command -v setpriv >/dev/null || { echo "skip: setpriv is not installed"; exit 77; }
if [ "$$" != 1 ]; then echo "needrestart_compare_test: must run as PID 1 of a private PID namespace" >&2; exit 1; fi

# needrestart also ignores (/var)/tmp and (/var)/run: a checkout under /tmp (a CI clone)
# must not make its mappings invisible to needrestart.
mkdir -p "$WORK"
if [[ "$(readlink -f "$WORK")" =~ ^(/var)?/(tmp|run)/ ]]; then
  WORK=/var/cache/nines-tests
  mkdir -p "$WORK"
fi
T=$(mktemp -d "$WORK/nr-compare-XXXXXX")
chmod 755 "$T"
trap 'exec 8>&- 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }

mkfifo -m 666 "$T/fifo"
start() {  # start NAME PROGRAM LIB...: a holder running as nobody
  local name=$1; shift
  as_nobody "$@" <"$T/fifo" >"$T/$name.out" 8>&- &
  [ -e /proc/self/fd/8 ] || exec 8>"$T/fifo"
  for _ in $(seq 100); do grep -q ready "$T/$name.out" 2>/dev/null && return 0; sleep 0.05; done
  echo "holder $name did not start"; exit 1
}
for n in current replaced deleted spaced; do cp "$LIB" "$T/lib$n.so"; done
mkdir "$T/with space" && mv "$T/libspaced.so" "$T/with space/lib spaced.so"
cp "$HOLDER" "$T/holder-copy"
cp "$HOLDER" "$T/holder" && HOLDER="$T/holder"
chmod -R a+rX "$T"
start current "$HOLDER" "$T/libcurrent.so"
start replaced "$HOLDER" "$T/libreplaced.so" "$T/libcurrent.so"
start deleted "$HOLDER" "$T/libdeleted.so"
start spaced "$HOLDER" "$T/with space/lib spaced.so"
start exe "$T/holder-copy" "$T/libcurrent.so"

cp "$T/libreplaced.so" "$T/x" && mv "$T/x" "$T/libreplaced.so"
rm "$T/libdeleted.so"
cp "$T/with space/lib spaced.so" "$T/x" && mv "$T/x" "$T/with space/lib spaced.so"
cp "$T/holder-copy" "$T/x" && mv "$T/x" "$T/holder-copy"

pids_of() { grep '^NEEDRESTART-PID: ' | sed 's/^NEEDRESTART-PID: [^=]*=//' | tr ',' '\n' | sort -n | tr '\n' ' '; }
nr=$(cd / && as_nobody needrestart -b -r l 2>"$T/nr.err")
ni=$("$NINES" check --format batch 2>"$T/ni.err")
nr_pids=$(pids_of <<<"$nr")
ni_pids=$(pids_of <<<"$ni")
echo "needrestart: $nr_pids"
echo "nines:       $ni_pids"
if [ -z "$nr_pids" ] || [ "$nr_pids" != "$ni_pids" ]; then
  echo "FAIL: different stale processes"
  echo "--- needrestart:"; echo "$nr"; cat "$T/nr.err"
  echo "--- nines:"; echo "$ni"; cat "$T/ni.err"
  exit 1
fi
[ "$(wc -w <<<"$ni_pids")" = 4 ] || { echo "FAIL: expected 4 stale processes, got $ni_pids"; exit 1; }
echo "ok: needrestart and nines found the same 4 stale processes"
