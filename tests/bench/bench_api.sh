#!/usr/bin/env bash
# gust's API benchmark (issue 6): `gust api` over a store holding 1,000 DAGs and 100 runs x 100
# tasks of history (tests/bench/seed_api.c), under 50 concurrent clients (wrk, 2 threads,
# 50 connections, keep-alive, a Bearer token), one endpoint at a time:
#   dags   GET /api/v2/dags?limit=100                      (the DAG list page)
#   tis    GET /api/v2/dags/bench_big/dagRuns/RUN/taskInstances?limit=100   (one run's instances)
#   log    GET .../taskInstances/t042/logs/1               (one task's log)
# For each: requests/s and latency p50/p95/p99 (wrk's own histogram, printed by the Lua
# script below), and the VmRSS of `gust api` sampled every 100 ms during the load (peak).
# Goals: p95 <= 50 ms; RSS <= 30 MB. Run on both engines: PostgreSQL (the distributed
# deployment) and SQLite (standalone's store).
#
#   make bin/gust bin/bench/seed_api && bash tests/bench/bench_api.sh
#
# Prints "api <engine> <endpoint> <metric> <value> <unit>" lines on stdout; asserts nothing.
# Settings: GUST_BIN, BENCH_API_SECONDS (10 per endpoint), BENCH_API_CONNECTIONS (50).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
GUST=${GUST_BIN:-$ROOT/bin/gust}
SEED=$ROOT/bin/bench/seed_api
SECS=${BENCH_API_SECONDS:-10}
CONNS=${BENCH_API_CONNECTIONS:-50}
say() { printf 'api-bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }
[ -x "$GUST" ] || die "$GUST is missing: run make bin/gust"
[ -x "$SEED" ] || die "$SEED is missing: run make bin/bench/seed_api"
command -v wrk >/dev/null || die "wrk is needed (apt-get install wrk; make deps installs it)"
if [ -z "${GUST_TEST_PG_ADMIN_URL:-}" ]; then
  bash "$ROOT/tests/services.sh" start >&2
  eval "$(bash "$ROOT/tests/services.sh" env)"
fi
TMP=$(mktemp -d)
DB=gust_bench_api_$$
API_PID=""
cleanup() {
  [ -n "$API_PID" ] && kill "$API_PID" 2>/dev/null && wait "$API_PID" 2>/dev/null || true
  psql -q "$GUST_TEST_PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT

cat >"$TMP/report.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("RESULT %.1f %.2f %.2f %.2f %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.requests))
end
LUA

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bench_engine() {
  local engine=$1 url=$2 port home rss_file peak
  home=$TMP/home-$engine
  mkdir -p "$home/dags"
  port=$(free_port)
  say "$engine: seeding"
  "$SEED" "$url" >&2
  GUST_HOME=$home "$GUST" --database.url="$url" users create --username bench --password bench-pass-1 --role Viewer >&2
  GUST_HOME=$home "$GUST" --database.url="$url" --api.port="$port" --core.dags_folder="$home/dags" api >"$TMP/api-$engine.log" 2>&1 &
  API_PID=$!
  for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break; sleep 0.1; done
  local base="http://127.0.0.1:$port"
  local token
  token=$(curl -fs -X POST -H 'Content-Type: application/json' -d '{"username":"bench","password":"bench-pass-1"}' \
          "$base/auth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])') \
    || die "$engine: no token (see $TMP/api-$engine.log)"
  local run
  run=$(curl -fs -H "Authorization: Bearer $token" "$base/api/v2/dags/bench_big/dagRuns?limit=1&order_by=-logical_date" \
        | python3 -c 'import json,sys,urllib.parse; print(urllib.parse.quote(json.load(sys.stdin)["dag_runs"][0]["dag_run_id"]))') \
    || die "$engine: cannot list bench_big's runs"
  local rest
  rest=$(grep VmRSS /proc/$API_PID/status | awk '{print $2}')
  echo "api $engine idle rss $((rest / 1024)) MB"
  local name path
  for spec in "dags|/api/v2/dags?limit=100" \
              "tis|/api/v2/dags/bench_big/dagRuns/$run/taskInstances?limit=100" \
              "log|/api/v2/dags/bench_big/dagRuns/$run/taskInstances/t042/logs/1"; do
    name=${spec%%|*}; path=${spec#*|}
    curl -fs -o /dev/null -H "Authorization: Bearer $token" "$base$path" || die "$engine $name: $path does not answer 200"
    rss_file=$TMP/rss-$engine-$name
    ( while kill -0 "$API_PID" 2>/dev/null; do grep VmRSS /proc/$API_PID/status | awk '{print $2}'; sleep 0.1; done ) >"$rss_file" &
    local sampler=$!
    local out
    out=$(wrk -t2 -c"$CONNS" -d"${SECS}s" -H "Authorization: Bearer $token" -H "Accept-Encoding: gzip" \
          -s "$TMP/report.lua" "$base$path" | grep '^RESULT')
    kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
    peak=$(sort -n "$rss_file" | tail -1)
    read -r _ rps p50 p95 p99 errors total <<<"$out"
    echo "api $engine $name requests_per_s $rps req/s"
    echo "api $engine $name p50 $p50 ms"
    echo "api $engine $name p95 $p95 ms"
    echo "api $engine $name p99 $p99 ms"
    echo "api $engine $name errors $errors of $total"
    echo "api $engine $name peak_rss $((peak / 1024)) MB"
  done
  kill "$API_PID"; wait "$API_PID" 2>/dev/null || true; API_PID=""
}

psql -q "$GUST_TEST_PG_ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB" >/dev/null
psql -q "$GUST_TEST_PG_ADMIN_URL" -c "CREATE DATABASE $DB OWNER gust" >/dev/null
PG_URL=$(python3 -c 'import sys,urllib.parse as u; p=u.urlparse(sys.argv[1]); print(p._replace(path="/"+sys.argv[2]).geturl())' "$GUST_TEST_PG_URL" "$DB")
bench_engine postgres "$PG_URL"
bench_engine sqlite "sqlite://$TMP/bench.db"
