/* routes_ticlear — POST /api/v2/dags/{dag_id}/clearTaskInstances (ClearTaskInstancesBody),
 * as Airflow's REST API v2 does it: select instances of a DAG by run or logical-date range,
 * task ids (or [task_id, map_index] pairs) with their upstream / downstream tasks, and
 * failed / running states, then answer them (dry run, the default) or clear them for a
 * rerun, one transaction per run, their runs going back to queued when reset_dag_runs.
 *
 * Clearing goes through the store's guarded transition (store_tiq_clear_run, each instance
 * by store_ti_clear_for_rerun as `gust tasks clear` does): an instance is cleared only from
 * the state and try it was read in, so one a worker moved meanwhile is not. The answer is
 * the instances as they are after the clear. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/ti_common.h"
#include "api/ti_json.h"
#include "core/dag.h"
#include "core/util.h"
#include "store/runs.h"
#include "store/ti.h"
#include "store/tiquery.h"

/* One item of task_ids: a task id, or a [task_id, map_index] pair. */
typedef struct ClearPick {
    const char *task_id;
    int map_index; /* INT_MIN: every map index */
} ClearPick;

/* Per DAG version, which of its tasks the request selects (task_ids plus upstream /
 * downstream); versions are few, so a short list does. */
typedef struct VersionSel {
    const char *version_id;
    const Dag *dag;
    char *sel;
} VersionSel;

static int ti_picked(const TiqRow *w, const ClearPick *picks, size_t np, VersionSel **vs, size_t *nvs, Store *s,
                     int up, int down)
{
    if (!picks) return 1; /* no task_ids: every task */
    for (size_t i = 0; i < np; i++)
        if (strcmp(picks[i].task_id, w->ti.task_id) == 0 &&
            (picks[i].map_index == INT_MIN || picks[i].map_index == w->ti.map_index))
            return 1;
    if (!up && !down) return 0;
    const char *vid = w->ti.dag_version_id ? w->ti.dag_version_id : "";
    size_t k = 0;
    while (k < *nvs && strcmp((*vs)[k].version_id, vid) != 0) k++;
    if (k == *nvs) {
        *vs = xrealloc(*vs, (*nvs + 1) * sizeof **vs);
        VersionSel *v = &(*vs)[(*nvs)++];
        v->version_id = vid;
        v->dag = tij_dag(s, w->ti.dag_version_id);
        v->sel = NULL;
        if (v->dag) {
            v->sel = xcalloc(v->dag->n_tasks + 1, 1);
            for (size_t i = 0; i < np; i++) {
                long idx = tic_task_index(v->dag, picks[i].task_id);
                if (idx >= 0) v->sel[idx] = 1;
            }
            tic_dag_reach(v->dag, v->sel, up, down);
        }
    }
    VersionSel *v = &(*vs)[k];
    long idx = v->dag ? tic_task_index(v->dag, w->ti.task_id) : -1;
    return idx >= 0 && v->sel[idx] == 2;
}

/* POST /dags/{dag_id}/clearTaskInstances (ClearTaskInstancesBody) */
static void h_clear(ApiReq *r, ApiResp *out)
{
    if (!tic_params_ok(r, out)) return;
    const char *dag_id = r->params[0];
    cJSON *doc;
    if (api_body_object(r, out, &doc) != 0) return;
    static const char *const allowed[] = {
        "dry_run",          "start_date",         "end_date",       "only_failed",          "only_running",
        "reset_dag_runs",   "task_ids",           "dag_run_id",     "include_upstream",     "include_downstream",
        "include_future",   "include_past",       "run_on_latest_version", "prevent_running_task", NULL};
    int dry_run, only_failed, only_running, reset, up, down, future, past, prevent, latest;
    const char *run_id = NULL;
    int64_t from = TIQ_UNSET, to = TIQ_UNSET;
    ClearPick *picks = NULL;
    size_t np = 0;
    TiqRow *rows = NULL;
    size_t n = 0;
    VersionSel *vs = NULL;
    size_t nvs = 0;
    const char **tids = NULL;
    DagRun run;
    memset(&run, 0, sizeof run);
    Store *s = NULL;
    if (api_body_only(out, doc, allowed) || tic_b_bool(out, doc, "dry_run", 1, &dry_run) ||
        tic_b_bool(out, doc, "only_failed", 1, &only_failed) ||
        tic_b_bool(out, doc, "only_running", 0, &only_running) ||
        tic_b_bool(out, doc, "reset_dag_runs", 1, &reset) || tic_b_bool(out, doc, "include_upstream", 0, &up) ||
        tic_b_bool(out, doc, "include_downstream", 0, &down) || tic_b_bool(out, doc, "include_future", 0, &future) ||
        tic_b_bool(out, doc, "include_past", 0, &past) || tic_b_bool(out, doc, "prevent_running_task", 0, &prevent) ||
        tic_b_bool(out, doc, "run_on_latest_version", 0, &latest) || tic_b_str(out, doc, "dag_run_id", &run_id) ||
        tic_b_time(out, doc, "start_date", &from) || tic_b_time(out, doc, "end_date", &to))
        goto done;
    const cJSON *tj = tic_b_get(doc, "task_ids");
    if (tj) {
        if (!cJSON_IsArray(tj)) {
            api_error_422(out, "body", "task_ids", "Input should be a valid list");
            goto done;
        }
        int cnt = cJSON_GetArraySize(tj);
        picks = xcalloc((size_t)cnt + 1, sizeof *picks);
        const cJSON *it;
        cJSON_ArrayForEach(it, tj)
        {
            ClearPick *pk = &picks[np];
            if (cJSON_IsString(it) && tic_text_ok(it->valuestring)) {
                pk->task_id = it->valuestring;
                pk->map_index = INT_MIN;
            } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
                       cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                       tic_text_ok(cJSON_GetArrayItem(it, 0)->valuestring) &&
                       cJSON_IsNumber(cJSON_GetArrayItem(it, 1)) &&
                       cJSON_GetArrayItem(it, 1)->valuedouble == floor(cJSON_GetArrayItem(it, 1)->valuedouble) &&
                       fabs(cJSON_GetArrayItem(it, 1)->valuedouble) < 2e9) {
                pk->task_id = cJSON_GetArrayItem(it, 0)->valuestring;
                pk->map_index = (int)cJSON_GetArrayItem(it, 1)->valuedouble;
            } else {
                api_error_422(out, "body", "task_ids",
                              "Each item should be a task id or a [task_id, map_index] pair");
                goto done;
            }
            np++;
        }
    }
    if (!(s = tic_store(r, out))) goto done;
    if (tic_need_dag(out, s, dag_id) <= 0) goto done;
    if (run_id) {
        int found = store_run_get(s, dag_id, run_id, &run);
        if (found < 0) {
            api_store_error(out, s);
            goto done;
        }
        if (!found) {
            api_error(out, 404, "Dag Run id %s not found in dag %s", run_id, dag_id);
            goto done;
        }
        if ((past || future) && run.logical_date >= 0) {
            /* Airflow: the run's logical date bounds the other side */
            from = past ? TIQ_UNSET : run.logical_date;
            to = future ? TIQ_UNSET : run.logical_date;
            run_id = NULL;
        }
    }
    TiqFilter f;
    tiq_filter_init(&f);
    f.dag_id = dag_id;
    f.run_id = run_id;
    f.logical_date.gte = from;
    f.logical_date.lte = to;
    static const char *const failed_states[] = {"failed", "upstream_failed"};
    static const char *const running_states[] = {"running"};
    if (only_failed && only_running) {
        f.match_nothing = 1; /* as Airflow: both filters apply */
    } else if (only_failed) {
        f.states = failed_states;
        f.n_states = 2;
    } else if (only_running) {
        f.states = running_states;
        f.n_states = 1;
    }
    if (picks && !up && !down) {
        tids = xcalloc(np + 1, sizeof *tids);
        for (size_t i = 0; i < np; i++) tids[i] = picks[i].task_id;
        f.task_ids = tids;
        f.n_task_ids = np;
    }
    f.order_sql = TIQ_COL_RUN_AFTER ", ti.run_id, ti.task_id, ti.map_index";
    if (store_tiq_list(s, &f, &rows, &n, NULL) != 0) {
        api_store_error(out, s);
        goto done;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int keep = rows[i].ti.state != TI_NONE && rows[i].ti.state != TI_RESTARTING &&
                   ti_picked(&rows[i], picks, np, &vs, &nvs, s, up, down);
        if (keep)
            rows[k++] = rows[i];
        else
            tic_row_clear(&rows[i]);
    }
    n = k;
    if (prevent) {
        for (size_t i = 0; i < n; i++)
            if (rows[i].ti.state == TI_RUNNING) {
                api_error(out, 400, "Task is running, stopping attempt to clear: %s in run %s is running",
                          rows[i].ti.task_id, rows[i].ti.run_id);
                goto done;
            }
    }
    if (dry_run) {
        tij_answer(out, s, rows, n, (int64_t)n);
        goto done;
    }
    /* one transaction per run: its instances and the run itself */
    int cleared_total = 0, runs_queued = 0;
    const char **ids = xcalloc(n + 1, sizeof *ids);
    size_t nids = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && strcmp(rows[j].ti.run_id, rows[i].ti.run_id) == 0) j++;
        TiqChange *ch = xcalloc(j - i, sizeof *ch);
        for (size_t q = i; q < j; q++) {
            TiqChange *c = &ch[q - i];
            memcpy(c->id, rows[q].ti.id, sizeof c->id);
            c->from = rows[q].ti.state;
            c->try_number = rows[q].ti.try_number;
            const Dag *d = tij_dag(s, rows[q].ti.dag_version_id);
            const DagTask *t = d ? dag_find_task(d, rows[q].ti.task_id) : NULL;
            c->retries = t ? t->retries : -1;
        }
        int cleared = 0, requeued = 0;
        if (store_tiq_clear_run(s, dag_id, rows[i].ti.run_id, ch, j - i, reset, &cleared, &requeued) != 0) {
            free(ch);
            free(ids);
            api_store_error(out, s);
            goto done;
        }
        cleared_total += cleared;
        runs_queued += requeued;
        for (size_t q = i; q < j; q++) ids[nids++] = rows[q].ti.id;
        free(ch);
        i = j;
    }
    char extra[160];
    snprintf(extra, sizeof extra, "{\"cleared\":%d,\"runs_queued\":%d,\"selected\":%zu}", cleared_total, runs_queued,
             n);
    api_audit(r, "api.post_clear_task_instances", dag_id, run_id, NULL, extra);
    /* answer the instances as they are now (none, or restarting for a running one) */
    TiqFilter g;
    tiq_filter_init(&g);
    g.ids = ids;
    g.n_ids = nids;
    g.order_sql = f.order_sql;
    TiqRow *after = NULL;
    size_t na = 0;
    if (nids && store_tiq_list(s, &g, &after, &na, NULL) != 0)
        api_store_error(out, s);
    else
        tij_answer(out, s, after, na, (int64_t)na);
    tiq_rows_free(after, na);
    free(ids);
done:
    for (size_t i = 0; i < nvs; i++) free(vs[i].sel);
    free(vs);
    free(tids);
    free(picks);
    tiq_rows_free(rows, n);
    run_clear(&run);
    cJSON_Delete(doc);
}

const ApiRoute api_routes_ticlear[] = {
    {"POST", "/api/v2/dags/{dag_id}/clearTaskInstances", API_ROLE_USER, h_clear},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
