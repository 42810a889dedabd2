/* run_follow — printing a run and following one to its end (`dags test`, `dags trigger
 * --wait`, `tasks states`). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/run_int.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "store/runs.h"
#include "store/ti.h"

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

/* Follow a run to its end: print each task as it finishes (text mode), return its state. */
RunState cli_follow_run(Store *s, Scheduler *sched, const char *dag_id, const char *run_id, int quiet)
{
    store_listen(s);
    char **seen = NULL;
    size_t n_seen = 0;
    RunState st = RUN_QUEUED;
    while (!cli_stop_flag) {
        int64_t next = util_now_us() + 200000;
        if (sched && sched_step(sched, &next) != 0) log_warn("scheduler", "%s", sched_error(sched));
        DagRun r;
        if (store_run_get(s, dag_id, run_id, &r) != 1) break;
        st = r.state;
        run_clear(&r);
        TaskInstance *tis;
        size_t n;
        store_ti_list_run(s, dag_id, run_id, &tis, &n);
        size_t total_done = 0;
        for (size_t i = 0; i < n; i++) total_done += ti_state_is_finished(tis[i].state);
        for (size_t i = 0; i < n; i++) {
            if (!ti_state_is_finished(tis[i].state)) continue;
            int known = 0;
            for (size_t j = 0; j < n_seen; j++) known |= strcmp(seen[j], tis[i].id) == 0;
            if (known) continue;
            seen = xrealloc(seen, (n_seen + 1) * sizeof *seen);
            seen[n_seen++] = xstrdup(tis[i].id);
            if (!quiet)
                fprintf(stderr, "  %-32s %-16s try %d  [%zu/%zu done]\n", tis[i].task_id,
                        ti_state_name(tis[i].state), tis[i].try_number, total_done, n);
        }
        ti_list_free(tis, n);
        if (st == RUN_SUCCESS || st == RUN_FAILED) break;
        int64_t wait = next - util_now_us();
        if (wait > 500000) wait = 500000;
        if (wait < 1000) wait = 1000;
        store_wait_change(s, (int)(wait / 1000), NULL, 0);
    }
    for (size_t i = 0; i < n_seen; i++) free(seen[i]);
    free(seen);
    return st;
}
