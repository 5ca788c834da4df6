#!/usr/bin/env bash
# nines serve + nines admin end to end with the real binary: first start prints the admin
# token once and writes it 0600; token create, publish (refused when untrusted, accepted
# when trusted), promote, machines; a machine enrolls and checks in with curl; a second
# start prints no new token. Usage: cli_e2e.sh NINES_BINARY
set -euo pipefail
NINES="$1"
WORK=$(mktemp -d /tmp/nines-serve-e2e.XXXXXX)
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
cd "$WORK"

start_server() {
  "$NINES" serve --listen 127.0.0.1:0 --data "$WORK/data" --trust "$WORK/trust" >"$1" 2>"$1.err" &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    grep -q "listening on" "$1" 2>/dev/null && break
    sleep 0.1
  done
  URL=$(grep -o "http://127.0.0.1:[0-9]*" "$1" || true)
  [ -n "$URL" ] || { cat "$1" "$1.err" >&2; fail "server did not start"; }
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""; }

# A patch object: any ELF object with a .nines.meta section.
BUILD_ID=0123456789abcdef0123456789abcdef01234567
echo 'int fixed(int x) { return x + 1; }' >fix.c
gcc -c -o fix.o fix.c
cat >meta.json <<JSON
{"format":1,"kind":"userspace","id":"fix-libdemo","target":{"name":"libdemo.so.1","build_id":"$BUILD_ID"},"functions":[{"name":"f","replacement":"fixed"}]}
JSON
objcopy --add-section .nines.meta=meta.json fix.o fix.patch
cat >fix.toml <<'TOML'
id = "fix-libdemo"
version = 1
kind = "userspace"
description = "demo fix"
published = "2026-11-01T00:00:00Z"
[[cves]]
id = "CVE-2026-4242"
severity = "high"
description = "demo flaw"
url = "https://example.org/CVE-2026-4242"
TOML
"$NINES" keygen -o keys >/dev/null
"$NINES" bundle create --patch fix.patch --manifest fix.toml --key keys/publisher.key -o fix.bundle >/dev/null
mkdir trust
"$NINES" keygen -o otherkeys >/dev/null
cp otherkeys/publisher.pub trust/other.pub   # the server trusts another publisher only

start_server serve1.out
grep -q "^admin token (shown once" serve1.out || fail "first start did not print the admin token"
[ "$(stat -c %a data/admin-token)" = 600 ] || fail "admin-token is not mode 0600"
ADMIN=$(cat data/admin-token)
grep -q "$ADMIN" serve1.out || fail "printed token differs from the file"
A=("$NINES" admin --server "$URL" --admin-token "$ADMIN")

# Untrusted publisher: refused, naming the cause.
if "${A[@]}" publish fix.bundle --tier canary 2>err.txt; then fail "untrusted bundle was accepted"; fi
grep -q "untrusted" err.txt || { cat err.txt >&2; fail "refusal does not say untrusted"; }
cp keys/publisher.pub trust/
"${A[@]}" publish fix.bundle --tier canary | grep -q "^stored fix-libdemo version 1" || fail "publish"
"${A[@]}" publish fix.bundle | grep -q "^identical" || fail "second publish is not identical"
"${A[@]}" promote fix-libdemo 1 --tier stable | grep -q "promoted fix-libdemo version 1 to stable" || fail "promote"
if "${A[@]}" promote nope 1 --tier stable 2>err.txt; then fail "promote of unknown bundle succeeded"; fi
grep -q "no such bundle" err.txt || fail "promote error does not name the cause"

ENROLL=$("${A[@]}" token create --tier canary --name lab)
[[ "$ENROLL" == n9e_* ]] || fail "enroll token has the wrong shape: $ENROLL"
MACHINE=$(curl -sf -H "Authorization: Bearer $ENROLL" -d '{"machine_id":"lab-1"}' "$URL/v1/enroll" |
          python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
OFFER=$(curl -sf -H "Authorization: Bearer $MACHINE" \
  -d "{\"arch\":\"x86_64\",\"kernel_release\":\"6.1.0-28-cloud-amd64\",\"build_ids\":[\"$BUILD_ID\"]}" "$URL/v1/checkin")
SHA=$(echo "$OFFER" | python3 -c 'import json,sys; b=json.load(sys.stdin)["bundles"]; assert len(b)==1; print(b[0]["sha256"])')
curl -sf -H "Authorization: Bearer $MACHINE" "$URL/v1/bundles/sha256/$SHA" -o got.bundle
cmp -s got.bundle fix.bundle || fail "downloaded bundle differs"
"$NINES" bundle verify got.bundle --trust trust >/dev/null || fail "downloaded bundle does not verify"

"${A[@]}" machines | grep -q "^lab-1 .*canary .*pending" || { "${A[@]}" machines; fail "machines table"; }
"${A[@]}" machines --format json | python3 -c 'import json,sys; m=json.load(sys.stdin); assert m[0]["machine_id"]=="lab-1" and m[0]["offered"]==1, m'
if "$NINES" admin --server "$URL" --admin-token "$ENROLL" machines 2>err.txt; then fail "enroll token listed machines"; fi
grep -q "HTTP 403" err.txt || fail "enroll token was not refused with 403"

# Tokens: listed by id (never the token), revoked by id, created with an expiry.
"${A[@]}" token list | grep -q "^[0-9a-f]\{16\} enroll  canary .* lab " || { "${A[@]}" token list; fail "token list"; }
if "${A[@]}" token list | grep -q "n9"; then fail "token list shows a token"; fi
MIRROR=$("${A[@]}" token create --kind mirror --name site-b --expires 2d)
MIRROR_ID=$("${A[@]}" token list --format json |
            python3 -c 'import json,sys; print([t["id"] for t in json.load(sys.stdin) if t["name"]=="site-b"][0])')
"${A[@]}" token list | grep "^$MIRROR_ID " | grep -q "mirror" || fail "the mirror token is not listed"
curl -sf -H "Authorization: Bearer $MIRROR" "$URL/v1/bundles" >/dev/null || fail "mirror token refused"
"${A[@]}" token revoke "$MIRROR_ID" | grep -q "revoked token $MIRROR_ID (mirror, site-b)" || fail "token revoke"
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $MIRROR" "$URL/v1/bundles")" = 401 ] ||
  fail "a revoked token is still accepted"
if "${A[@]}" token create --kind mirror --expires soon 2>err.txt; then fail "--expires soon accepted"; fi

# Files that hold secrets are the server's alone.
for f in data/nines.db data/admin-token data/timestamp.key; do
  [ "$(stat -c %a "$f")" = 600 ] || fail "$f is mode $(stat -c %a "$f"), not 0600"
done
[ -f data/timestamp.pub ] || fail "no timestamp.pub beside timestamp.key"
grep -q "timestamp key created: $WORK/data/timestamp.key" serve1.out || fail "the timestamp key path was not printed"

stop_server
start_server serve2.out
if grep -q "admin token" serve2.out; then fail "second start printed a new admin token"; fi
if grep -q "timestamp key created" serve2.out; then fail "second start made a new timestamp key"; fi
"$NINES" admin --server "$URL" --admin-token "$ADMIN" machines | grep -q "^lab-1 " || fail "state lost across restart"
echo "PASS: serve/admin end to end"
