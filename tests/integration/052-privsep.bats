#!/usr/bin/env bats
# Privilege separation (issue 13): a root parent and unprivileged workers. With two
# sessions logged in: each worker runs as this file's own worker user with no
# capabilities, NO_NEW_PRIVS and a seccomp filter; the database password is in the
# parent's memory and in no worker's; a worker is neither ptrace-able nor readable by
# other users, its own included; killing the worker of one session ends that session
# with an error from pgtether, leaves the other worker's session working, and a
# replacement worker serves new connections at once.
#
# Interface used: `pgtether status --json` has "workers": [{"pid", "sessions"}] and a
# "worker" pid in each connection.

load helpers

PROCMEM="$PGT_ROOT/tests/integration/procmem.py"

setup_file() {
  pgt_setup_world
  PGT_EXTRA_CONFIG='"workers": 2' pgt_write_config closed
  pgt_start_daemon
  cp "$PROCMEM" "$PGT_TMP/procmem.py" # readable by the unprivileged users below
  chmod 0755 "$PGT_TMP/procmem.py"

  # sess-c (the new connection after the kill) attached ahead, so that its 2 s are
  # the daemon's, not the attaching's
  [ "$(pgt_in "$PGT_CG/sess-c" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 'c-warm'")" = c-warm ]

  # Session A: one long statement; its exit status and output are kept.
  ( set +e # (setup_file runs under errexit: psql's failure is what is kept here)
    pgt_in "$PGT_CG/sess-a" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select pg_sleep(120)" \
      >"$PGT_TMP/a.out" 2>&1
    echo "$?" >"$PGT_TMP/a.rc" ) </dev/null 3>&- &
  echo $! >"$PGT_TMP/a.pid"
  # Session B: psql reading statements from a FIFO; the sleep holds the FIFO's
  # write end so psql sees no end of input between the statements the tests write.
  mkfifo "$PGT_TMP/b.in"
  sleep 600 >"$PGT_TMP/b.in" 3>&- &
  echo $! >"$PGT_TMP/b-holder.pid"
  pgt_in "$PGT_CG/sess-b" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq <"$PGT_TMP/b.in" >"$PGT_TMP/b.out" 2>&1 3>&- &
  echo $! >"$PGT_TMP/b.pid"
  echo "select 'b-' || 1;" >"$PGT_TMP/b.in"

  # both logged in: A's statement runs at the server, B answered
  pgt_wait_until 10 a_running
  pgt_wait_until 10 grep -qx b-1 "$PGT_TMP/b.out"
  pgt_wait_until 5 both_listed
}

teardown_file() {
  local f
  for f in a.pid b.pid b-holder.pid; do
    [ -f "$PGT_TMP/$f" ] && kill "$(cat "$PGT_TMP/$f")" 2>/dev/null
  done
  pgt_teardown_world
}

a_running() {
  [ "$(pgt_psql -c "select count(*) from pg_stat_activity where usename = 'app' and state = 'active' and query = 'select pg_sleep(120)'")" = 1 ]
}

status_json() { pgt status --json >"$PGT_TMP/status.json" && cat "$PGT_TMP/status.json"; }

both_listed() {
  status_json >/dev/null &&
    jq -e --arg a "$PGT_CG/sess-a" --arg b "$PGT_CG/sess-b" \
      '[.connections[] | select((.cgroup == $a or .cgroup == $b) and .state == "relaying" and (.worker | type) == "number")] | length == 2' \
      "$PGT_TMP/status.json" >/dev/null
}

worker_pids() { status_json | jq -r '.workers[].pid | numbers'; }

# worker_of CGROUP: the pid of the worker serving the connection from CGROUP.
worker_of() { status_json | jq -r --arg cg "$1" '.connections[] | select(.cgroup == $cg) | .worker | numbers'; }

daemon_pid() { cat "$PGT_TMP/daemon.pid"; }

# assert_sandboxed PID: what the kernel says about a worker.
assert_sandboxed() {
  local pid=$1 uid gid st
  uid=$(id -u "$PGT_WORKER_USER")
  gid=$(id -g "$PGT_WORKER_USER")
  st=$(cat "/proc/$pid/status")
  echo "worker $pid:"
  grep -E '^(Uid|Gid|Groups|Cap...|NoNewPrivs|Seccomp|PPid):' <<<"$st"
  [ "$uid" -ne 0 ]
  grep -qxP "Uid:\t$uid\t$uid\t$uid\t$uid" <<<"$st"
  grep -qxP "Gid:\t$gid\t$gid\t$gid\t$gid" <<<"$st"
  grep -qxP 'CapEff:\t0000000000000000' <<<"$st"
  grep -qxP 'CapPrm:\t0000000000000000' <<<"$st"
  grep -qxP 'CapInh:\t0000000000000000' <<<"$st"
  grep -qxP 'CapAmb:\t0000000000000000' <<<"$st"
  grep -qxP 'NoNewPrivs:\t1' <<<"$st"
  grep -qxP 'Seccomp:\t2' <<<"$st"
  # a child of the daemon, not some other process of that user
  grep -qxP "PPid:\t$(daemon_pid)" <<<"$st"
}

@test "the database role logs in with scram-sha-256 (what the memory scan below relies on)" {
  [ "$(pgt_psql -c "select left(rolpassword, 14) from pg_authid where rolname = 'app'")" = 'SCRAM-SHA-256$' ]
  run pgt_psql -c "select distinct auth_method from pg_hba_file_rules where type = 'host'"
  echo "$output"
  [ "$output" = scram-sha-256 ]
}

@test "two workers run as the worker user, without capabilities, with no_new_privs and seccomp; the parent is root" {
  local pids p
  status_json
  [ "$(jq '.workers | length' "$PGT_TMP/status.json")" -eq 2 ]
  # the two sessions are counted on the workers that serve them
  [ "$(jq '[.workers[].sessions] | add' "$PGT_TMP/status.json")" -ge 2 ]
  pids=$(worker_pids)
  for p in $pids; do
    assert_sandboxed "$p"
  done
  grep -qxP 'Uid:\t0\t0\t0\t0' "/proc/$(daemon_pid)/status"
  # every connection's worker is one of the listed workers
  for p in $(worker_of "$PGT_CG/sess-a") $(worker_of "$PGT_CG/sess-b"); do
    grep -qx "$p" <<<"$pids"
  done
}

@test "the database password is in the parent's memory and in no worker's" {
  local pids out
  pids=$(worker_pids)
  [ -n "$pids" ]
  # shellcheck disable=SC2086
  run env PGT_NEEDLE="$PG_APP_PASSWORD" /usr/bin/python3 "$PROCMEM" scan "$(daemon_pid)" $pids
  echo "$output"
  [ "$status" -eq 0 ]
  # the scan works: the parent, which holds the credential, has it
  grep -qE "^$(daemon_pid) found " <<<"$output"
  for p in $pids; do
    out=$(grep -E "^$p " <<<"$output")
    [[ "$out" == "$p absent "* ]]
  done
}

@test "a worker can be neither traced nor read by another user, not even its own" {
  local pids p u
  pids=$(worker_pids)
  [ "$(wc -w <<<"$pids")" -eq 2 ]
  for p in $pids; do
    for u in "$PGT_WORKER_USER" nobody; do
      run setpriv --reuid="$(id -u "$u")" --regid="$(id -g "$u")" --clear-groups -- \
        /usr/bin/python3 "$PGT_TMP/procmem.py" probe "$p"
      echo "as $u, worker $p: $output"
      [ "$status" -eq 0 ]
      [[ "$output" == "ptrace=EPERM mem=EACCES" ]]
    done
  done
}

@test "killing the worker of one session ends only that session, with an error; a replacement serves at once" {
  local wa wb before t0 now ok=
  wa=$(worker_of "$PGT_CG/sess-a")
  wb=$(worker_of "$PGT_CG/sess-b")
  echo "session A on worker $wa, session B on worker $wb"
  [ -n "$wa" ] && [ -n "$wb" ]
  # two sessions, two workers: each on its own (else B cannot show it survives)
  [ "$wa" != "$wb" ]
  before=$(worker_pids)

  t0=$(date +%s%N)
  kill -KILL "$wa"
  # a new connection is served within 2 s of the kill
  while :; do
    if pgt_in "$PGT_CG/sess-c" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 'c-ok'" 2>"$PGT_TMP/c.err" |
      grep -qx c-ok; then
      ok=1
      break
    fi
    now=$(date +%s%N)
    ((now - t0 < 2000000000)) || break
    sleep 0.05
  done
  now=$(date +%s%N)
  echo "new connection after $(((now - t0) / 1000000)) ms"
  cat "$PGT_TMP/c.err"
  [ -n "$ok" ]
  ((now - t0 <= 2000000000))

  # A's client got an error from pgtether within a few seconds, not a hang
  pgt_wait_until 5 test -s "$PGT_TMP/a.rc"
  echo "session A: exit $(cat "$PGT_TMP/a.rc")"
  cat "$PGT_TMP/a.out"
  [ "$(cat "$PGT_TMP/a.rc")" -ne 0 ]
  grep -q pgtether "$PGT_TMP/a.out"
  grep -qi worker "$PGT_TMP/a.out"

  # B, on the other worker, still answers
  echo "select 'b-' || 2;" >"$PGT_TMP/b.in"
  pgt_wait_until 5 grep -qx b-2 "$PGT_TMP/b.out"
  [ "$(worker_of "$PGT_CG/sess-b")" = "$wb" ]

  # the killed worker was replaced by a new one, sandboxed like the first
  pgt_wait_until 5 bash -c '[ "$(jq ".workers | length" <<<"$("$0" -c "$1" status --json)")" -eq 2 ]' "$PGTETHER" "$PGT_CONF"
  status_json
  if worker_pids | grep -qx "$wa"; then
    echo "the killed worker $wa is still listed"
    false
  fi
  local p fresh=
  for p in $(worker_pids); do
    grep -qx "$p" <<<"$before" || fresh=$p
  done
  echo "replacement worker: $fresh"
  [ -n "$fresh" ]
  assert_sandboxed "$fresh"
  # the parent lived through it
  kill -0 "$(daemon_pid)"
}

@test "stopping the daemon ends its workers; no sanitizer report in the log" {
  local pids p
  pids=$(worker_pids)
  [ -n "$pids" ]
  echo "select 'b-' || 3;" >"$PGT_TMP/b.in"
  pgt_wait_until 5 grep -qx b-3 "$PGT_TMP/b.out"
  pgt_stop_daemon
  for p in $pids; do
    pgt_wait_until 5 bash -c '! kill -0 "$0" 2>/dev/null' "$p"
  done
  pgt_assert_clean_log
}
