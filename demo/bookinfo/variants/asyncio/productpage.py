#!/usr/bin/env python3
"""productpage, asyncio variant: an aiohttp server on one event loop; each
request awaits its reviews and details calls together (asyncio.gather)
through one shared aiohttp.ClientSession whose connector keeps at most 8
keep-alive connections to the sidecar (a request may wait for another's
connection). No tracing header is forwarded. X-ZT-Marker is the tests'
ground truth (copied onto the downstream calls, logged with the request's
connection as a ZTGT line).

Runs on Debian's /usr/bin/python3 with python3-aiohttp (variant.env).
"""
import asyncio
import sys

import aiohttp
from aiohttp import web

import groundtruth  # demo/bookinfo/services (PYTHONPATH)

OUT = "http://127.0.0.1:15001"  # the sidecar's outbound listener
session = None
seen = {}  # requests per connection (by client address)


async def call(service, path, marker):
    async with session.get(OUT + path, headers={"Host": service, "X-ZT-Marker": marker}) as r:
        return r.status, await r.read()


async def productpage(request):
    peer = request.transport.get_extra_info("peername")[:2]
    local = request.transport.get_extra_info("sockname")[:2]
    seen[peer] = seen.get(peer, 0) + 1
    m = request.headers.get("X-ZT-Marker", "")
    groundtruth.log(m, peer, local, seen[peer])
    (s2, r), (s1, d) = await asyncio.gather(call("reviews", "/reviews/0", m), call("details", "/details/0", m))
    body = b"<html>productpage\n" + d + b"\n" + r + b"\n</html>\n"
    return web.Response(body=body, status=200 if s1 == 200 and s2 == 200 else 502, content_type="text/html")


async def main():
    global session
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=8), timeout=aiohttp.ClientTimeout(total=10),
                                    skip_auto_headers=["User-Agent", "Accept-Encoding"])
    app = web.Application()
    app.router.add_get("/productpage", productpage)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 9081).start()
    print("READY", flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
