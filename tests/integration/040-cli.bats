#!/usr/bin/env bats
# Configuration checks and CLI errors: what an admin sees when something is wrong.

load helpers

setup_file() {
  export PGT_TMP
  PGT_TMP=$(mktemp -d "/tmp/$PGT_RUN_ID-040.XXXXXX")
}

teardown_file() {
  rm -rf "$PGT_TMP"
}

@test "pgtetherd -n accepts a valid configuration and the shipped example" {
  run "$PGTETHERD" -c "$PGT_ROOT/policies/pgtether.example.json" -n
  [ "$status" -eq 0 ]
  printf '{ "listen": "127.0.0.1:6543", "targets": ["*:5432", "127.0.0.2:5433"], "cgroups": ["/ci"], "policy_dir": "%s" }\n' \
    "$PGT_TMP/none.d" >"$PGT_TMP/ok.json"
  run "$PGTETHERD" -c "$PGT_TMP/ok.json" -n
  [ "$status" -eq 0 ]
  [ "$output" = "pgtetherd: configuration $PGT_TMP/ok.json is valid (0 policy rule(s) from $PGT_TMP/none.d, 0 trusted issuer(s))" ]
}

@test "the shipped policy files follow policy.schema.json" {
  run /usr/bin/python3 - "$PGT_ROOT/policies/policy.schema.json" "$PGT_ROOT/policies/policy.example.json" "$PGT_ROOT"/policies/examples/*.json <<'PY'
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
for f in sys.argv[2:]:
    jsonschema.validate(json.load(open(f)), schema, cls=jsonschema.Draft202012Validator)
    print("valid", f.rsplit("/", 1)[1])
# and the schema refuses what pgtetherd refuses
bad = {"rules": [{"name": "r", "match": {"cgroup": "/x"}, "token": {"source": "none"}, "upstream": "main",
                  "mask": [{"column": "users", "strategy": "email"}]}]}
try:
    jsonschema.validate(bad, schema, cls=jsonschema.Draft202012Validator)
    print("accepted a mask column without a table")
except jsonschema.ValidationError:
    print("refused")
PY
  echo "$output"
  [ "$status" -eq 0 ]
  [ "${lines[-1]}" = refused ]
  [ "$(printf '%s\n' "$output" | grep -c '^valid ')" -eq 5 ]
}

@test "the shipped policy and issuer examples are valid once their key set and credentials exist" {
  mkdir -p "$PGT_TMP/ex/policy.d" "$PGT_TMP/ex/issuers.d"
  cp "$PGT_ROOT/policies/policy.example.json" "$PGT_TMP/ex/policy.d/05-example.json"
  cp "$PGT_ROOT"/policies/examples/*.json "$PGT_TMP/ex/policy.d/"
  cp "$PGT_ROOT/policies/issuer.example.json" "$PGT_TMP/ex/issuers.d/github-actions.json"
  "$PGT_ROOT/scripts/dev-jwt.py" keygen "$PGT_TMP/ex/issuers.d" github-actions
  "$PGT_ROOT/scripts/dev-jwt.py" keygen "$PGT_TMP/ex/issuers.d" sso
  echo '{ "issuer": "https://sso.example.com", "audiences": ["pgtether"], "algorithms": ["RS256"], "jwks_file": "sso.jwks.json" }' \
    >"$PGT_TMP/ex/issuers.d/sso.json"
  (umask 077 && echo '{ "main": { "app": "x", "migrator": "x", "reader": "x", "agent": "x", "oncall": "x", "backup": "x", "restorer": "x" } }' \
    >"$PGT_TMP/ex/credentials.json")
  (umask 077 && head -c 32 /dev/urandom >"$PGT_TMP/ex/mask.key")
  cat >"$PGT_TMP/ex/pgtether.json" <<JSON
{ "policy_dir": "$PGT_TMP/ex/policy.d", "issuers_dir": "$PGT_TMP/ex/issuers.d",
  "credentials_file": "$PGT_TMP/ex/credentials.json", "mask_key_file": "$PGT_TMP/ex/mask.key",
  "upstreams": { "main": { "address": "127.0.0.2:5432", "tls": "disable", "role": "app" } } }
JSON
  run "$PGTETHERD" -c "$PGT_TMP/ex/pgtether.json" -n
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == *"valid (10 policy rule(s) from $PGT_TMP/ex/policy.d, 2 trusted issuer(s))" ]]
  run "$PGTETHER" -c "$PGT_TMP/ex/pgtether.json" check
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$output" = "pgtether: $PGT_TMP/ex/policy.d: 10 rule(s), valid" ]
  # without the key set beside it, the issuer file says what is missing
  rm "$PGT_TMP/ex/issuers.d/github-actions.jwks.json"
  run "$PGTETHERD" -c "$PGT_TMP/ex/pgtether.json" -n
  echo "$output"
  [ "$status" -eq 1 ]
  [[ "$output" == *"github-actions.jwks.json"* ]]
}

@test "pgtetherd -n rejects an unknown key with file:line:col and a suggestion" {
  printf '{\n  "listen": "127.0.0.1:6543",\n  "fail_mod": "open"\n}\n' >"$PGT_TMP/typo.json"
  run "$PGTETHERD" -c "$PGT_TMP/typo.json" -n
  [ "$status" -eq 1 ]
  [ "$output" = "pgtetherd: $PGT_TMP/typo.json:3:3: unknown key 'fail_mod' (did you mean 'fail_mode'?)" ]
}

@test "pgtetherd rejects broken JSON, duplicate keys and a missing file" {
  printf '{ "listen": "127.0.0.1:6543", }' >"$PGT_TMP/broken.json"
  run "$PGTETHERD" -c "$PGT_TMP/broken.json" -n
  [ "$status" -eq 1 ]
  [[ "$output" == "pgtetherd: $PGT_TMP/broken.json:1:"* ]]
  printf '{ "listen": "127.0.0.1:6543",\n "listen": "127.0.0.1:6544" }' >"$PGT_TMP/dup.json"
  run "$PGTETHERD" -c "$PGT_TMP/dup.json" -n
  [ "$status" -eq 1 ]
  [[ "$output" == *"dup.json:2:"*"duplicate object key"* ]]
  run "$PGTETHERD" -c "$PGT_TMP/nope.json" -n
  [ "$status" -eq 1 ]
  [ "$output" = "pgtetherd: $PGT_TMP/nope.json: cannot open: No such file or directory" ]
}

@test "pgtetherd refuses a bpffs_dir that is not on a bpf filesystem" {
  printf '{ "listen": "127.0.0.1:%s", "bpffs_dir": "%s/pins", "control_socket": "%s/c.sock" }' \
    "$(pgt_free_port)" "$PGT_TMP" "$PGT_TMP" >"$PGT_TMP/badfs.json"
  run timeout 10 "$PGTETHERD" -c "$PGT_TMP/badfs.json"
  echo "$output"
  [ "$status" -eq 1 ]
  [[ "$output" == *"bpffs_dir '$PGT_TMP/pins' is not on a bpf filesystem"* ]]
  [ ! -e "$PGT_TMP/c.sock" ]
}

@test "pgtetherd refuses to start twice on one control socket" {
  local port
  port=$(pgt_free_port)
  /usr/bin/python3 -c 'import socket,sys,time; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(); time.sleep(5)' "$PGT_TMP/busy.sock" &
  local holder=$!
  for _ in $(seq 50); do [ -S "$PGT_TMP/busy.sock" ] && break; sleep 0.1; done
  printf '{ "listen": "127.0.0.1:%s", "bpffs_dir": "/sys/fs/bpf/%s-040", "control_socket": "%s/busy.sock" }' \
    "$port" "$PGT_RUN_ID" "$PGT_TMP" >"$PGT_TMP/busy.json"
  run timeout 10 "$PGTETHERD" -c "$PGT_TMP/busy.json"
  kill "$holder"
  echo "$output"
  [ "$status" -eq 1 ]
  [[ "$output" == *"another pgtetherd answers on $PGT_TMP/busy.sock"* ]]
}

@test "pgtether says how to reach the daemon when it is not running" {
  run "$PGTETHER" --socket "$PGT_TMP/none.sock" status
  [ "$status" -eq 1 ]
  [ "$output" = "pgtether: cannot connect to $PGT_TMP/none.sock: No such file or directory (is pgtetherd running? pass -c FILE or --socket PATH)" ]
}

@test "pgtether run rejects a bad cgroup path and a missing command" {
  run "$PGTETHER" --socket "$PGT_TMP/none.sock" run --cgroup ci -- true
  [ "$status" -eq 2 ]
  [[ "$output" == *"invalid cgroup 'ci'"* ]]
  run "$PGTETHER" --socket "$PGT_TMP/none.sock" run --cgroup /ci
  [ "$status" -eq 2 ]
  [[ "$output" == "usage: pgtether run --cgroup CGROUP -- CMD [ARGS...]" ]]
  run "$PGTETHER" --socket "$PGT_TMP/none.sock" frobnicate
  [ "$status" -eq 2 ]
  [[ "${lines[0]}" == "pgtether: unknown command 'frobnicate'" ]]
}
