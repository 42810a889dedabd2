/* bench_try — the store's share of one worker try, the old sequence against the new one, on
 * each engine (a benchmark, not a test: it asserts nothing).
 *
 *   old: rate gate (read the instance, read the run), claim (a transaction), read the instance
 *        and the run again, clear the XComs (a transaction), append the log chunk, finish
 *        (a transaction) — what worker/runtry.c did before store/tryops.c
 *   new: store_try_claim (one transaction: claim, XComs cleared, instance and run read back;
 *        a no-op rate check inside it), store_try_finish (one transaction: the log's last
 *        chunk and the outcome)
 *
 * Rounds alternate old and new (ROUNDS of TRIES tries each) so that both see the same load
 * on a shared machine; it prints the median microseconds per try of each and their ratio.
 *
 *   bench_try [sqlite-url] [postgres-url]
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
#include "store/tryops.h"
#include "store/xcom.h"

#define ROUNDS 7
#define TRIES 300

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(Store *s, const char *what)
{
    fprintf(stderr, "bench_try: %s: %s\n", what, s ? store_last_error(s) : "");
    exit(1);
}

/* n queued instances on try 1 in a run of their own, made by the database (as bench_store). */
static void fill(Store *s, const char *run_id, long n)
{
    StoreParam r[] = {SP_S(run_id), SP_S(run_id)};
    if (store_x(s,
                "INSERT INTO dag_run (id, dag_id, run_id, run_type, run_after, state) "
                "VALUES (?, 'bench', ?, 'manual', 0, 'running')",
                r, 2, NULL) != 0)
        die(s, "insert run");
    StoreParam p[] = {SP_I(n), SP_S(run_id), SP_S(run_id)};
    if (store_x(s,
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) "
                "INSERT INTO task_instance (id, dag_id, run_id, task_id, state, try_number, queued_at) "
                "SELECT ? || '-' || x, 'bench', ?, 't' || x, 'queued', 1, 1 FROM c",
                p, 3, NULL) != 0)
        die(s, "fill");
}

static const char CHUNK[] = "[2026-11-25T12:00:00Z] gust: success: exit code 0\n";

static void try_old(Store *s, const char *id)
{
    TaskInstance ti;
    DagRun run;
    if (store_ti_get(s, id, &ti) != 1) die(s, "gate: ti");
    if (store_run_get(s, ti.dag_id, ti.run_id, &run) != 1) die(s, "gate: run");
    run_clear(&run);
    ti_clear(&ti);
    if (store_ti_claim(s, id, 1, "bench-host", "w1", 1) != 1) die(s, "claim");
    if (store_ti_get(s, id, &ti) != 1) die(s, "ti");
    if (store_run_get(s, ti.dag_id, ti.run_id, &run) != 1) die(s, "run");
    if (store_xcom_clear(s, ti.dag_id, ti.run_id, ti.task_id, ti.map_index) < 0) die(s, "xcom clear");
    if (store_log_append(s, id, 1, CHUNK, sizeof CHUNK - 1, NULL) != 0) die(s, "log");
    if (store_ti_finish(s, id, 1, TI_SUCCESS, -1) != 1) die(s, "finish");
    run_clear(&run);
    ti_clear(&ti);
}

static int no_gate(void *ud, const TaskInstance *ti, const DagRun *run)
{
    (void)ud;
    (void)ti;
    (void)run;
    return 0;
}

static void try_new(Store *s, const char *id)
{
    TryClaim c;
    if (store_try_claim(s, id, 1, "bench-host", "w1", 1, no_gate, NULL, &c) != 1) die(s, "claim");
    try_claim_clear(&c);
    if (store_try_finish(s, id, 1, TI_SUCCESS, -1, CHUNK, sizeof CHUNK - 1) != 1) die(s, "finish");
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void run_engine(const char *engine, const char *url)
{
    char err[512];
    Store *s = store_open(url, err, sizeof err);
    if (!s) {
        fprintf(stderr, "bench_try: %s: %s\n", engine, err);
        exit(1);
    }
    if (store_reset(s) != 0) die(s, "reset");
    if (store_x(s, "INSERT INTO dag (dag_id) VALUES ('bench')", NULL, 0, NULL) != 0) die(s, "insert dag");
    double t_old[ROUNDS], t_new[ROUNDS];
    char run[32], id[64];
    for (int r = 0; r < ROUNDS; r++) {
        for (int which = 0; which < 2; which++) {
            snprintf(run, sizeof run, "%s%d", which ? "new" : "old", r);
            fill(s, run, TRIES);
            double t0 = now_s();
            for (long i = 1; i <= TRIES; i++) {
                snprintf(id, sizeof id, "%s-%ld", run, i);
                if (which) try_new(s, id);
                else try_old(s, id);
            }
            (which ? t_new : t_old)[r] = (now_s() - t0) / TRIES * 1e6;
        }
    }
    qsort(t_old, ROUNDS, sizeof *t_old, cmp_double);
    qsort(t_new, ROUNDS, sizeof *t_new, cmp_double);
    double o = t_old[ROUNDS / 2], n = t_new[ROUNDS / 2];
    printf("try %-8s old %7.0f us/try  new %7.0f us/try  new/old %.2f  (medians of %d alternating rounds of %d)\n",
           engine, o, n, n / o, ROUNDS, TRIES);
    store_free(s);
}

int main(int argc, char **argv)
{
    char tmp[] = "/tmp/gust-bench-try-XXXXXX";
    char sqlite_url[256];
    if (argc > 1) {
        snprintf(sqlite_url, sizeof sqlite_url, "%s", argv[1]);
    } else {
        if (!mkdtemp(tmp)) return 1;
        snprintf(sqlite_url, sizeof sqlite_url, "sqlite://%s/gust.db", tmp);
    }
    const char *pg = argc > 2 ? argv[2] : getenv("GUST_BENCH_PG_URL");
    if (!pg || !*pg) pg = getenv("GUST_TEST_PG_URL");
    run_engine("sqlite", sqlite_url);
    if (pg && *pg) run_engine("postgres", pg);
    else fprintf(stderr, "bench_try: no PostgreSQL (GUST_BENCH_PG_URL / GUST_TEST_PG_URL): sqlite only\n");
    return 0;
}
