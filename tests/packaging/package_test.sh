#!/usr/bin/env bash
# The Debian packages, as scripts/package builds them (debhelper), end to end:
#  - three packages: nines (CLI, agent, its unit, man pages), nines-server (its unit and
#    system user), nines-dev (headers); /etc/nines/config.toml is nines' only conffile and
#    config.d/, where `nines config` and `nines enable` write, is shipped empty;
#  - a man page for every command that `nines --help` lists, and for nines-agent;
#  - lintian finds no error and no warning;
#  - installed into a fresh Debian root (mmdebstrap from Debian's archive): the agent's unit
#    is enabled, the server's user exists, the commands run; `nines config` writes a
#    drop-in, not the conffile; purge removes the enablement, config.d and the state.
# Usage: package_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
BUILD="$1"
TOP="$2"
T="$(mktemp -d /tmp/nines-package-XXXXXX)"
cleanup() {
  for m in proc sys dev; do umount -l "$T/root/$m" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. Build.
"$TOP/scripts/package" "$BUILD" >"$T/debs"
cat "$T/debs"
deb() { grep "/$1_[^/]*\.deb\$" "$T/debs" || fail "no $1 package"; }
NINES="$(deb nines)"; SERVER="$(deb nines-server)"; DEV="$(deb nines-dev)"
for d in "$NINES" "$SERVER" "$DEV"; do
  [[ "$d" = /* && -f "$d" ]] || fail "scripts/package printed '$d', not an absolute path"
done

# 2. Contents.
has() {  # DEB PATH...
  local d="$1"; shift
  dpkg-deb -c "$d" | awk '{print $6}' >"$T/list"
  for f in "$@"; do grep -qx "$f" "$T/list" || { cat "$T/list"; fail "$(basename "$d") lacks $f"; }; done
}
has "$NINES" ./usr/bin/nines ./usr/bin/nines-agent ./lib/systemd/system/nines-agent.service \
  ./etc/nines/config.toml ./etc/nines/config.d/ ./etc/nines/trusted-keys.d/ \
  ./usr/share/doc/nines/copyright ./usr/share/man/man1/nines.1.gz ./usr/share/man/man1/nines-agent.1.gz
has "$SERVER" ./lib/systemd/system/nines-server.service ./usr/lib/sysusers.d/nines-server.conf
has "$DEV" ./usr/include/nines/patch.h ./usr/include/nines/kpatch.h
dpkg-deb -c "$NINES" | grep -q '/usr/include/' && fail "nines ships headers (nines-dev does)"
[ "$(dpkg-deb -I "$NINES" conffiles)" = /etc/nines/config.toml ] ||
  fail "nines' conffiles: $(dpkg-deb -I "$NINES" conffiles)"
dpkg-deb -c "$NINES" | awk '{print $6}' | grep -q '^./etc/nines/config.d/.' &&
  fail "the package ships a file in config.d (commands write there)"
for s in postinst prerm postrm; do
  dpkg-deb -I "$NINES" "$s" >"$T/$s" 2>/dev/null || fail "nines has no $s"
done
grep -q 'deb-systemd-helper enable' "$T/postinst" || fail "postinst does not enable the unit"
grep -q 'daemon-reload' "$T/postinst" || fail "postinst does not reload systemd"
grep -q 'deb-systemd-invoke.*stop' "$T/prerm" || fail "prerm does not stop the unit"
grep -q 'purge' "$T/postrm" || fail "postrm does not purge"
dpkg-deb -I "$SERVER" postinst | grep -q 'systemd-sysusers' || fail "no system user for the server"

# 3. Man pages: one per command --help lists.
dpkg-deb -c "$NINES" | awk '{print $6}' >"$T/list"
"$BUILD/src/cli/nines" --help | sed -n '/^Subcommands:/,$p' | awk 'NR>1 && NF {print $1}' >"$T/cmds"
[ -s "$T/cmds" ] || fail "no commands in nines --help"
while read -r c; do
  grep -qx "./usr/share/man/man1/nines-$c.1.gz" "$T/list" || fail "no man page for nines $c"
done <"$T/cmds"

# 4. lintian: no error, no warning.
lintian --fail-on error,warning --display-level '>=warning' "$NINES" "$SERVER" "$DEV" >"$T/lintian" 2>&1 ||
  { cat "$T/lintian"; fail "lintian"; }
cat "$T/lintian"

# 5. A fresh Debian root with the three packages installed (their dependencies from
#    Debian's archive). No systemd runs in it, so the units are enabled, not started.
mmdebstrap --variant=essential --quiet \
  --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount --include="$NINES" --include="$SERVER" --include="$DEV" \
  bookworm "$T/root" >"$T/mmdebstrap.log" 2>&1 || { cat "$T/mmdebstrap.log"; fail "mmdebstrap"; }
R="$T/root"
in_root() { chroot "$R" "$@"; }
[ -L "$R/etc/systemd/system/multi-user.target.wants/nines-agent.service" ] ||
  fail "nines-agent.service is not enabled after install"
[ -L "$R/etc/systemd/system/multi-user.target.wants/nines-server.service" ] ||
  fail "nines-server.service is not enabled after install"
grep -q '^nines-server:' "$R/etc/passwd" || fail "no nines-server user"
in_root nines --version | grep -q '^nines ' || fail "nines does not run in the fresh root"
in_root nines-agent --version | grep -q '^nines-agent ' || fail "nines-agent does not run"
in_root nines config | grep -q '^severity = high' || fail "the packaged config"
sum="$(md5sum <"$R/etc/nines/config.toml")"
in_root nines config severity=medium >/dev/null || fail "nines config severity=medium"
[ "$(md5sum <"$R/etc/nines/config.toml")" = "$sum" ] || fail "nines config rewrote the conffile"
ls "$R/etc/nines/config.d/"* >/dev/null 2>&1 || fail "nines config wrote no drop-in"
in_root nines config | grep -q '^severity = medium' || fail "the drop-in is not read"
in_root man -w nines-apply >/dev/null 2>&1 || [ -f "$R/usr/share/man/man1/nines-apply.1.gz" ] ||
  fail "man page nines-apply"
mkdir -p "$R/var/lib/nines" "$R/var/lib/nines-server" && touch "$R/var/lib/nines/state.db"

# 6. Purge.
in_root dpkg --purge nines-server nines-dev nines >"$T/purge.log" 2>&1 || { cat "$T/purge.log"; fail "purge"; }
for gone in etc/systemd/system/multi-user.target.wants/nines-agent.service \
            etc/systemd/system/multi-user.target.wants/nines-server.service \
            var/lib/systemd/deb-systemd-helper-enabled/nines-agent.service.dsh-also \
            etc/nines var/lib/nines var/lib/nines-server usr/bin/nines; do
  [ -e "$R/$gone" ] || [ -L "$R/$gone" ] && fail "/$gone is left after purge"
done
echo "package_test: all checks passed"
