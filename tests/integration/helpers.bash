# Shared by the integration tests: a real PostgreSQL on loopback, a real pgtetherd with
# real BPF programs on real cgroups. Every name a test creates (cgroups, bpffs pins,
# temp dirs) starts with $PGT_RUN_ID so runs never collide and leftovers can be found.

PGT_ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
PGT_BUILD=${PGT_BUILD:-$PGT_ROOT/build}
PGTETHERD=$PGT_BUILD/pgtetherd
PGTETHER=$PGT_BUILD/pgtether
PGT_RUN_ID=${PGT_RUN_ID:-pgtether-test-$$}
# The daemon is an ASan build under `make test`: leaks reported at exit fail the test.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

pgt_cgroup_mount() {
  awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo
}

# A TCP port on 127.0.0.1 that nothing listens on now.
pgt_free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# pgt_make_worker_user: the system user this file's daemon runs its workers as, made
# for this file alone and removed by pgt_teardown_world. useradd allows 32
# characters, so the name is a hash of $PGT_ID; the comment holds $PGT_ID itself so
# that 999-leftovers can find one left behind. Sets and exports PGT_WORKER_USER.
pgt_make_worker_user() {
  PGT_WORKER_USER="pgt$(printf '%s' "${PGT_ID:?}" | sha256sum | cut -c1-12)"
  export PGT_WORKER_USER
  id -u "$PGT_WORKER_USER" >/dev/null 2>&1 && return 0
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
    --user-group --comment "$PGT_ID" "$PGT_WORKER_USER"
}

# Removes the user pgt_make_worker_user made (and its group), if this file made one.
pgt_remove_worker_user() {
  [ -n "${PGT_WORKER_USER:-}" ] || return 0
  [ "$(getent passwd "$PGT_WORKER_USER" | cut -d: -f5)" = "${PGT_ID:-}" ] || return 0
  userdel "$PGT_WORKER_USER" 2>/dev/null || true
  getent group "$PGT_WORKER_USER" >/dev/null && groupdel "$PGT_WORKER_USER" 2>/dev/null
  return 0
}

# Sets up this file's world: PG cluster, config, names, the workers' user. Call from
# setup_file.
pgt_setup_world() {
  local name
  name=$(basename "$BATS_TEST_FILENAME" .bats)
  export PGT_ID="$PGT_RUN_ID-$name"
  export PGT_TMP
  PGT_TMP=$(mktemp -d "/tmp/$PGT_ID.XXXXXX")
  chmod 0755 "$PGT_TMP"
  export CGMOUNT
  CGMOUNT=$(pgt_cgroup_mount)
  export PGT_CG="/$PGT_ID"
  export PGT_BPFFS="/sys/fs/bpf/$PGT_ID"
  export PG_PORT PGT_PORT
  PG_PORT=$(pgt_free_port)
  PGT_PORT=$(pgt_free_port)
  export PGT_CONF="$PGT_TMP/pgtether.json"
  export PGT_LOG="$PGT_TMP/daemon.log"
  pgt_make_worker_user
  # Workloads connect as "app"; the password is the one pgtetherd holds. It is in the
  # environment only for the tests that go straight to the database: through
  # pgtether no password is ever asked for.
  export PGUSER=app PGDATABASE=postgres PGCONNECT_TIMEOUT=5
  export PG_APP_PASSWORD="pgt-$RANDOM$RANDOM-secret"
  export PGPASSWORD="$PG_APP_PASSWORD"
  "$PGT_ROOT/scripts/pg-local.sh" start "$PGT_TMP/pg" "$PG_PORT"
  "$PGT_ROOT/scripts/pg-local.sh" role "$PGT_TMP/pg" "$PG_PORT" app "$PG_APP_PASSWORD"
  pgt_write_credentials "$PG_APP_PASSWORD"
  pgt_write_config closed
}

# pgt_write_credentials PASSWORD: the held credentials, mode 0600.
pgt_write_credentials() {
  (umask 077 && printf '{ "main": { "app": "%s" }, "dead": { "app": "%s" } }\n' "$1" "$1" >"$PGT_TMP/credentials.json")
}

# pgt_write_config FAIL_MODE [CGROUPS_JSON_ARRAY] [TARGETS_JSON_ARRAY] [MORE_UPSTREAMS]
# $PGT_EXTRA_CONFIG, when set, adds top-level members ("key": value, ...).
# Every daemon runs its workers as this file's own user ($PGT_WORKER_USER, made by
# pgt_setup_world).
# $PGT_MAIN_ADDRESS and $PGT_MAIN_ALIASES (a JSON array) replace the "main" upstream's
# address (127.0.0.1:$PG_PORT) and aliases ([::1]:$PG_PORT). Unless
# $PGT_OWN_POLICY is set, the policy is rewritten to the tests' default (below).
pgt_write_config() {
  cat >"$PGT_CONF" <<JSON
{
  "listen": "127.0.0.1:$PGT_PORT",
  "targets": ${3:-[\"*:$PG_PORT\"]},
  "cgroups": ${2:-[]},
  "fail_mode": "$1",
  "bpffs_dir": "$PGT_BPFFS",
  "control_socket": "$PGT_TMP/control.sock",
  "credentials_file": "$PGT_TMP/credentials.json",
  "policy_dir": "$PGT_TMP/policy.d",
  "issuers_dir": "$PGT_TMP/issuers.d",
  "sessions_dir": "$PGT_TMP/sessions",${PGT_WORKER_USER:+
  \"worker_user\": \"$PGT_WORKER_USER\",}${PGT_EXTRA_CONFIG:+
  $PGT_EXTRA_CONFIG,}
  "upstreams": {
    "main": { "address": "${PGT_MAIN_ADDRESS:-127.0.0.1:$PG_PORT}", "aliases": ${PGT_MAIN_ALIASES:-[\"[::1]:$PG_PORT\"]}, "tls": "disable", "role": "app" }${4:+,
    $4}
  }
}
JSON
  [ -n "${PGT_OWN_POLICY:-}" ] || pgt_write_policy
}

# The tests' default policy: every cgroup of this file's subtree may reach every
# upstream of the config, as its default role, on kernel facts alone. Tests of the
# policy itself set PGT_OWN_POLICY and write their own.
pgt_write_policy() {
  mkdir -p "$PGT_TMP/policy.d" "$PGT_TMP/issuers.d"
  rm -f "$PGT_TMP"/policy.d/*.json
  jq --arg cg "$PGT_CG/**" '{ rules: [ .upstreams | keys[] |
      { name: ("tests-" + .), match: { cgroup: $cg }, token: { source: "none" }, upstream: . } ] }' \
    "$PGT_CONF" >"$PGT_TMP/policy.d/50-tests.json"
}

# Starts pgtetherd in the background and waits for its ready line. Not with the
# database password of the tests that go straight to the database in its environment:
# pgtetherd has it from credentials.json only, as on a real host (052 looks for it in
# the processes' memory).
#
# It runs with the capabilities of the shipped unit and no others: the bounding set
# of dist/pgtether.service.in's CapabilityBoundingSet=, no inheritable or ambient
# ones, no_new_privs (NoNewPrivileges=yes), as systemd starts it; what passes here
# passes under systemd. PGT_DAEMON_CAPS replaces that list (CAP_X CAP_Y ..., or "all"
# for root's full set). PGT_DAEMON_GROUPS (gids, comma-separated) are its supplementary
# groups, as SupplementaryGroups= in the unit would give them.
pgt_unit_caps() {
  sed -n 's/^CapabilityBoundingSet=//p' "$PGT_ROOT/dist/pgtether.service.in"
}

# The setpriv command line that gives a root process exactly those capabilities.
pgt_daemon_caps_wrap() {
  local caps=${PGT_DAEMON_CAPS:-$(pgt_unit_caps)} c set=""
  [ "$caps" = all ] && return 0
  for c in $caps; do
    c=${c#CAP_}
    set+=",+${c,,}"
  done
  echo setpriv --bounding-set=-all"$set" --inh-caps=-all --ambient-caps=-all --no-new-privs \
    ${PGT_DAEMON_GROUPS:+--groups="$PGT_DAEMON_GROUPS"} --
}

pgt_start_daemon() {
  local before=0
  [ -f "$PGT_LOG" ] && before=$(grep -c 'event=ready' "$PGT_LOG")
  # shellcheck disable=SC2046 # the wrapper's words
  env -u PGPASSWORD -u PG_APP_PASSWORD $(pgt_daemon_caps_wrap) "$PGTETHERD" -c "$PGT_CONF" </dev/null >>"$PGT_LOG" 2>&1 3>&- &
  echo $! >"$PGT_TMP/daemon.pid"
  for _ in $(seq 100); do
    [ "$(grep -c 'event=ready' "$PGT_LOG")" -gt "$before" ] && return 0
    kill -0 "$(cat "$PGT_TMP/daemon.pid")" 2>/dev/null || break
    sleep 0.1
  done
  echo "pgtetherd did not start:" >&2
  cat "$PGT_LOG" >&2
  return 1
}

# Sends SIGHUP and waits for the daemon's reload line (applied or refused).
pgt_reload() {
  local before
  before=$(grep -c 'event=reload ' "$PGT_LOG" || true)
  kill -HUP "$(cat "$PGT_TMP/daemon.pid")"
  for _ in $(seq 100); do
    [ "$(grep -c 'event=reload ' "$PGT_LOG" || true)" -gt "$before" ] && return 0
    sleep 0.1
  done
  echo "pgtetherd did not log a reload" >&2
  return 1
}

# Stops pgtetherd (SIGTERM) and waits for it; fails if it does not exit in 10 s.
pgt_stop_daemon() {
  local pid
  [ -f "$PGT_TMP/daemon.pid" ] || return 0
  pid=$(cat "$PGT_TMP/daemon.pid")
  rm -f "$PGT_TMP/daemon.pid"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null
  echo "pgtetherd did not stop on SIGTERM" >&2
  return 1
}

# Fails when the daemon's log holds a sanitizer report, or a worker killed by its
# seccomp filter (SIGSYS: it made a system call the sandbox does not allow).
pgt_assert_clean_log() {
  if grep -nE 'AddressSanitizer|LeakSanitizer|runtime error:|Bad system call|\(signal 31\)' "$PGT_LOG" >&2; then
    return 1
  fi
}

pgt() { "$PGTETHER" -c "$PGT_CONF" "$@"; }

# pgt_in CGROUP CMD...: runs CMD in CGROUP (created and attached by pgtether run).
pgt_in() { local cg=$1; shift; "$PGTETHER" -c "$PGT_CONF" run --cgroup "$cg" -- "$@"; }

# pgt_in_unattached CGROUP CMD...: runs CMD in CGROUP without attaching it.
pgt_in_unattached() {
  local cg=$1; shift
  mkdir -p "$CGMOUNT$cg"
  bash -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CGMOUNT$cg" "$@"
}

# The database's administrator, over the cluster's unix socket (not intercepted).
pgt_psql() { psql -X -h "$PGT_TMP/pg" -p "$PG_PORT" -U postgres -Atq "$@"; }

# Everything this file created goes: daemon, cluster, cgroups, pins, temp dir.
pgt_teardown_world() {
  pgt_stop_daemon || true
  [ -n "${PGT_TMP:-}" ] && "$PGT_ROOT/scripts/pg-local.sh" stop "$PGT_TMP/pg" || true
  # pins first: the last reference to a link going detaches it
  [ -n "${PGT_ID:-}" ] && rm -rf "/sys/fs/bpf/$PGT_ID"
  if [ -n "${PGT_ID:-}" ] && [ -n "${CGMOUNT:-}" ] && [ -d "$CGMOUNT/$PGT_ID" ]; then
    # leaves first; any process still inside is moved to the root cgroup
    find "$CGMOUNT/$PGT_ID" -depth -type d | while read -r d; do
      while read -r p; do echo "$p" >"$CGMOUNT/cgroup.procs" 2>/dev/null; done <"$d/cgroup.procs"
      rmdir "$d" 2>/dev/null || true
    done
  fi
  [ -n "${PGT_TMP:-}" ] && rm -rf "$PGT_TMP"
  pgt_remove_worker_user
  return 0
}

# Number of log lines of an event, optionally also matching a fixed string.
# pgt_wait_until SECONDS CMD...: runs CMD every 0.05 s until it succeeds, for at most
# SECONDS; fails saying what it waited for.
pgt_wait_until() {
  local n=$(($1 * 20)) i
  shift
  for ((i = 0; i < n; i++)); do
    "$@" && return 0
    sleep 0.05
  done
  echo "timed out waiting for: $*" >&2
  return 1
}

pgt_log_count() {
  if [ -n "${2:-}" ]; then
    grep "event=$1 " "$PGT_LOG" | grep -cF -- "$2" || true
  else
    grep -c "event=$1 " "$PGT_LOG" || true
  fi
}

# The value of KEY in the last log line of EVENT that contains MATCH.
pgt_log_field() {
  grep "event=$1 " "$PGT_LOG" | grep -F -- "$2" | tail -n 1 | grep -oE "(^| )$3=[^ ]+" | sed "s/^ *$3=//"
}
