#!/usr/bin/env bash
# scripts/vm-run itself: the command's output comes back, its exit status is vm-run's,
# --file puts a file at the same absolute path, `nines` is inside with its libraries,
# --module makes modprobe work, and the guest runs the Debian cloud kernel as root.
. "$(dirname "$0")/lib.sh"
echo "hello from the host" >"$T/greeting"
set +e
out="$("$ROOT/scripts/vm-run" --file "$T/greeting" --module binfmt_misc -- "
  cat $T/greeting; id -u; uname -r; nines --version; modprobe binfmt_misc && echo modprobe-ok
  exit 7")"
rc=$?
set -e
echo "$out"
[ "$rc" = 7 ] || fail "exit status $rc, want 7"
grep -qx "hello from the host" <<<"$out" || fail "--file content not seen"
grep -qx "0" <<<"$out" || fail "not root"
grep -qx "$REL" <<<"$out" || fail "not kernel $REL"
grep -q "^nines " <<<"$out" || fail "nines not runnable inside"
grep -qx "modprobe-ok" <<<"$out" || fail "modprobe binfmt_misc failed"
set +e
"$ROOT/scripts/vm-run" --timeout 8 -- "sleep 60" >/dev/null 2>"$T/err"
rc=$?
set -e
[ "$rc" = 124 ] || fail "timeout gave status $rc, want 124"
grep -q "did not finish within 8s" "$T/err" || fail "no timeout message"
echo "ALL OK"
