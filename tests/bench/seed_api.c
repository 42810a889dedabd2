/* seed_api — fills a store with the history the API benchmark reads (tests/bench/bench_api.sh):
 * 1,000 DAGs of 5 tasks, and one DAG of 100 tasks with 100 finished runs (10,000 task
 * instances, each with a three-line log). Not a benchmark itself: it prints what it made.
 *
 *   seed_api STORE_URL
 *
 * It goes through the same store functions the DAG processor and the scheduler use
 * (store_dag_sync, store_run_create), then marks the history finished with one UPDATE per
 * table — what thousands of tries would have left behind, without running them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dagbag.h"
#include "core/util.h"
#include "store/dags.h"
#include "store/runs.h"
#include "store/store.h"
#include "store/ti.h"
#include "store/xcom.h"

static void die(Store *s, const char *what)
{
    fprintf(stderr, "seed_api: %s: %s\n", what, s ? store_last_error(s) : "");
    exit(1);
}

static Dag *load_one(DagBag *bag, const char *name, const char *text)
{
    size_t before = bag->n_dags;
    dagbag_load_text(bag, name, text, strlen(text), NULL);
    if (bag->n_dags != before + 1) {
        fprintf(stderr, "seed_api: %s did not load\n", name);
        exit(1);
    }
    return bag->dags[bag->n_dags - 1];
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: seed_api STORE_URL\n");
        return 2;
    }
    char err[512];
    Store *s = store_open(argv[1], err, sizeof err);
    if (!s) {
        fprintf(stderr, "seed_api: %s\n", err);
        return 1;
    }
    if (store_migrate(s, NULL) != 0) die(s, "migrate");
    DagBag bag;
    dagbag_init(&bag);
    char ver[33];
    static const char *const teams[] = {"qubinode", "aws", "gcp", "azure"};
    for (int i = 0; i < 1000; i++) {
        char name[64], text[1024];
        snprintf(name, sizeof name, "bench_%04d.yml", i);
        snprintf(text, sizeof text,
                 "bench_dag_%04d:\n"
                 "  default_args: {owner: team_%s, start_date: 2026-01-01}\n"
                 "  schedule: '@daily'\n"
                 "  tags: [bench, %s]\n"
                 "  tasks:\n"
                 "    a: {operator: airflow.operators.bash.BashOperator, bash_command: 'true'}\n"
                 "    b: {operator: airflow.operators.bash.BashOperator, bash_command: 'true', dependencies: [a]}\n"
                 "    c: {operator: airflow.operators.bash.BashOperator, bash_command: 'true', dependencies: [a]}\n"
                 "    d: {operator: airflow.operators.bash.BashOperator, bash_command: 'true', dependencies: [b, c]}\n"
                 "    e: {operator: airflow.operators.bash.BashOperator, bash_command: 'true', dependencies: [d]}\n",
                 i, teams[i % 4], teams[i % 4]);
        Dag *d = load_one(&bag, name, text);
        if (store_dag_sync(s, d, 1, ver, NULL) != 0) die(s, "dag sync");
    }
    StrBuf big = {0};
    sb_append(&big, "bench_big:\n  default_args: {owner: bench, start_date: 2026-01-01}\n  schedule: null\n"
                    "  tags: [bench]\n  tasks:\n");
    for (int t = 0; t < 100; t++)
        sb_printf(&big, "    t%03d: {operator: airflow.operators.bash.BashOperator, bash_command: 'echo %d'}\n", t, t);
    Dag *d = load_one(&bag, "bench_big.yml", sb_str(&big));
    sb_free(&big);
    if (store_dag_sync(s, d, 1, ver, NULL) != 0) die(s, "dag sync");
    TiSpec specs[100];
    for (size_t t = 0; t < d->n_tasks && t < 100; t++)
        specs[t] = (TiSpec){.task_id = d->tasks[t]->task_id, .max_tries = 0, .queue = "default",
                            .pool = "default_pool", .pool_slots = 1, .priority_weight = 1,
                            .operator_name = "BashOperator"};
    int64_t day = 86400LL * 1000000, t0 = 1767225600LL * 1000000; /* 2026-01-01 */
    for (int r = 0; r < 100; r++) {
        char run_id[96];
        int64_t ld = t0 + r * day;
        run_id_make("scheduled", ld, run_id, sizeof run_id);
        RunSpec rs = {.dag_id = "bench_big", .run_id = run_id, .run_type = "scheduled", .logical_date = ld,
                      .data_interval_start = ld, .data_interval_end = ld + day, .run_after = ld + day,
                      .triggered_by = "scheduler", .dag_version_id = ver};
        if (store_run_create(s, &rs, specs, d->n_tasks, NULL) < 0) die(s, "run create");
    }
    StoreParam p[1] = {SP_S("bench_big")};
    if (store_x(s,
                "UPDATE task_instance SET state = 'success', try_number = 1, start_date = queued_at, "
                "end_date = queued_at, duration = 1000000, hostname = 'bench', pid = 1 WHERE dag_id = ?",
                p, 1, NULL) != 0 ||
        store_x(s,
                "UPDATE dag_run SET state = 'success', start_date = run_after, end_date = run_after + 60000000 "
                "WHERE dag_id = ?",
                p, 1, NULL) != 0)
        die(s, "mark history finished");
    StoreRows *rows = store_q(s, "SELECT id FROM task_instance WHERE dag_id = ?", p, 1);
    if (!rows) die(s, "list instances");
    size_t n = 0;
    for (; rows_next(rows); n++) {
        const char *id = rows_text(rows, 0);
        static const char log[] = "[2026-01-01T00:00:00Z] INFO - Running command: echo\n"
                                  "[2026-01-01T00:00:00Z] INFO - Output: hello from the benchmark\n"
                                  "[2026-01-01T00:00:01Z] INFO - Command exited with return code 0\n";
        if (store_log_append(s, id, 1, log, sizeof log - 1, NULL) != 0) die(s, "log append");
    }
    rows_free(rows);
    printf("seed_api: 1000 DAGs of 5 tasks; bench_big: 100 runs x %zu tasks, %zu instances with logs\n",
           d->n_tasks, n);
    dagbag_free(&bag);
    store_free(s);
    return 0;
}
