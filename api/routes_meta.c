/* routes_meta — the routes anyone may call: logging in (POST /auth/token), Airflow's health
 * and version endpoints, and the two probes an orchestrator such as Kubernetes polls.
 *
 * /health is liveness: it answers from this process alone, so a slow or unreachable
 * database never gets a healthy API killed and restarted. /ready is readiness: it asks the
 * store a trivial query, so traffic is sent only to an API that can serve it. Airflow's
 * /api/v2/monitor/health reports each component; it answers 200 even when one is
 * unhealthy (the statuses say so), as Airflow does. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/auth.h"
#include "core/util.h"
#include "store/jobs.h"
#include "store/store.h"

#ifndef GUST_VERSION
#define GUST_VERSION "0.1.0"
#endif

/* POST /auth/token {"username", "password"} -> 201 {"access_token", "token_type", "expires_in"} */
static void auth_token(ApiReq *r, ApiResp *out)
{
    cJSON *doc = NULL;
    if (api_body_object(r, out, &doc) != 0) return;
    const char *fields[] = {"username", "password"};
    const char *val[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(doc, fields[i]);
        if (!f) {
            api_error_422(out, "body", fields[i], "Field required");
            cJSON_Delete(doc);
            return;
        }
        if (!cJSON_IsString(f)) {
            api_error_422(out, "body", fields[i], "Input should be a valid string");
            cJSON_Delete(doc);
            return;
        }
        val[i] = f->valuestring;
    }
    Store *s = api_store(r);
    if (!s) {
        api_store_error(out, NULL);
        cJSON_Delete(doc);
        return;
    }
    ApiRole role = API_ROLE_NONE;
    int retry = 0;
    char why[256] = "";
    int rc = api_auth_password(r->ctx, s, "token", val[0], val[1], r->remote_addr, &role, &retry, why, sizeof why);
    if (rc == 1) {
        char *token = api_token_issue(r->ctx, val[0], role, util_now_us());
        if (!token) {
            api_error(out, 500, "cannot sign the token (OpenSSL failed)");
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "access_token", token);
            cJSON_AddStringToObject(o, "token_type", "bearer");
            cJSON_AddNumberToObject(o, "expires_in", (double)(r->ctx->token_ttl_us / 1000000));
            api_json(out, 201, o);
            /* RFC 6749 5.1: a response carrying a token must not be cached */
            out->extra_headers = xstrdup("Cache-Control: no-store\r\nPragma: no-cache\r\n");
            free(token);
        }
    } else if (rc == API_AUTH_THROTTLED) {
        api_error(out, 429, "Too many failed logins for this user or address: try again in %d s", retry);
        out->extra_headers = xasprintf("Retry-After: %d\r\n", retry);
    } else if (rc == 0) {
        api_error(out, 401, "Invalid username or password");
    } else {
        api_store_error(out, s);
    }
    cJSON_Delete(doc);
}

/* 1 when the store answers a trivial query. */
static int store_ping(Store *s)
{
    int64_t one = 0;
    return s && store_q_int(s, "SELECT 1", NULL, 0, 0, &one) == 0 && one == 1;
}

/* GET /api/v2/monitor/health (HealthInfoResponse). A scheduler is healthy when one wrote its
 * heartbeat to the job table (store/jobs.h) within 30 s (Airflow's
 * scheduler_health_check_threshold); otherwise "unhealthy" with the last heartbeat seen (or
 * null). gust has no triggerer, and its DAG processor is part of the scheduler (Airflow
 * reports null for a DAG processor that is not a separate process). */
static void monitor_health(ApiReq *r, ApiResp *out)
{
    Store *s = api_store(r);
    int db_ok = store_ping(s);
    cJSON *o = cJSON_CreateObject();
    cJSON *db = cJSON_AddObjectToObject(o, "metadatabase");
    cJSON_AddStringToObject(db, "status", db_ok ? "healthy" : "unhealthy");
    cJSON *sch = cJSON_AddObjectToObject(o, "scheduler");
    int64_t beat = -1;
    if (!db_ok || store_job_latest(s, "SchedulerJob", &beat) != 1) beat = -1;
    cJSON_AddStringToObject(sch, "status", beat >= 0 && r->now - beat <= 30LL * 1000000 ? "healthy" : "unhealthy");
    api_add_time(sch, "latest_scheduler_heartbeat", beat);
    cJSON *trg = cJSON_AddObjectToObject(o, "triggerer");
    cJSON_AddNullToObject(trg, "status");
    cJSON_AddNullToObject(trg, "latest_triggerer_heartbeat");
    cJSON_AddNullToObject(o, "dag_processor");
    api_json(out, 200, o);
}

/* GET /api/v2/version (VersionInfo). git_version is the commit the build was made from
 * when the build says so (-DGUST_GIT_VERSION=...), else null. */
static void version(ApiReq *r, ApiResp *out)
{
    (void)r;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "version", GUST_VERSION);
#ifdef GUST_GIT_VERSION
    cJSON_AddStringToObject(o, "git_version", GUST_GIT_VERSION);
#else
    cJSON_AddNullToObject(o, "git_version");
#endif
    api_json(out, 200, o);
}

/* GET /health: liveness, from this process alone. */
static void health(ApiReq *r, ApiResp *out)
{
    (void)r;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ok");
    api_json(out, 200, o);
}

/* GET /ready: readiness, 200 once the store answers, else 503 naming it. */
static void ready(ApiReq *r, ApiResp *out)
{
    Store *s = api_store(r);
    if (!store_ping(s)) {
        if (s)
            api_error(out, 503, "not ready: the %s store does not answer: %s", s->drv->name, store_last_error(s));
        else
            api_store_error(out, NULL);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "status", "ready");
    cJSON_AddStringToObject(o, "store", s->drv->name);
    api_json(out, 200, o);
}

const ApiRoute api_routes_meta[] = {
    {"POST", "/auth/token", API_ROLE_NONE, auth_token},
    {"GET", "/api/v2/monitor/health", API_ROLE_NONE, monitor_health},
    {"GET", "/api/v2/version", API_ROLE_NONE, version},
    {"GET", "/health", API_ROLE_NONE, health},
    {"GET", "/ready", API_ROLE_NONE, ready},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
