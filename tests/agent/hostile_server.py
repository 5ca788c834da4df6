#!/usr/bin/env python3
"""A hostile patch server for tests/agent/hostile_test.sh, loopback only.

It answers what the scenario file says (re-read on every request, so the test changes the
server's behaviour between agent runs):
  {"checkin": <JSON value sent as the check-in answer> | "checkin_raw": "<text>",
   "blobs": {"<sha256>": "<file to serve>"},
   "huge": {"<sha256>": <bytes of zeros, streamed without Content-Length, never stored>},
   "slow": {"<sha256>": <seconds: one byte per second>}}
/v1/enroll answers a machine token; /v1/reports are appended to reports.jsonl. The server
stops by itself after --lifetime seconds.
Usage: hostile_server.py DIR (writes DIR/port; reads DIR/scenario.json)
"""
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIR = sys.argv[1]
LIFETIME = 900


def scenario():
    with open(os.path.join(DIR, "scenario.json")) as f:
        return json.load(f)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # close-delimited bodies: no Content-Length needed

    def log_message(self, fmt, *args):
        with open(os.path.join(DIR, "server.log"), "a") as f:
            f.write("%s %s\n" % (self.requestline, fmt % args))

    def send(self, code, body, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(min(n, 1 << 20))
        s = scenario()
        if self.path == "/v1/enroll":
            return self.send(201, json.dumps({"machine_id": "m", "tier": "stable",
                                              "token": "n9m_hostile"}).encode())
        if self.path == "/v1/checkin":
            if "checkin_raw" in s:
                return self.send(200, s["checkin_raw"].encode())
            return self.send(200, json.dumps(s["checkin"]).encode())
        if self.path == "/v1/reports":
            with open(os.path.join(DIR, "reports.jsonl"), "ab") as f:
                f.write(body + b"\n")
            return self.send(200, b'{"stored": 1}')
        self.send(404, b'{"error": "no such route"}')

    def do_GET(self):
        s = scenario()
        sha = self.path.rsplit("/", 1)[-1]
        try:
            if sha in s.get("blobs", {}):
                with open(s["blobs"][sha], "rb") as f:
                    return self.send(200, f.read(), "application/octet-stream")
            if sha in s.get("huge", {}):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                chunk = b"\0" * (1 << 20)
                left = s["huge"][sha]
                while left > 0:
                    self.wfile.write(chunk[:min(left, len(chunk))])
                    left -= len(chunk)
                return
            if sha in s.get("slow", {}):
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", "1000")
                self.end_headers()
                for _ in range(int(s["slow"][sha])):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(1)
                return
        except (BrokenPipeError, ConnectionResetError):
            return  # the agent stopped reading: what the test wants
        self.send(404, b'{"error": "unknown bundle"}')


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    with open(os.path.join(DIR, "port.tmp"), "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
    threading.Timer(LIFETIME, srv.shutdown).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
