/* routes_tideps — why a task instance is not running, and its extra links, on the REST API:
 * .../dependencies (TaskDependencyCollectionResponse) and .../links.
 *
 * Dependencies are worked out as the scheduler decides, from the same pieces: the instance's
 * and its run's states, the DAG's pause, retry and reschedule times, the task's trigger rule
 * over its direct upstreams' states (scheduler/rules.h, the scheduler's own evaluation), pool
 * slots and the DAG's and installation's limits on running instances. Each reason carries
 * the name of the Airflow dependency that checks the same thing, so clients that show them
 * read the same (gust's own, such as a rate limit, have names of their own). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/ti_common.h"
#include "api/ti_json.h"
#include "core/config.h"
#include "core/dag.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "scheduler/rules.h"
#include "store/dags.h"
#include "store/kv.h"
#include "store/ti.h"
#include "store/tiquery.h"

/* ---- dependencies: why is it not running? ------------------------------------------------------- */

/* qsort order of a run's instances: task id (bytewise), then map index. */
static int cmp_ti_task(const void *a, const void *b)
{
    const TaskInstance *x = a, *y = b;
    int c = strcmp(x->task_id, y->task_id);
    return c ? c : (x->map_index > y->map_index) - (x->map_index < y->map_index);
}

static void dep_add(cJSON *arr, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void dep_add(cJSON *arr, const char *name, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "reason", msg);
    cJSON_AddItemToArray(arr, o);
}

static void deps_common(ApiReq *r, ApiResp *out, int map_pi)
{
    if (!tic_params_ok(r, out)) return;
    Store *s = tic_store(r, out);
    if (!s) return;
    TiqRow w;
    if (!tic_load_ti(r, out, s, map_pi, &w)) return;
    const TaskInstance *ti = &w.ti;
    cJSON *doc = cJSON_CreateObject();
    cJSON *deps = cJSON_AddArrayToObject(doc, "dependencies");
    int64_t now = util_now_us();
    char a[48], b[48];
    int waiting = ti->state == TI_NONE || ti->state == TI_SCHEDULED || ti->state == TI_UP_FOR_RETRY ||
                  ti->state == TI_UP_FOR_RESCHEDULE;
    if (!waiting) {
        dep_add(deps, "Task Instance State", "Task is in the '%s' state.", ti_state_name(ti->state));
        goto answer;
    }
    if (!w.run_state || strcmp(w.run_state, "running") != 0)
        dep_add(deps, "Dagrun Running",
                "Task instance's dagrun was not in the 'running' state but in the state '%s'.",
                w.run_state ? w.run_state : "unknown");
    StoreDag sd;
    int known = store_dag_get(s, ti->dag_id, &sd);
    if (known < 0) goto store_err;
    if (known == 1) {
        if (sd.is_paused) dep_add(deps, "Dag Not Paused", "Task's DAG '%s' is paused.", ti->dag_id);
        store_dag_clear(&sd);
    }
    if ((ti->state == TI_UP_FOR_RETRY || ti->state == TI_UP_FOR_RESCHEDULE || ti->state == TI_SCHEDULED) &&
        ti->next_attempt_at > now) {
        time_format_iso(now, 1, a, sizeof a);
        time_format_iso(ti->next_attempt_at, 1, b, sizeof b);
        if (ti->state == TI_UP_FOR_RESCHEDULE)
            dep_add(deps, "Ready To Reschedule",
                    "Task is not ready for reschedule yet but will be rescheduled automatically. Current date is %s "
                    "and task will be rescheduled at %s.",
                    a, b);
        else if (ti->state == TI_UP_FOR_RETRY)
            dep_add(deps, "Not In Retry Period",
                    "Task is not ready for retry yet but will be retried automatically. Current date is %s and task "
                    "will be retried at %s.",
                    a, b);
        else
            dep_add(deps, "Rate Limit", "Task was deferred by a rate limit; it may be queued again at %s.", b);
    }
    const Dag *d = tij_dag(s, ti->dag_version_id);
    const DagTask *task = d ? dag_find_task(d, ti->task_id) : NULL;
    if (!task) {
        dep_add(deps, "Task In DAG", "Task '%s' is not in the DAG version its run executes.", ti->task_id);
    } else if (ti->state == TI_NONE && task->n_upstream) {
        /* the trigger rule over the direct upstreams' states, as the scheduler evaluates it;
         * the run's instances are sorted here (bytewise) so that each upstream is a binary
         * search away, whatever the database's collation */
        TaskInstance *run_tis = NULL;
        size_t nr = 0;
        if (store_ti_list_run(s, ti->dag_id, ti->run_id, &run_tis, &nr) != 0) goto store_err;
        qsort(run_tis, nr, sizeof *run_tis, cmp_ti_task);
        TiState *st = xcalloc(nr + 1, sizeof *st); /* upstream ids are unique: each instance counts once */
        size_t ns = 0;
        StrBuf waiting_on = {0}, states = {0};
        for (size_t u = 0; u < task->n_upstream; u++) {
            size_t lo = 0, hi = nr;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(run_tis[mid].task_id, task->upstream[u]) < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            for (size_t i = lo; i < nr && strcmp(run_tis[i].task_id, task->upstream[u]) == 0; i++) {
                st[ns++] = run_tis[i].state;
                if (states.len < 1000)
                    sb_printf(&states, "%s%s=%s", states.len ? ", " : "", run_tis[i].task_id,
                              run_tis[i].state == TI_NONE ? "none" : ti_state_name(run_tis[i].state));
                if (!ti_state_is_finished(run_tis[i].state) && waiting_on.len < 1000)
                    sb_printf(&waiting_on, "%s'%s'", waiting_on.len ? ", " : "", run_tis[i].task_id);
            }
        }
        UpstreamCounts c;
        rules_count(&c, st, ns);
        const char *why = NULL;
        RuleDecision dec = rules_evaluate(task->trigger_rule, &c, &why);
        if (dec != RULE_RUN) {
            char counts[256];
            rules_format_counts(&c, counts, sizeof counts);
            dep_add(deps, "Trigger Rule",
                    "Task's trigger rule '%s' is not met (%s; upstream_states: %s): %s%s%s", trigger_rule_name(task->trigger_rule),
                    why ? why : rules_decision_name(dec), counts, sb_str(&states),
                    waiting_on.len ? "; waiting for upstream tasks " : "", sb_str(&waiting_on));
        }
        sb_free(&waiting_on);
        sb_free(&states);
        free(st);
        ti_list_free(run_tis, nr);
    }
    if (ti->state == TI_NONE || ti->state == TI_SCHEDULED) {
        /* what the scheduler checks before queueing: pool slots, the DAG's and the
         * installation's limits on running task instances */
        int running = 0, queued = 0, open = 0;
        if (store_pool_usage(s, ti->pool, &running, &queued, &open) != 0)
            dep_add(deps, "Pool Slots Available", "Tasks using non-existent pool '%s' will not be scheduled.",
                    ti->pool);
        else if (open < ti->pool_slots)
            dep_add(deps, "Pool Slots Available",
                    "Not scheduling since there are %d open slots in pool %s and require %d pool slots", open,
                    ti->pool, ti->pool_slots);
        int64_t busy = 0, all = 0;
        if (store_ti_count_active(s, ti->dag_id, &busy) != 0 || store_ti_count_active(s, NULL, &all) != 0)
            goto store_err;
        long long limit = config_get_int(r->ctx->cfg, "core.max_active_tasks_per_dag");
        if (d && d->max_active_tasks > 0) limit = d->max_active_tasks;
        if (busy >= limit)
            dep_add(deps, "Dag Max Active Tasks",
                    "The maximum number of running tasks (%lld) for this task's DAG '%s' has been reached.", limit,
                    ti->dag_id);
        long long par = config_get_int(r->ctx->cfg, "core.parallelism");
        if (all >= par)
            dep_add(deps, "Parallelism",
                    "core.parallelism (%lld) is reached: %lld task instances are queued or running.", par,
                    (long long)all);
    }
answer:
    api_json(out, 200, doc);
    tic_row_clear(&w);
    return;
store_err:
    cJSON_Delete(doc);
    api_store_error(out, s);
    tic_row_clear(&w);
}

static void h_deps(ApiReq *r, ApiResp *out) { deps_common(r, out, -2); }
static void h_deps_mapped(ApiReq *r, ApiResp *out) { deps_common(r, out, 3); }

/* ---- links ------------------------------------------------------------------------------------ */

/* GET .../{task_id}/links: gust's operators have no extra links. */
static void h_links(ApiReq *r, ApiResp *out)
{
    if (!tic_params_ok(r, out)) return;
    Store *s = tic_store(r, out);
    if (!s) return;
    TiqRow w;
    if (!tic_load_ti(r, out, s, -2, &w)) return;
    tic_row_clear(&w);
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "extra_links", cJSON_CreateObject());
    cJSON_AddNumberToObject(doc, "total_entries", 0);
    api_json(out, 200, doc);
}

/* ---- the table --------------------------------------------------------------------------------- */

const ApiRoute api_routes_tideps[] = {
    {"GET", TIC_BASE "/{task_id}/dependencies", API_ROLE_VIEWER, h_deps},
    {"GET", TIC_BASE "/{task_id}/links", API_ROLE_VIEWER, h_links},
    {"GET", TIC_BASE "/{task_id}/{map_index}/dependencies", API_ROLE_VIEWER, h_deps_mapped},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
