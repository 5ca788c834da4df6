#!/usr/bin/env bash
# nines starts in a blink (issue 12): the nines executable links no HTTP, TLS, PostgreSQL,
# Kerberos or LDAP library, neither directly (DT_NEEDED) nor through another library (ldd);
# the commands that need them run in nines-net, which nines execs with the same arguments,
# so `nines serve` keeps its options and exit statuses.
# Usage: lean_links_test.sh NINES_BINARY NINES_NET_BINARY
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
NINES="$1"
NET="$2"
HEAVY='lib(ssl|crypto|pq|cpp-httplib|gnutls|krb5|gssapi_krb5|ldap|ldap_r)[.-]'
T="$(mktemp -d /tmp/nines-lean-XXXXXX)"; trap 'rm -rf "$T"' EXIT

readelf -d "$NINES" | awk '/\(NEEDED\)/ {print $NF}' | tr -d '[]' >"$T/needed"
[ -s "$T/needed" ] || fail "readelf found no DT_NEEDED in $NINES"
if grep -E "$HEAVY" "$T/needed"; then fail "nines has DT_NEEDED on the libraries above"; fi
ldd "$NINES" >"$T/ldd" || fail "ldd $NINES"
if grep -E "$HEAVY" "$T/ldd"; then fail "nines loads the libraries above through another library"; fi
# The check looks at the right binaries: the network executable does link them.
readelf -d "$NET" | grep -q 'libcpp-httplib' || fail "nines-net does not link httplib"

# The network commands still work through nines: help, a usage error (exit 2, the message
# names the command as nines), and the checks of serve's own runner (exit 2).
"$NINES" --help | grep -q 'serve' || fail "nines --help does not list serve"
"$NINES" serve --help | grep -q -- '--listen' || fail "nines serve --help does not show serve's options"
"$NINES" admin --help | grep -q -- 'token' || fail "nines admin --help"
set +e
"$NINES" serve --no-such-option >"$T/out" 2>&1; rc=$?
set -e
[ "$rc" = 2 ] || { cat "$T/out"; fail "nines serve --no-such-option exited $rc, not 2"; }
grep -q 'no-such-option' "$T/out" || fail "the usage error does not name the option"
set +e
"$NINES" -v serve --upstream http://127.0.0.1:1 >"$T/out" 2>&1; rc=$?
set -e
[ "$rc" = 2 ] || { cat "$T/out"; fail "serve --upstream without a token exited $rc, not 2"; }
grep -q 'needs --upstream-token' "$T/out" || fail "serve's own check did not run"
echo "lean_links_test: nines loads $(wc -l <"$T/ldd") libraries, none of HTTP, TLS, PostgreSQL, Kerberos or LDAP"
