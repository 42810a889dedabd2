/* ti_json — task instances as the REST API answers them (see ti_json.h). One serializer for
 * TaskInstanceResponse, so the lists, the PATCH and clear answers and the dry-run clear of a
 * run cannot drift apart field by field. */
#include <ctype.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/ti_json.h"
#include "api/jsontext.h"
#include "core/operator.h"
#include "core/timeutil.h"
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

/* ---- JSON as text ------------------------------------------------------------------------------ */

/* TaskInstanceResponse is written as JSON text straight into one buffer rather than built as a
 * cJSON tree (as routes_dags.c writes DAGResponse): a page of 100 instances is ~4,500 values,
 * and allocating, printing and freeing a node (and its key and value) for each was most of the
 * CPU time of a run's task-instance list under load. The text is what cJSON would print
 * (same escaping, same number formatting, same key order); tij_ti parses it back for the
 * answers that add to an instance. */
/* rendered_fields: the stored JSON object as cJSON prints it; {} when none or not an object. */
static void jt_rendered(JsonText *j, const char *key, const char *text)
{
    jt_key(j, key);
    if (!text || strcmp(text, "{}") == 0) { /* the usual case, without a parse */
        sb_appendn(&j->b, "{}", 2);
        return;
    }
    cJSON *v = cJSON_Parse(text);
    char *printed = cJSON_IsObject(v) ? cJSON_PrintUnformatted(v) : NULL;
    sb_append(&j->b, printed ? printed : "{}");
    free(printed);
    cJSON_Delete(v);
}

static void put_version_fields(JsonText *j, const char *version_id, int number, int64_t created_at,
                               const char *dag_id, const Dag *d)
{
    jt_uuid(j, "id", version_id);
    jt_int(j, "version_number", number);
    jt_str(j, "dag_id", dag_id);
    jt_null(j, "bundle_name");
    jt_null(j, "bundle_version");
    jt_time(j, "created_at", created_at);
    jt_str(j, "dag_display_name", tij_dag_display(d, dag_id));
    jt_null(j, "bundle_url");
}

/* The text parsed back into a cJSON tree (NULL if it cannot be); frees the text. */
static cJSON *jt_parse_free(JsonText *j)
{
    cJSON *o = cJSON_ParseWithLength(j->b.s, j->b.len);
    sb_free(&j->b);
    return o;
}

/* ---- fields ----------------------------------------------------------------------------------- */

cJSON *tij_version(const char *version_id, int number, int64_t created_at, const char *dag_id, const Dag *d)
{
    if (!version_id || number < 0) return cJSON_CreateNull();
    JsonText j = {.first = 1};
    jt_open(&j, NULL, '{');
    put_version_fields(&j, version_id, number, created_at, dag_id, d);
    jt_close(&j, '}');
    return jt_parse_free(&j);
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

/* The DAG version a row runs. Rows of one list mostly share one version: the last lookup is
 * reused while the id repeats, sparing the cache's lock and search per row, and so is its
 * DagVersionResponse text while the number and creation time repeat too. */
typedef struct VersionHint {
    const char *version_id;
    const Dag *dag;
    const char *text_id; /* the version text holds: id, number, created_at (text_id NULL: none) */
    int number;
    int64_t created_at;
    StrBuf text;
} VersionHint;

static const Dag *row_dag(Store *s, const char *version_id, VersionHint *h)
{
    if (!version_id) return NULL;
    if (h && h->version_id && strcmp(h->version_id, version_id) == 0) return h->dag;
    const Dag *d = tij_dag(s, version_id);
    if (h && d) h->version_id = version_id, h->dag = d;
    return d;
}

/* One TaskInstanceResponse, in the spec's order. */
static void put_ti(JsonText *j, Store *s, const TiqRow *w, VersionHint *h)
{
    const TaskInstance *t = &w->ti;
    const Dag *d = row_dag(s, t->dag_version_id, h);
    char buf[128];
    jt_open(j, NULL, '{');
    jt_uuid(j, "id", t->id);
    jt_str(j, "task_id", t->task_id);
    jt_str(j, "dag_id", t->dag_id);
    jt_str(j, "dag_run_id", t->run_id);
    jt_int(j, "map_index", t->map_index);
    jt_time(j, "logical_date", w->logical_date);
    jt_time(j, "run_after", w->run_after);
    jt_time(j, "start_date", t->start_date);
    jt_time(j, "end_date", t->end_date);
    if (t->duration < 0)
        jt_null(j, "duration");
    else
        jt_double(j, "duration", (double)t->duration / 1e6);
    jt_str(j, "state", t->state == TI_NONE ? NULL : ti_state_name(t->state));
    jt_int(j, "try_number", t->try_number);
    jt_int(j, "max_tries", t->max_tries);
    jt_str(j, "task_display_name", tij_task_display(d, t->task_id));
    jt_str(j, "dag_display_name", tij_dag_display(d, t->dag_id));
    jt_str(j, "hostname", t->hostname);
    jt_null(j, "unixname");
    jt_str(j, "pool", t->pool ? t->pool : "default_pool");
    jt_int(j, "pool_slots", t->pool_slots);
    jt_str(j, "queue", t->queue);
    jt_int(j, "priority_weight", t->priority_weight);
    const char *cls = tij_op_class(t->operator_name, buf, sizeof buf);
    jt_str(j, "operator", cls);
    jt_str(j, "operator_name", cls);
    jt_time(j, "queued_when", t->queued_at);
    jt_time(j, "scheduled_when", t->scheduled_at);
    if (t->pid < 0)
        jt_null(j, "pid");
    else
        jt_int(j, "pid", t->pid);
    jt_null(j, "executor");
    jt_str(j, "executor_config", "{}");
    jt_str(j, "note", w->note);
    jt_null(j, "rendered_map_index");
    jt_rendered(j, "rendered_fields", w->rendered_fields);
    jt_null(j, "trigger");
    jt_null(j, "triggerer_job");
    if (!t->dag_version_id || w->version_number < 0) {
        jt_null(j, "dag_version");
    } else if (h && h->text_id && strcmp(h->text_id, t->dag_version_id) == 0 && h->number == w->version_number &&
               h->created_at == w->version_created_at) {
        jt_key(j, "dag_version");
        sb_appendn(&j->b, h->text.s, h->text.len);
    } else {
        jt_open(j, "dag_version", '{');
        size_t at = j->b.len;
        put_version_fields(j, t->dag_version_id, w->version_number, w->version_created_at, t->dag_id, d);
        jt_close(j, '}');
        if (h) { /* d and the DAG id are the version's own, so the text is the same for its rows */
            h->text.len = 0;
            sb_appendn(&h->text, j->b.s + at - 1, j->b.len - at + 1);
            h->text_id = t->dag_version_id, h->number = w->version_number, h->created_at = w->version_created_at;
        }
    }
    jt_close(j, '}');
}

/* Answer the text (takes it) as a JSON document. */
static void answer_text(ApiResp *out, int status, JsonText *j)
{
    free(out->body);
    out->status = status;
    out->body_len = j->b.len;
    out->body = sb_take(&j->b);
    out->content_type = "application/json";
}

cJSON *tij_ti(Store *s, const TiqRow *w)
{
    JsonText j = {.first = 1};
    put_ti(&j, s, w, NULL);
    return jt_parse_free(&j);
}

void tij_answer_one(ApiResp *out, Store *s, const TiqRow *w)
{
    JsonText j = {.first = 1};
    put_ti(&j, s, w, NULL);
    answer_text(out, 200, &j);
}

void tij_answer(ApiResp *out, Store *s, const TiqRow *rows, size_t n, int64_t total)
{
    JsonText j = {.first = 1};
    VersionHint h = {0};
    j.b.cap = 1024 * (n + 1); /* ~1 KB a row: no growing and copying on the way */
    j.b.s = xmalloc(j.b.cap);
    j.b.s[0] = '\0';
    jt_open(&j, NULL, '{');
    jt_open(&j, "task_instances", '[');
    for (size_t i = 0; i < n; i++) put_ti(&j, s, &rows[i], &h);
    jt_close(&j, ']');
    jt_double(&j, "total_entries", (double)total);
    jt_close(&j, '}');
    sb_free(&h.text);
    answer_text(out, 200, &j);
}
