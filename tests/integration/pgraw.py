#!/usr/bin/env python3
"""A raw PostgreSQL protocol client for the tests: sends exactly the bytes a case
needs (a FunctionCall, a bad length, a newer protocol version) and prints what comes
back, one message per line: TYPE [fields]. Usage: pgraw.py HOST PORT CASE"""
import os
import socket
import struct
import sys
import time


def msg(t, body=b""):
    return t + struct.pack("!I", len(body) + 4) + body


def startup(version=(3 << 16), extra=()):
    params = [("user", "app"), ("database", "postgres")] + list(extra)
    body = struct.pack("!I", version) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params) + b"\0"
    return struct.pack("!I", len(body) + 4) + body


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=10)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def read(self):
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack("!I", self.buf[1:5])[0]:
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        n = struct.unpack("!I", self.buf[1:5])[0]
        t, body, self.buf = self.buf[:1].decode(), self.buf[5:1 + n], self.buf[1 + n:]
        return t, body

    def until_ready(self, out):
        while True:
            m = self.read()
            if m is None:
                out.append("EOF")
                return False
            t, body = m
            out.append(describe(t, body))
            if t == "Z":
                return True


def fields(body):
    out = {}
    for part in body.split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode(errors="replace")
    return out


def describe(t, body):
    if t == "E" or t == "N":
        f = fields(body)
        return "%s %s %s %s" % (t, f.get("S", "?"), f.get("C", "?"), f.get("M", ""))
    if t == "Z":
        return "Z " + body.decode()
    if t == "R":
        return "R %d" % struct.unpack("!I", body[:4])[0]
    if t == "v":
        minor, n = struct.unpack("!II", body[:8])
        names = [x.decode() for x in body[8:].split(b"\0") if x]
        return "v %d %d %s" % (minor, n, ",".join(names))
    if t == "D":
        n = struct.unpack("!H", body[:2])[0]
        vals, pos = [], 2
        for _ in range(n):
            ln = struct.unpack("!i", body[pos:pos + 4])[0]
            pos += 4
            vals.append(body[pos:pos + ln].decode() if ln >= 0 else "NULL")
            pos += max(ln, 0)
        return "D " + "|".join(vals)
    if t == "C":
        return "C " + body.rstrip(b"\0").decode()
    return t


def login(c, out, version=(3 << 16), extra=()):
    c.send(startup(version, extra))
    return c.until_ready(out)


def main():
    host, port, case = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    c = Conn(host, port)
    out = []
    if case == "fastpath":
        login(c, out)
        # FunctionCall of pg_backend_pid() (oid 2026), no arguments, text result
        c.send(msg(b"F", struct.pack("!IhhH", 2026, 0, 0, 0)))
        c.until_ready(out)
        c.send(msg(b"Q", b"select 'still usable'\0"))
        c.until_ready(out)
    elif case == "pipeline-fastpath":
        login(c, out)
        # a slow query, then the FunctionCall right behind it: the refusal must come
        # after the query's answer, in order
        c.send(msg(b"Q", b"select pg_sleep(0.3), 'first'\0") + msg(b"F", struct.pack("!IhhH", 2026, 0, 0, 0))
               + msg(b"Q", b"select 'third'\0"))
        c.until_ready(out)
        c.until_ready(out)
        c.until_ready(out)
    elif case == "badlen":
        login(c, out)
        c.send(b"Q" + struct.pack("!I", 2))
        m = c.read()
        out.append(describe(*m) if m else "EOF")
        m = c.read()
        out.append(describe(*m) if m else "EOF")
    elif case.startswith("type-"):
        # a message of type case[5:] (one byte, hex), then a Query behind it
        login(c, out)
        c.send(msg(bytes([int(case[5:], 16)]), b"select 1\0") + msg(b"Q", b"select 'after'\0"))
        m = c.read()
        out.append(describe(*m) if m else "EOF")
        m = c.read()
        out.append(describe(*m) if m else "EOF")
    elif case == "fatal-then-hold":
        # breaks a rule, reads the FATAL and the end of the stream, then keeps its
        # socket open (and says so), until the test ends it
        login(c, out)
        c.send(msg(b"z", b"select 1\0"))
        m = c.read()
        out.append(describe(*m) if m else "EOF")
        out.append("EOF" if c.read() is None else "more")
        print("\n".join(out), flush=True)
        time.sleep(20)
        return
    elif case == "no-nul":
        # a Query whose SQL does not end in a NUL byte
        login(c, out)
        c.send(msg(b"Q", b"select 1"))
        m = c.read()
        out.append(describe(*m) if m else "EOF")
        m = c.read()
        out.append(describe(*m) if m else "EOF")
    elif case == "negotiate":
        login(c, out, version=(3 << 16) | 2, extra=[("_pq_.test_option", "1")])
        c.send(msg(b"Q", b"select 'negotiated'\0"))
        c.until_ready(out)
    elif case == "negotiate-9999":
        # what PostgreSQL 19's libpq sends to probe a server
        login(c, out, version=(3 << 16) | 9999, extra=[("_pq_.test_protocol_negotiation", "")])
        c.send(msg(b"Q", b"select 'negotiated'\0"))
        c.until_ready(out)
    elif case == "startup-param":
        name, value = sys.argv[4].split("=", 1)
        login(c, out, extra=[(name, value)])
    elif case == "startup-query":
        # pgraw.py HOST PORT startup-query SQL NAME=VALUE...: those startup parameters, then SQL
        if login(c, out, extra=[tuple(a.split("=", 1)) for a in sys.argv[5:]]):
            c.send(msg(b"Q", sys.argv[4].encode() + b"\0"))
            c.until_ready(out)
    elif case == "slow-query":
        # pgraw.py HOST PORT slow-query SQL: a client that reads the answer 3 s late,
        # through a small receive window; prints the row count and the first values
        login(c, out)
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.send(msg(b"Q", sys.argv[4].encode() + b"\0"))
        time.sleep(3)
        rows = []
        while True:
            m = c.read()
            if m is None or m[0] == "Z":
                break
            if m[0] == "D":
                rows.append(describe(*m)[2:].split("|")[0])
        out = ["rows %d first %s" % (len(rows), ",".join(rows[:3]))]
    elif case == "fatal-mid-row":
        # a client protocol violation while the server's answer is half relayed (a
        # 32 MB row): prints whether pgtether's FATAL came inside the row's bytes,
        # where the client would read it as data, then how the stream ended
        login(c, out)
        c.send(msg(b"Q", b"select repeat('x', 32000000)\0"))
        while len(c.buf) < 5 or c.buf[:1] != b"D":
            if len(c.buf) >= 5 and len(c.buf) >= 1 + struct.unpack("!I", c.buf[1:5])[0]:
                c.read()  # the RowDescription
                continue
            chunk = c.s.recv(65536)
            if not chunk:
                break
            c.buf += chunk
        c.send(b"Q" + struct.pack("!I", 2))
        raw = c.buf
        while True:
            chunk = c.s.recv(1 << 20)
            if not chunk:
                break
            raw += chunk
        row_end = 1 + struct.unpack("!I", raw[1:5])[0] if len(raw) >= 5 else 0
        inside = b"invalid message length" in raw[:row_end]
        out = ["fatal inside the row: %s" % ("yes" if inside else "no"),
               "row %s" % ("whole" if len(raw) >= row_end else "cut")]
    elif case in ("fatal-slow-reader", "fatal-slow-reader-more", "fatal-slow-reader-server-gone"):
        # a client that reads slowly has pgtether's buffer full of rows when it breaks
        # a rule: prints how many whole rows came, then how the stream ended
        def step(name, wait):
            # server-gone: the test, told NAME, does its part and says WAIT
            open("%s/%s" % (sys.argv[4], name), "w").close()
            for _ in range(200):
                if os.path.exists("%s/%s" % (sys.argv[4], wait)):
                    return
                time.sleep(0.05)
            raise SystemExit("no %s from the test" % wait)
        c.s.close()
        c.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.s.settimeout(10)
        c.s.connect((host, port))
        login(c, out)
        gone = case == "fatal-slow-reader-server-gone"
        # server-gone: rows enough that the server still sends when it is
        # terminated, and a Query it leaves unread meanwhile (it reads 8 kB at a
        # time), so that its end closes with a reset
        q = msg(b"Q", b"select g, repeat('x', 200) from generate_series(1, %d) g\0" % (200000 if gone else 20000))
        if gone:
            q += msg(b"Q", b"select 1 -- " + b"x" * 60000 + b"\0")
        c.send(q)
        time.sleep(1)  # pgtether's buffer and the sockets fill
        if gone:
            # with the workers stopped, the violation, then the server's reset
            # (the test terminates the backend): the worker sees both in one
            # epoll_wait
            step("ready", "stopped")
            c.send(msg(b"z", b"select 1\0"))
            step("sent", "go")
        else:
            c.send(msg(b"z", b"select 1\0"))
        time.sleep(0.5)
        if case == "fatal-slow-reader-more" or gone:
            # what a client sends after the violation (here a Terminate) is not
            # read: a close with it unread resets the connection, and the kernel
            # drops what it still held for the client
            c.send(msg(b"X"))
            time.sleep(0.2)
        rows, last = 0, None
        while True:
            try:
                m = c.read()
            except ConnectionResetError:
                last = "reset"
                break
            if m is None:
                break
            if m[0] == "D":
                if describe(*m) != "D %d|%s" % (rows + 1, "x" * 200):
                    last = "row %d out of order" % (rows + 1)
                    break
                rows += 1
            elif m[0] != "T":
                last = describe(*m)
        out = ["rows %s" % ("many" if rows > 100 else str(rows)), "last %s" % last,
               "then %s" % ("reset" if last == "reset" else "EOF" if c.read() is None else "more")]
    elif case == "fastpath-in-batch":
        login(c, out)
        # Parse/Bind/Execute without Sync, then a FunctionCall
        c.send(msg(b"P", b"\0select 1\0\0\0") + msg(b"B", b"\0\0\0\0\0\0\0\0") +
               msg(b"E", b"\0\0\0\0\0") + msg(b"F", struct.pack("!IhhH", 2026, 0, 0, 0)))
        while True:
            m = c.read()
            if m is None:
                out.append("EOF")
                break
            out.append(describe(*m))
    elif case == "prepare-flush-then-query":
        login(c, out)
        # asyncpg's prepare: Parse, Describe and Flush, no Sync; then a simple Query
        c.send(msg(b"P", b"s1\0select 1\0\0\0") + msg(b"D", b"Ss1\0") + msg(b"H"))
        for _ in range(3):  # ParseComplete, ParameterDescription, RowDescription
            t, body = c.read()
            out.append(describe(t, body))
        c.send(msg(b"Q", b"begin\0"))
        c.until_ready(out)
        c.send(msg(b"Q", b"commit\0"))
        c.until_ready(out)
    elif case == "discarded-query":
        login(c, out)
        # a simple Query behind a failing Execute, before Sync: the server discards
        # it unanswered, so one ReadyForQuery pgtether expects never comes
        c.send(msg(b"P", b"\0select 1/0\0\0\0") + msg(b"B", b"\0\0\0\0\0\0\0\0") +
               msg(b"E", b"\0\0\0\0\0") + msg(b"Q", b"select 1\0") + msg(b"S"))
        c.until_ready(out)
        # then a statement every half second, until pgtether gives up on the
        # session (or 20 s pass)
        for _ in range(40):
            c.send(msg(b"Q", b"select email from users where id = 1\0"))
            if not c.until_ready(out):
                break
            time.sleep(0.5)
    elif case == "transaction-fastpath":
        login(c, out)
        c.send(msg(b"Q", b"begin\0"))
        c.until_ready(out)
        c.send(msg(b"F", struct.pack("!IhhH", 2026, 0, 0, 0)))
        c.until_ready(out)
    elif case == "no-describe":
        # what drivers such as pgx and JDBC do with statements they prepared: Bind
        # and Execute with no Describe; and a portal executed in two steps
        def bind(portal, stmt, param):
            p = param.encode()
            return msg(b"B", portal + b"\0" + stmt + b"\0" + struct.pack("!HHI", 0, 1, len(p)) + p + struct.pack("!H", 0))
        login(c, out)
        c.send(msg(b"P", b"s1\0select id, email from users where id >= $1 order by id\0\0\0") +
               msg(b"D", b"Ss1\0") + msg(b"S"))
        c.until_ready(out)
        out.append("--")
        c.send(bind(b"", b"s1", "2") + msg(b"E", b"\0\0\0\0\0") + msg(b"S"))
        c.until_ready(out)
        out.append("--")
        c.send(bind(b"", b"s1", "x") + msg(b"E", b"\0\0\0\0\0") + bind(b"", b"s1", "1") +
               msg(b"E", b"\0\0\0\0\0") + msg(b"S"))
        c.until_ready(out)
        out.append("--")
        c.send(msg(b"Q", b"begin\0"))
        c.until_ready(out)
        c.send(bind(b"p1", b"s1", "1") + msg(b"E", b"p1\0" + struct.pack("!I", 1)) +
               msg(b"E", b"p1\0" + struct.pack("!I", 1)) + msg(b"S"))
        c.until_ready(out)
        c.send(msg(b"Q", b"commit\0"))
        c.until_ready(out)
        out.append("--")
        # Flush instead of Sync: the answers come before any ReadyForQuery
        c.send(msg(b"P", b"\0select email from users where id = 1\0\0\0") +
               msg(b"B", b"\0\0" + struct.pack("!HHH", 0, 0, 0)) + msg(b"D", b"P\0") +
               msg(b"E", b"\0\0\0\0\0") + msg(b"H"))
        for _ in range(5):
            m = c.read()
            out.append(describe(*m) if m else "EOF")
        c.send(msg(b"S"))
        c.until_ready(out)
    elif case == "portal-across-reload":
        # a portal run in steps, and a named statement described, before a reload
        # (the test's, once FLAG.ready exists) that adds a mask; then their later rows
        flag = sys.argv[4]
        login(c, out)
        c.send(msg(b"Q", b"begin\0"))
        c.until_ready(out)
        c.send(msg(b"P", b"s1\0select id, email from users order by id\0\0\0") + msg(b"D", b"Ss1\0") +
               msg(b"B", b"p1\0s1\0\0\0\0\0\0\0") + msg(b"E", b"p1\0" + struct.pack("!I", 1)) + msg(b"S"))
        c.until_ready(out)
        open(flag + ".ready", "w").close()
        for _ in range(200):
            if os.path.exists(flag):
                break
            time.sleep(0.05)
        out.append("--")
        c.send(msg(b"E", b"p1\0" + struct.pack("!I", 1)) + msg(b"S"))
        c.until_ready(out)
        out.append("--")
        c.send(msg(b"B", b"p2\0s1\0\0\0\0\0\0\0") + msg(b"E", b"p2\0\0\0\0\0") + msg(b"S"))
        c.until_ready(out)
        c.send(msg(b"Q", b"commit\0"))
        c.until_ready(out)
    elif case == "long-names":
        # pgraw.py HOST PORT long-names SQL: SQL prepared under a 63-byte name behind
        # 15 other names, then "the same name" with one byte more (the server keys
        # statement names by their first 63 bytes) as a plain SELECT, then the first
        # name bound and executed
        name = b"n" * 63
        login(c, out)
        c.send(b"".join(msg(b"P", b"c%d\0select 1\0\0\0" % i) for i in range(15)) + msg(b"S"))
        c.until_ready(out)
        c.send(msg(b"P", name + b"\0" + sys.argv[4].encode() + b"\0\0\0") + msg(b"S"))
        c.until_ready(out)
        out.append("--")
        c.send(msg(b"P", name + b"x\0select 1\0\0\0") + msg(b"S"))
        c.until_ready(out)
        out.append("--")
        c.send(msg(b"B", b"\0" + name + b"\0" + struct.pack("!HHH", 0, 0, 0)) + msg(b"E", b"\0\0\0\0\0") + msg(b"S"))
        c.until_ready(out)
    elif case == "pipeline":
        # every further argument a Query, all sent at once, before any answer: what
        # a client does to race a setting's ParameterStatus
        login(c, out)
        c.send(b"".join(msg(b"Q", q.encode() + b"\0") for q in sys.argv[4:]))
        for _ in sys.argv[4:]:
            if not c.until_ready(out):
                break
    else:
        sys.exit("unknown case " + case)
    print("\n".join(out))


if __name__ == "__main__":
    main()
