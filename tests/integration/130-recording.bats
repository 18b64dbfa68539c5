#!/usr/bin/env bats
# Recording: one JSON-lines file per session, hash-chained and sealed; pgtether
# sessions, replay and verify; fail closed when it cannot be written.

load helpers

setup_file() {
  export PGT_OWN_POLICY=1
  pgt_setup_world
  pgt_psql -c "create table t (id int)" -c "grant all on t to app"
  mkdir -p "$PGT_TMP/policy.d"
  cat >"$PGT_TMP/policy.d/10-rec.json" <<JSON
{ "rules": [ { "name": "rec", "match": { "cgroup": "$PGT_CG/**" }, "token": { "source": "none" }, "upstream": "main",
  "statements": { "allow": ["read", "transaction", "session"], "deny": ["drop"], "approve": ["write"] } } ] }
JSON
  pgt_write_config closed
  pgt_start_daemon
}

teardown_file() {
  umount "$PGT_TMP/full" 2>/dev/null || true
  pgt_teardown_world
}

only_recording() { "$PGTETHER" -c "$PGT_CONF" sessions --cgroup "$1" | tail -n +2 | awk '{ print $1 }'; }

@test "a session with a denial, an error and an approval is recorded, verifies and replays in order" {
  pgt_in "$PGT_CG/r1" setpriv --reuid=65534 --regid=65534 --clear-groups psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq \
    -c "select 41 + 1" -c "drop table t" -c "select * from no_such_table" -c "insert into t values (7)" \
    -c "select count(*) from t" >"$PGT_TMP/r1.out" 2>&1 &
  local bg=$! req=""
  for _ in $(seq 100); do
    req=$("$PGTETHER" -c "$PGT_CONF" approvals --json | jq -r '.[0].request // empty')
    [ -n "$req" ] && break
    sleep 0.05
  done
  "$PGTETHER" -c "$PGT_CONF" approve "$req"
  wait "$bg" || true
  cat "$PGT_TMP/r1.out"
  local id
  id=$(only_recording "$PGT_CG/r1")
  echo "recording: $id"
  [ -n "$id" ]
  run "$PGTETHER" -c "$PGT_CONF" verify "$id"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == "$id: ok, "*" records, sealed" ]]
  run "$PGTETHER" -c "$PGT_CONF" replay "$id" --speed 0
  echo "$output"
  [[ "${lines[0]}" == *" session "*": pid "*" uid 65534 exe "*"/psql cgroup $PGT_CG/r1 rule rec sub - upstream main role app (client: comm psql user app database postgres application_name psql)" ]]
  [[ "${lines[1]}" == *" allow query: select 41 + 1  [read]" ]]
  [[ "${lines[2]}" == *"   -> SELECT 1 ("*" ms)" ]]
  [[ "${lines[3]}" == *" deny query: drop table t  [drop]  -- pgtether: statement class drop is denied by rule 'rec'" ]]
  [[ "${lines[4]}" == *" allow query: select * from no_such_table  [read]" ]]
  [[ "${lines[5]}" == *"   -> ERROR 42P01: relation \"no_such_table\" does not exist" ]]
  [[ "${lines[6]}" == *" held query: insert into t values (7)  [write]" ]]
  [[ "${lines[7]}" == *" approval of request $req: approved by uid 0 "* ]]
  [[ "${lines[8]}" == *" allow query: insert into t values (7)  [write]" ]]
  [[ "${lines[9]}" == *"   -> INSERT 0 1 ("*" ms)" ]]
  # psql says Terminate before it closes: the end says so, whichever close came first
  [[ "${lines[-1]}" == *" end: client terminated ("*" bytes in, "*" out)" ]]
  # no token, no password in it
  run grep -c "$PG_APP_PASSWORD" "$PGT_TMP"/sessions/*/*/*/"$id.jsonl"
  [ "$output" = 0 ]
  # one byte edited: verify names the record after it
  local f
  f=$(ls "$PGT_TMP"/sessions/*/*/*/"$id.jsonl")
  sed -i 's/select 41 + 1/select 41 + 2/' "$f"
  run "$PGTETHER" -c "$PGT_CONF" verify "$id"
  echo "$output"
  [ "$status" -eq 1 ]
  [ "$output" = "$id: BROKEN: record 2 (line 3): the previous record was changed, removed or moved (hash chain broken)" ]
  run "$PGTETHER" -c "$PGT_CONF" verify --all
  [ "$status" -eq 1 ]
  [[ "$output" == *"$id: BROKEN: record 2"* ]]
}

@test "a session the server refuses at login is recorded with the server's words" {
  run pgt_in "$PGT_CG/refused" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -d no_such_db -c "select 1"
  echo "$output"
  [ "$status" -ne 0 ]
  [[ "$output" == *'database "no_such_db" does not exist'* ]]
  local id
  id=$(only_recording "$PGT_CG/refused")
  echo "recording: $id"
  [ -n "$id" ]
  run "$PGTETHER" -c "$PGT_CONF" replay "$id" --speed 0
  echo "$output"
  # the short reason of the fault table, then what the client was told
  [[ "${lines[-2]}" == *" end: "*" ("*" bytes in, "*" out)" ]]
  [[ "${lines[-1]}" == *'database "no_such_db" does not exist'* ]]
}

@test "statements are recorded whole (200 KB), bytes that are not UTF-8 escaped, parameters whole" {
  local pad
  pad=$(head -c 200000 /dev/zero | tr '\0' x)
  printf 'select 1 /* %s */ as hidden_after_64k;\n' "$pad" >"$PGT_TMP/long.sql"
  # Latin-1 bytes in a statement: the server refuses them (UTF8), the recording keeps them
  printf '%s\n' "select 'caf$(printf '\351') \\ $(printf '\377')' as latin1;" >"$PGT_TMP/latin1.sql"
  cat >"$PGT_TMP/params.py" <<'PY'
import sys
import psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
print(len(conn.execute("select %s::text", ["p" * 5000 + "-end"]).fetchone()[0]))
PY
  pgt_in "$PGT_CG/r5" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -f "$PGT_TMP/long.sql" -f "$PGT_TMP/latin1.sql" || true
  pgt_in "$PGT_CG/r5" /usr/bin/python3 "$PGT_TMP/params.py" "host=127.0.0.1 port=$PG_PORT user=app dbname=postgres"
  local f
  for id in $(only_recording "$PGT_CG/r5"); do
    run "$PGTETHER" -c "$PGT_CONF" verify "$id"
    [ "$status" -eq 0 ]
    f="$f $(ls "$PGT_TMP"/sessions/*/*/*/"$id.jsonl")"
  done
  # shellcheck disable=SC2086
  run jq -r 'select(.type == "statement" and (.sql // "" | test("hidden_after_64k"))) | .sql' $f
  [ "$output" = "select 1 /* $pad */ as hidden_after_64k;" ]
  # shellcheck disable=SC2086
  run jq -c 'select(.type == "statement" and .sql_escaped) | [.sql, .sql_escaped]' $f
  echo "$output"
  [ "$output" = '["select '"'"'caf\\xe9 \\\\ \\xff'"'"' as latin1;",true]' ]
  # shellcheck disable=SC2086
  run jq -r 'select(.type == "bind") | .params[0]' $f
  [ "$output" = "$(printf 'p%.0s' $(seq 5000))-end" ]
  # replay shows the bytes escaped for the terminal
  local shown=""
  for id in $(only_recording "$PGT_CG/r5"); do
    shown+=$("$PGTETHER" -c "$PGT_CONF" replay "$id" --speed 0)
  done
  echo "$shown" | cut -c 1-300
  [[ "$shown" == *" query: select 'caf\\xe9 \\\\ \\xff' as latin1;"* ]]
  [[ "$shown" == *"*/ as hidden_after_64k;"* ]]
}

@test "a recording cut off by a daemon crash verifies up to its last record, unsealed" {
  pgt_in "$PGT_CG/r2" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1" -c "select pg_sleep(5)" >/dev/null 2>&1 &
  local bg=$!
  sleep 1
  kill -KILL "$(cat "$PGT_TMP/daemon.pid")"
  rm -f "$PGT_TMP/daemon.pid"
  wait "$bg" || true
  pgt_start_daemon
  local id
  id=$(only_recording "$PGT_CG/r2")
  run "$PGTETHER" -c "$PGT_CONF" verify "$id"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = "$id: ok, 4 records, unsealed (the session was cut off before its end)" ]
}

@test "on a full filesystem new sessions are refused with a clear error, and work again once there is room" {
  mkdir -p "$PGT_TMP/full"
  mount -t tmpfs -o size=256k pgtether-test "$PGT_TMP/full"
  sed -i "s|\"sessions_dir\": \"[^\"]*\"|\"sessions_dir\": \"$PGT_TMP/full\"|" "$PGT_CONF"
  pgt_reload
  dd if=/dev/zero of="$PGT_TMP/full/filler" bs=4k 2>/dev/null || true
  run pgt_in "$PGT_CG/r3" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"FATAL:  pgtether: this session cannot be recorded (cannot write $PGT_TMP/full/"*": No space left on device); sessions are refused until recordings can be written"* ]]
  rm -f "$PGT_TMP/full/filler"
  run pgt_in "$PGT_CG/r3" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  [ "$status" -eq 0 ]
  [ "$output" = 1 ]
  sed -i "s|\"sessions_dir\": \"[^\"]*\"|\"sessions_dir\": \"$PGT_TMP/sessions\"|" "$PGT_CONF"
  pgt_reload
  umount "$PGT_TMP/full"
}

@test "a held statement that cannot be recorded is not run and not listed for approvers" {
  mkdir -p "$PGT_TMP/full"
  mountpoint -q "$PGT_TMP/full" || mount -t tmpfs -o size=256k pgtether-test "$PGT_TMP/full"
  sed -i "s|\"sessions_dir\": \"[^\"]*\"|\"sessions_dir\": \"$PGT_TMP/full\"|" "$PGT_CONF"
  pgt_reload
  # longer than a page: its record needs a block the full filesystem does not have
  local long
  long="insert into t select 9 where length('$(printf 'x%.0s' $(seq 6000))') > 0;"
  { echo "select 1;"; sleep 2; echo "$long"; sleep 4; } |
    pgt_in "$PGT_CG/r4" setpriv --reuid=65534 --regid=65534 --clear-groups \
      psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq >"$PGT_TMP/r4.out" 2>&1 &
  local bg=$!
  sleep 1
  dd if=/dev/zero of="$PGT_TMP/full/filler" bs=4k 2>/dev/null || true
  for _ in $(seq 100); do
    grep -q "cannot be recorded" "$PGT_TMP/r4.out" && break
    sleep 0.05
  done
  # the session still runs (psql waits): the request it never made stays unlisted
  run "$PGTETHER" -c "$PGT_CONF" approvals --json
  echo "approvals: $output" | cut -c 1-200
  local listed=$output
  wait "$bg" || true
  cut -c 1-200 "$PGT_TMP/r4.out"
  rm -f "$PGT_TMP/full/filler"
  sed -i "s|\"sessions_dir\": \"[^\"]*\"|\"sessions_dir\": \"$PGT_TMP/sessions\"|" "$PGT_CONF"
  pgt_reload
  umount "$PGT_TMP/full"
  grep -q "ERROR:  pgtether: the statement cannot be recorded" "$PGT_TMP/r4.out"
  [ "$listed" = "[]" ]
  [ "$(pgt_psql -c "select count(*) from t where id = 9")" = 0 ]
}

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
}
