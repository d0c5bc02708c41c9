#!/usr/bin/env bash
# A private PostgreSQL cluster on loopback for the tests, from Debian's
# /usr/lib/postgresql/*/bin (packages postgresql, libpq-dev):
#   tools/pg-test.sh start    initdb into a fresh folder under /tmp, starts the
#                             server on a free port of 127.0.0.1, creates the
#                             database kaskad and prints its URL
#   tools/pg-test.sh stop     stops that cluster and removes its folder
#   tools/pg-test.sh pause    stops its server, keeping the folder (the tests
#                             of PostgreSQL going away under load)
#   tools/pg-test.sh resume   starts the paused server again on its port
# The folder is remembered in $KASKAD_PG_STATE (default build/pg-test.dir).
# Run as root, the server runs as the user postgres (or nobody), which owns
# the folder: PostgreSQL refuses to run as root. Authentication is "trust" on
# loopback only; fsync is off (a throwaway cluster, nothing to keep) unless
# KASKAD_PG_DURABLE=1: then fsync and synchronous_commit keep the server's
# defaults (on), as the benchmarks need for a durable acknowledgement.
# KASKAD_PG_OPTS adds server options (e.g. "-c shared_buffers=512MB").
# KASKAD_PG_STATS=1 loads pg_stat_statements (Debian's postgresql package has
# it) and creates its view in every database made afterwards: which
# statements cost most calls and time (see bench/README.md, PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
state=${KASKAD_PG_STATE:-build/pg-test.dir}

bindir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
    echo "pg-test: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)" >&2
    return 1
  fi
  echo "$d"
}

# Runs a command as the cluster's owner.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$owner" -- "$@"; else "$@"; fi
}

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "pg-test: no free port found" >&2
  return 1
}

start() {
  local bin dir port
  bin=$(bindir)
  # a cluster a run before left behind (it was killed) goes first
  if [ -f "$state" ]; then stop || true; fi
  owner=$(id -un)
  if [ "$(id -u)" -eq 0 ]; then
    if id postgres >/dev/null 2>&1; then owner=postgres; else owner=nobody; fi
  fi
  dir=$(mktemp -d /tmp/kk-pg-XXXXXX)
  chmod 700 "$dir"
  [ "$(id -u)" -ne 0 ] || chown "$owner" "$dir"
  port=$(free_port)
  local fsync="-c fsync=off"
  [ "${KASKAD_PG_DURABLE:-0}" = 1 ] && fsync=""
  local stats=""
  [ "${KASKAD_PG_STATS:-0}" = 1 ] &&
    stats="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; rm -rf "$dir"; return 1; }
  if ! as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 $fsync -c max_connections=200 $stats ${KASKAD_PG_OPTS:-}" \
      start >/dev/null; then
    cat "$dir/server.log" >&2
    rm -rf "$dir"
    return 1
  fi
  if [ -n "$stats" ]; then
    as_owner "$bin/psql" -q -h 127.0.0.1 -p "$port" -U postgres template1 \
      -c "CREATE EXTENSION pg_stat_statements" >/dev/null
  fi
  as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres kaskad
  mkdir -p "$(dirname "$state")"
  printf '%s\n%s\n%s\n%s\n' "$dir" "$owner" "$bin" "$port" >"$state"
  echo "postgresql://postgres@127.0.0.1:$port/kaskad"
}

stop() {
  [ -f "$state" ] || { echo "pg-test: no cluster started ($state missing)" >&2; return 1; }
  local dir bin
  { read -r dir; read -r owner; read -r bin; } <"$state"
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  case "$dir" in /tmp/kk-pg-*) rm -rf "$dir" ;; esac
  rm -f "$state"
}

pause() {
  [ -f "$state" ] || { echo "pg-test: no cluster started ($state missing)" >&2; return 1; }
  local dir bin
  { read -r dir; read -r owner; read -r bin; } <"$state"
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
}

resume() {
  [ -f "$state" ] || { echo "pg-test: no cluster started ($state missing)" >&2; return 1; }
  local dir bin port
  { read -r dir; read -r owner; read -r bin; read -r port; } <"$state"
  [ -n "$port" ] || { echo "pg-test: the cluster's port is not known" >&2; return 1; }
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
    start >/dev/null
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  pause) pause ;;
  resume) resume ;;
  *) echo "usage: $0 start|stop|pause|resume" >&2; exit 2 ;;
esac
