/* run_follow — printing a run (`tasks states`, the end of `dags test` and `dags trigger
 * --wait`) and following one to its end at a cost per poll that does not grow with the run
 * (see "following a run" below). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/run_int.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "store/runs.h"
#include "store/ti.h"
#include "store/tiquery.h"

/* 0 the run succeeded, 1 it did not (yet), -1 it does not exist or cannot be read. */
int cli_print_run(Store *s, const char *dag_id, const char *run_id, int json)
{
    DagRun r;
    int found = store_run_get(s, dag_id, run_id, &r);
    if (found != 1) {
        if (found < 0) fprintf(stderr, "gust: %s\n", store_last_error(s));
        else fprintf(stderr, "gust: DAG %s has no run %s\n", dag_id, run_id);
        return -1;
    }
    TaskInstance *tis;
    size_t n;
    if (store_ti_list_run(s, dag_id, run_id, &tis, &n) != 0) {
        fprintf(stderr, "gust: %s\n", store_last_error(s));
        run_clear(&r);
        return -1;
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dag_id", dag_id);
        cJSON_AddStringToObject(o, "run_id", run_id);
        cJSON_AddStringToObject(o, "state", run_state_name(r.state));
        cJSON *arr = cJSON_AddArrayToObject(o, "tasks");
        for (size_t i = 0; i < n; i++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "task_id", tis[i].task_id);
            if (tis[i].state == TI_NONE) cJSON_AddNullToObject(t, "state");
            else cJSON_AddStringToObject(t, "state", ti_state_name(tis[i].state));
            cJSON_AddNumberToObject(t, "try_number", tis[i].try_number);
            cli_iso_or_null(t, "start_date", tis[i].start_date);
            cli_iso_or_null(t, "end_date", tis[i].end_date);
            cJSON_AddItemToArray(arr, t);
        }
        char *text = cJSON_Print(o);
        puts(text);
        free(text);
        cJSON_Delete(o);
    } else {
        printf("%s %s: %s\n", dag_id, run_id, run_state_name(r.state));
        for (size_t i = 0; i < n; i++) {
            char sd[48] = "-", ed[48] = "-";
            if (tis[i].start_date >= 0) time_format_iso(tis[i].start_date, 1, sd, sizeof sd);
            if (tis[i].end_date >= 0) time_format_iso(tis[i].end_date, 1, ed, sizeof ed);
            printf("  %-32s %-18s try %d  %s  %s\n", tis[i].task_id, ti_state_name(tis[i].state), tis[i].try_number,
                   sd, ed);
        }
    }
    int ok = r.state == RUN_SUCCESS;
    ti_list_free(tis, n);
    run_clear(&r);
    return ok ? 0 : 1;
}

/* ---- following a run ---------------------------------------------------------------------
 *
 * A follower must cost the same per poll whatever the run's size: a run of 10,000 tasks is
 * followed by reading its state and one GROUP BY of its instances' states (at most
 * TI__COUNT rows), never the instances themselves; the full list is read once, at the end,
 * by cli_print_run. Progress is one line each time the counts change, plus the names of
 * newly failed instances (a bounded query, only when the failed count rose).
 *
 * Polls are woken by the store's change notifications, which a busy run sends by the
 * thousand a second: reads are at least FOLLOW_MIN_GAP_US apart, the notifications that
 * arrive in between are taken in one go after the gap (not one wake-up each), and without
 * any notification the follower still reads every FOLLOW_MAX_WAIT_US. A scheduler stepped
 * here (dags test) is stepped as often as it asks and on every change, independently of the
 * reads. */

#define FOLLOW_MIN_GAP_US 50000LL   /* at most 20 reads a second */
#define FOLLOW_MAX_WAIT_US 500000LL /* at least 2 a second */
#define FOLLOW_MAX_FAILED_NAMED 10  /* failed instances named per poll */

typedef struct Follow {
    Store *s;
    const char *dag_id, *run_id;
    int64_t counts[TI__COUNT]; /* as last shown; counts[0] = -1 before the first */
} Follow;

static int64_t finished_of(const int64_t *c)
{
    int64_t n = 0;
    for (int st = 0; st < TI__COUNT; st++)
        if (ti_state_is_finished((TiState)st)) n += c[st];
    return n;
}

/* Name the instances that failed since the last poll (newest last), at most a few. */
static void follow_name_failed(Follow *f, int64_t rose, int64_t done, int64_t total)
{
    const char *failed[] = {"failed"};
    TiqFilter q;
    tiq_filter_init(&q);
    q.dag_id = f->dag_id;
    q.run_id = f->run_id;
    q.states = failed;
    q.n_states = 1;
    q.order_sql = TIQ_COL_END " DESC";
    q.limit = rose < FOLLOW_MAX_FAILED_NAMED ? (int)rose : FOLLOW_MAX_FAILED_NAMED;
    TiqRow *rows;
    size_t n;
    if (store_tiq_list(f->s, &q, &rows, &n, NULL) != 0) return; /* only progress: the final list names them */
    for (size_t i = n; i-- > 0;)
        fprintf(stderr, "  %-32s %-16s try %d  [%lld/%lld done]\n", rows[i].ti.task_id, ti_state_name(rows[i].ti.state),
                rows[i].ti.try_number, (long long)done, (long long)total);
    if (rose > (int64_t)n) fprintf(stderr, "  ... and %lld more failed\n", (long long)(rose - (int64_t)n));
    tiq_rows_free(rows, n);
}

/* One line when the counts changed since the last one: "[done/total done]  state n ...". */
static void follow_progress(Follow *f, const int64_t *c)
{
    if (f->counts[0] >= 0 && memcmp(f->counts, c, sizeof f->counts) == 0) return;
    int64_t total = 0, done = finished_of(c);
    for (int st = 0; st < TI__COUNT; st++) total += c[st];
    int64_t rose = f->counts[0] < 0 ? c[TI_FAILED] : c[TI_FAILED] - f->counts[TI_FAILED];
    if (rose > 0) follow_name_failed(f, rose, done, total);
    StrBuf line = {0};
    sb_printf(&line, "  [%lld/%lld done]", (long long)done, (long long)total);
    for (int st = 0; st < TI__COUNT; st++)
        if (c[st]) sb_printf(&line, "  %s %lld", ti_state_name((TiState)st), (long long)c[st]);
    fprintf(stderr, "%s\n", sb_str(&line));
    sb_free(&line);
    memcpy(f->counts, c, sizeof f->counts);
}

RunState cli_follow_run(Store *s, Scheduler *sched, const char *dag_id, const char *run_id, int quiet)
{
    store_listen(s);
    Follow f = {.s = s, .dag_id = dag_id, .run_id = run_id};
    f.counts[0] = -1;
    RunState st = RUN_QUEUED;
    int64_t last_read = INT64_MIN / 2;
    int pending = 1; /* something may have changed since the last read */
    while (!cli_stop_flag) {
        int64_t next = util_now_us() + 200000;
        if (sched && sched_step(sched, &next) != 0) log_warn("scheduler", "%s", sched_error(sched));
        int64_t now = util_now_us();
        if (pending && now - last_read >= FOLLOW_MIN_GAP_US) {
            last_read = now;
            pending = 0;
            DagRun r;
            if (store_run_get(s, dag_id, run_id, &r) != 1) break;
            st = r.state;
            run_clear(&r);
            int64_t counts[TI__COUNT];
            if (!quiet && store_tiq_run_state_counts(s, dag_id, run_id, counts) == 0) follow_progress(&f, counts);
            if (st == RUN_SUCCESS || st == RUN_FAILED) break;
        }
        if (pending && !sched) {
            /* a change came too soon after the last read: sleep out the gap instead of waking
             * for every notification that follows, then drop what arrived meanwhile (the read
             * covers it; each is taken from what the connection has already received) */
            int64_t left = last_read + FOLLOW_MIN_GAP_US - util_now_us();
            if (left > 0) usleep((useconds_t)left);
            while (store_wait_change(s, 0, NULL, 0) > 0) {}
            continue;
        }
        /* wait for a change, the scheduler's next step or the fallback read; with a scheduler
         * to step (dags test), every change wakes it, and a change that comes too soon after
         * a read waits out the gap */
        int64_t until = now + FOLLOW_MAX_WAIT_US;
        if (sched && next < until) until = next;
        if (pending && last_read + FOLLOW_MIN_GAP_US < until) until = last_read + FOLLOW_MIN_GAP_US;
        int64_t wait = until - util_now_us();
        if (wait < 1000) wait = 1000;
        int changed = store_wait_change(s, (int)(wait / 1000), NULL, 0);
        if (changed < 0) usleep((useconds_t)wait); /* the store is unreachable: no busy loop meanwhile */
        if (changed != 0 || util_now_us() - last_read >= FOLLOW_MAX_WAIT_US) pending = 1;
    }
    return st;
}
