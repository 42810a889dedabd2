/* routes_eventlogs — the event log on Airflow's REST API v2 contract (EventLogResponse and
 * EventLogCollectionResponse): what was done through the CLI and the API (the API's own
 * changes as api.<operation>, api_audit). Read-only here. Filters map onto bound parameters
 * in store/kvquery.c; a list is a count and a page. */
#include <string.h>

#include "api/api.h"
#include "api/kv_common.h"
#include "store/kvquery.h"

static cJSON *event_json(const StoreKvqEvent *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "event_log_id", (double)e->id);
    api_add_time(o, "when", e->dttm);
    api_add_str(o, "dag_id", e->dag_id);
    api_add_str(o, "task_id", e->task_id);
    api_add_str(o, "run_id", e->run_id);
    kvc_add_int_or_null(o, "map_index", e->map_index);
    kvc_add_int_or_null(o, "try_number", e->try_number);
    cJSON_AddStringToObject(o, "event", e->event ? e->event : "");
    api_add_time(o, "logical_date", e->logical_date == STORE_KVQ_NONE ? -1 : e->logical_date);
    api_add_str(o, "owner", e->owner);
    api_add_str(o, "extra", e->extra);
    /* gust has no display names: they are the ids */
    api_add_str(o, "dag_display_name", e->dag_id);
    api_add_str(o, "task_display_name", e->task_id);
    return o;
}

static void h_event_list(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    char order[128];
    StoreKvqPage pg;
    if (kvc_list_args(r, out, s, STORE_KVQ_EVENTS, store_kvq_event_order, 0, order, sizeof order, &pg) != 0) return;
    StoreKvqEventFilter f;
    store_kvq_event_filter_init(&f);
    long long mi, tn;
    int64_t before, after;
    int rc;
    if ((rc = api_query_int(r, out, "map_index", -1, 1LL << 40, &mi)) < 0) return;
    if (rc) f.map_index = mi;
    if ((rc = api_query_int(r, out, "try_number", 0, 1LL << 40, &tn)) < 0) return;
    if (rc) f.try_number = tn;
    if ((rc = api_query_time(r, out, "before", &before)) < 0) return;
    if (rc) f.before = before;
    if ((rc = api_query_time(r, out, "after", &after)) < 0) return;
    if (rc) f.after = after;
    f.dag_id = api_query(r, "dag_id");
    f.task_id = api_query(r, "task_id");
    f.run_id = api_query(r, "run_id");
    f.owner = api_query(r, "owner");
    f.event = api_query(r, "event");
    f.dag_id_pattern = api_query(r, "dag_id_pattern");
    f.task_id_pattern = api_query(r, "task_id_pattern");
    f.run_id_pattern = api_query(r, "run_id_pattern");
    f.owner_pattern = api_query(r, "owner_pattern");
    f.event_pattern = api_query(r, "event_pattern");
    KvcMulti inc, exc;
    kvc_multi_get(r, "included_events", &inc);
    kvc_multi_get(r, "excluded_events", &exc);
    f.included = inc.v;
    f.n_included = inc.n;
    f.excluded = exc.v;
    f.n_excluded = exc.n;
    StoreKvqEvent *ev;
    size_t n;
    int64_t total = 0;
    if (store_kvq_event_list(s, &f, &pg, &ev, &n, &total) != 0) {
        api_store_error(out, s);
    } else {
        cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "event_logs");
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, event_json(&ev[i]));
        cJSON_AddNumberToObject(doc, "total_entries", (double)total);
        store_kvq_event_list_free(ev, n);
        api_json(out, 200, doc);
    }
    kvc_multi_free(&inc);
    kvc_multi_free(&exc);
}

static void h_event_get(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    int64_t id;
    if (kvc_path_int(r, out, 0, "event_log_id", &id) != 0) return;
    if (id <= 0) {
        api_error(out, 404, "The Event Log with id: `%lld` not found", (long long)id);
        return;
    }
    StoreKvqEventFilter f;
    store_kvq_event_filter_init(&f);
    f.id = id;
    StoreKvqPage pg = {NULL, 1, 0};
    StoreKvqEvent *ev = NULL;
    size_t n = 0;
    int64_t total = 0;
    if (store_kvq_event_list(s, &f, &pg, &ev, &n, &total) != 0) api_store_error(out, s);
    else if (!n) api_error(out, 404, "The Event Log with id: `%lld` not found", (long long)id);
    else api_json(out, 200, event_json(&ev[0]));
    store_kvq_event_list_free(ev, n);
}

/* ---- the routes ------------------------------------------------------------------------------- */

const ApiRoute api_routes_eventlogs[] = {
    {"GET", "/api/v2/eventLogs", API_ROLE_VIEWER, h_event_list},
    {"GET", "/api/v2/eventLogs/{event_log_id}", API_ROLE_VIEWER, h_event_get},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
