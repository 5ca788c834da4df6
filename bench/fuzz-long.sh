#!/usr/bin/env bash
# Long fuzzing runs (issue 11: at least 10 minutes a target), results appended as rows to
# the "Long runs: results" table at the end of bench/FUZZING.md.
#
#   bench/fuzz-long.sh                          # every target, 600 s each, one at a time
#   bench/fuzz-long.sh fuzz_registry fuzz_maps  # some targets
#   NINES_FUZZ_LONG_SECONDS=3600 NINES_FUZZ_LONG_PARALLEL=2 bench/fuzz-long.sh
#
# Everything runs under `nice -n 19` (the machine is shared): executions per second then
# say more about the machine's load than about the parser, and the row records the load.
# Each target runs through scripts/fuzz (same flags, dictionary and seeds as the short
# runs), its corpus growing in build-fuzz/corpus/<target>/. A crash makes its row say so
# and the script exit non-zero; the reproducer is in build-fuzz/crashes/.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="${NINES_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
SECONDS_EACH="${NINES_FUZZ_LONG_SECONDS:-600}"
PARALLEL="${NINES_FUZZ_LONG_PARALLEL:-1}"
RESULTS="${NINES_FUZZ_RESULTS:-$ROOT/bench/FUZZING.md}"

targets=("$@")
[ "${#targets[@]}" -eq 0 ] && mapfile -t targets < <("$ROOT/scripts/fuzz" --list)

# Build once (and check the seeds replay cleanly) before any run starts.
nice -n 19 "$ROOT/scripts/fuzz" --replay "${targets[@]}" || exit 1

# One target: fuzz it, then append its row.
run_one() {
  local t="$1" load start rc log="$BUILD/$1.log"
  load="$(cut -d' ' -f1 /proc/loadavg)"
  start="$(date -u +%Y-%m-%dT%H:%MZ)"
  NINES_FUZZ_NO_BUILD=1 NINES_FUZZ_SECONDS="$SECONDS_EACH" nice -n 19 "$ROOT/scripts/fuzz" "$t" \
    2>"$BUILD/$t.long.err"
  rc=$?
  local execs rate cov ft corpus rss result
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  rss="$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)"
  # The last status line: "#N  DONE  cov: C ft: F corp: K/SIZE ..." (or the last pulse).
  local last
  last="$(grep -E '^#[0-9]+' "$log" | tail -1)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
  corpus="$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")"
  if [ "$rc" -eq 0 ]; then
    result="no crash"
  else
    result="FAILED: $(ls "$BUILD"/crashes/"$t"-* 2>/dev/null | tail -1 | xargs -r basename)"
  fi
  printf '| %s | `%s` | %s | %s | %s | %s | %s / %s | %s | %s | %s |\n' \
    "$start" "$t" "$SECONDS_EACH" "$load" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
    "${corpus:-?}" "${rss:-?}" "$result" >>"$RESULTS"
  echo "fuzz-long: $t: $result (${execs:-?} executions)" >&2
  return "$rc"
}

status=0
running=0
for t in "${targets[@]}"; do
  run_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$PARALLEL" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
