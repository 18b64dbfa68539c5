#!/usr/bin/env bats
# Real drivers through pgtether, as the documented setup has it: the database listens
# only at the upstream's address (127.0.0.3), and workloads dial an alias (127.0.0.2)
# where nothing listens, so a connection works only if pgtether connects to the
# address. Then: cancels land every time, and each driver (lib/pq, pgx, JDBC, asyncpg,
# node-postgres) prints the same transcript straight and through pgtether.

load helpers

CLIENTS="$PGT_ROOT/tests/clients"

setup_file() {
  export PG_LISTEN=127.0.0.3
  export PGT_OWN_POLICY=1
  pgt_setup_world
  export PGT_MAIN_ADDRESS="127.0.0.3:$PG_PORT" PGT_MAIN_ALIASES="[\"127.0.0.2:$PG_PORT\"]"
  export PGHOST=127.0.0.3 PGPORT=$PG_PORT
  pgt_psql -c "create schema app authorization app"
  mkdir -p "$PGT_TMP/policy.d"
  cat >"$PGT_TMP/policy.d/10-drivers.json" <<JSON
{ "rules": [
  { "name": "drivers", "match": { "cgroup": "$PGT_CG/**" }, "token": { "source": "none" }, "upstream": "main" } ] }
JSON
  pgt_write_config closed
  cat >"$PGT_TMP/kill-backend" <<SH
#!/bin/sh
# KILL_SCRIPT PID: the administrator ends that backend (over the cluster's socket,
# not intercepted) and waits until it is gone; then the proxy has seen it go too.
psql -X -h "$PGT_TMP/pg" -p "$PG_PORT" -U postgres -Atq -c "select pg_terminate_backend(\$1, 5000)"
sleep 0.5
SH
  chmod +x "$PGT_TMP/kill-backend"
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
}

@test "the database listens only at the upstream's address, not at the alias workloads dial" {
  run psql -X -h 127.0.0.3 -p "$PG_PORT" -Atq -c "select 1"
  [ "$status" -eq 0 ]
  run psql -X -h 127.0.0.2 -p "$PG_PORT" -Atq -c "select 1"
  echo "$output"
  [ "$status" -ne 0 ]
  [[ "$output" == *"Connection refused"* ]]
}

@test "a workload that dials the alias reaches the database at the upstream's address" {
  run pgt_in "$PGT_CG/alias" env PGPASSWORD=wrong psql -X -h 127.0.0.2 -p "$PG_PORT" -Atq \
    -c "select inet_server_addr(), current_user"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = "127.0.0.3|app" ]
  [ "$(pgt_log_field conn.open "cgroup=$PGT_CG/alias " upstream_addr)" = "127.0.0.3:$PG_PORT" ]
  [ "$(pgt_log_field conn.open "cgroup=$PGT_CG/alias " dst)" = "127.0.0.2:$PG_PORT" ]
}

@test "a cancel of a session that dialed the alias goes to the upstream's address" {
  cat >"$PGT_TMP/cancel-alias.py" <<'PY'
import sys, threading, psycopg
from psycopg import errors
conn = psycopg.connect(sys.argv[1], autocommit=True)
threading.Timer(0.3, conn.cancel).start()
try:
    conn.execute("select pg_sleep(20)")
    print("not cancelled")
except errors.QueryCanceled as e:
    print("cancelled", e.sqlstate)
PY
  run timeout 15 "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/alias-cancel" -- \
    /usr/bin/python3 "$PGT_TMP/cancel-alias.py" "host=127.0.0.2 port=$PG_PORT user=app dbname=postgres"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = "cancelled 57014" ]
  grep -q "event=cancel .*forwards a cancel of session .* to 127.0.0.3:$PG_PORT" "$PGT_LOG"
}

# 100 cancels in a row, each 50 ms after its query was sent, with six other
# connections busy all along; then 20 more on a new connection each.
@test "100 cancels in a row land with 57014, under load" {
  run timeout 300 "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/storm" -- \
    /usr/bin/python3 "$CLIENTS/cancel_storm.py" 127.0.0.2 "$PG_PORT" 100 --load 6 --max-lost 3
  echo "$output"
  echo "# ${lines[-1]}" >&3
  [ "$status" -eq 0 ]
  [[ "${lines[-1]}" == "landed 100 of 100, lost 0, other 0, "* ]]
  run timeout 120 "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/storm-fresh" -- \
    /usr/bin/python3 "$CLIENTS/cancel_storm.py" 127.0.0.2 "$PG_PORT" 20 --fresh --load 2 --max-lost 3
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "${lines[-1]}" == "landed 20 of 20, lost 0, other 0, "* ]]
  pgt_assert_clean_log
}

# node-postgres's end(): Terminate, then it reads on until the socket closes. The
# server answers Terminate by closing, without a word; so must pgtether (it sent a
# FATAL "connection to the database was lost", which node-postgres raises as an
# unhandled 'error' event).
@test "Terminate is answered by a close, not by an error" {
  cat >"$PGT_TMP/terminate.py" <<'PY'
import socket, struct, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
body = struct.pack("!I", 3 << 16) + b"user\0app\0database\0postgres\0\0"
s.sendall(struct.pack("!I", len(body) + 4) + body)
buf = b""
while b"Z\0\0\0\5I" not in buf:
    d = s.recv(65536)
    if not d:
        sys.exit("closed during login: %r" % buf)
    buf += d
s.sendall(b"X\0\0\0\4")
time.sleep(0.5)  # the client keeps its end open a while, as node-postgres may
rest = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    rest += d
print("after Terminate:", repr(rest))
PY
  run pgt_in "$PGT_CG/terminate" /usr/bin/python3 "$PGT_TMP/terminate.py" 127.0.0.2 "$PG_PORT"
  echo "$output"
  [ "$output" = "after Terminate: b''" ]
  grep -q "cgroup=$PGT_CG/terminate .*reason=\"client terminated\"" "$PGT_LOG"
}

# The daemon in a mount namespace of its own, with an /etc/hosts where the upstream's
# name has two addresses: ::1 first, where nothing listens, then 127.0.0.3.
@test "an upstream whose name has two addresses: the first refuses, the second serves" {
  pgt_stop_daemon
  printf '127.0.0.1 localhost\n::1 pgt-two.test\n127.0.0.3 pgt-two.test\n' >"$PGT_TMP/hosts"
  cat >"$PGT_TMP/pgtetherd-hosts" <<SH
#!/bin/sh
exec unshare -m sh -c 'mount --bind "$PGT_TMP/hosts" /etc/hosts && exec "\$0" "\$@"' "$PGT_BUILD/pgtetherd" "\$@"
SH
  chmod +x "$PGT_TMP/pgtetherd-hosts"
  # the order the daemon will try them in
  run unshare -m sh -c "mount --bind '$PGT_TMP/hosts' /etc/hosts && getent ahosts pgt-two.test"
  [ "$(echo "$output" | awk 'NR == 1 { print $1 }')" = "::1" ]
  PGT_MAIN_ADDRESS="pgt-two.test:$PG_PORT" pgt_write_config closed
  PGTETHERD="$PGT_TMP/pgtetherd-hosts" pgt_start_daemon
  run pgt_in "$PGT_CG/two" psql -X -h 127.0.0.2 -p "$PG_PORT" -Atq -c "select inet_server_addr()"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = "127.0.0.3" ]
  grep -q "upstream 'main' at \[::1\]:$PG_PORT: Connection refused; trying its next address" "$PGT_LOG"
  [ "$(pgt_log_field conn.open "cgroup=$PGT_CG/two " upstream_addr)" = "127.0.0.3:$PG_PORT" ]
  # and when none answers, the error names the last one and counts the others
  pgt_stop_daemon
  printf '127.0.0.1 localhost\n::1 pgt-two.test\n127.0.0.5 pgt-two.test\n' >"$PGT_TMP/hosts"
  PGT_MAIN_ADDRESS="pgt-two.test:$PG_PORT" pgt_write_config closed
  PGTETHERD="$PGT_TMP/pgtetherd-hosts" pgt_start_daemon
  run pgt_in "$PGT_CG/two" psql -X -h 127.0.0.2 -p "$PG_PORT" -Atq -c "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"FATAL:  pgtether: cannot reach the database at 127.0.0.5:$PG_PORT: Connection refused (nor at the 1 address(es) of upstream 'main' before it)"* ]]
  pgt_stop_daemon
  pgt_assert_clean_log
  pgt_write_config closed
  pgt_start_daemon
}

# driver NAME CMD...: CMD (which gets HOST PORT KILL_SCRIPT) runs straight to
# 127.0.0.3 with the real password, then in an attached cgroup to the alias
# 127.0.0.2 with a wrong one, which pgtether never asks for. The transcripts must be
# equal, whole: nothing is normalized (they print no backend pid, application_name
# or login user other than current_user, the same both ways).
driver() {
  local name=$1; shift
  timeout 60 "$@" 127.0.0.3 "$PG_PORT" "$PGT_TMP/kill-backend" >"$PGT_TMP/$name.direct" 2>&1 || {
    cat "$PGT_TMP/$name.direct"; return 1; }
  pgt_in "$PGT_CG/$name" env PGPASSWORD=wrong timeout 60 "$@" 127.0.0.2 "$PG_PORT" "$PGT_TMP/kill-backend" \
    >"$PGT_TMP/$name.pgtether" 2>&1 || { cat "$PGT_TMP/$name.pgtether"; return 1; }
  cat "$PGT_TMP/$name.pgtether"
  [ -z "${PGT_SHOW:-}" ] || sed "s/^/# $name: /" "$PGT_TMP/$name.pgtether" >&3
  diff -u "$PGT_TMP/$name.direct" "$PGT_TMP/$name.pgtether"
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/$name ")" -ge 3 ]
  # what every transcript must show, so an empty or cut one cannot pass
  grep -q "^connected as app$" "$PGT_TMP/$name.pgtether"
  grep -q "^startup settings app 4321ms$" "$PGT_TMP/$name.pgtether"
  grep -q "^prepared executions 12, server-side statements [1-9]" "$PGT_TMP/$name.pgtether"
  grep -q "^bytea 256 e2c865db4162bed963bfaa9ef6ac18f0" "$PGT_TMP/$name.pgtether"
  grep -q "^notification chan payload from " "$PGT_TMP/$name.pgtether"
  grep -q "^error 22012 " "$PGT_TMP/$name.pgtether"
  grep -q "^error 42P01 " "$PGT_TMP/$name.pgtether"
  grep -q "^error 23505 " "$PGT_TMP/$name.pgtether"
  grep -q "^terminated t true" "$PGT_TMP/$name.pgtether"
  grep -q "^after terminate " "$PGT_TMP/$name.pgtether"
  grep -q "^reconnected 42$" "$PGT_TMP/$name.pgtether"
}

# Go programs build offline against Debian's packaged sources.
go_build() {
  mkdir -p "$PGT_TMP/go"
  (cd "$CLIENTS/$1" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE="$PGT_TMP/go/cache" GOFLAGS= \
    go build -o "$PGT_TMP/go/$1" .)
}

@test "lib/pq: the same transcript straight and through pgtether" {
  go_build pq
  driver pq "$PGT_TMP/go/pq"
  grep -qx "copied in, table 1012 .*" "$PGT_TMP/pq.pgtether"
}

@test "pgx: the same transcript straight and through pgtether" {
  go_build pgx
  driver pgx "$PGT_TMP/go/pgx"
  grep -qx "copied in 1000" "$PGT_TMP/pgx.pgtether"
  grep -qx "copied out 1012 bytes .*" "$PGT_TMP/pgx.pgtether"
}

@test "JDBC: the same transcript straight and through pgtether" {
  mkdir -p "$PGT_TMP/jdbc"
  javac -d "$PGT_TMP/jdbc" -cp /usr/share/java/postgresql.jar "$CLIENTS/jdbc/Check.java"
  driver jdbc java -cp "/usr/share/java/postgresql.jar:$PGT_TMP/jdbc" Check
  grep -qx "copied in 1000" "$PGT_TMP/jdbc.pgtether"
  grep -qx "cancel 57014 .*" "$PGT_TMP/jdbc.pgtether"
}

@test "asyncpg: the same transcript straight and through pgtether" {
  driver asyncpg /usr/bin/python3 "$CLIENTS/asyncpg/check.py"
  grep -qx "copied in COPY 1000" "$PGT_TMP/asyncpg.pgtether"
  grep -qx "timeout cancelled 42" "$PGT_TMP/asyncpg.pgtether"
}

@test "node-postgres: the same transcript straight and through pgtether" {
  driver node node "$CLIENTS/node/drivers.js"
  grep -qx "copied in 1000" "$PGT_TMP/node.pgtether"
}

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
}
