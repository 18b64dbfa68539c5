#!/usr/bin/env bats
# Attacks on the session model as a workload would make them: a read-only rule's
# session logs in with default_transaction_read_only=on, and nothing the rule allows
# may turn it read-write, so that a function that writes, called from a SELECT, is
# refused by the server.

load helpers

setup_file() {
  export PGT_OWN_POLICY=1
  pgt_setup_world
  pgt_psql <<'SQL'
create table t (a int);
grant all on t to app;
-- what an admin may have created: a function that writes, callable from a SELECT
create function w() returns int language sql as 'insert into t values (1) returning 1';
-- and one that turns the session's default read-write
create function go_rw() returns text language sql as $$ select set_config('default_transaction_read_only', 'off', false) $$;
SQL
  mkdir -p "$PGT_TMP/policy.d"
  cat >"$PGT_TMP/policy.d/10-attacks.json" <<JSON
{ "rules": [
  { "name": "ro", "match": { "cgroup": "$PGT_CG/ro" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "session", "transaction"] } },
  { "name": "rocode", "match": { "cgroup": "$PGT_CG/rocode" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "session", "transaction", "dynamic"] } }
] }
JSON
  pgt_write_config closed
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
}

as() {
  local who=$1; shift
  local args=()
  for q in "$@"; do args+=(-c "$q"); done
  pgt_in "$PGT_CG/$who" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq "${args[@]}" 2>&1
}

written() {
  pgt_psql -c "select count(*) from t"
}

# PostgreSQL 15 takes transaction_read_only to its boot value, off, on RESET or SET
# ... TO DEFAULT, whatever default_transaction_read_only is (16 refuses both).
@test "RESET transaction_read_only and SET transaction_read_only TO DEFAULT do not make a read-only session's transaction read-write" {
  for q in "begin; reset transaction_read_only; select w(); commit" \
           "begin; set transaction_read_only to default; select w(); commit" \
           "begin; SET LOCAL \"transaction_read_only\" = DEFAULT; select w(); commit" \
           "reset transaction_read_only; select w()"; do
    run as ro "$q"
    echo "$q: $output"
    [[ "$output" == *"rule 'ro' is read-only and its session is run read-only"* ]]
    [ "$(written)" = 0 ]
  done
  # what keeps it read-only passes
  run as ro "reset default_transaction_read_only" "set default_transaction_read_only to default" \
    "select current_setting('default_transaction_read_only')"
  echo "$output"
  [ "$output" = "on" ]
}

# A DO block's body is code no check sees: it can RESET transaction_read_only, or set
# the default off and COMMIT, and write.
@test "a DO block does not make a read-only session read-write" {
  for q in 'do $$begin reset transaction_read_only; perform w(); end$$' \
           "do \$\$begin perform set_config('default_transaction_read_only', 'off', false); commit; perform w(); end\$\$" \
           'do $x$begin execute $q$reset transaction_read_only$q$; perform w(); end$x$'; do
    run as rocode "$q"
    echo "$q: $output"
    [[ "$output" == *"rule 'rocode' is read-only and its session is run read-only"* ]]
    [ "$(written)" = 0 ]
  done
  # CALL and the rest of the dynamic class still work
  run as rocode "prepare p as select 1" "execute p"
  echo "$output"
  [ "$output" = 1 ]
}

# go_rw() is the database's own code: the server reports the default it turns off
# only before its next ReadyForQuery, which ends the session; whatever would run in
# a new transaction before that must not.
@test "server-side code that turns the default off cannot be followed by a write before the server reports it" {
  run as ro "select go_rw(); commit; select w()"
  echo "$output"
  [[ "$output" == *"rule 'ro' is read-only and its session is run read-only"* ]]
  [ "$(written)" = 0 ]
  run as ro "select go_rw(); end; select w()"
  [[ "$output" == *"rule 'ro' is read-only and its session is run read-only"* ]]
  [ "$(written)" = 0 ]
  # Queries pipelined behind it, sent before any answer
  run pgt_in "$PGT_CG/ro" /usr/bin/python3 "$PGT_ROOT/tests/integration/pgraw.py" 127.0.0.1 "$PG_PORT" pipeline \
    "select go_rw()" "select w()" "select w()"
  echo "$output"
  [[ "$output" == *"E FATAL 0A000 pgtether: rule 'ro' is read-only, and the database now runs this session read-write"* ]]
  [ "$(written)" = 0 ]
  # pipelining itself still works, and a COMMIT that ends the text is fine
  run pgt_in "$PGT_CG/ro" /usr/bin/python3 "$PGT_ROOT/tests/integration/pgraw.py" 127.0.0.1 "$PG_PORT" pipeline \
    "select 'one'" "begin; select 'two'; commit" "select 'three'"
  echo "$output"
  [[ "$output" == *"D one"*"D two"*"D three"*"Z I" ]]
  # and so does a driver's pipeline of extended-protocol batches
  run pgt_in "$PGT_CG/ro" /usr/bin/python3 -c '
import sys, psycopg
with psycopg.connect(host="127.0.0.1", port=int(sys.argv[1]), user="app", dbname="postgres", autocommit=True) as c:
    with c.pipeline() as p:
        cs = [c.execute("select %s::int", (i,)) for i in range(5)]
        p.sync()
        cs += [c.execute("select %s::int * 10", (i,)) for i in range(3)]
    print(",".join(str(x.fetchone()[0]) for x in cs))' "$PG_PORT"
  echo "$output"
  [ "$output" = "0,1,2,3,4,0,10,20" ]
}

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
}
