#!/usr/bin/env bash
# gust's distributed benchmark: one `gust scheduler` and 2 x `gust worker -c 4` on this machine,
# on real PostgreSQL, RabbitMQ and Redis (tests/services.sh), then the Celery peer
# (tests/bench/celery/run.sh) in the same invocation, and the ratios gust/Celery.
#
#   make bin/gust && bash tests/bench/bench_dist.sh
#
# Workloads (DAG files written here, triggered with `gust dags trigger DAG --wait --output json`,
# task times from that JSON's start_date/end_date):
#   chain   a chain of 50 `true` tasks, run 3 times: the gap between a task's end and the next
#           one's start (p50/p90/p99/max, nearest rank as tests/bench/celery/driver.py does), for
#           each run and the median of the runs; and where the gap goes, from the store: the
#           previous end -> scheduled_at -> queued_at -> start_date of the next task
#   fanout  10,000 independent `true` tasks in one run: tasks/s = N / (last end - first start),
#           and the wall time from the trigger to the run's success. A run still going after
#           BENCH_DIST_FANOUT_LIMIT is stopped there: its figures then come from the tasks that
#           finished (from the store) and "dist fanout_complete 0" says so
#   ceiling 3,000 `bash -c true` started 8 at a time by python (posix_spawn), before gust starts:
#           what this machine can do for the task processes alone, the fan-out's upper bound
#   memory  VmRSS (/proc/PID/status) of the scheduler and of each worker at start (idle), at
#           rest (idle after a warm-up run) and the peak during the fan-out (every 100 ms)
# Goals (issue 5): chain p50 <= 5 ms, p99 <= 20 ms; fan-out >= 1,000 tasks/s; RSS <= 20 MB for
# the scheduler, <= 10 MB for a worker. This script prints figures and asserts nothing.
#
# Prints one "dist <metric> <value> <unit>" line per figure on stdout (then the peer's "celery
# ..." lines and the "dist ratio_* ..." lines); progress goes to stderr. Leaves nothing behind:
# the processes it started are stopped (by pid), its database gust_bench_<pid> is dropped and
# its queue bench_<pid> deleted. gust is stopped before the peer runs: they would share the CPUs.
#
# Settings (environment): GUST_BIN (bin/gust: the optimised build, not gust-san),
# BENCH_DIST_CHAIN (50 tasks), BENCH_DIST_CHAIN_RUNS (3), BENCH_DIST_FANOUT (10000 tasks),
# BENCH_DIST_FANOUT_LIMIT (300 s), BENCH_DIST_REDIS_DB (9), BENCH_DIST_TIMEOUT (300 s for the
# other runs), BENCH_DIST_CELERY (1; 0 skips the peer and the ratios), BENCH_DIST_KEEP=1 keeps
# the logs, DAG files and trigger outputs.
# Needs python3 and psql; uses the servers of tests/services.sh (started here when its
# GUST_TEST_* variables are not set).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
GUST=${GUST_BIN:-$ROOT/bin/gust}
CHAIN=${BENCH_DIST_CHAIN:-50}
CHAIN_RUNS=${BENCH_DIST_CHAIN_RUNS:-3}
FANOUT=${BENCH_DIST_FANOUT:-10000}
FANOUT_LIMIT=${BENCH_DIST_FANOUT_LIMIT:-300}
REDIS_DB=${BENCH_DIST_REDIS_DB:-9}
TIMEOUT=${BENCH_DIST_TIMEOUT:-300}
CELERY=${BENCH_DIST_CELERY:-1}
WORKERS=2
CONCURRENCY=4

say() { printf 'dist-bench: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

[ -x "$GUST" ] || die "$GUST is missing: run make bin/gust"
command -v python3 >/dev/null || die "python3 is needed"
command -v psql >/dev/null || die "psql is needed (postgresql-client)"
[ "$CHAIN" -ge 2 ] && [ "$CHAIN" -le 999 ] || die "BENCH_DIST_CHAIN must be 2..999"
[ "$FANOUT" -ge 1 ] && [ "$FANOUT" -le 99999 ] || die "BENCH_DIST_FANOUT must be 1..99999"

if [ -z "${GUST_TEST_PG_ADMIN_URL:-}" ] || [ -z "${GUST_TEST_AMQP_URL:-}" ] || [ -z "${GUST_TEST_REDIS_URL:-}" ]; then
  bash "$ROOT/tests/services.sh" start >&2
  eval "$(bash "$ROOT/tests/services.sh" env)"
fi
export GUST_TEST_PG_URL GUST_TEST_AMQP_URL GUST_TEST_REDIS_URL GUST_TEST_PG_ADMIN_URL
RMQCTL=${GUST_TEST_RABBITMQCTL:-bash $ROOT/tests/services.sh rabbitmqctl}

# This run's own database, queue and folder: other engineers and CI share the servers.
TAG=$$
DB=gust_bench_$TAG
QUEUE=bench_$TAG
pg_base=${GUST_TEST_PG_URL%%\?*}
pg_query=
[ "$pg_base" != "$GUST_TEST_PG_URL" ] && pg_query="?${GUST_TEST_PG_URL#*\?}"
DB_URL="${pg_base%/*}/$DB$pg_query"
DB_OWNER=$(printf '%s' "$pg_base" | sed -n 's|^[a-z]*://\([^:@/]*\).*|\1|p')
redis_base=${GUST_TEST_REDIS_URL%%\?*}
REDIS_URL="${redis_base%/*}/$REDIS_DB"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/gust-dist-bench.XXXXXX")
export GUST_HOME=$TMP/home
export DIST_OUT=$TMP/dist.out   # bench.py appends every figure here too (for the ratios)
mkdir -p "$GUST_HOME" "$TMP/dags"
: >"$DIST_OUT"

S=(--database.url="$DB_URL" --broker.url="$GUST_TEST_AMQP_URL" --redis.url="$REDIS_URL"
   --core.home="$GUST_HOME" --core.dags_folder="$TMP/dags" --core.dags_are_paused_at_creation=false
   --core.parallelism=1024 --core.max_active_tasks_per_dag=1024 --logging.level=warning)

SCHED=
WPIDS=()
CHILD=
db_made=0
queue_made=0

# A process and its descendants, by pid (children first found through /proc).
tree_of() {
  local p=$1 c
  echo "$p"
  for c in $(cat "/proc/$p/task/"*/children 2>/dev/null); do tree_of "$c"; done
}

# Run a command in the background and wait for it, so that a signal to this script is acted on
# at once (bash runs traps only between commands); the trap then ends it.
run() {
  "$@" &
  CHILD=$!
  local rc=0
  wait "$CHILD" || rc=$?
  CHILD=
  return $rc
}

stop_child() {
  [ -n "$CHILD" ] || return 0
  local t
  t=$(tree_of "$CHILD")
  # shellcheck disable=SC2086
  kill -TERM $t 2>/dev/null || true
  wait "$CHILD" 2>/dev/null || true
  CHILD=
}

# Stop the daemons this script started, by pid: SIGTERM, SIGKILL after 30 s.
stop_daemons() {
  local all=() p i alive
  [ -n "$SCHED" ] && all+=("$SCHED")
  all+=("${WPIDS[@]}")
  [ ${#all[@]} -eq 0 ] && return 0
  kill -TERM "${all[@]}" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    alive=0
    for p in "${all[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for p in "${all[@]}"; do
    if kill -0 "$p" 2>/dev/null; then say "killing leftover process $p"; kill -KILL "$p" 2>/dev/null || true; fi
  done
  wait "${all[@]}" 2>/dev/null || true
  SCHED=
  WPIDS=()
}

cleanup_servers() {
  if [ $queue_made -eq 1 ]; then
    $RMQCTL delete_queue "$QUEUE" >/dev/null 2>&1 || say "could not delete the queue $QUEUE"
    queue_made=0
  fi
  if [ $db_made -eq 1 ]; then
    psql "$GUST_TEST_PG_ADMIN_URL" -qX -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$DB\" WITH (FORCE)" >&2 ||
      say "could not drop the database $DB"
    db_made=0
  fi
}

finish() {
  local rc=$?
  trap - EXIT INT TERM
  stop_child
  stop_daemons
  cleanup_servers
  if [ $rc -ne 0 ]; then
    for f in "$TMP"/*.log; do
      [ -s "$f" ] && { say "last lines of $f:"; tail -n 20 "$f" >&2; }
    done
  fi
  if [ "${BENCH_DIST_KEEP:-0}" = 1 ]; then say "logs and DAGs kept in $TMP"; else rm -rf "$TMP"; fi
  exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM

# ---- the measuring half, in Python ---------------------------------------------------------
cat >"$TMP/bench.py" <<'PY'
"""Helpers of bench_dist.sh: figures from `gust dags trigger --output json` and from the store,
memory and CPU of the daemons."""
import json, math, os, resource, signal, subprocess, sys, threading, time
from datetime import datetime

TICK = os.sysconf("SC_CLK_TCK")


def emit(metric, value, unit):
    if isinstance(value, float):
        value = ("%.0f" if abs(value) >= 100 else "%.1f" if abs(value) >= 10 else "%.2f") % value
    line = "dist %s %s %s" % (metric, value, unit)
    print(line, flush=True)
    with open(os.environ["DIST_OUT"], "a") as f:
        f.write(line + "\n")


def note(msg):
    print("dist-bench: " + msg, file=sys.stderr, flush=True)


def percentile(values, p):
    """Nearest rank, as tests/bench/celery/driver.py: the smallest value with p % at or below."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def median(values):
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2.0


def ts(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def load_run(path):
    """The run printed by `gust dags trigger --wait --output json`: {task_id: (start, end)}."""
    with open(path) as f:
        run = json.load(f)
    if run.get("state") != "success":
        raise SystemExit("dist-bench: %s: run %s ended %s" % (path, run.get("run_id"), run.get("state")))
    spans = {}
    for t in run["tasks"]:
        if t.get("state") != "success" or not t.get("start_date") or not t.get("end_date"):
            raise SystemExit("dist-bench: %s: task %s: %s" % (path, t.get("task_id"), t))
        spans[t["task_id"]] = (ts(t["start_date"]), ts(t["end_date"]))
    return run, spans


def psql_rows(sql):
    out = subprocess.run(["psql", os.environ["DB_URL"], "-AtXq", "-F", "|", "-c", sql], check=True,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    return [line.split("|") for line in out.splitlines() if line]


def us(x):
    return int(x) if x else None


def rss_kb(pid, field="VmRSS:"):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    """Proportional set size: shared pages (libraries) divided among the processes sharing them."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        kids = []
        try:
            for t in os.listdir("/proc/%d/task" % p):
                with open("/proc/%d/task/%s/children" % (p, t)) as f:
                    kids += [int(x) for x in f.read().split()]
        except OSError:
            pass
        out.extend(kids)
        todo.extend(kids)
    return out


def cpu_s(pid):
    """utime + stime + cutime + cstime (children waited for) in seconds."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / TICK
    except OSError:
        return 0.0


def is_alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def machine_cpu():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return sum(v), v[3] + v[4]


def parse_procs(procs):
    return [(p.split(":")[0], int(p.split(":")[1])) for p in procs]


# ---- commands ------------------------------------------------------------------------------

def cmd_rss(label, procs):
    """RSS of each daemon (MB), and of the larger worker; with the anonymous part of it (RssAnon:
    the process's own memory, not pages of shared libraries) and the PSS."""
    worst, worst_anon, worst_pss = 0, 0, 0
    for name, pid in parse_procs(procs):
        kb, anon, pss = rss_kb(pid), rss_kb(pid, "RssAnon:"), pss_kb(pid)
        emit("%s_rss_%s" % (name, label), kb / 1024.0, "MB")
        if name == "scheduler":
            emit("scheduler_rss_anon_%s" % label, anon / 1024.0, "MB")
            emit("scheduler_pss_%s" % label, pss / 1024.0, "MB")
        else:
            worst, worst_anon, worst_pss = max(worst, kb), max(worst_anon, anon), max(worst_pss, pss)
    emit("worker_rss_%s" % label, worst / 1024.0, "MB")
    emit("worker_rss_anon_%s" % label, worst_anon / 1024.0, "MB")
    emit("worker_pss_%s" % label, worst_pss / 1024.0, "MB")


def cmd_chain(chain_len, paths):
    figs = {k: [] for k in ("p50", "p90", "p99", "max", "wall")}
    order = ["t%03d" % k for k in range(chain_len)]
    for i, path in enumerate(paths, 1):
        run, spans = load_run(path)
        g = [(spans[order[k + 1]][0] - spans[order[k]][1]) * 1000.0 for k in range(chain_len - 1)]
        for k, v in (("p50", percentile(g, 50)), ("p90", percentile(g, 90)), ("p99", percentile(g, 99)),
                     ("max", max(g))):
            figs[k].append(v)
            emit("chain_gap_%s_run%d" % (k, i), v, "ms")
        figs["wall"].append(spans[order[-1]][1] - spans[order[0]][0])
        emit("chain_wall_run%d" % i, figs["wall"][-1], "s")
    for k in ("p50", "p90", "p99", "max"):
        emit("chain_gap_%s" % k, median(figs[k]), "ms")
    emit("chain_wall", median(figs["wall"]), "s")


def cmd_chain_store(chain_len):
    """Where the chain's gaps go, from the store (us): the previous task's end -> the next one's
    scheduled_at (the scheduler saw the end and found the next task runnable) -> queued_at
    (queued within the limits, its outbox row written) -> start_date (published, delivered,
    claimed, started by a worker)."""
    runs = {}
    for run_id, task_id, sch, q, st, en in psql_rows(
            "SELECT run_id, task_id, scheduled_at, queued_at, start_date, end_date FROM task_instance "
            "WHERE dag_id = 'bench_dist_chain'"):
        runs.setdefault(run_id, {})[task_id] = (us(sch), us(q), us(st), us(en))
    parts = {"end_to_scheduled": [], "scheduled_to_queued": [], "queued_to_start": []}
    for tis in runs.values():
        for k in range(chain_len - 1):
            prev, nxt = tis.get("t%03d" % k), tis.get("t%03d" % (k + 1))
            if not prev or not nxt or prev[3] is None or None in nxt:
                continue
            parts["end_to_scheduled"].append((nxt[0] - prev[3]) / 1000.0)
            parts["scheduled_to_queued"].append((nxt[1] - nxt[0]) / 1000.0)
            parts["queued_to_start"].append((nxt[2] - nxt[1]) / 1000.0)
    for name, v in parts.items():
        if v:
            emit("chain_%s_p50" % name, percentile(v, 50), "ms")
            emit("chain_%s_p99" % name, percentile(v, 99), "ms")


class Sampler(threading.Thread):
    """Peak RSS of each daemon (and of each with its task children) every 100 ms."""

    def __init__(self, procs):
        super().__init__(daemon=True)
        self.procs = procs
        self.peak = {n: 0 for n, _ in procs}
        self.tree = {n: 0 for n, _ in procs}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for n, pid in self.procs:
                own = rss_kb(pid)
                self.peak[n] = max(self.peak[n], own)
                self.tree[n] = max(self.tree[n], own + sum(rss_kb(c) for c in descendants(pid)))
            self.stop.wait(0.1)


def cmd_fanout(n, limit, out_path, procs, cmd):
    procs = parse_procs(procs)
    cpu0 = {name: cpu_s(pid) for name, pid in procs}
    m0 = machine_cpu()
    sampler = Sampler(procs)
    sampler.start()
    t0 = time.time()
    with open(out_path, "w") as out:
        child = subprocess.Popen(cmd, stdout=out)

    def on_term(signum, frame):
        child.terminate()
        child.wait()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    complete = True
    try:
        rc = child.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        complete = False
        child.terminate()
        child.wait()
        rc = 0
    t1 = time.time()
    sampler.stop.set()
    sampler.join()
    m1 = machine_cpu()
    cpu = {name: cpu_s(pid) - cpu0[name] for name, pid in procs}
    cli = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        raise SystemExit("dist-bench: the fan-out's trigger exited %d" % rc)
    rows = psql_rows("SELECT state, queued_at, start_date, end_date FROM task_instance "
                     "WHERE dag_id = 'bench_dist_fanout'")
    done = [(us(s), us(e)) for st, q, s, e in rows if st == "success"]
    if complete:
        run, spans = load_run(out_path)
        if len(spans) != n:
            raise SystemExit("dist-bench: the fan-out ran %d tasks, not %d" % (len(spans), n))
        done = list(spans.values())
    else:
        note("fan-out: stopped after %d s with %d of %d tasks done (BENCH_DIST_FANOUT_LIMIT)"
             % (limit, len(done), n))
        done = [(s / 1e6, e / 1e6) for s, e in done]
    emit("fanout_tasks", n, "tasks")
    emit("fanout_complete", 1 if complete else 0, "bool")
    emit("fanout_done", len(done), "tasks")
    if done:
        first = min(s for s, _ in done)
        last = max(e for _, e in done)
        emit("fanout_tasks_per_s", len(done) / (last - first) if last > first else 0.0, "tasks/s")
        emit("fanout_first_start", first - t0, "s")
        if complete:
            emit("fanout_last_end_to_success", t1 - last, "s")
    emit("fanout_wall", t1 - t0, "s")
    queued = sorted(us(q) for st, q, s, e in rows if q)
    if len(queued) > 1:
        # how fast the scheduler queued the tasks (queued_at of the tasks it got to)
        emit("fanout_queued", len(queued), "tasks")
        emit("fanout_queue_rate", (len(queued) - 1) / ((queued[-1] - queued[0]) / 1e6 or 1e-6), "tasks/s")
    waits = [(us(s) - us(q)) / 1000.0 for st, q, s, e in rows if q and s]
    if waits:
        emit("fanout_queued_to_start_p50", percentile(waits, 50), "ms")
    worst, worst_tree = 0, 0
    for name, pid in procs:
        emit("%s_rss_load" % name, sampler.peak[name] / 1024.0, "MB")
        if name != "scheduler":
            worst = max(worst, sampler.peak[name])
            worst_tree = max(worst_tree, sampler.tree[name])
    emit("worker_rss_load", worst / 1024.0, "MB")
    emit("worker_tree_rss_load", worst_tree / 1024.0, "MB")
    # where the CPU went (a worker's figure includes its task children)
    for name, pid in procs:
        if is_alive(pid):
            emit("fanout_cpu_%s" % name, cpu[name], "s")
        else:
            note("%s (pid %d) died during the fan-out: no CPU figure for it" % (name, pid))
    emit("fanout_cpu_trigger_cli", cli.ru_utime + cli.ru_stime, "s")
    total, idle = m1[0] - m0[0], m1[1] - m0[1]
    emit("fanout_machine_busy", 100.0 * (total - idle) / total if total else 0.0, "%")


def cmd_ceiling(n, par):
    """The machine's own ceiling for the fan-out: n `bash -c true` processes started par at a
    time (as the workers' slots would), with nothing of gust running — what the CPUs can do
    for the task processes alone."""
    left = [n]
    lock = threading.Lock()
    def run():
        while True:
            with lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            pid = os.posix_spawn("/bin/bash", ["bash", "-c", "true"], dict(os.environ))
            os.waitpid(pid, 0)
    t0 = time.time()
    threads = [threading.Thread(target=run) for _ in range(par)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    emit("ceiling_bash_true_per_s", n / (time.time() - t0), "tasks/s")


def cmd_ratios(dist_path, celery_path):
    def read(path, prefix):
        d = {}
        with open(path) as f:
            for line in f:
                w = line.split()
                if len(w) == 4 and w[0] == prefix:
                    try:
                        d[w[1]] = float(w[2])
                    except ValueError:
                        pass
        return d
    g, c = read(dist_path, "dist"), read(celery_path, "celery")
    # gust's worker slots are threads of one process (a task is a short-lived child), Celery's are
    # the prefork pool's processes: worker_rss compares gust's process with Celery's whole tree,
    # worker_main_rss the two main processes.
    for name, gm, cm in (("chain_gap_p50", "chain_gap_p50", "chain_gap_p50"),
                         ("chain_gap_p99", "chain_gap_p99", "chain_gap_p99"),
                         ("fanout_tasks_per_s", "fanout_tasks_per_s", "fanout_tasks_per_s"),
                         ("worker_rss_rest", "worker_rss_rest", "worker_rss_rest"),
                         ("worker_rss_load", "worker_rss_load", "worker_rss_load"),
                         ("worker_pss_rest", "worker_pss_rest", "worker_pss_rest"),
                         ("worker_main_rss_rest", "worker_rss_rest", "worker_main_rss_rest"),
                         ("worker_main_rss_load", "worker_rss_load", "worker_main_rss_load")):
        if gm in g and c.get(cm):
            print("dist ratio_%s %.3g gust/celery" % (name, g[gm] / c[cm]), flush=True)
        else:
            note("no ratio for %s (gust %s, celery %s)" % (name, g.get(gm), c.get(cm)))


def main():
    a = sys.argv[1:]
    if a[0] == "rss":
        cmd_rss(a[1], a[2:])
    elif a[0] == "chain":
        cmd_chain(int(a[1]), a[2:])
    elif a[0] == "chain-store":
        cmd_chain_store(int(a[1]))
    elif a[0] == "fanout":
        sep = a.index("--")
        cmd_fanout(int(a[1]), float(a[2]), a[3], a[4:sep], a[sep + 1:])
    elif a[0] == "ceiling":
        cmd_ceiling(int(a[1]), int(a[2]))
    elif a[0] == "ratios":
        cmd_ratios(a[1], a[2])
    else:
        raise SystemExit("unknown command " + a[0])


main()
PY
export DB_URL
bench() { python3 "$TMP/bench.py" "$@"; }

# ---- DAG files -----------------------------------------------------------------------------
python3 - "$TMP/dags" "$QUEUE" "$CHAIN" "$FANOUT" <<'PY'
import sys
folder, queue, chain, fanout = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def dag(name, n, chained, width):
    with open("%s/%s.yml" % (folder, name), "w") as f:
        f.write("%s:\n  default_args:\n    queue: %s\n  tasks:\n" % (name, queue))
        for i in range(n):
            dep = ", dependencies: [t%0*d]" % (width, i - 1) if chained and i else ""
            f.write('    - {task_id: t%0*d, operator: bash, bash_command: "true"%s}\n' % (width, i, dep))
dag("bench_dist_warmup", 16, False, 3)
dag("bench_dist_chain", chain, True, 3)
dag("bench_dist_fanout", fanout, False, 5)
PY
t0=$EPOCHREALTIME
"$GUST" "${S[@]}" dags validate "$TMP/dags" >&2
say "dags validate of the three DAG files (the fan-out has $FANOUT tasks): $(python3 -c "print('%.2f' % ($EPOCHREALTIME - $t0))") s"
say "$("$GUST" version 2>&1 | head -n1), $GUST; load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

# ---- servers, schema, daemons --------------------------------------------------------------
psql "$GUST_TEST_PG_ADMIN_URL" -qX -v ON_ERROR_STOP=1 \
  -c "CREATE DATABASE \"$DB\"${DB_OWNER:+ OWNER \"$DB_OWNER\"}" >&2
db_made=1
"$GUST" "${S[@]}" db migrate >&2

# The scheduler gives up at start when RabbitMQ does not answer: wait for the port first
# (another engineer's test may be restarting it).
amqp_hostport=$(printf '%s' "$GUST_TEST_AMQP_URL" | sed -n 's|^amqps\?://\([^@/]*@\)\?\([^/?]*\).*|\2|p')
for ((i = 0; i < 600; i++)); do
  (exec 3<>"/dev/tcp/${amqp_hostport%:*}/${amqp_hostport##*:}") 2>/dev/null && break
  sleep 0.1
done

# The ceiling: the task processes alone, 8 at a time, before any gust daemon runs.
say "ceiling: 3,000 x bash -c true, $((WORKERS * CONCURRENCY)) at a time, without gust"
bench ceiling 3000 $((WORKERS * CONCURRENCY))

# Started as plain commands, so that $! is the daemon's own pid.
queue_made=1
"$GUST" "${S[@]}" scheduler >"$TMP/scheduler.log" 2>&1 &
SCHED=$!
for ((n = 1; n <= WORKERS; n++)); do
  "$GUST" "${S[@]}" worker -q "$QUEUE" -c "$CONCURRENCY" --hostname "w$n" >"$TMP/w$n.log" 2>&1 &
  WPIDS+=("$!")
done
PROCS=("scheduler:$SCHED")
for ((n = 1; n <= WORKERS; n++)); do PROCS+=("w$n:${WPIDS[n - 1]}"); done

alive() {
  local p
  for p in "$SCHED" "${WPIDS[@]}"; do
    kill -0 "$p" 2>/dev/null || die "a daemon (pid $p) has died: see its log below; rerun if a server was restarted"
  done
}

# Ready: both workers in Redis, and the scheduler has parsed the three DAGs into the store.
for ((i = 0; ; i++)); do
  alive
  nw=$("$GUST" "${S[@]}" workers list --output json 2>/dev/null | python3 -c '
import json, sys
print(sum(1 for w in json.load(sys.stdin)["workers"] if sys.argv[1] in str(w.get("queues")).split(",")))' "$QUEUE" 2>/dev/null || echo 0)
  nd=$(psql "$DB_URL" -AtX -c "SELECT count(*) FROM dag WHERE dag_id LIKE 'bench_dist_%' AND latest_version_id IS NOT NULL" 2>/dev/null || echo 0)
  [ "$nw" = "$WORKERS" ] && [ "$nd" = 3 ] && break
  [ $i -ge 1200 ] && die "not ready after 120 s: $nw workers, $nd DAGs"
  sleep 0.1
done
say "scheduler (pid $SCHED) and workers (${WPIDS[*]}) ready on queue $QUEUE, database $DB"
sleep 2
bench rss start "${PROCS[@]}"

trigger() { # DAG OUT.json: a run, followed to its end
  run timeout "$TIMEOUT" "$GUST" "${S[@]}" dags trigger "$1" --wait --output json >"$2" ||
    { alive; die "$1: the run did not succeed within $TIMEOUT s (see $2)"; }
}

say "warm-up: 16 tasks"
trigger bench_dist_warmup "$TMP/warmup.json"
sleep 3
bench rss rest "${PROCS[@]}"

# ---- chain ---------------------------------------------------------------------------------
chains=()
for ((r = 1; r <= CHAIN_RUNS; r++)); do
  say "chain of $CHAIN tasks, run $r of $CHAIN_RUNS"
  trigger bench_dist_chain "$TMP/chain$r.json"
  chains+=("$TMP/chain$r.json")
  alive
done
bench chain "$CHAIN" "${chains[@]}"
bench chain-store "$CHAIN"

# ---- fan-out, with memory sampling ---------------------------------------------------------
say "fan-out of $FANOUT tasks (at most $FANOUT_LIMIT s)"
run python3 "$TMP/bench.py" fanout "$FANOUT" "$FANOUT_LIMIT" "$TMP/fanout.json" "${PROCS[@]}" -- \
  "$GUST" "${S[@]}" dags trigger bench_dist_fanout --wait --output json ||
  { alive; die "the fan-out did not succeed"; }
alive
say "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# gust off the machine before the peer runs.
stop_daemons
cleanup_servers

# ---- the Celery peer and the ratios --------------------------------------------------------
if [ "$CELERY" = 1 ]; then
  say "the Celery peer: tests/bench/celery/run.sh"
  celery_rc=0
  run bash "$HERE/celery/run.sh" >"$TMP/celery.out" || celery_rc=$?
  cat "$TMP/celery.out"
  [ $celery_rc -eq 0 ] || die "tests/bench/celery/run.sh failed ($celery_rc): no ratios"
  bench ratios "$DIST_OUT" "$TMP/celery.out"
fi
