#!/usr/bin/python3
"""A stand-in PostgreSQL server that asks every login for SCRAM-SHA-256 with 10^6
iterations and a fresh salt (so no cache can serve it), logs when it sent
server-first and when client-final came ("first T" / "final T", wall clock), then
refuses the login. Used by 053-scram-proofs.bats: while pgtetherd's parent computes
that proof, it must still answer everything else.

usage: scramslow.py HOST PORT LOGFILE
"""
import base64
import os
import socket
import struct
import sys
import threading
import time

ITERATIONS = 1000000


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        chunk = s.recv(n - len(b))
        if not chunk:
            raise EOFError
        b += chunk
    return b


def log(path, what):
    with open(path, "a") as f:
        f.write("%s %.6f\n" % (what, time.time()))


def serve(conn, path):
    try:
        while True:  # the startup packet; an SSLRequest gets "N" first
            n = struct.unpack("!I", recv_exact(conn, 4))[0]
            body = recv_exact(conn, n - 4)
            if struct.unpack("!I", body[:4])[0] == 80877103:
                conn.sendall(b"N")
                continue
            break
        mech = b"SCRAM-SHA-256\0\0"
        conn.sendall(b"R" + struct.pack("!II", 8 + len(mech), 10) + mech)
        t, n = struct.unpack("!cI", recv_exact(conn, 5))
        body = recv_exact(conn, n - 4)
        data = body[body.index(b"\0") + 5:].decode()
        nonce = data.split("r=", 1)[1]
        salt = base64.b64encode(os.urandom(16)).decode()
        first = ("r=%sslow,s=%s,i=%d" % (nonce, salt, ITERATIONS)).encode()
        conn.sendall(b"R" + struct.pack("!II", 8 + len(first), 11) + first)
        log(path, "first")
        t, n = struct.unpack("!cI", recv_exact(conn, 5))
        recv_exact(conn, n - 4)
        log(path, "final")
        fields = b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed (scramslow)\0\0"
        conn.sendall(b"E" + struct.pack("!I", 4 + len(fields)) + fields)
    except (EOFError, OSError, ValueError, IndexError):
        pass
    finally:
        conn.close()


def main():
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port))
    s.listen(16)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, path), daemon=True).start()


if __name__ == "__main__":
    main()
