#!/usr/bin/env bash
# What the generator refuses or finds nothing to do for, each with its reason and no
# output written: a struct layout change (binfmt_misc's Node gains a member), a change
# to a header the whole kernel includes, a diff that only moves line numbers.
. "$(dirname "$0")/lib.sh"
gen_patch layout "$T/l.patch" "$HERE/fixes/struct_layout.patch"
[ "$GEN_RC" = 1 ] || fail "a struct layout change was not refused (exit $GEN_RC)"
grep -q "Node" "$T/gen-layout.log" || fail "the refusal does not name the structure Node"
grep -q "nines_hits" "$T/gen-layout.log" || fail "the refusal does not name the new member"
[ ! -e "$T/l.patch" ] || fail "a refused fix wrote a patch"
gen_patch header "$T/h.patch" "$HERE/fixes/header_widely.patch"
[ "$GEN_RC" = 1 ] || fail "a change to seq_file.h was not refused (exit $GEN_RC)"
grep -q "include/linux/seq_file.h is included by more than" "$T/gen-header.log" ||
  fail "the refusal does not name the header"
gen_patch lines "$T/n.patch" "$HERE/fixes/line_only.patch"
[ "$GEN_RC" = 3 ] || fail "a line-number-only diff did not end with nothing to patch (exit $GEN_RC)"
grep -q "no change in the compiled code" "$T/gen-lines.log" || fail "no 'no change' note"
[ ! -e "$T/n.patch" ] || fail "nothing to patch, yet a patch was written"
echo "ok: refusals"
