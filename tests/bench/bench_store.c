/* bench_store — the store's hot path on each engine, printed as figures for
 * docs/performance.md (a benchmark, not a test: it asserts nothing).
 *
 * 1. claim-and-complete: claim a queued instance, append a log chunk, finish it (which
 *    notifies), one try after another — operations per second.
 * 2. history scaling: the time for a batch of 1,000 state transitions (scheduled → queued
 *    with the outbox row, then the claim) with 10k rows of finished history in
 *    task_instance, then with 1M; the hot queries use indexes, so the ratio should be ~1.
 *
 *   bench_store [sqlite-url] [postgres-url]   (defaults: a temp SQLite file, GUST_TEST_PG_URL) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"
#include "store/runs.h"
#include "store/store.h"
#include "store/ti.h"
#include "store/xcom.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(Store *s, const char *what)
{
    fprintf(stderr, "bench_store: %s: %s\n", what, s ? store_last_error(s) : "");
    exit(1);
}

/* n task instances in one run, directly in state `state`, on try `try`, inserted by the
 * database itself (a recursive CTE both engines run) so a million rows take seconds. */
static void fill(Store *s, const char *run_id, long n, const char *state, int try_number)
{
    StoreParam r[] = {SP_S(run_id), SP_S(run_id)};
    if (store_x(s,
                "INSERT INTO dag_run (id, dag_id, run_id, run_type, run_after, state) "
                "VALUES (?, 'bench', ?, 'manual', 0, 'running')",
                r, 2, NULL) != 0)
        die(s, "insert run");
    StoreParam p[] = {SP_I(n), SP_S(run_id), SP_S(run_id), SP_S(state), SP_I(try_number)};
    if (store_x(s,
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
                "INSERT INTO task_instance (id, dag_id, run_id, task_id, state, try_number, start_date, end_date) "
                "SELECT ? || '-' || x, 'bench', ?, 't' || x, ?, ?, 1, 2 FROM c",
                p, 5, NULL) != 0)
        die(s, "fill");
}

static void claim_complete(Store *s, const char *engine)
{
    const long N = 2000;
    fill(s, "cc", N, "queued", 1);
    char id[64];
    const char chunk[] = "[2026-11-25T12:00:00Z] {bash.c:42} INFO - hello from the task\n";
    double t0 = now_s();
    for (long i = 1; i <= N; i++) {
        snprintf(id, sizeof id, "cc-%ld", i);
        if (store_ti_claim(s, id, 1, "bench-host", "w1", 1) != 1) die(s, "claim");
        if (store_log_append(s, id, 1, chunk, sizeof chunk - 1, NULL) != 0) die(s, "log");
        if (store_ti_finish(s, id, 1, TI_SUCCESS, -1) != 1) die(s, "finish");
    }
    double dt = now_s() - t0;
    printf("%-9s claim+log+finish cycle: %8.0f per second (%ld cycles in %.2f s)\n", engine, N / dt, N, dt);
}

static double batch(Store *s, const char *tag)
{
    const long N = 1000;
    char run[32];
    snprintf(run, sizeof run, "batch-%s", tag);
    fill(s, run, N, "scheduled", 0);
    char id[64];
    double t0 = now_s();
    for (long i = 1; i <= N; i++) {
        snprintf(id, sizeof id, "%s-%ld", run, i);
        if (store_ti_enqueue(s, id, 0) != 1) die(s, "enqueue");
        if (store_ti_claim(s, id, 1, "h", "w", 1) != 1) die(s, "claim");
    }
    return now_s() - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of 5 batches: single batches on a shared machine are too noisy to compare. */
static double median_batch(Store *s, const char *tag)
{
    double t[5];
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "%s%d", tag, i);
        t[i] = batch(s, name);
    }
    qsort(t, 5, sizeof t[0], cmp_double);
    return t[2];
}

/* One fresh schema per size, so the two figures differ only in the history they sit on. */
static double with_history(Store *s, long rows, double *fill_s)
{
    if (store_reset(s) != 0) die(s, "reset");
    if (store_x(s, "INSERT INTO dag (dag_id) VALUES ('bench')", NULL, 0, NULL) != 0) die(s, "dag");
    double t0 = now_s();
    fill(s, "hist", rows, "success", 1);
    *fill_s = now_s() - t0;
    store_x(s, "ANALYZE", NULL, 0, NULL);
    batch(s, "warm"); /* caches and prepared statements warm */
    return median_batch(s, "b");
}

static void history_scaling(Store *s, const char *engine)
{
    double f_small, f_large;
    double small = with_history(s, 10000, &f_small);
    double large = with_history(s, 1000000, &f_large);
    printf("%-9s 1,000 transitions (median of 5): %.3f s with 10k history rows, %.3f s with 1M (ratio %.2f; "
           "filling 1M rows took %.1f s)\n",
           engine, small, large, large / small, f_large);
}

static void run_engine(const char *engine, const char *url)
{
    char err[512];
    Store *s = store_open(url, err, sizeof err);
    if (!s) {
        fprintf(stderr, "bench_store: %s: %s\n", engine, err);
        exit(1);
    }
    if (store_reset(s) != 0) die(s, "reset");
    if (store_x(s, "INSERT INTO dag (dag_id) VALUES ('bench')", NULL, 0, NULL) != 0) die(s, "dag");
    claim_complete(s, engine);
    history_scaling(s, engine);
    store_reset(s);
    store_free(s);
}

int main(int argc, char **argv)
{
    char tmp[] = "/tmp/gust-bench-XXXXXX";
    char sqlite_url[128];
    if (argc > 1) {
        util_strlcpy(sqlite_url, argv[1], sizeof sqlite_url);
    } else {
        if (!mkdtemp(tmp)) return 1;
        snprintf(sqlite_url, sizeof sqlite_url, "sqlite://%s/bench.db", tmp);
    }
    const char *pg = argc > 2 ? argv[2] : getenv("GUST_TEST_PG_URL");
    run_engine("sqlite", sqlite_url);
    if (pg)
        run_engine("postgres", pg);
    else
        fprintf(stderr, "bench_store: no PostgreSQL (set GUST_TEST_PG_URL or run tests/services.sh start)\n");
    return 0;
}
