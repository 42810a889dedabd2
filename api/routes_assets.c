/* routes_assets — assets on Airflow's REST API v2 contract: assets (AssetResponse, with the
 * DAGs they schedule and the tasks that produce and consume them), asset aliases (gust has
 * none: an empty list and 404s), asset events (AssetEventResponse; listed, and created by
 * hand with POST /assets/events) and the queued events that wait to trigger a DAG
 * (QueuedEventResponse; read and deleted per asset, per DAG, or both).
 *
 * Bodies are checked field by field before anything is written (kv_common.c), in FastAPI's
 * words and 422 shape, so a bad body never reaches the store; what the store then refuses is
 * its own failure (503). Changes are written to the event log as api.<operation>. The SQL
 * lives in store/kvquery.c: every list is a count and a page. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/kv_common.h"
#include "store/kvquery.h"

/* ---- assets and asset events ------------------------------------------------------------------ */

static cJSON *refs_json(const StoreKvqAssetRef *v, size_t n, int tasks)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dag_id", v[i].dag_id);
        if (tasks) cJSON_AddStringToObject(o, "task_id", v[i].task_id ? v[i].task_id : "");
        api_add_time(o, "created_at", v[i].created_at);
        api_add_time(o, "updated_at", v[i].updated_at);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *asset_json(const StoreKvqAsset *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)a->id);
    cJSON_AddStringToObject(o, "name", a->name ? a->name : a->uri);
    cJSON_AddStringToObject(o, "uri", a->uri);
    cJSON_AddStringToObject(o, "group", a->group ? a->group : "asset");
    kvc_add_object_text(o, "extra", a->extra);
    api_add_time(o, "created_at", a->created_at);
    api_add_time(o, "updated_at", a->updated_at);
    cJSON_AddItemToObject(o, "scheduled_dags", refs_json(a->scheduled, a->n_scheduled, 0));
    cJSON_AddItemToObject(o, "producing_tasks", refs_json(a->producing, a->n_producing, 1));
    cJSON_AddItemToObject(o, "consuming_tasks", refs_json(a->consuming, a->n_consuming, 1));
    cJSON_AddItemToObject(o, "aliases", cJSON_CreateArray());  /* gust has no asset aliases */
    cJSON_AddItemToObject(o, "watchers", cJSON_CreateArray()); /* nor watchers */
    cJSON *last = cJSON_AddObjectToObject(o, "last_asset_event");
    kvc_add_int_or_null(last, "id", a->last_event_id);
    api_add_time(last, "timestamp", a->last_event_at == STORE_KVQ_NONE ? -1 : a->last_event_at);
    return o;
}

static void h_asset_list(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    char order[128];
    StoreKvqPage pg;
    if (kvc_list_args(r, out, s, STORE_KVQ_ASSETS, store_kvq_asset_order, 0, order, sizeof order, &pg) != 0) return;
    /* only_active is checked, then ignored: gust keeps no inactive assets apart */
    if (api_query_bool(r, out, "only_active") < 0) return;
    KvcMulti dags;
    kvc_multi_get(r, "dag_ids", &dags);
    StoreKvqAssetFilter f = {0, api_query(r, "uri_pattern"), api_query(r, "name_pattern"), dags.v, dags.n};
    StoreKvqAsset *a;
    size_t n;
    int64_t total = 0;
    if (store_kvq_asset_list(s, &f, &pg, &a, &n, &total) != 0) {
        api_store_error(out, s);
    } else {
        cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "assets");
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, asset_json(&a[i]));
        cJSON_AddNumberToObject(doc, "total_entries", (double)total);
        store_kvq_asset_list_free(a, n);
        api_json(out, 200, doc);
    }
    kvc_multi_free(&dags);
}

static void h_asset_get(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    int64_t id;
    if (kvc_path_int(r, out, 0, "asset_id", &id) != 0) return;
    StoreKvqAssetFilter f = {id > 0 ? id : -1, NULL, NULL, NULL, 0};
    StoreKvqPage pg = {NULL, 1, 0};
    StoreKvqAsset *a = NULL;
    size_t n = 0;
    int64_t total = 0;
    if (id > 0 && store_kvq_asset_list(s, &f, &pg, &a, &n, &total) != 0) api_store_error(out, s);
    else if (!n) api_error(out, 404, "The Asset with ID: `%lld` was not found", (long long)id);
    else api_json(out, 200, asset_json(&a[0]));
    store_kvq_asset_list_free(a, n);
}

static void h_alias_list(ApiReq *r, ApiResp *out)
{
    int limit, offset;
    if (api_page(r, out, &limit, &offset) != 0) return;
    static const char *const names[] = {"id", "name", NULL};
    char order[64];
    if (api_order_by(r, out, names, names, 0, order, sizeof order) != 0) return;
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "asset_aliases", cJSON_CreateArray());
    cJSON_AddNumberToObject(doc, "total_entries", 0);
    api_json(out, 200, doc);
}

static void h_alias_get(ApiReq *r, ApiResp *out)
{
    int64_t id;
    if (kvc_path_int(r, out, 0, "asset_alias_id", &id) != 0) return;
    api_error(out, 404, "The Asset Alias with ID: `%lld` was not found", (long long)id);
}

static cJSON *asset_event_json(const StoreKvqAssetEvent *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)e->id);
    cJSON_AddNumberToObject(o, "asset_id", (double)e->asset_id);
    api_add_str(o, "uri", e->uri);
    api_add_str(o, "name", e->name);
    api_add_str(o, "group", e->group);
    kvc_add_object_text(o, "extra", e->extra);
    api_add_str(o, "source_task_id", e->source_task_id);
    api_add_str(o, "source_dag_id", e->source_dag_id);
    api_add_str(o, "source_run_id", e->source_run_id);
    cJSON_AddNumberToObject(o, "source_map_index", e->source_map_index);
    /* gust does not record which runs an event started */
    cJSON_AddItemToObject(o, "created_dagruns", cJSON_CreateArray());
    api_add_time(o, "timestamp", e->timestamp);
    cJSON_AddNullToObject(o, "partition_key");
    return o;
}

static int time_arg(ApiReq *r, ApiResp *out, const char *name, int64_t *v)
{
    int64_t t;
    int rc = api_query_time(r, out, name, &t);
    if (rc > 0) *v = t;
    return rc < 0 ? -1 : 0;
}

static void h_asset_event_list(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    char order[128];
    StoreKvqPage pg;
    if (kvc_list_args(r, out, s, STORE_KVQ_ASSET_EVENTS, store_kvq_asset_event_order, 4, order, sizeof order, &pg) !=
        0)
        return;
    StoreKvqAssetEventFilter f;
    store_kvq_asset_event_filter_init(&f);
    long long v;
    int rc;
    if ((rc = api_query_int(r, out, "asset_id", -(1LL << 62), 1LL << 62, &v)) < 0) return;
    if (rc) f.asset_id = v > 0 ? v : -1;
    if ((rc = api_query_int(r, out, "source_map_index", -1, 1LL << 40, &v)) < 0) return;
    if (rc) f.source_map_index = v;
    if (time_arg(r, out, "timestamp_gte", &f.ts_gte) || time_arg(r, out, "timestamp_gt", &f.ts_gt) ||
        time_arg(r, out, "timestamp_lte", &f.ts_lte) || time_arg(r, out, "timestamp_lt", &f.ts_lt))
        return;
    f.source_dag_id = api_query(r, "source_dag_id");
    f.source_task_id = api_query(r, "source_task_id");
    f.source_run_id = api_query(r, "source_run_id");
    f.name_pattern = api_query(r, "name_pattern");
    StoreKvqAssetEvent *e;
    size_t n;
    int64_t total = 0;
    if (f.asset_id == -1) { /* asset_id <= 0 names no asset */
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "asset_events", cJSON_CreateArray());
        cJSON_AddNumberToObject(doc, "total_entries", 0);
        api_json(out, 200, doc);
        return;
    }
    if (store_kvq_asset_event_list(s, &f, &pg, &e, &n, &total) != 0) {
        api_store_error(out, s);
        return;
    }
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "asset_events");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, asset_event_json(&e[i]));
    cJSON_AddNumberToObject(doc, "total_entries", (double)total);
    store_kvq_asset_event_list_free(e, n);
    api_json(out, 200, doc);
}

/* POST /assets/events: an event made by hand. The body is Airflow's CreateAssetEventsBody;
 * gust also takes "uri" instead of asset_id. Airflow marks the event's extra with
 * from_rest_api: true, and so does gust. */
static void h_asset_event_post(ApiReq *r, ApiResp *out)
{
    static const KvcField spec[] = {
        {"asset_id", KVC_INT, 0, 0, 0, -(1LL << 53), 1LL << 53},
        {"uri", KVC_STR, 0, 0, 0, 0, 0},
        {"extra", KVC_OBJ, 0, 0, 0, 0, 0},
        {"partition_key", KVC_STR, 0, 1, 0, 0, 0},
        {NULL, KVC_ANY, 0, 0, 0, 0, 0},
    };
    Store *s = kvc_store(r, out);
    if (!s) return;
    cJSON *body;
    if (api_body_object(r, out, &body) != 0) return;
    if (kvc_body_check(out, body, spec, "body") != 0) goto done;
    const cJSON *aid = cJSON_GetObjectItemCaseSensitive(body, "asset_id");
    const char *uri = kvc_jstr(body, "uri");
    if (!aid && !uri) {
        api_error_422(out, "body", "asset_id", "Field required");
        goto done;
    }
    int64_t id = aid ? (int64_t)aid->valuedouble : 0;
    if (!aid) {
        int rc = store_kvq_asset_id(s, uri, &id);
        if (rc < 0) {
            api_store_error(out, s);
            goto done;
        }
        if (rc == 0) {
            api_error(out, 404, "Asset with uri: `%s` was not found", uri);
            goto done;
        }
    }
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(body, "extra");
    cJSON *extra = ex ? cJSON_Duplicate(ex, 1) : cJSON_CreateObject();
    cJSON_DeleteItemFromObjectCaseSensitive(extra, "from_rest_api");
    cJSON_AddBoolToObject(extra, "from_rest_api", 1);
    char *extra_text = cJSON_PrintUnformatted(extra);
    cJSON_Delete(extra);
    int64_t event_id = 0;
    int rc = id > 0 ? store_kvq_asset_event_create(s, id, extra_text, &event_id) : STORE_KVQ_MISSING;
    free(extra_text);
    if (rc < 0) {
        api_store_error(out, s);
        goto done;
    }
    if (rc == STORE_KVQ_MISSING) {
        api_error(out, 404, "Asset with ID: `%lld` was not found", (long long)id);
        goto done;
    }
    cJSON *x = cJSON_CreateObject();
    cJSON_AddNumberToObject(x, "asset_id", (double)id);
    cJSON_AddNumberToObject(x, "asset_event_id", (double)event_id);
    char *audit = cJSON_PrintUnformatted(x);
    cJSON_Delete(x);
    api_audit(r, "api.create_asset_event", NULL, NULL, NULL, audit);
    free(audit);
    StoreKvqAssetEventFilter f;
    store_kvq_asset_event_filter_init(&f);
    f.id = event_id;
    StoreKvqPage pg = {NULL, 1, 0};
    StoreKvqAssetEvent *e = NULL;
    size_t n = 0;
    int64_t total = 0;
    if (store_kvq_asset_event_list(s, &f, &pg, &e, &n, &total) != 0 || !n) api_store_error(out, s);
    else api_json(out, 200, asset_event_json(&e[0]));
    store_kvq_asset_event_list_free(e, n);
done:
    cJSON_Delete(body);
}

/* ---- queued asset events ---------------------------------------------------------------------- */

static cJSON *queued_json(const StoreKvqQueued *q)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dag_id", q->dag_id);
    cJSON_AddNumberToObject(o, "asset_id", (double)q->asset_id);
    api_add_time(o, "created_at", q->created_at);
    cJSON_AddStringToObject(o, "dag_display_name", q->dag_id);
    return o;
}

/* The selection of a queuedEvents route: dag_id and/or asset_id from the path, before from
 * the query. 0 ok, -1 after answering 422. */
static int queued_args(ApiReq *r, ApiResp *out, int has_dag, int asset_param, const char **dag_id, int64_t *asset_id,
                       int64_t *before)
{
    *dag_id = has_dag ? r->params[0] : NULL;
    *asset_id = 0;
    *before = STORE_KVQ_NONE;
    if (asset_param >= 0) {
        if (kvc_path_int(r, out, asset_param, "asset_id", asset_id) != 0) return -1;
        if (*asset_id <= 0) *asset_id = -1; /* names no asset: matches nothing */
    }
    return time_arg(r, out, "before", before);
}

static void queued_not_found(ApiResp *out, const char *dag_id, int64_t asset_id)
{
    if (dag_id && asset_id)
        api_error(out, 404, "Queued event with dag_id: `%s` and asset_id: `%lld` was not found", dag_id,
                  (long long)asset_id);
    else if (dag_id)
        api_error(out, 404, "Queue event with dag_id: `%s` was not found", dag_id);
    else
        api_error(out, 404, "Queue event with asset_id: `%lld` was not found", (long long)asset_id);
}

static void queued_get(ApiReq *r, ApiResp *out, int has_dag, int asset_param, int single)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    const char *dag_id;
    int64_t asset_id, before;
    if (queued_args(r, out, has_dag, asset_param, &dag_id, &asset_id, &before) != 0) return;
    StoreKvqQueued *q = NULL;
    size_t n = 0;
    if (asset_id >= 0 && store_kvq_queued_list(s, dag_id, asset_id, before, &q, &n) != 0) {
        api_store_error(out, s);
        return;
    }
    if (!n) { /* as Airflow: an empty queue is a 404 */
        queued_not_found(out, dag_id, asset_id);
    } else if (single) {
        api_json(out, 200, queued_json(&q[0]));
    } else {
        cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "queued_events");
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, queued_json(&q[i]));
        cJSON_AddNumberToObject(doc, "total_entries", (double)n);
        api_json(out, 200, doc);
    }
    store_kvq_queued_list_free(q, n);
}

static void queued_delete(ApiReq *r, ApiResp *out, int has_dag, int asset_param)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    const char *dag_id;
    int64_t asset_id, before;
    if (queued_args(r, out, has_dag, asset_param, &dag_id, &asset_id, &before) != 0) return;
    int64_t n = asset_id >= 0 ? store_kvq_queued_delete(s, dag_id, asset_id, before) : 0;
    if (n < 0) {
        api_store_error(out, s);
        return;
    }
    if (n == 0) {
        queued_not_found(out, dag_id, asset_id);
        return;
    }
    cJSON *x = cJSON_CreateObject();
    api_add_str(x, "dag_id", dag_id);
    if (asset_id > 0) cJSON_AddNumberToObject(x, "asset_id", (double)asset_id);
    cJSON_AddNumberToObject(x, "deleted", (double)n);
    char *extra = cJSON_PrintUnformatted(x);
    cJSON_Delete(x);
    api_audit(r, "api.delete_queued_asset_events", dag_id, NULL, NULL, extra);
    free(extra);
    api_no_content(out);
}

static void h_queued_asset(ApiReq *r, ApiResp *out) { queued_get(r, out, 0, 0, 0); }
static void h_queued_dag(ApiReq *r, ApiResp *out) { queued_get(r, out, 1, -1, 0); }
static void h_queued_dag_asset(ApiReq *r, ApiResp *out) { queued_get(r, out, 1, 1, 1); }
static void h_queued_asset_delete(ApiReq *r, ApiResp *out) { queued_delete(r, out, 0, 0); }
static void h_queued_dag_delete(ApiReq *r, ApiResp *out) { queued_delete(r, out, 1, -1); }
static void h_queued_dag_asset_delete(ApiReq *r, ApiResp *out) { queued_delete(r, out, 1, 1); }

/* ---- the routes ------------------------------------------------------------------------------- */

const ApiRoute api_routes_assets[] = {
    {"GET", "/api/v2/assets", API_ROLE_VIEWER, h_asset_list},
    {"GET", "/api/v2/assets/aliases", API_ROLE_VIEWER, h_alias_list},
    {"GET", "/api/v2/assets/aliases/{asset_alias_id}", API_ROLE_VIEWER, h_alias_get},
    {"GET", "/api/v2/assets/events", API_ROLE_VIEWER, h_asset_event_list},
    {"POST", "/api/v2/assets/events", API_ROLE_USER, h_asset_event_post},
    {"GET", "/api/v2/assets/{asset_id}", API_ROLE_VIEWER, h_asset_get},
    {"GET", "/api/v2/assets/{asset_id}/queuedEvents", API_ROLE_VIEWER, h_queued_asset},
    {"DELETE", "/api/v2/assets/{asset_id}/queuedEvents", API_ROLE_USER, h_queued_asset_delete},
    {"GET", "/api/v2/dags/{dag_id}/assets/queuedEvents", API_ROLE_VIEWER, h_queued_dag},
    {"DELETE", "/api/v2/dags/{dag_id}/assets/queuedEvents", API_ROLE_USER, h_queued_dag_delete},
    {"GET", "/api/v2/dags/{dag_id}/assets/{asset_id}/queuedEvents", API_ROLE_VIEWER, h_queued_dag_asset},
    {"DELETE", "/api/v2/dags/{dag_id}/assets/{asset_id}/queuedEvents", API_ROLE_USER, h_queued_dag_asset_delete},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
