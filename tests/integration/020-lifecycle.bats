#!/usr/bin/env bats
# Attach, detach, daemon stop and restart: fail closed, re-adoption of pins, fail open.

load helpers

setup_file() {
  pgt_setup_world
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
}

psql_in_unattached() {
  pgt_in_unattached "$1" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
}

# prints how often each of our programs is attached to CGROUP
attached_programs() {
  bpftool cgroup show "$CGMOUNT$1" | awk 'NR > 1 { print $NF }' | sort | uniq -c
}

@test "pgtether detach stops interception for that cgroup at once" {
  run pgt_in "$PGT_CG/d1" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  [ "$status" -eq 0 ]
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/d1 ")" = 1 ]
  run pgt detach "$PGT_CG/d1"
  [ "$status" -eq 0 ]
  [ "$output" = "detached $PGT_CG/d1" ]
  [ -z "$(attached_programs "$PGT_CG/d1")" ]
  [ -z "$(ls "$PGT_BPFFS/links" | grep -- '-d1$')" ]
  run psql_in_unattached "$PGT_CG/d1"
  [ "$status" -eq 0 ]
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/d1 ")" = 1 ]
  # detaching again says so
  run pgt detach "$PGT_CG/d1"
  [ "$status" -eq 1 ]
  [[ "$output" == *"is not attached"* ]]
}

@test "pgtether attach makes an existing cgroup intercepted" {
  mkdir -p "$CGMOUNT$PGT_CG/a1"
  run pgt attach "$PGT_CG/a1"
  [ "$status" -eq 0 ]
  [ "$output" = "attached $PGT_CG/a1" ]
  run pgt attach "$PGT_CG/a1"
  [ "$output" = "$PGT_CG/a1 was attached already" ]
  run psql_in_unattached "$PGT_CG/a1"
  [ "$status" -eq 0 ]
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/a1 ")" = 1 ]
  run pgt attach "$PGT_CG/does-not-exist"
  [ "$status" -eq 1 ]
  [[ "$output" == *"No such file or directory"* ]]
}

@test "attached cgroups cost the daemon no file descriptor: their links live in the pins" {
  local pid i
  pid=$(cat "$PGT_TMP/daemon.pid")
  for i in 1 2 3 4 5 6 7 8; do
    mkdir -p "$CGMOUNT$PGT_CG/many/c$i"
    pgt attach "$PGT_CG/many/c$i" >/dev/null
  done
  [ "$(ls "$PGT_BPFFS/links" | wc -l)" -ge 8 ]
  # each attached cgroup has its five links pinned, and none is an open fd of the daemon
  [ "$(find /proc/"$pid"/fd -lname 'anon_inode:bpf_link' | wc -l)" -eq 0 ]
  run psql_in_unattached "$PGT_CG/many/c8"
  [ "$status" -eq 0 ]
  run pgt detach "$PGT_CG/many/c8"
  [ "$status" -eq 0 ]
  run psql_in_unattached "$PGT_CG/many/c8"
  [ "$status" -eq 0 ]
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/many/c8 ")" = 1 ]
  for i in 1 2 3 4 5 6 7; do pgt detach "$PGT_CG/many/c$i" >/dev/null; done
}

@test "with the daemon stopped a redirected connection is refused within a second" {
  run pgt_in "$PGT_CG/f1" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  [ "$status" -eq 0 ]
  pgt_stop_daemon
  pgt_assert_clean_log
  local t0 t1
  t0=$(date +%s%N)
  run psql_in_unattached "$PGT_CG/f1"
  t1=$(date +%s%N)
  echo "$output; $(( (t1 - t0) / 1000000 )) ms"
  [ "$status" -eq 2 ]
  [[ "$output" == *"Connection refused"* ]]
  [ $(( (t1 - t0) / 1000000 )) -lt 1000 ]
  # and the database never saw it: no session from a non-daemon port was logged either
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/f1 ")" = 1 ]
}

@test "a restarted daemon re-adopts its pins: connections work again, each program attached once" {
  pgt_start_daemon
  grep -q "re-adopted the pinned attachment of cgroup $PGT_CG/f1" "$PGT_LOG"
  run psql_in_unattached "$PGT_CG/f1"
  [ "$status" -eq 0 ]
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/f1 ")" = 2 ]
  run attached_programs "$PGT_CG/f1"
  echo "$output"
  [ "${#lines[@]}" -eq 5 ]
  [[ "$output" == *"1 pgt_connect4"* ]]
  [[ "$output" == *"1 pgt_connect6"* ]]
  [[ "$output" == *"1 pgt_sockops"* ]]
  [[ "$output" == *"1 pgt_getpeername4"* ]]
  [[ "$output" == *"1 pgt_getpeername6"* ]]
  # a second restart still leaves exactly one of each
  pgt_stop_daemon
  pgt_start_daemon
  run attached_programs "$PGT_CG/f1"
  [ "${#lines[@]}" -eq 5 ]
  [[ "$output" != *" 2 "* ]]
}

# Pins of a pgtetherd that had no getpeername programs: the daemon attaches a whole
# new set before it lets the old links go (never a moment without connect hooks),
# and ends with one of each.
@test "a restarted daemon completes a set of pins with programs missing" {
  local dir
  pgt_stop_daemon
  dir=$(ls -d "$PGT_BPFFS"/links/*-f1)
  rm "$dir/getpeername4" "$dir/getpeername6"
  run attached_programs "$PGT_CG/f1"
  [ "${#lines[@]}" -eq 3 ]
  pgt_start_daemon
  run attached_programs "$PGT_CG/f1"
  echo "$output"
  [ "${#lines[@]}" -eq 5 ]
  [[ "$output" != *" 2 "* ]]
  [ -e "$dir/getpeername4" ] && [ -e "$dir/getpeername6" ]
  run psql_in_unattached "$PGT_CG/f1"
  [ "$status" -eq 0 ]
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/f1 ")" = 3 ]
}

@test "pins of a cgroup that disappeared while the daemon was down are removed" {
  run pgt_in "$PGT_CG/gone" true
  [ "$status" -eq 0 ]
  pgt_stop_daemon
  rmdir "$CGMOUNT$PGT_CG/gone"
  pgt_start_daemon
  grep -q "removed the pins of cgroup $PGT_CG/gone" "$PGT_LOG"
  run pgt status --json
  [[ "$output" != *"$PGT_CG/gone"* ]]
  [ -z "$(ls "$PGT_BPFFS/links" | grep -- '-gone$')" ]
}

@test "cgroups listed in the config are attached at start" {
  pgt_stop_daemon
  mkdir -p "$CGMOUNT$PGT_CG/cfg"
  pgt_write_config closed "[\"$PGT_CG/cfg\", \"$PGT_CG/missing\"]"
  pgt_start_daemon
  grep -q "attached to cgroup $PGT_CG/cfg" "$PGT_LOG"
  grep -q "event=attach .*$PGT_CG/missing.*not intercepted" "$PGT_LOG"
  run psql_in_unattached "$PGT_CG/cfg"
  [ "$status" -eq 0 ]
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/cfg ")" = 1 ]
}

@test "fail_mode open: with the daemon stopped, connections go straight to the database" {
  pgt_stop_daemon
  pgt_write_config open
  pgt_start_daemon
  run psql_in_unattached "$PGT_CG/f1"
  [ "$status" -eq 0 ]
  local n
  n=$(pgt_log_count conn.open "cgroup=$PGT_CG/f1 ")
  pgt_stop_daemon
  run psql_in_unattached "$PGT_CG/f1"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = 1 ]
  # intercepted again once the daemon is back
  pgt_start_daemon
  run psql_in_unattached "$PGT_CG/f1"
  [ "$status" -eq 0 ]
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/f1 ")" = $((n + 1)) ]
}

@test "run --in-scope, the half that runs inside a systemd scope, attaches its own cgroup" {
  run pgt_in_unattached "$PGT_CG/scope1" "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/scope1" --in-scope -- \
    psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 8"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = 8 ]
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/scope1 ")" = 1 ]
  # a process that is not where it claims to be is refused
  run "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/scope2" --in-scope -- true
  [ "$status" -eq 1 ]
  [[ "$output" == *"expected to run in cgroup $PGT_CG/scope2, but this process is in"* ]]
}

@test "a connection whose process died and whose pid was taken over never gets the new process's identity" {
  cat >"$PGT_TMP/reuse.py" <<'PY'
# The child connects and exits at once; the parent then hands the child's pid to a
# `sleep` (through ns_last_pid) and speaks on the connected socket it still holds.
import os, socket, struct, subprocess, sys
port = int(sys.argv[1])
s = socket.socket()
child = os.fork()
if child == 0:
    s.connect(("127.0.0.1", port))
    os._exit(0)
os.waitpid(child, 0)
sleeper = None
for _ in range(50):
    with open("/proc/sys/kernel/ns_last_pid", "w") as f:
        f.write(str(child - 1))
    sleeper = subprocess.Popen(["sleep", "10"])
    if sleeper.pid == child:
        break
    sleeper.kill()
    sleeper.wait()
    sleeper = None
print("pid", child, "reused" if sleeper else "not reused")
body = struct.pack("!I", 3 << 16) + b"user\0app\0database\0postgres\0\0"
s.sendall(struct.pack("!I", len(body) + 4) + body)
s.settimeout(5)
data = s.recv(4096)
print("answer", data[:1].decode())
if sleeper:
    sleeper.kill()
PY
  run pgt_in "$PGT_CG/reuse" /usr/bin/python3 "$PGT_TMP/reuse.py" "$PG_PORT"
  echo "$output"
  [ "$status" -eq 0 ]
  local pid
  pid=$(sed -n 's/^pid \([0-9]*\) .*/\1/p' <<<"$output")
  [ -n "$pid" ]
  sleep 0.2
  grep -E "event=conn\.(open|refused) .* pid=$pid " "$PGT_LOG" || true
  # whatever the timing, the identity logged for that pid is never the sleeper's
  run grep -E "event=conn\.(open|refused) .* pid=$pid .*exe=[^ ]*sleep" "$PGT_LOG"
  [ "$status" -eq 1 ]
}

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
}
