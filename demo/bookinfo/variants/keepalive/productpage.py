#!/usr/bin/env python3
"""productpage, keepalive variant: a Flask app calling details and reviews
through one shared requests.Session (a pool of keep-alive connections to the
sidecar), forwarding X-Request-ID as mesh applications are asked to.
X-ZT-Marker is the tests' ground truth (copied onto the downstream calls,
logged with the request's connection as a ZTGT line).
"""
import logging
import sys
import threading

import requests
from flask import Flask, request
from werkzeug.serving import make_server

import groundtruth  # demo/bookinfo/services (PYTHONPATH)

OUT = "http://127.0.0.1:15001"  # the sidecar's outbound listener
session = requests.Session()
app = Flask("productpage")
_conn = threading.local()  # the dev server serves a connection on one thread


def truth():
    env = request.environ
    peer = (env["REMOTE_ADDR"], env["REMOTE_PORT"])
    if getattr(_conn, "peer", None) != peer:
        _conn.peer, _conn.requests = peer, 0
    _conn.requests += 1
    m = request.headers.get("X-ZT-Marker", "")
    groundtruth.log(m, peer, (env["SERVER_NAME"], env["SERVER_PORT"]), _conn.requests)
    return m


def call(service, path, headers):
    r = session.get(OUT + path, headers=dict(headers, Host=service), timeout=10)
    return r.status_code, r.content


@app.get("/productpage")
def productpage():
    fwd = {"X-ZT-Marker": truth()}
    if "X-Request-ID" in request.headers:
        fwd["X-Request-ID"] = request.headers["X-Request-ID"]
    s1, details = call("details", "/details/0", fwd)
    s2, reviews = call("reviews", "/reviews/0", fwd)
    body = b"<html>productpage\n" + details + b"\n" + reviews + b"\n</html>\n"
    return body, 200 if s1 == 200 and s2 == 200 else 502, {"Content-Type": "text/html"}


logging.getLogger("werkzeug").setLevel(logging.ERROR)
srv = make_server("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9081, app, threaded=True)
print("READY", flush=True)
srv.serve_forever()
