/* The scheduler pass's reads and batches (store/runpass.h) on both engines: candidates, the
 * state map, the unfinished check, and the batched none -> scheduled, scheduled -> queued
 * (with outbox and journal rows) and outbox deletes — including batches past the 256-id
 * chunk, padded IN lists, and instances another scheduler moved first. */
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "store/journal.h"
#include "store/runpass.h"
#include "store/runs.h"
#include "store/ti.h"
#include "store_harness.h"

#define N 600 /* more than two chunks of STORE_BATCH_MAX */

/* A run of N tasks t000..t599 (priority_weight = index % 7). Returns their ids, by index. */
static char **make_run(Store *s)
{
    CU_ASSERT_EQUAL_FATAL(store_x(s, "INSERT INTO dag (dag_id) VALUES ('fan')", NULL, 0, NULL), 0);
    TiSpec *specs = xcalloc(N, sizeof *specs);
    char (*names)[16] = xcalloc(N, sizeof *names);
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "t%03d", N - 1 - i); /* created out of order */
        specs[i] = (TiSpec){names[i], 0, "default", "default_pool", 1, (N - 1 - i) % 7, "bash"};
    }
    RunSpec rs = {"fan", "r1", "manual", -1, -1, -1, -1, NULL, NULL, "test", NULL, NULL};
    CU_ASSERT_EQUAL_FATAL(store_run_create(s, &rs, specs, N, NULL), 1);
    free(specs);
    free(names);
    char **ids = xcalloc(N, sizeof *ids);
    for (int i = 0; i < N; i++) {
        char task[16];
        snprintf(task, sizeof task, "t%03d", i);
        TaskInstance t;
        CU_ASSERT_EQUAL_FATAL(store_ti_get_by_key(s, "fan", "r1", task, -1, &t), 1);
        ids[i] = xstrdup(t.id);
        ti_clear(&t);
    }
    return ids;
}

static int64_t count(Store *s, const char *sql)
{
    int64_t n = -1;
    CU_ASSERT_EQUAL(store_q_int(s, sql, NULL, 0, -1, &n), 0);
    return n;
}

BOTH_DRIVERS(test_batches_move_each_instance_once_with_journal_and_outbox)
static void test_batches_move_each_instance_once_with_journal_and_outbox(Store *s)
{
    char **ids = make_run(s);
    CU_ASSERT_EQUAL(store_run_set_state(s, "fan", "r1", RUN_RUNNING), 1);
    TiBrief *b;
    size_t n;
    CU_ASSERT_EQUAL(store_run_candidates(s, "fan", "r1", &b, &n), 0);
    CU_ASSERT_EQUAL(n, N);
    ti_brief_free(b, n);

    /* another scheduler already scheduled t005: the batch moves the other N - 1 */
    CU_ASSERT_EQUAL(store_ti_set_state(s, ids[5], -1, TI_SCHEDULED, -1), 1);
    int *moved = xcalloc(N, sizeof *moved);
    CU_ASSERT_EQUAL(store_ti_schedule_many(s, (const char *const *)ids, N, moved), N - 1);
    CU_ASSERT_EQUAL(moved[5], 0);
    int all = 1;
    for (int i = 0; i < N; i++)
        if (i != 5 && !moved[i]) all = 0;
    CU_ASSERT(all);
    CU_ASSERT_EQUAL(count(s, "SELECT COUNT(*) FROM task_instance WHERE state = 'scheduled'"), N);
    CU_ASSERT_EQUAL(count(s, "SELECT COUNT(*) FROM state_event WHERE kind = 'ti' AND state = 'scheduled'"), N);
    CU_ASSERT_EQUAL(store_run_candidates(s, "fan", "r1", &b, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    ti_brief_free(b, n);
    /* again: nothing is still none */
    CU_ASSERT_EQUAL(store_ti_schedule_many(s, (const char *const *)ids, N, moved), 0);

    /* queue the first 300 (one chunk of 256 and one padded chunk of 44), then all */
    CU_ASSERT_EQUAL(store_ti_enqueue_many(s, (const char *const *)ids, 300, moved), 300);
    CU_ASSERT_EQUAL(store_ti_enqueue_many(s, (const char *const *)ids, N, moved), N - 300);
    CU_ASSERT_EQUAL(moved[0], 0);
    CU_ASSERT_EQUAL(moved[300], 1);
    CU_ASSERT_EQUAL(count(s, "SELECT COUNT(*) FROM task_instance WHERE state = 'queued' AND try_number = 1"), N);
    CU_ASSERT_EQUAL(count(s, "SELECT COUNT(*) FROM state_event WHERE kind = 'ti' AND state = 'queued'"), N);
    CU_ASSERT_EQUAL(count(s, "SELECT COUNT(*) FROM outbox o JOIN task_instance t ON t.id = o.ti_id "
                             "WHERE o.try_number = 1 AND o.priority = t.priority_weight AND o.queue = 'default'"),
                    N);

    /* the lease: one take holds every row, a second finds none */
    OutboxItem *items, *again;
    size_t ni, na;
    CU_ASSERT_EQUAL(store_outbox_take(s, N, 30000000, &items, &ni), 0);
    CU_ASSERT_EQUAL(ni, N);
    CU_ASSERT_EQUAL(store_outbox_take(s, N, 30000000, &again, &na), 0);
    CU_ASSERT_EQUAL(na, 0);
    outbox_free(again, na);
    /* confirmed: forget 300; a pair with another try number forgets nothing */
    CU_ASSERT_EQUAL(store_outbox_done_many(s, items, 300), 0);
    CU_ASSERT_EQUAL(count(s, "SELECT COUNT(*) FROM outbox"), N - 300);
    OutboxItem other = items[400];
    other.try_number = 2;
    CU_ASSERT_EQUAL(store_outbox_done_many(s, &other, 1), 0);
    CU_ASSERT_EQUAL(count(s, "SELECT COUNT(*) FROM outbox"), N - 300);
    CU_ASSERT_EQUAL(store_outbox_done_many(s, items + 300, ni - 300), 0);
    CU_ASSERT_EQUAL(count(s, "SELECT COUNT(*) FROM outbox"), 0);
    outbox_free(items, ni);

    /* finished one by one: unfinished until the last; the failed one is found by state */
    for (int i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(store_run_has_unfinished(s, "fan", "r1"), 1);
        CU_ASSERT_EQUAL(store_ti_claim(s, ids[i], 1, "h", "w", 1), 1);
        CU_ASSERT_EQUAL(store_ti_finish(s, ids[i], 1, i == 42 ? TI_FAILED : TI_SUCCESS, -1), 1);
    }
    CU_ASSERT_EQUAL(store_run_has_unfinished(s, "fan", "r1"), 0);
    CU_ASSERT_EQUAL(store_run_in_states(s, "fan", "r1", (1u << TI_FAILED) | (1u << TI_UPSTREAM_FAILED), &b, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    ASSERT_STR_EQ(b[0].task_id, "t042");
    ASSERT_STR_EQ(b[0].id, ids[42]);
    ti_brief_free(b, n);
    CU_ASSERT_EQUAL(store_run_in_states(s, "fan", "r1", 1u << TI_NONE, &b, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    ti_brief_free(b, n);

    /* the state map: sorted by task_id, found by binary search */
    CU_ASSERT_EQUAL(store_run_states(s, "fan", "r1", &b, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, N);
    int sorted = 1;
    for (size_t i = 1; i < n; i++)
        if (strcmp(b[i - 1].task_id, b[i].task_id) >= 0) sorted = 0;
    CU_ASSERT(sorted);
    const TiBrief *f = ti_brief_find(b, n, "t042");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(f->state, TI_FAILED);
    CU_ASSERT_PTR_NULL(ti_brief_find(b, n, "t600"));
    ti_brief_free(b, n);
    free(moved);
    for (int i = 0; i < N; i++) free(ids[i]);
    free(ids);
}

BOTH_DRIVERS(test_candidates_are_none_and_retries_only)
static void test_candidates_are_none_and_retries_only(Store *s)
{
    char **ids = make_run(s);
    CU_ASSERT_EQUAL(store_run_set_state(s, "fan", "r1", RUN_RUNNING), 1);
    int moved[3];
    const char *three[] = {ids[1], ids[2], ids[3]};
    CU_ASSERT_EQUAL(store_ti_schedule_many(s, three, 3, moved), 3);
    CU_ASSERT_EQUAL(store_ti_enqueue_many(s, three, 3, moved), 3);
    for (int i = 1; i <= 3; i++) CU_ASSERT_EQUAL(store_ti_claim(s, ids[i], 1, "h", "w", 1), 1);
    int64_t later = util_now_us() + 60000000;
    CU_ASSERT_EQUAL(store_ti_finish(s, ids[1], 1, TI_UP_FOR_RETRY, later), 1);
    CU_ASSERT_EQUAL(store_ti_finish(s, ids[2], 1, TI_UP_FOR_RESCHEDULE, later), 1);
    TiBrief *b;
    size_t n;
    CU_ASSERT_EQUAL(store_run_candidates(s, "fan", "r1", &b, &n), 0);
    CU_ASSERT_EQUAL(n, N - 1); /* t003 runs */
    int retry = 0, resched = 0, running = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(b[i].id, ids[1]) == 0) retry = b[i].state == TI_UP_FOR_RETRY && b[i].next_attempt_at == later;
        if (strcmp(b[i].id, ids[2]) == 0) resched = b[i].state == TI_UP_FOR_RESCHEDULE;
        if (strcmp(b[i].id, ids[3]) == 0) running = 1;
    }
    CU_ASSERT(retry);
    CU_ASSERT(resched);
    CU_ASSERT(!running);
    ti_brief_free(b, n);
    for (int i = 0; i < N; i++) free(ids[i]);
    free(ids);
}

static const UnitTest tests[] = {
    UNIT2(test_batches_move_each_instance_once_with_journal_and_outbox),
    UNIT2(test_candidates_are_none_and_retries_only),
    {0},
};

UNIT_MAIN("runpass", tests)
