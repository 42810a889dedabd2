#!/usr/bin/env bash
# The web UI's browser tests (tests/ui: Node's test runner driving real headless Chromium with
# playwright-core against `gust standalone`), as one of the command-line suites `make test`
# runs with GUST_BIN=bin/gust-san. Needs Debian's chromium at /usr/bin/chromium (make deps
# installs it) and Node.js 18+; installs the node modules from the lock file (npm ci) when
# they are missing. Screenshots of each page land in tests/ui/artifacts/.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
export GUST_BIN=${GUST_BIN:-./bin/gust-san}
CHROMIUM=${GUST_CHROMIUM:-/usr/bin/chromium}

if [ ! -x "$CHROMIUM" ]; then
  echo "ui: $CHROMIUM is missing: the browser tests need Debian's chromium (make deps, or apt-get install chromium)" >&2
  exit 1
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "ui: node and npm are needed (bash tests/deps.sh installs them)" >&2
  exit 1
fi
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 18 ]; then
  echo "ui: Node.js $(node --version) is too old: node:test needs 18 or newer" >&2
  exit 1
fi
if [ ! -x "$GUST_BIN" ]; then
  echo "ui: no gust binary at $GUST_BIN (make bin/gust-san, or set GUST_BIN)" >&2
  exit 1
fi
if [ ! -d tests/ui/node_modules/playwright-core ]; then
  (cd tests/ui && npm ci --no-audit --no-fund --loglevel=error) || { echo "ui: npm ci in tests/ui failed" >&2; exit 1; }
fi
if [ $# -gt 0 ]; then files=("$@"); else files=(tests/ui/test_*.mjs); fi
# One file at a time: each drives its own gust and browser, and the sanitizer build is slow.
rc=0
for f in "${files[@]}"; do node --test "$f" || rc=1; done
exit $rc
