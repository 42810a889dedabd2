/* dagtask — one task's config into a DagTask: which operator, which fields, their types,
 * their templates (see dagload_int.h).
 *
 * The task's own keys are checked strictly: a key its operator does not have is an error
 * with a suggestion. Keys it inherits from default_args are kept only when its operator
 * has them, as Airflow's BaseOperator does with default_args. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dagload_int.h"
#include "core/util.h"

/* Names the task may use, for "did you mean" suggestions. */
static const char *suggest_field(const OperatorDef *op, const char *key)
{
    const char *cands[96];
    size_t n = 0;
    for (const OpField *f = operator_base_fields(); f->name && n < GUST_ARRAY_LEN(cands); f++) cands[n++] = f->name;
    for (const OpField *f = op->fields; f->name && n < GUST_ARRAY_LEN(cands); f++) cands[n++] = f->name;
    if (op->is_sensor)
        for (const OpField *f = operator_sensor_fields(); f->name && n < GUST_ARRAY_LEN(cands); f++)
            cands[n++] = f->name;
    return util_closest(key, cands, n);
}

static const OperatorDef *resolve_operator(const LoadCtx *ctx, const char *name, const DocNode *own,
                                           const DocNode *eff)
{
    const DocNode *opn = doc_get(eff, "operator");
    if (!opn || doc_is_null(opn)) {
        /* dag-factory files sometimes leave it out of a bash task; the command says what it is. */
        if (doc_get(eff, "bash_command")) return operator_find("bash");
        LOAD_ERR(ctx, own, "task '%s': missing 'operator' (e.g. operator: bash)", name);
        return NULL;
    }
    const char *s = doc_str(opn);
    if (!s) {
        LOAD_ERR(ctx, opn, "task '%s': operator must be a name, got %s", name, doc_kind_name(opn));
        return NULL;
    }
    const OperatorDef *op = operator_find(s);
    if (op) return op;
    if (operator_is_known_python(s)) {
        LOAD_ERR(ctx, opn, "task '%s': operator '%s' needs Python, which gust does not run; use bash or a plugin",
                 name, s);
        return NULL;
    }
    const char *close = operator_suggest(s);
    if (close) {
        LOAD_ERR(ctx, opn, "task '%s': unknown operator '%s' (did you mean '%s'?)", name, s, close);
    } else if (strchr(s, '.')) {
        LOAD_ERR(ctx, opn,
                 "task '%s': operator '%s' is a Python class, which gust does not run; use one of gust's operators "
                 "(bash, empty, http, http_sensor, file_sensor, external_task_sensor, time_delta_sensor, branch_bash, "
                 "trigger_dagrun, short_circuit_bash) or a plugin",
                 name, s);
    } else {
        LOAD_ERR(ctx, opn, "task '%s': unknown operator '%s' (gust has bash, empty, http, http_sensor, file_sensor, "
                           "external_task_sensor, time_delta_sensor, branch_bash, trigger_dagrun, short_circuit_bash)",
                 name, s);
    }
    return NULL;
}

static int check_type(const LoadCtx *ctx, const char *field, const OpField *f, const DocNode *v)
{
    int b, i;
    int64_t us;
    double num;
    switch (f->type) {
    case FT_STRING:
        return dagload_string(ctx, field, v) ? 0 : -1;
    case FT_INT:
        return dagload_int(ctx, field, v, -2147483647LL, 2147483647LL, &i);
    case FT_NUMBER:
        if (doc_as_number(v, &num)) return 0;
        LOAD_ERR(ctx, v, "%s: expected a number, got %s", field, doc_kind_name(v));
        return -1;
    case FT_BOOL:
        return dagload_bool(ctx, field, v, &b);
    case FT_DURATION:
        return dagload_duration(ctx, field, v, &us);
    case FT_DATETIME:
        return dagload_datetime(ctx, field, v, &us);
    case FT_MAP:
        if (v->kind == DOC_MAP || doc_is_null(v)) return 0;
        LOAD_ERR(ctx, v, "%s: expected a mapping, got %s", field, doc_kind_name(v));
        return -1;
    case FT_LIST:
        if (v->kind == DOC_SEQ || doc_is_null(v)) return 0;
        LOAD_ERR(ctx, v, "%s: expected a list, got %s", field, doc_kind_name(v));
        return -1;
    case FT_STRINGS: {
        char **sv;
        size_t n;
        if (dagload_strings(ctx, field, v, &sv, &n) != 0) return -1;
        for (size_t k = 0; k < n; k++) free(sv[k]);
        free(sv);
        return 0;
    }
    case FT_INT_OR_LIST:
        if (v->kind == DOC_SEQ) {
            for (size_t k = 0; k < v->len; k++)
                if (dagload_int(ctx, field, v->vals[k], 0, 255, &i) != 0) return -1;
            return 0;
        }
        return dagload_int(ctx, field, v, 0, 255, &i);
    case FT_PYTHON:
        LOAD_ERR(ctx, v, "%s is Python code, which gust does not run; use a bash task or a plugin", field);
        return -1;
    case FT_ANY:
        return 0;
    }
    return 0;
}

/* Fields with a place in DagTask; everything else goes to t->args. Returns -1 on error,
 * 1 if handled, 0 if it is not a base/sensor field. */
static int set_base_field(const LoadCtx *ctx, DagTask *t, const char *k, const DocNode *v)
{
    int ok = 0, i;
    char field[96];
    snprintf(field, sizeof field, "task '%s': %s", t->name, k);
#define IS(name) (strcmp(k, name) == 0)
    if (IS("task_id") || IS("operator") || IS("dependencies") || IS("task_group_name")) return 1;
    if (IS("trigger_rule")) {
        const char *s = dagload_string(ctx, field, v);
        if (!s) return -1;
        int r = trigger_rule_parse(s);
        if (r < 0) {
            const char *close = util_closest(s, trigger_rule_names(), TR__COUNT);
            LOAD_ERR(ctx, v, "%s: unknown trigger rule '%s'%s%s%s", field, s, close ? " (did you mean '" : "",
                     close ? close : "", close ? "'?)" : "");
            return -1;
        }
        t->trigger_rule = (TriggerRule)r;
        return 1;
    }
    if (IS("weight_rule")) {
        const char *s = dagload_string(ctx, field, v);
        if (!s) return -1;
        int r = weight_rule_parse(s);
        if (r < 0) {
            LOAD_ERR(ctx, v, "%s: unknown weight rule '%s' (use downstream, upstream or absolute)", field, s);
            return -1;
        }
        t->weight_rule = (WeightRule)r;
        return 1;
    }
    int sensor_field = IS("mode") || IS("poke_interval") || IS("timeout") || IS("soft_fail") ||
                       IS("exponential_backoff") || IS("max_wait");
    if (sensor_field && !t->op->is_sensor) return 0; /* an operator's own field of the same name */
    if (IS("mode")) {
        const char *s = dagload_string(ctx, field, v);
        if (!s) return -1;
        if (strcmp(s, "poke") && strcmp(s, "reschedule")) {
            LOAD_ERR(ctx, v, "%s: unknown sensor mode '%s' (use poke or reschedule)", field, s);
            return -1;
        }
        t->mode = strcmp(s, "reschedule") == 0 ? SENSOR_RESCHEDULE : SENSOR_POKE;
        return 1;
    }
    if (IS("retries")) ok = dagload_int(ctx, field, v, 0, 1000, &t->retries);
    else if (IS("retry_delay")) ok = dagload_duration(ctx, field, v, &t->retry_delay_us);
    else if (IS("retry_exponential_backoff")) ok = dagload_bool(ctx, field, v, &t->retry_exponential_backoff);
    else if (IS("max_retry_delay")) ok = dagload_duration(ctx, field, v, &t->max_retry_delay_us);
    else if (IS("execution_timeout")) ok = doc_is_null(v) ? 0 : dagload_duration(ctx, field, v, &t->execution_timeout_us);
    else if (IS("pool_slots")) ok = dagload_int(ctx, field, v, 1, 1000000, &t->pool_slots);
    else if (IS("priority_weight")) ok = dagload_int(ctx, field, v, -2147483647LL, 2147483647LL, &t->priority_weight);
    else if (IS("depends_on_past")) ok = dagload_bool(ctx, field, v, &t->depends_on_past);
    else if (IS("wait_for_downstream")) ok = dagload_bool(ctx, field, v, &t->wait_for_downstream);
    else if (IS("do_xcom_push")) ok = dagload_bool(ctx, field, v, &t->do_xcom_push);
    else if (IS("max_active_tis_per_dag")) ok = dagload_int(ctx, field, v, 1, 1000000, &t->max_active_tis_per_dag);
    else if (IS("start_date")) ok = dagload_datetime(ctx, field, v, &t->start_date_us);
    else if (IS("end_date")) ok = dagload_datetime(ctx, field, v, &t->end_date_us);
    else if (IS("poke_interval")) ok = dagload_duration(ctx, field, v, &t->poke_interval_us);
    else if (IS("timeout")) ok = dagload_duration(ctx, field, v, &t->timeout_us);
    else if (IS("soft_fail")) ok = dagload_bool(ctx, field, v, &t->soft_fail);
    else if (IS("exponential_backoff")) ok = dagload_bool(ctx, field, v, &t->exponential_backoff);
    else if (IS("max_wait")) ok = dagload_duration(ctx, field, v, &t->max_wait_us);
    else if (IS("queue") || IS("pool") || IS("rate_limit") || IS("owner") || IS("doc_md") || IS("doc") ||
             IS("task_display_name")) {
        const char *s = dagload_string(ctx, field, v);
        if (!s) return -1;
        char **slot = IS("queue") ? &t->queue : IS("pool") ? &t->pool : IS("rate_limit") ? &t->rate_limit
                      : IS("owner") ? &t->owner : IS("task_display_name") ? &t->display_name : &t->doc_md;
        free(*slot);
        *slot = xstrdup(s);
        if (IS("queue") && (!*s || strlen(s) > 200)) {
            LOAD_ERR(ctx, v, "%s: a queue name must be 1-200 characters", field);
            return -1;
        }
    } else if (IS("env")) {
        if (doc_is_null(v)) return 1;
        if (v->kind != DOC_MAP) {
            LOAD_ERR(ctx, v, "%s: expected a mapping of NAME: value, got %s", field, doc_kind_name(v));
            return -1;
        }
        for (size_t j = 0; j < v->len; j++) {
            if (v->vals[j]->kind != DOC_SCALAR) {
                LOAD_ERR(ctx, v->vals[j], "%s: %s must be a string, got %s", field, v->keys[j]->text,
                         doc_kind_name(v->vals[j]));
                return -1;
            }
        }
        if (dagload_templates(ctx, field, v) != 0) return -1;
        cJSON_Delete(t->env);
        t->env = cJSON_CreateObject();
        for (size_t j = 0; j < v->len; j++)
            cJSON_AddStringToObject(t->env, v->keys[j]->text, doc_is_null(v->vals[j]) ? "" : v->vals[j]->text);
    } else if (IS("params")) {
        if (doc_is_null(v)) return 1;
        if (v->kind != DOC_MAP) {
            LOAD_ERR(ctx, v, "%s: expected a mapping, got %s", field, doc_kind_name(v));
            return -1;
        }
        cJSON *p = dagload_to_json(v);
        if (t->params) { /* task params over the DAG's */
            cJSON *item;
            cJSON_ArrayForEach(item, p) cJSON_DeleteItemFromObjectCaseSensitive(t->params, item->string);
            cJSON_ArrayForEach(item, p) cJSON_AddItemToObject(t->params, item->string, cJSON_Duplicate(item, 1));
            cJSON_Delete(p);
        } else {
            t->params = p;
        }
    } else if (IS("outlets") || IS("inlets")) {
        if (doc_is_null(v)) return 1;
        cJSON *cond = dagload_assets(ctx, field, v);
        if (!cond) return -1;
        if (IS("outlets")) dagload_asset_uris(cond, &t->outlets, &t->n_outlets);
        else dagload_asset_uris(cond, &t->inlets, &t->n_inlets);
        cJSON_Delete(cond);
    } else {
        return 0;
    }
#undef IS
    (void)i;
    return ok == 0 ? 1 : -1;
}

DagTask *dagload_task(const LoadCtx *ctx, const char *name, const DocNode *own, const DocNode *eff,
                      const DocNode *dag_params)
{
    if (!dagload_valid_id(name)) {
        LOAD_ERR(ctx, own, "invalid task_id '%s': use letters, digits, '_', '-' and '.' (at most 250)", name);
        return NULL;
    }
    if (own->kind != DOC_MAP) {
        LOAD_ERR(ctx, own, "task '%s': expected a mapping of fields, got %s", name, doc_kind_name(own));
        return NULL;
    }
    const OperatorDef *op = resolve_operator(ctx, name, own, eff);
    if (!op) return NULL;
    DagTask *t = dag_task_new();
    t->name = xstrdup(name);
    t->op = op;
    t->line = own->line;
    if (dag_params && dag_params->kind == DOC_MAP) t->params = dagload_to_json(dag_params);
    int errors = 0;
    for (size_t i = 0; i < eff->len; i++) {
        const char *k = eff->keys[i]->text;
        const DocNode *v = eff->vals[i];
        int is_own = doc_get(own, k) != NULL;
        const OpField *f = operator_field(op, k);
        if (!f) {
            if (is_own) {
                const char *close = suggest_field(op, k);
                LOAD_ERR(ctx, eff->keys[i], "task '%s': unknown field '%s' for operator %s%s%s%s", name, k, op->name,
                         close ? " (did you mean '" : "", close ? close : "", close ? "'?)" : "");
                errors++;
            }
            continue; /* inherited from default_args but not this operator's: ignored, as Airflow does */
        }
        char field[96];
        snprintf(field, sizeof field, "task '%s': %s", name, k);
        int rc = set_base_field(ctx, t, k, v);
        if (rc < 0) {
            errors++;
            continue;
        }
        if (rc > 0) continue;
        if (check_type(ctx, field, f, v) != 0) {
            errors++;
            continue;
        }
        if ((f->flags & FIELD_TEMPLATED) && dagload_templates(ctx, field, v) != 0) {
            errors++;
            continue;
        }
        if (!(f->flags & FIELD_IGNORED)) cJSON_AddItemToObject(t->args, k, dagload_to_json(v));
    }
    for (const OpField *f = op->fields; f->name; f++) {
        if ((f->flags & FIELD_REQUIRED) && !doc_get(eff, f->name)) {
            LOAD_ERR(ctx, own, "task '%s': operator %s needs '%s' (%s)", name, op->name, f->name, f->doc);
            errors++;
        }
    }
    if (!t->queue) t->queue = xstrdup("default");
    if (!t->pool) t->pool = xstrdup("default_pool");
    if (!t->owner) t->owner = xstrdup("airflow");
    if (errors) {
        dag_task_free(t);
        return NULL;
    }
    return t;
}
