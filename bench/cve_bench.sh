#!/usr/bin/env bash
# What `nines check --cve-data` adds to a check (issue 16): a synthetic tracker file shaped
# like Debian's (about 60 MB: ~21,000 source packages, "linux" with 3,000 CVEs, each CVE
# with five releases and a description) and a root with 2,000 installed packages whose
# sources are in it, 20 of them with processes running replaced files. Runs
# `nines check --root R` with and without the data, as PID 1 of a private PID namespace,
# and prints the wall time of each (best and median of RUNS) and the CVE step's own time.
# Usage: bench/cve_bench.sh [BUILD_DIR] [RUNS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
runs=${2:-7}
nines=$build/src/cli/nines
work=$(mktemp -d "${TMPDIR:-/tmp}/nines-cve-bench-XXXXXX")
trap 'rm -rf "$work"' EXIT

python3 - "$work" <<'PY'
import json, os, random, sys
random.seed(16)
work = sys.argv[1]
rels = ["bookworm", "bullseye", "buster", "sid", "trixie"]
words = ("the a buffer overflow in function allows remote attackers to cause denial of "
         "service via crafted packet heap use after free").split()
def ver(): return f"{random.randint(1,9)}.{random.randint(0,20)}-{random.randint(1,5)}"
data, installed = {}, []
for i in range(21000):
    name = "linux" if i == 0 else f"src{i}"
    cves = {}
    for j in range(3000 if i == 0 else max(1, int(random.expovariate(1 / 4)))):
        releases = {}
        for r in rels:
            st = random.choice(["resolved", "resolved", "open", "undetermined"])
            e = {"status": st, "repositories": {r: ver()},
                 "urgency": random.choice(["low", "medium", "high", "unimportant", "not yet assigned"])}
            if st == "resolved": e["fixed_version"] = ver()
            releases[r] = e
        c = {"description": " ".join(random.choice(words) for _ in range(random.randint(10, 40))),
             "releases": releases, "scope": "remote"}
        if random.random() < 0.3: c["debianbug"] = random.randint(100000, 1100000)
        cves[f"CVE-{2000 + j % 27}-{10000 + i * 7 + j}"] = c
    data[name] = cves
with open(f"{work}/tracker.json", "w") as f: json.dump(data, f, separators=(", ", ": "))
root = f"{work}/root"
for d in ["boot", "etc", "var/lib/dpkg/info", "var/log", "lib/firmware"]:
    os.makedirs(f"{root}/{d}", exist_ok=True)
open(f"{root}/etc/os-release", "w").write("ID=debian\nVERSION_CODENAME=bookworm\n")
with open(f"{root}/var/lib/dpkg/status", "w") as st:
    for i in range(1, 2001):
        st.write(f"Package: bin{i}\nStatus: install ok installed\nArchitecture: amd64\n"
                 f"Source: src{i * 10}\nVersion: 5.0-1\nDescription: package {i}\n"
                 " a long description line\n a second one\n\n")
        files = "\n".join(f"/usr/lib/x86_64-linux-gnu/bin{i}/file{k}.so" for k in range(60))
        open(f"{root}/var/lib/dpkg/info/bin{i}:amd64.list", "w").write(f"/.\n/usr\n{files}\n")
    st.write("Package: linux-image-6.1.0-99-amd64\nStatus: install ok installed\n"
             "Architecture: amd64\nSource: linux-signed-amd64 (6.1.119+1)\nVersion: 6.1.119-1\n\n")
with open(f"{root}/var/log/dpkg.log", "w") as log:
    for i in range(1, 2001):
        log.write(f"2026-11-01 10:00:00 upgrade bin{i}:amd64 4.9-1 5.0-1\n")
PY
ls -la "$work/tracker.json" | awk '{printf "tracker file: %.1f MB\n", $5 / 1e6}'

# 20 processes mapping files of installed packages that are then replaced, so the file
# lists and dpkg.log are read (the costly path).
holder=$build/tests/advisor/advisor_holder lib=$build/tests/advisor/libadvisor_testlib.so
unshare --pid --fork --mount-proc bash -s "$work" "$nines" "$holder" "$lib" "$runs" <<'SH'
work=$1 nines=$2 holder=$3 lib=$4 runs=$5
mkfifo "$work/fifo"
for i in $(seq 1 20); do
  n=$((i * 97)); d=/usr/lib/x86_64-linux-gnu/bin$n
  mkdir -p "$work/files$d"
  cp "$lib" "$work/files$d/file0.so"
  echo "$work/files$d/file0.so" >>"$work/root/var/lib/dpkg/info/bin$n:amd64.list"
  "$holder" "$work/files$d/file0.so" <"$work/fifo" >/dev/null &
done
exec 8>"$work/fifo"
sleep 1
for i in $(seq 1 20); do n=$((i * 97)); f=$work/files/usr/lib/x86_64-linux-gnu/bin$n/file0.so; cp "$f" "$f.new"; mv "$f.new" "$f"; done
UV="#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"
# Wall time and CPU time (user + system) of each run; on a loaded machine the CPU time is
# the work the check adds, the wall time also holds the wait for a core.
time_runs() {  # label args...
  local label=$1; shift
  : >"$work/times"
  for _ in $(seq "$runs"); do
    TIMEFORMAT='%R %U %S'
    { time "$nines" check --root "$work/root" --uname-v "$UV" --format json "$@" >"$work/out.json" 2>/dev/null; } 2>>"$work/times"
  done
  python3 - "$label" "$work/times" <<'PY'
import statistics, sys
rows = [[float(x) for x in l.split()] for l in open(sys.argv[2]) if l.strip()]
wall = sorted(r[0] * 1000 for r in rows); cpu = sorted((r[1] + r[2]) * 1000 for r in rows)
print("%-22s wall best %6.1f ms, median %6.1f ms; CPU best %6.1f ms, median %6.1f ms" %
      (sys.argv[1], wall[0], statistics.median(wall), cpu[0], statistics.median(cpu)))
PY
}
time_runs "check, no CVE data"
time_runs "check --cve-data" --cve-data "$work/tracker.json"
python3 -c 'import json; d=json.load(open("'"$work/out.json"'")); print("CVE step (last run): %.1f ms, %d entries, states: %s" % (d["cve"]["ms"], len(d["cves"]), ", ".join("%s %s %d" % (c["state"], c["severity"], c["count"]) for c in d["cve"]["counts"][:6])))'
exec 8>&-
wait
SH
