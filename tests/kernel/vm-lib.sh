# Guest side of the kernel tier: tiny assertions in busybox sh, in the style of kpatch's
# <name>-LOADED.test predicates. Every check prints "ok" or "FAIL"; `finish` exits 1 if
# any failed.
FAILED=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; FAILED=1; }
# expect_out "what" "needle" cmd...: the command succeeds and its output holds needle.
expect_out() {
  what="$1"; needle="$2"; shift 2
  if out="$("$@" 2>&1)"; then
    case "$out" in *"$needle"*) ok "$what" ;; *) bad "$what: no '$needle' in: $out" ;; esac
  else
    bad "$what: '$*' failed: $out"
  fi
}
# expect_not "what" "needle" cmd...: the command's output does not hold needle.
expect_not() {
  what="$1"; needle="$2"; shift 2
  out="$("$@" 2>&1)"
  case "$out" in *"$needle"*) bad "$what: '$needle' still in: $out" ;; *) ok "$what" ;; esac
}
# expect_fail "what" "needle" cmd...: the command fails and its output holds needle.
expect_fail() {
  what="$1"; needle="$2"; shift 2
  if out="$("$@" 2>&1)"; then
    bad "$what: '$*' succeeded: $out"
  else
    case "$out" in *"$needle"*) ok "$what" ;; *) bad "$what: no '$needle' in: $out" ;; esac
  fi
}
# no_livepatch "what": nothing in /sys/kernel/livepatch and no nines module loaded.
no_livepatch() {
  if [ -n "$(ls /sys/kernel/livepatch 2>/dev/null)" ]; then
    bad "$1: /sys/kernel/livepatch holds $(ls /sys/kernel/livepatch)"
  elif ls /sys/module/*/parameters/nines_id >/dev/null 2>&1; then
    bad "$1: a nines module is still loaded: $(ls -d /sys/module/nines_* 2>/dev/null)"
  else
    ok "$1"
  fi
}
finish() {
  if [ "$FAILED" = 0 ]; then echo "ALL OK"; exit 0; fi
  echo "SOME CHECKS FAILED"; dmesg | grep -iE 'livepatch|nines' | tail -20; exit 1
}
