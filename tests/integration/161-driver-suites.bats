#!/usr/bin/env bats
# The drivers' own test suites through pgtether: Debian ships lib/pq's, pgx's (with
# pgxpool and stdlib) and pgconn's *_test.go with their sources. Each suite is compiled
# once, then run twice: straight to the database, which listens only at the upstream's
# address (127.0.0.3), and in an attached cgroup by the alias 127.0.0.2 with a wrong
# password, which pgtether never asks for. Every test that passes straight must pass
# through pgtether, but for the few listed below that differ on purpose, each with why.
#
# The rule has no "statements": everything is left to the role, as the suites create
# tables, types, functions, large objects, temporary objects, LISTEN, COPY both ways and
# end their own backends. The role is not a superuser: it owns the test databases, the
# admin created what needs more (the hstore extension, pgx's uint64 domain, as pgx's
# own CI setup does), and every test passes straight so; a superuser would only hide
# whatever pgtether might need a privilege for.
#
# Left out, the same both ways (they skip or are not built): SSL/TLS tests (the test
# cluster has no certificate; pgtether's TLS has 100-tls.bats), unix-socket, md5 and
# plain-password connects (not intercepted, or pg_hba is scram only), CrateDB, and the
# two pgconn tests that talk to pgconn's mock server (github.com/jackc/pgmock is not
# packaged; they never reach a database). pgtype's tests need its testutil package,
# which is not packaged either. lib/pq's TestHasCorrectRootGroupPermissions fails both
# ways when run as root (it expects a key file not owned by root). Nothing else is
# left out: the whole file takes about two minutes.

load helpers

GOSUITE="$PGT_ROOT/tests/clients/gosuite"
GOSRC=/usr/share/gocode/src/github.com

setup_file() {
  export PG_LISTEN=127.0.0.3
  export PGT_OWN_POLICY=1
  pgt_setup_world
  export PGT_MAIN_ADDRESS="127.0.0.3:$PG_PORT" PGT_MAIN_ALIASES="[\"127.0.0.2:$PG_PORT\"]"
  # what the suites' READMEs and CI setups ask for: lib/pq's pqgotest, pgx's pgx_test
  pgt_psql -c "create database pqgotest owner app" -c "create database pgx_test owner app"
  pgt_psql -d pqgotest -c "create extension hstore"
  pgt_psql -d pgx_test -c "create extension hstore" -c "create domain uint64 as numeric(20,0)"
  mkdir -p "$PGT_TMP/policy.d"
  cat >"$PGT_TMP/policy.d/10-suites.json" <<JSON
{ "rules": [
  { "name": "driver-suites", "match": { "cgroup": "$PGT_CG/**" }, "token": { "source": "none" }, "upstream": "main" } ] }
JSON
  pgt_write_config closed
  pgt_start_daemon
}

teardown_file() {
  pgt_teardown_world
}

# gotest_build PACKAGE BINARY: the package's test binary, built offline from Debian's
# sources (never writing under /usr/share/gocode), once. pgx's stdlib tests import
# github.com/Masterminds/semver/v3, which Debian does not ship, for one version check:
# a stand-in of ours answers it. pgconn's main test file imports github.com/jackc/pgmock
# (not shipped) for two tests against a mock server: an overlay compiles the file
# without the declarations that name it.
gotest_build() {
  local pkg=$1 bin=$2 gopath=/usr/share/gocode extra=()
  [ -x "$bin" ] && return 0
  mkdir -p "$PGT_TMP/go/path/src/github.com/Masterminds/semver/v3"
  cp "$GOSUITE/semver.go" "$PGT_TMP/go/path/src/github.com/Masterminds/semver/v3/"
  gopath="$PGT_TMP/go/path:$gopath"
  if [ "$pkg" = github.com/jackc/pgconn ]; then
    awk '
      /^\t"github.com\/jackc\/pgmock"$/ { next }
      /^(func|type|var|const) / { if (chunk !~ /pgmock/) printf "%s", chunk; chunk = "" }
      { chunk = chunk $0 "\n" }
      END { if (chunk !~ /pgmock/) printf "%s", chunk }' \
      "$GOSRC/jackc/pgconn/pgconn_test.go" >"$PGT_TMP/go/pgconn_test.go"
    printf '{ "Replace": { "%s": "%s" } }\n' "$GOSRC/jackc/pgconn/pgconn_test.go" \
      "$PGT_TMP/go/pgconn_test.go" >"$PGT_TMP/go/overlay.json"
    extra=(-overlay "$PGT_TMP/go/overlay.json")
  fi
  # vet would look for the imports the overlay removed; the suites are not ours to vet
  GO111MODULE=off GOPATH="$gopath" GOCACHE="$PGT_TMP/go/cache" GOFLAGS= \
    go test -c -vet=off "${extra[@]}" -o "$bin" "$pkg"
}

# gotest_env ARRAY PACKAGE HOST PASSWORD: fills ARRAY with env's arguments for the environment
# the suites read: lib/pq's tests PG*, pgx's and pgconn's PGX_TEST_* (their ParseConfig
# tests expect no PG* variables set: helpers.bash sets some, they go). pgx's pgbouncer
# tests only exercise its describe-only statement cache and the simple protocol: they
# run against the database itself.
gotest_env() {
  local -n ret=$1
  local conn="host=$3 port=$PG_PORT user=app password=$4 dbname=pgx_test sslmode=disable"
  if [[ "$2" == github.com/lib/pq* ]]; then
    ret=(PGHOST="$3" PGPORT="$PG_PORT" PGUSER=app PGPASSWORD="$4" PGDATABASE=pqgotest
      PGSSLMODE=disable PGCONNECT_TIMEOUT=20)
  else
    ret=(-u PGHOST -u PGPORT -u PGUSER -u PGPASSWORD -u PGDATABASE -u PGCONNECT_TIMEOUT
      PGX_TEST_DATABASE="$conn" PGX_TEST_CONN_STRING="$conn" PGX_TEST_TCP_CONN_STRING="$conn"
      PGX_TEST_SCRAM_PASSWORD_CONN_STRING="$conn" PGX_TEST_PGBOUNCER_CONN_STRING="$conn")
  fi
}

# suite NAME PACKAGE MIN_CONNS [VAR=VALUE...]: builds the suite, runs it (with those
# variables) straight and through pgtether (at least MIN_CONNS connections), and
# compares with $PGT_TMP/NAME.differ (the tests that differ on purpose, written by the
# caller). A test that passed straight but not through is run alone once more through
# pgtether (lib/pq's TestContextCancelQuery cancels 10 ms after its query is sent, and
# can miss on two loaded cores, straight too; each such rerun is shown).
# PGT_SUITES_KEEP=DIR keeps the outputs there.
suite() {
  local name=$1 pkg=$2 min_conns=$3 bin dir
  shift 3
  bin="$PGT_TMP/go/${pkg//\//_}.test"
  gotest_build "$pkg" "$bin"
  dir="$PGT_TMP/run-$name"
  mkdir -p "$dir"
  local -a straight through
  gotest_env straight "$pkg" 127.0.0.3 "$PG_APP_PASSWORD"
  gotest_env through "$pkg" 127.0.0.2 wrong
  straight+=("$@")
  through+=("$@")
  (cd "$dir" && env "${straight[@]}" timeout 150 "$bin" -test.v -test.timeout 140s) \
    >"$PGT_TMP/$name.direct" 2>&1 || true
  (cd "$dir" && pgt_in "$PGT_CG/$name" env "${through[@]}" timeout 150 "$bin" -test.v -test.timeout 140s) \
    >"$PGT_TMP/$name.pgtether" 2>&1 || true
  run /usr/bin/python3 "$GOSUITE/results.py" "$PGT_TMP/$name.direct" "$PGT_TMP/$name.pgtether" "$PGT_TMP/$name.differ"
  local retries=()
  if [ "$status" -ne 0 ]; then
    local i=0 pattern
    while read -r pattern; do
      i=$((i + 1))
      (cd "$dir" && pgt_in "$PGT_CG/$name-again" env "${through[@]}" timeout 60 "$bin" -test.v -test.timeout 50s \
        -test.run "$pattern") >"$PGT_TMP/$name.retry$i" 2>&1 || true
      retries+=("$PGT_TMP/$name.retry$i")
    done < <(printf '%s\n' "${lines[@]}" | sed -n 's/^rerun [^ ]* //p')
    run /usr/bin/python3 "$GOSUITE/results.py" "$PGT_TMP/$name.direct" "$PGT_TMP/$name.pgtether" \
      "$PGT_TMP/$name.differ" "${retries[@]}"
  fi
  printf '%s\n' "${lines[@]}"
  [ -z "${PGT_SUITES_KEEP:-}" ] || cp "$PGT_TMP/$name".* "$PGT_SUITES_KEEP/"
  printf '%s\n' "${lines[@]}" | grep -v '^rerun ' | sed "s/^/# $name: /" >&3
  [ "$status" -eq 0 ]
  # the run was whole both ways: each binary printed its verdict, nothing panicked
  tail -n 1 "$PGT_TMP/$name.direct" | grep -qE '^(PASS|FAIL)$'
  tail -n 1 "$PGT_TMP/$name.pgtether" | grep -qE '^(PASS|FAIL)$'
  if grep -q '^panic: ' "$PGT_TMP/$name.pgtether"; then return 1; fi
  [ "$(pgt_log_count conn.open "cgroup=$PGT_CG/$name ")" -ge "$min_conns" ]
}

# min_passed NAME N: at least N tests passed straight, so a suite that cannot reach
# the database (everything fails both ways) cannot pass.
min_passed() {
  local n
  n=$(grep -cE '^\s*--- PASS' "$PGT_TMP/$1.direct")
  [ "$n" -ge "$2" ] || { echo "$1: only $n tests passed straight"; return 1; }
}

# pq_differ NAME: lib/pq's tests that differ on purpose
pq_differ() {
  cat >"$PGT_TMP/$1.differ" <<'EOF'
# log in as a user that does not exist and expect the server to refuse: through
# pgtether the role is the rule's, the client's user name is not used
TestErrorDuringStartup
TestErrorDuringStartupClosesConn
# application_name=foo must read back as foo: pgtether passes the workload's identity
# on as pgtether:<cgroup>:foo
TestRuntimeParameters
EOF
}

@test "lib/pq's own tests pass through pgtether as they pass straight" {
  pq_differ pq
  suite pq github.com/lib/pq 100
  min_passed pq 200
}

# lib/pq's CI runs its suite twice, the second time with every parameter sent in
# binary: another way through Bind
@test "lib/pq's own tests with binary parameters pass through pgtether as they pass straight" {
  pq_differ pq-binary
  suite pq-binary github.com/lib/pq 100 PQTEST_BINARY_PARAMETERS=yes
  min_passed pq-binary 200
}

@test "lib/pq's hstore tests pass through pgtether as they pass straight" {
  : >"$PGT_TMP/pq-hstore.differ"
  suite pq-hstore github.com/lib/pq/hstore 1
  min_passed pq-hstore 1
}

@test "pgconn's own tests pass through pgtether as they pass straight" {
  cat >"$PGT_TMP/pgconn.differ" <<'EOF'
# a user that does not exist: the role is the rule's (see lib/pq above)
TestConnectInvalidUser
# application_name pgxtest: pgtether:<cgroup>:pgxtest through pgtether
TestConnectWithRuntimeParams
EOF
  suite pgconn github.com/jackc/pgconn 50
  min_passed pgconn 80
}

@test "pgx's own tests pass through pgtether as they pass straight" {
  cat >"$PGT_TMP/pgx.differ" <<'EOF'
# sets client_encoding to SQL_ASCII (to see pgx refuse it): pgtether refuses it first,
# since it reads every statement as UTF8 and must read it as the server does
TestConnSimpleProtocolRefusesNonUTF8ClientEncoding
# pg_terminate_backend(PgConn().PID()): the pid in BackendKeyData is pgtether's own
# key (cancels go through pgtether), not the server's backend; pg_backend_pid() is
TestFatalRxError
TestFatalTxError
EOF
  suite pgx github.com/jackc/pgx/v4 100
  min_passed pgx 200
}

@test "pgx's pgxpool tests pass through pgtether as they pass straight" {
  cat >"$PGT_TMP/pgxpool.differ" <<'EOF'
# application_name pgx must read back as pgx (pgtether:<cgroup>:pgx through pgtether)
TestPoolBeforeConnect
EOF
  suite pgxpool github.com/jackc/pgx/v4/pgxpool 30
  min_passed pgxpool 45
}

@test "pgx's database/sql (stdlib) tests pass through pgtether as they pass straight" {
  : >"$PGT_TMP/stdlib.differ"
  suite stdlib github.com/jackc/pgx/v4/stdlib 30
  min_passed stdlib 90
}

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
}
