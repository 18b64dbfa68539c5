#!/usr/bin/python3
"""Cancels a backend was too late for, in raw protocol (010-intercept.bats). The
backend of the session is stopped (SIGSTOP: the test runs as root) while its query
and the cancel arrive, as a backend on a loaded machine may not run for seconds; each
scene prints the lines its test checks.
Usage: cancel_scenes.py SCENE PORT
  stopped  a query and its cancel while the backend is stopped: the requester is
           answered meanwhile, and the cancel lands once the backend runs
  next     the same for a statement without Sync (Flush): once it has ended, the
           client's next statement must not be what a later try hits
  idle     a cancel sent after a statement without Sync ended: the next one goes at
           once"""
import os
import signal
import socket
import struct
import sys
import time


def msg(t, body=b""):
    return t + struct.pack("!I", len(body) + 4) + body


def extended(sql, end):
    """Parse, Bind, Execute, then Flush (b"H": no Sync) or Sync (b"S")."""
    return (msg(b"P", b"\0" + sql.encode() + b"\0\0\0") + msg(b"B", b"\0\0" + b"\0\0\0\0\0\0") +
            msg(b"E", b"\0\0\0\0\0") + msg(end))


def sqlstates(body):
    return [f[1:].decode() for f in body.split(b"\0") if f[:1] == b"C"]


class Session:
    def __init__(self, port):
        self.port = port
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""
        body = struct.pack("!I", 3 << 16) + b"user\0app\0database\0postgres\0\0"
        self.s.sendall(struct.pack("!I", len(body) + 4) + body)
        _, self.key = self.read(b"K")
        self.read(b"Z")

    def send(self, data):
        self.s.sendall(data)

    def read(self, want):
        """Until a message whose type is in want, or an ErrorResponse: (type, body)."""
        while True:
            while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!I", self.buf[1:5])[0]:
                d = self.s.recv(65536)
                if not d:
                    sys.exit("closed")
                self.buf += d
            n = struct.unpack("!I", self.buf[1:5])[0]
            t, body, self.buf = self.buf[:1], self.buf[5:1 + n], self.buf[1 + n:]
            if t in want or t == b"E":
                return t, body

    def backend(self):
        self.send(msg(b"Q", b"select pg_backend_pid()\0"))
        _, row = self.read(b"D")
        self.read(b"Z")
        return int(row[6:].decode())

    def cancel(self):
        """A CancelRequest on a new connection; returns once it is closed (answered)."""
        c = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        c.sendall(struct.pack("!II", 16, 80877102) + self.key)
        c.recv(1)
        c.close()


def stopped_while(backend, send, s, seconds=3):
    """send() and a cancel while the backend is stopped for seconds; returns whether the
    cancel's requester was answered before the backend ran again."""
    os.kill(backend, signal.SIGSTOP)
    try:
        t0 = time.time()
        send()
        time.sleep(0.3)
        s.cancel()
        answered = time.time() - t0 < seconds
        time.sleep(max(0, seconds - (time.time() - t0)))
    finally:
        os.kill(backend, signal.SIGCONT)
    return answered


def scene_stopped(port):
    s = Session(port)
    backend = s.backend()
    answered = stopped_while(backend, lambda: s.send(msg(b"Q", b"select pg_sleep(10)\0")), s)
    print("requester answered while the backend was stopped:", answered)
    resumed = time.time()
    t, body = s.read(b"Z")
    if t == b"E":
        print("cancel", sqlstates(body), "within 5 s:", time.time() - resumed < 5)
    else:
        print("not cancelled: the query ran to its end")


def scene_next(port):
    s = Session(port)
    backend = s.backend()
    # A try after the backend runs again may land while the first statement runs
    # (that is what the tries are for): then the scene is set again, at most 3 times.
    for _ in range(3):
        stopped_while(backend, lambda: s.send(extended("select 1", b"H")), s)
        t, _ = s.read(b"C")
        if t == b"C":
            break
        s.send(msg(b"S"))  # the error skipped to the Sync: the next round starts clean
        s.read(b"Z")
        time.sleep(0.5)
    print("first:", "cancelled" if t == b"E" else "ran")
    if t == b"E":
        return
    s.send(extended("select pg_sleep(2)", b"H"))
    t, body = s.read(b"C")
    print("next:", "cancelled " + str(sqlstates(body)) if t == b"E" else "ran")
    s.send(msg(b"S"))
    s.read(b"Z")


def scene_idle(port):
    s = Session(port)
    s.send(extended("select 1", b"H"))
    t, _ = s.read(b"C")
    print("first:", "ran" if t == b"C" else "error")
    s.cancel()  # to an idle backend: dropped
    started = time.time()
    s.send(extended("select 2", b"S"))
    t, _ = s.read(b"C")
    s.read(b"Z")
    took = time.time() - started
    print("next:", "ran" if t == b"C" else "error", "within 2 s:", took < 2, "(%.1f s)" % took)


if __name__ == "__main__":
    {"stopped": scene_stopped, "next": scene_next, "idle": scene_idle}[sys.argv[1]](int(sys.argv[2]))
