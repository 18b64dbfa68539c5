#!/usr/bin/env bats
# One workload cannot lock everyone out: caps on connections still logging in (per
# attached cgroup and in total), no busy loop when file descriptors run out, a
# daemon-wide memory budget, and an origins map that held connections do not fill.

load helpers

HOLD=/usr/bin/python3
HOLDCONNS="$BATS_TEST_DIRNAME/holdconns.py"

setup_file() {
  pgt_setup_world
}

teardown_file() {
  pgt_teardown_world
}

# start_daemon NOFILE EXTRA_CONFIG: restarts pgtetherd with that config, its
# RLIMIT_NOFILE soft and hard at NOFILE (prlimit execs it: the pid stays the daemon's).
start_daemon() {
  pgt_stop_daemon
  # each test counts its own daemon's log lines; the sanitizer check reads them all
  [ -f "$PGT_LOG" ] && cat "$PGT_LOG" >>"$PGT_TMP/earlier.log"
  rm -f "$PGT_LOG"
  PGT_EXTRA_CONFIG="$2" pgt_write_config closed
  printf '#!/bin/sh\nexec prlimit --nofile=%s:%s %s "$@"\n' "$1" "$1" "$PGTETHERD" >"$PGT_TMP/limited"
  chmod +x "$PGT_TMP/limited"
  PGTETHERD="$PGT_TMP/limited" pgt_start_daemon
}

# CPU time (utime + stime, clock ticks) the daemon has used.
daemon_ticks() {
  awk '{ print $14 + $15 }' "/proc/$(cat "$PGT_TMP/daemon.pid")/stat"
}

origins() {
  bpftool map dump pinned "$PGT_BPFFS/pgt_origins" -j | jq length
}

@test "idle connections over max_logins_per_cgroup get 53300 and do not lock out another cgroup" {
  start_daemon 64 '"max_logins": 32, "max_logins_per_cgroup": 8'
  # 120 connections that never send a byte: more than the daemon has fds for
  pgt_in "$PGT_CG/flood" "$HOLD" "$HOLDCONNS" 127.0.0.1 "$PG_PORT" 120 10 >"$PGT_TMP/flood.out" &
  local flood=$!
  sleep 2
  run pgt_in "$PGT_CG/other" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 'served'"
  echo "other: $output"
  [ "$status" -eq 0 ]
  [ "$output" = "served" ]
  wait "$flood"
  cat "$PGT_TMP/flood.out"
  [[ "$(cat "$PGT_TMP/flood.out")" == "held=8 fatal=112 closed=0 failed=0 codes=53300 first=pgtether: too many connections still logging in from cgroup $PGT_CG/flood and"* ]]
  # a flood is logged once when it starts and once summed up, not per connection
  for _ in $(seq 50); do
    [ "$(pgt_log_count conn.capped)" -ge 2 ] && break
    sleep 0.1
  done
  pgt_log_count conn.capped
  [ "$(pgt_log_count conn.capped)" -eq 2 ]
  [ "$(pgt_log_count conn.capped "112 connection(s) refused")" -eq 1 ]
}

@test "child cgroups of an attached cgroup share its max_logins_per_cgroup" {
  start_daemon 256 '"max_logins": 64, "max_logins_per_cgroup": 8'
  # a workload that may create cgroups below its own: one connection from each child
  pgt_in "$PGT_CG/nest" "$HOLD" "$HOLDCONNS" 127.0.0.1 "$PG_PORT" 20 5 "$CGMOUNT$PGT_CG/nest" >"$PGT_TMP/nest.out" &
  local nest=$!
  sleep 2
  # and a client of it gets the FATAL naming the cap
  mkdir -p "$CGMOUNT$PGT_CG/nest/psql"
  run pgt_in_unattached "$PGT_CG/nest/psql" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  echo "psql: $output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"FATAL:  pgtether: too many connections still logging in from cgroup $PGT_CG/nest and the cgroups below it (max_logins_per_cgroup 8); finish or close the others first"* ]]
  wait "$nest"
  cat "$PGT_TMP/nest.out"
  [[ "$(cat "$PGT_TMP/nest.out")" == "held=8 fatal=12 closed=0 failed=0 codes=53300 first=pgtether: too many connections still logging in from cgroup $PGT_CG/nest and"* ]]
}

@test "a connection whose process exited at once still counts under its attached cgroup" {
  start_daemon 256 '"max_logins": 64, "max_logins_per_cgroup": 8'
  # the daemon is stopped while the connections are made, so every process that
  # made one has exited (its socket handed on) before the daemon looks at it
  pgt_in "$PGT_CG/orphans" true
  kill -STOP "$(cat "$PGT_TMP/daemon.pid")"
  pgt_in "$PGT_CG/orphans" "$HOLD" "$HOLDCONNS" 127.0.0.1 "$PG_PORT" 20 6 "$CGMOUNT$PGT_CG/orphans" orphan >"$PGT_TMP/orphans.out" &
  local orphans=$!
  sleep 2
  kill -CONT "$(cat "$PGT_TMP/daemon.pid")"
  wait "$orphans"
  cat "$PGT_TMP/orphans.out"
  [[ "$(cat "$PGT_TMP/orphans.out")" == "held=8 fatal=12 closed=0 failed=0 codes=53300 first=pgtether: too many connections still logging in from cgroup $PGT_CG/orphans and"* ]]
}

@test "max_logins caps connections still logging in from all cgroups together" {
  start_daemon 256 '"max_logins": 10, "max_logins_per_cgroup": 6'
  pgt_in "$PGT_CG/t1" "$HOLD" "$HOLDCONNS" 127.0.0.1 "$PG_PORT" 6 8 >"$PGT_TMP/t1.out" &
  local t1=$!
  sleep 1.5
  run pgt_in "$PGT_CG/t2" "$HOLD" "$HOLDCONNS" 127.0.0.1 "$PG_PORT" 6 4
  echo "$output"
  [[ "$output" == "held=4 fatal=2 closed=0 failed=0 codes=53300 first=pgtether: too many connections still logging in (max_logins 10); try again later" ]]
  wait "$t1"
  [[ "$(cat "$PGT_TMP/t1.out")" == "held=6 fatal=0 "* ]]
  # the caps count logins only: once they are gone, all is served again
  run pgt_in "$PGT_CG/t2" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 'served'"
  [ "$output" = "served" ]
}

@test "a login sent one byte a second is ended by login_timeout counted from accept" {
  start_daemon 256 '"login_timeout": 3'
  local start
  start=$(date +%s)
  run pgt_in "$PGT_CG/slow" "$HOLD" "$HOLDCONNS" 127.0.0.1 "$PG_PORT" 4 8 - slow
  echo "$output"
  # the startup packet needs 40 s at that pace: each is closed at about 3 s
  [[ "$output" == "held=0 fatal=0 closed=4 failed=0 "* ]]
}

@test "held connections leave nothing in the origins map" {
  start_daemon 256 ''
  pgt_in "$PGT_CG/held" "$HOLD" "$HOLDCONNS" 127.0.0.1 "$PG_PORT" 20 4 >"$PGT_TMP/held.out" &
  local held=$!
  sleep 2
  local n
  n=$(origins)
  wait "$held"
  cat "$PGT_TMP/held.out"
  echo "origins while 20 connections are held: $n"
  [[ "$(cat "$PGT_TMP/held.out")" == "held=20 "* ]]
  [ "$n" = 0 ]
}

@test "a flood past the daemon's file descriptor limit does not spin, and service resumes after it" {
  start_daemon 64 ''
  grep -F 'file descriptor limit 64 ' "$PGT_LOG"
  pgt_in "$PGT_CG/fdflood" "$HOLD" "$HOLDCONNS" 127.0.0.1 "$PG_PORT" 150 5 >"$PGT_TMP/fdflood.out" &
  local flood=$! t0 t1
  sleep 1
  t0=$(daemon_ticks)
  sleep 3
  t1=$(daemon_ticks)
  wait "$flood"
  cat "$PGT_TMP/fdflood.out"
  echo "daemon CPU over 3 s of flood: $((t1 - t0)) ticks" >&3
  # a spinning loop takes all of a core: 300 ticks
  [ $((t1 - t0)) -lt 60 ]
  local ok=0
  for _ in $(seq 20); do
    if pgt_in "$PGT_CG/after" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 'served'" 2>/dev/null | grep -qx served; then
      ok=1
      break
    fi
    sleep 0.5
  done
  [ "$ok" = 1 ]
  # one line when it starts, one when it is over: not one per attempt
  [ "$(pgt_log_count accept "cannot accept connections: Too many open files")" -eq 1 ]
  for _ in $(seq 30); do
    [ "$(pgt_log_count accept "accepting connections again")" -eq 1 ] && break
    sleep 0.1
  done
  [ "$(pgt_log_count accept "accepting connections again")" -eq 1 ]
}

@test "a session that needs more than memory_budget gets 53200 while other sessions go on" {
  start_daemon 256 '"memory_budget": 1048576, "max_statement_bytes": 4194304'
  # 2 MB of statement: held whole to be checked, more than the budget
  /usr/bin/python3 -c 'print("select length(%s);" % ("\x27" + "x" * 2000000 + "\x27"))' >"$PGT_TMP/big.sql"
  /usr/bin/python3 -c 'print("select length(%s);" % ("\x27" + "y" * 600000 + "\x27"))' >"$PGT_TMP/mid.sql"
  pgt_in "$PGT_CG/calm" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select pg_sleep(3)" -c "select 'still here'" >"$PGT_TMP/calm.out" 2>&1 &
  local calm=$!
  sleep 1
  run pgt_in "$PGT_CG/big" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -f "$PGT_TMP/big.sql"
  echo "$output"
  [ "$status" -ne 0 ]
  [[ "$output" == *"FATAL:  pgtether: out of memory: this session needs more room than is left of memory_budget (1048576 bytes, shared by all sessions)"* ]]
  grep -F 'memory_budget exhausted' "$PGT_LOG"
  wait "$calm"
  [ "$(cat "$PGT_TMP/calm.out")" = "$(printf '\nstill here')" ]
  # what a session held goes back: 600 kB statements one after another, each of
  # which fits only if the ones before gave their room back
  run pgt_in "$PGT_CG/big" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -f "$PGT_TMP/mid.sql" -f "$PGT_TMP/mid.sql"
  echo "$output"
  [ "$output" = "$(printf '600000\n600000')" ]
  for _ in 1 2 3; do
    run pgt_in "$PGT_CG/big" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -f "$PGT_TMP/mid.sql"
    [ "$output" = 600000 ]
  done
}

@test "the daemons stopped cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
  ! grep -nE 'AddressSanitizer|LeakSanitizer|runtime error:' "$PGT_TMP/earlier.log"
}
