#!/usr/bin/env bash
# Fuzzes the broker's input parsing with libFuzzer, for a bounded time per target.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      SECONDS per target (default 60); targets: http publish-body websocket
#
# Builds `broker-fuzz` with -sanitize=fuzzer (coverage-instrumented, Swift and C alike) in .build-fuzz, then runs each
# target from its corpus in .build-fuzz/corpus/TARGET (kept between runs) plus the committed seeds in
# Tests/Fuzz/seeds/TARGET, and prints executions, execs/s, coverage and crashes per target. Exits non-zero if any run
# left a crash, timeout or out-of-memory artifact (kept in .build-fuzz/runs/DATE/TARGET/, with libFuzzer's log).
# Replay an artifact with `.build-fuzz/debug/broker-fuzz FILE`, or without libFuzzer with `swift run broker-fuzz FILE`.
#
# Mutations use the tokens in Tests/Fuzz/broker.dict. A connection that leaves its channel or broker alive after it
# closed (a reference cycle) is a crash too, unless BROKER_FUZZ_LEAKS=0.
#
# Environment: FUZZ_OPTIMIZE=1 builds with -O in .build-fuzz-opt (about 3x the executions per second, about 2.5x the
# build's CPU time: worth it for long runs, not for CI's short one), FUZZ_MAX_LEN (default 4096 bytes), FUZZ_TIMEOUT
# (seconds one input may take, default 5), FUZZ_JOBS (build jobs, default: SwiftPM's), FUZZ_SKIP_BUILD=1 (reuse the
# last build).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(http publish-body websocket)
case "$seconds" in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [TARGET...]" >&2; exit 2 ;; esac
for target in "${targets[@]}"; do
    case "$target" in http | publish-body | websocket) ;; *) echo "unknown target: $target" >&2; exit 2 ;; esac
done

scratch=.build-fuzz
build_scratch=$scratch
optimize=()
if [ "${FUZZ_OPTIMIZE:-0}" = 1 ]; then
    build_scratch=.build-fuzz-opt
    optimize=(-Xswiftc -O -Xcc -O2)
fi
binary=$build_scratch/debug/broker-fuzz
if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ] || [ ! -x "$binary" ]; then
    # -sanitize=fuzzer instruments every Swift module for coverage and links libFuzzer; -fsanitize=fuzzer-no-link
    # instruments the C targets too. -DFUZZING makes `main` run libFuzzer's driver.
    start=$(date +%s)
    swift build --scratch-path "$build_scratch" --product broker-fuzz ${FUZZ_JOBS:+--jobs "$FUZZ_JOBS"} \
        -Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING -Xcc -fsanitize=fuzzer-no-link "${optimize[@]}"
    echo "fuzz build: $(($(date +%s) - start)) s"
fi

run_dir=$scratch/runs/$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$run_dir"
summary=()
failures=0
for target in "${targets[@]}"; do
    corpus=$scratch/corpus/$target
    artifacts=$run_dir/$target
    log=$artifacts/libfuzzer.log
    mkdir -p "$corpus" "$artifacts"
    echo "== $target: ${seconds} s (log: $log)"
    # SWIFT_BACKTRACE=enable=no leaves crashes to libFuzzer's handler, which saves the input;
    # SWIFT_DETERMINISTIC_HASHING=1 makes an input replay the same way in another process.
    # `timeout` is a safety net only: libFuzzer stops itself after -max_total_time.
    status=0
    BROKER_FUZZ_TARGET=$target SWIFT_BACKTRACE=enable=no SWIFT_DETERMINISTIC_HASHING=1 \
        timeout --signal=TERM --kill-after=10 $((seconds + 120)) \
        "$binary" -max_total_time="$seconds" -max_len="${FUZZ_MAX_LEN:-4096}" -timeout="${FUZZ_TIMEOUT:-5}" \
        -rss_limit_mb=2048 -dict=Tests/Fuzz/broker.dict -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "$corpus" "Tests/Fuzz/seeds/$target" \
        >"$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    coverage=$(grep -Eo 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*' "$log" | tail -1 || true)
    found=$(find "$artifacts" -maxdepth 1 -type f \
        \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
    count=$(printf '%s' "$found" | grep -c . || true)
    line="$target: ${runs:-?} executions, ${speed:-?} execs/s, ${coverage:-no coverage line}, $count crashes"
    line+=" (exit $status)"
    echo "$line"
    summary+=("$line")
    if [ "$count" -gt 0 ] || [ "$status" -ne 0 ]; then
        failures=$((failures + 1))
        grep -E '^==[0-9]+== ERROR|^SUMMARY|Fatal error|Precondition failed|Test unit written' "$log" | head -20 || true
        [ -z "$found" ] || printf 'artifact: %s\n' $found
    fi
done

echo "== fuzz summary (${seconds} s per target; runs in $run_dir)"
printf '%s\n' "${summary[@]}"
echo "fuzz: $((${#targets[@]} - failures)) passed, $failures failed"
[ "$failures" -eq 0 ]
