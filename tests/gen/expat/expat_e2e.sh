#!/usr/bin/env bash
# End-to-end scenarios of `nines build --diff` on a real library: expat 2.5.0 from its
# Debian source package (bookworm), built by this script, patched live in a process this
# script starts, with real security fixes (Debian's debian/patches/CVE-*.patch, taken
# from upstream) and a few small fixes written for the cases no CVE of expat 2.5.0 shows.
#
#   expat_e2e.sh NINES PROBE SCENARIO
#
# Big things are cached under /var/cache/nines/gen-test (the source package, the target
# library, the generator's original build): the first scenario pays for them.
set -euo pipefail

NINES=$1
PROBE=$2
SCENARIO=$3
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=/var/cache/nines/gen-test
VERSION=2.5.0-1+deb12u2
SRC=$CACHE/expat-2.5.0
WORK=$(mktemp -d /tmp/nines-gen-e2e.XXXXXX)
PROBE_PID=
cleanup() {
  if [ -n "$PROBE_PID" ]; then kill "$PROBE_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

# The source package, unpacked without Debian's patches: upstream 2.5.0 as released, the
# tree the vulnerable library was built from. The CVE fixes are in debian/patches.
if [ ! -f "$SRC/.complete" ]; then
  rm -rf "$SRC" "$CACHE/dl"
  mkdir -p "$CACHE/dl"
  (cd "$CACHE/dl" && apt-get source --download-only "expat=$VERSION" >/dev/null 2>&1) ||
    fail "apt-get source expat=$VERSION (scripts/setup adds the deb-src lines)"
  # apt-get checked the .dsc against the signed Release file; dpkg-source has no keyring.
  dpkg-source --skip-patches -x "$CACHE/dl/expat_$VERSION.dsc" "$SRC" >/dev/null 2>&1
  touch "$SRC/.complete"
fi
PATCHES=$SRC/debian/patches

# The build, as a shell command at the tree's root: CMake, only the library, the flags of
# a Debian build (-g -O2, assertions on).
BUILD="cmake -S expat -B _b -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_C_FLAGS='-g -O2' \
-DEXPAT_BUILD_TESTS=OFF -DEXPAT_BUILD_TOOLS=OFF -DEXPAT_BUILD_EXAMPLES=OFF \
-DEXPAT_BUILD_DOCS=OFF -DEXPAT_BUILD_PKGCONFIG=OFF >/dev/null && ninja -C _b >/dev/null"

# The target: the library as a user would have built it from that tree (no wrapper).
TARGET_DIR=$CACHE/target
LIB=$TARGET_DIR/tree/_b/libexpat.so.1.8.10
if [ ! -f "$TARGET_DIR/.complete" ]; then
  rm -rf "$TARGET_DIR"
  mkdir -p "$TARGET_DIR/tree"
  cp -a "$SRC/." "$TARGET_DIR/tree/"
  (cd "$TARGET_DIR/tree" && sh -c "$BUILD") || fail "building the target library"
  touch "$TARGET_DIR/.complete"
fi
flock -u 9

generate() {  # NAME DIFF... ; sets RC and OUT
  local name=$1
  shift
  local args=()
  for d in "$@"; do args+=(--diff "$d"); done
  set +e
  "$NINES" build --target "$LIB" --source "$SRC" "${args[@]}" --build "$BUILD" \
    --cache "$CACHE/gen-cache" --id "$name" -o "$WORK/$name.patch" >"$WORK/$name.out" 2>&1
  RC=$?
  set -e
  OUT=$(cat "$WORK/$name.out")
  echo "--- nines build ($name): exit $RC"
  echo "$OUT"
}

start_probe() {
  coproc PROBE_CO { exec "$PROBE" "$LIB"; }
  PROBE_PID=$PROBE_CO_PID
  local line
  read -r -t 20 line <&"${PROBE_CO[0]}" || fail "the probe did not start"
  [[ $line == ready* ]] || fail "probe: $line"
}
ask() {
  echo "$1" >&"${PROBE_CO[1]}"
  local line
  read -r -t 20 line <&"${PROBE_CO[0]}" || fail "no answer to '$1'"
  echo "$line"
}
expect_eq() { [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"; }
expect_in() { grep -qF -- "$2" <<<"$1" || fail "$3: no '$2' in the output"; }

apply_and_revert() {  # NAME COMMAND BEFORE AFTER
  local name=$1 cmd=$2 before=$3 after=$4
  start_probe
  expect_eq "$(ask "$cmd")" "$before" "before the patch"
  "$NINES" apply "$WORK/$name.patch" --pid "$PROBE_PID" || fail "nines apply"
  expect_eq "$(ask "$cmd")" "$after" "with the patch applied"
  "$NINES" list --pid "$PROBE_PID" | grep -q "$name" || fail "nines list does not show $name"
  "$NINES" revert "$name" --pid "$PROBE_PID" || fail "nines revert"
  expect_eq "$(ask "$cmd")" "$before" "after the revert"
  expect_eq "$(ask "parse <a><b/><c x='1'/></a>")" "status=1 error=0 elements=3" "parsing still works"
}

case $SCENARIO in
  exported-function)
    # CVE-2024-45490 part 1: XML_ParseBuffer accepts a negative length.
    generate cve-2024-45490 "$PATCHES/CVE-2024-45490.patch"
    expect_eq "$RC" 0 "exit status"
    expect_in "$OUT" "replaced: XML_ParseBuffer" "report"
    expect_in "$OUT" "changed in the diff" "report"
    # XML_ERROR_INVALID_ARGUMENT is 41.
    apply_and_revert cve-2024-45490 negative "status=1 error=0" "status=0 error=41"
    ;;
  line-number-only)
    # CVE-2024-45491: its check is compiled only where int is as wide as size_t; on
    # x86-64 it is preprocessed away, and the ten lines it adds would move every
    # assert() below it, without the #line directives the generator adds.
    generate cve-2024-45491 "$PATCHES/CVE-2024-45491.patch"
    expect_eq "$RC" 3 "exit status (nothing to patch)"
    expect_in "$OUT" "no function of the target changes" "report"
    expect_in "$OUT" "no code change: expat/lib/xmlparse.c" "report"
    [ ! -e "$WORK/cve-2024-45491.patch" ] || fail "an output was written"
    ;;
  layout-refused)
    # CVE-2023-52425 (reparse deferral) adds members to struct XML_ParserStruct: a live
    # patch would read the running parsers' objects with the new layout.
    generate cve-2023-52425 "$PATCHES/expat-2.5.0-CVE-2023-52425.patch"
    expect_eq "$RC" 1 "exit status"
    expect_in "$OUT" "refused" "report"
    expect_in "$OUT" "struct XML_ParserStruct changed layout" "report"
    expect_in "$OUT" "member m_reparseDeferralEnabled added" "report"
    [ ! -e "$WORK/cve-2023-52425.patch" ] || fail "an output was written"
    ;;
  inlined-static)
    generate inlined "$HERE/../diffs/inlined-static.patch"
    expect_eq "$RC" 0 "exit status"
    expect_in "$OUT" "gcc inlined the changed" "report"
    expect_in "$OUT" "replaced: prologInitProcessor" "report"
    # XML_ERROR_UNKNOWN_ENCODING is 18.
    apply_and_revert inlined "encoding x-nines <a/>" "status=0 error=18 elements=0" \
      "status=1 error=0 elements=1"
    ;;
  new-helper)
    generate helper "$HERE/../diffs/new-helper.patch"
    expect_eq "$RC" 0 "exit status"
    expect_in "$OUT" "new function: nines_test_reject_len" "report"
    apply_and_revert helper negative "status=1 error=0" "status=0 error=41"
    ;;
  two-units)
    generate twounits "$HERE/../diffs/two-units.patch"
    expect_eq "$RC" 0 "exit status"
    expect_in "$OUT" "expat/lib/xmlparse.c" "report"
    expect_in "$OUT" "expat/lib/xmltok.c" "report"
    apply_and_revert twounits version "version=expat_2.5.0" "version=expat_2.5.0+nines"
    ;;
  global-refused)
    generate global "$HERE/../diffs/changed-global.patch"
    expect_eq "$RC" 1 "exit status"
    expect_in "$OUT" "refused" "report"
    expect_in "$OUT" "changed its initial value" "report"
    ;;
  *)
    fail "unknown scenario $SCENARIO"
    ;;
esac
echo "PASS: $SCENARIO"
