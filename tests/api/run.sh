#!/usr/bin/env bash
# Runs the REST API tests — tests/api/test_*.mjs, or the files given — with Node's built-in test
# runner against the gust binary GUST_BIN (default bin/gust-san, the sanitizer build). It builds
# nothing and installs nothing: tests/deps.sh installs Node.js and the node modules (npm ci),
# `make bin/gust-san` builds the binary. The mode 'api' tests need tests/services.sh's servers
# and their variables (eval "$(bash tests/services.sh env)"; make test does both).
# Two test files run at a time (API_TEST_CONCURRENCY): each starts its own gust daemons, and the
# sanitizer build is slow enough that more would trade speed for timeouts. Exit status: the
# runner's (non-zero when a test failed).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
export GUST_BIN=${GUST_BIN:-bin/gust-san}

if ! command -v node >/dev/null; then
  echo "api tests: node is not installed (bash tests/deps.sh installs it)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
  echo "api tests: Node.js $(node --version) is too old: node:test and fetch need 18 or newer" >&2
  exit 1
fi
if [ ! -d tests/api/node_modules/ajv ] || [ ! -d tests/api/node_modules/yaml ]; then
  echo "api tests: tests/api/node_modules is missing: run (cd tests/api && npm ci) or bash tests/deps.sh" >&2
  exit 1
fi
if [ ! -x "$GUST_BIN" ]; then
  echo "api tests: no gust binary at $GUST_BIN (make bin/gust-san, or set GUST_BIN)" >&2
  exit 1
fi

args=(--test)
# --test-concurrency came in Node 20.10; older runners run the files one after another anyway
# when given one file at a time, so fall back to that.
if node --help 2>/dev/null | grep -q -- '--test-concurrency'; then
  args+=("--test-concurrency=${API_TEST_CONCURRENCY:-2}")
  if [ $# -gt 0 ]; then files=("$@"); else files=(tests/api/test_*.mjs); fi
  exec node "${args[@]}" "${files[@]}"
fi
if [ $# -gt 0 ]; then files=("$@"); else files=(tests/api/test_*.mjs); fi
rc=0
for f in "${files[@]}"; do node "${args[@]}" "$f" || rc=1; done
exit $rc
