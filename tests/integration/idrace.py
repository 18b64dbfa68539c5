#!/usr/bin/env python3
"""Clients for the identity tests (110-identity.bats): each opens a connection and,
before it sends the startup packet, does what an attacker racing pgtetherd would do,
then speaks the protocol on the same socket and prints one line:
  OK <value of pgtether.identity>     or     E <SQLSTATE> <message>     or     EOF

Usage:
  idrace.py plain HOST PORT              no trick (the control)
  idrace.py announce HOST PORT           the same, printing CONNECTED once connected
  idrace.py handoff HOST PORT            a child connects, passes the socket to its
                                         parent by SCM_RIGHTS and exits; the parent
                                         reaps it, then speaks
  idrace.py move HOST PORT PROCS         connect, write our pid into PROCS (another
                                         cgroup's cgroup.procs), then speak
  idrace.py exec HOST PORT EXE           connect, then exec EXE (another binary) with
                                         the socket inherited; EXE runs this script's
                                         'speak-fd' and speaks
  idrace.py setuid HOST PORT UID         connect as root, setresuid(UID), then speak
  idrace.py rewrite HOST PORT CONTENT    run as a writable copy of python: connect, fork
                                         a child that keeps the socket (and execs the
                                         real python3 to speak 1.5 s later), exec away,
                                         copy CONTENT over our own executable (same
                                         inode, other bytes) and exec it again to wait
  idrace.py speak-fd FD [DELAY]          (what 'exec' and 'rewrite' run)
  idrace.py latency HOST PORT SECONDS    one session, 'select 1' in a loop for
                                         SECONDS; prints 'MAX <ms> N <queries>'
A password request is answered with $PGT_TOKEN.
"""
import array
import os
import socket
import struct
import sys
import time


def msg(t, body=b""):
    return t + struct.pack("!I", len(body) + 4) + body


def startup():
    params = [("user", "app"), ("database", "postgres")]
    body = struct.pack("!I", 3 << 16) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params) + b"\0"
    return struct.pack("!I", len(body) + 4) + body


class Conn:
    def __init__(self, s):
        self.s = s
        self.s.settimeout(30)
        self.buf = b""

    def read(self):
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!I", self.buf[1:5])[0]:
            try:
                chunk = self.s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        n = struct.unpack("!I", self.buf[1:5])[0]
        t, body, self.buf = self.buf[:1].decode(), self.buf[5:1 + n], self.buf[1 + n:]
        return t, body

    def until_ready(self):
        """None when ready; else the line to print (an error or EOF)."""
        while True:
            m = self.read()
            if m is None:
                return "EOF"
            t, body = m
            if t == "E":
                f = {chr(p[0]): p[1:].decode(errors="replace") for p in body.split(b"\0") if p}
                return "E %s %s" % (f.get("C", "?"), f.get("M", ""))
            if t == "R" and struct.unpack("!I", body[:4])[0] == 3:
                self.s.sendall(msg(b"p", os.environ.get("PGT_TOKEN", "").encode() + b"\0"))
            if t == "Z":
                return None

    def query(self, sql):
        self.s.sendall(msg(b"Q", sql.encode() + b"\0"))
        value = None
        while True:
            m = self.read()
            if m is None:
                return "EOF"
            t, body = m
            if t == "D":
                n = struct.unpack("!i", body[2:6])[0]
                value = body[6:6 + n].decode(errors="replace")
            if t == "E":
                f = {chr(p[0]): p[1:].decode(errors="replace") for p in body.split(b"\0") if p}
                value = "E %s %s" % (f.get("C", "?"), f.get("M", ""))
            if t == "Z":
                return value


def speak(s):
    c = Conn(s)
    s.sendall(startup())
    err = c.until_ready()
    if err:
        print(err, flush=True)
        return
    v = c.query("select current_setting('pgtether.identity')")
    print(v if v and v.startswith("E ") else "OK %s" % v, flush=True)
    s.sendall(msg(b"X"))


def connect(host, port):
    return socket.create_connection((host, int(port)), timeout=10)


def main():
    mode = sys.argv[1]
    if mode == "plain":
        speak(connect(sys.argv[2], sys.argv[3]))
    elif mode == "announce":
        s = connect(sys.argv[2], sys.argv[3])
        print("CONNECTED", flush=True)
        speak(s)
    elif mode == "handoff":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:
            s = connect(sys.argv[2], sys.argv[3])
            b.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [s.fileno()]))])
            os._exit(0)
        _, anc, _, _ = a.recvmsg(1, socket.CMSG_SPACE(4))
        os.waitpid(pid, 0)  # gone and reaped: no /proc/PID left to read
        fds = array.array("i")
        fds.frombytes(anc[0][2][:4])
        speak(socket.socket(fileno=fds[0]))
    elif mode == "move":
        procs = open(sys.argv[4], "w")
        s = connect(sys.argv[2], sys.argv[3])
        procs.write(str(os.getpid()))
        procs.close()
        speak(s)
    elif mode == "exec":
        s = connect(sys.argv[2], sys.argv[3])
        fd = s.detach()
        os.set_inheritable(fd, True)
        os.execv(sys.argv[4], [sys.argv[4], os.path.abspath(__file__), "speak-fd", str(fd)])
    elif mode == "setuid":
        s = connect(sys.argv[2], sys.argv[3])
        uid = int(sys.argv[4])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        speak(s)
    elif mode == "rewrite":
        s = connect(sys.argv[2], sys.argv[3])
        fd = s.detach()
        os.set_inheritable(fd, True)
        # the child maps this executable until it has exec'd: copying over it before
        # then fails with ETXTBSY. The pipe's write end closes at its exec (CLOEXEC).
        r, w = os.pipe()
        child = os.fork()
        if child == 0:
            os.close(r)
            os.execv("/usr/bin/python3", ["/usr/bin/python3", os.path.abspath(__file__), "speak-fd", str(fd), "1.5"])
        os.close(w)
        os.read(r, 1)
        os.close(r)
        os.close(fd)
        me = os.path.realpath(sys.executable)
        os.execv("/bin/sh", ["/bin/sh", "-c",
                             'cp "$1" "$2" && exec "$2" -c "import os, sys; os.waitpid(int(sys.argv[1]), 0)" "$3"',
                             "sh", sys.argv[4], me, str(child)])
    elif mode == "speak-fd":
        if len(sys.argv) > 3:
            time.sleep(float(sys.argv[3]))
        speak(socket.socket(fileno=int(sys.argv[2])))
    elif mode == "latency":
        s = connect(sys.argv[2], sys.argv[3])
        c = Conn(s)
        s.sendall(startup())
        err = c.until_ready()
        if err:
            print(err, flush=True)
            return
        worst, n, end = 0.0, 0, time.monotonic() + float(sys.argv[4])
        while time.monotonic() < end:
            t0 = time.monotonic()
            if c.query("select 1") != "1":
                print("E query failed", flush=True)
                return
            worst = max(worst, time.monotonic() - t0)
            n += 1
            time.sleep(0.01)
        print("MAX %d N %d" % (worst * 1000, n), flush=True)
        s.sendall(msg(b"X"))
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main()
