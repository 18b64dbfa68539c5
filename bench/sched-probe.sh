#!/usr/bin/env bash
# Where the three busy tasks of each masked bulk read ran: run by scripts/bench.sh,
#   BENCH_PRIORITY=-10 BENCH_ALSO_WORKERS=1 BENCH_PROBE=bench/sched-probe.sh scripts/bench.sh
# Each round reads through every daemon of PROBE_SETUPS (default "pgtether also"; the
# order rotates every round): the plain read first (as bench.sh's rotation has it, the
# masked row follows its own daemon's plain one), then the masked read under
# `perf record -a` (scheduler switches and wake-ups only), summarised by
# bench/sched-summary.py. One line per read, then the table by setup.
#   PROBE_ROUNDS=N (default 10)   PROBE_KEEP=DIR keeps the perf data there
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
rounds=${PROBE_ROUNDS:-10}
work=$(mktemp -d "$tmp/probe.XXXXXX")
keep=${PROBE_KEEP:-}
[ -n "$keep" ] && mkdir -p "$keep"
declare -A pid_of
for d in $DAEMONS; do pid_of[${d%%:*}]=${d#*:}; done
setups=()
for s in ${PROBE_SETUPS:-pgtether also}; do [ -n "${pid_of[$s]:-}" ] && setups+=("$s"); done
for s in "${setups[@]}"; do echo "$s: daemon ${pid_of[$s]}, workers $(pgrep -P "${pid_of[$s]}" | tr '\n' ' ')"; done
read_all() { in_cgroup "$1" psql -Atc "select aid, abalance, filler from pgbench_accounts" postgres | wc -c >/dev/null; }
for ((r = 0; r < rounds; r++)); do
  for ((k = 0; k < ${#setups[@]}; k++)); do
    s=${setups[$(((k + r) % ${#setups[@]}))]}
    read_all "$s/bench"
    perf record -q -a -o "$work/cur.data" -e sched:sched_switch,sched:sched_wakeup 2>/dev/null &
    perf_pid=$!
    sleep 0.3 # perf is recording
    t0=$(date +%s.%N)
    read_all "$s/masked"
    t1=$(date +%s.%N)
    kill -INT "$perf_pid"
    wait "$perf_pid" || true
    pids="${pid_of[$s]} $(pgrep -P "${pid_of[$s]}" | tr '\n' ' ')"
    echo "round=$r setup=$s seconds=$(echo "$t1 - $t0" | bc -l | cut -c1-5) $(/usr/bin/python3 "$here/sched-summary.py" read "$work/cur.data" "$pids")" |
      tee -a "$work/lines"
    [ -n "$keep" ] && mv "$work/cur.data" "$keep/r$r-$s.data"
    rm -f "$work/cur.data"
  done
done
echo
/usr/bin/python3 "$here/sched-summary.py" table "$work/lines"
rm -rf "$work"
