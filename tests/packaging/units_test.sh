#!/usr/bin/env bash
# The systemd units tracked in packaging/ are hardened: `systemd-analyze security
# --offline=true` rates nines-server.service at most 3.0 and nines-agent.service at most
# 6.0 (docs/PACKAGING.md says why each remaining exposure is needed), both units verify,
# neither uses KillMode=process, and the agent keeps the capabilities live patching needs.
# Usage: units_test.sh SOURCE_DIR
set -euo pipefail
TOP="$1"
fail() { echo "FAIL: $*" >&2; exit 1; }
score() {  # the overall exposure of a unit file, e.g. 4.0
  systemd-analyze security --offline=true --no-pager "$1" 2>&1 |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'
}
check() {  # UNIT MAX
  local s
  s="$(score "$TOP/packaging/$1")"
  [ -n "$s" ] || fail "no score for $1"
  awk -v s="$s" -v m="$2" 'BEGIN { exit !(s <= m) }' || fail "$1 scores $s, more than $2"
  echo "$1: $s (at most $2)"
}
check nines-server.service 3.0
check nines-agent.service 6.0
for u in nines-agent.service nines-server.service; do
  f="$TOP/packaging/$u"
  grep -q '^KillMode=process' "$f" && fail "$u uses KillMode=process"
  grep -q '^KillMode=' "$f" || fail "$u does not say its KillMode"
  grep -q '^NoNewPrivileges=yes' "$f" || fail "$u lacks NoNewPrivileges"
done
caps="$(sed -n 's/^CapabilityBoundingSet=//p' "$TOP/packaging/nines-agent.service")"
for c in CAP_SYS_PTRACE CAP_SYS_MODULE CAP_CHECKPOINT_RESTORE; do
  [[ " $caps " == *" $c "* ]] || fail "the agent's unit drops $c, which live patching needs"
done
[ -z "$(sed -n 's/^CapabilityBoundingSet=//p' "$TOP/packaging/nines-server.service")" ] ||
  fail "the server's unit keeps capabilities"
grep -q '^User=nines-server' "$TOP/packaging/nines-server.service" || fail "server runs as its own user"
echo "units_test: all checks passed"
