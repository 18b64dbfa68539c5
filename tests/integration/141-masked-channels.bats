#!/usr/bin/env bats
# Masked values leave a masked session by no channel but masked result columns: the
# errors and notices the server produces for a statement that touches a masked table
# (or runs code pgtether cannot follow: triggers, EXECUTE, functions not built in)
# reach the client as their SQLSTATE in pgtether's words, while the recording keeps
# the server's; functions that carry an argument out (pg_notify, set_config, ..., any
# function not built in) are denied a masked column wherever it appears in a
# statement; notifications arrive without their payload.

load helpers

CLIENTS="$PGT_ROOT/tests/clients"

setup_file() {
  export PGT_OWN_POLICY=1
  pgt_setup_world
  pgt_psql <<'SQL'
create table customers (id int primary key, email text unique, name text not null);
insert into customers values (42, 'alice@example.com', 'Alice'), (43, 'bob@example.org', 'Bob');
create function audit() returns trigger language plpgsql as $$
begin
  raise notice 'audit: % is now %', new.email, new.name;
  return new;
end $$;
create trigger audit after update on customers for each row execute function audit();
create table orders (id int, customer int);
create function order_audit() returns trigger language plpgsql as $$
begin
  raise notice 'order for %', (select email from customers where id = new.customer);
  return new;
end $$;
create trigger order_audit before insert on orders for each row execute function order_audit();
create function greet(int) returns text language plpgsql as $$
begin
  raise notice 'greeting %', (select email from customers where id = $1);
  return 'hello';
end $$;
grant all on customers, orders to app;
create function remember(text) returns boolean language sql as $$ select set_config('x.z', $1, false) is not null $$;
grant execute on function greet(int), remember(text) to app;
SQL
  mkdir -p "$PGT_TMP/policy.d"
  cat >"$PGT_TMP/policy.d/10-mask.json" <<JSON
{ "rules": [
  { "name": "masked", "match": { "cgroup": "$PGT_CG/masked/**" }, "token": { "source": "none" }, "upstream": "main",
    "mask": [ { "column": "public.customers.email", "strategy": "email" } ] },
  { "name": "plain", "match": { "cgroup": "$PGT_CG/plain/**" }, "token": { "source": "none" }, "upstream": "main" } ] }
JSON
  pgt_write_config closed
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
}

masked() { pgt_in "$PGT_CG/masked/$1" psql -X -h 127.0.0.1 -p "$PG_PORT" -At -v VERBOSITY=verbose "${@:2}"; }
plain() { pgt_in "$PGT_CG/plain/$1" psql -X -h 127.0.0.1 -p "$PG_PORT" -At "${@:2}"; }
# recorded NAME TYPE: "sqlstate msg[ detail]" of each TYPE event (error, notice) in
# the recording of the masked session NAME
recorded() {
  local id
  id=$("$PGTETHER" -c "$PGT_CONF" sessions --cgroup "$PGT_CG/masked/$1" | tail -n +2 | awk '{ print $1 }')
  [ -n "$id" ] && jq -r --arg t "$2" 'select(.type == $t) | [.sqlstate, .msg, .detail // empty] | join(" ")' \
    "$PGT_TMP"/sessions/*/*/*/"$id.jsonl"
}

@test "an error quoting a masked value (current_setting(email) in WHERE) reaches the client as its SQLSTATE only; the recording keeps it" {
  run masked issue -c "SELECT 1 FROM customers WHERE id = 42 AND current_setting(email) IS NULL" \
    -c "select count(*) from customers"
  echo "$output"
  [[ "$output" == *"ERROR:  42704: pgtether: the server's error 42704 is withheld: the statement reads a masked table"* ]]
  [[ "$output" != *alice@* && "$output" != *unrecognized* ]]
  [ "${lines[-1]}" = 2 ]   # the session goes on
  run recorded issue error
  [ "$output" = '42704 unrecognized configuration parameter "alice@example.com"' ]
  # the same statement, unmasked, shows what was withheld
  run plain issue -c "SELECT 1 FROM customers WHERE id = 42 AND current_setting(email) IS NULL"
  [[ "$output" == *'unrecognized configuration parameter "alice@example.com"'* ]]
  # later in the same transaction: a cursor fetched by a statement that names no table
  run masked cursor -c "begin" -c "declare c cursor for select 1 from customers where current_setting(email) is null" \
    -c "fetch c" -c "rollback"
  echo "$output"
  [[ "$output" == *"ERROR:  42704: pgtether: the server's error 42704 is withheld"* ]]
  [[ "$output" != *alice@* ]]
  # a statement prepared in SQL, run by an EXECUTE that names no table
  run masked execute -c "prepare p as select 1 from customers where current_setting(email) is null" -c "execute p"
  echo "$output"
  [[ "$output" == *"ERROR:  42704: pgtether: the server's error 42704 is withheld"* && "$output" != *alice@* ]]
}

@test "a Bind of a statement that touches a masked table is withheld even after a Parse of a longer name the server takes for the same" {
  run pgt_in "$PGT_CG/masked/longname" /usr/bin/python3 "$PGT_ROOT/tests/integration/pgraw.py" 127.0.0.1 "$PG_PORT" long-names \
    "select 1 from customers where id = 42 and current_setting(email) is null"
  echo "$output"
  # the server keys statement names by 63 bytes: the longer name is taken already
  [[ "$output" == *"E ERROR 42P05 prepared statement"*"already exists"* ]]
  [[ "$output" == *"E ERROR 42704 pgtether: the server's error 42704 is withheld"* ]]
  [[ "$output" != *alice@* ]]
}

@test "extended protocol: errors of a prepared statement that touches a masked table are withheld, the first time and on a later Bind" {
  run pgt_in "$PGT_CG/masked/ext" /usr/bin/python3 "$CLIENTS/masking.py" errors 127.0.0.1 "$PG_PORT" \
    "select 1 from customers where id = %s and current_setting(email) is null" \
    "select current_setting('x.' || %s::text)"
  echo "$output"
  [ "$(grep -c "^error|ERROR|42704|pgtether: the server's error 42704 is withheld" <<<"$output")" -eq 2 ]
  [[ "$output" != *alice@* ]]
  # a statement that names no masked table keeps the server's words
  [ "$(grep -c '^error|ERROR|42704|unrecognized configuration parameter "x.42"' <<<"$output")" -eq 2 ]
}

@test "a unique violation on a masked column keeps its SQLSTATE and names, not its text or DETAIL; the recording keeps both" {
  run masked unique -c "update customers set email = 'bob@example.org' where id = 42"
  echo "$output"
  [[ "$output" == *"ERROR:  23505: pgtether: the server's error 23505 (constraint \"customers_email_key\") is withheld"* ]]
  [[ "$output" == *"CONSTRAINT NAME:  customers_email_key"* ]]
  [[ "$output" != *"Key ("* && "$output" != *"duplicate key"* ]]
  run recorded unique error
  [ "$output" = '23505 duplicate key value violates unique constraint "customers_email_key" Key (email)=(bob@example.org) already exists.' ]
  # a NOT NULL violation would show the whole row (DETAIL: Failing row contains ...)
  run masked notnull -c "update customers set name = null where id = 42"
  echo "$output"
  [[ "$output" == *"ERROR:  23502: pgtether: the server's error 23502"* && "$output" != *alice@* ]]
  # COPY FROM: the error, and its CONTEXT naming the line
  run masked copyin -c "copy customers from stdin" <<<$'44\tbob@example.org\tEve\n\\.'
  echo "$output"
  [[ "$output" == *"ERROR:  23505: pgtether: the server's error 23505"* && "$output" != *CONTEXT* ]]
  run plain notnull -c "update customers set name = null where id = 42"
  [[ "$output" == *"Failing row contains (42, alice@example.com, null)"* ]]
}

@test "a NOTICE quoting a masked value is withheld: from a trigger on the masked table or another, from a function a SELECT calls" {
  run masked trigger -c "update customers set name = 'Alicia' where id = 42" -c "insert into orders values (1, 42)"
  echo "$output"
  [[ "$output" != *alice@* ]]
  [ "$(grep -c "NOTICE:  00000: pgtether: the server's notice 00000 is withheld" <<<"$output")" -eq 2 ]
  [[ "$output" == *"UPDATE 1"* && "$output" == *"INSERT 0 1"* ]]
  run recorded trigger notice
  [ "$output" = $'00000 audit: alice@example.com is now Alicia\n00000 order for alice@example.com' ]
  # a function of the database's own, called from a SELECT that names no table
  run masked function -c "select greet(42)"
  echo "$output"
  [[ "$output" == *"NOTICE:  00000: pgtether: the server's notice 00000 is withheld"* && "$output" != *alice@* ]]
  [ "${lines[-1]}" = hello ]
  run plain trigger -c "update customers set name = 'Alice' where id = 42"
  [[ "$output" == *"NOTICE:  audit: alice@example.com is now Alice"* ]]
}

@test "pg_notify(email) anywhere in a statement is denied, and a masked listener gets no payload" {
  run masked notify -c "listen ch" -c "select 1 from customers where id = 42 and pg_notify('ch', email) is null" \
    -c "select 1 from customers c where pg_notify('ch', c::text) is null" \
    -c "select id from (select id, email as x from customers) s order by pg_notify('ch', x) limit 1" \
    -c "select pg_notify('ch', 'plain payload')"
  echo "$output"
  [[ "$output" != *alice@* ]]
  [[ "$output" == *"ERROR:  42501: pgtether: rule 'masked' masks public.customers.email, and pg_notify() would carry it out of the statement unmasked"* ]]
  [ "$(grep -c "ERROR:  42501" <<<"$output")" -eq 3 ]
  # the one allowed arrives, without its payload (below)
  [[ "$output" == *'Asynchronous notification "ch" received from server process'* && "$output" != *"plain payload"* ]]
  # no payload reaches a masked listener: another session may send one it read unmasked
  pgt_in "$PGT_CG/masked/listener" psql -X -h 127.0.0.1 -p "$PG_PORT" -At -c "listen ch" -c "select pg_sleep(3)" \
    -c "select 'done'" >"$PGT_TMP/listener.out" 2>&1 &
  local bg=$! id
  for _ in $(seq 100); do
    [ "$(pgt_psql -c "select count(*) from pg_stat_activity where query = 'select pg_sleep(3)'")" = 1 ] && break
    sleep 0.05
  done
  plain notifier -c "select pg_notify('ch', email) from customers where id = 42"
  wait "$bg"
  cat "$PGT_TMP/listener.out"
  grep -q '^Asynchronous notification "ch" received from server process with PID' "$PGT_TMP/listener.out"
  ! grep -q alice@ "$PGT_TMP/listener.out"
  [ "$(tail -n 1 "$PGT_TMP/listener.out")" = done ]
  id=$("$PGTETHER" -c "$PGT_CONF" sessions --cgroup "$PGT_CG/masked/listener" | tail -n +2 | awk '{ print $1 }')
  run jq -r 'select(.type == "notification") | "\(.channel) \(.payload)"' "$PGT_TMP"/sessions/*/*/*/"$id.jsonl"
  [ "$output" = "ch alice@example.com" ]
}

@test "set_config(..., email, ...) or a function of the database's own given email in a WHERE clause is denied" {
  run masked setcfg -c "select 1 from customers where id = 42 and set_config('x.y', email, false) is not null" \
    -c "select 1 from customers where set_config(setting_name => 'application_name', new_value => email, is_local => false) <> ''" \
    -c "select coalesce(current_setting('x.y', true), 'unset'), current_setting('application_name')"
  echo "$output"
  [[ "$output" != *alice@* ]]
  [[ "$output" == *"masks public.customers.email, and set_config() would carry it out of the statement unmasked"* ]]
  [[ "${lines[-1]}" == "unset|pgtether:"* ]]
  # a function of the database's own may do the same with what it is given
  run masked remember -c "select 1 from customers where id = 42 and remember(email)" \
    -c "select coalesce(current_setting('x.z', true), 'unset')"
  echo "$output"
  [[ "$output" == *"masks public.customers.email, and remember() would carry it out of the statement unmasked"* ]]
  [ "${lines[-1]}" = unset ]
}
