/* routes_gust — what gust has and Airflow's API does not: the live workers and the named
 * global rate limits, both kept outside the store (cluster/cluster.h), and the compact grid
 * of a DAG's runs that the web UI draws.
 *
 *   GET    /api/v2/gust/dags/{dag_id}/grid   the grid (below)
 *   GET    /api/v2/gust/workers              {"workers": [...], "total_entries", "source"}
 *   GET    /api/v2/gust/ratelimits           {"ratelimits": [...], "total_entries", "source"}
 *   GET    /api/v2/gust/ratelimits/{name}    {"name", "rate", "per_second", "burst"}
 *   PUT    /api/v2/gust/ratelimits/{name}    body {"limit": "100/m"}: 201 created / 200 replaced
 *   DELETE /api/v2/gust/ratelimits/{name}    204
 *
 * Where the answer comes from ("source"): "redis" — the deployment's Redis (redis.url),
 * through the API's shared connection, or, when Redis could not be reached when the API
 * started, through a connection made for the request (so the API recovers when Redis comes
 * back); "local" — `gust standalone`, whose workers and rate limits live in its own process
 * (the in-process registry the API shares with them); "none" — an API daemon without
 * redis.url, which can see no workers: lists are empty, and setting a limit is refused with
 * 503 since no worker would ever read it. Redis configured but unreachable is a 503 naming
 * the server, never an empty list that would read as "no workers". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cluster/cluster.h"
#include "core/config.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "store/dagquery.h"
#include "store/dags.h"
#include "store/kv.h"
#include "store/ti.h"

/* The cluster a request talks to, and how to let go of it. */
typedef struct Cluster {
    ClusterConn *c;
    int locked;         /* the API's shared connection: api_cluster_unlock when done */
    int owned;          /* made for this request: cluster_close when done */
    const char *source; /* "redis", "local" or "none" (c NULL) */
} Cluster;

static void cluster_done(ApiReq *r, Cluster *cl)
{
    if (cl->locked) api_cluster_unlock(r);
    if (cl->owned) cluster_close(cl->c);
    memset(cl, 0, sizeof *cl);
}

/* 0 with cl set (cl->c may be NULL: source "none"), or -1 after answering 503. */
static int cluster_open(ApiReq *r, ApiResp *out, Cluster *cl)
{
    memset(cl, 0, sizeof *cl);
    ClusterConn *shared = api_cluster_lock(r);
    if (shared) {
        cl->c = shared;
        cl->locked = 1;
        cl->source = "redis";
        return 0;
    }
    api_cluster_unlock(r);
    char err[512];
    const char *deployment = r->ctx->deployment ? r->ctx->deployment : "";
    if (strcmp(deployment, "standalone") == 0) {
        cl->c = cluster_connect("local://", err, sizeof err);
        if (!cl->c) {
            api_error(out, 503, "the in-process cluster state is unavailable: %s", err);
            return -1;
        }
        cl->owned = 1;
        cl->source = "local";
        return 0;
    }
    const char *url = r->ctx->cfg ? config_get(r->ctx->cfg, "redis.url") : NULL;
    if (!url || !*url) {
        cl->source = "none";
        return 0;
    }
    cl->c = cluster_connect(url, err, sizeof err);
    if (!cl->c) {
        api_error(out, 503, "workers and rate limits are unavailable: %s (redis.url)", err);
        return -1;
    }
    cl->owned = 1;
    cl->source = cluster_impl(cl->c) == &cluster_impl_redis ? "redis" : "local";
    return 0;
}

/* A failed cluster call: 503 with what the cluster said (it names the Redis server). */
static void cluster_failed(ApiResp *out, Cluster *cl, const char *what)
{
    api_error(out, 503, "cannot %s: %s", what, cl->c ? cluster_error(cl->c) : "no cluster");
}

/* "a,b" -> ["a", "b"] (empty parts left out). */
static cJSON *csv_array(const char *s)
{
    cJSON *arr = cJSON_CreateArray();
    if (!s) return arr;
    while (*s) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        if (n) {
            char *part = xstrndup(s, n);
            cJSON_AddItemToArray(arr, cJSON_CreateString(part));
            free(part);
        }
        if (!comma) break;
        s = comma + 1;
    }
    return arr;
}

/* ---- workers ---------------------------------------------------------------------------------- */

/* A worker as `gust workers list --output json` shows it (same field names), with queues and
 * running as lists rather than comma-separated text. */
static cJSON *worker_json(const WorkerInfo *w)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "worker_id", w->id ? w->id : "");
    cJSON_AddStringToObject(o, "hostname", w->host ? w->host : "");
    cJSON_AddNumberToObject(o, "pid", w->pid);
    cJSON_AddItemToObject(o, "queues", csv_array(w->queues));
    cJSON_AddNumberToObject(o, "concurrency", w->concurrency);
    cJSON_AddItemToObject(o, "running", csv_array(w->running));
    cJSON_AddStringToObject(o, "version", w->version ? w->version : "");
    api_add_time(o, "started_at", w->started_at > 0 ? w->started_at : -1);
    api_add_time(o, "last_heartbeat", w->last_beat > 0 ? w->last_beat : -1);
    return o;
}

static void h_workers(ApiReq *r, ApiResp *out)
{
    Cluster cl;
    if (cluster_open(r, out, &cl) != 0) return;
    WorkerInfo *w = NULL;
    size_t n = 0;
    if (cl.c && cluster_workers_list(cl.c, &w, &n) != 0) {
        cluster_failed(out, &cl, "list the workers");
        cluster_done(r, &cl);
        return;
    }
    const char *source = cl.source;
    cluster_done(r, &cl);
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "workers");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, worker_json(&w[i]));
    cJSON_AddNumberToObject(doc, "total_entries", (double)n);
    cJSON_AddStringToObject(doc, "source", source);
    cluster_workers_free(w, n);
    api_json(out, 200, doc);
}

/* ---- rate limits ------------------------------------------------------------------------------ */

static cJSON *limit_json(const char *name, const char *text)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "rate", text);
    double per_s = 0;
    int burst = 0;
    char err[256];
    if (cluster_rate_parse(text, &per_s, &burst, err, sizeof err) == 0) {
        cJSON_AddNumberToObject(o, "per_second", per_s);
        cJSON_AddNumberToObject(o, "burst", burst);
    } else {
        cJSON_AddNullToObject(o, "per_second");
        cJSON_AddNullToObject(o, "burst");
    }
    return o;
}

static void h_limits(ApiReq *r, ApiResp *out)
{
    Cluster cl;
    if (cluster_open(r, out, &cl) != 0) return;
    ClusterRateLimit *l = NULL;
    size_t n = 0;
    if (cl.c && cluster_ratelimit_list(cl.c, &l, &n) != 0) {
        cluster_failed(out, &cl, "list the rate limits");
        cluster_done(r, &cl);
        return;
    }
    const char *source = cl.source;
    cluster_done(r, &cl);
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "ratelimits");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, limit_json(l[i].name, l[i].text));
    cJSON_AddNumberToObject(doc, "total_entries", (double)n);
    cJSON_AddStringToObject(doc, "source", source);
    cluster_ratelimits_free(l, n);
    api_json(out, 200, doc);
}

/* The {name} parameter: 0 ok, -1 after answering 422. */
static int limit_name(ApiReq *r, ApiResp *out, const char **name)
{
    *name = r->params[0];
    if (!cluster_ratelimit_name_ok(*name)) {
        api_error_422(out, "path", "name", "a rate limit name is 1-128 of letters, digits, '_', '.', ':' and '-'");
        return -1;
    }
    return 0;
}

/* A cluster that can hold limits (not "none"): 0, or -1 after answering 503. */
static int limits_writable(ApiReq *r, ApiResp *out, Cluster *cl)
{
    if (cluster_open(r, out, cl) != 0) return -1;
    if (!cl->c) {
        api_error(out, 503, "rate limits live in Redis, and this API has no redis.url: set it to where the "
                            "workers read their limits");
        cluster_done(r, cl);
        return -1;
    }
    return 0;
}

static void h_limit_get(ApiReq *r, ApiResp *out)
{
    const char *name;
    if (limit_name(r, out, &name) != 0) return;
    Cluster cl;
    if (cluster_open(r, out, &cl) != 0) return;
    char *text = NULL;
    int rc = cl.c ? cluster_ratelimit_get(cl.c, name, &text) : 0;
    if (rc < 0) cluster_failed(out, &cl, "read the rate limit");
    cluster_done(r, &cl);
    if (rc == 0) api_error(out, 404, "The rate limit `%s` was not found", name);
    else if (rc > 0) api_json(out, 200, limit_json(name, text));
    free(text);
}

static void h_limit_put(ApiReq *r, ApiResp *out)
{
    const char *name;
    if (limit_name(r, out, &name) != 0) return;
    cJSON *body;
    if (api_body_object(r, out, &body) != 0) return;
    static const char *const allowed[] = {"limit", NULL};
    const cJSON *lim = cJSON_GetObjectItemCaseSensitive(body, "limit");
    char err[256];
    if (api_body_only(out, body, allowed) != 0) {
        cJSON_Delete(body);
        return;
    }
    if (!lim) {
        api_error_422(out, "body", "limit", "Field required");
    } else if (!cJSON_IsString(lim)) {
        api_error_422(out, "body", "limit", "Input should be a valid string, as in \"100/m\"");
    } else if (cluster_rate_parse(lim->valuestring, NULL, NULL, err, sizeof err) != 0) {
        api_error_422(out, "body", "limit", "%s", err);
    } else {
        Cluster cl;
        if (limits_writable(r, out, &cl) == 0) {
            char *old = NULL;
            int existed = cluster_ratelimit_get(cl.c, name, &old);
            free(old);
            int rc = existed < 0 ? -1 : cluster_ratelimit_set(cl.c, name, lim->valuestring);
            if (rc != 0) cluster_failed(out, &cl, "set the rate limit");
            cluster_done(r, &cl);
            if (rc == 0) {
                char *text = cluster_trim_dup(lim->valuestring);
                cJSON *x = cJSON_CreateObject();
                cJSON_AddStringToObject(x, "name", name);
                cJSON_AddStringToObject(x, "limit", text);
                char *extra = cJSON_PrintUnformatted(x);
                cJSON_Delete(x);
                api_audit(r, "api.set_ratelimit", NULL, NULL, NULL, extra);
                free(extra);
                api_json(out, existed ? 200 : 201, limit_json(name, text));
                free(text);
            }
        }
    }
    cJSON_Delete(body);
}

static void h_limit_delete(ApiReq *r, ApiResp *out)
{
    const char *name;
    if (limit_name(r, out, &name) != 0) return;
    Cluster cl;
    if (limits_writable(r, out, &cl) != 0) return;
    int rc = cluster_ratelimit_delete(cl.c, name);
    if (rc < 0) cluster_failed(out, &cl, "delete the rate limit");
    cluster_done(r, &cl);
    if (rc == 0) {
        api_error(out, 404, "The rate limit `%s` was not found", name);
    } else if (rc > 0) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", name);
        char *extra = cJSON_PrintUnformatted(x);
        cJSON_Delete(x);
        api_audit(r, "api.delete_ratelimit", NULL, NULL, NULL, extra);
        free(extra);
        api_no_content(out);
    }
}

/* ---- the grid ---------------------------------------------------------------------------------- */

/* GET /api/v2/gust/dags/{dag_id}/grid?limit=25&offset=0 — what the UI's grid needs and nothing
 * more: the runs (newest first; limit 0..365, default 25, larger is clamped to 365; offset),
 * the DAG's task ids in its file order (its latest version), and per run the state and try
 * number of each task, aligned with task_ids:
 *
 *   {"dag_runs": [{"dag_run_id", "state", "run_type", "logical_date", "run_after",
 *                  "start_date", "end_date"}, ...],
 *    "task_ids": ["extract", ...],
 *    "states": {"<run id>": ["success", null, ...]},   null: the instance has no state yet
 *    "try_numbers": {"<run id>": [1, 0, ...]},          null: the run has no such instance
 *    "total_entries": <runs of the DAG>}
 *
 * A grid of 100 runs x 100 tasks is ~0.2 MB here against ~10 MB of TaskInstanceResponse
 * pages (103 requests) through the Airflow endpoints; it is read with one statement for the
 * runs and one for their instances' four columns, and written as text directly (20,000
 * cells as cJSON nodes would cost more than the queries). */
#define GRID_DEFAULT_RUNS 25
#define GRID_MAX_RUNS 365

/* s as a JSON string (cJSON's escaping). */
static void put_json_string(StrBuf *b, const char *s)
{
    cJSON *j = cJSON_CreateString(s ? s : "");
    char *t = j ? cJSON_PrintUnformatted(j) : NULL;
    sb_append(b, t ? t : "\"\"");
    free(t);
    cJSON_Delete(j);
}

static void put_json_time(StrBuf *b, int64_t us)
{
    if (us < 0) {
        sb_append(b, "null");
        return;
    }
    char buf[48];
    time_format_iso(us, 1, buf, sizeof buf);
    sb_printf(b, "\"%s\"", buf);
}

/* n in decimal, written at the end of buf[16]; returns where it starts. */
static const char *uint_text(unsigned n, char buf[16])
{
    char *c = buf + 15;
    *c = 0;
    do *--c = (char)('0' + n % 10);
    while (n /= 10);
    return c;
}

/* The task ids of a serialised DAG, in its order (heap array of pointers into *doc, which the
 * caller frees with cJSON_Delete). NULL data: no tasks. */
static const char **version_task_ids(const char *data, cJSON **doc, size_t *n)
{
    *n = 0;
    *doc = data ? cJSON_Parse(data) : NULL;
    const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(*doc, "tasks");
    const char **ids = xcalloc((size_t)cJSON_GetArraySize(tasks) + 1, sizeof *ids);
    const cJSON *t;
    cJSON_ArrayForEach(t, tasks)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(t, "task_id");
        if (cJSON_IsString(id)) ids[(*n)++] = id->valuestring;
    }
    return ids;
}

static void h_grid(ApiReq *r, ApiResp *out)
{
    long long limit = GRID_DEFAULT_RUNS, offset = 0;
    if (api_query_int(r, out, "limit", 0, 1000000000LL, &limit) < 0) return;
    if (limit > GRID_MAX_RUNS) limit = GRID_MAX_RUNS;
    if (api_query_int(r, out, "offset", 0, 1000000000LL, &offset) < 0) return;
    const char *dag_id = r->params[0];
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        return;
    }
    StoreDag dag;
    int found = store_text_valid(dag_id, strlen(dag_id)) ? store_dag_get(s, dag_id, &dag) : 0;
    if (found < 0) {
        api_store_error(out, s);
        return;
    }
    if (!found) {
        api_error(out, 404, "The Dag with ID: `%s` was not found", dag_id);
        return;
    }
    char *data = dag.latest_version_id ? store_dag_version_data(s, dag.latest_version_id) : NULL;
    int failed = dag.latest_version_id && !data;
    store_dag_clear(&dag);
    if (failed) {
        api_store_error(out, s);
        return;
    }
    cJSON *doc;
    size_t n_tasks;
    const char **task_ids = version_task_ids(data, &doc, &n_tasks);
    free(data);

    DagqGridRun *runs = NULL;
    size_t n_runs = 0;
    int64_t total = 0;
    signed char *states = NULL;
    int *tries = NULL;
    if (store_dagq_grid_runs(s, dag_id, (int)limit, (int)offset, &runs, &n_runs, &total) != 0) {
        failed = 1;
    } else {
        states = xcalloc(n_runs * n_tasks + 1, sizeof *states);
        tries = xcalloc(n_runs * n_tasks + 1, sizeof *tries);
        failed = store_dagq_grid_cells(s, dag_id, runs, n_runs, task_ids, n_tasks, states, tries) != 0;
    }
    if (failed) {
        api_store_error(out, s);
    } else {
        StrBuf b = {0};
        sb_append(&b, "{\"dag_runs\":[");
        for (size_t i = 0; i < n_runs; i++) {
            const DagqGridRun *x = &runs[i];
            sb_append(&b, i ? ",{\"dag_run_id\":" : "{\"dag_run_id\":");
            put_json_string(&b, x->run_id);
            sb_append(&b, ",\"state\":");
            put_json_string(&b, x->state);
            sb_append(&b, ",\"run_type\":");
            put_json_string(&b, x->run_type);
            sb_append(&b, ",\"logical_date\":");
            put_json_time(&b, x->logical_date);
            sb_append(&b, ",\"run_after\":");
            put_json_time(&b, x->run_after);
            sb_append(&b, ",\"start_date\":");
            put_json_time(&b, x->start_date);
            sb_append(&b, ",\"end_date\":");
            put_json_time(&b, x->end_date);
            sb_append(&b, "}");
        }
        sb_append(&b, "],\"task_ids\":[");
        for (size_t t = 0; t < n_tasks; t++) {
            if (t) sb_appendc(&b, ',');
            put_json_string(&b, task_ids[t]);
        }
        for (int pass = 0; pass < 2; pass++) {
            sb_append(&b, pass ? "},\"try_numbers\":{" : "],\"states\":{");
            for (size_t i = 0; i < n_runs; i++) {
                if (i) sb_appendc(&b, ',');
                put_json_string(&b, runs[i].run_id);
                sb_append(&b, ":[");
                for (size_t t = 0; t < n_tasks; t++) {
                    size_t at = i * n_tasks + t;
                    if (t) sb_appendc(&b, ',');
                    /* 20,000 values: no printf */
                    char num[16];
                    if (pass == 0 && states[at] > TI_NONE) {
                        sb_appendc(&b, '"');
                        sb_append(&b, ti_state_name((TiState)states[at]));
                        sb_appendc(&b, '"');
                    } else if (pass == 1 && tries[at] >= 0) {
                        sb_append(&b, uint_text((unsigned)tries[at], num));
                    } else {
                        sb_append(&b, "null");
                    }
                }
                sb_appendc(&b, ']');
            }
        }
        sb_printf(&b, "},\"total_entries\":%lld}", (long long)total);
        free(out->body);
        out->status = 200;
        out->body_len = b.len;
        out->body = sb_take(&b);
        out->content_type = "application/json";
    }
    free(states);
    free(tries);
    store_dagq_grid_runs_free(runs, n_runs);
    free(task_ids);
    cJSON_Delete(doc);
}

const ApiRoute api_routes_gust[] = {
    {"GET", "/api/v2/gust/dags/{dag_id}/grid", API_ROLE_VIEWER, h_grid},
    {"GET", "/api/v2/gust/workers", API_ROLE_VIEWER, h_workers},
    {"GET", "/api/v2/gust/ratelimits", API_ROLE_VIEWER, h_limits},
    {"GET", "/api/v2/gust/ratelimits/{name}", API_ROLE_VIEWER, h_limit_get},
    {"PUT", "/api/v2/gust/ratelimits/{name}", API_ROLE_OP, h_limit_put},
    {"DELETE", "/api/v2/gust/ratelimits/{name}", API_ROLE_OP, h_limit_delete},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
