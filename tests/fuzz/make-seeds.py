#!/usr/bin/python3
"""Writes the seed corpora of the fuzz harnesses into tests/fuzz/corpus/NAME/ (run once;
the files are committed, so the fuzzers start from inputs that reach deep). Tokens are
minted with scripts/dev-jwt.py (a throwaway key). Arguments: only these harnesses'
corpora are written (`make-seeds.py monitor`)."""
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
out = os.path.join(root, "tests", "fuzz", "corpus")


only = sys.argv[1:]


def put(name, data):
    if only and name not in only:
        return
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def msg(t, body):
    return t + struct.pack(">I", len(body) + 4) + body


def startup(params):
    body = struct.pack(">I", 196608) + b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in params) + b"\0"
    return struct.pack(">I", len(body) + 4) + body


# pgwire: byte 0 is the chunk size
put("pgwire", b"\x07" + startup([("user", "app"), ("database", "db"), ("client_encoding", "'utf-8'"),
                                  ("application_name", "psql")]))
put("pgwire", b"\x09" + startup([("user", "app"), ("options", "-c search_path=app --statement-timeout=5s -cwork_mem=4MB -c a\\ b=c"),
                                  ("search_path", "x")]))
put("pgwire", b"\x00" + struct.pack(">II", 8, 80877103))
put("pgwire", b"\x03" + struct.pack(">IIII", 16, 80877102, 1234, 5678))
put("pgwire", b"\x10" + msg(b"Q", b"SELECT 1\0") + msg(b"P", b"s1\0SELECT $1\0\0\1\0\0\0\x17") +
    msg(b"B", b"\0s1\0\0\0\0\1\0\0\0\1" + b"7" + b"\0\0") + msg(b"E", b"\0\0\0\0\0") + msg(b"S", b""))
put("pgwire", b"\x05" + msg(b"E", b"SERROR\0VERROR\0C23505\0Mduplicate key\0DKey (email)=(a@b)\0sschema\0ttab\0\0") +
    msg(b"N", b"SNOTICE\0C00000\0Mhello\0Wcontext\0\0") + msg(b"A", struct.pack(">I", 42) + b"chan\0payload\0"))

# sqlclass: the classifier's corpus, one statement a file
with open(os.path.join(root, "tests", "fixtures", "sql-corpus.sql")) as f:
    cur = []
    for line in f:
        if line.startswith("-- expect:"):
            if cur:
                put("sqlclass", "".join(cur).strip())
            cur = []
        elif not line.startswith("--") or cur:
            cur.append(line)
    if cur:
        put("sqlclass", "".join(cur).strip())
put("sqlclass", "SELECT pg_catalog.pg_get_viewdef('v'::regclass)")

# token: mode 0 (JWKS, NUL, token) and mode 1 (header, NUL, claims: the harness signs)
with tempfile.TemporaryDirectory() as d:
    dev = os.path.join(root, "scripts", "dev-jwt.py")
    subprocess.run(["/usr/bin/python3", dev, "keygen", d, "k1"], check=True, capture_output=True)
    claims = {"iss": "https://issuer.example", "aud": "pgtether", "sub": "repo:acme/api", "exp": 1800000600, "iat": 1799999990}
    tok = subprocess.run(["/usr/bin/python3", dev, "mint", d, "k1", json.dumps(claims)], check=True,
                         capture_output=True, text=True).stdout.strip()
    with open(os.path.join(d, "k1.jwks.json")) as f:
        jwks = f.read()
put("token", b"\x00" + jwks.encode() + b"\0" + tok.encode())
put("token", b"\x01" + b'{"alg":"ES256","kid":"k1","typ":"JWT"}\0' +
    json.dumps({"iss": "https://issuer.example", "aud": ["x", "pgtether"], "sub": "s", "exp": 1800000600,
                "nbf": 1799999990, "iat": 1799999990}).encode())
put("token", b"\x01" + b'{"alg":"ES256","kid":"k1"}\0' + json.dumps({"iss": "https://issuer.example", "aud": "pgtether",
                                                                   "exp": 1700000000}).encode())
put("token", b"\x00" + b'{"keys":[{"kty":"EC","kid":"e","crv":"P-256","x":"AA","y":"AA"}]}\0eyJhbGciOiJub25lIn0.e30.')

# config: 0 pgtether.json + credentials, 1 two policy files, 2 issuer + JWKS
with open(os.path.join(root, "tests", "fixtures", "config-full.json"), "rb") as f:
    full = f.read()
cfg = b'{"listen": "127.0.0.1:6432", "upstreams": {"main": {"address": "127.0.0.2:5432", "tls": "disable", "role": "app"}}}'
put("config", b"\x00" + full + b"\0" + b'{"main": {"app": "pw"}}')
put("config", b"\x00" + cfg + b"\0" + b'{"main": {"app": "pw", "app_ro": "pw2"}}')
pdir = os.path.join(root, "policies", "examples")
files = sorted(os.listdir(pdir))
for i, name in enumerate(files):
    with open(os.path.join(pdir, name), "rb") as f:
        a = f.read()
    with open(os.path.join(pdir, files[(i + 1) % len(files)]), "rb") as f:
        b = f.read()
    put("config", b"\x01" + a + b"\0" + b)
with open(os.path.join(root, "policies", "issuer.example.json"), "rb") as f:
    put("config", b"\x02" + f.read() + b"\0" + jwks.encode())


def cfg_bundle(files, dirs):
    """A configuration bundle (daemon/cfgsrc.c's format): files {path: (bytes, mode)},
    dirs {path: [names] or None (absent)}; uid 0, as the parent is root."""
    body = b""
    for path, (data, mode) in files.items():
        p = path.encode()
        body += struct.pack("=IIIIIIqqqQ", len(p), 0, mode, 0, 0, 0, len(data), 1700000000, 0, len(data)) + p + b"\0" + data
    for path, names in dirs.items():
        p = path.encode()
        body += struct.pack("=IIII", len(p), 1 if names is None else 0, len(names or []), 0) + p + b"\0"
        for n in names or []:
            body += struct.pack("=I", len(n)) + n.encode() + b"\0"
    head = b"pgtcfgs\0" + struct.pack("=IIII", 1, 0, len(files), len(dirs))
    return head + struct.pack("=Q", len(head) + 8 + len(body)) + body


# config 3: what a worker gets, replayed into its load of /fuzz/pgtether.json
with open(os.path.join(pdir, "20-ai-agent.json"), "rb") as f:
    agent = f.read()
with open(os.path.join(root, "policies", "issuer.example.json"), "rb") as f:
    issuer = f.read()
worker_cfg = (b'{"upstreams": {"main": {"address": "127.0.0.2:5432", "tls": "disable", "role": "app"}},'
              b' "policy_dir": "/fuzz/policy.d", "issuers_dir": "/fuzz/issuers.d", "mask_key_file": "/fuzz/mask.key"}')
put("config", b"\x03" + cfg_bundle({"/fuzz/pgtether.json": (worker_cfg, 0o100644),
                                     "/fuzz/policy.d/20-ai-agent.json": (agent.replace(b'"agent"', b'"app"'), 0o100644),
                                     "/fuzz/mask.key": (b"k" * 32, 0o100600)},
                                    {"/fuzz/policy.d": ["20-ai-agent.json", "README"], "/fuzz/issuers.d": None}))
issuer_json = json.loads(issuer)
put("config", b"\x03" + cfg_bundle({"/fuzz/pgtether.json": (worker_cfg, 0o100644),
                                     "/fuzz/issuers.d/10-gh.json": (issuer, 0o100644),
                                     "/fuzz/issuers.d/" + issuer_json["jwks_file"]: (jwks.encode(), 0o100644)},
                                    {"/fuzz/policy.d": [], "/fuzz/issuers.d": ["10-gh.json"]}))

# mask: strategy, keep, type index, format/room; then the value
values = [b"alice@example.com", b"12345", b"-9223372036854775808", b"3.14159", b"{1,2,NULL,\"x,y\"}",
          b"123e4567-e89b-12d3-a456-426614174000", b'{"a": [1, 2]}', b"\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x17" +
          b"\x00\x00\x00\x02\x00\x00\x00\x01\x00\x00\x00\x04\x00\x00\x00\x07\xff\xff\xff\xff", "żółw@пример.рф".encode()]
for s in range(5):
    for t, v in [(5, values[0]), (4, values[1]), (2, values[2]), (9, values[3]), (13, values[4]), (10, values[5]),
                 (11, values[6]), (14, values[7]), (8, values[8])]:
        put("mask", bytes([s | 0x40, 2, t, 0 if t != 14 else 1]) + v)
put("mask", b"\xf0\0\0\0" + b'{"k": "c", "rel": 16384, "att": 2, "m": 0}\n'
    b'{"k": "v", "rel": 16390, "def": " SELECT users.email AS e, upper(users.email) AS u FROM users;", "deps": [[16384, 2]]}')


# rowmask: budget byte, then T and D messages
def field(name, rel, att, typ, fmt=0):
    return name + b"\0" + struct.pack(">IhIhih", rel, att, typ, -1, -1, fmt)


def row(vals):
    b = struct.pack(">h", len(vals))
    for v in vals:
        b += struct.pack(">i", -1) if v is None else struct.pack(">i", len(v)) + v
    return msg(b"D", b)


desc = msg(b"T", struct.pack(">h", 6) + field(b"id", 16384, 1, 20) + field(b"email", 16384, 2, 25) +
           field(b"name", 16384, 3, 1043) + field(b"note", 16384, 4, 25) + field(b"user_ssn", 0, 0, 25) +
           field(b"h_tags", 0, 0, 1009))
put("rowmask", b"\x80" + desc + row([b"7", b"alice@example.com", b"Alice", b"secret", b"123-45-6789", b"{a,b}"]) +
    row([b"8", None, b"Bob", None, None, None]) + msg(b"C", b"SELECT 2\0") + msg(b"Z", b"I"))
put("rowmask", b"\x41" + msg(b"T", struct.pack(">h", 2) + field(b"id", 16384, 1, 20, 1) + field(b"email", 16384, 2, 17, 1)) +
    row([struct.pack(">q", 7), b"\x00\x01\x02"]) + msg(b"n", b"") + row([b"x"]))

# escape: text (mode 0) and a prepared-statement program (mode 1)
put("escape", b"\x00" + "plain text\n\t\x1b[31mred\x1b[0m \u202e evil \u200b \\ end".encode() + b"\xff\xc0\x80")
put("escape", b"\x00" + b"SELECT 'caf\xc3\xa9'")
put("escape", b"\x01" + b"\x00s1\0\x08s2\0s1\0\x01\x02s2\0\x03s1\0\x04\0\x02\0\x05")
# client and server: a session under session_fixture.c's rules (byte 0: flags: rule
# 0 tables, 1 approver, 2 reader, 3 masks; 4 recorded, 8 role hint, 0x10 approvers
# deny, 0x20 (server) catalog queries answered by the canned server, 0x80 a reload)
def q(sql):
    return msg(b"Q", sql.encode() + b"\0")


def ext(sql, params=(), name=b"", portal=b""):
    b = b"\0\0" + struct.pack(">h", len(params))
    for v in params:
        b += struct.pack(">i", len(v)) + v
    return (msg(b"P", name + b"\0" + sql.encode() + b"\0\0\0") + msg(b"B", portal + b"\0" + name + b"\0" + b + b"\0\0") +
            msg(b"D", b"P" + portal + b"\0") + msg(b"E", portal + b"\0\0\0\0\0") + msg(b"S", b""))


tag = "pgtether_denied_0123456789abcdef_"
users = msg(b"T", struct.pack(">h", 5) + field(b"id", 16384, 1, 23) + field(b"email", 16384, 2, 25) +
            field(b"ssn", 16384, 3, 25) + field(b"card", 16384, 4, 25) + field(b"phone", 16384, 5, 25))
alice = row([b"1", b"alice@example.com", b"123-45-6789", b"4111111111111111", b"+1 555 0100"])


def rfq(st=b"I"):
    return msg(b"Z", st)


def err(code, text, detail=None, t=b"E"):
    b = b"SERROR\0VERROR\0C" + code.encode() + b"\0M" + text.encode() + b"\0"
    if detail:
        b += b"D" + detail.encode() + b"\0"
    return msg(t, b + b"\0")


for rule in range(4):
    for extra in (0, 4, 0x80):
        put("client", bytes([rule | extra, 0]) + q("SELECT * FROM users") + q("select email from users where id = 1") +
            q("BEGIN") + q("insert into orders values (1)") + q("COMMIT") + msg(b"X", b""))
        put("client", bytes([rule | extra, 7]) + ext("SELECT * FROM users WHERE id = $1", [b"1"], b"s1") +
            ext("update users set email = $1", [b"x@y"]) + ext("SELECT 1") + msg(b"X", b""))
put("client", b"\x01\x00" + q("UPDATE users SET email = 'x'") + q("select 1"))
put("client", b"\x11\x00" + q("delete from orders") + ext("insert into orders values ($1)", [b"1"], b"ins"))
put("client", b"\x01\x00" + msg(b"P", b"ins\0insert into orders values ($1)\0\0\0") + msg(b"S", b"") +
    msg(b"B", b"\0ins\0\0\0\0\1\0\0\0\0012\0\0") + msg(b"E", b"\0\0\0\0\0") + msg(b"S", b""))
put("client", b"\x02\x00" + q("DELETE FROM users") + msg(b"P", b"\0insert into t values (1)\0\0\0") +
    msg(b"P", b"\0insert into t values (2)\0\0\0") + msg(b"S", b"") + q("select 'read_write'") + q("select 2"))
put("client", b"\x02\x03" + msg(b"F", struct.pack(">IhhIh", 1234, 0, 1, 1, 0) + b"7" + b"\0\0") + msg(b"S", b"") +
    q("SELECT 1") + msg(b"F", b"\0\0\0\0"))
put("client", b"\x00\x00" + q("select * from secrets") + q("select * from auth.tokens") + q("create table t (x int)") +
    q("set search_path = auth; select * from tokens") + q("DEALLOCATE ALL") + q("prepare p as select * from users") +
    q("execute p"))
put("client", b"\x0b\x00" + q("select fail") + q("select raise") + q("BEGIN") + q("select fail") + q("ROLLBACK") +
    ext("select * from users where email = $1", [b"alice@example.com"], b"m", b"p1"))
put("client", b"\x03\x02" + msg(b"Q", b"SELECT 1") + msg(b"P", b"\0" + b"x" * 5000 + b"\0\0\0") + msg(b"S", b""))

for rule in (0, 1, 3):
    for canned in (0x20, 0):
        lookup = b"" if canned else (row([b'{"k": "c", "rel": 16384, "att": 2, "m": 0}']) +
                                     row([b'{"k": "c", "rel": 16384, "att": 3, "m": 1}']) +
                                     msg(b"C", b"SELECT 2\0") + rfq())
        c = q("SELECT * FROM users")
        srv = lookup + users + alice + alice + msg(b"C", b"SELECT 2\0") + rfq()
        put("server", bytes([rule | canned | 4, 0]) + struct.pack(">H", len(c)) + c + srv)
        c = ext("SELECT * FROM users WHERE id = $1", [b"1"], b"s1")
        srv = (lookup + msg(b"1", b"") + msg(b"2", b"") + users + users + alice + msg(b"C", b"SELECT 1\0") + rfq())
        put("server", bytes([rule | canned, 11]) + struct.pack(">H", len(c)) + c + srv)
        c = q("insert into users values (1, 'a@b')") + q("select raise")
        srv = (lookup + err("23505", "duplicate key value violates unique constraint \"users_email_key\"",
                            "Key (email)=(alice@example.com) already exists.") + rfq() +
               err("01000", "alice@example.com", "Failing row contains (1, alice@example.com).", b"N") +
               msg(b"A", struct.pack(">I", 42) + b"chan\0alice@example.com\0") +
               err("22P02", "invalid input syntax for type integer: \"alice@example.com\"") + rfq())
        put("server", bytes([rule | canned | 8, 0]) + struct.pack(">H", len(c)) + c + srv)
        put("server", bytes([rule | canned | 0x80, 0]) + struct.pack(">H", len(c)) + c + srv)
# a notice with a DETAIL while pgtether's own mask lookup is out: withheld as any other
c = q("SELECT * FROM users")
put("server", b"\x00\x00" + struct.pack(">H", len(c)) + c +
    err("01000", "said during the lookup", "Failing row contains (1, alice@example.com).", b"N") +
    row([b'{"k": "c", "rel": 16384, "att": 2, "m": 0}']) + msg(b"C", b"SELECT 1\0") + rfq() +
    users + alice + msg(b"C", b"SELECT 1\0") + rfq())
c = q("DELETE FROM users") + q("select 1")
put("server", b"\x02\x00" + struct.pack(">H", len(c)) + c +
    err("42601", "syntax error at or near \"" + tag + "0\"") + rfq() +
    msg(b"S", b"default_transaction_read_only\0off\0") + rfq())
put("server", b"\x0a\x05" + struct.pack(">H", len(c)) + c +
    err("42601", "syntax error at or near \"" + tag + "0\"") + rfq() +
    err("42501", "permission denied for table users") + msg(b"S", b"client_encoding\0LATIN1\0") + rfq())
# the server closes (n's top bit) inside a message pgtether holds until whole: an
# error a denial may be (a role hint), a masked session's RowDescription
c = q("select 1")
e = err("57P01", "terminating connection due to administrator command")
put("server", b"\x0a\x00" + struct.pack(">H", 0x8000 | len(c)) + c + e[:12])
c = q("SELECT * FROM users")
put("server", b"\x23\x00" + struct.pack(">H", 0x8000 | len(c)) + c + users[:20])
put("server", b"\x0a\x00" + struct.pack(">H", 0x8000 | len(c)) + c + e)
c = q("set search_path = public; select * from orders")
put("server", b"\x00\x00" + struct.pack(">H", len(c)) + c + msg(b"1", b"") + msg(b"2", b"") +
    row([b"p", b"public", None]) + row([b"u", b"app", None]) + row([b"r", b"public", b"orders"]) +
    msg(b"C", b"SELECT 3\0") + msg(b"3", b"") + rfq() + msg(b"C", b"SET\0") + msg(b"C", b"CREATE TABLE\0") + rfq())


# monitor: byte 0 the scene, then steps (tests/fuzz/fuzz_monitor.c): a packet is a
# control byte (worker, fd, kind), a 2-byte length and the header + body as a worker
# sends them; 0x20 | k is an event (0 the file-system threads and proof thread done, 1 root approves,
# 3 denied).
M = {"identify": 32, "token": 33, "logged_in": 34, "held_info": 35, "held_done": 36, "rule": 37, "stats": 38,
     "cancel": 39, "ended": 40, "ready": 41, "ddl": 42, "socket": 64, "scram": 65, "md5": 66, "cleartext": 67,
     "held": 68}


def mp(typ, conn, body=b"", worker=0, ctl=0):
    data = struct.pack("<IIQ", M[typ], len(body), conn) + body
    return bytes([worker | ctl]) + struct.pack("<H", len(data)) + data


def mp_rep(typ, conn, body, rep, unit, worker=0):
    """the packet's last unit bytes are repeated rep times more"""
    data = struct.pack("<IIQ", M[typ], len(body), conn) + body
    return bytes([worker | 0x30]) + struct.pack("<HHB", len(data), rep, unit - 1) + data


def fixed(s, n):
    return s.encode().ljust(n, b"\0")


def identify(user, db, tls=False):
    return fixed(user, 64) + fixed(db, 64) + bytes([tls])


def addr4(a, port):
    return b"\0" * 10 + b"\xff\xff" + bytes(int(x) for x in a.split(".")) + struct.pack("<H", port)


def stat(conn, bin_, bout, enc="UTF8", scs="on"):
    return struct.pack("<QQQ", conn, bin_, bout) + fixed(enc, 32) + fixed(scs, 8)


def cancel(pid, secret):
    return struct.pack(">IIII", 16, 80877102, pid, secret)


nonce = "abcdefghijklmnopqrstuvwx"
scram = fixed("n=,r=" + nonce, 1024) + fixed("r=" + nonce + "SERVERNONCE,s=c2FsdHNhbHQ=,i=4096", 1024)
held_json = json.dumps({"sql": "DELETE FROM orders WHERE id = $1", "params": ["7"], "rule": "app",
                        "pid": 1, "uid": 0, "timeout_s": 60}).encode()
EV_DONE, EV_APPROVE, EV_OWN, EV_DENY = b"\x20", b"\x21", b"\x22", b"\x23"
# a login: the verdict (the app's executable is hashed already), a socket, SCRAM, the relay
put("monitor", b"\x10" + mp("identify", 1, identify("app", "app")) + mp("socket", 1, addr4("127.0.0.2", 5432)) +
    mp("scram", 1, scram) + EV_DONE + mp("logged_in", 1, struct.pack("<III", 4711, 99, 0)) +
    mp("rule", 1, fixed("app", 128)) + mp("stats", 0, stat(1, 10, 20)) + mp("ended", 1))
# through the file-system threads, md5, a socket somewhere else (refused), cleartext (refused)
put("monitor", b"\x00" + mp("identify", 1, identify("app", "app")) + EV_DONE + mp("md5", 1, b"salt") +
    mp("socket", 1, addr4("127.0.0.9", 22)) + mp("cleartext", 4) + mp("logged_in", 1, struct.pack("<III", 1, 2, 0)))
# cleartext to a verify-full upstream; recordings failing closed, then open
put("monitor", b"\x14" + mp("cleartext", 4) + mp("identify", 1, identify("app", "hashed")))
put("monitor", b"\x18" + mp("identify", 1, identify("app", "app")))
put("monitor", b"\x38" + mp("identify", 1, identify("app", "filetok")) + mp("identify", 9, identify("x", "postgres"), worker=1))
# a token asked for: CI's session, hashed, then the client's password
put("monitor", b"\x10" + mp("identify", 2, identify("ci", "app")) + EV_DONE + mp("token", 2, b"eyJhbGciOiJFUzI1NiJ9.e30.sig") +
    mp("token", 3, b"") + mp("socket", 10, addr4("127.0.0.3", 5433), worker=1) + mp("scram", 10, scram, worker=1) +
    mp("scram", 4) + mp("scram", 4, scram) + mp("ended", 4) + mp("scram", 10, scram, worker=1) + EV_DONE)
# an approval: held, shown, decided by root; another denied; the workload's own uid
put("monitor", b"\x00" + mp("held", 5) + mp("held_info", 5, struct.pack("<II", 60, len(held_json)) + held_json) +
    EV_APPROVE + mp("held_done", 5) + mp("held", 5) + mp("held_info", 5, struct.pack("<II", 60, len(held_json)) + held_json) +
    EV_OWN + EV_DENY + mp("held_done", 6) + mp("ended", 5))
# what approvers are shown, past the bound: [[],[],...] repeated
put("monitor", b"\x00" + mp("held", 5) + mp_rep("held_info", 5, struct.pack("<II", 0, 0) + b'{"a":[' + b"[]," * 20, 60000, 3))
# stats: own sessions, another worker's (ignored), then past PRIV_STATS_MAX (the worker ends)
put("monitor", b"\x00" + mp("stats", 0, stat(4, 1, 2) + stat(5, 3, 4, "LATIN1", "off") + stat(8, 5, 6)) +
    mp("stats", 0, stat(12, 7, 8), worker=1) + mp_rep("stats", 0, stat(5, 1, 1), 1024, 64))
# DDL: the other ready worker is told to re-resolve masks, once while it has not read it
put("monitor", b"\x00" + mp("ddl", 5, ctl=0x40) + mp("ddl", 6, ctl=0x40) + mp("ddl", 8, worker=1) + mp("ddl", 1))
# a cancel for worker 1's session (same cgroup, the whole key), its socket; an unknown key
put("monitor", b"\x00" + mp("cancel", 1, cancel(108, 208), ctl=0x04) + mp("socket", 1, addr4("127.0.0.2", 5432), worker=1) +
    mp("socket", 11, addr4("127.0.0.2", 5432), worker=1) + mp("cancel", 9, cancel(105, 1), worker=1) + mp("ended", 1, worker=1))
# the starting worker is ready: the waiting connection goes to it and logs in there
put("monitor", b"\x10" + mp("ready", 0, worker=2) + mp("identify", 13, identify("app", "app"), worker=2) +
    mp("socket", 13, addr4("127.0.0.2", 5432), worker=2) + mp("md5", 13, b"abcd", worker=2))
# out of order: a proof before the verdict ends worker 0; worker 1 goes on
put("monitor", b"\x00" + mp("scram", 1, scram) + mp("held", 5) + mp("held", 8, worker=1) + mp("rule", 8, b"x" * 128, worker=1))
print("seeds written to", out)
