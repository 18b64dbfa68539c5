#!/usr/bin/env bash
# worker-user.sh [NAME]: creates the system user pgtetherd's workers run as
# (worker_user in pgtether.json, "pgtether" by default) unless it exists: a system uid,
# its own group, no home, no login shell. `make install` and `make demo` use it; it is
# idempotent and says what it did. Nothing removes the user again (`make uninstall`
# leaves it, as packages leave system users): `userdel NAME` does.
set -euo pipefail

name=${1:-pgtether}
if uid=$(id -u "$name" 2>/dev/null); then
  if [ "$uid" -eq 0 ] || [ "$(id -g "$name")" -eq 0 ]; then
    echo "worker-user: '$name' is uid $uid gid $(id -g "$name"): workers must not run as root or group 0" >&2
    exit 1
  fi
  echo "the workers' system user '$name' exists (uid $uid)"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "worker-user: creating the system user '$name' needs root" >&2; exit 1; }
nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/sbin/nologin
useradd --system --no-create-home --home-dir /nonexistent --shell "$nologin" --user-group \
  --comment "pgtether workers" "$name"
echo "created the system user '$name' for pgtetherd's workers (uid $(id -u "$name"))"
