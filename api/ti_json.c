/* ti_json — task instances as the REST API answers them (see ti_json.h). One serializer for
 * TaskInstanceResponse, so the lists, the PATCH and clear answers and the dry-run clear of a
 * run cannot drift apart field by field. */
#include <pthread.h>
#include <string.h>

#include "api/ti_json.h"
#include "core/operator.h"
#include "core/util.h"

/* ---- DAG versions, parsed once per process ------------------------------------------------ */

static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static DagCache *cache;
static void cache_make(void) { cache = dagcache_new(); }

DagCache *tij_cache(void)
{
    pthread_once(&cache_once, cache_make);
    return cache;
}

const Dag *tij_dag(Store *s, const char *version_id)
{
    if (!version_id) return NULL;
    char err[256];
    return dagcache_get(tij_cache(), s, version_id, err, sizeof err);
}

/* ---- names ------------------------------------------------------------------------------------ */

const char *tij_dag_display(const Dag *d, const char *dag_id)
{
    return d && d->display_name && *d->display_name ? d->display_name : dag_id;
}

const char *tij_task_display(const Dag *d, const char *task_id)
{
    const DagTask *t = d ? dag_find_task(d, task_id) : NULL;
    return t && t->display_name && *t->display_name ? t->display_name : task_id;
}

/* The last part of the operator's first Airflow alias; operators of gust's own keep their
 * short name. */
const char *tij_op_class(const char *name, char *buf, size_t len)
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

/* ---- fields ----------------------------------------------------------------------------------- */

cJSON *tij_version(const char *version_id, int number, int64_t created_at, const char *dag_id, const Dag *d)
{
    if (!version_id || number < 0) return cJSON_CreateNull();
    cJSON *v = cJSON_CreateObject();
    char uuid[API_UUID_LEN];
    cJSON_AddStringToObject(v, "id", api_uuid(version_id, uuid));
    cJSON_AddNumberToObject(v, "version_number", number);
    cJSON_AddStringToObject(v, "dag_id", dag_id);
    cJSON_AddNullToObject(v, "bundle_name");
    cJSON_AddNullToObject(v, "bundle_version");
    api_add_time(v, "created_at", created_at);
    cJSON_AddStringToObject(v, "dag_display_name", tij_dag_display(d, dag_id));
    cJSON_AddNullToObject(v, "bundle_url");
    return v;
}

void tij_add_state(cJSON *o, TiState st)
{
    if (st == TI_NONE)
        cJSON_AddNullToObject(o, "state");
    else
        cJSON_AddStringToObject(o, "state", ti_state_name(st));
}

void tij_add_duration(cJSON *o, int64_t us)
{
    if (us < 0)
        cJSON_AddNullToObject(o, "duration");
    else
        cJSON_AddNumberToObject(o, "duration", (double)us / 1e6);
}

void tij_add_int_or_null(cJSON *o, const char *name, int64_t v)
{
    if (v < 0)
        cJSON_AddNullToObject(o, name);
    else
        cJSON_AddNumberToObject(o, name, (double)v);
}

/* ---- TaskInstanceResponse --------------------------------------------------------------------- */

cJSON *tij_ti(Store *s, const TiqRow *w)
{
    const TaskInstance *t = &w->ti;
    const Dag *d = tij_dag(s, t->dag_version_id);
    cJSON *o = cJSON_CreateObject();
    char buf[128];
    cJSON_AddStringToObject(o, "id", api_uuid(t->id, buf));
    cJSON_AddStringToObject(o, "task_id", t->task_id);
    cJSON_AddStringToObject(o, "dag_id", t->dag_id);
    cJSON_AddStringToObject(o, "dag_run_id", t->run_id);
    cJSON_AddNumberToObject(o, "map_index", t->map_index);
    api_add_time(o, "logical_date", w->logical_date);
    api_add_time(o, "run_after", w->run_after);
    api_add_time(o, "start_date", t->start_date);
    api_add_time(o, "end_date", t->end_date);
    tij_add_duration(o, t->duration);
    tij_add_state(o, t->state);
    cJSON_AddNumberToObject(o, "try_number", t->try_number);
    cJSON_AddNumberToObject(o, "max_tries", t->max_tries);
    cJSON_AddStringToObject(o, "task_display_name", tij_task_display(d, t->task_id));
    cJSON_AddStringToObject(o, "dag_display_name", tij_dag_display(d, t->dag_id));
    api_add_str(o, "hostname", t->hostname);
    cJSON_AddNullToObject(o, "unixname");
    cJSON_AddStringToObject(o, "pool", t->pool ? t->pool : "default_pool");
    cJSON_AddNumberToObject(o, "pool_slots", t->pool_slots);
    api_add_str(o, "queue", t->queue);
    cJSON_AddNumberToObject(o, "priority_weight", t->priority_weight);
    const char *cls = tij_op_class(t->operator_name, buf, sizeof buf);
    api_add_str(o, "operator", cls);
    api_add_str(o, "operator_name", cls);
    api_add_time(o, "queued_when", t->queued_at);
    api_add_time(o, "scheduled_when", t->scheduled_at);
    tij_add_int_or_null(o, "pid", t->pid);
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
                          tij_version(t->dag_version_id, w->version_number, w->version_created_at, t->dag_id, d));
    return o;
}

void tij_answer(ApiResp *out, Store *s, const TiqRow *rows, size_t n, int64_t total)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(doc, "task_instances");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, tij_ti(s, &rows[i]));
    cJSON_AddNumberToObject(doc, "total_entries", (double)total);
    api_json(out, 200, doc);
}
