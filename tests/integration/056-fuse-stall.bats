#!/usr/bin/env bats
# A workload's filesystem that never answers (a FUSE server it runs) stalls only its
# own login: the token file and the executable's path are looked up, and the
# executable hashed, on pgtetherd's file-system threads, never on the parent's loop
# and within the workload's share of them, so every other login and the control
# socket go on, the stuck login is refused at login_timeout saying why, and the
# daemon still stops.

load helpers

PY=/usr/bin/python3
ISS=https://ci.example.test

setup_file() {
  export PGT_OWN_POLICY=1
  pgt_setup_world
  export FUSEDIR="$PGT_TMP/fuse"
  mkdir -p "$FUSEDIR" "$PGT_TMP/policy.d" "$PGT_TMP/issuers.d"
  "$PGT_ROOT/scripts/dev-jwt.py" keygen "$PGT_TMP/issuers.d" k1
  cat >"$PGT_TMP/issuers.d/ci.json" <<JSON
{ "issuer": "$ISS", "audiences": ["pgtether"], "algorithms": ["RS256"], "jwks_file": "k1.jwks.json" }
JSON
  cat >"$PGT_TMP/policy.d/10-fuse.json" <<JSON
{ "rules": [
  { "name": "fuse-token", "match": { "cgroup": "$PGT_CG/stuck", "issuer": "$ISS" },
    "token": { "source": "file", "path": "$FUSEDIR/token" }, "upstream": "main" },
  { "name": "plain", "match": { "cgroup": "$PGT_CG/ok" }, "token": { "source": "none" }, "upstream": "main" }
] }
JSON
  PGT_EXTRA_CONFIG='"login_timeout": 4' pgt_write_config closed
  pgt_start_daemon
  # both attached now: while a login is stuck, nothing below needs the control socket
  # to get a workload in (pgt_in_unattached)
  mkdir -p "$CGMOUNT$PGT_CG/stuck" "$CGMOUNT$PGT_CG/ok"
  pgt attach "$PGT_CG/stuck"
  pgt attach "$PGT_CG/ok"
}

fuse_stop() {
  # closing /dev/fuse aborts the connection: whatever waits in it gets ENOTCONN
  if [ -f "$PGT_TMP/fuse.pid" ]; then
    kill -KILL "$(cat "$PGT_TMP/fuse.pid")" 2>/dev/null || true
    rm -f "$PGT_TMP/fuse.pid"
  fi
  if grep -qF " $FUSEDIR " /proc/self/mountinfo; then
    umount -l "$FUSEDIR" || true
  fi
}

teardown_file() {
  fuse_stop
  pgt_teardown_world
}

teardown() {
  fuse_stop
}

# Mounts the FUSE filesystem that answers nothing but FUSE_INIT at $FUSEDIR; fuse_start
# EXE: one that serves $FUSEDIR/exe, a copy of EXE, to all but pgtetherd, whose open of
# it is never answered.
fuse_start() {
  rm -f "$PGT_TMP/fuse.ready"
  ( $PY "$PGT_ROOT/tests/integration/fusestall.py" "$FUSEDIR" "$PGT_TMP/fuse.ready" "$@" </dev/null >"$PGT_TMP/fuse.log" 2>&1 3>&- &
    echo $! >"$PGT_TMP/fuse.pid" )
  for _ in $(seq 50); do
    [ -s "$PGT_TMP/fuse.ready" ] && return 0
    sleep 0.1
  done
  cat "$PGT_TMP/fuse.log" >&2
  return 1
}

# ok_psql SQL: psql from $PGT_CG/ok, given 3 s in all.
ok_psql() {
  timeout 3 bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CGMOUNT$PGT_CG/ok" \
    psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "$1"
}

# stuck_refused T0 TEXT: the stuck login (stuck_login's files) is refused with psql's
# exit status 2 within 8 s of T0, saying TEXT.
stuck_refused() {
  local t0=$1 t1
  pgt_wait_until 8 test -f "$PGT_TMP/stuck.rc" || true
  t1=$(date +%s)
  echo "refused after $((t1 - t0)) s"
  cat "$PGT_TMP/stuck.out"
  [ "$(cat "$PGT_TMP/stuck.rc")" = 2 ]
  grep -qF "$2" "$PGT_TMP/stuck.out"
  [ $((t1 - t0)) -le 8 ]
}

# Starts a login from $PGT_CG/stuck whose token file lies on the FUSE mount: its
# output goes to $PGT_TMP/stuck.out, its exit status to $PGT_TMP/stuck.rc.
stuck_login() {
  rm -f "$PGT_TMP/stuck.rc"
  ( set +e; PGCONNECT_TIMEOUT=20 pgt_in_unattached "$PGT_CG/stuck" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1" \
      >"$PGT_TMP/stuck.out" 2>&1; echo $? >"$PGT_TMP/stuck.rc" ) 3>&- &
  # until the parent has it waiting for its facts (on the code before, the control
  # socket no longer answered from here on: the checks after this one fail)
  for _ in $(seq 20); do
    timeout 1 "$PGTETHER" -c "$PGT_CONF" status --json | grep -q '"state": *"attesting"' && return 0
    sleep 0.1
  done
}

@test "a token file on a FUSE mount that never answers stalls only that login, which is refused at login_timeout" {
  local t0
  fuse_start
  t0=$(date +%s)
  stuck_login
  # another workload logs in meanwhile, and the control socket answers, at once
  run ok_psql "select 41 + 1"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = 42 ]
  run timeout 3 "$PGTETHER" -c "$PGT_CONF" status --json
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(jq '[.connections[] | select(.state == "attesting")] | length' <<<"$output")" = 1 ]
  # the stuck one is still waiting, and is refused at login_timeout (4 s) saying why
  [ ! -f "$PGT_TMP/stuck.rc" ]
  stuck_refused "$t0" "reading the token file in the workload's mount namespace did not finish in 4 s"
  # the file-system thread is still stuck in the request; once the FUSE server is
  # gone its late answer (ENOTCONN) is dropped: the connection was refused already
  fuse_stop
  sleep 0.5
  run ok_psql "select 2"
  [ "$status" -eq 0 ]
  [ "$output" = 2 ]
  pgt_assert_clean_log
}

@test "several stuck logins of one workload do not take every file-system thread from the others" {
  local i
  fuse_start
  for i in 1 2 3 4 5 6 7 8 9 10; do
    ( set +e; PGCONNECT_TIMEOUT=20 pgt_in_unattached "$PGT_CG/stuck" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1" \
        >"$PGT_TMP/stuck$i.out" 2>&1 ) 3>&- &
  done
  sleep 1
  # a login of another workload that needs a file-system thread too (every login
  # has its executable's path checked there) still gets one
  run ok_psql "select 3"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = 3 ]
  wait
  for i in 1 2 3 4 5 6 7 8 9 10; do
    grep -qF "did not finish in 4 s" "$PGT_TMP/stuck$i.out"
  done
  fuse_stop
}

@test "pgtetherd stops at once while a file-system thread waits for a FUSE server that never answers" {
  fuse_start
  stuck_login
  pgt_stop_daemon
  grep -qF "still wait for a filesystem that does not answer" "$PGT_LOG"
  pgt_assert_clean_log
  fuse_stop
  pgt_start_daemon
  run ok_psql "select 4"
  [ "$status" -eq 0 ]
  [ "$output" = 4 ]
}

@test "an executable whose hash never finishes (FUSE) stalls only that login: another workload's new binary is hashed meanwhile" {
  local t0
  fuse_start /usr/lib/postgresql/15/bin/psql
  # the other workload's executable is not hashed yet either: a copy of its own
  cp /usr/lib/postgresql/15/bin/psql "$PGT_TMP/psql-ok"
  rm -f "$PGT_TMP/stuck.rc"
  t0=$(date +%s)
  ( set +e; PGCONNECT_TIMEOUT=20 pgt_in_unattached "$PGT_CG/stuck" "$FUSEDIR/exe" -X -h 127.0.0.1 -p "$PG_PORT" -Atq \
      -c "select 1" >"$PGT_TMP/stuck.out" 2>&1; echo $? >"$PGT_TMP/stuck.rc" ) 3>&- &
  for _ in $(seq 20); do
    timeout 1 "$PGTETHER" -c "$PGT_CONF" status --json | grep -q '"state": *"attesting"' && break
    sleep 0.1
  done
  sleep 0.5
  # on the code before, the one hasher thread waited in the stuck open(): this login
  # waited behind it and was refused at login_timeout
  run timeout 3 bash -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$CGMOUNT$PGT_CG/ok" \
    "$PGT_TMP/psql-ok" -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 5"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = 5 ]
  stuck_refused "$t0" "hashing the executable did not finish in 4 s"
  # the hash still waits in open(): the daemon stops without waiting for it (the
  # FUSE server answers the kernel's interrupt at its exit: one read but never
  # answered would keep even a killed process, as any, until the server goes)
  local before
  before=$(grep -cF "still wait for a filesystem that does not answer" "$PGT_LOG" || true)
  pgt_stop_daemon
  [ "$(grep -cF "still wait for a filesystem that does not answer" "$PGT_LOG")" -gt "$before" ]
  pgt_assert_clean_log
  fuse_stop
  rm -f "$PGT_TMP/psql-ok"
  pgt_start_daemon
}
