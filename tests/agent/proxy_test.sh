#!/usr/bin/env bash
# http-proxy: the agent's check-in goes through a real HTTP proxy (tinyproxy, on loopback,
# with a private config and log, Basic auth), to an http server (absolute-form requests)
# and to an https server (CONNECT tunnel, the certificate still checked end to end). A
# proxy that asks for credentials, refuses a tunnel, or is down makes the check fail with
# an error that names the proxy, never its password, and never hangs the agent.
# Runs in a private PID namespace (the agent reads /proc).
# Usage: proxy_test.sh NINES_BINARY
set -euo pipefail
if [ -z "${NINES_PROXY_TEST_IN_PIDNS:-}" ]; then
  exec unshare --pid --fork --mount-proc env NINES_PROXY_TEST_IN_PIDNS=1 "$0" "$@"
fi
NINES="$(realpath "$1")"
command -v tinyproxy >/dev/null || { echo "FAIL: tinyproxy is not installed (scripts/setup)" >&2; exit 1; }
T="$(mktemp -d /tmp/nines-agent-proxy-XXXXXX)"
SERVER=""
TLS_SERVER=""
PROXY=""
cleanup() {
  for p in $PROXY $SERVER $TLS_SERVER; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
cd "$T"
fail() {
  echo "FAIL: $*" >&2
  echo "--- proxy log (tail)" >&2; tail -20 "$T/proxy.log" >&2 || true
  exit 1
}
step() { echo "== $*"; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
# Our own loopback servers only: curl must not go through a proxy from the environment.
export no_proxy='*' NO_PROXY='*'

# --- the proxy: tinyproxy in the foreground, loopback only, Basic auth -------------------
PPORT=$(free_port)
PASSWORD='s3cret'
PROXY_URL="http://nines:s3cr%65t@127.0.0.1:$PPORT"  # percent-encoded: %65 is 'e'
# (tinyproxy's BasicAuth takes only [-a-z0-9._] characters)
PROXY_NOAUTH="http://127.0.0.1:$PPORT"
cat >proxy.conf <<CONF
Port $PPORT
Listen 127.0.0.1
Timeout 30
MaxClients 20
LogFile "$T/proxy.log"
LogLevel Connect
PidFile "$T/proxy.pid"
Allow 127.0.0.1
BasicAuth nines $PASSWORD
CONF
start_proxy() {
  tinyproxy -d -c "$T/proxy.conf" >>"$T/proxy.out" 2>&1 &
  PROXY=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PPORT") 2>/dev/null && return 0
    sleep 0.05
  done
  cat proxy.out >&2
  fail "tinyproxy did not start"
}
stop_proxy() { kill "$PROXY"; wait "$PROXY" 2>/dev/null || true; PROXY=""; }
start_proxy

# agent_check WHAT: one check (`nines agent --once`, bounded: a hang is a failure), then
# prints the status' last_check_result.
agent_check() {
  local rc=0
  timeout 40 "$NINES" agent --once >>"$T/agent.log" 2>&1 || rc=$?
  [ "$rc" -ne 124 ] || fail "$1: the agent hung (killed after 40 s)"
  "$NINES" status --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_check_result"])'
}
# expect_result WHAT RESULT PATTERN...: RESULT contains every PATTERN (fixed strings) and
# never the proxy password.
expect_result() {
  local what="$1" got="$2"; shift 2
  for pat in "$@"; do [[ "$got" == *"$pat"* ]] || fail "$what: expected '$pat' in: $got"; done
  [[ "$got" != *s3cr* ]] || fail "$what: the proxy password shows in: $got"
  echo "   $got"
}
proxy_log_has() { grep -qF "$1" "$T/proxy.log"; }

# --- http server: absolute-form requests through the proxy ------------------------------
mkdir trust
SPORT=$(free_port)
URL="http://127.0.0.1:$SPORT"
"$NINES" serve --listen "127.0.0.1:$SPORT" --data "$T/data" --trust "$T/trust" >serve.log 2>&1 &
SERVER=$!
for _ in $(seq 100); do curl -sf "$URL/v1/health" >/dev/null 2>&1 && break; sleep 0.1; done
[ -f data/admin-token ] || { cat serve.log; fail "server did not start"; }
ENROLL=$("$NINES" admin --server "$URL" --admin-token "$(cat data/admin-token)" token create --tier stable)
export NINES_ROOT="$T/root"
mkdir -p "$NINES_ROOT/etc" && echo proxy-machine >"$NINES_ROOT/etc/machine-id"
"$NINES" config trust-dir="$T/trust" >/dev/null
"$NINES" enable "$ENROLL" --server "$URL" >enable.log 2>&1 || { cat enable.log; fail "enable"; }

step "http: a proxy that wants credentials refuses the check (so the check does use it)"
"$NINES" config http-proxy="$PROXY_NOAUTH" >/dev/null
R=$(agent_check "http, no credentials")
expect_result "http, no credentials" "$R" "error: server unreachable" "HTTP 407" \
  "the proxy requires credentials" "through proxy $PROXY_NOAUTH"

step "http: with credentials the check-in goes through the proxy"
"$NINES" config http-proxy="$PROXY_URL" >/dev/null
R=$(agent_check "http, credentials")
expect_result "http, credentials" "$R" "ok:"
proxy_log_has "POST http://127.0.0.1:$SPORT/v1/checkin HTTP/1.1" ||
  fail "the proxy log shows no check-in to $URL"

step "http: server down behind a working proxy: the proxy's error, naming the proxy"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
R=$(agent_check "http, server down")
expect_result "http, server down" "$R" "error: server unreachable" "HTTP 5" "through proxy $PROXY_NOAUTH"

step "http: proxy down: server unreachable, naming the proxy"
stop_proxy
R=$(agent_check "http, proxy down")
expect_result "http, proxy down" "$R" "error: server unreachable" "proxy $PROXY_NOAUTH unreachable"

step "a malformed http-proxy is refused by nines config, with the reason"
if "$NINES" config http-proxy="http://127.0.0.1" >config.out 2>&1; then
  fail "nines config accepted http-proxy=http://127.0.0.1 (no port)"
fi
grep -q "config: http-proxy: proxy URL 'http://127.0.0.1': no port" config.out ||
  { cat config.out; fail "the refusal does not say the port is missing"; }
"$NINES" config http-proxy="http://u:secret@127.0.0.1" >config.out 2>&1 && fail "accepted a URL without port"
grep -q "secret" config.out && { cat config.out; fail "the refusal shows the proxy password"; }
echo "   refused: $(head -1 config.out)"

# --- https server: a CONNECT tunnel, TLS checked end to end -----------------------------
openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -days 2 \
  -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1" >/dev/null 2>&1
TPORT=$(free_port)
TURL="https://127.0.0.1:$TPORT"
"$NINES" serve --listen "127.0.0.1:$TPORT" --data "$T/tdata" --trust "$T/trust" \
  --tls-cert cert.pem --tls-key key.pem >tserve.log 2>&1 &
TLS_SERVER=$!
for _ in $(seq 100); do curl -sf --cacert cert.pem "$TURL/v1/health" >/dev/null 2>&1 && break; sleep 0.1; done
[ -f tdata/admin-token ] || { cat tserve.log; fail "https server did not start"; }
TENROLL=$("$NINES" admin --server "$TURL" --admin-token "$(cat tdata/admin-token)" --ca-file cert.pem token create --tier stable)
export NINES_ROOT="$T/troot"
mkdir -p "$NINES_ROOT/etc" && echo proxy-tls-machine >"$NINES_ROOT/etc/machine-id"
"$NINES" config trust-dir="$T/trust" ca-certs="$T/cert.pem" >/dev/null
"$NINES" enable "$TENROLL" --server "$TURL" >enable.log 2>&1 || { cat enable.log; fail "enable (https)"; }
start_proxy

step "https: a proxy that wants credentials refuses the tunnel (no hang)"
"$NINES" config http-proxy="$PROXY_NOAUTH" >/dev/null
R=$(agent_check "https, no credentials")
expect_result "https, no credentials" "$R" "error: server unreachable" \
  "proxy $PROXY_NOAUTH refused the tunnel to 127.0.0.1:$TPORT: HTTP 407"

step "https: with credentials the check-in goes through a CONNECT tunnel"
"$NINES" config http-proxy="$PROXY_URL" >/dev/null
R=$(agent_check "https, credentials")
expect_result "https, credentials" "$R" "ok:"
proxy_log_has "CONNECT 127.0.0.1:$TPORT HTTP/1.1" || fail "the proxy log shows no tunnel to $TURL"

step "https: the server certificate is still checked inside the tunnel"
"$NINES" config ca-certs= >/dev/null
R=$(agent_check "https, untrusted certificate")
expect_result "https, untrusted certificate" "$R" "error: server unreachable" "through proxy $PROXY_NOAUTH"
[[ "$R" == *"ok:"* ]] && fail "https through the proxy trusted a self-signed certificate"
"$NINES" config ca-certs="$T/cert.pem" >/dev/null

step "https: server down behind a working proxy: the refused tunnel, no hang"
kill "$TLS_SERVER"; wait "$TLS_SERVER" 2>/dev/null || true; TLS_SERVER=""
R=$(agent_check "https, server down")
expect_result "https, server down" "$R" "error: server unreachable" \
  "proxy $PROXY_NOAUTH refused the tunnel to 127.0.0.1:$TPORT: HTTP 5"

step "https: proxy down: server unreachable, naming the proxy"
stop_proxy
R=$(agent_check "https, proxy down")
expect_result "https, proxy down" "$R" "error: server unreachable" "proxy $PROXY_NOAUTH unreachable"

echo "proxy_test: all checks passed"
