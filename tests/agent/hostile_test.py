#!/usr/bin/env python3
"""The agent against a hostile patch server (issue 11; docs/SECURITY.md "Defences").

A fake server on loopback (hostile_server.py) offers relabelled and older signed bundles,
the same id and version with other content, wrong JSON types, deep JSON, a 384 MiB body
(streamed, never stored) and a slow body, and plays with the signed catalogue (fresh,
stale, replayed, withheld, missing, unlisted). After each offer the agent runs once
(`nines-agent --once`) and must refuse with the reason, exit without a signal, keep its
processes (the daemon and its exchange child) under 256 MiB, leave no file over 64 MiB,
and apply the genuine patch when the server turns honest. The agent and its target
process run in a private PID namespace. Usage: hostile_test.py NINES TESTS_ULP_DIR
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

if not os.environ.get("NINES_HOSTILE_IN_PIDNS"):
    os.execvp("unshare", ["unshare", "--pid", "--fork", "--mount-proc", "env",
                          "NINES_HOSTILE_IN_PIDNS=1", sys.executable] + sys.argv)

NINES = os.path.abspath(sys.argv[1])
ULP = os.path.abspath(sys.argv[2])
AGENT = os.path.join(os.path.dirname(NINES), "nines-agent")
HERE = os.path.dirname(os.path.abspath(__file__))
T = tempfile.mkdtemp(prefix="nines-hostile-")
ROOT = T + "/root"
os.environ["NINES_ROOT"] = ROOT
procs = []


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    for name in ("agent.log", "server.log"):
        p = os.path.join(T, name)
        if os.path.exists(p):
            print("--- %s (tail)" % name, file=sys.stderr)
            print("".join(open(p, errors="replace").readlines()[-25:]), file=sys.stderr)
    cleanup()
    sys.exit(1)


def cleanup():
    for p in procs:
        p.kill()
    if os.environ.get("KEEP"):
        print("kept " + T)
    else:
        shutil.rmtree(T, ignore_errors=True)


def sh(*args, check=True):
    r = subprocess.run(args, cwd=T, capture_output=True, text=True)
    if check and r.returncode != 0:
        fail("%s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr + r.stdout))
    return r


def step(what):
    print("== " + what, flush=True)


# --- target, patches, keys, bundles ------------------------------------------------------
sh("gcc", "-O2", "-fPIC", "-shared", "-Wl,--build-id", "-o", "libulptarget.so",
   ULP + "/fixtures/libulptarget.c")
sh("gcc", "-O2", "-Wl,--build-id", "-o", "ulptarget", ULP + "/fixtures/ulptarget.c", "-L.",
   "-lulptarget", "-Wl,-rpath," + T, "-lpthread")
for name, src in (("v1", "lib_v1.c"), ("v2", "lib_v2.c")):
    sh(NINES, "build", "--target", "libulptarget.so", "--id", "fix-lib", "-o", name + ".patch",
       ULP + "/patches/" + src)
sh(NINES, "keygen", "-o", "keys")
sh(NINES, "keygen", "-o", "tskeys")  # the server's timestamp key (same file format)
os.makedirs(T + "/trust")
shutil.copy(T + "/keys/publisher.pub", T + "/trust/")


def bundle(name, version, patch, severity="critical", published="2026-11-01T00:00:00Z"):
    with open(T + "/" + name + ".toml", "w") as f:
        f.write('id = "fix-lib"\nversion = %d\nkind = "userspace"\npublished = "%s"\n'
                '[[cves]]\nid = "CVE-2026-%d"\nseverity = "%s"\ndescription = "x"\n'
                'url = "https://example.org"\n' % (version, published, 1000 + version, severity))
    sh(NINES, "bundle", "create", "--patch", patch, "--manifest", name + ".toml", "--key",
       "keys/publisher.key", "-o", name + ".bundle")
    data = open(T + "/" + name + ".bundle", "rb").read()
    return {"file": T + "/" + name + ".bundle", "sha256": hashlib.sha256(data).hexdigest(),
            "version": version}


B2 = bundle("b2", 2, "v2.patch")            # genuine version 2
B1 = bundle("b1", 1, "v1.patch")            # genuine, older
B2X = bundle("b2x", 2, "v1.patch")          # same id and version as B2, other content
B3 = bundle("b3", 3, "v1.patch")            # genuine version 3 (the server turns honest)
B4 = bundle("b4", 4, "v2.patch")            # listed in the signed catalogue
B5 = bundle("b5", 5, "v1.patch")            # signed, but never in the signed catalogue
B6 = bundle("b6", 6, "v2.patch", severity="low", published="2026-01-01T00:00:00Z")
TARGET = json.loads(sh(NINES, "bundle", "inspect", B2["file"], "--format", "json").stdout)[
    "manifest"]["target"]
BUILD_ID, TARGET_NAME = TARGET["build_id"], TARGET.get("name", "")


def offer(b, **override):
    o = {"id": "fix-lib", "version": b["version"], "kind": "userspace",
         "target_name": TARGET_NAME, "target_build_id": BUILD_ID, "sha256": b["sha256"],
         "url": "/v1/bundles/sha256/" + b["sha256"]}
    o.update(override)
    return o


def ed25519_sign(message):
    seed = open(T + "/tskeys/publisher.key").read().split()[1][:64]
    der = bytes.fromhex("302e020100300506032b657004220420" + seed)
    open(T + "/ts.der", "wb").write(der)
    sh("openssl", "pkey", "-inform", "DER", "-in", "ts.der", "-out", "ts.pem")
    open(T + "/msg.bin", "wb").write(message)
    sh("openssl", "pkeyutl", "-sign", "-inkey", "ts.pem", "-rawin", "-in", "msg.bin", "-out",
       "sig.bin")
    return open(T + "/sig.bin", "rb").read().hex()


def freshness(entries, issued=None, expires_in=86400, tier="stable"):
    now = int(time.time())
    issued = now - 60 if issued is None else issued
    fmt = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    doc = json.dumps({"type": "nines-freshness", "format": 1, "tier": tier, "generation": issued,
                      "issued": fmt(issued), "expires": fmt(issued + expires_in),
                      "bundles": [{"id": "fix-lib", "version": b["version"],
                                   "sha256": b["sha256"]} for b in entries]})
    key = open(T + "/tskeys/publisher.pub").read().split()[1]
    return {"document": doc, "signature": ed25519_sign(b"nines-freshness-v1\0" + doc.encode()),
            "key": key}


def serve(checkin=None, raw=None, blobs=(), huge=None, slow=None):
    s = {"blobs": {b["sha256"]: b["file"] for b in blobs}}
    if raw is not None:
        s["checkin_raw"] = raw
    else:
        s["checkin"] = checkin
    if huge:
        s["huge"] = huge
    if slow:
        s["slow"] = slow
    with open(T + "/scenario.json.tmp", "w") as f:
        json.dump(s, f)
    os.rename(T + "/scenario.json.tmp", T + "/scenario.json")


def answer(offers, fresh=None):
    a = {"machine_id": "m", "tier": "stable", "bundles": offers}
    if fresh is not None:
        a["freshness"] = fresh
    return a


# --- the server, the target, enrollment ----------------------------------------------------
serve(answer([]))
procs.append(subprocess.Popen([sys.executable, HERE + "/hostile_server.py", T]))
for _ in range(100):
    if os.path.exists(T + "/port"):
        break
    time.sleep(0.05)
URL = "http://127.0.0.1:" + open(T + "/port").read()
target = subprocess.Popen([T + "/ulptarget", "0"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True, cwd=T)
procs.append(target)
if target.stdout.readline().strip() != "ready":
    fail("target did not start")


def lib_value():
    target.stdin.write("values\n")
    target.stdin.flush()
    return target.stdout.readline().split()[0]


os.makedirs(ROOT + "/etc", exist_ok=True)
open(ROOT + "/etc/machine-id", "w").write("hostile-test-machine\n")
sh(NINES, "config", "trust-dir=" + T + "/trust", "server-timeout=60s", "severity=low")
r = sh(NINES, "enable", "n9e_x", "--server", URL, "--timestamp-key", T + "/tskeys/publisher.pub")
if "plain http" not in r.stderr:
    fail("enable gives no warning for a plain http server: " + r.stderr)
for f in ("etc/nines/config.toml", "var/lib/nines/machine-token", "var/lib/nines/state.db"):
    mode = os.stat(ROOT + "/" + f).st_mode & 0o777
    if mode != 0o600:
        fail("%s is mode %o, expected 600 (it holds or may hold a secret)" % (f, mode))


def run_agent(what):
    """One check; returns the saved status. Fails on a signal, a memory peak over 256 MiB
    (the daemon or its exchange child) or a file over 64 MiB left anywhere under T."""
    with open(T + "/agent.log", "a") as log:
        log.write("=== %s\n" % what)
        log.flush()
        start = time.time()
        p = subprocess.Popen([AGENT, "--once", "--root", ROOT, "--log-level", "info"], stdout=log,
                             stderr=subprocess.STDOUT)
        _, status, ru = os.wait4(p.pid, 0)
    if os.WIFSIGNALED(status):
        fail("%s: the agent died of signal %d" % (what, os.WTERMSIG(status)))
    if ru.ru_maxrss > 256 * 1024:
        fail("%s: peak resident memory %d KiB (over 256 MiB)" % (what, ru.ru_maxrss))
    for d, _, files in os.walk(T):
        for f in files:
            if os.path.getsize(os.path.join(d, f)) > 64 << 20:
                fail("%s: %s left behind, over 64 MiB" % (what, os.path.join(d, f)))
    print("   agent: exit %d in %.1f s, peak RSS %d KiB" % (os.WEXITSTATUS(status),
                                                          time.time() - start, ru.ru_maxrss))
    return json.loads(sh(NINES, "status", "--format", "json").stdout)


def patch_state(s, version):
    for p in s["patches"]:
        if p["id"] == "fix-lib" and p["version"] == version:
            return p["state"], p["reason"]
    return None, None


def expect_refused(s, needle, what):
    text = json.dumps(s.get("refused", [])) + s.get("last_check_result", "")
    if needle not in text:
        fail("%s: no refusal saying '%s': %s / %s" % (what, needle, s.get("refused"),
                                                     s.get("last_check_result")))
    print("   refused: " + needle)


# --- genuine first ---------------------------------------------------------------------------
step("an honest offer of version 2 is applied")
serve(answer([offer(B2)]), blobs=[B2])
s = run_agent("honest v2")
if lib_value() != "lib=3":
    fail("version 2 not applied: %s (%s)" % (lib_value(), patch_state(s, 2)))

step("a signed version 1 relabelled as version 7 is refused")
serve(answer([offer(B1, version=7)]), blobs=[B1])
s = run_agent("relabelled")
expect_refused(s, "the offer says version 7, the signed manifest 1", "relabelled")
if lib_value() != "lib=3":
    fail("relabelled bundle changed the process: " + lib_value())

step("an older signed version is refused (version floor)")
serve(answer([offer(B1)]), blobs=[B1])
s = run_agent("older")
expect_refused(s, "version 1 is older than version 2 applied before", "older")

step("the same id and version with other content is refused, naming both digests")
serve(answer([offer(B2X)]), blobs=[B2X])
s = run_agent("same id and version")
expect_refused(s, "sha256 %s was applied under the same id and version" % B2["sha256"], "digest")
expect_refused(s, B2X["sha256"], "digest")

step("offer metadata that contradicts the signed manifest is refused")
serve(answer([offer(B6, published_unix=1700000000)]), blobs=[B6])
s = run_agent("contradicting metadata")
expect_refused(s, "the offer says publication time", "metadata")

step("wrong JSON types are refused with their reason")
serve(answer([{"id": 5, "version": 3, "sha256": B3["sha256"]},
              {"id": "fix-lib", "version": "3", "sha256": B3["sha256"]},
              {"id": "fix-lib", "version": 3, "sha256": B3["sha256"], "kind": 7},
              "not an object"]), blobs=[B3])
s = run_agent("wrong types")
for needle in ("bundles[0].id: expected a string, got number",
               "bundles[1].version: expected an integer, got string",
               "bundles[2].kind: expected a string, got number",
               "bundles[3]: expected an object, got string"):
    expect_refused(s, needle, "wrong types")
serve({"machine_id": "m", "bundles": 5})
s = run_agent("bundles not an array")
if "bundles: expected an array, got number" not in s["last_check_result"]:
    fail("bundles=5: " + s["last_check_result"])

step("deep JSON is refused before anything walks it")
serve(raw='{"bundles": ' + "[" * 100000 + "]" * 100000 + "}")
s = run_agent("deep JSON")
if "nested deeper than" not in s["last_check_result"]:
    fail("deep JSON: " + s["last_check_result"])

step("a 384 MiB body is refused: streamed, never held or stored")
big = "ab" * 32
serve(answer([offer(B3, sha256=big)]), huge={big: 384 << 20})
s = run_agent("oversized")
expect_refused(s, "answer larger than the limit of 67108864 bytes", "oversized")

step("a slow body is cut at server-timeout")
sh(NINES, "config", "server-timeout=3s")
slow = "cd" * 32
serve(answer([offer(B3, sha256=slow)]), slow={slow: 30})
t0 = time.time()
s = run_agent("slow body")
if time.time() - t0 > 20:
    fail("the slow body held the agent %.0f s (server-timeout is 3 s)" % (time.time() - t0))
if "not complete in time" not in json.dumps(s):
    fail("slow body: no reason in the status: %s" % json.dumps(s["patches"]))

step("the server turns honest: version 3 is applied")
sh(NINES, "config", "server-timeout=60s")
serve(answer([offer(B3)]), blobs=[B3])
s = run_agent("honest v3")
if lib_value() != "lib=2":
    fail("version 3 (v1's code) not applied: %s (%s)" % (lib_value(), patch_state(s, 3)))
if s["catalogue"]["state"] != "stale" or "server sends no freshness data" not in s["catalogue"]["reason"]:
    fail("missing freshness data is not reported stale: %s" % s["catalogue"])

# --- the signed catalogue ------------------------------------------------------------------
step("freshness: a fresh signed catalogue, and the listed version 4 applied")
serve(answer([offer(B4)], freshness([B4])), blobs=[B4])
s = run_agent("fresh")
if s["catalogue"]["state"] != "fresh":
    fail("catalogue not fresh: %s" % s["catalogue"])
if lib_value() != "lib=3":
    fail("version 4 not applied: " + lib_value())
human = sh(NINES, "status").stdout
if "catalogue:   fresh" not in human or "plain http" not in human:
    fail("humane status lacks the catalogue or the http warning:\n" + human)

step("freshness: an offer the signed catalogue does not list is refused")
serve(answer([offer(B5)], freshness([B4])), blobs=[B5])
s = run_agent("unlisted")
expect_refused(s, "is not in the signed catalogue of tier stable", "unlisted")

step("freshness: a withheld newer version is reported")
serve(answer([offer(B4)], freshness([B5])), blobs=[B4])
s = run_agent("withheld")
if "withholds newer patches" not in s["catalogue"].get("reason", ""):
    fail("withheld version not reported: %s" % s["catalogue"])

step("freshness: a replayed (older) catalogue is ignored and reported")
serve(answer([offer(B4)], freshness([B4], issued=int(time.time()) - 7200)), blobs=[B4])
s = run_agent("replay")
if "replayed catalogue ignored" not in s["catalogue"].get("reason", ""):
    fail("replay not reported: %s" % s["catalogue"])

step("freshness: a catalogue older than catalogue-max-age is stale, and says since when")
sh(NINES, "config", "catalogue-max-age=1s")
serve(answer([offer(B4)], freshness([B4], issued=int(time.time()) - 5)), blobs=[B4])
s = run_agent("stale")
c = s["catalogue"]
if c["state"] != "stale" or "longer ago than catalogue-max-age" not in c["reason"] or not c["since"]:
    fail("old catalogue not stale: %s" % c)
if "catalogue:   stale since" not in sh(NINES, "status").stdout:
    fail("humane status does not say 'catalogue stale since'")
sh(NINES, "config", "catalogue-max-age=24h")

step("freshness: a document signed by another key does not verify (stale, never blocking)")
bad = freshness([B4])
bad["key"] = open(T + "/keys/publisher.pub").read().split()[1]
serve(answer([offer(B4)], bad), blobs=[B4])
s = run_agent("untrusted timestamp key")
if "signed by untrusted key" not in s["catalogue"].get("reason", ""):
    fail("untrusted timestamp key: %s" % s["catalogue"])

reports = open(T + "/reports.jsonl").read()
for needle in ("the offer says version 7", "older than version 2", '"catalogue"'):
    if needle not in reports:
        fail("the server was not told: " + needle)
print("hostile_test: all checks passed")
cleanup()
