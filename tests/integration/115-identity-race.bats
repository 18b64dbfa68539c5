#!/usr/bin/env bats
# Identity against a workload that races pgtetherd: whatever the connecting process
# does between connect() and its startup packet (exit and hand the socket on, move to
# another cgroup, exec another binary, change uid), pgtetherd judges the process the
# kernel saw at connect() or refuses; it never judges "?" facts a deny rule fails to
# match. And hashing a huge executable never stalls other sessions.
#
# Every trick runs before the startup packet, and pgtetherd reads the facts when that
# packet arrives, so each race is won by the attacker every time. A daemon that reads
# the facts at accept() instead (the code before this test) is made to look late by a
# connection from a fresh 480 MB executable just before, which it hashes on its loop.

load helpers

ISS=https://ci.example.test
PY=/usr/bin/python3
RACE="$BATS_TEST_DIRNAME/idrace.py"

setup_file() {
  export PGT_OWN_POLICY=1
  pgt_setup_world
  mkdir -p "$PGT_TMP/issuers.d" "$PGT_TMP/policy.d"
  "$PGT_ROOT/scripts/dev-jwt.py" keygen "$PGT_TMP/issuers.d" k1
  cat >"$PGT_TMP/issuers.d/ci.json" <<JSON
{ "issuer": "$ISS", "audiences": ["pgtether"], "algorithms": ["RS256"], "jwks_file": "k1.jwks.json" }
JSON
  # another binary: a copy of python3 (another inode), allowed where python3 is denied
  export PYOTHER="$PGT_TMP/python-other"
  cp "$(readlink -f $PY)" "$PYOTHER"
  export PYREAL
  PYREAL=$(readlink -f $PY)
  cat >"$PGT_TMP/policy.d/10-race.json" <<JSON
{ "rules": [
  { "name": "ok", "match": { "cgroup": "$PGT_CG/ok/**" }, "token": { "source": "none" }, "upstream": "main" },
  { "name": "py-only", "match": { "cgroup": "$PGT_CG/exeonly", "exe": "$PYREAL" }, "token": { "source": "none" },
    "upstream": "main" },
  { "name": "by-token", "match": { "issuer": "$ISS", "claims": { "sub": "repo:acme/*" } },
    "token": { "source": "password" }, "upstream": "main" }
] }
JSON
  cat >"$PGT_TMP/policy.d/90-deny.json" <<JSON
{ "rules": [
  { "name": "no-bad", "effect": "deny", "match": { "cgroup": "$PGT_CG/bad" } },
  { "name": "no-python", "effect": "deny", "match": { "cgroup": "$PGT_CG/ok/nopy", "exe": "$PYREAL" } }
] }
JSON
  pgt_write_config closed
  pgt_start_daemon
  export TOKEN
  TOKEN=$("$PGT_ROOT/scripts/dev-jwt.py" mint "$PGT_TMP/issuers.d" k1 \
    '{"iss": "https://ci.example.test", "aud": "pgtether", "sub": "repo:acme/api"}')
}

teardown_file() {
  umount "$PGT_TMP/ovl/merged" 2>/dev/null || true
  pgt_teardown_world
}

# A daemon that reads facts at accept() is kept busy for a while: a connection from a
# fresh 480 MB executable (below the 512 MB the old code hashed) that it hashes. The
# racing client then runs with race_in: pgtether run would wait for the busy daemon to
# attach its cgroup, so the cgroup is attached first and entered directly.
stall_old_daemon() {
  pgt_in "$1" true
  local big="$PGT_TMP/stall-$BATS_TEST_NUMBER-$RANDOM"
  cp "$PYREAL" "$big"
  truncate -s 480M "$big"
  pgt_in "$PGT_CG/ok/stall" "$big" "$RACE" announce 127.0.0.1 "$PG_PORT" >"$PGT_TMP/stall.out" 2>&1 &
  STALL=$!
  for _ in $(seq 100); do
    grep -q CONNECTED "$PGT_TMP/stall.out" && break
    sleep 0.05
  done
  sleep 0.05
}

race_in() { pgt_in_unattached "$@"; }

stall_done() { wait "$STALL" || true; rm -f "$PGT_TMP"/stall-*; }

@test "the control: each client speaks and is identified when it plays no trick" {
  run pgt_in "$PGT_CG/ok/plain" $PY "$RACE" plain 127.0.0.1 "$PG_PORT"
  echo "$output"
  [[ "$output" == "OK cgroup=$PGT_CG/ok/plain;"*";rule=ok" ]]
  # the deny rules hold for the processes they name
  run pgt_in "$PGT_CG/bad" $PY "$RACE" plain 127.0.0.1 "$PG_PORT"
  echo "$output"
  [[ "$output" == "E 28000 pgtether: this connection is denied by policy rule 'no-bad'"* ]]
  PGT_TOKEN=$TOKEN run pgt_in "$PGT_CG/bad" $PY "$RACE" plain 127.0.0.1 "$PG_PORT"
  [[ "$output" == "E 28000 pgtether: this connection is denied by policy rule 'no-bad'"* ]]
  run pgt_in "$PGT_CG/ok/nopy" $PY "$RACE" plain 127.0.0.1 "$PG_PORT"
  echo "$output"
  [[ "$output" == "E 28000 pgtether: this connection is denied by policy rule 'no-python'"* ]]
  run pgt_in "$PGT_CG/ok/nopy" "$PYOTHER" "$RACE" plain 127.0.0.1 "$PG_PORT"
  echo "$output"
  [[ "$output" == "OK cgroup=$PGT_CG/ok/nopy;"*";exe=$PYOTHER;"* ]]
}

@test "a connection whose connecting process exited before pgtetherd read it is refused, not judged on '?'" {
  stall_old_daemon "$PGT_CG/bad"
  # in a cgroup a deny rule names, with a token an allow rule takes from anywhere:
  # with the cgroup unknown, the deny rule would not match and the token would pass
  PGT_TOKEN=$TOKEN run race_in "$PGT_CG/bad" $PY "$RACE" handoff 127.0.0.1 "$PG_PORT"
  stall_done
  echo "$output"
  [[ "$output" == "E 08004 pgtether: cannot establish who opened this connection: "*"(pid "*") has exited"* ]]
  # and where an allow rule would have matched the child, too
  run pgt_in "$PGT_CG/ok/handoff" $PY "$RACE" handoff 127.0.0.1 "$PG_PORT"
  echo "$output"
  [[ "$output" == "E 08004 pgtether: cannot establish who opened this connection: "*"has exited"* ]]
}

@test "a process that moved to another cgroup after connect() is refused, though a rule allows the new one" {
  mkdir -p "$CGMOUNT$PGT_CG/ok/moved"
  stall_old_daemon "$PGT_CG/bad"
  run race_in "$PGT_CG/bad" $PY "$RACE" move 127.0.0.1 "$PG_PORT" "$CGMOUNT$PGT_CG/ok/moved/cgroup.procs"
  stall_done
  echo "$output"
  [[ "$output" == "E 28000 pgtether: cannot establish who opened this connection: cgroup: the process (pid "*") is now in cgroup $PGT_CG/ok/moved, not in the cgroup it opened this connection from"* ]]
  # from a cgroup no rule names, into an allowed one
  run pgt_in "$PGT_CG/nobody" $PY "$RACE" move 127.0.0.1 "$PG_PORT" "$CGMOUNT$PGT_CG/ok/moved/cgroup.procs"
  echo "$output"
  [[ "$output" == "E 28000 "*"cgroup: the process (pid "*") is now in cgroup $PGT_CG/ok/moved,"* ]]
  # and the other way: out of an allowed cgroup is as much a change
  run pgt_in "$PGT_CG/ok/from" $PY "$RACE" move 127.0.0.1 "$PG_PORT" "$CGMOUNT$PGT_CG/ok/moved/cgroup.procs"
  [[ "$output" == "E 28000 "*"cgroup: "* ]]
}

@test "a process that exec'd another binary after connect() is refused, though a deny rule names the first" {
  stall_old_daemon "$PGT_CG/ok/nopy"
  # python3 is denied in ok/nopy; a copy of it is not
  run race_in "$PGT_CG/ok/nopy" $PY "$RACE" exec 127.0.0.1 "$PG_PORT" "$PYOTHER"
  stall_done
  echo "$output"
  [[ "$output" == "E 28000 pgtether: cannot establish who opened this connection: exe: the process (pid "*") runs another executable than the one that opened this connection"* ]]
  # exec of the same binary changes nothing
  run pgt_in "$PGT_CG/ok/same" $PY "$RACE" exec 127.0.0.1 "$PG_PORT" "$PYREAL"
  echo "$output"
  [[ "$output" == "OK cgroup=$PGT_CG/ok/same;"* ]]
}

@test "a connecting binary rewritten in place after connect() (same inode, other bytes) is refused" {
  local evil="$PGT_TMP/evil-python" sum
  cp "$PYREAL" "$evil"
  truncate -s +4096 "$evil" # other bytes than python3's: a binary a deny rule names by hash
  sum=$(sha256sum "$evil" | cut -d' ' -f1)
  cat >"$PGT_TMP/policy.d/92-evil.json" <<JSON
{ "rules": [ { "name": "no-evil", "effect": "deny", "match": { "exe_sha256": "$sum" } } ] }
JSON
  pgt_reload
  run pgt_in "$PGT_CG/ok/evil" "$evil" "$RACE" plain 127.0.0.1 "$PG_PORT"
  echo "$output"
  [[ "$output" == "E 28000 pgtether: this connection is denied by policy rule 'no-evil'"* ]]
  # connect, keep the socket in a child, rewrite the binary as python3 and run that
  stall_old_daemon "$PGT_CG/ok/evil"
  run race_in "$PGT_CG/ok/evil" "$evil" "$RACE" rewrite 127.0.0.1 "$PG_PORT" "$PYREAL"
  stall_done
  rm -f "$PGT_TMP/policy.d/92-evil.json" "$evil"
  pgt_reload
  echo "$output"
  [[ "$output" == "E 28000 pgtether: cannot establish who opened this connection: exe: the executable of the process (pid "*") was modified or replaced after it opened this connection"* ]]
}

@test "a binary bind-mounted over an allowed path in the workload's own user namespace does not pass for it" {
  local evil="$PGT_TMP/evil-bind"
  cp "$PYREAL" "$evil"
  truncate -s +4096 "$evil"
  run pgt_in "$PGT_CG/exeonly" $PY "$RACE" plain 127.0.0.1 "$PG_PORT"
  echo "$output"
  [[ "$output" == "OK cgroup=$PGT_CG/exeonly;"*";exe=$PYREAL;"*";rule=py-only" ]]
  # an unprivileged workload: a user and mount namespace of its own, its binary at
  # python3's path there; /proc/PID/exe reads that path
  run pgt_in "$PGT_CG/exeonly" setpriv --reuid=65534 --regid=65534 --clear-groups \
    unshare -Urm sh -c 'mount --bind "$1" "$2" && exec "$2" "$3" plain 127.0.0.1 "$4"' sh "$evil" "$PYREAL" "$RACE" "$PG_PORT"
  echo "$output"
  [[ "$output" == "E 28000 pgtether: no policy rule allows this connection (cgroup $PGT_CG/exeonly, uid 65534, exe $PYREAL as named in the workload's own mount namespace, which exe rules do not trust,"* ]]
  # a mount namespace of the initial user namespace (a container runtime's; here
  # root's) is not the workload's to change: its paths are trusted inside its root
  run pgt_in "$PGT_CG/exeonly" unshare -m sh -c 'mount --bind "$1" "$2" && exec "$2" "$3" plain 127.0.0.1 "$4"' \
    sh "$evil" "$PYREAL" "$RACE" "$PG_PORT"
  rm -f "$evil"
  echo "$output"
  [[ "$output" == "OK cgroup=$PGT_CG/exeonly;"*";exe=$PYREAL;"*";rule=py-only" ]]
}

@test "an executable on overlayfs (a container's root) is identified like any other" {
  mkdir -p "$PGT_TMP/ovl/lower" "$PGT_TMP/ovl/upper" "$PGT_TMP/ovl/work" "$PGT_TMP/ovl/merged"
  cp "$PYREAL" "$PGT_TMP/ovl/lower/python"
  mount -t overlay pgtether-test -o "lowerdir=$PGT_TMP/ovl/lower,upperdir=$PGT_TMP/ovl/upper,workdir=$PGT_TMP/ovl/work" \
    "$PGT_TMP/ovl/merged"
  run pgt_in "$PGT_CG/ok/ovl" "$PGT_TMP/ovl/merged/python" "$RACE" plain 127.0.0.1 "$PG_PORT"
  umount "$PGT_TMP/ovl/merged"
  echo "$output"
  [[ "$output" == "OK cgroup=$PGT_CG/ok/ovl;"*";exe=$PGT_TMP/ovl/merged/python;"* ]]
}

@test "a process that changed its uid after connect() is refused" {
  run pgt_in "$PGT_CG/ok/setuid" $PY "$RACE" setuid 127.0.0.1 "$PG_PORT" 65534
  echo "$output"
  [[ "$output" == "E 28000 pgtether: cannot establish who opened this connection: uid: the process (pid "*") now runs as uid 65534 gid 65534, not as uid 0 gid 0"* ]]
}

@test "a 1 GB executable is hashed off the event loop: a deny rule on its SHA-256 holds and other sessions go on" {
  local big="$PGT_TMP/huge-python" sum out
  cp "$PYREAL" "$big"
  truncate -s 1G "$big"
  sum=$(sha256sum "$big" | cut -d' ' -f1)
  cat >"$PGT_TMP/policy.d/91-sha.json" <<JSON
{ "rules": [ { "name": "no-huge", "effect": "deny", "match": { "exe_sha256": "$sum" } } ] }
JSON
  pgt_reload
  pgt_in "$PGT_CG/ok/lat" $PY "$RACE" latency 127.0.0.1 "$PG_PORT" 4 >"$PGT_TMP/lat.out" 2>&1 &
  local lat=$!
  sleep 0.5
  run pgt_in "$PGT_CG/ok/huge" "$big" "$RACE" plain 127.0.0.1 "$PG_PORT"
  wait "$lat"
  rm -f "$big" "$PGT_TMP/policy.d/91-sha.json"
  pgt_reload
  echo "$output"
  cat "$PGT_TMP/lat.out"
  [[ "$output" == "E 28000 pgtether: this connection is denied by policy rule 'no-huge'"* ]]
  read -r _ out _ <"$PGT_TMP/lat.out"
  [ "$out" -lt 300 ]
}

@test "several large executables hashed at once do not stall another session's queries" {
  local i
  for i in 1 2 3; do
    cp "$PYREAL" "$PGT_TMP/big-$i"
    truncate -s 480M "$PGT_TMP/big-$i"
  done
  pgt_in "$PGT_CG/ok/lat" $PY "$RACE" latency 127.0.0.1 "$PG_PORT" 5 >"$PGT_TMP/lat.out" 2>&1 &
  local lat=$!
  sleep 0.5
  for i in 1 2 3; do
    pgt_in "$PGT_CG/ok/big" "$PGT_TMP/big-$i" "$RACE" plain 127.0.0.1 "$PG_PORT" >"$PGT_TMP/out-$i" 2>&1 &
  done
  wait "$lat"
  wait
  cat "$PGT_TMP"/out-* "$PGT_TMP/lat.out"
  rm -f "$PGT_TMP"/big-*
  # each was hashed and served in its turn
  for i in 1 2 3; do
    [[ "$(head -n 1 "$PGT_TMP/out-$i")" == "OK cgroup=$PGT_CG/ok/big;"*";exe=$PGT_TMP/big-$i;"* ]]
  done
  [ "$(pgt_log_count conn.open "exe=$PGT_TMP/big-")" = 3 ]
  read -r _ out _ <"$PGT_TMP/lat.out"
  [ "$out" -lt 300 ]
}

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
}
