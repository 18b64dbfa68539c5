#!/usr/bin/env bats
# Startup settings (PGOPTIONS, libpq's options=, startup parameters as pgx and JDBC
# send them) through pgtether: the safe ones reach the server exactly as they would
# straight; the others are refused with a FATAL naming the setting and why; and what
# they set is what pgtether's session model reads (search_path, standard_conforming_strings).

load helpers

setup_file() {
  export PGT_OWN_POLICY=1
  pgt_setup_world
  pgt_psql <<'SQL'
create schema app authorization app;
create table app.items (v text);
insert into app.items values ('app-item');
grant select on app.items to app;
create schema "my schema" authorization app;
create schema secret;
create table secret.items (v text);
insert into secret.items values ('secret-item');
grant usage on schema secret to app;
grant select on secret.items to app;
create table public.customers (id int, email text);
insert into public.customers values (1, 'alice@example.com');
create table public.t (a int);
grant all on public.customers, public.t to app;
-- named like a built-in, found before it on a search_path that lists pg_catalog later
create function app.lower(t text) returns text language sql as $$ select pg_catalog.set_config('pgt.seen', t, false) $$;
SQL
  mkdir -p "$PGT_TMP/policy.d"
  cat >"$PGT_TMP/policy.d/10-opts.json" <<JSON
{ "rules": [
  { "name": "tables", "match": { "cgroup": "$PGT_CG/tables" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "session", "transaction"], "tables": { "allow": ["app.*"] } } },
  { "name": "ro", "match": { "cgroup": "$PGT_CG/ro" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "session", "transaction"] },
    "mask": [ { "column": "public.customers.email", "strategy": "email" } ] },
  { "name": "free", "match": { "cgroup": "$PGT_CG/free" }, "token": { "source": "none" }, "upstream": "main" }
] }
JSON
  pgt_write_config closed
  pgt_start_daemon
  export SHOWS="select current_setting('search_path'), current_setting('statement_timeout'), current_setting('lock_timeout'), current_setting('work_mem'), current_setting('client_min_messages'), current_setting('idle_in_transaction_session_timeout'), current_setting('DateStyle')"
}

teardown_file() {
  pgt_teardown_world
}

# through WHO OPTIONS SQL...: psql in that cgroup with PGOPTIONS=OPTIONS
through() {
  local who=$1 opts=$2; shift 2
  local args=()
  for q in "$@"; do args+=(-c "$q"); done
  pgt_in "$PGT_CG/$who" env PGOPTIONS="$opts" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq "${args[@]}" 2>&1
}

# straight OPTIONS SQL...: the same psql, outside any attached cgroup, to the database
straight() {
  local opts=$1; shift
  local args=()
  for q in "$@"; do args+=(-c "$q"); done
  env PGOPTIONS="$opts" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq "${args[@]}" 2>&1
}

raw() {
  local who=$1; shift
  pgt_in "$PGT_CG/$who" /usr/bin/python3 "$PGT_ROOT/tests/integration/pgraw.py" 127.0.0.1 "$PG_PORT" "$@" 2>&1
}

@test "PGOPTIONS='-c search_path=app -c statement_timeout=4321': both settings through pgtether, as straight" {
  run through free "-c search_path=app -c statement_timeout=4321" "show search_path" "show statement_timeout" "select v from items"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "app" ]
  [ "${lines[1]}" = "4321ms" ]
  [ "${lines[2]}" = "app-item" ]
  [ "$output" = "$(straight "-c search_path=app -c statement_timeout=4321" "show search_path" "show statement_timeout" "select v from items")" ]
  # the timeout is the server's: a longer statement is cancelled by it
  run through free "-c statement_timeout=200" "select pg_sleep(3)"
  echo "$output"
  [[ "$output" == *"canceling statement due to statement timeout"* ]]
}

@test "every spelling of options reads as the server reads it: -c, -cX, --x-y, escapes, whitespace" {
  local forms=(
    "-c search_path=app -c lock_timeout=5s"
    "-csearch_path=app -clock_timeout=5s"
    "--search-path=app --lock-timeout=5s --work-mem=8MB"
    $'\t-c search_path=\\"my\\ schema\\",app \n -c client_min_messages=warning  '
    "-c search_path=app\\"
    "-c search_path=a\\\\b -c work_mem=12MB"
    "-c idle_in_transaction_session_timeout=1min -c DateStyle=SQL,DMY"
    "-c search_path=first -c search_path=second"
  )
  for f in "${forms[@]}"; do
    want=$(straight "$f" "$SHOWS")
    run through free "$f" "$SHOWS"
    echo "options: [$f]"
    echo "straight: $want"
    echo "through:  $output"
    [ "$status" -eq 0 ]
    [ "$output" = "$want" ]
  done
}

@test "startup parameters as drivers send them (pgx RuntimeParams, JDBC currentSchema) pass; a parameter overrides options" {
  run raw free startup-param search_path=app
  echo "$output"
  [[ "$output" == *"Z I"* ]]
  # libpq: options first, then the parameters, the last of a name winning
  run pgt_in "$PGT_CG/free" psql -X "host=127.0.0.1 port=$PG_PORT options='-c statement_timeout=1111' application_name=mine" -Atq \
    -c "show statement_timeout" -c "show application_name"
  echo "$output"
  [ "${lines[0]}" = "1111ms" ]
  # application_name is prefixed with the identity, whatever way the client gives it
  # (cut to PostgreSQL's 63 bytes, as pgtether cuts it: the run id makes it long)
  [ "${lines[1]}" = "$(printf '%s' "pgtether:$PGT_CG/free:mine" | cut -c1-63)" ]
  # (psql always sends application_name, which wins over options; psycopg sends none)
  run pgt_in "$PGT_CG/free" /usr/bin/python3 -c "
import psycopg
with psycopg.connect(host='127.0.0.1', port=$PG_PORT, options='-c application_name=viaopts') as c:
    print(c.execute('show application_name').fetchone()[0])"
  echo "$output"
  [ "$output" = "$(printf '%s' "pgtether:$PGT_CG/free:viaopts" | cut -c1-63)" ]
}

@test "refused startup settings end the login with a FATAL naming the setting and why" {
  check() {
    local opts=$1 want=$2
    run through free "$opts" "select 'connected'"
    echo "[$opts] $output"
    [ "$status" -eq 2 ]
    [[ "$output" == *"FATAL:  pgtether: "*"$want"* ]]
    [[ "$output" != *connected* ]]
  }
  check "-c role=postgres" 'the startup setting "role" is not passed: it changes the role the session runs as'
  check "-c session_authorization=postgres" 'the startup setting "session_authorization" is not passed: it changes the role'
  check "--session-authorization=postgres" 'the startup setting "session_authorization" is not passed'
  check "-c pgtether.identity=forged" 'the startup setting "pgtether.identity" is not passed: it is set by pgtether'
  check "-c PGTETHER.rule=x" 'the startup setting "PGTETHER.rule" is not passed: it is set by pgtether'
  check "-c default_transaction_read_only=off" 'the startup setting "default_transaction_read_only" is not passed: pgtether sets it from the rule'
  check "-c session_replication_role=replica" 'the startup setting "session_replication_role" is not passed: pgtether passes at startup only settings'
  check "-c local_preload_libraries=x" 'the startup setting "local_preload_libraries" is not passed: it loads code'
  check "-c myapp.tenant=7" 'the startup setting "myapp.tenant" is not passed'
  check "-c client_encoding=SJIS" 'client_encoding "SJIS" is not supported'
  check "-e" 'the switch "-e" in "options" is not passed; only -c name=value and --name=value are'
  check "-c search_path" '"-c search_path" in "options" is not name=value'
  check "-c" '"-c" in "options" needs name=value'
  check $'-c search_path=x\xa0-crole=postgres' 'holds a byte that is not ASCII'
  # and as startup parameters of their own
  run raw free startup-param role=postgres
  [[ "$output" == *'E FATAL 08004 pgtether: the startup setting "role" is not passed: it changes the role the session runs as'* ]]
  run raw free startup-param PGTETHER.identity=forged
  [[ "$output" == *'E FATAL 08004 pgtether: the startup setting "PGTETHER.identity" is not passed: it is set by pgtether'* ]]
  run raw free startup-param session_replication_role=replica
  [[ "$output" == *'E FATAL 08004 pgtether: the startup setting "session_replication_role" is not passed'* ]]

}

@test "search_path given at startup is the one table rules resolve names on" {
  # straight, the name reaches secret.items; through pgtether it must be judged as that
  [ "$(straight "-c search_path=secret" "select v from items")" = "secret-item" ]
  run through tables "-c search_path=secret" "select v from items"
  echo "$output"
  [[ "$output" == *"pgtether: table items resolves to secret.items on this session's search_path, and table secret.items is not among the tables rule 'tables' allows"* ]]
  [[ "$output" != *secret-item* ]]
  run through tables "-c search_path=app" "select v from items"
  [ "$output" = "app-item" ]
  run raw tables startup-param search_path=secret,app
  echo "$output"
  [[ "$output" == *"Z I"* ]]
}

@test "standard_conforming_strings=off at startup: the backslash trick is denied, nothing dropped, no email leaves" {
  attack="SELECT 'a\\'' ; DROP TABLE t; SELECT upper(email) FROM customers --'"
  run through ro "-c standard_conforming_strings=off" "show standard_conforming_strings" "$attack" "select 'alive'"
  echo "$output"
  [ "${lines[0]}" = "off" ]
  [[ "$output" == *"ERROR:  pgtether: "* ]]
  [[ "$output" != *ALICE* && "$output" != *alice@* ]]
  [[ "$output" == *alive* ]]
  [ "$(pgt_psql -c "select count(*) from public.t")" = 0 ]
}

@test "the recording's header holds the startup settings the session got" {
  run through free "-c search_path=app -c lock_timeout=3s" "select 'recorded'"
  [ "$output" = recorded ]
  f=$(grep -l '"lock_timeout"' "$PGT_TMP"/sessions/*/*/*/*.jsonl | tail -1)
  [ -n "$f" ]
  head -1 "$f" | /usr/bin/python3 -c '
import json, sys
h = json.loads(sys.stdin.readline())
assert h["type"] == "header", h
s = h["settings"]
assert s["search_path"] == "app" and s["lock_timeout"] == "3s" and s["client_encoding"] == "UTF8", s'
}

@test "a startup search_path with a schema before pg_catalog is refused: app.lower() would pass for the built-in and see a masked email" {
  # straight, app.lower is called for lower()
  [ "$(straight "-c search_path=app,pg_catalog,public" "select lower('MiXed')")" = "MiXed" ]
  for opts in "-c search_path=app,pg_catalog,public" "-c search_path=\"\$user\",PG_CATALOG,public" \
              "--search-path=app,\\\"pg_catalog\\\",public" "-c search_path=pg_temp,app,pg_catalog,public"; do
    run through ro "$opts" "select id from customers where lower(email) = 'x'" "select current_setting('pgt.seen', true)"
    echo "[$opts] $output"
    [ "$status" -eq 2 ]
    [[ "$output" == *'FATAL:  pgtether: the startup setting "search_path" is not passed: it lists pg_catalog after "'* ]]
    [[ "$output" != *alice* ]]
  done
  # as its own startup parameter (JDBC's currentSchema, pgx's RuntimeParams)
  run raw ro startup-param search_path=app,pg_catalog,public
  echo "$output"
  [[ "$output" == *'E FATAL 08004 pgtether: the startup setting "search_path" is not passed: it lists pg_catalog after "app"'* ]]
  run raw ro startup-param search_path='"app'
  [[ "$output" == *'E FATAL 08004 pgtether: the startup setting "search_path" is not passed: pgtether cannot read it'* ]]
  # pg_catalog first, or after pg_temp only, is where the built-ins come from
  for opts in "-c search_path=pg_catalog,app,public" "-c search_path=pg_temp,pg_catalog,app,public"; do
    run through ro "$opts" "select lower('MiXed')" "select id from customers where lower(email) = 'x'" \
      "select coalesce(current_setting('pgt.seen', true), 'unset')"
    echo "[$opts] $output"
    [ "$status" -eq 0 ]
    [ "${lines[0]}" = "mixed" ]
    [[ "$output" != *alice* ]]
  done
}

@test "startup settings beyond what pgtether passes on are refused, not dropped" {
  local opts
  opts=$(printf -- '-c jit=off %.0s' $(seq 64))
  run raw free startup-query "show statement_timeout" "options=$opts" statement_timeout=1234
  echo "$output"
  [[ "$output" == *'E FATAL 08P01 pgtether: the startup settings are too many or too long (at most 64'* ]]
  [[ "$output" != *"D 0"* ]]
  # 63 of them and client_encoding are passed, all
  opts=$(printf -- '-c jit=off %.0s' $(seq 62))
  run raw free startup-query "show statement_timeout" "options=$opts" statement_timeout=1234
  echo "$output"
  [[ "$output" == *"D 1234ms"* ]]
}
