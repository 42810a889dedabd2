#!/usr/bin/env bash
# The Celery peer of gust's distributed benchmark: the same workloads through Celery configured as
# Airflow's CeleryExecutor configures it (RabbitMQ, acks_late, publisher confirms, prefetch 1,
# results in PostgreSQL), 2 workers x 4 prefork processes. README.md beside it tells the method.
#
#   bash tests/bench/celery/run.sh
#
# Prints one "celery <metric> <value> <unit>" line per figure on stdout (progress on stderr),
# and leaves nothing behind: the workers are stopped, this run's queue and tables are deleted.
# Uses the servers of tests/services.sh (started here when GUST_TEST_AMQP_URL is not set) and
# Debian's python3-celery, python3-sqlalchemy, python3-psycopg2 (tests/deps.sh installs them).
# Settings (environment): CELERY_BENCH_PYTHON (/usr/bin/python3: Debian's packages are there),
# CELERY_BENCH_KEEP=1 keeps the worker logs, and driver.py's CELERY_BENCH_* settings.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
PY=${CELERY_BENCH_PYTHON:-/usr/bin/python3}
WORKERS=2
CONCURRENCY=4

say() { printf 'celery-bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

"$PY" -c 'import celery, kombu, sqlalchemy, psycopg2' 2>/dev/null ||
  die "$PY lacks celery, sqlalchemy or psycopg2: run tests/deps.sh as root"

if [ -z "${GUST_TEST_AMQP_URL:-}" ] || [ -z "${GUST_TEST_PG_URL:-}" ]; then
  bash "$ROOT/tests/services.sh" start pg rabbitmq >&2
  eval "$(bash "$ROOT/tests/services.sh" env)"
fi
export GUST_TEST_AMQP_URL GUST_TEST_PG_URL
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ left in the tree

# A queue (and result-table prefix, and worker names) of this run's own: engineers and CI may
# run benchmarks on the same servers at the same time.
CELERY_BENCH_QUEUE="celery_bench_$$_$(date +%s)"
export CELERY_BENCH_QUEUE
HOST=$(hostname)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/celery-bench.XXXXXX")
pids=()
names=()
prepared=0
driver=

# Stop the workers: SIGTERM (warm shutdown), then SIGKILL whatever of them and their pool is
# left after 30 s. Only the processes this script started, by pid.
stop_workers() {
  local all=() p c i
  for p in "${pids[@]}"; do
    all+=("$p")
    for c in $(pgrep -P "$p" 2>/dev/null || true); do all+=("$c"); done
  done
  [ ${#pids[@]} -eq 0 ] && return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    alive=0
    for p in "${all[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for p in "${all[@]}"; do
    if kill -0 "$p" 2>/dev/null; then say "killing leftover process $p"; kill -KILL "$p" 2>/dev/null || true; fi
  done
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
}

finish() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$driver" ]; then kill -TERM "$driver" 2>/dev/null || true; wait "$driver" 2>/dev/null || true; fi
  stop_workers
  if [ $prepared -eq 1 ]; then (cd "$HERE" && "$PY" driver.py cleanup) || true; fi
  if [ $rc -ne 0 ]; then
    for f in "$TMP"/w*.log; do
      [ -f "$f" ] && { say "last lines of $f:"; tail -n 20 "$f" >&2; }
    done
  fi
  if [ "${CELERY_BENCH_KEEP:-0}" = 1 ]; then say "logs kept in $TMP"; else rm -rf "$TMP"; fi
  exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM

cd "$HERE"
"$PY" driver.py prepare
prepared=1

for ((n = 1; n <= WORKERS; n++)); do
  name="w$n-$CELERY_BENCH_QUEUE@$HOST"
  # The options Airflow's `celery worker` command passes (-O fair, --queues, --concurrency,
  # --hostname, --loglevel), prefork pool; mingle, gossip and remote control left on as there.
  "$PY" -m celery -A app worker --pool prefork -O fair --queues "$CELERY_BENCH_QUEUE" \
    --concurrency "$CONCURRENCY" --hostname "$name" --loglevel INFO \
    --logfile "$TMP/w$n.log" >"$TMP/w$n.out" 2>&1 &
  pids+=("$!")
  names+=("--worker" "$name:$!")
done
say "started $WORKERS workers x $CONCURRENCY processes on queue $CELERY_BENCH_QUEUE"

# In the background and waited for, so that a signal to this script is acted on at once.
"$PY" driver.py run "${names[@]}" &
driver=$!
wait "$driver"
driver=
