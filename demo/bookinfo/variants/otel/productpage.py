#!/usr/bin/env python3
"""productpage (otel variant): calls details and reviews through its sidecar, on the request's thread.

Unlike the default productpage it starts a W3C trace context per request and
sends it on each call (traceparent: the request's trace id, a fresh parent
span id per call), as an instrumented caller or a gateway does, so that the
SDK in reviews continues the request's trace. X-ZT-Marker is the tests'
ground truth: the service copies it onto its downstream calls and logs it
with the connection the request came on (a ZTGT line); the tracer never
reads it.
"""
import http.client
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import groundtruth  # demo/bookinfo/services (PYTHONPATH)

OUT = ("127.0.0.1", 15001)  # the sidecar's outbound listener


def call(service, path, marker, trace_id):
    c = http.client.HTTPConnection(*OUT, timeout=10)
    traceparent = "00-%s-%s-01" % (trace_id, os.urandom(8).hex())
    c.request("GET", path, headers={"Host": service, "X-ZT-Marker": marker, "traceparent": traceparent})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    requests = 0  # on this connection (one handler per connection)

    def log_message(self, *a):
        pass

    def do_GET(self):
        self.requests += 1
        m = self.headers.get("X-ZT-Marker", "")
        groundtruth.log(m, self.client_address, self.server.server_address, self.requests)
        trace_id = os.urandom(16).hex()
        s1, details = call("details", "/details/0", m, trace_id)
        s2, reviews = call("reviews", "/reviews/0", m, trace_id)
        body = b"<html>productpage\n" + details + b"\n" + reviews + b"\n</html>\n"
        self.send_response(200 if s1 == 200 and s2 == 200 else 502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer.daemon_threads = True
srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9081), H)
print("READY", flush=True)
srv.serve_forever()
