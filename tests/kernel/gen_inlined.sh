#!/usr/bin/env bash
# A fix to a static function gcc inlined (show_val_kb, fs/proc/meminfo.c, exists only
# inside meminfo_proc_show): the generator patches the caller that changed in the
# binary, and /proc/meminfo shows the fixed unit.
. "$(dirname "$0")/lib.sh"
gen_patch meminfo-gen "$T/m.patch" "$HERE/fixes/meminfo_inlined.patch"
[ "$GEN_RC" = 0 ] || fail "generation failed (exit $GEN_RC)"
grep -q "replaced *vmlinux:meminfo_proc_show" "$T/gen-meminfo-gen.log" ||
  fail "the report does not name the caller meminfo_proc_show"
grep -q "show_val_kb" "$T/gen-meminfo-gen.log" && fail "show_val_kb (inlined, not in the kernel) is in the report"
in_vm '
expect_out "unpatched" "MemTotal:" cat /proc/meminfo
expect_not "unpatched unit" "KiB" cat /proc/meminfo
expect_out "apply" "transition complete" nines kernel apply $T/m.patch
expect_out "the inlined fix is live" "KiB" cat /proc/meminfo
expect_out "revert" "reverted" nines kernel revert meminfo-gen
expect_not "effect gone" "KiB" cat /proc/meminfo
no_livepatch "nothing left"
'
