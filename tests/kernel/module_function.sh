#!/usr/bin/env bash
# A function of a loadable module (binfmt_misc's bm_status_read), patched when the patch
# comes after the module and when the module comes after the patch; the replacement reads
# the module's static `enabled` through .klp.sym.binfmt_misc.enabled.
. "$(dirname "$0")/lib.sh"
build_patch binfmt-fix "$T/b.patch" "$HERE/patches/binfmt.c"
readelf -sW "$T/b.patch" | grep -q "\.klp\.sym\.binfmt_misc\.enabled,0" || fail "no .klp.sym for binfmt_misc's enabled"
in_vm '
S=/proc/sys/fs/binfmt_misc/status
modprobe binfmt_misc && mount -t binfmt_misc none /proc/sys/fs/binfmt_misc
expect_out "module loaded, unpatched" "enabled" cat $S
expect_not "module loaded, unpatched (no marker)" "nines" cat $S
expect_out "apply after the module loaded" "transition complete" nines kernel apply $T/b.patch
expect_out "module function patched" "nines-enabled" cat $S
expect_out "list names the module object" "binfmt_misc:bm_status_read" nines kernel list
echo 0 > $S
expect_out "static variable of the module read" "nines-disabled" cat $S
echo 1 > $S
expect_out "revert" "reverted" nines kernel revert binfmt-fix
expect_not "effect gone" "nines" cat $S
umount /proc/sys/fs/binfmt_misc && rmmod binfmt_misc
[ ! -e /sys/module/binfmt_misc ] && ok "binfmt_misc unloaded" || bad "binfmt_misc still loaded"
expect_out "apply before the module loads" "transition complete" nines kernel apply $T/b.patch
modprobe binfmt_misc && mount -t binfmt_misc none /proc/sys/fs/binfmt_misc
expect_out "patched as the module loads" "nines-enabled" cat $S
dmesg | grep -q "applying patch .* to loading module .binfmt_misc." && ok "kernel log: applied to loading module" || bad "no livepatch log line for the loading module"
expect_out "revert" "reverted" nines kernel revert binfmt-fix
expect_not "effect gone" "nines" cat $S
no_livepatch "nothing left"
' --module binfmt_misc
