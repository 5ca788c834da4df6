#!/usr/bin/env bash
# Callbacks and shadow variables are available to patch authors: the pre_patch callback
# runs before patching, a shadow variable keeps state across calls of the new function,
# post_unpatch runs (and frees it) on revert; a pre_patch callback that refuses makes
# apply fail cleanly with nothing left loaded.
. "$(dirname "$0")/lib.sh"
build_patch counted "$T/c.patch" "$HERE/patches/callbacks_shadow.c"
build_patch refused "$T/r.patch" "$HERE/patches/refuse_pre_patch.c"
in_vm '
expect_out "apply" "transition complete" nines kernel apply $T/c.patch
dmesg | grep -q "nines-callback: pre_patch" && ok "pre_patch callback ran" || bad "no pre_patch line"
expect_out "first read counted" "nines-reads=1" cat /proc/cmdline
expect_out "shadow variable keeps state" "nines-reads=2" cat /proc/cmdline
expect_out "revert" "reverted" nines kernel revert counted
dmesg | grep -q "nines-callback: post_unpatch" && ok "post_unpatch callback ran" || bad "no post_unpatch line"
expect_not "effect gone" "nines-reads" cat /proc/cmdline
expect_fail "refusing pre_patch fails the apply" "Operation not permitted" nines kernel apply $T/r.patch
expect_not "refused patch not applied" "nines-never" cat /proc/cmdline
no_livepatch "nothing left"
'
