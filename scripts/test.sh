#!/usr/bin/env bash
# Runs every test: installs what the tests need, validates openapi.yaml, checks formatting, builds everything (the shutdown tests run
# the real broker-cli binary, the crash test the release one; the allocation test runs the release fanout-alloc-check)
# and runs the Swift test suites.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
python3 scripts/validate-openapi.py openapi.yaml
swift format lint --strict -r Sources Tests
swift build
swift build -c release --product fanout-alloc-check
# The crash test kills and restarts the release broker.
swift build -c release --product broker-cli
swift test "$@"
