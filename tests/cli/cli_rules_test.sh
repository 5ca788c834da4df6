#!/usr/bin/env bash
# The command line's rules (docs/CLI.md): usage errors name the unknown word and suggest the
# nearest command or option; -v before and after the command; durations take units; dates
# are days of the calendar; every listing command takes --format humane|json|yaml; the
# exit statuses; man pages for every command.
# Usage: cli_rules_test.sh NINES
set -uo pipefail
NINES="$1"
T="$(mktemp -d /tmp/nines-cli-XXXXXX)"
trap 'rm -rf "$T"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
run() {  # run ARGS...: sets rc, out, err
  "$NINES" "$@" >"$T/out" 2>"$T/err"
  rc=$?
  out="$(cat "$T/out")"
  err="$(cat "$T/err")"
}
expect() {  # expect RC TEXT-IN-STDERR WHAT
  if [ "$rc" != "$1" ]; then fail "$3: exit $rc, expected $1 ($err)"; return 1; fi
  if [ -n "$2" ] && ! grep -qF -- "$2" <<<"$err"; then fail "$3: stderr lacks '$2': $err"; return 1; fi
  pass "$3"
}

# Typos: the unknown word, and the nearest one.
run aply x
expect 2 "unknown command 'aply'; did you mean 'apply'?" "nines aply x"
run --frobnicate
expect 2 "unknown option '--frobnicate'" "nines --frobnicate"
run list --formt json
expect 2 "unknown option '--formt' of 'list'; did you mean '--format'?" "nines list --formt"
run admin --server http://127.0.0.1:1 token craete --tier stable
expect 2 "unknown command 'craete' of 'admin token'; did you mean 'create'?" "nines admin ... token craete"
run bundle
expect 2 "needs a command" "nines bundle (no subcommand)"
run check --frobnicate
expect 3 "unknown option '--frobnicate' of 'check'" "check's usage error exits 3 (2 means reboot)"
run statsu
expect 2 "did you mean 'status'?" "nines statsu"
run -v aply
expect 2 "unknown command 'aply'; did you mean 'apply'?" "nines -v aply (a flag takes no value)"

# -v before and after the command.
mkdir -p "$T/root"
run -v status --root "$T/root"
[ "$rc" != 2 ] && pass "-v before the command" || fail "-v before: $err"
run status -v --root "$T/root"
[ "$rc" != 2 ] && pass "-v after the command" || fail "-v after: $err"

# nines status without an agent: 3 (not running).
expect 3 "" "status exits 3 when the agent is not running"

# Durations take units, everywhere.
run apply /dev/null --pid $$ --timeout 5000
expect 2 "needs a unit" "apply --timeout 5000 (no unit) is refused"
run kernel apply /dev/null --timeout 3
expect 2 "needs a unit" "kernel apply --timeout 3 (no unit) is refused"
run apply /nonexistent --pid $$ --timeout 500ms
[ "$rc" != 2 ] || ! grep -q "timeout" <<<"$err" && pass "apply --timeout 500ms is a duration" || fail "500ms: $err"
run config --root "$T/root" check-interval=60 patch-delay=1w
expect 0 "" "config check-interval=60 patch-delay=1w" &&
  { grep -qx "check-interval = 1h" <<<"$out" && grep -qx "patch-delay = 1w" <<<"$out" &&
    pass "check-interval 60 is 60 minutes (canonical-livepatch), shown with its unit" ||
    fail "config shows: $out"; }
run config --root "$T/root" check-interval=0
grep -qx "check-interval = 0" <<<"$out" && pass "check-interval 0 is never" || fail "check-interval=0: $out $err"
run config --root "$T/root" cutoff-date=2026-02-31
expect 2 "'2026-02-31'" "cutoff-date 2026-02-31 is refused"
run config --root "$T/root" cutoff-date=2028-02-29
expect 0 "" "cutoff-date 2028-02-29 (a leap day) is accepted"
[ ! -e "$T/root/etc/nines/config.toml" ] && [ -f "$T/root/etc/nines/config.d/50-local.toml" ] &&
  pass "config writes the drop-in, not config.toml" || fail "config wrote $(ls -R "$T/root/etc")"

# A pid that names no process.
run apply /dev/null --pid 999999
expect 2 "no process 999999" "--pid 999999"
run list --pid 999999
expect 2 "no process 999999" "list --pid 999999"

# --format humane|json|yaml: the YAML is the JSON document.
same_document() {  # same_document ARGS... : json and yaml outputs carry the same document
  "$NINES" "$@" --format json >"$T/j" 2>/dev/null
  "$NINES" "$@" --format yaml >"$T/y" 2>/dev/null
  python3 - "$T/j" "$T/y" <<'PY'
import json, sys, yaml
j = json.load(open(sys.argv[1])); y = yaml.safe_load(open(sys.argv[2]))
# scan timings differ between two runs
def strip(d):
    if isinstance(d, dict): return {k: strip(v) for k, v in d.items() if "ms" not in k and k not in ("scanned_processes", "scanned_mappings", "vanished")}
    if isinstance(d, list): return [strip(v) for v in d]
    return d
sys.exit(0 if strip(j) == strip(y) else 1)
PY
}
same_document list --pid $$ && pass "list --format yaml" || fail "list yaml differs from json"
same_document kernel list && pass "kernel list --format yaml" || fail "kernel list yaml"
for c in "list --pid $$" "kernel list" "check" "status --root $T/root"; do
  run $c --format humane
  [ "$rc" != 2 ] && pass "$c --format humane" || fail "$c --format humane: $err"
done
run list --format xml
expect 2 "xml" "--format xml is refused naming it"

# serve checks every option before it creates anything, refuses a busy port, and warns
# without a trust store.
run serve --listen localhost:99999 --data "$T/srv"
expect 2 "port '99999' is not 0..65535" "serve --listen localhost:99999"
[ ! -e "$T/srv" ] && pass "no state created for a bad --listen" || fail "serve created $(ls -R "$T/srv")"
python3 -c 'import socket,sys,time; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)' >"$T/port" &
BUSY=$!
for _ in $(seq 50); do [ -s "$T/port" ] && break; sleep 0.1; done
run serve --listen "127.0.0.1:$(cat "$T/port")" --data "$T/srv2"
expect 2 "in use" "serve on a busy port is refused"
kill "$BUSY" 2>/dev/null; wait "$BUSY" 2>/dev/null
[ ! -e "$T/srv2" ] && pass "no state created for a busy port" || fail "serve created state on a busy port"
mkdir -p "$T/empty-trust"
timeout 3 "$NINES" serve --listen 127.0.0.1:0 --data "$T/srv3" --trust "$T/empty-trust" >/dev/null 2>"$T/err"
grep -q "warning: no publisher key in the trust store" "$T/err" && pass "serve warns without a trust store" ||
  fail "no trust store warning: $(cat "$T/err")"

# Man pages from the CLI's own definitions: one per command --help lists, valid roff.
"$NINES" man --output "$T/man" || fail "nines man"
"$NINES" --help | sed -n '/^Subcommands:/,$p' | awk 'NR>1 && NF {print $1}' >"$T/cmds"
while read -r c; do
  [ -f "$T/man/nines-$c.1" ] || fail "no man page for $c"
done <"$T/cmds"
if command -v groff >/dev/null; then
  for p in "$T"/man/*.1; do
    w="$(groff -man -Tutf8 -ww -z "$p" 2>&1)"
    [ -z "$w" ] || fail "$(basename "$p"): $w"
  done
fi
grep -q "did you mean\|EXIT STATUS" "$T/man/nines-check.1" && grep -q "reboot is required" "$T/man/nines-check.1" &&
  pass "nines-check.1 documents its exit statuses" || fail "nines-check.1 exit statuses"

[ "$failures" = 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "cli_rules_test: all checks passed"
