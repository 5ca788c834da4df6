#!/usr/bin/env bash
# Start-up of the nines CLI, and `nines check --format batch` beside `needrestart -b` on the
# same small host, in one run (docs/PERFORMANCE.md, "The CLI's start-up").
# Runs as PID 1 of a private PID namespace with a /proc of its own (whole-system scans only
# there), in which a handful of idle processes stand for an ordinary host's services.
# Usage: bench/cli_bench.sh [BUILD_DIR] [RUNS]   (default build, 200 runs; needrestart 20)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
runs=${2:-200}
nines="$build/src/cli/nines"
[ -x "$nines" ] || { echo "no $nines: build the nines target first" >&2; exit 1; }
py=$(command -v python3)
exec unshare --pid --fork --mount-proc "$py" - "$nines" "$runs" <<'EOF_PY'
import os, statistics, subprocess, sys, time

nines, runs = sys.argv[1], int(sys.argv[2])
idle = [subprocess.Popen(["sleep", "3600"]) for _ in range(8)]

def measure(argv, n):
    """Wall and CPU (user + system) times of n runs of argv (fork + exec + exit + wait), in
    ms, output discarded. On a loaded machine the CPU time is the stable figure."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    times, cpu = [], []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        pid = os.posix_spawn(argv[0], argv, os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1),
                                           (os.POSIX_SPAWN_DUP2, devnull, 2)])
        _, _, ru = os.wait4(pid, 0)
        times.append((time.perf_counter_ns() - t0) / 1e6)
        cpu.append((ru.ru_utime + ru.ru_stime) * 1e3)
    os.close(devnull)
    return times, cpu

def report(label, m):
    t, c = m
    print(f"{label:<28} wall median {statistics.median(t):8.2f} ms  min {min(t):8.2f} ms   "
          f"CPU median {statistics.median(c):7.2f} ms  ({len(t)} runs)")
    return statistics.median(t), statistics.median(c)

libs = subprocess.run(["ldd", nines], capture_output=True, text=True).stdout.count("=>")
print(f"nines: {nines} ({libs} shared libraries); load average {os.getloadavg()[0]:.1f}")
report("/bin/true (spawn floor)", measure(["/bin/true"], runs))
report("nines --version", measure([nines, "--version"], runs))
check = report("nines check --format batch", measure([nines, "check", "--format", "batch"], runs))
nr = "/usr/sbin/needrestart"
if os.access(nr, os.X_OK):
    n = max(5, runs // 10)
    needrestart = report("needrestart -b", measure([nr, "-b"], n))
    print(f"ratio needrestart -b / nines check --format batch: wall {needrestart[0] / check[0]:.0f}x, "
          f"CPU {needrestart[1] / check[1]:.0f}x")
for p in idle:
    p.kill()
EOF_PY
