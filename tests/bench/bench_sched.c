/* bench_sched — the scheduler and the local workers in one process, as `gust standalone`
 * runs them, printed as figures for docs/performance.md (a benchmark, not a test: it
 * asserts nothing).
 *
 * The real code: store_open + store_migrate, the in-process broker (local://), the DAG
 * cache, sched_new (no DAG folder, no scheduled runs), worker_pool_start (queues "*"),
 * then sched_create_run and a loop of sched_step / store_wait_change until the run ends —
 * what `gust dags test` and sched_run do. DAGs are YAML texts loaded with dagbag_load_text.
 *
 * 1. chain:   50 `true` bash tasks in a chain; the gap between a task's end_date and the
 *             next one's start_date (task_instance rows), p50 / p90 / max, in ms.
 *             Goal (standalone): p50 <= 5 ms.
 * 2. fanout:  1,000 independent `true` bash tasks in one run, with 16 and 32 worker slots;
 *             tasks per second = 1000 / (last end - first start), and the wall time from
 *             run creation to run success. Goal: >= 1,000 tasks/s. Also with `empty` tasks
 *             (no process: the scheduler + store ceiling), and the CPU time this process and
 *             its children (the bash processes) used per task (PostgreSQL's server processes
 *             are not in it).
 * 3. history: a fixed workload (a chain of 200 `empty` tasks, then a fan-out of 200 `empty`
 *             tasks) on two stores side by side, pre-filled with 10k and 1M finished task
 *             instances of another DAG (SQLite files / PostgreSQL schemas), runs alternating
 *             between them; wall time, and the time (and the scheduler thread's CPU time)
 *             inside sched_step per task; the ratio 1M / 10k should stay near 1. SQLite is
 *             measured after ANALYZE and without (gust never analyses it itself).
 *
 * Each figure is measured on a fresh store, repeated (GUST_BENCH_REPEAT, default 3; 5 for
 * the history workload) and the median printed beside every single run. GUST_BENCH_SLOTS=N
 * runs the bash fan-out with N slots only (to profile one configuration).
 *
 *   bench_sched [chain] [fanout] [history] [sqlite] [postgres]   (default: everything)
 *
 * SQLite lives in a temporary folder (the standalone configuration). PostgreSQL is
 * GUST_BENCH_PG_URL, else GUST_TEST_PG_URL; its schema is DROPPED and recreated, so point
 * GUST_BENCH_PG_URL at a database of its own when others use the test server. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "broker-adapters/broker.h"
#include "core/dagbag.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/util.h"
#include "scheduler/scheduler.h"
#include "store/dagcache.h"
#include "store/dags.h"
#include "store/runs.h"
#include "store/store.h"
#include "store/ti.h"
#include "worker/executor.h"
#include "worker/worker.h"

#define KEY_HEX "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* CPU seconds of this process (every thread) and of its reaped children (the tasks). */
static double process_cpu_s(void)
{
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    return (double)(self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec + kids.ru_stime.tv_sec) +
           (self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) / 1e6;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "bench_sched: %s: %s\n", what, why ? why : "");
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(const double *v, int n)
{
    double *c = xcalloc((size_t)n, sizeof *c);
    memcpy(c, v, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    double m = n % 2 ? c[n / 2] : (c[n / 2 - 1] + c[n / 2]) / 2;
    free(c);
    return m;
}

/* nearest-rank percentile of a sorted array */
static double pct(const double *sorted, int n, double p)
{
    int k = (int)ceil(p * n) - 1;
    if (k < 0) k = 0;
    if (k >= n) k = n - 1;
    return sorted[k];
}

/* ---- one engine, one fresh store ----------------------------------------------------- */

typedef struct Engine {
    const char *name; /* "sqlite" / "postgres" */
    const char *pg_url;
    char tmp[64];     /* a temp folder per store: the SQLite file, the logs (core.home) */
    char url[512];
    const char *schema; /* PostgreSQL: a schema of its own (search_path), NULL: the default */
} Engine;

/* A fresh schema: a new SQLite file, or PostgreSQL dropped and migrated again. */
static void engine_fresh(Engine *e)
{
    if (e->tmp[0]) {
        char *cmd = xasprintf("rm -rf '%s'", e->tmp);
        if (system(cmd) != 0) fprintf(stderr, "bench_sched: cannot remove %s\n", e->tmp);
        free(cmd);
    }
    util_strlcpy(e->tmp, "/tmp/gust-bench-sched-XXXXXX", sizeof e->tmp);
    if (!mkdtemp(e->tmp)) die("mkdtemp", "");
    if (e->pg_url && e->schema) {
        /* two stores side by side in one database: each its own schema, reached through
         * search_path (the driver hands every URL parameter to libpq) */
        char err[512];
        Store *s = store_open(e->pg_url, err, sizeof err);
        if (!s) die("postgres", err);
        char sql[160];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", e->schema);
        if (store_x(s, sql, NULL, 0, NULL) != 0) die("drop schema", store_last_error(s));
        snprintf(sql, sizeof sql, "CREATE SCHEMA %s", e->schema);
        if (store_x(s, sql, NULL, 0, NULL) != 0) die("create schema", store_last_error(s));
        store_free(s);
        snprintf(e->url, sizeof e->url, "%s%coptions=-csearch_path%%3D%s", e->pg_url,
                 strchr(e->pg_url, '?') ? '&' : '?', e->schema);
        s = store_open(e->url, err, sizeof err);
        if (!s) die("postgres", err);
        if (store_migrate(s, NULL) != 0) die("migrate", store_last_error(s));
        store_free(s);
    } else if (e->pg_url) {
        util_strlcpy(e->url, e->pg_url, sizeof e->url);
        char err[512];
        Store *s = store_open(e->url, err, sizeof err);
        if (!s) die("postgres", err);
        if (store_reset(s) != 0) die("reset", store_last_error(s));
        store_free(s);
    } else {
        snprintf(e->url, sizeof e->url, "sqlite://%s/gust.db", e->tmp);
    }
}

static void engine_done(Engine *e)
{
    if (e->pg_url && e->schema) {
        char err[512], sql[160];
        Store *s = store_open(e->pg_url, err, sizeof err);
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", e->schema);
        if (s) store_x(s, sql, NULL, 0, NULL);
        store_free(s);
    }
    if (!e->tmp[0]) return;
    char *cmd = xasprintf("rm -rf '%s'", e->tmp);
    if (system(cmd) != 0) fprintf(stderr, "bench_sched: cannot remove %s\n", e->tmp);
    free(cmd);
    e->tmp[0] = '\0';
}

/* ---- the runtime (cli/cmd_run.c's Runtime, without the config) ------------------------ */

typedef struct Runtime {
    Store *store;
    SecretKey *key;
    Broker *broker;
    DagCache *cache;
    Scheduler *sched;
    WorkerPool *pool;
    char hostname[128];
    char worker_id[200];
    char broker_url[96];
    char home[64];
    const char *queues[1];
    WorkerOptions wopt;
    double step_s;     /* wall time spent inside sched_step */
    double step_cpu_s; /* CPU time of this thread inside sched_step (the scheduler's own work) */
    long steps;
} Runtime;

static void rt_start(Runtime *rt, Engine *e, int concurrency)
{
    memset(rt, 0, sizeof *rt);
    char err[512];
    rt->store = store_open(e->url, err, sizeof err);
    if (!rt->store) die("store_open", err);
    int applied = 0;
    if (store_migrate(rt->store, &applied) != 0) die("migrate", store_last_error(rt->store));
    rt->key = secret_key_parse(KEY_HEX, err, sizeof err);
    if (!rt->key) die("key", err);
    static int n_runtimes;
    snprintf(rt->broker_url, sizeof rt->broker_url, "local://bench-%d-%d", (int)getpid(), ++n_runtimes);
    rt->broker = broker_connect(rt->broker_url, err, sizeof err);
    if (!rt->broker) die("broker", err);
    rt->cache = dagcache_new();
    SchedOptions so;
    sched_default_options(&so);
    so.dags_folder = NULL;
    so.paused_at_creation = 0;
    so.parallelism = 1024;      /* let the worker slots, not the limits, bound the fan-out */
    so.max_active_tasks = 1024;
    so.create_runs = 0;
    rt->sched = sched_new(rt->store, rt->broker, rt->cache, &so);
    gethostname(rt->hostname, sizeof rt->hostname - 1);
    snprintf(rt->worker_id, sizeof rt->worker_id, "%s-%d", rt->hostname, (int)getpid());
    util_strlcpy(rt->home, e->tmp, sizeof rt->home);
    rt->queues[0] = "*";
    rt->wopt = (WorkerOptions){.store_url = e->url, .broker_url = rt->broker_url, .queues = rt->queues,
                               .n_queues = 1, .concurrency = concurrency, .hostname = rt->hostname,
                               .worker_id = rt->worker_id, .home = rt->home, .key = rt->key,
                               .heartbeat_us = 2LL * 1000000, .rlimit_cpu_s = -1, .rlimit_as_mb = -1,
                               .rlimit_nofile = -1};
    rt->pool = worker_pool_start(&rt->wopt, rt->cache, err, sizeof err);
    if (!rt->pool) die("worker_pool_start", err);
    if (store_listen(rt->store) != 0) die("listen", store_last_error(rt->store));
}

static void rt_stop(Runtime *rt)
{
    worker_pool_stop(rt->pool, 5LL * 1000000);
    sched_free(rt->sched);
    broker_close(rt->broker);
    dagcache_free(rt->cache);
    secret_key_free(rt->key);
    store_free(rt->store);
    memset(rt, 0, sizeof *rt);
}

/* Load a DAG from YAML text and sync it (unpaused). The bag keeps the Dag alive. */
static Dag *load_dag(Runtime *rt, DagBag *bag, const char *yaml, char version[33])
{
    dagbag_init(bag);
    DagLoadOptions lo = {0};
    dagbag_load_text(bag, "bench.yml", yaml, strlen(yaml), &lo);
    if (bag->n_dags != 1) {
        for (size_t i = 0; i < bag->diags.len; i++)
            fprintf(stderr, "%d: %s\n", bag->diags.items[i].line, bag->diags.items[i].message);
        die("dagbag_load_text", "the DAG did not load");
    }
    Dag *d = bag->dags[0];
    if (store_dag_sync(rt->store, d, 0, version, NULL) != 0) die("store_dag_sync", store_last_error(rt->store));
    store_dag_set_paused(rt->store, d->dag_id, 0);
    return d;
}

static char *yaml_chain(const char *dag_id, int n, const char *op)
{
    StrBuf b = {0};
    sb_printf(&b, "%s:\n  schedule: None\n  default_args:\n    start_date: 2026-01-01\n    retries: 0\n  tasks:\n",
              dag_id);
    for (int i = 0; i < n; i++) {
        sb_printf(&b, "    - task_id: t%04d\n      operator: %s\n", i, op);
        if (strcmp(op, "bash") == 0) sb_printf(&b, "      bash_command: \"true\"\n");
        if (i > 0) sb_printf(&b, "      dependencies: [t%04d]\n", i - 1);
    }
    char *out = xstrdup(sb_str(&b));
    sb_free(&b);
    return out;
}

/* Run one run to its end, as sched_run would: a pass, then wait for a change or the next
 * due time (coalescing a burst of notifications). Returns the wall time in seconds. */
static double run_to_end(Runtime *rt, const Dag *d, const char *version, int seq, char *run_id, size_t rlen)
{
    char want[64];
    snprintf(want, sizeof want, "bench__%d", seq);
    double t0 = now_s();
    int64_t logical = util_now_us();
    if (sched_create_run(rt->store, d, version, "manual", want, logical, logical, logical, NULL, "bench", run_id,
                         rlen) != 1)
        die("sched_create_run", store_last_error(rt->store));
    for (;;) {
        int64_t next = util_now_us() + 200000;
        double s0 = now_s(), c0 = thread_cpu_s();
        if (sched_step(rt->sched, &next) != 0) log_warn("bench", "%s", sched_error(rt->sched));
        rt->step_s += now_s() - s0;
        rt->step_cpu_s += thread_cpu_s() - c0;
        rt->steps++;
        DagRun r;
        if (store_run_get(rt->store, d->dag_id, run_id, &r) != 1) die("store_run_get", store_last_error(rt->store));
        RunState st = r.state;
        run_clear(&r);
        if (st == RUN_SUCCESS || st == RUN_FAILED) {
            if (st == RUN_FAILED) fprintf(stderr, "bench_sched: run %s failed\n", run_id);
            break;
        }
        if (now_s() - t0 > 600) die("run", "did not end within 10 minutes");
        int64_t wait = next - util_now_us();
        if (wait > 1000000) wait = 1000000;
        if (wait < 0) wait = 0;
        char payload[64];
        if (wait > 0 && store_wait_change(rt->store, (int)(wait / 1000) + 1, payload, sizeof payload) == 1)
            while (store_wait_change(rt->store, 0, payload, sizeof payload) == 1) {}
    }
    return now_s() - t0;
}

static void run_tis(Runtime *rt, const char *dag_id, const char *run_id, TaskInstance **tis, size_t *n)
{
    if (store_ti_list_run(rt->store, dag_id, run_id, tis, n) != 0) die("store_ti_list_run", store_last_error(rt->store));
    for (size_t i = 0; i < *n; i++)
        if ((*tis)[i].state != TI_SUCCESS || (*tis)[i].start_date < 0 || (*tis)[i].end_date < 0)
            die("run", "a task instance did not succeed");
}

static int cmp_start(const void *a, const void *b)
{
    const TaskInstance *x = a, *y = b;
    return x->start_date < y->start_date ? -1 : x->start_date > y->start_date;
}

/* ---- 1. chain of 50 `true` tasks -------------------------------------------------------- */

static void bench_chain(const char *engine_name, const char *pg, int repeat)
{
    enum { N = 50 };
    double p50[16], p90[16], mx[16], wall[16], task_ms[16];
    printf("\n[chain] %s: a chain of %d `true` bash tasks, 8 worker slots; gap = next start_date - end_date\n",
           engine_name, N);
    for (int k = 0; k < repeat; k++) {
        Engine e = {engine_name, pg, "", "", NULL};
        engine_fresh(&e);
        Runtime rt;
        rt_start(&rt, &e, 8);
        DagBag bag;
        char version[33], run_id[160];
        char *yaml = yaml_chain("bench_chain", N, "bash");
        Dag *d = load_dag(&rt, &bag, yaml, version);
        free(yaml);
        wall[k] = run_to_end(&rt, d, version, k, run_id, sizeof run_id);
        TaskInstance *tis;
        size_t n;
        run_tis(&rt, d->dag_id, run_id, &tis, &n);
        qsort(tis, n, sizeof *tis, cmp_start);
        double gaps[N], sum_task = 0;
        for (size_t i = 0; i + 1 < n; i++) gaps[i] = (tis[i + 1].start_date - tis[i].end_date) / 1000.0;
        for (size_t i = 0; i < n; i++) sum_task += (tis[i].end_date - tis[i].start_date) / 1000.0;
        int ng = (int)n - 1;
        qsort(gaps, (size_t)ng, sizeof gaps[0], cmp_double);
        p50[k] = pct(gaps, ng, 0.5);
        p90[k] = pct(gaps, ng, 0.9);
        mx[k] = gaps[ng - 1];
        task_ms[k] = sum_task / (double)n;
        printf("  run %d: gap p50 %6.2f ms  p90 %6.2f ms  max %6.2f ms   (task start->end mean %.2f ms; "
               "run wall %.3f s; %ld sched_step passes)\n",
               k + 1, p50[k], p90[k], mx[k], task_ms[k], wall[k], rt.steps);
        ti_list_free(tis, n);
        rt_stop(&rt);
        dagbag_free(&bag);
        engine_done(&e);
    }
    printf("  median of %d: gap p50 %.2f ms  p90 %.2f ms  max %.2f ms  task %.2f ms  wall %.3f s   (goal p50 <= 5 ms: %s)\n",
           repeat, median(p50, repeat), median(p90, repeat), median(mx, repeat), median(task_ms, repeat),
           median(wall, repeat), median(p50, repeat) <= 5.0 ? "met" : "NOT met");
}

/* ---- 2. fan-out of 1,000 `true` tasks --------------------------------------------------- */

static void bench_fanout(const char *engine_name, const char *pg, int repeat, int concurrency, const char *op)
{
    enum { N = 1000 };
    double tps[16], wall[16], first[16], task_ms[16], cpu[16];
    int bash = strcmp(op, "bash") == 0;
    printf("\n[fanout] %s: %d independent %s tasks in one run, %d worker slots\n", engine_name, N,
           bash ? "`true` bash" : "`empty`", concurrency);
    for (int k = 0; k < repeat; k++) {
        Engine e = {engine_name, pg, "", "", NULL};
        engine_fresh(&e);
        Runtime rt;
        rt_start(&rt, &e, concurrency);
        StrBuf b = {0};
        sb_printf(&b, "bench_fanout:\n  schedule: None\n  default_args:\n    start_date: 2026-01-01\n  tasks:\n");
        for (int i = 0; i < N; i++)
            sb_printf(&b, "    - task_id: t%04d\n      operator: %s\n%s", i, op,
                      bash ? "      bash_command: \"true\"\n" : "");
        DagBag bag;
        char version[33], run_id[160];
        Dag *d = load_dag(&rt, &bag, sb_str(&b), version);
        sb_free(&b);
        int64_t created = util_now_us();
        double cpu0 = process_cpu_s();
        wall[k] = run_to_end(&rt, d, version, k, run_id, sizeof run_id);
        cpu[k] = (process_cpu_s() - cpu0) * 1000 / N;
        TaskInstance *tis;
        size_t n;
        run_tis(&rt, d->dag_id, run_id, &tis, &n);
        int64_t lo = INT64_MAX, hi = 0;
        double sum_task = 0;
        for (size_t i = 0; i < n; i++) {
            if (tis[i].start_date < lo) lo = tis[i].start_date;
            if (tis[i].end_date > hi) hi = tis[i].end_date;
            sum_task += (tis[i].end_date - tis[i].start_date) / 1000.0;
        }
        tps[k] = (double)n / ((hi - lo) / 1e6);
        first[k] = (lo - created) / 1000.0;
        task_ms[k] = sum_task / (double)n;
        printf("  run %d: %7.0f tasks/s (first start -> last end %.3f s)  wall (create -> success) %.3f s  "
               "first start after %.1f ms  task start->end mean %.2f ms  %ld sched_step passes of %.2f ms  "
               "CPU %.2f ms/task\n",
               k + 1, tps[k], (hi - lo) / 1e6, wall[k], first[k], task_ms[k], rt.steps,
               rt.steps ? rt.step_s * 1000 / rt.steps : 0.0, cpu[k]);
        ti_list_free(tis, n);
        rt_stop(&rt);
        dagbag_free(&bag);
        engine_done(&e);
    }
    printf("  median of %d: %.0f tasks/s  wall %.3f s  task %.2f ms  CPU %.2f ms/task%s\n", repeat,
           median(tps, repeat), median(wall, repeat), median(task_ms, repeat), median(cpu, repeat),
           !bash ? "   (no process per task: the scheduler + store ceiling)"
           : median(tps, repeat) >= 1000 ? "   (goal >= 1,000 tasks/s: met)" : "   (goal >= 1,000 tasks/s: NOT met)");
}

/* ---- 3. history scaling ----------------------------------------------------------------- */

/* rows finished task instances of DAG `history`: rows/100 successful runs of 100 tasks,
 * each with its task_instance_history row, inserted by the database itself (a recursive
 * CTE both engines run, as bench_store's fill()). */
static double fill_history(Store *s, long rows, int analyze)
{
    double t0 = now_s();
    long runs = rows / 100;
    if (store_x(s, "INSERT INTO dag (dag_id, is_paused) VALUES ('history', 0)", NULL, 0, NULL) != 0)
        die("dag", store_last_error(s));
    StoreParam r[] = {SP_I(runs)};
    if (store_x(s,
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
                "INSERT INTO dag_run (id, dag_id, run_id, run_type, logical_date, run_after, state, start_date, end_date) "
                "SELECT 'hr-' || x, 'history', 'h' || x, 'scheduled', x, x, 'success', x, x + 1 FROM c",
                r, 1, NULL) != 0)
        die("fill runs", store_last_error(s));
    StoreParam p[] = {SP_I(rows)};
    if (store_x(s,
                "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < ? - 1) "
                "INSERT INTO task_instance (id, dag_id, run_id, task_id, state, try_number, start_date, end_date, "
                "duration, operator) "
                "SELECT 'h-' || x, 'history', 'h' || (x / 100 + 1), 't' || (x % 100), 'success', 1, x, x + 10, 10, "
                "'bash' FROM c",
                p, 1, NULL) != 0)
        die("fill task instances", store_last_error(s));
    if (store_x(s,
                "INSERT INTO task_instance_history (ti_id, try_number, dag_id, run_id, task_id, state, start_date, "
                "end_date, duration, operator) "
                "SELECT id, try_number, dag_id, run_id, task_id, state, start_date, end_date, duration, operator "
                "FROM task_instance WHERE dag_id = 'history'",
                NULL, 0, NULL) != 0)
        die("fill history", store_last_error(s));
    /* PostgreSQL: VACUUM too, so autovacuum does not start on the fresh million rows in the
     * middle of the measurement (and hint bits are set); SQLite: statistics only. */
    if (analyze && store_x(s, store_is_sqlite(s) ? "ANALYZE" : "VACUUM ANALYZE", NULL, 0, NULL) != 0)
        die("analyze", store_last_error(s));
    return now_s() - t0;
}

/* One history size: its own store (a SQLite file, or a PostgreSQL schema), filled, with a
 * runtime and the two workload DAGs loaded. Both sizes are kept side by side so that their
 * runs can alternate: on a shared, noisy machine, sizes measured minutes apart would
 * compare the load of two moments, not the two sizes. */
typedef struct Hist {
    long rows;
    Engine e;
    Runtime rt;
    DagBag bc, bf;
    Dag *dc, *df;
    char vc[33], vf[33];
    double fill_s;
    double cw[16], cs[16], cc[16], fw[16], fs[16], fc[16]; /* wall s, sched_step ms/task, sched CPU ms/task */
} Hist;

static void hist_open(Hist *h, const char *engine_name, const char *pg, long rows, int analyze, const char *schema)
{
    enum { N = 200 };
    memset(h, 0, sizeof *h);
    h->rows = rows;
    h->e = (Engine){engine_name, pg, "", "", schema};
    engine_fresh(&h->e);
    char err[512];
    Store *s = store_open(h->e.url, err, sizeof err);
    if (!s) die("store_open", err);
    if (store_migrate(s, NULL) != 0) die("migrate", store_last_error(s));
    h->fill_s = fill_history(s, rows, analyze);
    store_free(s);
    rt_start(&h->rt, &h->e, 8);
    char *yaml = yaml_chain("wl_chain", N, "empty");
    h->dc = load_dag(&h->rt, &h->bc, yaml, h->vc);
    free(yaml);
    StrBuf b = {0};
    sb_printf(&b, "wl_fanout:\n  schedule: None\n  default_args:\n    start_date: 2026-01-01\n  tasks:\n");
    for (int i = 0; i < N; i++) sb_printf(&b, "    - task_id: t%04d\n      operator: empty\n", i);
    h->df = load_dag(&h->rt, &h->bf, sb_str(&b), h->vf);
    sb_free(&b);
    /* a warm-up run of each: caches, prepared statements, the DAG cache */
    char run_id[160];
    run_to_end(&h->rt, h->dc, h->vc, 1000, run_id, sizeof run_id);
    run_to_end(&h->rt, h->df, h->vf, 1000, run_id, sizeof run_id);
}

static void hist_run(Hist *h, int k)
{
    enum { N = 200 };
    char run_id[160];
    Runtime *rt = &h->rt;
    rt->step_s = rt->step_cpu_s = 0;
    rt->steps = 0;
    h->cw[k] = run_to_end(rt, h->dc, h->vc, k, run_id, sizeof run_id);
    h->cs[k] = rt->step_s * 1000 / N;
    h->cc[k] = rt->step_cpu_s * 1000 / N;
    long chain_steps = rt->steps;
    rt->step_s = rt->step_cpu_s = 0;
    rt->steps = 0;
    h->fw[k] = run_to_end(rt, h->df, h->vf, k, run_id, sizeof run_id);
    h->fs[k] = rt->step_s * 1000 / N;
    h->fc[k] = rt->step_cpu_s * 1000 / N;
    printf("    %7ld rows, run %d: chain %.3f s (sched_step %.3f ms/task, CPU %.3f; %ld passes)  fan-out %.3f s "
           "(sched_step %.3f ms/task, CPU %.3f; %ld passes)\n",
           h->rows, k + 1, h->cw[k], h->cs[k], h->cc[k], chain_steps, h->fw[k], h->fs[k], h->fc[k], rt->steps);
}

static void hist_close(Hist *h)
{
    rt_stop(&h->rt);
    dagbag_free(&h->bc);
    dagbag_free(&h->bf);
    engine_done(&h->e);
}

static void bench_history(const char *engine_name, const char *pg, int analyze)
{
    enum { R = 5 };
    printf("\n[history] %s: a chain of 200 `empty` tasks, then a fan-out of 200 `empty` tasks, 8 worker slots, "
           "on 10k vs 1M finished task instances of another DAG (a fresh store each, %s after the fill; "
           "after a warm-up run, %d runs alternating between the two stores, medians)\n",
           engine_name, !analyze ? "NO ANALYZE" : pg ? "VACUUM ANALYZE" : "ANALYZE", R);
    Hist *small = xcalloc(1, sizeof *small), *large = xcalloc(1, sizeof *large);
    hist_open(small, engine_name, pg, 10000, analyze, pg ? "bench_hist_10k" : NULL);
    hist_open(large, engine_name, pg, 1000000, analyze, pg ? "bench_hist_1m" : NULL);
    double rc[R], rs[R], rcpu[R], rf[R];
    for (int k = 0; k < R; k++) {
        /* ABBA: alternate which size goes first, so a drift in load falls on both */
        if (k % 2 == 0) {
            hist_run(small, k);
            hist_run(large, k);
        } else {
            hist_run(large, k);
            hist_run(small, k);
        }
        rc[k] = large->cw[k] / small->cw[k];
        rs[k] = large->cs[k] / small->cs[k];
        rcpu[k] = large->cc[k] / small->cc[k];
        rf[k] = large->fw[k] / small->fw[k];
    }
    Hist *hs[2] = {small, large};
    for (int i = 0; i < 2; i++) {
        Hist *h = hs[i];
        printf("  %-3s history: chain %.3f s (sched_step %.3f ms/task, CPU %.3f)  fan-out %.3f s (sched_step %.3f "
               "ms/task, CPU %.3f)  [fill %.1f s]\n",
               i ? "1M" : "10k", median(h->cw, R), median(h->cs, R), median(h->cc, R), median(h->fw, R),
               median(h->fs, R), median(h->fc, R), h->fill_s);
    }
    printf("  ratio 1M/10k (median of the %d paired runs): chain wall %.2f  chain sched_step %.2f  chain sched CPU "
           "%.2f  fan-out wall %.2f   (should stay near 1)\n",
           R, median(rc, R), median(rs, R), median(rcpu, R), median(rf, R));
    hist_close(small);
    hist_close(large);
    free(small);
    free(large);
}

/* ---- main ------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    int do_chain = 0, do_fanout = 0, do_history = 0, do_sqlite = 0, do_pg = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "chain") == 0) do_chain = 1;
        else if (strcmp(argv[i], "fanout") == 0) do_fanout = 1;
        else if (strcmp(argv[i], "history") == 0) do_history = 1;
        else if (strcmp(argv[i], "sqlite") == 0) do_sqlite = 1;
        else if (strcmp(argv[i], "postgres") == 0) do_pg = 1;
        else {
            fprintf(stderr, "usage: bench_sched [chain] [fanout] [history] [sqlite] [postgres]\n");
            return 2;
        }
    }
    if (!do_chain && !do_fanout && !do_history) do_chain = do_fanout = do_history = 1;
    if (!do_sqlite && !do_pg) do_sqlite = do_pg = 1;
    int repeat = getenv("GUST_BENCH_REPEAT") ? atoi(getenv("GUST_BENCH_REPEAT")) : 3;
    if (repeat < 1) repeat = 1;
    if (repeat > 16) repeat = 16;
    int slots = getenv("GUST_BENCH_SLOTS") ? atoi(getenv("GUST_BENCH_SLOTS")) : 0;
    if (slots > 1024) slots = 1024;
    const char *pg = getenv("GUST_BENCH_PG_URL");
    if (!pg || !*pg) pg = getenv("GUST_TEST_PG_URL");
    if (do_pg && (!pg || !*pg)) {
        fprintf(stderr, "bench_sched: no PostgreSQL (set GUST_BENCH_PG_URL or GUST_TEST_PG_URL): SQLite only\n");
        do_pg = 0;
    }
    log_set_level(LOG_WARNING); /* the per-task info lines are not what is measured */
    exec_become_subreaper();
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *engines[2] = {do_sqlite ? "sqlite" : NULL, do_pg ? "postgres" : NULL};
    for (int i = 0; i < 2; i++) {
        if (!engines[i]) continue;
        const char *url = i == 1 ? pg : NULL;
        if (do_chain) bench_chain(engines[i], url, repeat);
        if (do_fanout && slots > 0) { /* one configuration, for perf/strace */
            bench_fanout(engines[i], url, repeat, slots, "bash");
        } else if (do_fanout) {
            bench_fanout(engines[i], url, repeat, 16, "bash");
            bench_fanout(engines[i], url, repeat, 32, "bash");
            bench_fanout(engines[i], url, repeat, 16, "empty");
        }
        if (do_history) {
            bench_history(engines[i], url, 1);
            /* gust itself never runs ANALYZE on SQLite: this is the standalone store as it is */
            if (!url) bench_history(engines[i], url, 0);
        }
    }
    return 0;
}
