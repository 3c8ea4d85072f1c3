#!/usr/bin/env python3
"""productpage, pool variant: calls details and reviews in parallel through a
shared ThreadPoolExecutor, so the downstream calls run on pool threads, not on
the thread that received the request. One connection per call; no tracing
header is forwarded. X-ZT-Marker is the tests' ground truth (copied onto the
downstream calls, logged with the request's connection as a ZTGT line).
"""
import http.client
import sys
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import groundtruth  # demo/bookinfo/services (PYTHONPATH)

OUT = ("127.0.0.1", 15001)  # the sidecar's outbound listener
POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="downstream")


def call(service, path, marker):
    c = http.client.HTTPConnection(*OUT, timeout=10)
    c.request("GET", path, headers={"Host": service, "X-ZT-Marker": marker})
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
        details = POOL.submit(call, "details", "/details/0", m)
        reviews = POOL.submit(call, "reviews", "/reviews/0", m)
        (s1, d), (s2, r) = details.result(), reviews.result()
        body = b"<html>productpage\n" + d + b"\n" + r + b"\n</html>\n"
        self.send_response(200 if s1 == 200 and s2 == 200 else 502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer.daemon_threads = True
srv = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9081), H)
print("READY", flush=True)
srv.serve_forever()
