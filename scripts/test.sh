#!/usr/bin/env bash
# Runs every test: installs what the tests need, validates openapi.yaml, checks formatting, builds everything once, in
# release (the tests run the real broker-cli: the crash test kills and restarts it; the allocation test runs
# fanout-alloc-check), runs the Swift test suites, then the browser tests (headless Chromium against the release
# broker; BROWSER_TESTS=0 skips them), then fuzzes the input parsing for FUZZ_SECONDS per target (default 20; 0
# skips it).
#
# One release build with -enable-testing (so the test targets may `@testable import`) instead of a debug build plus a
# release one: each dependency, BoringSSL twice among them, is compiled once.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
python3 scripts/validate-openapi.py openapi.yaml
swift format lint --strict -r Sources Tests
swift build -c release -Xswiftc -enable-testing --build-tests
# The cluster tests' PostgreSQL server (they start it themselves too); removed when the tests end.
bash scripts/postgres.sh start >/dev/null
trap 'bash scripts/postgres.sh destroy' EXIT
swift test -c release -Xswiftc -enable-testing --skip-build "$@"
[ "${BROWSER_TESTS:-1}" = 0 ] || bash scripts/browser-tests.sh
fuzz_seconds=${FUZZ_SECONDS:-20}
[ "$fuzz_seconds" = 0 ] || bash scripts/fuzz.sh "$fuzz_seconds"
