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
  # the drivers' transcripts end a backend of their own with pg_terminate_backend
  pgt_psql -c "grant pg_signal_backend to app"
  cat >"$PGT_TMP/policy.d/10-drivers.json" <<JSON
{ "rules": [
  { "name": "drivers", "match": { "cgroup": "$PGT_CG/**" }, "token": { "source": "none" }, "upstream": "main" } ] }
JSON
  pgt_write_config closed
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

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
}
