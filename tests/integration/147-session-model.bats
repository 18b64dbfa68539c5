#!/usr/bin/env bats
# The session model: pgtether decides on the text the server will run, in the
# session's real state. A backslash reads two ways (standard_conforming_strings),
# client-only encodings can swallow an ASCII byte, and pgtether.* settings carry the
# identity pgtether hands the database: no statement may set them, whatever the rule.

load helpers

setup_file() {
  export PGT_OWN_POLICY=1
  pgt_setup_world
  pgt_psql <<'SQL'
create table customers (id int, email text);
insert into customers values (1, 'alice@example.com');
create table t (a int);
grant all on customers, t to app;
grant create on schema public to app;
-- what an admin may have created: functions that change a setting out of sight
create function scs_off() returns text language sql as $$ select set_config('standard_conforming_strings', 'off', false) $$;
create function to_sjis() returns text language sql as $$ select set_config('client_encoding', 'SJIS', false) $$;
SQL
  mkdir -p "$PGT_TMP/policy.d"
  cat >"$PGT_TMP/policy.d/10-model.json" <<JSON
{ "rules": [
  { "name": "ro", "match": { "cgroup": "$PGT_CG/ro" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "session", "transaction"] },
    "mask": [ { "column": "public.customers.email", "strategy": "email" } ] },
  { "name": "rofn", "match": { "cgroup": "$PGT_CG/rofn" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "session", "dangerous_function"] },
    "mask": [ { "column": "public.customers.email", "strategy": "email" } ] },
  { "name": "wide", "match": { "cgroup": "$PGT_CG/wide" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "write", "ddl", "session", "transaction", "dynamic", "dangerous_function",
                              "alter_role", "utility"] } },
  { "name": "free", "match": { "cgroup": "$PGT_CG/free" }, "token": { "source": "none" }, "upstream": "main" }
] }
JSON
  pgt_write_config closed
  pgt_start_daemon
  # the issue's example: read one way, a string; the other, a DROP and an unmasked email
  export ATTACK="SELECT 'a\\'' ; DROP TABLE t; SELECT upper(email) FROM customers --'"
  # in UTF8 one E'' string; in SJIS the backslash is half of a character
  export SJIS_ATTACK=$'SELECT E\'\xc3\x84\\\'; DROP TABLE t; SELECT upper(email) FROM customers --\''
}

teardown_file() {
  pgt_psql -c "alter role app reset all" >/dev/null 2>&1 || true
  pgt_teardown_world
}

as() {
  local who=$1; shift
  local args=()
  for q in "$@"; do args+=(-c "$q"); done
  pgt_in "$PGT_CG/$who" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -v VERBOSITY=verbose "${args[@]}" 2>&1
}

raw() {
  local who=$1; shift
  pgt_in "$PGT_CG/$who" /usr/bin/python3 "$PGT_ROOT/tests/integration/pgraw.py" 127.0.0.1 "$PG_PORT" "$@" 2>&1
}

t_exists() { [ "$(pgt_psql -c "select count(*) from pg_tables where tablename = 't'")" = 1 ]; }

no_email() { [[ "$1" != *"ALICE@EXAMPLE.COM"* && "$1" != *"alice@example.com"* ]]; }

@test "standard_conforming_strings = off: the issue's example is denied, nothing is dropped, no email leaves" {
  run as ro "SET standard_conforming_strings = off" "$ATTACK" "select 'alive'"
  echo "$output"
  [[ "$output" == *"ERROR:  42501: pgtether:"* ]]
  [[ "$output" == *"alive"* ]]
  no_email "$output"
  t_exists
  # the session's recording says when the server changed how it reads strings
  grep -h '"type":"setting"' "$PGT_TMP"/sessions/*/*/*/*.jsonl | grep '"name":"standard_conforming_strings"' |
    grep -q '"value":"off"'
}

@test "standard_conforming_strings = off pipelined right before the statement: denied all the same" {
  run raw ro pipeline "SET standard_conforming_strings = off" "$ATTACK" "select 'alive'"
  echo "$output"
  [[ "$output" == *"E ERROR 42501 pgtether:"* ]]
  [[ "$output" == *"D alive"* ]]
  no_email "$output"
  t_exists
}

@test "standard_conforming_strings = off by set_config, by a function, by the role's default: denied" {
  run as rofn "select set_config('standard_conforming_strings', 'off', false)" "$ATTACK"
  echo "$output"
  [[ "$output" == *"ERROR:  42501: pgtether:"* ]]
  no_email "$output"
  t_exists
  run raw ro pipeline "select scs_off()" "$ATTACK"
  echo "$output"
  [[ "$output" == *"E ERROR 42501 pgtether:"* ]]
  no_email "$output"
  t_exists
  pgt_psql -c "alter role app set standard_conforming_strings = off"
  run as ro "select current_setting('standard_conforming_strings')" "$ATTACK"
  pgt_psql -c "alter role app reset standard_conforming_strings"
  echo "$output"
  [ "${lines[0]}" = off ]
  [[ "$output" == *"ERROR:  42501: pgtether:"* ]]
  no_email "$output"
  t_exists
  # a backslash that reads the same either way still works
  run as ro "SET standard_conforming_strings = off" "select E'a\\\\b'"
  echo "$output"
  [ "$output" = 'a\b' ]
}

@test "client_encoding: SET to a client-only encoding is denied; a hidden change ends the session; SJIS bytes are denied" {
  run as ro "SET client_encoding = 'SJIS'" "select current_setting('client_encoding')"
  echo "$output"
  [[ "$output" == *"ERROR:  42501: pgtether: client_encoding can only be UTF8"* ]]
  [ "${lines[-1]}" = UTF8 ]
  run as wide "SET NAMES 'BIG5'"
  [[ "$output" == *"ERROR:  42501: pgtether: client_encoding can only be UTF8"* ]]
  # a function the rule cannot see into switches to SJIS, and the next statement
  # is already on its way: pgtether denies it, then ends the session
  run raw ro pipeline "select to_sjis()" "$SJIS_ATTACK"
  echo "$output"
  [[ "$output" == *"FATAL 0A000 pgtether: the database now reads this session in client_encoding \"SJIS\""* ]]
  no_email "$output"
  t_exists
  # the same bytes on their own: they read differently in SJIS, so they are denied
  run as ro "$SJIS_ATTACK"
  echo "$output"
  [[ "$output" == *"read differently in client_encoding SJIS"* ]]
  t_exists
}

@test "client_encoding: a role's default SJIS does not apply; the session is UTF8" {
  pgt_psql -c "alter role app set client_encoding = 'SJIS'"
  run raw free pipeline "show client_encoding" "$SJIS_ATTACK"
  pgt_psql -c "alter role app reset client_encoding"
  echo "$output"
  [[ "$output" == *"D UTF8"* ]]
  t_exists
}

@test "pgtether.identity cannot be set, reset or shadowed in any spelling, whatever the rule allows" {
  local stmts=(
    "SET pgtether.identity = 'forged'"
    "SET SESSION \"PGTETHER\".\"identity\" = 'forged'"
    "SET \"pgtether.identity\" TO 'forged'"
    "SET U&\"\\0070gtether\".identity = 'forged'"
    "RESET pgtether.identity"
    "SET pgtether.other = 'x'"
    "SELECT set_config('pgtether.identity', 'forged', false)"
    "SELECT pg_catalog.set_config('pgtether.' || 'identity', 'forged', false)"
    "UPDATE pg_settings SET setting = 'forged' WHERE name = 'pgtether.identity'"
    "CREATE VIEW s AS SELECT * FROM pg_settings"
    "CREATE FUNCTION f() RETURNS text LANGUAGE sql SET pgtether.identity = 'forged' AS \$\$ SELECT current_setting('pgtether.identity') \$\$"
    "CREATE FUNCTION g() RETURNS text LANGUAGE plpgsql AS \$\$ BEGIN RETURN set_config('pgtether.identity', 'forged', false); END \$\$"
    "DO \$\$ BEGIN PERFORM set_config('pgtether.identity', 'forged', false); END \$\$"
    "DO \$\$ BEGIN EXECUTE 'SET pgtether.' || 'identity = forged'; END \$\$"
    "ALTER ROLE app SET pgtether.identity = 'forged'"
    "SELECT query_to_xml('select set_config(''pgtether.identity'', ''forged'', false)', true, true, '')"
    "$(printf "SELECT 'a\\\\'' ; SET pgtether.identity = 'forged' --'")"
  )
  for q in "${stmts[@]}"; do
    for who in wide free; do
      run as "$who" "SET standard_conforming_strings = off" "$q" "select current_setting('pgtether.identity')"
      echo "$who: $q"
      echo "$output"
      [[ "$output" == *"ERROR:  42501: pgtether:"*"pgtether"* ]]
      [[ "${lines[-1]}" == "cgroup=$PGT_CG/$who;"* ]]
    done
  done
  [ "$(pgt_psql -c "select count(*) from pg_proc where proname in ('f', 'g')")" = 0 ]
  [ "$(pgt_psql -c "select count(*) from pg_db_role_setting")" = 0 ]
}

@test "pgtether.identity: parameters of the extended protocol, RESET ALL and DISCARD ALL" {
  run pgt_in "$PGT_CG/wide" /usr/bin/python3 -c '
import psycopg, sys
c = psycopg.connect(host="127.0.0.1", port=int(sys.argv[1]), user="app", dbname="postgres", autocommit=True)
try:
    c.execute("select set_config(%s, %s, false)", ("pgtether.identity", "forged"))
    print("set")
except psycopg.Error as e:
    print(e.sqlstate, e)
print(c.execute("show pgtether.identity").fetchone()[0])
' "$PG_PORT"
  echo "$output"
  [[ "${lines[0]}" == "42501 pgtether: set_config with a computed setting name is denied"* ]]
  [[ "${lines[1]}" == "cgroup=$PGT_CG/wide;"* ]]
  # these restore the value the session started with: allowed
  run as wide "RESET ALL" "DISCARD ALL" "select current_setting('pgtether.identity')"
  echo "$output"
  [[ "${lines[-1]}" == "cgroup=$PGT_CG/wide;"* ]]
  # reading it, and code that only reads it, is fine
  run as wide "CREATE FUNCTION who() RETURNS text LANGUAGE plpgsql AS \$\$ DECLARE v text; BEGIN v := current_setting('pgtether.identity'); RETURN v; END \$\$" "select who()"
  echo "$output"
  pgt_psql -c "drop function who()"
  [[ "${lines[-1]}" == "cgroup=$PGT_CG/wide;"* ]]
}
