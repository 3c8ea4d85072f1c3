"""Ground truth for the capture's TCP sequence numbers of reads.

Each side takes its own socket's write_seq from the kernel through the TCP
repair interface (TCP_REPAIR, TCP_REPAIR_QUEUE = TCP_SEND_QUEUE,
TCP_QUEUE_SEQ; root) before it writes anything, so a request's or a
response's first byte is that number plus the bytes written before it: a
number from outside the capture. Roles (argv[1]):

  serve MODE HOST PORT          HTTP/1.1 server reading requests with MODE in
                                13-byte reads; X-Base: its write_seq
  client MODE HOST PORT NONCE N N requests on one connection, responses read
                                with MODE; the last one Connection: close,
                                read after the FIN is there in one read;
                                prints "PATH REQSEQ RESPSEQ CLIENTPORT"
  twin HOST PORT                two threads blocked in recv on one socket
  twinclient HOST PORT NONCE N  N requests of one length, 5 ms apart
  reuse HOST PORT FLAG          a thread blocked in read(fd) while another
                                dup2()s a second connection onto fd
  reuseclient HOST PORT NONCE FLAG

MODE: read, recvfrom, readv, recvmsg, peek (recv MSG_PEEK of 16 bytes, then
read).
"""
import os
import socket
import struct
import sys
import threading
import time

TCP_REPAIR, TCP_REPAIR_QUEUE, TCP_QUEUE_SEQ, TCP_SEND_QUEUE = 19, 20, 21, 2
TCP_REPAIR_OFF_NO_WP = -1


def write_seq(s):
    s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, 1)
    s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)
    v = struct.unpack("I", s.getsockopt(socket.IPPROTO_TCP, TCP_QUEUE_SEQ, 4))[0]
    s.setsockopt(socket.IPPROTO_TCP, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP)
    return v


def recv_some(s, n, mode):
    fd = s.fileno()
    if mode == "read":
        return os.read(fd, n)
    if mode == "recvfrom":
        return s.recv(n)
    if mode == "readv":
        # The capture copies a vectored read's first buffer: it holds the
        # whole read, the second one is empty.
        a, b = bytearray(n), bytearray(0)
        got = os.readv(fd, [a, b])
        return bytes((a + b)[:got])
    if mode == "recvmsg":
        return s.recvmsg(n)[0]
    if mode == "peek":
        if not s.recv(16, socket.MSG_PEEK):
            return b""
        return os.read(fd, n)
    raise SystemExit("mode " + mode)


def listen(host, port):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(16)
    print("READY", flush=True)
    return ls


def response(base, close):
    return (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Base: %d\r\n%s\r\nok"
            % (base, b"Connection: close\r\n" if close else b""))


def serve_conn(c, mode):
    base = write_seq(c)
    off = 0
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            d = recv_some(c, 13, mode)
            if not d:
                c.close()
                return
            buf += d
        req, buf = buf.split(b"\r\n\r\n", 1)
        close = b"Connection: close" in req
        r = response((base + off) & 0xFFFFFFFF, close)
        c.sendall(r)
        off += len(r)
        if close:
            c.close()
            return


def serve(mode, host, port):
    ls = listen(host, int(port))
    while True:
        c, _ = ls.accept()
        threading.Thread(target=serve_conn, args=(c, mode), daemon=True).start()


def read_response(s, mode, last):
    if last:
        time.sleep(0.2)  # the response and the FIN both queued: one read takes both
        d = recv_some(s, 4096, mode)
        while True:
            more = recv_some(s, 4096, mode)
            if not more:
                return d
            d += more
    d = b""
    while not (b"\r\n\r\n" in d and d.endswith(b"ok")):
        more = recv_some(s, 13, mode)
        if not more:
            raise SystemExit("connection closed early")
        d += more
    return d


def client(mode, host, port, nonce, n):
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    base = write_seq(s)
    off = 0
    for i in range(int(n)):
        last = i == int(n) - 1
        path = "/%s/%s%d" % (nonce, mode, i)
        req = ("GET %s HTTP/1.1\r\nHost: seq\r\n%s\r\n" % (path, "Connection: close\r\n" if last else "")).encode()
        s.sendall(req)
        d = read_response(s, mode, last)
        xb = int(d.split(b"X-Base: ")[1].split(b"\r\n")[0])
        print(path, (base + off) & 0xFFFFFFFF, xb, s.getsockname()[1], flush=True)
        off += len(req)
    s.close()


TWIN_RESP = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def twin_req(nonce, i):
    nonce = (nonce + "x" * 16)[:16]  # one length, known to the server
    return ("GET /%s/t%04d HTTP/1.1\r\nHost: seq\r\n\r\n" % (nonce, i)).encode()


def twin(host, port):
    ls = listen(host, int(port))
    c, _ = ls.accept()
    n = len(twin_req("x" * 16, 0))
    cond = threading.Condition()
    turn = [0]

    def reader():
        while True:
            d = c.recv(n)
            if len(d) != n:
                return
            k = int(d.split(b" ")[1][-4:])
            with cond:
                cond.wait_for(lambda: turn[0] == k)
                c.sendall(TWIN_RESP)
                turn[0] += 1
                cond.notify_all()

    ts = [threading.Thread(target=reader) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


def twinclient(host, port, nonce, n):
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    base = write_seq(s)
    off = 0
    got = [0]

    def drain():
        while True:
            d = s.recv(4096)
            if not d:
                return
            got[0] += d.count(b"ok")

    t = threading.Thread(target=drain)
    t.start()
    for i in range(int(n)):
        r = twin_req(nonce, i)
        s.sendall(r)
        print(r.split(b" ")[1].decode(), (base + off) & 0xFFFFFFFF, 0, s.getsockname()[1], flush=True)
        off += len(r)
        time.sleep(0.005)
    deadline = time.time() + 10
    while got[0] < int(n) and time.time() < deadline:
        time.sleep(0.01)
    s.shutdown(socket.SHUT_WR)
    t.join()


def reuse(host, port, flag):
    ls = listen(host, int(port))
    c1, _ = ls.accept()
    c2, _ = ls.accept()
    base1, base2 = write_seq(c1), write_seq(c2)
    fd = c1.fileno()
    keep1 = socket.socket(fileno=os.dup(fd))  # S1 after fd names S2
    got = []
    t = threading.Thread(target=lambda: got.append(os.read(fd, 4096)))
    t.start()
    time.sleep(0.3)  # the thread is blocked in read(fd) on S1
    os.dup2(c2.fileno(), fd)  # fd now names S2; the read still holds S1
    open(flag, "w").close()
    t.join()
    if b"/c1 " not in got[0]:
        raise SystemExit("read under dup2 got %r" % got[0])
    keep1.sendall(response(base1, False))
    d = b""
    while b"\r\n\r\n" not in d:
        more = os.read(fd, 4096)  # S2's request, through the fd
        if not more:
            raise SystemExit("S2 closed early")
        d += more
    os.write(fd, response(base2, False))
    time.sleep(1)


def reuseclient(host, port, nonce, flag):
    s1 = socket.create_connection((host, int(port)))
    time.sleep(0.1)  # accepted first
    s2 = socket.create_connection((host, int(port)))
    b1, b2 = write_seq(s1), write_seq(s2)
    deadline = time.time() + 10
    while not os.path.exists(flag) and time.time() < deadline:
        time.sleep(0.01)
    for s, b, name in ((s1, b1, "c1"), (s2, b2, "c2")):
        path = "/%s/%s" % (nonce, name)
        s.sendall(("GET %s HTTP/1.1\r\nHost: seq\r\n\r\n" % path).encode())
        d = read_response(s, "recvfrom", False)
        xb = int(d.split(b"X-Base: ")[1].split(b"\r\n")[0])
        print(path, b, xb, s.getsockname()[1], flush=True)
    s1.close()
    s2.close()


if __name__ == "__main__":
    role, args = sys.argv[1], sys.argv[2:]
    {"serve": serve, "client": client, "twin": twin, "twinclient": twinclient,
     "reuse": reuse, "reuseclient": reuseclient}[role](*args)
