/* routes_xcom — a task instance's XComs on the REST API, as Airflow's REST API v2 has them:
 * list (with "~" for dag_id, dag_run_id and task_id: across DAGs, runs and tasks), get one
 * (deserialize / stringify), create (XComCreateBody, 409 when the key exists), update
 * (XComUpdateBody) and delete.
 *
 * gust keeps XCom values as JSON text, so the stored and the deserialized value are the
 * same; a value a client sends must be JSON text the store can hold (no NUL). Reads and
 * writes go through store/tiquery.h; writes are written to the event log. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/ti_common.h"
#include "api/ti_json.h"
#include "core/dag.h"
#include "store/tiquery.h"

/* XComResponse; with_value: XComResponseNative (the value as JSON) or, stringify,
 * XComResponseString (its JSON text). */
static cJSON *xcom_json(Store *s, const TiqXcom *x, int with_value, int stringify)
{
    const Dag *d = tij_dag(s, x->dag_version_id);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", x->x.key);
    api_add_time(o, "timestamp", x->x.timestamp);
    api_add_time(o, "logical_date", x->logical_date);
    cJSON_AddNumberToObject(o, "map_index", x->x.map_index);
    cJSON_AddStringToObject(o, "task_id", x->x.task_id);
    cJSON_AddStringToObject(o, "dag_id", x->x.dag_id);
    cJSON_AddStringToObject(o, "run_id", x->x.run_id);
    cJSON_AddStringToObject(o, "dag_display_name", tij_dag_display(d, x->x.dag_id));
    cJSON_AddStringToObject(o, "task_display_name", tij_task_display(d, x->x.task_id));
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
    if (!tic_params_ok(r, out)) return;
    Store *s = tic_store(r, out);
    if (!s) return;
    TiqXcomFilter f;
    memset(&f, 0, sizeof f);
    f.dag_id = tic_tilde(r->params[0]);
    f.run_id = tic_tilde(r->params[1]);
    f.task_id = tic_tilde(r->params[2]);
    if (f.dag_id && tic_need_dag(out, s, f.dag_id) <= 0) return;
    if (f.dag_id && f.run_id && tic_need_run(out, s, f.dag_id, f.run_id, NULL) <= 0) return;
    long long mi = 0;
    int has = api_query_int(r, out, "map_index", -1, INT_MAX, &mi);
    if (has < 0) return;
    if (!has && (has = api_query_int(r, out, "map_index_filter", -1, INT_MAX, &mi)) < 0) return;
    f.has_map_index = has;
    f.map_index = (int)mi;
    const char *dag_pat = NULL;
    if (tic_q_text(r, out, "xcom_key", &f.key) || tic_q_text(r, out, "xcom_key_pattern", &f.key_pattern) ||
        tic_q_text(r, out, "dag_display_name_pattern", &dag_pat) ||
        tic_q_text(r, out, "run_id_pattern", &f.run_id_pattern) ||
        tic_q_text(r, out, "task_id_pattern", &f.task_id_pattern))
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
    if (!tic_params_ok(r, out)) return;
    long long mi = -1;
    if (api_query_int(r, out, "map_index", -1, INT_MAX, &mi) < 0) return;
    int deser = api_query_bool(r, out, "deserialize");
    if (deser < 0) return;
    int str = api_query_bool(r, out, "stringify");
    if (str < 0) return;
    Store *s = tic_store(r, out);
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
    if (!text || !tic_text_ok(text)) {
        free(text);
        api_error_422(out, "body", "value", "Input should be JSON text without NUL characters");
        return NULL;
    }
    return text;
}

static int body_map_index(ApiResp *out, const cJSON *doc, int *mi)
{
    const cJSON *j = tic_b_get(doc, "map_index");
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
    if (!tic_params_ok(r, out)) return;
    cJSON *doc;
    if (api_body_object(r, out, &doc) != 0) return;
    static const char *const allowed[] = {"key", "value", "map_index", NULL};
    const char *key = NULL;
    char *value = NULL;
    int mi;
    Store *s = NULL;
    TiqXcom *x = NULL;
    if (api_body_only(out, doc, allowed) || tic_b_str(out, doc, "key", &key) || body_map_index(out, doc, &mi))
        goto done;
    if (!key || !*key) {
        api_error_422(out, "body", "key", "Field required");
        goto done;
    }
    if (!(value = xcom_value(out, doc))) goto done;
    if (!(s = tic_store(r, out))) goto done;
    if (tic_need_dag(out, s, r->params[0]) <= 0 || tic_need_run(out, s, r->params[0], r->params[1], NULL) <= 0)
        goto done;
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
    tic_row_clear(&w);
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
    if (!tic_params_ok(r, out)) return;
    cJSON *doc;
    if (api_body_object(r, out, &doc) != 0) return;
    static const char *const allowed[] = {"value", "map_index", NULL};
    char *value = NULL;
    int mi;
    Store *s = NULL;
    TiqXcom *x = NULL;
    if (api_body_only(out, doc, allowed) || body_map_index(out, doc, &mi)) goto done;
    if (!(value = xcom_value(out, doc))) goto done;
    if (!(s = tic_store(r, out))) goto done;
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
    if (!tic_params_ok(r, out)) return;
    long long mi = -1;
    if (api_query_int(r, out, "map_index", -1, INT_MAX, &mi) < 0) return;
    Store *s = tic_store(r, out);
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

const ApiRoute api_routes_xcom[] = {
    {"GET", TIC_BASE "/{task_id}/xcomEntries", API_ROLE_VIEWER, h_xcom_list},
    {"POST", TIC_BASE "/{task_id}/xcomEntries", API_ROLE_USER, h_xcom_create},
    {"GET", TIC_BASE "/{task_id}/xcomEntries/{xcom_key}", API_ROLE_VIEWER, h_xcom_get},
    {"PATCH", TIC_BASE "/{task_id}/xcomEntries/{xcom_key}", API_ROLE_USER, h_xcom_update},
    {"DELETE", TIC_BASE "/{task_id}/xcomEntries/{xcom_key}", API_ROLE_USER, h_xcom_delete},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
