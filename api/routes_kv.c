/* routes_kv — variables on Airflow's REST API v2 contract (VariableResponse, VariableBody,
 * VariableCollectionResponse and the bulk PATCH /variables).
 *
 * Secrets never leave: the value of a variable whose key looks secret is answered as "***",
 * and so are the secret-looking top-level keys of a variable that holds a JSON object —
 * Airflow's secrets masker, its list of names and its max_depth for variables.
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
#include "store/store.h"

static char *masked_value(const char *key, const char *val)
{
    if (!val) return xstrdup("");
    if (kvc_sensitive_key(key)) return xstrdup(KVC_MASK);
    if (*val != '{') return xstrdup(val);
    cJSON *j = cJSON_Parse(val);
    char *out = cJSON_IsObject(j) && kvc_mask_json(j, 0) ? cJSON_PrintUnformatted(j) : xstrdup(val);
    cJSON_Delete(j);
    return out;
}

static const KvcField var_spec[] = {
    {"key", KVC_STR, 1, 0, 250, 0, 0},
    {"value", KVC_ANY, 1, 1, 0, 0, 0},
    {"description", KVC_STR, 0, 1, 0, 0, 0},
    {"team_name", KVC_STR, 0, 1, 50, 0, 0},
    {NULL, KVC_ANY, 0, 0, 0, 0, 0},
};
static const char *const var_mask_fields[] = {"key", "value", "description", NULL};

static cJSON *var_json(const char *key, const char *val, const char *description)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", key);
    char *shown = masked_value(key, val);
    cJSON_AddStringToObject(o, "value", shown);
    free(shown);
    api_add_str(o, "description", description);
    cJSON_AddBoolToObject(o, "is_encrypted", 0);
    cJSON_AddNullToObject(o, "team_name");
    return o;
}

/* The value to store: a JSON string as it is, any other JSON value as its JSON text
 * (Airflow's VariableBody takes any JSON value). Caller frees. */
static char *var_value_text(const cJSON *v)
{
    if (cJSON_IsString(v)) return xstrdup(v->valuestring);
    return v ? cJSON_PrintUnformatted(v) : xstrdup("");
}

static void h_var_list(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    char order[128];
    StoreKvqPage pg;
    if (kvc_list_args(r, out, s, STORE_KVQ_VARS, store_kvq_var_order, 0, order, sizeof order, &pg) != 0) return;
    StoreVariableList l;
    int64_t total = 0;
    if (store_kvq_var_list(s, api_query(r, "variable_key_pattern"), &pg, &l, &total) != 0) {
        api_store_error(out, s);
        return;
    }
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "variables");
    for (size_t i = 0; i < l.n; i++)
        cJSON_AddItemToArray(arr, var_json(l.items[i].key, l.items[i].val, l.items[i].description));
    cJSON_AddNumberToObject(doc, "total_entries", (double)total);
    store_var_list_free(&l);
    api_json(out, 200, doc);
}

static void var_not_found(ApiResp *out, const char *key)
{
    api_error(out, 404, "The Variable with key: `%s` was not found", key);
}

static void h_var_get(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    const char *key = r->params[0];
    int missing = 0;
    StoreVariable *v = kvc_text_ok(key) ? store_var_get(s, key, &missing) : NULL;
    if (!v) {
        if (missing || !kvc_text_ok(key)) var_not_found(out, key);
        else api_store_error(out, s);
        return;
    }
    api_json(out, 200, var_json(v->key, v->val, v->description));
    store_var_free(v);
}

static int var_exists(ApiReq *r, Store *s, const char *key)
{
    (void)r;
    if (!kvc_text_ok(key)) return 0;
    int missing = 0;
    StoreVariable *v = store_var_get(s, key, &missing);
    store_var_free(v);
    return v ? 1 : missing ? 0 : -1;
}

static int var_create(ApiReq *r, Store *s, const cJSON *e, int *status, char *err, size_t errlen)
{
    (void)r;
    const char *key = kvc_jstr(e, "key");
    char *val = var_value_text(cJSON_GetObjectItemCaseSensitive(e, "value"));
    int rc = store_kvq_var_add(s, key, val, kvc_jstr(e, "description"));
    free(val);
    if (rc == STORE_KVQ_DONE) return 0;
    if (rc == STORE_KVQ_EXISTS) {
        *status = 409;
        snprintf(err, errlen, "The Variable with key: `%s` already exists", key);
    } else {
        *status = 503;
        snprintf(err, errlen, "the store is unavailable: %s", store_last_error(s));
    }
    return -1;
}

/* Apply a VariableBody to the stored variable: the fields present (and in the mask, if one
 * is given) change, the others stay. */
static int var_update(ApiReq *r, Store *s, const cJSON *e, const KvcMulti *mask, int *status, char *err, size_t errlen)
{
    (void)r;
    const char *key = kvc_jstr(e, "key");
    int missing = 0;
    StoreVariable *cur = store_var_get(s, key, &missing);
    if (!cur) {
        *status = missing ? 404 : 503;
        if (missing) snprintf(err, errlen, "The Variable with key: `%s` was not found", key);
        else snprintf(err, errlen, "the store is unavailable: %s", store_last_error(s));
        return -1;
    }
    char *val = kvc_patch_sets(e, mask, "value") ? var_value_text(cJSON_GetObjectItemCaseSensitive(e, "value"))
                                             : xstrdup(cur->val);
    const char *desc = kvc_patch_sets(e, mask, "description") ? kvc_jstr(e, "description") : cur->description;
    int rc = store_kvq_var_update(s, key, val, desc);
    free(val);
    store_var_free(cur);
    if (rc == STORE_KVQ_DONE) return 0;
    *status = rc == STORE_KVQ_MISSING ? 404 : 503;
    if (rc == STORE_KVQ_MISSING) snprintf(err, errlen, "The Variable with key: `%s` was not found", key);
    else snprintf(err, errlen, "the store is unavailable: %s", store_last_error(s));
    return -1;
}

static int var_remove(ApiReq *r, Store *s, const char *key, int *status, char *err, size_t errlen)
{
    (void)r;
    int rc = store_var_delete(s, key);
    if (rc == 1) return 0;
    *status = rc == 0 ? 404 : 503;
    if (rc == 0) snprintf(err, errlen, "The Variable with key: `%s` was not found", key);
    else snprintf(err, errlen, "the store is unavailable: %s", store_last_error(s));
    return -1;
}

static void h_var_post(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    cJSON *body;
    if (api_body_object(r, out, &body) != 0) return;
    if (kvc_body_check(out, body, var_spec, "body") != 0) {
        cJSON_Delete(body);
        return;
    }
    int status = 0;
    char err[512];
    if (var_create(r, s, body, &status, err, sizeof err) != 0) {
        kvc_answer_failure(out, status, err);
    } else {
        const char *key = kvc_jstr(body, "key");
        kvc_audit1(r, "api.post_variable", "key", key);
        char *val = var_value_text(cJSON_GetObjectItemCaseSensitive(body, "value"));
        api_json(out, 201, var_json(key, val, kvc_jstr(body, "description")));
        free(val);
    }
    cJSON_Delete(body);
}

static void h_var_patch(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    const char *key = r->params[0];
    KvcMulti mask;
    if (kvc_update_mask(r, out, var_mask_fields, &mask) != 0) return;
    cJSON *body = NULL;
    if (api_body_object(r, out, &body) != 0) goto done;
    /* value is required only when it is what changes (Airflow requires it always) */
    KvcField spec[GUST_ARRAY_LEN(var_spec)];
    memcpy(spec, var_spec, sizeof spec);
    spec[1].required = mask.n == 0 || kvc_multi_has(&mask, "value");
    if (kvc_body_check(out, body, spec, "body") != 0) goto done;
    if (strcmp(kvc_jstr(body, "key"), key) != 0) {
        api_error(out, 400, "Invalid body, key from request body doesn't match uri parameter");
        goto done;
    }
    int status = 0;
    char err[512];
    if (var_update(r, s, body, &mask, &status, err, sizeof err) != 0) {
        kvc_answer_failure(out, status, err);
        goto done;
    }
    kvc_audit1(r, "api.patch_variable", "key", key);
    StoreVariable *v = store_var_get(s, key, NULL);
    if (v) api_json(out, 200, var_json(v->key, v->val, v->description));
    else api_store_error(out, s);
    store_var_free(v);
done:
    cJSON_Delete(body);
    kvc_multi_free(&mask);
}

static void h_var_delete(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    const char *key = r->params[0];
    if (!kvc_text_ok(key)) {
        var_not_found(out, key);
        return;
    }
    int status = 0;
    char err[512];
    if (var_remove(r, s, key, &status, err, sizeof err) != 0) {
        kvc_answer_failure(out, status, err);
        return;
    }
    kvc_audit1(r, "api.delete_variable", "key", key);
    api_no_content(out);
}

static const KvbOps var_bulk = {"variables", "key", var_spec, var_mask_fields, var_exists, var_create, var_update,
                                 var_remove};

static void h_var_bulk(ApiReq *r, ApiResp *out)
{
    kvb_run(r, out, &var_bulk, "api.bulk_variables");
}

/* ---- the routes ------------------------------------------------------------------------------- */

const ApiRoute api_routes_kv[] = {
    {"GET", "/api/v2/variables", API_ROLE_VIEWER, h_var_list},
    {"POST", "/api/v2/variables", API_ROLE_OP, h_var_post},
    {"PATCH", "/api/v2/variables", API_ROLE_OP, h_var_bulk},
    {"GET", "/api/v2/variables/{variable_key}", API_ROLE_VIEWER, h_var_get},
    {"PATCH", "/api/v2/variables/{variable_key}", API_ROLE_OP, h_var_patch},
    {"DELETE", "/api/v2/variables/{variable_key}", API_ROLE_OP, h_var_delete},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
