#!/usr/bin/env python3
"""A tiny stand-in for APM Server's plain-HTTP intake, for scripts/deploy-checks.sh.

    python3 test-upstream.py PORT

Listens on 127.0.0.1:PORT only (HTTP/1.1, keep-alive). GET / answers a small JSON body
like APM Server's server-information endpoint; POST /intake/v2/events reads the body and
answers 202. Anything else: 404. Stops on SIGTERM.
"""
import http.server
import json
import signal
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "test-upstream"

    def _send(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 (http.server's naming)
        if self.path == "/":
            self._send(200, json.dumps({"version": "test-upstream", "publish_ready": True}))
        else:
            self._send(404, "{}")

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                self.rfile.read(size + 2)
                if size == 0:
                    break
        if self.path.startswith("/intake/v2/events"):
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._send(404, "{}")

    def log_message(self, fmt, *args):
        sys.stderr.write("test-upstream: " + (fmt % args) + "\n")


def main():
    port = int(sys.argv[1])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
