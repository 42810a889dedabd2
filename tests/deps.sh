#!/usr/bin/env bash
# Installs the Debian packages that gust's build and tests need, when they are missing.
# As root it runs apt-get; otherwise it prints the exact command to run and fails.
# The list grows with the project: add a package here when a build or a test needs it.
# Then the REST API tests' node modules (tests/api: `npm ci` from its lock file), when they are
# missing or older than the lock file.
set -euo pipefail
API_DIR=$(cd "$(dirname "$0")" && pwd)/api

packages=(
  build-essential pkg-config clang libclang-rt-14-dev tzdata jq procps
  libyaml-dev libcjson-dev libcunit1-dev libsqlite3-dev libssl-dev
  libpq-dev librabbitmq-dev libhiredis-dev libmicrohttpd-dev libcurl4-openssl-dev zlib1g-dev
  postgresql rabbitmq-server redis-server curl python3
  chromium                                             # tests/ui: the browser tests (playwright-core drives it)
  wrk                                                  # tests/bench/bench_api.sh: 50 concurrent clients
  python3-celery python3-sqlalchemy python3-psycopg2   # tests/bench/celery: the Celery peer benchmark
)

# Node.js runs the API tests (tests/api). Debian's nodejs and npm, unless a node is already
# there (a machine may have a newer one from elsewhere: Debian's npm would conflict with it).
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)

# npm ci in each JavaScript test folder (tests/api, tests/ui) whose node_modules is missing or
# older than its package-lock.json; quiet.
node_modules() {
  local dir
  for dir in "$API_DIR" "$(dirname "$API_DIR")/ui"; do
    [ -f "$dir/package-lock.json" ] || continue
    [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ] && continue
    echo "deps: npm ci in tests/$(basename "$dir")"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  done
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  node_modules
  exit 0
fi

cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "gust needs these Debian packages: ${missing[*]}" >&2
  echo "run as root:  apt-get update && $cmd" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# The server packages (postgresql, rabbitmq-server, redis-server) start their default instance
# through invoke-rc.d when installed; with no init system that fails or leaves a stray server.
# A policy-rc.d that answers 101 denies those starts while we install (an existing one, such
# as a container image's, is left as it is). tests/services.sh runs its own servers.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  trap 'rm -f "$policy"' EXIT
  trap 'exit 130' INT TERM
  printf '#!/bin/sh\n# tests/deps.sh: no service starts while it installs packages\nexit 101\n' >"$policy"
  chmod 755 "$policy"
fi
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends ${missing[*]}
node_modules
