#!/usr/bin/env bash
# Patches for another kernel are refused before anything is loaded: a bundle built for
# another release, and a patch for the right release but another build-id.
. "$(dirname "$0")/lib.sh"
OTHER="${REL%%-*}-0-other-amd64"
# The same headers, but the patch says it is for another release.
"$NINES" kernel build --kernel "$OTHER" --headers "/usr/src/linux-headers-$REL" --id other-rel \
  -o "$T/other.patch" "$HERE/patches/cmdline_v1.c" >"$T/build-other.log" 2>&1 ||
  { cat "$T/build-other.log" >&2; fail "build for $OTHER"; }
# The right release, but another build-id (a kernel folder with a made-up build-id).
mkdir -p "$T/kdir" && echo 0123456789abcdef0123456789abcdef01234567 >"$T/kdir/build-id"
"$NINES" kernel build --kernel "$REL" --kernel-dir "$T/kdir" --id other-bid \
  -o "$T/bid.patch" "$HERE/patches/cmdline_v1.c" >"$T/build-bid.log" 2>&1 ||
  { cat "$T/build-bid.log" >&2; fail "build with another build-id"; }
make_keys
make_bundle "$T/other.patch" other-rel 1 "$T/other.bundle"
in_vm "
expect_fail 'bundle for another release refused' 'built for kernel $OTHER, this kernel is $REL' nines kernel apply --trust \$T/trust \$T/other.bundle
expect_fail 'patch for another build-id refused' 'built for kernel build-id 0123456789abcdef' nines kernel apply \$T/bid.patch
expect_not 'nothing applied' 'nines-cmdline' cat /proc/cmdline
no_livepatch 'nothing loaded'
"
