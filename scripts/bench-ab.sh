#!/usr/bin/env bash
# Compares builds of the broker on the publish scenario, paired: each build is started once, then short runs of the
# bench go to each in turn, round after round, and the table gives each build's median CPU time per publish (read
# per thread from /proc/<pid>/task/*/schedstat, in nanoseconds) and the median and quartiles of its per-round ratio
# to the first build. A change of a few percent shows up here while the machine's speed, which moves by more than
# that from one minute to the next, mostly cancels out of the ratio; the quartiles say how much did not.
#
#   scripts/bench-ab.sh ROUNDS BINARY[:THREADS] BINARY[:THREADS]...
#   e.g. scripts/bench-ab.sh 12 /tmp/before/broker-cli /tmp/after/broker-cli /tmp/after/broker-cli:1
#
# EVENTS (default 20000) publishes per run, 8 keep-alive publishers over 100 topics, events of SIZE bytes (default
# 128); the load generator is this checkout's release broker-cli (BENCH_BUILD_PATH as in bench-compare.sh). The
# brokers listen on 127.0.0.1 from port 18100 up; every one is stopped by its PID when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -lt 2 ]; then
    sed -n '2,12p' "$0" >&2
    exit 2
fi
ROUNDS=$1
shift
EVENTS=${EVENTS:-20000}
BUILD_PATH=${BENCH_BUILD_PATH:-.build}
swift build -c release --product broker-cli --scratch-path "$BUILD_PATH" >/dev/null
BENCH=$BUILD_PATH/release/broker-cli

PIDS=()
cleanup() { for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
# shellcheck source=scripts/lib/wait-for-port.sh
source scripts/lib/wait-for-port.sh

# The broker's CPU time in nanoseconds, summed over its threads (/proc's clock ticks are 10 ms: 5% of a short run).
cpu_nanoseconds() {
    local total=0 run _
    for stat in /proc/"$1"/task/*/schedstat; do
        read -r run _ <"$stat" || continue
        total=$((total + run))
    done
    echo "$total"
}

NAMES=()
PORTS=()
port=18100
for spec in "$@"; do
    binary=${spec%%:*}
    threads=$(nproc)
    [ "$spec" != "$binary" ] && threads=${spec##*:}
    "$binary" serve --port "$port" --log-level warning --history-size 1000 --max-connections 0 \
        --max-connections-per-ip 0 --publish-rate 0 --threads "$threads" &
    PIDS+=("$!")
    wait_for_port "$port"
    NAMES+=("$binary:$threads")
    PORTS+=("$port")
    port=$((port + 1))
done

RESULTS=$(mktemp)
count=${#NAMES[@]}
for round in $(seq 1 "$ROUNDS"); do
    for k in $(seq 0 $((count - 1))); do
        # Who goes first alternates from round to round.
        i=$k
        [ $((round % 2)) -eq 0 ] && i=$((count - 1 - k))
        before=$(cpu_nanoseconds "${PIDS[$i]}")
        line=$("$BENCH" bench --json --url "http://127.0.0.1:${PORTS[$i]}" --pid "${PIDS[$i]}" --subscribers 0 \
            --topics 100 --events "$EVENTS" --rate 0 --publishers 8 --size "${SIZE:-128}" --drain-timeout 20 \
            --topic-prefix "ab$round" 2>/dev/null | tail -1) || true
        [ -n "$line" ] || line='{}'
        after=$(cpu_nanoseconds "${PIDS[$i]}")
        echo "{\"round\":$round,\"build\":$i,\"cpuNanoseconds\":$((after - before)),\"result\":$line}" >>"$RESULTS"
    done
    echo "round $round of $ROUNDS done" >&2
done

python3 - "$RESULTS" "${NAMES[@]}" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
names = sys.argv[2:]
cpu = {}
rate = {}
for row in rows:
    result = row["result"]
    published = result.get("eventsPublished")
    if not published:
        continue
    cpu.setdefault(row["build"], {})[row["round"]] = row["cpuNanoseconds"] / 1000 / published
    rate.setdefault(row["build"], []).append(result["publishesPerSecond"])
print("| build | CPU µs per publish (median) | publishes/s (median) | paired CPU ratio to the first | its quartiles |")
print("| --- | ---: | ---: | ---: | ---: |")
for index, name in enumerate(names):
    mine = cpu.get(index, {})
    first = cpu.get(0, {})
    ratios = [mine[r] / first[r] for r in mine if r in first and first[r] > 0]
    median = statistics.median(mine.values()) if mine else float("nan")
    paired = statistics.median(ratios) if ratios else float("nan")
    quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [paired, paired, paired]
    speed = statistics.median(rate.get(index, [float("nan")]))
    print(f"| {name} | {median:.2f} | {speed:,.0f} | {paired:.3f} | {quartiles[0]:.3f}–{quartiles[2]:.3f} |")
PY
rm -f "$RESULTS"
