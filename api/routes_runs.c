/* routes_runs — DAG runs on Airflow's REST API v2: list (one DAG or "~" for all, and the
 * batch POST .../dagRuns/list), trigger, get, patch (mark success/failed/queued, note),
 * delete, clear (dry run or real), wait (an NDJSON stream until the run finishes) and the
 * asset events that triggered a run.
 *
 * Handlers only validate and shape: what runs match, how a run is marked or cleared and
 * what a delete removes is in store/runquery.c, state changes going through the same
 * guarded store functions the scheduler and the CLI use. A manual run is created as
 * `gust dags trigger` creates one (the DAG's latest version, its task instances with their
 * priority weights), so the scheduler cannot tell them apart but for triggered_by.
 *
 * Where gust has no value for a field of Airflow's schemas (bundles, partition keys, the
 * triggering user) the schema's null is answered; docs/api.md lists these. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/ti_json.h"
#include "core/config.h"
#include "core/dag.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "scheduler/rules.h"
#include "store/dagcache.h"
#include "store/dags.h"
#include "store/runquery.h"
#include "store/runs.h"
#include "store/ti.h"
#include "store/xcom.h"

/* ---- shared pieces ---------------------------------------------------------------------- */

/* DAG versions (display names, retries and a trigger's tasks) come from the one cache the
 * task-instance routes read too (tij_dag, api/ti_json.c): versions never change once
 * written, so it serves every thread for the life of the process. */

/* triggered_by as Airflow's DagRunTriggeredByType spells it; NULL when it has no name for it. */
static const char *triggered_by_name(const char *t)
{
    static const char *const map[][2] = {
        {"scheduler", "timetable"}, {"dags test", "test"},  {"tasks test", "test"},       {"trigger_dagrun", "operator"},
        {"cli", "cli"},             {"rest_api", "rest_api"}, {"ui", "ui"},               {"asset", "asset"},
        {"backfill", "backfill"},   {"timetable", "timetable"}, {"operator", "operator"}, {"test", "test"},
    };
    for (size_t i = 0; t && i < GUST_ARRAY_LEN(map); i++)
        if (strcmp(map[i][0], t) == 0) return map[i][1];
    return NULL;
}

static void add_duration(cJSON *o, int64_t start, int64_t end)
{
    if (start >= 0 && end >= 0)
        cJSON_AddNumberToObject(o, "duration", (double)(end - start) / 1e6);
    else
        cJSON_AddNullToObject(o, "duration");
}

/* DAGRunResponse. */
static cJSON *run_json(Store *s, const RunqRow *row)
{
    const DagRun *d = &row->run;
    const Dag *dag = tij_dag(s, d->dag_version_id);
    const char *display = tij_dag_display(dag, d->dag_id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dag_run_id", d->run_id);
    cJSON_AddStringToObject(o, "dag_id", d->dag_id);
    api_add_time(o, "logical_date", d->logical_date);
    api_add_time(o, "queued_at", d->queued_at);
    api_add_time(o, "start_date", d->start_date);
    api_add_time(o, "end_date", d->end_date);
    add_duration(o, d->start_date, d->end_date);
    api_add_time(o, "data_interval_start", d->data_interval_start);
    api_add_time(o, "data_interval_end", d->data_interval_end);
    api_add_time(o, "run_after", d->run_after >= 0 ? d->run_after : 0);
    api_add_time(o, "last_scheduling_decision", d->last_scheduling_decision);
    cJSON_AddStringToObject(o, "run_type", d->run_type ? d->run_type : "manual");
    cJSON_AddStringToObject(o, "state", run_state_name(d->state));
    api_add_str(o, "triggered_by", triggered_by_name(d->triggered_by));
    api_add_str(o, "triggering_user_name", d->triggering_user_name);
    api_add_json_text(o, "conf", d->conf, "{}");
    api_add_str(o, "note", d->note);
    cJSON *vs = cJSON_AddArrayToObject(o, "dag_versions");
    if (d->dag_version_id && row->version_number >= 0)
        cJSON_AddItemToArray(vs, tij_version(d->dag_version_id, row->version_number, row->version_created_at,
                                             d->dag_id, dag));
    cJSON_AddNullToObject(o, "bundle_version");
    cJSON_AddStringToObject(o, "dag_display_name", display);
    cJSON_AddNullToObject(o, "partition_key");
    return o;
}

/* TaskInstanceResponse of one instance of row's run (dry-run clears list these), through the
 * serializer the task-instance routes answer with. The instance comes from store_ti_list_run,
 * without its run's dates and version: they are row's. An instance with no version of its own
 * is shown with its run's; one of another version than its run's has dag_version null (row
 * has no number for it). w owns nothing: it borrows from t and row. */
static cJSON *ti_json(Store *s, const RunqRow *row, const TaskInstance *t)
{
    const DagRun *d = &row->run;
    TiqRow w;
    memset(&w, 0, sizeof w);
    w.ti = *t;
    if (!w.ti.dag_version_id) w.ti.dag_version_id = d->dag_version_id;
    int same = w.ti.dag_version_id && d->dag_version_id && strcmp(w.ti.dag_version_id, d->dag_version_id) == 0;
    w.logical_date = d->logical_date;
    w.run_after = d->run_after >= 0 ? d->run_after : 0;
    w.data_interval_start = d->data_interval_start;
    w.data_interval_end = d->data_interval_end;
    w.version_number = same ? row->version_number : -1;
    w.version_created_at = same ? row->version_created_at : -1;
    return tij_ti(s, &w);
}

static void not_found_run(ApiResp *out, const char *dag_id, const char *run_id)
{
    api_error(out, 404, "The DagRun with dag_id: `%s` and run_id: `%s` was not found", dag_id, run_id);
}

static void not_found_dag(ApiResp *out, const char *dag_id)
{
    api_error(out, 404, "The DAG with dag_id: `%s` was not found", dag_id);
}

/* The run of the path, or an answer: 1 found (*row filled), 0 after answering. */
static int load_run(ApiReq *r, ApiResp *out, Store *s, RunqRow *row)
{
    int f = store_runq_get(s, r->params[0], r->params[1], row);
    if (f < 0) api_store_error(out, s);
    if (f == 0) not_found_run(out, r->params[0], r->params[1]);
    return f > 0;
}

static void answer_run(ApiReq *r, ApiResp *out, Store *s, int status)
{
    RunqRow row;
    if (!load_run(r, out, s, &row)) return;
    api_json(out, status, run_json(s, &row));
    runq_row_clear(&row);
}

/* ---- filters ------------------------------------------------------------------------------ */

static const char *const RANGE_NAMES[RUNQ__RANGES] = {"run_after", "logical_date", "start_date",
                                                      "end_date",  "updated_at",   "duration"};
static const char *const BOUND_NAMES[4] = {"gte", "gt", "lte", "lt"};

static int64_t *bound_ptr(RunqRange *g, int b)
{
    return b == 0 ? &g->gte : b == 1 ? &g->gt : b == 2 ? &g->lte : &g->lt;
}

/* A duration in seconds (a JSON or query number) to microseconds; -1 when it is not one. */
static int seconds_us(double x, int64_t *us)
{
    if (!isfinite(x) || fabs(x) > 9e12) return -1;
    *us = (int64_t)llround(x * 1e6);
    return 0;
}

static int parse_query_ranges(ApiReq *r, ApiResp *out, RunqFilter *f)
{
    for (int i = 0; i < RUNQ__RANGES; i++)
        for (int b = 0; b < 4; b++) {
            char name[48];
            snprintf(name, sizeof name, "%s_%s", RANGE_NAMES[i], BOUND_NAMES[b]);
            if (i != RUNQ_DURATION) {
                int64_t us;
                int got = api_query_time(r, out, name, &us);
                if (got < 0) return -1;
                if (got) *bound_ptr(&f->range[i], b) = us;
                continue;
            }
            const char *v = api_query(r, name);
            if (!v) continue;
            char *end;
            errno = 0;
            double x = strtod(v, &end);
            int64_t us;
            if (!*v || *end || errno || seconds_us(x, &us) != 0) {
                api_error_422(out, "query", name, "Input should be a valid number, unable to parse string as a number");
                return -1;
            }
            *bound_ptr(&f->range[i], b) = us;
        }
    return 0;
}

static int parse_body_ranges(const cJSON *doc, ApiResp *out, RunqFilter *f)
{
    for (int i = 0; i < RUNQ__RANGES; i++) {
        if (i == RUNQ_UPDATED_AT) continue; /* not in DAGRunsBatchBody */
        for (int b = 0; b < 4; b++) {
            char name[48];
            snprintf(name, sizeof name, "%s_%s", RANGE_NAMES[i], BOUND_NAMES[b]);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);
            if (!v || cJSON_IsNull(v)) continue;
            int64_t us;
            if (i == RUNQ_DURATION) {
                if (!cJSON_IsNumber(v) || seconds_us(v->valuedouble, &us) != 0) {
                    api_error_422(out, "body", name, "Input should be a valid number");
                    return -1;
                }
            } else {
                char err[256];
                if (!cJSON_IsString(v)) {
                    api_error_422(out, "body", name, "Input should be a valid datetime");
                    return -1;
                }
                if (time_parse_iso(v->valuestring, NULL, &us, err, sizeof err) != 0) {
                    api_error_422(out, "body", name, "Input should be a valid datetime: %s", err);
                    return -1;
                }
            }
            *bound_ptr(&f->range[i], b) = us;
        }
    }
    return 0;
}

static const char *const RUN_TYPES[] = {"backfill", "scheduled", "manual", "asset_triggered", "asset_materialization",
                                        NULL};

static int check_states(ApiResp *out, const char *where, const char *field, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (run_state_parse(v[i]) < 0) {
            api_error_422(out, where, field, "Input should be 'queued', 'running', 'success' or 'failed', not '%s'",
                          v[i]);
            return -1;
        }
    return 0;
}

static int check_run_types(ApiResp *out, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int ok = 0;
        for (int k = 0; RUN_TYPES[k]; k++) ok |= strcmp(RUN_TYPES[k], v[i]) == 0;
        if (!ok) {
            api_error_422(out, "query", "run_type",
                          "Input should be 'backfill', 'scheduled', 'manual', 'asset_triggered' or "
                          "'asset_materialization', not '%s'",
                          v[i]);
            return -1;
        }
    }
    return 0;
}

/* order_by's public names and the SQL each sorts by (store/runquery.h's alias r). */
static const char *const ORDER_NAMES[] = {"id",         "state",    "dag_id",     "run_id", "logical_date",
                                          "run_after",  "start_date", "end_date", "updated_at", "conf",
                                          "duration",   "dag_run_id", NULL};
static const char *const ORDER_COLS[] = {"r.id",         "r.state",      "r.dag_id",          "r.run_id",
                                         "r.logical_date", "r.run_after", "r.start_date",     "r.end_date",
                                         RUNQ_COL_UPDATED_AT, "r.conf",   RUNQ_COL_DURATION, "r.run_id"};

/* The batch body's order_by, with api_order_by's rules and message. */
static int order_from_text(ApiResp *out, const char *s, char *sql, size_t len)
{
    int desc = 0, idx = 0;
    if (s && *s) {
        if (*s == '-') desc = 1, s++;
        idx = -1;
        for (int i = 0; ORDER_NAMES[i]; i++)
            if (strcmp(ORDER_NAMES[i], s) == 0) idx = i;
        if (idx < 0) {
            StrBuf b = {0};
            for (int i = 0; ORDER_NAMES[i]; i++) sb_printf(&b, "%s%s", i ? ", " : "", ORDER_NAMES[i]);
            api_error(out, 400,
                      "Ordering with '%s' is disallowed or the attribute does not exist on the model; allowed: %s", s,
                      sb_str(&b));
            sb_free(&b);
            return -1;
        }
    }
    snprintf(sql, len, "%s %s", ORDER_COLS[idx], desc ? "DESC" : "ASC");
    return 0;
}

static void answer_list(ApiResp *out, Store *s, const RunqFilter *f, const char *order, int limit, int offset)
{
    RunqRow *rows;
    size_t n;
    int64_t total;
    if (store_runq_list(s, f, order, limit, offset, &rows, &n, &total) != 0) {
        api_store_error(out, s);
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "dag_runs");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, run_json(s, &rows[i]));
    cJSON_AddNumberToObject(doc, "total_entries", (double)total);
    runq_rows_free(rows, n);
    api_json(out, 200, doc);
}

static void answer_empty_list(ApiResp *out)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddArrayToObject(doc, "dag_runs");
    cJSON_AddNumberToObject(doc, "total_entries", 0);
    api_json(out, 200, doc);
}

/* ---- GET /api/v2/dags/{dag_id}/dagRuns ---------------------------------------------------- */

#define MAX_VALUES 256

static void list_runs(ApiReq *r, ApiResp *out)
{
    const char *dag_id = r->params[0];
    RunqFilter f;
    runq_filter_init(&f);
    int limit, offset;
    char order[160];
    if (api_page(r, out, &limit, &offset) != 0) return;
    if (api_order_by(r, out, ORDER_NAMES, ORDER_COLS, 0, order, sizeof order) != 0) return;
    if (parse_query_ranges(r, out, &f) != 0) return;
    const char *states[MAX_VALUES], *types[MAX_VALUES], *vers[MAX_VALUES];
    f.states = states;
    f.n_states = (size_t)api_query_all(r, "state", states, MAX_VALUES);
    if (check_states(out, "query", "state", states, f.n_states) != 0) return;
    f.run_types = types;
    f.n_run_types = (size_t)api_query_all(r, "run_type", types, MAX_VALUES);
    if (check_run_types(out, types, f.n_run_types) != 0) return;
    int nv = api_query_all(r, "dag_version", vers, MAX_VALUES);
    int64_t versions[MAX_VALUES];
    for (int i = 0; i < nv; i++) {
        char *end;
        errno = 0;
        long long v = strtoll(vers[i], &end, 10);
        if (!*vers[i] || *end || errno) {
            api_error_422(out, "query", "dag_version", "Input should be a valid integer, unable to parse '%s'", vers[i]);
            return;
        }
        versions[i] = v;
    }
    f.versions = versions;
    f.n_versions = (size_t)nv;
    f.run_id_pattern = api_query(r, "run_id_pattern");
    f.triggering_user_name_pattern = api_query(r, "triggering_user_name_pattern");
    f.dag_id_pattern = api_query(r, "dag_id_pattern");
    f.conf_contains = api_query(r, "conf_contains");
    const char *one[1] = {dag_id};
    if (strcmp(dag_id, "~") != 0) {
        f.dag_ids = one;
        f.n_dag_ids = 1;
    }
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    if (f.n_dag_ids) {
        StoreDag sd;
        int known = store_dag_get(s, dag_id, &sd);
        if (known < 0) {
            api_store_error(out, s);
            return;
        }
        if (known == 0) {
            not_found_dag(out, dag_id);
            return;
        }
        store_dag_clear(&sd);
    }
    /* gust records no partition key or bundle version: every run has null there, which no
     * pattern or value matches (as in Airflow) */
    if (api_query(r, "partition_key_pattern") ||
        api_query(r, "bundle_version")) {
        answer_empty_list(out);
        return;
    }
    answer_list(out, s, &f, order, limit, offset);
}

/* ---- POST /api/v2/dags/~/dagRuns/list ------------------------------------------------------- */

static const char *const BATCH_KEYS[] = {
    "dag_ids",        "states",          "order_by",        "page_offset",    "page_limit",      "conf_contains",
    "run_after_gte",  "run_after_gt",    "run_after_lte",   "run_after_lt",   "logical_date_gte", "logical_date_gt",
    "logical_date_lte", "logical_date_lt", "start_date_gte", "start_date_gt", "start_date_lte",  "start_date_lt",
    "end_date_gte",   "end_date_gt",     "end_date_lte",    "end_date_lt",    "duration_gte",    "duration_gt",
    "duration_lte",   "duration_lt",     NULL};

/* A list of strings (or null) from the body; *v is a new array of borrowed strings (caller
 * frees the array). nulls inside are skipped when skip_null, else refused. 0 / -1 answered. */
static int body_strings(const cJSON *doc, ApiResp *out, const char *key, int skip_null, const char ***v, size_t *n)
{
    *v = NULL;
    *n = 0;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(doc, key);
    if (!a || cJSON_IsNull(a)) return 0;
    if (!cJSON_IsArray(a)) {
        api_error_422(out, "body", key, "Input should be a valid list");
        return -1;
    }
    *v = xcalloc((size_t)cJSON_GetArraySize(a) + 1, sizeof **v);
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        if (cJSON_IsNull(it) && skip_null) continue;
        if (!cJSON_IsString(it)) {
            api_error_422(out, "body", key, "Input should be a list of strings");
            free(*v);
            *v = NULL;
            *n = 0;
            return -1;
        }
        (*v)[(*n)++] = it->valuestring;
    }
    return 0;
}

static int body_int(const cJSON *doc, ApiResp *out, const char *key, long long lo, long long hi, int *v)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(doc, key);
    if (!x || cJSON_IsNull(x)) return 0;
    if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble)) {
        api_error_422(out, "body", key, "Input should be a valid integer");
        return -1;
    }
    if (x->valuedouble < (double)lo || x->valuedouble > (double)hi) {
        api_error_422(out, "body", key, "Input should be between %lld and %lld", lo, hi);
        return -1;
    }
    *v = (int)x->valuedouble;
    return 0;
}

static void list_batch(ApiReq *r, ApiResp *out)
{
    if (strcmp(r->params[0], "~") != 0) {
        api_error_422(out, "path", "dag_id", "Input should be '~': the batch list is across DAGs (use dag_ids)");
        return;
    }
    cJSON *doc;
    if (api_body_object(r, out, &doc) != 0) return;
    const char **dag_ids = NULL, **states = NULL;
    size_t n_dags = 0, n_states = 0;
    RunqFilter f;
    runq_filter_init(&f);
    int limit = 100, offset = 0;
    char order[160];
    const cJSON *ob = cJSON_GetObjectItemCaseSensitive(doc, "order_by");
    const cJSON *cc = cJSON_GetObjectItemCaseSensitive(doc, "conf_contains");
    if (api_body_only(out, doc, BATCH_KEYS) != 0) goto done;
    if (body_strings(doc, out, "dag_ids", 0, &dag_ids, &n_dags) != 0) goto done;
    if (body_strings(doc, out, "states", 1, &states, &n_states) != 0) goto done;
    if (check_states(out, "body", "states", states, n_states) != 0) goto done;
    if (body_int(doc, out, "page_limit", 0, config_get_int(r->ctx->cfg, "api.maximum_page_limit"), &limit) != 0)
        goto done;
    if (body_int(doc, out, "page_offset", 0, 1000000000LL, &offset) != 0) goto done;
    if (ob && !cJSON_IsNull(ob) && !cJSON_IsString(ob)) {
        api_error_422(out, "body", "order_by", "Input should be a valid string");
        goto done;
    }
    if (order_from_text(out, cJSON_IsString(ob) ? ob->valuestring : NULL, order, sizeof order) != 0) goto done;
    if (cc && !cJSON_IsNull(cc) && !cJSON_IsString(cc)) {
        api_error_422(out, "body", "conf_contains", "Input should be a valid string");
        goto done;
    }
    f.conf_contains = cJSON_IsString(cc) ? cc->valuestring : NULL;
    if (parse_body_ranges(doc, out, &f) != 0) goto done;
    const cJSON *dj = cJSON_GetObjectItemCaseSensitive(doc, "dag_ids");
    f.dag_ids = dag_ids;
    f.n_dag_ids = n_dags;
    f.states = states;
    f.n_states = n_states;
    Store *s = api_store(r);
    if (!s)
        api_store_error(out, NULL);
    else if (cJSON_IsArray(dj) && n_dags == 0) /* dag_ids: [] selects no DAG */
        answer_empty_list(out);
    else
        answer_list(out, s, &f, order, limit, offset);
done:
    free(dag_ids);
    free(states);
    cJSON_Delete(doc);
}

/* ---- GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id} ---------------------------------------- */

static void get_run(ApiReq *r, ApiResp *out)
{
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    answer_run(r, out, s, 200);
}

/* ---- POST /api/v2/dags/{dag_id}/dagRuns ----------------------------------------------------- */

static const char *const TRIGGER_KEYS[] = {"dag_run_id", "data_interval_start", "data_interval_end", "logical_date",
                                           "run_after",  "conf",                "note",              "partition_key",
                                           NULL};

/* A nullable datetime of the body: 1 set, 0 absent or null, -1 answered. */
static int body_time(const cJSON *doc, ApiResp *out, const char *key, int64_t *us)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
    if (!v || cJSON_IsNull(v)) return 0;
    char err[256];
    if (!cJSON_IsString(v)) {
        api_error_422(out, "body", key, "Input should be a valid datetime or null");
        return -1;
    }
    if (time_parse_iso(v->valuestring, NULL, us, err, sizeof err) != 0) {
        api_error_422(out, "body", key, "Input should be a valid datetime: %s", err);
        return -1;
    }
    return 1;
}

/* A nullable string of the body: its text, or NULL; *bad after answering 422. */
static const char *body_str(const cJSON *doc, ApiResp *out, const char *key, int *bad)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
    if (!v || cJSON_IsNull(v)) return NULL;
    if (!cJSON_IsString(v)) {
        api_error_422(out, "body", key, "Input should be a valid string or null");
        *bad = 1;
    }
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Airflow's scheduler.allowed_run_id_pattern default, ^[A-Za-z0-9_.~:+-]+$, and its 250
 * characters: run ids appear in URLs, log paths and file names. */
static int run_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 250) return 0;
    for (const char *c = id; *c; c++)
        if (!isalnum((unsigned char)*c) && !strchr("_.~:+-", *c)) return 0;
    return 1;
}

static void trigger_run(ApiReq *r, ApiResp *out)
{
    const char *dag_id = r->params[0];
    cJSON *doc;
    if (api_body_object(r, out, &doc) != 0) return;
    char *conf_text = NULL;
    int *weights = NULL;
    TiSpec *specs = NULL;
    StoreDag sd;
    memset(&sd, 0, sizeof sd);
    if (api_body_only(out, doc, TRIGGER_KEYS) != 0) goto done;
    int bad = 0;
    const char *want_id = body_str(doc, out, "dag_run_id", &bad);
    const char *note = bad ? NULL : body_str(doc, out, "note", &bad);
    if (!bad) body_str(doc, out, "partition_key", &bad);
    if (bad) goto done;
    const cJSON *conf = cJSON_GetObjectItemCaseSensitive(doc, "conf");
    if (conf && !cJSON_IsNull(conf) && !cJSON_IsObject(conf)) {
        api_error_422(out, "body", "conf", "Input should be a valid dictionary");
        goto done;
    }
    conf_text = cJSON_IsObject(conf) ? cJSON_PrintUnformatted(conf) : xstrdup("{}");
    int64_t logical = -1, di_start = -1, di_end = -1, run_after = -1;
    int has_l, has_s, has_e, has_a;
    if ((has_l = body_time(doc, out, "logical_date", &logical)) < 0 ||
        (has_s = body_time(doc, out, "data_interval_start", &di_start)) < 0 ||
        (has_e = body_time(doc, out, "data_interval_end", &di_end)) < 0 ||
        (has_a = body_time(doc, out, "run_after", &run_after)) < 0)
        goto done;
    if (has_s != has_e) {
        api_error_422(out, "body", has_s ? "data_interval_end" : "data_interval_start",
                      "Value error, Either both data_interval_start and data_interval_end must be provided or both "
                      "must be None");
        goto done;
    }
    if (has_s && di_start > di_end) {
        api_error_422(out, "body", "data_interval_start", "data_interval_start must not be after data_interval_end");
        goto done;
    }
    if (want_id && !run_id_ok(want_id)) {
        api_error(out, 400, "The run_id provided '%s' does not match regex pattern '^[A-Za-z0-9_.~:+-]+$'", want_id);
        goto done;
    }
    if (!has_a) run_after = r->now;
    if (has_l) {
        /* as gust dags trigger (and Airflow's manual runs): the interval is the logical date
         * itself unless given, and the run is due at its end */
        if (!has_s) di_start = di_end = logical;
        run_after = di_end;
    } else {
        di_start = di_end = -1; /* Airflow 3: no logical date, no data interval */
    }

    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        goto done;
    }
    int known = store_dag_get(s, dag_id, &sd);
    if (known < 0) {
        api_store_error(out, s);
        goto done;
    }
    if (known == 0 || !sd.is_active || !sd.latest_version_id) {
        not_found_dag(out, dag_id);
        goto done;
    }
    char err[256];
    const Dag *d = dagcache_get(tij_cache(), s, sd.latest_version_id, err, sizeof err);
    if (!d) {
        api_error(out, 503, "cannot read the latest version of DAG %s from the store: %s", dag_id, err);
        goto done;
    }
    char rid[300];
    if (want_id)
        util_strlcpy(rid, want_id, sizeof rid);
    else
        run_id_make("manual", has_l ? logical : run_after, rid, sizeof rid);
    /* what sched_create_run does, with the note and run_after a REST trigger carries */
    weights = xcalloc(d->n_tasks + 1, sizeof *weights);
    rules_priority_weights(d, weights);
    specs = xcalloc(d->n_tasks + 1, sizeof *specs);
    for (size_t i = 0; i < d->n_tasks; i++) {
        const DagTask *t = d->tasks[i];
        specs[i] = (TiSpec){t->task_id, t->retries, t->queue, t->pool, t->pool_slots, weights[i], t->op->name};
    }
    RunSpec rs = {dag_id, rid, "manual", logical, di_start, di_end, run_after, conf_text, note, "rest_api",
                  sd.latest_version_id, r->user};
    int made = store_run_create(s, &rs, specs, d->n_tasks, NULL);
    if (made < 0) {
        api_store_error(out, s);
        goto done;
    }
    if (made == 0) {
        RunqRow old;
        int same = store_runq_get(s, dag_id, rid, &old);
        if (same > 0) {
            runq_row_clear(&old);
            api_error(out, 409, "The DagRun with dag_id: `%s` and run_id: `%s` already exists", dag_id, rid);
        } else {
            char when[48];
            time_format_iso(logical, 1, when, sizeof when);
            api_error(out, 409, "A DagRun of dag_id: `%s` with logical_date: `%s` already exists", dag_id, when);
        }
        goto done;
    }
    api_audit(r, "api.trigger_dag_run", dag_id, rid, NULL, NULL);
    RunqRow row;
    int f = store_runq_get(s, dag_id, rid, &row);
    if (f <= 0) {
        if (f < 0) api_store_error(out, s);
        else not_found_run(out, dag_id, rid); /* deleted at once by someone else */
        goto done;
    }
    api_json(out, 200, run_json(s, &row));
    runq_row_clear(&row);
done:
    free(weights);
    free(specs);
    free(conf_text);
    store_dag_clear(&sd);
    cJSON_Delete(doc);
}

/* ---- PATCH /api/v2/dags/{dag_id}/dagRuns/{dag_run_id} --------------------------------------- */

/* Is name in update_mask? No mask: every field of the body counts. Repeated arguments and
 * comma-separated lists are both accepted. */
static int in_mask(const char *const *mask, int n, const char *name)
{
    if (n == 0) return 1;
    size_t l = strlen(name);
    for (int i = 0; i < n; i++)
        for (const char *p = mask[i]; p && *p;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            while (len && *p == ' ') p++, len--;
            while (len && p[len - 1] == ' ') len--;
            if (len == l && strncmp(p, name, l) == 0) return 1;
            p = comma ? comma + 1 : p + len;
            if (!comma) break;
        }
    return 0;
}

static void patch_run(ApiReq *r, ApiResp *out)
{
    static const char *const keys[] = {"state", "note", NULL};
    const char *dag_id = r->params[0], *run_id = r->params[1];
    cJSON *doc;
    if (api_body_object(r, out, &doc) != 0) return;
    const char *mask[32];
    int nmask = api_query_all(r, "update_mask", mask, 32);
    if (api_body_only(out, doc, keys) != 0) goto done;
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(doc, "state");
    const cJSON *nt = cJSON_GetObjectItemCaseSensitive(doc, "note");
    int to = -1;
    if (st && !cJSON_IsNull(st)) {
        to = cJSON_IsString(st) ? run_state_parse(st->valuestring) : -1;
        if (to < 0 || to == RUN_RUNNING) {
            api_error_422(out, "body", "state", "Input should be 'queued', 'success' or 'failed'");
            goto done;
        }
    }
    if (nt && !cJSON_IsNull(nt)) {
        if (!cJSON_IsString(nt)) {
            api_error_422(out, "body", "note", "Input should be a valid string");
            goto done;
        }
        if (strlen(nt->valuestring) > 1000) {
            api_error_422(out, "body", "note", "String should have at most 1000 characters");
            goto done;
        }
    }
    int set_state = to >= 0 && in_mask(mask, nmask, "state");
    int set_note = nt && in_mask(mask, nmask, "note");
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        goto done;
    }
    RunqRow row;
    if (!load_run(r, out, s, &row)) goto done;
    runq_row_clear(&row);
    int tis = 0;
    if (set_state) {
        int m = store_runq_mark(s, dag_id, run_id, (RunState)to, &tis);
        if (m < 0) {
            api_store_error(out, s);
            goto done;
        }
        if (m == 0) {
            api_error(out, 400, "%s", store_last_error(s));
            goto done;
        }
    }
    if (set_note) {
        int n = store_runq_set_note(s, dag_id, run_id, cJSON_IsString(nt) ? nt->valuestring : NULL);
        if (n < 0) {
            api_store_error(out, s);
            goto done;
        }
    }
    if (set_state || set_note) {
        cJSON *extra = cJSON_CreateObject();
        if (set_state) {
            cJSON_AddStringToObject(extra, "state", run_state_name((RunState)to));
            cJSON_AddNumberToObject(extra, "task_instances_changed", tis);
        }
        if (set_note) cJSON_AddBoolToObject(extra, "note", 1);
        char *text = cJSON_PrintUnformatted(extra);
        cJSON_Delete(extra);
        api_audit(r, "api.patch_dag_run", dag_id, run_id, NULL, text);
        free(text);
    }
    answer_run(r, out, s, 200);
done:
    cJSON_Delete(doc);
}

/* ---- DELETE /api/v2/dags/{dag_id}/dagRuns/{dag_run_id} -------------------------------------- */

static void delete_run(ApiReq *r, ApiResp *out)
{
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    int d = store_runq_delete(s, r->params[0], r->params[1]);
    if (d < 0) {
        api_store_error(out, s);
        return;
    }
    if (d == 0) {
        not_found_run(out, r->params[0], r->params[1]);
        return;
    }
    api_audit(r, "api.delete_dag_run", r->params[0], r->params[1], NULL, NULL);
    api_no_content(out);
}

/* ---- POST /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear ---------------------------------- */

/* What gust tasks clear would clear: not none or restarting already; with only_failed,
 * failed and upstream_failed only. */
static int clear_wanted(TiState st, int only_failed)
{
    if (st == TI_NONE || st == TI_RESTARTING) return 0;
    if (only_failed && st != TI_FAILED && st != TI_UPSTREAM_FAILED) return 0;
    return 1;
}

static int body_bool(const cJSON *doc, ApiResp *out, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
    if (!v) return dflt;
    if (!cJSON_IsBool(v)) {
        api_error_422(out, "body", key, "Input should be a valid boolean");
        return -1;
    }
    return cJSON_IsTrue(v);
}

static void clear_run(ApiReq *r, ApiResp *out)
{
    static const char *const keys[] = {"dry_run", "only_failed", "run_on_latest_version", NULL};
    const char *dag_id = r->params[0], *run_id = r->params[1];
    cJSON *doc;
    if (api_body_object(r, out, &doc) != 0) return;
    TaskInstance *tis = NULL;
    size_t n = 0;
    RunqClear *items = NULL;
    RunqRow row;
    memset(&row, 0, sizeof row);
    int dry, only_failed;
    if (api_body_only(out, doc, keys) != 0) goto done;
    if ((dry = body_bool(doc, out, "dry_run", 1)) < 0) goto done;
    if ((only_failed = body_bool(doc, out, "only_failed", 0)) < 0) goto done;
    if (body_bool(doc, out, "run_on_latest_version", 0) < 0) goto done;
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        goto done;
    }
    if (!load_run(r, out, s, &row)) goto done;
    if (store_ti_list_run(s, dag_id, run_id, &tis, &n) != 0) {
        api_store_error(out, s);
        goto done;
    }
    const Dag *d = tij_dag(s, row.run.dag_version_id);
    items = xcalloc(n + 1, sizeof *items);
    size_t k = 0;
    cJSON *dry_doc = dry ? cJSON_CreateObject() : NULL;
    cJSON *arr = dry ? cJSON_AddArrayToObject(dry_doc, "task_instances") : NULL;
    for (size_t i = 0; i < n; i++) {
        if (!clear_wanted(tis[i].state, only_failed)) continue;
        if (dry) {
            cJSON_AddItemToArray(arr, ti_json(s, &row, &tis[i]));
            k++;
            continue;
        }
        const DagTask *t = d ? dag_find_task(d, tis[i].task_id) : NULL;
        RunqClear *it = &items[k++];
        memcpy(it->id, tis[i].id, sizeof it->id);
        it->from = tis[i].state;
        it->try_number = tis[i].try_number;
        it->retries = t ? t->retries : -1;
    }
    if (dry) {
        cJSON_AddNumberToObject(dry_doc, "total_entries", (double)k);
        api_json(out, 200, dry_doc);
        goto done;
    }
    int cleared = 0;
    if (k && store_runq_clear(s, dag_id, run_id, items, k, &cleared) != 0) {
        api_store_error(out, s);
        goto done;
    }
    char extra[96];
    snprintf(extra, sizeof extra, "{\"only_failed\":%s,\"cleared\":%d}", only_failed ? "true" : "false", cleared);
    api_audit(r, "api.clear_dag_run", dag_id, run_id, NULL, extra);
    answer_run(r, out, s, 200);
done:
    ti_list_free(tis, n);
    free(items);
    runq_row_clear(&row);
    cJSON_Delete(doc);
}

/* ---- GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/upstreamAssetEvents --------------------- */

static cJSON *run_reference(const DagRun *d)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "run_id", d->run_id);
    cJSON_AddStringToObject(o, "dag_id", d->dag_id);
    api_add_time(o, "logical_date", d->logical_date);
    /* start_date is required there: a run not started yet gives when it was queued */
    api_add_time(o, "start_date", d->start_date >= 0 ? d->start_date : d->queued_at >= 0 ? d->queued_at : d->run_after);
    api_add_time(o, "end_date", d->end_date);
    cJSON_AddStringToObject(o, "state", run_state_name(d->state));
    api_add_time(o, "data_interval_start", d->data_interval_start);
    api_add_time(o, "data_interval_end", d->data_interval_end);
    cJSON_AddNullToObject(o, "partition_key");
    return o;
}

static void upstream_asset_events(ApiReq *r, ApiResp *out)
{
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    RunqRow row;
    if (!load_run(r, out, s, &row)) return;
    RunqAssetEvent *ev;
    size_t n;
    if (store_runq_asset_events(s, &row.run, &ev, &n) != 0) {
        api_store_error(out, s);
        runq_row_clear(&row);
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "asset_events");
    for (size_t i = 0; i < n; i++) {
        const RunqAssetEvent *e = &ev[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)e->id);
        cJSON_AddNumberToObject(o, "asset_id", (double)e->asset_id);
        api_add_str(o, "uri", e->uri);
        api_add_str(o, "name", e->name ? e->name : e->uri);
        api_add_str(o, "group", e->group);
        cJSON *extra = e->extra ? cJSON_Parse(e->extra) : NULL;
        if (cJSON_IsObject(extra))
            cJSON_AddItemToObject(o, "extra", extra);
        else {
            cJSON_Delete(extra);
            cJSON_AddNullToObject(o, "extra");
        }
        api_add_str(o, "source_task_id", e->source_task_id);
        api_add_str(o, "source_dag_id", e->source_dag_id);
        api_add_str(o, "source_run_id", e->source_run_id);
        cJSON_AddNumberToObject(o, "source_map_index", e->source_map_index);
        cJSON *runs = cJSON_AddArrayToObject(o, "created_dagruns");
        cJSON_AddItemToArray(runs, run_reference(&row.run));
        api_add_time(o, "timestamp", e->timestamp);
        cJSON_AddNullToObject(o, "partition_key");
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddNumberToObject(doc, "total_entries", (double)n);
    runq_asset_events_free(ev, n);
    runq_row_clear(&row);
    api_json(out, 200, doc);
}

/* ---- GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/wait ------------------------------------ */

/* Airflow 3's experimental wait: one NDJSON line {"state": ...} now and one every
 * `interval` seconds until the run is finished; the last line also carries "results",
 * the return values (XCom return_value) of the tasks named by `result`. The stream never
 * blocks a pool thread: between lines it answers 0 and the server suspends the connection
 * until its next wake (its ticker wakes suspended streams every half second, which is
 * therefore the resolution of `interval`). */
typedef struct Wait {
    ApiContext *ctx;
    char *dag_id, *run_id;
    char **results;
    int n_results;
    int64_t interval_us, next_due;
    int done;
    char *pending;
    size_t len, off;
} Wait;

static void wait_free(void *ud)
{
    Wait *w = ud;
    if (!w) return;
    free(w->dag_id);
    free(w->run_id);
    for (int i = 0; i < w->n_results; i++) free(w->results[i]);
    free(w->results);
    free(w->pending);
    free(w);
}

/* The line for the run as it is now; a finished run ends the stream. */
static void wait_line(Wait *w, Store *s, const DagRun *run)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "state", run_state_name(run->state));
    if (run->state == RUN_SUCCESS || run->state == RUN_FAILED) {
        w->done = 1;
        if (w->n_results) {
            cJSON *res = cJSON_AddObjectToObject(o, "results");
            for (int i = 0; i < w->n_results; i++) {
                if (cJSON_GetObjectItemCaseSensitive(res, w->results[i])) continue;
                int missing = 0;
                char *v = store_xcom_pull(s, w->dag_id, w->run_id, w->results[i], -1, NULL, &missing);
                cJSON *j = v ? cJSON_Parse(v) : NULL;
                if (j) cJSON_AddItemToObject(res, w->results[i], j);
                free(v);
            }
        }
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(w->pending);
    w->pending = xasprintf("%s\n", text ? text : "{}");
    w->len = strlen(w->pending);
    w->off = 0;
    free(text);
}

static long wait_stream(void *ud, char *buf, size_t max)
{
    Wait *w = ud;
    if (w->off < w->len) {
        size_t n = w->len - w->off < max ? w->len - w->off : max;
        memcpy(buf, w->pending + w->off, n);
        w->off += n;
        return (long)n;
    }
    if (w->done) return -1;
    int64_t now = util_now_us();
    if (now < w->next_due) return 0;
    w->next_due = now + w->interval_us;
    ApiReq on_this_thread;
    memset(&on_this_thread, 0, sizeof on_this_thread);
    on_this_thread.ctx = w->ctx;
    Store *s = api_store(&on_this_thread);
    RunqRow row;
    int f = s ? store_runq_get(s, w->dag_id, w->run_id, &row) : -1;
    if (f < 0) return 0; /* the store is away: ask again at the next interval */
    if (f == 0) {
        /* deleted while we waited: say so as the last line */
        free(w->pending);
        w->pending = xasprintf("{\"detail\":\"The DagRun with dag_id: `%s` and run_id: `%s` was not found\"}\n",
                               w->dag_id, w->run_id);
        w->len = strlen(w->pending);
        w->off = 0;
        w->done = 1;
    } else {
        wait_line(w, s, &row.run);
        runq_row_clear(&row);
    }
    return wait_stream(ud, buf, max);
}

static void wait_run(ApiReq *r, ApiResp *out)
{
    const char *iv = api_query(r, "interval");
    if (!iv) {
        api_error_422(out, "query", "interval", "Field required");
        return;
    }
    char *end;
    errno = 0;
    double secs = strtod(iv, &end);
    if (!*iv || *end || errno || !isfinite(secs) || secs <= 0 || secs > 86400.0 * 365) {
        api_error_422(out, "query", "interval", "Input should be a number greater than 0");
        return;
    }
    const char *res[64];
    int nres = api_query_all(r, "result", res, 64);
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    RunqRow row;
    if (!load_run(r, out, s, &row)) return;
    Wait *w = xcalloc(1, sizeof *w);
    w->ctx = r->ctx;
    w->dag_id = xstrdup(r->params[0]);
    w->run_id = xstrdup(r->params[1]);
    w->results = xcalloc((size_t)nres + 1, sizeof *w->results);
    for (int i = 0; i < nres; i++) w->results[w->n_results++] = xstrdup(res[i]);
    w->interval_us = (int64_t)(secs * 1e6);
    if (w->interval_us < 1) w->interval_us = 1;
    w->next_due = util_now_us() + w->interval_us;
    wait_line(w, s, &row.run);
    runq_row_clear(&row);
    out->status = 200;
    out->content_type = "application/x-ndjson";
    out->stream = wait_stream;
    out->stream_free = wait_free;
    out->stream_ud = w;
}

/* ---- the table ---------------------------------------------------------------------------- */

const ApiRoute api_routes_runs[] = {
    {"GET", "/api/v2/dags/{dag_id}/dagRuns", API_ROLE_VIEWER, list_runs},
    {"POST", "/api/v2/dags/{dag_id}/dagRuns", API_ROLE_USER, trigger_run},
    {"POST", "/api/v2/dags/{dag_id}/dagRuns/list", API_ROLE_VIEWER, list_batch},
    {"GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}", API_ROLE_VIEWER, get_run},
    {"PATCH", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}", API_ROLE_USER, patch_run},
    {"DELETE", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}", API_ROLE_USER, delete_run},
    {"POST", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/clear", API_ROLE_USER, clear_run},
    {"GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/wait", API_ROLE_VIEWER, wait_run},
    {"GET", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/upstreamAssetEvents", API_ROLE_VIEWER, upstream_asset_events},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
