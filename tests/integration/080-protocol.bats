#!/usr/bin/env bats
# pgtether as a PostgreSQL endpoint: it logs in upstream with the credential it holds,
# passes the workload's identity on, refuses what the policy could not see, forwards
# cancels, and keeps sessions apart when one misbehaves.

load helpers

setup_file() {
  pgt_setup_world
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
}

raw() { pgt_in "$PGT_CG/raw" /usr/bin/python3 "$BATS_TEST_DIRNAME/pgraw.py" 127.0.0.1 "$PG_PORT" "$@"; }

@test "a workload with a wrong or empty password logs in with the credential pgtether holds" {
  run env PGPASSWORD=wrong psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  [ "$status" -eq 2 ]
  [[ "$output" == *'password authentication failed for user "app"'* ]]
  run pgt_in "$PGT_CG/p1" env PGPASSWORD=wrong psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select current_user"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = app ]
  run pgt_in "$PGT_CG/p1" env -u PGPASSWORD psql -X -h 127.0.0.1 -p "$PG_PORT" -U someone-else -Atq -c "select current_user"
  [ "$status" -eq 0 ]
  [ "$output" = app ]
  # on purpose, and said where it matters: a privilege error names the role it ran as
  pgt_psql -c "create table if not exists p1_private (a int)" -c "revoke all on p1_private from app"
  run pgt_in "$PGT_CG/p1" psql -X -h 127.0.0.1 -p "$PG_PORT" -U someone-else -Atq -v VERBOSITY=verbose -c "select * from p1_private"
  echo "$output"
  [[ "$output" == *"ERROR:  42501: permission denied for table p1_private"* ]]
  [[ "$output" == *"HINT:  pgtether logged this session in as role \"app\", which rule 'tests-main' grants, not as the user \"someone-else\" the client named"* ]]
  # and not when the client named the role itself
  run pgt_in "$PGT_CG/p1" psql -X -h 127.0.0.1 -p "$PG_PORT" -U app -Atq -c "select * from p1_private"
  [[ "$output" == *"permission denied for table p1_private"* && "$output" != *HINT* ]]
  pgt_psql -c "drop table p1_private"
  grep -q "event=conn.open .*cgroup=$PGT_CG/p1 .*upstream=main role=app" "$PGT_LOG"
}

@test "the database sees the workload's identity in application_name and pgtether.identity" {
  run pgt_in "$PGT_CG/p2" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq \
    -c "select current_setting('application_name'), current_setting('pgtether.identity')"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == "pgtether:$PGT_CG/p2:psql|cgroup=$PGT_CG/p2;uid=0;gid=0;pid="*";exe="*"/psql;comm=psql;rule=tests-main" ]]
  run pgt_in "$PGT_CG/p2" env PGAPPNAME=nightly-etl psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select application_name from pg_stat_activity where pid = pg_backend_pid()"
  [ "$output" = "pgtether:$PGT_CG/p2:nightly-etl" ]
}

@test "a FunctionCall is refused with 0A000 and the session goes on" {
  run raw fastpath
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "${lines[*]}" == *"E ERROR 0A000 pgtether: the fast-path function call interface (FunctionCall message) is not allowed"*"Z I"*"D still usable"*"Z I"* ]]
}

@test "a refused FunctionCall answers in order behind a pipelined query, and keeps the transaction state" {
  run raw pipeline-fastpath
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "${lines[*]}" == *"D |first"*"Z I"*"E ERROR 0A000"*"Z I"*"D third"*"Z I" ]]
  run raw transaction-fastpath
  echo "$output"
  [[ "${lines[*]}" == *"C BEGIN Z T E ERROR 0A000"*"Z T" ]]
}

@test "a newer protocol version and _pq_ options are declined with NegotiateProtocolVersion" {
  run raw negotiate
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "v 0 1 _pq_.test_option" ]
  [[ "${lines[*]}" == *"D negotiated"* ]]
  run raw negotiate-9999
  echo "$output"
  [ "${lines[0]}" = "v 0 1 _pq_.test_protocol_negotiation" ]
  [[ "${lines[*]}" == *"D negotiated"* ]]
}

@test "psql's \\watch stops at Ctrl-C and psql goes on" {
  # pgtether run execs psql, so $! is psql: SIGINT is what Ctrl-C sends it. It lands
  # halfway through a 1 s pause between two ticks: a SIGINT that lands while a query
  # runs makes a psql reading a script (not a terminal) exit, as psql is designed to.
  printf "select 'tick' \\watch 1\nselect 'after watch';\n" |
    "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/watch" -- psql -X -h 127.0.0.1 -p "$PG_PORT" -At >"$PGT_TMP/watch.out" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do [ "$(grep -c '^tick$' "$PGT_TMP/watch.out")" -ge 2 ] && break; sleep 0.05; done
  sleep 0.5
  kill -INT "$pid"
  local waited=0
  while kill -0 "$pid" 2>/dev/null && [ $waited -lt 50 ]; do sleep 0.1; waited=$((waited + 1)); done
  cat "$PGT_TMP/watch.out"
  run kill -0 "$pid"
  [ "$status" -ne 0 ]
  [ "$(grep -c '^tick$' "$PGT_TMP/watch.out")" -ge 2 ]
  grep -q '^after watch$' "$PGT_TMP/watch.out"
}

@test "a malformed message length ends that session with 08P01 and no other" {
  pgt_in "$PGT_CG/p3" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select pg_sleep(2), 'survivor'" >"$PGT_TMP/survivor" &
  local other=$!
  sleep 0.5
  run raw badlen
  echo "$output"
  [ "${lines[-2]}" = "E FATAL 08P01 pgtether: invalid message length from the client (below 4 or above max_message_bytes, 1073741824)" ]
  [ "${lines[-1]}" = "EOF" ]
  wait "$other"
  [ "$(cat "$PGT_TMP/survivor")" = "|survivor" ]
}

@test "a client protocol violation while a server message is half relayed never puts the FATAL inside it" {
  # found by fuzz_server: the FATAL went after the bytes of the row already relayed,
  # and the client read it as part of the row
  run raw fatal-mid-row
  echo "$output"
  [ "${lines[0]}" = "fatal inside the row: no" ]
  [ "${lines[1]}" = "row cut" ]
  grep -q "event=conn.close .*cgroup=$PGT_CG/raw .*reason=\"client protocol violation\"" "$PGT_LOG"
}

@test "a message of a type no client sends after login never reaches the server" {
  # PostgreSQL 15 ends the session on such a type itself; a later server might act
  # on it, and pgtether's policy would not have read it
  for t in 00 70 56 7a ff; do
    run raw "type-$t"
    echo "$t: $output"
    [ "${lines[-2]}" = "E FATAL 08P01 pgtether: invalid frontend message type: after login a client sends only Query, Parse, Bind, Describe, Execute, Close, Flush, Sync, FunctionCall, Terminate and COPY data" ]
    [ "${lines[-1]}" = "EOF" ]
  done
}

@test "a client that breaks a rule while reading slowly gets every relayed row, then the FATAL" {
  # pgtether's buffer was full of rows the client had not read yet: they and the
  # FATAL were dropped when the session closed at once
  run raw fatal-slow-reader
  echo "$output"
  [ "${lines[0]}" = "rows many" ]
  [ "${lines[1]}" = "last E FATAL 08P01 pgtether: invalid frontend message type: after login a client sends only Query, Parse, Bind, Describe, Execute, Close, Flush, Sync, FunctionCall, Terminate and COPY data" ]
  [ "${lines[2]}" = "then EOF" ]
}

@test "a slow client that sends more after breaking a rule still gets every relayed row, then the FATAL" {
  # what it sent after the violation was left unread: the close reset the connection,
  # and the kernel dropped the rows and the FATAL it still held for the client
  run raw fatal-slow-reader-more
  echo "$output"
  [ "${lines[0]}" = "rows many" ]
  [ "${lines[1]}" = "last E FATAL 08P01 pgtether: invalid frontend message type: after login a client sends only Query, Parse, Bind, Describe, Execute, Close, Flush, Sync, FunctionCall, Terminate and COPY data" ]
  [ "${lines[2]}" = "then EOF" ]
}

# server_gone_while_stopped SYNC: the workers stopped between the client's violation
# and its server's reset, so that one epoll_wait has both (pgraw.py's server-gone case)
server_gone_while_stopped() {
  local sync=$1 pids bpid i rc=0
  pgt_wait_until 10 test -e "$sync/ready" || return 1
  pids=$(pgt status --json | jq -r '.workers[].pid | numbers')
  [ -n "$pids" ] || return 1
  kill -STOP $pids
  touch "$sync/stopped"
  pgt_wait_until 5 test -e "$sync/sent" || rc=1
  bpid=$(pgt_psql -c "select pid from pg_stat_activity where query like 'select g, repeat(%' and pid <> pg_backend_pid()") || rc=1
  [ -n "$bpid" ] || rc=1
  [ -z "$bpid" ] || pgt_psql -c "select pg_terminate_backend($bpid)" >/dev/null || rc=1
  for ((i = 0; i < 100; i++)); do
    [ -n "$(pgt_psql -c "select 1 from pg_stat_activity where pid = ${bpid:-0}")" ] || break
    sleep 0.05
  done
  sleep 0.2 # its reset reaches pgtether's end
  kill -CONT $pids
  touch "$sync/go"
  return $rc
}

@test "a slow client's rows and FATAL survive its server's reset in the same batch as its violation" {
  # the upstream's event after the client's, in one epoll_wait, ended the drain the
  # client's had begun (closing the upstream): the socket closed while the client
  # still sent, so the connection reset, and the client lost the rows it had not
  # read and the FATAL
  local sync="$PGT_TMP/server-gone"
  rm -rf "$sync" && mkdir "$sync"
  raw fatal-slow-reader-server-gone "$sync" >"$sync/out" 2>&1 &
  local rawpid=$!
  server_gone_while_stopped "$sync"
  wait "$rawpid" || true
  cat "$sync/out"
  mapfile -t lines <"$sync/out"
  [ "${lines[0]}" = "rows many" ]
  [ "${lines[1]}" = "last E FATAL 08P01 pgtether: invalid frontend message type: after login a client sends only Query, Parse, Bind, Describe, Execute, Close, Flush, Sync, FunctionCall, Terminate and COPY data" ]
  [ "${lines[2]}" = "then EOF" ]
}

# hold_after_fatal OUT: a client that broke a rule, read its FATAL and the end of the
# stream, and holds its socket open (pgraw.py's fatal-then-hold); its pid in HOLD_PID
hold_after_fatal() {
  raw fatal-then-hold >"$1" 2>&1 &
  HOLD_PID=$!
  pgt_wait_until 10 grep -q '^EOF$' "$1" || { kill "$HOLD_PID"; cat "$1"; return 1; }
}

@test "a client that keeps its socket open after its FATAL is let go within 10 seconds" {
  # pgtether waits for the client's close after its last words (a close while it
  # still sends would reset them away), but not for ever
  local out="$PGT_TMP/fatal-then-hold.out" before
  before=$(pgt_log_count conn.close "reason=\"client protocol violation\"")
  hold_after_fatal "$out"
  pgt_wait_until 13 eval '[ "$(pgt_log_count conn.close "reason=\"client protocol violation\"")" -gt "$before" ]' ||
    { kill "$HOLD_PID"; false; }
  kill "$HOLD_PID" || true
  wait "$HOLD_PID" || true
  cat "$out"
  [ "$(grep -A1 '^E FATAL 08P01 pgtether: invalid frontend message type' "$out" | tail -n 1)" = EOF ]
}

@test "a session that still drains when the daemon stops is logged with the reason it ended" {
  # its conn.close line is the one record of why it ended: a stop during the drain
  # wrote "daemon stopping" there instead
  local out="$PGT_TMP/fatal-then-hold-stop.out" before
  before=$(pgt_log_count conn.close "reason=\"client protocol violation\"")
  hold_after_fatal "$out"
  pgt_stop_daemon
  kill "$HOLD_PID" || true
  wait "$HOLD_PID" || true
  pgt_start_daemon
  grep "event=conn.close .*cgroup=$PGT_CG/raw " "$PGT_LOG" | tail -n 1
  [ "$(pgt_log_count conn.close "reason=\"client protocol violation\"")" -gt "$before" ]
}

@test "a Query whose SQL does not end in a NUL ends the session with 08P01 saying so" {
  run raw no-nul
  echo "$output"
  [ "${lines[-2]}" = "E FATAL 08P01 pgtether: invalid string in a Query or Parse message from the client (its statement name or SQL text does not end in a NUL byte)" ]
  [ "${lines[-1]}" = "EOF" ]
}

@test "a message above max_message_bytes ends the session with 08P01" {
  pgt_stop_daemon
  sed -i 's|"fail_mode"|"max_message_bytes": 65536, "fail_mode"|' "$PGT_CONF"
  pgt_start_daemon
  run pgt_in "$PGT_CG/p9" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select length('$(printf 'x%.0s' $(seq 70000))')"
  [ "$status" -ne 0 ]
  [[ "$output" == *"FATAL:  pgtether: invalid message length from the client (below 4 or above max_message_bytes, 65536)"* ]]
  run pgt_in "$PGT_CG/p9" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select length('$(printf 'x%.0s' $(seq 60000))')"
  [ "$output" = 60000 ]
  pgt_stop_daemon
  pgt_write_config closed
  pgt_start_daemon
}

@test "an upstream given by host name is chosen by every address the name resolves to" {
  pgt_stop_daemon
  pgt_write_config closed
  sed -i "s|\"address\": \"127.0.0.1:$PG_PORT\", \"aliases\": \[\"\[::1\]:$PG_PORT\"\]|\"address\": \"localhost:$PG_PORT\"|" "$PGT_CONF"
  grep -q "\"localhost:$PG_PORT\"" "$PGT_CONF"
  pgt_start_daemon
  # whatever this host's resolver says localhost is (127.0.0.1, and ::1 where listed)
  local addrs n=0
  addrs=$(getent ahosts localhost | awk '{ print $1 }' | sort -u)
  [ -n "$addrs" ]
  for a in $addrs; do
    run pgt_in "$PGT_CG/p10" psql -X "hostaddr=$a port=$PG_PORT" -Atq -c "select 'via $a'"
    echo "$output"
    [ "$output" = "via $a" ]
    n=$((n + 1))
  done
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/p10 ")" = "$n" ]
  pgt_stop_daemon
  pgt_write_config closed
  pgt_start_daemon
}

@test "startup parameters that could change privilege or parsing are refused" {
  run pgt_in "$PGT_CG/p4" env PGOPTIONS="-c role=postgres" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *'FATAL:  pgtether: the startup setting "role" is not passed: it changes the role the session runs as'* ]]
  run pgt_in "$PGT_CG/p4" psql -X "host=127.0.0.1 port=$PG_PORT replication=database" -Atq -c "select 1"
  [ "$status" -eq 2 ]
  [[ "$output" == *"replication connections are not allowed through pgtether"* ]]
  run pgt_in "$PGT_CG/p4" env PGCLIENTENCODING=LATIN1 psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  [ "$status" -eq 2 ]
  [[ "$output" == *'client_encoding "LATIN1" is not supported; use UTF8'* ]]
  run pgt_in "$PGT_CG/p4" env PGCLIENTENCODING=SQL_ASCII psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "show client_encoding"
  [ "$status" -eq 0 ]
  [ "$output" = UTF8 ]
  # setting names are case-insensitive, and only presentation settings pass
  run pgt_in "$PGT_CG/p4" /usr/bin/python3 "$BATS_TEST_DIRNAME/pgraw.py" 127.0.0.1 "$PG_PORT" startup-param CLIENT_ENCODING=SJIS
  [[ "$output" == *"E FATAL 22023 pgtether: client_encoding \"SJIS\" is not supported"* ]]
  run pgt_in "$PGT_CG/p4" /usr/bin/python3 "$BATS_TEST_DIRNAME/pgraw.py" 127.0.0.1 "$PG_PORT" startup-param PGTETHER.identity=forged
  [[ "$output" == *"E FATAL 08004 pgtether: the startup setting \"PGTETHER.identity\" is not passed: it is set by pgtether"* ]]
  run pgt_in "$PGT_CG/p4" /usr/bin/python3 "$BATS_TEST_DIRNAME/pgraw.py" 127.0.0.1 "$PG_PORT" startup-param session_authorization=postgres
  [[ "$output" == *"E FATAL 08004 pgtether: the startup setting \"session_authorization\" is not passed: it changes the role the session runs as"* ]]
  run pgt_in "$PGT_CG/p4" /usr/bin/python3 "$BATS_TEST_DIRNAME/pgraw.py" 127.0.0.1 "$PG_PORT" startup-param DateStyle=ISO,DMY
  [[ "$output" == *"Z I"* ]]
}

@test "a refusal quoting an overlong value keeps its advice, and the log names the fault's reason" {
  # the value is cut (on a character boundary) rather than the message: before the
  # fault table the message was cut at 511 bytes, advice and closing quote gone
  local long
  long=$(printf 'X%.0s' $(seq 700))
  run pgt_in "$PGT_CG/p4" /usr/bin/python3 "$BATS_TEST_DIRNAME/pgraw.py" 127.0.0.1 "$PG_PORT" startup-param "client_encoding=$long"
  echo "$output"
  [[ "$output" == *"E FATAL 22023 pgtether: client_encoding \"XXXXXXXX"*"X\" is not supported; use UTF8 (PGCLIENTENCODING=UTF8)"* ]]
  [ "$(pgt_log_count conn.refused 'reason="client_encoding not supported"')" -ge 1 ]
  run pgt_in "$PGT_CG/p4" /usr/bin/python3 "$BATS_TEST_DIRNAME/pgraw.py" 127.0.0.1 "$PG_PORT" startup-param "%s%n=on"
  echo "$output"
  [[ "$output" == *'E FATAL 08004 pgtether: the startup setting "%s%n" is not passed: '* ]]
  [ "$(pgt_log_count conn.refused 'reason="startup setting not passed"')" -ge 1 ]
}

@test "a FunctionCall inside an unfinished extended-query batch ends the session with 08P01" {
  run raw fastpath-in-batch
  echo "$output"
  [[ "$output" == *"E FATAL 08P01 pgtether: FunctionCall inside an unfinished extended-query batch"* ]]
}

@test "a simple Query after Parse, Describe and Flush without Sync (asyncpg's prepare) runs" {
  run raw prepare-flush-then-query
  echo "$output"
  [[ "$output" == *"C BEGIN"*"Z T"*"C COMMIT"*"Z I"* ]]
}

@test "a query cancelled with Ctrl-C ends within a second with 57014" {
  # pgtether run execs psql, so $! is psql itself: SIGINT is what Ctrl-C sends it
  "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/p5" -- psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select pg_sleep(30)" >"$PGT_TMP/cancel.out" 2>&1 &
  local pid=$!
  for _ in $(seq 50); do
    [ "$(pgt_psql -c "select count(*) from pg_stat_activity where query = 'select pg_sleep(30)' and state = 'active'")" = 1 ] && break
    sleep 0.1
  done
  local t0 t1
  t0=$(date +%s%N)
  kill -INT "$pid"
  wait "$pid" || true
  t1=$(date +%s%N)
  cat "$PGT_TMP/cancel.out"
  grep -q "ERROR:  canceling statement due to user request" "$PGT_TMP/cancel.out"
  [ $(( (t1 - t0) / 1000000 )) -lt 1000 ]
  grep -q "event=cancel .*forwards a cancel of session" "$PGT_LOG"
}

@test "a cancel with an unknown key is ignored, as PostgreSQL does" {
  run pgt_in "$PGT_CG/p5" /usr/bin/python3 -c '
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.sendall(struct.pack("!IIII", 16, 80877102, 12345, 67890))
print(repr(s.recv(10)))' "$PG_PORT"
  [ "$status" -eq 0 ]
  [ "$output" = "b''" ]
  grep -q "a CancelRequest with an unknown key was ignored" "$PGT_LOG"
}

@test "pgbench in simple, extended and prepared modes with 8 clients works through pgtether" {
  pgt_psql -c "grant create on schema public to app"
  run pgt_in "$PGT_CG/bench" pgbench -h 127.0.0.1 -p "$PG_PORT" -i -s 1 -q postgres
  [ "$status" -eq 0 ]
  for mode in simple extended prepared; do
    run pgt_in "$PGT_CG/bench" pgbench -h 127.0.0.1 -p "$PG_PORT" -M "$mode" -c 8 -j 2 -t 50 postgres
    echo "$output" | tail -n 5
    [ "$status" -eq 0 ]
    [[ "$output" == *"number of transactions actually processed: 400/400"* ]]
  done
}

@test "psql \\copy works both ways through pgtether" {
  pgt_psql -c "create table copyt (a int, b text)" -c "grant all on copyt to app"
  seq 1 5000 | awk '{ print $1 "\tvalue " $1 }' >"$PGT_TMP/in.tsv"
  run pgt_in "$PGT_CG/copy" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "\\copy copyt from '$PGT_TMP/in.tsv'"
  [ "$status" -eq 0 ]
  run pgt_in "$PGT_CG/copy" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "\\copy (select * from copyt order by a) to '$PGT_TMP/out.tsv'"
  [ "$status" -eq 0 ]
  cmp "$PGT_TMP/in.tsv" "$PGT_TMP/out.tsv"
}

@test "the upstream restarting mid-session gives the client an error and the daemon serves the next session" {
  pgt_in "$PGT_CG/p6" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select pg_sleep(20)" >"$PGT_TMP/restart.out" 2>&1 &
  local pid=$!
  for _ in $(seq 50); do
    [ "$(pgt_psql -c "select count(*) from pg_stat_activity where query = 'select pg_sleep(20)'")" = 1 ] && break
    sleep 0.1
  done
  runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$PGT_TMP/pg/data" -m fast -w restart >/dev/null
  wait "$pid" || true
  cat "$PGT_TMP/restart.out"
  grep -q "FATAL:  terminating connection due to administrator command" "$PGT_TMP/restart.out"
  run pgt_in "$PGT_CG/p6" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 'after restart'"
  [ "$output" = "after restart" ]
}

@test "a wrong held credential is refused with 28000 and never shown" {
  pgt_stop_daemon
  pgt_write_credentials "not-the-password"
  pgt_start_daemon
  run pgt_in "$PGT_CG/p7" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"FATAL:  pgtether could not log in to upstream 'main' as role 'app': password authentication failed for user \"app\""* ]]
  [[ "$output" != *"not-the-password"* ]]
  run grep -c "not-the-password" "$PGT_LOG"
  [ "$output" = 0 ]
  pgt_stop_daemon
  pgt_write_credentials "$PG_APP_PASSWORD"
  pgt_start_daemon
}

@test "a destination without an upstream is refused with a clear error" {
  local other
  other=$(pgt_free_port)
  pgt_stop_daemon
  pgt_write_config closed "[]" "[\"*:$PG_PORT\", \"127.0.0.3:$other\"]"
  pgt_start_daemon
  run pgt_in "$PGT_CG/p8" psql -X "host=127.0.0.3 port=$other" -Atq -c "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"FATAL:  pgtether: no upstream is configured for 127.0.0.3:$other; add it to \"upstreams\""* ]]
}

@test "credentials readable by others are refused at start" {
  chmod 0644 "$PGT_TMP/credentials.json"
  run "$PGTETHERD" -n -c "$PGT_CONF"
  chmod 0600 "$PGT_TMP/credentials.json"
  echo "$output"
  [ "$status" -eq 1 ]
  [[ "$output" == *"credentials must be owned by uid 0 and readable by nobody else (mode 0644)"* ]]
}

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
}
