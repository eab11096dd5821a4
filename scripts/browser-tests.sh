#!/usr/bin/env bash
# Runs the browser tests (Tests/Browser): headless Chromium, driven by selenium, against real broker-cli processes.
# BROKER_BIN picks the broker (default .build/release/broker-cli); SCREENSHOTS_DIR=docs/screenshots also saves
# screenshots of the page; BROWSER_WEB_ROOT=Sources/HTTPServer/Public tests the working copy of the page instead of
# the one compiled into the broker. Installs nothing: scripts/install-deps.sh provides chromium, chromedriver and
# selenium. Extra arguments go to unittest, e.g. scripts/browser-tests.sh -k lobby.
set -euo pipefail
cd "$(dirname "$0")/.."

export BROKER_BIN="${BROKER_BIN:-.build/release/broker-cli}"
case "$BROKER_BIN" in /*) ;; *) BROKER_BIN="$PWD/$BROKER_BIN" ;; esac
if [ ! -x "$BROKER_BIN" ]; then
    echo "browser-tests: no broker at $BROKER_BIN (build it, or set BROKER_BIN)" >&2
    exit 1
fi
for tool in "${CHROME_BIN:-/usr/bin/chromium}" "${CHROMEDRIVER_BIN:-/usr/bin/chromedriver}"; do
    if [ ! -x "$tool" ]; then
        echo "browser-tests: $tool is missing (scripts/install-deps.sh installs it)" >&2
        exit 1
    fi
done
if [ -n "${SCREENSHOTS_DIR:-}" ]; then
    mkdir -p "$SCREENSHOTS_DIR"
    SCREENSHOTS_DIR="$(cd "$SCREENSHOTS_DIR" && pwd)"
    export SCREENSHOTS_DIR
fi
exec python3 -m unittest discover -s Tests/Browser -p 'test_*.py' -v "$@"
