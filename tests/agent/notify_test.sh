#!/usr/bin/env bash
# systemd integration without systemd: the agent sends READY=1 on $NOTIFY_SOCKET once it
# serves its socket, WATCHDOG=1 at least every WATCHDOG_USEC/2, and STOPPING=1 on SIGTERM;
# status answers while it is not enabled. Usage: notify_test.sh NINES_BINARY
set -euo pipefail
NINES="$1"
T="$(mktemp -d /tmp/nines-notify-XXXXXX)"
AGENT=""
LISTENER=""
cleanup() {
  for p in $AGENT $LISTENER; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; cat "$T/notify.log" "$T/agent.log" >&2 || true; exit 1; }
python3 - "$T/notify.sock" >"$T/notify.log" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(10)
end = time.time() + 10
while time.time() < end:
    try:
        m = s.recv(4096).decode()
    except socket.timeout:
        break
    print(f"{time.time():.3f} {m.replace(chr(10), ' ')}", flush=True)
PY
LISTENER=$!
for _ in $(seq 50); do [ -S "$T/notify.sock" ] && break; sleep 0.1; done
NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=1000000 "$NINES" agent --root "$T/root" >"$T/agent.log" 2>&1 &
AGENT=$!
for _ in $(seq 50); do grep -q "READY=1" "$T/notify.log" && break; sleep 0.1; done
grep -q "READY=1" "$T/notify.log" || fail "no READY=1"
[ -S "$T/root/run/nines/agent.sock" ] || fail "READY before the control socket exists"
[ "$(stat -c %a "$T/root/run/nines/agent.sock")" = 600 ] || fail "control socket is not 0600"
"$NINES" status --root "$T/root" | grep -q "enabled:     no" || fail "status while disabled"
sleep 2.2
n=$(grep -c "WATCHDOG=1" "$T/notify.log" || true)
[ "$n" -ge 3 ] || fail "only $n watchdog pings in 2.2 s with WATCHDOG_USEC=1s"
kill "$AGENT"; wait "$AGENT" || fail "agent exit status on SIGTERM"; AGENT=""
sleep 0.2
grep -q "STOPPING=1" "$T/notify.log" || fail "no STOPPING=1"
[ ! -e "$T/root/run/nines/agent.sock" ] || fail "socket left behind"
echo "notify_test: all checks passed"
