#!/usr/bin/env bash
# Runs every test: installs what the tests need, validates openapi.yaml, checks formatting, builds everything (the shutdown tests run
# the real broker-cli binary; the allocation test runs the release fanout-alloc-check), runs the Swift test suites, then
# fuzzes the input parsing for FUZZ_SECONDS per target (default 20; 0 skips it): about 4 minutes of sanitized build
# and a minute and a half of fuzzing on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
python3 scripts/validate-openapi.py openapi.yaml
swift format lint --strict -r Sources Tests
swift build
swift build -c release --product fanout-alloc-check
swift test "$@"
fuzz_seconds=${FUZZ_SECONDS:-20}
# BROKER_FUZZ_LEAKS=0: the leak check finds a known, unfixed leak at once (a long poll whose connection closes while
# it waits, Tests/Fuzz/crashes/http-long-poll-closed-while-waiting-leaks); turn it back on once that is fixed.
[ "$fuzz_seconds" = 0 ] || BROKER_FUZZ_LEAKS=0 bash scripts/fuzz.sh "$fuzz_seconds"
