#!/usr/bin/env bash
# Throughput of pgbench straight to PostgreSQL, through PgBouncer (session pooling)
# and through pgtetherd, side by side in one run, on loopback.
#   scripts/bench.sh [SECONDS]      (default 10 s per run; bounded, loopback only)
# Prints a Markdown table; bench/results.md keeps the figures of record.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
secs=${1:-10}
[ -x build/pgtetherd ] || make all >/dev/null
scripts/worker-user.sh pgtether >/dev/null # the workers run as it (worker_user's default)

id="pgtether-bench-$$"
tmp=$(mktemp -d "/tmp/$id.XXXXXX"); chmod 0755 "$tmp"
cgmount=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
db_port=$(free_port); listen_port=$(free_port); bouncer_port=$(free_port); daemon=; bouncer=
cleanup() {
  set +e
  [ -n "$daemon" ] && kill "$daemon" && wait "$daemon"
  [ -n "$bouncer" ] && kill "$bouncer" && wait "$bouncer"
  scripts/pg-local.sh stop "$tmp/pg"
  rm -rf "/sys/fs/bpf/$id"
  [ -d "$cgmount/$id" ] && find "$cgmount/$id" -depth -type d -exec rmdir {} \; 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

scripts/pg-local.sh start "$tmp/pg" "$db_port"
password="bench-$RANDOM$RANDOM"
scripts/pg-local.sh role "$tmp/pg" "$db_port" postgres "$password"
(umask 077 && printf '{ "db": { "postgres": "%s" } }\n' "$password" >"$tmp/credentials.json")
cat >"$tmp/pgtether.json" <<JSON
{ "listen": "127.0.0.1:$listen_port", "targets": ["*:$db_port"], "bpffs_dir": "/sys/fs/bpf/$id",
  "control_socket": "$tmp/control.sock", "cgroups": [], "credentials_file": "$tmp/credentials.json",
  "policy_dir": "$tmp/policy.d", "issuers_dir": "$tmp/issuers.d", "sessions_dir": "$tmp/sessions",
  "mask_key_file": "$tmp/mask.key",
  "upstreams": { "db": { "address": "127.0.0.1:$db_port", "tls": "disable", "role": "postgres" } } }
JSON
# two identities: one whose rule leaves statements to the role, one whose every
# statement is classified by the parser and decided
mkdir -p "$tmp/policy.d"
cat >"$tmp/policy.d/10-bench.json" <<JSON
{ "rules": [
  { "name": "bench", "match": { "cgroup": "/$id/bench" }, "token": { "source": "none" }, "upstream": "db" },
  { "name": "checked", "match": { "cgroup": "/$id/checked" }, "token": { "source": "none" }, "upstream": "db",
    "statements": { "allow": ["read", "write", "transaction", "session"], "deny": ["drop"] } },
  { "name": "masked", "match": { "cgroup": "/$id/masked" }, "token": { "source": "none" }, "upstream": "db",
    "mask": [ { "column": "public.pgbench_accounts.abalance", "strategy": "hash" },
              { "column": "public.pgbench_accounts.filler", "strategy": "partial" } ] } ] }
JSON
(umask 077 && head -c 32 /dev/urandom >"$tmp/mask.key")
build/pgtetherd -c "$tmp/pgtether.json" </dev/null >"$tmp/daemon.log" 2>&1 &
daemon=$!
for _ in $(seq 100); do grep -q event=ready "$tmp/daemon.log" && break; sleep 0.1; done
for cg in bench checked masked; do
  mkdir -p "$cgmount/$id/$cg"
  build/pgtether -c "$tmp/pgtether.json" attach "/$id/$cg" >/dev/null
done

export PGUSER=postgres PGHOST=127.0.0.1 PGPORT=$db_port PGPASSWORD=$password
pgbench -q -i -s 10 postgres >/dev/null 2>&1

# PgBouncer, as a team would run it in front of the same server: session pooling (the
# same one client connection : one server connection as pgtether, but server
# connections are kept and reused), trusting loopback clients, logging in with the
# password itself. It refuses to run as root: it runs as postgres.
mkdir -p "$tmp/bouncer"
printf '"postgres" "%s"\n' "$password" >"$tmp/bouncer/userlist.txt"
cat >"$tmp/bouncer/pgbouncer.ini" <<INI
[databases]
postgres = host=127.0.0.1 port=$db_port dbname=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bouncer_port
unix_socket_dir =
auth_type = trust
auth_file = $tmp/bouncer/userlist.txt
pool_mode = session
max_client_conn = 100
default_pool_size = 16
ignore_startup_parameters = extra_float_digits
logfile = $tmp/bouncer/pgbouncer.log
INI
chown -R postgres "$tmp/bouncer"
chmod 0700 "$tmp/bouncer"
runuser -u postgres -- pgbouncer "$tmp/bouncer/pgbouncer.ini" </dev/null >/dev/null 2>&1 &
bouncer=$!
for _ in $(seq 100); do psql -h 127.0.0.1 -p "$bouncer_port" -Atqc "select 1" postgres >/dev/null 2>&1 && break; sleep 0.1; done

in_cgroup() { local cg=$1; shift; bash -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$cgmount/$id/$cg" "$@"; }
tps() { sed -n 's/^tps = \([0-9.]*\) .*/\1/p' | head -n 1; }

printf '| workload | direct tps | PgBouncer tps | pgtether tps | pgtether/direct | pgtether/PgBouncer |\n'
printf '|---|---:|---:|---:|---:|---:|\n'
# run_case NAME CGROUP PGBENCH_ARGS...: the three, one after the other, the same
# arguments; PgBouncer does not check statements or mask, so its figure is the same
# plain relay for every pgtether rule (measured again each time, as a control)
run_case() {
  local name=$1 cg=$2; shift 2
  local d b p
  d=$(pgbench "$@" -T "$secs" postgres 2>/dev/null | tps)
  b=$(PGPORT=$bouncer_port pgbench "$@" -T "$secs" postgres 2>/dev/null | tps)
  p=$(in_cgroup "$cg" pgbench "$@" -T "$secs" postgres 2>/dev/null | tps)
  printf '| %s | %.0f | %.0f | %.0f | %.2f | %.2f |\n' "$name" "$d" "$b" "$p" "$(echo "$p / $d" | bc -l)" \
    "$(echo "$p / $b" | bc -l)"
}
run_case "select-only, 8 clients, prepared" bench -S -M prepared -c 8 -j 2
run_case "select-only, 1 client, simple" bench -S -M simple -c 1 -j 1
run_case "tpcb-like, 8 clients" bench -M prepared -c 8 -j 2
run_case "connect per transaction (-C), 4 clients" bench -S -C -c 4 -j 2
run_case "select-only, 8 clients, prepared, statements checked" checked -S -M prepared -c 8 -j 2
run_case "select-only, 1 client, simple, statements checked" checked -S -M simple -c 1 -j 1
run_case "tpcb-like, 8 clients, statements checked" checked -M prepared -c 8 -j 2
run_case "select-only, 8 clients, prepared, masked (hash)" masked -S -M prepared -c 8 -j 2
run_case "select-only, 1 client, simple, masked (hash)" masked -S -M simple -c 1 -j 1

# bulk rows: every row of pgbench_accounts (100 bytes each), read by psql
printf '\n| bulk read of %s rows | seconds | MB/s |\n|---|---:|---:|\n' "$(psql -Atc 'select count(*) from pgbench_accounts' postgres)"
bulk() {
  local name=$1 t0 t1 bytes
  shift
  t0=$(date +%s.%N)
  bytes=$("$@" psql -Atc "select aid, abalance, filler from pgbench_accounts" postgres | wc -c)
  t1=$(date +%s.%N)
  printf '| %s | %.2f | %.0f |\n' "$name" "$(echo "$t1 - $t0" | bc -l)" "$(echo "$bytes / ($t1 - $t0) / 1000000" | bc -l)"
}
bulk direct env
bulk "through PgBouncer" env PGPORT="$bouncer_port"
bulk "through pgtether" in_cgroup bench
bulk "through pgtether, two columns masked" in_cgroup masked
n=$(grep -c 'event=conn.open' "$tmp/daemon.log")
echo
echo "($n connections relayed; $(nproc) cores; $(uname -r); ${secs}s per run)"
