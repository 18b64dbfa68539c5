#!/usr/bin/env bats
# Service-manager integration: sd_notify READY=1 only once interception is live,
# RELOADING=1/READY=1 around SIGHUP, and what a reload changes or refuses to change.

load helpers

setup_file() {
  pgt_setup_world
  mkdir -p "$CGMOUNT$PGT_CG/svc"
  pgt_write_config closed "[\"$PGT_CG/svc\"]"
  cat >"$PGT_TMP/notify-listener.py" <<'PY'
# Listens on a NOTIFY_SOCKET; writes every datagram to LOG; at the first READY=1 runs a
# redirected psql right away and writes its result, proving interception is live then.
import os, socket, subprocess, sys
sock_path, log, cg, port = sys.argv[1:5]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sock_path)
s.settimeout(60)
probed = False
with open(log, "a", buffering=1) as out:
    while True:
        msg = s.recv(4096).decode()
        out.write(msg.replace("\n", " ") + "\n")
        if "READY=1" in msg and not probed:
            probed = True
            r = subprocess.run(["bash", "-c", 'echo $$ > "$0/cgroup.procs" && exec psql -X -h 127.0.0.1 -p "$1" -Atq -c "select 1"', cg, port],
                               capture_output=True, text=True)
            out.write("probe=%d %s\n" % (r.returncode, (r.stdout + r.stderr).strip()))
        if "STOPPING=1" in msg:
            break
PY
}

teardown_file() {
  [ -f "$PGT_TMP/listener.pid" ] && kill "$(cat "$PGT_TMP/listener.pid")" 2>/dev/null
  pgt_teardown_world
}

wait_for_line() { # FILE PATTERN COUNT
  for _ in $(seq 100); do
    [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "${3:-1}" ] && return 0
    sleep 0.1
  done
  cat "$1" >&2
  return 1
}

@test "READY=1 is sent only when interception is live" {
  /usr/bin/python3 "$PGT_TMP/notify-listener.py" "$PGT_TMP/notify.sock" "$PGT_TMP/notify.log" "$CGMOUNT$PGT_CG/svc" "$PG_PORT" 3>&- &
  echo "$!" >"$PGT_TMP/listener.pid"
  for _ in $(seq 50); do [ -S "$PGT_TMP/notify.sock" ] && break; sleep 0.1; done
  NOTIFY_SOCKET="$PGT_TMP/notify.sock" pgt_start_daemon
  wait_for_line "$PGT_TMP/notify.log" "probe="
  cat "$PGT_TMP/notify.log"
  [ "$(head -n 1 "$PGT_TMP/notify.log")" = "READY=1" ]
  grep -qx "probe=0 1" "$PGT_TMP/notify.log"
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/svc ")" = 1 ]
}

@test "SIGHUP sends RELOADING=1 then READY=1 and applies a changed configuration" {
  mkdir -p "$CGMOUNT$PGT_CG/svc2"
  pgt_write_config closed "[\"$PGT_CG/svc2\"]"
  kill -HUP "$(cat "$PGT_TMP/daemon.pid")"
  wait_for_line "$PGT_TMP/notify.log" "READY=1" 2
  cat "$PGT_TMP/notify.log"
  run grep -E '^(READY|RELOADING)' "$PGT_TMP/notify.log"
  [[ "${lines[1]}" == "RELOADING=1 MONOTONIC_USEC="* ]]
  [ "${lines[2]}" = "READY=1" ]
  grep -q "attached to cgroup $PGT_CG/svc2" "$PGT_LOG"
  grep -q "detached from cgroup $PGT_CG/svc: no longer in" "$PGT_LOG"
  run pgt_in_unattached "$PGT_CG/svc2" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 2"
  [ "$output" = 2 ]
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/svc2 ")" = 1 ]
  run pgt_in_unattached "$PGT_CG/svc" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 3"
  [ "$output" = 3 ]
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/svc ")" = 1 ]
}

@test "a broken configuration on SIGHUP keeps the running one and says why" {
  cp "$PGT_CONF" "$PGT_TMP/good.json"
  printf '{ "listen": "127.0.0.1:%s", "targetz": [] }\n' "$PGT_PORT" >"$PGT_CONF"
  kill -HUP "$(cat "$PGT_TMP/daemon.pid")"
  wait_for_line "$PGT_TMP/notify.log" "READY=1" 3
  grep -q "event=reload .*unknown key 'targetz' (did you mean 'targets'?); keeping the running configuration" "$PGT_LOG"
  run pgt_in_unattached "$PGT_CG/svc2" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 4"
  [ "$output" = 4 ]
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/svc2 ")" = 2 ]
  # a key that needs a restart is refused the same way
  sed "s|127.0.0.1:$PGT_PORT|127.0.0.1:1|" "$PGT_TMP/good.json" >"$PGT_CONF"
  kill -HUP "$(cat "$PGT_TMP/daemon.pid")"
  wait_for_line "$PGT_TMP/notify.log" "READY=1" 4
  grep -q "event=reload .*'listen' changed, which needs a restart of pgtetherd; keeping the running configuration" "$PGT_LOG"
  cp "$PGT_TMP/good.json" "$PGT_CONF"
}

@test "STOPPING=1 on SIGTERM, and no sanitizer report" {
  pgt_stop_daemon
  wait_for_line "$PGT_TMP/notify.log" "STOPPING=1"
  pgt_assert_clean_log
}
