#!/usr/bin/env bash
# End to end through the binary: nines keygen, nines bundle create/verify/inspect, and the
# refusals a publisher or an operator sees. Usage: cli_test.sh /path/to/nines
set -euo pipefail
NINES="$1"
T="$(mktemp -d /tmp/nines-bundle-cli-XXXXXX)"
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*" >&2; exit 1; }
# expect_fail "needle" cmd...: the command must exit non-zero and print needle on stderr.
expect_fail() {
  local needle="$1"; shift
  if "$@" 2>err.txt >/dev/null; then fail "accepted: $*"; fi
  grep -qF -- "$needle" err.txt || { cat err.txt >&2; fail "no '$needle' in the error of: $*"; }
}

# A tiny patch object with the .nines.meta section `nines build` writes.
echo 'int foo_parse(const char *s) { return s ? 1 : 0; }' > p.c
gcc -O2 -c p.c -o p.o
printf '%s' '{"format":1,"kind":"userspace","id":"fix-1","target":{"name":"libfoo.so.1","build_id":"abcdef0123456789"},"functions":[{"name":"foo_parse","replacement":"foo_parse_fixed"}]}' > meta.json
objcopy --add-section .nines.meta=meta.json p.o fix.patch
cat > fix.toml <<'TOML'
id = "fix-1"
version = 2
kind = "userspace"
description = "Fixes an overflow in foo_parse"
published = "2026-11-29T18:00:00Z"

[[cves]]
id = "CVE-2026-1234"
severity = "high"
description = "heap overflow in foo_parse"
url = "https://example.org/CVE-2026-1234"
TOML

# keygen: the secret key is 0600, and an existing pair is not overwritten.
"$NINES" keygen -o keys >/dev/null
[ "$(stat -c %a keys/publisher.key)" = 600 ] || fail "publisher.key is not mode 0600"
[ -f keys/publisher.pub ] || fail "no publisher.pub"
expect_fail "refusing to overwrite" "$NINES" keygen -o keys
mkdir trust && cp keys/publisher.pub trust/publisher.pub

# create fills the target from the patch object; verify and inspect agree.
"$NINES" bundle create --patch fix.patch --manifest fix.toml --key keys/publisher.key -o fix.bundle >/dev/null
"$NINES" bundle verify fix.bundle --trust trust | grep -q "OK: bundle fix-1 version 2" || fail "verify"
"$NINES" bundle inspect fix.bundle --trust trust --format json > inspect.json
python3 - <<'PY'
import json
j = json.load(open("inspect.json"))
assert j["verified"] is True, j
assert j["manifest"]["target"] == {"name": "libfoo.so.1", "build_id": "abcdef0123456789"}, j
assert j["manifest"]["cves"][0]["severity"] == "high", j
assert j["payload"]["sha256_matches"] is True, j
assert len(j["signer_fingerprint"]) == 32, j
PY
"$NINES" bundle inspect fix.bundle --trust trust | grep -q "^verified:    yes" || fail "inspect text"

# Refusals.
"$NINES" keygen -o other >/dev/null
mkdir trust2 && cp other/publisher.pub trust2/
expect_fail "signed by untrusted key" "$NINES" bundle verify fix.bundle --trust trust2
"$NINES" bundle inspect fix.bundle --trust trust2 | grep -q "^verified:    no: .*untrusted key" \
  || fail "inspect does not say the key is untrusted"
python3 -c "
import sys; b = bytearray(open('fix.bundle','rb').read()); b[-200] ^= 1
open('tampered.bundle','wb').write(b)"
expect_fail "payload digest mismatch" "$NINES" bundle verify tampered.bundle --trust trust
head -c 100 fix.bundle > short.bundle
expect_fail "truncated" "$NINES" bundle verify short.bundle --trust trust
{ cat fix.toml; printf '\n[target]\nbuild_id = "ffff"\n'; } > contra.toml
expect_fail "target.build_id 'ffff' contradicts the patch object" \
  "$NINES" bundle create --patch fix.patch --manifest contra.toml --key keys/publisher.key -o x.bundle
[ ! -e x.bundle ] || fail "a refused create left a bundle behind"
sed 's/severity = "high"/severity = "severe"/' fix.toml > badsev.toml
expect_fail "cves[0].severity: 'severe'" \
  "$NINES" bundle create --patch fix.patch --manifest badsev.toml --key keys/publisher.key -o x.bundle
expect_fail "no .nines.meta section" \
  "$NINES" bundle create --patch p.o --manifest fix.toml --key keys/publisher.key -o x.bundle

# A kernel patch: the release comes from the patch object; a user-space target is refused.
printf '%s' '{"format":1,"kind":"kernel","id":"kfix-1","kernel":{"release":"6.1.0-27-cloud-amd64","build_id":""},"functions":[{"name":"cmdline_proc_show","replacement":"livepatch_cmdline_proc_show"}]}' > kmeta.json
objcopy --add-section .nines.meta=kmeta.json p.o kfix.ko
cat > kfix.toml <<'TOML'
id = "kfix-1"
version = 1
kind = "kernel"
published = 2026-11-29T18:00:00Z
TOML
"$NINES" bundle create --patch kfix.ko --manifest kfix.toml --key keys/publisher.key -o kfix.bundle >/dev/null
"$NINES" bundle inspect kfix.bundle --trust trust --format json > kinspect.json
python3 - <<'PY'
import json
j = json.load(open("kinspect.json"))
assert j["verified"] is True, j
assert j["manifest"]["kind"] == "kernel", j
assert j["manifest"]["target"] == {"release": "6.1.0-27-cloud-amd64", "build_id": ""}, j
PY
sed 's/kind = "userspace"/kind = "kernel"/' fix.toml > wrongkind.toml
expect_fail "manifest kind 'kernel' contradicts the patch object ('userspace')" \
  "$NINES" bundle create --patch fix.patch --manifest wrongkind.toml --key keys/publisher.key -o x.bundle
echo "cli_test: all checks passed"
