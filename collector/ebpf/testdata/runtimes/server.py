#!/usr/bin/env python3
"""Test server: threaded http.server (stdlib only).

usage: server.py HOST PORT [DOWNSTREAM_URL]
With DOWNSTREAM_URL ("two-tier"), every request first calls
DOWNSTREAM_URL + path on the same thread, then answers with its body.
Paths: /chunked/... chunked response; /big/N/... N-byte body; else "ok <path>".
"""
import http.client
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

host, port = sys.argv[1], int(sys.argv[2])
down = sys.argv[3] if len(sys.argv) > 3 else ""


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        if down:
            u = urllib.parse.urlsplit(down)
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
            c.request("GET", self.path)
            r = c.getresponse()
            body = r.read()
            c.close()
            status = r.status
        elif self.path.startswith("/chunked/"):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"chunk-one ", b"chunk-two ", self.path.encode()):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        elif self.path.startswith("/big/"):
            n = int(self.path.split("/")[2])
            body, status = b"x" * n, 200
        else:
            body, status = b"ok " + self.path.encode(), 200
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


s = ThreadingHTTPServer((host, port), H)
print("READY", flush=True)
s.serve_forever()
