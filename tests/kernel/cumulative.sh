#!/usr/bin/env bash
# Cumulative patches (.replace = true): v2 replaces v1 in one transition (v1's livepatch
# folder vanishes and its module is unloaded), v2's extra function is patched as well, an
# older version is refused as a downgrade, and reverting v2 leaves the kernel unpatched.
# Through the issue's interface: nines apply B.bundle, nines list --kernel, nines revert ID --kernel.
. "$(dirname "$0")/lib.sh"
build_patch cmdline-fix "$T/v1.patch" "$HERE/patches/cmdline_v1.c"
build_patch cmdline-fix "$T/v2.patch" "$HERE/patches/cmdline_v2.c"
make_keys
make_bundle "$T/v1.patch" cmdline-fix 1 "$T/v1.bundle"
make_bundle "$T/v2.patch" cmdline-fix 2 "$T/v2.bundle"
in_vm '
expect_out "apply v1" "version 1" nines apply --trust $T/trust $T/v1.bundle
expect_out "v1 effect" "nines-cmdline-v1" cat /proc/cmdline
expect_not "v1 leaves /proc/version alone" "nines-version" cat /proc/version
V1=$(ls /sys/kernel/livepatch)
expect_out "apply v2 over v1" "unloaded replaced module $V1" nines apply --trust $T/trust $T/v2.bundle
expect_out "v2 effect on cmdline" "nines-cmdline-v2" cat /proc/cmdline
expect_out "v2 effect on version" "nines-version-v2" cat /proc/version
[ "$(ls /sys/kernel/livepatch | wc -l)" = 1 ] && ok "one patch left" || bad "patches: $(ls /sys/kernel/livepatch)"
[ ! -e /sys/module/$V1 ] && ok "v1 module unloaded" || bad "v1 module $V1 still loaded"
expect_out "list shows v2" "cmdline-fix (version 2)" nines list --kernel
expect_fail "downgrade to v1 refused" "downgrade refused" nines apply --trust $T/trust $T/v1.bundle
expect_out "v2 still in place" "nines-cmdline-v2" cat /proc/cmdline
expect_out "revert v2" "reverted cmdline-fix" nines revert cmdline-fix --kernel
expect_not "cmdline unpatched" "nines-cmdline" cat /proc/cmdline
expect_not "version unpatched" "nines-version" cat /proc/version
no_livepatch "nothing left"
'
