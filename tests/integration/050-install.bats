#!/usr/bin/env bats
# make install / uninstall into a DESTDIR, the installed unit under systemd-analyze,
# and the man pages.

load helpers

setup_file() {
  export PGT_TMP
  PGT_TMP=$(mktemp -d "/tmp/$PGT_RUN_ID-050.XXXXXX")
  export DEST="$PGT_TMP/root"
  # the host install in the systemd-analyze test creates the workers' user: one named
  # for this run, not the real 'pgtether'
  export WORKER_USER="pgt$(printf '%s' "$PGT_RUN_ID-050" | sha256sum | cut -c1-12)"
  mkdir -p "$DEST/usr/share/doc/unrelated"
  echo keep >"$DEST/usr/share/doc/unrelated/file"
}

teardown_file() {
  rm -rf "$PGT_TMP"
  # the workers' user the host install below created (a name of this run's own)
  [ -n "${WORKER_USER:-}" ] && id -u "$WORKER_USER" >/dev/null 2>&1 && userdel "$WORKER_USER"
  getent group "${WORKER_USER:-}" >/dev/null 2>&1 && groupdel "$WORKER_USER"
  return 0
}

layout() { # every path below $DEST with mode and owner
  (cd "$DEST" && find . -mindepth 1 -printf '%M %u:%g %p\n' | sort -k3)
}

@test "make install DESTDIR lays out exactly the expected files with the right modes" {
  run make -C "$PGT_ROOT" --no-print-directory install DESTDIR="$DEST" WORKER_USER="$WORKER_USER"
  echo "$output"
  [ "$status" -eq 0 ]
  # a staged install adds no user to the build host, and says what to do instead
  [[ "$output" == *"not creating the workers' system user '$WORKER_USER' for a DESTDIR install"* ]]
  ! id -u "$WORKER_USER" >/dev/null 2>&1 || false
  layout >"$PGT_TMP/layout"
  cat "$PGT_TMP/layout"
  diff -u - "$PGT_TMP/layout" <<'EXPECTED'
drwxr-xr-x root:root ./etc
drwxr-xr-x root:root ./etc/pgtether
drwxr-xr-x root:root ./etc/pgtether/issuers.d
-rw-r--r-- root:root ./etc/pgtether/pgtether.json
drwxr-xr-x root:root ./etc/pgtether/policy.d
drwxr-xr-x root:root ./usr
drwxr-xr-x root:root ./usr/bin
-rwxr-xr-x root:root ./usr/bin/pgtether
-rwxr-xr-x root:root ./usr/bin/pgtether-attach-runner
drwxr-xr-x root:root ./usr/lib
drwxr-xr-x root:root ./usr/lib/systemd
drwxr-xr-x root:root ./usr/lib/systemd/system
-rw-r--r-- root:root ./usr/lib/systemd/system/pgtether.service
drwxr-xr-x root:root ./usr/sbin
-rwxr-xr-x root:root ./usr/sbin/pgtetherd
drwxr-xr-x root:root ./usr/share
drwxr-xr-x root:root ./usr/share/doc
drwxr-xr-x root:root ./usr/share/doc/unrelated
-rw-r--r-- root:root ./usr/share/doc/unrelated/file
drwxr-xr-x root:root ./usr/share/man
drwxr-xr-x root:root ./usr/share/man/man1
-rw-r--r-- root:root ./usr/share/man/man1/pgtether.1
drwxr-xr-x root:root ./usr/share/man/man5
-rw-r--r-- root:root ./usr/share/man/man5/pgtether-policy.5
-rw-r--r-- root:root ./usr/share/man/man5/pgtether.json.5
drwxr-xr-x root:root ./usr/share/man/man8
-rw-r--r-- root:root ./usr/share/man/man8/pgtetherd.8
drwxr-xr-x root:root ./usr/share/pgtether
drwxr-xr-x root:root ./usr/share/pgtether/examples
-rw-r--r-- root:root ./usr/share/pgtether/examples/README.md
-rw------- root:root ./usr/share/pgtether/examples/credentials.example.json
-rw-r--r-- root:root ./usr/share/pgtether/examples/issuer.example.json
-rw-r--r-- root:root ./usr/share/pgtether/examples/pgtether.example.json
-rw-r--r-- root:root ./usr/share/pgtether/examples/pgtether.json
drwxr-xr-x root:root ./usr/share/pgtether/examples/policy.d
-rw-r--r-- root:root ./usr/share/pgtether/examples/policy.d/10-ci-migrations.json
-rw-r--r-- root:root ./usr/share/pgtether/examples/policy.d/20-ai-agent.json
-rw-r--r-- root:root ./usr/share/pgtether/examples/policy.d/30-oncall.json
-rw-r--r-- root:root ./usr/share/pgtether/examples/policy.d/40-backup-restore.json
-rw-r--r-- root:root ./usr/share/pgtether/examples/policy.example.json
-rw-r--r-- root:root ./usr/share/pgtether/examples/policy.schema.json
EXPECTED
  # the installed configuration is valid as shipped
  "$DEST/usr/sbin/pgtetherd" -n -c "$DEST/etc/pgtether/pgtether.json"
  grep -qx "ExecStart=/usr/sbin/pgtetherd -c /etc/pgtether/pgtether.json" "$DEST/usr/lib/systemd/system/pgtether.service"
}

@test "a second install keeps an edited /etc/pgtether" {
  sed -i 's|"targets": \["\*:5432"\]|"targets": ["*:5433"]|' "$DEST/etc/pgtether/pgtether.json"
  chmod 0640 "$DEST/etc/pgtether/pgtether.json"
  chmod 0700 "$DEST/etc/pgtether/policy.d"
  cp "$DEST/etc/pgtether/pgtether.json" "$PGT_TMP/edited.json"
  run make -C "$PGT_ROOT" --no-print-directory install DESTDIR="$DEST"
  [ "$status" -eq 0 ]
  [[ "$output" == *"kept the existing $DEST/etc/pgtether/pgtether.json"* ]]
  cmp "$DEST/etc/pgtether/pgtether.json" "$PGT_TMP/edited.json"
  [ "$(stat -c %a "$DEST/etc/pgtether/pgtether.json")" = 640 ]
  [ "$(stat -c %a "$DEST/etc/pgtether/policy.d")" = 700 ]
  grep -q '"\*:5433"' "$DEST/etc/pgtether/pgtether.json"
}

@test "make uninstall removes what install added and leaves /etc/pgtether and /var/lib/pgtether" {
  mkdir -p "$DEST/var/lib/pgtether/sessions"
  run make -C "$PGT_ROOT" --no-print-directory uninstall DESTDIR="$DEST" WORKER_USER="$WORKER_USER"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == *"left $DEST/etc/pgtether and $DEST/var/lib/pgtether in place"* ]]
  [[ "$output" == *"left the workers' system user '$WORKER_USER' in place"* ]]
  run bash -c "cd '$DEST' && find . -type f | sort"
  echo "$output"
  [ "$output" = "./etc/pgtether/pgtether.json
./usr/share/doc/unrelated/file" ]
  [ -d "$DEST/etc/pgtether/policy.d" ]
  [ -d "$DEST/etc/pgtether/issuers.d" ]
  [ -d "$DEST/var/lib/pgtether/sessions" ]
  [ ! -e "$DEST/usr/share/pgtether" ]
}

@test "the installed unit passes systemd-analyze verify and its exposure is at most 2.8" {
  local root="$PGT_TMP/verify"
  # installed under a prefix of its own so ExecStart= points at a real binary
  run make -C "$PGT_ROOT" --no-print-directory install PREFIX="$root/usr" SYSCONFDIR="$root/etc" WORKER_USER="$WORKER_USER"
  echo "$output"
  [ "$status" -eq 0 ]
  # a host install creates the workers' system user: no home, no login, own group
  [[ "$output" == *"created the system user '$WORKER_USER' for pgtetherd's workers"* ]]
  local pw
  pw=$(getent passwd "$WORKER_USER")
  echo "$pw"
  [[ "$pw" == "$WORKER_USER:x:"*":pgtether workers:/nonexistent:/usr/sbin/nologin" ]]
  [ "$(id -u "$WORKER_USER")" -ne 0 ] && [ "$(id -u "$WORKER_USER")" -lt 1000 ]
  [ "$(id -gn "$WORKER_USER")" = "$WORKER_USER" ]
  # and a second install keeps it
  run make -C "$PGT_ROOT" --no-print-directory install PREFIX="$root/usr" SYSCONFDIR="$root/etc" WORKER_USER="$WORKER_USER"
  [ "$status" -eq 0 ]
  [[ "$output" == *"the workers' system user '$WORKER_USER' exists"* ]]
  [ "$(getent passwd "$WORKER_USER")" = "$pw" ]
  local unit="$root/usr/lib/systemd/system/pgtether.service"
  # MANPATH: verify also checks that the Documentation= man pages exist
  run env MANPATH="$root/usr/share/man" systemd-analyze verify "$unit"
  echo "$output"
  [ "$status" -eq 0 ]
  [ -z "$output" ]
  run systemd-analyze security --offline=true "$unit"
  echo "$output" | grep -v '✓'
  local score
  score=$(sed -n 's/.*Overall exposure level for pgtether.service: \([0-9.]*\).*/\1/p' <<<"$output")
  echo "exposure=$score"
  [ -n "$score" ]
  # 2.8: the parent starts workers (CAP_SETUID/CAP_SETGID: +0.3) and kills them
  # (CAP_KILL: +0.1); ProtectProc=: -0.2, no CAP_DAC_READ_SEARCH: -0.2 (what
  # it reads for a workload it opens as the workload)
  awk -v s="$score" 'BEGIN { exit !(s <= 2.8) }'
  # and the README states the figure that the unit scores
  grep -q "exposure level $score" "$PGT_ROOT/README.md"
}

@test "every man page renders without warnings" {
  local page
  for page in pgtether.1 pgtetherd.8 pgtether.json.5 pgtether-policy.5; do
    run bash -c "MANWIDTH=80 man --warnings -l '$PGT_ROOT/man/$page' 2>&1 >/dev/null"
    echo "$page: $output"
    [ "$status" -eq 0 ]
    [ -z "$output" ]
    # and renders to something: the NAME section at least
    MANWIDTH=80 man -l "$PGT_ROOT/man/$page" 2>/dev/null | grep -q '^NAME'
  done
}
