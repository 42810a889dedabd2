/* dag_json — reading a serialised DAG back (see dag_from_json in dag.h). The writer is
 * dag_to_json in dag.c; the two are tested together by a round trip over every example. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dag.h"
#include "core/timeutil.h"
#include "core/util.h"

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int64_t jdur(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? (int64_t)llround(v->valuedouble * 1e6) : -1;
}

static int jint(const cJSON *o, const char *k, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valueint : dflt;
}

static int jbool(const cJSON *o, const char *k)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k));
}

static int64_t jtime(const cJSON *o, const char *k)
{
    const char *s = jstr(o, k);
    int64_t us;
    char err[128];
    return s && time_parse_iso(s, NULL, &us, err, sizeof err) == 0 ? us : -1;
}

static char *jdup(const cJSON *o, const char *k)
{
    return xstrdup(jstr(o, k));
}

static void jstrv(const cJSON *o, const char *k, char ***out, size_t *n)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, k), *it;
    *out = NULL;
    *n = 0;
    cJSON_ArrayForEach(it, a)
    {
        if (!cJSON_IsString(it)) continue;
        *out = xrealloc(*out, (*n + 1) * sizeof **out);
        (*out)[(*n)++] = xstrdup(it->valuestring);
    }
}

static DagTask *task_from_json(const cJSON *o, char *err, size_t errlen)
{
    const char *op = jstr(o, "operator");
    const OperatorDef *def = operator_find(op);
    if (!jstr(o, "task_id") || !def) {
        snprintf(err, errlen, "task %s: unknown operator '%s'", jstr(o, "task_id") ? jstr(o, "task_id") : "?",
                 op ? op : "");
        return NULL;
    }
    DagTask *t = dag_task_new();
    t->task_id = jdup(o, "task_id");
    t->name = jdup(o, "name");
    if (!t->name) t->name = xstrdup(t->task_id);
    t->group_id = jdup(o, "group_id");
    t->op = def;
    t->line = jint(o, "line", 0);
    jstrv(o, "upstream", &t->upstream, &t->n_upstream);
    int tr = trigger_rule_parse(jstr(o, "trigger_rule"));
    t->trigger_rule = tr < 0 ? TR_ALL_SUCCESS : (TriggerRule)tr;
    t->retries = jint(o, "retries", 0);
    t->retry_delay_us = jdur(o, "retry_delay");
    if (t->retry_delay_us < 0) t->retry_delay_us = 300LL * 1000000;
    t->retry_exponential_backoff = jbool(o, "retry_exponential_backoff");
    t->max_retry_delay_us = jdur(o, "max_retry_delay");
    t->execution_timeout_us = jdur(o, "execution_timeout");
    t->queue = jdup(o, "queue");
    t->pool = jdup(o, "pool");
    t->pool_slots = jint(o, "pool_slots", 1);
    t->priority_weight = jint(o, "priority_weight", 1);
    int wr = weight_rule_parse(jstr(o, "weight_rule"));
    t->weight_rule = wr < 0 ? WR_DOWNSTREAM : (WeightRule)wr;
    t->rate_limit = jdup(o, "rate_limit");
    t->owner = jdup(o, "owner");
    t->depends_on_past = jbool(o, "depends_on_past");
    t->wait_for_downstream = jbool(o, "wait_for_downstream");
    t->start_date_us = jtime(o, "start_date");
    t->end_date_us = jtime(o, "end_date");
    t->do_xcom_push = cJSON_GetObjectItemCaseSensitive(o, "do_xcom_push") ? jbool(o, "do_xcom_push") : 1;
    t->max_active_tis_per_dag = jint(o, "max_active_tis_per_dag", 0);
    if (def->is_sensor) {
        const char *mode = jstr(o, "mode");
        t->mode = mode && strcmp(mode, "reschedule") == 0 ? SENSOR_RESCHEDULE : SENSOR_POKE;
        if (jdur(o, "poke_interval") >= 0) t->poke_interval_us = jdur(o, "poke_interval");
        if (jdur(o, "timeout") >= 0) t->timeout_us = jdur(o, "timeout");
        t->soft_fail = jbool(o, "soft_fail");
        t->exponential_backoff = jbool(o, "exponential_backoff");
        t->max_wait_us = jdur(o, "max_wait");
    }
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(o, "env");
    t->env = cJSON_IsObject(env) ? cJSON_Duplicate(env, 1) : NULL;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(o, "params");
    t->params = cJSON_IsObject(params) ? cJSON_Duplicate(params, 1) : NULL;
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(o, "args");
    if (cJSON_IsObject(args)) {
        cJSON_Delete(t->args);
        t->args = cJSON_Duplicate(args, 1);
    }
    jstrv(o, "outlets", &t->outlets, &t->n_outlets);
    jstrv(o, "inlets", &t->inlets, &t->n_inlets);
    t->doc_md = jdup(o, "doc_md");
    t->display_name = jdup(o, "display_name");
    return t;
}

static int schedule_from_json(Dag *d, const cJSON *s, char *err, size_t errlen)
{
    const char *kind = jstr(s, "kind");
    const char *text = jstr(s, "text");
    d->schedule_text = xstrdup(text);
    d->schedule.also_assets = jbool(s, "also_assets");
    const cJSON *assets = cJSON_GetObjectItemCaseSensitive(s, "assets");
    if (assets && !cJSON_IsNull(assets)) d->assets = cJSON_Duplicate(assets, 1);
    if (!kind || strcmp(kind, "none") == 0) return 0;
    if (strcmp(kind, "assets") == 0) {
        d->schedule.kind = SCHEDULE_ASSETS;
        return 0;
    }
    if (strcmp(kind, "interval") == 0) {
        schedule_interval(&d->schedule, jdur(s, "interval"));
        return 0;
    }
    if (!text || schedule_parse(text, &d->schedule, err, errlen) != 0) return -1;
    if (strcmp(kind, "cron_trigger") == 0) d->schedule.kind = SCHEDULE_CRON_TRIGGER;
    d->schedule.also_assets = jbool(s, "also_assets");
    return 0;
}

DagTask *dag_task_from_json(const char *text, char *err, size_t errlen)
{
    cJSON *o = cJSON_Parse(text);
    DagTask *t = NULL;
    if (!cJSON_IsObject(o)) snprintf(err, errlen, "not a serialised task");
    else t = task_from_json(o, err, errlen);
    cJSON_Delete(o);
    return t;
}

Dag *dag_from_json(const char *text, char *err, size_t errlen)
{
    cJSON *o = cJSON_Parse(text);
    if (!cJSON_IsObject(o) || !jstr(o, "dag_id")) {
        snprintf(err, errlen, "not a serialised DAG");
        cJSON_Delete(o);
        return NULL;
    }
    Dag *d = dag_new(jstr(o, "dag_id"), jstr(o, "file"), jint(o, "line", 0));
    d->description = jdup(o, "description");
    d->doc_md = jdup(o, "doc_md");
    d->display_name = jdup(o, "display_name");
    d->owner = jdup(o, "owner");
    d->timezone = xstrdup(jstr(o, "timezone") ? jstr(o, "timezone") : "UTC");
    d->tz = tz_load(d->timezone, err, errlen);
    d->start_date_us = jtime(o, "start_date");
    d->end_date_us = jtime(o, "end_date");
    d->catchup = jbool(o, "catchup");
    d->max_active_runs = jint(o, "max_active_runs", -1);
    d->max_active_tasks = jint(o, "max_active_tasks", -1);
    d->dagrun_timeout_us = jdur(o, "dagrun_timeout");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "is_paused_upon_creation");
    d->is_paused_upon_creation = cJSON_IsBool(p) ? cJSON_IsTrue(p) : -1;
    d->max_consecutive_failed_dag_runs = jint(o, "max_consecutive_failed_dag_runs", 0);
    jstrv(o, "tags", &d->tags, &d->n_tags);
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(o, "params");
    d->params = cJSON_IsObject(params) ? cJSON_Duplicate(params, 1) : NULL;
    int ok = d->tz != NULL && schedule_from_json(d, cJSON_GetObjectItemCaseSensitive(o, "schedule"), err, errlen) == 0;
    const cJSON *g;
    cJSON_ArrayForEach(g, cJSON_GetObjectItemCaseSensitive(o, "task_groups"))
    {
        DagGroup *grp = xcalloc(1, sizeof *grp);
        grp->group_id = jdup(g, "group_id");
        const char *dot = grp->group_id ? strrchr(grp->group_id, '.') : NULL;
        grp->name = xstrdup(dot ? dot + 1 : grp->group_id);
        grp->parent_id = jdup(g, "parent_id");
        grp->tooltip = jdup(g, "tooltip");
        grp->prefix_group_id = 1;
        dag_add_group(d, grp);
    }
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(o, "tasks"))
    {
        if (!ok) break;
        DagTask *task = task_from_json(t, err, errlen);
        if (!task) {
            ok = 0;
            break;
        }
        dag_add_task(d, task);
    }
    cJSON_Delete(o);
    if (!ok) {
        dag_free(d);
        return NULL;
    }
    dag_index(d);
    return d;
}
