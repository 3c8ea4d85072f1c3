#!/usr/bin/env python3
"""Test client: urllib (stdlib only), one request per URL, in order.

usage: client.py URL...   prints "STATUS LEN URL" per request.
"""
import sys
import urllib.request

for u in sys.argv[1:]:
    with urllib.request.urlopen(u, timeout=10) as r:
        body = r.read()
        print(r.status, len(body), u, flush=True)
