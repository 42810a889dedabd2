/* routes_pools — pools on Airflow's REST API v2 contract (PoolResponse with its slot usage,
 * PoolBody, PoolPatchBody, PoolCollectionResponse and the bulk PATCH /pools). As in
 * Airflow, default_pool is always there: only its slots and include_deferred can change, and
 * it cannot be deleted.
 *
 * Bodies are checked field by field before anything is written (kv_common.c), in FastAPI's
 * words and 422 shape, so a bad body never reaches the store; what the store then refuses is
 * its own failure (503). Changes are written to the event log as api.<operation>. The SQL
 * lives in store/kvquery.c: every list is a count and a page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/kv_bulk.h"
#include "api/kv_common.h"
#include "core/util.h"
#include "store/kv.h"
#include "store/kvquery.h"

static const KvcField pool_spec[] = {
    {"name", KVC_STR, 1, 0, 256, 0, 0},
    {"slots", KVC_INT, 1, 0, 0, -1, 2147483647LL},
    {"description", KVC_STR, 0, 1, 0, 0, 0},
    {"include_deferred", KVC_BOOL, 0, 0, 0, 0, 0},
    {"team_name", KVC_STR, 0, 1, 50, 0, 0},
    {NULL, KVC_ANY, 0, 0, 0, 0, 0},
};
/* PoolPatchBody; "name" is taken as well as "pool" (what PoolBody and PoolResponse call it) */
static const KvcField pool_patch_spec[] = {
    {"pool", KVC_STR, 0, 1, 256, 0, 0},
    {"name", KVC_STR, 0, 1, 256, 0, 0},
    {"slots", KVC_INT, 0, 1, 0, -1, 2147483647LL},
    {"description", KVC_STR, 0, 1, 0, 0, 0},
    {"include_deferred", KVC_BOOL, 0, 1, 0, 0, 0},
    {"team_name", KVC_STR, 0, 1, 50, 0, 0},
    {NULL, KVC_ANY, 0, 0, 0, 0, 0},
};
static const char *const pool_mask_fields[] = {"name", "pool", "slots", "description", "include_deferred", NULL};

static cJSON *pool_json(const StoreKvqPool *p)
{
    int occupied = p->running + p->queued + (p->include_deferred ? p->deferred : 0);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", p->name);
    cJSON_AddNumberToObject(o, "slots", p->slots);
    api_add_str(o, "description", p->description);
    cJSON_AddBoolToObject(o, "include_deferred", p->include_deferred);
    cJSON_AddNumberToObject(o, "occupied_slots", occupied);
    cJSON_AddNumberToObject(o, "running_slots", p->running);
    cJSON_AddNumberToObject(o, "queued_slots", p->queued);
    cJSON_AddNumberToObject(o, "scheduled_slots", p->scheduled);
    /* unlimited pools (slots -1) have -1 open slots: "no limit", like their slots */
    cJSON_AddNumberToObject(o, "open_slots", p->slots < 0 ? -1 : (double)p->slots - occupied);
    cJSON_AddNumberToObject(o, "deferred_slots", p->deferred);
    cJSON_AddNullToObject(o, "team_name");
    return o;
}

static void pool_not_found(ApiResp *out, const char *name)
{
    api_error(out, 404, "The Pool with name: `%s` was not found", name);
}

/* One pool with its usage: 1 found (*p set; free with store_kvq_pool_list_free(*p, 1)), 0 not, -1 error. */
static int pool_fetch(Store *s, const char *name, StoreKvqPool **p)
{
    *p = NULL;
    StoreKvqPage pg = {NULL, 1, 0};
    size_t n = 0;
    int64_t total = 0;
    if (store_kvq_pool_list(s, name, NULL, &pg, p, &n, &total) != 0) return -1;
    return n > 0;
}

static void h_pool_list(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    char order[128];
    StoreKvqPage pg;
    if (kvc_list_args(r, out, s, STORE_KVQ_POOLS, store_kvq_pool_order, 0, order, sizeof order, &pg) != 0) return;
    StoreKvqPool *p;
    size_t n;
    int64_t total = 0;
    if (store_kvq_pool_list(s, NULL, api_query(r, "pool_name_pattern"), &pg, &p, &n, &total) != 0) {
        api_store_error(out, s);
        return;
    }
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "pools");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, pool_json(&p[i]));
    cJSON_AddNumberToObject(doc, "total_entries", (double)total);
    store_kvq_pool_list_free(p, n);
    api_json(out, 200, doc);
}

static void h_pool_get(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    StoreKvqPool *p;
    int rc = pool_fetch(s, r->params[0], &p);
    if (rc < 0) api_store_error(out, s);
    else if (rc == 0) pool_not_found(out, r->params[0]);
    else api_json(out, 200, pool_json(p));
    store_kvq_pool_list_free(p, rc > 0 ? 1 : 0);
}

static int pool_exists(ApiReq *r, Store *s, const char *name)
{
    (void)r;
    StoreKvqPool *p;
    int rc = pool_fetch(s, name, &p);
    store_kvq_pool_list_free(p, rc > 0 ? 1 : 0);
    return rc;
}

static int pool_create(ApiReq *r, Store *s, const cJSON *e, int *status, char *err, size_t errlen)
{
    (void)r;
    const char *name = kvc_jstr(e, "name");
    int rc = store_kvq_pool_add(s, name, (int)cJSON_GetObjectItemCaseSensitive(e, "slots")->valuedouble,
                                kvc_jstr(e, "description"),
                                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "include_deferred")));
    if (rc == STORE_KVQ_DONE) return 0;
    if (rc == STORE_KVQ_EXISTS) {
        *status = 409;
        snprintf(err, errlen, "The Pool with name: `%s` already exists", name);
        return -1;
    }
    return kvc_store_failure(s, status, err, errlen);
}

/* Apply a pool body (PoolBody in bulk, PoolPatchBody in PATCH: its new name is "pool") to
 * the pool `name`. default_pool keeps its name and description (Airflow: "Only slots and
 * included_deferred can be modified on Default Pool"), unless they are sent unchanged. */
static int pool_apply(Store *s, const char *name, const cJSON *e, const KvcMulti *mask, const char *name_field,
                      int *status, char *err, size_t errlen)
{
    StoreKvqPool *p;
    int rc = pool_fetch(s, name, &p);
    if (rc < 0) return kvc_store_failure(s, status, err, errlen);
    if (rc == 0) {
        *status = 404;
        snprintf(err, errlen, "The Pool with name: `%s` was not found", name);
        return -1;
    }
    const char *new_name = p->name;
    int rename_masked = mask->n == 0 || kvc_multi_has(mask, "name") || kvc_multi_has(mask, "pool");
    if (rename_masked && kvc_jstr(e, name_field)) new_name = kvc_jstr(e, name_field);
    const cJSON *slots = cJSON_GetObjectItemCaseSensitive(e, "slots");
    int nslots = kvc_patch_sets(e, mask, "slots") && cJSON_IsNumber(slots) ? (int)slots->valuedouble : p->slots;
    const char *desc = kvc_patch_sets(e, mask, "description") ? kvc_jstr(e, "description") : p->description;
    const cJSON *incl = cJSON_GetObjectItemCaseSensitive(e, "include_deferred");
    int nincl = kvc_patch_sets(e, mask, "include_deferred") && cJSON_IsBool(incl) ? cJSON_IsTrue(incl)
                                                                               : p->include_deferred;
    int same_desc = (!desc && !p->description) || (desc && p->description && strcmp(desc, p->description) == 0);
    if (strcmp(name, STORE_DEFAULT_POOL) == 0 && (strcmp(new_name, name) != 0 || !same_desc)) {
        *status = 400;
        snprintf(err, errlen, "Only slots and included_deferred can be modified on Default Pool");
        store_kvq_pool_list_free(p, 1);
        return -1;
    }
    char *nn = xstrdup(new_name), *nd = xstrdup(desc);
    store_kvq_pool_list_free(p, 1);
    rc = store_kvq_pool_update(s, name, nn, nslots, nd, nincl);
    int result = 0;
    if (rc == STORE_KVQ_MISSING) {
        *status = 404;
        snprintf(err, errlen, "The Pool with name: `%s` was not found", name);
        result = -1;
    } else if (rc == STORE_KVQ_EXISTS) {
        *status = 409;
        snprintf(err, errlen, "The Pool with name: `%s` already exists", nn);
        result = -1;
    } else if (rc != STORE_KVQ_DONE) {
        result = kvc_store_failure(s, status, err, errlen);
    }
    free(nn);
    free(nd);
    return result;
}

static int pool_update(ApiReq *r, Store *s, const cJSON *e, const KvcMulti *mask, int *status, char *err, size_t errlen)
{
    (void)r;
    return pool_apply(s, kvc_jstr(e, "name"), e, mask, "name", status, err, errlen);
}

static int pool_remove(ApiReq *r, Store *s, const char *name, int *status, char *err, size_t errlen)
{
    (void)r;
    if (strcmp(name, STORE_DEFAULT_POOL) == 0) {
        *status = 400;
        snprintf(err, errlen, "Default Pool can't be deleted");
        return -1;
    }
    int rc = kvc_text_ok(name) ? store_pool_delete(s, name) : 0;
    if (rc == 1) return 0;
    if (rc < 0) return kvc_store_failure(s, status, err, errlen);
    *status = 404;
    snprintf(err, errlen, "The Pool with name: `%s` was not found", name);
    return -1;
}

static void answer_pool(ApiResp *out, Store *s, const char *name, int status)
{
    StoreKvqPool *p;
    int rc = pool_fetch(s, name, &p);
    if (rc == 1) api_json(out, status, pool_json(p));
    else api_store_error(out, s);
    store_kvq_pool_list_free(p, rc > 0 ? 1 : 0);
}

static void h_pool_post(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    cJSON *body;
    if (api_body_object(r, out, &body) != 0) return;
    if (kvc_body_check(out, body, pool_spec, "body") == 0) {
        int status = 0;
        char err[512];
        if (pool_create(r, s, body, &status, err, sizeof err) != 0) {
            kvc_answer_failure(out, status, err);
        } else {
            kvc_audit1(r, "api.post_pool", "name", kvc_jstr(body, "name"));
            answer_pool(out, s, kvc_jstr(body, "name"), 201);
        }
    }
    cJSON_Delete(body);
}

static void h_pool_patch(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    const char *name = r->params[0];
    KvcMulti mask;
    if (kvc_update_mask(r, out, pool_mask_fields, &mask) != 0) return;
    cJSON *body = NULL;
    if (api_body_object(r, out, &body) == 0 && kvc_body_check(out, body, pool_patch_spec, "body") == 0) {
        int status = 0;
        char err[512];
        const char *field = kvc_jstr(body, "pool") ? "pool" : "name";
        if (!kvc_text_ok(name)) {
            pool_not_found(out, name);
        } else if (pool_apply(s, name, body, &mask, field, &status, err, sizeof err) != 0) {
            kvc_answer_failure(out, status, err);
        } else {
            int renamed = kvc_jstr(body, field) &&
                          (mask.n == 0 || kvc_multi_has(&mask, "pool") || kvc_multi_has(&mask, "name"));
            kvc_audit1(r, "api.patch_pool", "name", name);
            answer_pool(out, s, renamed ? kvc_jstr(body, field) : name, 200);
        }
    }
    cJSON_Delete(body);
    kvc_multi_free(&mask);
}

static void h_pool_delete(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    int status = 0;
    char err[512];
    if (pool_remove(r, s, r->params[0], &status, err, sizeof err) != 0) {
        kvc_answer_failure(out, status, err);
        return;
    }
    kvc_audit1(r, "api.delete_pool", "name", r->params[0]);
    api_no_content(out);
}

static const KvbOps pool_bulk = {"pools", "name", pool_spec, pool_mask_fields, pool_exists, pool_create, pool_update,
                                  pool_remove};

static void h_pool_bulk(ApiReq *r, ApiResp *out)
{
    kvb_run(r, out, &pool_bulk, "api.bulk_pools");
}

/* ---- the routes ------------------------------------------------------------------------------- */

const ApiRoute api_routes_pools[] = {
    {"GET", "/api/v2/pools", API_ROLE_VIEWER, h_pool_list},
    {"POST", "/api/v2/pools", API_ROLE_OP, h_pool_post},
    {"PATCH", "/api/v2/pools", API_ROLE_OP, h_pool_bulk},
    {"GET", "/api/v2/pools/{pool_name}", API_ROLE_VIEWER, h_pool_get},
    {"PATCH", "/api/v2/pools/{pool_name}", API_ROLE_OP, h_pool_patch},
    {"DELETE", "/api/v2/pools/{pool_name}", API_ROLE_OP, h_pool_delete},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
