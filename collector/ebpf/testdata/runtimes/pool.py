#!/usr/bin/env python3
"""Test server: threaded http.server that hands its downstream calls to a
shared ThreadPoolExecutor (the way real services fan out).

usage: pool.py HOST PORT DOWNSTREAM_URL [timed]
Every request calls DOWNSTREAM_URL + path + "/a" and + "/b" in parallel on
pool threads, waits for both, then answers. With "timed" the pool is a
hand-made one (8 threads taking callables from a queue.Queue, which the
collector does not follow: only wakes tell which request a call is for)
and handlers wait for each result with Future.result(timeout=10). A
background thread (serving no request) submits a call to DOWNSTREAM_URL +
"/bg" to the same pool every 20 ms: those calls belong to no request. Every request also puts its path
into a queue.SimpleQueue that a shipper thread drains in batches, calling
DOWNSTREAM_URL + "/ship" once per batch: those calls belong to no one
request either (a batch gathers several).
"""
import http.client
import queue
import sys
import threading
import time
import urllib.parse
from concurrent.futures import Future, ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

host, port, down = sys.argv[1], int(sys.argv[2]), sys.argv[3]
u = urllib.parse.urlsplit(down)
TIMED = len(sys.argv) > 4 and sys.argv[4] == "timed"


class QueuePool:
    """A pool of threads taking work from a queue.Queue (pure Python: a
    deque and condition variables), handing results back through
    concurrent.futures.Future."""

    def __init__(self, n):
        self.q = queue.Queue()
        for _ in range(n):
            threading.Thread(target=self.work, daemon=True).start()

    def submit(self, fn, *args):
        f = Future()
        self.q.put((f, fn, args))
        return f

    def work(self):
        while True:
            f, fn, args = self.q.get()
            try:
                f.set_result(fn(*args))
            except Exception as e:
                f.set_exception(e)


pool = QueuePool(8) if TIMED else ThreadPoolExecutor(max_workers=16)
WAIT = 10 if TIMED else None


def call(path):
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    c.request("GET", path)
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_GET(self):
        if self.path == "/ready":
            status, body = 200, b"ok"
        else:
            SHIP.put(self.path)
            fa = pool.submit(call, self.path + "/a")
            fb = pool.submit(call, self.path + "/b")
            (sa, ba), (sb, bb) = fa.result(timeout=WAIT), fb.result(timeout=WAIT)
            status, body = (200 if sa == sb == 200 else 502), ba + b"\n" + bb
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def background():
    while True:
        try:
            pool.submit(call, "/bg").result(timeout=WAIT)
        except OSError:
            pass
        time.sleep(0.02)


SHIP = queue.SimpleQueue()


def shipper():
    while True:
        batch = [SHIP.get()]
        time.sleep(0.005)
        while not SHIP.empty():
            batch.append(SHIP.get_nowait())
        try:
            call("/ship")
        except OSError:
            pass


threading.Thread(target=background, daemon=True).start()
threading.Thread(target=shipper, daemon=True).start()
ThreadingHTTPServer.daemon_threads = True
s = ThreadingHTTPServer((host, port), H)
print("READY", flush=True)
s.serve_forever()
