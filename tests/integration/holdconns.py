#!/usr/bin/env python3
"""Opens N TCP connections to HOST PORT and sends nothing on them (an idle flood, a
login that never finishes), then reports what came back: per connection, an
ErrorResponse (its SQLSTATE), a close, or nothing yet (held). Holds the connections
HOLD seconds, then closes them all. With CGDIR, the process moves into a new child
cgroup CGDIR/cN before each connection, as a workload with a delegated subtree may.
With SLOW, it sends one byte of a StartupMessage per second on each instead. With
ORPHAN, each connection is made by a short-lived child that passes the socket back
(SCM_RIGHTS) and exits: the process the kernel recorded is gone.
Usage: holdconns.py HOST PORT N HOLD [CGDIR|-] [slow|orphan]
Prints: held=H fatal=F closed=C codes=SQLSTATE,... first=MESSAGE"""
import os
import select
import socket
import struct
import sys
import time

host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
cgdir = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] != "-" else None
slow = len(sys.argv) > 6 and sys.argv[6] == "slow"
orphan = len(sys.argv) > 6 and sys.argv[6] == "orphan"


def connect_orphaned():
    """A child connects and hands the socket over, then exits."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        a.close()
        c = socket.socket()
        c.settimeout(5)
        c.connect((host, port))
        socket.send_fds(b, [b"s"], [c.fileno()])
        os._exit(0)
    b.close()
    _, fds, _, _ = socket.recv_fds(a, 1, 1)
    os.waitpid(pid, 0)
    a.close()
    return socket.socket(fileno=fds[0])

socks, failed = [], 0
for i in range(n):
    if cgdir:
        d = os.path.join(cgdir, "c%d" % i)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    try:
        if orphan:
            s = connect_orphaned()
        else:
            s = socket.socket()
            s.settimeout(5)
            s.connect((host, port))
    except OSError:
        failed += 1
        s.close()
        continue
    s.setblocking(False)
    socks.append(s)

body = struct.pack("!I", 3 << 16) + b"user\0app\0database\0postgres\0\0"
startup = struct.pack("!I", len(body) + 4) + body

start = time.time()
answers = {}
sent = 0
while time.time() - start < hold:
    if slow and sent < len(startup):
        for s in socks:
            if s not in answers:
                try:
                    s.send(startup[sent:sent + 1])
                except OSError:
                    pass
        sent += 1
    r, _, _ = select.select([s for s in socks if s not in answers], [], [], 1.0 if slow else 0.2)
    for s in r:
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        answers[s] = data

fatal, closed, codes, first = 0, 0, [], ""
for s in socks:
    data = answers.get(s)
    if data is None:
        continue
    if data[:1] == b"E":
        fatal += 1
        fields = dict((f[:1], f[1:].decode(errors="replace")) for f in data[5:].split(b"\0") if f)
        codes.append(fields.get(b"C", "?"))
        first = first or fields.get(b"M", "")
    else:
        closed += 1
held = len(socks) - fatal - closed
print("held=%d fatal=%d closed=%d failed=%d codes=%s first=%s" % (held, fatal, closed, failed, ",".join(sorted(set(codes))), first))
sys.stdout.flush()
for s in socks:
    s.close()
