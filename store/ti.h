/* ti — task instances in the store: their state machine, their creation with a run, the
 * claim, heartbeats, and the outbox that carries them to the broker.
 *
 * Every change of state is a conditional UPDATE that names the states the row may leave
 * (and, where it matters, the try it must be on), so a racing scheduler, worker or API
 * call that is one step behind changes nothing and is told so. The allowed moves are
 * Airflow's; ti_transition_allowed() is the table and store/ti.c applies it everywhere. */
#ifndef GUST_STORE_TI_H
#define GUST_STORE_TI_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef enum TiState {
    TI_NONE,              /* stored as NULL, as Airflow does */
    TI_SCHEDULED,
    TI_QUEUED,
    TI_RUNNING,
    TI_SUCCESS,
    TI_FAILED,
    TI_UP_FOR_RETRY,
    TI_UP_FOR_RESCHEDULE,
    TI_SKIPPED,
    TI_UPSTREAM_FAILED,
    TI_REMOVED,
    TI_RESTARTING,
    TI__COUNT
} TiState;

const char *ti_state_name(TiState s);  /* "none", "scheduled", ... */
int ti_state_parse(const char *name);  /* -1 if unknown; NULL and "none" are TI_NONE */
int ti_state_is_finished(TiState s);   /* success, failed, skipped, upstream_failed, removed */
/* The state machine: 1 if a task instance may go from `from` to `to`. */
int ti_transition_allowed(TiState from, TiState to);

typedef struct TaskInstance {
    char id[33];
    char *dag_id;
    char *run_id;
    char *task_id;
    int map_index;
    TiState state;
    int try_number;
    int max_tries;
    int64_t start_date, end_date, duration;   /* -1 when unset */
    int64_t queued_at, scheduled_at, next_attempt_at, last_heartbeat_at;
    char *hostname;
    char *worker_id;
    int pid;
    char *queue;
    char *pool;
    int pool_slots;
    int priority_weight;
    char *operator_name;
    char *dag_version_id;
    int64_t first_poke_at;     /* reschedule-mode sensors: when the current try first ran; -1 */
} TaskInstance;

void ti_clear(TaskInstance *t);                  /* frees the strings inside */
/* Read columns 0-24 of a row that selects the store's task-instance columns in their order
 * (STORE_TI_COLUMNS below: id, dag_id, run_id, task_id, map_index, state, ..., first_poke_at),
 * for queries elsewhere that select more after them. */
void store_ti_read_row(StoreRows *r, TaskInstance *t);
/* The columns store_ti_read_row reads, in its order. */
#define STORE_TI_COLUMNS                                                                                      \
    "id, dag_id, run_id, task_id, map_index, state, try_number, max_tries, start_date, end_date, duration, " \
    "queued_at, scheduled_at, next_attempt_at, last_heartbeat_at, hostname, worker_id, pid, queue, pool, "   \
    "pool_slots, priority_weight, operator, dag_version_id, first_poke_at"
void ti_list_free(TaskInstance *list, size_t n);

/* What a new instance is made of (from the DAG's task definition). */
typedef struct TiSpec {
    const char *task_id;
    int max_tries;          /* the task's retries */
    const char *queue;
    const char *pool;
    int pool_slots;
    int priority_weight;    /* effective weight (weight_rule applied) */
    const char *operator_name;
} TiSpec;

/* Insert one instance per spec for a run, state none. Use inside store_tx (store/runs.c
 * does, together with the run). */
int store_ti_insert(Store *s, const char *dag_id, const char *run_id, const char *dag_version_id,
                    const TiSpec *specs, size_t n);

int store_ti_get(Store *s, const char *id, TaskInstance *out);          /* 1 found, 0 missing, -1 error */
int store_ti_get_by_key(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                        TaskInstance *out);
/* A run's instances, by task_id. Caller frees with ti_list_free. */
int store_ti_list_run(Store *s, const char *dag_id, const char *run_id, TaskInstance **out, size_t *n);

/* Move one instance to `to` if the state machine allows it from the state it is in now
 * and (try_number >= 0) it is still on that try. Sets the columns that go with the new
 * state: scheduled_at, queued_at, end_date and duration for finished states,
 * next_attempt_at (pass -1 to clear it) for up_for_retry / up_for_reschedule, and
 * clears the worker fields when it leaves running. Returns 1 moved, 0 refused (s->err
 * says why: "task instance X is running; it cannot become scheduled"), -1 error. */
int store_ti_set_state(Store *s, const char *id, int try_number, TiState to, int64_t next_attempt_at);

/* scheduled → queued in one transaction with its outbox row; increments try_number
 * (a try begins when it is queued, as in Airflow 2.10+). 1 queued, 0 refused, -1 error. */
int store_ti_enqueue(Store *s, const char *id, int priority);

/* The claim (invariant 2): queued → running only on this try; records who runs it.
 * 1 won, 0 lost (another worker has it, or it was cleared), -1 error. */
int store_ti_claim(Store *s, const char *id, int try_number, const char *hostname, const char *worker_id, int pid);

/* Hand a queued try back without running it (a rate limit said "not yet"): queued →
 * scheduled, due at next_attempt_at, try_number back one so the try is not consumed.
 * 1 deferred, 0 refused, -1 error. */
int store_ti_defer(Store *s, const char *id, int try_number, int64_t next_attempt_at);

/* A running try says it is alive. 1 ok, 0 the try is no longer running here. */
int store_ti_heartbeat(Store *s, const char *id, int try_number);

/* running → a final state for this try (success, failed, skipped, up_for_retry,
 * up_for_reschedule), recording the try in task_instance_history (except a reschedule,
 * which keeps the try: try_number goes back one so that queueing it again resumes the same
 * try, and first_poke_at stays), in one transaction
 * that also notifies the scheduler. A try that ends while its instance is restarting
 * (cleared while it ran) leaves it up_for_retry, due at once, whatever `to` was. 1 done, 0 refused (the try is not running: it was
 * cleared or already finished), -1 error. */
int store_ti_finish(Store *s, const char *id, int try_number, TiState to, int64_t next_attempt_at);

/* Scheduled instances of running runs that are due (not deferred past now), highest
 * priority first, oldest first (at most limit). */
int store_ti_list_scheduled(Store *s, int limit, TaskInstance **out, size_t *n);
/* Queued + running instances, of one DAG (dag_id) or of all (NULL). */
int store_ti_count_active(Store *s, const char *dag_id, int64_t *count);
/* Queued or running instances of one task across all its DAG's runs (max_active_tis_per_dag). */
int store_ti_count_active_task(Store *s, const char *dag_id, const char *task_id, int64_t *count);
/* Instances queued before `before` and still unclaimed: put them back in the outbox (and
 * stamp queued_at again so the next sweep waits another timeout). Returns how many. */
int store_ti_requeue_stale(Store *s, int64_t before);
/* Running (or restarting) instances whose last heartbeat is older than `before`. */
int store_ti_list_zombies(Store *s, int64_t before, TaskInstance **out, size_t *n);
/* The earliest next_attempt_at among up_for_retry / up_for_reschedule instances, or -1. */
int64_t store_ti_next_attempt(Store *s);

/* ---- outbox: queued instances on their way to the broker (invariant 3) -------------- */

typedef struct OutboxItem {
    char ti_id[33];
    int try_number;
    char *queue;
    int priority;
} OutboxItem;

/* Lease up to max rows not leased by another publisher (SKIP LOCKED on PostgreSQL), for
 * lease_us. Caller frees with outbox_free. */
int store_outbox_take(Store *s, int max, int64_t lease_us, OutboxItem **out, size_t *n);
/* The broker confirmed: forget the row. */
int store_outbox_done(Store *s, const char *ti_id, int try_number);
void outbox_free(OutboxItem *items, size_t n);

/* ---- clearing ------------------------------------------------------------------------ */

/* Airflow's clear of one task instance (clear_task_instances), in one transaction (or the
 * caller's), guarded on the state and try it was read in: a running instance becomes
 * restarting (its try is to be ended and retried); any other becomes none again, with
 * max_tries = try_number + retries so that it gets its retries back (retries < 0, when the
 * task is no longer in the DAG: max(max_tries, try_number)), its dates, next_attempt_at
 * and worker fields cleared and its outbox rows dropped. Notifies the scheduler.
 * *became (may be NULL) gets the new state. 1 cleared, 0 refused (it is none or
 * restarting already, or it moved meanwhile: s->err says so), -1 error. */
int store_ti_clear_for_rerun(Store *s, const char *id, TiState from, int try_number, int retries, TiState *became);

#endif
