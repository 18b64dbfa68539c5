#!/usr/bin/env bats
# The differential harness: each real client runs its compatibility cases once straight
# to the database and once through pgtether, and the two transcripts (rows, command
# tags, SQLSTATEs, notices, notifications) must be equal. Clients: psql, psycopg 3,
# node-postgres (with pg-copy-streams and pg-cursor).

load helpers

CLIENTS="$PGT_ROOT/tests/clients"

setup_file() {
  pgt_setup_world
  pgt_psql -c "create schema app authorization app"
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
}

# normalize: the backend pid in a notification differs from run to run, with or
# without pgtether
normalize() { sed -E 's/server process with PID [0-9]+/server process with PID N/'; }

# differential NAME CMD...: runs CMD directly (with the real password) and in an
# attached cgroup with a wrong one, which pgtether never asks for; the transcripts
# must be equal and non-trivial.
differential() {
  local name=$1; shift
  "$@" 2>&1 | normalize >"$PGT_TMP/$name.direct"
  pgt_in "$PGT_CG/$name" env PGPASSWORD=wrong "$@" 2>&1 | normalize >"$PGT_TMP/$name.pgtether"
  diff -u "$PGT_TMP/$name.direct" "$PGT_TMP/$name.pgtether"
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/$name ")" -ge 1 ]
}

@test "psql: the same transcript straight and through pgtether" {
  differential psql psql -X -h 127.0.0.1 -p "$PG_PORT" -a -f "$CLIENTS/cases.sql"
  cat "$PGT_TMP/psql.pgtether"
  grep -q "ERROR:  division by zero" "$PGT_TMP/psql.pgtether"
  grep -q "NOTICE:  a notice with 42" "$PGT_TMP/psql.pgtether"
  grep -q 'Asynchronous notification "chan" with payload "payload" received' "$PGT_TMP/psql.pgtether"
  grep -q "^ 11 | eleven" "$PGT_TMP/psql.pgtether"
  grep -q 'Table "app.t"' "$PGT_TMP/psql.pgtether"
}

@test "psycopg 3: the same transcript straight and through pgtether" {
  differential psycopg /usr/bin/python3 "$CLIENTS/psycopg_check.py" 127.0.0.1 "$PG_PORT"
  cat "$PGT_TMP/psycopg.pgtether"
  grep -qx "copied in 1000" "$PGT_TMP/psycopg.pgtether"
  grep -qx "ssc \[1, 2, 3, 4, 5, 6, 7\]" "$PGT_TMP/psycopg.pgtether"
  grep -qx "pipeline error 22012" "$PGT_TMP/psycopg.pgtether"
  grep -qx "cancelled 57014 fast" "$PGT_TMP/psycopg.pgtether"
  grep -qx "usable after cancel 42" "$PGT_TMP/psycopg.pgtether"
}

@test "node-postgres: the same transcript straight and through pgtether" {
  differential node node "$CLIENTS/node/check.js" 127.0.0.1 "$PG_PORT"
  cat "$PGT_TMP/node.pgtether"
  grep -qx "rows 3" "$PGT_TMP/node.pgtether"
  grep -qx "copied out bytes 14855 lines 1003" "$PGT_TMP/node.pgtether"
  grep -qx "cursor \[\[1,2,3\],\[4,5,6\],\[7\]\]" "$PGT_TMP/node.pgtether"
  grep -qx "notification chan payload from node" "$PGT_TMP/node.pgtether"
}

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
}
