#!/usr/bin/env bats
# Interception of unmodified clients: who is identified, what is left alone.

load helpers

CLIENTS="$PGT_ROOT/tests/clients"

setup_file() {
  pgt_setup_world
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
}

@test "psql in an attached cgroup reaches the database through pgtetherd and is identified" {
  "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/t1" -- psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq \
    -c "select client_port from pg_stat_activity where pid = pg_backend_pid()" >"$PGT_TMP/out" &
  local pid=$!
  wait "$pid"
  local line
  line=$(grep 'event=conn.open ' "$PGT_LOG" | grep " pid=$pid ")
  echo "$line"
  [[ "$line" == *" cgroup=$PGT_CG/t1 "* ]]
  [[ "$line" =~ \ exe=[^\ ]*/psql\  ]]
  [[ "$line" == *" uid=0 "* ]]
  [[ "$line" == *" dst=127.0.0.1:$PG_PORT "* ]]
  # The database sees the daemon's upstream socket, not psql's.
  local client_port upstream_port peer_port
  client_port=$(cat "$PGT_TMP/out")
  upstream_port=$(pgt_log_field conn.open " pid=$pid " upstream_local | sed 's/.*://')
  peer_port=$(pgt_log_field conn.open " pid=$pid " peer | sed 's/.*://')
  echo "client_port=$client_port upstream=$upstream_port peer=$peer_port"
  [ "$client_port" = "$upstream_port" ]
  [ "$client_port" != "$peer_port" ]
  # ... and the close line carries the identity, the byte counts and the duration.
  for _ in $(seq 50); do
    [ "$(pgt_log_count conn.close " pid=$pid ")" = 1 ] && break
    sleep 0.1
  done
  line=$(grep 'event=conn.close ' "$PGT_LOG" | grep " pid=$pid ")
  echo "$line"
  [[ "$line" == *" cgroup=$PGT_CG/t1 "* ]]
  [[ "$line" =~ \ bytes_in=[1-9][0-9]*\  ]]
  [[ "$line" =~ \ bytes_out=[1-9][0-9]*\  ]]
  [[ "$line" =~ \ duration_ms=[0-9]+\  ]]
}

@test "psql outside any attached cgroup connects directly" {
  local before
  before=$(pgt_log_count conn.open)
  run pgt_in_unattached "$PGT_CG/plain" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 42"
  [ "$status" -eq 0 ]
  [ "$output" = 42 ]
  [ "$(pgt_log_count conn.open)" = "$before" ]
  [ "$(pgt_log_count conn.refused)" = 0 ]
}

# [::1] is an alias of the upstream: pgtetherd connects to its address, 127.0.0.1
@test "IPv6 destinations are intercepted" {
  run pgt_in "$PGT_CG/t6" psql -X "host=::1 port=$PG_PORT" -Atq -c "select inet_client_addr()"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = "127.0.0.1" ]
  [ "$(pgt_log_count conn.open "dst=[::1]:$PG_PORT family=ipv6")" = 1 ]
  [ "$(pgt_log_field conn.open "cgroup=$PGT_CG/t6 " upstream_addr)" = "127.0.0.1:$PG_PORT" ]
}

@test "IPv4-mapped IPv6 destinations are intercepted" {
  run pgt_in "$PGT_CG/t46" psql -X "hostaddr=::ffff:127.0.0.1 port=$PG_PORT" -Atq -c "select 7"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = 7 ]
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/t46 ")" = 1 ]
  [ "$(pgt_log_count conn.open "dst=127.0.0.1:$PG_PORT family=ipv6")" = 1 ]
}

# pgx/pgconn sends its CancelRequest to net.Conn.RemoteAddr(), i.e. getpeername():
# that must be where the workload dialed (then the cancel is redirected like any
# connection), not pgtetherd's listener (a direct connection there is refused, and the
# cancel was lost: pgconn's own TestConnCancelRequest, 161-driver-suites.bats).
@test "getpeername of a redirected socket is the address dialed, and a cancel sent there lands" {
  cat >"$PGT_TMP/peer.py" <<'PY'
import socket, struct, sys, time
port = int(sys.argv[1])

def connect(family, addr):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(addr)
    return s

def read(s, buf, want):
    # until a message of type `want`; returns (body, rest, types seen)
    seen = []
    while True:
        while len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
            d = s.recv(65536)
            if not d:
                sys.exit("closed; saw %s" % seen)
            buf += d
        n = struct.unpack("!I", buf[1:5])[0]
        t, body, buf = buf[:1], buf[5:1 + n], buf[1 + n:]
        seen.append(t.decode())
        if t == want:
            return body, buf, seen

for family, addr in ((socket.AF_INET, ("127.0.0.1", port)), (socket.AF_INET6, ("::1", port)),
                     (socket.AF_INET6, ("::ffff:127.0.0.1", port))):
    s = connect(family, addr)
    print("peer", s.getpeername()[:2])
    s.close()

s = connect(socket.AF_INET, ("127.0.0.1", port))
body = struct.pack("!I", 3 << 16) + b"user\0app\0database\0postgres\0\0"
s.sendall(struct.pack("!I", len(body) + 4) + body)
key, buf, _ = read(s, b"", b"K")
_, buf, _ = read(s, buf, b"Z")
q = b"select pg_sleep(5)\0"
s.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
time.sleep(0.5)
c = connect(socket.AF_INET, s.getpeername()[:2])  # as pgconn does
c.sendall(struct.pack("!II", 16, 80877102) + key)
c.recv(1)
c.close()
err, buf, _ = read(s, buf, b"E")
print("cancel", [f[1:].decode() for f in err.split(b"\0") if f[:1] == b"C"])
PY
  run timeout 30 "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/peer" -- /usr/bin/python3 "$PGT_TMP/peer.py" "$PG_PORT"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "peer ('127.0.0.1', $PG_PORT)" ]
  [ "${lines[1]}" = "peer ('::1', $PG_PORT)" ]
  [ "${lines[2]}" = "peer ('::ffff:127.0.0.1', $PG_PORT)" ]
  [ "${lines[3]}" = "cancel ['57014']" ]
  [ "$(pgt_log_count conn.refused "not redirected")" = 0 ]
}

# libpq, JDBC and others send a CancelRequest and close at once; the kernel may finish
# the client's side (FIN acknowledged: TIME_WAIT) before pgtetherd accepts it. The
# record of who made it must still be there: here the daemon is stopped meanwhile.
@test "a CancelRequest sent and closed before the daemon accepts it still lands" {
  cat >"$PGT_TMP/cancel-closed.py" <<'PY'
import os, signal, socket, struct, sys, time
port, daemon = int(sys.argv[1]), int(sys.argv[2])

def read(s, buf, want):
    while True:
        while len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
            d = s.recv(65536)
            if not d:
                sys.exit("closed")
            buf += d
        n = struct.unpack("!I", buf[1:5])[0]
        t, body, buf = buf[:1], buf[5:1 + n], buf[1 + n:]
        if t == want:
            return body, buf

s = socket.create_connection(("127.0.0.1", port), timeout=20)
body = struct.pack("!I", 3 << 16) + b"user\0app\0database\0postgres\0\0"
s.sendall(struct.pack("!I", len(body) + 4) + body)
key, buf = read(s, b"", b"K")
_, buf = read(s, buf, b"Z")
q = b"select pg_sleep(10)\0"
s.sendall(b"Q" + struct.pack("!I", len(q) + 4) + q)
time.sleep(0.3)
os.kill(daemon, signal.SIGSTOP)
try:
    c = socket.create_connection(("127.0.0.1", port), timeout=5)
    c.sendall(struct.pack("!II", 16, 80877102) + key)
    c.close()
    time.sleep(0.5)  # the kernel acknowledges the FIN: the client's socket is gone
finally:
    os.kill(daemon, signal.SIGCONT)
t0 = time.time()
while True:  # the query's end: an error (cancelled) or its result
    while len(buf) < 5 or len(buf) < 1 + struct.unpack("!I", buf[1:5])[0]:
        buf += s.recv(65536)
    n = struct.unpack("!I", buf[1:5])[0]
    t, body, buf = buf[:1], buf[5:1 + n], buf[1 + n:]
    if t == b"E":
        print("cancel", [f[1:].decode() for f in body.split(b"\0") if f[:1] == b"C"], "after %.1f s" % (time.time() - t0))
        break
    if t == b"Z":
        print("not cancelled: the query ran to its end")
        break
PY
  run timeout 30 "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/cancel-closed" -- \
    /usr/bin/python3 -u "$PGT_TMP/cancel-closed.py" "$PG_PORT" "$(cat "$PGT_TMP/daemon.pid")"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == "cancel ['57014'] after "* ]]
  [ "$(pgt_log_count conn.refused "not redirected")" = 0 ]
}

# PostgreSQL drops a cancel that reaches a backend before it has read the query (as
# one that reaches an idle backend); on a loaded machine a backend may not run for
# seconds after the query's bytes came. Here the backend is stopped while the query
# and the cancel arrive: pgtether answers the client once the server took the first
# try (as PostgreSQL does), and goes on sending it while the query is outstanding,
# until one lands after the backend runs again.
@test "a cancel the backend was too late to act on is sent again until it lands" {
  run timeout 40 "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/cancel-stopped" -- \
    /usr/bin/python3 -u "$CLIENTS/cancel_scenes.py" stopped "$PG_PORT"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "requester answered while the backend was stopped: True" ]
  [ "${lines[1]}" = "cancel ['57014'] within 5 s: True" ]
}

# The tries pgtether adds are its own: one must not cancel a statement the client sent
# after its cancel was answered and the query it was for had ended. An extended-query
# client that flushes instead of syncing (libpq and psycopg pipelines) gets no
# ReadyForQuery between statements: here the first statement's cancel is lost (the
# backend stopped, as in the test above), the statement ends, and the client's next
# one, sent 3 s after its cancel was answered, must run to its end.
@test "a cancel's later tries do not cancel a statement sent after its query ended" {
  run timeout 60 "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/cancel-next" -- \
    /usr/bin/python3 -u "$CLIENTS/cancel_scenes.py" next "$PG_PORT"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "first: ran" ]
  [ "${lines[1]}" = "next: ran" ]
}

# A cancel that reaches an idle backend is dropped by PostgreSQL and changes nothing:
# through pgtether too. An extended-query client that flushes instead of syncing
# (libpq and psycopg pipelines, asyncpg cursors) is idle after its statement's
# CommandComplete; a cancel sent then (a timeout that fired as the answer came) must not
# make its next statement wait for pgtether's tries (up to 8 s).
@test "a cancel sent after an unsynced statement ended does not hold the next one" {
  run timeout 40 "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/cancel-idle" -- \
    /usr/bin/python3 -u "$CLIENTS/cancel_scenes.py" idle "$PG_PORT"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "first: ran" ]
  [[ "${lines[1]}" == "next: ran within 2 s: True "* ]]
}

@test "a connection to a port that is not a target is untouched" {
  local port before
  port=$(pgt_free_port)
  /usr/bin/python3 - "$port" <<'PY' &
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
s.settimeout(10)
c, _ = s.accept()
c.sendall(b"direct\n")
c.close()
PY
  local srv=$!
  for _ in $(seq 50); do ss -ltn "sport = :$port" | grep -q LISTEN && break; sleep 0.1; done
  before=$(pgt_log_count conn.open)
  run pgt_in "$PGT_CG/t1" /usr/bin/python3 -c "import socket,sys; c=socket.create_connection(('127.0.0.1', int(sys.argv[1])), 5); print(c.recv(64).decode().strip())" "$port"
  wait "$srv" || true
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = direct ]
  [ "$(pgt_log_count conn.open)" = "$before" ]
}

@test "a direct connection to the daemon's listener is refused with a PostgreSQL error" {
  run psql -X -h 127.0.0.1 -p "$PGT_PORT" -Atq -c "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"FATAL:  pgtether: this connection was not redirected by pgtether"* ]]
  [ "$(pgt_log_count conn.refused "not redirected")" -ge 1 ]
  [ "$(pgt_log_count conn.refused 'sqlstate=08004 reason="not redirected"')" -ge 1 ]
  # the same without TLS negotiation (no SSLRequest first)
  run psql -X "host=127.0.0.1 port=$PGT_PORT sslmode=disable" -Atq -c "select 1"
  [ "$status" -eq 2 ]
  [[ "$output" == *"not redirected by pgtether"* ]]
}

@test "a flood of SSLRequests is cut off after the two negotiations PostgreSQL allows" {
  run /usr/bin/python3 -c '
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
try:
    for _ in range(20000):
        s.sendall(struct.pack("!II", 8, 80877103))
except OSError:
    pass
s.settimeout(5)
got = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
except OSError:
    pass
print(len(got), got[:2])' "$PGT_PORT"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == "2 b'NN'" || "$output" == "1 b'N'" || "$output" == "0 b''" ]]
  # and the daemon is alive and well
  run pgt status --json
  [ "$status" -eq 0 ]
}

@test "pgtether status lists attached cgroups and live connections with their identity" {
  "$PGTETHER" -c "$PGT_CONF" run --cgroup "$PGT_CG/t1" -- psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select pg_sleep(3)" >/dev/null &
  local pid=$!
  local found=
  for _ in $(seq 40); do
    pgt status --json >"$PGT_TMP/status.json"
    if jq -e --argjson pid "$pid" '.connections[] | select(.pid == $pid)' "$PGT_TMP/status.json" >/dev/null; then
      found=1
      break
    fi
    sleep 0.1
  done
  wait "$pid"
  cat "$PGT_TMP/status.json"
  [ -n "$found" ]
  jq -e --arg cg "$PGT_CG/t1" '.attached | map(.cgroup) | index($cg) != null' "$PGT_TMP/status.json"
  jq -e --argjson pid "$pid" --arg cg "$PGT_CG/t1" \
    '.connections[] | select(.pid == $pid) | .cgroup == $cg and (.exe | endswith("/psql")) and .uid == 0 and .state == "relaying"' \
    "$PGT_TMP/status.json"
  run pgt status
  [ "$status" -eq 0 ]
  [[ "$output" == *"$PGT_CG/t1"* ]]
}

@test "the origins map is empty once connections are closed" {
  for _ in $(seq 50); do
    [ "$(bpftool map dump pinned "$PGT_BPFFS/pgt_origins" -j | jq length)" = 0 ] && break
    sleep 0.1
  done
  [ "$(bpftool map dump pinned "$PGT_BPFFS/pgt_origins" -j | jq length)" = 0 ]
}

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
}
