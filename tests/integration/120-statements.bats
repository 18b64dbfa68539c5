#!/usr/bin/env bats
# Statement rules: every Query and Parse is classified by PostgreSQL's own parser and
# decided by the session's rule; a denial is an error, and the session goes on.

load helpers

setup_file() {
  export PGT_OWN_POLICY=1
  # an approver who is not root: a system user and group of this run's own
  export PGT_AP="${PGT_RUN_ID}-a"
  groupadd -r "$PGT_AP"
  useradd -r -M -N -g "$PGT_AP" -s /usr/sbin/nologin "$PGT_AP"
  export AP_UID AP_GID
  AP_UID=$(id -u "$PGT_AP")
  AP_GID=$(getent group "$PGT_AP" | cut -d: -f3)
  export PGT_EXTRA_CONFIG="\"approvers_group\": \"$PGT_AP\""
  # without CAP_CHOWN root gives the control socket only to a group it is in: under
  # systemd SupplementaryGroups= (pgtetherd says so), here the same
  PGT_DAEMON_GROUPS=$(getent group "$PGT_AP" | cut -d: -f3)
  export PGT_DAEMON_GROUPS
  pgt_setup_world
  pgt_psql -c "create table items (id int, v text)" -c "insert into items values (1, 'a'), (2, 'b')" \
    -c "create table secrets (k text)" -c "grant all on items, secrets to app" \
    -c "create function add_item() returns int language sql as 'insert into items values (9, ''f'') returning id'" \
    -c "create sequence item_ids" -c "grant all on sequence item_ids to app" \
    -c "create function go_rw() returns text language sql as \$\$ select set_config('default_transaction_read_only', 'off', false) \$\$"
  mkdir -p "$PGT_TMP/policy.d"
  write_rules
  pgt_write_config closed
  pgt_start_daemon
}

# nothing a test held waits into the next (a failed test leaves its request behind)
teardown() {
  local r
  for r in $("$PGTETHER" -c "$PGT_CONF" approvals --json 2>/dev/null | jq -r '.[].request' 2>/dev/null); do
    "$PGTETHER" -c "$PGT_CONF" deny "$r" >/dev/null 2>&1 || true
  done
}

teardown_file() {
  pgt_teardown_world
  userdel "$PGT_AP" 2>/dev/null || true
  groupdel "$PGT_AP" 2>/dev/null || true
}

write_rules() {
  cat >"$PGT_TMP/policy.d/10-stmt.json" <<JSON
{ "rules": [
  { "name": "agent", "match": { "cgroup": "$PGT_CG/agent" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "write", "transaction", "session"], "deny": ["drop"],
                    "tables": { "deny": ["public.secrets"] } } },
  { "name": "reader", "match": { "cgroup": "$PGT_CG/reader" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read"] } },
  { "name": "viewer", "match": { "cgroup": "$PGT_CG/viewer" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "transaction", "session"] } },
  { "name": "free", "match": { "cgroup": "$PGT_CG/free" }, "token": { "source": "none" }, "upstream": "main" },
  { "name": "careful", "match": { "cgroup": "$PGT_CG/careful" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "transaction", "session"], "approve": ["write"], "approval_timeout": 60 } },
  { "name": "hasty", "match": { "cgroup": "$PGT_CG/hasty" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "transaction", "session"], "approve": ["write"], "approval_timeout": 2 } },
  { "name": "prep", "match": { "cgroup": "$PGT_CG/prep" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "transaction", "session", "dynamic"], "approve": ["write"], "approval_timeout": 60 } },
  { "name": "sneaky", "match": { "cgroup": "$PGT_CG/sneaky/**" }, "token": { "source": "none" }, "upstream": "main",
    "statements": { "allow": ["read", "transaction", "session"], "approve": ["write"], "approval_timeout": 60 } }
] }
JSON
}

# agent|reader|free SQL...: psql in that cgroup, one -c per argument, in one session
as() {
  local who=$1; shift
  local args=()
  for q in "$@"; do args+=(-c "$q"); done
  pgt_in "$PGT_CG/$who" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq "${args[@]}" 2>&1
}

@test "a denied DROP gets 42501 naming the rule and class, and the next statement in the session works" {
  run as agent "drop table items" "select count(*) from items"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "ERROR:  pgtether: statement class drop is denied by rule 'agent'" ]
  [ "${lines[1]}" = "2" ]
  [ "$(pgt_psql -c "select count(*) from items")" = 2 ]
  [ "$(pgt_log_count stmt.denied "rule=agent ")" -ge 1 ]
  [ "$(pgt_log_field stmt.denied "rule=agent " sqlstate)" = 42501 ]
  [ "$(pgt_log_field stmt.denied "rule=agent " message)" = query ]
  # the SQLSTATE, as a client sees it
  run pgt_in "$PGT_CG/agent" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -v VERBOSITY=verbose -c "drop table items"
  [[ "$output" == *"ERROR:  42501: pgtether: statement class drop is denied by rule 'agent'"* ]]
}

@test "one denied statement denies the whole multi-statement Query, comments and quoting do not hide it" {
  run as agent "insert into items values (3, 'c'); DROP /* hidden */ TABLE items" "select count(*) from items"
  echo "$output"
  [ "${lines[0]}" = "ERROR:  pgtether: statement class drop is denied by rule 'agent'" ]
  [ "${lines[1]}" = "2" ] # the insert before it did not run either
  run as agent "select \$\$ drop table items \$\$ as text" "COMMIT; DrOp TaBlE items"
  echo "$output"
  [ "${lines[0]}" = " drop table items " ]
  [ "${lines[1]}" = "ERROR:  pgtether: statement class drop is denied by rule 'agent'" ]
}

@test "inside a transaction a denial aborts it, exactly as a failed statement would" {
  run as agent "begin" "insert into items values (9, 'z')" "drop table items" "select 1" "rollback" "select count(*) from items"
  echo "$output"
  [ "${lines[0]}" = "ERROR:  pgtether: statement class drop is denied by rule 'agent'" ]
  [ "${lines[1]}" = "ERROR:  current transaction is aborted, commands ignored until end of transaction block" ]
  [ "${lines[2]}" = "2" ]
}

@test "tables, classes and text that does not parse are denied with the reason" {
  run as agent "select * from secrets" "select * from public.secrets" "selec 1" "truncate items"
  echo "$output"
  [ "${lines[0]}" = "ERROR:  pgtether: table secrets resolves to public.secrets on this session's search_path, and table public.secrets is denied by rule 'agent'" ]
  [ "${lines[1]}" = "ERROR:  pgtether: table public.secrets is denied by rule 'agent'" ]
  [[ "${lines[2]}" == "ERROR:  pgtether: the statement cannot be checked against rule 'agent', so it is denied: syntax error at or near \"selec\""* ]]
  [ "${lines[3]}" = "ERROR:  pgtether: statement class truncate is not allowed by rule 'agent'" ]
  run as reader "select v from items where id = 1" "update items set v = 'x'" "with d as (delete from items returning *) select * from d" "select pg_read_file('/etc/hostname')"
  echo "$output"
  [ "${lines[0]}" = "a" ]
  [ "${lines[1]}" = "ERROR:  pgtether: statement class write is not allowed by rule 'reader'" ]
  [ "${lines[2]}" = "ERROR:  pgtether: statement class write is not allowed by rule 'reader'" ]
  [ "${lines[3]}" = "ERROR:  pgtether: statement class dangerous_function is not allowed by rule 'reader'" ]
  # a rule without "statements" leaves it to the role's own privileges
  run as free "select count(*) from secrets"
  [ "$output" = "0" ]
}

@test "a denied Parse in a psycopg pipeline is answered as PostgreSQL answers a failed one" {
  cat >"$PGT_TMP/pipe.py" <<'PY'
import logging
import sys
import psycopg
logging.getLogger("psycopg").setLevel(logging.ERROR)  # its pipeline-exit warning is racy

def run(conn, sqls):
    out = []
    try:
        with conn.pipeline():
            curs = []
            for q in sqls:
                c = conn.cursor()
                c.execute(q)
                curs.append(c)
    except psycopg.errors.Error as e:
        out.append(f"pipeline error {e.sqlstate}: {str(e).splitlines()[0]}")
    for c in curs:
        try:
            out.append(f"ok {c.fetchall()}")
        except psycopg.Error as e:
            out.append(f"{type(e).__name__} {e.sqlstate}")
    return out

conn = psycopg.connect(sys.argv[1], autocommit=True)
for line in run(conn, [sys.argv[2], "select 1", sys.argv[3], "select 2"]):
    print(line)
print("after:", conn.execute("select 42").fetchone()[0])
PY
  local dsn="host=127.0.0.1 port=$PG_PORT user=app dbname=postgres"
  # straight to the database, with a statement that fails on its own
  run env PGPASSWORD="$PG_APP_PASSWORD" /usr/bin/python3 "$PGT_TMP/pipe.py" "$dsn" "select 0" "select * from no_such_table"
  echo "$output"
  local direct=$output
  run pgt_in "$PGT_CG/agent" /usr/bin/python3 "$PGT_TMP/pipe.py" "$dsn" "select 0" "drop table items"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == "pipeline error 42501: pgtether: statement class drop is denied by rule 'agent'" ]]
  # the same shape as the database's own answer to a failing statement: the error,
  # then the results of the statements before it. Whether psycopg has collected the
  # statement after the error when the pipeline block raises is a race in the client
  # (seen straight to the database too), so that line is not compared.
  [ "$(head -n 3 <<<"$output" | sed -E 's/^pipeline error .*/pipeline error/')" = \
    "$(head -n 3 <<<"$direct" | sed -E 's/^pipeline error .*/pipeline error/')" ]
  [ "${lines[3]}" = "ProgrammingError None" ]
  [ "${lines[-1]}" = "after: 42" ]
}

@test "a pipeline of many denied statements is one error, and the session goes on" {
  cat >"$PGT_TMP/many.py" <<'PY'
import logging
import sys
import psycopg
logging.getLogger("psycopg").setLevel(logging.ERROR)  # its pipeline-exit warning is racy
conn = psycopg.connect(sys.argv[1], autocommit=True)
conn.prepare_threshold = None  # a Parse for every execution, as many drivers send
try:
    with conn.pipeline():
        for i in range(40):
            conn.execute("insert into items values (%s, 'x')", (100 + i,))
except psycopg.Error as e:
    print(e.sqlstate, str(e).splitlines()[0])
print("after:", conn.execute("select count(*) from items").fetchone()[0])
PY
  run pgt_in "$PGT_CG/reader" /usr/bin/python3 "$PGT_TMP/many.py" "host=127.0.0.1 port=$PG_PORT user=app dbname=postgres"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "42501 pgtether: statement class write is not allowed by rule 'reader'" ]
  [ "${lines[1]}" = "after: 2" ]
}

@test "a broken policy file on SIGHUP keeps the old policy enforced" {
  echo '{ "rules": [ { "name": "x", "match": { "cgroup": "/x" }, "token": { "source": "none" }, "upstream": "main", "statements": { "allow": ["reed"] } } ] }' \
    >"$PGT_TMP/policy.d/20-broken.json"
  pgt_reload
  rm -f "$PGT_TMP/policy.d/20-broken.json"
  [[ "$(grep "event=reload " "$PGT_LOG" | tail -n 1)" == *"20-broken.json:1:"*"unknown statement class"*"keeping the running configuration"* ]]
  run as agent "drop table items" "select count(*) from items"
  [ "${lines[0]}" = "ERROR:  pgtether: statement class drop is denied by rule 'agent'" ]
  [ "${lines[1]}" = "2" ]
}

@test "a reload applies to live sessions: new statements at once, a withdrawn rule ends the session within a second" {
  # a session that keeps running statements while the rule changes under it
  pgt_in "$PGT_CG/agent" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq \
    -c "select pg_sleep(1.5)" -c "drop table if exists nothing_here" >"$PGT_TMP/live.out" 2>&1 &
  local bg=$!
  sleep 0.5
  sed -i 's/"deny": \["drop"\],/"deny": [],/; s/"allow": \["read", "write", "transaction", "session"\]/"allow": ["read", "write", "transaction", "session", "drop"]/' \
    "$PGT_TMP/policy.d/10-stmt.json"
  pgt_reload
  wait "$bg"
  cat "$PGT_TMP/live.out"
  grep -q "NOTICE:  table \"nothing_here\" does not exist, skipping" "$PGT_TMP/live.out"
  # withdrawn: the rule disappears while a statement runs
  pgt_in "$PGT_CG/agent" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select pg_sleep(20)" >"$PGT_TMP/live2.out" 2>&1 &
  bg=$!
  sleep 0.7
  sed -i "s|\"cgroup\": \"$PGT_CG/agent\"|\"cgroup\": \"$PGT_CG/agent-gone\"|" "$PGT_TMP/policy.d/10-stmt.json"
  local t0
  t0=$(date +%s%N)
  pgt_reload
  wait "$bg" || true
  local ms=$((($(date +%s%N) - t0) / 1000000))
  cat "$PGT_TMP/live2.out"
  echo "ended after ${ms} ms"
  [ "$ms" -lt 1500 ]
  grep -q "FATAL:  pgtether: access withdrawn by a policy reload: no rule allows this session any more (it was allowed by 'agent')" "$PGT_TMP/live2.out"
  write_rules
  pgt_reload
}

# held UID SQL...: psql as UID in the careful cgroup ($HELD_CG: another), in the
# background; output in $PGT_TMP/held.out
held() {
  local uid=$1; shift
  local args=()
  for q in "$@"; do args+=(-c "$q"); done
  pgt_in "$PGT_CG/${HELD_CG:-careful}" setpriv --reuid="$uid" --regid="$uid" --clear-groups \
    psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq "${args[@]}" >"$PGT_TMP/held.out" 2>&1 &
  HELD_PID=$!
}

# Waits for one request held for approval (other than request $1) and prints its number.
wait_request() {
  local req=""
  for _ in $(seq 100); do
    req=$("$PGTETHER" -c "$PGT_CONF" approvals --json | jq -r --arg not "${1:-}" '[.[] | select((.request | tostring) != $not)][0].request // empty')
    [ -n "$req" ] && break
    sleep 0.05
  done
  echo "$req"
}

# pgtether as the approver (a member of approvers_group, not root)
as_approver() { setpriv --reuid="$AP_UID" --regid="$AP_GID" --init-groups "$PGTETHER" --socket "$PGT_TMP/control.sock" "$@"; }

@test "a write held for approval waits in its session, other sessions go on, and runs once approved" {
  held 65534 "delete from items where id = 2" "select count(*) from items"
  local req
  req=$(wait_request)
  [ -n "$req" ]
  run "$PGTETHER" -c "$PGT_CONF" approvals --json
  echo "$output"
  [ "$(jq -r '.[0].sql' <<<"$output")" = "delete from items where id = 2" ]
  [ "$(jq -r '.[0].uid' <<<"$output")" = 65534 ]
  [ "$(jq -r '.[0].rule' <<<"$output")" = careful ]
  [ "$(jq -r '.[0].why' <<<"$output")" = "statement class write needs approval under rule 'careful'" ]
  run "$PGTETHER" -c "$PGT_CONF" approvals
  [[ "$output" == *"request $req: pid "*" uid 65534 cgroup $PGT_CG/careful"* ]]
  # the row is still there, and another session is not held up
  [ "$(pgt_psql -c "select count(*) from items")" = 2 ]
  run as agent "select count(*) from items"
  [ "$output" = 2 ]
  run "$PGTETHER" -c "$PGT_CONF" approve "$req"
  echo "$output"
  [ "$status" -eq 0 ]
  wait "$HELD_PID"
  cat "$PGT_TMP/held.out"
  grep -qx "NOTICE:  pgtether: statement held for approval as request $req (statement class write needs approval under rule 'careful'): pgtether approve $req" "$PGT_TMP/held.out"
  [ "$(tail -n 1 "$PGT_TMP/held.out")" = 1 ]
  [ "$(pgt_log_field approval.decision "request=$req " decision)" = approved ]
  [[ "$(grep "event=approval.decision request=$req " "$PGT_LOG")" == *"by=\"uid 0 "* ]]
  pgt_psql -c "insert into items values (2, 'b')"
}

@test "a denied or timed-out request fails with the reason, and the session goes on" {
  held 65534 "update items set v = 'x'" "select string_agg(v, ',' order by id) from items"
  local req
  req=$(wait_request)
  run "$PGTETHER" -c "$PGT_CONF" deny "$req" --reason "not during the freeze"
  [ "$status" -eq 0 ]
  wait "$HELD_PID"
  cat "$PGT_TMP/held.out"
  grep -q "^ERROR:  pgtether: request $req was denied by uid 0 (.*): not during the freeze$" "$PGT_TMP/held.out"
  [ "$(tail -n 1 "$PGT_TMP/held.out")" = "a,b" ]
  # nobody decides: it fails after approval_timeout (2 s under rule hasty)
  HELD_CG=hasty held 65534 "update items set v = 'y'" "select string_agg(v, ',' order by id) from items"
  req=$(wait_request)
  wait "$HELD_PID"
  cat "$PGT_TMP/held.out"
  grep -q "^ERROR:  pgtether: request $req timed out after 2 s without approval" "$PGT_TMP/held.out"
  [ "$(tail -n 1 "$PGT_TMP/held.out")" = "a,b" ]
  run "$PGTETHER" -c "$PGT_CONF" approve "$req"
  [ "$status" -eq 1 ]
  [[ "$output" == *"no statement waits as request $req"* ]]
}

@test "a client that cancels a held statement (Ctrl-C) gets it denied at once" {
  cat >"$PGT_TMP/cancel.py" <<'PY'
import sys, threading, time
import psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
threading.Timer(1.0, conn.cancel).start()
t = time.monotonic()
try:
    conn.execute("delete from items")
except psycopg.Error as e:
    print(f"{e.sqlstate} {str(e).splitlines()[0]} after {time.monotonic() - t:.1f}")
print(conn.execute("select count(*) from items").fetchone()[0])
PY
  run pgt_in "$PGT_CG/careful" setpriv --reuid=65534 --regid=65534 --clear-groups \
    /usr/bin/python3 "$PGT_TMP/cancel.py" "host=127.0.0.1 port=$PG_PORT user=app dbname=postgres"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "${lines[0]}" == "42501 pgtether: request "*" was denied by a cancel request from the client after 1."* ]]
  [ "${lines[1]}" = 2 ]
}

@test "a held statement of a session that ends while its slow client drains can no longer be approved" {
  # the session's last rows and FATAL wait for a client that does not read; what it
  # held never runs, so no approver may be told it was approved
  cat >"$PGT_TMP/slowheld.py" <<'PY'
import socket, struct, sys, time
def msg(t, b): return t + struct.pack("!I", len(b) + 4) + b
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
body = struct.pack("!I", 3 << 16) + b"user\0app\0database\0postgres\0\0"
s.sendall(struct.pack("!I", len(body) + 4) + body)
buf = b""
while b"Z\0\0\0\x05" not in buf:
    buf += s.recv(65536)
s.sendall(msg(b"Q", b"select g, repeat('x', 200) from generate_series(1, 20000) g\0") +
          msg(b"Q", b"delete from items where id = 2\0"))
time.sleep(float(sys.argv[2]))
data = b""
while True:
    c = s.recv(1 << 20)
    if not c:
        break
    data += c
print("fatal" if b"access withdrawn by a policy reload" in data else "no fatal")
PY
  pgt_in "$PGT_CG/careful" setpriv --reuid=65534 --regid=65534 --clear-groups \
    /usr/bin/python3 "$PGT_TMP/slowheld.py" "$PG_PORT" 4 >"$PGT_TMP/slowheld.out" 2>&1 &
  local bg=$! req
  req=$(wait_request)
  [ -n "$req" ]
  sed -i "s|\"cgroup\": \"$PGT_CG/careful\"|\"cgroup\": \"$PGT_CG/careful-gone\"|" "$PGT_TMP/policy.d/10-stmt.json"
  pgt_reload
  sleep 0.5
  run "$PGTETHER" -c "$PGT_CONF" approve "$req"
  echo "approve: $output"
  local st=$status
  run "$PGTETHER" -c "$PGT_CONF" approvals --json
  echo "approvals: $output"
  local listed=$output
  write_rules
  pgt_reload
  wait "$bg" || true
  cat "$PGT_TMP/slowheld.out"
  [ "$st" -eq 1 ]
  [ "$listed" = "[]" ]
  [ "$(cat "$PGT_TMP/slowheld.out")" = fatal ]
  ! grep -q "event=approval.decision request=$req " "$PGT_LOG"
  [ "$(pgt_psql -c "select count(*) from items")" = 2 ]
}

@test "an approver cannot approve their own uid's request, but may deny it; root decides any request" {
  held "$AP_UID" "delete from items"
  local req
  req=$(wait_request)
  run as_approver approve "$req"
  echo "$output"
  [ "$status" -eq 1 ]
  [ "$output" = "pgtether: approve: request $req was made by uid $AP_UID, which cannot approve its own request" ]
  run as_approver deny "$req"
  [ "$status" -eq 0 ]
  wait "$HELD_PID" || true
  grep -q "^ERROR:  pgtether: request $req was denied by uid $AP_UID" "$PGT_TMP/held.out"
  [ "$(pgt_psql -c "select count(*) from items")" = 2 ]
  # a root workload: root approves it (root decides any request)
  held 0 "insert into items values (3, 'c')"
  req=$(wait_request)
  run "$PGTETHER" -c "$PGT_CONF" approve "$req"
  echo "$output"
  [ "$status" -eq 0 ]
  wait "$HELD_PID"
  [ "$(pgt_psql -c "select count(*) from items")" = 3 ]
  pgt_psql -c "delete from items where id = 3"
}

@test "a member of approvers_group approves another uid's request, root's too, and can do nothing else" {
  # the socket is the group's, and only the group's
  [ "$(stat -c '%a %U %G' "$PGT_TMP/control.sock")" = "660 root $PGT_AP" ]
  run setpriv --reuid=65534 --regid=65534 --clear-groups "$PGTETHER" --socket "$PGT_TMP/control.sock" approvals
  [ "$status" -eq 1 ]
  [[ "$output" == *"cannot connect to $PGT_TMP/control.sock: Permission denied"* ]]
  for cmd in status reload "attach $PGT_CG/x" "detach $PGT_CG/careful"; do
    # shellcheck disable=SC2086
    run as_approver $cmd
    echo "$output"
    [ "$status" -eq 1 ]
    [[ "$output" == *"permission denied: members of approvers_group may list, approve and deny requests; '${cmd%% *}' is for root" ]]
  done
  held 65534 "insert into items values (4, 'd')"
  local req
  req=$(wait_request)
  run as_approver approvals
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == *"request $req: pid "*" uid 65534 "* ]]
  run as_approver approve "$req"
  echo "$output"
  [ "$status" -eq 0 ]
  wait "$HELD_PID"
  [ "$(pgt_psql -c "select count(*) from items where id = 4")" = 1 ]
  [ "$(pgt_log_field approval.decision "request=$req " approver_uid)" = "$AP_UID" ]
  # the recording names the approver by uid
  local rec
  rec=$(grep -l "\"request\":$req," "$PGT_TMP"/sessions/*/*/*/*.jsonl | head -n 1)
  [ "$(jq -r "select(.type == \"approval\" and .request == $req) | .approver_uid" "$rec")" = "$AP_UID" ]
  # a root workload's request: a member approves it
  held 0 "insert into items values (5, 'e')"
  req=$(wait_request "$req")
  run as_approver approve "$req"
  echo "$output"
  [ "$status" -eq 0 ]
  wait "$HELD_PID"
  [ "$(pgt_psql -c "select count(*) from items where id in (4, 5)")" = 2 ]
  pgt_psql -c "delete from items where id in (4, 5)"
}

@test "a held statement is shown whole: 100 KB, with what it does after the first 4096 bytes" {
  local pad
  pad=$(head -c 100000 /dev/zero | tr '\0' x)
  held 65534 "delete from items /* $pad */ where v = 'after-the-fold'"
  local req
  req=$(wait_request)
  run "$PGTETHER" -c "$PGT_CONF" approvals --json
  [ "$(jq -r '.[0].sql' <<<"$output")" = "delete from items /* $pad */ where v = 'after-the-fold'" ]
  run "$PGTETHER" -c "$PGT_CONF" approvals
  [[ "$output" == *"*/ where v = 'after-the-fold'"* ]]
  "$PGTETHER" -c "$PGT_CONF" deny "$req"
  wait "$HELD_PID" || true
}

@test "workload text reaches the admin's terminal escaped: approvals, status, sessions, replay" {
  local esc rlo cg
  esc=$(printf '\033')
  rlo=$(printf '\342\200\256')
  cg="$PGT_CG/sneaky/x${esc}[31m${rlo}y"
  PGAPPNAME="app${esc}]0;owned${esc}\\" pgt_in "$cg" setpriv --reuid=65534 --regid=65534 --clear-groups \
    psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "delete from items where v = '${esc}[2K${esc}[1A' -- ${rlo}; select 1" \
    >"$PGT_TMP/held.out" 2>&1 &
  HELD_PID=$!
  local req
  req=$(wait_request)
  [ -n "$req" ]
  local shown
  shown=$("$PGTETHER" -c "$PGT_CONF" approvals; "$PGTETHER" -c "$PGT_CONF" status; "$PGTETHER" -c "$PGT_CONF" approvals --json)
  echo "$shown"
  [[ "$shown" != *"$esc"* && "$shown" != *"$rlo"* ]]
  [[ "$shown" == *"cgroup $PGT_CG/sneaky/x\\x1b[31m\\u{202E}y exe "* ]]
  [[ "$shown" == *"delete from items where v = '\\x1b[2K\\x1b[1A' -- \\u{202E}; select 1"* ]]
  [[ "$shown" == *" $PGT_CG/sneaky/x\\x1b[31m\\u{202E}y "* ]]  # status
  "$PGTETHER" -c "$PGT_CONF" deny "$req"
  wait "$HELD_PID" || true
  shown=$("$PGTETHER" -c "$PGT_CONF" sessions --cgroup "$PGT_CG/sneaky/*")
  echo "$shown"
  [[ "$shown" != *"$esc"* && "$shown" != *"$rlo"* ]]
  local id
  id=$(tail -n 1 <<<"$shown" | awk '{ print $1 }')
  [[ "$shown" == *" $PGT_CG/sneaky/x\\x1b[31m\\u{202E}y "* ]]
  shown=$("$PGTETHER" -c "$PGT_CONF" replay "$id" --speed 0)
  echo "$shown"
  [[ "$shown" != *"$esc"* && "$shown" != *"$rlo"* ]]
  [[ "$shown" == *"cgroup $PGT_CG/sneaky/x\\x1b[31m\\u{202E}y rule sneaky"* ]]
  [[ "$shown" == *"application_name app\\x1b]0;owned\\x1b\\\\)"* ]]
  [[ "$shown" == *"held query: delete from items where v = '\\x1b[2K\\x1b[1A' -- \\u{202E}; select 1"* ]]
}

@test "a named prepared statement that needs approval is held at each execution, with its parameters" {
  cat >"$PGT_TMP/prep.py" <<'PY'
import sys
import psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True, prepare_threshold=0)
for v in ("p31", "p32"):
    conn.execute("insert into items values (31, %s)", [v], prepare=True)
    print("ran", v, flush=True)
print(conn.execute("select count(*) from items where id = 31").fetchone()[0])
PY
  pgt_in "$PGT_CG/careful" setpriv --reuid=65534 --regid=65534 --clear-groups \
    /usr/bin/python3 "$PGT_TMP/prep.py" "host=127.0.0.1 port=$PG_PORT user=app dbname=postgres" >"$PGT_TMP/prep.out" 2>&1 &
  local bg=$! req1 req2
  req1=$(wait_request)
  [ -n "$req1" ]
  run "$PGTETHER" -c "$PGT_CONF" approvals --json
  echo "$output"
  [ "$(jq -r '.[0].sql' <<<"$output")" = "insert into items values (31, \$1)" ]
  [ "$(jq -c '.[0].params' <<<"$output")" = '["p31"]' ]
  [[ "$(jq -r '.[0].statement' <<<"$output")" == _pg3_* ]]
  run "$PGTETHER" -c "$PGT_CONF" approvals
  [[ "$output" == *"execution of prepared statement \"_pg3_"*"\" with parameters [\"p31\"]"* ]]
  "$PGTETHER" -c "$PGT_CONF" approve "$req1"
  # the second execution of the same prepared statement is a request of its own
  req2=$(wait_request "$req1")
  echo "second request: $req2"
  cat "$PGT_TMP/prep.out"
  [ -n "$req2" ]
  [ "$req2" != "$req1" ]
  run "$PGTETHER" -c "$PGT_CONF" approvals --json
  [ "$(jq -c '.[0].params' <<<"$output")" = '["p32"]' ]
  "$PGTETHER" -c "$PGT_CONF" approve "$req2"
  wait "$bg"
  cat "$PGT_TMP/prep.out"
  [ "$(tail -n 1 "$PGT_TMP/prep.out")" = 2 ]
  pgt_psql -c "delete from items where id = 31"
}

@test "the unnamed statement is held at each Bind, and a Parse the server discarded does not launder it" {
  cat >"$PGT_TMP/unnamed.py" <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from pgraw import Conn, login, msg, describe
c, out = Conn(sys.argv[1], int(sys.argv[2])), []
login(c, out)
bind = msg(b"B", b"\0\0\0\0\0\0\0\0") + msg(b"E", b"\0\0\0\0\0") + msg(b"S")
def step(name, data):
    out.clear()
    c.send(data)
    c.until_ready(out)
    print(name, " ".join(m for m in out if not m.startswith("N")), flush=True)
step("parse+bind", msg(b"P", b"\0insert into items values (51, 'u')\0\0\0") + bind)
step("bind-again", bind)
# an error first: the server discards the Parse of a harmless text, the unnamed
# statement stays the insert
step("discarded", msg(b"P", b"e\0select 1/0\0\0\0") + msg(b"B", b"\0e\0\0\0\0\0\0\0") +
     msg(b"E", b"\0\0\0\0\0") + msg(b"P", b"\0select 1\0\0\0") + msg(b"S"))
step("bind-after", bind)
step("count", msg(b"Q", b"select count(*) from items where id = 51\0"))
PY
  pgt_in "$PGT_CG/careful" setpriv --reuid=65534 --regid=65534 --clear-groups \
    /usr/bin/python3 "$PGT_TMP/unnamed.py" 127.0.0.1 "$PG_PORT" "$BATS_TEST_DIRNAME" >"$PGT_TMP/unnamed.out" 2>&1 &
  local bg=$! req last="" n=0
  for decision in approve approve deny; do
    req=$(wait_request "$last")
    echo "request $req: $decision"
    [ -n "$req" ]
    run "$PGTETHER" -c "$PGT_CONF" approvals --json
    echo "$output"
    if [ "$n" -lt 2 ]; then
      [ "$(jq -r '.[0].sql' <<<"$output")" = "insert into items values (51, 'u')" ]
    else
      # the approver sees every statement the name may be, not only the last
      [ "$(jq -r '.[0].sql' <<<"$output")" = "$(printf '%s\n' "-- the server runs one of the 2 statements prepared under this name in this session:" \
        "insert into items values (51, 'u')" "-- or:" "select 1" | head -c -1)" ]
    fi
    "$PGTETHER" -c "$PGT_CONF" "$decision" "$req"
    last=$req
    n=$((n + 1))
  done
  wait "$bg"
  cat "$PGT_TMP/unnamed.out"
  [ "$n" = 3 ]
  grep -qx "parse+bind 1 2 C INSERT 0 1 Z I" "$PGT_TMP/unnamed.out"
  grep -qx "bind-again 2 C INSERT 0 1 Z I" "$PGT_TMP/unnamed.out"
  grep -q "^bind-after E ERROR 42501 pgtether: request $last was denied by uid 0" "$PGT_TMP/unnamed.out"
  grep -qx "count T D 2 C SELECT 1 Z I" "$PGT_TMP/unnamed.out"
  pgt_psql -c "delete from items where id = 51"
}

@test "each SQL EXECUTE of a statement that needs approval is held, and an unknown name is denied" {
  HELD_CG=prep held 65534 "prepare p(int) as insert into items values (\$1, 'q')" "execute p(41)" "execute p(42)" \
    "deallocate p" "prepare p(int) as select \$1" "execute p(43)" "select count(*) from items where v = 'q'"
  local req last="" n=0
  for want in "prepare p(int) as insert" "execute p(41)" "execute p(42)" "execute p(43)"; do
    req=$(wait_request "$last")
    echo "request $req for $want"
    [ -n "$req" ]
    run "$PGTETHER" -c "$PGT_CONF" approvals --json
    echo "$output"
    [[ "$(jq -r '.[0].sql' <<<"$output")" == "$want"* ]]
    if [ "$want" != "prepare p(int) as insert" ]; then
      # what the EXECUTE runs is shown too: a re-PREPARE under the name does not hide the insert
      [[ "$(jq -r '.[0].prepared[0].sql' <<<"$output")" == *"prepare p(int) as insert into items"* ]]
      if [ "$want" = "execute p(43)" ]; then
        [[ "$(jq -r '.[0].prepared[0].sql' <<<"$output")" == "-- the server runs one of the 2 statements"*"-- or:"* ]]
      fi
      [ "$(jq -r '.[0].prepared[0].name' <<<"$output")" = p ]
    fi
    "$PGTETHER" -c "$PGT_CONF" approve "$req"
    last=$req
    n=$((n + 1))
  done
  wait "$HELD_PID"
  cat "$PGT_TMP/held.out"
  [ "$n" = 4 ]
  [ "$(tail -n 1 "$PGT_TMP/held.out")" = 2 ]
  pgt_psql -c "delete from items where v = 'q'"
  run pgt_in "$PGT_CG/prep" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "execute nosuch(1)"
  echo "$output"
  [[ "$output" == *"ERROR:  pgtether: EXECUTE nosuch: pgtether did not see that statement prepared in this session, and rule 'prep' holds statements for approval, so it is denied"* ]]
}

@test "pgtether check lists every broken file with file:line:col, and passes a good directory" {
  mkdir -p "$PGT_TMP/chk"
  cp "$PGT_TMP/policy.d/10-stmt.json" "$PGT_TMP/chk/10-good.json"
  printf '{ "rules": [\n  { "name": "a", "match": { "cgroup": "/x" }, "token": { "source": "none" }, "upstream": "main",\n    "statements": { "allow": ["reed"] } } ] }\n' >"$PGT_TMP/chk/20-class.json"
  printf '{ "rules": [ { "name": "b", "match": { "uid": 5 }, "token": { "source": "none" }, "upstream": "main" } ] }\n' >"$PGT_TMP/chk/30-narrow.json"
  run "$PGTETHER" -c "$PGT_CONF" check "$PGT_TMP/chk"
  echo "$output"
  [ "$status" -eq 1 ]
  [[ "${lines[0]}" == "$PGT_TMP/chk/20-class.json:3:31: rule 'a': unknown statement class;"* ]]
  [ "${lines[1]}" = "$PGT_TMP/chk/30-narrow.json:1:29: rule 'b' allows without narrowing identity: give a \"cgroup\" glob or token \"claims\"" ]
  [ "${lines[2]}" = "pgtether: $PGT_TMP/chk: 2 error(s)" ]
  rm "$PGT_TMP"/chk/[23]0-*.json
  # a rule naming a role without a credential
  sed 's/"upstream": "main" },$/"upstream": "main", "role": "admin" },/' "$PGT_TMP/policy.d/10-stmt.json" >"$PGT_TMP/chk/10-good.json"
  run "$PGTETHER" -c "$PGT_CONF" check "$PGT_TMP/chk"
  echo "$output"
  [ "$status" -eq 1 ]
  [[ "$output" == *"rule 'free': no credential for role 'admin' of upstream 'main'"* ]]
  run "$PGTETHER" -c "$PGT_CONF" check
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = "pgtether: $PGT_TMP/policy.d: 8 rule(s), valid" ]
}

@test "pgtether explain shows the deciding rule and the verdict per statement" {
  run "$PGTETHER" -c "$PGT_CONF" explain --cgroup "$PGT_CG/agent" "select * from public.items; DROP TABLE items; select * from public.secrets"
  echo "$output"
  [ "$status" -eq 1 ]
  [[ "${lines[0]}" == "connection: rule 'agent' ($PGT_TMP/policy.d/10-stmt.json:2), upstream 'main', role '(the upstream's)', token none" ]]
  [ "${lines[1]}" = "statement 1: select * from public.items" ]
  [ "${lines[2]}" = "  classes: read" ]
  [ "${lines[4]}" = "  verdict: allow" ]
  [ "${lines[5]}" = "statement 2: DROP TABLE items" ]
  [ "${lines[7]}" = "  table: items" ]
  [ "${lines[8]}" = "  verdict: deny: statement class drop is denied by rule 'agent'" ]
  [ "${lines[-1]}" = "  verdict: deny: table public.secrets is denied by rule 'agent'" ]
  run "$PGTETHER" -c "$PGT_CONF" explain --cgroup "$PGT_CG/agent" "select 1"
  [ "$status" -eq 0 ]
  run "$PGTETHER" -c "$PGT_CONF" explain --cgroup /elsewhere "select 1"
  [ "$status" -eq 1 ]
  [ "$output" = "connection: no rule allows it (default deny)" ]
}

@test "pgtether explain decides as a session does (gate.c): search_path, read-only, EXECUTE, text that does not parse" {
  # an unqualified name under table rules: a session resolves it on the server's
  # answer; explain has no server, so it says so instead of assuming public
  run "$PGTETHER" -c "$PGT_CONF" explain --cgroup "$PGT_CG/agent" "select * from items"
  echo "$output"
  [ "$status" -eq 1 ]
  [ "${lines[-1]}" = "  verdict: deny: table items names no schema and rule 'agent' has table rules, but pgtether explain has no server to ask for the search_path (a session asks it right before the statement); qualify the table name" ]
  # a read-only rule's session must not become read-write
  run "$PGTETHER" -c "$PGT_CONF" explain --cgroup "$PGT_CG/viewer" "set default_transaction_read_only = off"
  echo "$output"
  [ "$status" -eq 1 ]
  [ "${lines[-1]}" = "  verdict: deny: rule 'viewer' is read-only and its session is run read-only: the statement would make it read-write" ]
  run as viewer "set default_transaction_read_only = off"
  [[ "$output" == *"ERROR:  pgtether: rule 'viewer' is read-only and its session is run read-only: the statement would make it read-write"* ]]
  # an EXECUTE under a rule with approvals: nothing is prepared where explain looks
  run "$PGTETHER" -c "$PGT_CONF" explain --cgroup "$PGT_CG/prep" "execute p"
  echo "$output"
  [ "$status" -eq 1 ]
  [ "${lines[-1]}" = "  verdict: deny: EXECUTE p: pgtether did not see that statement prepared in this session, and rule 'prep' holds statements for approval, so it is denied" ]
  run as prep "execute p"
  [[ "$output" == *"ERROR:  pgtether: EXECUTE p: pgtether did not see that statement prepared in this session"* ]]
  # a rule with nothing to check lets the server answer text that does not parse
  run "$PGTETHER" -c "$PGT_CONF" explain --cgroup "$PGT_CG/free" "selec 1"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = "  verdict: allow" ]
  run as free "selec 1"
  [[ "$output" == *'ERROR:  syntax error at or near "selec"'* ]]
}

@test "pgtether reload applies the policy now, or says why it cannot" {
  run "$PGTETHER" -c "$PGT_CONF" reload
  [ "$status" -eq 0 ]
  [ "$output" = "pgtether: reloaded" ]
  echo '{ "rules": [ { "name": "x" } ] }' >"$PGT_TMP/policy.d/40-bad.json"
  run "$PGTETHER" -c "$PGT_CONF" reload
  rm -f "$PGT_TMP/policy.d/40-bad.json"
  echo "$output"
  [ "$status" -eq 1 ]
  [[ "$output" == "pgtether: reload: $PGT_TMP/policy.d/40-bad.json:1:"*"needs \"match\""*"the running configuration stays" ]]
}

@test "a statement text seen before is not parsed again" {
  run as reader "select 42" "select 42" "select 42"
  [ "$output" = "$(printf '42\n42\n42')" ]
}

@test "a read-only rule's session is read-only at the server too: a function that writes is refused" {
  run as viewer "select add_item()" "select current_setting('default_transaction_read_only')"
  echo "$output"
  [[ "${lines[0]}" == *"cannot execute INSERT in a read-only transaction"* ]]
  [ "${lines[-1]}" = "on" ]
  [ "$(pgt_psql -c "select count(*) from items where id = 9")" = 0 ]
  # a rule that allows writes leaves the session read-write
  run as agent "select current_setting('default_transaction_read_only')"
  [ "$output" = "off" ]
}

@test "a read-only session cannot be made read-write, in any spelling" {
  for q in "set default_transaction_read_only = off" "SET SESSION default_transaction_read_only TO false" \
           "set transaction_read_only = 0" "begin read write" "start transaction isolation level serializable, read write" \
           "set session characteristics as transaction read write" "begin; set transaction read write" \
           "select set_config('default_transaction_read_only', 'off', false)" \
           "select set_config(lower('DEFAULT_TRANSACTION_READ_ONLY'), 'off', false)"; do
    run as viewer "$q" "select add_item()"
    echo "$q: $output"
    [[ "$output" == *"read-only"* ]]
    [ "$(pgt_psql -c "select count(*) from items where id = 9")" = 0 ]
  done
  # what keeps it read-only passes
  run as viewer "begin read only" "select 1" "commit" "reset all" "select current_setting('default_transaction_read_only')"
  echo "$output"
  [ "${lines[-1]}" = "on" ]
}

@test "a read-only session that server-side code makes read-write ends" {
  # go_rw() is the database's own function: pgtether cannot see into it, but the
  # server reports default_transaction_read_only when it changes
  run as viewer "select go_rw()" "select add_item()"
  echo "$output"
  [[ "$output" == *"rule 'viewer' is read-only, and the database now runs this session read-write"* ]]
  [ "$(pgt_psql -c "select count(*) from items where id = 9")" = 0 ]
}

@test "a read-only session made read-write after a long row gets the whole row, then the error" {
  # the row (200 kB) comes in many reads and goes on as it comes; the setting's
  # change arrives with its last bytes: the FATAL must follow the row, not land in it
  run as viewer "select go_rw(), repeat('x', 200000)"
  echo "${output:0:400}"
  [[ "$output" == *"rule 'viewer' is read-only, and the database now runs this session read-write"* ]]
  [[ "$output" != *"lost synchronization"* ]]
}

@test "SHOW is a read; set_config() is a session statement, as pg_dump sends it" {
  run as reader "show search_path"
  echo "$output"
  [ "$output" = '"$user", public' ]
  run as viewer "select pg_catalog.set_config('search_path', '', false)" "select current_setting('search_path') = ''"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = "t" ]
  run as reader "select pg_catalog.set_config('search_path', '', false)"
  [[ "$output" == *"statement class session is not allowed by rule 'reader'"* ]]
}

@test "built-ins that write are writes: nextval, setval and the large-object writers" {
  run as reader "select nextval('item_ids')"
  [[ "$output" == *"statement class write is not allowed by rule 'reader'"* ]]
  run as reader "select lo_create(0)"
  [[ "$output" == *"statement class write is not allowed by rule 'reader'"* ]]
  # a negative mode is a constant too: -131072 has lo_open's write bit (INV_WRITE)
  run as reader "select lo_open(0, -131072)"
  [[ "$output" == *"statement class write is not allowed by rule 'reader'"* ]]
  [ "$(pgt_psql -c "select count(*) from pg_largeobject_metadata")" = 0 ]
  run as agent "select nextval('item_ids')"
  [ "$output" = 1 ]
}

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
  grep "event=stop " "$PGT_LOG"
  grep -qE "statement classifications: [0-9]+ parsed, [1-9][0-9]* from the cache" "$PGT_LOG"
}

