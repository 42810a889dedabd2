/* The state-change journal (state_event) on both engines: every run and task-instance state
 * change writes one row in the transaction that made it, in order, and nothing else does;
 * reading by id, pruning by age, and following it in order across commits that arrive out
 * of id order (PostgreSQL). Also the store counts /metrics shows (store/stats.h). */
#include "core/util.h"
#include "store/journal.h"
#include "store/runs.h"
#include "store/stats.h"
#include "store/ti.h"
#include "store_harness.h"

#define BOTH BOTH_DRIVERS /* store_harness.h: a fresh store on each engine */

/* A DAG row and a run of two tasks, extract and load. */
static void make_run(Store *s, const char *run_id)
{
    store_x(s, "INSERT INTO dag (dag_id) VALUES ('etl') ON CONFLICT DO NOTHING", NULL, 0, NULL);
    TiSpec specs[] = {{"extract", 1, "default", "default_pool", 1, 2, "empty"},
                      {"load", 1, "default", "default_pool", 1, 1, "empty"}};
    RunSpec rs = {"etl", run_id, "manual", -1, -1, -1, -1, NULL, NULL, "test", NULL, NULL};
    CU_ASSERT_EQUAL_FATAL(store_run_create(s, &rs, specs, 2, NULL), 1);
}

static char *ti_id(Store *s, const char *run_id, const char *task_id)
{
    TaskInstance t;
    if (store_ti_get_by_key(s, "etl", run_id, task_id, -1, &t) != 1) return NULL;
    char *id = xstrdup(t.id);
    ti_clear(&t);
    return id;
}

/* "run:queued", "extract:running@1", "load:none@0": one line per event, for comparing a
 * whole sequence at once (and printing it when it differs). */
static void describe(const StateEvent *e, size_t n, StrBuf *b)
{
    for (size_t i = 0; i < n; i++) {
        if (e[i].kind == STATE_EVENT_RUN)
            sb_printf(b, "run:%s\n", e[i].state ? e[i].state : "NULL");
        else
            sb_printf(b, "%s:%s@%d\n", e[i].task_id, e[i].state ? e[i].state : "none", e[i].try_number);
    }
}

static void journal_text(Store *s, int64_t after, StrBuf *b)
{
    StateEvent *e;
    size_t n;
    CU_ASSERT_EQUAL_FATAL(store_journal_since(s, after, 1000, &e, &n), 0);
    describe(e, n, b);
    state_event_list_free(e, n);
}

BOTH(test_a_run_through_its_states_is_journaled_in_order)
static void test_a_run_through_its_states_is_journaled_in_order(Store *s)
{
    int64_t t0 = util_now_us();
    make_run(s, "r1");
    char *ex = ti_id(s, "r1", "extract"), *ld = ti_id(s, "r1", "load");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ld);
    CU_ASSERT_EQUAL(store_run_set_state(s, "etl", "r1", RUN_RUNNING), 1);
    /* extract: one try that succeeds */
    CU_ASSERT_EQUAL(store_ti_set_state(s, ex, -1, TI_SCHEDULED, -1), 1);
    CU_ASSERT_EQUAL(store_ti_enqueue(s, ex, 1), 1);
    CU_ASSERT_EQUAL(store_ti_claim(s, ex, 1, "host", "w1", 42), 1);
    CU_ASSERT_EQUAL(store_ti_finish(s, ex, 1, TI_SUCCESS, -1), 1);
    /* load: a rate limit defers it, a try fails and is retried, the retry succeeds */
    CU_ASSERT_EQUAL(store_ti_set_state(s, ld, -1, TI_SCHEDULED, -1), 1);
    CU_ASSERT_EQUAL(store_ti_enqueue(s, ld, 1), 1);
    CU_ASSERT_EQUAL(store_ti_defer(s, ld, 1, util_now_us()), 1);
    CU_ASSERT_EQUAL(store_ti_enqueue(s, ld, 1), 1);
    CU_ASSERT_EQUAL(store_ti_claim(s, ld, 1, "host", "w1", 43), 1);
    CU_ASSERT_EQUAL(store_ti_finish(s, ld, 1, TI_UP_FOR_RETRY, util_now_us()), 1);
    CU_ASSERT_EQUAL(store_ti_set_state(s, ld, 1, TI_SCHEDULED, -1), 1);
    CU_ASSERT_EQUAL(store_ti_enqueue(s, ld, 1), 1);
    CU_ASSERT_EQUAL(store_ti_claim(s, ld, 2, "host", "w1", 44), 1);
    CU_ASSERT_EQUAL(store_ti_finish(s, ld, 2, TI_SUCCESS, -1), 1);
    CU_ASSERT_EQUAL(store_run_set_state(s, "etl", "r1", RUN_SUCCESS), 1);
    /* a person clears extract (none again) and the run (queued again) */
    CU_ASSERT_EQUAL(store_ti_clear_for_rerun(s, ex, TI_SUCCESS, 1, 1, NULL), 1);
    CU_ASSERT_EQUAL(store_run_set_state(s, "etl", "r1", RUN_QUEUED), 1);

    StrBuf got = {0};
    journal_text(s, 0, &got);
    ASSERT_STR_EQ(sb_str(&got), "run:queued\n"
                                "run:running\n"
                                "extract:scheduled@0\n"
                                "extract:queued@1\n"
                                "extract:running@1\n"
                                "extract:success@1\n"
                                "load:scheduled@0\n"
                                "load:queued@1\n"
                                "load:scheduled@0\n" /* deferred: the try is handed back */
                                "load:queued@1\n"
                                "load:running@1\n"
                                "load:up_for_retry@1\n"
                                "load:scheduled@1\n"
                                "load:queued@2\n"
                                "load:running@2\n"
                                "load:success@2\n"
                                "run:success\n"
                                "extract:none@1\n"
                                "run:queued\n");
    sb_free(&got);

    /* ids increase, times do not go back, and every field is there */
    StateEvent *e;
    size_t n;
    CU_ASSERT_EQUAL_FATAL(store_journal_since(s, 0, 1000, &e, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 19);
    int64_t now = util_now_us();
    for (size_t i = 0; i < n; i++) {
        if (i) CU_ASSERT(e[i].id > e[i - 1].id);
        CU_ASSERT(e[i].ts >= t0 && e[i].ts <= now);
        ASSERT_STR_EQ(e[i].dag_id, "etl");
        ASSERT_STR_EQ(e[i].run_id, "r1");
        if (e[i].kind == STATE_EVENT_TI) CU_ASSERT_EQUAL(e[i].map_index, -1);
        if (e[i].kind == STATE_EVENT_RUN) CU_ASSERT_PTR_NULL(e[i].task_id);
    }
    CU_ASSERT_PTR_NULL(e[17].state); /* none is NULL, as in task_instance */
    int64_t last = 0;
    CU_ASSERT_EQUAL(store_journal_last_id(s, &last), 0);
    CU_ASSERT_EQUAL(last, e[n - 1].id);
    state_event_list_free(e, n);
    free(ex);
    free(ld);
}

/* A reschedule-mode sensor's poke, and a try that ends while its instance was cleared
 * (restarting → up_for_retry), are state changes too. */
BOTH(test_reschedule_and_restart_are_journaled)
static void test_reschedule_and_restart_are_journaled(Store *s)
{
    make_run(s, "r2");
    store_run_set_state(s, "etl", "r2", RUN_RUNNING);
    char *ex = ti_id(s, "r2", "extract");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
    int64_t mark = 0;
    store_journal_last_id(s, &mark);
    store_ti_set_state(s, ex, -1, TI_SCHEDULED, -1);
    store_ti_enqueue(s, ex, 1);
    CU_ASSERT_EQUAL(store_ti_claim(s, ex, 1, "h", "w", 1), 1);
    CU_ASSERT_EQUAL(store_ti_finish(s, ex, 1, TI_UP_FOR_RESCHEDULE, util_now_us()), 1);
    CU_ASSERT_EQUAL(store_ti_set_state(s, ex, -1, TI_SCHEDULED, -1), 1);
    CU_ASSERT_EQUAL(store_ti_enqueue(s, ex, 1), 1);
    CU_ASSERT_EQUAL(store_ti_claim(s, ex, 1, "h", "w", 1), 1);
    CU_ASSERT_EQUAL(store_ti_clear_for_rerun(s, ex, TI_RUNNING, 1, 1, NULL), 1);
    CU_ASSERT_EQUAL(store_ti_finish(s, ex, 1, TI_SUCCESS, -1), 1);
    StrBuf got = {0};
    journal_text(s, mark, &got);
    ASSERT_STR_EQ(sb_str(&got), "extract:scheduled@0\n"
                                "extract:queued@1\n"
                                "extract:running@1\n"
                                "extract:up_for_reschedule@0\n" /* the try goes on at the next poke */
                                "extract:scheduled@0\n"
                                "extract:queued@1\n"
                                "extract:running@1\n"
                                "extract:restarting@1\n"
                                "extract:up_for_retry@1\n");
    sb_free(&got);
    free(ex);
}

typedef struct Failing {
    const char *ti;
} Failing;

/* Moves the run and an instance, then fails: the transaction rolls back. */
static int change_then_fail(Store *s, void *ud)
{
    Failing *f = ud;
    int changed = 0;
    if (store_run_set_state_in_tx(s, "etl", "r3", RUN_RUNNING, &changed) != 0 || !changed) return -1;
    CU_ASSERT_EQUAL(store_ti_set_state(s, f->ti, -1, TI_SCHEDULED, -1), 1); /* joins the transaction */
    return -1;
}

BOTH(test_refused_and_rolled_back_changes_write_nothing)
static void test_refused_and_rolled_back_changes_write_nothing(Store *s)
{
    make_run(s, "r3");
    char *ex = ti_id(s, "r3", "extract");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
    int64_t before = 0, after = 0;
    store_journal_last_id(s, &before);
    CU_ASSERT_EQUAL(before, 1); /* the run's creation; instances created as none are not journaled */
    /* refused by the state machine: nothing changed, nothing written */
    CU_ASSERT_EQUAL(store_ti_claim(s, ex, 1, "h", "w", 1), 0);
    CU_ASSERT_EQUAL(store_ti_finish(s, ex, 1, TI_SUCCESS, -1), 0);
    CU_ASSERT_EQUAL(store_run_set_state(s, "etl", "r3", RUN_QUEUED), 0);
    /* creating a run that exists changes nothing */
    TiSpec spec = {"extract", 0, NULL, NULL, 1, 1, "empty"};
    RunSpec rs = {"etl", "r3", "manual", -1, -1, -1, -1, NULL, NULL, "test", NULL, NULL};
    CU_ASSERT_EQUAL(store_run_create(s, &rs, &spec, 1, NULL), 0);
    /* rolled back: the journal rows go with the changes */
    Failing f = {ex};
    CU_ASSERT_EQUAL(store_tx(s, change_then_fail, &f), -1);
    DagRun r;
    CU_ASSERT_EQUAL_FATAL(store_run_get(s, "etl", "r3", &r), 1);
    CU_ASSERT_EQUAL(r.state, RUN_QUEUED);
    run_clear(&r);
    int64_t count = -1;
    store_q_int(s, "SELECT COUNT(*) FROM state_event", NULL, 0, -1, &count);
    CU_ASSERT_EQUAL(count, 1);
    store_journal_last_id(s, &after);
    CU_ASSERT_EQUAL(after, before);
    free(ex);
}

BOTH(test_since_pages_by_id_and_prune_drops_old_rows)
static void test_since_pages_by_id_and_prune_drops_old_rows(Store *s)
{
    store_x(s, "INSERT INTO dag (dag_id) VALUES ('etl')", NULL, 0, NULL);
    int64_t last = -1;
    CU_ASSERT_EQUAL(store_journal_last_id(s, &last), 0);
    CU_ASSERT_EQUAL(last, 0); /* empty */
    /* 10 rows at times 1000..10000 (written directly: store_journal_run inside a transaction) */
    for (int i = 1; i <= 10; i++) {
        char run[16];
        snprintf(run, sizeof run, "r%d", i);
        CU_ASSERT_EQUAL(store_journal_run(s, i * 1000, "etl", run, "queued"), 0);
    }
    StateEvent *e;
    size_t n;
    CU_ASSERT_EQUAL(store_journal_since(s, 0, 4, &e, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 4);
    ASSERT_STR_EQ(e[0].run_id, "r1");
    ASSERT_STR_EQ(e[3].run_id, "r4");
    int64_t page_end = e[3].id;
    state_event_list_free(e, n);
    CU_ASSERT_EQUAL(store_journal_since(s, page_end, 100, &e, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 6);
    ASSERT_STR_EQ(e[0].run_id, "r5");
    CU_ASSERT_EQUAL(e[0].ts, 5000);
    CU_ASSERT_EQUAL(e[0].kind, STATE_EVENT_RUN);
    ASSERT_STR_EQ(e[0].state, "queued");
    state_event_list_free(e, n);
    /* rows older than 4000 go; the ids of the rest do not change */
    CU_ASSERT_EQUAL(store_journal_prune(s, 4000), 3);
    CU_ASSERT_EQUAL(store_journal_prune(s, 4000), 0);
    CU_ASSERT_EQUAL(store_journal_since(s, 0, 100, &e, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 7);
    ASSERT_STR_EQ(e[0].run_id, "r4");
    int64_t first = 0;
    CU_ASSERT_EQUAL(store_journal_first_id_at(s, 5500, &first), 0);
    CU_ASSERT_EQUAL(first, e[2].id); /* r6, at 6000 */
    CU_ASSERT_EQUAL(store_journal_first_id_at(s, 0, &first), 0);
    CU_ASSERT_EQUAL(first, e[0].id);
    CU_ASSERT_EQUAL(store_journal_first_id_at(s, 20000, &first), 0);
    CU_ASSERT_EQUAL(first, e[6].id + 1);
    state_event_list_free(e, n);
    /* a pruned-empty journal keeps counting from where it was (AUTOINCREMENT / BIGSERIAL),
     * so a follower's cursor stays valid */
    CU_ASSERT_EQUAL(store_journal_prune(s, INT64_MAX), 7);
    CU_ASSERT_EQUAL(store_journal_run(s, 1, "etl", "r11", "queued"), 0);
    CU_ASSERT_EQUAL(store_journal_last_id(s, &last), 0);
    CU_ASSERT_EQUAL(last, 11);
}

/* A permanent hole (an id whose transaction rolled back) holds the rows behind it for the
 * grace time, then is passed; holes are aged from when they were first seen. */
BOTH(test_follow_passes_a_hole_only_after_the_grace)
static void test_follow_passes_a_hole_only_after_the_grace(Store *s)
{
    store_x(s, "INSERT INTO dag (dag_id) VALUES ('etl')", NULL, 0, NULL);
    /* ids 1, 2, then 4 and 6: 3 and 5 never come */
    const int ids[] = {1, 2, 4, 6};
    for (int i = 0; i < 4; i++) {
        StoreParam p[] = {SP_I(ids[i]), SP_I(ids[i])};
        CU_ASSERT_EQUAL(store_x(s,
                                "INSERT INTO state_event (id, ts, kind, dag_id, run_id, state) "
                                "VALUES (?, ?, 'run', 'etl', 'r', 'queued')",
                                p, 2, NULL),
                        0);
    }
    JournalCursor c = {.last_id = 0, .grace_us = 2000000};
    StateEvent *e;
    size_t n;
    int64_t t = 1000000000;
    CU_ASSERT_EQUAL(store_journal_follow(s, &c, t, 100, &e, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 2); /* 1 and 2; 3 is missing */
    CU_ASSERT_EQUAL(e[1].id, 2);
    state_event_list_free(e, n);
    CU_ASSERT_EQUAL(c.last_id, 2);
    CU_ASSERT_EQUAL(c.ngaps, 2); /* 3 and 5 both noted */
    CU_ASSERT_EQUAL(store_journal_follow(s, &c, t + 1900000, 100, &e, &n), 0);
    CU_ASSERT_EQUAL(n, 0); /* still within the grace */
    CU_ASSERT_PTR_NULL(e);
    CU_ASSERT_EQUAL(store_journal_follow(s, &c, t + 2000000, 100, &e, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 2); /* both holes are 2 s old: 4 and 6 at once */
    CU_ASSERT_EQUAL(e[0].id, 4);
    CU_ASSERT_EQUAL(e[1].id, 6);
    state_event_list_free(e, n);
    CU_ASSERT_EQUAL(c.last_id, 6);
    CU_ASSERT_EQUAL(c.skipped, 2);
    CU_ASSERT_EQUAL(c.ngaps, 0);
    /* a hole that fills within the grace is not skipped: 8 arrives, then 7 */
    StoreParam p8[] = {SP_I(8)};
    store_x(s, "INSERT INTO state_event (id, ts, kind, dag_id, run_id, state) VALUES (?, 0, 'run', 'etl', 'r', 'x')",
            p8, 1, NULL);
    CU_ASSERT_EQUAL(store_journal_follow(s, &c, t + 3000000, 100, &e, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    StoreParam p7[] = {SP_I(7)};
    store_x(s, "INSERT INTO state_event (id, ts, kind, dag_id, run_id, state) VALUES (?, 0, 'run', 'etl', 'r', 'x')",
            p7, 1, NULL);
    CU_ASSERT_EQUAL(store_journal_follow(s, &c, t + 3100000, 100, &e, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_EQUAL(e[0].id, 7);
    CU_ASSERT_EQUAL(e[1].id, 8);
    state_event_list_free(e, n);
    CU_ASSERT_EQUAL(c.skipped, 2);
    /* limit: one at a time (explicit ids: PostgreSQL's sequence knows nothing of the rows above) */
    StoreParam p9[] = {SP_I(9), SP_S("running"), SP_I(10), SP_S("success")};
    CU_ASSERT_EQUAL(store_x(s,
                            "INSERT INTO state_event (id, ts, kind, dag_id, run_id, state) "
                            "VALUES (?, 0, 'run', 'etl', 'r', ?), (?, 0, 'run', 'etl', 'r', ?)",
                            p9, 4, NULL),
                    0);
    CU_ASSERT_EQUAL(store_journal_follow(s, &c, t + 3200000, 1, &e, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    ASSERT_STR_EQ(e[0].state, "running");
    state_event_list_free(e, n);
    CU_ASSERT_EQUAL(store_journal_follow(s, &c, t + 3200000, 1, &e, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    ASSERT_STR_EQ(e[0].state, "success");
    state_event_list_free(e, n);
}

/* PostgreSQL: a transaction takes id N and commits after another took N+1 and committed.
 * A follower that has read N+1's neighbourhood must wait for N and hand on N, N+1 in order. */
static void test_follow_waits_for_a_late_commit_postgres(void)
{
    Store *a = harness_open(1);
    if (!a) return;
    Store *b = harness_reopen(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    store_x(a, "INSERT INTO dag (dag_id) VALUES ('etl')", NULL, 0, NULL);
    make_run(a, "r1"); /* id 1 */
    JournalCursor c = {.last_id = 0, .grace_us = 2000000};
    StateEvent *e;
    size_t n;
    CU_ASSERT_EQUAL(store_journal_follow(a, &c, util_now_us(), 100, &e, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    state_event_list_free(e, n);

    /* b takes id 2 and holds its transaction open */
    CU_ASSERT_EQUAL_FATAL(store_begin(b->conn), 0);
    CU_ASSERT_EQUAL(store_journal_run(b, util_now_us(), "etl", "r1", "running"), 0);
    /* a writes id 3 and commits */
    CU_ASSERT_EQUAL(store_journal_run(a, util_now_us(), "etl", "r1", "success"), 0);
    CU_ASSERT_EQUAL(store_journal_follow(a, &c, util_now_us(), 100, &e, &n), 0);
    CU_ASSERT_EQUAL(n, 0); /* 3 is visible, 2 is not yet: wait */
    CU_ASSERT_EQUAL(c.last_id, 1);
    CU_ASSERT_EQUAL(store_commit(b->conn), 0);
    CU_ASSERT_EQUAL(store_journal_follow(a, &c, util_now_us(), 100, &e, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 2);
    CU_ASSERT_EQUAL(e[0].id, 2);
    ASSERT_STR_EQ(e[0].state, "running");
    CU_ASSERT_EQUAL(e[1].id, 3);
    ASSERT_STR_EQ(e[1].state, "success");
    state_event_list_free(e, n);
    CU_ASSERT_EQUAL(c.skipped, 0);

    /* and one that rolls back leaves a hole that is passed after the grace */
    CU_ASSERT_EQUAL_FATAL(store_begin(b->conn), 0);
    CU_ASSERT_EQUAL(store_journal_run(b, util_now_us(), "etl", "r1", "failed"), 0); /* id 4 */
    CU_ASSERT_EQUAL(store_rollback(b->conn), 0);
    CU_ASSERT_EQUAL(store_journal_run(a, util_now_us(), "etl", "r1", "queued"), 0); /* id 5 */
    int64_t t = util_now_us();
    CU_ASSERT_EQUAL(store_journal_follow(a, &c, t, 100, &e, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(store_journal_follow(a, &c, t + 2000000, 100, &e, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(e[0].id, 5);
    state_event_list_free(e, n);
    CU_ASSERT_EQUAL(c.skipped, 1);
    store_free(b);
    store_free(a);
}

/* The counts /metrics shows: instances and runs by state, the queue split between the
 * outbox and the broker, DAGs by paused, and recent try durations through the journal. */
BOTH(test_stats_count_states_queue_dags_and_recent_durations)
static void test_stats_count_states_queue_dags_and_recent_durations(Store *s)
{
    make_run(s, "r1");
    make_run(s, "r2");
    store_x(s, "INSERT INTO dag (dag_id, is_paused) VALUES ('other', 0)", NULL, 0, NULL);
    store_x(s, "INSERT INTO dag (dag_id, is_active) VALUES ('gone', 0)", NULL, 0, NULL);
    store_run_set_state(s, "etl", "r1", RUN_RUNNING);
    char *ex = ti_id(s, "r1", "extract"), *ld = ti_id(s, "r1", "load"), *ex2 = ti_id(s, "r2", "extract");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ex2);
    /* extract of r1 runs and succeeds; its history row says it took 2.5 s */
    store_ti_set_state(s, ex, -1, TI_SCHEDULED, -1);
    store_ti_enqueue(s, ex, 1);
    store_ti_claim(s, ex, 1, "h", "w", 1);
    CU_ASSERT_EQUAL(store_ti_finish(s, ex, 1, TI_SUCCESS, -1), 1);
    StoreParam p[] = {SP_I(2500000), SP_S(ex)};
    store_x(s, "UPDATE task_instance_history SET duration = ? WHERE ti_id = ?", p, 2, NULL);
    /* load of r1 is queued and still in the outbox; extract of r2 queued and published */
    store_ti_set_state(s, ld, -1, TI_SCHEDULED, -1);
    store_ti_enqueue(s, ld, 1);
    store_ti_set_state(s, ex2, -1, TI_SCHEDULED, -1);
    store_ti_enqueue(s, ex2, 1);
    CU_ASSERT_EQUAL(store_outbox_done(s, ex2, 1), 0);

    int64_t ti[TI__COUNT], runs[RUN__COUNT];
    CU_ASSERT_EQUAL_FATAL(store_stats_ti_states(s, ti), 0);
    CU_ASSERT_EQUAL(ti[TI_SUCCESS], 1);
    CU_ASSERT_EQUAL(ti[TI_QUEUED], 2);
    CU_ASSERT_EQUAL(ti[TI_NONE], 1); /* load of r2 */
    CU_ASSERT_EQUAL(ti[TI_RUNNING], 0);
    CU_ASSERT_EQUAL_FATAL(store_stats_run_states(s, runs), 0);
    CU_ASSERT_EQUAL(runs[RUN_RUNNING], 1);
    CU_ASSERT_EQUAL(runs[RUN_QUEUED], 1);
    int64_t outbox = -1, broker = -1, paused = -1, unpaused = -1;
    CU_ASSERT_EQUAL(store_stats_queue(s, &outbox, &broker), 0);
    CU_ASSERT_EQUAL(outbox, 1);
    CU_ASSERT_EQUAL(broker, 1);
    CU_ASSERT_EQUAL(store_stats_dags(s, &paused, &unpaused), 0);
    CU_ASSERT_EQUAL(paused, 1);   /* etl (paused by default) */
    CU_ASSERT_EQUAL(unpaused, 1); /* other; gone is not counted */

    int64_t bounds[] = {1000000, 5000000}, le[2], count = 0, sum = 0;
    CU_ASSERT_EQUAL(store_stats_try_durations(s, util_now_us() - 3600LL * 1000000, bounds, 2, le, &count, &sum), 0);
    CU_ASSERT_EQUAL(count, 1);
    CU_ASSERT_EQUAL(sum, 2500000);
    CU_ASSERT_EQUAL(le[0], 0);
    CU_ASSERT_EQUAL(le[1], 1);
    /* marked failed by hand afterwards: still one try */
    CU_ASSERT_EQUAL(store_ti_set_state(s, ex, -1, TI_FAILED, -1), 1);
    CU_ASSERT_EQUAL(store_stats_try_durations(s, util_now_us() - 3600LL * 1000000, bounds, 2, le, &count, &sum), 0);
    CU_ASSERT_EQUAL(count, 1);
    /* outside the window: none */
    CU_ASSERT_EQUAL(store_stats_try_durations(s, util_now_us() + 1000000, bounds, 2, le, &count, &sum), 0);
    CU_ASSERT_EQUAL(count, 0);
    free(ex);
    free(ld);
    free(ex2);
}

static const UnitTest tests[] = {
    UNIT2(test_stats_count_states_queue_dags_and_recent_durations),
    UNIT2(test_a_run_through_its_states_is_journaled_in_order),
    UNIT2(test_reschedule_and_restart_are_journaled),
    UNIT2(test_refused_and_rolled_back_changes_write_nothing),
    UNIT2(test_since_pages_by_id_and_prune_drops_old_rows),
    UNIT2(test_follow_passes_a_hole_only_after_the_grace),
    UNIT(test_follow_waits_for_a_late_commit_postgres),
    {0},
};

UNIT_MAIN("journal", tests)
