#!/usr/bin/env bash
# The agent end to end: a real `nines serve` on loopback, signed bundles built with
# `nines build` against tests/ulp's libulptarget.so, and the agent together with its target
# processes inside a private PID namespace (the agent never sees this machine's processes).
# Covers: severity threshold, mode no-apply, cut-off date, patch delay, check-interval,
# config picked up without restart, a new process patched within 1 s, restart reconciles
# (nothing applied twice; a process started while the agent was down gets patched), kill -9
# mid-apply (interrupted, not retried, reported; --retry applies it), killed between two
# writes of a switch (rolled back at the next start), server down and back,
# status in humane/json/yaml, `disable` reverts everything.
# Usage: agent_e2e.sh NINES_BINARY TESTS_ULP_DIR
set -euo pipefail
if [ -z "${NINES_AGENT_E2E_IN_PIDNS:-}" ]; then
  exec unshare --pid --fork --mount-proc env NINES_AGENT_E2E_IN_PIDNS=1 "$0" "$@"
fi
NINES="$1"
ULP="$2"
T="$(mktemp -d /tmp/nines-agent-e2e-XXXXXX)"
export NINES_ROOT="$T/root"
PIDS=()
SERVER_PID=""
AGENT_PID=""
cleanup() {
  for p in $AGENT_PID $SERVER_PID "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP:-}" ]; then echo "kept $T"; else rm -rf "$T"; fi
}
trap cleanup EXIT
cd "$T"
fail() {
  echo "FAIL: $*" >&2
  echo "--- agent log (tail)" >&2; tail -30 "$T"/agent*.log >&2 || true
  echo "--- status" >&2; "$NINES" status --verbose >&2 || true
  exit 1
}
step() { echo "== $*"; }

# --- targets, patches, keys, bundles --------------------------------------------------
gcc -O2 -fPIC -shared -Wl,--build-id -o libulptarget.so "$ULP/fixtures/libulptarget.c"
gcc -O2 -Wl,--build-id -o ulptarget "$ULP/fixtures/ulptarget.c" -L. -lulptarget -Wl,-rpath,"$T" -lpthread
"$NINES" build --target libulptarget.so --id fix-lib -o v1.patch "$ULP/patches/lib_v1.c" >/dev/null
"$NINES" build --target libulptarget.so --id fix-lib -o v2.patch "$ULP/patches/lib_v2.c" >/dev/null
"$NINES" build --target ulptarget --id fix-exe -o exe.patch "$ULP/patches/exe_fix.c" >/dev/null
"$NINES" keygen -o keys >/dev/null
mkdir trust && cp keys/publisher.pub trust/
# bundle NAME ID VERSION SEVERITY PUBLISHED PATCH
bundle() {
  cat >"$1.toml" <<TOML
id = "$2"
version = $3
kind = "userspace"
description = "$2 release $3"
published = "$5"

[[cves]]
id = "CVE-2026-$((1000 + $3))${2: -1}"
severity = "$4"
description = "wrong answer"
url = "https://example.org/cve"
TOML
  "$NINES" bundle create --patch "$6" --manifest "$1.toml" --key keys/publisher.key -o "$1.bundle" >/dev/null
}
now_rfc() { date -u +%Y-%m-%dT%H:%M:%SZ; }

# --- server ----------------------------------------------------------------------------
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
start_server() {
  "$NINES" serve --listen "127.0.0.1:$PORT" --data "$T/data" --trust "$T/trust" >>"$T/serve.out" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do curl -sf "$URL/v1/health" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "server did not start"
}
start_server
ADMIN=$(cat data/admin-token)
A=("$NINES" admin --server "$URL" --admin-token "$ADMIN")
ENROLL=$("${A[@]}" token create --tier stable --name agent-e2e)
publish() { "${A[@]}" publish "$1.bundle" --tier stable >/dev/null || fail "publish $1"; }

# --- target processes ------------------------------------------------------------------
# start_target VAR: starts ulptarget with a command fifo; sets VAR to its pid.
N=0
start_target() {
  N=$((N + 1))
  mkfifo "in$N"
  ./ulptarget 0 <"in$N" >"out$N" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  eval "exec $((20 + N))>in$N"
  for _ in $(seq 100); do grep -q ready "out$N" 2>/dev/null && break; sleep 0.02; done
  grep -q ready "out$N" || fail "target $N did not start"
  eval "$1=$pid; FD_$pid=$((20 + N)); OUT_$pid=out$N"
}
values() {  # values PID -> "lib=.. other=.. ..."
  local fd out n
  eval "fd=\$FD_$1; out=\$OUT_$1"
  n=$(wc -l <"$out")
  echo values >&"$fd"
  for _ in $(seq 200); do [ "$(wc -l <"$out")" -gt "$n" ] && break; sleep 0.01; done
  tail -1 "$out"
}
expect() {  # expect PID lib=N [exe=M] WHAT
  local got; got="$(values "$1")"
  [[ "$got" == *"$2"* ]] || fail "$4: pid $1: expected $2, got '$got'"
  if [ -n "$3" ]; then [[ "$got" == *"$3"* ]] || fail "$4: pid $1: expected $3, got '$got'"; fi
}
wait_for() {  # wait_for SECONDS WHAT CMD...
  local secs="$1" what="$2"; shift 2
  local end=$(( $(date +%s%N) + secs * 1000000000 ))
  while [ "$(date +%s%N)" -lt "$end" ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  fail "timed out after ${secs}s waiting for: $what"
}
patch_field() {  # patch_field ID FIELD -> from `status --format json`
  "$NINES" status --format json | python3 -c '
import json,sys
s=json.load(sys.stdin)
for p in s["patches"]:
    if p["id"]==sys.argv[1]: print(p[sys.argv[2]] if p[sys.argv[2]] is not None else ""); break' "$1" "$2"
}
state_is() { [ "$(patch_field "$1" state)" = "$2" ]; }
lib_is() { [[ "$(values "$1")" == *"lib=$2 "* ]]; }
start_agent() {
  "$NINES" -v agent >>"$T/agent$1.log" 2>&1 &
  AGENT_PID=$!
  wait_for 10 "agent socket" test -S "$NINES_ROOT/run/nines/agent.sock"
}
stop_agent() { kill "$AGENT_PID"; wait "$AGENT_PID" || true; AGENT_PID=""; }

start_target P1
start_target P2
expect "$P1" "lib=1 " "exe=10" "start"

# --- enable, policy ---------------------------------------------------------------------
step "enable + config"
mkdir -p "$NINES_ROOT/etc" && echo agent-e2e-machine >"$NINES_ROOT/etc/machine-id"
"$NINES" config trust-dir="$T/trust" check-interval=1h >/dev/null
"$NINES" config severity=urgent 2>err.txt && fail "config accepted severity=urgent"
grep -q "severity: 'urgent' is not one of" err.txt || fail "no clear error for a bad severity: $(cat err.txt)"
"$NINES" enable "$ENROLL" --server "$URL" | grep -q "enrolled" || fail "enable"
[ "$(stat -c %a "$NINES_ROOT/var/lib/nines/machine-token")" = 600 ] || fail "machine token is not 0600"
[ "$(stat -c %a "$NINES_ROOT/etc/nines/config.toml")" = 600 ] || fail "config.toml (may hold the proxy password) is not 0600"
[ "$(stat -c %a "$NINES_ROOT/var/lib/nines/state.db")" = 600 ] || fail "state.db is not 0600"
"$NINES" config | grep -q "remote-server = $URL" || fail "enable did not store the server"

bundle v1 fix-lib 1 medium "2026-11-01T00:00:00Z" v1.patch
publish v1
start_agent 1

step "severity: a medium patch is below the default threshold (high)"
wait_for 10 "fix-lib deferred" state_is fix-lib deferred
[[ "$(patch_field fix-lib reason)" == *"below the severity threshold (medium < high)"* ]] || fail "reason: $(patch_field fix-lib reason)"
expect "$P1" "lib=1 " "" "below threshold"

step "mode no-apply, then severity=medium: picked up without a restart"
"$NINES" config mode=no-apply severity=medium >/dev/null
wait_for 10 "no-apply reason" sh -c "\"$NINES\" status --format json | grep -q 'mode is no-apply'"
expect "$P1" "lib=1 " "" "no-apply"
"$NINES" config mode=normal >/dev/null
wait_for 10 "fix-lib v1 applied" lib_is "$P1" 2
wait_for 5 "fix-lib v1 applied in P2" lib_is "$P2" 2
state_is fix-lib applied || fail "state after apply: $(patch_field fix-lib state)"

step "cut-off date holds back a later patch; the delay defers it, then it is applied"
T0=$(date +%s)
bundle v2 fix-lib 2 high "$(now_rfc)" v2.patch
"$NINES" config cutoff-date=2026-01-01 >/dev/null
publish v2
"$NINES" refresh >/dev/null || true
wait_for 10 "v2 held by cut-off" sh -c "\"$NINES\" status --format json | grep -q 'held back by the cut-off date'"
expect "$P1" "lib=2 " "" "cut-off"
DELAY=$(( $(date +%s) - T0 + 4 ))
"$NINES" config cutoff-date=none patch-delay="${DELAY}s" >/dev/null
wait_for 10 "v2 waiting for the delay" sh -c "\"$NINES\" status --format json | grep -q 'waiting for the patch delay until'"
expect "$P1" "lib=2 " "" "delay"
wait_for 15 "v2 applied once the delay passed" lib_is "$P1" 3
wait_for 5 "v2 in P2" lib_is "$P2" 3

step "check-interval: checks happen by themselves"
"$NINES" config check-interval=2s >/dev/null
C1=$(patch_field fix-lib state; "$NINES" status --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_check"])')
sleep 5
C2=$("$NINES" status --format json | python3 -c 'import json,sys; print(json.load(sys.stdin)["last_check"])')
[ "$C1" != "$C2" ] || fail "no check in 5 s with check-interval=2s"

step "a new process is patched within 1 s"
START=$(date +%s%N)
start_target P3
while ! lib_is "$P3" 3; do
  [ $(( $(date +%s%N) - START )) -lt 1000000000 ] || fail "new process $P3 not patched within 1 s: $(values "$P3")"
  sleep 0.05
done
echo "patched after $(( ($(date +%s%N) - START) / 1000000 )) ms"

step "mode stop: no checks and nothing applied, not even to a new process; normal resumes"
"$NINES" config mode=stop >/dev/null
sleep 1
start_target P5
sleep 1.5
expect "$P5" "lib=1 " "" "mode stop"
"$NINES" status --format json | grep -q '"mode": "stop"' || fail "status does not show mode stop"
"$NINES" config mode=normal >/dev/null
wait_for 5 "P5 patched once mode is normal" lib_is "$P5" 3

step "mode no-refresh: the server is not asked"
"$NINES" config mode=no-refresh check-interval=1h >/dev/null
sleep 1
SEEN0=$(curl -sf -H "Authorization: Bearer $ADMIN" "$URL/v1/machines" | python3 -c 'import json,sys; print(json.load(sys.stdin)["machines"][0]["last_seen_unix"])')
sleep 1.1
"$NINES" refresh >/dev/null || fail "refresh in no-refresh mode"
"$NINES" status --format json | grep -q 'mode is no-refresh (server not asked)' || fail "no-refresh result"
SEEN1=$(curl -sf -H "Authorization: Bearer $ADMIN" "$URL/v1/machines" | python3 -c 'import json,sys; print(json.load(sys.stdin)["machines"][0]["last_seen_unix"])')
[ "$SEEN0" = "$SEEN1" ] || fail "the agent checked in with mode no-refresh"
"$NINES" config mode=normal check-interval=2s >/dev/null

step "restart reconciles: nothing applied twice, a process started meanwhile is patched"
stop_agent
start_target P4
expect "$P4" "lib=1 " "" "started while the agent was down"
start_agent 2
wait_for 5 "P4 patched after restart" lib_is "$P4" 3
sleep 1
for p in "$P1" "$P2" "$P3"; do
  n=$("$NINES" list --pid "$p" | grep -c "fix-lib" || true)
  [ "$n" = 1 ] || fail "pid $p lists fix-lib $n times"
  if grep -E "pid $p: (applied|replaced)" "$T/agent2.log"; then fail "pid $p patched again after restart"; fi
done

step "kill -9 during an apply: interrupted, not retried, reported"
stop_agent
# The agent's test seam (AgentHooks::before_apply): hold 4 s once "applying" is journaled.
"$(dirname "$NINES")/nines-agent" --log-level debug --test-hold-applying-ms 4000 >>"$T/agent3.log" 2>&1 &
AGENT_PID=$!
wait_for 10 "agent socket" test -S "$NINES_ROOT/run/nines/agent.sock"
bundle exe fix-exe 1 critical "2026-11-01T00:00:00Z" exe.patch
publish exe
("$NINES" refresh >/dev/null 2>&1 &)
wait_for 10 "applying record" sh -c "sqlite3 '$NINES_ROOT/var/lib/nines/state.db' \"select state from patches where id='fix-exe'\" | grep -q applying"
kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=""
start_agent 4
wait_for 10 "fix-exe interrupted" state_is fix-exe interrupted
"$NINES" refresh >/dev/null || true
sleep 1
state_is fix-exe interrupted || fail "an interrupted apply was retried: $(patch_field fix-exe state)"
expect "$P1" "lib=3 " "exe=10" "interrupted apply left alone"
"$NINES" status | grep -q "not retried automatically" || fail "humane status does not say the apply was interrupted"
curl -sf -H "Authorization: Bearer $ADMIN" "$URL/v1/reports" | grep -q '"apply-failed"' || fail "interrupted apply not reported"
"$NINES" refresh --retry >/dev/null || true
wait_for 10 "fix-exe applied after --retry" state_is fix-exe applied
expect "$P1" "lib=3 " "exe=11" "retry"

step "server down: keep what is applied, keep serving status, back off; back: checks succeed by themselves"
"$NINES" config check-interval=1h >/dev/null
sleep 1
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
"$NINES" refresh >out.txt 2>&1 && fail "refresh succeeded with the server down"
"$NINES" status --format json >down.json
grep -q "server unreachable" down.json || fail "status does not say the server is unreachable"
python3 - down.json <<'PY' || fail "no back-off retry scheduled within 6 s (check-interval is 1h)"
import json, sys, datetime
s = json.load(open(sys.argv[1]))
nxt = datetime.datetime.strptime(s["next_check"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
assert (nxt - datetime.datetime.now(datetime.timezone.utc)).total_seconds() <= 6, s["next_check"]
PY
expect "$P1" "lib=3 " "exe=11" "server down"
start_server
wait_for 30 "a check succeeds again without a refresh" sh -c "\"$NINES\" status --format json | grep -q '\"last_check_result\": \"ok'"
expect "$P2" "lib=3 " "exe=11" "server back"
"$NINES" config check-interval=2s >/dev/null

step "a kernel bundle for this kernel is not applicable here (no livepatch), and says why"
echo 'int livepatch_x(void) { return 1; }' >k.c && gcc -c -o k.o k.c
printf '{"format":1,"kind":"kernel","id":"kfix-1","kernel":{"release":"%s","build_id":""},"functions":[{"name":"x","replacement":"livepatch_x"}]}' "$(uname -r)" >kmeta.json
objcopy --add-section .nines.meta=kmeta.json k.o kfix.ko
cat >kfix.toml <<'TOML'
id = "kfix-1"
version = 1
kind = "kernel"
published = 2026-11-01T00:00:00Z
[[cves]]
id = "CVE-2026-9999"
severity = "critical"
description = "kernel flaw"
url = "https://example.org/cve"
TOML
"$NINES" bundle create --patch kfix.ko --manifest kfix.toml --key keys/publisher.key -o kfix.bundle >/dev/null
publish kfix
"$NINES" refresh >/dev/null || true
if [ -d /sys/kernel/livepatch ]; then
  echo "skipped: this kernel has livepatch (kernel bundles are tested in the VM)"
else
  wait_for 10 "kfix-1 not applicable" state_is kfix-1 not-applicable
  [[ "$(patch_field kfix-1 reason)" == *"/sys/kernel/livepatch absent"* ]] || fail "kernel reason: $(patch_field kfix-1 reason)"
  "$NINES" status | grep -q "CVE-2026-9999.*not applicable: kernel livepatch unavailable" || fail "humane status: kernel fix"
  wait_for 10 "not-applicable reported" sh -c "curl -sf -H 'Authorization: Bearer $ADMIN' '$URL/v1/reports' | grep -q not-applicable"
fi

step "metrics on loopback (metrics-listen), picked up without a restart"
MPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$NINES" config metrics-listen="127.0.0.1:$MPORT" >/dev/null
wait_for 10 "metrics endpoint" sh -c "curl -sf http://127.0.0.1:$MPORT/metrics >metrics.txt"
grep -q '^nines_agent_checks_total [1-9]' metrics.txt || { cat metrics.txt; fail "metrics: checks"; }
grep -q '^nines_agent_patches{state="applied"} 2' metrics.txt || { cat metrics.txt; fail "metrics: applied patches"; }
grep -q '^nines_agent_process_applies_total [1-9]' metrics.txt || { cat metrics.txt; fail "metrics: applies"; }

step "status in three formats"
"$NINES" status --verbose >st.txt
for needle in "last check:" "next check:" "server:" "kernel:" "livepatch" "targets:" "libulptarget.so" \
              "patched:" "fixes:" "CVE-2026-1002b" "boot time:"; do
  grep -q -- "$needle" st.txt || { cat st.txt; fail "humane status lacks '$needle'"; }
done
"$NINES" status --format json >st.json
python3 - st.json <<'PY' || fail "json status"
import json, sys
s = json.load(open(sys.argv[1]))
for k in ["agent", "server", "last_check", "next_check", "kernel", "targets", "fixes", "patches"]:
    assert k in s, k
t = [t for t in s["targets"] if t["patch"] == "fix-lib"][0]
assert len(t["patched"]) == 5, t
assert not s["kernel"]["livepatch"] or True
assert s["advisor"]["verdict"] in ("none", "restart", "reboot"), s["advisor"]
f = [f for f in s["fixes"] if f["patch"] == "fix-lib"][0]
assert f["state"] == "applied" and f["severity"] == "high", f
PY
"$NINES" status --format yaml >st.yaml
python3 - st.json st.yaml <<'PY' || fail "yaml status differs from json"
import json, sys, yaml
j = json.load(open(sys.argv[1])); y = yaml.safe_load(open(sys.argv[2]))
for k in ["server", "targets", "fixes", "patches", "kernel", "mode"]:
    a, b = j[k], y[k]
    if k == "kernel": a = {x: a[x] for x in ("release", "livepatch")}; b = {x: b[x] for x in ("release", "livepatch")}
    assert a == b, (k, a, b)
PY
stop_agent
"$NINES" status | grep -q "not running" || fail "status without an agent does not say so"

step "disable reverts everything"
start_agent 5
"$NINES" disable >dis.txt || { cat dis.txt; fail "disable"; }
for p in "$P1" "$P2" "$P3" "$P4" "$P5"; do expect "$p" "lib=1 " "exe=10" "disable"; done
state_is fix-lib reverted || fail "fix-lib state after disable: $(patch_field fix-lib state)"
"$NINES" refresh >/dev/null 2>&1 || true
sleep 1
expect "$P1" "lib=1 " "exe=10" "nothing applied after disable"

step "enable again re-applies; disable with no agent running reverts by itself"
"$NINES" enable "$ENROLL" --server "$URL" >/dev/null || fail "enable again"
wait_for 15 "re-applied after enable" lib_is "$P1" 3
stop_agent
"$NINES" disable >dis2.txt || { cat dis2.txt; fail "disable without an agent"; }
grep -q "reverted fix-lib in pid $P1" dis2.txt || { cat dis2.txt; fail "disable without an agent did not say what it reverted"; }
for p in "$P1" "$P2" "$P3" "$P4" "$P5"; do expect "$p" "lib=1 " "exe=10" "disable without an agent"; done

step "trust-dir: a bundle signed by a key not in the agent's trust store is refused"
"$NINES" keygen -o stranger >/dev/null
mkdir -p "$T/other-trust" && cp stranger/publisher.pub "$T/other-trust/"
"$NINES" config trust-dir="$T/other-trust" >/dev/null
start_agent 6
"$NINES" enable "$ENROLL" --server "$URL" >/dev/null || fail "enable with another trust store"
refused_untrusted() {
  "$NINES" status --format json | python3 -c '
import json, sys
s = json.load(sys.stdin)
assert any(r["id"] == "fix-lib" and "untrusted key" in r["reason"] for r in s["refused"]), s["refused"]'
}
wait_for 10 "fix-lib refused: untrusted key" refused_untrusted
expect "$P1" "lib=1 " "exe=10" "untrusted bundle"

step "the agent killed between two writes of a switch: its next start rolls the process back"
stop_agent
"$NINES" config trust-dir="$T/trust" >/dev/null
"$NINES" build --target libulptarget.so --id fix-two -o two.patch "$ULP/patches/lib_v1.c" >/dev/null
bundle two fix-two 1 critical "2026-11-01T00:00:00Z" two.patch
publish two
# Fault injection: the agent's engine exits after the first of the two 5-byte writes.
NINES_TEST_DIE_AFTER_WRITES=1 "$NINES" -v agent >>"$T/agent7.log" 2>&1 &
AGENT_PID=$!
wait_for 10 "agent socket" test -S "$NINES_ROOT/run/nines/agent.sock"
"$NINES" enable "$ENROLL" --server "$URL" >/dev/null 2>&1 || true
wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=""
HALF=""
for p in "$P1" "$P2" "$P3" "$P4" "$P5"; do
  case "$(values "$p")" in
    *"lib=2 other=100 "*|*"lib=1 other=200 "*) HALF="$p" ;;
  esac
done
[ -n "$HALF" ] || fail "no process was left half switched by the killed agent"
"$NINES" list --pid "$HALF" | grep -q "interrupted half done" || fail "list does not show the interrupted switch"
start_agent 8
wait_for 10 "pid $HALF rolled back" sh -c "! \"$NINES\" list --pid $HALF | grep -q 'interrupted half done'"
expect "$HALF" "lib=1 other=100 " "" "rolled back by the restarted agent"
grep -q "pid $HALF: rolled back a switch that was interrupted (1 of 2 writes" "$T/agent8.log" ||
  fail "the agent's log does not say it rolled the switch back"
state_is fix-two interrupted || fail "fix-two after the kill: $(patch_field fix-two state)"
echo "agent_e2e: all checks passed"
