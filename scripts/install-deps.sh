#!/usr/bin/env bash
# Installs everything pgtether's build, tests and demo need, from Debian 12's archive.
# Idempotent: packages already present are left alone and apt-get is not run at all
# when nothing is missing, so `make test` can call it on every run.
set -euo pipefail

packages=(
  # build
  make gcc clang llvm pkg-config bpftool libbpf-dev libelf-dev zlib1g-dev
  libjansson-dev libnl-3-dev libssl-dev libjwt-dev libpg-query-dev
  # the header of the protobuf-c runtime inside libpg_query.a (pg_query.pb-c.h needs it; not linked)
  libprotobuf-c-dev
  # libFuzzer and clang's sanitizer runtimes (make fuzz; only recommended by clang)
  libclang-rt-14-dev
  # tests
  libcmocka-dev bats jq python3 iproute2 procps openssl util-linux
  # service and docs checks: systemd-analyze, man
  systemd man-db groff-base
  # real clients for the compatibility tests (node-postgres comes from npm, below):
  # psycopg, asyncpg, Go's lib/pq and pgx (built offline from Debian's sources), JDBC
  python3-psycopg python3-asyncpg nodejs
  golang-go golang-github-lib-pq-dev golang-github-jackc-pgx-v4-dev
  default-jdk-headless libpostgresql-jdbc-java
  # the policy schema check
  python3-jsonschema
  # a real PostgreSQL 15 for the integration tests and the demo (never the system service)
  postgresql-15 postgresql-client-15
  # scripts/bench.sh runs PgBouncer side by side (its own instance, never the service)
  pgbouncer
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

root=$(cd "$(dirname "$0")/.." && pwd)

# node-postgres and friends for tests/clients/node, pinned by its package-lock.json.
# npm comes with some builds of nodejs and separately with Debian's: only ask apt for
# it when it is not there, so the two never conflict.
node_deps() {
  if ! command -v npm >/dev/null; then
    [ "$(id -u)" -eq 0 ] || { echo "install-deps: npm is missing; run as root: $0" >&2; exit 1; }
    apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  if [ ! -d "$root/tests/clients/node/node_modules/pg" ] && command -v npm >/dev/null; then
    echo "install-deps: npm ci in tests/clients/node" >&2
    (cd "$root/tests/clients/node" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  node_deps
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root: $0" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# postgresql-common would create and start a system cluster; pgtether's tests and demo
# start their own throwaway clusters, so the package's own cluster is not wanted.
mkdir -p /etc/postgresql-common
if [ ! -f /etc/postgresql-common/createcluster.conf ] || ! grep -q '^create_main_cluster' /etc/postgresql-common/createcluster.conf; then
  echo 'create_main_cluster = false' >> /etc/postgresql-common/createcluster.conf
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The package starts a system PgBouncer on 127.0.0.1:6432; the benchmark runs its own.
if [[ " ${missing[*]} " == *" pgbouncer "* ]] && command -v systemctl >/dev/null; then
  systemctl disable --now pgbouncer.service >/dev/null 2>&1 || true
fi
node_deps
