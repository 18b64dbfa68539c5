#!/usr/bin/env bats
# pg_dump, pg_dump | psql and pg_dump -Fc + pg_restore -j 2 through pgtether, under the
# statement classes of policies/examples/40-backup-restore.json, with the database
# listening only at the upstream's address (as in 160-drivers). Every table's
# checksum and the schema of each restored database, read straight from the
# database, must be the source's. Under a masked rule, no dump carries a masked value.

load helpers

EXAMPLE="$PGT_ROOT/policies/examples/40-backup-restore.json"

setup_file() {
  export PG_LISTEN=127.0.0.3
  export PGT_OWN_POLICY=1
  pgt_setup_world
  export PGT_MAIN_ADDRESS="127.0.0.3:$PG_PORT" PGT_MAIN_ALIASES="[\"127.0.0.2:$PG_PORT\"]"
  pgt_psql -v ON_ERROR_STOP=1 <<'SQL'
create role reporter nologin;
create database dumpsrc owner app;
create database dumpplain owner app;
create database dumpcustom owner app;
create database dumpmasked owner app;
\c dumpsrc
set role app;
create schema shop;
create schema hr;
create sequence shop.invoice_no start 1000 increment 7;
create table shop.customers (id serial primary key, name text not null, email text, photo bytea, prefs jsonb,
                             meta json, tags text[], scores int[], created timestamptz default '2026-01-01 00:00:00+00');
create table shop.orders (id bigint generated always as identity primary key,
                          customer_id int not null references shop.customers(id) on delete cascade,
                          invoice int default nextval('shop.invoice_no'), total numeric(12,2), note text);
create index orders_customer_idx on shop.orders (customer_id, total desc);
create table hr.staff (id int primary key, name text, salary numeric, boss int references hr.staff(id), "Mixed Case" text);
create table public.empty_one (a int, b text);
insert into shop.customers (name, email, photo, prefs, meta, tags, scores)
select 'cust ' || g,
       case when g % 5 = 0 then null else 'c' || g || '@example.com' end,
       case when g % 3 = 0 then null else decode(md5(g::text) || '00ff5c0a', 'hex') end,
       case when g % 4 = 0 then null else jsonb_build_object('n', g, 'vip', g % 2 = 0, 'q', 'it''s "x"\') end,
       case when g % 6 = 0 then null else json_build_object('k', g, 'tab', E'a\tb\nc') end,
       case when g % 7 = 0 then null else array['t' || g, null, 'x,y', E'back\\slash'] end,
       array[g, g * 2, null]
from generate_series(1, 500) g;
insert into shop.orders (customer_id, total, note)
select 1 + g % 500, (g * 3.17)::numeric(12,2), case when g % 9 = 0 then null else E'line1\nline2 ' || g end
from generate_series(1, 2000) g;
insert into hr.staff values (1, 'Boss', 100000, null, 'MC'), (2, 'Ann', 50000.5, 1, null), (3, 'Bo', 77777, 2, E'\\N');
create view shop.big_orders as
  select o.id, c.name, o.total from shop.orders o join shop.customers c on c.id = o.customer_id where o.total > 3000;
create function shop.order_count(cid int) returns bigint language sql stable
  as $$ select count(*) from shop.orders where customer_id = cid $$;
create function hr.fill() returns trigger language plpgsql as $$ begin new.name := coalesce(new.name, '?'); return new; end $$;
create trigger staff_fill before insert on hr.staff for each row execute function hr.fill();
comment on table shop.customers is 'people who buy; it''s commented';
comment on column shop.orders.note is 'free text';
grant usage on schema shop to reporter;
grant select on shop.customers, shop.big_orders to reporter;
grant select (id, name) on hr.staff to reporter;
select setval('shop.invoice_no', 5555, true);
SQL
  head -c 32 /dev/urandom >"$PGT_TMP/mask.key"
  chmod 0600 "$PGT_TMP/mask.key"
  # the example's rules, matched on this file's cgroups; a masked backup; a rule
  # without statement checks
  mkdir -p "$PGT_TMP/policy.d"
  jq --arg cg "$PGT_CG" '{ rules: [
      (.rules[0] | .name = "backup" | .match = { cgroup: ($cg + "/backup/**") } | .role = "app"),
      (.rules[1] | .name = "restore" | .match = { cgroup: ($cg + "/restore/**") } | .role = "app"),
      (.rules[0] | .name = "backup-masked" | .match = { cgroup: ($cg + "/masked/**") } | .role = "app"
        | .mask = [ { column: "shop.customers.email", strategy: "email" }, { column: "hr.staff.salary", strategy: "null" } ]),
      { name: "open", match: { cgroup: ($cg + "/open/**") }, token: { source: "none" }, upstream: "main" } ] }' \
    "$EXAMPLE" >"$PGT_TMP/policy.d/10-dump.json"
  PGT_EXTRA_CONFIG="\"mask_key_file\": \"$PGT_TMP/mask.key\"" pgt_write_config closed
  pgt_start_daemon
  # through pgtether no password is asked for
  unset PGPASSWORD
}

teardown_file() {
  pgt_teardown_world
}

# The database's own view, straight: each table's rows as one checksum, and each
# sequence's state.
checksums() {
  pgt_psql -d "$1" <<'SQL'
select format('select %L || '' '' || coalesce(md5(string_agg(t::text, '','' order by t::text)), ''empty'') || '' '' || count(*) from %I.%I t',
              n.nspname || '.' || c.relname, n.nspname, c.relname)
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema') order by 1 \gexec
select format('select %L || '' '' || last_value || '' '' || is_called from %I.%I', n.nspname || '.' || c.relname, n.nspname, c.relname)
from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind = 'S' order by 1 \gexec
SQL
}

# The schema, straight (pg_dump -s as the administrator), without psql's random
# \restrict key.
schema_of() {
  pg_dump -s -h "$PGT_TMP/pg" -p "$PG_PORT" -U postgres "$1" | grep -v '^\\\(un\)\?restrict '
}

dump_in() { local cg=$1; shift; timeout 120 "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/$cg" -- "$@"; }

@test "pg_dump through pgtether under the backup rule writes what it writes straight" {
  run dump_in backup/same pg_dump -h 127.0.0.2 -p "$PG_PORT" -U app -f "$PGT_TMP/through.sql" dumpsrc
  echo "$output"
  [ "$status" -eq 0 ]
  PGPASSWORD=$PG_APP_PASSWORD pg_dump -h 127.0.0.3 -p "$PG_PORT" -U app -f "$PGT_TMP/straight.sql" dumpsrc
  diff <(grep -v '^\\\(un\)\?restrict ' "$PGT_TMP/straight.sql") <(grep -v '^\\\(un\)\?restrict ' "$PGT_TMP/through.sql")
  grep -q '^COPY shop.customers ' "$PGT_TMP/through.sql"
  [ "$(pgt_log_count stmt.denied "cgroup=$PGT_CG/backup/same ")" -eq 0 ]
}

@test "pg_dump | psql through pgtether: every table and the schema are the source's" {
  run bash -c 'set -o pipefail
    timeout 120 "$0" -c "$1" run --cgroup "$2/backup/plain" -- pg_dump -h 127.0.0.2 -p "$3" -U app dumpsrc |
    timeout 120 "$0" -c "$1" run --cgroup "$2/restore/plain" -- psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.2 -p "$3" -U app -d dumpplain -o /dev/null' \
    "$PGTETHER" "$PGT_CONF" "$PGT_CG" "$PG_PORT"
  echo "$output"
  [ "$status" -eq 0 ]
  checksums dumpsrc >"$PGT_TMP/src.sums"
  checksums dumpplain >"$PGT_TMP/plain.sums"
  cat "$PGT_TMP/src.sums"
  [ "$(wc -l <"$PGT_TMP/src.sums")" -eq 7 ]
  grep -q '^shop.orders [0-9a-f]\{32\} 2000$' "$PGT_TMP/src.sums"
  diff "$PGT_TMP/src.sums" "$PGT_TMP/plain.sums"
  diff <(schema_of dumpsrc) <(schema_of dumpplain)
  [ "$(pgt_log_count stmt.denied "cgroup=$PGT_CG/")" -eq 0 ]
}

@test "pg_dump -Fc and pg_restore -j 2 through pgtether: every table and the schema are the source's" {
  run dump_in backup/custom pg_dump -Fc -h 127.0.0.2 -p "$PG_PORT" -U app -f "$PGT_TMP/src.dump" dumpsrc
  echo "$output"
  [ "$status" -eq 0 ]
  run dump_in restore/custom pg_restore -j 2 -h 127.0.0.2 -p "$PG_PORT" -U app -d dumpcustom "$PGT_TMP/src.dump"
  echo "$output"
  [ "$status" -eq 0 ]
  [ -z "$output" ]
  diff <(checksums dumpsrc) <(checksums dumpcustom)
  diff <(schema_of dumpsrc) <(schema_of dumpcustom)
  # one connection for the schema, and the two workers'
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/restore/custom ")" -ge 3 ]
  [ "$(pgt_log_count stmt.denied "cgroup=$PGT_CG/")" -eq 0 ]
  pgt_assert_clean_log
}

@test "under a masked rule COPY of a masked table is refused, and pg_dump --inserts dumps masked values" {
  run dump_in masked/copy pg_dump -h 127.0.0.2 -p "$PG_PORT" -U app -f "$PGT_TMP/masked-copy.sql" dumpsrc
  echo "$output"
  [ "$status" -ne 0 ]
  [[ "$output" == *"ERROR:  pgtether: rule 'backup-masked' masks "*", and COPY would move it out unmasked"* ]]
  # nothing of a masked column left before the refusal
  ! grep -E 'c[0-9]+@example\.com|100000|50000\.5|77777' "$PGT_TMP/masked-copy.sql"
  run dump_in masked/inserts pg_dump --inserts -h 127.0.0.2 -p "$PG_PORT" -U app -f "$PGT_TMP/masked.sql" dumpsrc
  echo "$output"
  [ "$status" -eq 0 ]
  ! grep -E 'c[0-9]+@example\.com|100000|50000\.5|77777' "$PGT_TMP/masked.sql"
  [ "$(grep -c "^INSERT INTO shop.customers VALUES ([0-9]*, 'cust [0-9]*', '\*\*\*@example.com'," "$PGT_TMP/masked.sql")" -eq 400 ]
  grep -qx "INSERT INTO hr.staff VALUES (2, 'Ann', NULL, 1, NULL);" "$PGT_TMP/masked.sql"
  # it restores, and what is not masked is the source's
  run dump_in restore/masked psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.2 -p "$PG_PORT" -U app -d dumpmasked -o /dev/null -f "$PGT_TMP/masked.sql"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(checksums dumpmasked | grep '^shop.orders ')" = "$(checksums dumpsrc | grep '^shop.orders ')" ]
  [ "$(pgt_psql -d dumpmasked -c "select count(*) from shop.customers where email like 'c%@example.com'")" -eq 0 ]
  [ "$(pgt_psql -d dumpmasked -c "select count(*) from hr.staff where salary is not null")" -eq 0 ]
}

# pg_dump's set_config(name, ...) FROM pg_settings WHERE name = '...' sets that
# setting only when pg_settings and = are pg_catalog's; pgtether asks the server.
@test "set_config(name, ...) FROM pg_settings passes only where pg_settings and = are pg_catalog's" {
  row="SELECT set_config(name, 'view', false) FROM pg_settings WHERE name = 'restrict_nonsystem_relation_kind'"
  run dump_in restore/row psql -X -At -h 127.0.0.2 -p "$PG_PORT" -U app -d dumpplain -c "$row" -c "show restrict_nonsystem_relation_kind"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = "$(printf 'view\nview')" ]
  # a temporary relation of that name would come first (one named so at its
  # creation is refused as building on pg_settings; a rename is not)
  run dump_in restore/row-temp psql -X -At -h 127.0.0.2 -p "$PG_PORT" -U app -d dumpplain \
    -c "create temp view s as select 'pgtether.identity'::text as name" -c "alter view s rename to pg_settings" -c "$row"
  echo "$output"
  [ "$status" -ne 0 ]
  [[ "$output" == *"would not read pg_catalog's pg_settings with pg_catalog's = (schema pg_temp comes first"* ]]
  # so would a schema listed ahead of pg_catalog, for relations and operators
  run dump_in restore/row-path psql -X -At -h 127.0.0.2 -p "$PG_PORT" -U app -d dumpplain \
    -c "set search_path = public, pg_catalog" -c "$row"
  echo "$output"
  [ "$status" -ne 0 ]
  [[ "$output" == *"(schema public comes first on this session's search_path)"* ]]
  run dump_in restore/row-same-query psql -X -At -h 127.0.0.2 -p "$PG_PORT" -U app -d dumpplain \
    -c "set search_path = public, pg_catalog; $row"
  [ "$status" -ne 0 ]
  [[ "$output" == *"(schema public comes first on this session's search_path)"* ]]
  # the setting it names is checked as if it were set by name
  run dump_in restore/row-guard psql -X -At -h 127.0.0.2 -p "$PG_PORT" -U app -d dumpplain \
    -c "SELECT set_config(name, 'x', false) FROM pg_settings WHERE name = 'pgtether.identity'"
  [ "$status" -ne 0 ]
  [[ "$output" == *'no statement may set "pgtether.identity"'* ]]
  run dump_in backup/row-ro psql -X -At -v ON_ERROR_STOP=1 -h 127.0.0.2 -p "$PG_PORT" -U app -d dumpsrc \
    -c "SELECT set_config(name, 'off', false) FROM pg_settings WHERE name = 'default_transaction_read_only'" \
    -c "show default_transaction_read_only"
  echo "$output"
  [ "$status" -ne 0 ]
  [[ "$output" == *"rule 'backup' is read-only and its session is run read-only"* ]]
  [[ "$output" != *off* ]]
  # a rule without statement checks asks the server too, and pg_dump works under it
  run dump_in open/row psql -X -At -h 127.0.0.2 -p "$PG_PORT" -U app -d dumpplain \
    -c "create temp table s (name text)" -c "alter table s rename to pg_settings" -c "$row"
  [ "$status" -ne 0 ]
  [[ "$output" == *"schema pg_temp comes first"* ]]
  run dump_in open/dump pg_dump -s -h 127.0.0.2 -p "$PG_PORT" -U app -f /dev/null dumpsrc
  echo "$output"
  [ "$status" -eq 0 ]
  pgt_assert_clean_log
}
