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
[ "$fuzz_seconds" = 0 ] || bash scripts/fuzz.sh "$fuzz_seconds"
