#!/usr/bin/env bats
# A masked session takes lower(x) or a = b for PostgreSQL's built-ins only while no
# function or operator of that name outside pg_catalog could be what the server
# calls: PostgreSQL resolves a call by name and argument types along the search_path,
# so app.lower(text[]) (in the role's own "$user" schema) wins over pg_catalog's for
# a text[] argument, app.= for an operand type pg_catalog has no exact match for, and
# a search_path that puts app before pg_catalog wins even exact matches. Such names
# count as not built in: a masked column in their arguments is denied, their errors
# withheld. Names owned by superusers (what CREATE EXTENSION installs) are trusted.

load helpers

setup_file() {
  export PGT_OWN_POLICY=1
  pgt_setup_world
  pgt_psql <<'SQL'
create table customers (id int primary key, email text, note text[], name text);
insert into customers values (42, 'alice@example.com', '{secret-note}', 'Alice');
grant select on customers to app;
create schema app authorization app;
-- an extension's operators and functions in public, owned by the superuser that
-- installed it: = and lower (citext has both) stay built in for masked sessions
create extension citext;
SQL
  mkdir -p "$PGT_TMP/policy.d"
  cat >"$PGT_TMP/policy.d/10-mask.json" <<JSON
{ "rules": [
  { "name": "masked", "match": { "cgroup": "$PGT_CG/masked/**" }, "token": { "source": "none" }, "upstream": "main",
    "mask": [ { "column": "public.customers.email", "strategy": "email" },
              { "column": "public.customers.note", "strategy": "redact" } ] } ] }
JSON
  pgt_write_config closed
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
}

masked() { pgt_in "$PGT_CG/masked/$1" psql -X -h 127.0.0.1 -p "$PG_PORT" -At -v VERBOSITY=verbose "${@:2}"; }
# as_app SQL: runs SQL as the workload's role, so what it creates is the workload's
as_app() { pgt_psql -c "set role app" -c "$1"; }

@test "ordinary built-ins still work in a masked session: = on a masked column in WHERE, lower() of an unmasked one" {
  run masked plain -c "select id from customers where email = 'alice@example.com'" \
    -c "select lower(name) from customers where note = '{secret-note}'" \
    -c "select id from customers where email in ('alice@example.com') and email like 'alice%'" \
    -c "select lower(email) from customers"
  echo "$output"
  [ "${lines[0]}" = 42 ]
  [ "${lines[1]}" = alice ]
  [ "${lines[2]}" = 42 ]
  # a computed masked value is denied, as before
  [[ "${lines[3]}" == *"ERROR:  42501: pgtether: rule 'masked' masks public.customers.email, and a value computed or copied from it would leave unmasked"* ]]
  [[ "$output" != *secret-note* ]]
}

@test "app.lower(text[]) of the workload's own, called as lower(note), does not get the masked array" {
  as_app "create function app.lower(a text[]) returns text language sql as \$\$ select set_config('pgt.seen', a::text, false) \$\$"
  run masked fn -c "select id from customers where lower(note) is not null" \
    -c "select coalesce(current_setting('pgt.seen', true), 'unset')"
  echo "$output"
  [[ "$output" != *secret-note* ]]
  [[ "$output" == *"ERROR:  42501: pgtether: rule 'masked' masks public.customers.note, and lower() may resolve to the database's own function outside pg_catalog, which would get it unmasked"* ]]
  [ "${lines[-1]}" = unset ]
  # the name counts wherever it is: its errors are withheld too (its code may say a value)
  run masked fnerr -c "select lower(array[current_setting('x.nope')])"
  echo "$output"
  [[ "$output" == *"ERROR:  42704: pgtether: the server's error 42704 is withheld"* ]]
  # an unmasked column still goes to lower()
  run masked fnok -c "select lower(name) from customers"
  [ "$output" = alice ]
}

@test "an operator app.= on text[] of the workload's own does not get the masked array, unqualified or as OPERATOR(app.=)" {
  as_app "create function app.arr_eq(a text[], b text[]) returns boolean language sql as \$\$ select set_config('pgt.op', a::text, false) is not null \$\$;
          create operator app.= (leftarg = text[], rightarg = text[], function = app.arr_eq)"
  run masked op -c "select id from customers where note = '{x}'" \
    -c "select coalesce(current_setting('pgt.op', true), 'unset')" \
    -c "select id from customers where note operator(app.=) '{x}'" \
    -c "select id from customers where '{x}' in (select note from customers)" \
    -c "select coalesce(current_setting('pgt.op', true), 'unset')"
  echo "$output"
  [[ "$output" != *secret-note* ]]
  [[ "$output" == *"ERROR:  42501: pgtether: rule 'masked' masks public.customers.note, and operator = may resolve to the database's own operator outside pg_catalog, which would get it unmasked"* ]]
  [[ "$output" == *"ERROR:  42501: pgtether: rule 'masked' masks public.customers.note, and OPERATOR(app.=) would carry it out of the statement unmasked"* ]]
  [ "$(grep -c "ERROR:  42501" <<<"$output")" -eq 3 ]
  [ "$(grep -c '^unset$' <<<"$output")" -eq 2 ]
}

@test "SET search_path = app, pg_catalog, public: app.upper(text) wins even an exact match, and does not get the masked email" {
  as_app "create function app.upper(a text) returns text language sql as \$\$ select set_config('pgt.up', a, false) \$\$"
  run masked path -c "set search_path = app, pg_catalog, public" \
    -c "select id from customers where upper(email) is not null" \
    -c "select id from customers where pg_catalog.upper(email) is not null" \
    -c "select coalesce(current_setting('pgt.up', true), 'unset')"
  echo "$output"
  [[ "$output" != *alice@* ]]
  [[ "$output" == *"ERROR:  42501: pgtether: rule 'masked' masks public.customers.email, and upper() may resolve to the database's own function outside pg_catalog"* ]]
  # pg_catalog.upper is PostgreSQL's whatever the path says
  [ "${lines[-2]}" = 42 ]
  [ "${lines[-1]}" = unset ]
}
