# Host side of the kernel tier: builds patches and bundles with the real `nines`, then
# runs one guest script in the VM (scripts/vm-run). Sourced by each scenario script;
# usage of a scenario: <scenario>.sh /path/to/nines
set -euo pipefail
NINES="${1:?usage: $0 /path/to/nines}"
NINES="$(realpath "$NINES")"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
CACHE="${NINES_KERNEL_CACHE:-/var/cache/nines/kernel}"
REL="$(cat "$CACHE/current" 2>/dev/null || true)"
if [ -z "$REL" ] || [ ! -d "/usr/src/linux-headers-$REL" ]; then
  echo "kernel tier: no kernel set up (run scripts/kernel-setup)" >&2
  exit 1
fi
# Under /tmp so the same absolute path exists inside the VM (vm-run --file).
T="$(mktemp -d /tmp/nines-ktest-XXXXXX)"
trap 'rm -rf "$T"' EXIT
export NINES_BIN="$NINES"
fail() { echo "FAIL: $*" >&2; exit 1; }

# build_patch ID OUT SOURCE... : nines build --kernel for the set-up release.
build_patch() {
  local id="$1" out="$2"; shift 2
  "$NINES" build --kernel "$REL" --id "$id" -o "$out" "$@" >"$T/build-$id.log" 2>&1 ||
    { cat "$T/build-$id.log" >&2; fail "nines build --kernel $REL --id $id $*"; }
}

# A publisher key and the trust store the guest uses (same paths inside).
make_keys() {
  "$NINES" keygen -o "$T/keys" >/dev/null
  mkdir -p "$T/trust" && cp "$T/keys/publisher.pub" "$T/trust/"
}

# make_bundle PATCH ID VERSION OUT: a signed kernel bundle.
make_bundle() {
  local patch="$1" id="$2" version="$3" out="$4"
  cat >"$T/$id-$version.toml" <<TOML
id = "$id"
version = $version
kind = "kernel"
description = "kernel tier test patch $id v$version"
published = "2026-11-29T18:00:00Z"

[[cves]]
id = "CVE-2026-0001"
severity = "high"
description = "test"
url = "https://example.org/CVE-2026-0001"
TOML
  "$NINES" bundle create --patch "$patch" --manifest "$T/$id-$version.toml" \
    --key "$T/keys/publisher.key" -o "$out" >/dev/null
}

# in_vm SCRIPT [vm-run options...]: runs the guest script (which sources vm-lib.sh)
# with everything under $T visible; exits with its status.
in_vm() {
  local script="$1"; shift
  cp "$HERE/vm-lib.sh" "$T/vm-lib.sh"
  printf '. %s/vm-lib.sh\nT=%s\n%s\nfinish\n' "$T" "$T" "$script" >"$T/guest.sh"
  "$ROOT/scripts/vm-run" --timeout "${VM_TIMEOUT:-240}" --file "$T" "$@" -- "sh $T/guest.sh"
}

# gen_patch ID OUT DIFF... : nines build --kernel --source deb: --diff for the set-up
# release (the generator; the first run of a release prepares its tree, minutes). The
# report is in $T/gen-ID.log; the exit status in $GEN_RC.
gen_patch() {
  local id="$1" out="$2"; shift 2
  local args=()
  for d in "$@"; do args+=(--diff "$d"); done
  set +e
  "$NINES" build --kernel "$REL" --source "${NINES_KGEN_SOURCE:-deb:}" --id "$id" -o "$out" \
    "${args[@]}" >"$T/gen-$id.log" 2>&1
  GEN_RC=$?
  set -e
  cat "$T/gen-$id.log"
}
