"""The tests' ground truth for the Python services: the X-ZT-Marker header of
each request with the connection it came on and its position there (a ZTGT
line, docs/demo.md). Not part of a service's logic.
"""
import threading

_lock = threading.Lock()


def log(marker, client, server, n):
    """Writes one ZTGT line: marker, client (ip, port), server (ip, port), n."""
    with _lock:
        print("ZTGT", marker or "-", *client, *server, n, flush=True)
