/* routes_tis — task instances in the REST API, as Airflow's REST API v2 lists them: the list
 * of a run (and across runs and DAGs with "~"), the POST .../taskInstances/list batch form,
 * the mapped instances of a task (listMapped) and one instance (with or without its
 * map_index in the path).
 *
 * Its siblings hold the rest of a task instance: routes_timark.c marks states (PATCH),
 * routes_ticlear.c clears (clearTaskInstances), routes_tilogs.c answers tries and logs,
 * routes_tideps.c dependencies and links, routes_xcom.c XComs; what they share is in
 * ti_common.c (requests) and ti_json.c (the TaskInstanceResponse every one of them answers).
 *
 * Reads go through store/tiquery.h: a list is one query for the page and one COUNT, with
 * the run's dates and the DAG version joined in. Filters are checked before the store sees
 * them (422 in FastAPI's shape), and order_by is mapped onto a whitelist of columns, so no
 * text of the request reaches the SQL but as a bound parameter. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/ti_common.h"
#include "api/ti_json.h"
#include "core/config.h"
#include "core/operator.h"
#include "core/util.h"
#include "store/store.h"
#include "store/tiquery.h"

#define MAX_VALUES 128 /* values of one repeated filter */

/* Airflow's TaskInstanceState values (the API's enum); "none" is JSON null. */
static const char *const AIRFLOW_STATES[] = {"removed",      "scheduled",         "queued",          "running",
                                             "success",      "restarting",        "failed",          "up_for_retry",
                                             "up_for_reschedule", "upstream_failed", "skipped", "deferred", NULL};

/* ---- list filters from the query -------------------------------------------------------- */

typedef struct ListArgs {
    TiqFilter f;
    const char *task_id;
    const char *states[MAX_VALUES + 1], *pools[MAX_VALUES + 1], *queues[MAX_VALUES + 1];
    const char *execs[MAX_VALUES + 1], *ops[MAX_VALUES + 1], *dag_ids[MAX_VALUES + 1];
    const char *run_ids[MAX_VALUES + 1], *task_ids[MAX_VALUES + 1];
    int64_t tries[MAX_VALUES + 1], maps[MAX_VALUES + 1], versions[MAX_VALUES + 1];
    char order[2048];
} ListArgs;

/* state names as the API takes them: Airflow's enum, and "none"/"no_status"/"null" for no
 * state. Written back as the store spells them. 0, or -1 after answering 422. */
static int norm_states(ApiResp *out, const char *where, const char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!*v[i] || strcmp(v[i], "none") == 0 || strcmp(v[i], "no_status") == 0 || strcmp(v[i], "null") == 0) {
            v[i] = "none";
            continue;
        }
        int ok = 0;
        for (int k = 0; AIRFLOW_STATES[k]; k++) ok |= strcmp(AIRFLOW_STATES[k], v[i]) == 0;
        if (!ok) {
            api_error_422(out, where, "state",
                          "Invalid value for state '%s'. Valid values are: no_status, removed, scheduled, queued, "
                          "running, success, restarting, failed, up_for_retry, up_for_reschedule, upstream_failed, "
                          "skipped, deferred",
                          v[i]);
            return -1;
        }
    }
    return 0;
}

/* Operators as the API names them (class names, class paths or gust's short names) to the
 * short names the store keeps; an unknown one stays as given and matches nothing. */
static void norm_ops(const char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const OperatorDef *d = operator_find(v[i]);
        if (d) v[i] = d->name;
    }
}

static int q_strs(ApiReq *r, ApiResp *out, const char *name, const char **vals, size_t *n)
{
    int k = api_query_all(r, name, vals, MAX_VALUES + 1);
    if (k > MAX_VALUES) {
        api_error_422(out, "query", name, "At most %d values are accepted", MAX_VALUES);
        return -1;
    }
    for (int i = 0; i < k; i++)
        if (!tic_text_ok(vals[i])) {
            api_error_422(out, "query", name, "Input should be valid UTF-8 text");
            return -1;
        }
    *n = (size_t)k;
    return 0;
}

static int q_ints(ApiReq *r, ApiResp *out, const char *name, int64_t *vals, size_t *n)
{
    const char *t[MAX_VALUES + 1];
    int k = api_query_all(r, name, t, MAX_VALUES + 1);
    if (k > MAX_VALUES) {
        api_error_422(out, "query", name, "At most %d values are accepted", MAX_VALUES);
        return -1;
    }
    for (int i = 0; i < k; i++) {
        char *end;
        errno = 0;
        long long x = strtoll(t[i], &end, 10);
        if (errno || end == t[i] || *end) {
            api_error_422(out, "query", name, "Input should be a valid integer, unable to parse string as an integer");
            return -1;
        }
        vals[i] = x;
    }
    *n = (size_t)k;
    return 0;
}
static int q_times(ApiReq *r, ApiResp *out, const char *base, TiqRange *g)
{
    static const char *const sfx[] = {"_gte", "_gt", "_lte", "_lt"};
    int64_t *dst[] = {&g->gte, &g->gt, &g->lte, &g->lt};
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s", base, sfx[i]);
        int64_t us;
        int rc = api_query_time(r, out, name, &us);
        if (rc < 0) return -1;
        if (rc == 1) *dst[i] = us;
    }
    return 0;
}

static int q_durations(ApiReq *r, ApiResp *out, TiqRange *g)
{
    static const char *const names[] = {"duration_gte", "duration_gt", "duration_lte", "duration_lt"};
    int64_t *dst[] = {&g->gte, &g->gt, &g->lte, &g->lt};
    for (int i = 0; i < 4; i++) {
        const char *t = api_query(r, names[i]);
        if (!t) continue;
        char *end;
        errno = 0;
        double v = strtod(t, &end);
        if (errno || end == t || *end || !isfinite(v)) {
            api_error_422(out, "query", names[i], "Input should be a valid number, unable to parse string as a number");
            return -1;
        }
        *dst[i] = tic_ll_clamp(v * 1e6);
    }
    return 0;
}

/* order_by: Airflow's names, one or more ("-" for descending), each mapped to a column;
 * NULLs sort last ascending and first descending on both engines (PostgreSQL's default),
 * and text sorts bytewise on both. Ties end on the instance's key, so pages never overlap. */
static const char *const ORDER_NAMES[] = {
    "id",         "state",          "duration",  "start_date",          "end_date",          "map_index",
    "try_number", "logical_date",   "run_after", "data_interval_start", "data_interval_end", "rendered_map_index",
    "operator",   "task_id",        "dag_id",    "run_id",              "dag_run_id",        "pool",
    "queue",      "priority_weight", NULL};
static const char *const ORDER_COLS[] = {
    TIQ_COL_ID,  TIQ_COL_STATE,    TIQ_COL_DURATION,  TIQ_COL_START,    TIQ_COL_END,       TIQ_COL_MAP_INDEX,
    TIQ_COL_TRY, TIQ_COL_LOGICAL,  TIQ_COL_RUN_AFTER, TIQ_COL_DI_START, TIQ_COL_DI_END,    TIQ_COL_MAP_INDEX,
    TIQ_COL_OPERATOR, TIQ_COL_TASK_ID, TIQ_COL_DAG_ID, TIQ_COL_RUN_ID, TIQ_COL_RUN_ID,    TIQ_COL_POOL,
    TIQ_COL_QUEUE, TIQ_COL_PRIORITY, NULL};
static const char ORDER_TEXT[] = {1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0};

static int order_sql(ApiResp *out, Store *s, const char *const *vals, size_t n, char *buf, size_t len)
{
    const char *coll = store_is_sqlite(s) ? "" : " COLLATE \"C\"";
    StrBuf b = {0};
    const char *dflt = "map_index";
    if (!n) {
        vals = &dflt;
        n = 1;
    }
    for (size_t i = 0; i < n; i++) {
        const char *v = vals[i];
        int desc = 0;
        if (*v == '-') desc = 1, v++;
        int idx = -1;
        for (int k = 0; ORDER_NAMES[k]; k++)
            if (strcmp(ORDER_NAMES[k], v) == 0) idx = k;
        if (idx < 0) {
            StrBuf names = {0};
            for (int k = 0; ORDER_NAMES[k]; k++) sb_printf(&names, "%s%s", k ? ", " : "", ORDER_NAMES[k]);
            api_error(out, 400,
                      "Ordering with '%.200s' is disallowed or the attribute does not exist on the model; allowed: %s",
                      v, sb_str(&names));
            sb_free(&names);
            sb_free(&b);
            return -1;
        }
        const char *col = ORDER_COLS[idx];
        sb_printf(&b, "%s(%s IS NULL) %s, %s%s %s", i ? ", " : "", col, desc ? "DESC" : "ASC", col,
                  ORDER_TEXT[idx] ? coll : "", desc ? "DESC" : "ASC");
    }
    sb_printf(&b, ", ti.dag_id%s, ti.run_id%s, ti.task_id%s, ti.map_index", coll, coll, coll);
    if (b.len >= len) {
        api_error(out, 400, "order_by names too many fields");
        sb_free(&b);
        return -1;
    }
    util_strlcpy(buf, sb_str(&b), len);
    sb_free(&b);
    return 0;
}

/* The query's filters into a->f (dag_id/run_id set by the caller). 0, or -1 after answering. */
static int list_query(ApiReq *r, ApiResp *out, Store *s, ListArgs *a, int mapped)
{
    TiqFilter *f = &a->f;
    if (!mapped && tic_q_text(r, out, "task_id", &f->task_id) != 0) return -1;
    if (q_strs(r, out, "state", a->states, &f->n_states) || norm_states(out, "query", a->states, f->n_states))
        return -1;
    f->states = a->states;
    if (q_strs(r, out, "pool", a->pools, &f->n_pools)) return -1;
    f->pools = a->pools;
    if (q_strs(r, out, "queue", a->queues, &f->n_queues)) return -1;
    f->queues = a->queues;
    size_t n_execs = 0;
    if (q_strs(r, out, "executor", a->execs, &n_execs)) return -1;
    f->match_nothing = n_execs > 0; /* gust has no executors: no instance has one */
    if (q_strs(r, out, "operator", a->ops, &f->n_operators)) return -1;
    norm_ops(a->ops, f->n_operators);
    f->operators = a->ops;
    if (q_ints(r, out, "try_number", a->tries, &f->n_try_numbers)) return -1;
    f->try_numbers = a->tries;
    if (q_ints(r, out, "map_index", a->maps, &f->n_map_indexes)) return -1;
    f->map_indexes = a->maps;
    if (q_ints(r, out, "version_number", a->versions, &f->n_version_numbers)) return -1;
    f->version_numbers = a->versions;
    if (q_times(r, out, "start_date", &f->start_date) || q_times(r, out, "end_date", &f->end_date) ||
        q_times(r, out, "logical_date", &f->logical_date) || q_times(r, out, "run_after", &f->run_after) ||
        q_durations(r, out, &f->duration))
        return -1;
    if (tic_q_text(r, out, "task_display_name_pattern", &f->task_id_pattern) ||
        tic_q_text(r, out, "dag_id_pattern", &f->dag_id_pattern) ||
        tic_q_text(r, out, "run_id_pattern", &f->run_id_pattern) ||
        tic_q_text(r, out, "pool_name_pattern", &f->pool_pattern) ||
        tic_q_text(r, out, "queue_name_pattern", &f->queue_pattern) ||
        tic_q_text(r, out, "operator_name_pattern", &f->operator_pattern) ||
        tic_q_text(r, out, "task_group_id", &f->task_group))
        return -1;
    if (mapped) f->mapped_only = 1;
    if (api_page(r, out, &f->limit, &f->offset) != 0) return -1;
    const char *order[MAX_VALUES + 1];
    size_t n_order = 0;
    if (q_strs(r, out, "order_by", order, &n_order)) return -1;
    if (order_sql(out, s, order, n_order, a->order, sizeof a->order) != 0) return -1;
    f->order_sql = a->order;
    return 0;
}

static void run_list(ApiResp *out, Store *s, const TiqFilter *f)
{
    TiqRow *rows;
    size_t n;
    int64_t total = 0;
    if (store_tiq_list(s, f, &rows, &n, &total) != 0) {
        api_store_error(out, s);
        return;
    }
    tij_answer(out, s, rows, n, total);
    tiq_rows_free(rows, n);
}

/* GET /dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances ("~" = every DAG / run) */
static void h_list(ApiReq *r, ApiResp *out)
{
    if (!tic_params_ok(r, out)) return;
    Store *s = tic_store(r, out);
    if (!s) return;
    const char *dag_id = tic_tilde(r->params[0]), *run_id = tic_tilde(r->params[1]);
    if (dag_id && tic_need_dag(out, s, dag_id) <= 0) return;
    if (dag_id && run_id && tic_need_run(out, s, dag_id, run_id, NULL) <= 0) return;
    ListArgs *a = xcalloc(1, sizeof *a);
    tiq_filter_init(&a->f);
    a->f.dag_id = dag_id;
    a->f.run_id = run_id;
    if (list_query(r, out, s, a, 0) == 0) run_list(out, s, &a->f);
    free(a);
}

/* GET .../taskInstances/{task_id}/listMapped: gust maps no tasks, so this is the (empty)
 * collection of the task's instances with map_index >= 0, filtered as the list is. */
static void h_list_mapped(ApiReq *r, ApiResp *out)
{
    if (!tic_params_ok(r, out)) return;
    Store *s = tic_store(r, out);
    if (!s) return;
    if (tic_need_dag(out, s, r->params[0]) <= 0 || tic_need_run(out, s, r->params[0], r->params[1], NULL) <= 0) return;
    TiqRow row;
    int found = store_tiq_get(s, r->params[0], r->params[1], r->params[2], -1, &row);
    if (found < 0) {
        api_store_error(out, s);
        return;
    }
    if (!found) {
        api_error(out, 404, "Task id %s not found", r->params[2]);
        return;
    }
    tic_row_clear(&row);
    ListArgs *a = xcalloc(1, sizeof *a);
    tiq_filter_init(&a->f);
    a->f.dag_id = r->params[0];
    a->f.run_id = r->params[1];
    a->f.task_id = r->params[2];
    if (list_query(r, out, s, a, 1) == 0) run_list(out, s, &a->f);
    free(a);
}

/* ---- the batch form: the same filters in a JSON body ----------------------------------- */

static int b_number(ApiResp *out, const cJSON *doc, const char *name, int64_t *us)
{
    const cJSON *j = tic_b_get(doc, name);
    if (!j) return 0;
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble)) {
        api_error_422(out, "body", name, "Input should be a valid number");
        return -1;
    }
    *us = tic_ll_clamp(j->valuedouble * 1e6);
    return 0;
}

/* An array of strings (null items become "none" when nulls_as_none). */
static int b_strs(ApiResp *out, const cJSON *doc, const char *name, const char **vals, size_t *n, int nulls_as_none)
{
    const cJSON *j = tic_b_get(doc, name);
    *n = 0;
    if (!j) return 0;
    if (!cJSON_IsArray(j)) {
        api_error_422(out, "body", name, "Input should be a valid list");
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, j)
    {
        if (*n >= MAX_VALUES) {
            api_error_422(out, "body", name, "At most %d values are accepted", MAX_VALUES);
            return -1;
        }
        if (cJSON_IsNull(it) && nulls_as_none) {
            vals[(*n)++] = "none";
            continue;
        }
        if (!cJSON_IsString(it) || !tic_text_ok(it->valuestring)) {
            api_error_422(out, "body", name, "Input should be a list of strings");
            return -1;
        }
        vals[(*n)++] = it->valuestring;
    }
    return 0;
}

static int b_times(ApiResp *out, const cJSON *doc, const char *base, TiqRange *g)
{
    static const char *const sfx[] = {"_gte", "_gt", "_lte", "_lt"};
    int64_t *dst[] = {&g->gte, &g->gt, &g->lte, &g->lt};
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s", base, sfx[i]);
        if (tic_b_time(out, doc, name, dst[i]) != 0) return -1;
    }
    return 0;
}

/* POST /dags/~/dagRuns/~/taskInstances/list (TaskInstancesBatchBody) */
static void h_list_batch(ApiReq *r, ApiResp *out)
{
    if (strcmp(r->params[0], "~") != 0 || strcmp(r->params[1], "~") != 0) {
        api_error_422(out, "path", strcmp(r->params[0], "~") != 0 ? "dag_id" : "dag_run_id", "Input should be '~'");
        return;
    }
    cJSON *doc;
    if (api_body_object(r, out, &doc) != 0) return;
    static const char *const allowed[] = {
        "dag_ids",        "dag_run_ids",     "task_ids",         "state",           "run_after_gte",
        "run_after_gt",   "run_after_lte",   "run_after_lt",     "logical_date_gte", "logical_date_gt",
        "logical_date_lte", "logical_date_lt", "start_date_gte",  "start_date_gt",   "start_date_lte",
        "start_date_lt",  "end_date_gte",    "end_date_gt",      "end_date_lte",    "end_date_lt",
        "duration_gte",   "duration_gt",     "duration_lte",     "duration_lt",     "pool",
        "queue",          "executor",        "page_offset",      "page_limit",      "order_by",
        NULL};
    ListArgs *a = xcalloc(1, sizeof *a);
    TiqFilter *f = &a->f;
    tiq_filter_init(f);
    Store *s = NULL;
    size_t n_execs = 0;
    const char *order = NULL;
    if (api_body_only(out, doc, allowed) != 0) goto done;
    if (b_strs(out, doc, "dag_ids", a->dag_ids, &f->n_dag_ids, 0) ||
        b_strs(out, doc, "dag_run_ids", a->run_ids, &f->n_run_ids, 0) ||
        b_strs(out, doc, "task_ids", a->task_ids, &f->n_task_ids, 0) ||
        b_strs(out, doc, "state", a->states, &f->n_states, 1) || norm_states(out, "body", a->states, f->n_states) ||
        b_strs(out, doc, "pool", a->pools, &f->n_pools, 0) || b_strs(out, doc, "queue", a->queues, &f->n_queues, 0) ||
        b_strs(out, doc, "executor", a->execs, &n_execs, 0) || b_times(out, doc, "run_after", &f->run_after) ||
        b_times(out, doc, "logical_date", &f->logical_date) || b_times(out, doc, "start_date", &f->start_date) ||
        b_times(out, doc, "end_date", &f->end_date) || b_number(out, doc, "duration_gte", &f->duration.gte) ||
        b_number(out, doc, "duration_gt", &f->duration.gt) || b_number(out, doc, "duration_lte", &f->duration.lte) ||
        b_number(out, doc, "duration_lt", &f->duration.lt) || tic_b_str(out, doc, "order_by", &order))
        goto done;
    f->dag_ids = a->dag_ids;
    f->run_ids = a->run_ids;
    f->task_ids = a->task_ids;
    f->states = a->states;
    f->pools = a->pools;
    f->queues = a->queues;
    f->match_nothing = n_execs > 0;
    /* page_limit/page_offset: integers >= 0; the limit is capped at api.maximum_page_limit,
     * as Airflow caps it at its maximum_page_limit */
    long long maxlim = config_get_int(r->ctx->cfg, "api.maximum_page_limit");
    static const char *const pages[] = {"page_limit", "page_offset"};
    long long pv[2] = {100, 0};
    for (int i = 0; i < 2; i++) {
        const cJSON *j = tic_b_get(doc, pages[i]);
        if (!j) continue;
        if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || j->valuedouble < 0 ||
            j->valuedouble > 1e9) {
            api_error_422(out, "body", pages[i], "Input should be an integer between 0 and 1000000000");
            goto done;
        }
        pv[i] = (long long)j->valuedouble;
    }
    f->limit = (int)(pv[0] > maxlim ? maxlim : pv[0]);
    f->offset = (int)pv[1];
    if (!(s = tic_store(r, out))) goto done;
    if (order_sql(out, s, order ? &order : NULL, order ? 1 : 0, a->order, sizeof a->order) != 0) goto done;
    f->order_sql = a->order;
    run_list(out, s, f);
done:
    free(a);
    cJSON_Delete(doc);
}

/* GET .../taskInstances/{task_id} and .../{task_id}/{map_index} */
static void get_one(ApiReq *r, ApiResp *out, int map_pi)
{
    if (!tic_params_ok(r, out)) return;
    Store *s = tic_store(r, out);
    if (!s) return;
    TiqRow row;
    if (!tic_load_ti(r, out, s, map_pi, &row)) return;
    tij_answer_one(out, s, &row);
    tic_row_clear(&row);
}

static void h_get(ApiReq *r, ApiResp *out) { get_one(r, out, -2); }
static void h_get_mapped(ApiReq *r, ApiResp *out) { get_one(r, out, 3); }

/* ---- the table --------------------------------------------------------------------------------- */

const ApiRoute api_routes_tis[] = {
    {"GET", TIC_BASE, API_ROLE_VIEWER, h_list},
    {"POST", TIC_BASE "/list", API_ROLE_VIEWER, h_list_batch},
    {"GET", TIC_BASE "/{task_id}", API_ROLE_VIEWER, h_get},
    {"GET", TIC_BASE "/{task_id}/listMapped", API_ROLE_VIEWER, h_list_mapped},
    {"GET", TIC_BASE "/{task_id}/{map_index}", API_ROLE_VIEWER, h_get_mapped},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
