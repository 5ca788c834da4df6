#!/usr/bin/env bash
# The Debian package (packaging/CMakeLists.txt, what scripts/package runs) from the built
# binaries: it holds nines and the daemon nines-agent, the agent unit (Type=notify with a
# watchdog), the header for patch authors and the default config as a conffile; the
# packaged config parses.
# Usage: package_test.sh NINES_BINARY SOURCE_DIR
set -euo pipefail
NINES="$1"
TOP="$2"
T="$(mktemp -d /tmp/nines-package-XXXXXX)"
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
strip -o "$T/nines" "$NINES"
strip -o "$T/nines-agent" "$(dirname "$NINES")/nines-agent"
cmake -S "$TOP/packaging" -B "$T/b" -DNINES_BINARY="$T/nines" -DNINES_AGENT_BINARY="$T/nines-agent" \
  -DNINES_VERSION=0.0.1 >/dev/null
(cd "$T/b" && cpack -G DEB >/dev/null)
DEB="$T/b/nines_0.0.1_amd64.deb"
[ -f "$DEB" ] || fail "no package"
dpkg-deb -c "$DEB" >"$T/list"
for f in ./usr/bin/nines ./usr/bin/nines-agent ./usr/lib/systemd/system/nines-agent.service ./usr/include/nines/patch.h \
         ./etc/nines/config.toml ./etc/nines/trusted-keys.d/; do
  grep -q " $f\$" "$T/list" || { cat "$T/list"; fail "package lacks $f"; }
done
dpkg-deb -I "$DEB" conffiles | grep -qx /etc/nines/config.toml || fail "config.toml is not a conffile"
dpkg-deb -x "$DEB" "$T/root"
grep -q '^Type=notify$' "$T/root/usr/lib/systemd/system/nines-agent.service" || fail "unit is not Type=notify"
grep -q '^WatchdogSec=' "$T/root/usr/lib/systemd/system/nines-agent.service" || fail "unit has no watchdog"
# The packaged default config is valid (every key commented, so the defaults show).
mkdir -p "$T/r/etc/nines" && cp "$T/root/etc/nines/config.toml" "$T/r/etc/nines/"
"$T/root/usr/bin/nines" config --root "$T/r" | grep -qx "severity = high" || fail "packaged config"
# `nines agent` finds the daemon next to it in the package.
"$T/root/usr/bin/nines-agent" --version | grep -q '^nines-agent ' || fail "packaged nines-agent"
echo "package_test: all checks passed"
