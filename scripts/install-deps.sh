#!/usr/bin/env bash
# Installs what the build and the tests need on a fresh Debian machine: curl (live tests), openssl (the TLS tests make
# their certificate with it), zlib and SQLite headers (for the compression and durable-store modules), Chromium and
# its WebDriver (the browser tests), PostgreSQL (the cluster tests), and the Python packages the tests use.
# Safe to run again: it installs only what is missing.
set -euo pipefail

need_apt=()
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
[ -x /usr/bin/openssl ] || need_apt+=(openssl)
dpkg -s zlib1g-dev >/dev/null 2>&1 || need_apt+=(zlib1g-dev)
dpkg -s libsqlite3-dev >/dev/null 2>&1 || need_apt+=(libsqlite3-dev)
# PostgreSQL: the cluster tests run several brokers against a real server (scripts/postgres.sh starts one).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi

# websockets: the live WebSocket tests' client (asyncio API with proxy=, 15 or later); selenium drives Chromium.
python3 - <<'PY' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check openapi-spec-validator pyyaml 'websockets>=15' 'selenium>=4.20'
import openapi_spec_validator, yaml, websockets, selenium
assert int(websockets.__version__.split(".")[0]) >= 15
assert tuple(int(part) for part in selenium.__version__.split(".")[:2]) >= (4, 20)
PY
