#!/usr/bin/env bash
# A replacement that calls a static, non-exported vmlinux function (version_proc_show) and
# reads a non-exported variable (saved_command_line): the builder emits .klp.sym.* symbols
# and .klp.rela.vmlinux.* relocations, and the kernel resolves them at load.
. "$(dirname "$0")/lib.sh"
build_patch static-call "$T/s.patch" "$HERE/patches/static_call.c"
grep -q "uses .klp.sym.vmlinux.version_proc_show,0" "$T/build-static-call.log" ||
  fail "the build does not report a .klp.sym for version_proc_show"
readelf -SW "$T/s.patch" | grep -q "\.klp\.rela\.vmlinux\.\.text" || fail "no .klp.rela.vmlinux..text section"
readelf -sW "$T/s.patch" | grep -q "\.klp\.sym\.vmlinux\.saved_command_line,0" || fail "no .klp.sym for saved_command_line"
in_vm '
expect_out "apply" "transition complete" nines kernel apply $T/s.patch
expect_out "static function called" "nines-static: Linux version" cat /proc/cmdline
expect_out "non-exported variable read" "nines-saved: console=" cat /proc/cmdline
expect_out "revert" "reverted" nines kernel revert static-call
expect_not "effect gone" "nines-static" cat /proc/cmdline
no_livepatch "nothing left"
'
