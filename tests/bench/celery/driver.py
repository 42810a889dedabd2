"""Drives the Celery peer benchmark; run.sh calls it (README.md tells the method).

  driver.py prepare                      result database and this run's tables (before the workers)
  driver.py run --worker NAME:PID ...    wait for the workers, run the workloads, print the figures
  driver.py cleanup                      drop this run's tables, delete its queue and exchange

Figures go to stdout, one "celery <metric> <value> <unit>" line each; progress goes to stderr.
Settings (environment): CELERY_BENCH_CHAIN (50 tasks), CELERY_BENCH_FANOUT (10000 tasks),
CELERY_BENCH_POLL_MS (1: how often the chain driver polls the result backend),
CELERY_BENCH_TIMEOUT (900 s for the fan-out), CELERY_BENCH_COMMAND (true),
CELERY_BENCH_DRAIN (0: off; N runs an extra workload, N tasks queued while the workers do not
consume, then consumed: what the workers alone can do, without the publisher in the way).
"""
import argparse
import math
import os
import sys
import threading
import time

import psycopg2
from psycopg2 import errors as pgerrors

import app as bench

CHAIN = int(os.environ.get("CELERY_BENCH_CHAIN", "50"))
FANOUT = int(os.environ.get("CELERY_BENCH_FANOUT", "10000"))
POLL = float(os.environ.get("CELERY_BENCH_POLL_MS", "1")) / 1000.0
TIMEOUT = float(os.environ.get("CELERY_BENCH_TIMEOUT", "900"))
COMMAND = os.environ.get("CELERY_BENCH_COMMAND", "true")
DRAIN = int(os.environ.get("CELERY_BENCH_DRAIN", "0"))
WARMUP = 16
PAGE = os.sysconf("SC_PAGE_SIZE")


def note(msg):
    print("celery-bench: " + msg, file=sys.stderr, flush=True)


def emit(metric, value, unit):
    if isinstance(value, float):
        value = ("%.0f" if value >= 100 else "%.1f" if value >= 10 else "%.2f") % value
    print("celery %s %s %s" % (metric, value, unit), flush=True)


def percentile(values, p):
    """Nearest-rank percentile: the smallest value with at least p % of the values at or below."""
    s = sorted(values)
    return s[max(0, math.ceil(p / 100.0 * len(s)) - 1)]


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def task_table():
    return bench.app.backend.task_cls.__table__.name


# ---- prepare / cleanup ---------------------------------------------------------------------

def prepare():
    conn = psycopg2.connect(bench.PG_URL)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (bench.RESULT_DB,))
        if cur.fetchone() is None:
            try:
                cur.execute('CREATE DATABASE "%s"' % bench.RESULT_DB)
            except (pgerrors.DuplicateDatabase, pgerrors.UniqueViolation):
                pass  # a concurrent run made it first
    conn.close()
    # Create the result tables now, as Airflow's `celery worker` command does, so the pool's
    # children do not race to create them.
    bench.app.backend.ResultSession().close()


def cleanup():
    try:
        conn = psycopg2.connect(bench.RESULT_URL)
        conn.autocommit = True
        with conn.cursor() as cur:
            b = bench.app.backend
            cur.execute('DROP TABLE IF EXISTS "%s", "%s"'
                        % (b.task_cls.__table__.name, b.taskset_cls.__table__.name))
        conn.close()
    except psycopg2.Error as e:
        note("cleanup: tables: %s" % e)
    try:
        with bench.app.connection_for_write() as c:
            c.ensure_connection(max_retries=3)
            c.default_channel.queue_delete(bench.QUEUE)
            c.default_channel.exchange_delete(bench.QUEUE)
    except Exception as e:  # noqa: BLE001 - best effort
        note("cleanup: queue and exchange: %s" % e)


# ---- memory ----------------------------------------------------------------------------------

def proc_tree(pid):
    """PID and its descendants (the prefork pool's children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open("/proc/%d/task/%d/children" % (p, p)) as f:
                todo.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def rss_kb(pid):
    """Resident set size in KiB, the figure `ps -o rss` shows (VmRSS)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid):
    """Proportional set size in KiB: shared pages divided among the processes sharing them."""
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def worker_memory(pid):
    """(main RSS, main + children RSS, main + children PSS) in KiB, and the process count."""
    tree = proc_tree(pid)
    return (rss_kb(pid), sum(rss_kb(p) for p in tree), sum(pss_kb(p) for p in tree), len(tree))


class Sampler(threading.Thread):
    """Samples each worker's memory every 100 ms and keeps the peaks."""

    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = {p: [0, 0, 0] for p in pids}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for p in self.pids:
                for i, v in enumerate(worker_memory(p)[:3]):
                    self.peak[p][i] = max(self.peak[p][i], v)
            self.stop.wait(0.1)


def emit_memory(prefix, per_worker):
    """per_worker: [(main rss, tree rss, tree pss)] in KiB; the larger worker is reported."""
    emit("worker_rss_%s" % prefix, max(m[1] for m in per_worker) / 1024.0, "MB")
    emit("worker_main_rss_%s" % prefix, max(m[0] for m in per_worker) / 1024.0, "MB")
    emit("worker_pss_%s" % prefix, max(m[2] for m in per_worker) / 1024.0, "MB")


# ---- workloads -------------------------------------------------------------------------------

def wait_workers(names, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        replies = bench.app.control.ping(destination=names, timeout=1.0) or []
        seen = {n for r in replies for n in r}
        if set(names) <= seen:
            return
    raise SystemExit("celery-bench: workers %s did not answer within %d s" % (names, timeout))


def gaps_ms(spans):
    """Gap between each task's end and the next one's start, in ms."""
    return [(spans[i + 1][0] - spans[i][1]) * 1000.0 for i in range(len(spans) - 1)]


def fetch_spans(ids):
    """[start, end] of each task id (in the order of IDS) from the result backend."""
    b = bench.app.backend
    s = b.ResultSession()
    try:
        rows = {}
        for i in range(0, len(ids), 1000):
            chunk = ids[i:i + 1000]
            for t in s.query(b.task_cls).filter(b.task_cls.task_id.in_(chunk)):
                rows[t.task_id] = t.to_dict()
    finally:
        s.close()
    bad = [i for i in ids if rows.get(i, {}).get("status") != "SUCCESS"]
    if bad:
        raise SystemExit("celery-bench: %d tasks did not succeed (first %s: %s)"
                         % (len(bad), bad[0], rows.get(bad[0])))
    return [rows[i]["result"] for i in ids]


def warmup():
    rs = [bench.run_bash.apply_async(args=[COMMAND]) for _ in range(WARMUP)]
    for r in rs:
        r.get(timeout=60, interval=0.01)


def chain_driven():
    """The driver sends the next task once it has read the previous one's result from the
    result backend, as Airflow's scheduler does (it queues a downstream task only after it has
    seen the upstream's success)."""
    ids = []
    t0 = time.time()
    for _ in range(CHAIN):
        r = bench.run_bash.apply_async(args=[COMMAND])
        r.get(timeout=60, interval=POLL)
        ids.append(r.id)
    wall = time.time() - t0
    return fetch_spans(ids), wall


def chain_canvas():
    """Celery's own chain primitive: the worker that ran a task publishes the next one."""
    from celery import chain
    t0 = time.time()
    res = chain(*[bench.run_bash.si(COMMAND) for _ in range(CHAIN)]).apply_async()
    res.get(timeout=120, interval=POLL)
    wall = time.time() - t0
    ids = []
    r = res
    while r is not None:
        ids.append(r.id)
        r = r.parent
    ids.reverse()
    return fetch_spans(ids), wall


def fanout(n=FANOUT, before_consume=None):
    """N tasks published one after another (each waits for its publisher confirm, as a kombu
    producer with confirm_publish does), then the result table is polled until all are done.
    BEFORE_CONSUME, if given, is called between the publishing and the polling."""
    table = task_table()
    conn = psycopg2.connect(bench.RESULT_URL)
    conn.autocommit = True
    count = 'SELECT count(*) FROM "%s" WHERE status IN (\'SUCCESS\', \'FAILURE\')' % table
    with conn.cursor() as cur:
        cur.execute(count)  # the warm-up's and the chains' rows
        before = cur.fetchone()[0]
    ids = []
    t_send = time.time()
    for _ in range(n):
        ids.append(bench.run_bash.apply_async(args=[COMMAND]).id)
    t_sent = time.time()
    note("fan-out: %d published in %.1f s" % (n, t_sent - t_send))
    if before_consume:
        before_consume()
    deadline = t_send + TIMEOUT
    last_note = t_sent
    with conn.cursor() as cur:
        while True:
            cur.execute(count)
            done = cur.fetchone()[0] - before
            now = time.time()
            if done >= n:
                break
            if now > deadline:
                raise SystemExit("celery-bench: fan-out: %d of %d done after %d s"
                                 % (done, n, TIMEOUT))
            if now - last_note >= 10:
                note("fan-out: %d of %d done" % (done, n))
                last_note = now
            time.sleep(0.02)
    t_done = time.time()
    conn.close()
    spans = fetch_spans(ids)
    return spans, t_send, t_sent, t_done


def run(workers):
    names = [w.split(":")[0] for w in workers]
    pids = [int(w.split(":")[1]) for w in workers]
    note("load average at the start: %s" % loadavg())
    wait_workers(names)
    note("workers ready: %s" % ", ".join(names))
    warmup()
    time.sleep(3)
    rest = [worker_memory(p) for p in pids]
    note("at rest: %s" % ", ".join("%d processes, %d KiB" % (m[3], m[1]) for m in rest))

    spans, wall = chain_driven()
    g = gaps_ms(spans)
    emit("chain_gap_p50", percentile(g, 50), "ms")
    emit("chain_gap_p90", percentile(g, 90), "ms")
    emit("chain_gap_p99", percentile(g, 99), "ms")
    emit("chain_gap_max", max(g), "ms")
    emit("chain_wall", wall, "s")

    spans, wall = chain_canvas()
    g = gaps_ms(spans)
    emit("canvas_chain_gap_p50", percentile(g, 50), "ms")
    emit("canvas_chain_gap_p90", percentile(g, 90), "ms")
    emit("canvas_chain_gap_p99", percentile(g, 99), "ms")
    emit("canvas_chain_gap_max", max(g), "ms")

    sampler = Sampler(pids)
    sampler.start()
    spans, t_send, t_sent, t_done = fanout()
    sampler.stop.set()
    sampler.join()
    first_start = min(s[0] for s in spans)
    last_end = max(s[1] for s in spans)
    emit("fanout_tasks_per_s", FANOUT / (last_end - first_start), "tasks/s")
    emit("fanout_wall", t_done - t_send, "s")
    emit("fanout_publish", t_sent - t_send, "s")

    emit_memory("rest", [m[:3] for m in rest])
    emit_memory("load", [sampler.peak[p] for p in pids])

    if DRAIN > 0:
        ctl = bench.app.control
        ctl.cancel_consumer(bench.QUEUE, destination=names, reply=True, timeout=10)
        spans, _, _, t_done = fanout(DRAIN, lambda: ctl.add_consumer(
            bench.QUEUE, destination=names, reply=True, timeout=10))
        emit("drain_tasks_per_s", DRAIN / (max(s[1] for s in spans) - min(s[0] for s in spans)),
             "tasks/s")
    note("load average at the end: %s" % loadavg())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["prepare", "run", "cleanup"])
    ap.add_argument("--worker", action="append", default=[], help="NAME:PID of a worker")
    a = ap.parse_args()
    if a.command == "prepare":
        prepare()
    elif a.command == "cleanup":
        cleanup()
    else:
        if not a.worker:
            ap.error("run needs --worker NAME:PID (one per worker)")
        run(a.worker)


if __name__ == "__main__":
    main()
