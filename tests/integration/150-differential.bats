#!/usr/bin/env bats
# The classifier, differentially: every statement of tests/fixtures/sql-corpus.sql runs
# straight on PostgreSQL and through pgtether under a read-only rule; through pgtether
# nothing may change the database (its tables, catalog objects, sequences, large
# objects, or the cluster's roles, databases and role settings).

load helpers

setup_file() {
  export PGT_OWN_POLICY=1
  pgt_setup_world
  mkdir -p "$PGT_TMP/policy.d"
  cat >"$PGT_TMP/policy.d/10-ro.json" <<JSON
{ "rules": [
  { "name": "read-only", "match": { "cgroup": "$PGT_CG/ro/**" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read"] } },
  { "name": "read-and-copy-in", "match": { "cgroup": "$PGT_CG/rw/**" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "copy_in"] } },
  { "name": "read-only-with-code", "match": { "cgroup": "$PGT_CG/code/**" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "session", "transaction", "dynamic"] } } ] }
JSON
  pgt_write_config closed
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
}

# differential ro|rw [--read-write] [SETTING=VALUE...]: the whole corpus, straight and
# through pgtether under the rule of that cgroup
differential() {
  local cg=$1; shift
  run timeout 600 "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/$cg/diff" -- \
    /usr/bin/python3 "$PGT_ROOT/tests/clients/differential.py" "$PGT_ROOT/tests/fixtures/sql-corpus.sql" \
    "$PGT_TMP/pg" "$PG_PORT" "$@"
  echo "$output"
  echo "# ${lines[-1]}" >&3
  # the server's side of a failure (a backend that died puts the cluster in recovery)
  [ "$status" -eq 0 ] || tail -n 40 "$PGT_TMP/pg/postgres.log"
  [ "$status" -eq 0 ]
  [[ "${lines[-1]}" == *", 0 changed it through pgtether" ]]
  pgt_assert_clean_log
}

@test "no corpus statement changes the database through a read-only rule, whatever it does straight" {
  differential ro
}

# A role default the admin set: the server reads backslashes in '...' as escapes, and
# pgtether must read them the same way.
@test "nor with standard_conforming_strings off as the role's default" {
  differential ro standard_conforming_strings=off
}

# A read-only rule that allows SET, BEGIN and DO: the server's read-only mode is what
# stops a function that writes, and nothing the rule allows may turn it off (RESET
# transaction_read_only in PostgreSQL 15, a DO block).
@test "nor through a read-only rule that allows session, transaction and dynamic statements" {
  differential code
}

# A rule that allows copy_in is not run read-only by the server: pgtether's own
# classification is all that stops the rest.
@test "nor through a rule that allows reads and COPY FROM STDIN only, which the server does not make read-only" {
  differential rw --read-write
}

@test "nor there with standard_conforming_strings off" {
  differential rw --read-write standard_conforming_strings=off
}
