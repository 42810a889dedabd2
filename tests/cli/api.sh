#!/usr/bin/env bash
# The REST API suite (tests/api: Node's test runner, responses validated against Airflow's REST
# API v2 spec) as one of the command-line suites `make test` runs with GUST_BIN=bin/gust-san.
# Installs the node modules first when they are missing (npm ci from the lock file), so a fresh
# clone whose tests/deps.sh has not run them yet still tests the API.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
export GUST_BIN=${GUST_BIN:-./bin/gust-san}
if [ ! -d tests/api/node_modules/ajv ] || [ ! -d tests/api/node_modules/yaml ]; then
  if ! command -v npm >/dev/null; then
    echo "api: npm is not installed (bash tests/deps.sh installs Node.js and npm)" >&2
    exit 1
  fi
  (cd tests/api && npm ci --no-audit --no-fund --loglevel=error) || { echo "api: npm ci in tests/api failed" >&2; exit 1; }
fi
exec bash tests/api/run.sh
