#!/usr/bin/env python3
"""Hostile clients against the real `nines serve` (loopback only, bounded in time).

Each attack runs while a legitimate client keeps asking GET /v1/health on fresh connections
from 127.0.0.1; the server must keep answering it, stay small, and refuse the attacker.
All of 127.0.0.0/8 is loopback on Linux, so the attackers bind to 127.0.0.2, 127.0.0.3, ...
to look like many hosts.

Usage: hostile_clients.py NINES_BINARY [ATTACK ...]    (default: every attack)
       hostile_clients.py --attach PORT --pid PID ATTACK ...   (measure another server)
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

PORT = 0
SERVER_PID = 0
FAILURES = []


def fail(what):
    FAILURES.append(what)
    print("FAIL: " + what, flush=True)


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def alive(pid):
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def connect(source="127.0.0.1", timeout=5.0):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((source, 0))
    s.connect(("127.0.0.1", PORT))
    return s


def read_response(s, deadline):
    """Reads one HTTP response with a Content-Length body: (status, headers, body) or None."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(65536)
        if not chunk:
            return None
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(65536)
        if not chunk:
            return None
        rest += chunk
    return status, headers, rest[:length]


def request(method, path, token=None, body=None, timeout=5.0, source="127.0.0.1"):
    """One request on a fresh connection: (status, json or None), or (0, None) on no answer."""
    deadline = time.monotonic() + timeout
    try:
        s = connect(source, timeout)
    except OSError:
        return 0, None
    try:
        data = body.encode() if isinstance(body, str) else (body or b"")
        head = f"{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        s.sendall(head.encode() + b"\r\n" + data)
        r = read_response(s, deadline)
        if r is None:
            return 0, None
        try:
            return r[0], json.loads(r[2] or b"null")
        except ValueError:
            return r[0], None
    except OSError:
        return 0, None
    finally:
        s.close()


class Legitimate(threading.Thread):
    """Asks GET /v1/health on a fresh connection every 200 ms, each request in its own thread
    (a stalled server cannot slow the asking down); counts the answers within 3 s."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.times = []
        self.asked = 0
        self.threads = []

    def one(self):
        t0 = time.monotonic()
        status, _ = request("GET", "/v1/health", timeout=3.0)
        took = time.monotonic() - t0
        with self.lock:
            self.times.append(took if status == 200 else None)

    def run(self):
        while not self.stop.is_set():
            t = threading.Thread(target=self.one, daemon=True)
            t.start()
            self.threads.append(t)
            self.asked += 1
            self.stop.wait(0.2)
        for t in self.threads:
            t.join(timeout=4)

    @property
    def answered(self):
        return sum(1 for t in self.times if t is not None and t <= 3.0)

    @property
    def worst(self):
        return max((t if t is not None else 3.0 for t in self.times), default=0.0)

    def share(self):
        return self.answered / self.asked if self.asked else 0.0


def with_legitimate_client(name, attack, seconds):
    """Runs `attack(stop_event)` for `seconds` beside the legitimate client; checks >= 80 %."""
    legit = Legitimate()
    stop = threading.Event()
    t = threading.Thread(target=attack, args=(stop,), daemon=True)
    t.start()
    time.sleep(0.5)  # the attack first takes its hold
    legit.start()
    time.sleep(seconds)
    legit.stop.set()
    legit.join()
    stop.set()
    t.join(timeout=10)
    print(f"{name}: legitimate client answered {legit.answered}/{legit.asked} "
          f"({legit.share():.0%}) within 3 s, slowest {legit.worst:.2f} s; "
          f"server RSS {rss_mib(SERVER_PID):.1f} MiB", flush=True)
    if legit.asked < 5 or legit.share() < 0.8:
        fail(f"{name}: only {legit.share():.0%} of the legitimate requests answered within 3 s")
    if not alive(SERVER_PID):
        fail(f"{name}: the server died")


def trickle(stop, addresses=40, per_address=1, interval=2.0):
    """Clients that send one header line every `interval` seconds and never finish."""
    socks = []
    for i in range(addresses):
        for _ in range(per_address):
            try:
                s = connect(f"127.0.0.{2 + i}")
                s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: t\r\n")
                socks.append(s)
            except OSError:
                pass
    n = 0
    while not stop.wait(interval):
        for s in list(socks):
            try:
                s.sendall(f"X-Slow-{n}: 1\r\n".encode())
            except OSError:
                socks.remove(s)
                # A closed trickler comes back at once, as an attacker would.
                try:
                    s = connect(s.getsockname()[0])
                    s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: t\r\n")
                    socks.append(s)
                except OSError:
                    pass
        n += 1
    for s in socks:
        s.close()


def attack_trickle():
    """40 clients from 40 addresses trickling headers (issue 11's figure)."""
    with_legitimate_client("trickle (40 addresses)", trickle, 8)


def attack_idle():
    """300 idle connections, spread over 10 addresses, reopened when closed."""

    def idle(stop):
        socks = []
        addrs = [f"127.0.0.{100 + i}" for i in range(10)]
        while not stop.is_set():
            for a in addrs:
                while len([s for s in socks if s[0] == a]) < 30 and not stop.is_set():
                    try:
                        socks.append((a, connect(a, timeout=1)))
                    except OSError:
                        break
            stop.wait(0.5)
            for entry in list(socks):  # drop the ones the server closed
                try:
                    entry[1].setblocking(False)
                    if entry[1].recv(1) == b"":
                        socks.remove(entry)
                except BlockingIOError:
                    pass
                except OSError:
                    socks.remove(entry)
        for _, s in socks:
            s.close()

    with_legitimate_client("idle connections (300)", idle, 8)


def attack_header_flood(mib=20, clients=8):
    """`clients` requests each sending `mib` MiB of headers: refused, memory stays small."""
    peak = [0.0]
    outcomes = []

    def flood(i):
        try:
            s = connect(f"127.0.0.{150 + i}", timeout=10)
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: t\r\n")
            line = b"X-Flood: " + b"a" * 8000 + b"\r\n"
            sent = 0
            while sent < mib << 20:
                s.sendall(line)
                sent += len(line)
            s.sendall(b"\r\n")
            r = read_response(s, time.monotonic() + 10)
            outcomes.append(r[0] if r else "closed")
        except OSError as e:
            outcomes.append("closed")  # refused mid-flood: the server closed the connection
        finally:
            s.close()

    def watch(stop):
        while not stop.wait(0.05):
            peak[0] = max(peak[0], rss_mib(SERVER_PID))

    stop = threading.Event()
    w = threading.Thread(target=watch, args=(stop,), daemon=True)
    w.start()
    threads = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    stop.set()
    w.join()
    after = rss_mib(SERVER_PID)
    print(f"header flood ({clients} x {mib} MiB): outcomes {outcomes}; server RSS peak "
          f"{peak[0]:.1f} MiB, after {after:.1f} MiB", flush=True)
    if any(o == 200 for o in outcomes):
        fail("header flood: a request with megabytes of headers was answered 200")
    if peak[0] >= 200 or after >= 200:
        fail(f"header flood: server RSS reached {max(peak[0], after):.1f} MiB (limit 200)")
    if not alive(SERVER_PID):
        fail("header flood: the server died")
    status, _ = request("GET", "/v1/health")
    if status != 200:
        fail("header flood: the server no longer answers")


def attack_total_deadline(limit_s=20):
    """One header line a second for ever: the request's total deadline closes it."""
    s = connect("127.0.0.200")
    s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: t\r\n")
    t0 = time.monotonic()
    closed = None
    n = 0
    while time.monotonic() - t0 < limit_s:
        try:
            s.sendall(f"X-Slow-{n}: 1\r\n".encode())
            s.settimeout(1.0)
            try:
                data = s.recv(65536)
                if data == b"" or data.startswith(b"HTTP/1.1 408"):
                    closed = time.monotonic() - t0
                    break
            except socket.timeout:
                pass
        except OSError:
            closed = time.monotonic() - t0
            break
        n += 1
    s.close()
    if closed is None:
        fail(f"total deadline: a client trickling headers still held its connection after "
             f"{limit_s} s")
    else:
        print(f"total deadline: a trickling request was cut after {closed:.1f} s", flush=True)


def attack_per_address(cap_probe=400):
    """One address opening many connections gets at most its share; others still served."""
    socks = []
    refused = 0
    for _ in range(cap_probe):
        try:
            s = connect("127.0.0.210", timeout=2)
            socks.append(s)
        except OSError:
            refused += 1
    time.sleep(0.5)
    held = 0
    for s in socks:
        try:
            s.setblocking(False)
            if s.recv(1) != b"":
                held += 1
        except BlockingIOError:
            held += 1
        except OSError:
            pass
    status, _ = request("GET", "/v1/health", source="127.0.0.211")
    for s in socks:
        s.close()
    print(f"per-address share: {held} of {cap_probe} connections from one address held open; "
          f"another address answered {status}", flush=True)
    if held >= cap_probe:
        fail("per-address share: one address held every connection it opened")
    if status != 200:
        fail("per-address share: another address was not answered")


def admin_request(method, path, body=None, token=None):
    return request(method, path, token=token or ADMIN, body=None if body is None else json.dumps(body))


def attack_deep_json():
    """A machine token posts a report whose advisor is nested 100,000 levels deep."""
    deep = "[" * 100000 + "]" * 100000
    body = '{"reports": [], "advisor": {"verdict": "none", "x": ' + deep + "}}"
    status, answer = request("POST", "/v1/reports", token=MACHINE, body=body)
    print(f"deep JSON: {status} {answer}", flush=True)
    if status != 400:
        fail(f"deep JSON: answered {status}, not 400")
    if not alive(SERVER_PID) or request("GET", "/v1/health")[0] != 200:
        fail("deep JSON: the server died")


def attack_seize_enrollment():
    """An enroll token posts another machine's id to /v1/enroll."""
    status, answer = request("POST", "/v1/enroll", token=ENROLL,
                             body=json.dumps({"machine_id": "victim-1"}))
    print(f"enrollment of an existing machine id: {status} {answer}", flush=True)
    if status != 409:
        fail(f"enrollment of an existing machine id answered {status}, not 409")
    checkin = {"name": "victim", "arch": "x86_64", "kernel_release": "6.1.0-28-cloud-amd64"}
    if request("POST", "/v1/checkin", token=MACHINE, body=json.dumps(checkin))[0] != 200:
        fail("enrollment of an existing machine id: the victim's token no longer works")


ATTACKS = {
    "deep-json": attack_deep_json,
    "seize-enrollment": attack_seize_enrollment,
    "trickle": attack_trickle,
    "idle": attack_idle,
    "header-flood": attack_header_flood,
    "total-deadline": attack_total_deadline,
    "per-address": attack_per_address,
}
ADMIN = MACHINE = ENROLL = None


def start_server(nines, data):
    proc = subprocess.Popen([nines, "serve", "--listen", "127.0.0.1:0", "--data", data],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if "listening on" in line:
            port = int(line.split("127.0.0.1:")[1].split()[0])
            break
    if port is None:
        proc.kill()
        sys.exit("FAIL: nines serve did not start: " + proc.stderr.read())
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, port


def main():
    global PORT, SERVER_PID, ADMIN, MACHINE, ENROLL
    args = sys.argv[1:]
    proc = None
    if args and args[0] == "--attach":
        PORT, SERVER_PID = int(args[1]), int(args[3])
        names = args[4:]
    else:
        data = tempfile.mkdtemp(prefix="nines-hostile-")
        proc, PORT = start_server(args[0], data)
        SERVER_PID = proc.pid
        names = args[1:]
        with open(os.path.join(data, "admin-token")) as f:
            ADMIN = f.read().strip()
        status, t = admin_request("POST", "/v1/tokens", {"kind": "enroll", "tier": "stable"})
        assert status == 201, (status, t)
        ENROLL = t["token"]
        status, m = request("POST", "/v1/enroll", token=ENROLL,
                            body=json.dumps({"machine_id": "victim-1"}))
        assert status == 201, (status, m)
        MACHINE = m["token"]
    started = time.monotonic()
    try:
        for name in names or list(ATTACKS):
            ATTACKS[name]()
    finally:
        if proc:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                fail("nines serve did not stop on SIGTERM within 10 s")
    print(f"{len(names or ATTACKS)} attacks in {time.monotonic() - started:.1f} s", flush=True)
    if FAILURES:
        sys.exit(1)


if __name__ == "__main__":
    main()
