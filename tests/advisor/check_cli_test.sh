#!/usr/bin/env bash
# End-to-end test of `nines check`: real processes that this script starts, fake roots for
# the kernel, reboot-required, livepatches, microcode and GRUB, and --restart against a
# recorder. ctest runs it as PID 1 of `unshare --pid --fork --mount-proc`, so the only
# processes visible are this script's own.
# Usage: check_cli_test.sh NINES HOLDER TESTLIB
set -uo pipefail
NINES=$(readlink -f "$1") HOLDER=$(readlink -f "$2") LIB=$(readlink -f "$3")
if [ "$$" != 1 ]; then echo "check_cli_test: must run as PID 1 of a private PID namespace" >&2; exit 1; fi

T=$(mktemp -d "${TMPDIR:-/tmp}/nines-check-cli-XXXXXX")
CG=""
cleanup() {
  exec 8>&- 2>/dev/null
  wait 2>/dev/null
  [ -n "$CG" ] && rmdir "$CG" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT

failures=0
fail() { echo "FAIL: $*"; echo "--- output:"; echo "$out"; echo "--- stderr:"; cat "$T/err"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
check() { out=$("$NINES" check "$@" 2>"$T/err"); rc=$?; }
expect_rc() { [ "$rc" = "$1" ] || { fail "$2: exit $rc, expected $1"; return 1; }; }
expect_line() { grep -qxF -- "$1" <<<"$out" || { fail "$2: no line '$1'"; return 1; }; }
expect_text() { grep -qF -- "$1" <<<"$out" || { fail "$2: no text '$1'"; return 1; }; }

# Little-endian binary helpers.
le32() { printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)) $((($1 >> 16) & 255)) $((($1 >> 24) & 255)))"; }
le16() { printf "$(printf '\\x%02x\\x%02x' $(($1 & 255)) $((($1 >> 8) & 255)))"; }
put() { dd of="$1" bs=1 seek="$2" conv=notrunc status=none; }  # stdin -> file at offset

# A 2 MB sparse bzImage whose setup header names version $2.
bzimage() {
  truncate -s 2M "$1"
  printf 'HdrS' | put "$1" $((0x202))
  le16 $((0x300)) | put "$1" $((0x20e))
  printf '%s' "$2" | put "$1" $((0x500))
}

RUN_REL=$(uname -r) RUN_VER=$(uname -v)
new_root() {
  R="$T/root-$1"
  mkdir -p "$R/boot" "$R/var/lib/dpkg/info" "$R/lib/firmware" "$R/run" "$R/sys/kernel/livepatch"
  ln -s /run "$R/var/run"
  bzimage "$R/boot/vmlinuz-$RUN_REL" "$RUN_REL (test@nines) $RUN_VER"
}

# Holders read their stdin from this FIFO; closing fd 8 ends them all.
mkfifo "$T/fifo"
start_holder() {  # start_holder OUTFILE PROGRAM LIB... ; sets HPID
  local outf=$1; shift
  "$@" <"$T/fifo" >"$outf" 8>&- &
  HPID=$!
  [ -e /proc/self/fd/8 ] || exec 8>"$T/fifo"
  for _ in $(seq 100); do grep -q ready "$outf" 2>/dev/null && return 0; sleep 0.05; done
  echo "holder $* did not start"; exit 1
}

# 1. A clean machine: current kernel, nothing stale.
new_root clean
check --root "$R" --format batch
expect_rc 0 "clean" && expect_line "NEEDRESTART-KSTA: 1" "clean" && expect_line "NINES-REBOOT: no" "clean" && pass "clean root: exit 0, KSTA 1"

# 2. A process whose library was deleted: a restart is pending, the process is named.
mkdir -p "$T/lib dir"
cp "$LIB" "$T/lib dir/libgone.so"
cp "$LIB" "$T/lib dir/libswap.so"
start_holder "$T/h1.out" "$HOLDER" "$T/lib dir/libgone.so"; H1=$HPID
start_holder "$T/h2.out" "$HOLDER" "$T/lib dir/libswap.so"; H2=$HPID
rm "$T/lib dir/libgone.so"
cp "$T/lib dir/libswap.so" "$T/lib dir/libswap.so.new" && mv "$T/lib dir/libswap.so.new" "$T/lib dir/libswap.so"
check --root "$R" --format batch
expect_rc 1 "stale" && expect_line "NEEDRESTART-PID: advisor_holder=$H1,$H2" "stale" && pass "deleted and replaced libraries: exit 1, both processes listed"
check --root "$R" --format json
expect_text "\"path\": \"$T/lib dir/libgone.so\"" "json deleted" && expect_text "\"kind\": \"deleted\"" "json deleted" && \
  expect_text "\"path\": \"$T/lib dir/libswap.so\"" "json replaced" && expect_text "\"kind\": \"replaced\"" "json replaced" && pass "json names the stale objects and their kind"
check --root "$R"
expect_text "pid $H1 (advisor_holder, no unit) runs $T/lib dir/libgone.so (deleted)" "text" && pass "text names pid, object and kind"

# 3. Kernel: newer version installed; ABI rebuild; livepatch applied.
new_root newer
bzimage "$R/boot/vmlinuz-99.0.0-1-test" "99.0.0-1-test (test@nines) #1 SMP"
check --root "$R" --format batch
expect_rc 2 "newer kernel" && expect_line "NEEDRESTART-KSTA: 3" "newer kernel" && expect_line "NEEDRESTART-KEXP: 99.0.0-1-test" "newer kernel" && \
  expect_line "NINES-REBOOT: yes" "newer kernel" && pass "newer kernel: exit 2, KSTA 3, KEXP"
mkdir -p "$R/sys/kernel/livepatch/nines_fix1"
echo 1 >"$R/sys/kernel/livepatch/nines_fix1/enabled"
check --root "$R" --format batch
expect_rc 2 "livepatched" && expect_line "NINES-REBOOT: yes-kernel-livepatches-applied" "livepatched" && pass "newer kernel, live-patched: yes-kernel-livepatches-applied"
# The kernel fixes' ratings and coverage come from CVE data: cve_cli_test.sh.
new_root abi
bzimage "$R/boot/vmlinuz-$RUN_REL" "$RUN_REL (test@nines) #2 SMP rebuilt"
check --root "$R" --format batch
expect_rc 2 "abi" && expect_line "NEEDRESTART-KSTA: 2" "abi" && pass "ABI-compatible rebuild: KSTA 2"

# 4. /var/run/reboot-required (an absolute /var/run -> /run link stays inside the root).
new_root rr
echo '*** System restart required ***' >"$R/run/reboot-required"
printf 'libssl3\n' >"$R/run/reboot-required.pkgs"
check --root "$R"
expect_rc 2 "reboot-required" && expect_text "/var/run/reboot-required lists libssl3" "reboot-required" && pass "reboot-required with its package list"

# 5. GRUB upgraded since boot.
new_root grub
printf 'Package: grub-pc\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.06-13+deb12u1\n\n' >"$R/var/lib/dpkg/status"
touch "$R/var/lib/dpkg/info/grub-pc.list"
check --root "$R" --format json
expect_rc 2 "grub" && expect_text '"package": "grub-pc"' "grub" && pass "GRUB upgraded since boot: reboot"
touch -d '2001-01-01' "$R/var/lib/dpkg/info/grub-pc.list"
check --root "$R" --format batch
[ "$rc" != 2 ] && pass "GRUB unchanged since boot: no reboot" || fail "grub before boot gave exit $rc"

# 6. Microcode, Intel and AMD files built here, CPU from a saved cpuinfo.
new_root ucode
mkdir -p "$R/lib/firmware/intel-ucode" "$R/lib/firmware/amd-ucode"
cpuinfo() { printf 'processor\t: 0\nvendor_id\t: %s\ncpu family\t: %d\nmodel\t\t: %d\nstepping\t: %d\nmicrocode\t: %s\nflags\t\t: fpu\n\n' "$@"; }
cpuinfo GenuineIntel 6 143 8 0x2b000500 >"$T/cpuinfo-intel"
F="$R/lib/firmware/intel-ucode/06-8f-08"
truncate -s 2048 "$F"   # datasize 0 = 2000 bytes, totalsize 0 = 2048
{ le32 1; le32 $((0x2b000600)); le32 $((0x20240312)); le32 $((0x000806f8)); } | put "$F" 0
check --root "$R" --cpuinfo "$T/cpuinfo-intel" --format batch
expect_rc 2 "intel ucode" && expect_line "NEEDRESTART-UCSTA: 2" "intel ucode" && expect_line "NEEDRESTART-UCEXP: 0x2b000600" "intel ucode" && pass "Intel microcode newer on disk: UCSTA 2"
cpuinfo AuthenticAMD 25 1 1 0xa0011d1 >"$T/cpuinfo-amd"
F="$R/lib/firmware/amd-ucode/microcode_amd_fam19h.bin"
{ printf 'DMA\0'; le32 0; le32 32; le32 $((0x00a00f11)); le32 0; le32 0; le16 $((0xa011)); le16 0; le32 0; le32 0; le32 0; le32 0;
  le32 1; le32 64; le32 $((0x20240101)); le32 $((0x0a0011d5)); le32 0; le32 0; le32 0; le32 0; le16 $((0xa011)); le16 0; le32 0; le32 0; le32 0; le32 0; le32 0; le32 0; le32 0; le32 0; le32 0; } >"$F"
check --root "$R" --cpuinfo "$T/cpuinfo-amd" --format batch
expect_rc 2 "amd ucode" && expect_line "NEEDRESTART-UCSTA: 2" "amd ucode" && expect_line "NEEDRESTART-UCEXP: 0x0a0011d5" "amd ucode" && pass "AMD microcode newer on disk: UCSTA 2"
cpuinfo AuthenticAMD 25 1 1 0xa0011d5 >"$T/cpuinfo-amd"
check --root "$R" --cpuinfo "$T/cpuinfo-amd" --format batch
expect_line "NEEDRESTART-UCSTA: 1" "amd ucode current" && pass "AMD microcode current: UCSTA 1"

# 7. Bad input: an unreadable dpkg database is exit 3 with the file named.
new_root bad
mkdir -p "$R/var/lib/dpkg/status"
check --root "$R"
expect_rc 3 "bad dpkg" && grep -q "var/lib/dpkg/status" "$T/err" && pass "unreadable dpkg status: exit 3 naming the file" || fail "bad dpkg message: $(cat "$T/err")"

check --root "$T/no-such-root"
expect_rc 3 "missing root" && grep -q "check root $T/no-such-root: No such file or directory" "$T/err" && pass "missing --root: exit 3 naming it" || fail "missing root message: $(cat "$T/err")"

# 8. --restart through a recorder, for a process in a unit (a cgroup named like one).
cat >"$T/recorder" <<REC
#!/bin/sh
echo "\$@" >>"$T/restarts.log"
REC
chmod +x "$T/recorder"
exec 8>&-; wait; exec 8<>"$T/fifo"   # end the holders of step 2
new_root restart
for base in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd /sys/fs/cgroup; do
  if [ -w "$base" ] && [ -e "$base/cgroup.procs" ] && mkdir "$base/nines-advisor-test-${T##*-}.service" 2>/dev/null; then
    CG="$base/nines-advisor-test-${T##*-}.service"; break
  fi
done
if [ -z "$CG" ]; then
  echo "skip: no writable cgroup hierarchy for the unit attribution test"
else
  UNIT=$(basename "$CG")
  cp "$LIB" "$T/libunit.so"
  start_holder "$T/h3.out" "$HOLDER" "$T/libunit.so"; H3=$HPID
  echo "$H3" >"$CG/cgroup.procs"
  rm "$T/libunit.so"
  check --root "$R" --format batch
  expect_rc 1 "unit" && expect_line "NEEDRESTART-SVC: $UNIT" "unit" && pass "process attributed to its unit from /proc/PID/cgroup"
  check --root "$R" --restart --dry-run --restart-command "$T/recorder restart"
  expect_text "would run: $T/recorder restart $UNIT" "dry run" && [ ! -e "$T/restarts.log" ] && pass "--dry-run prints the plan, runs nothing" || fail "dry run ran something"
  check --root "$R" --restart --restart-command "$T/recorder restart" --deny 'nines-advisor-test-*'
  expect_rc 1 "deny" && expect_text "skipped $UNIT: on the deny list" "deny" && [ ! -e "$T/restarts.log" ] && pass "deny list is honoured"
  check --root "$R" --restart --restart-command "$T/recorder restart"
  expect_rc 0 "restart" && [ "$(cat "$T/restarts.log")" = "restart $UNIT" ] && pass "--restart runs the configured command for the unit" || fail "recorder log: $(cat "$T/restarts.log" 2>/dev/null)"
  exec 8>&-; wait; exec 8<>"$T/fifo"
fi

# 9. A stale PID 1 is re-executed, never restarted: a holder as PID 1 of a nested namespace.
cp "$LIB" "$T/libinit.so"
unshare --pid --fork --mount-proc "$HOLDER" "$T/libinit.so" <"$T/fifo" >"$T/h4.out" 8>&- &
UPID=$!
for _ in $(seq 100); do grep -q ready "$T/h4.out" 2>/dev/null && break; sleep 0.05; done
INNER=$(cat /proc/$UPID/task/$UPID/children | tr -d ' ')
rm "$T/libinit.so"
rm -f "$T/restarts.log"
out=$(nsenter -t "$INNER" -p -m -- "$NINES" check --root "$R" --format batch --restart --reexec-command "$T/recorder daemon-reexec" 2>"$T/err"); rc=$?
expect_line "NEEDRESTART-SVC: systemd-manager" "pid1" && [ "$(cat "$T/restarts.log" 2>/dev/null)" = "daemon-reexec" ] && pass "stale PID 1: daemon-reexec, not restart" || fail "pid1 recorder log: $(cat "$T/restarts.log" 2>/dev/null)"
exec 8>&-; wait; exec 8<>"$T/fifo"

# 10. Patched in memory: a live patch applied by nines covers the replaced library.
new_root patched
cp "$LIB" "$T/libpatched.so"
start_holder "$T/h5.out" "$HOLDER" "$T/libpatched.so"; H5=$HPID
if ! "$NINES" build --target "$T/libpatched.so" --id advisor-fix-1 -o "$T/fix.patch" \
     "$(dirname "$(readlink -f "$0")")/testlib_fix.c" >"$T/build.log" 2>&1; then
  out=$(cat "$T/build.log"); fail "nines build of the test patch"
elif ! "$NINES" apply "$T/fix.patch" --pid "$H5" >"$T/apply.log" 2>&1; then
  out=$(cat "$T/apply.log"); fail "nines apply of the test patch"
else
  cp "$T/libpatched.so" "$T/x.so" && mv "$T/x.so" "$T/libpatched.so"
  check --root "$R" --format batch
  expect_rc 0 "patched" && expect_line "NINES-PATCHED: advisor_holder=$H5:advisor-fix-1" "patched" && \
    ! grep -q "^NEEDRESTART-PID" <<<"$out" && pass "live-patched stale library: patched in memory, no restart" || fail "patched in memory"
  check --root "$R"
  expect_text "pid $H5 (advisor_holder): $T/libpatched.so patched by advisor-fix-1" "patched text"
fi
exec 8>&-; wait; exec 8<>"$T/fifo"

# 11. Another mount namespace (as in a container): paths resolve in the process's own view,
# through /proc/PID/root. Here its library path exists only inside its namespace.
new_root view
mkdir -p "$T/real" "$T/view"
cp "$LIB" "$T/real/libview.so"
unshare --mount sh -c 'mount --bind "$1" "$2" && exec "$3" "$2/libview.so"' sh "$T/real" "$T/view" "$HOLDER" \
  <"$T/fifo" >"$T/h6.out" 8>&- &
for _ in $(seq 100); do grep -q ready "$T/h6.out" 2>/dev/null && break; sleep 0.05; done
check --root "$R" --format batch
expect_rc 0 "other view" && pass "a library that exists only in the process's mount namespace is current"
cp "$T/real/libview.so" "$T/real/x.so" && mv "$T/real/x.so" "$T/real/libview.so"
check --root "$R" --format json
expect_rc 1 "other view replaced" && expect_text "\"path\": \"$T/view/libview.so\"" "other view replaced" && \
  expect_text '"kind": "replaced"' "other view replaced" && pass "replaced inside the process's mount namespace: reported with its own path"
exec 8>&-; wait; exec 8<>"$T/fifo"

# 12. An overlayfs root, as in a docker container: current until replaced through the
# overlay (a copy-up gives a new inode), then stale.
new_root overlay
mkdir -p "$T/ov/lower" "$T/ov/upper" "$T/ov/work" "$T/ov/view"
cp "$LIB" "$T/ov/lower/libov.so"
unshare --mount sh -c 'mount -t overlay overlay -o "lowerdir=$1/lower,upperdir=$1/upper,workdir=$1/work" "$1/view" && exec "$2" "$1/view/libov.so"' \
  sh "$T/ov" "$HOLDER" <"$T/fifo" >"$T/h7.out" 8>&- &
H7=$!
for _ in $(seq 100); do grep -q ready "$T/h7.out" 2>/dev/null && break; sleep 0.05; done
if ! grep -q ready "$T/h7.out"; then
  echo "skip: overlayfs cannot be mounted here"
else
  check --root "$R" --format batch
  expect_rc 0 "overlay" && pass "a library on overlayfs is current"
  nsenter -t "$H7" -m sh -c 'cp "$1" "$1.new" && mv "$1.new" "$1"' sh "$T/ov/view/libov.so"
  check --root "$R" --format batch
  expect_rc 1 "overlay replaced" && expect_line "NEEDRESTART-PID: advisor_holder=$H7" "overlay replaced" && pass "replaced on overlayfs: stale"
fi
exec 8>&-; wait; exec 8<>"$T/fifo"

# 13. Interpreted programs: a Python program whose module is rewritten after it started, on
# the host and in a mount namespace of its own (its folder exists only there).
PY=""
for p in /usr/bin/python3 /usr/local/bin/python3; do [ -x "$p" ] && { PY=$p; break; }; done
if [ -z "$PY" ]; then
  echo "skip: no python3 for the interpreted-program test"
else
  new_root interp
  mkdir -p "$T/py" "$T/pyreal" "$T/pyview"
  for d in "$T/py" "$T/pyreal"; do
    printf 'import sys\nimport helper\nprint("ready", flush=True)\nsys.stdin.read()\n' >"$d/main.py"
    printf 'VALUE = 1\n' >"$d/helper.py"
  done
  start_holder "$T/p1.out" "$PY" "$T/py/main.py"; P1=$HPID
  unshare --mount sh -c 'mount --bind "$1" "$2" && cd "$2" && exec "$3" main.py' sh "$T/pyreal" "$T/pyview" "$PY" \
    <"$T/fifo" >"$T/p2.out" 8>&- &
  for _ in $(seq 100); do grep -q ready "$T/p2.out" 2>/dev/null && break; sleep 0.05; done
  P2=$(cat /proc/$!/task/$!/children 2>/dev/null | tr -d ' '); [ -n "$P2" ] || P2=$!
  sleep 0.05  # past the clock tick of their start
  check --root "$R" --format batch
  expect_rc 0 "python current" && pass "python programs whose sources are unchanged: nothing to restart"
  printf 'VALUE = 2\n' >"$T/py/helper.py"
  check --root "$R"
  expect_rc 1 "python module" && \
    expect_text "pid $P1 (python3, no unit) runs $T/py/helper.py (python source changed after the process started)" "python module" && \
    pass "a rewritten python module: the process is named with the module"
  cp "$T/pyreal/helper.py" "$T/pyreal/x.py" && mv "$T/pyreal/x.py" "$T/pyreal/helper.py"
  check --root "$R" --format json
  expect_rc 1 "python other view" && expect_text "\"path\": \"$T/pyview/helper.py\"" "python other view" && \
    expect_text '"interpreter": "python"' "python other view" && \
    pass "a module renamed over in the process's own mount namespace: reported with its own path"
  exec 8>&-; wait; exec 8<>"$T/fifo"
fi

echo "check_cli_test: $failures failure(s)"
[ "$failures" = 0 ]
