#!/usr/bin/env bash
# Runs the same benchmark scenarios against the release EventBroker and against nginx + nchan, on loopback, in turn,
# for several rounds, and prints a table of medians with EventBroker/nchan ratios.
#
#   scripts/bench-compare.sh [rounds]        (default 5; results in bench-results/, JSON lines per run)
#
# Both servers get the machine's cores: EventBroker one event loop per core, nginx one worker per core
# (NCHAN_WORKERS overrides; see BENCHMARKS.md for why that is nchan's best setting here). Every process this script
# starts is stopped by its PID when it ends, whatever happens. Each run is bounded by the bench's own timeouts.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-5}
CORES=$(nproc)
NCHAN_WORKERS=${NCHAN_WORKERS:-$CORES}
BROKER_PORT=${BROKER_PORT:-18080}
NCHAN_PORT=${NCHAN_PORT:-18081}
OUT=bench-results
mkdir -p "$OUT"
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS="$OUT/results-$STAMP.jsonl"

# --- what is needed -------------------------------------------------------------------------------------------------
if ! command -v nginx >/dev/null 2>&1 || [ ! -f /usr/lib/nginx/modules/ngx_nchan_module.so ]; then
    echo "Installing nginx and libnginx-mod-nchan…" >&2
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    # Keep the package from starting its own nginx service.
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null; $SUDO chmod +x /usr/sbin/policy-rc.d
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nginx libnginx-mod-nchan >/dev/null
    $SUDO rm -f /usr/sbin/policy-rc.d
fi
# BENCH_BUILD_PATH keeps the benchmark's build apart from the test build (scripts/test.sh builds with -enable-testing,
# and alternating the two flags in one directory rebuilds everything each time).
BUILD_PATH=${BENCH_BUILD_PATH:-.build}
swift build -c release --product broker-cli --scratch-path "$BUILD_PATH" >/dev/null
BIN=$BUILD_PATH/release/broker-cli
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

PIDS=()
cleanup() { for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT

# shellcheck source=scripts/lib/wait-for-port.sh
source scripts/lib/wait-for-port.sh

# --- the servers ----------------------------------------------------------------------------------------------------
start_broker() {
    # Every bench client comes from 127.0.0.1: the per-client limits would throttle the load generator itself.
    "$BIN" serve --port "$BROKER_PORT" --log-level warning --history-size 1000 \
        --max-connections 0 --max-connections-per-ip 0 --publish-rate 0 &
    BROKER_PID=$!
    PIDS+=("$BROKER_PID")
    wait_for_port "$BROKER_PORT"
    SERVER_PIDS="--pid $BROKER_PID"
}

stop_broker() { kill "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; }

NCHAN_DIR=$(mktemp -d)
cat > "$NCHAN_DIR/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_nchan_module.so;
worker_processes $NCHAN_WORKERS;
worker_rlimit_nofile 200000;
pid $NCHAN_DIR/nginx.pid;
error_log $NCHAN_DIR/error.log warn;
events { worker_connections 65536; multi_accept on; }
http {
    access_log off;
    client_body_temp_path $NCHAN_DIR/body;
    proxy_temp_path $NCHAN_DIR/proxy;
    fastcgi_temp_path $NCHAN_DIR/fastcgi;
    uwsgi_temp_path $NCHAN_DIR/uwsgi;
    scgi_temp_path $NCHAN_DIR/scgi;
    keepalive_requests 10000000;
    nchan_max_reserved_memory 256M;
    server {
        listen 127.0.0.1:$NCHAN_PORT;
        location ~ ^/pub/(.+)$ {
            nchan_publisher;
            nchan_channel_id \$1;
            nchan_message_buffer_length 1000;
            nchan_message_timeout 1h;
        }
        location ~ ^/sub/(.+)$ {
            nchan_subscriber eventsource;
            nchan_channel_id \$1;
        }
    }
}
CONF

start_nchan() {
    nginx -p "$NCHAN_DIR" -c "$NCHAN_DIR/nginx.conf" -g 'daemon off;' 2>>"$NCHAN_DIR/error.log" &
    NCHAN_PID=$!
    PIDS+=("$NCHAN_PID")
    wait_for_port "$NCHAN_PORT"
    sleep 0.3
    SERVER_PIDS="--pid $NCHAN_PID"
    for worker in $(pgrep -P "$NCHAN_PID"); do SERVER_PIDS="$SERVER_PIDS --pid $worker"; done
}

stop_nchan() { kill "$NCHAN_PID" 2>/dev/null || true; wait "$NCHAN_PID" 2>/dev/null || true; }

# --- the scenarios --------------------------------------------------------------------------------------------------
# name | bench arguments
SCENARIOS=(
    "latency|--subscribers 500 --topics 1 --events 1000 --rate 100 --size 128"
    "throughput|--subscribers 2000 --topics 20 --events 5000 --rate 0 --publishers 16 --size 128"
    "idle|--subscribers 5000 --topics 50 --events 0"
    "publish|--subscribers 0 --topics 100 --events 20000 --rate 0 --publishers 8 --size 128"
)

run_one() { # broker scenario round args…
    local broker=$1 scenario=$2 round=$3; shift 3
    local url paths
    if [ "$broker" = eventbroker ]; then
        url="http://127.0.0.1:$BROKER_PORT"; paths=()
    else
        url="http://127.0.0.1:$NCHAN_PORT"; paths=(--subscribe-path '/sub/{topic}' --publish-path '/pub/{topic}')
    fi
    # shellcheck disable=SC2086
    local line
    line=$("$BIN" bench --json --url "$url" "${paths[@]}" $SERVER_PIDS --drain-timeout 20 "$@" \
        --topic-prefix "r$round-$scenario" 2>/dev/null | tail -1) || true
    [ -n "$line" ] || line='{}'
    echo "{\"broker\":\"$broker\",\"scenario\":\"$scenario\",\"round\":$round,\"result\":$line}" | tee -a "$RESULTS" >&2
}

# The two brokers take turns scenario by scenario, so each pair of runs is seconds apart and a drift in the
# machine's speed touches both alike; who goes first alternates from round to round.
for round in $(seq 1 "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then ORDER=(eventbroker nchan); else ORDER=(nchan eventbroker); fi
    for entry in "${SCENARIOS[@]}"; do
        scenario=${entry%%|*}; args=${entry#*|}
        for broker in "${ORDER[@]}"; do
            # A fresh server per scenario, so memory and history start from nothing each time.
            if [ "$broker" = eventbroker ]; then start_broker; else start_nchan; fi
            # shellcheck disable=SC2086
            run_one "$broker" "$scenario" "$round" $args
            if [ "$broker" = eventbroker ]; then stop_broker; else stop_nchan; fi
        done
    done
done

python3 scripts/bench-table.py "$RESULTS"
echo "Results: $RESULTS"
