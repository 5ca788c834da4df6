#!/usr/bin/env bash
# The agent daemon stays small (docs/AGENT.md, "Two processes"): nines-agent must not load
# an HTTP, TLS or PostgreSQL library (each costs megabytes of resident memory at load; the
# daemon's exchanges with the server run in `nines agent-exchange`), while nines, which
# runs that exchange, does.
# Usage: daemon_links_test.sh NINES_AGENT_BINARY NINES_BINARY
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
HEAVY='lib(ssl|crypto|pq|cpp-httplib|gnutls|gssapi_krb5|ldap)[.-]'
LIBS="$(mktemp)"; trap 'rm -f "$LIBS"' EXIT
ldd "$1" >"$LIBS" || fail "ldd $1"
if grep -E "$HEAVY" "$LIBS"; then fail "nines-agent loads the libraries above"; fi
ldd "$2" | grep -qE 'libcpp-httplib' || fail "nines does not link httplib: is the test looking at the right binaries?"
"$1" --version | grep -q '^nines-agent ' || fail "nines-agent --version"
echo "daemon_links_test: nines-agent loads $(wc -l <"$LIBS") libraries, none of HTTP, TLS or PostgreSQL"
