#!/usr/bin/env bash
# Issue 3 end to end on a real process this script starts: create -> verify -> apply ->
# list -> revert through signed bundles, and every refusal of `nines apply B.bundle`, each
# followed by a check that the process is untouched.
# Usage: apply_e2e.sh /path/to/nines /path/to/tests/ulp
set -euo pipefail
NINES="$1"
ULP="$2"
T="$(mktemp -d /tmp/nines-bundle-e2e-XXXXXX)"
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$T"
}
trap cleanup EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }

# The target: libulptarget.so and the program that links it (tests/ulp/fixtures), plus a
# second build of the library with another build-id.
gcc -O2 -fPIC -shared -Wl,--build-id -o libulptarget.so "$ULP/fixtures/libulptarget.c"
mkdir other && gcc -O2 -fPIC -shared -Wl,--build-id -DLIB_FLAVOUR=1 \
  -o other/libulptarget.so "$ULP/fixtures/libulptarget.c"
gcc -O2 -o ulptarget "$ULP/fixtures/ulptarget.c" -L. -lulptarget -Wl,-rpath,"$T" -lpthread

mkfifo in
./ulptarget 0 < in > out 2>&1 &
PID=$!
exec 7>in
for _ in $(seq 100); do grep -q ready out 2>/dev/null && break; sleep 0.05; done
grep -q ready out || fail "target did not start"

# values: asks the target for its current results; prints the answer line.
values() {
  local n; n=$(wc -l < out)
  echo values >&7
  for _ in $(seq 200); do [ "$(wc -l < out)" -gt "$n" ] && break; sleep 0.05; done
  tail -1 out
}
expect_values() {
  local got; got="$(values)"
  case "$got" in "lib=$1 other=$2 "*) ;; *) fail "after $3: expected lib=$1 other=$2, got '$got'";; esac
}
# refuse REGEX CMD...: must exit non-zero naming the cause (case-insensitive extended
# regex; file names here never match a needle), and the caller then checks that the
# process is as it was.
refuse() {
  local needle="$1"; shift
  if "$@" >res.txt 2>&1; then cat res.txt >&2; fail "accepted: $*"; fi
  grep -qiE -- "$needle" res.txt || { cat res.txt >&2; fail "no /$needle/ in the output of: $*"; }
  echo "refused as expected: $(grep -iE -- "$needle" res.txt | head -1)"
}

expect_values 1 100 "start"

# Publisher side: two cumulative releases of one patch, and one for the other library.
"$NINES" build --target libulptarget.so --id fix-lib -o v1.patch "$ULP/patches/lib_v1.c" >/dev/null
"$NINES" build --target libulptarget.so --id fix-lib -o v2.patch "$ULP/patches/lib_v2.c" >/dev/null
"$NINES" build --target other/libulptarget.so --id fix-lib -o other.patch "$ULP/patches/lib_v2.c" >/dev/null
manifest() {
  cat <<TOML
id = "fix-lib"
version = $1
kind = "userspace"
description = "lib_value fix, release $1"
published = "2026-11-29T18:00:00Z"

[[cves]]
id = "CVE-2026-4242"
severity = "medium"
description = "lib_value returns the wrong answer"
url = "https://example.org/CVE-2026-4242"
TOML
}
manifest 1 > v1.toml
manifest 2 > v2.toml
"$NINES" keygen -o keys >/dev/null
"$NINES" keygen -o stranger >/dev/null
mkdir trust && cp keys/publisher.pub trust/
mkdir strangers && cp stranger/publisher.pub strangers/
"$NINES" bundle create --patch v1.patch --manifest v1.toml --key keys/publisher.key -o v1.bundle >/dev/null
"$NINES" bundle create --patch v2.patch --manifest v2.toml --key keys/publisher.key -o v2.bundle >/dev/null
"$NINES" bundle create --patch other.patch --manifest v2.toml --key keys/publisher.key -o other.bundle >/dev/null
"$NINES" bundle verify v2.bundle --trust trust >/dev/null

# Forged and damaged bundles, made from v2.bundle.
python3 - <<'PY'
import struct
b = open("v2.bundle", "rb").read()
count = struct.unpack_from("<I", b, 12)[0]
assert count == 4
# unsigned: the same first three sections, count 3
pos = 16
for _ in range(3):
    t, n = struct.unpack_from("<II", b, pos); pos += 8 + n
open("nosig.bundle", "wb").write(b[:12] + struct.pack("<I", 3) + b[16:pos])
bad = bytearray(b); bad[-1] ^= 1; open("flip.bundle", "wb").write(bad)
dig = bytearray(b); dig[pos - 100] ^= 1; open("paybit.bundle", "wb").write(dig)
open("half.bundle", "wb").write(b[: len(b) // 2])
PY

refuse "unsigned \(no signature section\)" "$NINES" apply nosig.bundle --pid "$PID" --trust trust
expect_values 1 100 "unsigned bundle"
refuse "bad signature" "$NINES" apply flip.bundle --pid "$PID" --trust trust
expect_values 1 100 "bad signature"
refuse "signed by untrusted key [0-9a-f]{32}" "$NINES" apply v2.bundle --pid "$PID" --trust strangers
expect_values 1 100 "untrusted key"
refuse "payload digest mismatch \(stated sha256 [0-9a-f]{64}, computed" "$NINES" apply paybit.bundle --pid "$PID" --trust trust
expect_values 1 100 "digest mismatch"
refuse "truncated" "$NINES" apply half.bundle --pid "$PID" --trust trust
expect_values 1 100 "truncated bundle"
refuse "build.?id" "$NINES" apply other.bundle --pid "$PID" --trust trust
expect_values 1 100 "build-id the process does not map"

# The round trip.
"$NINES" apply v1.bundle --pid "$PID" --trust trust >/dev/null || fail "apply v1.bundle"
expect_values 2 200 "apply v1"
"$NINES" apply v2.bundle --pid "$PID" --trust trust >/dev/null || fail "apply v2.bundle"
expect_values 3 100 "apply v2 (cumulative)"
"$NINES" list --pid "$PID" > list.txt || fail "list"
grep -q "fix-lib" list.txt || { cat list.txt >&2; fail "list does not show fix-lib"; }
refuse "downgrade|older" "$NINES" apply v1.bundle --pid "$PID" --trust trust
expect_values 3 100 "downgrade refused"
# A rebuilt patch under the same id and version (v1's code signed as version 2): never
# "already applied"; the error names both digests.
"$NINES" bundle create --patch v1.patch --manifest v2.toml --key keys/publisher.key -o v2x.bundle >/dev/null
refuse "fix-lib version 2 is applied with sha256 [0-9a-f]{64}; this patch has the same id and version but sha256 [0-9a-f]{64}" \
  "$NINES" apply v2x.bundle --pid "$PID" --trust trust
expect_values 3 100 "same id and version, other content"
"$NINES" apply v2.bundle --pid "$PID" --trust trust | grep -q "already applied" || fail "the same bundle again is not 'already applied'"
# The operator's hand goes lower.
"$NINES" apply v1.bundle --pid "$PID" --trust trust --allow-downgrade >/dev/null || fail "--allow-downgrade"
expect_values 2 200 "downgrade by hand"
"$NINES" apply v2.bundle --pid "$PID" --trust trust >/dev/null || fail "apply v2.bundle again"
expect_values 3 100 "v2 again"
"$NINES" revert fix-lib --pid "$PID" >/dev/null || fail "revert"
expect_values 1 100 "revert"
# The process lock is keyed by the target's identity and removed when done.
ls /run/nines/lock.* /tmp/lock.* 2>/dev/null | grep -E "lock\.$PID$" && fail "a lock file keyed by the pid number"
NS=$(stat -L -c %i /proc/$PID/ns/pid)
if ls /run/nines/lock."$NS-$PID"-* /tmp/lock."$NS-$PID"-* 2>/dev/null; then fail "a lock file left behind for pid $PID"; fi
echo "apply_e2e: all checks passed"
