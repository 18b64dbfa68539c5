#!/usr/bin/env bash
# Throughput of pgbench straight to PostgreSQL, through PgBouncer (session pooling)
# and through pgtetherd, side by side in one run, on loopback.
#   scripts/bench.sh [SECONDS]      (default 10 s per run; bounded, loopback only)
# Prints a Markdown table; bench/results.md keeps the figures of record.
#   BENCH_WORKERS=N        "workers" for this tree's pgtetherd (default: one per CPU)
#   BENCH_BASELINE=DIR     also a pgtetherd built elsewhere (DIR/pgtetherd, DIR/pgtether:
#                          e.g. another commit's build/), in the same run, taking turns
#                          with this tree's on every row (a column pgtether/baseline)
#   BENCH_ALSO_WORKERS=N   also this tree's pgtetherd with "workers": N, in the same run
#                          (bulk rows only: "through pgtether, workers N")
#   BENCH_BULK_RUNS=N      read each bulk row N times, taking turns across the rows (the
#                          order rotates every round), and print the median (default 1)
#   BENCH_ONLY=bulk        the bulk rows only (no pgbench cases)
#   BENCH_PROBE=FILE       instead of the rows, run the bash script FILE once everything
#                          is up (bench/sched-probe.sh: where each read's tasks ran);
#                          it gets in_cgroup, $tmp, the psql environment and DAEMONS
#                          ("NAME:PID ...": pgtether, baseline, also, those started)
#   BENCH_PRIORITY=N       the scheduler's autogroup nice (-20..19) of this run's session
#                          and of its PostgreSQL (pg_ctl starts it in a session of its
#                          own): with autogroups on, a process's own nice counts only
#                          within its session, so a "nice 19" job in another session
#                          still takes its full share beside the benchmark
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ "$(id -u)" -eq 0 ] || { echo "bench: run as root" >&2; exit 1; }
# a session (so an autogroup) of its own, whose priority is then this run's alone
if [ -n "${BENCH_PRIORITY:-}" ] && [ -z "${BENCH_OWN_SESSION:-}" ]; then
  BENCH_OWN_SESSION=1 exec setsid --wait "$0" "$@"
fi
secs=${1:-10}
[ -x build/pgtetherd ] || make all >/dev/null
scripts/worker-user.sh pgtether >/dev/null # the workers run as it (worker_user's default)

id="pgtether-bench-$$"
tmp=$(mktemp -d "/tmp/$id.XXXXXX"); chmod 0755 "$tmp"
cgmount=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
db_port=$(free_port); listen_port=$(free_port); bouncer_port=$(free_port); baseline_port=$(free_port)
daemons=(); bouncer=
cleanup() {
  set +e
  local pid
  for pid in "${daemons[@]}"; do kill "$pid" && wait "$pid"; done
  [ -n "$bouncer" ] && kill "$bouncer" && wait "$bouncer"
  scripts/pg-local.sh stop "$tmp/pg"
  rm -rf "/sys/fs/bpf/$id-pgtether" "/sys/fs/bpf/$id-baseline" "/sys/fs/bpf/$id-also"
  [ -d "$cgmount/$id" ] && find "$cgmount/$id" -depth -type d -exec rmdir {} \; 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

scripts/pg-local.sh start "$tmp/pg" "$db_port"
if [ -n "${BENCH_PRIORITY:-}" ]; then
  echo "$BENCH_PRIORITY" >/proc/self/autogroup
  echo "$BENCH_PRIORITY" >"/proc/$(head -n 1 "$tmp/pg/data/postmaster.pid")/autogroup"
fi
password="bench-$RANDOM$RANDOM"
scripts/pg-local.sh role "$tmp/pg" "$db_port" postgres "$password"
(umask 077 && printf '{ "db": { "postgres": "%s" } }\n' "$password" >"$tmp/credentials.json")
(umask 077 && head -c 32 /dev/urandom >"$tmp/mask.key")
# start_daemon NAME BUILD_DIR PORT [EXTRA_KEYS]: a pgtetherd of BUILD_DIR with its own
# pins, control socket and cgroups under /$id/NAME; its pid goes to daemons. Three
# identities: one whose rule leaves statements to the role, one whose every statement
# is classified by the parser and decided, one whose results are masked.
start_daemon() {
  local name=$1 bin=$2 port=$3 extra=${4:-} dir="$tmp/$1" cg
  mkdir -p "$dir/policy.d"
  cat >"$dir/pgtether.json" <<JSON
{ "listen": "127.0.0.1:$port", "targets": ["*:$db_port"], "bpffs_dir": "/sys/fs/bpf/$id-$name",
  "control_socket": "$dir/control.sock", "cgroups": [], "credentials_file": "$tmp/credentials.json",
  "policy_dir": "$dir/policy.d", "issuers_dir": "$dir/issuers.d", "sessions_dir": "$dir/sessions",
  "mask_key_file": "$tmp/mask.key", $extra
  "upstreams": { "db": { "address": "127.0.0.1:$db_port", "tls": "disable", "role": "postgres" } } }
JSON
  cat >"$dir/policy.d/10-bench.json" <<JSON
{ "rules": [
  { "name": "bench", "match": { "cgroup": "/$id/$name/bench" }, "token": { "source": "none" }, "upstream": "db" },
  { "name": "checked", "match": { "cgroup": "/$id/$name/checked" }, "token": { "source": "none" }, "upstream": "db",
    "statements": { "allow": ["read", "write", "transaction", "session"], "deny": ["drop"] } },
  { "name": "masked", "match": { "cgroup": "/$id/$name/masked" }, "token": { "source": "none" }, "upstream": "db",
    "mask": [ { "column": "public.pgbench_accounts.abalance", "strategy": "hash" },
              { "column": "public.pgbench_accounts.filler", "strategy": "partial" } ] } ] }
JSON
  "$bin/pgtetherd" -c "$dir/pgtether.json" </dev/null >"$dir/daemon.log" 2>&1 &
  daemons+=($!)
  for _ in $(seq 100); do grep -qs event=ready "$dir/daemon.log" && break; sleep 0.1; done
  grep -q event=ready "$dir/daemon.log" || { echo "bench: pgtetherd of $bin did not start:" >&2; cat "$dir/daemon.log" >&2; exit 1; }
  for cg in bench checked masked; do
    mkdir -p "$cgmount/$id/$name/$cg"
    "$bin/pgtether" -c "$dir/pgtether.json" attach "/$id/$name/$cg" >/dev/null
  done
}
start_daemon pgtether build "$listen_port" "${BENCH_WORKERS:+\"workers\": $BENCH_WORKERS,}"
[ -n "${BENCH_BASELINE:-}" ] && start_daemon baseline "$BENCH_BASELINE" "$baseline_port"
[ -n "${BENCH_ALSO_WORKERS:-}" ] && start_daemon also build "$(free_port)" "\"workers\": $BENCH_ALSO_WORKERS,"

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

if [ -n "${BENCH_PROBE:-}" ]; then
  probe_daemons=pgtether:${daemons[0]}
  k=1
  [ -n "${BENCH_BASELINE:-}" ] && probe_daemons+=" baseline:${daemons[$((k++))]}"
  [ -n "${BENCH_ALSO_WORKERS:-}" ] && probe_daemons+=" also:${daemons[$((k++))]}"
  export -f in_cgroup
  export cgmount id tmp
  DAEMONS=$probe_daemons bash "$BENCH_PROBE"
  exit
fi

if [ "${BENCH_ONLY:-}" != bulk ]; then
if [ -n "${BENCH_BASELINE:-}" ]; then
  printf '| workload | direct tps | PgBouncer tps | pgtether tps | baseline tps | pgtether/direct | pgtether/PgBouncer | pgtether/baseline |\n'
  printf '|---|---:|---:|---:|---:|---:|---:|---:|\n'
else
  printf '| workload | direct tps | PgBouncer tps | pgtether tps | pgtether/direct | pgtether/PgBouncer |\n'
  printf '|---|---:|---:|---:|---:|---:|\n'
fi
# run_case NAME CGROUP PGBENCH_ARGS...: each, one after the other, the same arguments;
# PgBouncer does not check statements or mask, so its figure is the same plain relay
# for every pgtether rule (measured again each time, as a control). With a baseline,
# pgtether and the baseline take turns going first, so neither always meets the
# table state or the machine's load the other left.
turn=0
run_case() {
  local name=$1 cg=$2; shift 2
  local d b p q=
  d=$(pgbench "$@" -T "$secs" postgres 2>/dev/null | tps)
  b=$(PGPORT=$bouncer_port pgbench "$@" -T "$secs" postgres 2>/dev/null | tps)
  if [ -z "${BENCH_BASELINE:-}" ]; then
    p=$(in_cgroup "pgtether/$cg" pgbench "$@" -T "$secs" postgres 2>/dev/null | tps)
    printf '| %s | %.0f | %.0f | %.0f | %.2f | %.2f |\n' "$name" "$d" "$b" "$p" "$(echo "$p / $d" | bc -l)" \
      "$(echo "$p / $b" | bc -l)"
    return
  fi
  if [ $((turn++ % 2)) -eq 0 ]; then
    p=$(in_cgroup "pgtether/$cg" pgbench "$@" -T "$secs" postgres 2>/dev/null | tps)
    q=$(in_cgroup "baseline/$cg" pgbench "$@" -T "$secs" postgres 2>/dev/null | tps)
  else
    q=$(in_cgroup "baseline/$cg" pgbench "$@" -T "$secs" postgres 2>/dev/null | tps)
    p=$(in_cgroup "pgtether/$cg" pgbench "$@" -T "$secs" postgres 2>/dev/null | tps)
  fi
  printf '| %s | %.0f | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f |\n' "$name" "$d" "$b" "$p" "$q" \
    "$(echo "$p / $d" | bc -l)" "$(echo "$p / $b" | bc -l)" "$(echo "$p / $q" | bc -l)"
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
fi

# bulk rows: every row of pgbench_accounts (100 bytes each), read by psql. With
# BENCH_BULK_RUNS=N each row is read N times, one round after another, each round
# starting one row later than the one before (so no row always follows the same one
# or meets the same load), and the row's median is printed with every run's seconds.
runs=${BENCH_BULK_RUNS:-1}
if [ "$runs" -gt 1 ]; then
  printf '\n| bulk read of %s rows, median of %s | seconds | MB/s | every run, s |\n|---|---:|---:|---|\n' \
    "$(psql -Atc 'select count(*) from pgbench_accounts' postgres)" "$runs"
else
  printf '\n| bulk read of %s rows | seconds | MB/s |\n|---|---:|---:|\n' "$(psql -Atc 'select count(*) from pgbench_accounts' postgres)"
fi
names=(direct "through PgBouncer" "through pgtether" "through pgtether, two columns masked")
cmds=("env" "env PGPORT=$bouncer_port" "in_cgroup pgtether/bench" "in_cgroup pgtether/masked")
if [ -n "${BENCH_ALSO_WORKERS:-}" ]; then
  names+=("through pgtether, workers $BENCH_ALSO_WORKERS" "through pgtether, workers $BENCH_ALSO_WORKERS, two columns masked")
  cmds+=("in_cgroup also/bench" "in_cgroup also/masked")
fi
if [ -n "${BENCH_BASELINE:-}" ]; then
  names+=("through the baseline" "through the baseline, two columns masked")
  cmds+=("in_cgroup baseline/bench" "in_cgroup baseline/masked")
fi
# bulk_once CMD...: one read; prints "SECONDS BYTES"
bulk_once() {
  local t0 t1 bytes
  t0=$(date +%s.%N)
  bytes=$("$@" psql -Atc "select aid, abalance, filler from pgbench_accounts" postgres | wc -c)
  t1=$(date +%s.%N)
  echo "$(echo "$t1 - $t0" | bc -l) $bytes"
}
declare -A secs_of bytes_of
for ((r = 0; r < runs; r++)); do
  for ((k = 0; k < ${#names[@]}; k++)); do
    i=$(((k + r) % ${#names[@]}))
    read -r t by < <(bulk_once ${cmds[$i]})
    secs_of[$i]+="$t "
    bytes_of[$i]=$by
  done
done
for ((i = 0; i < ${#names[@]}; i++)); do
  med=$(printf '%s\n' ${secs_of[$i]} | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
  if [ "$runs" -gt 1 ]; then
    printf '| %s | %.3f | %.0f | %s |\n' "${names[$i]}" "$med" "$(echo "${bytes_of[$i]} / $med / 1000000" | bc -l)" \
      "$(printf '%.3f ' ${secs_of[$i]} | sed 's/ $//; s/ / \/ /g')"
  else
    printf '| %s | %.2f | %.0f |\n' "${names[$i]}" "$med" "$(echo "${bytes_of[$i]} / $med / 1000000" | bc -l)"
  fi
done
# paired: each round's baseline seconds / the same round's pgtether seconds (the rounds
# are a few seconds apart, so they meet nearly the same load: steadier than the medians)
if [ "$runs" -gt 1 ] && [ -n "${BENCH_BASELINE:-}" ]; then
  paired() { # ROW BASE_ROW: the median and range of the per-round ratios
    paste -d' ' <(printf '%s\n' ${secs_of[$2]}) <(printf '%s\n' ${secs_of[$1]}) | awk '{ print $1 / $2 }' | sort -g |
      awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%.3f (%.2f-%.2f)", m, v[1], v[NR] }'
  }
  last=$((${#names[@]} - 2))
  echo
  echo "baseline seconds / pgtether seconds, each round (median, range), > 1 is better:"
  echo "  pgtether: $(paired 2 $last); two columns masked: $(paired 3 $((last + 1)))"
  if [ -n "${BENCH_ALSO_WORKERS:-}" ]; then
    echo "  pgtether, workers $BENCH_ALSO_WORKERS: $(paired 4 $last); two columns masked: $(paired 5 $((last + 1)))"
  fi
fi
n=$(cat "$tmp"/*/daemon.log | grep -c 'event=conn.open')
echo
echo "($n connections relayed; $(nproc) cores; $(uname -r); ${secs}s per run; pgtether: $(git rev-parse --short HEAD)${BENCH_WORKERS:+, workers $BENCH_WORKERS}${BENCH_ALSO_WORKERS:+; also workers $BENCH_ALSO_WORKERS}${BENCH_BASELINE:+; baseline: $BENCH_BASELINE}${BENCH_PRIORITY:+; autogroup nice $BENCH_PRIORITY})"
