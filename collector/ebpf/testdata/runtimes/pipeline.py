#!/usr/bin/env python3
"""Pipelining client: sends all requests in one write on one socket, then
reads every response (Content-Length or chunked bodies).

usage: pipeline.py HOST PORT PATH...   prints "STATUS LEN PATH" per response.
"""
import socket
import sys

host, port, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
s = socket.create_connection((host, port), timeout=10)
req = b"".join(b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (p.encode(), host.encode()) for p in paths)
s.sendall(req)
f = s.makefile("rb")
for p in paths:
    status = int(f.readline().split()[1])
    headers = {}
    while True:
        line = f.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        k, _, v = line.decode("latin-1").partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        n = 0
        while True:
            size = int(f.readline().split(b";")[0], 16)
            n += len(f.read(size))
            f.readline()
            if size == 0:
                break
    else:
        n = len(f.read(int(headers.get("content-length", "0"))))
    print(status, n, p, flush=True)
s.close()
