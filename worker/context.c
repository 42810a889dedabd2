/* context — the template context of a running try (see context.h). */
#include "worker/context.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "core/util.h"
#include "store/kv.h"
#include "store/xcom.h"

int64_t try_context_logical(const TryContext *c)
{
    return c->run->logical_date >= 0 ? c->run->logical_date : c->run->run_after;
}

static void merge_into(cJSON *dst, const cJSON *src)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, src)
    {
        cJSON_DeleteItemFromObjectCaseSensitive(dst, it->string);
        cJSON_AddItemToObject(dst, it->string, cJSON_Duplicate(it, 1));
    }
}

void try_context_init(TryContext *c)
{
    c->params = cJSON_CreateObject();
    if (c->dag->params) merge_into(c->params, c->dag->params);
    if (c->task->params) merge_into(c->params, c->task->params);
    /* Airflow's dag_run_conf_overrides_params (on by default): a trigger's conf wins */
    cJSON *conf = c->run->conf ? cJSON_Parse(c->run->conf) : NULL;
    if (cJSON_IsObject(conf)) merge_into(c->params, conf);
    cJSON_Delete(conf);
}

void try_context_clear(TryContext *c)
{
    cJSON_Delete(c->params);
    c->params = NULL;
}

static void iso_airflow(int64_t us, char *buf, size_t len)
{
    /* Airflow's ts: 2024-01-01T00:00:00+00:00 */
    time_format_iso(us, 0, buf, len);
    size_t l = strlen(buf);
    if (l && buf[l - 1] == 'Z') snprintf(buf + l - 1, len - (l - 1), "+00:00");
}

static cJSON *time_or_null(int64_t us)
{
    if (us < 0) return cJSON_CreateNull();
    char buf[48];
    iso_airflow(us, buf, sizeof buf);
    return cJSON_CreateString(buf);
}

static cJSON *ti_object(const TryContext *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dag_id", c->ti->dag_id);
    cJSON_AddStringToObject(o, "task_id", c->ti->task_id);
    cJSON_AddStringToObject(o, "run_id", c->ti->run_id);
    cJSON_AddNumberToObject(o, "try_number", c->ti->try_number);
    cJSON_AddNumberToObject(o, "map_index", c->ti->map_index);
    cJSON_AddNumberToObject(o, "max_tries", c->ti->max_tries);
    cJSON_AddStringToObject(o, "hostname", c->ti->hostname ? c->ti->hostname : "");
    cJSON_AddStringToObject(o, "queue", c->ti->queue ? c->ti->queue : "default");
    cJSON_AddStringToObject(o, "pool", c->ti->pool ? c->ti->pool : "default_pool");
    return o;
}

static cJSON *ctx_lookup(void *ud, const char *name)
{
    TryContext *c = ud;
    int64_t ld = try_context_logical(c);
    char buf[64];
    TimeFields f;
    time_to_fields(ld, &f);
    if (strcmp(name, "ds") == 0) {
        snprintf(buf, sizeof buf, "%04d-%02d-%02d", f.year, f.month, f.day);
        return cJSON_CreateString(buf);
    }
    if (strcmp(name, "ds_nodash") == 0) {
        snprintf(buf, sizeof buf, "%04d%02d%02d", f.year, f.month, f.day);
        return cJSON_CreateString(buf);
    }
    if (strcmp(name, "ts") == 0 || strcmp(name, "logical_date") == 0 || strcmp(name, "execution_date") == 0)
        return time_or_null(ld);
    if (strcmp(name, "ts_nodash") == 0) {
        snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02d", f.year, f.month, f.day, f.hour, f.minute, f.second);
        return cJSON_CreateString(buf);
    }
    if (strcmp(name, "ts_nodash_with_tz") == 0) {
        snprintf(buf, sizeof buf, "%04d%02d%02dT%02d%02d%02d+0000", f.year, f.month, f.day, f.hour, f.minute,
                 f.second);
        return cJSON_CreateString(buf);
    }
    if (strcmp(name, "data_interval_start") == 0)
        return time_or_null(c->run->data_interval_start >= 0 ? c->run->data_interval_start : ld);
    if (strcmp(name, "data_interval_end") == 0)
        return time_or_null(c->run->data_interval_end >= 0 ? c->run->data_interval_end : ld);
    if (strcmp(name, "run_id") == 0) return cJSON_CreateString(c->run->run_id);
    if (strcmp(name, "params") == 0) return cJSON_Duplicate(c->params, 1);
    if (strcmp(name, "test_mode") == 0) return cJSON_CreateFalse();
    if (strcmp(name, "ti") == 0 || strcmp(name, "task_instance") == 0) return ti_object(c);
    if (strcmp(name, "dag") == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dag_id", c->dag->dag_id);
        cJSON_AddStringToObject(o, "owner", c->dag->owner ? c->dag->owner : "");
        cJSON_AddStringToObject(o, "timezone", c->dag->timezone);
        return o;
    }
    if (strcmp(name, "task") == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "task_id", c->task->task_id);
        cJSON_AddStringToObject(o, "operator", c->task->op->name);
        cJSON_AddStringToObject(o, "owner", c->task->owner ? c->task->owner : "airflow");
        cJSON_AddNumberToObject(o, "retries", c->task->retries);
        return o;
    }
    if (strcmp(name, "dag_run") == 0) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dag_id", c->run->dag_id);
        cJSON_AddStringToObject(o, "run_id", c->run->run_id);
        cJSON_AddStringToObject(o, "run_type", c->run->run_type ? c->run->run_type : "manual");
        cJSON_AddItemToObject(o, "logical_date", time_or_null(c->run->logical_date));
        cJSON *conf = c->run->conf ? cJSON_Parse(c->run->conf) : NULL;
        cJSON_AddItemToObject(o, "conf", cJSON_IsObject(conf) ? conf : cJSON_CreateObject());
        if (!cJSON_IsObject(conf)) cJSON_Delete(conf);
        return o;
    }
    if (strcmp(name, "inlets") == 0 || strcmp(name, "outlets") == 0) {
        cJSON *a = cJSON_CreateArray();
        char **v = name[0] == 'i' ? c->task->inlets : c->task->outlets;
        size_t n = name[0] == 'i' ? c->task->n_inlets : c->task->n_outlets;
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
        return a;
    }
    if (strncmp(name, "prev_", 5) == 0) return cJSON_CreateNull();
    return NULL;
}

/* Airflow masks variables whose names contain these words. */
static int looks_secret(const char *key)
{
    static const char *const words[] = {"password", "passwd", "secret", "token", "api_key", "apikey", "private_key",
                                        "access_token", "authorization", "credential"};
    char low[256];
    size_t i = 0;
    for (; key[i] && i < sizeof low - 1; i++) low[i] = (char)tolower((unsigned char)key[i]);
    low[i] = '\0';
    for (size_t k = 0; k < GUST_ARRAY_LEN(words); k++)
        if (strstr(low, words[k])) return 1;
    return 0;
}

static cJSON *ctx_var(void *ud, const char *key)
{
    TryContext *c = ud;
    int missing = 0;
    StoreVariable *v = store_var_get(c->store, key, &missing);
    if (!v) return NULL;
    if (looks_secret(key)) secret_mask_register(v->val);
    cJSON *s = cJSON_CreateString(v->val);
    store_var_free(v);
    return s;
}

static cJSON *ctx_conn(void *ud, const char *conn_id)
{
    TryContext *c = ud;
    if (!c->key) return NULL;
    int missing = 0;
    StoreConnection *k = store_conn_get(c->store, c->key, conn_id, &missing);
    if (!k) return NULL;
    if (k->password) secret_mask_register(k->password);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "conn_id", k->conn_id);
    cJSON_AddStringToObject(o, "conn_type", k->conn_type);
    if (k->host) cJSON_AddStringToObject(o, "host", k->host); else cJSON_AddNullToObject(o, "host");
    if (k->schema) cJSON_AddStringToObject(o, "schema", k->schema); else cJSON_AddNullToObject(o, "schema");
    if (k->login) cJSON_AddStringToObject(o, "login", k->login); else cJSON_AddNullToObject(o, "login");
    if (k->password) cJSON_AddStringToObject(o, "password", k->password); else cJSON_AddNullToObject(o, "password");
    if (k->port) cJSON_AddNumberToObject(o, "port", k->port); else cJSON_AddNullToObject(o, "port");
    cJSON *extra = k->extra ? cJSON_Parse(k->extra) : NULL;
    cJSON_AddItemToObject(o, "extra", extra ? extra : cJSON_CreateObject());
    cJSON_AddItemToObject(o, "extra_dejson", cJSON_Duplicate(cJSON_GetObjectItem(o, "extra"), 1));
    store_conn_free(k);
    return o;
}

static cJSON *ctx_xcom(void *ud, const char *task_id, const char *key)
{
    TryContext *c = ud;
    int missing = 0;
    /* a task id written as in the file ("extract") or in full ("group.extract") */
    char *json = store_xcom_pull(c->store, c->run->dag_id, c->run->run_id, task_id, -1, key, &missing);
    if (!json && c->cache) {
        char full[512];
        if (dagcache_task_id_by_name(c->cache, c->store, c->version_id, task_id, full, sizeof full) == 1 &&
            strcmp(full, task_id) != 0)
            json = store_xcom_pull(c->store, c->run->dag_id, c->run->run_id, full, -1, key, &missing);
    } else if (!json) {
        const DagTask *t = dag_find_task_by_name(c->dag, task_id);
        if (t && strcmp(t->task_id, task_id) != 0)
            json = store_xcom_pull(c->store, c->run->dag_id, c->run->run_id, t->task_id, -1, key, &missing);
    }
    if (!json) return NULL;
    cJSON *v = cJSON_Parse(json);
    free(json);
    return v;
}

void try_context_template(TryContext *c, TemplateContext *out)
{
    out->ud = c;
    out->lookup = ctx_lookup;
    out->var_get = ctx_var;
    out->conn_get = ctx_conn;
    out->xcom_pull = ctx_xcom;
}

int try_context_render(TryContext *c, cJSON *v, char *err, size_t errlen)
{
    if (cJSON_IsString(v)) {
        if (!strstr(v->valuestring, "{{") && !strstr(v->valuestring, "{#")) return 0;
        TemplateContext tc;
        try_context_template(c, &tc);
        char *out = template_render_text(v->valuestring, &tc, err, errlen);
        if (!out) return -1;
        cJSON_SetValuestring(v, out);
        free(out);
        return 0;
    }
    cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        if (try_context_render(c, it, err, errlen) != 0) return -1;
    }
    return 0;
}

static void add_env(char ***v, size_t *n, const char *name, const char *value)
{
    *v = xrealloc(*v, (*n + 2) * sizeof **v);
    (*v)[(*n)++] = xasprintf("%s=%s", name, value ? value : "");
    (*v)[*n] = NULL;
}

char **try_context_env(TryContext *c, const cJSON *rendered_env)
{
    char **v = NULL;
    size_t n = 0;
    char ld[48], try_s[16];
    iso_airflow(try_context_logical(c), ld, sizeof ld);
    snprintf(try_s, sizeof try_s, "%d", c->ti->try_number);
    const char *pairs[][2] = {
        {"DAG_ID", c->dag->dag_id}, {"TASK_ID", c->task->task_id}, {"RUN_ID", c->run->run_id},
        {"TRY_NUMBER", try_s},      {"LOGICAL_DATE", ld},
    };
    for (size_t i = 0; i < GUST_ARRAY_LEN(pairs); i++) {
        char *g = xasprintf("GUST_CTX_%s", pairs[i][0]);
        add_env(&v, &n, g, pairs[i][1]);
        free(g);
    }
    /* Airflow's names for the same, so scripts written for Airflow keep working */
    add_env(&v, &n, "AIRFLOW_CTX_DAG_ID", c->dag->dag_id);
    add_env(&v, &n, "AIRFLOW_CTX_TASK_ID", c->task->task_id);
    add_env(&v, &n, "AIRFLOW_CTX_DAG_RUN_ID", c->run->run_id);
    add_env(&v, &n, "AIRFLOW_CTX_TRY_NUMBER", try_s);
    add_env(&v, &n, "AIRFLOW_CTX_LOGICAL_DATE", ld);
    add_env(&v, &n, "AIRFLOW_CTX_EXECUTION_DATE", ld);
    add_env(&v, &n, "AIRFLOW_CTX_DAG_OWNER", c->task->owner ? c->task->owner : "airflow");
    const cJSON *it;
    cJSON_ArrayForEach(it, rendered_env)
    {
        if (cJSON_IsString(it)) add_env(&v, &n, it->string, it->valuestring);
    }
    if (!v) {
        v = xcalloc(1, sizeof *v);
    }
    return v;
}
