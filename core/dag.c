/* dag — the DAG model: construction, lookups, ordering and serialisation (see dag.h). */
#include "core/dag.h"

#include <stdlib.h>
#include <string.h>

#include "core/duration.h"
#include "core/timeutil.h"
#include "core/util.h"

static const char *const TRIGGER_RULES[TR__COUNT] = {
    "all_success",  "all_failed",   "all_done",           "all_done_min_one_success",
    "one_success",  "one_failed",   "one_done",           "none_failed",
    "none_skipped", "none_failed_min_one_success", "all_skipped", "always",
};

const char *trigger_rule_name(TriggerRule r)
{
    return (unsigned)r < TR__COUNT ? TRIGGER_RULES[r] : "all_success";
}

const char *const *trigger_rule_names(void)
{
    return TRIGGER_RULES;
}

int trigger_rule_parse(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < TR__COUNT; i++)
        if (strcmp(TRIGGER_RULES[i], name) == 0) return i;
    /* Airflow 2's deprecated spellings, still found in older DAG files. */
    if (strcmp(name, "none_failed_or_skipped") == 0) return TR_NONE_FAILED_MIN_ONE_SUCCESS;
    if (strcmp(name, "dummy") == 0) return TR_ALWAYS;
    return -1;
}

const char *weight_rule_name(WeightRule r)
{
    return r == WR_UPSTREAM ? "upstream" : r == WR_ABSOLUTE ? "absolute" : "downstream";
}

int weight_rule_parse(const char *name)
{
    if (!name) return -1;
    if (strcmp(name, "downstream") == 0) return WR_DOWNSTREAM;
    if (strcmp(name, "upstream") == 0) return WR_UPSTREAM;
    if (strcmp(name, "absolute") == 0) return WR_ABSOLUTE;
    return -1;
}

Dag *dag_new(const char *dag_id, const char *file, int line)
{
    Dag *d = xcalloc(1, sizeof *d);
    d->dag_id = xstrdup(dag_id);
    d->file = xstrdup(file);
    d->line = line;
    d->start_date_us = d->end_date_us = -1;
    d->max_active_runs = d->max_active_tasks = -1;
    d->dagrun_timeout_us = -1;
    d->is_paused_upon_creation = -1;
    d->schedule.kind = SCHEDULE_NONE;
    return d;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

DagTask *dag_task_new(void)
{
    DagTask *t = xcalloc(1, sizeof *t);
    t->trigger_rule = TR_ALL_SUCCESS;
    t->retry_delay_us = 300LL * 1000000;
    t->max_retry_delay_us = -1;
    t->execution_timeout_us = -1;
    t->pool_slots = 1;
    t->priority_weight = 1;
    t->weight_rule = WR_DOWNSTREAM;
    t->start_date_us = t->end_date_us = -1;
    t->do_xcom_push = 1;
    t->mode = SENSOR_POKE;
    t->poke_interval_us = 60LL * 1000000;
    t->timeout_us = 7LL * 86400 * 1000000;
    t->max_wait_us = -1;
    t->args = cJSON_CreateObject();
    return t;
}

void dag_task_free(DagTask *t)
{
    if (!t) return;
    free(t->task_id);
    free(t->name);
    free(t->group_id);
    free_strv(t->upstream, t->n_upstream);
    free(t->queue);
    free(t->pool);
    free(t->rate_limit);
    free(t->owner);
    cJSON_Delete(t->env);
    cJSON_Delete(t->params);
    cJSON_Delete(t->args);
    free_strv(t->outlets, t->n_outlets);
    free_strv(t->inlets, t->n_inlets);
    free(t->doc_md);
    free(t->display_name);
    free(t);
}

static void group_free(DagGroup *g)
{
    if (!g) return;
    free(g->group_id);
    free(g->name);
    free(g->parent_id);
    free(g->tooltip);
    free(g);
}

void dag_free(Dag *d)
{
    if (!d) return;
    free(d->dag_id);
    free(d->file);
    free(d->description);
    free(d->doc_md);
    free(d->display_name);
    free(d->owner);
    schedule_free(&d->schedule);
    free(d->schedule_text);
    cJSON_Delete(d->assets);
    free(d->timezone);
    tz_free(d->tz);
    free_strv(d->tags, d->n_tags);
    cJSON_Delete(d->params);
    for (size_t i = 0; i < d->n_tasks; i++) dag_task_free(d->tasks[i]);
    free(d->tasks);
    for (size_t i = 0; i < d->n_groups; i++) group_free(d->groups[i]);
    free(d->groups);
    free(d->by_id);
    free(d);
}

DagTask *dag_find_task(const Dag *d, const char *task_id)
{
    if (d->by_id) { /* the scheduler looks up every instance of every run: no linear scan */
        size_t lo = 0, hi = d->n_tasks;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(d->tasks[d->by_id[mid]]->task_id, task_id);
            if (c == 0) return d->tasks[d->by_id[mid]];
            if (c < 0) lo = mid + 1;
            else hi = mid;
        }
        return NULL;
    }
    for (size_t i = 0; i < d->n_tasks; i++)
        if (strcmp(d->tasks[i]->task_id, task_id) == 0) return d->tasks[i];
    return NULL;
}

/* qsort has no context argument. Thread-local, because worker threads that miss the DAG
 * cache at the same moment each parse (and index) their own copy of the version at once. */
static _Thread_local const Dag *sort_dag;

static int cmp_task_index(const void *a, const void *b)
{
    return strcmp(sort_dag->tasks[*(const size_t *)a]->task_id, sort_dag->tasks[*(const size_t *)b]->task_id);
}

void dag_index(Dag *d)
{
    free(d->by_id);
    d->by_id = xmalloc((d->n_tasks + 1) * sizeof *d->by_id);
    for (size_t i = 0; i < d->n_tasks; i++) d->by_id[i] = i;
    sort_dag = d;
    qsort(d->by_id, d->n_tasks, sizeof *d->by_id, cmp_task_index);
    sort_dag = NULL;
}

DagTask *dag_find_task_by_name(const Dag *d, const char *name)
{
    for (size_t i = 0; i < d->n_tasks; i++)
        if (strcmp(d->tasks[i]->name, name) == 0) return d->tasks[i];
    return NULL;
}

DagGroup *dag_find_group_by_name(const Dag *d, const char *name)
{
    for (size_t i = 0; i < d->n_groups; i++)
        if (strcmp(d->groups[i]->name, name) == 0) return d->groups[i];
    return NULL;
}

void dag_add_task(Dag *d, DagTask *t)
{
    free(d->by_id);
    d->by_id = NULL;
    d->tasks = xrealloc(d->tasks, (d->n_tasks + 1) * sizeof *d->tasks);
    d->tasks[d->n_tasks++] = t;
}

void dag_add_group(Dag *d, DagGroup *g)
{
    d->groups = xrealloc(d->groups, (d->n_groups + 1) * sizeof *d->groups);
    d->groups[d->n_groups++] = g;
}

void dag_task_add_upstream(DagTask *t, const char *task_id)
{
    size_t i = 0;
    while (i < t->n_upstream && strcmp(t->upstream[i], task_id) < 0) i++;
    if (i < t->n_upstream && strcmp(t->upstream[i], task_id) == 0) return;
    t->upstream = xrealloc(t->upstream, (t->n_upstream + 1) * sizeof *t->upstream);
    memmove(t->upstream + i + 1, t->upstream + i, (t->n_upstream - i) * sizeof *t->upstream);
    t->upstream[i] = xstrdup(task_id);
    t->n_upstream++;
}

static long task_index(const Dag *d, const char *task_id)
{
    for (size_t i = 0; i < d->n_tasks; i++)
        if (strcmp(d->tasks[i]->task_id, task_id) == 0) return (long)i;
    return -1;
}

/* Depth-first search with colours; on a back edge the grey path is the cycle. */
static int topo_visit(const Dag *d, size_t i, unsigned char *colour, size_t *stack, size_t depth, size_t *order,
                      size_t *n_order, char **cycle)
{
    colour[i] = 1;
    stack[depth] = i;
    const DagTask *t = d->tasks[i];
    for (size_t u = 0; u < t->n_upstream; u++) {
        long j = task_index(d, t->upstream[u]);
        if (j < 0) continue; /* unknown ids are reported by the loader */
        if (colour[j] == 1) {
            StrBuf b = {0};
            size_t start = 0;
            while (stack[start] != (size_t)j) start++;
            /* The stack runs downstream → upstream; print it upstream first, as a >> chain. */
            for (size_t k = depth + 1; k-- > start;) sb_printf(&b, "%s -> ", d->tasks[stack[k]]->task_id);
            sb_append(&b, d->tasks[i]->task_id);
            *cycle = sb_take(&b);
            return -1;
        }
        if (colour[j] == 0 && topo_visit(d, (size_t)j, colour, stack, depth + 1, order, n_order, cycle) != 0)
            return -1;
    }
    colour[i] = 2;
    order[(*n_order)++] = i;
    return 0;
}

int dag_topo_order(const Dag *d, size_t *order, char **cycle)
{
    *cycle = NULL;
    unsigned char *colour = xcalloc(d->n_tasks + 1, 1);
    size_t *stack = xmalloc((d->n_tasks + 1) * sizeof *stack);
    size_t n_order = 0;
    int rc = 0;
    for (size_t i = 0; i < d->n_tasks && rc == 0; i++)
        if (colour[i] == 0) rc = topo_visit(d, i, colour, stack, 0, order, &n_order, cycle);
    free(colour);
    free(stack);
    return rc;
}

static void add_time(cJSON *o, const char *key, int64_t us)
{
    if (us < 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    char buf[48];
    time_format_iso(us, 0, buf, sizeof buf);
    cJSON_AddStringToObject(o, key, buf);
}

static void add_duration(cJSON *o, const char *key, int64_t us)
{
    if (us < 0)
        cJSON_AddNullToObject(o, key);
    else
        cJSON_AddNumberToObject(o, key, (double)us / 1e6);
}

static void add_str(cJSON *o, const char *key, const char *s)
{
    if (s)
        cJSON_AddStringToObject(o, key, s);
    else
        cJSON_AddNullToObject(o, key);
}

static cJSON *strv_json(char **v, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
    return a;
}

cJSON *dag_task_to_json(const DagTask *t)
{
    cJSON *o = cJSON_CreateObject();
    add_str(o, "task_id", t->task_id);
    add_str(o, "name", t->name);
    add_str(o, "group_id", t->group_id);
    add_str(o, "operator", t->op ? t->op->name : NULL);
    cJSON_AddNumberToObject(o, "line", t->line);
    cJSON_AddItemToObject(o, "upstream", strv_json(t->upstream, t->n_upstream));
    add_str(o, "trigger_rule", trigger_rule_name(t->trigger_rule));
    cJSON_AddNumberToObject(o, "retries", t->retries);
    add_duration(o, "retry_delay", t->retry_delay_us);
    cJSON_AddBoolToObject(o, "retry_exponential_backoff", t->retry_exponential_backoff);
    add_duration(o, "max_retry_delay", t->max_retry_delay_us);
    add_duration(o, "execution_timeout", t->execution_timeout_us);
    add_str(o, "queue", t->queue);
    add_str(o, "pool", t->pool);
    cJSON_AddNumberToObject(o, "pool_slots", t->pool_slots);
    cJSON_AddNumberToObject(o, "priority_weight", t->priority_weight);
    add_str(o, "weight_rule", weight_rule_name(t->weight_rule));
    add_str(o, "rate_limit", t->rate_limit);
    add_str(o, "owner", t->owner);
    cJSON_AddBoolToObject(o, "depends_on_past", t->depends_on_past);
    cJSON_AddBoolToObject(o, "wait_for_downstream", t->wait_for_downstream);
    add_time(o, "start_date", t->start_date_us);
    add_time(o, "end_date", t->end_date_us);
    cJSON_AddBoolToObject(o, "do_xcom_push", t->do_xcom_push);
    cJSON_AddNumberToObject(o, "max_active_tis_per_dag", t->max_active_tis_per_dag);
    if (t->op && t->op->is_sensor) {
        add_str(o, "mode", t->mode == SENSOR_RESCHEDULE ? "reschedule" : "poke");
        add_duration(o, "poke_interval", t->poke_interval_us);
        add_duration(o, "timeout", t->timeout_us);
        cJSON_AddBoolToObject(o, "soft_fail", t->soft_fail);
        cJSON_AddBoolToObject(o, "exponential_backoff", t->exponential_backoff);
        add_duration(o, "max_wait", t->max_wait_us);
    }
    cJSON_AddItemToObject(o, "env", t->env ? cJSON_Duplicate(t->env, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "params", t->params ? cJSON_Duplicate(t->params, 1) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "args", cJSON_Duplicate(t->args, 1));
    cJSON_AddItemToObject(o, "outlets", strv_json(t->outlets, t->n_outlets));
    cJSON_AddItemToObject(o, "inlets", strv_json(t->inlets, t->n_inlets));
    add_str(o, "doc_md", t->doc_md);
    add_str(o, "display_name", t->display_name);
    return o;
}

cJSON *dag_to_json(const Dag *d)
{
    cJSON *o = cJSON_CreateObject();
    add_str(o, "dag_id", d->dag_id);
    add_str(o, "file", d->file);
    cJSON_AddNumberToObject(o, "line", d->line);
    add_str(o, "description", d->description);
    add_str(o, "doc_md", d->doc_md);
    add_str(o, "display_name", d->display_name);
    add_str(o, "owner", d->owner);
    cJSON *s = cJSON_AddObjectToObject(o, "schedule");
    add_str(s, "kind", schedule_kind_name(d->schedule.kind));
    add_str(s, "text", d->schedule_text);
    if (d->schedule.kind == SCHEDULE_INTERVAL) add_duration(s, "interval", d->schedule.interval_us);
    cJSON_AddBoolToObject(s, "also_assets", d->schedule.also_assets);
    cJSON_AddItemToObject(s, "assets", d->assets ? cJSON_Duplicate(d->assets, 1) : cJSON_CreateNull());
    add_str(o, "timezone", d->timezone);
    add_time(o, "start_date", d->start_date_us);
    add_time(o, "end_date", d->end_date_us);
    cJSON_AddBoolToObject(o, "catchup", d->catchup);
    cJSON_AddNumberToObject(o, "max_active_runs", d->max_active_runs);
    cJSON_AddNumberToObject(o, "max_active_tasks", d->max_active_tasks);
    add_duration(o, "dagrun_timeout", d->dagrun_timeout_us);
    if (d->is_paused_upon_creation < 0)
        cJSON_AddNullToObject(o, "is_paused_upon_creation");
    else
        cJSON_AddBoolToObject(o, "is_paused_upon_creation", d->is_paused_upon_creation);
    cJSON_AddNumberToObject(o, "max_consecutive_failed_dag_runs", d->max_consecutive_failed_dag_runs);
    cJSON_AddItemToObject(o, "tags", strv_json(d->tags, d->n_tags));
    cJSON_AddItemToObject(o, "params", d->params ? cJSON_Duplicate(d->params, 1) : cJSON_CreateNull());
    cJSON *groups = cJSON_AddArrayToObject(o, "task_groups");
    for (size_t i = 0; i < d->n_groups; i++) {
        const DagGroup *g = d->groups[i];
        cJSON *go = cJSON_CreateObject();
        add_str(go, "group_id", g->group_id);
        add_str(go, "parent_id", g->parent_id);
        add_str(go, "tooltip", g->tooltip);
        cJSON_AddItemToArray(groups, go);
    }
    cJSON *tasks = cJSON_AddArrayToObject(o, "tasks");
    for (size_t i = 0; i < d->n_tasks; i++) cJSON_AddItemToArray(tasks, dag_task_to_json(d->tasks[i]));
    return o;
}
