#!/usr/bin/env bats
# Attacks on the channels a masked value could leave a masked session by, tried as a
# workload would: RETURNING of another table's write, ON CONFLICT, constraint errors
# of unmasked tables fed from masked ones, COPY of computed columns, EXPLAIN, cursors.

load helpers

setup_file() {
  export PGT_OWN_POLICY=1
  pgt_setup_world
  pgt_psql <<'SQL'
create table customers (id int primary key, email text unique, name text not null);
insert into customers values (42, 'alice@example.com', 'Alice'), (43, 'bob@example.org', 'Bob');
create table orders (id int primary key, customer int, note text);
insert into orders values (1, 42, 'n');
create table notes (t text check (length(t) < 5));
create table shortc (t varchar(3));
create function getmail(int) returns text language sql as $$ select email from customers where id = $1 $$;
create function rows_of() returns setof customers language sql as $$ select * from customers $$;
create function mystats() returns setof pg_stats language sql as $$ select * from pg_stats $$;
grant all on customers, orders, notes, shortc to app;
grant execute on function getmail(int), rows_of(), mystats() to app;
analyze customers;
grant create on database postgres to app;
create table app_own (secret text);
insert into app_own values ('hidden');
alter table app_own owner to app;
create role other login;
SQL
  mkdir -p "$PGT_TMP/policy.d"
  cat >"$PGT_TMP/policy.d/10-mask.json" <<JSON
{ "rules": [
  { "name": "masked", "match": { "cgroup": "$PGT_CG/masked/**" }, "token": { "source": "none" }, "upstream": "main",
    "mask": [ { "column": "public.customers.email", "strategy": "email" } ] },
  { "name": "rw", "match": { "cgroup": "$PGT_CG/rw/**" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "write", "transaction", "session"] } },
  { "name": "ddl", "match": { "cgroup": "$PGT_CG/ddl/**" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "ddl", "transaction", "session"] } } ] }
JSON
  pgt_write_config closed
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
}

masked() { pgt_in "$PGT_CG/masked/$1" psql -X -h 127.0.0.1 -p "$PG_PORT" -At -v VERBOSITY=verbose "${@:2}"; }
rw() { pgt_in "$PGT_CG/rw/$1" psql -X -h 127.0.0.1 -p "$PG_PORT" -At "${@:2}"; }
ddl() { pgt_in "$PGT_CG/ddl/$1" psql -X -h 127.0.0.1 -p "$PG_PORT" -At "${@:2}"; }
noleak() { echo "$output"; [[ "$output" != *alice@* && "$output" != *bob@* ]]; }

@test "a value computed from a masked column inside a CTE, or a set operation in a CTE, does not leave unmasked" {
  run masked cte -c "WITH x AS (SELECT lower(email) AS e FROM customers) SELECT e FROM x"
  noleak
  [[ "$output" == *"42501"* ]]
  run masked cte -c "WITH RECURSIVE x AS (SELECT email FROM customers UNION ALL SELECT email FROM x WHERE false) SELECT email FROM x"
  noleak
  [[ "$output" == *"42501"* ]]
  run masked cte -c "WITH x AS (SELECT email FROM customers UNION SELECT note FROM orders) SELECT * FROM x"
  noleak
  [[ "$output" == *"42501"* ]]
  # a CTE of a write, and one in the SELECT an INSERT copies from
  run masked cte -c "WITH x AS (SELECT lower(email) AS e FROM customers) INSERT INTO notes SELECT left(e, 3) FROM x"
  echo "$output"
  [[ "$output" == *"42501"* ]]
  run masked cte -c "INSERT INTO notes WITH x AS (SELECT upper(email) AS e FROM customers) SELECT left(e, 3) FROM x"
  echo "$output"
  [[ "$output" == *"42501"* ]]
  [ "$(pgt_psql -Atc 'select count(*) from notes')" = 0 ]
  # a CTE that keeps the column's identity is masked by its RowDescription
  run masked cte -c "WITH x AS (SELECT email FROM customers) SELECT email FROM x ORDER BY 1"
  noleak
  [[ "$output" == *"@"* ]]
}

@test "a masked value copied by ON CONFLICT DO UPDATE SET into a table that is not masked is denied" {
  run masked conflict -c "INSERT INTO orders VALUES (1, 42, 'n') ON CONFLICT (id) DO UPDATE SET note = (SELECT email FROM customers WHERE id = 42)" \
    -c "SELECT note FROM orders WHERE id = 1"
  noleak
  [[ "$output" == *"42501"* ]]
  run masked conflict -c "INSERT INTO orders VALUES (1, 42, 'n') ON CONFLICT (id) DO UPDATE SET note = (SELECT lower(email) FROM customers WHERE id = 42) RETURNING note"
  noleak
  [[ "$output" == *"42501"* ]]
  [ "$(pgt_psql -Atc 'select note from orders where id = 1')" = n ]
}

@test "EXPLAIN ANALYZE of a write copies no masked value into a table that is not masked" {
  run masked explain -c "EXPLAIN (ANALYZE, COSTS OFF) INSERT INTO notes SELECT left(lower(email), 3) FROM customers"
  echo "$output"
  [[ "$output" == *"42501"* ]]
  run masked explain -c "EXPLAIN ANALYZE UPDATE orders o SET note = c.email FROM customers c WHERE c.id = o.customer"
  echo "$output"
  [[ "$output" == *"42501"* ]]
  run masked explain -c "EXPLAIN ANALYZE CREATE TEMP TABLE leak AS SELECT lower(email) AS e FROM customers" \
    -c "SELECT e FROM leak"
  noleak
  run masked explain -c "EXPLAIN ANALYZE SELECT lower(email) AS e INTO TEMP leak2 FROM customers" \
    -c "SELECT e FROM leak2"
  noleak
  [ "$(pgt_psql -Atc 'select count(*) from notes')" = 0 ]
  [ "$(pgt_psql -Atc 'select note from orders where id = 1')" = n ]
  # explaining a read shows no rows: allowed
  run masked explain -c "EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF) SELECT lower(email) FROM customers"
  noleak
  [[ "$output" == *"Output: lower(email)"* ]]
}

@test "EXPLAIN ANALYZE CREATE TABLE / MATERIALIZED VIEW AS is DDL: denied where the rule does not allow it" {
  run rw ctas -c "EXPLAIN (ANALYZE, COSTS OFF) CREATE TEMP TABLE made AS SELECT 1 AS x" -c "SELECT 'made', x FROM made"
  echo "$output"
  [[ "$output" == *"class ddl is not allowed"* ]]
  [[ "$output" != *"made|1"* ]]
  run rw ctas -c "EXPLAIN (ANALYZE) CREATE MATERIALIZED VIEW madev AS SELECT 1 AS x"
  echo "$output"
  [[ "$output" == *"class ddl is not allowed"* ]]
  [ "$(pgt_psql -Atc "select count(*) from pg_class where relname in ('made', 'madev')")" = 0 ]
}

@test "a GRANT inside CREATE SCHEMA is the grant class: denied where the rule allows ddl but not grant" {
  run ddl grant -c "CREATE SCHEMA s1 GRANT ALL ON public.app_own TO public"
  echo "$output"
  [[ "$output" == *"class grant is not allowed"* ]]
  [ "$(pgt_psql -Atc "select count(*) from pg_namespace where nspname = 's1'")" = 0 ]
  [ "$(pgt_psql -Atc "select has_table_privilege('other', 'public.app_own', 'select')")" = f ]
  # DDL alone is still allowed
  run ddl grant -c "CREATE SCHEMA s2 CREATE TABLE t (a int)"
  echo "$output"
  [ "$status" -eq 0 ]
}
