/* scheduler — the scheduling pass and loop (see scheduler.h). The DAG processor is in
 * processor.c. */
#include "scheduler/scheduler.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/schedule.h"
#include "core/util.h"
#include "scheduler/rules.h"
#include "store/dags.h"
#include "cluster/cluster.h"
#include "store/jobs.h"
#include "store/journal.h"
#include "store/kv.h"
#include "store/runpass.h"
#include "store/runs.h"
#include "store/ti.h"

#define NEVER INT64_MAX

struct Scheduler {
    Store *store;            /* not owned */
    Broker *broker;          /* not owned; NULL: leave the outbox for another publisher */
    DagCache *cache;         /* not owned */
    SchedOptions opt;
    int64_t last_scan;       /* when the DAG folder was last scanned */
    int64_t last_sweep;      /* when the queued/zombie sweeps last ran */
    int64_t last_prune;      /* when the state-change journal was last pruned */
    int64_t last_beat;       /* when the job row was last refreshed */
    int64_t started_at;
    char job_id[33];         /* this scheduler's row in the job table */
    char *scan_fingerprint;  /* (path, mtime, size) of every DAG file at the last scan */
    ClusterConn *cluster;    /* worker liveness (Redis, or in process); NULL if unreachable */
    BrokerMsg *unconfirmed;  /* outbox rows we hold the lease of whose publish was not confirmed */
    size_t n_unconfirmed;
    int64_t unconfirmed_until; /* ... published again by the next passes until then (lease end) */
    int64_t unconfirmed_failed_at; /* when publishing them again last failed */
    char missing_pool[128];  /* the last pool warned about as missing, and when */
    int64_t missing_pool_at;
    char err[512];
};

void sched_default_options(SchedOptions *o)
{
    memset(o, 0, sizeof *o);
    o->default_timezone = "UTC";
    o->paused_at_creation = 1;
    o->parallelism = 32;
    o->max_active_runs = 16;
    o->max_active_tasks = 16;
    o->idle_us = 1000000;
    o->rescan_us = 30LL * 1000000;
    o->queued_timeout_us = 600LL * 1000000;
    o->zombie_timeout_us = 300LL * 1000000;
    o->create_runs = 1;
    o->heartbeat_us = 5LL * 1000000;
    o->events_retention_us = 3600LL * 1000000;
}

Scheduler *sched_new(Store *store, Broker *broker, DagCache *cache, const SchedOptions *opt)
{
    Scheduler *s = xcalloc(1, sizeof *s);
    s->store = store;
    s->broker = broker;
    s->cache = cache;
    s->opt = *opt;
    store_new_id(s->job_id);
    s->started_at = util_now_us();
    char err[256];
    s->cluster = cluster_connect(opt->cluster_url ? opt->cluster_url : "", err, sizeof err);
    if (!s->cluster) log_warn("scheduler", "%s: no zombie will be declared until it answers", err);
    return s;
}

void sched_free(Scheduler *s)
{
    if (!s) return;
    if (s->last_beat) (void)store_job_end(s->store, s->job_id, util_now_us());
    free(s->scan_fingerprint);
    free(s->unconfirmed);
    cluster_close(s->cluster);
    free(s);
}

const char *sched_error(const Scheduler *s)
{
    return s->err;
}

/* Defined in processor.c. */
int sched_processor_scan(Scheduler *s, Store *store, const SchedOptions *opt, char **fingerprint, int force,
                         char *err, size_t errlen);

int sched_process_dags(Scheduler *s, int force)
{
    if (!s->opt.dags_folder) return 0;
    s->last_scan = util_now_us();
    return sched_processor_scan(s, s->store, &s->opt, &s->scan_fingerprint, force, s->err, sizeof s->err);
}

/* ---- runs ------------------------------------------------------------------------- */

int sched_create_run(Store *store, const Dag *d, const char *version_id, const char *run_type,
                     const char *run_id, int64_t logical_date, int64_t interval_start, int64_t interval_end,
                     const char *conf, const char *triggered_by, char *run_id_out, size_t run_id_len)
{
    char rid[128];
    if (run_id)
        util_strlcpy(rid, run_id, sizeof rid);
    else
        run_id_make(run_type, logical_date, rid, sizeof rid);
    int *weights = xcalloc(d->n_tasks + 1, sizeof *weights);
    rules_priority_weights(d, weights);
    TiSpec *specs = xcalloc(d->n_tasks + 1, sizeof *specs);
    for (size_t i = 0; i < d->n_tasks; i++) {
        const DagTask *t = d->tasks[i];
        specs[i] = (TiSpec){t->task_id, t->retries, t->queue, t->pool, t->pool_slots, weights[i], t->op->name};
    }
    RunSpec rs = {d->dag_id, rid, run_type, logical_date, interval_start, interval_end, util_now_us(),
                  conf, NULL, triggered_by, version_id, NULL};
    int rc = store_run_create(store, &rs, specs, d->n_tasks, NULL);
    free(specs);
    free(weights);
    if (run_id_out) util_strlcpy(run_id_out, rid, run_id_len);
    return rc;
}

/* Create the scheduled runs that are due, for every DAG whose next run may be due. */
static int create_due_runs(Scheduler *s, int64_t now, int64_t *next)
{
    StoreDag *dags;
    size_t n;
    if (store_dag_due(s->store, now, &dags, &n) != 0) return -1;
    for (size_t i = 0; i < n; i++) {
        char err[256];
        const Dag *d = dagcache_get(s->cache, s->store, dags[i].latest_version_id, err, sizeof err);
        if (!d) {
            log_warn("scheduler", "dag=%s: cannot load its latest version: %s", dags[i].dag_id, err);
            continue;
        }
        ScheduleKind k = d->schedule.kind;
        if (k == SCHEDULE_NONE || k == SCHEDULE_ASSETS) {
            store_dag_set_next_run(s->store, d->dag_id, -1, -1, -1, NEVER);
            continue;
        }
        int max_runs = d->max_active_runs > 0 ? d->max_active_runs : s->opt.max_active_runs;
        ScheduleCtx ctx = {&d->schedule, d->tz, d->start_date_us, d->end_date_us, d->catchup};
        int64_t create_after = NEVER;
        int64_t next_logical = -1, next_start = -1, next_end = -1; /* the API's next_dagrun_* fields */
        for (int made = 0; made < 32; made++) { /* catchup: a few runs per pass, the rest next pass */
            DataInterval di;
            int64_t last = store_run_last_logical(s->store, d->dag_id);
            if (schedule_next_interval(&ctx, last, now, &di) != 0) break; /* no more runs, ever */
            if (di.run_after > now) {
                create_after = di.run_after;
                next_logical = k == SCHEDULE_CRON_TRIGGER ? di.run_after : di.start;
                next_start = k == SCHEDULE_CRON_TRIGGER ? -1 : di.start;
                next_end = k == SCHEDULE_CRON_TRIGGER ? -1 : di.end;
                break;
            }
            int64_t active = 0;
            store_run_count_active(s->store, d->dag_id, &active);
            if (active >= max_runs) {
                create_after = NEVER; /* a finishing run sets it back to now (examine_run) */
                break;
            }
            int64_t logical = k == SCHEDULE_CRON_TRIGGER ? di.run_after : di.start;
            char rid[128];
            int rc = sched_create_run(s->store, d, dags[i].latest_version_id, "scheduled", NULL, logical,
                                      k == SCHEDULE_CRON_TRIGGER ? -1 : di.start, k == SCHEDULE_CRON_TRIGGER ? -1 : di.end,
                                      NULL, "scheduler", rid, sizeof rid);
            if (rc < 0) {
                log_warn("scheduler", "dag=%s: cannot create run: %s", d->dag_id, store_last_error(s->store));
                break;
            }
            if (rc == 1) log_info("scheduler", "dag=%s run=%s: created", d->dag_id, rid);
            if (rc == 0) break; /* another scheduler made it: it will carry on */
        }
        store_dag_set_next_run(s->store, d->dag_id, next_logical, next_start, next_end, create_after);
        if (create_after < *next) *next = create_after;
    }
    store_dag_list_free(dags, n);
    return 0;
}

/* ---- examining runs ----------------------------------------------------------------- */

typedef struct RunPass {
    Scheduler *s;
    int64_t now;
    int64_t next;        /* earliest retry / reschedule due */
    int examined;
} RunPass;

static int is_leaf(const Dag *d, const DagTask *t)
{
    for (size_t i = 0; i < d->n_tasks; i++)
        for (size_t u = 0; u < d->tasks[i]->n_upstream; u++)
            if (strcmp(d->tasks[i]->upstream[u], t->task_id) == 0) return 0;
    return 1;
}

/* Moves an instance the pass read (store/runpass.h); the run's state map, when loaded,
 * follows, so that a decision cascades within the pass (a skip skips what follows). */
static int set_brief(RunPass *rp, const DagRun *run, TiBrief *ti, TiBrief *states, size_t ns, TiState to,
                     const char *why)
{
    int rc = store_ti_set_state(rp->s->store, ti->id, -1, to, -1);
    if (rc < 0) return -1;
    if (rc == 1) {
        log_debug("scheduler", "dag=%s run=%s task=%s: %s -> %s (%s)", run->dag_id, run->run_id, ti->task_id,
                  ti_state_name(ti->state), ti_state_name(to), why ? why : "");
        ti->state = to;
        TiBrief *m = (TiBrief *)ti_brief_find(states, ns, ti->task_id);
        if (m) m->state = to;
    }
    return rc;
}

static int done_ok(TiState st)
{
    return st == TI_SUCCESS || st == TI_SKIPPED;
}

/* depends_on_past (Airflow's PrevDagrunDep, with DagRun.get_previous_dagrun: the run with the
 * latest logical date before this one's): 1 when this task may run, 0 to wait. The first run
 * (no earlier run, or a run without a logical date) passes; a previous run without this task
 * waits, as Airflow does unless ignore_first_depends_on_past; otherwise the task's instance
 * in the previous run must be success or skipped and, with wait_for_downstream, so must the
 * instances of its direct downstream tasks there.
 * Added with the tests of tests/cli/run_dags.sh: depends_on_past was loaded but never checked. */
static int past_depends_met(Scheduler *s, const Dag *d, const DagTask *t, const DagRun *run, const char **why)
{
    if (!t->depends_on_past || run->logical_date < 0) return 1;
    DagRun *runs;
    size_t n;
    if (store_run_list_between(s->store, run->dag_id, -1, run->logical_date - 1, &runs, &n) != 0) return 0;
    int met = 1;
    if (n > 0) {
        const DagRun *prev = &runs[n - 1]; /* ascending by logical date */
        TaskInstance pti;
        int found = store_ti_get_by_key(s->store, prev->dag_id, prev->run_id, t->task_id, -1, &pti);
        if (found != 1) {
            met = 0;
            *why = "depends_on_past: the previous run has not run this task";
        } else {
            if (!done_ok(pti.state)) {
                met = 0;
                *why = "depends_on_past: the task did not succeed in the previous run";
            }
            ti_clear(&pti);
        }
        for (size_t i = 0; met && t->wait_for_downstream && i < d->n_tasks; i++) {
            const DagTask *x = d->tasks[i];
            int is_down = 0;
            for (size_t u = 0; u < x->n_upstream; u++) is_down |= strcmp(x->upstream[u], t->task_id) == 0;
            if (!is_down) continue;
            if (store_ti_get_by_key(s->store, prev->dag_id, prev->run_id, x->task_id, -1, &pti) == 1) {
                if (!done_ok(pti.state)) {
                    met = 0;
                    *why = "wait_for_downstream: a downstream task of the previous run has not succeeded";
                }
                ti_clear(&pti);
            }
        }
    }
    run_list_free(runs, n);
    return met;
}

/* A run whose instances are all finished ends: failed if a leaf failed, else success. A run
 * past dagrun_timeout fails and its unfinished tasks are skipped (Airflow; a running one
 * learns it from its heartbeat and is stopped). */
static int decide_run(RunPass *rp, DagRun *run, const Dag *d)
{
    Scheduler *s = rp->s;
    int unfinished = store_run_has_unfinished(s->store, run->dag_id, run->run_id);
    if (unfinished < 0) return -1;
    int timed_out = d->dagrun_timeout_us > 0 && run->start_date > 0 && rp->now - run->start_date > d->dagrun_timeout_us;
    if (unfinished && !timed_out) return 0;
    int rc = 0, failed = 0;
    TiBrief *b;
    size_t n;
    if (timed_out && unfinished) {
        unsigned open = 0;
        for (int i = 0; i < TI__COUNT; i++)
            if (!ti_state_is_finished((TiState)i)) open |= 1u << i;
        if (store_run_in_states(s->store, run->dag_id, run->run_id, open, &b, &n) != 0) return -1;
        for (size_t i = 0; i < n && rc == 0; i++)
            if (set_brief(rp, run, &b[i], NULL, 0, TI_SKIPPED, "dagrun_timeout") < 0) rc = -1;
        ti_brief_free(b, n);
        if (rc) return rc;
    } else {
        /* is_leaf scans the DAG: ask it only of the few instances that failed */
        if (store_run_in_states(s->store, run->dag_id, run->run_id, (1u << TI_FAILED) | (1u << TI_UPSTREAM_FAILED),
                                &b, &n) != 0)
            return -1;
        for (size_t i = 0; i < n && !failed; i++) {
            const DagTask *t = dag_find_task(d, b[i].task_id);
            failed = t && is_leaf(d, t);
        }
        ti_brief_free(b, n);
    }
    RunState to = (failed || timed_out) ? RUN_FAILED : RUN_SUCCESS;
    int changed;
    if (store_run_set_state_in_tx(s->store, run->dag_id, run->run_id, to, &changed) != 0) return -1;
    if (changed) {
        log_info("scheduler", "dag=%s run=%s: %s%s", run->dag_id, run->run_id, run_state_name(to),
                 timed_out && unfinished ? " (dagrun_timeout)" : "");
        /* a finished run may let the next scheduled one start */
        store_dag_set_next_run(s->store, run->dag_id, -1, -1, -1, rp->now);
    }
    return 0;
}

/* Move one run's task instances along; then decide the run.
 * It reads only what can move (store/runpass.h): the candidates (none, up_for_retry,
 * up_for_reschedule), the run's state map only when a candidate has upstream tasks, and
 * whether anything is unfinished. A pass over a large run in progress thus costs its
 * candidates, not its size: a fan-out of 10,000 instances used to be re-read, 25 columns
 * each, for every task that finished. */
static int examine_run(RunPass *rp, DagRun *run)
{
    Scheduler *s = rp->s;
    char err[256];
    const Dag *d = dagcache_get(s->cache, s->store, run->dag_version_id, err, sizeof err);
    if (!d) {
        log_warn("scheduler", "dag=%s run=%s: %s", run->dag_id, run->run_id, err);
        return 0;
    }
    if (run->state == RUN_QUEUED) {
        int64_t running = 0;
        store_run_count_running(s->store, run->dag_id, &running);
        int max_runs = d->max_active_runs > 0 ? d->max_active_runs : s->opt.max_active_runs;
        if (running >= max_runs) return 0;
        int changed;
        if (store_run_set_state_in_tx(s->store, run->dag_id, run->run_id, RUN_RUNNING, &changed) != 0) return -1;
        run->state = RUN_RUNNING;
        run->start_date = rp->now;
    }
    TiBrief *cand, *states = NULL;
    size_t nc, ns = 0;
    int have_states = 0;
    if (store_run_candidates(s->store, run->dag_id, run->run_id, &cand, &nc) != 0) return -1;
    int rc = 0;
    /* the instances a round decided to run: scheduled together in one statement per 256 at the
     * round's end (scheduled, like none, counts as "not done" for every trigger rule, so the
     * rest of the round decides the same either way) */
    const char **run_ids = xcalloc(nc + 1, sizeof *run_ids);
    size_t *run_idx = xcalloc(nc + 1, sizeof *run_idx);
    int *moved = xcalloc(nc + 1, sizeof *moved);
    /* Decisions cascade (a skip skips what follows): repeat until nothing moves. */
    for (int changed = 1, round = 0; nc && changed && round < 1000 && rc == 0; round++) {
        changed = 0;
        size_t nrun = 0;
        for (size_t i = 0; i < nc && rc == 0; i++) {
            TiBrief *ti = &cand[i];
            const DagTask *t = dag_find_task(d, ti->task_id);
            if (!t) {
                if (!ti_state_is_finished(ti->state))
                    changed |= set_brief(rp, run, ti, states, ns, TI_REMOVED, "not in this DAG version") == 1;
                continue;
            }
            if (ti->state == TI_UP_FOR_RETRY || ti->state == TI_UP_FOR_RESCHEDULE) {
                if (ti->next_attempt_at <= rp->now) {
                    int r = set_brief(rp, run, ti, states, ns, TI_SCHEDULED, "retry due");
                    if (r < 0) rc = -1;
                    changed |= r == 1;
                } else if (ti->next_attempt_at < rp->next) {
                    rp->next = ti->next_attempt_at;
                }
                continue;
            }
            if (ti->state != TI_NONE) continue;
            if (t->n_upstream && !have_states) {
                if (store_run_states(s->store, run->dag_id, run->run_id, &states, &ns) != 0) {
                    rc = -1;
                    break;
                }
                have_states = 1;
            }
            TiState *up = xcalloc(t->n_upstream + 1, sizeof *up);
            for (size_t u = 0; u < t->n_upstream; u++) {
                const TiBrief *b = ti_brief_find(states, ns, t->upstream[u]);
                up[u] = b ? b->state : TI_REMOVED;
            }
            UpstreamCounts c;
            rules_count(&c, up, t->n_upstream);
            free(up);
            const char *why = NULL;
            RuleDecision dec = rules_evaluate(t->trigger_rule, &c, &why);
            /* Airflow evaluates every dependency: the trigger rule may skip or fail the task
             * whatever the past did; running also needs the past */
            if (dec == RULE_RUN && !past_depends_met(s, d, t, run, &why)) {
                log_debug("scheduler", "dag=%s run=%s task=%s: waits (%s)", run->dag_id, run->run_id, ti->task_id,
                          why);
                continue;
            }
            int r = 0;
            if (dec == RULE_RUN) {
                run_idx[nrun] = i;
                run_ids[nrun++] = ti->id;
            } else if (dec == RULE_SKIP) {
                r = set_brief(rp, run, ti, states, ns, TI_SKIPPED, why);
            } else if (dec == RULE_UPSTREAM_FAILED) {
                r = set_brief(rp, run, ti, states, ns, TI_UPSTREAM_FAILED, why);
            }
            if (r < 0) rc = -1;
            changed |= r == 1;
        }
        if (rc == 0 && nrun) {
            int m = store_ti_schedule_many(s->store, run_ids, nrun, moved);
            if (m < 0) rc = -1;
            for (size_t j = 0; m > 0 && j < nrun; j++) {
                if (!moved[j]) continue;
                TiBrief *ti = &cand[run_idx[j]];
                log_debug("scheduler", "dag=%s run=%s task=%s: none -> scheduled", run->dag_id, run->run_id, ti->task_id);
                ti->state = TI_SCHEDULED;
                TiBrief *b = (TiBrief *)ti_brief_find(states, ns, ti->task_id);
                if (b) b->state = TI_SCHEDULED;
            }
            changed |= m > 0;
        }
    }
    free(run_ids);
    free(run_idx);
    free(moved);
    ti_brief_free(cand, nc);
    ti_brief_free(states, ns);
    if (rc == 0 && run->state == RUN_RUNNING) rc = decide_run(rp, run, d);
    rp->examined++;
    return rc;
}

static int examine_runs_tx(Store *store, void *ud)
{
    RunPass *rp = ud;
    DagRun *runs;
    size_t n;
    rp->examined = 0;
    if (store_runs_lock_active(store, 64, &runs, &n) != 0) return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) rc = examine_run(rp, &runs[i]);
    run_list_free(runs, n);
    return rc;
}

/* ---- queueing ---------------------------------------------------------------------- */

typedef struct PoolRoom {
    char name[128];
    int open;
} PoolRoom;

typedef struct DagRoom {
    char dag_id[256];
    int open;
    const Dag *dag;   /* its latest version (the cache keeps it), or NULL */
} DagRoom;

/* Room left for one task of a DAG with max_active_tis_per_dag (Airflow's per-task limit,
 * counted across all the DAG's runs). */
typedef struct TaskRoom {
    const char *dag_id, *task_id; /* borrowed from the pass's instances */
    int open;
} TaskRoom;

typedef struct Enqueue {
    Scheduler *s;
    int queued;
} Enqueue;

/* Queue what is scheduled and has room, in one transaction: one commit for up to 512
 * instances instead of one each. A retried transaction starts over from the reads. */
static int enqueue_tx(Store *store, void *ud)
{
    Enqueue *e = ud;
    Scheduler *s = e->s;
    e->queued = 0;
    /* parallelism first: a saturated scheduler lists nothing (a fan-out of 10,000 keeps ~9,000
     * instances scheduled; listing and sorting them every pass cost PostgreSQL 5 ms a pass) */
    int64_t active = 0;
    if (store_ti_count_active(store, NULL, &active) != 0) return -1;
    int room = s->opt.parallelism - (int)active;
    if (room <= 0) return 0;
    /* the room, and some more for instances a full pool or DAG limit passes over, as
     * Airflow's scheduler asks for at most the executor's free slots */
    int want = room + 64 < 512 ? room + 64 : 512;
    /* PostgreSQL: the list must come off the partial index ti_scheduled in its order. A run
     * of thousands of instances created moments ago has no statistics yet, and the planner,
     * expecting a few scheduled rows, picks another index and sorts them all: 1.7 ms a pass
     * instead of 0.2 ms for a 10,000-task fan-out. Sorting is never what this transaction
     * wants. */
    if (!store_is_sqlite(store) && store_x(store, "SET LOCAL enable_sort = off", NULL, 0, NULL) != 0) return -1;
    TaskInstance *tis;
    size_t n;
    if (store_ti_list_scheduled(store, want, &tis, &n) != 0) return -1;
    if (n == 0) {
        free(tis);
        return 0;
    }
    PoolRoom *pools = xcalloc(n, sizeof *pools);
    DagRoom *dags = xcalloc(n, sizeof *dags);
    TaskRoom *tasks = xcalloc(n, sizeof *tasks);
    const char **ids = xcalloc(n, sizeof *ids);
    size_t np = 0, nd = 0, nt = 0, nids = 0;
    for (size_t i = 0; i < n && room > 0; i++) {
        TaskInstance *ti = &tis[i];
        size_t p = 0;
        while (p < np && strcmp(pools[p].name, ti->pool) != 0) p++;
        if (p == np) {
            util_strlcpy(pools[p].name, ti->pool, sizeof pools[p].name);
            int running = 0, q = 0, open = 0;
            if (store_pool_usage(s->store, ti->pool, &running, &q, &open) != 0) {
                open = 0;
                /* Airflow's scheduler warns too ("Tasks using non-existent pool ... will not be
                 * scheduled"); once a minute per pool, or the loop would flood the log */
                int64_t now = util_now_us();
                if (strcmp(s->missing_pool, ti->pool) != 0 || now - s->missing_pool_at > 60LL * 1000000) {
                    log_warn("scheduler", "dag=%s task=%s: pool '%s' does not exist (gust pools set %s SLOTS): "
                             "its tasks are not scheduled", ti->dag_id, ti->task_id, ti->pool, ti->pool);
                    util_strlcpy(s->missing_pool, ti->pool, sizeof s->missing_pool);
                    s->missing_pool_at = now;
                }
            }
            pools[p].open = open;
            np++;
        }
        size_t g = 0;
        while (g < nd && strcmp(dags[g].dag_id, ti->dag_id) != 0) g++;
        if (g == nd) {
            util_strlcpy(dags[g].dag_id, ti->dag_id, sizeof dags[g].dag_id);
            StoreDag sd;
            int limit = s->opt.max_active_tasks;
            if (store_dag_get(s->store, ti->dag_id, &sd) == 1) {
                /* Fix: the DAG's own max_active_tasks (read from its latest version, as
                 * Airflow's scheduler does) wins over core.max_active_tasks_per_dag; it used
                 * to be ignored. */
                char err[256];
                const Dag *d = sd.latest_version_id
                                   ? dagcache_get(s->cache, s->store, sd.latest_version_id, err, sizeof err)
                                   : NULL;
                if (d && d->max_active_tasks > 0) limit = d->max_active_tasks;
                dags[g].dag = d;
                if (sd.is_paused) limit = 0; /* a paused DAG's scheduled tasks wait */
                store_dag_clear(&sd);
            }
            int64_t busy = 0;
            store_ti_count_active(s->store, ti->dag_id, &busy);
            dags[g].open = limit - (int)busy;
            nd++;
        }
        if (pools[p].open < ti->pool_slots || dags[g].open <= 0) continue;
        TaskRoom *tr = NULL;
        const DagTask *task = dags[g].dag ? dag_find_task(dags[g].dag, ti->task_id) : NULL;
        if (task && task->max_active_tis_per_dag > 0) {
            size_t k = 0;
            while (k < nt && (strcmp(tasks[k].task_id, ti->task_id) != 0 || strcmp(tasks[k].dag_id, ti->dag_id) != 0))
                k++;
            if (k == nt) {
                int64_t busy = 0;
                store_ti_count_active_task(s->store, ti->dag_id, ti->task_id, &busy);
                tasks[k] = (TaskRoom){ti->dag_id, ti->task_id, task->max_active_tis_per_dag - (int)busy};
                nt++;
            }
            tr = &tasks[k];
            if (tr->open <= 0) continue;
        }
        /* counted as queued now; one that another scheduler queued first only leaves room
         * unused until the next pass */
        ids[nids++] = ti->id;
        pools[p].open -= ti->pool_slots;
        if (tr) tr->open--;
        dags[g].open--;
        room--;
    }
    int *moved = xcalloc(nids + 1, sizeof *moved);
    int queued = store_ti_enqueue_many(store, ids, nids, moved);
    free(moved);
    free(ids);
    free(pools);
    free(dags);
    free(tasks);
    ti_list_free(tis, n);
    if (queued < 0) return -1;
    e->queued = queued;
    return 0;
}

static int enqueue_scheduled(Scheduler *s)
{
    Enqueue e = {s, 0};
    if (store_tx(s->store, enqueue_tx, &e) != 0) return -1;
    return e.queued;
}

#define OUTBOX_LEASE_US (30LL * 1000000)

/* The broker confirmed these: their outbox rows go, in one transaction. A failure here leaves
 * the rows to be published again when their lease ends: a duplicate message is harmless. */
static void forget_published(Scheduler *s, const OutboxItem *items, size_t n)
{
    if (n && store_outbox_done_many(s->store, items, n) != 0)
        log_warn("publisher", "cannot delete %zu confirmed outbox row(s): %s (they will be published again)", n,
                 store_last_error(s->store));
}

/* Publish again what the broker did not confirm, while we still hold those rows' lease.
 * Fix: they used to wait for the lease to end (30 s), so after a broker restart every task
 * queued during the outage started up to 30 s late although the broker was back within a
 * second. Returns how many were confirmed now; *left: how many still are not. */
static int publish_unconfirmed(Scheduler *s, size_t *left)
{
    *left = 0;
    if (!s->n_unconfirmed) return 0;
    if (util_now_us() >= s->unconfirmed_until) { /* the lease ends: the outbox has them again */
        s->n_unconfirmed = 0;
        return 0;
    }
    /* a broker that is down makes each attempt wait publish_timeout: one attempt a second at
     * most, not one per publish call of a pass */
    if (util_now_us() - s->unconfirmed_failed_at < 1000000) {
        *left = s->n_unconfirmed;
        return 0;
    }
    int *confirmed = xcalloc(s->n_unconfirmed, sizeof *confirmed);
    if (broker_publish_batch(s->broker, s->unconfirmed, s->n_unconfirmed, confirmed) != 0)
        log_warn("publisher", "%s (published again at the next pass)", broker_error(s->broker));
    int published = 0;
    size_t keep = 0;
    OutboxItem *done = xcalloc(s->n_unconfirmed, sizeof *done);
    for (size_t i = 0; i < s->n_unconfirmed; i++) {
        if (confirmed[i]) {
            util_strlcpy(done[published].ti_id, s->unconfirmed[i].ti_id, sizeof done[published].ti_id);
            done[published++].try_number = s->unconfirmed[i].try_number;
        } else {
            s->unconfirmed[keep++] = s->unconfirmed[i];
        }
    }
    forget_published(s, done, (size_t)published);
    free(done);
    free(confirmed);
    s->n_unconfirmed = keep;
    if (keep) s->unconfirmed_failed_at = util_now_us();
    *left = keep;
    return published;
}

int sched_publish(Scheduler *s)
{
    if (!s->broker) return 0;
    size_t left;
    int published = publish_unconfirmed(s, &left);
    if (left) return published; /* the broker still does not confirm: take no more for now */
    enum { BATCH = 256 };
    for (;;) {
        OutboxItem *items;
        size_t n;
        int64_t taken = util_now_us();
        if (store_outbox_take(s->store, BATCH, OUTBOX_LEASE_US, &items, &n) != 0) return -1;
        if (n == 0) {
            free(items);
            break;
        }
        /* one batch, then its confirms: the broker's round trip is paid once per batch */
        BrokerMsg *ms = xcalloc(n, sizeof *ms);
        int *confirmed = xcalloc(n, sizeof *confirmed);
        for (size_t i = 0; i < n; i++) {
            util_strlcpy(ms[i].ti_id, items[i].ti_id, sizeof ms[i].ti_id);
            ms[i].try_number = items[i].try_number;
            util_strlcpy(ms[i].queue, items[i].queue, sizeof ms[i].queue);
            ms[i].priority = items[i].priority;
        }
        if (broker_publish_batch(s->broker, ms, n, confirmed) != 0)
            log_warn("publisher", "%s (unconfirmed messages are published again)", broker_error(s->broker));
        size_t ok = 0;
        for (size_t i = 0; i < n; i++) {
            if (!confirmed[i]) {
                /* kept for the next passes while the lease holds (publish_unconfirmed); a
                 * duplicate message is harmless: the claim is conditional */
                if (!s->n_unconfirmed) s->unconfirmed_until = taken + OUTBOX_LEASE_US - 5LL * 1000000;
                s->unconfirmed = xrealloc(s->unconfirmed, (s->n_unconfirmed + 1) * sizeof *s->unconfirmed);
                s->unconfirmed[s->n_unconfirmed++] = ms[i];
                continue;
            }
            /* only a confirmed message lets its outbox row go (invariant 3) */
            if (ok != i) { /* confirmed ones to the front; a swap keeps every queue string owned once */
                OutboxItem tmp = items[ok];
                items[ok] = items[i];
                items[i] = tmp;
            }
            ok++;
        }
        forget_published(s, items, ok);
        published += (int)ok;
        free(ms);
        free(confirmed);
        outbox_free(items, n);
        if (ok < n || n < BATCH) break;
    }
    return published;
}

/* ---- sweeps ------------------------------------------------------------------------- */

/* Is this try alive on its worker? 1 yes, 0 no, -1 cannot tell. The worker's key must exist
 * and list the instance among its running ids.
 * Fix: the key alone said "alive" for every try of a live worker, so a try the worker no
 * longer runs (its claim committed but the reply was lost, so it never started; or its end
 * could not be written) stayed 'running' as long as that worker lived. A try is listed from
 * the worker's first beat after the claim (every 2 s), long before its store heartbeat can
 * be zombie_timeout old. */
static int try_alive(ClusterConn *c, const char *worker_id, const char *ti_id)
{
    WorkerInfo w;
    memset(&w, 0, sizeof w);
    int found = cluster_worker_get(c, worker_id, &w);
    if (found <= 0) return found;
    int listed = 0;
    size_t n = strlen(ti_id);
    for (const char *p = w.running ? w.running : ""; *p && !listed;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        listed = len == n && strncmp(p, ti_id, n) == 0;
        p += len + (end ? 1 : 0);
    }
    worker_info_clear(&w);
    return listed;
}

/* The journal of state changes (store/journal.h) grows with every transition; the API's
 * event streams only need its recent past. Once a minute is plenty: the rows are small, and
 * the prune finds its cut by primary key, so it costs a few lookups when there is nothing
 * to delete. Several schedulers may prune at once: deleting the same rows twice is harmless. */
static void prune_journal(Scheduler *s, int64_t now)
{
    if (now - s->last_prune < 60LL * 1000000) return;
    s->last_prune = now;
    int64_t n = store_journal_prune(s->store, now - s->opt.events_retention_us);
    if (n < 0) log_warn("scheduler", "cannot prune the state-change journal: %s", store_last_error(s->store));
    (void)store_job_prune(s->store, now - 86400LL * 1000000);
}

/* The job row says this scheduler is alive (monitor/health reads it). Rows of schedulers
 * silent for a day are forgotten with the journal's once-a-minute prune. */
static void beat(Scheduler *s, int64_t now)
{
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    if (store_job_beat(s->store, s->job_id, "SchedulerJob", host, (int)getpid(), s->started_at, now) != 0)
        log_warn("scheduler", "cannot record the heartbeat: %s", store_last_error(s->store));
}

static void sweep(Scheduler *s, int64_t now)
{
    prune_journal(s, now);
    /* Loading a large DAG version parses its JSON (6 MB for 10,000 tasks) into a tree that is
     * freed at once, and glibc keeps the freed heap: ~45 MB resident for nothing. Giving it
     * back every sweep costs a walk of the free lists. */
    malloc_trim(0);
    int requeued = store_ti_requeue_stale(s->store, now - s->opt.queued_timeout_us);
    if (requeued > 0) log_warn("scheduler", "%d task instance(s) queued too long without a worker: published again",
                               requeued);
    TaskInstance *z;
    size_t n;
    if (store_ti_list_zombies(s->store, now - s->opt.zombie_timeout_us, &z, &n) != 0) return;
    if (n && !s->cluster) {
        char err[256];
        s->cluster = cluster_connect(s->opt.cluster_url ? s->opt.cluster_url : "", err, sizeof err);
    }
    for (size_t i = 0; i < n; i++) {
        /* the worker's key in Redis is the word on liveness: a worker that still beats is only
         * slow to write to the store; and a scheduler that cannot ask declares no zombies */
        /* Fix: an instance running without a worker id (no worker claimed it: marked by hand)
         * used to stop the sweep for every instance after it (and log "worker (null)"); no
         * worker can vouch for it, so the store heartbeat decides, as in Airflow */
        int alive = !z[i].worker_id ? 0 : s->cluster ? try_alive(s->cluster, z[i].worker_id, z[i].id) : -1;
        if (alive != 0) {
            if (alive < 0 && s->cluster)
                log_warn("scheduler", "cannot check worker %s (%s): declaring no zombies", z[i].worker_id,
                         cluster_error(s->cluster));
            if (alive < 0 && !s->cluster) log_warn("scheduler", "no cluster connection: declaring no zombies");
            if (alive < 0) break;
            continue;
        }
        int retry = rules_should_retry(z[i].try_number, z[i].max_tries);
        int64_t at = -1;
        if (retry) {
            const Dag *d = NULL;
            char err[128];
            if (z[i].dag_version_id) d = dagcache_get(s->cache, s->store, z[i].dag_version_id, err, sizeof err);
            const DagTask *t = d ? dag_find_task(d, z[i].task_id) : NULL;
            /* Fix: the jitter hashes Airflow's "dag_id#task_id#logical_date" key, as the worker's
             * retries do (runtry.c), not the task instance's id, so a zombie's backoff is the
             * one Airflow computes for that try. */
            char key[512];
            DagRun run;
            int64_t logical = RULES_NO_DATE;
            if (store_run_get(s->store, z[i].dag_id, z[i].run_id, &run) == 1) {
                if (run.logical_date >= 0) logical = run.logical_date;
                run_clear(&run);
            }
            rules_jitter_key(key, sizeof key, z[i].dag_id, z[i].task_id, logical);
            at = now + (t ? rules_retry_delay_us(t->retry_delay_us, t->retry_exponential_backoff,
                                                  t->max_retry_delay_us, z[i].try_number, key)
                          : 300LL * 1000000);
        }
        int rc = store_ti_finish(s->store, z[i].id, z[i].try_number, retry ? TI_UP_FOR_RETRY : TI_FAILED, at);
        if (rc == 1)
            log_warn("scheduler", "dag=%s run=%s task=%s try=%d: no heartbeat from worker %s: %s", z[i].dag_id,
                     z[i].run_id, z[i].task_id, z[i].try_number, z[i].worker_id ? z[i].worker_id : "?",
                     retry ? "up_for_retry" : "failed");
    }
    ti_list_free(z, n);
}

/* ---- the pass and the loop ------------------------------------------------------------ */

int sched_step(Scheduler *s, int64_t *next_us)
{
    int64_t now = util_now_us();
    int64_t next = now + s->opt.idle_us;
    if (s->opt.dags_folder && now - s->last_scan >= s->opt.rescan_us) sched_process_dags(s, 0);
    if (s->opt.create_runs && create_due_runs(s, now, &next) != 0) goto failed;
    if (s->opt.create_runs && sched_create_asset_runs(s->store, s->cache) < 0) goto failed;
    RunPass rp = {s, now, next, 0};
    /* examine runs until a pass finds nothing more to do, so cascades finish now */
    for (int i = 0; i < 4; i++) {
        if (store_tx(s->store, examine_runs_tx, &rp) != 0) goto failed;
        int q = enqueue_scheduled(s);
        if (q < 0) goto failed;
        if (sched_publish(s) < 0) goto failed;
        if (q == 0) break;
    }
    next = rp.next;
    int64_t retry_at = store_ti_next_attempt(s->store);
    if (retry_at > 0 && retry_at < next) next = retry_at;
    if (now - s->last_beat >= s->opt.heartbeat_us) {
        s->last_beat = now;
        beat(s, now);
    }
    if (now - s->last_sweep >= 5LL * 1000000) {
        s->last_sweep = now;
        sweep(s, now);
    }
    if (next_us) *next_us = next;
    return 0;
failed:
    util_strlcpy(s->err, store_last_error(s->store), sizeof s->err);
    if (next_us) *next_us = now + 1000000;
    return -1;
}

void sched_run(Scheduler *s, volatile int *stop)
{
    /* SIGTERM while PostgreSQL is down: stop now, not after 30 s of reconnect attempts */
    store_set_interrupt(s->store, stop);
    if (store_listen(s->store) != 0)
        log_warn("scheduler", "cannot listen for store changes (%s): falling back to polling",
                 store_last_error(s->store));
    sched_process_dags(s, 1);
    while (!*stop) {
        int64_t next = 0;
        if (sched_step(s, &next) != 0) log_error("scheduler", "pass failed: %s (retrying)", s->err);
        int64_t wait = next - util_now_us();
        if (wait > s->opt.idle_us) wait = s->opt.idle_us;
        if (wait < 0) wait = 0;
        char payload[64];
        /* woken by a change (a task finished, a run was triggered) or by the earliest due time */
        if (wait > 0 && store_wait_change(s->store, (int)(wait / 1000) + 1, payload, sizeof payload) == 1) {
            while (store_wait_change(s->store, 0, payload, sizeof payload) == 1) {} /* coalesce a burst */
        }
    }
}
