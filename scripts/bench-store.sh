#!/usr/bin/env bash
# Publishes per second with each history store, side by side: the in-memory store, and SQLite with --store-sync
# normal and full, on the release broker, over loopback, for several rounds; prints medians and ratios to memory.
#
#   scripts/bench-store.sh [rounds] [publishers]     (defaults 3 and 16; JSON lines in bench-results/)
#
# Each run publishes EVENTS (default 20000) events of 128 bytes to one topic with one subscriber, as fast as the
# broker answers, over [publishers] keep-alive connections: a durable publish is answered after its commit, so the
# publishers' concurrency is what group commit can batch. The database lives in a fresh temporary directory per run
# (STORE_DIR chooses where: put it on the disk you mean to measure). Every process started is stopped by its PID.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${1:-3}
PUBLISHERS=${2:-16}
EVENTS=${EVENTS:-20000}
PORT=${BROKER_PORT:-18090}
OUT=bench-results
mkdir -p "$OUT"
RESULTS="$OUT/store-$(date +%Y%m%d-%H%M%S).jsonl"
swift build -c release --product broker-cli >/dev/null
BIN=.build/release/broker-cli

BROKER_PID=""
WORK=$(mktemp -d "${STORE_DIR:-${TMPDIR:-/tmp}}/broker-store-bench.XXXXXX")
cleanup() {
    [ -n "$BROKER_PID" ] && kill "$BROKER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=scripts/lib/wait-for-port.sh
source scripts/lib/wait-for-port.sh

run() {  # $1: label; the rest: store flags
    local label=$1; shift
    rm -rf "$WORK/db"; mkdir -p "$WORK/db"
    "$BIN" serve --port "$PORT" --log-level warning --history-size 1000 --max-connections 0 \
        --max-connections-per-ip 0 --publish-rate 0 "$@" &
    BROKER_PID=$!
    wait_for_port "$PORT"
    local line
    line=$("$BIN" bench --url "http://127.0.0.1:$PORT" --subscribers 1 --events "$EVENTS" \
        --publishers "$PUBLISHERS" --pid "$BROKER_PID" --json)
    kill "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true; BROKER_PID=""
    echo "{\"store\":\"$label\",\"result\":$line}" >>"$RESULTS"
    python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print(sys.argv[2], round(r["publishesPerSecond"]))' \
        "$line" "$label"
}

for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round"
    run memory
    run sqlite-normal --store "sqlite:$WORK/db/events.db" --store-sync normal
    run sqlite-full --store "sqlite:$WORK/db/events.db" --store-sync full
done

python3 - "$RESULTS" <<'PY'
import json, statistics, sys
rates = {}
for line in open(sys.argv[1]):
    record = json.loads(line)
    rates.setdefault(record["store"], []).append(record["result"]["publishesPerSecond"])
memory = statistics.median(rates["memory"])
print(f"\n{'store':<15}{'publishes/s (median)':>22}{'runs':>24}{'vs memory':>11}")
for store, values in rates.items():
    median = statistics.median(values)
    runs = ", ".join(str(round(v)) for v in values)
    print(f"{store:<15}{round(median):>22}{runs:>24}{median / memory:>10.2f}x")
print(f"\nraw results: {sys.argv[1]}")
PY
