#!/usr/bin/env bats
# Functions that run SQL given as text (query_to_xml, ts_stat, ts_rewrite, ...) or read
# a relation an argument names (table_to_xml(regclass)): their tables are nowhere in
# the statement. They are class "dynamic", table rules and masks take them as
# touching every table, and the list is kept tied to PostgreSQL's own catalog.

load helpers

# The SQL-callable C functions of PostgreSQL 15 (src/backend/utils/adt/xml.c,
# tsvector_op.c, tsquery_rewrite.c) and of contrib (tablefunc, xml2) that hand a
# caller's query string or relation to SPI, and pageinspect's that read a relation's
# pages by name, by pg_proc.prosrc.
C_SYMBOLS="query_to_xml query_to_xmlschema query_to_xml_and_xmlschema cursor_to_xml cursor_to_xmlschema
  table_to_xml table_to_xmlschema table_to_xml_and_xmlschema schema_to_xml schema_to_xmlschema
  schema_to_xml_and_xmlschema database_to_xml database_to_xmlschema database_to_xml_and_xmlschema
  ts_stat1 ts_stat2 tsquery_rewrite_query crosstab crosstab_hash connectby_text connectby_text_serial xpath_table
  get_raw_page_1_9 get_raw_page_fork_1_9 bt_page_items_1_9"

setup_file() {
  export PGT_OWN_POLICY=1
  pgt_setup_world
  pgt_psql <<'SQL'
create table items (id int, v text);
insert into items values (1, 'a');
create table secrets (id int, email text, doc tsvector);
insert into secrets values (1, 'alice@example.com', to_tsvector('simple', 'alicesecret'));
create table aliases (t tsquery, s tsquery);
grant all on items, secrets, aliases to app;
grant create on schema public to app;
SQL
  # the contrib modules whose functions run query text or read pages, where this
  # PostgreSQL has them
  for ext in tablefunc xml2 pageinspect; do
    [ -f "/usr/share/postgresql/15/extension/$ext.control" ] && pgt_psql -c "create extension if not exists $ext" >/dev/null
  done
  mkdir -p "$PGT_TMP/policy.d"
  cat >"$PGT_TMP/policy.d/10-dyn.json" <<JSON
{ "rules": [
  { "name": "reader", "match": { "cgroup": "$PGT_CG/reader/**" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "transaction", "session"] } },
  { "name": "limited", "match": { "cgroup": "$PGT_CG/limited/**" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "dynamic", "transaction", "session"], "tables": { "allow": ["public.items"] } } },
  { "name": "denylist", "match": { "cgroup": "$PGT_CG/denylist/**" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "dynamic", "transaction", "session"], "tables": { "deny": ["public.secrets"] } } },
  { "name": "masked", "match": { "cgroup": "$PGT_CG/masked/**" }, "token": { "source": "none" }, "upstream": "main",
    "mask": [ { "column": "public.secrets.email", "strategy": "email" } ] } ] }
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
  pgt_in "$PGT_CG/$who/x" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq "${args[@]}" 2>&1
}

@test "every pg_proc entry of a C function that runs a query string is classified dynamic (tied to the live catalog)" {
  local in list n=0 fails=0 sym found
  in=$(printf "'%s'," $C_SYMBOLS)
  # each C symbol is still in the catalog under some name: a renamed symbol would
  # otherwise make this test check nothing for it
  for sym in ts_stat1 ts_stat2 tsquery_rewrite_query query_to_xml cursor_to_xml table_to_xml schema_to_xml \
             database_to_xml query_to_xmlschema table_to_xml_and_xmlschema database_to_xml_and_xmlschema; do
    found=$(pgt_psql -c "select count(*) from pg_proc where prosrc = '$sym' and prolang in (12, 13)")
    [ "$found" -ge 1 ] || { echo "no pg_proc row for C function $sym"; return 1; }
  done
  list=$(pgt_psql -F ' ' -c "select n.nspname, p.proname, p.pronargs from pg_proc p
      join pg_namespace n on n.oid = p.pronamespace
      where p.prolang in (12, 13) and p.prosrc in (${in%,}) order by 1, 2, 3")
  echo "$list"
  while read -r nsp name nargs; do
    local args="" i call
    for ((i = 0; i < nargs; i++)); do args+="${args:+, }NULL"; done
    for call in "select $nsp.$name($args)" "select * from \"$name\"($args)"; do
      run "$PGTETHER" -c "$PGT_CONF" explain --cgroup "$PGT_CG/reader/x" "$call"
      if [[ "$output" != *"classes: read, dynamic"* || "$output" != *"verdict: deny: statement class dynamic is not allowed by rule 'reader'"* ]]; then
        echo "not classified dynamic: $call"; echo "$output"; fails=$((fails + 1))
      fi
    done
    n=$((n + 1))
  done <<<"$list"
  echo "$n functions checked, $fails calls not dynamic"
  [ "$n" -ge 17 ]   # the 17 of src/backend, and contrib's where installed
  [ "$fails" -eq 0 ]
}

@test "a rule with a table allow list denies SQL given as text, which may read any table" {
  run as limited "select v from items" \
    "select query_to_xml('select email from secrets', true, false, '')" \
    "select table_to_xml('secrets'::regclass, true, false, '')" \
    "select * from ts_stat('select doc from secrets')" \
    "select ts_rewrite('x'::tsquery, 'select t, s from aliases')" \
    "select pg_catalog.schema_to_xml('public', true, false, '')" \
    "do \$\$ begin perform 1; end \$\$" \
    "select 'still usable'"
  echo "$output"
  [ "${lines[0]}" = "a" ]
  [ "$(printf '%s\n' "$output" | grep -c "ERROR:  pgtether: the statement runs SQL its text does not show .*, so it may read any table, and rule 'limited' limits tables")" -eq 6 ]
  [ "${lines[-1]}" = "still usable" ]
  [[ "$output" != *alice* ]]
}

@test "a rule with a table deny list denies SQL given as text: it may read the denied table" {
  run as denylist "select query_to_xml('select email from secrets', true, false, '')" \
    "select * from ts_stat('select doc from public.secrets')" \
    "select database_to_xml(true, false, '')" \
    "select v from items"
  echo "$output"
  [ "$(printf '%s\n' "$output" | grep -c "rule 'denylist' limits tables")" -eq 3 ]
  [ "${lines[-1]}" = "a" ]
  [[ "$output" != *alice* ]]
}

@test "a masked session denies every function that runs a query, and operators or aggregates bound to one" {
  run as masked "select ts_rewrite('x'::tsquery, 'select ''x''::tsquery, to_tsquery(''simple'', replace(replace(email, ''@'', ''_''), ''.'', ''_'')) from secrets')" \
    "select schema_to_xml_and_xmlschema('public', true, false, '')" \
    "create operator public.<~~> (leftarg = tsquery, rightarg = text, function = ts_rewrite)" \
    "create aggregate public.rw(text) (sfunc = ts_rewrite, stype = tsquery)" \
    "select email from secrets"
  echo "$output"
  [ "$(printf '%s\n' "$output" | grep -c "ERROR:  pgtether: rule 'masked' masks public.secrets.email, and a DO block, procedure or function that runs queries of its own could read it unmasked")" -eq 4 ]
  [ "${lines[-1]}" = "***@example.com" ]
  [[ "$output" != *alice* ]]
  [ "$(pgt_psql -c "select (select count(*) from pg_operator where oprname = '<~~>') + (select count(*) from pg_proc where proname = 'rw')")" = 0 ]
}
