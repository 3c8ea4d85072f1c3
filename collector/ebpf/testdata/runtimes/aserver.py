#!/usr/bin/env python3
"""Test server: an asyncio streams HTTP/1.1 server (stdlib only), one event
loop serving every request on one thread.

usage: aserver.py HOST PORT DOWNSTREAM_URL [pure | spin=FILE]
A connection's handler (one task per connection, answering its keep-alive
requests in turn) calls DOWNSTREAM_URL + path + "/a" and + "/b" for every
request, awaited together with asyncio.gather (each in a task of its own):
"/a" on a new connection, "/b" on a keep-alive connection taken from a
shared pool (so a connection carries calls of many requests). A background
task created at start calls DOWNSTREAM_URL + "/bg" every 20 ms, and a timer
callback creates a task calling "/bg" every 30 ms: those calls belong to no
request. With "pure", asyncio runs without its C accelerator (_asyncio).
With "spin=FILE", from its start until FILE exists (looked for every 10 ms,
at most 60 s) a task steps without pause (each step awaits sleep(0)), so
that uprobes attached meanwhile attach in the middle of steps.
"""
import sys

if len(sys.argv) > 4 and sys.argv[4] == "pure":
    sys.modules["_asyncio"] = None  # asyncio falls back to its Python tasks

import asyncio
import os
import urllib.parse

host, port, down = sys.argv[1], int(sys.argv[2]), urllib.parse.urlsplit(sys.argv[3])
spin_file = sys.argv[4][5:] if len(sys.argv) > 4 and sys.argv[4].startswith("spin=") else None
pool = []  # idle keep-alive (reader, writer) pairs to the downstream


async def read_response(r):
    head = await r.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v)
    return status, await r.readexactly(length)


async def call(path, keep):
    if keep and pool:
        r, w = pool.pop()
    else:
        r, w = await asyncio.open_connection(down.hostname, down.port)
    conn = b"keep-alive" if keep else b"close"
    w.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: down\r\nConnection: " + conn + b"\r\n\r\n")
    await w.drain()
    status, body = await read_response(r)
    if keep:
        pool.append((r, w))
    else:
        w.close()
    return status, body


async def handle(r, w):
    try:
        while True:
            try:
                head = await r.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            path = head.split(b" ", 2)[1].decode()
            if path == "/ready":
                status, body = 200, b"ok"
            else:
                (sa, ba), (sb, bb) = await asyncio.gather(call(path + "/a", False), call(path + "/b", True))
                status, body = (200 if sa == sb == 200 else 502), ba + b"\n" + bb
            w.write(b"HTTP/1.1 %d OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % (status, len(body)) + body)
            await w.drain()
    finally:
        w.close()


async def background():
    while True:
        try:
            await call("/bg", False)
        except OSError:
            pass
        await asyncio.sleep(0.02)


def tick(loop):
    loop.create_task(call("/bg", False))  # created by a callback, in no task
    loop.call_later(0.03, tick, loop)


async def spin(path):
    loop = asyncio.get_running_loop()
    end, look = loop.time() + 60, 0
    while path and loop.time() < end:
        if loop.time() >= look:
            if os.path.exists(path):
                return
            look = loop.time() + 0.01
        await asyncio.sleep(0)


async def main():
    loop = asyncio.get_running_loop()
    loop.create_task(spin(spin_file))
    srv = await asyncio.start_server(handle, host, port, backlog=128)
    loop.create_task(background())
    loop.call_later(0.03, tick, loop)
    print("READY", flush=True)
    await srv.serve_forever()


asyncio.run(main())
