#!/usr/bin/env bash
# End-to-end test of `nines check --cve-data` (issue 16): a root folder with dpkg's status,
# file lists, log (a gzip rotation too) and os-release, a tracker file in Debian's format,
# processes this script starts that map package files it then replaces, a user-space live
# patch applied with `nines apply` from a signed bundle naming a CVE, a kernel livepatch
# (its sysfs folders under the root, its signed bundle naming a CVE), and the running
# kernel given in Debian's `uname -v` form. Every state is checked, including a CVE fixed
# before the version the process runs (not listed). ctest runs it as PID 1 of
# `unshare --pid --fork --mount-proc`, so the only processes visible are this script's own.
# Usage: cve_cli_test.sh NINES HOLDER TESTLIB
set -uo pipefail
NINES=$(readlink -f "$1") HOLDER=$(readlink -f "$2") LIB=$(readlink -f "$3")
HERE=$(dirname "$(readlink -f "$0")")
if [ "$$" != 1 ]; then echo "cve_cli_test: must run as PID 1 of a private PID namespace" >&2; exit 1; fi

T=$(mktemp -d "${TMPDIR:-/tmp}/nines-cve-cli-XXXXXX")
cleanup() { exec 8>&- 2>/dev/null; wait 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; echo "--- output:"; echo "$out" | head -80; echo "--- stderr:"; cat "$T/err"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
check() { out=$("$NINES" check "$@" 2>"$T/err"); rc=$?; }
expect_rc() { [ "$rc" = "$1" ] || { fail "$2: exit $rc, expected $1"; return 1; }; }
expect_line() { grep -qxF -- "$1" <<<"$out" || { fail "$2: no line '$1'"; return 1; }; }
expect_text() { grep -qF -- "$1" <<<"$out" || { fail "$2: no text '$1'"; return 1; }; }
# jq-like queries of the JSON output with python3.
cve() {  # cve ID PACKAGE FIELD -> value ("" when the CVE is not listed)
  python3 -c 'import json,sys
d=json.loads(sys.stdin.read()); i,p,f=sys.argv[1:4]
for c in d["cves"]:
  if c["id"]==i and c["package"]==p:
    v=c[f]; print(",".join(str(x["pid"]) for x in v) if f=="processes" else (",".join(v) if isinstance(v,list) else v)); break' "$@" <<<"$out"
}

# 0. nines loads libapt-pkg on demand: no DT_NEEDED on it (issue 12).
if readelf -d "$NINES" | grep -q 'libapt-pkg'; then fail "nines has a DT_NEEDED on libapt-pkg"; else pass "nines does not link libapt-pkg"; fi

# 1. The root: kernel images, os-release, dpkg database, trust store.
RUN_REL=$(uname -r)
UV="#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"
R="$T/root"
mkdir -p "$R/boot" "$R/etc/nines/trusted-keys.d" "$R/var/lib/dpkg/info" "$R/var/log" \
         "$R/var/lib/nines/bundles" "$R/sys/kernel/livepatch" "$R/lib/firmware" "$T/lib"
le16() { printf "$(printf '\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)))"; }
put() { dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }
bzimage() { truncate -s 2M "$1"; printf 'HdrS' | put "$1" $((0x202)); le16 $((0x300)) | put "$1" $((0x20e)); printf '%s' "$2" | put "$1" $((0x500)); }
bzimage "$R/boot/vmlinuz-$RUN_REL" "$RUN_REL (test@nines) $UV"
bzimage "$R/boot/vmlinuz-99.0.0-1-test" "99.0.0-1-test (test@nines) #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)"
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n' >"$R/etc/os-release"
cat >"$R/var/lib/dpkg/status" <<ST
Package: libcvefoo1
Status: install ok installed
Architecture: amd64
Source: cvefoo
Version: 1.3-1

Package: libcvebar1
Status: install ok installed
Architecture: amd64
Source: cvebar (2.0-1)
Version: 2.0-1+b1

Package: linux-image-99.0.0-1-test
Status: install ok installed
Architecture: amd64
Source: linux-signed-amd64 (6.1.119+1)
Version: 6.1.119-1

Package: linux-libc-dev
Status: install ok installed
Architecture: amd64
Source: linux
Version: 6.1.119-1
ST
printf '/.\n/usr\n%s\n' "$T/lib/libcvefoo.so.1" >"$R/var/lib/dpkg/info/libcvefoo1:amd64.list"
printf '/.\n%s\n' "$T/lib/libcvebar.so.1" >"$R/var/lib/dpkg/info/libcvebar1:amd64.list"
"$NINES" keygen -o "$T/keys" >/dev/null || { echo "keygen failed"; exit 1; }
cp "$T/keys/publisher.pub" "$R/etc/nines/trusted-keys.d/"

# 2. The tracker's data, in Debian's format.
cat >"$T/tracker.json" <<'JS'
{"cvefoo": {
  "CVE-2026-1001": {"description": "fixed before the version the process runs", "scope": "remote",
    "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "1.3-1"}, "fixed_version": "1.1-1", "urgency": "high"}}},
  "CVE-2026-1002": {"description": "fixed by the upgrade the process has not restarted for",
    "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "1.3-1"}, "fixed_version": "1.3-1", "urgency": "medium"},
                 "sid": {"status": "resolved", "repositories": {"sid": "1.3-1"}, "fixed_version": "1.0-1", "urgency": "medium"}}},
  "CVE-2026-1003": {"description": "fixed in a version not installed",
    "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "1.3-1"}, "fixed_version": "1.4-1", "urgency": "low"}}},
  "CVE-2026-1004": {"description": "no fix yet",
    "releases": {"bookworm": {"status": "open", "repositories": {"bookworm": "1.3-1"}, "urgency": "unimportant", "nodsa": "Minor issue"}}},
  "CVE-2026-1005": {"description": "never affected bookworm",
    "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "1.3-1"}, "fixed_version": "0", "urgency": "unimportant"}}}},
 "cvebar": {
  "CVE-2026-2001": {"description": "live-patched",
    "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "2.0-1"}, "fixed_version": "2.0-1", "urgency": "low"}}}},
 "linux": {
  "CVE-2026-3001": {"description": "kernel, live-patched",
    "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "6.1.119-1"}, "fixed_version": "6.1.119-1", "urgency": "high"}}},
  "CVE-2026-3002": {"description": "kernel, fixed in the installed kernel only",
    "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "6.1.119-1"}, "fixed_version": "6.1.119-1", "urgency": "medium"}}},
  "CVE-2026-3003": {"description": "kernel, fixed in the running one",
    "releases": {"bookworm": {"status": "resolved", "repositories": {"bookworm": "6.1.119-1"}, "fixed_version": "6.1.70-1", "urgency": "high"}}}},
 "unrelated": {"CVE-2026-9999": {"releases": {"bookworm": {"status": "open", "urgency": "high"}}}}}
JS

# 3. Processes that map package files, which are then upgraded (replaced) as dpkg does.
mkfifo "$T/fifo"
start_holder() {
  local outf=$1; shift
  "$@" <"$T/fifo" >"$outf" 8>&- &
  HPID=$!
  [ -e /proc/self/fd/8 ] || exec 8>"$T/fifo"
  for _ in $(seq 100); do grep -q ready "$outf" 2>/dev/null && return 0; sleep 0.05; done
  echo "holder $* did not start"; exit 1
}
cp "$LIB" "$T/lib/libcvefoo.so.1"
cp "$LIB" "$T/lib/libcvebar.so.1"
start_holder "$T/h1.out" "$HOLDER" "$T/lib/libcvefoo.so.1"; H1=$HPID
start_holder "$T/h2.out" "$HOLDER" "$T/lib/libcvebar.so.1"; H2=$HPID

# A user-space live patch from a signed bundle naming CVE-2026-2001, applied to H2.
cat >"$T/bar.toml" <<'TOML'
id = "bar-fix"
version = 1
kind = "userspace"
published = "2026-11-29T18:00:00Z"
[[cves]]
id = "CVE-2026-2001"
severity = "high"
url = "https://www.cve.org/CVERecord?id=CVE-2026-2001"
TOML
if ! "$NINES" build --target "$T/lib/libcvebar.so.1" --id bar-fix -o "$T/bar.patch" "$HERE/testlib_fix.c" >"$T/build.log" 2>&1 ||
   ! "$NINES" bundle create --patch "$T/bar.patch" --manifest "$T/bar.toml" --key "$T/keys/publisher.key" \
       -o "$R/var/lib/nines/bundles/bar.bundle" >>"$T/build.log" 2>&1 ||
   ! "$NINES" apply "$R/var/lib/nines/bundles/bar.bundle" --pid "$H2" --trust "$R/etc/nines/trusted-keys.d" >>"$T/build.log" 2>&1; then
  cat "$T/build.log"; echo "could not build and apply the user-space bundle"; exit 1
fi

# A kernel livepatch, as sysfs shows it, and its signed bundle naming CVE-2026-3001 (the
# payload is a stand-in object with kernel patch metadata: it is verified, never loaded).
mkdir -p "$R/sys/kernel/livepatch/nines_kfix" "$R/sys/module/nines_kfix/parameters"
echo 1 >"$R/sys/kernel/livepatch/nines_kfix/enabled"
echo 0 >"$R/sys/kernel/livepatch/nines_kfix/transition"
echo kfix >"$R/sys/module/nines_kfix/parameters/nines_id"
echo 1 >"$R/sys/module/nines_kfix/parameters/nines_version"
echo 'int nines_stand_in;' >"$T/k.c" && gcc -c "$T/k.c" -o "$T/k.o"
printf '{"format":1,"kind":"kernel","id":"kfix","module":"nines_kfix","kernel":{"release":"%s"}}' "$RUN_REL" >"$T/kmeta.json"
objcopy --add-section .nines.meta="$T/kmeta.json" "$T/k.o"
cat >"$T/k.toml" <<'TOML'
id = "kfix"
version = 1
kind = "kernel"
published = "2026-11-29T18:00:00Z"
[[cves]]
id = "CVE-2026-3001"
severity = "high"
url = "https://www.cve.org/CVERecord?id=CVE-2026-3001"
TOML
"$NINES" bundle create --patch "$T/k.o" --manifest "$T/k.toml" --key "$T/keys/publisher.key" \
  -o "$R/var/lib/nines/bundles/kfix.bundle" >"$T/kb.log" 2>&1 || { cat "$T/kb.log"; echo "kernel bundle"; exit 1; }

# The upgrades, as dpkg does them (new inode) and logs them (a rotation compressed).
now() { date '+%Y-%m-%d %H:%M:%S'; }
printf '%s upgrade libcvefoo1:amd64 1.1-1 1.2-1\n' "$(date -d '10 days ago' '+%Y-%m-%d %H:%M:%S')" | gzip >"$R/var/log/dpkg.log.2.gz"
printf '%s startup archives unpack\n%s upgrade libcvefoo1:amd64 1.2-1 1.3-1\n%s upgrade libcvebar1:amd64 1.9-1 2.0-1+b1\n' \
  "$(now)" "$(now)" "$(now)" >"$R/var/log/dpkg.log"
for l in libcvefoo.so.1 libcvebar.so.1; do cp "$T/lib/$l" "$T/lib/$l.new" && mv "$T/lib/$l.new" "$T/lib/$l"; done

# 4. Every state, in JSON.
check --root "$R" --cve-data "$T/tracker.json" --uname-v "$UV" --format json
expect_rc 2 "json" || true
[ "$(cve CVE-2026-1001 libcvefoo1 state)" = "" ] && pass "fixed at or before the version the process runs (1.2-1): not listed" || fail "CVE-2026-1001 listed"
[ "$(cve CVE-2026-1005 libcvefoo1 state)" = "" ] && pass "never affected: not listed" || fail "CVE-2026-1005 listed"
[ "$(cve CVE-2026-1002 libcvefoo1 state)" = "restart-needed" ] && [ "$(cve CVE-2026-1002 libcvefoo1 processes)" = "$H1" ] && \
  [ "$(cve CVE-2026-1002 libcvefoo1 fixed_version)" = "1.3-1" ] && pass "restart-needed, with the process that runs the replaced 1.2-1" || fail "CVE-2026-1002: $(cve CVE-2026-1002 libcvefoo1 state) $(cve CVE-2026-1002 libcvefoo1 processes)"
[ "$(cve CVE-2026-1003 libcvefoo1 state)" = "fix-not-installed" ] && pass "fix-not-installed" || fail "CVE-2026-1003: $(cve CVE-2026-1003 libcvefoo1 state)"
[ "$(cve CVE-2026-1004 libcvefoo1 state)" = "unfixed" ] && [ "$(cve CVE-2026-1004 libcvefoo1 severity)" = "negligible" ] && pass "unfixed, severity from the tracker's urgency" || fail "CVE-2026-1004"
[ "$(cve CVE-2026-2001 libcvebar1 state)" = "livepatched" ] && [ "$(cve CVE-2026-2001 libcvebar1 livepatches)" = "bar-fix" ] && \
  [ "$(cve CVE-2026-2001 libcvebar1 severity)" = "high" ] && pass "user-space live patch naming the CVE: livepatched, the bundle's rating" || fail "CVE-2026-2001: $(cve CVE-2026-2001 libcvebar1 state)"
[ "$(cve CVE-2026-3001 linux state)" = "livepatched" ] && [ "$(cve CVE-2026-3001 linux livepatches)" = "kfix" ] && pass "kernel livepatch naming the CVE: livepatched" || fail "CVE-2026-3001: $(cve CVE-2026-3001 linux state)"
[ "$(cve CVE-2026-3002 linux state)" = "reboot-needed" ] && [ "$(cve CVE-2026-3002 linux installed_version)" = "6.1.76-1" ] && pass "kernel fix installed, not running: reboot-needed" || fail "CVE-2026-3002: $(cve CVE-2026-3002 linux state)"
[ "$(cve CVE-2026-3003 linux state)" = "" ] && pass "kernel fix already running: not listed" || fail "CVE-2026-3003 listed"
[ "$(cve CVE-2026-9999 unrelated state)" = "" ] && pass "a source not installed: not listed" || fail "CVE-2026-9999 listed"
python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); sys.exit(0 if any("CVE-2026-3002 (medium, not live-patched)" in r for r in d["verdict"]["reboot_reasons"]) else 1)' <<<"$out" && \
  pass "reboot verdict from the data: a medium kernel fix not live-patched needs a reboot" || fail "reboot reason for CVE-2026-3002"

# 5. Batch and text summaries.
check --root "$R" --cve-data "$T/tracker.json" --uname-v "$UV" --format batch
expect_line "NINES-CVE: unfixed negligible 1" "batch" && expect_line "NINES-CVE: fix-not-installed low 1" "batch" && \
  expect_line "NINES-CVE: restart-needed medium 1" "batch" && expect_line "NINES-CVE: reboot-needed medium 1" "batch" && \
  expect_line "NINES-CVE: livepatched high 2" "batch" && expect_line "NINES-REBOOT: yes" "batch" && pass "batch: NINES-CVE: STATE SEVERITY COUNT"
check --root "$R" --cve-data "$T/tracker.json" --uname-v "$UV"
expect_text "CVEs (bookworm data" "text" && expect_text "restart-needed: 1 medium" "text" && \
  expect_text "CVE-2026-1002 libcvefoo1 (medium, fixed in 1.3-1): restart-needed: pid $H1" "text" && pass "text: summary and the CVEs a restart removes"

# 6. Only high kernel fixes, all live-patched: the reboot waits for the window.
python3 -c 'import json; d=json.load(open("'"$T/tracker.json"'")); del d["linux"]["CVE-2026-3002"]; json.dump(d, open("'"$T/tracker2.json"'","w"))'
check --root "$R" --cve-data "$T/tracker2.json" --uname-v "$UV" --format batch
expect_line "NINES-REBOOT: yes-kernel-livepatches-applied" "covered" && pass "every pending kernel fix rated high and live-patched: reboot deferred"

# 7. The agent's copy is used without --cve-data; no data at all costs nothing and says so.
cp "$T/tracker.json" "$R/var/lib/nines/cve-data.json"
check --root "$R" --uname-v "$UV" --format batch
expect_line "NINES-CVE: restart-needed medium 1" "agent copy" && pass "the agent's copy under /var/lib/nines is used by default"
# The agent's report carries the exposure (its exchange child runs the advisor; the real
# uname -v here is not a Debian kernel's, so only the packages' CVEs count).
out=$(echo "{\"op\":\"advisor\",\"root\":\"$R\"}" | "$NINES" agent-exchange 2>"$T/err")
python3 -c 'import json,sys
e=json.loads(sys.stdin.read())["advisor"]["exposure"]
ok = (e["release"] == "bookworm" and e["cves"]["restart-needed"] == ["CVE-2026-1002"] and
      e["cves"]["livepatched"] == ["CVE-2026-2001"] and e["cves"]["unfixed"] == ["CVE-2026-1004"] and
      {"state": "fix-not-installed", "severity": "low", "count": 1} in e["counts"] and not e["truncated"])
sys.exit(0 if ok else 1)' <<<"$out" && pass "the agent reports exposure (counts and ids by state) with the advisor verdict" || fail "agent exposure"
rm "$R/var/lib/nines/cve-data.json"
check --root "$R" --uname-v "$UV" --format json
python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); sys.exit(0 if d["cves"]==[] and not d["cve"]["checked"] and "no CVE data" in d["cve"]["notes"][0] else 1)' <<<"$out" && \
  expect_rc 2 "no data" && pass "no CVE data: skipped with a note, same exit status" || fail "no data"

# 8. Bad data: exit 3 naming the file and the place.
printf '{"cvefoo": {"CVE-1": {"releases": {"bookworm": {"status": 7}}}}}' >"$T/bad.json"
check --root "$R" --cve-data "$T/bad.json" --uname-v "$UV"
expect_rc 3 "bad data" && grep -q "bad.json.*cvefoo/CVE-1/releases/bookworm/status: expected a string" "$T/err" && pass "bad tracker data: exit 3 naming file and field" || fail "bad data message: $(cat "$T/err")"
rm "$R/etc/os-release"
check --root "$R" --cve-data "$T/tracker.json" --uname-v "$UV"
expect_rc 3 "no os-release" && grep -q "os-release" "$T/err" && pass "no os-release: exit 3 naming it" || fail "no os-release: $(cat "$T/err")"

echo "cve_cli_test: $failures failure(s)"
[ "$failures" = 0 ]
