#!/usr/bin/env bash
# A patch to a vmlinux function with a visible effect: /proc/cmdline shows the patch's
# marker once applied (from a signed bundle), `list` shows it, and after `revert` the
# effect is gone, /sys/kernel/livepatch is empty and the module is unloaded. The same
# through `nines kernel ...` with the raw patch file (no bundle).
. "$(dirname "$0")/lib.sh"
build_patch cmdline-fix "$T/v1.patch" "$HERE/patches/cmdline_v1.c"
make_keys
make_bundle "$T/v1.patch" cmdline-fix 1 "$T/v1.bundle"
in_vm '
expect_not "unpatched /proc/cmdline" "nines-cmdline" cat /proc/cmdline
expect_out "apply the bundle" "transition complete" nines apply --trust $T/trust $T/v1.bundle
expect_out "effect visible" "nines-cmdline-v1" cat /proc/cmdline
expect_out "list shows id and version" "cmdline-fix (version 1)" nines list --kernel
expect_out "list shows the function" "vmlinux:cmdline_proc_show" nines kernel list
expect_out "list json" "\"enabled\": true" nines kernel list --format json
expect_fail "applying twice is refused" "already applied" nines kernel apply --trust $T/trust $T/v1.bundle
expect_out "revert" "reverted cmdline-fix" nines revert cmdline-fix --kernel
expect_not "effect gone" "nines-cmdline" cat /proc/cmdline
no_livepatch "patch and module gone"
expect_fail "revert of an unknown id" "no such patch is applied" nines kernel revert cmdline-fix
expect_out "raw patch file applies too" "transition complete" nines kernel apply $T/v1.patch
expect_out "raw patch effect" "nines-cmdline-v1" cat /proc/cmdline
expect_out "revert raw" "reverted" nines kernel revert cmdline-fix
no_livepatch "raw patch gone"
'
