#!/usr/bin/env bash
# Runs every libFuzzer harness of BUILD_DIR (fuzz_NAME, built by `make fuzz`) from its
# seed corpus in tests/fuzz/corpus/NAME and prints one line per harness:
#   NAME: N executions
# Exits non-zero when a harness crashed, leaked or timed out; its inputs and log are
# kept in a temporary directory whose path is printed. New inputs go to a scratch
# corpus that is removed afterwards (tests/fuzz/corpus only changes by hand).
#   scripts/fuzz.sh BUILD_DIR SECONDS          (make fuzz)
#   scripts/fuzz.sh --runs N BUILD_DIR SECONDS (make test: at most N inputs, SECONDS cap)
# FUZZ_ONLY="pgwire token" runs only those harnesses.
set -uo pipefail

runs=-1
if [ "${1:-}" = "--runs" ]; then
  runs=$2
  shift 2
fi
build=${1:?usage: fuzz.sh [--runs N] BUILD_DIR SECONDS}
seconds=${2:?usage: fuzz.sh [--runs N] BUILD_DIR SECONDS}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

# max_len and rss per harness: inputs as long as what the parser meets in practice
# (a startup packet is at most 10 kB; SQL texts past a few kB only repeat grammar the
# short ones reach, and each parse costs more), memory bounded well below the
# machine's so a leak or a runaway allocation is a failure, not a swap storm.
declare -A max_len=([pgwire]=12288 [sqlclass]=2048 [token]=8192 [config]=16384 [mask]=4096 [rowmask]=16384 [escape]=4096 [client]=16384 [server]=16384 [monitor]=16384)
declare -A rss=([sqlclass]=1536)

# ASan keeps every distinct allocation and free stack for the life of the process (its
# stack depot). Its fast unwinder follows frame pointers, and the Debian libraries
# pgtether calls (libpg_query, jansson, OpenSSL) are built without them: from the third
# frame on, a stack through them is whatever their registers held, so nearly every
# input adds a new "distinct" stack. fuzz_server's depot grew ~50 bytes an execution and
# ended a 10^7 run at the rss limit (RESULTS.md, stop 19). Two frames (the allocator and
# its caller) are read correctly and keep the depot to a few hundred stacks; a report
# still shows the faulting access's whole stack, and replaying its input
# (build/fuzz/fuzz_NAME FILE) gives the full allocation and free stacks. Options
# already in ASAN_OPTIONS come after this one, so they win.
export ASAN_OPTIONS="malloc_context_size=2${ASAN_OPTIONS:+:$ASAN_OPTIONS}"

failed=0
shopt -s nullglob
bins=("$build"/fuzz_*)
if [ ${#bins[@]} -eq 0 ]; then
  echo "fuzz: no harnesses in $build (make fuzz builds them)" >&2
  exit 1
fi
for bin in "${bins[@]}"; do
  name=${bin##*/fuzz_}
  if [ -n "${FUZZ_ONLY:-}" ] && [[ " $FUZZ_ONLY " != *" $name "* ]]; then
    continue
  fi
  work=$(mktemp -d "${TMPDIR:-/tmp}/pgtether-fuzz-$name.XXXXXX")
  mkdir -p "$work/corpus" "$work/crashes"
  log="$work/log"
  args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=10
        -rss_limit_mb="${rss[$name]:-1024}" -max_len="${max_len[$name]:-4096}"
        -artifact_prefix="$work/crashes/" -jobs=0 -workers=1)
  [ "$runs" -ge 0 ] && args+=(-runs="$runs")
  "$bin" "${args[@]}" "$work/corpus" "tests/fuzz/corpus/$name" >"$log" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
  crashes=("$work"/crashes/*)
  if [ "$rc" -ne 0 ] || [ ${#crashes[@]} -gt 0 ] || [ -z "$execs" ]; then
    echo "$name: FAILED (exit $rc) after ${execs:-?} executions: inputs and log in $work"
    failed=$((failed + 1))
    continue
  fi
  echo "$name: $execs executions"
  rm -rf "$work"
done
[ "$failed" -eq 0 ]
