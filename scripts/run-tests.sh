#!/usr/bin/env bash
# Runs every test and ends with one line "N passed, N failed"; exits non-zero on any
# failure. Unit tests are cmocka binaries; integration tests are bats files run
# against a real PostgreSQL, real cgroups and the daemon from the same build.
#   scripts/run-tests.sh [BUILD_DIR]     (default build/san: ASan + UBSan)
set -uo pipefail

build=${1:-build/san}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

if [ "$(id -u)" -ne 0 ]; then
  echo "run-tests: the integration tests attach BPF programs and create cgroups: run as root" >&2
  exit 1
fi

passed=0 failed=0 skipped=0

echo "== unit tests ($build/tests)"
for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  out=$("$t" 2>&1)
  rc=$?
  printf '%s\n' "$out"
  p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) test.*/\1/p' <<<"$out" | tail -n 1)
  f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test.*/\1/p' <<<"$out" | tail -n 1)
  p=${p:-0} f=${f:-0}
  # a crash or a sanitizer report after the tests counts as a failure of that binary
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "$t exited with status $rc" >&2
    f=1
  fi
  passed=$((passed + p)) failed=$((failed + f))
done

# a short round of each libFuzzer harness (make fuzz-binaries builds them into
# FUZZ_BUILD): its seed corpus and a few thousand mutations, one test per harness
fuzz_build=${FUZZ_BUILD:-build/fuzz}
echo "== fuzz harnesses ($fuzz_build, seeds + up to ${FUZZ_RUNS:-20000} inputs each)"
if compgen -G "$fuzz_build/fuzz_*" >/dev/null; then
  out=$(scripts/fuzz.sh --runs "${FUZZ_RUNS:-20000}" "$fuzz_build" 10 2>&1)
  printf '%s\n' "$out"
  p=$(grep -cE '^[a-z_]+: [0-9]+ executions$' <<<"$out")
  f=$(grep -cE '^[a-z_]+: FAILED' <<<"$out")
  passed=$((passed + p)) failed=$((failed + f))
else
  echo "no harnesses in $fuzz_build: skipped (make BUILD=$fuzz_build CC=clang FUZZ=1 fuzz-binaries)"
  skipped=$((skipped + 1))
fi

echo "== integration tests (bats)"
export PGT_BUILD="$root/$build"
export PGT_RUN_ID="pgtether-test-$$"
tap=$(mktemp)
bats --tap tests/integration/*.bats | tee "$tap"
p=$(grep -cE '^ok [0-9]+' "$tap" | tr -d ' ')
s=$(grep -cE '^ok [0-9]+ .*# skip' "$tap" | tr -d ' ')
f=$(grep -cE '^not ok [0-9]+' "$tap" | tr -d ' ')
planned=$(sed -n 's/^1\.\.\([0-9][0-9]*\)$/\1/p' "$tap" | head -n 1)
rm -f "$tap"
passed=$((passed + p - s)) skipped=$((skipped + s)) failed=$((failed + f))
# bats that died midway ran fewer tests than it planned: the missing ones failed
if [ -n "$planned" ] && [ $((p + f)) -lt "$planned" ]; then
  echo "bats ran $((p + f)) of $planned planned tests" >&2
  failed=$((failed + planned - p - f))
fi

if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
