/* routes_tis — task instances in the REST API: lists (per run, across runs with "~", and the
 * POST .../taskInstances/list batch form), one instance, its tries, its log (followed with
 * continuation tokens), its XComs, why it is not running (dependencies), marking states
 * (PATCH, with dry runs) and clearing (clearTaskInstances), as Airflow's REST API v2 does.
 *
 * Reads go through store/tiquery.h: a list is one query for the page and one COUNT, with
 * the run's dates and the DAG version joined in. What the store does not hold — display
 * names, operator class names, the task graph and trigger rules — comes from the run's DAG
 * version, parsed once per process (a DagCache shared by the pool threads; versions never
 * change once written).
 *
 * Every change goes through the store's guarded transitions (store_ti_set_state,
 * store_ti_clear_for_rerun), so a worker finishing a try and a person marking it cannot
 * both win: whichever comes second is refused, and the API says so (409) rather than
 * pretending.
 *
 * Log continuation tokens are base64url({"end_of_log", "log_pos"}) plus an HMAC-SHA256 of
 * that payload bound to the task instance and try, under the API's token key: a client
 * cannot forge one or reuse one on another log (400 "Bad Signature"). A running try's log
 * is answered in whole lines only, so a follower never sees half a line and then the rest
 * of it: every line once, in order. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/config.h"
#include "core/dag.h"
#include "core/operator.h"
#include "core/secret.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "scheduler/rules.h"
#include "store/dagcache.h"
#include "store/dags.h"
#include "store/kv.h"
#include "store/runs.h"
#include "store/ti.h"
#include "store/tiquery.h"
#include "store/xcom.h"

#define MAX_VALUES 128                 /* values of one repeated filter */
#define LOG_CHUNK (1024 * 1024)        /* bytes of log per answer */
#define LOG_FULL_MAX (64 * 1024 * 1024) /* full_content stops here */

/* Airflow's TaskInstanceState values (the API's enum); "none" is JSON null. */
static const char *const AIRFLOW_STATES[] = {"removed",      "scheduled",         "queued",          "running",
                                             "success",      "restarting",        "failed",          "up_for_retry",
                                             "up_for_reschedule", "upstream_failed", "skipped", "deferred", NULL};

/* ---- small helpers ------------------------------------------------------------------------ */

static const char *tilde(const char *p)
{
    return p && strcmp(p, "~") == 0 ? NULL : p;
}

static int text_ok(const char *s)
{
    return s && store_text_valid(s, strlen(s));
}

/* Path parameters that are not text cannot name anything: 404, before the store sees them. */
static int params_ok(ApiReq *r, ApiResp *out)
{
    for (int i = 0; i < r->nparams; i++)
        if (!text_ok(r->params[i])) {
            api_error(out, 404, "Not found: a path parameter of %s is not valid UTF-8", r->route);
            return 0;
        }
    return 1;
}

static Store *store_or_503(ApiReq *r, ApiResp *out)
{
    Store *s = api_store(r);
    if (!s) api_store_error(out, NULL);
    return s;
}

/* 32-hex ids as the UUIDs the API's schemas ask for (8-4-4-4-12). */
static void uuid_of(const char *id, char out[40])
{
    if (!id || strlen(id) != 32) {
        util_strlcpy(out, id ? id : "", 40);
        return;
    }
    snprintf(out, 40, "%.8s-%.4s-%.4s-%.4s-%.12s", id, id + 8, id + 12, id + 16, id + 20);
}

/* The Airflow class name of a stored operator ("bash" -> "BashOperator"): the last part of
 * its first Airflow alias; operators of gust's own keep their short name. */
static const char *op_class(const char *name, char *buf, size_t len)
{
    if (!name) return NULL;
    const OperatorDef *d = operator_find(name);
    const char *cls = name;
    if (d && d->aliases && d->aliases[0]) {
        const char *dot = strrchr(d->aliases[0], '.');
        cls = dot ? dot + 1 : d->aliases[0];
    }
    util_strlcpy(buf, cls, len);
    return buf;
}

static int64_t ll_clamp(double v)
{
    if (v >= 9.2e18) return INT64_MAX;
    if (v <= -9.2e18) return INT64_MIN + 1;
    return (int64_t)llround(v);
}

/* ---- DAG versions, parsed once per process ---------------------------------------------- */

static pthread_once_t dags_once = PTHREAD_ONCE_INIT;
static DagCache *dags_cache;
static void dags_make(void) { dags_cache = dagcache_new(); }

static const Dag *dag_of(Store *s, const char *version_id)
{
    if (!version_id) return NULL;
    pthread_once(&dags_once, dags_make);
    char err[256];
    return dagcache_get(dags_cache, s, version_id, err, sizeof err);
}

/* The index in d->tasks of a task id: binary search over the version's sorted index (large
 * DAGs: the walks below look up every edge), linear without one. -1 when absent. */
static long task_index(const Dag *d, const char *task_id)
{
    if (!d) return -1;
    if (d->by_id) {
        size_t lo = 0, hi = d->n_tasks;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(d->tasks[d->by_id[mid]]->task_id, task_id);
            if (c == 0) return (long)d->by_id[mid];
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        return -1;
    }
    for (size_t i = 0; i < d->n_tasks; i++)
        if (strcmp(d->tasks[i]->task_id, task_id) == 0) return (long)i;
    return -1;
}

/* Mark in sel (n_tasks entries) every task upstream and/or downstream of the ones marked 1,
 * transitively, with 2: a breadth-first walk over adjacency lists built once (CSR), so a
 * 10,000-task fan-out costs its edges, not tasks x edges. */
static void dag_reach(const Dag *d, char *sel, int upstream, int downstream)
{
    size_t n = d->n_tasks, ne = 0;
    if (!n || (!upstream && !downstream)) return;
    for (size_t i = 0; i < n; i++) ne += d->tasks[i]->n_upstream;
    size_t *eu = xcalloc(ne + 1, sizeof *eu), *et = xcalloc(ne + 1, sizeof *et), k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d->tasks[i]->n_upstream; j++) {
            long u = task_index(d, d->tasks[i]->upstream[j]);
            if (u < 0) continue;
            eu[k] = (size_t)u; /* edge u -> i */
            et[k] = i;
            k++;
        }
    ne = k;
    size_t *off = xcalloc(n + 2, sizeof *off), *adj = xcalloc(ne + 1, sizeof *adj), *fill = xcalloc(n + 1, sizeof *fill);
    size_t *queue = xcalloc(n + 1, sizeof *queue);
    char *seen = xcalloc(n + 1, 1);
    for (int dir = 0; dir < 2; dir++) {
        if ((dir == 0 && !upstream) || (dir == 1 && !downstream)) continue;
        /* dir 0 walks from a task to its upstreams, dir 1 from a task to its downstreams */
        memset(off, 0, (n + 2) * sizeof *off);
        for (size_t e = 0; e < ne; e++) off[(dir == 0 ? et[e] : eu[e]) + 1]++;
        for (size_t i = 0; i < n; i++) off[i + 1] += off[i];
        memcpy(fill, off, n * sizeof *fill);
        for (size_t e = 0; e < ne; e++) {
            size_t from = dir == 0 ? et[e] : eu[e], to = dir == 0 ? eu[e] : et[e];
            adj[fill[from]++] = to;
        }
        size_t head = 0, tail = 0;
        for (size_t i = 0; i < n; i++) {
            seen[i] = sel[i] == 1;
            if (seen[i]) queue[tail++] = i;
        }
        while (head < tail) {
            size_t x = queue[head++];
            for (size_t a = off[x]; a < off[x + 1]; a++) {
                size_t to = adj[a];
                if (seen[to]) continue;
                seen[to] = 1;
                queue[tail++] = to;
            }
        }
        for (size_t i = 0; i < n; i++)
            if (seen[i] && !sel[i]) sel[i] = 2; /* reached, not chosen */
    }
    free(queue);
    free(seen);
    free(off);
    free(adj);
    free(fill);
    free(eu);
    free(et);
}

/* ---- not-found answers in Airflow's words --------------------------------------------------- */

static void nf_dag(ApiResp *out, const char *dag_id)
{
    api_error(out, 404, "The Dag with ID: `%s` was not found", dag_id);
}

static void nf_run(ApiResp *out, const char *dag_id, const char *run_id)
{
    api_error(out, 404, "The DagRun with dag_id: `%s` and run_id: `%s` was not found", dag_id, run_id);
}

static void nf_ti(ApiResp *out, const char *dag_id, const char *run_id, const char *task_id, int map_index)
{
    api_error(out, 404,
              "The Task Instance with dag_id: `%s`, run_id: `%s`, task_id: `%s` and map_index: `%d` was not found",
              dag_id, run_id, task_id, map_index);
}

/* 1 the DAG exists; 0 after answering 404; -1 after answering 503. */
static int need_dag(ApiResp *out, Store *s, const char *dag_id)
{
    StoreDag sd;
    int found = store_dag_get(s, dag_id, &sd);
    if (found < 0) {
        api_store_error(out, s);
        return -1;
    }
    if (!found) {
        nf_dag(out, dag_id);
        return 0;
    }
    store_dag_clear(&sd);
    return 1;
}

static int need_run(ApiResp *out, Store *s, const char *dag_id, const char *run_id, DagRun *run)
{
    DagRun tmp;
    DagRun *rr = run ? run : &tmp;
    int found = store_run_get(s, dag_id, run_id, rr);
    if (found < 0) {
        api_store_error(out, s);
        return -1;
    }
    if (!found) {
        nf_run(out, dag_id, run_id);
        return 0;
    }
    if (!run) run_clear(&tmp);
    return 1;
}

/* An integer path parameter: 0 ok, -1 after answering 422. */
static int path_int(ApiResp *out, const char *name, const char *text, long long lo, long long hi, long long *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(text, &end, 10);
    if (errno || end == text || *end) {
        api_error_422(out, "path", name, "Input should be a valid integer, unable to parse string as an integer");
        return -1;
    }
    if (x < lo || x > hi) {
        api_error_422(out, "path", name, "Input should be between %lld and %lld", lo, hi);
        return -1;
    }
    *v = x;
    return 0;
}

/* The map_index of a single-instance route: the path's (index pi) or the query's (default
 * -1). 0 ok, -1 after answering 422. */
static int get_map_index(ApiReq *r, ApiResp *out, int pi, int *mi)
{
    long long v = -1;
    if (pi >= 0) {
        if (path_int(out, "map_index", r->params[pi], -1, INT_MAX, &v) != 0) return -1;
    } else if (api_query_int(r, out, "map_index", -1, INT_MAX, &v) < 0) {
        return -1;
    }
    *mi = (int)v;
    return 0;
}

/* The task instance of a single-instance route (params: dag_id, run_id, task_id[, map_index]).
 * 1 found; 0 after answering (404, 422 or 503). */
static int load_ti(ApiReq *r, ApiResp *out, Store *s, int map_pi, TiqRow *row)
{
    int mi;
    if (get_map_index(r, out, map_pi, &mi) != 0) return 0;
    int found = store_tiq_get(s, r->params[0], r->params[1], r->params[2], mi, row);
    if (found < 0) {
        api_store_error(out, s);
        return 0;
    }
    if (!found) {
        nf_ti(out, r->params[0], r->params[1], r->params[2], mi);
        return 0;
    }
    return 1;
}

/* ---- JSON of a task instance ---------------------------------------------------------------- */

static const char *dag_display(const Dag *d, const char *dag_id)
{
    return d && d->display_name && *d->display_name ? d->display_name : dag_id;
}

static const char *task_display(const Dag *d, const char *task_id)
{
    const DagTask *t = d ? dag_find_task(d, task_id) : NULL;
    return t && t->display_name && *t->display_name ? t->display_name : task_id;
}

static cJSON *version_json(const char *version_id, int number, int64_t created_at, const char *dag_id,
                           const Dag *d)
{
    if (!version_id || number < 0) return cJSON_CreateNull();
    cJSON *v = cJSON_CreateObject();
    char uuid[40];
    uuid_of(version_id, uuid);
    cJSON_AddStringToObject(v, "id", uuid);
    cJSON_AddNumberToObject(v, "version_number", number);
    cJSON_AddStringToObject(v, "dag_id", dag_id);
    cJSON_AddNullToObject(v, "bundle_name");
    cJSON_AddNullToObject(v, "bundle_version");
    api_add_time(v, "created_at", created_at);
    cJSON_AddStringToObject(v, "dag_display_name", dag_display(d, dag_id));
    cJSON_AddNullToObject(v, "bundle_url");
    return v;
}

static void add_state(cJSON *o, TiState st)
{
    if (st == TI_NONE)
        cJSON_AddNullToObject(o, "state");
    else
        cJSON_AddStringToObject(o, "state", ti_state_name(st));
}

static void add_duration(cJSON *o, int64_t us)
{
    if (us < 0)
        cJSON_AddNullToObject(o, "duration");
    else
        cJSON_AddNumberToObject(o, "duration", (double)us / 1e6);
}

static void add_int_or_null(cJSON *o, const char *name, int64_t v)
{
    if (v < 0)
        cJSON_AddNullToObject(o, name);
    else
        cJSON_AddNumberToObject(o, name, (double)v);
}

static cJSON *ti_json(Store *s, const TiqRow *w)
{
    const TaskInstance *t = &w->ti;
    const Dag *d = dag_of(s, t->dag_version_id);
    cJSON *o = cJSON_CreateObject();
    char buf[128];
    uuid_of(t->id, buf);
    cJSON_AddStringToObject(o, "id", buf);
    cJSON_AddStringToObject(o, "task_id", t->task_id);
    cJSON_AddStringToObject(o, "dag_id", t->dag_id);
    cJSON_AddStringToObject(o, "dag_run_id", t->run_id);
    cJSON_AddNumberToObject(o, "map_index", t->map_index);
    api_add_time(o, "logical_date", w->logical_date);
    api_add_time(o, "run_after", w->run_after);
    api_add_time(o, "start_date", t->start_date);
    api_add_time(o, "end_date", t->end_date);
    add_duration(o, t->duration);
    add_state(o, t->state);
    cJSON_AddNumberToObject(o, "try_number", t->try_number);
    cJSON_AddNumberToObject(o, "max_tries", t->max_tries);
    cJSON_AddStringToObject(o, "task_display_name", task_display(d, t->task_id));
    cJSON_AddStringToObject(o, "dag_display_name", dag_display(d, t->dag_id));
    api_add_str(o, "hostname", t->hostname);
    cJSON_AddNullToObject(o, "unixname");
    cJSON_AddStringToObject(o, "pool", t->pool ? t->pool : "default_pool");
    cJSON_AddNumberToObject(o, "pool_slots", t->pool_slots);
    api_add_str(o, "queue", t->queue);
    cJSON_AddNumberToObject(o, "priority_weight", t->priority_weight);
    const char *cls = op_class(t->operator_name, buf, sizeof buf);
    api_add_str(o, "operator", cls);
    api_add_str(o, "operator_name", cls);
    api_add_time(o, "queued_when", t->queued_at);
    api_add_time(o, "scheduled_when", t->scheduled_at);
    add_int_or_null(o, "pid", t->pid);
    cJSON_AddNullToObject(o, "executor");
    cJSON_AddStringToObject(o, "executor_config", "{}");
    api_add_str(o, "note", w->note);
    cJSON_AddNullToObject(o, "rendered_map_index");
    api_add_json_text(o, "rendered_fields", w->rendered_fields, "{}");
    if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(o, "rendered_fields"))) {
        cJSON_DeleteItemFromObjectCaseSensitive(o, "rendered_fields");
        cJSON_AddItemToObject(o, "rendered_fields", cJSON_CreateObject());
    }
    cJSON_AddNullToObject(o, "trigger");
    cJSON_AddNullToObject(o, "triggerer_job");
    cJSON_AddItemToObject(o, "dag_version",
                          version_json(t->dag_version_id, w->version_number, w->version_created_at, t->dag_id, d));
    return o;
}

static void answer_tis(ApiResp *out, Store *s, const TiqRow *rows, size_t n, int64_t total)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "task_instances");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, ti_json(s, &rows[i]));
    cJSON_AddNumberToObject(doc, "total_entries", (double)total);
    api_json(out, 200, doc);
}

static void row_clear(TiqRow *row)
{
    ti_clear(&row->ti);
    free(row->note);
    free(row->rendered_fields);
    free(row->run_state);
    memset(row, 0, sizeof *row);
}

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
        if (!text_ok(vals[i])) {
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

static int q_text(ApiReq *r, ApiResp *out, const char *name, const char **v)
{
    const char *t = api_query(r, name);
    if (t && !text_ok(t)) {
        api_error_422(out, "query", name, "Input should be valid UTF-8 text");
        return -1;
    }
    *v = t;
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
        *dst[i] = ll_clamp(v * 1e6);
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
    if (!mapped && q_text(r, out, "task_id", &f->task_id) != 0) return -1;
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
    if (q_text(r, out, "task_display_name_pattern", &f->task_id_pattern) ||
        q_text(r, out, "dag_id_pattern", &f->dag_id_pattern) ||
        q_text(r, out, "run_id_pattern", &f->run_id_pattern) ||
        q_text(r, out, "pool_name_pattern", &f->pool_pattern) ||
        q_text(r, out, "queue_name_pattern", &f->queue_pattern) ||
        q_text(r, out, "operator_name_pattern", &f->operator_pattern) ||
        q_text(r, out, "task_group_id", &f->task_group))
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
    answer_tis(out, s, rows, n, total);
    tiq_rows_free(rows, n);
}

/* GET /dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances ("~" = every DAG / run) */
static void h_list(ApiReq *r, ApiResp *out)
{
    if (!params_ok(r, out)) return;
    Store *s = store_or_503(r, out);
    if (!s) return;
    const char *dag_id = tilde(r->params[0]), *run_id = tilde(r->params[1]);
    if (dag_id && need_dag(out, s, dag_id) <= 0) return;
    if (dag_id && run_id && need_run(out, s, dag_id, run_id, NULL) <= 0) return;
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
    if (!params_ok(r, out)) return;
    Store *s = store_or_503(r, out);
    if (!s) return;
    if (need_dag(out, s, r->params[0]) <= 0 || need_run(out, s, r->params[0], r->params[1], NULL) <= 0) return;
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
    row_clear(&row);
    ListArgs *a = xcalloc(1, sizeof *a);
    tiq_filter_init(&a->f);
    a->f.dag_id = r->params[0];
    a->f.run_id = r->params[1];
    a->f.task_id = r->params[2];
    if (list_query(r, out, s, a, 1) == 0) run_list(out, s, &a->f);
    free(a);
}

/* ---- JSON bodies ------------------------------------------------------------------------------ */

static const cJSON *b_get(const cJSON *doc, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

static int b_bool(ApiResp *out, const cJSON *doc, const char *name, int dflt, int *v)
{
    const cJSON *j = b_get(doc, name);
    *v = dflt;
    if (!j) return 0;
    if (!cJSON_IsBool(j)) {
        api_error_422(out, "body", name, "Input should be a valid boolean");
        return -1;
    }
    *v = cJSON_IsTrue(j);
    return 0;
}

static int b_str(ApiResp *out, const cJSON *doc, const char *name, const char **v)
{
    const cJSON *j = b_get(doc, name);
    *v = NULL;
    if (!j) return 0;
    if (!cJSON_IsString(j) || !text_ok(j->valuestring)) {
        api_error_422(out, "body", name, "Input should be a valid string");
        return -1;
    }
    *v = j->valuestring;
    return 0;
}

static int b_time(ApiResp *out, const cJSON *doc, const char *name, int64_t *v)
{
    const cJSON *j = b_get(doc, name);
    if (!j) return 0;
    char err[256];
    if (!cJSON_IsString(j) || time_parse_iso(j->valuestring, NULL, v, err, sizeof err) != 0) {
        api_error_422(out, "body", name, "Input should be a valid datetime%s%s", cJSON_IsString(j) ? ": " : "",
                      cJSON_IsString(j) ? err : "");
        return -1;
    }
    return 0;
}

static int b_number(ApiResp *out, const cJSON *doc, const char *name, int64_t *us)
{
    const cJSON *j = b_get(doc, name);
    if (!j) return 0;
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble)) {
        api_error_422(out, "body", name, "Input should be a valid number");
        return -1;
    }
    *us = ll_clamp(j->valuedouble * 1e6);
    return 0;
}

/* An array of strings (null items become "none" when nulls_as_none). */
static int b_strs(ApiResp *out, const cJSON *doc, const char *name, const char **vals, size_t *n, int nulls_as_none)
{
    const cJSON *j = b_get(doc, name);
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
        if (!cJSON_IsString(it) || !text_ok(it->valuestring)) {
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
        if (b_time(out, doc, name, dst[i]) != 0) return -1;
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
        b_number(out, doc, "duration_lt", &f->duration.lt) || b_str(out, doc, "order_by", &order))
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
        const cJSON *j = b_get(doc, pages[i]);
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
    if (!(s = store_or_503(r, out))) goto done;
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
    if (!params_ok(r, out)) return;
    Store *s = store_or_503(r, out);
    if (!s) return;
    TiqRow row;
    if (!load_ti(r, out, s, map_pi, &row)) return;
    api_json(out, 200, ti_json(s, &row));
    row_clear(&row);
}

static void h_get(ApiReq *r, ApiResp *out) { get_one(r, out, -2); }
static void h_get_mapped(ApiReq *r, ApiResp *out) { get_one(r, out, 3); }

/* ---- marking states (PATCH) ------------------------------------------------------------------ */

/* Instances of the selected tasks in the selected runs: the task itself (and its upstream /
 * downstream tasks in the run's DAG version) in this run, or also in earlier (past) /
 * later (future) runs by logical date. */
typedef struct Selection {
    const char **task_ids;
    size_t n;
    char *sel;      /* per DAG task: 1 chosen, 2 reached (may be NULL when the DAG is unknown) */
    const Dag *dag; /* the run's version, or NULL */
} Selection;

static void selection_free(Selection *sel)
{
    free(sel->task_ids);
    free(sel->sel);
    memset(sel, 0, sizeof *sel);
}

static void select_tasks(Store *s, const TiqRow *row, int up, int down, Selection *out)
{
    memset(out, 0, sizeof *out);
    out->dag = dag_of(s, row->ti.dag_version_id);
    long idx = task_index(out->dag, row->ti.task_id);
    if (idx < 0) {
        out->task_ids = xcalloc(1, sizeof *out->task_ids);
        out->task_ids[out->n++] = row->ti.task_id;
        return;
    }
    const Dag *d = out->dag;
    out->sel = xcalloc(d->n_tasks + 1, 1);
    out->sel[idx] = 1;
    dag_reach(d, out->sel, up, down);
    out->task_ids = xcalloc(d->n_tasks + 1, sizeof *out->task_ids);
    for (size_t i = 0; i < d->n_tasks; i++)
        if (out->sel[i]) out->task_ids[out->n++] = d->tasks[i]->task_id;
}

typedef struct PatchReq {
    int want_state, want_note;
    TiState new_state;
    const char *note;
    int up, down, past, future;
} PatchReq;

static int mask_has(const char *const *mask, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(mask[i], name) == 0) return 1;
    return 0;
}

/* The PATCH body (PatchTaskInstanceBody) and update_mask. 0, or -1 after answering. */
static int patch_parse(ApiReq *r, ApiResp *out, const cJSON *doc, PatchReq *p)
{
    static const char *const allowed[] = {"new_state", "note", "include_upstream", "include_downstream",
                                          "include_future", "include_past", NULL};
    memset(p, 0, sizeof *p);
    if (api_body_only(out, doc, allowed) != 0) return -1;
    const char *mask[16];
    int nm = api_query_all(r, "update_mask", mask, 16);
    const cJSON *ns = cJSON_GetObjectItemCaseSensitive(doc, "new_state");
    const cJSON *note = cJSON_GetObjectItemCaseSensitive(doc, "note");
    p->want_state = nm ? mask_has(mask, nm, "new_state") : ns != NULL;
    p->want_note = nm ? mask_has(mask, nm, "note") : note != NULL;
    if (ns && !cJSON_IsNull(ns)) {
        const char *v = cJSON_IsString(ns) ? ns->valuestring : "";
        if (!cJSON_IsString(ns) || (strcmp(v, "success") != 0 && strcmp(v, "failed") != 0 && strcmp(v, "skipped") != 0)) {
            api_error_422(out, "body", "new_state", "'%.100s' is not one of ['success', 'failed', 'skipped']", v);
            return -1;
        }
        p->new_state = (TiState)ti_state_parse(v);
    } else {
        p->want_state = 0; /* null: no change of state */
    }
    if (note && !cJSON_IsNull(note)) {
        if (!cJSON_IsString(note) || !text_ok(note->valuestring)) {
            api_error_422(out, "body", "note", "Input should be a valid string");
            return -1;
        }
        if (strlen(note->valuestring) > 1000) {
            api_error_422(out, "body", "note", "String should have at most 1000 characters");
            return -1;
        }
        p->note = note->valuestring;
    }
    if (b_bool(out, doc, "include_upstream", 0, &p->up) || b_bool(out, doc, "include_downstream", 0, &p->down) ||
        b_bool(out, doc, "include_future", 0, &p->future) || b_bool(out, doc, "include_past", 0, &p->past))
        return -1;
    return 0;
}

/* The instances a state change would touch: selected tasks' instances whose state differs
 * and may move to the new state. 0, or -1 after answering 503. */
static int patch_targets(ApiResp *out, Store *s, const TiqRow *row, const PatchReq *p, Selection *sel,
                         TiqRow **rows, size_t *n)
{
    select_tasks(s, row, p->up, p->down, sel);
    TiqFilter f;
    tiq_filter_init(&f);
    f.dag_id = row->ti.dag_id;
    f.task_ids = sel->task_ids;
    f.n_task_ids = sel->n;
    if ((p->past || p->future) && row->logical_date >= 0) {
        if (!p->past) f.logical_date.gte = row->logical_date;
        if (!p->future) f.logical_date.lte = row->logical_date;
    } else {
        f.run_id = row->ti.run_id;
    }
    f.order_sql = TIQ_COL_RUN_AFTER ", ti.run_id, ti.task_id, ti.map_index";
    TiqRow *all;
    size_t na;
    if (store_tiq_list(s, &f, &all, &na, NULL) != 0) {
        api_store_error(out, s);
        return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < na; i++) {
        int keep = all[i].ti.state != p->new_state && ti_transition_allowed(all[i].ti.state, p->new_state);
        /* the instance itself keeps only its own map index; relatives keep all of theirs */
        if (strcmp(all[i].ti.task_id, row->ti.task_id) == 0 && all[i].ti.map_index != row->ti.map_index &&
            strcmp(all[i].ti.run_id, row->ti.run_id) == 0)
            keep = 0;
        if (keep)
            all[k++] = all[i];
        else
            row_clear(&all[i]);
    }
    *rows = all;
    *n = k;
    return 0;
}

/* Airflow's set_task_instance_state ends by clearing the failed / upstream_failed
 * instances downstream of the marked task in the runs it touched (so that marking a failed
 * task success lets the rest of the run go on), their runs going back to queued. */
static void resume_downstream(Store *s, const TiqRow *row, const Selection *sel, const TiqRow *marked,
                              const TiqChange *ch, size_t nm)
{
    if (!sel->dag || !sel->sel || !nm) return;
    const Dag *d = sel->dag;
    char *down = xcalloc(d->n_tasks + 1, 1);
    long idx = task_index(d, row->ti.task_id);
    if (idx < 0) {
        free(down);
        return;
    }
    down[idx] = 1;
    dag_reach(d, down, 0, 1);
    const char **tids = xcalloc(d->n_tasks + 1, sizeof *tids);
    size_t nt = 0;
    for (size_t i = 0; i < d->n_tasks; i++)
        if (down[i] == 2) tids[nt++] = d->tasks[i]->task_id;
    const char **runs = xcalloc(nm + 1, sizeof *runs);
    size_t nr = 0;
    for (size_t i = 0; i < nm; i++) {
        if (!ch[i].changed) continue;
        size_t j = 0;
        while (j < nr && strcmp(runs[j], marked[i].ti.run_id) != 0) j++;
        if (j == nr) runs[nr++] = marked[i].ti.run_id;
    }
    static const char *const failed[] = {"failed", "upstream_failed"};
    TiqFilter f;
    tiq_filter_init(&f);
    f.dag_id = row->ti.dag_id;
    f.run_ids = runs;
    f.n_run_ids = nr;
    f.task_ids = tids;
    f.n_task_ids = nt;
    f.states = failed;
    f.n_states = 2;
    f.order_sql = "ti.run_id, ti.task_id";
    TiqRow *rows = NULL;
    size_t n = 0;
    if (nt && nr && store_tiq_list(s, &f, &rows, &n, NULL) == 0) {
        /* the instances just marked stay as they were marked (Airflow's exclude_task_ids) */
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            int mine = 0;
            for (size_t m = 0; m < nm && !mine; m++) mine = ch[m].changed && strcmp(ch[m].id, rows[i].ti.id) == 0;
            if (mine)
                row_clear(&rows[i]);
            else
                rows[k++] = rows[i];
        }
        n = k;
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j < n && strcmp(rows[j].ti.run_id, rows[i].ti.run_id) == 0) j++;
            TiqChange *cl = xcalloc(j - i, sizeof *cl);
            for (size_t q = i; q < j; q++) {
                TiqChange *c = &cl[q - i];
                memcpy(c->id, rows[q].ti.id, sizeof c->id);
                c->from = rows[q].ti.state;
                c->try_number = rows[q].ti.try_number;
                const DagTask *t = dag_find_task(d, rows[q].ti.task_id);
                c->retries = t ? t->retries : -1;
            }
            store_tiq_clear_run(s, row->ti.dag_id, rows[i].ti.run_id, cl, j - i, 1, NULL, NULL);
            free(cl);
            i = j;
        }
    }
    tiq_rows_free(rows, n);
    free(runs);
    free(tids);
    free(down);
}

static void patch_common(ApiReq *r, ApiResp *out, int map_pi, int dry_run)
{
    if (!params_ok(r, out)) return;
    Store *s = store_or_503(r, out);
    if (!s) return;
    cJSON *doc = NULL;
    TiqRow row;
    memset(&row, 0, sizeof row);
    Selection sel;
    memset(&sel, 0, sizeof sel);
    TiqRow *targets = NULL;
    size_t nt = 0;
    PatchReq p;
    if (api_body_object(r, out, &doc) != 0) return;
    if (patch_parse(r, out, doc, &p) != 0) goto done;
    if (need_dag(out, s, r->params[0]) <= 0) goto done;
    if (!load_ti(r, out, s, map_pi, &row)) goto done;
    if (!p.want_state) {
        /* only the note: the answer is the instance itself */
        if (!dry_run && p.want_note) {
            if (store_tiq_set_note(s, row.ti.id, p.note) < 0) {
                api_store_error(out, s);
                goto done;
            }
            free(row.note);
            row.note = xstrdup(p.note);
            api_audit(r, "api.patch_task_instance", row.ti.dag_id, row.ti.run_id, row.ti.task_id,
                      "{\"fields\":[\"note\"]}");
        }
        answer_tis(out, s, &row, 1, 1);
        goto done;
    }
    if (patch_targets(out, s, &row, &p, &sel, &targets, &nt) != 0) goto done;
    if (dry_run) {
        answer_tis(out, s, targets, nt, (int64_t)nt);
        goto done;
    }
    if (!nt) {
        if (row.ti.state == p.new_state)
            api_error(out, 409, "Task id %s is already in %s state", row.ti.task_id, ti_state_name(p.new_state));
        else
            api_error(out, 409, "Task id %s is %s; it cannot be marked %s", row.ti.task_id,
                      row.ti.state == TI_NONE ? "without a state" : ti_state_name(row.ti.state),
                      ti_state_name(p.new_state));
        goto done;
    }
    TiqChange *ch = xcalloc(nt, sizeof *ch);
    for (size_t i = 0; i < nt; i++) {
        memcpy(ch[i].id, targets[i].ti.id, sizeof ch[i].id);
        ch[i].from = targets[i].ti.state;
        ch[i].try_number = targets[i].ti.try_number;
    }
    int moved = 0;
    if (store_tiq_mark(s, ch, nt, p.new_state, &moved) != 0) {
        free(ch);
        api_store_error(out, s);
        goto done;
    }
    /* the instance named in the path must have moved: a worker (or another call) that
     * changed it between our read and our write wins, and the caller is told */
    int self_refused = 0;
    for (size_t i = 0; i < nt; i++)
        if (strcmp(ch[i].id, row.ti.id) == 0 && !ch[i].changed) self_refused = 1;
    const char **ids = xcalloc(nt + 1, sizeof *ids);
    size_t nids = 0;
    for (size_t i = 0; i < nt; i++)
        if (ch[i].changed) ids[nids++] = ch[i].id;
    if (p.want_note && store_tiq_set_note(s, row.ti.id, p.note) < 0) {
        free(ids);
        free(ch);
        api_store_error(out, s);
        goto done;
    }
    if (moved) resume_downstream(s, &row, &sel, targets, ch, nt);
    char extra[256];
    snprintf(extra, sizeof extra, "{\"new_state\":\"%s\",\"changed\":%d%s}", ti_state_name(p.new_state), moved,
             p.want_note ? ",\"note\":true" : "");
    if (moved || p.want_note) api_audit(r, "api.patch_task_instance", row.ti.dag_id, row.ti.run_id, row.ti.task_id, extra);
    if (self_refused) {
        TiqRow now;
        int found = store_tiq_get(s, row.ti.dag_id, row.ti.run_id, row.ti.task_id, row.ti.map_index, &now);
        api_error(out, 409, "Task id %s changed while it was being marked %s: it is now %s on try %d",
                  row.ti.task_id, ti_state_name(p.new_state),
                  found == 1 ? (now.ti.state == TI_NONE ? "without a state" : ti_state_name(now.ti.state)) : "gone",
                  found == 1 ? now.ti.try_number : 0);
        if (found == 1) row_clear(&now);
        free(ids);
        free(ch);
        goto done;
    }
    TiqFilter f;
    tiq_filter_init(&f);
    f.ids = ids;
    f.n_ids = nids;
    f.order_sql = TIQ_COL_RUN_AFTER ", ti.run_id, ti.task_id, ti.map_index";
    TiqRow *after = NULL;
    size_t na = 0;
    if (nids && store_tiq_list(s, &f, &after, &na, NULL) != 0)
        api_store_error(out, s);
    else
        answer_tis(out, s, after, na, (int64_t)na);
    tiq_rows_free(after, na);
    free(ids);
    free(ch);
done:
    tiq_rows_free(targets, nt);
    selection_free(&sel);
    row_clear(&row);
    cJSON_Delete(doc);
}

static void h_patch(ApiReq *r, ApiResp *out) { patch_common(r, out, -2, 0); }
static void h_patch_mapped(ApiReq *r, ApiResp *out) { patch_common(r, out, 3, 0); }
static void h_patch_dry(ApiReq *r, ApiResp *out) { patch_common(r, out, -2, 1); }
static void h_patch_dry_mapped(ApiReq *r, ApiResp *out) { patch_common(r, out, 3, 1); }

/* ---- clearTaskInstances ---------------------------------------------------------------------- */

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
        v->dag = dag_of(s, w->ti.dag_version_id);
        v->sel = NULL;
        if (v->dag) {
            v->sel = xcalloc(v->dag->n_tasks + 1, 1);
            for (size_t i = 0; i < np; i++) {
                long idx = task_index(v->dag, picks[i].task_id);
                if (idx >= 0) v->sel[idx] = 1;
            }
            dag_reach(v->dag, v->sel, up, down);
        }
    }
    VersionSel *v = &(*vs)[k];
    long idx = v->dag ? task_index(v->dag, w->ti.task_id) : -1;
    return idx >= 0 && v->sel[idx] == 2;
}

/* POST /dags/{dag_id}/clearTaskInstances (ClearTaskInstancesBody) */
static void h_clear(ApiReq *r, ApiResp *out)
{
    if (!params_ok(r, out)) return;
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
    if (api_body_only(out, doc, allowed) || b_bool(out, doc, "dry_run", 1, &dry_run) ||
        b_bool(out, doc, "only_failed", 1, &only_failed) || b_bool(out, doc, "only_running", 0, &only_running) ||
        b_bool(out, doc, "reset_dag_runs", 1, &reset) || b_bool(out, doc, "include_upstream", 0, &up) ||
        b_bool(out, doc, "include_downstream", 0, &down) || b_bool(out, doc, "include_future", 0, &future) ||
        b_bool(out, doc, "include_past", 0, &past) || b_bool(out, doc, "prevent_running_task", 0, &prevent) ||
        b_bool(out, doc, "run_on_latest_version", 0, &latest) || b_str(out, doc, "dag_run_id", &run_id) ||
        b_time(out, doc, "start_date", &from) || b_time(out, doc, "end_date", &to))
        goto done;
    const cJSON *tj = b_get(doc, "task_ids");
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
            if (cJSON_IsString(it) && text_ok(it->valuestring)) {
                pk->task_id = it->valuestring;
                pk->map_index = INT_MIN;
            } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
                       cJSON_IsString(cJSON_GetArrayItem(it, 0)) &&
                       text_ok(cJSON_GetArrayItem(it, 0)->valuestring) && cJSON_IsNumber(cJSON_GetArrayItem(it, 1)) &&
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
    if (!(s = store_or_503(r, out))) goto done;
    if (need_dag(out, s, dag_id) <= 0) goto done;
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
            row_clear(&rows[i]);
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
        answer_tis(out, s, rows, n, (int64_t)n);
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
            const Dag *d = dag_of(s, rows[q].ti.dag_version_id);
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
        answer_tis(out, s, after, na, (int64_t)na);
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

/* ---- tries ------------------------------------------------------------------------------------ */

static cJSON *try_json(const TiqTry *t, const TiqRow *w, const Dag *d)
{
    cJSON *o = cJSON_CreateObject();
    char buf[128];
    cJSON_AddStringToObject(o, "task_id", t->task_id);
    cJSON_AddStringToObject(o, "dag_id", t->dag_id);
    cJSON_AddStringToObject(o, "dag_run_id", t->run_id);
    cJSON_AddNumberToObject(o, "map_index", t->map_index);
    api_add_time(o, "start_date", t->start_date);
    api_add_time(o, "end_date", t->end_date);
    add_duration(o, t->duration);
    add_state(o, t->state);
    cJSON_AddNumberToObject(o, "try_number", t->try_number);
    cJSON_AddNumberToObject(o, "max_tries", t->max_tries);
    cJSON_AddStringToObject(o, "task_display_name", task_display(d, t->task_id));
    cJSON_AddStringToObject(o, "dag_display_name", dag_display(d, t->dag_id));
    api_add_str(o, "hostname", t->hostname);
    cJSON_AddNullToObject(o, "unixname");
    cJSON_AddStringToObject(o, "pool", t->pool ? t->pool : "default_pool");
    cJSON_AddNumberToObject(o, "pool_slots", t->pool_slots);
    api_add_str(o, "queue", t->queue);
    cJSON_AddNumberToObject(o, "priority_weight", t->priority_weight);
    const char *cls = op_class(t->operator_name, buf, sizeof buf);
    api_add_str(o, "operator", cls);
    api_add_str(o, "operator_name", cls);
    api_add_time(o, "queued_when", t->queued_at);
    cJSON_AddNullToObject(o, "scheduled_when");
    add_int_or_null(o, "pid", t->pid);
    cJSON_AddNullToObject(o, "executor");
    cJSON_AddStringToObject(o, "executor_config", "{}");
    cJSON_AddItemToObject(o, "dag_version",
                          version_json(w->ti.dag_version_id, w->version_number, w->version_created_at, t->dag_id, d));
    return o;
}

/* The current try of a task instance as a history entry (it is not recorded until it ends). */
static void current_try(const TiqRow *w, TiqTry *t)
{
    const TaskInstance *ti = &w->ti;
    memset(t, 0, sizeof *t);
    memcpy(t->ti_id, ti->id, sizeof t->ti_id);
    t->try_number = ti->try_number;
    t->dag_id = ti->dag_id;
    t->run_id = ti->run_id;
    t->task_id = ti->task_id;
    t->map_index = ti->map_index;
    t->state = ti->state;
    t->max_tries = ti->max_tries;
    t->start_date = ti->start_date;
    t->end_date = ti->end_date;
    t->duration = ti->duration;
    t->queued_at = ti->queued_at;
    t->hostname = ti->hostname;
    t->pid = ti->pid;
    t->queue = ti->queue;
    t->pool = ti->pool;
    t->pool_slots = ti->pool_slots;
    t->priority_weight = ti->priority_weight;
    t->operator_name = ti->operator_name;
}

/* The recorded tries plus the current one when it is not recorded yet. */
static int all_tries(Store *s, const TiqRow *w, TiqTry **hist, size_t *nh, int *with_current)
{
    if (store_tiq_history(s, w->ti.id, hist, nh) != 0) return -1;
    *with_current = w->ti.try_number > 0 && w->ti.state != TI_NONE;
    for (size_t i = 0; i < *nh; i++)
        if ((*hist)[i].try_number == w->ti.try_number) *with_current = 0;
    return 0;
}

static void tries_common(ApiReq *r, ApiResp *out, int map_pi, int try_pi)
{
    if (!params_ok(r, out)) return;
    long long want = -1;
    if (try_pi >= 0 && path_int(out, "task_try_number", r->params[try_pi], 0, INT_MAX, &want) != 0) return;
    Store *s = store_or_503(r, out);
    if (!s) return;
    TiqRow w;
    if (!load_ti(r, out, s, map_pi, &w)) return;
    TiqTry *hist = NULL, cur;
    size_t nh = 0;
    int with_cur = 0;
    if (all_tries(s, &w, &hist, &nh, &with_cur) != 0) {
        api_store_error(out, s);
        row_clear(&w);
        return;
    }
    current_try(&w, &cur);
    const Dag *d = dag_of(s, w.ti.dag_version_id);
    if (try_pi >= 0) {
        const TiqTry *hit = NULL;
        for (size_t i = 0; i < nh; i++)
            if (hist[i].try_number == want) hit = &hist[i];
        if (!hit && with_cur && cur.try_number == want) hit = &cur;
        if (hit)
            api_json(out, 200, try_json(hit, &w, d));
        else
            api_error(out, 404,
                      "The Task Instance History with dag_id: `%s`, run_id: `%s`, task_id: `%s`, map_index: `%d` and "
                      "try_number: `%lld` was not found",
                      w.ti.dag_id, w.ti.run_id, w.ti.task_id, w.ti.map_index, want);
    } else {
        cJSON *doc = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(doc, "task_instances");
        for (size_t i = 0; i < nh; i++) cJSON_AddItemToArray(arr, try_json(&hist[i], &w, d));
        if (with_cur) cJSON_AddItemToArray(arr, try_json(&cur, &w, d));
        cJSON_AddNumberToObject(doc, "total_entries", (double)(nh + (with_cur ? 1 : 0)));
        api_json(out, 200, doc);
    }
    tiq_tries_free(hist, nh);
    row_clear(&w);
}

static void h_tries(ApiReq *r, ApiResp *out) { tries_common(r, out, -2, -1); }
static void h_tries_mapped(ApiReq *r, ApiResp *out) { tries_common(r, out, 3, -1); }
static void h_try(ApiReq *r, ApiResp *out) { tries_common(r, out, -2, 3); }
static void h_try_mapped(ApiReq *r, ApiResp *out) { tries_common(r, out, 3, 4); }

/* ---- logs ------------------------------------------------------------------------------------- */

/* The signature binds the payload to this log: a token of another instance or try fails. */
static void log_sig(ApiReq *r, const char *ti_id, int try_number, const char *payload, unsigned char mac[32])
{
    char *msg = xasprintf("gust-log|%s|%d|%s", ti_id, try_number, payload);
    if (secret_hmac_sha256(r->ctx->token_key, sizeof r->ctx->token_key, msg, strlen(msg), mac) != 0)
        memset(mac, 0, 32);
    free(msg);
}

static char *log_token(ApiReq *r, const char *ti_id, int try_number, int64_t pos, int end_of_log)
{
    char payload[96];
    snprintf(payload, sizeof payload, "{\"end_of_log\":%s,\"log_pos\":%lld}", end_of_log ? "true" : "false",
             (long long)pos);
    unsigned char mac[32];
    log_sig(r, ti_id, try_number, payload, mac);
    char *p64 = secret_b64url_encode(payload, strlen(payload));
    char *m64 = secret_b64url_encode(mac, sizeof mac);
    char *tok = xasprintf("%s.%s", p64, m64);
    free(p64);
    free(m64);
    return tok;
}

/* 0 and *pos, or -1 when the token was not made by this API for this log. */
static int log_token_read(ApiReq *r, const char *ti_id, int try_number, const char *tok, int64_t *pos)
{
    const char *dot = strchr(tok, '.');
    if (!dot || dot == tok) return -1;
    size_t plen = 0, mlen = 0;
    unsigned char *payload = secret_b64url_decode(tok, (size_t)(dot - tok), &plen);
    unsigned char *mac = secret_b64url_decode(dot + 1, strlen(dot + 1), &mlen);
    int rc = -1;
    if (payload && mac && mlen == 32 && strlen((char *)payload) == plen) {
        unsigned char want[32];
        log_sig(r, ti_id, try_number, (const char *)payload, want);
        if (CRYPTO_memcmp(want, mac, 32) == 0) {
            cJSON *j = cJSON_Parse((const char *)payload);
            const cJSON *p = j ? cJSON_GetObjectItemCaseSensitive(j, "log_pos") : NULL;
            if (cJSON_IsNumber(p) && p->valuedouble >= 0 && p->valuedouble < 9e15) {
                *pos = (int64_t)p->valuedouble;
                rc = 0;
            }
            cJSON_Delete(j);
        }
    }
    free(payload);
    free(mac);
    return rc;
}

/* One log line as Airflow's StructuredLogMessage: the worker writes "[<ISO time>] text". */
static cJSON *log_line_json(const char *line, size_t len)
{
    cJSON *o = cJSON_CreateObject();
    if (len > 2 && line[0] == '[') {
        const char *close = memchr(line, ']', len < 64 ? len : 64);
        if (close && (size_t)(close - line) + 1 < len && close[1] == ' ') {
            char ts[64];
            size_t tl = (size_t)(close - line - 1);
            memcpy(ts, line + 1, tl);
            ts[tl] = 0;
            int64_t us;
            char err[128];
            if (time_parse_iso(ts, NULL, &us, err, sizeof err) == 0) {
                api_add_time(o, "timestamp", us);
                char *ev = xstrndup(close + 2, len - (size_t)(close + 2 - line));
                cJSON_AddStringToObject(o, "event", ev);
                free(ev);
                return o;
            }
        }
    }
    char *ev = xstrndup(line, len);
    cJSON_AddStringToObject(o, "event", ev);
    free(ev);
    return o;
}

static void log_add_header(ApiResp *out, const char *token)
{
    char *h = xasprintf("X-Continuation-Token: %s\r\n", token);
    if (out->extra_headers) {
        char *both = xasprintf("%s%s", out->extra_headers, h);
        free(out->extra_headers);
        free(h);
        h = both;
    }
    out->extra_headers = h;
}

/* GET .../taskInstances/{task_id}/logs/{try_number}?token=&full_content=&map_index= */
static void h_log(ApiReq *r, ApiResp *out)
{
    if (!params_ok(r, out)) return;
    long long try_number;
    if (path_int(out, "try_number", r->params[3], 0, INT_MAX, &try_number) != 0) return;
    int full = api_query_bool(r, out, "full_content");
    if (full < 0) return;
    full = full == 1;
    Store *s = store_or_503(r, out);
    if (!s) return;
    TiqRow w;
    if (!load_ti(r, out, s, -2, &w)) return;
    const TaskInstance *ti = &w.ti;
    /* which try is still being written: the current one while queued/running/restarting; a
     * reschedule-mode sensor between pokes keeps its try open at try_number + 1 */
    int live = -1;
    if (ti->state == TI_QUEUED || ti->state == TI_RUNNING || ti->state == TI_RESTARTING)
        live = ti->try_number;
    else if (ti->state == TI_UP_FOR_RESCHEDULE)
        live = ti->try_number + 1;
    if (try_number > ti->try_number && try_number != live) {
        api_error(out, 404, "TaskInstance not found: %s in run %s of %s has no try %lld (its try is %d)",
                  ti->task_id, ti->run_id, ti->dag_id, try_number, ti->try_number);
        row_clear(&w);
        return;
    }
    int finished = try_number != live;
    int64_t pos = 0;
    const char *tok = api_query(r, "token");
    if (tok && !full && log_token_read(r, ti->id, (int)try_number, tok, &pos) != 0) {
        api_error(out, 400, "Bad Signature. Please use only the tokens provided by the API.");
        row_clear(&w);
        return;
    }
    /* read: one chunk, or (full_content) everything there is, up to LOG_FULL_MAX */
    StrBuf text = {0};
    int64_t next = pos;
    int more = 0; /* stopped before the end */
    for (;;) {
        StoreLogRead lr;
        if (store_log_read(s, ti->id, (int)try_number, next, LOG_CHUNK, &lr) != 0) {
            api_store_error(out, s);
            sb_free(&text);
            row_clear(&w);
            return;
        }
        sb_appendn(&text, lr.data, lr.len);
        int64_t got = lr.next_offset - next;
        next = lr.next_offset;
        more = lr.len + 4 >= LOG_CHUNK; /* a full chunk: there may be more */
        store_log_read_free(&lr);
        if (!full || !more || got <= 0 || text.len >= LOG_FULL_MAX) break;
    }
    /* a running try is answered in whole lines: the rest waits for its newline */
    size_t keep = text.len;
    if (!finished && keep) {
        const char *nl = memrchr(sb_str(&text), '\n', keep);
        if (nl)
            keep = (size_t)(nl - sb_str(&text)) + 1;
        else if (!more)
            keep = 0; /* a partial line shorter than a chunk: wait for the rest */
    }
    next -= (int64_t)(text.len - keep);
    int end_of_log = finished && !more;
    char *token = log_token(r, ti->id, (int)try_number, next, end_of_log);
    const char *accept = api_header(r, "Accept");
    const char *body = sb_str(&text);
    if (accept && strstr(accept, "text/plain") && !strstr(accept, "application/json")) {
        free(out->body);
        out->body = xstrndup(body, keep);
        out->body_len = keep;
        out->status = 200;
        out->content_type = "text/plain; charset=utf-8";
        log_add_header(out, token);
    } else if (accept && strstr(accept, "application/x-ndjson")) {
        StrBuf nd = {0};
        for (size_t i = 0; i < keep;) {
            const char *e = memchr(body + i, '\n', keep - i);
            size_t len = e ? (size_t)(e - body - i) : keep - i;
            cJSON *line = log_line_json(body + i, len);
            char *t = cJSON_PrintUnformatted(line);
            sb_append(&nd, t);
            sb_appendc(&nd, '\n');
            free(t);
            cJSON_Delete(line);
            i += len + 1;
        }
        free(out->body);
        out->body_len = nd.len;
        out->body = sb_take(&nd);
        out->status = 200;
        out->content_type = "application/x-ndjson";
        log_add_header(out, token);
    } else {
        cJSON *doc = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(doc, "content");
        for (size_t i = 0; i < keep;) {
            const char *e = memchr(body + i, '\n', keep - i);
            size_t len = e ? (size_t)(e - body - i) : keep - i;
            cJSON_AddItemToArray(arr, log_line_json(body + i, len));
            i += len + 1;
        }
        cJSON_AddStringToObject(doc, "continuation_token", token);
        api_json(out, 200, doc);
        log_add_header(out, token);
    }
    free(token);
    sb_free(&text);
    row_clear(&w);
}

static int cmp_ti_task(const void *a, const void *b)
{
    const TaskInstance *x = a, *y = b;
    int c = strcmp(x->task_id, y->task_id);
    return c ? c : (x->map_index > y->map_index) - (x->map_index < y->map_index);
}

/* ---- dependencies: why is it not running? ------------------------------------------------------- */

static void dep_add(cJSON *arr, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void dep_add(cJSON *arr, const char *name, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "reason", msg);
    cJSON_AddItemToArray(arr, o);
}

static void deps_common(ApiReq *r, ApiResp *out, int map_pi)
{
    if (!params_ok(r, out)) return;
    Store *s = store_or_503(r, out);
    if (!s) return;
    TiqRow w;
    if (!load_ti(r, out, s, map_pi, &w)) return;
    const TaskInstance *ti = &w.ti;
    cJSON *doc = cJSON_CreateObject();
    cJSON *deps = cJSON_AddArrayToObject(doc, "dependencies");
    int64_t now = util_now_us();
    char a[48], b[48];
    int waiting = ti->state == TI_NONE || ti->state == TI_SCHEDULED || ti->state == TI_UP_FOR_RETRY ||
                  ti->state == TI_UP_FOR_RESCHEDULE;
    if (!waiting) {
        dep_add(deps, "Task Instance State", "Task is in the '%s' state.", ti_state_name(ti->state));
        goto answer;
    }
    if (!w.run_state || strcmp(w.run_state, "running") != 0)
        dep_add(deps, "Dagrun Running",
                "Task instance's dagrun was not in the 'running' state but in the state '%s'.",
                w.run_state ? w.run_state : "unknown");
    StoreDag sd;
    int known = store_dag_get(s, ti->dag_id, &sd);
    if (known < 0) goto store_err;
    if (known == 1) {
        if (sd.is_paused) dep_add(deps, "Dag Not Paused", "Task's DAG '%s' is paused.", ti->dag_id);
        store_dag_clear(&sd);
    }
    if ((ti->state == TI_UP_FOR_RETRY || ti->state == TI_UP_FOR_RESCHEDULE || ti->state == TI_SCHEDULED) &&
        ti->next_attempt_at > now) {
        time_format_iso(now, 1, a, sizeof a);
        time_format_iso(ti->next_attempt_at, 1, b, sizeof b);
        if (ti->state == TI_UP_FOR_RESCHEDULE)
            dep_add(deps, "Ready To Reschedule",
                    "Task is not ready for reschedule yet but will be rescheduled automatically. Current date is %s "
                    "and task will be rescheduled at %s.",
                    a, b);
        else if (ti->state == TI_UP_FOR_RETRY)
            dep_add(deps, "Not In Retry Period",
                    "Task is not ready for retry yet but will be retried automatically. Current date is %s and task "
                    "will be retried at %s.",
                    a, b);
        else
            dep_add(deps, "Rate Limit", "Task was deferred by a rate limit; it may be queued again at %s.", b);
    }
    const Dag *d = dag_of(s, ti->dag_version_id);
    const DagTask *task = d ? dag_find_task(d, ti->task_id) : NULL;
    if (!task) {
        dep_add(deps, "Task In DAG", "Task '%s' is not in the DAG version its run executes.", ti->task_id);
    } else if (ti->state == TI_NONE && task->n_upstream) {
        /* the trigger rule over the direct upstreams' states, as the scheduler evaluates it;
         * the run's instances are sorted here (bytewise) so that each upstream is a binary
         * search away, whatever the database's collation */
        TaskInstance *run_tis = NULL;
        size_t nr = 0;
        if (store_ti_list_run(s, ti->dag_id, ti->run_id, &run_tis, &nr) != 0) goto store_err;
        qsort(run_tis, nr, sizeof *run_tis, cmp_ti_task);
        TiState *st = xcalloc(nr + 1, sizeof *st); /* upstream ids are unique: each instance counts once */
        size_t ns = 0;
        StrBuf waiting_on = {0}, states = {0};
        for (size_t u = 0; u < task->n_upstream; u++) {
            size_t lo = 0, hi = nr;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(run_tis[mid].task_id, task->upstream[u]) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            for (size_t i = lo; i < nr && strcmp(run_tis[i].task_id, task->upstream[u]) == 0; i++) {
                st[ns++] = run_tis[i].state;
                if (states.len < 1000)
                    sb_printf(&states, "%s%s=%s", states.len ? ", " : "", run_tis[i].task_id,
                              run_tis[i].state == TI_NONE ? "none" : ti_state_name(run_tis[i].state));
                if (!ti_state_is_finished(run_tis[i].state) && waiting_on.len < 1000)
                    sb_printf(&waiting_on, "%s'%s'", waiting_on.len ? ", " : "", run_tis[i].task_id);
            }
        }
        UpstreamCounts c;
        rules_count(&c, st, ns);
        const char *why = NULL;
        RuleDecision dec = rules_evaluate(task->trigger_rule, &c, &why);
        if (dec != RULE_RUN) {
            char counts[256];
            rules_format_counts(&c, counts, sizeof counts);
            dep_add(deps, "Trigger Rule",
                    "Task's trigger rule '%s' is not met (%s; upstream_states: %s): %s%s%s", trigger_rule_name(task->trigger_rule),
                    why ? why : rules_decision_name(dec), counts, sb_str(&states),
                    waiting_on.len ? "; waiting for upstream tasks " : "", sb_str(&waiting_on));
        }
        sb_free(&waiting_on);
        sb_free(&states);
        free(st);
        ti_list_free(run_tis, nr);
    }
    if (ti->state == TI_NONE || ti->state == TI_SCHEDULED) {
        /* what the scheduler checks before queueing: pool slots, the DAG's and the
         * installation's limits on running task instances */
        int running = 0, queued = 0, open = 0;
        if (store_pool_usage(s, ti->pool, &running, &queued, &open) != 0)
            dep_add(deps, "Pool Slots Available", "Tasks using non-existent pool '%s' will not be scheduled.",
                    ti->pool);
        else if (open < ti->pool_slots)
            dep_add(deps, "Pool Slots Available",
                    "Not scheduling since there are %d open slots in pool %s and require %d pool slots", open,
                    ti->pool, ti->pool_slots);
        int64_t busy = 0, all = 0;
        if (store_ti_count_active(s, ti->dag_id, &busy) != 0 || store_ti_count_active(s, NULL, &all) != 0)
            goto store_err;
        long long limit = config_get_int(r->ctx->cfg, "core.max_active_tasks_per_dag");
        if (d && d->max_active_tasks > 0) limit = d->max_active_tasks;
        if (busy >= limit)
            dep_add(deps, "Dag Max Active Tasks",
                    "The maximum number of running tasks (%lld) for this task's DAG '%s' has been reached.", limit,
                    ti->dag_id);
        long long par = config_get_int(r->ctx->cfg, "core.parallelism");
        if (all >= par)
            dep_add(deps, "Parallelism",
                    "core.parallelism (%lld) is reached: %lld task instances are queued or running.", par,
                    (long long)all);
    }
answer:
    api_json(out, 200, doc);
    row_clear(&w);
    return;
store_err:
    cJSON_Delete(doc);
    api_store_error(out, s);
    row_clear(&w);
}

static void h_deps(ApiReq *r, ApiResp *out) { deps_common(r, out, -2); }
static void h_deps_mapped(ApiReq *r, ApiResp *out) { deps_common(r, out, 3); }

/* GET .../{task_id}/links: gust's operators have no extra links. */
static void h_links(ApiReq *r, ApiResp *out)
{
    if (!params_ok(r, out)) return;
    Store *s = store_or_503(r, out);
    if (!s) return;
    TiqRow w;
    if (!load_ti(r, out, s, -2, &w)) return;
    row_clear(&w);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "extra_links", cJSON_CreateObject());
    cJSON_AddNumberToObject(doc, "total_entries", 0);
    api_json(out, 200, doc);
}

/* ---- XComs ------------------------------------------------------------------------------------- */

static cJSON *xcom_json(Store *s, const TiqXcom *x, int with_value, int stringify)
{
    const Dag *d = dag_of(s, x->dag_version_id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", x->x.key);
    api_add_time(o, "timestamp", x->x.timestamp);
    api_add_time(o, "logical_date", x->logical_date);
    cJSON_AddNumberToObject(o, "map_index", x->x.map_index);
    cJSON_AddStringToObject(o, "task_id", x->x.task_id);
    cJSON_AddStringToObject(o, "dag_id", x->x.dag_id);
    cJSON_AddStringToObject(o, "run_id", x->x.run_id);
    cJSON_AddStringToObject(o, "dag_display_name", dag_display(d, x->x.dag_id));
    cJSON_AddStringToObject(o, "task_display_name", task_display(d, x->x.task_id));
    api_add_time(o, "run_after", x->run_after);
    if (with_value) {
        if (stringify)
            api_add_str(o, "value", x->x.value);
        else
            api_add_json_text(o, "value", x->x.value, "null");
    }
    return o;
}

/* GET .../taskInstances/{task_id}/xcomEntries ("~" for dag_id, dag_run_id, task_id) */
static void h_xcom_list(ApiReq *r, ApiResp *out)
{
    if (!params_ok(r, out)) return;
    Store *s = store_or_503(r, out);
    if (!s) return;
    TiqXcomFilter f;
    memset(&f, 0, sizeof f);
    f.dag_id = tilde(r->params[0]);
    f.run_id = tilde(r->params[1]);
    f.task_id = tilde(r->params[2]);
    if (f.dag_id && need_dag(out, s, f.dag_id) <= 0) return;
    if (f.dag_id && f.run_id && need_run(out, s, f.dag_id, f.run_id, NULL) <= 0) return;
    long long mi = 0;
    int has = api_query_int(r, out, "map_index", -1, INT_MAX, &mi);
    if (has < 0) return;
    if (!has && (has = api_query_int(r, out, "map_index_filter", -1, INT_MAX, &mi)) < 0) return;
    f.has_map_index = has;
    f.map_index = (int)mi;
    const char *dag_pat = NULL;
    if (q_text(r, out, "xcom_key", &f.key) || q_text(r, out, "xcom_key_pattern", &f.key_pattern) ||
        q_text(r, out, "dag_display_name_pattern", &dag_pat) || q_text(r, out, "run_id_pattern", &f.run_id_pattern) ||
        q_text(r, out, "task_id_pattern", &f.task_id_pattern))
        return;
    f.dag_id_pattern = dag_pat;
    if (api_page(r, out, &f.limit, &f.offset) != 0) return;
    TiqXcom *xs;
    size_t n;
    int64_t total = 0;
    if (store_tiq_xcom_list(s, &f, &xs, &n, &total) != 0) {
        api_store_error(out, s);
        return;
    }
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "xcom_entries");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, xcom_json(s, &xs[i], 0, 0));
    cJSON_AddNumberToObject(doc, "total_entries", (double)total);
    api_json(out, 200, doc);
    tiq_xcoms_free(xs, n);
}

/* One XCom (with its value): 1 found, 0 missing, -1 error. */
static int xcom_one(Store *s, const char *dag_id, const char *run_id, const char *task_id, int mi, const char *key,
                    TiqXcom **x)
{
    TiqXcomFilter f;
    memset(&f, 0, sizeof f);
    f.dag_id = dag_id;
    f.run_id = run_id;
    f.task_id = task_id;
    f.key = key;
    f.has_map_index = 1;
    f.map_index = mi;
    f.with_value = 1;
    f.limit = 1;
    size_t n = 0;
    if (store_tiq_xcom_list(s, &f, x, &n, NULL) != 0) return -1;
    if (!n) {
        free(*x);
        *x = NULL;
    }
    return n == 1;
}

/* GET .../xcomEntries/{xcom_key}?map_index=&deserialize=&stringify= */
static void h_xcom_get(ApiReq *r, ApiResp *out)
{
    if (!params_ok(r, out)) return;
    long long mi = -1;
    if (api_query_int(r, out, "map_index", -1, INT_MAX, &mi) < 0) return;
    int deser = api_query_bool(r, out, "deserialize");
    if (deser < 0) return;
    int str = api_query_bool(r, out, "stringify");
    if (str < 0) return;
    Store *s = store_or_503(r, out);
    if (!s) return;
    TiqXcom *x = NULL;
    int found = xcom_one(s, r->params[0], r->params[1], r->params[2], (int)mi, r->params[3], &x);
    if (found < 0) {
        api_store_error(out, s);
        return;
    }
    if (!found) {
        api_error(out, 404, "XCom entry with key: `%s` not found", r->params[3]);
        return;
    }
    /* gust keeps values as JSON, so the stored and the deserialized value are the same;
     * stringify answers the JSON text */
    api_json(out, 200, xcom_json(s, x, 1, str == 1));
    tiq_xcoms_free(x, 1);
}

/* The value of a create/update body as JSON text (caller frees), or NULL after 422. */
static char *xcom_value(ApiResp *out, const cJSON *doc)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, "value");
    if (!v) {
        api_error_422(out, "body", "value", "Field required");
        return NULL;
    }
    char *text = cJSON_PrintUnformatted(v);
    if (!text || !text_ok(text)) {
        free(text);
        api_error_422(out, "body", "value", "Input should be JSON text without NUL characters");
        return NULL;
    }
    return text;
}

static int body_map_index(ApiResp *out, const cJSON *doc, int *mi)
{
    const cJSON *j = b_get(doc, "map_index");
    *mi = -1;
    if (!j) return 0;
    if (!cJSON_IsNumber(j) || j->valuedouble != floor(j->valuedouble) || j->valuedouble < -1 ||
        j->valuedouble > INT_MAX) {
        api_error_422(out, "body", "map_index", "Input should be an integer >= -1");
        return -1;
    }
    *mi = (int)j->valuedouble;
    return 0;
}

/* POST .../xcomEntries (XComCreateBody): 201, or 409 when the key exists. */
static void h_xcom_create(ApiReq *r, ApiResp *out)
{
    if (!params_ok(r, out)) return;
    cJSON *doc;
    if (api_body_object(r, out, &doc) != 0) return;
    static const char *const allowed[] = {"key", "value", "map_index", NULL};
    const char *key = NULL;
    char *value = NULL;
    int mi;
    Store *s = NULL;
    TiqXcom *x = NULL;
    if (api_body_only(out, doc, allowed) || b_str(out, doc, "key", &key) || body_map_index(out, doc, &mi)) goto done;
    if (!key || !*key) {
        api_error_422(out, "body", "key", "Field required");
        goto done;
    }
    if (!(value = xcom_value(out, doc))) goto done;
    if (!(s = store_or_503(r, out))) goto done;
    if (need_dag(out, s, r->params[0]) <= 0 || need_run(out, s, r->params[0], r->params[1], NULL) <= 0) goto done;
    TiqRow w;
    int found = store_tiq_get(s, r->params[0], r->params[1], r->params[2], mi, &w);
    if (found < 0) {
        api_store_error(out, s);
        goto done;
    }
    if (!found) {
        api_error(out, 404, "Task with ID: `%s` not found in dag: `%s` and run: `%s` (map_index %d)", r->params[2],
                  r->params[0], r->params[1], mi);
        goto done;
    }
    row_clear(&w);
    int rc = store_tiq_xcom_insert(s, r->params[0], r->params[1], r->params[2], mi, key, value);
    if (rc < 0) {
        api_store_error(out, s);
        goto done;
    }
    if (rc == 0) {
        api_error(out, 409, "The XCom with key: `%s` with mentioned task instance already exists.", key);
        goto done;
    }
    api_audit(r, "api.create_xcom_entry", r->params[0], r->params[1], r->params[2], NULL);
    if (xcom_one(s, r->params[0], r->params[1], r->params[2], mi, key, &x) != 1) {
        api_store_error(out, s);
        goto done;
    }
    api_json(out, 201, xcom_json(s, x, 1, 0));
done:
    tiq_xcoms_free(x, x ? 1 : 0);
    free(value);
    cJSON_Delete(doc);
}

/* PATCH .../xcomEntries/{xcom_key} (XComUpdateBody) */
static void h_xcom_update(ApiReq *r, ApiResp *out)
{
    if (!params_ok(r, out)) return;
    cJSON *doc;
    if (api_body_object(r, out, &doc) != 0) return;
    static const char *const allowed[] = {"value", "map_index", NULL};
    char *value = NULL;
    int mi;
    Store *s = NULL;
    TiqXcom *x = NULL;
    if (api_body_only(out, doc, allowed) || body_map_index(out, doc, &mi)) goto done;
    if (!(value = xcom_value(out, doc))) goto done;
    if (!(s = store_or_503(r, out))) goto done;
    int rc = store_tiq_xcom_update(s, r->params[0], r->params[1], r->params[2], mi, r->params[3], value);
    if (rc < 0) {
        api_store_error(out, s);
        goto done;
    }
    if (rc == 0) {
        api_error(out, 404, "The XCom with key: `%s` with mentioned task instance doesn't exist.", r->params[3]);
        goto done;
    }
    api_audit(r, "api.update_xcom_entry", r->params[0], r->params[1], r->params[2], NULL);
    if (xcom_one(s, r->params[0], r->params[1], r->params[2], mi, r->params[3], &x) != 1) {
        api_store_error(out, s);
        goto done;
    }
    api_json(out, 200, xcom_json(s, x, 1, 0));
done:
    tiq_xcoms_free(x, x ? 1 : 0);
    free(value);
    cJSON_Delete(doc);
}

/* DELETE .../xcomEntries/{xcom_key}?map_index= */
static void h_xcom_delete(ApiReq *r, ApiResp *out)
{
    if (!params_ok(r, out)) return;
    long long mi = -1;
    if (api_query_int(r, out, "map_index", -1, INT_MAX, &mi) < 0) return;
    Store *s = store_or_503(r, out);
    if (!s) return;
    int rc = store_tiq_xcom_delete(s, r->params[0], r->params[1], r->params[2], (int)mi, r->params[3]);
    if (rc < 0) {
        api_store_error(out, s);
        return;
    }
    if (rc == 0) {
        api_error(out, 404, "XCom entry with key: `%s` not found", r->params[3]);
        return;
    }
    api_audit(r, "api.delete_xcom_entry", r->params[0], r->params[1], r->params[2], NULL);
    api_no_content(out);
}

/* ---- the table --------------------------------------------------------------------------------- */

#define TI_BASE "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances"

const ApiRoute api_routes_tis[] = {
    {"GET", TI_BASE, API_ROLE_VIEWER, h_list},
    {"POST", TI_BASE "/list", API_ROLE_VIEWER, h_list_batch},
    {"GET", TI_BASE "/{task_id}", API_ROLE_VIEWER, h_get},
    {"PATCH", TI_BASE "/{task_id}", API_ROLE_USER, h_patch},
    {"PATCH", TI_BASE "/{task_id}/dry_run", API_ROLE_USER, h_patch_dry},
    {"GET", TI_BASE "/{task_id}/dependencies", API_ROLE_VIEWER, h_deps},
    {"GET", TI_BASE "/{task_id}/links", API_ROLE_VIEWER, h_links},
    {"GET", TI_BASE "/{task_id}/listMapped", API_ROLE_VIEWER, h_list_mapped},
    {"GET", TI_BASE "/{task_id}/logs/{try_number}", API_ROLE_VIEWER, h_log},
    {"GET", TI_BASE "/{task_id}/tries", API_ROLE_VIEWER, h_tries},
    {"GET", TI_BASE "/{task_id}/tries/{task_try_number}", API_ROLE_VIEWER, h_try},
    {"GET", TI_BASE "/{task_id}/xcomEntries", API_ROLE_VIEWER, h_xcom_list},
    {"POST", TI_BASE "/{task_id}/xcomEntries", API_ROLE_USER, h_xcom_create},
    {"GET", TI_BASE "/{task_id}/xcomEntries/{xcom_key}", API_ROLE_VIEWER, h_xcom_get},
    {"PATCH", TI_BASE "/{task_id}/xcomEntries/{xcom_key}", API_ROLE_USER, h_xcom_update},
    {"DELETE", TI_BASE "/{task_id}/xcomEntries/{xcom_key}", API_ROLE_USER, h_xcom_delete},
    {"GET", TI_BASE "/{task_id}/{map_index}", API_ROLE_VIEWER, h_get_mapped},
    {"PATCH", TI_BASE "/{task_id}/{map_index}", API_ROLE_USER, h_patch_mapped},
    {"PATCH", TI_BASE "/{task_id}/{map_index}/dry_run", API_ROLE_USER, h_patch_dry_mapped},
    {"GET", TI_BASE "/{task_id}/{map_index}/dependencies", API_ROLE_VIEWER, h_deps_mapped},
    {"GET", TI_BASE "/{task_id}/{map_index}/tries", API_ROLE_VIEWER, h_tries_mapped},
    {"GET", TI_BASE "/{task_id}/{map_index}/tries/{task_try_number}", API_ROLE_VIEWER, h_try_mapped},
    {"POST", "/api/v2/dags/{dag_id}/clearTaskInstances", API_ROLE_USER, h_clear},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
