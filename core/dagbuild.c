/* dagbuild — one DAG's merged config into a Dag: DAG-level fields, the schedule, task
 * groups and dependencies (see dagload_int.h). Tasks are built by dagtask.c.
 *
 * Errors are collected, not returned at the first one: a user fixing a file wants every
 * problem in it at once. The DAG is dropped if any error was found. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dagload_int.h"
#include "core/duration.h"
#include "core/util.h"

static const char *const DAG_FIELDS[] = {
    "description", "doc_md", "dag_display_name", "schedule", "schedule_interval", "timetable", "start_date",
    "end_date", "timezone", "catchup", "max_active_runs", "max_active_tasks", "concurrency", "dagrun_timeout",
    "tags", "params", "default_args", "tasks", "task_groups", "render_template_as_native_obj",
    "is_paused_upon_creation", "max_consecutive_failed_dag_runs", "default_view", "orientation", "owner_links",
    "template_searchpath", "fail_stop", "fail_fast", "dag_id",
};
/* DAG settings sometimes written under default_args; Airflow's operators ignore them there. */
static const char *const DAG_ONLY_IN_DEFAULT_ARGS[] = {"catchup", "schedule", "schedule_interval", "max_active_runs",
                                                       "concurrency", "max_active_tasks", "dagrun_timeout", "tags"};

static int in_list(const char *k, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(k, list[i]) == 0) return 1;
    return 0;
}

/* ---- schedule ---------------------------------------------------------------------- */

static int schedule_from_string(const LoadCtx *ctx, Dag *d, const DocNode *v)
{
    char err[256], err2[256];
    const char *s = v->text;
    if (schedule_parse(s, &d->schedule, err, sizeof err) == 0) return 0;
    int64_t us;
    /* Not a cron or a preset: maybe an interval ("1h", "2 days"). Cron-looking text keeps its cron error. */
    if (!strchr(s, '*') && s[0] != '@' && duration_parse(s, &us, err2, sizeof err2) == 0 && us > 0) {
        schedule_interval(&d->schedule, us);
        return 0;
    }
    LOAD_ERR(ctx, v, "schedule: %s", err);
    return -1;
}

static int schedule_from_timetable(const LoadCtx *ctx, Dag *d, const DocNode *v, const char *type)
{
    if (strcmp(type, "airflow.timetables.trigger.CronTriggerTimetable") != 0) {
        LOAD_ERR(ctx, v, "schedule: timetable '%s' is not supported (use cron, a preset, an interval or datasets)",
                 type);
        return -1;
    }
    const DocNode *cron = doc_get(v, "cron");
    const DocNode *args = doc_get(v, "__args__");
    if (!cron && args && args->kind == DOC_SEQ && args->len > 0) cron = args->vals[0];
    if (!cron || !doc_str(cron)) {
        LOAD_ERR(ctx, v, "schedule: CronTriggerTimetable needs a cron expression (cron: or __args__: [...])");
        return -1;
    }
    char err[256];
    if (schedule_parse(doc_str(cron), &d->schedule, err, sizeof err) != 0) {
        LOAD_ERR(ctx, cron, "schedule: %s", err);
        return -1;
    }
    if (d->schedule.kind == SCHEDULE_CRON) d->schedule.kind = SCHEDULE_CRON_TRIGGER;
    free(d->schedule_text);
    d->schedule_text = xstrdup(doc_str(cron));
    return 0; /* its timezone: is read with the DAG's, see timetable_timezone() */
}

/* A CronTriggerTimetable's own timezone: applies when the DAG sets none. */
static const DocNode *timetable_timezone(const DocNode *cfg)
{
    const DocNode *sched = doc_get(cfg, "schedule");
    if (!sched) sched = doc_get(cfg, "timetable");
    if (sched && sched->kind == DOC_MAP && doc_get(sched, "timetable")) sched = doc_get(sched, "timetable");
    return sched && sched->kind == DOC_MAP ? doc_get(sched, "timezone") : NULL;
}

static int build_schedule(const LoadCtx *ctx, Dag *d, const DocNode *v)
{
    if (doc_is_null(v) || (v->kind == DOC_SCALAR && strcmp(v->text, "None") == 0)) return 0;
    if (v->kind == DOC_SCALAR) {
        d->schedule_text = xstrdup(v->text);
        double secs;
        if (doc_as_number(v, &secs) && secs > 0) {
            schedule_interval(&d->schedule, (int64_t)(secs * 1e6));
            return 0;
        }
        return schedule_from_string(ctx, d, v);
    }
    if (v->kind == DOC_MAP) {
        const char *type = doc_str(doc_get(v, "__type__"));
        if (type && (strcmp(type, "datetime.timedelta") == 0 || strcmp(type, "timedelta") == 0)) {
            int64_t us;
            if (dagload_duration(ctx, "schedule", v, &us) != 0) return -1;
            schedule_interval(&d->schedule, us);
            char buf[64];
            duration_format(us, buf, sizeof buf);
            d->schedule_text = xstrdup(buf);
            return 0;
        }
        if (type && strstr(type, "Timetable")) return schedule_from_timetable(ctx, d, v, type);
        const DocNode *tt = doc_get(v, "timetable");
        if (tt) { /* datasets OR a timetable: Airflow's DatasetOrTimeSchedule */
            const char *tt_type = doc_str(doc_get(tt, "__type__"));
            int rc = tt_type ? schedule_from_timetable(ctx, d, tt, tt_type)
                             : (tt->kind == DOC_SCALAR ? schedule_from_string(ctx, d, tt) : -1);
            if (rc != 0) {
                if (!tt_type && tt->kind != DOC_SCALAR) LOAD_ERR(ctx, tt, "schedule: timetable must be a cron or a CronTriggerTimetable");
                return -1;
            }
            d->schedule.also_assets = 1;
        }
    }
    cJSON *cond = dagload_assets(ctx, "schedule", v);
    if (!cond) return -1;
    d->assets = cond;
    if (!d->schedule.also_assets) d->schedule.kind = SCHEDULE_ASSETS;
    if (!d->schedule_text) d->schedule_text = xstrdup("datasets");
    return 0;
}

/* ---- task groups and dependencies -------------------------------------------------- */

typedef struct GroupCfg {
    const char *name;
    const DocNode *cfg;
} GroupCfg;

static DagGroup *build_group(const LoadCtx *ctx, Dag *d, const DocNode *groups, const char *name, int depth)
{
    DagGroup *g = dag_find_group_by_name(d, name);
    if (g) return g;
    const DocNode *cfg = doc_get(groups, name);
    if (!cfg || depth > 32) return NULL;
    const char *parent = doc_str(doc_get(cfg, "parent_group_name"));
    DagGroup *pg = NULL;
    if (parent) {
        if (strcmp(parent, name) == 0 || depth > 30) {
            LOAD_ERR(ctx, doc_get(cfg, "parent_group_name"), "task group '%s': groups nest in a cycle", name);
            return NULL;
        }
        pg = build_group(ctx, d, groups, parent, depth + 1);
        if (!pg) {
            if (!doc_get(groups, parent))
                LOAD_ERR(ctx, doc_get(cfg, "parent_group_name"), "task group '%s': unknown parent_group_name '%s'",
                         name, parent);
            return NULL;
        }
    }
    g = xcalloc(1, sizeof *g);
    g->name = xstrdup(name);
    g->line = cfg->line;
    g->prefix_group_id = 1;
    int b;
    const DocNode *pfx = doc_get(cfg, "prefix_group_id");
    if (pfx && dagload_bool(ctx, "prefix_group_id", pfx, &b) == 0) g->prefix_group_id = b;
    g->parent_id = pg ? xstrdup(pg->group_id) : NULL;
    g->group_id = pg && pg->prefix_group_id ? xasprintf("%s.%s", pg->group_id, name) : xstrdup(name);
    g->tooltip = xstrdup(doc_str(doc_get(cfg, "tooltip")));
    dag_add_group(d, g);
    return g;
}

static int check_group_fields(const LoadCtx *ctx, const char *name, const DocNode *cfg)
{
    static const char *const known[] = {"group_name", "tooltip", "dependencies", "parent_group_name", "default_args",
                                        "prefix_group_id", "ui_color", "ui_fgcolor", "add_suffix_on_collision"};
    int errors = 0;
    if (!dagload_valid_id(name) || strchr(name, '.')) {
        LOAD_ERR(ctx, cfg, "invalid task group name '%s': use letters, digits, '_', '-' (at most 250)", name);
        errors++;
    }
    for (size_t i = 0; cfg->kind == DOC_MAP && i < cfg->len; i++) {
        const char *k = cfg->keys[i]->text;
        if (in_list(k, known, GUST_ARRAY_LEN(known))) continue;
        const char *close = util_closest(k, known, GUST_ARRAY_LEN(known));
        LOAD_ERR(ctx, cfg->keys[i], "task group '%s': unknown field '%s'%s%s%s", name, k, close ? " (did you mean '" : "",
                 close ? close : "", close ? "'?)" : "");
        errors++;
    }
    return errors;
}

/* Is task t inside group g (directly or through nested groups)? */
static int in_group(const Dag *d, const DagTask *t, const DagGroup *g)
{
    for (const char *gid = t->group_id; gid;) {
        if (strcmp(gid, g->group_id) == 0) return 1;
        const DagGroup *cur = NULL;
        for (size_t i = 0; i < d->n_groups; i++)
            if (strcmp(d->groups[i]->group_id, gid) == 0) cur = d->groups[i];
        gid = cur ? cur->parent_id : NULL;
    }
    return 0;
}

/* Roots: members with no upstream inside the group; leaves: members nothing inside depends on. */
static int is_root(const Dag *d, const DagTask *t, const DagGroup *g)
{
    for (size_t u = 0; u < t->n_upstream; u++) {
        const DagTask *up = dag_find_task(d, t->upstream[u]);
        if (up && in_group(d, up, g)) return 0;
    }
    return 1;
}

static int is_leaf(const Dag *d, const DagTask *t, const DagGroup *g)
{
    for (size_t i = 0; i < d->n_tasks; i++) {
        const DagTask *o = d->tasks[i];
        if (!in_group(d, o, g)) continue;
        for (size_t u = 0; u < o->n_upstream; u++)
            if (strcmp(o->upstream[u], t->task_id) == 0) return 0;
    }
    return 1;
}

typedef struct Edge {
    const DocNode *at;   /* where the dependency is written */
    char *down;          /* task or group name */
    char *up;            /* task or group name */
} Edge;

static const char *suggest_name(const Dag *d, const char *name)
{
    const char **cands = xmalloc((d->n_tasks + d->n_groups + 1) * sizeof *cands);
    size_t n = 0;
    for (size_t i = 0; i < d->n_tasks; i++) cands[n++] = d->tasks[i]->name;
    for (size_t i = 0; i < d->n_groups; i++) cands[n++] = d->groups[i]->name;
    const char *c = util_closest(name, cands, n);
    free(cands);
    return c;
}

/* Task → task edges first (they decide each group's roots and leaves), then the edges that
 * involve a group, expanded to its roots (downstream side) or leaves (upstream side). */
static int apply_edges(const LoadCtx *ctx, Dag *d, Edge *edges, size_t n)
{
    int errors = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            Edge *e = &edges[i];
            DagTask *dt = dag_find_task_by_name(d, e->down), *ut = dag_find_task_by_name(d, e->up);
            DagGroup *dg = dt ? NULL : dag_find_group_by_name(d, e->down);
            DagGroup *ug = ut ? NULL : dag_find_group_by_name(d, e->up);
            if (pass == 0) {
                if (!ut && !ug) {
                    const char *close = suggest_name(d, e->up);
                    LOAD_ERR(ctx, e->at, "'%s' depends on unknown task or group '%s'%s%s%s", e->down, e->up,
                             close ? " (did you mean '" : "", close ? close : "", close ? "'?)" : "");
                    errors++;
                } else if (dt && ut) {
                    dag_task_add_upstream(dt, ut->task_id);
                }
                continue;
            }
            if ((!dt && !dg) || (!ut && !ug) || (dt && ut)) continue;
            for (size_t a = 0; a < d->n_tasks; a++) {
                DagTask *down = d->tasks[a];
                if (dt ? down != dt : !(in_group(d, down, dg) && is_root(d, down, dg))) continue;
                for (size_t b = 0; b < d->n_tasks; b++) {
                    DagTask *up = d->tasks[b];
                    if (ut ? up != ut : !(in_group(d, up, ug) && is_leaf(d, up, ug))) continue;
                    if (up == down) {
                        LOAD_ERR(ctx, e->at, "dependency cycle: '%s' depends on '%s', which contains it", e->down, e->up);
                        errors++;
                        continue;
                    }
                    dag_task_add_upstream(down, up->task_id);
                }
            }
        }
    }
    return errors;
}

static int add_edges(const LoadCtx *ctx, Edge **edges, size_t *n, const char *down, const DocNode *deps)
{
    if (!deps) return 0;
    char **names;
    size_t k;
    if (dagload_strings(ctx, "dependencies", deps, &names, &k) != 0) return 1;
    for (size_t i = 0; i < k; i++) {
        *edges = xrealloc(*edges, (*n + 1) * sizeof **edges);
        (*edges)[*n] = (Edge){deps->kind == DOC_SEQ && i < deps->len ? deps->vals[i] : deps, xstrdup(down), names[i]};
        (*n)++;
    }
    free(names);
    return 0;
}

/* ---- the DAG ----------------------------------------------------------------------- */

static int build_dag_fields(const LoadCtx *ctx, Dag *d, const DocNode *cfg, const DocNode *dargs)
{
    int errors = 0;
    for (size_t i = 0; i < cfg->len; i++) {
        const char *k = cfg->keys[i]->text;
        if (!in_list(k, DAG_FIELDS, GUST_ARRAY_LEN(DAG_FIELDS))) {
            const char *close = util_closest(k, DAG_FIELDS, GUST_ARRAY_LEN(DAG_FIELDS));
            if (!close && operator_any_field(k))
                LOAD_ERR(ctx, cfg->keys[i], "unknown DAG field '%s' (it is a task field: put it under default_args)", k);
            else
                LOAD_ERR(ctx, cfg->keys[i], "unknown DAG field '%s'%s%s%s", k, close ? " (did you mean '" : "",
                         close ? close : "", close ? "'?)" : "");
            errors++;
        }
    }
    const DocNode *v;
    const char *s;
#define STR_FIELD(key, slot)                                                   \
    if ((v = doc_get(cfg, key)) && !doc_is_null(v)) {                          \
        if ((s = dagload_string(ctx, key, v))) slot = xstrdup(s); else errors++; \
    }
    STR_FIELD("description", d->description)
    STR_FIELD("doc_md", d->doc_md)
    STR_FIELD("dag_display_name", d->display_name)
#undef STR_FIELD
    int b;
    if ((v = doc_get(cfg, "catchup"))) errors += dagload_bool(ctx, "catchup", v, &d->catchup) != 0;
    if ((v = doc_get(cfg, "is_paused_upon_creation"))) {
        if (dagload_bool(ctx, "is_paused_upon_creation", v, &b) == 0) d->is_paused_upon_creation = b; else errors++;
    }
    if ((v = doc_get(cfg, "render_template_as_native_obj"))) errors += dagload_bool(ctx, "render_template_as_native_obj", v, &b) != 0;
    if ((v = doc_get(cfg, "max_active_runs"))) errors += dagload_int(ctx, "max_active_runs", v, 1, 100000, &d->max_active_runs) != 0;
    if ((v = doc_get(cfg, "max_active_tasks")) || (v = doc_get(cfg, "concurrency")))
        errors += dagload_int(ctx, "max_active_tasks", v, 1, 100000, &d->max_active_tasks) != 0;
    if ((v = doc_get(cfg, "max_consecutive_failed_dag_runs")))
        errors += dagload_int(ctx, "max_consecutive_failed_dag_runs", v, 0, 100000, &d->max_consecutive_failed_dag_runs) != 0;
    if ((v = doc_get(cfg, "dagrun_timeout")) && !doc_is_null(v))
        errors += dagload_duration(ctx, "dagrun_timeout", v, &d->dagrun_timeout_us) != 0;
    if ((v = doc_get(cfg, "tags"))) errors += dagload_strings(ctx, "tags", v, &d->tags, &d->n_tags) != 0;
    if ((v = doc_get(cfg, "params")) && !doc_is_null(v)) {
        if (v->kind != DOC_MAP) {
            LOAD_ERR(ctx, v, "params: expected a mapping, got %s", doc_kind_name(v));
            errors++;
        } else {
            d->params = dagload_to_json(v);
        }
    }
    /* start_date/end_date may sit at the DAG level or in default_args (dag-factory lifts them). */
    if ((v = doc_get(cfg, "start_date")) || (v = doc_get(dargs, "start_date")))
        errors += dagload_datetime(ctx, "start_date", v, &d->start_date_us) != 0;
    if (((v = doc_get(cfg, "end_date")) || (v = doc_get(dargs, "end_date"))) && !doc_is_null(v))
        errors += dagload_datetime(ctx, "end_date", v, &d->end_date_us) != 0;
    if (d->start_date_us >= 0 && d->end_date_us >= 0 && d->end_date_us < d->start_date_us) {
        LOAD_ERR(ctx, doc_get(cfg, "end_date") ? doc_get(cfg, "end_date") : doc_get(dargs, "end_date"),
                 "end_date is before start_date");
        errors++;
    }
    return errors;
}

static int check_default_args(const LoadCtx *ctx, const DocNode *dargs, const char *where)
{
    int errors = 0;
    if (!dargs) return 0;
    if (dargs->kind != DOC_MAP) {
        LOAD_ERR(ctx, dargs, "%s: expected a mapping, got %s", where, doc_kind_name(dargs));
        return 1;
    }
    for (size_t i = 0; i < dargs->len; i++) {
        const char *k = dargs->keys[i]->text;
        if (strcmp(k, "timezone") == 0 || strcmp(k, "start_date") == 0 || strcmp(k, "end_date") == 0) continue;
        if (in_list(k, DAG_ONLY_IN_DEFAULT_ARGS, GUST_ARRAY_LEN(DAG_ONLY_IN_DEFAULT_ARGS))) {
            LOAD_WARN(ctx, dargs->keys[i], "%s: '%s' is a DAG setting and has no effect in default_args; "
                                           "move it to the DAG", where, k);
            continue;
        }
        const OpField *f = operator_any_field(k);
        if (!f || strcmp(k, "task_id") == 0 || strcmp(k, "dependencies") == 0) {
            const char *cands[160];
            size_t n = 0;
            size_t nops;
            const OperatorDef *ops = operator_all(&nops);
            for (const OpField *bf = operator_base_fields(); bf->name && n < 150; bf++) cands[n++] = bf->name;
            for (const OpField *bf = operator_sensor_fields(); bf->name && n < 150; bf++) cands[n++] = bf->name;
            for (size_t o = 0; o < nops; o++)
                for (const OpField *bf = ops[o].fields; bf->name && n < 150; bf++) cands[n++] = bf->name;
            const char *close = util_closest(k, cands, n);
            LOAD_ERR(ctx, dargs->keys[i], "%s: unknown field '%s'%s%s%s", where, k, close ? " (did you mean '" : "",
                     close ? close : "", close ? "'?)" : "");
            errors++;
        }
    }
    return errors;
}

/* tasks/task_groups come normalised by dagbag.c into mappings keyed by task id / group name. */
Dag *dagload_build(const LoadCtx *ctx0, int line, const DocNode *cfg, const char *default_tz)
{
    LoadCtx ctx = *ctx0;
    size_t errors_before = diag_count_errors(ctx.diags);
    Dag *d = dag_new(ctx.dag_id, ctx.file, line);
    int errors = 0;
    if (!dagload_valid_id(ctx.dag_id)) {
        LOAD_ERR(&ctx, cfg, "invalid dag_id '%s': use letters, digits, '_', '-' and '.' (at most 250)", ctx.dag_id);
        errors++;
    }
    /* Python is the one problem that makes every other message about the DAG noise
     * (its callables have no operator, its callbacks are "unknown fields"): report it alone. */
    if (dagload_python_scan(&ctx, cfg) > 0) {
        dag_free(d);
        return NULL;
    }
    const DocNode *dargs = doc_get(cfg, "default_args");
    errors += check_default_args(&ctx, dargs, "default_args");

    /* timezone first: naive dates are read in it */
    const DocNode *tzn = doc_get(cfg, "timezone");
    if (!tzn) tzn = doc_get(dargs, "timezone");
    if (!tzn) tzn = timetable_timezone(cfg);
    const char *tzname = tzn ? doc_str(tzn) : default_tz;
    char err[256];
    d->tz = tz_load(tzname ? tzname : "UTC", err, sizeof err);
    if (!d->tz) {
        LOAD_ERR(&ctx, tzn, "timezone: %s", err);
        errors++;
        d->tz = tz_load("UTC", err, sizeof err);
    }
    d->timezone = xstrdup(tz_name(d->tz));
    ctx.tz = d->tz;

    errors += build_dag_fields(&ctx, d, cfg, dargs);
    const DocNode *sched = doc_get(cfg, "schedule");
    const char *sched_key = "schedule";
    if (doc_get(cfg, "schedule_interval")) {
        if (sched) {
            LOAD_ERR(&ctx, doc_get_key(cfg, "schedule_interval"), "both schedule and schedule_interval are set; keep schedule");
            errors++;
        }
        sched = doc_get(cfg, "schedule_interval");
        sched_key = "schedule_interval";
    }
    if (!sched && doc_get(cfg, "timetable")) sched = doc_get(cfg, "timetable");
    (void)sched_key;
    if (sched && build_schedule(&ctx, d, sched) != 0) errors++;
    if ((d->schedule.kind == SCHEDULE_CRON || d->schedule.kind == SCHEDULE_INTERVAL ||
         d->schedule.kind == SCHEDULE_CRON_TRIGGER || d->schedule.kind == SCHEDULE_ONCE) &&
        d->start_date_us < 0 && !errors) {
        LOAD_ERR(&ctx, sched, "schedule '%s' needs a start_date (in the DAG or its default_args)",
                 d->schedule_text ? d->schedule_text : "");
        errors++;
    }

    /* task groups */
    const DocNode *groups = doc_get(cfg, "task_groups");
    Edge *edges = NULL;
    size_t n_edges = 0;
    for (size_t i = 0; groups && i < groups->len; i++) {
        const char *name = groups->keys[i]->text;
        errors += check_group_fields(&ctx, name, groups->vals[i]);
        errors += check_default_args(&ctx, doc_get(groups->vals[i], "default_args"), "task group default_args");
        if (!build_group(&ctx, d, groups, name, 0)) errors++;
    }

    /* tasks */
    const DocNode *tasks = doc_get(cfg, "tasks");
    const DocNode *dparams = doc_get(cfg, "params");
    for (size_t i = 0; tasks && i < tasks->len; i++) {
        const char *name = tasks->keys[i]->text;
        const DocNode *own = tasks->vals[i];
        if (own->kind != DOC_MAP) {
            LOAD_ERR(&ctx, own, "task '%s': expected a mapping of fields, got %s", name, doc_kind_name(own));
            errors++;
            continue;
        }
        DocNode *eff = doc_clone(own);
        const char *gname = doc_str(doc_get(own, "task_group_name"));
        DagGroup *g = NULL;
        if (gname) {
            g = dag_find_group_by_name(d, gname);
            if (!g) {
                const char *close = NULL;
                if (groups) {
                    const char **c = xmalloc((groups->len + 1) * sizeof *c);
                    for (size_t j = 0; j < groups->len; j++) c[j] = groups->keys[j]->text;
                    close = util_closest(gname, c, groups->len);
                    free(c);
                }
                LOAD_ERR(&ctx, doc_get(own, "task_group_name"), "task '%s': unknown task group '%s'%s%s%s", name,
                         gname, close ? " (did you mean '" : "", close ? close : "", close ? "'?)" : "");
                errors++;
            }
        }
        /* group default_args, innermost first, then the DAG's */
        for (const DagGroup *cur = g; cur;) {
            doc_merge_defaults(eff, doc_get(doc_get(groups, cur->name), "default_args"));
            const DagGroup *parent = NULL;
            for (size_t j = 0; cur->parent_id && j < d->n_groups; j++)
                if (strcmp(d->groups[j]->group_id, cur->parent_id) == 0) parent = d->groups[j];
            cur = parent;
        }
        if (dargs && dargs->kind == DOC_MAP) doc_merge_defaults(eff, dargs);
        DagTask *t = dagload_task(&ctx, name, own, eff, dparams);
        doc_free(eff);
        if (!t) {
            errors++;
            continue;
        }
        t->group_id = g ? xstrdup(g->group_id) : NULL;
        t->task_id = g && g->prefix_group_id ? xasprintf("%s.%s", g->group_id, name) : xstrdup(name);
        if (dag_find_task(d, t->task_id)) {
            LOAD_ERR(&ctx, own, "duplicate task_id '%s'", t->task_id);
            dag_task_free(t);
            errors++;
            continue;
        }
        dag_add_task(d, t);
        errors += add_edges(&ctx, &edges, &n_edges, name, doc_get(own, "dependencies"));
    }
    for (size_t i = 0; groups && i < groups->len; i++)
        errors += add_edges(&ctx, &edges, &n_edges, groups->keys[i]->text, doc_get(groups->vals[i], "dependencies"));
    if (!errors) errors += apply_edges(&ctx, d, edges, n_edges);
    for (size_t i = 0; i < n_edges; i++) {
        free(edges[i].down);
        free(edges[i].up);
    }
    free(edges);

    if (!errors) {
        size_t *order = xmalloc((d->n_tasks + 1) * sizeof *order);
        char *cycle = NULL;
        if (dag_topo_order(d, order, &cycle) != 0) {
            LOAD_ERR(&ctx, tasks, "dependency cycle: %s", cycle);
            errors++;
        }
        free(cycle);
        free(order);
    }
    if (!errors && d->n_tasks == 0) LOAD_WARN(&ctx, cfg, "the DAG has no tasks");

    /* owners, for the UI: distinct task owners in order */
    StrBuf owners = {0};
    for (size_t i = 0; i < d->n_tasks; i++) {
        const char *o = d->tasks[i]->owner;
        int seen = 0;
        for (size_t j = 0; j < i; j++) seen |= strcmp(d->tasks[j]->owner, o) == 0;
        if (!seen) sb_printf(&owners, "%s%s", owners.len ? ", " : "", o);
    }
    d->owner = sb_take(&owners);

    if (errors || diag_count_errors(ctx.diags) > errors_before) {
        dag_free(d);
        return NULL;
    }
    return d;
}
