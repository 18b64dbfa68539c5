#!/usr/bin/env bats
# Many connections at once, and a large result through the relay.

load helpers

setup_file() {
  pgt_setup_world
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
}

@test "200 concurrent redirected connections all succeed and leave the origins map empty" {
  cat >"$PGT_TMP/many.sh" <<'SH'
#!/usr/bin/env bash
# 200 psql at once, each holding its connection for a second; prints one line per result.
# The connect timeout is generous: this checks that all 200 get through, on a 2-core
# machine where 200 backends start and run SCRAM at the same moment, not how fast.
export PGCONNECT_TIMEOUT=60
for i in $(seq 200); do
  psql -X -h 127.0.0.1 -p "$1" -Atq -c "select $i, pg_sleep(1)" >"$2/r.$i" 2>&1 &
done
fail=0
for job in $(jobs -p); do wait "$job" || fail=$((fail + 1)); done
echo "failed=$fail"
SH
  chmod +x "$PGT_TMP/many.sh"
  run timeout 120 "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/many" -- "$PGT_TMP/many.sh" "$PG_PORT" "$PGT_TMP"
  echo "$output"
  grep -L '|$' "$PGT_TMP"/r.* | head -n 3 | xargs -r cat
  [ "$status" -eq 0 ]
  [ "$output" = "failed=0" ]
  for i in $(seq 200); do
    [ "$(cat "$PGT_TMP/r.$i")" = "$i|" ] || { echo "result $i: $(cat "$PGT_TMP/r.$i")"; return 1; }
  done
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/many ")" = 200 ]
  for _ in $(seq 50); do
    [ "$(pgt_log_count conn.close "cgroup=$PGT_CG/many ")" = 200 ] && break
    sleep 0.1
  done
  [ "$(pgt_log_count conn.close "cgroup=$PGT_CG/many ")" = 200 ]
  for _ in $(seq 50); do
    [ "$(bpftool map dump pinned "$PGT_BPFFS/pgt_origins" -j | jq length)" = 0 ] && break
    sleep 0.1
  done
  [ "$(bpftool map dump pinned "$PGT_BPFFS/pgt_origins" -j | jq length)" = 0 ]
}

@test "a 100 MB result arrives intact through the relay" {
  local q="COPY (SELECT g, md5(g::text) FROM generate_series(1, 2500000) g) TO STDOUT"
  local direct relayed
  direct=$(pgt_psql -c "$q" | md5sum)
  relayed=$(pgt_in "$PGT_CG/big" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "$q" | md5sum)
  echo "direct=$direct relayed=$relayed"
  [ "$direct" = "$relayed" ]
  local bytes i
  # psql is gone once it sent Terminate; the worker logs conn.close when it reads it
  for i in $(seq 100); do
    bytes=$(pgt_log_field conn.close "cgroup=$PGT_CG/big " bytes_out)
    [ -n "$bytes" ] && break
    sleep 0.1
  done
  echo "bytes_out=$bytes"
  [ "$bytes" -gt 100000000 ]
}

@test "a 100 MB upload (COPY FROM STDIN) arrives intact through the relay" {
  pgt_psql -c "create table upload (g int, h text)" -c "grant all on upload to app"
  local q="COPY (SELECT g, md5(g::text) FROM generate_series(1, 2500000) g) TO STDOUT"
  pgt_psql -c "$q" >"$PGT_TMP/upload.tsv"
  run pgt_in "$PGT_CG/big" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "\\copy upload from '$PGT_TMP/upload.tsv'"
  [ "$status" -eq 0 ]
  [ "$(pgt_psql -c "select count(*), md5(string_agg(g || ' ' || h, ',' order by g)) = (select md5(string_agg(g || ' ' || md5(g::text), ',' order by g)) from generate_series(1, 2500000) g) from upload")" = "2500000|t" ]
  local bytes
  bytes=$(pgt_log_field conn.close "cgroup=$PGT_CG/big " bytes_in)
  [ "$bytes" -gt 100000000 ]
}

@test "a dead upstream gets a clear PostgreSQL error, not a hang" {
  local dead
  dead=$(pgt_free_port)
  pgt_stop_daemon
  pgt_write_config closed "[]" "[\"*:$PG_PORT\", \"127.0.0.2:$dead\"]" \
    "\"dead\": { \"address\": \"127.0.0.2:$dead\", \"tls\": \"disable\", \"role\": \"app\" }"
  pgt_start_daemon
  run pgt_in "$PGT_CG/dead" psql -X "host=127.0.0.2 port=$dead" -Atq -c "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"FATAL:  pgtether: cannot reach the database at 127.0.0.2:$dead: Connection refused"* ]]
  # the session is still fine for everyone else
  run pgt_in "$PGT_CG/dead" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  [ "$status" -eq 0 ]
}

# mute_upstream LOGIN_TIMEOUT: a listener on 127.0.0.2:$mute that completes the TCP
# handshake and then says nothing (its pid in $listener, for 40 s at most), and the
# daemon restarted with it as upstream 'dead' and that login_timeout.
mute_upstream() {
  mute=$(pgt_free_port)
  /usr/bin/python3 -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.2", int(sys.argv[1]))); s.listen(8); time.sleep(40)' "$mute" &
  listener=$!
  pgt_stop_daemon
  PGT_EXTRA_CONFIG="\"login_timeout\": $1" pgt_write_config closed "[]" "[\"*:$PG_PORT\", \"127.0.0.2:$mute\"]" \
    "\"dead\": { \"address\": \"127.0.0.2:$mute\", \"tls\": \"disable\", \"role\": \"app\" }"
  pgt_start_daemon
}

@test "an upstream that accepts but never answers is given up after login_timeout with 08001" {
  local mute start listener
  mute_upstream 2
  start=$(date +%s)
  PGCONNECT_TIMEOUT=20 run pgt_in "$PGT_CG/mute" psql -X "host=127.0.0.2 port=$mute" -Atq -c "select 1"
  kill "$listener"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"FATAL:  pgtether: cannot reach the database at 127.0.0.2:$mute: login timed out"* ]]
  # given up by the daemon after about 2 s, not by the client's 20 s
  [ $(($(date +%s) - start)) -lt 10 ]
}

in_login() { pgt status --json | jq -e '[.. | objects | select(.state? == "login")] | length > 0' >/dev/null; }

@test "a reload that withdraws the rule of a login still waiting for its server ends that login, saying why" {
  local mute start bg listener
  mute_upstream 30 # the login waits upstream, well within its timeout
  PGCONNECT_TIMEOUT=40 pgt_in "$PGT_CG/mute" psql -X "host=127.0.0.2 port=$mute" -Atq -c "select 1" >"$PGT_TMP/mute.out" 2>&1 &
  bg=$!
  pgt_wait_until 10 in_login
  jq '.rules |= map(select(.name != "tests-dead"))' "$PGT_TMP/policy.d/50-tests.json" >"$PGT_TMP/50.json"
  mv "$PGT_TMP/50.json" "$PGT_TMP/policy.d/50-tests.json"
  start=$(date +%s)
  pgt_reload
  wait "$bg" || true
  kill "$listener"
  cat "$PGT_TMP/mute.out"
  echo "ended after $(($(date +%s) - start)) s"
  grep -q "FATAL:  pgtether: access withdrawn by a policy reload: no rule allows this session any more (it was allowed by 'tests-dead')" "$PGT_TMP/mute.out"
  # by the reload, not by login_timeout
  [ $(($(date +%s) - start)) -lt 10 ]
  pgt_write_policy
  pgt_reload
}

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
}
