#!/usr/bin/env bats
# Runs last: everything the suite created is gone.

load helpers

@test "no test cgroups, pins, temp dirs, worker users or daemons are left behind" {
  local cg
  cg=$(pgt_cgroup_mount)
  run bash -c "ls -d '$cg'/$PGT_RUN_ID* /sys/fs/bpf/$PGT_RUN_ID* /tmp/$PGT_RUN_ID* 2>/dev/null"
  echo "$output"
  [ -z "$output" ]
  # the workers' users (helpers.bash) carry the run's id in their comment
  run awk -F: -v id="$PGT_RUN_ID" 'index($5, id) == 1 { print $1 " " $5 }' /etc/passwd
  echo "$output"
  [ -z "$output" ]
  run pgrep -af "pgtetherd -c /tmp/$PGT_RUN_ID"
  echo "$output"
  [ "$status" -eq 1 ]
  run pgrep -af "postgres.*/tmp/$PGT_RUN_ID"
  echo "$output"
  [ "$status" -eq 1 ]
}
