#!/usr/bin/env bash
# Runs the patch server's load generator on SQLite and on a throwaway PostgreSQL:
# 10,000 machines checking in (check-ins/s, p50/p99/p99.9), then the rollout simulation.
# Results go in docs/PERFORMANCE.md. Usage: bench/server_bench.sh [BUILD_DIR] [extra args]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-${NINES_BUILD_DIR:-build}}"; shift || true
cmake --build "$BUILD_DIR" --target server_load >/dev/null
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for db in sqlite postgresql; do
  "$BUILD_DIR/tests/server/server_load" --db "$db" --machines 10000 --connections 8 \
    --seconds 15 --rollout "$@"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
