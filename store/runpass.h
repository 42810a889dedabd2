/* runpass — what the scheduler's pass reads of a run's task instances, and nothing more.
 *
 * Why a file of its own: the pass used to read every instance of a run, all 25 columns, on
 * every pass (store_ti_list_run), so a run of 10,000 tasks cost 10,000 rows per finished task.
 * The pass only needs the instances that can move (state none, up_for_retry,
 * up_for_reschedule: the "candidates"), the states of their upstream tasks, and whether the
 * run still has anything unfinished; these queries read just that, through the index on
 * (dag_id, run_id, state) (schema V4). */
#ifndef GUST_STORE_RUNPASS_H
#define GUST_STORE_RUNPASS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "store/ti.h"

/* One instance as the pass sees it. Owns task_id. */
typedef struct TiBrief {
    char id[33];
    char *task_id;
    TiState state;
    int64_t next_attempt_at; /* -1 when unset */
} TiBrief;

void ti_brief_free(TiBrief *list, size_t n);

/* The run's instances in state none, up_for_retry or up_for_reschedule. Caller frees with
 * ti_brief_free. 0 or -1. */
int store_run_candidates(Store *s, const char *dag_id, const char *run_id, TiBrief **out, size_t *n);
/* Every instance of the run (id, task_id, state), sorted by task_id with strcmp (the
 * database's collation may differ: the caller binary-searches it). 0 or -1. */
int store_run_states(Store *s, const char *dag_id, const char *run_id, TiBrief **out, size_t *n);
/* Instances of the run whose state is in `states` (mask of 1 << TiState). 0 or -1. */
int store_run_in_states(Store *s, const char *dag_id, const char *run_id, unsigned states, TiBrief **out,
                        size_t *n);
/* 1 if some instance of the run is not finished, 0 if all are, -1 on error. Stops at the
 * first one it finds: O(1) for a run in progress. */
int store_run_has_unfinished(Store *s, const char *dag_id, const char *run_id);
/* Binary search of a store_run_states list; NULL if absent. */
const TiBrief *ti_brief_find(const TiBrief *list, size_t n, const char *task_id);

/* Batches. Each statement names up to STORE_BATCH_MAX instances in an IN list padded to a
 * power of two (the last id repeated), so a handful of SQL texts covers every batch size and
 * each is prepared once per connection. They join the caller's transaction (store_tx). */
#define STORE_BATCH_MAX 256

/* none -> scheduled, for the instances of ids that are still none: each with its journal row,
 * and one change notification for the batch. moved[i] says which moved. The count moved,
 * or -1. */
int store_ti_schedule_many(Store *s, const char *const *ids, size_t n, int *moved);
/* scheduled -> queued (a new try), for those still scheduled: each with its journal row and
 * its outbox row (priority = its priority_weight). moved[i] says which moved. The count
 * moved, or -1. */
int store_ti_enqueue_many(Store *s, const char *const *ids, size_t n, int *moved);

/* The broker confirmed these (ti_id, try_number) pairs: forget their outbox rows, in one
 * transaction (or the caller's). 0 or -1. */
int store_outbox_done_many(Store *s, const OutboxItem *items, size_t n);

#endif
