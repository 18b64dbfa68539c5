#!/usr/bin/env bats
# Identity: kernel facts bound to a verified token. Rules in policy.d name which
# cgroups may present tokens with which claims; a token copied elsewhere is useless.

load helpers

ISS=https://ci.example.test

setup_file() {
  export PGT_OWN_POLICY=1
  pgt_setup_world
  export PG_READER_PASSWORD="rd-$RANDOM$RANDOM"
  "$PGT_ROOT/scripts/pg-local.sh" role "$PGT_TMP/pg" "$PG_PORT" reader "$PG_READER_PASSWORD"
  (umask 077 && printf '{ "main": { "app": "%s", "reader": "%s" } }\n' "$PG_APP_PASSWORD" "$PG_READER_PASSWORD" \
    >"$PGT_TMP/credentials.json")
  mkdir -p "$PGT_TMP/issuers.d" "$PGT_TMP/policy.d" "$PGT_TMP/keys"
  "$PGT_ROOT/scripts/dev-jwt.py" keygen "$PGT_TMP/issuers.d" k1
  "$PGT_ROOT/scripts/dev-jwt.py" keygen "$PGT_TMP/keys" k1 # same kid, another key: a forger's
  cat >"$PGT_TMP/issuers.d/ci.json" <<JSON
{ "issuer": "$ISS", "audiences": ["pgtether"], "algorithms": ["RS256"], "jwks_file": "k1.jwks.json" }
JSON
  # the token path of the file rule exists on the host only as an empty directory
  export TOKDIR="/run/$PGT_ID-tok"
  mkdir -p "$TOKDIR"
  cat >"$PGT_TMP/policy.d/10-ci.json" <<JSON
{ "rules": [
  { "name": "api-main", "match": { "cgroup": "$PGT_CG/a", "issuer": "$ISS",
      "claims": { "sub": "repo:acme/api:ref:refs/heads/main" } },
    "token": { "source": "password" }, "upstream": "main", "role": "reader" },
  { "name": "web", "match": { "cgroup": "$PGT_CG/b", "issuer": "$ISS", "claims": { "sub": "repo:acme/web:*" } },
    "token": { "source": "password" }, "upstream": "main" },
  { "name": "api-file", "match": { "cgroup": "$PGT_CG/f", "issuer": "$ISS", "claims": { "sub": "repo:acme/api:*" } },
    "token": { "source": "file", "path": "$TOKDIR/token" }, "upstream": "main", "role": "reader" },
  { "name": "legacy", "match": { "cgroup": "$PGT_CG/legacy", "uid": 0 },
    "token": { "source": "none" }, "upstream": "main" }
] }
JSON
  cat >"$PGT_TMP/policy.d/90-deny.json" <<JSON
{ "rules": [ { "name": "no-forks", "effect": "deny",
  "match": { "issuer": "$ISS", "claims": { "sub": "repo:fork/*" } } } ] }
JSON
  # the token the file rules read (in_token_ns)
  "$PGT_ROOT/scripts/dev-jwt.py" mint "$PGT_TMP/issuers.d" k1 \
    '{"iss": "https://ci.example.test", "aud": "pgtether", "sub": "repo:acme/api:ref:refs/heads/dev"}' >"$PGT_TMP/token.src"
  pgt_write_config closed
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
  rm -rf "$TOKDIR"
}

mint() { "$PGT_ROOT/scripts/dev-jwt.py" mint "$PGT_TMP/issuers.d" k1 "$1"; }
API_MAIN='{"iss": "https://ci.example.test", "aud": "pgtether", "sub": "repo:acme/api:ref:refs/heads/main"}'

# in_token_ns CGROUP MODE UID SQL: psql in CGROUP, in a mount namespace of its own in
# which $TOKDIR/token (mode MODE) holds $PGT_TMP/token.src; run as UID (0: root).
in_token_ns() {
  pgt_in "$1" unshare -m sh -c '
    mount -t tmpfs -o mode=0755 pgtether-test "$1" && install -m "$2" "$3" "$1/token" || exit 99
    u=$4; shift 4
    if [ "$u" = 0 ]; then exec "$@"; fi
    exec setpriv --reuid="$u" --regid="$u" --clear-groups "$@"' \
    sh "$TOKDIR" "$2" "$PGT_TMP/token.src" "$3" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "$4"
}

@test "a token bound to cgroup A works there, and the database sees both halves of the identity" {
  local tok
  tok=$(mint "$API_MAIN")
  PGPASSWORD=$tok run pgt_in "$PGT_CG/a" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq \
    -c "select current_user, current_setting('pgtether.identity')"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == "reader|cgroup=$PGT_CG/a;uid=0;"*";rule=api-main;iss=$ISS;sub=repo:acme/api:ref:refs/heads/main" ]]
  [ "$(pgt_log_field conn.open "cgroup=$PGT_CG/a " sub)" = "repo:acme/api:ref:refs/heads/main" ]
  [ "$(pgt_log_field conn.open "cgroup=$PGT_CG/a " token)" = "password" ]
  [ "$(pgt_log_field conn.open "cgroup=$PGT_CG/a " rule)" = "api-main" ]
  # the raw token is never logged
  run grep -cF "${tok##*.}" "$PGT_LOG"
  [ "$output" = 0 ]
}

@test "the same token presented from cgroup B is refused with 28000, without echoing it" {
  local tok
  tok=$(mint "$API_MAIN")
  PGPASSWORD=$tok run pgt_in "$PGT_CG/b" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"FATAL:  pgtether: no policy rule allows this connection (cgroup $PGT_CG/b, uid 0, exe "*", upstream 'main', database \"postgres\", token sub \"repo:acme/api:ref:refs/heads/main\" from $ISS)"* ]]
  [[ "$output" != *"${tok:0:20}"* ]]
  # the log says why in the fault table's words (fault.c), not only "by the parent"
  grep -q "event=conn.refused .*cgroup=$PGT_CG/b .*sqlstate=28000 reason=\"no policy rule allows\"" "$PGT_LOG"
  # and from a cgroup no rule names
  PGPASSWORD=$tok run pgt_in "$PGT_CG/other" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  [ "$status" -eq 2 ]
  [[ "$output" == *"no policy rule allows this connection (cgroup $PGT_CG/other,"* ]]
}

@test "a rule that demands a token refuses a process that has none, a forged one or an expired one" {
  # no password at all: libpq gives up before anything reaches the database
  PGPASSWORD= run pgt_in "$PGT_CG/a" psql -X -w -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"no password supplied"* ]]
  # the database's own password is not an identity token
  PGPASSWORD=$PG_APP_PASSWORD run pgt_in "$PGT_CG/a" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  echo "$output"
  [[ "$output" == *"FATAL:  pgtether: the identity token (password) was refused: malformed token"* ]]
  # signed by another key under the trusted kid
  PGPASSWORD=$("$PGT_ROOT/scripts/dev-jwt.py" mint "$PGT_TMP/keys" k1 "$API_MAIN") \
    run pgt_in "$PGT_CG/a" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  echo "$output"
  [[ "$output" == *"was refused: token signature is invalid"* ]]
  PGPASSWORD=$(mint '{"iss": "https://ci.example.test", "aud": "pgtether", "sub": "repo:acme/api:ref:refs/heads/main", "exp": "-400"}') \
    run pgt_in "$PGT_CG/a" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  echo "$output"
  [[ "$output" == *"was refused: token expired"* ]]
  PGPASSWORD=$(mint '{"iss": "https://ci.example.test", "aud": "other", "sub": "repo:acme/api:ref:refs/heads/main"}') \
    run pgt_in "$PGT_CG/a" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  [[ "$output" == *"was refused: token audience does not include pgtether's"* ]]
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/a ")" = 1 ]
}

@test "a deny rule beats any allow rule, whatever the file order" {
  local fork='{"iss": "https://ci.example.test", "aud": "pgtether", "sub": "repo:fork/api"}'
  PGPASSWORD=$(mint "$fork") run pgt_in "$PGT_CG/b" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"FATAL:  pgtether: this connection is denied by policy rule 'no-forks' ($PGT_TMP/policy.d/90-deny.json:1)"* ]]
  [ "$(pgt_log_count conn.refused 'reason="denied by policy rule"')" -ge 1 ]
  # an earlier file that allows every repo from B changes nothing
  cat >"$PGT_TMP/policy.d/05-early.json" <<JSON
{ "rules": [ { "name": "any-repo", "match": { "cgroup": "$PGT_CG/b", "issuer": "$ISS", "claims": { "sub": "repo:*" } },
  "token": { "source": "password" }, "upstream": "main" } ] }
JSON
  pgt_reload
  PGPASSWORD=$(mint "$fork") run pgt_in "$PGT_CG/b" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"denied by policy rule 'no-forks'"* ]]
  # while it does allow what no deny rule matches
  PGPASSWORD=$(mint '{"iss": "https://ci.example.test", "aud": "pgtether", "sub": "repo:acme/api:ref:refs/heads/main"}') \
    run pgt_in "$PGT_CG/b" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select current_setting('pgtether.identity')"
  rm -f "$PGT_TMP/policy.d/05-early.json"
  pgt_reload
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == *";rule=any-repo;"* ]]
}

@test "a file token is read inside the workload's own mount namespace" {
  # only inside the new mount namespace does $TOKDIR/token exist
  run in_token_ns "$PGT_CG/f" 0644 0 "select current_user, current_setting('pgtether.identity')"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == "reader|"*";rule=api-file;iss=$ISS;sub=repo:acme/api:ref:refs/heads/dev" ]]
  [ -z "$(ls -A "$TOKDIR")" ]
  [ "$(pgt_log_field conn.open "cgroup=$PGT_CG/f " token)" = "file" ]
  # the same token file, copied into a process of another cgroup: no rule binds it there
  run in_token_ns "$PGT_CG/other" 0644 0 "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"FATAL:  pgtether: no policy rule allows this connection (cgroup $PGT_CG/other,"* ]]
  # the same workload without the mount has no token, and is told why
  run pgt_in "$PGT_CG/f" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"no token: the token file $TOKDIR/token cannot be read in the workload's mount namespace: No such file or directory)"* ]]
}

@test "a file token the workload itself may not read is not read for it" {
  # a non-root workload (uid 65534) whose token path is root's alone
  cat >"$PGT_TMP/policy.d/20-nobody.json" <<JSON
{ "rules": [ { "name": "nobody-file", "match": { "cgroup": "$PGT_CG/n", "uid": 65534, "issuer": "$ISS",
    "claims": { "sub": "repo:acme/api:*" } },
  "token": { "source": "file", "path": "$TOKDIR/token" }, "upstream": "main" } ] }
JSON
  pgt_reload
  run in_token_ns "$PGT_CG/n" 0600 65534 "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"cannot be read in the workload's mount namespace: the workload itself may not read it"* ]]
  # readable by the workload: accepted
  run in_token_ns "$PGT_CG/n" 0644 65534 "select current_user"
  rm -f "$PGT_TMP/policy.d/20-nobody.json"
  pgt_reload
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = "app" ]
}

@test "a rule on kernel facts alone (token source none) needs all of them" {
  run pgt_in "$PGT_CG/legacy" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select current_user"
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = "app" ]
  run pgt_in "$PGT_CG/legacy" setpriv --reuid=65534 --regid=65534 --clear-groups psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"no policy rule allows this connection (cgroup $PGT_CG/legacy, uid 65534,"* ]]
}

@test "pgtether status shows each live connection's identity: cgroup, pid, exe, rule and sub" {
  local tok
  tok=$(mint "$API_MAIN")
  PGPASSWORD=$tok pgt_in "$PGT_CG/a" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select pg_sleep(3)" &
  local bg=$!
  local st=""
  for _ in $(seq 50); do
    st=$("$PGTETHER" -c "$PGT_CONF" status --json | jq -c --arg cg "$PGT_CG/a" '.connections[] | select(.cgroup == $cg and .state == "relaying")')
    [ -n "$st" ] && break
    sleep 0.1
  done
  wait "$bg"
  echo "$st"
  [ "$(jq -r .sub <<<"$st")" = "repo:acme/api:ref:refs/heads/main" ]
  [ "$(jq -r .iss <<<"$st")" = "$ISS" ]
  [ "$(jq -r .rule <<<"$st")" = "api-main" ]
  [ "$(jq -r .role <<<"$st")" = "reader" ]
  [[ "$(jq -r .exe <<<"$st")" == */psql ]]
  [ "$(jq -r .pid <<<"$st")" -gt 0 ]
  # and the human-readable form names the sub too
  PGPASSWORD=$tok pgt_in "$PGT_CG/a" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select pg_sleep(2)" &
  bg=$!
  for _ in $(seq 50); do
    run "$PGTETHER" -c "$PGT_CONF" status
    [[ "$output" == *"repo:acme/api:ref:refs/heads/main"* ]] && break
    sleep 0.1
  done
  wait "$bg"
  echo "$output"
  [[ "$output" == *"repo:acme/api:ref:refs/heads/main"* ]]
}

@test "a broken policy file at reload keeps the running policy, and says where" {
  echo '{ "rules": [ { "name": "x", "match": { "cgroup": "/x" }, "upstream": "main" } ] }' >"$PGT_TMP/policy.d/30-broken.json"
  pgt_reload
  rm -f "$PGT_TMP/policy.d/30-broken.json"
  grep "event=reload " "$PGT_LOG" | tail -n 1
  [[ "$(grep "event=reload " "$PGT_LOG" | tail -n 1)" == *"30-broken.json:1:"*"needs \\\"token\\\""*"keeping the running configuration"* ]]
  PGPASSWORD=$(mint "$API_MAIN") run pgt_in "$PGT_CG/a" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select current_user"
  [ "$status" -eq 0 ]
  [ "$output" = "reader" ]
}

@test "a rule naming an issuer, upstream or role that does not exist stops the daemon from starting" {
  sed 's/"role": "reader"/"role": "admin"/' "$PGT_TMP/policy.d/10-ci.json" >"$PGT_TMP/bad.json"
  mkdir -p "$PGT_TMP/badpol"
  cp "$PGT_TMP/bad.json" "$PGT_TMP/badpol/10-ci.json"
  sed "s|\"policy_dir\": \"[^\"]*\"|\"policy_dir\": \"$PGT_TMP/badpol\"|" "$PGT_CONF" >"$PGT_TMP/bad-conf.json"
  run "$PGTETHERD" -n -c "$PGT_TMP/bad-conf.json"
  echo "$output"
  [ "$status" -eq 1 ]
  [[ "$output" == *"$PGT_TMP/badpol/10-ci.json:2: rule 'api-main': no credential for role 'admin' of upstream 'main' in $PGT_TMP/credentials.json"* ]]
}

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
}
