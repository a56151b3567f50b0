#!/usr/bin/env python3
"""A stand-in for reprise-server that tests the harness (ServerProcess, HttpClient) on its own.

Takes the server's start arguments (--database-url, --port, --ready-file) and writes the ready
file like the real server: atomically, once it listens. Routes:
  GET  /json        -> 200 {"ok": true, "requests_on_connection": n}
  (/json and /drop also answer under any prefix, e.g. /api/v1/namespaces/default/workflows/drop,
  so the SDK's connection, which always adds the API prefix, can be tested against them)
  POST /echo        -> 200, the request body and its Content-Type echoed back
  GET  /drop        -> 200, then closes the connection without saying so (a stale keep-alive)
  GET  /slow        -> answers after 5 s (to test client timeouts)
  GET  /text        -> 200 text/plain "plain"
Extra argument --exit-before-ready makes it print a message and exit with status 3.
"""
import argparse
import http.server
import json
import os
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def log_message(self, fmt, *args):
        sys.stderr.write("fake-server: " + (fmt % args) + "\n")

    def send(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_GET(self):
        self.count = getattr(self, "count", 0) + 1
        if self.path.endswith("/json"):
            self.send(200, json.dumps({"ok": True, "requests_on_connection": self.count}))
        elif self.path.endswith("/drop"):
            self.send(200, json.dumps({"dropping": True}))
            self.close_connection = True
        elif self.path == "/slow":
            time.sleep(5)
            self.send(200, "{}")
        elif self.path == "/text":
            self.send(200, "plain", "text/plain")
        else:
            self.send(404, json.dumps({"code": "not_found", "message": self.path}))

    def do_POST(self):
        self.count = getattr(self, "count", 0) + 1
        body = self.rfile.read(int(self.headers.get("Content-Length", "0"))).decode()
        self.send(200, json.dumps({"body": body, "content_type": self.headers.get("Content-Type")}))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--exit-before-ready", action="store_true")
    args = parser.parse_args()
    if args.exit_before_ready:
        print("fake-server: told to exit before ready", file=sys.stderr)
        sys.exit(3)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    tmp = args.ready_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.ready_file)
    print("fake-server: listening on", server.server_address[1], "for", args.database_url, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
