#!/usr/bin/env bats
# pgtether-attach-runner against a fake runner layout: cgroups named like the real
# services, created in a test subtree of the cgroup2 mount.

load helpers

setup_file() {
  pgt_setup_world
  pgt_start_daemon
  for cg in \
    system.slice/actions.runner.acme-api.runner-1.service \
    system.slice/gitlab-runner.service \
    system.slice/buildkite-agent.service \
    system.slice/jenkins.service \
    system.slice/nginx.service \
    system.slice/actions.runner-notes \
    user.slice/user-1000.slice/session-3.scope; do
    mkdir -p "$CGMOUNT$PGT_CG/$cg"
  done
}

teardown_file() {
  pgt_teardown_world
}

attached() {
  pgt status --json | jq -r '.attached[].cgroup' | sort
}

expected_runners() {
  printf '%s\n' \
    "$PGT_CG/system.slice/actions.runner.acme-api.runner-1.service" \
    "$PGT_CG/system.slice/buildkite-agent.service" \
    "$PGT_CG/system.slice/gitlab-runner.service" \
    "$PGT_CG/system.slice/jenkins.service" | sort
}

@test "--dry-run shows the runners it finds and changes nothing" {
  cp "$PGT_CONF" "$PGT_TMP/before.json"
  run "$PGT_ROOT/scripts/pgtether-attach-runner" -c "$PGT_CONF" --root "$PGT_CG" --dry-run --write-config
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(grep '^would attach ' <<<"$output" | sed 's/^would attach //' | sort)" = "$(expected_runners)" ]
  [[ "$output" == *"would write to $PGT_CONF"* ]]
  [ -z "$(attached)" ]
  cmp "$PGT_CONF" "$PGT_TMP/before.json"
  [ -z "$(bpftool cgroup show "$CGMOUNT$PGT_CG/system.slice/gitlab-runner.service" | tail -n +2)" ]
}

@test "it attaches exactly the runners and writes them into the configuration" {
  run "$PGT_ROOT/scripts/pgtether-attach-runner" -c "$PGT_CONF" --root "$PGT_CG" --write-config
  echo "$output"
  [ "$status" -eq 0 ]
  [ "$(attached)" = "$(expected_runners)" ]
  [ "$(jq -r '.cgroups[]' "$PGT_CONF" | sort)" = "$(expected_runners)" ]
  "$PGTETHERD" -n -c "$PGT_CONF"
  # a runner's job is intercepted now
  run pgt_in_unattached "$PGT_CG/system.slice/gitlab-runner.service" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select 5"
  [ "$output" = 5 ]
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/system.slice/gitlab-runner.service ")" = 1 ]
  # running it again adds nothing twice
  run "$PGT_ROOT/scripts/pgtether-attach-runner" -c "$PGT_CONF" --root "$PGT_CG" --write-config
  [ "$status" -eq 0 ]
  [ "$(jq '.cgroups | length' "$PGT_CONF")" = 4 ]
}

@test "units and cgroup paths can be named; unknown ones are errors" {
  run "$PGT_ROOT/scripts/pgtether-attach-runner" -c "$PGT_CONF" --root "$PGT_CG" nginx.service "$PGT_CG/user.slice/user-1000.slice/session-3.scope"
  echo "$output"
  [ "$status" -eq 0 ]
  attached | grep -qx "$PGT_CG/system.slice/nginx.service"
  attached | grep -qx "$PGT_CG/user.slice/user-1000.slice/session-3.scope"
  run "$PGT_ROOT/scripts/pgtether-attach-runner" -c "$PGT_CONF" --root "$PGT_CG" nosuch.service
  [ "$status" -eq 1 ]
  [[ "$output" == *"unit nosuch.service has no cgroup below $PGT_CG"* ]]
  run "$PGT_ROOT/scripts/pgtether-attach-runner" -c "$PGT_CONF" --root "$PGT_CG/user.slice"
  [ "$status" -eq 1 ]
  [[ "$output" == *"no CI runner cgroups found below $PGT_CG/user.slice"* ]]
}

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
}
