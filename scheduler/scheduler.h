/* scheduler — turns DAGs into runs, runs into task instances, and task instances into
 * messages for the workers (DESIGN.md, "The path of one task instance").
 *
 * One pass (sched_step) does, in order: create the runs that are due; examine the active
 * runs it can lock (FOR UPDATE SKIP LOCKED, so several schedulers share the work), moving
 * each task instance along its trigger rule and each run to its final state; queue what is
 * scheduled, within pools and concurrency limits, writing outbox rows; publish the outbox
 * to the broker; and sweep for instances queued too long or running without a heartbeat.
 * The loop (sched_run) waits between passes on the store's change notifications and on the
 * earliest due time, never on a fixed poll, so a task starts milliseconds after its
 * upstream finished. */
#ifndef GUST_SCHEDULER_H
#define GUST_SCHEDULER_H

#include <stdint.h>

#include "broker-adapters/broker.h"
#include "store/dagcache.h"
#include "store/store.h"

typedef struct SchedOptions {
    const char *dags_folder;      /* NULL: no DAG processor (dags test, workers-only) */
    const char *default_timezone; /* for DAG files that set none */
    int paused_at_creation;       /* core.dags_are_paused_at_creation */
    int parallelism;              /* core.parallelism: queued + running across all DAGs */
    int max_active_runs;          /* core.max_active_runs_per_dag, for DAGs that set none */
    int max_active_tasks;         /* core.max_active_tasks_per_dag */
    int64_t idle_us;              /* longest wait between passes */
    int64_t rescan_us;            /* how often the DAG folder is rescanned */
    int64_t queued_timeout_us;    /* queued longer than this without a claim: publish again */
    int64_t zombie_timeout_us;    /* running without a heartbeat this long: failed (and retried) */
    int create_runs;              /* 0: do not create scheduled runs (dags test) */
    const char *cluster_url;      /* Redis for worker liveness (zombies); NULL/"": in process */
    int64_t heartbeat_us;         /* scheduler.heartbeat: how often the job row is refreshed */
    int64_t events_retention_us;  /* api.events_retention: state_event rows kept this long */
} SchedOptions;

void sched_default_options(SchedOptions *o);

typedef struct Scheduler Scheduler;

/* The scheduler uses the store and broker it is given (it does not own them). */
Scheduler *sched_new(Store *store, Broker *broker, DagCache *cache, const SchedOptions *opt);
void sched_free(Scheduler *s);

/* DAG processor: parse files that changed since the last scan, sync DAGs and import errors
 * to the store. Returns the number of DAGs synced, -1 on a store error. */
int sched_process_dags(Scheduler *s, int force);
/* One pass. *next_us (may be NULL) gets the earliest time something will be due. Returns
 * 0, or -1 on a store error (the loop logs it and carries on after a pause). */
int sched_step(Scheduler *s, int64_t *next_us);
/* Publish what is in the outbox. Returns how many were published. */
int sched_publish(Scheduler *s);
/* Passes until *stop becomes non-zero. */
void sched_run(Scheduler *s, volatile int *stop);
const char *sched_error(const Scheduler *s);

/* Materialise one run of a DAG version now (manual / backfill / tests): the run and its task
 * instances, with priority weights from the DAG. 1 created, 0 exists, -1 error. */
int sched_create_run(Store *store, const Dag *d, const char *version_id, const char *run_type,
                     const char *run_id, int64_t logical_date, int64_t interval_start, int64_t interval_end,
                     const char *conf, const char *triggered_by, char *run_id_out, size_t run_id_len);

/* Datasets (scheduler/assets.c). Record which URIs a DAG's schedule waits for (the DAG
 * processor calls it for every DAG it syncs); create the runs whose datasets were updated
 * (each pass). */
int sched_asset_refs(Store *store, const Dag *d);
int sched_create_asset_runs(Store *store, DagCache *cache);

#endif
