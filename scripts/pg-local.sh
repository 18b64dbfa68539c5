#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for tests and the demo: initdb in a directory of
# the caller's, on a loopback port, never the system's service.
#   pg-local.sh start DIR PORT     creates DIR/data if needed and starts it
#   pg-local.sh stop DIR           stops it (fast shutdown)
# PG_LISTEN overrides the addresses it listens on (default 127.0.0.1,::1).
# Connections over TCP must log in with scram-sha-256, as on a real server; the unix
# socket in DIR trusts the local postgres user, for setting the cluster up.
#   pg-local.sh role DIR PORT NAME PASSWORD   creates (or updates) a login role
# PostgreSQL refuses to run as root, so the cluster belongs to the postgres user.
set -euo pipefail

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bindir/initdb" ] || { echo "pg-local: PostgreSQL server binaries not found; run scripts/install-deps.sh" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start DIR PORT | role DIR PORT NAME PASSWORD | stop DIR" >&2; exit 2; }

case "$cmd" in
start)
  port=${3:?port}
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  chmod 0755 "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 --no-sync -E UTF8 >"$dir/initdb.log" 2>&1 ||
      { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  as_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses='${PG_LISTEN:-127.0.0.1,::1}' -c max_connections=400 -c fsync=off" \
    start >/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }
  ;;
role)
  port=${3:?port}; name=${4:?name}; password=${5:?password}
  as_pg /usr/bin/psql -X -q -h "$dir" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -v name="$name" -v password="$password" >/dev/null <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'name') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'name') \gexec
SELECT format('ALTER ROLE %I PASSWORD %L', :'name', :'password') \gexec
SQL
  ;;
stop)
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  ;;
*)
  echo "usage: $0 start DIR PORT | role DIR PORT NAME PASSWORD | stop DIR" >&2; exit 2 ;;
esac
