#!/usr/bin/env python3
"""productpage, https variant: serves HTTPS to its sidecar and calls details
and reviews over HTTPS through it with requests (Debian's Python: the
system OpenSSL through the _ssl module), a new connection per call, on the
request's thread.

The certificate, key and CA come from ZT_TLS_CERT, ZT_TLS_KEY and ZT_TLS_CA
(up makes them). It forwards no tracing header. X-ZT-Marker is the tests'
ground truth: copied onto the downstream calls and logged with the
connection the request came on (a ZTGT line); the tracer never reads it.
"""
import os
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests

import groundtruth  # demo/bookinfo/services (PYTHONPATH)

OUT = "https://127.0.0.1:15001"  # the sidecar's outbound listener (TLS)
CA = os.environ["ZT_TLS_CA"]
SERVER = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
SERVER.load_cert_chain(os.environ["ZT_TLS_CERT"], os.environ["ZT_TLS_KEY"])


def fetch(service, path, marker):
    # requests.get: a session of its own, so a connection (and a TLS handshake) per call
    r = requests.get(OUT + path, headers={"Host": service, "X-ZT-Marker": marker}, verify=CA, timeout=10)
    return r.status_code, r.content


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True

    def get_request(self):
        sock, addr = super().get_request()
        # the handshake runs on the connection's thread (Handler.setup), not the accept loop
        return SERVER.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    served = 0  # requests on this connection (one handler per connection)

    def setup(self):
        self.request.do_handshake()
        super().setup()

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.served += 1
        marker = self.headers.get("X-ZT-Marker", "")
        groundtruth.log(marker, self.client_address, self.server.server_address, self.served)
        d_status, d_body = fetch("details", "/details/0", marker)
        r_status, r_body = fetch("reviews", "/reviews/0", marker)
        page = b"".join([b"<html>productpage\n", d_body, b"\n", r_body, b"\n</html>\n"])
        self.send_response(200 if (d_status, r_status) == (200, 200) else 502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)


srv = TLSServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9081), Handler)
print("READY", flush=True)
srv.serve_forever()
