#!/usr/bin/env bash
# A transition that cannot complete: `sleep` sleeps inside do_nanosleep, the function being
# replaced, so it keeps the old code on its stack. apply reports the task with its stack,
# and at the timeout reverses the transition and unloads the module: the kernel is left
# unpatched and the sleeping task is unharmed. `force` is never written.
. "$(dirname "$0")/lib.sh"
build_patch nanosleep-fix "$T/n.patch" "$HERE/patches/nanosleep.c"
in_vm '
sleep 600 &
SLEEPER=$!
sleep 0.3
START=$(date +%s)
expect_fail "apply times out" "reversed and unloaded" nines kernel apply --timeout 3 $T/n.patch
END=$(date +%s)
[ $((END - START)) -ge 3 ] && [ $((END - START)) -le 20 ] && ok "waited for the timeout" || bad "took $((END - START)) s"
echo "$out" | grep -q "waits for pid $SLEEPER (sleep)" && ok "blocking task reported while waiting" || bad "no report of pid $SLEEPER: $out"
echo "$out" | grep -q "nanosleep" && ok "its stack is reported" || bad "no stack in: $out"
no_livepatch "kernel unpatched, module gone"
kill -0 $SLEEPER && ok "the sleeping task is alive" || bad "sleeper died"
kill $SLEEPER
dmesg | grep -q "unpatching complete" && ok "kernel log: reversal complete" || bad "no reversal in the kernel log"
dmesg | grep -qi "forc" && bad "something was forced" || ok "nothing forced"
expect_out "applies once the task is gone" "transition complete" nines kernel apply --timeout 10 $T/n.patch
expect_out "sleep works on the patched kernel" "" sleep 0.1
expect_out "revert" "reverted" nines kernel revert nanosleep-fix
no_livepatch "nothing left"
'
