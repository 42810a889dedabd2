/* The store on both engines: schema and migrations, DAG versions, runs created once,
 * the task-instance state machine, the claim, the outbox, notifications, hostile strings. */
#include <signal.h>
#include <sys/wait.h>

#include "core/dagbag.h"
#include "core/util.h"
#include "store/dags.h"
#include "store/runs.h"
#include "store/ti.h"
#include "store_harness.h"

static Dag *load_dag(const char *yaml)
{
    DagBag b;
    dagbag_init(&b);
    DagLoadOptions opt = {.root = ".", .default_timezone = "UTC"};
    dagbag_load_text(&b, "t.yml", yaml, strlen(yaml), &opt);
    Dag *d = b.n_dags ? b.dags[0] : NULL;
    if (d) b.n_dags = 0; /* take it out of the bag */
    dagbag_free(&b);
    return d;
}

static const char DAG_YAML[] = "etl:\n  tasks:\n    - {task_id: extract, operator: empty}\n"
                               "    - {task_id: load, operator: empty, dependencies: [extract]}\n";

/* A DAG and one run with its instances; returns the run's id in run_pk. */
static int make_run(Store *s, const char *dag_id, const char *run_id, int64_t logical, char *run_pk)
{
    Dag *d = load_dag(DAG_YAML);
    free(d->dag_id);
    d->dag_id = xstrdup(dag_id);
    char version[33];
    int rc = store_dag_sync(s, d, 0, version, NULL);
    dag_free(d);
    if (rc != 0) return -1;
    TiSpec specs[] = {{"extract", 1, "default", "default_pool", 1, 2, "empty"},
                      {"load", 1, "default", "default_pool", 1, 1, "empty"}};
    RunSpec rs = {dag_id, run_id, "manual", logical, -1, -1, -1, NULL, NULL, "test", version, NULL};
    return store_run_create(s, &rs, specs, 2, run_pk);
}

static char *ti_id_of(Store *s, const char *dag_id, const char *run_id, const char *task_id)
{
    TaskInstance t;
    if (store_ti_get_by_key(s, dag_id, run_id, task_id, -1, &t) != 1) return NULL;
    char *id = xstrdup(t.id);
    ti_clear(&t);
    return id;
}

BOTH_DRIVERS(test_migrate_is_idempotent_and_check_reports_versions)
static void test_migrate_is_idempotent_and_check_reports_versions(Store *s)
{
    char msg[256];
    int applied = -1;
    CU_ASSERT_EQUAL(store_migrate(s, &applied), 0);
    CU_ASSERT_EQUAL(applied, 0);
    CU_ASSERT_EQUAL(store_check(s, msg, sizeof msg), 0);
    CU_ASSERT_EQUAL(store_schema_version(s), store_schema_target());
    /* a database from a newer gust is refused */
    StoreParam p[] = {SP_I(store_schema_target() + 1), SP_S("future"), SP_I(0)};
    CU_ASSERT_EQUAL(store_x(s, "INSERT INTO gust_schema (version, name, applied_at) VALUES (?, ?, ?)", p, 3, NULL), 0);
    CU_ASSERT_EQUAL(store_check(s, msg, sizeof msg), -1);
    ASSERT_CONTAINS(msg, "is newer than this gust");
    CU_ASSERT_EQUAL(store_migrate(s, NULL), -1);
    ASSERT_CONTAINS(store_last_error(s), "upgrade gust");
    /* an empty database asks for migrate */
    CU_ASSERT_EQUAL(store_reset(s), 0);
    CU_ASSERT_EQUAL(store_x(s, "DELETE FROM gust_schema", NULL, 0, NULL), 0);
    CU_ASSERT_EQUAL(store_check(s, msg, sizeof msg), -1);
    ASSERT_CONTAINS(msg, "run gust db migrate");
    int64_t pools = 0;
    store_q_int(s, "SELECT slots FROM slot_pool WHERE pool = 'default_pool'", NULL, 0, -1, &pools);
    CU_ASSERT_EQUAL(pools, 128);
}

BOTH_DRIVERS(test_dag_version_written_only_when_content_changes)
static void test_dag_version_written_only_when_content_changes(Store *s)
{
    Dag *d = load_dag(DAG_YAML);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    char v1[33], v2[33], v3[33];
    int nv = 0;
    CU_ASSERT_EQUAL(store_dag_sync(s, d, 1, v1, &nv), 0);
    CU_ASSERT_EQUAL(nv, 1);
    CU_ASSERT_EQUAL(store_dag_sync(s, d, 1, v2, &nv), 0);
    CU_ASSERT_EQUAL(nv, 0);
    ASSERT_STR_EQ(v1, v2);
    free(d->description);
    d->description = xstrdup("changed");
    CU_ASSERT_EQUAL(store_dag_sync(s, d, 1, v3, &nv), 0);
    CU_ASSERT_EQUAL(nv, 1);
    CU_ASSERT(strcmp(v1, v3) != 0);
    /* the old version stays readable: a run keeps the version it started with */
    char *old = store_dag_version_data(s, v1);
    CU_ASSERT_PTR_NOT_NULL(old);
    CU_ASSERT(old && strstr(old, "changed") == NULL);
    free(old);
    StoreDag sd;
    CU_ASSERT_EQUAL(store_dag_get(s, "etl", &sd), 1);
    CU_ASSERT_EQUAL(sd.is_paused, 1);
    ASSERT_STR_EQ(sd.latest_version_id, v3);
    store_dag_clear(&sd);
    CU_ASSERT_EQUAL(store_dag_set_paused(s, "etl", 0), 1);
    CU_ASSERT_EQUAL(store_dag_set_paused(s, "nope", 0), 0);
    dag_free(d);
}

BOTH_DRIVERS(test_a_run_is_created_once_by_id_and_by_logical_date)
static void test_a_run_is_created_once_by_id_and_by_logical_date(Store *s)
{
    CU_ASSERT_EQUAL(make_run(s, "etl", "scheduled__1", 1000, NULL), 1);
    /* same run id, or same logical date: nothing is created, from this or another connection */
    Store *s2 = harness_reopen(s);
    CU_ASSERT_EQUAL(make_run(s2, "etl", "scheduled__1", 2000, NULL), 0);
    CU_ASSERT_EQUAL(make_run(s2, "etl", "other", 1000, NULL), 0);
    ASSERT_CONTAINS(store_last_error(s2), "already has a run");
    store_free(s2);
    int64_t runs = 0, tis = 0;
    store_q_int(s, "SELECT COUNT(*) FROM dag_run", NULL, 0, -1, &runs);
    store_q_int(s, "SELECT COUNT(*) FROM task_instance", NULL, 0, -1, &tis);
    CU_ASSERT_EQUAL(runs, 1);
    CU_ASSERT_EQUAL(tis, 2);
}

/* Two processes creating the same runs at once create each exactly once. */
BOTH_DRIVERS(test_two_processes_creating_the_same_runs_create_each_once)
static void test_two_processes_creating_the_same_runs_create_each_once(Store *s)
{
    CU_ASSERT_EQUAL(make_run(s, "etl", "seed", 1, NULL), 1);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            char err[256];
            Store *c = store_open(s->url, err, sizeof err);
            int created = 0;
            for (int i = 0; c && i < 30; i++) {
                char run_id[32];
                snprintf(run_id, sizeof run_id, "scheduled__%d", i);
                TiSpec spec = {"extract", 0, NULL, NULL, 1, 1, "empty"};
                RunSpec rs = {"etl", run_id, "scheduled", 100 + i, -1, -1, -1, NULL, NULL, "test", NULL, NULL};
                if (store_run_create(c, &rs, &spec, 1, NULL) == 1) created++;
            }
            store_free(c);
            _exit(created);
        }
    }
    int total = 0;
    for (int k = 0; k < 2; k++) {
        int st;
        waitpid(kids[k], &st, 0);
        total += WIFEXITED(st) ? WEXITSTATUS(st) : 1000;
    }
    CU_ASSERT_EQUAL(total, 30);
    int64_t runs = 0;
    store_q_int(s, "SELECT COUNT(*) FROM dag_run WHERE run_id LIKE 'scheduled__%'", NULL, 0, -1, &runs);
    CU_ASSERT_EQUAL(runs, 30);
}

/* Put a task instance directly into a state, as a fixture. */
static void force_state(Store *s, const char *id, TiState st)
{
    StoreParam p[] = {st == TI_NONE ? SP_NIL : SP_S(ti_state_name(st)), SP_S(id)};
    CU_ASSERT_EQUAL(store_x(s, "UPDATE task_instance SET state = ? WHERE id = ?", p, 2, NULL), 0);
}

BOTH_DRIVERS(test_every_illegal_transition_is_refused_and_every_legal_one_made)
static void test_every_illegal_transition_is_refused_and_every_legal_one_made(Store *s)
{
    CU_ASSERT_EQUAL_FATAL(make_run(s, "etl", "r", 1, NULL), 1);
    char *id = ti_id_of(s, "etl", "r", "extract");
    CU_ASSERT_PTR_NOT_NULL_FATAL(id);
    int checked = 0, legal = 0;
    for (int from = 0; from < TI__COUNT; from++) {
        for (int to = 0; to < TI__COUNT; to++) {
            force_state(s, id, (TiState)from);
            int rc = store_ti_set_state(s, id, -1, (TiState)to, -1);
            TaskInstance t;
            store_ti_get(s, id, &t);
            int want = ti_transition_allowed((TiState)from, (TiState)to);
            if (rc != want || t.state != (want ? (TiState)to : (TiState)from))
                fprintf(stderr, "\n  %s -> %s: rc %d, now %s", ti_state_name((TiState)from), ti_state_name((TiState)to),
                        rc, ti_state_name(t.state));
            CU_ASSERT_EQUAL(rc, want);
            CU_ASSERT_EQUAL(t.state, want ? (TiState)to : (TiState)from);
            if (!want) ASSERT_CONTAINS(store_last_error(s), "cannot become");
            legal += want;
            checked++;
            ti_clear(&t);
        }
    }
    CU_ASSERT_EQUAL(checked, TI__COUNT * TI__COUNT);
    /* the machine's own path is legal; skipping steps is not */
    CU_ASSERT(ti_transition_allowed(TI_SCHEDULED, TI_QUEUED));
    CU_ASSERT(ti_transition_allowed(TI_QUEUED, TI_RUNNING));
    CU_ASSERT(!ti_transition_allowed(TI_SCHEDULED, TI_RUNNING));
    CU_ASSERT(!ti_transition_allowed(TI_NONE, TI_RUNNING));
    CU_ASSERT(!ti_transition_allowed(TI_SUCCESS, TI_RUNNING));
    CU_ASSERT(legal > 0 && legal < checked);
    free(id);
}

BOTH_DRIVERS(test_enqueue_claim_finish_follow_one_try)
static void test_enqueue_claim_finish_follow_one_try(Store *s)
{
    CU_ASSERT_EQUAL_FATAL(make_run(s, "etl", "r", 1, NULL), 1);
    char *id = ti_id_of(s, "etl", "r", "extract");
    CU_ASSERT_EQUAL(store_ti_enqueue(s, id, 5), 0); /* not scheduled yet */
    CU_ASSERT_EQUAL(store_ti_set_state(s, id, -1, TI_SCHEDULED, -1), 1);
    CU_ASSERT_EQUAL(store_ti_enqueue(s, id, 5), 1);
    TaskInstance t;
    store_ti_get(s, id, &t);
    CU_ASSERT_EQUAL(t.state, TI_QUEUED);
    CU_ASSERT_EQUAL(t.try_number, 1);
    ti_clear(&t);
    OutboxItem *items;
    size_t n;
    CU_ASSERT_EQUAL(store_outbox_take(s, 10, 60LL * 1000000, &items, &n), 0);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    ASSERT_STR_EQ(items[0].ti_id, id);
    CU_ASSERT_EQUAL(items[0].try_number, 1);
    ASSERT_STR_EQ(items[0].queue, "default");
    outbox_free(items, n);
    /* leased: a second publisher sees nothing until the lease runs out */
    CU_ASSERT_EQUAL(store_outbox_take(s, 10, 60LL * 1000000, &items, &n), 0);
    CU_ASSERT_EQUAL(n, 0);
    outbox_free(items, n);
    /* the wrong try loses the claim, the right one wins it once */
    CU_ASSERT_EQUAL(store_ti_claim(s, id, 2, "host", "w1", 42), 0);
    ASSERT_CONTAINS(store_last_error(s), "is on try 1, not 2");
    CU_ASSERT_EQUAL(store_ti_claim(s, id, 1, "host", "w1", 42), 1);
    CU_ASSERT_EQUAL(store_ti_claim(s, id, 1, "host", "w2", 43), 0);
    CU_ASSERT_EQUAL(store_ti_heartbeat(s, id, 1), 1);
    int64_t left = -1;
    store_q_int(s, "SELECT COUNT(*) FROM outbox", NULL, 0, -1, &left);
    CU_ASSERT_EQUAL(left, 0); /* the claim removed it */
    CU_ASSERT_EQUAL(store_ti_finish(s, id, 1, TI_UP_FOR_RETRY, 123456), 1);
    CU_ASSERT_EQUAL(store_ti_finish(s, id, 1, TI_SUCCESS, -1), 0); /* already finished */
    store_ti_get(s, id, &t);
    CU_ASSERT_EQUAL(t.state, TI_UP_FOR_RETRY);
    CU_ASSERT_EQUAL(t.next_attempt_at, 123456);
    CU_ASSERT_PTR_NULL(t.worker_id);
    ti_clear(&t);
    int64_t hist = 0;
    store_q_int(s, "SELECT COUNT(*) FROM task_instance_history WHERE state = 'up_for_retry' AND try_number = 1", NULL,
                0, -1, &hist);
    CU_ASSERT_EQUAL(hist, 1);
    CU_ASSERT_EQUAL(store_ti_heartbeat(s, id, 1), 0);
    free(id);
}

/* Many processes race to claim the same try: exactly one wins. */
BOTH_DRIVERS(test_racing_claims_have_exactly_one_winner)
static void test_racing_claims_have_exactly_one_winner(Store *s)
{
    CU_ASSERT_EQUAL_FATAL(make_run(s, "etl", "r", 1, NULL), 1);
    char *id = ti_id_of(s, "etl", "r", "extract");
    store_ti_set_state(s, id, -1, TI_SCHEDULED, -1);
    store_ti_enqueue(s, id, 0);
    enum { K = 6 };
    pid_t kids[K];
    for (int k = 0; k < K; k++) {
        kids[k] = fork();
        if (kids[k] == 0) {
            char err[256], wid[16];
            snprintf(wid, sizeof wid, "w%d", k);
            Store *c = store_open(s->url, err, sizeof err);
            int won = c ? store_ti_claim(c, id, 1, "host", wid, getpid()) : -1;
            store_free(c);
            _exit(won == 1 ? 1 : won == 0 ? 0 : 9);
        }
    }
    int winners = 0, errors = 0;
    for (int k = 0; k < K; k++) {
        int st;
        waitpid(kids[k], &st, 0);
        int code = WIFEXITED(st) ? WEXITSTATUS(st) : 9;
        winners += code == 1;
        errors += code == 9;
    }
    CU_ASSERT_EQUAL(winners, 1);
    CU_ASSERT_EQUAL(errors, 0);
    free(id);
}

/* Two publishers taking from the outbox at once never get the same row. */
BOTH_DRIVERS(test_two_publishers_never_take_the_same_outbox_row)
static void test_two_publishers_never_take_the_same_outbox_row(Store *s)
{
    enum { RUNS = 40 };
    for (int i = 0; i < RUNS; i++) {
        char run_id[32];
        snprintf(run_id, sizeof run_id, "r%d", i);
        CU_ASSERT_EQUAL_FATAL(make_run(s, "etl", run_id, 1000 + i, NULL), 1);
        char *id = ti_id_of(s, "etl", run_id, "extract");
        store_ti_set_state(s, id, -1, TI_SCHEDULED, -1);
        store_ti_enqueue(s, id, 0);
        free(id);
    }
    int fds[2][2];
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        if (pipe(fds[k]) != 0) CU_FAIL_FATAL("pipe");
        kids[k] = fork();
        if (kids[k] == 0) {
            close(fds[k][0]);
            char err[256];
            Store *c = store_open(s->url, err, sizeof err);
            for (int round = 0; c && round < 20; round++) {
                OutboxItem *items;
                size_t n;
                if (store_outbox_take(c, 3, 600LL * 1000000, &items, &n) != 0) break;
                for (size_t i = 0; i < n; i++) {
                    if (write(fds[k][1], items[i].ti_id, 32) != 32) _exit(2);
                }
                outbox_free(items, n);
            }
            store_free(c);
            _exit(0);
        }
        close(fds[k][1]);
    }
    char seen[RUNS * 2][33];
    int n_seen = 0;
    for (int k = 0; k < 2; k++) {
        char buf[33];
        buf[32] = '\0';
        while (read(fds[k][0], buf, 32) == 32 && n_seen < RUNS * 2) memcpy(seen[n_seen++], buf, 33);
        close(fds[k][0]);
        waitpid(kids[k], NULL, 0);
    }
    int dups = 0;
    for (int i = 0; i < n_seen; i++)
        for (int j = i + 1; j < n_seen; j++) dups += strcmp(seen[i], seen[j]) == 0;
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT_EQUAL(n_seen, RUNS);
}

BOTH_DRIVERS(test_finishing_a_try_notifies_a_listener)
static void test_finishing_a_try_notifies_a_listener(Store *s)
{
    CU_ASSERT_EQUAL_FATAL(make_run(s, "etl", "r", 1, NULL), 1);
    char *id = ti_id_of(s, "etl", "r", "extract");
    Store *l = harness_reopen(s);
    CU_ASSERT_EQUAL_FATAL(store_listen(l), 0);
    char payload[128];
    while (store_wait_change(l, 10, payload, sizeof payload) == 1) {} /* drain */
    CU_ASSERT_EQUAL(store_wait_change(l, 50, payload, sizeof payload), 0);
    CU_ASSERT_EQUAL(store_ti_set_state(s, id, -1, TI_SCHEDULED, -1), 1);
    CU_ASSERT_EQUAL(store_wait_change(l, 2000, payload, sizeof payload), 1);
    store_free(l);
    free(id);
}

BOTH_DRIVERS(test_hostile_ids_round_trip_exactly)
static void test_hostile_ids_round_trip_exactly(Store *s)
{
    const char *const ids[] = {"it's", "x'; DROP TABLE dag_run; --", "what?", "back\\slash", "ünïcødé-日本",
                               "\"quoted\""};
    for (size_t i = 0; i < GUST_ARRAY_LEN(ids); i++) {
        CU_ASSERT_EQUAL(make_run(s, ids[i], ids[i], 1, NULL), 1);
        DagRun r;
        CU_ASSERT_EQUAL_FATAL(store_run_get(s, ids[i], ids[i], &r), 1);
        ASSERT_STR_EQ(r.dag_id, ids[i]);
        ASSERT_STR_EQ(r.run_id, ids[i]);
        run_clear(&r);
        TaskInstance *tis;
        size_t n;
        CU_ASSERT_EQUAL(store_ti_list_run(s, ids[i], ids[i], &tis, &n), 0);
        CU_ASSERT_EQUAL(n, 2);
        ti_list_free(tis, n);
    }
    int64_t tables = 0;
    store_q_int(s, "SELECT COUNT(*) FROM dag_run", NULL, 0, -1, &tables);
    CU_ASSERT_EQUAL(tables, (int64_t)GUST_ARRAY_LEN(ids));
}

BOTH_DRIVERS(test_runs_lock_and_state_changes_are_guarded)
static void test_runs_lock_and_state_changes_are_guarded(Store *s)
{
    CU_ASSERT_EQUAL_FATAL(make_run(s, "etl", "r1", 1, NULL), 1);
    CU_ASSERT_EQUAL_FATAL(make_run(s, "etl", "r2", 2, NULL), 1);
    CU_ASSERT_EQUAL(store_run_set_state(s, "etl", "r1", RUN_SUCCESS), 1);
    CU_ASSERT_EQUAL(store_run_set_state(s, "etl", "r1", RUN_RUNNING), 0);
    ASSERT_CONTAINS(store_last_error(s), "is success; it cannot become running");
    CU_ASSERT_EQUAL(store_run_set_state(s, "etl", "r2", RUN_RUNNING), 1);
    DagRun *runs;
    size_t n;
    CU_ASSERT_EQUAL(store_begin(s->conn), 0);
    CU_ASSERT_EQUAL(store_runs_lock_active(s, 10, &runs, &n), 0);
    CU_ASSERT_EQUAL(n, 1);
    if (n) ASSERT_STR_EQ(runs[0].run_id, "r2");
    run_list_free(runs, n);
    if (!store_is_sqlite(s)) {
        /* while this transaction holds r2, another scheduler skips it */
        Store *o = harness_reopen(s);
        CU_ASSERT_EQUAL(store_begin(o->conn), 0);
        CU_ASSERT_EQUAL(store_runs_lock_active(o, 10, &runs, &n), 0);
        CU_ASSERT_EQUAL(n, 0);
        run_list_free(runs, n);
        store_rollback(o->conn);
        store_free(o);
    }
    CU_ASSERT_EQUAL(store_commit(s->conn), 0);
    char rid[64];
    run_id_make("scheduled", 1704067200000000LL, rid, sizeof rid);
    ASSERT_STR_EQ(rid, "scheduled__2024-01-01T00:00:00+00:00");
}

/* PostgreSQL restarted in the middle of a sequence of store calls: every call of the
 * sequence still completes (store_tx retries a transaction the restart broke). */
static void test_sequence_survives_a_postgres_restart(void)
{
    const char *restart = getenv("GUST_TEST_PG_RESTART");
    Store *s = harness_open(1);
    if (!s) return;
    if (!restart) {
        CU_FAIL("GUST_TEST_PG_RESTART is not set: run eval \"$(tests/services.sh env)\"");
        store_free(s);
        return;
    }
    enum { RUNS = 60 };
    pid_t kid = fork();
    if (kid == 0) {
        usleep(150 * 1000);
        _exit(system(restart) == 0 ? 0 : 1);
    }
    int ok = 0;
    for (int i = 0; i < RUNS; i++) {
        char run_id[32];
        snprintf(run_id, sizeof run_id, "r%d", i);
        int rc = make_run(s, "etl", run_id, 5000 + i, NULL);
        if (rc != 1) fprintf(stderr, "\n  run %d: %d %s", i, rc, store_last_error(s));
        char *id = rc == 1 ? ti_id_of(s, "etl", run_id, "extract") : NULL;
        if (id && store_ti_set_state(s, id, -1, TI_SCHEDULED, -1) == 1 && store_ti_enqueue(s, id, 0) == 1 &&
            store_ti_claim(s, id, 1, "h", "w", 1) == 1 && store_ti_finish(s, id, 1, TI_SUCCESS, -1) == 1)
            ok++;
        else if (id)
            fprintf(stderr, "\n  run %d: %s", i, store_last_error(s));
        free(id);
        usleep(10 * 1000);
    }
    int st = 0;
    waitpid(kid, &st, 0);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CU_ASSERT_EQUAL(ok, RUNS);
    int64_t done = 0;
    store_q_int(s, "SELECT COUNT(*) FROM task_instance WHERE state = 'success'", NULL, 0, -1, &done);
    CU_ASSERT_EQUAL(done, RUNS);
    store_free(s);
}

BOTH_DRIVERS(test_hostile_task_ids_round_trip_exactly)
static void test_hostile_task_ids_round_trip_exactly(Store *s)
{
    const char *const tasks[] = {"it's", "x'; DROP TABLE task_instance; --", "what?", "ünïcødé-日本", "a\\b"};
    TiSpec specs[5];
    for (int i = 0; i < 5; i++) specs[i] = (TiSpec){tasks[i], 0, NULL, NULL, 1, 1, "empty"};
    CU_ASSERT_EQUAL_FATAL(make_run(s, "etl", "seed", 1, NULL), 1);
    RunSpec rs = {"etl", "hostile", "manual", 2, -1, -1, -1, "{\"k\": \"'; --\"}", NULL, "test", NULL, NULL};
    CU_ASSERT_EQUAL_FATAL(store_run_create(s, &rs, specs, 5, NULL), 1);
    for (int i = 0; i < 5; i++) {
        TaskInstance t;
        CU_ASSERT_EQUAL(store_ti_get_by_key(s, "etl", "hostile", tasks[i], -1, &t), 1);
        ASSERT_STR_EQ(t.task_id, tasks[i]);
        ti_clear(&t);
    }
    DagRun r;
    CU_ASSERT_EQUAL(store_run_get(s, "etl", "hostile", &r), 1);
    ASSERT_STR_EQ(r.conf, "{\"k\": \"'; --\"}");
    run_clear(&r);
}

/* Cleared while it ran: the try's end makes the instance run again, whatever its outcome. */
BOTH_DRIVERS(test_a_try_ending_while_restarting_goes_up_for_retry)
static void test_a_try_ending_while_restarting_goes_up_for_retry(Store *s)
{
    CU_ASSERT_EQUAL_FATAL(make_run(s, "etl", "r", 1, NULL), 1);
    char *id = ti_id_of(s, "etl", "r", "extract");
    store_ti_set_state(s, id, -1, TI_SCHEDULED, -1);
    store_ti_enqueue(s, id, 0);
    CU_ASSERT_EQUAL(store_ti_claim(s, id, 1, "h", "w", 1), 1);
    CU_ASSERT_EQUAL(store_ti_set_state(s, id, -1, TI_RESTARTING, -1), 1);
    CU_ASSERT_EQUAL(store_ti_heartbeat(s, id, 1), 0); /* the worker learns it should stop */
    CU_ASSERT_EQUAL(store_ti_finish(s, id, 1, TI_SUCCESS, -1), 1);
    TaskInstance t;
    store_ti_get(s, id, &t);
    CU_ASSERT_EQUAL(t.state, TI_UP_FOR_RETRY);
    CU_ASSERT(t.next_attempt_at > 0 && t.next_attempt_at <= util_now_us());
    ti_clear(&t);
    free(id);
}

static const UnitTest tests[] = {
    UNIT2(test_a_try_ending_while_restarting_goes_up_for_retry),
    UNIT(test_sequence_survives_a_postgres_restart),
    UNIT2(test_hostile_task_ids_round_trip_exactly),
    UNIT2(test_migrate_is_idempotent_and_check_reports_versions),
    UNIT2(test_dag_version_written_only_when_content_changes),
    UNIT2(test_a_run_is_created_once_by_id_and_by_logical_date),
    UNIT2(test_two_processes_creating_the_same_runs_create_each_once),
    UNIT2(test_every_illegal_transition_is_refused_and_every_legal_one_made),
    UNIT2(test_enqueue_claim_finish_follow_one_try),
    UNIT2(test_racing_claims_have_exactly_one_winner),
    UNIT2(test_two_publishers_never_take_the_same_outbox_row),
    UNIT2(test_finishing_a_try_notifies_a_listener),
    UNIT2(test_hostile_ids_round_trip_exactly),
    UNIT2(test_runs_lock_and_state_changes_are_guarded),
    {0},
};

UNIT_MAIN("store", tests)
