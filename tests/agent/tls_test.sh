#!/usr/bin/env bash
# ca-certs: against an https patch server with a self-signed certificate, enable fails
# naming the TLS problem until ca-certs names that certificate; then `nines agent --once`
# checks in over TLS. Runs in a private PID namespace (the agent reads /proc).
# Usage: tls_test.sh NINES_BINARY
set -euo pipefail
if [ -z "${NINES_TLS_TEST_IN_PIDNS:-}" ]; then
  exec unshare --pid --fork --mount-proc env NINES_TLS_TEST_IN_PIDNS=1 "$0" "$@"
fi
NINES="$1"
T="$(mktemp -d /tmp/nines-agent-tls-XXXXXX)"
export NINES_ROOT="$T/root"
SERVER=""
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$T"
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1
mkdir trust
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="https://127.0.0.1:$PORT"
"$NINES" serve --listen "127.0.0.1:$PORT" --data "$T/data" --trust "$T/trust" \
  --tls-cert cert.pem --tls-key key.pem >serve.log 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -sf --cacert cert.pem "$URL/v1/health" >/dev/null 2>&1 && break; sleep 0.1; done
[ -f data/admin-token ] || { cat serve.log; fail "server did not start"; }
ADMIN=$(cat data/admin-token)
ENROLL=$("$NINES" admin --server "$URL" --admin-token "$ADMIN" --ca-file cert.pem token create --tier stable)
mkdir -p "$NINES_ROOT/etc" && echo tls-machine >"$NINES_ROOT/etc/machine-id"
"$NINES" config trust-dir="$T/trust" >/dev/null
if "$NINES" enable "$ENROLL" --server "$URL" >out.txt 2>&1; then fail "enable trusted a self-signed server"; fi
grep -qi "enroll machine tls-machine at $URL" out.txt || { cat out.txt; fail "enable error does not name the operation"; }
"$NINES" config ca-certs="$T/cert.pem" >/dev/null
"$NINES" enable "$ENROLL" --server "$URL" >out.txt 2>&1 || { cat out.txt; fail "enable with ca-certs"; }
"$NINES" agent --once >agent.log 2>&1 || { cat agent.log; fail "agent --once"; }
"$NINES" status --format json | python3 -c '
import json,sys; s=json.load(sys.stdin)
assert s["last_check_result"].startswith("ok"), s["last_check_result"]
assert s["tier"] == "stable", s["tier"]' || fail "check over TLS"
echo "tls_test: all checks passed"
