/* A worker try's store operations (store/tryops.h) and the per-task DAG cache a worker uses
 * (store/dagcache.h), on both engines: the claim is one transaction that returns the row and
 * its run, clears the try's XComs and journals the change, and that its check can undo
 * without a trace; the finish writes the log's last chunk with the outcome; a version read in
 * chunks (multibyte text across chunk boundaries) gives back each task exactly as written. */
#include "core/dagbag.h"
#include "core/util.h"
#include "store/dagcache.h"
#include "store/dags.h"
#include "store/journal.h"
#include "store/runs.h"
#include "store/ti.h"
#include "store/tryops.h"
#include "store/xcom.h"
#include "store_harness.h"

#define BOTH BOTH_DRIVERS /* store_harness.h: a fresh store on each engine */

/* Load `yaml` (one DAG), store it as a version; version (33 bytes) gets its id. */
static Dag *sync_dag(Store *s, const char *yaml, char *version)
{
    DagBag b;
    dagbag_init(&b);
    DagLoadOptions o = {0};
    dagbag_load_text(&b, "t.yml", yaml, strlen(yaml), &o);
    if (b.n_dags != 1) {
        for (size_t i = 0; i < b.diags.len; i++) fprintf(stderr, "\n  %s\n", b.diags.items[i].message);
        dagbag_free(&b);
        CU_FAIL_FATAL("the test DAG does not load");
        return NULL;
    }
    Dag *d = b.dags[0];
    b.dags[0] = NULL;
    b.n_dags = 0;
    dagbag_free(&b);
    int made = 0;
    CU_ASSERT_EQUAL_FATAL(store_dag_sync(s, d, 0, version, &made), 0);
    return d;
}

static const char *ETL = "etl:\n"
                         "  params: {who: world}\n"
                         "  tasks:\n"
                         "    - {task_id: extract, operator: bash, bash_command: 'echo \"{x}\" [y] \\\\ é', rate_limit: 5/s}\n"
                         "    - {task_id: load, operator: bash, bash_command: 'echo load', dependencies: [extract]}\n";

/* A run of etl on `version`, extract queued on try 1; its id in ti (33 bytes). */
static void queued_extract(Store *s, const char *version, char *ti)
{
    TiSpec specs[] = {{"extract", 1, "default", "default_pool", 1, 2, "bash"},
                      {"load", 1, "default", "default_pool", 1, 1, "bash"}};
    RunSpec rs = {"etl", "r1", "manual", -1, -1, -1, -1, NULL, NULL, "test", version, NULL};
    CU_ASSERT_EQUAL_FATAL(store_run_create(s, &rs, specs, 2, NULL), 1);
    CU_ASSERT_EQUAL(store_run_set_state(s, "etl", "r1", RUN_RUNNING), 1);
    TaskInstance t;
    CU_ASSERT_EQUAL_FATAL(store_ti_get_by_key(s, "etl", "r1", "extract", -1, &t), 1);
    util_strlcpy(ti, t.id, 33);
    ti_clear(&t);
    CU_ASSERT_EQUAL(store_ti_set_state(s, ti, -1, TI_SCHEDULED, -1), 1);
    CU_ASSERT_EQUAL(store_ti_enqueue(s, ti, 1), 1);
}

static int64_t count(Store *s, const char *sql, const char *id)
{
    int64_t n = -1;
    StoreParam p[] = {SP_S(id)};
    store_q_int(s, sql, p, 1, -1, &n);
    return n;
}

static int say_no(void *ud, const TaskInstance *ti, const DagRun *run)
{
    int *calls = ud;
    (*calls)++;
    CU_ASSERT_EQUAL(ti->state, TI_RUNNING); /* it sees the row as claimed */
    CU_ASSERT_PTR_NOT_NULL(run->dag_version_id);
    return 1;
}

BOTH(test_claim_returns_the_row_and_run_clears_xcoms_and_journals)
static void test_claim_returns_the_row_and_run_clears_xcoms_and_journals(Store *s)
{
    char version[33], ti[33];
    dag_free(sync_dag(s, ETL, version));
    queued_extract(s, version, ti);
    CU_ASSERT_EQUAL(store_xcom_push(s, "etl", "r1", "extract", -1, "old", "1"), 0);
    int64_t last = 0;
    CU_ASSERT_EQUAL(store_journal_last_id(s, &last), 0);
    TryClaim c;
    /* a check that says no: nothing happened */
    int calls = 0;
    CU_ASSERT_EQUAL(store_try_claim(s, ti, 1, "h", "w1", 7, say_no, &calls, &c), 2);
    CU_ASSERT_EQUAL(calls, 1);
    ASSERT_STR_EQ(c.ti.task_id, "extract");
    try_claim_clear(&c);
    CU_ASSERT_EQUAL(count(s, "SELECT COUNT(*) FROM task_instance WHERE id = ? AND state = 'queued'", ti), 1);
    CU_ASSERT_EQUAL(count(s, "SELECT COUNT(*) FROM outbox WHERE ti_id = ?", ti), 1);
    CU_ASSERT_EQUAL(count(s, "SELECT COUNT(*) FROM xcom WHERE task_id = 'extract' AND dag_id = ?", "etl"), 1);
    int64_t now_last = 0;
    CU_ASSERT_EQUAL(store_journal_last_id(s, &now_last), 0);
    CU_ASSERT_EQUAL(now_last, last);
    /* the claim */
    CU_ASSERT_EQUAL_FATAL(store_try_claim(s, ti, 1, "h", "w1", 7, NULL, NULL, &c), 1);
    CU_ASSERT_EQUAL(c.ti.state, TI_RUNNING);
    CU_ASSERT_EQUAL(c.ti.try_number, 1);
    ASSERT_STR_EQ(c.ti.hostname, "h");
    ASSERT_STR_EQ(c.ti.worker_id, "w1");
    CU_ASSERT(c.ti.start_date > 0);
    ASSERT_STR_EQ(c.run.run_id, "r1");
    ASSERT_STR_EQ(c.run.dag_version_id, version);
    try_claim_clear(&c);
    CU_ASSERT_EQUAL(count(s, "SELECT COUNT(*) FROM outbox WHERE ti_id = ?", ti), 0);
    CU_ASSERT_EQUAL(count(s, "SELECT COUNT(*) FROM xcom WHERE task_id = 'extract' AND dag_id = ?", "etl"), 0);
    StateEvent *e;
    size_t n;
    CU_ASSERT_EQUAL_FATAL(store_journal_since(s, last, 100, &e, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    if (n == 1) {
        ASSERT_STR_EQ(e[0].task_id, "extract");
        ASSERT_STR_EQ(e[0].state, "running");
    }
    state_event_list_free(e, n);
    /* the same try again: lost, and told why */
    CU_ASSERT_EQUAL(store_try_claim(s, ti, 1, "h", "w2", 8, NULL, NULL, &c), 0);
    ASSERT_CONTAINS(store_last_error(s), "is running");
    CU_ASSERT_EQUAL(store_try_claim(s, "nosuchid", 1, "h", "w2", 8, NULL, NULL, &c), 0);
    ASSERT_CONTAINS(store_last_error(s), "does not exist");
}

BOTH(test_finish_writes_the_log_tail_with_the_outcome)
static void test_finish_writes_the_log_tail_with_the_outcome(Store *s)
{
    char version[33], ti[33];
    dag_free(sync_dag(s, ETL, version));
    queued_extract(s, version, ti);
    TryClaim c;
    CU_ASSERT_EQUAL_FATAL(store_try_claim(s, ti, 1, "h", "w1", 7, NULL, NULL, &c), 1);
    try_claim_clear(&c);
    CU_ASSERT_EQUAL(store_log_append(s, ti, 1, "first\n", 6, NULL), 0);
    CU_ASSERT_EQUAL(store_try_finish(s, ti, 1, TI_SUCCESS, -1, "last\n", 5), 1);
    CU_ASSERT_EQUAL(count(s, "SELECT COUNT(*) FROM task_instance WHERE id = ? AND state = 'success'", ti), 1);
    StoreLogRead r;
    CU_ASSERT_EQUAL_FATAL(store_log_read(s, ti, 1, 0, 0, &r), 0);
    ASSERT_STR_EQ(r.data, "first\nlast\n");
    store_log_read_free(&r);
    /* a second finish of the same try is refused (and says why) */
    CU_ASSERT_EQUAL(store_try_finish(s, ti, 1, TI_FAILED, -1, "again\n", 6), 0);
    ASSERT_CONTAINS(store_last_error(s), "success");
    CU_ASSERT_EQUAL(count(s, "SELECT COUNT(*) FROM task_instance WHERE id = ? AND state = 'success'", ti), 1);
}

BOTH(test_the_task_cache_gives_back_each_task_as_written)
static void test_the_task_cache_gives_back_each_task_as_written(Store *s)
{
    /* ~1,500 tasks with multibyte text: the version is read in several 256K-character chunks
     * whose byte lengths differ from their character lengths */
    StrBuf y = {0};
    sb_append(&y, "big:\n  task_groups:\n    - group_name: grp\n  tasks:\n");
    sb_append(&y, "    - {task_id: inner, operator: empty, task_group_name: grp}\n");
    for (int i = 0; i < 1500; i++)
        sb_printf(&y, "    - {task_id: t%04d, operator: bash, bash_command: 'echo 日本語 é {\"k\": [%d]} \\\\ \"q\"'%s}\n",
                  i, i, i ? ", dependencies: [t0000]" : ", rate_limit: 10/m");
    char version[33];
    Dag *full = sync_dag(s, sb_str(&y), version);
    sb_free(&y);
    char *doc = store_dag_version_data(s, version);
    CU_ASSERT_FATAL(doc && strlen(doc) > 3 * 256 * 1024);
    DagCache *c = dagcache_new();
    char err[256], rate[64];
    CU_ASSERT_EQUAL(dagcache_peek_rate_limit(c, version, "t0000", rate, sizeof rate), 0); /* not read yet */
    CU_ASSERT_EQUAL_FATAL(dagcache_load_index(c, s, version, err, sizeof err), 0);
    CU_ASSERT_EQUAL(dagcache_peek_rate_limit(c, version, "t0000", rate, sizeof rate), 1);
    ASSERT_STR_EQ(rate, "10/m");
    CU_ASSERT_EQUAL(dagcache_peek_rate_limit(c, version, "t0001", rate, sizeof rate), 1);
    ASSERT_STR_EQ(rate, "");
    CU_ASSERT_EQUAL(dagcache_peek_rate_limit(c, version, "nope", rate, sizeof rate), -1);
    /* every task, and the DAG's own fields, exactly as the full parse has them */
    for (size_t i = 0; i < full->n_tasks; i++) {
        const DagTask *want = full->tasks[i];
        Dag *one = dagcache_task(c, s, version, want->task_id, err, sizeof err);
        CU_ASSERT_PTR_NOT_NULL_FATAL(one);
        CU_ASSERT_EQUAL(one->n_tasks, 1);
        ASSERT_STR_EQ(one->dag_id, "big");
        cJSON *a = dag_task_to_json(want), *b = dag_task_to_json(one->tasks[0]);
        char *ta = cJSON_PrintUnformatted(a), *tb = cJSON_PrintUnformatted(b);
        if (strcmp(ta, tb) != 0) {
            ASSERT_STR_EQ(tb, ta);
            i = full->n_tasks; /* one report is enough */
        }
        free(ta);
        free(tb);
        cJSON_Delete(a);
        cJSON_Delete(b);
        dag_free(one);
    }
    CU_ASSERT_PTR_NULL(dagcache_task(c, s, version, "nope", err, sizeof err));
    ASSERT_CONTAINS(err, "not in the run's DAG version");
    char id[64];
    CU_ASSERT_EQUAL(dagcache_task_id_by_name(c, s, version, "inner", id, sizeof id), 1);
    ASSERT_STR_EQ(id, "grp.inner");
    CU_ASSERT_EQUAL(dagcache_task_id_by_name(c, s, version, "nope", id, sizeof id), 0);
    DagGraph *g = dagcache_graph(c, s, version, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT_EQUAL(g->n, full->n_tasks);
    size_t downstream_of_t0 = 0;
    for (size_t i = 0; i < g->n; i++)
        for (size_t k = 0; k < g->tasks[i].n_upstream; k++) downstream_of_t0 += strcmp(g->tasks[i].upstream[k], "t0000") == 0;
    CU_ASSERT_EQUAL(downstream_of_t0, 1499);
    free(g);
    CU_ASSERT_PTR_NULL(dagcache_task(c, s, "0123456789abcdef0123456789abcdef", "t0001", err, sizeof err));
    ASSERT_CONTAINS(err, "not found");
    /* the whole Dag, built one task at a time (dagcache_get), serialises exactly as the
     * version's document parsed in one piece: every task, its group, the DAG's own fields,
     * and the lookup index */
    const Dag *whole = dagcache_get(c, s, version, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(whole);
    CU_ASSERT_EQUAL(whole->n_tasks, full->n_tasks);
    Dag *ref = dag_from_json(doc, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    free(doc);
    cJSON *a = dag_to_json(ref), *b = dag_to_json(whole);
    dag_free(ref);
    char *ta = cJSON_PrintUnformatted(a), *tb = cJSON_PrintUnformatted(b);
    CU_ASSERT(strcmp(ta, tb) == 0);
    if (strcmp(ta, tb) != 0) fprintf(stderr, "\n  whole DAG differs from the full parse\n");
    free(ta);
    free(tb);
    cJSON_Delete(a);
    cJSON_Delete(b);
    const DagTask *found = dag_find_task(whole, "t1499");
    CU_ASSERT(found && strcmp(found->task_id, "t1499") == 0 && found->n_upstream == 1);
    CU_ASSERT_PTR_EQUAL(dagcache_get(c, s, version, err, sizeof err), whole); /* kept */
    CU_ASSERT_PTR_NULL(dagcache_get(c, s, "0123456789abcdef0123456789abcdef", err, sizeof err));
    ASSERT_CONTAINS(err, "not found");
    dagcache_free(c);
    dag_free(full);
}

static const UnitTest tests[] = {
    UNIT(test_claim_returns_the_row_and_run_clears_xcoms_and_journals_sqlite),
    UNIT(test_claim_returns_the_row_and_run_clears_xcoms_and_journals_postgres),
    UNIT(test_finish_writes_the_log_tail_with_the_outcome_sqlite),
    UNIT(test_finish_writes_the_log_tail_with_the_outcome_postgres),
    UNIT(test_the_task_cache_gives_back_each_task_as_written_sqlite),
    UNIT(test_the_task_cache_gives_back_each_task_as_written_postgres),
    {0}};
UNIT_MAIN("tryops", tests)
