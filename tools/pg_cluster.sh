#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (ctest fixture "postgres").
#
#   tools/pg_cluster.sh start DIR   initdb into DIR/data, start on a free
#                                   loopback port, socket in DIR/socket
#   tools/pg_cluster.sh stop DIR    stop it (fast shutdown) and remove DIR
#   tools/pg_cluster.sh restart DIR restart it (pg_ctl restart -m fast: open
#                                   sessions are ended) on the same port
#
# It installs nothing (tools/setup.sh does): it needs initdb and pg_ctl of
# PostgreSQL 15 (Debian: postgresql-15). PostgreSQL refuses to run as root, so
# under root the cluster runs as the system user via-pg-test, created when
# missing. The superuser is "via" with a random password; TCP connections
# need it (scram-sha-256), so the tests exercise the password path. After
# start, DIR holds:
#   url      postgresql://via@127.0.0.1:PORT/postgres (no password in it)
#   pgpass   the password line for it, mode 0600 (for PGPASSFILE)
#   port     the port
# Tests read DIR from $VIA_TEST_PG_DIR. VIA_PG_CLUSTER_DURABLE=1 at start keeps
# fsync on (for benchmarks of durable commits).
set -euo pipefail

usage() {
  echo "usage: $0 start|stop|restart DIR" >&2
  exit 2
}
[ $# -eq 2 ] || usage
action=$1
dir=$2

bindir=/usr/lib/postgresql/15/bin
[ -x "$bindir/pg_ctl" ] || bindir=$(dirname "$(command -v pg_ctl || echo /nonexistent/pg_ctl)")
if [ ! -x "$bindir/pg_ctl" ] || [ ! -x "$bindir/initdb" ]; then
  echo "pg_cluster: PostgreSQL 15 server binaries not found (run tools/setup.sh)" >&2
  exit 1
fi

user=via-pg-test
# Under root, creates the cluster's owner when missing. ctest starts two
# clusters at once (the "postgres" and "postgres-faults" fixtures); on a new
# machine both found the user missing, one useradd failed ("already
# exists"), or one went on while the other's useradd was half done and its
# owner could not write the folder. The check and the useradd run under one
# lock, so the second waits for the first to finish.
ensure_owner() {
  [ "$(id -u)" -eq 0 ] || return 0
  local lock=/run/lock
  [ -d "$lock" ] || lock=/tmp
  (
    flock 9
    id "$user" >/dev/null 2>&1 ||
      useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$user"
  ) 9>"$lock/via-pg-cluster-owner.lock"
}
# Runs a command as the cluster's owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$user" -- "$@"
  else
    "$@"
  fi
}

stop() {
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
      as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
}

case "$action" in
  restart)
    [ -f "$dir/data/postmaster.pid" ] || {
      echo "pg_cluster: no running cluster in $dir" >&2
      exit 1
    }
    # pg_ctl restart keeps the options the server was started with.
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -m fast -w -t 60 \
      restart >/dev/null
    ;;
  stop)
    stop
    rm -rf "$dir"
    ;;
  start)
    # A cluster left by an interrupted run is stopped and replaced.
    stop
    rm -rf "$dir"
    ensure_owner
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # The owner must reach DIR (and create data/ and socket/ in it).
    if [ "$(id -u)" -eq 0 ]; then chown "$user" "$dir"; fi
    chmod 0755 "$dir"
    as_owner mkdir -m 0700 "$dir/data" "$dir/socket"
    password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
    pwfile=$(mktemp)
    printf '%s\n' "$password" >"$pwfile"
    chmod 0644 "$pwfile"
    as_owner "$bindir/initdb" -D "$dir/data" -U via --pwfile="$pwfile" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
      >"$dir/initdb.log" 2>&1 || {
      rm -f "$pwfile"
      cat "$dir/initdb.log" >&2
      exit 1
    }
    rm -f "$pwfile"
    # fsync off: the cluster is thrown away after the run and never crashed by
    # a test, and the tests create hundreds of databases (CREATE DATABASE
    # flushes each). Commits still go through the WAL with synchronous_commit.
    # A free port: bind to 0 and let the kernel choose. Another process could
    # take it before the server does; pg_ctl then fails loudly, never silently.
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # VIA_PG_CLUSTER_DURABLE=1 keeps fsync on (tools/bench_pglog measures
    # durable commits).
    durability="-c fsync=off -c full_page_writes=off"
    [ "${VIA_PG_CLUSTER_DURABLE:-0}" = 1 ] && durability=""
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir/socket -c max_connections=200 $durability" \
      start >/dev/null || {
      cat "$dir/data/server.log" >&2 || true
      exit 1
    }
    printf 'postgresql://via@127.0.0.1:%s/postgres\n' "$port" >"$dir/url"
    printf '%s\n' "$port" >"$dir/port"
    umask 077
    printf '127.0.0.1:%s:*:via:%s\n' "$port" "$password" >"$dir/pgpass"
    chmod 0600 "$dir/pgpass"
    echo "pg_cluster: PostgreSQL on 127.0.0.1:$port ($dir)"
    ;;
  *) usage ;;
esac
