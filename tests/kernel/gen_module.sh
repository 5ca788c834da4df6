#!/usr/bin/env bash
# A fix in a loadable module (binfmt_misc's bm_status_read, reading the module's static
# `enabled`): the generated patch patches the module object when it loads after the
# patch, and when the patch comes after the module.
. "$(dirname "$0")/lib.sh"
gen_patch binfmt-gen "$T/b.patch" "$HERE/fixes/binfmt_status.patch"
[ "$GEN_RC" = 0 ] || fail "generation failed (exit $GEN_RC)"
grep -q "replaced *binfmt_misc:bm_status_read" "$T/gen-binfmt-gen.log" ||
  fail "the report does not name binfmt_misc:bm_status_read"
readelf -sW "$T/b.patch" | grep -q "\.klp\.sym\.binfmt_misc\.enabled,0" ||
  fail "no .klp.sym for binfmt_misc's static enabled"
in_vm '
S=/proc/sys/fs/binfmt_misc/status
expect_out "apply before the module loads" "transition complete" nines kernel apply $T/b.patch
modprobe binfmt_misc && mount -t binfmt_misc none /proc/sys/fs/binfmt_misc
expect_out "patched as the module loads" "enabled (nines-gen)" cat $S
echo 0 > $S
expect_out "the module static is the kernel one" "disabled" cat $S
echo 1 > $S
expect_out "revert" "reverted" nines kernel revert binfmt-gen
expect_not "effect gone" "nines-gen" cat $S
expect_out "apply after the module loaded" "transition complete" nines kernel apply $T/b.patch
expect_out "patched" "enabled (nines-gen)" cat $S
expect_out "revert" "reverted" nines kernel revert binfmt-gen
no_livepatch "nothing left"
' --module binfmt_misc
