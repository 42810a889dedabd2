/* routes_gust — what gust has and Airflow's API does not: the live workers and the named
 * global rate limits, both kept outside the store (cluster/cluster.h).
 *
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
#include "core/util.h"

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

const ApiRoute api_routes_gust[] = {
    {"GET", "/api/v2/gust/workers", API_ROLE_VIEWER, h_workers},
    {"GET", "/api/v2/gust/ratelimits", API_ROLE_VIEWER, h_limits},
    {"GET", "/api/v2/gust/ratelimits/{name}", API_ROLE_VIEWER, h_limit_get},
    {"PUT", "/api/v2/gust/ratelimits/{name}", API_ROLE_OP, h_limit_put},
    {"DELETE", "/api/v2/gust/ratelimits/{name}", API_ROLE_OP, h_limit_delete},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
