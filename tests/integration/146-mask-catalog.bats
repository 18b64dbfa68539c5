#!/usr/bin/env bats
# Masks against the catalog's other ways to a column's values and identity: the
# planner's statistics (pg_stats and views over it) show masked values; renames of a
# masked column, its table or its schema must not take it out of the masks; a portal
# opened before a reload that adds a mask returns its later rows masked.

load helpers

setup_file() {
  export PGT_OWN_POLICY=1
  pgt_setup_world
  pgt_psql <<'SQL'
create table users (id int, email text, name text);
insert into users values (1, 'alice@example.com', 'Alice'), (2, 'bob@example.org', 'Bob'),
                         (3, 'carol@example.net', 'Carol');
analyze users;
create schema crm;
create table crm.accounts (id int, email text);
insert into crm.accounts values (1, 'dave@example.com');
create schema hr authorization app;
create table hr.staff (id int, email text);
insert into hr.staff values (1, 'erin@example.com');
create schema ops;
create view ops.col_stats as select tablename, attname, histogram_bounds::text as h from pg_stats;
create materialized view ops.mv_stats as select tablename, attname, h from ops.col_stats;
grant usage on schema crm, ops to app;
grant create on database postgres to app;
alter schema ops owner to app;
grant all on users, crm.accounts, hr.staff, ops.col_stats, ops.mv_stats to app;
SQL
  mkdir -p "$PGT_TMP/policy.d"
  cat >"$PGT_TMP/policy.d/10-mask.json" <<JSON
{ "rules": [
  { "name": "masked", "match": { "cgroup": "$PGT_CG/masked/**" }, "token": { "source": "none" }, "upstream": "main",
    "mask": [ { "column": "public.users.email", "strategy": "email" },
              { "column": "crm.accounts.email", "strategy": "email" },
              { "column": "hr.staff.email", "strategy": "email" } ] },
  { "name": "plain", "match": { "cgroup": "$PGT_CG/plain/**" }, "token": { "source": "none" }, "upstream": "main" },
  { "name": "late", "match": { "cgroup": "$PGT_CG/late/**" }, "token": { "source": "none" }, "upstream": "main" },
  { "name": "named", "match": { "cgroup": "$PGT_CG/named/**" }, "token": { "source": "none" }, "upstream": "main",
    "mask": [ { "column_name": "*email*", "strategy": "redact" } ] } ] }
JSON
  # mask_refresh 1: a live masked session looks its masks up again every second
  PGT_EXTRA_CONFIG="\"mask_refresh\": 1" pgt_write_config closed
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
}

masked() { pgt_in "$PGT_CG/masked/$1" psql -X -h 127.0.0.1 -p "$PG_PORT" -At "${@:2}" 2>&1; }
plain() { pgt_in "$PGT_CG/plain/$1" psql -X -h 127.0.0.1 -p "$PG_PORT" -At "${@:2}" 2>&1; }

@test "pg_stats and the views over it are denied in a masked session, in any spelling, and readable in another" {
  # the statistics do hold the values: what a masked session must not see
  run plain stats -c "select histogram_bounds from pg_stats where tablename = 'users' and attname = 'email'"
  echo "$output"
  [[ "$output" == *alice@example.com* ]]
  run masked stats -c "select histogram_bounds from pg_stats where tablename = 'users' and attname = 'email'" \
    -c "select histogram_bounds from pg_catalog.pg_stats where attname = 'email'" \
    -c 'select histogram_bounds from "pg_catalog"."pg_stats"' \
    -c "select most_common_vals from PG_CATALOG.PG_STATS" \
    -c "table pg_stats_ext" \
    -c "select 1 where exists (select 1 from pg_stats_ext_exprs)" \
    -c "select h from ops.col_stats where tablename = 'users'" \
    -c "select h from ops.mv_stats" \
    -c "set search_path = ops, public" -c "select h from col_stats" \
    -c "select query_to_xml('select histogram_bounds from pg_stats', true, false, '')" \
    -c "select email from users where id = 1"
  echo "$output"
  [[ "$output" != *alice@* && "$output" != *bob@* && "$output" != *carol@* ]]
  [ "$(printf '%s\n' "$output" | grep -c "ERROR:  pgtether: rule 'masked' masks columns, and .* shows the planner's statistics of columns, masked ones too")" -eq 9 ]
  [[ "$output" == *"rule 'masked' masks columns, and ops.col_stats shows the planner's statistics"* ]]
  [[ "$output" == *"rule 'masked' masks columns, and col_stats shows the planner's statistics"* ]]
  [ "${lines[-1]}" = "***@example.com" ]
  run pgt_in "$PGT_CG/masked/stats" psql -X -h 127.0.0.1 -p "$PG_PORT" -At -v VERBOSITY=verbose -c "select * from pg_stats"
  [[ "$output" == *"ERROR:  42501: pgtether: rule 'masked' masks columns, and pg_stats shows"* ]]
}

@test "a rule that masks by column name only denies pg_stats and the views over it too" {
  run pgt_in "$PGT_CG/named/stats" psql -X -h 127.0.0.1 -p "$PG_PORT" -At \
    -c "select h from ops.col_stats where tablename = 'users' and attname = 'email'" \
    -c "select histogram_bounds from pg_stats where attname = 'email'" -c "select email from users where id = 1"
  echo "$output"
  [[ "$output" != *alice@* && "$output" != *bob@* && "$output" != *carol@* ]]
  [ "${lines[0]}" = "ERROR:  pgtether: rule 'named' masks columns, and ops.col_stats shows the planner's statistics of columns, masked ones too (their most common values and histogram bounds), so a masked session may not read it" ]
  [[ "${lines[1]}" == "ERROR:  pgtether: rule 'named' masks columns, and pg_stats shows"* ]]
  [ "${lines[2]}" = "****" ]
}

@test "a masked session may not rename a schema that holds a masked table, alone or before a statement that uses the new name" {
  run masked rename-in -c "select email from hr.staff" \
    -c "alter schema hr rename to hr2; select upper(email) from hr2.staff" \
    -c "alter schema hr rename to hr2" -c "select email from hr.staff" -c "alter schema ops rename to ops2" \
    -c "alter schema ops2 rename to ops"
  echo "$output"
  [ "${lines[0]}" = "***@example.com" ]
  [ "${lines[1]}" = "ERROR:  pgtether: rule 'masked' masks hr.staff.email, and renaming schema hr would change what the mask is on (a mask's \"allow\": [\"ddl\"] would permit it)" ]
  [ "${lines[2]}" = "${lines[1]}" ]
  [ "${lines[3]}" = "***@example.com" ]
  [ "${lines[4]}" = "ALTER SCHEMA" ] # one without masked tables may be renamed
  [[ "$output" != *erin@* && "$output" != *ERIN@* ]]
  [ "$(pgt_psql -c "select count(*) from pg_namespace where nspname = 'hr'")" = 1 ]
}

@test "a masked column whose schema, table, name and schema again are changed outside pgtether stays masked in a live session" {
  local flag="$PGT_TMP/renamed"
  pgt_in "$PGT_CG/masked/rename-out" /usr/bin/python3 "$PGT_ROOT/tests/clients/masking.py" later 127.0.0.1 "$PG_PORT" \
    "$flag" "select id, mail from public.accounts2" >"$PGT_TMP/rename-out.out" 2>&1 &
  local pid=$!
  for _ in $(seq 200); do [ -e "$flag.ready" ] && break; sleep 0.05; done
  [ -e "$flag.ready" ]
  pgt_psql -c "alter schema crm rename to crm2" -c "alter table crm2.accounts rename to accounts2" \
    -c "alter table crm2.accounts2 rename column email to mail" -c "alter table crm2.accounts2 set schema public" >/dev/null
  sleep 2.5 # past mask_refresh: the session looks its masks up again before its next statement
  touch "$flag"
  wait "$pid" || true
  pgt_psql -c "alter table public.accounts2 set schema crm2" -c "alter table crm2.accounts2 rename column mail to email" \
    -c "alter table crm2.accounts2 rename to accounts" -c "alter schema crm2 rename to crm" >/dev/null
  cat "$PGT_TMP/rename-out.out"
  [ "$(cat "$PGT_TMP/rename-out.out")" = "1|***@example.com" ]
}

@test "a portal opened and a statement described before a reload that adds a mask return their later rows masked" {
  local flag="$PGT_TMP/portal" pol="$PGT_TMP/policy.d/10-mask.json"
  pgt_in "$PGT_CG/late/portal" /usr/bin/python3 "$BATS_TEST_DIRNAME/pgraw.py" 127.0.0.1 "$PG_PORT" \
    portal-across-reload "$flag" >"$PGT_TMP/portal.out" 2>&1 &
  local pid=$!
  for _ in $(seq 200); do [ -e "$flag.ready" ] && break; sleep 0.05; done
  [ -e "$flag.ready" ]
  jq '.rules[2].mask = [ { "column": "public.users.email", "strategy": "email" } ]' "$pol" >"$PGT_TMP/mask.tmp"
  cp "$pol" "$PGT_TMP/mask.orig"
  cat "$PGT_TMP/mask.tmp" >"$pol"
  pgt_reload
  touch "$flag"
  wait "$pid"
  cat "$PGT_TMP/mask.orig" >"$pol"
  pgt_reload
  cat "$PGT_TMP/portal.out"
  local portal stmt
  portal=$(awk '/^--$/ { n++; next } n == 1' "$PGT_TMP/portal.out")
  stmt=$(awk '/^--$/ { n++; next } n == 2' "$PGT_TMP/portal.out")
  [[ "$(cat "$PGT_TMP/portal.out")" == *"D 1|alice@example.com"* ]] # before the reload: no mask yet
  [ "$portal" = "D 2|***@example.org
s
Z T" ]
  [ "$stmt" = "2
D 1|***@example.com
D 2|***@example.org
D 3|***@example.net
C SELECT 3
Z T
C COMMIT
Z I" ]
}
