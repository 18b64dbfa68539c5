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
    "statements": { "allow": ["read"] } } ] }
JSON
  pgt_write_config closed
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
}

# differential [SETTING=VALUE...]: the whole corpus, straight and through pgtether
differential() {
  run timeout 600 "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/ro/diff" -- \
    /usr/bin/python3 "$PGT_ROOT/tests/clients/differential.py" "$PGT_ROOT/tests/fixtures/sql-corpus.sql" \
    "$PGT_TMP/pg" "$PG_PORT" "$@"
  echo "$output"
  echo "# ${lines[-1]}" >&3
  [ "$status" -eq 0 ]
  [[ "${lines[-1]}" == *", 0 changed it through pgtether" ]]
  pgt_assert_clean_log
}

@test "no corpus statement changes the database through a read-only rule, whatever it does straight" {
  differential
}

# A role default the admin set: the server reads backslashes in '...' as escapes, and
# pgtether must read them the same way.
@test "nor with standard_conforming_strings off as the role's default" {
  differential standard_conforming_strings=off
}
