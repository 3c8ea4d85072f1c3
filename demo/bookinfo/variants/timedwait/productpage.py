#!/usr/bin/env python3
"""productpage, timedwait variant: calls reviews and details in parallel
through a shared ThreadPoolExecutor of 3 workers and waits for each with a
timeout (Future.result(timeout=...)), reviews first. One connection per call;
no tracing header is forwarded. X-ZT-Marker is the tests' ground truth
(copied onto the downstream calls, logged with the request's connection as a
ZTGT line).
"""
import http.client
import sys
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import groundtruth  # demo/bookinfo/services (PYTHONPATH)

OUT = ("127.0.0.1", 15001)  # the sidecar's outbound listener
POOL = ThreadPoolExecutor(max_workers=3, thread_name_prefix="downstream")
WAIT = 20.0  # seconds a handler waits for a call's result


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
        reviews = POOL.submit(call, "reviews", "/reviews/0", m)
        details = POOL.submit(call, "details", "/details/0", m)
        s2, r = reviews.result(timeout=WAIT)
        s1, d = details.result(timeout=WAIT)
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
