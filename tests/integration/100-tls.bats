#!/usr/bin/env bats
# TLS on both hops: pgtetherd → database with tls require / verify-full against a test
# CA, and clients → pgtetherd with client_tls (after SSLRequest, and direct TLS with
# ALPN "postgresql" as PostgreSQL 17 clients do).

load helpers

setup_file() {
  pgt_setup_world
  local d="$PGT_TMP/tls"
  mkdir -p "$d"
  (
    cd "$d"
    for ca in ca other-ca; do
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -keyout "$ca.key" -out "$ca.crt" -subj "/CN=pgtether test $ca" 2>/dev/null
    done
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
    printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
      -extfile ext -out server.crt 2>/dev/null
  )
  local data="$PGT_TMP/pg/data"
  cp "$d/server.crt" "$d/server.key" "$data/"
  chown postgres: "$data/server.crt" "$data/server.key"
  chmod 0600 "$data/server.key"
  printf "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n" >>"$data/postgresql.conf"
  runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$data" -m fast -w restart >/dev/null
  export TLSDIR="$d"
}

teardown_file() {
  [ -n "${PGT_DEBUG:-}" ] && cat "$PGT_LOG" >&3
  pgt_teardown_world
}

# use_tls MODE ADDRESS [CA] [CLIENT_TLS]: rewrites the config and restarts the daemon
use_tls() {
  pgt_stop_daemon
  pgt_write_config closed
  jq --arg mode "$1" --arg addr "$2" --arg ca "${3:-}" --arg ct "${4:-}" --arg dir "$TLSDIR" '
    .upstreams.main.tls = $mode | .upstreams.main.address = $addr
    | if $ca != "" then .upstreams.main.ca_file = $ca else . end
    | if $ct != "" then .client_tls = { cert: ($dir + "/server.crt"), key: ($dir + "/server.key") } else . end
  ' "$PGT_CONF" >"$PGT_CONF.new"
  mv "$PGT_CONF.new" "$PGT_CONF"
  pgt_start_daemon
}

ssl_of_session() {
  pgt_in "$PGT_CG/$1" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq \
    -c "select ssl, version from pg_stat_ssl where pid = pg_backend_pid()"
}

@test "tls verify-full: the upstream's certificate is checked against ca_file and the host name" {
  use_tls verify-full "localhost:$PG_PORT" "$TLSDIR/ca.crt"
  run ssl_of_session v1
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == "t|TLSv1."* ]]
  grep -q "event=conn.open .*cgroup=$PGT_CG/v1 .*upstream_tls=\"TLSv1" "$PGT_LOG"
  # an IP address is checked against the certificate's IP names
  use_tls verify-full "127.0.0.1:$PG_PORT" "$TLSDIR/ca.crt"
  run ssl_of_session v2
  [[ "$output" == "t|TLSv1."* ]]
}

@test "tls verify-full with the wrong CA is refused with a clear error" {
  use_tls verify-full "localhost:$PG_PORT" "$TLSDIR/other-ca.crt"
  run ssl_of_session v3
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"FATAL:  pgtether: TLS to upstream 'main' failed: certificate verify failed: "* ]]
}

@test "tls require encrypts without a CA" {
  use_tls require "127.0.0.1:$PG_PORT"
  run ssl_of_session v4
  echo "$output"
  [[ "$output" == "t|TLSv1."* ]]
}

@test "a missing CA file is an error at start, with the file named" {
  pgt_stop_daemon
  pgt_write_config closed
  jq --arg ca "$TLSDIR/nope.crt" '.upstreams.main.tls = "verify-full" | .upstreams.main.ca_file = $ca' "$PGT_CONF" >"$PGT_CONF.new"
  run "$PGTETHERD" -n -c "$PGT_CONF.new"
  echo "$output"
  [ "$status" -eq 1 ]
  [[ "$output" == *"upstream 'main': cannot load CA $TLSDIR/nope.crt"* ]]
}

@test "clients with sslmode=require work once client_tls is set, and not before" {
  use_tls disable "127.0.0.1:$PG_PORT"
  run pgt_in "$PGT_CG/c1" psql -X "host=127.0.0.1 port=$PG_PORT sslmode=require" -Atq -c "select 1"
  echo "$output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"server does not support SSL, but SSL was required"* ]]
  use_tls disable "127.0.0.1:$PG_PORT" "" yes
  run pgt_in "$PGT_CG/c1" psql -X "host=127.0.0.1 port=$PG_PORT sslmode=verify-full sslrootcert=$TLSDIR/ca.crt" -q -c '\conninfo' -c "select 'over tls'"
  echo "$output"
  [ "$status" -eq 0 ]
  [[ "$output" == *"SSL connection (protocol: TLSv1."* ]]
  [[ "$output" == *"over tls"* ]]
  grep -q "event=conn.open .*cgroup=$PGT_CG/c1 .*client_tls=\"TLSv1" "$PGT_LOG"
  # plaintext clients still work
  run pgt_in "$PGT_CG/c1" psql -X "host=127.0.0.1 port=$PG_PORT sslmode=disable" -Atq -c "select 'plain'"
  [ "$output" = plain ]
}

@test "direct TLS (sslnegotiation=direct) needs ALPN postgresql" {
  use_tls verify-full "localhost:$PG_PORT" "$TLSDIR/ca.crt" yes
  cat >"$PGT_TMP/direct.py" <<'PY'
import socket, ssl, struct, sys
port, ca, alpn = int(sys.argv[1]), sys.argv[2], sys.argv[3]
ctx = ssl.create_default_context(cafile=ca)
if alpn != "none":
    ctx.set_alpn_protocols([alpn])
raw = socket.create_connection(("127.0.0.1", port), 5)
try:
    s = ctx.wrap_socket(raw, server_hostname="localhost")
except (ssl.SSLError, OSError) as e:
    print("handshake failed")
    sys.exit(0)
body = struct.pack("!I", 3 << 16) + b"user\0app\0database\0postgres\0\0"
q = b"select 'direct'\0"
data = b""
# pgtetherd closes right after a handshake without ALPN: whether a send or the recv
# sees that first is a race between the two ends
try:
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    s.sendall(b"Q" + struct.pack("!I", 4 + len(q)) + q)
    while b"direct" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except (ssl.SSLError, OSError):
    pass
if b"direct" not in data:
    print("closed")
    sys.exit(0)
print("alpn", s.selected_alpn_protocol(), "got direct")
PY
  run pgt_in "$PGT_CG/d1" /usr/bin/python3 "$PGT_TMP/direct.py" "$PG_PORT" "$TLSDIR/ca.crt" postgresql
  echo "$output"
  [ "$output" = "alpn postgresql got direct" ]
  run pgt_in "$PGT_CG/d1" /usr/bin/python3 "$PGT_TMP/direct.py" "$PG_PORT" "$TLSDIR/ca.crt" none
  echo "$output"
  [[ "$output" == "closed" || "$output" == "handshake failed" ]]
  run pgt_in "$PGT_CG/d1" /usr/bin/python3 "$PGT_TMP/direct.py" "$PG_PORT" "$TLSDIR/ca.crt" http/1.1
  echo "$output"
  [ "$output" = "handshake failed" ]
}

# The daemon again, with the jq filter $1 applied to its configuration.
restart_with() {
  pgt_stop_daemon
  jq "$1" "$PGT_CONF" >"$PGT_CONF.new"
  mv "$PGT_CONF.new" "$PGT_CONF"
  pgt_start_daemon
}

@test "a cleartext password is sent only over TLS with verify-full, md5 only where auth_methods lists it" {
  "$PGT_ROOT/scripts/pg-local.sh" role "$PGT_TMP/pg" "$PG_PORT" app_pw "$PG_APP_PASSWORD"
  "$PGT_ROOT/scripts/pg-local.sh" role "$PGT_TMP/pg" "$PG_PORT" app_md5 "$PG_APP_PASSWORD"
  # stored as md5, so the md5 method really is md5 (not upgraded to SCRAM)
  pgt_psql -c "set password_encryption = 'md5'" -c "alter role app_md5 password '$PG_APP_PASSWORD'"
  [ "$(pgt_psql -c "select left(rolpassword, 3) from pg_authid where rolname = 'app_md5'")" = md5 ]
  local hba="$PGT_TMP/pg/data/pg_hba.conf"
  sed -i "1i host all app_pw 127.0.0.1/32 password\nhost all app_md5 127.0.0.1/32 md5" "$hba"
  pgt_psql -c "select pg_reload_conf()" >/dev/null
  (umask 077 && printf '{ "main": { "app_pw": "%s", "app_md5": "%s" } }' "$PG_APP_PASSWORD" "$PG_APP_PASSWORD" >"$PGT_TMP/credentials.json")
  for mode in disable require verify-full; do
    pgt_stop_daemon
    pgt_write_config closed
    jq --arg mode "$mode" --arg ca "$TLSDIR/ca.crt" '.upstreams.main.tls = $mode | .upstreams.main.role = "app_pw"
      | if $mode == "verify-full" then .upstreams.main.ca_file = $ca else . end' "$PGT_CONF" >"$PGT_CONF.new"
    mv "$PGT_CONF.new" "$PGT_CONF"
    pgt_start_daemon
    run pgt_in "$PGT_CG/pw" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select current_user"
    echo "$mode: $output"
    if [ "$mode" = verify-full ]; then
      # verified, but the password itself goes to a worker only where the admin said so
      [ "$status" -eq 2 ]
      [[ "$output" == *"asks for password authentication, which its \"auth_methods\" does not list"* ]]
      restart_with '.upstreams.main.auth_methods = ["scram-sha-256", "password"]'
      run pgt_in "$PGT_CG/pw" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select current_user"
      [ "$output" = app_pw ]
    else
      # under "require" a man in the middle could be the one asking
      [ "$status" -eq 2 ]
      [[ "$output" == *"asks for a cleartext password, which pgtether sends only over TLS with verify-full"* ]]
    fi
  done
  pgt_stop_daemon
  pgt_write_config closed
  jq '.upstreams.main.role = "app_md5"' "$PGT_CONF" >"$PGT_CONF.new"
  mv "$PGT_CONF.new" "$PGT_CONF"
  pgt_start_daemon
  # an md5 hash salted as a worker asks is cheap to try passwords on: SCRAM alone by default
  run pgt_in "$PGT_CG/pw" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select current_user"
  echo "md5 by default: $output"
  [ "$status" -eq 2 ]
  [[ "$output" == *"asks for md5 authentication, which its \"auth_methods\" does not list"* ]]
  restart_with '.upstreams.main.auth_methods = ["md5"]'
  run pgt_in "$PGT_CG/pw" psql -X -h 127.0.0.1 -p "$PG_PORT" -Atq -c "select current_user"
  [ "$output" = app_md5 ]
  pgt_write_credentials "$PG_APP_PASSWORD"
}

@test "the daemon stops cleanly with no sanitizer report" {
  pgt_stop_daemon
  pgt_assert_clean_log
}
