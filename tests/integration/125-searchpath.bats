#!/usr/bin/env bats
# Table rules and the search_path: a table named without its schema is judged as the
# relation the server will reach on the session's own search_path (SET, set_config,
# the role's default, the temporary schema), never as public's by assumption.

load helpers

setup_file() {
  export PGT_OWN_POLICY=1
  pgt_setup_world
  pgt_psql -c "create table items (id int, v text)" -c "insert into items values (1, 'a')" \
    -c "create table secrets (k text)" -c "insert into secrets values ('public-secret')" \
    -c "create table orders (k text)" -c "insert into orders values ('public-order')" \
    -c "grant all on items, secrets, orders to app" \
    -c "create schema evil" -c "create table evil.secrets (k text)" -c "insert into evil.secrets values ('evil-secret')" \
    -c "create table evil.orders (k text)" -c "insert into evil.orders values ('evil-order')" \
    -c "grant usage on schema evil to app" -c "grant all on evil.secrets, evil.orders to app" \
    -c "create schema hidden" -c "create table hidden.orders (k text)"
  mkdir -p "$PGT_TMP/policy.d"
  cat >"$PGT_TMP/policy.d/10-path.json" <<JSON
{ "rules": [
  { "name": "pub", "match": { "cgroup": "$PGT_CG/pub" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "write", "ddl", "session", "transaction", "dynamic", "utility", "dangerous_function"],
                    "tables": { "allow": ["public.*", "pg_temp.scratch"] } } },
  { "name": "agent", "match": { "cgroup": "$PGT_CG/agent" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "write", "session", "transaction"],
                    "tables": { "deny": ["public.secrets"] } } }
] }
JSON
  pgt_write_config closed
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
}

# pub|agent SQL...: psql in that cgroup, one -c per argument, in one session
as() {
  local who=$1; shift
  local args=()
  for q in "$@"; do args+=(-c "$q"); done
  pgt_in "$PGT_CG/$who" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq "${args[@]}" 2>&1
}

@test "after SET search_path = evil, public an unqualified name is judged as evil's table" {
  run as pub "select k from secrets" "set search_path = evil, public" "select k from secrets" "select v from public.items" "select k from orders"
  echo "$output"
  [ "${lines[0]}" = "public-secret" ]
  [ "${lines[1]}" = "ERROR:  pgtether: table secrets resolves to evil.secrets on this session's search_path, and table evil.secrets is not among the tables rule 'pub' allows" ]
  [ "${lines[2]}" = "a" ]
  [ "${lines[3]}" = "ERROR:  pgtether: table orders resolves to evil.orders on this session's search_path, and table evil.orders is not among the tables rule 'pub' allows" ]
  [[ "$output" != *evil-secret* && "$output" != *evil-order* ]]
  # a deny rule: evil's own table is allowed where evil is the whole path ...
  run as agent "set search_path = evil" "select k from secrets" "select k from orders"
  echo "$output"
  [ "${lines[0]}" = "evil-secret" ]
  [ "${lines[1]}" = "evil-order" ]
  # ... but not where the denied public.secrets is behind it: dropping evil.secrets
  # (from another session of the workload) would make the name reach it
  run as agent "set search_path = evil, public" "select k from secrets" "select k from orders" "select k from public.secrets" "select k from evil.secrets"
  echo "$output"
  [ "${lines[0]}" = "ERROR:  pgtether: table secrets resolves to evil.secrets on this session's search_path, but public.secrets comes after it should that one go, and table public.secrets is denied by rule 'agent'; qualify the table name" ]
  [ "${lines[1]}" = "evil-order" ]
  [ "${lines[2]}" = "ERROR:  pgtether: table public.secrets is denied by rule 'agent'" ]
  [ "${lines[3]}" = "evil-secret" ]
  [[ "$output" != *public-secret* ]]
}

@test "set_config('search_path', ...) moves unqualified names too, constant or computed, session or local" {
  run as pub "select set_config('search_path', 'evil, public', false)" "select k from orders"
  echo "$output"
  [ "${lines[1]}" = "ERROR:  pgtether: table orders resolves to evil.orders on this session's search_path, and table evil.orders is not among the tables rule 'pub' allows" ]
  run as pub "select set_config('search_path', 'ev' || 'il', false) is null" "select k from orders"
  echo "$output"
  [ "${lines[1]}" = "ERROR:  pgtether: table orders resolves to evil.orders on this session's search_path, and table evil.orders is not among the tables rule 'pub' allows" ]
  run as pub "begin" "select set_config('search_path', 'evil', true) is null" "select k from orders" "rollback" "select k from orders"
  echo "$output"
  [ "${lines[1]}" = "ERROR:  pgtether: table orders resolves to evil.orders on this session's search_path, and table evil.orders is not among the tables rule 'pub' allows" ]
  [ "${lines[2]}" = "public-order" ]
  # in the same Query string, after a statement pgtether cannot follow: every
  # relation of that name counts
  run as pub "select set_config('search_path', 'evil', false) is null; select k from orders"
  echo "$output"
  [[ "$output" == "ERROR:  pgtether: table orders names no schema and may reach another schema's relation of that name by the time it runs (an earlier statement of this query may change the search_path), and table "*".orders is not among the tables rule 'pub' allows; qualify the table name" ]]
  [[ "$output" != *evil-order* ]]
}

@test "SET and SELECT in one Query string: the SET's path decides the SELECT's names" {
  run as pub "set search_path = evil, public; select k from secrets"
  echo "$output"
  [ "$output" = "ERROR:  pgtether: table secrets resolves to evil.secrets on this session's search_path, and table evil.secrets is not among the tables rule 'pub' allows" ]
  run as agent "set search_path = evil; select k from secrets" "begin; set local search_path = 'evil'; select k from orders; commit"
  echo "$output"
  [ "${lines[0]}" = "evil-secret" ]
  [ "${lines[1]}" = "evil-order" ]
  run as pub "set search_path = public; select v from items"
  [ "$output" = "a" ]
  # the lookup's own prepared statement survives what the client does to its own
  run as agent "select v from items" "deallocate all" "select v from items" "discard all" "select v from items" \
    "begin" "declare pgtether_searchpath cursor with hold for select 1" "commit" "select v from items"
  echo "$output"
  [ "$output" = $'a\na\na\na' ]
}

@test "the role's or database's default search_path (ALTER ROLE/DATABASE ... SET) is the one names resolve on" {
  pgt_psql -c "alter role app set search_path = evil, public"
  run as pub "select k from orders" "show search_path"
  pgt_psql -c "alter role app reset search_path"
  echo "$output"
  [ "${lines[0]}" = "ERROR:  pgtether: table orders resolves to evil.orders on this session's search_path, and table evil.orders is not among the tables rule 'pub' allows" ]
  [ "${lines[1]}" = "evil, public" ]
  # the database's default, too
  pgt_psql -c "alter database postgres set search_path = evil, public"
  run as pub "select k from orders"
  pgt_psql -c "alter database postgres reset search_path"
  echo "$output"
  [ "$output" = "ERROR:  pgtether: table orders resolves to evil.orders on this session's search_path, and table evil.orders is not among the tables rule 'pub' allows" ]
  # a schema the role may not use is skipped, as the server skips it
  pgt_psql -c "alter role app set search_path = hidden, public"
  run as pub "select k from orders"
  pgt_psql -c "alter role app reset search_path"
  echo "$output"
  [ "$output" = "public-order" ]
}

@test "a temporary table that shadows an allowed name is judged as pg_temp's" {
  run as pub "create temp table items (id int, v text)"
  echo "$output"
  [ "$output" = "ERROR:  pgtether: table items names no schema and is taken as in the schema it would be created in, and table pg_temp.items is not among the tables rule 'pub' allows" ]
  # one the rule allows, renamed: the new name is not in ALTER's text
  run as pub "create temp table scratch (id int, v text)" "insert into scratch values (9, 'temp')" \
    "alter table scratch rename to items" "select v from items" "select v from public.items"
  echo "$output"
  [ "${lines[0]}" = "ERROR:  pgtether: table items resolves to pg_temp.items on this session's search_path, and table pg_temp.items is not among the tables rule 'pub' allows" ]
  [ "${lines[1]}" = "a" ]
  [ "${#lines[@]}" -eq 2 ]
  # pg_catalog comes first unless listed: not public's
  run as pub "select count(*) from pg_class"
  [ "$output" = "ERROR:  pgtether: table pg_class resolves to pg_catalog.pg_class on this session's search_path, and table pg_catalog.pg_class is not among the tables rule 'pub' allows" ]
}

@test "a Parse's unqualified names must hold for every relation of that name, as it may run on a later path" {
  cat >"$PGT_TMP/parse.py" <<'PY'
import sys
import psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
for q in sys.argv[2:]:
    try:
        cur = conn.execute(q, prepare=True)
        print(cur.fetchall() if cur.description else "ok")
    except psycopg.Error as e:
        print(f"{e.sqlstate}: {str(e).splitlines()[0]}")
PY
  local dsn="host=127.0.0.1 port=$PG_PORT user=app dbname=postgres"
  run pgt_in "$PGT_CG/agent" /usr/bin/python3 "$PGT_TMP/parse.py" "$dsn" "set search_path = evil" "select k from secrets" "set search_path = public" "select v from items"
  echo "$output"
  [ "${lines[1]}" = "42501: pgtether: table secrets names no schema and may reach another schema's relation of that name by the time it runs (a prepared statement is resolved when it is executed), and table public.secrets is denied by rule 'agent'; qualify the table name" ]
  [ "${lines[3]}" = "[('a',)]" ]
  [[ "$output" != *evil-secret* ]]
}

@test "pipelined statements: a Query waits for the answers before it, a Parse inside a batch is denied" {
  cat >"$PGT_TMP/pipe.py" <<'PY'
import logging
import sys
import psycopg
logging.getLogger("psycopg").setLevel(logging.ERROR)
conn = psycopg.connect(sys.argv[1], autocommit=True)
curs = []
try:
    with conn.pipeline():
        for q in sys.argv[2:]:
            curs.append(conn.cursor())
            curs[-1].execute(q)
except psycopg.Error as e:
    print(f"pipeline error {e.sqlstate}: {str(e).splitlines()[0]}")
for c in curs:
    try:
        print(c.fetchall() if c.description else "ok")
    except psycopg.Error as e:
        print(f"{type(e).__name__}")
print("after:", conn.execute("select v from items").fetchone()[0])
PY
  local dsn="host=127.0.0.1 port=$PG_PORT user=app dbname=postgres"
  run pgt_in "$PGT_CG/pub" /usr/bin/python3 "$PGT_TMP/pipe.py" "$dsn" "set search_path = evil, public" "select k from orders"
  echo "$output"
  # inside an extended-query batch the server cannot be asked: the name is denied
  [ "${lines[0]}" = "pipeline error 42501: pgtether: table orders names no schema and rule 'pub' has table rules, but the search_path cannot be asked for while earlier messages await their answers (pipelining); qualify the table name" ]
  [[ "$output" != *evil-order* ]]
  [ "${lines[-1]}" = "after: a" ]
  # the batch's first Parse can be resolved, qualified names need nothing
  run pgt_in "$PGT_CG/agent" /usr/bin/python3 "$PGT_TMP/pipe.py" "$dsn" "select v from items" "select k from public.orders"
  echo "$output"
  [ "${lines[0]}" = "[('a',)]" ]
  [ "${lines[1]}" = "[('public-order',)]" ]
  [ "${lines[2]}" = "after: a" ]
  # a Query string sent right behind another one waits for it too
  run pgt_in "$PGT_CG/pub" /usr/bin/python3 - 127.0.0.1 "$PG_PORT" <<'PY'
import socket, struct, sys
def msg(t, body): return t + struct.pack("!I", len(body) + 4) + body
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
body = struct.pack("!I", 3 << 16) + b"user\0app\0database\0postgres\0\0"
s.sendall(struct.pack("!I", len(body) + 4) + body)
buf = b""
def read():
    global buf
    while len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
        buf += s.recv(65536)
    n = struct.unpack("!I", buf[1:5])[0]
    t, b, buf = buf[:1], buf[5:1 + n], buf[1 + n:]
    return t, b
while read()[0] != b"Z":
    pass
s.sendall(msg(b"Q", b"set search_path = evil, public\0") + msg(b"Q", b"select k from orders\0"))
z = 0
while z < 2:
    t, b = read()
    if t == b"Z": z += 1
    if t == b"D": print("row", b[6:].decode())
    if t == b"E": print("error", [f[1:].decode() for f in b.split(b"\0") if f[:1] == b"M"][0])
PY
  echo "$output"
  [ "$output" = "error pgtether: table orders resolves to evil.orders on this session's search_path, and table evil.orders is not among the tables rule 'pub' allows" ]
}

@test "names with quotes, dots or non-ASCII letters; in an aborted transaction the server cannot be asked" {
  pgt_psql -c 'create table "it'"'"'s" (k text)' -c "insert into \"it's\" values ('quoted')" \
    -c 'create table "naïve" (k text)' -c "insert into \"naïve\" values ('public-naive')" \
    -c 'create table evil."naïve" (k text)' -c "insert into evil.\"naïve\" values ('evil-naive')" \
    -c "grant all on \"it's\", \"naïve\", evil.\"naïve\" to app"
  run as pub "select k from \"it's\""
  [ "$output" = "quoted" ]
  run as pub 'select k from "naïve"' "set search_path = evil, public" 'select k from "naïve"'
  echo "$output"
  [ "${lines[0]}" = "public-naive" ]
  [ "${lines[1]}" = "ERROR:  pgtether: table naïve resolves to evil.naïve on this session's search_path, and table evil.naïve is not among the tables rule 'pub' allows" ]
  # a dot inside a quoted name: "public.orders" is evil's relation of that name, not public.orders
  pgt_psql -c 'create table evil."public.orders" (k text)' -c "insert into evil.\"public.orders\" values ('evil-dotted')" \
    -c "grant all on evil.\"public.orders\" to app"
  run as pub "set search_path = evil, public" 'select k from "public.orders"'
  echo "$output"
  [ "$output" = "ERROR:  pgtether: a schema or table name with a dot in it (\"public.orders\") cannot be told from a qualified name, so rule 'pub' cannot decide it" ]
  run as agent "begin" "select 1/0" "select k from orders" "rollback" "select k from orders"
  echo "$output"
  [ "${lines[0]}" = "ERROR:  division by zero" ]
  [ "${lines[1]}" = "ERROR:  pgtether: table orders names no schema and rule 'agent' has table rules, but the transaction is aborted, so the search_path cannot be asked for (end it first); qualify the table name" ]
  [ "${lines[2]}" = "public-order" ]
}

@test "sessions stay clean" {
  pgt_assert_clean_log
}
