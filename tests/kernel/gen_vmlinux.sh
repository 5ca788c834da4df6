#!/usr/bin/env bash
# The generator (issue 14) on a fix to a vmlinux function with a visible effect: the
# diff adds a marker to /proc/cmdline's show function. The patch is generated from the
# diff and the Debian source of the running release, then applied in the VM, listed,
# and reverted like a hand-written one.
. "$(dirname "$0")/lib.sh"
gen_patch cmdline-gen "$T/c.patch" "$HERE/fixes/cmdline_show.patch"
[ "$GEN_RC" = 0 ] || fail "generation failed (exit $GEN_RC)"
grep -q "replaced *vmlinux:cmdline_proc_show (fs/proc/cmdline.c)" "$T/gen-cmdline-gen.log" ||
  fail "the report does not name vmlinux:cmdline_proc_show"
in_vm '
expect_not "unpatched" "nines-gen" cat /proc/cmdline
expect_out "apply the generated patch" "transition complete" nines kernel apply $T/c.patch
expect_out "effect visible" "nines-gen: " cat /proc/cmdline
expect_out "the command line still follows" "console=" cat /proc/cmdline
expect_out "listed" "vmlinux:cmdline_proc_show" nines kernel list
expect_out "revert" "reverted" nines kernel revert cmdline-gen
expect_not "effect gone" "nines-gen" cat /proc/cmdline
no_livepatch "nothing left"
'
