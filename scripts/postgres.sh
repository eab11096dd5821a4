#!/usr/bin/env bash
# A throwaway PostgreSQL server for the cluster tests and benchmarks, on 127.0.0.1 and a free port, its data in
# $EVENTBROKER_PG_DIR (default /tmp/eventbroker-pg). Debian's postgresql package provides the binaries
# (scripts/install-deps.sh installs it). As root, the server runs as the 'postgres' user, since PostgreSQL refuses
# to run as root. fsync is off: the data is disposable, and the tests stop the server cleanly when they stop it.
#
#   scripts/postgres.sh start            initializes (once) and starts the server; prints its URL
#   scripts/postgres.sh url              prints the URL of the running server
#   scripts/postgres.sh createdb NAME    creates database NAME (dropping any earlier one); prints its URL
#   scripts/postgres.sh stop             stops the server (fast shutdown); the data stays for the next start
#   scripts/postgres.sh destroy          stops the server and removes its data
set -euo pipefail

dir=${EVENTBROKER_PG_DIR:-/tmp/eventbroker-pg}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -n "$bin" ] || { echo "postgres.sh: PostgreSQL is not installed (run scripts/install-deps.sh)" >&2; exit 1; }

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

port() { cat "$dir/port"; }
url() { echo "postgres://postgres@127.0.0.1:$(port)/${1:-postgres}"; }
running() { [ -f "$dir/port" ] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; }

case "${1:-}" in
start)
    if [ ! -d "$dir/data" ]; then
        mkdir -p "$dir"
        [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
        as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log"
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' >"$dir/port"
    fi
    if ! running; then
        # The server must hold none of the caller's descriptors (a test reading this script's output to its end
        # would wait for the server to exit): close every one above stderr.
        for fd in /proc/$$/fd/*; do
            n=${fd##*/}
            if [ "$n" -gt 2 ] 2>/dev/null; then eval "exec $n>&-" 2>/dev/null || true; fi
        done
        as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
            -o "-p $(port) -c listen_addresses=127.0.0.1 -k $dir -c fsync=off -c max_connections=200" \
            </dev/null >/dev/null 2>>"$dir/pg_ctl.log"  # the server keeps no descriptor of the caller's
    fi
    url
    ;;
url)
    running || { echo "postgres.sh: no server is running in $dir" >&2; exit 1; }
    url
    ;;
createdb)
    name=${2:?createdb needs a database name}
    running || { echo "postgres.sh: no server is running in $dir" >&2; exit 1; }
    PGOPTIONS="-c client_min_messages=warning" psql -q -h 127.0.0.1 -p "$(port)" -U postgres -d postgres -v ON_ERROR_STOP=1 \
        -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" -c "CREATE DATABASE \"$name\"" >/dev/null
    url "$name"
    ;;
stop)
    if running; then as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; fi
    ;;
destroy)
    if running; then as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null; fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|url|createdb NAME|stop|destroy" >&2
    exit 2
    ;;
esac
