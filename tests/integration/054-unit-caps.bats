#!/usr/bin/env bats
# pgtetherd with the shipped unit's capabilities and no others (pgt_start_daemon runs
# every test's daemon so; this file checks that it does): without CAP_DAC_READ_SEARCH
# the files it reads for a workload are opened as that workload (its file-system uid,
# gid and groups), so a workload of another uid still gets its own token file and
# executable read, and never one it could not read itself.

load helpers

ISS=https://ci.example.test
PY=/usr/bin/python3
RACE="$BATS_TEST_DIRNAME/idrace.py"

setup_file() {
  unset PGT_DAEMON_CAPS # the unit's, whatever the caller asked for
  export PGT_OWN_POLICY=1
  pgt_setup_world
  mkdir -p "$PGT_TMP/issuers.d" "$PGT_TMP/policy.d"
  "$PGT_ROOT/scripts/dev-jwt.py" keygen "$PGT_TMP/issuers.d" k1
  cat >"$PGT_TMP/issuers.d/ci.json" <<JSON
{ "issuer": "$ISS", "audiences": ["pgtether"], "algorithms": ["RS256"], "jwks_file": "k1.jwks.json" }
JSON
  "$PGT_ROOT/scripts/dev-jwt.py" mint "$PGT_TMP/issuers.d" k1 \
    '{"iss": "https://ci.example.test", "aud": "pgtether", "sub": "repo:acme/api:ref:refs/heads/dev"}' >"$PGT_TMP/token.src"
  # the token path exists on the host only as an empty directory (each workload mounts
  # its own there)
  export TOKDIR="/run/$PGT_ID-tok"
  mkdir -p "$TOKDIR"
  # python3 as a binary of uid 65534's own: mode 0700 in a directory only it may search
  export OWNPY="$PGT_TMP/w/nobody/python"
  mkdir -p "$PGT_TMP/w/nobody" "$PGT_TMP/w/xonly"
  chmod 0755 "$PGT_TMP/w" "$PGT_TMP/w/xonly"
  cp "$(readlink -f $PY)" "$OWNPY"
  truncate -s +8 "$OWNPY" # its own hash
  chown -R 65534:65534 "$PGT_TMP/w/nobody"
  chmod 0700 "$PGT_TMP/w/nobody" "$OWNPY"
  # and one that another user (4321) lets others execute and not read (mode 0711)
  export XPY="$PGT_TMP/w/xonly/python"
  cp "$(readlink -f $PY)" "$XPY"
  chown 4321:4321 "$XPY"
  chmod 0711 "$XPY"
  local sum
  sum=$(sha256sum "$OWNPY" | cut -d' ' -f1)
  cat >"$PGT_TMP/policy.d/10-caps.json" <<JSON
{ "rules": [
  { "name": "file-token", "match": { "cgroup": "$PGT_CG/f", "issuer": "$ISS", "claims": { "sub": "repo:acme/api:*" } },
    "token": { "source": "file", "path": "$TOKDIR/token" }, "upstream": "main" },
  { "name": "own-exe", "match": { "cgroup": "$PGT_CG/exe", "uid": 65534, "exe": "$OWNPY", "exe_sha256": "$sum" },
    "token": { "source": "none" }, "upstream": "main" },
  { "name": "any-exe", "match": { "cgroup": "$PGT_CG/exe" }, "token": { "source": "none" }, "upstream": "main" }
] }
JSON
  pgt_write_config closed
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
  rm -rf "$TOKDIR"
}

# tok_ns CGROUP SETUP SETPRIV_ARGS SQL: psql in CGROUP, in a mount namespace of its
# own in which $TOKDIR is a fresh tmpfs that the shell commands SETUP prepare (run
# there as root; $T is the token's source), run with setpriv SETPRIV_ARGS.
tok_ns() {
  # shellcheck disable=SC2086 # SETPRIV_ARGS are words
  pgt_in "$1" unshare -m sh -c '
    mount -t tmpfs -o mode=0755 pgtether-test "$1" && cd "$1" && T=$2 && eval "$3" || exit 99
    shift 3
    exec setpriv "$@"' sh "$TOKDIR" "$PGT_TMP/token.src" "$2" $3 psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "$4"
}

AS_NOBODY="--reuid=65534 --regid=65534 --clear-groups"

@test "the daemon runs with exactly the unit's capabilities, none of CAP_DAC_*" {
  local pid want
  pid=$(cat "$PGT_TMP/daemon.pid")
  want=$($(pgt_daemon_caps_wrap) sed -n 's/^CapBnd:\t//p' /proc/self/status)
  grep Cap "/proc/$pid/status"
  [ "$(sed -n 's/^CapBnd:\t//p' "/proc/$pid/status")" = "$want" ]
  [ "$(sed -n 's/^CapEff:\t//p' "/proc/$pid/status")" = "$want" ]
  [ "$(sed -n 's/^CapPrm:\t//p' "/proc/$pid/status")" = "$want" ]
  [ "$(sed -n 's/^NoNewPrivs:\t//p' "/proc/$pid/status")" = 1 ]
  # CAP_DAC_OVERRIDE (bit 1) and CAP_DAC_READ_SEARCH (bit 2) are not there
  [ $(( 0x$want & 0x6 )) -eq 0 ]
  ! grep -q 'CAP_DAC' <<<"$(pgt_unit_caps)" || false
}

@test "a token file of the workload's own (mode 0600, another uid than root's) is read as the workload" {
  run tok_ns "$PGT_CG/f" 'install -m 0600 -o 65534 -g 65534 "$T" token' "$AS_NOBODY" \
    "select current_setting('pgtether.identity')"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == "cgroup=$PGT_CG/f;uid=65534;"*";rule=file-token;iss=$ISS;sub=repo:acme/api:ref:refs/heads/dev" ]]
}

@test "a token file behind a directory the workload may not search is not read for it (no confused deputy)" {
  # mode 0644, but in root's directory of mode 0700, reached by the workload's symlink
  run tok_ns "$PGT_CG/f" 'mkdir -m 0700 private && install -m 0644 "$T" private/token && ln -s private/token token' \
    "$AS_NOBODY" "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"the token file $TOKDIR/token cannot be read in the workload's mount namespace: the workload itself may not read it"* ]]
  # root's own workload, the same layout: root may search its own directory
  run tok_ns "$PGT_CG/f" 'mkdir -m 0700 private && install -m 0644 "$T" private/token && ln -s private/token token' \
    "--" "select current_setting('pgtether.identity')"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == *";rule=file-token;"* ]]
}

@test "a token file readable by a supplementary group of the workload is read, and not without the group" {
  run tok_ns "$PGT_CG/f" 'install -m 0640 -o 0 -g 4242 "$T" token' "--reuid=65534 --regid=65534 --groups=4242" \
    "select current_setting('pgtether.identity')"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == *";rule=file-token;"* ]]
  run tok_ns "$PGT_CG/f" 'install -m 0640 -o 0 -g 4242 "$T" token' "$AS_NOBODY" "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"the workload itself may not read it"* ]]
}

@test "a workload's own executable (mode 0700, in its own directory) is hashed and its path trusted, as the workload" {
  run pgt_in "$PGT_CG/exe" setpriv $AS_NOBODY "$OWNPY" "$RACE" plain 127.0.0.1 "$PG_PORT"
  echo "$output"
  [[ "$output" == "OK cgroup=$PGT_CG/exe;uid=65534;"*";exe=$OWNPY;"*";rule=own-exe" ]]
}

@test "an executable neither root (by its mode) nor the workload may read is refused, not judged unhashed" {
  run pgt_in "$PGT_CG/exe" setpriv $AS_NOBODY "$XPY" "$RACE" plain 127.0.0.1 "$PG_PORT"
  echo "$output"
  [[ "$output" == "E 08004 pgtether: cannot establish who opened this connection: exe_sha256: the executable cannot be hashed: neither root (by its mode) nor the workload's uid 65534 may read it"* ]]
  # root's workload too: pgtetherd has no CAP_DAC_READ_SEARCH to read past the mode
  run pgt_in "$PGT_CG/exe" "$XPY" "$RACE" plain 127.0.0.1 "$PG_PORT"
  echo "$output"
  [[ "$output" == "E 08004 pgtether: cannot establish who opened this connection: exe_sha256: the executable cannot be hashed: neither root (by its mode) nor the workload's uid 0 may read it"* ]]
  # readable by others: hashed, whoever runs it
  chmod 0755 "$XPY"
  run pgt_in "$PGT_CG/exe" setpriv $AS_NOBODY "$XPY" "$RACE" plain 127.0.0.1 "$PG_PORT"
  chmod 0711 "$XPY"
  echo "$output"
  [[ "$output" == "OK cgroup=$PGT_CG/exe;uid=65534;"*";rule=any-exe" ]]
}

@test "a worker that does not stop is killed by the parent (CAP_KILL: workers run as another uid)" {
  local pid w
  pid=$(cat "$PGT_TMP/daemon.pid")
  w=$(ps -o pid= --ppid "$pid" | head -n 1 | tr -d ' ')
  [ -n "$w" ]
  [ "$(stat -c %u "/proc/$w")" -ne 0 ]
  kill -STOP "$w"
  # SIGTERM: the parent asks its workers to stop, and after 3 s kills those still there
  run pgt_stop_daemon
  echo "$output"
  [ "$status" -eq 0 ]
  ! kill -0 "$w" 2>/dev/null || false
  # and what ran with these capabilities left no sanitizer report
  pgt_assert_clean_log
}
