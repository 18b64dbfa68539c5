#!/usr/bin/env bats
# The parent computes SCRAM proofs (PBKDF2, up to 10^6 iterations, ~0.6 s) on its
# proof thread, not in its event loop: while one is computed it still answers
# `pgtether status` (and accepts, cancels and every other worker's calls). Before,
# nothing of the parent answered until the proof was done. Observed by order, not by a
# tight timer: status answers that complete inside the window between the server's
# challenge and the proof's arrival at the server (scramslow.py logs both).

load helpers

setup_file() {
  pgt_setup_world
  export SLOW_PORT
  SLOW_PORT=$(pgt_free_port)
  /usr/bin/python3 "$PGT_ROOT/tests/integration/scramslow.py" 127.0.0.2 "$SLOW_PORT" "$PGT_TMP/slow.log" </dev/null >/dev/null 2>&1 3>&- &
  echo $! >"$PGT_TMP/slow.pid"
  pgt_write_config closed "[]" "[\"*:$PG_PORT\", \"127.0.0.2:$SLOW_PORT\"]" \
    "\"dead\": { \"address\": \"127.0.0.2:$SLOW_PORT\", \"tls\": \"disable\", \"role\": \"app\" }"
  pgt_start_daemon
}

teardown_file() {
  [ -f "$PGT_TMP/slow.pid" ] && kill "$(cat "$PGT_TMP/slow.pid")" 2>/dev/null
  pgt_teardown_world
}

logged() { grep -q "^$1 " "$PGT_TMP/slow.log" 2>/dev/null; }

@test "status is answered while a 10^6-iteration SCRAM proof is computed" {
  local first final answered=0 t
  # a real login first: the held credential works, and the database's salt is cached
  [ "$(pgt_in "$PGT_CG/real" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 'real'")" = real ]
  pgt_in "$PGT_CG/slow" psql -X "host=127.0.0.2 port=$SLOW_PORT" -Atq -c "select 1" >"$PGT_TMP/slow.out" 2>&1 3>&- &
  pgt_wait_until 10 logged first
  rm -f "$PGT_TMP/status.times"
  while ! logged final; do
    pgt status --json >/dev/null
    date +%s.%N >>"$PGT_TMP/status.times"
    sleep 0.05 # the proof thread needs a core too
  done
  wait
  first=$(awk '$1 == "first" { print $2; exit }' "$PGT_TMP/slow.log")
  final=$(awk '$1 == "final" { print $2; exit }' "$PGT_TMP/slow.log")
  echo "challenge sent at $first, proof received at $final; status answered at:"
  cat "$PGT_TMP/status.times"
  cat "$PGT_TMP/slow.out"
  # the proof took its time (so the window below is the parent's computing) ...
  awk -v a="$first" -v b="$final" 'BEGIN { exit !(b - a > 0.3) }'
  # ... and status answers came in it, clear of its ends (the worker's relaying, the
  # status command's own exit)
  while read -r t; do
    awk -v a="$first" -v b="$final" -v t="$t" 'BEGIN { exit !(t > a + 0.1 && t < b - 0.05) }' && answered=$((answered + 1))
  done <"$PGT_TMP/status.times"
  echo "answered inside the window: $answered"
  [ "$answered" -ge 1 ]
  # the server's refusal reached the client; the real upstream still serves
  grep -q "scramslow" "$PGT_TMP/slow.out"
  [ "$(pgt_in "$PGT_CG/real" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 'again'")" = again ]
}

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
}
