#!/usr/bin/env bash
# Cost of `nines build --diff` against the builds it cannot avoid (issue 13's target:
# no more than one full build of the library, plus the rebuild of the changed
# translation units, plus 10 s). On expat 2.5.0 (the tree the e2e tests unpack into
# /var/cache/nines/gen-test; run ctest -R gen_expat once first) with CVE-2024-45490.
#
#   bench/gen_bench.sh build/src/cli/nines
#
# Prints, in seconds: the full build, the rebuild of xmlparse.c, the generation with no
# cache (it builds the original itself), and the generation with the original cached.
set -euo pipefail
NINES=$(realpath "$1")
C=/var/cache/nines/gen-test
SRC=$C/expat-2.5.0
LIB=$C/target/tree/_b/libexpat.so.1.8.10
[ -f "$SRC/.complete" ] && [ -f "$LIB" ] || { echo "run ctest -R gen_expat first" >&2; exit 2; }
BUILD="cmake -S expat -B _b -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_C_FLAGS='-g -O2' \
-DEXPAT_BUILD_TESTS=OFF -DEXPAT_BUILD_TOOLS=OFF -DEXPAT_BUILD_EXAMPLES=OFF \
-DEXPAT_BUILD_DOCS=OFF -DEXPAT_BUILD_PKGCONFIG=OFF >/dev/null && ninja -C _b >/dev/null"
DIFF=$SRC/debian/patches/CVE-2024-45490.patch
W=$(mktemp -d /tmp/nines-gen-bench.XXXXXX)
trap 'rm -rf "$W"' EXIT
now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc; }

cp -a "$SRC/." "$W/plain"
t0=$(now); (cd "$W/plain" && sh -c "$BUILD"); t1=$(now)
touch "$W/plain/expat/lib/xmlparse.c"
t2=$(now); (cd "$W/plain" && ninja -C _b >/dev/null); t3=$(now)
t4=$(now)
"$NINES" build --target "$LIB" --source "$SRC" --diff "$DIFF" --build "$BUILD" --cache '' \
  -o "$W/cold.patch" >/dev/null
t5=$(now)
"$NINES" build --target "$LIB" --source "$SRC" --diff "$DIFF" --build "$BUILD" \
  --cache "$W/cache" -o "$W/prime.patch" >/dev/null
t6=$(now)
"$NINES" build --target "$LIB" --source "$SRC" --diff "$DIFF" --build "$BUILD" \
  --cache "$W/cache" -o "$W/warm.patch" >/dev/null
t7=$(now)
full=$(secs "$t0" "$t1"); rebuild=$(secs "$t2" "$t3"); cold=$(secs "$t4" "$t5"); warm=$(secs "$t6" "$t7")
echo "full build:             $full s"
echo "rebuild of xmlparse.c:  $rebuild s"
echo "generation, no cache:   $cold s (overhead over full + rebuild: $(echo "$cold - $full - $rebuild" | bc) s)"
echo "generation, cached:     $warm s"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
