/* bench_store — the store's hot path on each engine, printed as figures for
 * docs/performance.md (a benchmark, not a test: it asserts nothing).
 *
 * 1. claim-and-complete: claim a queued instance, append a log chunk, finish it (which
 *    notifies), one try after another — operations per second.
 * 2. history scaling: the time for a batch of 1,000 state transitions (scheduled → queued
 *    with the outbox row, then the claim) with 10k rows of finished history in
 *    task_instance, and with 1M (two stores side by side, ANALYZEd, batches alternating
 *    between them); the hot queries use indexes, so the ratio should be ~1.
 *
 *   bench_store [sqlite-url] [postgres-url]
 *
 * Defaults: a temp SQLite file; GUST_BENCH_PG_URL, else GUST_TEST_PG_URL. The PostgreSQL
 * schema is DROPPED and recreated: point GUST_BENCH_PG_URL at a database of its own when
 * others run tests against the same server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

/* A store of its own for one history size: for SQLite a file beside the main one, for
 * PostgreSQL a schema of its own in the same database (reached through search_path; the
 * driver hands every URL parameter to libpq). Both sizes exist side by side so that their
 * batches can alternate: on a shared, noisy machine two sizes measured a minute apart
 * compare the load of two moments rather than the two sizes. */
#define PAIRS 9 /* batches per size, alternating: medians of 9 ride out most bursts of load */

typedef struct Sized {
    long rows;
    char url[600];
    char schema[32]; /* PostgreSQL */
    Store *s;
    double fill_s;
    double t[PAIRS];
} Sized;

static void sized_open(Sized *z, const char *base_url, int sqlite, long rows)
{
    char err[512];
    z->rows = rows;
    if (sqlite) {
        snprintf(z->url, sizeof z->url, "%s-hist%ld", base_url, rows);
    } else {
        snprintf(z->schema, sizeof z->schema, "bench_store_%ld", rows);
        Store *b = store_open(base_url, err, sizeof err);
        if (!b) {
            fprintf(stderr, "bench_store: %s\n", err);
            exit(1);
        }
        char sql[128];
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", z->schema);
        if (store_x(b, sql, NULL, 0, NULL) != 0) die(b, "drop schema");
        snprintf(sql, sizeof sql, "CREATE SCHEMA %s", z->schema);
        if (store_x(b, sql, NULL, 0, NULL) != 0) die(b, "create schema");
        store_free(b);
        snprintf(z->url, sizeof z->url, "%s%coptions=-csearch_path%%3D%s", base_url, strchr(base_url, '?') ? '&' : '?',
                 z->schema);
    }
    z->s = store_open(z->url, err, sizeof err);
    if (!z->s) {
        fprintf(stderr, "bench_store: %s\n", err);
        exit(1);
    }
    if (store_reset(z->s) != 0) die(z->s, "reset");
    if (store_x(z->s, "INSERT INTO dag (dag_id) VALUES ('bench')", NULL, 0, NULL) != 0) die(z->s, "dag");
    double t0 = now_s();
    fill(z->s, "hist", rows, "success", 1);
    z->fill_s = now_s() - t0;
    /* PostgreSQL: VACUUM as well, so that autovacuum does not start on the fresh rows in the
     * middle of the measurement (and hint bits are set) */
    if (store_x(z->s, sqlite ? "ANALYZE" : "VACUUM ANALYZE", NULL, 0, NULL) != 0) die(z->s, "analyze");
    batch(z->s, "warm"); /* caches and prepared statements warm */
}

static void sized_close(Sized *z, const char *base_url, int sqlite)
{
    store_free(z->s);
    if (sqlite) {
        const char *path = z->url + strlen("sqlite://");
        const char *suffix[] = {"", "-wal", "-shm", "-journal"};
        for (int i = 0; i < 4; i++) {
            char f[640];
            snprintf(f, sizeof f, "%s%s", path, suffix[i]);
            unlink(f);
        }
    } else {
        char err[512], sql[128];
        Store *b = store_open(base_url, err, sizeof err);
        snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", z->schema);
        if (b) store_x(b, sql, NULL, 0, NULL);
        store_free(b);
    }
}

static double median_of_pairs(const double *v)
{
    double c[PAIRS];
    memcpy(c, v, sizeof c);
    qsort(c, PAIRS, sizeof c[0], cmp_double);
    return c[PAIRS / 2];
}

static void history_scaling(const char *engine, const char *url, int sqlite)
{
    Sized small = {0}, large = {0};
    sized_open(&small, url, sqlite, 10000);
    sized_open(&large, url, sqlite, 1000000);
    double ratio[PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        char name[32];
        snprintf(name, sizeof name, "b%d", i);
        /* ABBA: alternate which size goes first, so a drift in load falls on both */
        Sized *first = i % 2 ? &large : &small, *second = i % 2 ? &small : &large;
        first->t[i] = batch(first->s, name);
        second->t[i] = batch(second->s, name);
        ratio[i] = large.t[i] / small.t[i];
    }
    double lo = ratio[0], hi = ratio[0];
    for (int i = 1; i < PAIRS; i++) {
        if (ratio[i] < lo) lo = ratio[i];
        if (ratio[i] > hi) hi = ratio[i];
    }
    printf("%-9s 1,000 transitions (median of %d, alternating): %.3f s with 10k history rows, %.3f s with 1M "
           "(ratio %.2f, median of the %d pairs, which range %.2f-%.2f; filling 1M rows took %.1f s)\n",
           engine, PAIRS, median_of_pairs(small.t), median_of_pairs(large.t), median_of_pairs(ratio), PAIRS, lo, hi,
           large.fill_s);
    sized_close(&small, url, sqlite);
    sized_close(&large, url, sqlite);
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
    store_reset(s);
    int sqlite = store_is_sqlite(s);
    store_free(s);
    history_scaling(engine, url, sqlite);
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
    const char *pg = argc > 2 ? argv[2] : getenv("GUST_BENCH_PG_URL");
    if (!pg || !*pg) pg = getenv("GUST_TEST_PG_URL");
    run_engine("sqlite", sqlite_url);
    if (pg)
        run_engine("postgres", pg);
    else
        fprintf(stderr, "bench_store: no PostgreSQL (set GUST_TEST_PG_URL or run tests/services.sh start)\n");
    if (argc <= 1) { /* the temp folder holds a database of a million rows: do not leave it behind */
        char cmd[96];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        if (system(cmd) != 0) fprintf(stderr, "bench_store: cannot remove %s\n", tmp);
    }
    return 0;
}
