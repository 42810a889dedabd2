/* store/tiquery.c's per-state counts of a run (what `gust dags trigger --wait` polls), on
 * both engines: counted per run, NULL state as none, a missing or hostile run id counts
 * nothing. */
#include "core/dagbag.h"
#include "core/util.h"
#include "store/dags.h"
#include "store/runs.h"
#include "store/ti.h"
#include "store/tiquery.h"
#include "store_harness.h"

static const char DAG_YAML[] = "five:\n  tasks:\n    - {task_id: a, operator: empty}\n"
                               "    - {task_id: b, operator: empty}\n    - {task_id: c, operator: empty}\n"
                               "    - {task_id: d, operator: empty}\n    - {task_id: e, operator: empty}\n";

/* The DAG "five" and a run of it with its five instances (all without a state). */
static int make_run(Store *s, const char *run_id, int64_t logical, char *version)
{
    if (!version[0]) {
        DagBag b;
        dagbag_init(&b);
        DagLoadOptions opt = {.root = ".", .default_timezone = "UTC"};
        dagbag_load_text(&b, "t.yml", DAG_YAML, strlen(DAG_YAML), &opt);
        int rc = b.n_dags == 1 ? store_dag_sync(s, b.dags[0], 0, version, NULL) : -1;
        dagbag_free(&b);
        if (rc != 0) return -1;
    }
    TiSpec specs[5];
    static const char *const ids[] = {"a", "b", "c", "d", "e"};
    for (int i = 0; i < 5; i++) specs[i] = (TiSpec){ids[i], 1, "default", "default_pool", 1, 1, "empty"};
    RunSpec rs = {"five", run_id, "manual", logical, -1, -1, -1, NULL, NULL, "test", version, NULL};
    return store_run_create(s, &rs, specs, 5, NULL);
}

static void set_state(Store *s, const char *run_id, const char *task_id, const char *state)
{
    StoreParam p[] = {SP_S(state), SP_S(run_id), SP_S(task_id)};
    int64_t n = 0;
    CU_ASSERT_EQUAL(store_x(s, "UPDATE task_instance SET state = ? WHERE dag_id = 'five' AND run_id = ? AND task_id = ?",
                            p, 3, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
}

BOTH_DRIVERS(test_counts_are_per_run_and_per_state)
static void test_counts_are_per_run_and_per_state(Store *s)
{
    char version[33] = "";
    CU_ASSERT_EQUAL_FATAL(make_run(s, "r1", 1, version), 1);
    CU_ASSERT_EQUAL_FATAL(make_run(s, "r2", 2, version), 1);
    set_state(s, "r1", "a", "success");
    set_state(s, "r1", "b", "success");
    set_state(s, "r1", "c", "failed");
    set_state(s, "r1", "d", "running");
    int64_t c[TI__COUNT];
    CU_ASSERT_EQUAL_FATAL(store_tiq_run_state_counts(s, "five", "r1", c), 0);
    int64_t want[TI__COUNT] = {0};
    want[TI_SUCCESS] = 2;
    want[TI_FAILED] = 1;
    want[TI_RUNNING] = 1;
    want[TI_NONE] = 1;
    for (int st = 0; st < TI__COUNT; st++) {
        if (c[st] != want[st]) fprintf(stderr, "\n  r1 %s: %lld, want %lld\n", ti_state_name((TiState)st),
                                       (long long)c[st], (long long)want[st]);
        CU_ASSERT_EQUAL(c[st], want[st]);
    }
    /* the other run's instances are its own */
    CU_ASSERT_EQUAL_FATAL(store_tiq_run_state_counts(s, "five", "r2", c), 0);
    CU_ASSERT_EQUAL(c[TI_NONE], 5);
    CU_ASSERT_EQUAL(c[TI_SUCCESS], 0);
}

BOTH_DRIVERS(test_a_missing_or_hostile_run_counts_nothing)
static void test_a_missing_or_hostile_run_counts_nothing(Store *s)
{
    char version[33] = "";
    CU_ASSERT_EQUAL_FATAL(make_run(s, "r1", 1, version), 1);
    const char *const runs[] = {"nope", "r1' OR '1'='1", "r1\" --", ""};
    for (size_t i = 0; i < sizeof runs / sizeof *runs; i++) {
        int64_t c[TI__COUNT];
        memset(c, 0x55, sizeof c); /* every slot must be written */
        CU_ASSERT_EQUAL_FATAL(store_tiq_run_state_counts(s, "five", runs[i], c), 0);
        for (int st = 0; st < TI__COUNT; st++) CU_ASSERT_EQUAL(c[st], 0);
    }
}

static const UnitTest tests[] = {
    UNIT2(test_counts_are_per_run_and_per_state),
    UNIT2(test_a_missing_or_hostile_run_counts_nothing),
    {0},
};

UNIT_MAIN("tiquery", tests)
