/* test_rules — the scheduler's pure decisions against Airflow's. Trigger-rule expectations
 * were worked out by hand from airflow/ti_deps/deps/trigger_rule_dep.py
 * (_evaluate_direct_relatives, flag_upstream_failed=True); retry and sensor figures come
 * from Airflow's own formulas run in Python (the snippets are in the comments), never from
 * the code under test. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/dag.h"
#include "core/util.h"
#include "scheduler/rules.h"
#include "store/ti.h"
#include "tests/unit/unit.h"

#define SEC(x) ((int64_t)(x) * INT64_C(1000000))

/* ---- trigger rules: one row per upstream mix, one expectation per rule ---------------- */

/* Upstream states, shorthand. */
#define S TI_SUCCESS
#define F TI_FAILED
#define K TI_SKIPPED
#define UF TI_UPSTREAM_FAILED
#define R TI_RUNNING
#define N TI_NONE
#define RM TI_REMOVED
#define RETRY TI_UP_FOR_RETRY
#define END ((TiState)-1)

/* expect[i] is the decision for trigger rule i, in TriggerRule order:
 *
 *   all_success, all_failed, all_done, all_done_min_one_success, one_success, one_failed,
 *   one_done, none_failed, none_skipped, none_failed_min_one_success, all_skipped, always
 *
 * R = run, W = wait, S = skip, U = upstream_failed. */
typedef struct MixCase {
    const char *name;
    TiState states[6]; /* END-terminated */
    const char *expect;
} MixCase;

static const MixCase MIXES[] = {
    /* TriggerRuleDep._get_dep_statuses passes before looking at the rule when the task has
     * no upstream_task_ids. */
    {"no upstream", {END}, "RRRRRRRRRRRR"},

    /* one_failed skips once every upstream is done without a failure ("upstream_done and
     * not (failed or upstream_failed)"); all_failed and all_skipped skip on the first
     * success. */
    {"all success", {S, S, S, END}, "RSRRRSRRRRSR"},

    /* all_success, none_failed and none_failed_min_one_success: "if upstream_failed or
     * failed: UPSTREAM_FAILED"; none_skipped only looks at skips, so it runs;
     * all_done_min_one_success has every non-skipped upstream done and 2 successes. */
    {"one failed", {S, S, F, END}, "USRRRRRURUSR"},

    /* upstream_failed counts as a failure for every rule that reads failures (one_failed:
     * "if not failed and not upstream_failed" is the wait condition). */
    {"one upstream_failed", {S, S, UF, END}, "USRRRRRURUSR"},

    /* Skip propagation: all_success "elif skipped: SKIPPED"; none_skipped "if skipped:
     * SKIPPED"; all_done_min_one_success "if skipped > 0: SKIPPED" (3.1). none_failed and
     * none_failed_min_one_success run (num_failures = upstream - success - skipped = 0). */
    {"one skipped", {S, S, K, END}, "SSRSRSRRSRSR"},
    {"success and skips", {S, K, K, END}, "SSRSRSRRSRSR"},

    /* none_failed runs when everything was skipped (no skip rule for it in Airflow);
     * none_failed_min_one_success "elif skipped == upstream: SKIPPED"; one_success
     * "upstream_done and done == skipped: SKIPPED"; one_done "upstream_done and not
     * (failed or success): SKIPPED"; all_skipped runs. */
    {"all skipped", {K, K, K, END}, "SSRSSSSRSSRR"},

    /* Decided early while an upstream still runs: one_success and one_done pass on the
     * first success, all_failed and all_skipped skip on it; the rest wait. */
    {"one still running", {S, S, R, END}, "WSWWRWRWWWSR"},

    /* up_for_retry is not a finished state (State.finished), so it is "still running". */
    {"one up_for_retry", {S, S, RETRY, END}, "WSWWRWRWWWSR"},

    /* A failure decides all_success / none_failed / none_failed_min_one_success
     * (upstream_failed) and one_failed / one_done (run) before the others finish. */
    {"failed while others run", {F, R, N, END}, "UWWWWRRUWUSR"},

    /* A skip decides all_success, all_failed, all_done_min_one_success and none_skipped
     * before the others finish; none_failed_min_one_success waits (skipped 1 != 3). */
    {"skipped while others run", {K, R, N, END}, "SSWSWWWWSWWR"},

    /* Nothing started: everything but always waits. */
    {"none started", {N, N, N, END}, "WWWWWWWWWWWR"},

    /* all_failed runs (upstream - failed - upstream_failed = 0); one_success "upstream_done
     * and success <= 0: UPSTREAM_FAILED"; all_done_min_one_success "non_skipped_done >=
     * non_skipped_upstream and success == 0: UPSTREAM_FAILED"; none_skipped runs. */
    {"all failed", {F, F, F, END}, "URRUURRURUSR"},

    /* all_success checks failures before skips, so upstream_failed wins; one_success has
     * done (3) != skipped (2), so upstream_failed, not skip. */
    {"failed and skips", {F, K, K, END}, "USRSURRUSUSR"},

    /* one_done counts only success + failed ("success + failed <= 0" waits), so upstreams
     * that are all upstream_failed make it skip; all_failed runs on them. */
    {"all upstream_failed", {UF, UF, END}, "URRUURSURUSR"},
    {"upstream_failed while one runs", {UF, R, END}, "UWWWWRWUWUSR"},
    {"upstream_failed and skipped", {UF, K, END}, "USRSURSUSUSR"},

    /* Removed upstreams are not upstreams: Airflow only counts removed instances of mapped
     * upstreams (map_index > -1), and gust has no mapping. */
    {"removed ignored", {S, S, RM, END}, "RSRRRSRRRRSR"},
    {"all removed", {RM, RM, END}, "RRRRRRRRRRRR"},
};

static char decision_letter(RuleDecision d)
{
    switch (d) {
    case RULE_RUN: return 'R';
    case RULE_WAIT: return 'W';
    case RULE_SKIP: return 'S';
    case RULE_UPSTREAM_FAILED: return 'U';
    }
    return '?';
}

static size_t count_states(const TiState *st)
{
    size_t n = 0;
    while (st[n] != END) n++;
    return n;
}

static void test_every_rule_against_every_upstream_mix(void)
{
    CU_ASSERT_EQUAL(TR__COUNT, 12);
    for (size_t m = 0; m < GUST_ARRAY_LEN(MIXES); m++) {
        const MixCase *mc = &MIXES[m];
        CU_ASSERT_EQUAL_FATAL(strlen(mc->expect), (size_t)TR__COUNT);
        UpstreamCounts c;
        rules_count(&c, mc->states, count_states(mc->states));
        for (int r = 0; r < TR__COUNT; r++) {
            const char *why = NULL;
            char got = decision_letter(rules_evaluate((TriggerRule)r, &c, &why));
            if (got != mc->expect[r])
                fprintf(stderr, "\n  %s / %s: got %c, want %c (%s)", mc->name, trigger_rule_name((TriggerRule)r), got,
                        mc->expect[r], why ? why : "(no reason)");
            CU_ASSERT_EQUAL(got, mc->expect[r]);
            CU_ASSERT_PTR_NOT_NULL(why);
        }
    }
}

static void test_count_sorts_states_and_leaves_removed_out(void)
{
    const TiState st[] = {S, S, F, UF, K, R, N, RETRY, TI_QUEUED, TI_SCHEDULED, TI_UP_FOR_RESCHEDULE,
                          TI_RESTARTING, RM};
    UpstreamCounts c;
    rules_count(&c, st, GUST_ARRAY_LEN(st));
    CU_ASSERT_EQUAL(c.total, 12); /* 13 states, one removed */
    CU_ASSERT_EQUAL(c.success, 2);
    CU_ASSERT_EQUAL(c.failed, 1);
    CU_ASSERT_EQUAL(c.upstream_failed, 1);
    CU_ASSERT_EQUAL(c.skipped, 1);
    CU_ASSERT_EQUAL(c.removed, 1);
    CU_ASSERT_EQUAL(c.done, 5); /* restarting and up_for_reschedule are not finished */
    char line[160];
    rules_format_counts(&c, line, sizeof line);
    ASSERT_STR_EQ(line, "total=12 success=2 skipped=1 failed=1 upstream_failed=1 removed=1 done=5");
}

static void test_reason_names_the_rule_and_the_cause(void)
{
    const TiState st[] = {S, F};
    UpstreamCounts c;
    rules_count(&c, st, 2);
    const char *why = NULL;
    CU_ASSERT_EQUAL(rules_evaluate(TR_ALL_SUCCESS, &c, &why), RULE_UPSTREAM_FAILED);
    ASSERT_STR_EQ(why, "all_success: an upstream failed");
    for (int r = 0; r < TR__COUNT; r++) {
        rules_evaluate((TriggerRule)r, &c, &why);
        ASSERT_CONTAINS(why, trigger_rule_name((TriggerRule)r));
    }
    CU_ASSERT_EQUAL(rules_evaluate(TR_ONE_SUCCESS, &c, NULL), RULE_RUN); /* why may be NULL */
    ASSERT_STR_EQ(rules_decision_name(RULE_UPSTREAM_FAILED), "upstream_failed");
    ASSERT_STR_EQ(rules_decision_name(RULE_WAIT), "wait");
}

/* A single upstream exercises the "n == 1" edges: one_success with its only upstream
 * skipped skips; with it failed, upstream_failed. */
static void test_single_upstream_edges(void)
{
    UpstreamCounts c;
    const TiState k[] = {K}, f[] = {F};
    rules_count(&c, k, 1);
    CU_ASSERT_EQUAL(rules_evaluate(TR_ONE_SUCCESS, &c, NULL), RULE_SKIP);
    CU_ASSERT_EQUAL(rules_evaluate(TR_NONE_FAILED, &c, NULL), RULE_RUN);
    CU_ASSERT_EQUAL(rules_evaluate(TR_NONE_FAILED_MIN_ONE_SUCCESS, &c, NULL), RULE_SKIP);
    rules_count(&c, f, 1);
    CU_ASSERT_EQUAL(rules_evaluate(TR_ONE_SUCCESS, &c, NULL), RULE_UPSTREAM_FAILED);
    CU_ASSERT_EQUAL(rules_evaluate(TR_ALL_DONE, &c, NULL), RULE_RUN);
    CU_ASSERT_EQUAL(rules_evaluate(TR_ALL_DONE_MIN_ONE_SUCCESS, &c, NULL), RULE_UPSTREAM_FAILED);
}

/* ---- retries ------------------------------------------------------------------------ */

/* Airflow 2.10's next_retry_datetime, minus end_date, run in Python 3.11:
 *
 *   def retry(delay, backoff, max_retry_delay, try_number, dag_id, task_id, logical_date):
 *       if backoff:
 *           min_backoff = math.ceil(delay.total_seconds() * (2 ** (try_number - 1)))
 *           if min_backoff < 1: min_backoff = 1
 *           ti_hash = int(hashlib.sha1(
 *               f"{dag_id}#{task_id}#{logical_date}#{try_number}".encode()).hexdigest(), 16)
 *           modded_hash = min_backoff + ti_hash % min_backoff
 *           delay = timedelta(seconds=min(modded_hash, 24 * 60 * 60))
 *           if max_retry_delay: delay = min(max_retry_delay, delay)
 *       return delay
 *
 * with dag_id "example_dag", task_id "extract", logical_date datetime(2024, 1, 1,
 * tzinfo=timezone.utc), whose str() is "2024-01-01 00:00:00+00:00". */
#define KEY "example_dag#extract#2024-01-01 00:00:00+00:00"

static void test_jitter_key_prints_the_date_as_python_str(void)
{
    char buf[128];
    int64_t jan1 = SEC(1704067200); /* 2024-01-01T00:00:00Z: 19723 days * 86400 */
    rules_jitter_key(buf, sizeof buf, "example_dag", "extract", jan1);
    ASSERT_STR_EQ(buf, KEY);
    /* str(datetime(2024,1,1,microsecond=123,tzinfo=timezone.utc)) */
    rules_jitter_key(buf, sizeof buf, "example_dag", "extract", jan1 + 123);
    ASSERT_STR_EQ(buf, "example_dag#extract#2024-01-01 00:00:00.000123+00:00");
    rules_jitter_key(buf, sizeof buf, "d", "g.t", RULES_NO_DATE);
    ASSERT_STR_EQ(buf, "d#g.t#None");
}

static void test_retry_delay_without_backoff_is_the_retry_delay(void)
{
    for (int k = 1; k <= 10; k++) {
        CU_ASSERT_EQUAL(rules_retry_delay_us(SEC(300), 0, -1, k, KEY), SEC(300));
        /* max_retry_delay only applies with backoff, as in Airflow */
        CU_ASSERT_EQUAL(rules_retry_delay_us(SEC(300), 0, SEC(10), k, KEY), SEC(300));
    }
    CU_ASSERT_EQUAL(rules_retry_delay_us(1500000, 0, -1, 3, NULL), 1500000);
}

static void test_retry_delay_doubles_with_jitter_up_to_a_day(void)
{
    /* min_backoff = 300 * 2^(k-1): 300, 600, 1200, ..., 153600; the hash adds 0..min_backoff-1.
     * sha1(KEY "#1") = de09d6f342cb947ed94807eff80d3bc585e3dd1d (sha1sum agrees), which is
     * 253 mod 300, so try 1 waits 553 s; "#2" gives a98e0a...15 = 203 mod 600: 803 s;
     * "#3" ec2c7b...ca = 522 mod 1200: 1722 s. From try 9 min_backoff + jitter passes
     * 86400 and MAX_RETRY_DELAY caps it.
     *   [retry(timedelta(seconds=300), True, None, k, ...) for k in 1..10] */
    static const int64_t want[10] = {553, 803, 1722, 2814, 6717, 9617, 26468, 42059, 86400, 86400};
    for (int k = 1; k <= 10; k++) {
        int64_t got = rules_retry_delay_us(SEC(300), 1, -1, k, KEY);
        if (got != SEC(want[k - 1])) fprintf(stderr, "\n  try %d: got %lld us", k, (long long)got);
        CU_ASSERT_EQUAL(got, SEC(want[k - 1]));
    }
    /* try 40: 300 * 2^39 is far past a day */
    CU_ASSERT_EQUAL(rules_retry_delay_us(SEC(300), 1, -1, 40, KEY), RULES_MAX_RETRY_DELAY_US);
    CU_ASSERT_EQUAL(rules_retry_delay_us(SEC(300), 1, -1, 5000, KEY), RULES_MAX_RETRY_DELAY_US);
}

static void test_retry_delay_is_capped_by_max_retry_delay(void)
{
    /* max_retry_delay=timedelta(hours=1) */
    static const int64_t want[10] = {553, 803, 1722, 2814, 3600, 3600, 3600, 3600, 3600, 3600};
    for (int k = 1; k <= 10; k++) CU_ASSERT_EQUAL(rules_retry_delay_us(SEC(300), 1, SEC(3600), k, KEY), SEC(want[k - 1]));
    /* retry_delay 30 s, max_retry_delay 90.5 s: 43, 83, then min(timedelta(seconds=90.5), ...) */
    static const int64_t want2[4] = {SEC(43), SEC(83), 90500000, 90500000};
    for (int k = 1; k <= 4; k++) CU_ASSERT_EQUAL(rules_retry_delay_us(SEC(30), 1, 90500000, k, KEY), want2[k - 1]);
    /* max_retry_delay = timedelta(0) is falsy in Airflow: no cap */
    CU_ASSERT_EQUAL(rules_retry_delay_us(SEC(300), 1, 0, 1, KEY), SEC(553));
}

static void test_retry_delay_rounds_fractional_seconds_up(void)
{
    /* retry_delay 1.5 s: ceil(1.5 * 2^(k-1)) = 2, 3, 6, 12, ... plus jitter:
     *   [retry(timedelta(seconds=1.5), True, None, k, ...) for k in 1..10] */
    static const int64_t want[10] = {3, 5, 6, 18, 45, 65, 164, 203, 471, 960};
    for (int k = 1; k <= 10; k++) CU_ASSERT_EQUAL(rules_retry_delay_us(1500000, 1, -1, k, KEY), SEC(want[k - 1]));
    /* retry_delay 0: min_backoff is raised to 1 and anything mod 1 is 0, so 1 s. */
    for (int k = 1; k <= 3; k++) CU_ASSERT_EQUAL(rules_retry_delay_us(0, 1, -1, k, KEY), SEC(1));
    /* a run without a logical date (Airflow 3) hashes "None": 323, 710, 2300 */
    CU_ASSERT_EQUAL(rules_retry_delay_us(SEC(300), 1, -1, 1, "example_dag#extract#None"), SEC(323));
    CU_ASSERT_EQUAL(rules_retry_delay_us(SEC(300), 1, -1, 3, "example_dag#extract#None"), SEC(2300));
}

static void test_should_retry_while_tries_remain(void)
{
    /* retries=2 -> max_tries=2: tries 1 and 2 go up_for_retry, try 3 fails for good */
    CU_ASSERT_TRUE(rules_should_retry(1, 2));
    CU_ASSERT_TRUE(rules_should_retry(2, 2));
    CU_ASSERT_FALSE(rules_should_retry(3, 2));
    CU_ASSERT_FALSE(rules_should_retry(1, 0)); /* retries=0 */
}

/* ---- priority weights --------------------------------------------------------------- */

/*      a (1)
 *     /     \
 *   b (2)   c (3)
 *     \     /
 *      d (4)           distinct weights, so every sum names the tasks it counted */
static Dag *diamond(WeightRule rule)
{
    Dag *d = dag_new("diamond", "diamond.yml", 1);
    static const char *const ids[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        DagTask *t = dag_task_new();
        t->task_id = xstrdup(ids[i]);
        t->name = xstrdup(ids[i]);
        t->priority_weight = i + 1;
        t->weight_rule = rule;
        dag_add_task(d, t);
    }
    dag_task_add_upstream(d->tasks[1], "a");
    dag_task_add_upstream(d->tasks[2], "a");
    dag_task_add_upstream(d->tasks[3], "b");
    dag_task_add_upstream(d->tasks[3], "c");
    return d;
}

static void test_priority_weights_on_a_diamond(void)
{
    int w[4];
    Dag *d = diamond(WR_DOWNSTREAM);
    rules_priority_weights(d, w);
    /* a: 1 + b 2 + c 3 + d 4 (d once, though two paths reach it); b: 2+4; c: 3+4; d: 4 */
    CU_ASSERT_EQUAL(w[0], 10);
    CU_ASSERT_EQUAL(w[1], 6);
    CU_ASSERT_EQUAL(w[2], 7);
    CU_ASSERT_EQUAL(w[3], 4);
    dag_free(d);

    d = diamond(WR_UPSTREAM);
    rules_priority_weights(d, w);
    /* a: 1; b: 2+1; c: 3+1; d: 4 + 2 + 3 + 1 (a once) */
    CU_ASSERT_EQUAL(w[0], 1);
    CU_ASSERT_EQUAL(w[1], 3);
    CU_ASSERT_EQUAL(w[2], 4);
    CU_ASSERT_EQUAL(w[3], 10);
    dag_free(d);

    d = diamond(WR_ABSOLUTE);
    rules_priority_weights(d, w);
    CU_ASSERT_EQUAL(w[0], 1);
    CU_ASSERT_EQUAL(w[1], 2);
    CU_ASSERT_EQUAL(w[2], 3);
    CU_ASSERT_EQUAL(w[3], 4);
    dag_free(d);
}

static void test_priority_weights_sum_relatives_own_weights_per_task_rule(void)
{
    /* Each task's own rule decides its sum, and the sum adds the relatives' own
     * priority_weight, not their effective weight (Airflow's strategies). */
    int w[4];
    Dag *d = diamond(WR_DOWNSTREAM);
    d->tasks[0]->weight_rule = WR_ABSOLUTE; /* a: 1 */
    d->tasks[3]->weight_rule = WR_UPSTREAM; /* d: 4 + 1 + 2 + 3 */
    dag_task_add_upstream(d->tasks[0], "not_a_task"); /* ignored */
    rules_priority_weights(d, w);
    CU_ASSERT_EQUAL(w[0], 1);
    CU_ASSERT_EQUAL(w[1], 6);
    CU_ASSERT_EQUAL(w[2], 7);
    CU_ASSERT_EQUAL(w[3], 10);
    dag_free(d);
}

static void test_priority_weights_clamp_to_the_database_range(void)
{
    int w[4];
    Dag *d = diamond(WR_DOWNSTREAM);
    d->tasks[3]->priority_weight = INT_MAX; /* a would be 1+2+3+INT_MAX */
    rules_priority_weights(d, w);
    CU_ASSERT_EQUAL(w[0], INT_MAX);
    CU_ASSERT_EQUAL(w[3], INT_MAX);
    d->tasks[3]->priority_weight = INT_MIN;
    d->tasks[1]->priority_weight = -5;
    rules_priority_weights(d, w);
    CU_ASSERT_EQUAL(w[0], INT_MIN); /* 1 - 5 + 3 + INT_MIN */
    dag_free(d);

    d = dag_new("empty", "empty.yml", 1);
    rules_priority_weights(d, w); /* nothing to do, nothing written */
    dag_free(d);
}

/* ---- sensors ------------------------------------------------------------------------ */

/* Airflow 2.10 / 3.x _get_next_poke_interval with run_duration() = elapsed, in Python:
 *
 *   def nxt(poke_interval, backoff, max_wait, poke_count, reschedule, timeout, elapsed, key):
 *       if not backoff: return poke_interval
 *       if reschedule:
 *           cumulative_time = 0.0; est = 0
 *           while cumulative_time <= elapsed:
 *               est += 1
 *               min_backoff = max(int(poke_interval * (2 ** (est - 2))), 1)
 *               h = int(hashlib.sha1(f"{key}#{est}".encode()).hexdigest(), 16)
 *               cumulative_time += min(min_backoff + h % min_backoff,
 *                                      timedelta.max.total_seconds() - 1)
 *           poke_count = est or poke_count
 *       min_backoff = max(int(poke_interval * (2 ** (poke_count - 2))), 1)
 *       h = int(hashlib.sha1(f"{key}#{poke_count}".encode()).hexdigest(), 16)
 *       d = min(min_backoff + h % min_backoff, timedelta.max.total_seconds() - 1)
 *       new = min(timeout - int(elapsed), d)
 *       if max_wait: new = min(max_wait.total_seconds(), new)
 *       return new
 *
 * Poke mode hashes str(time.monotonic()); the tests use "1234.5". */
#define POKE_KEY "example_dag#wait_file#1234.5"
#define RESCHED_KEY "example_dag#wait_file#2024-01-01 00:00:00+00:00"
#define WEEK SEC(7 * 86400)

static void test_sensor_without_backoff_pokes_every_interval(void)
{
    for (int n = 1; n <= 5; n++) {
        CU_ASSERT_EQUAL(rules_sensor_next_poke_us(SEC(60), 0, -1, n, 0, WEEK, 0, POKE_KEY), SEC(60));
        /* neither max_wait nor the time left caps it: Airflow returns poke_interval first */
        CU_ASSERT_EQUAL(rules_sensor_next_poke_us(SEC(60), 0, SEC(5), n, 1, SEC(100), SEC(99), RESCHED_KEY),
                        SEC(60));
    }
}

static void test_sensor_backoff_in_poke_mode_grows_per_poke(void)
{
    /* min_backoff 30, 60, 120, ... (the first poke halves: 2^(1-2));
     *   [nxt(60.0, True, None, k, False, 7*86400.0, 0.0, POKE_KEY) for k in 1..8] */
    static const int64_t want[8] = {40, 79, 219, 438, 578, 1675, 3020, 7532};
    for (int k = 1; k <= 8; k++) {
        int64_t got = rules_sensor_next_poke_us(SEC(60), 1, -1, k, 0, WEEK, 0, POKE_KEY);
        if (got != SEC(want[k - 1])) fprintf(stderr, "\n  poke %d: got %lld us", k, (long long)got);
        CU_ASSERT_EQUAL(got, SEC(want[k - 1]));
    }
    /* max_wait=timedelta(seconds=300): 40, 79, 219, then 300.0 */
    static const int64_t capped[8] = {40, 79, 219, 300, 300, 300, 300, 300};
    for (int k = 1; k <= 8; k++)
        CU_ASSERT_EQUAL(rules_sensor_next_poke_us(SEC(60), 1, SEC(300), k, 0, WEEK, 0, POKE_KEY), SEC(capped[k - 1]));
    /* poke_interval 0.5 s: int(0.5 * 2^(k-2)) is 0, 1, 1 -> raised to 1, and x mod 1 = 0 */
    for (int k = 1; k <= 3; k++) CU_ASSERT_EQUAL(rules_sensor_next_poke_us(500000, 1, -1, k, 0, WEEK, 0, POKE_KEY), SEC(1));
}

static void test_sensor_backoff_stops_at_the_timeout(void)
{
    /* timeout 100 s, 30.7 s elapsed: min(100 - int(30.7), 578) = 70 */
    CU_ASSERT_EQUAL(rules_sensor_next_poke_us(SEC(60), 1, -1, 5, 0, SEC(100), 30700000, POKE_KEY), SEC(70));
}

static void test_sensor_backoff_in_reschedule_mode_replays_the_pokes(void)
{
    /* Every execution calls with poke_count 1; the replay from the first reschedule gives
     * intervals 45, 94, 175, 311, 866, 1274, 2992 starting at 0, 45, 139, 314, 625, 1491,
     * 2765 s, so the elapsed time picks the poke:
     *   nxt(60.0, True, None, 1, True, 7*86400.0, elapsed, RESCHED_KEY) */
    static const struct {
        int64_t elapsed_us, want_s;
    } cases[] = {
        {0, 45},           /* first poke */
        {SEC(29), 45},
        {SEC(45), 94},     /* cumulative 45 <= 45: second poke */
        {59900000, 94},
        {SEC(200), 175},
        {SEC(1000), 866},
        {SEC(5000), 2992},
    };
    for (size_t i = 0; i < GUST_ARRAY_LEN(cases); i++)
        CU_ASSERT_EQUAL(rules_sensor_next_poke_us(SEC(60), 1, -1, 1, 1, WEEK, cases[i].elapsed_us, RESCHED_KEY),
                        SEC(cases[i].want_s));
    /* poke_interval 0: every interval is 1 s */
    CU_ASSERT_EQUAL(rules_sensor_next_poke_us(0, 1, -1, 1, 1, WEEK, 5500000, RESCHED_KEY), SEC(1));
}

static const UnitTest tests[] = {
    UNIT(test_every_rule_against_every_upstream_mix),
    UNIT(test_count_sorts_states_and_leaves_removed_out),
    UNIT(test_reason_names_the_rule_and_the_cause),
    UNIT(test_single_upstream_edges),
    UNIT(test_jitter_key_prints_the_date_as_python_str),
    UNIT(test_retry_delay_without_backoff_is_the_retry_delay),
    UNIT(test_retry_delay_doubles_with_jitter_up_to_a_day),
    UNIT(test_retry_delay_is_capped_by_max_retry_delay),
    UNIT(test_retry_delay_rounds_fractional_seconds_up),
    UNIT(test_should_retry_while_tries_remain),
    UNIT(test_priority_weights_on_a_diamond),
    UNIT(test_priority_weights_sum_relatives_own_weights_per_task_rule),
    UNIT(test_priority_weights_clamp_to_the_database_range),
    UNIT(test_sensor_without_backoff_pokes_every_interval),
    UNIT(test_sensor_backoff_in_poke_mode_grows_per_poke),
    UNIT(test_sensor_backoff_stops_at_the_timeout),
    UNIT(test_sensor_backoff_in_reschedule_mode_replays_the_pokes),
    {0},
};

UNIT_MAIN("rules", tests)
