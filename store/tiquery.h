/* tiquery — the task-instance reads and small writes the REST API needs beyond store/ti.h:
 * filtered, ordered, paged lists of task instances together with what the API shows of
 * their run and DAG version; their tries (task_instance_history); XCom lists across task
 * instances; notes; XCom create/update/delete; and the two bulk changes a person makes
 * through the API — marking instances (guarded by store_ti_set_state, one transaction) and
 * clearing a run's instances (store_ti_clear_for_rerun, one transaction with the run).
 *
 * Why a module of its own: store/ti.c is the state machine the scheduler and the workers
 * share; these are read paths shaped by the API's filters, and every state change here
 * still goes through ti.c's guarded transitions (so a worker finishing the try it runs and
 * an API call marking it cannot both win, and the state journal records every change).
 *
 * A list is one query for the page plus one COUNT over the same WHERE (both bound, valid on
 * SQLite and PostgreSQL), never a query per row. Text filters are bound parameters; the
 * only text pasted into SQL is the caller's ORDER BY, which must come from a whitelist of
 * column names (api_order_by / the TIQ_COL_* names below).
 *
 * Ownership: result arrays and the strings in them belong to the caller, freed with the
 * matching *_free function (all accept NULL). Filter structs only borrow their strings.
 * Errors: -1 with the message in store_last_error(s). */
#ifndef GUST_STORE_TIQUERY_H
#define GUST_STORE_TIQUERY_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "store/ti.h"
#include "store/xcom.h"

#define TIQ_UNSET INT64_MIN

/* A range on a column: each bound is TIQ_UNSET when not given. */
typedef struct TiqRange {
    int64_t gte, gt, lte, lt;
} TiqRange;

#define TIQ_RANGE_NONE ((TiqRange){TIQ_UNSET, TIQ_UNSET, TIQ_UNSET, TIQ_UNSET})

/* Which task instances. Every member is optional: NULL / 0 / TIQ_RANGE_NONE means no filter.
 * Lists are ORed within themselves and ANDed with the rest. Patterns are SQL LIKE patterns
 * (% and _ are wildcards, \ escapes them) matched anywhere in the value, ASCII
 * case-insensitively, on both engines; "a | b" matches either term (Airflow's *_pattern). */
typedef struct TiqFilter {
    const char *dag_id, *run_id, *task_id;         /* exact */
    int map_index;                                 /* exact, when has_map_index */
    int has_map_index;
    const char *const *ids; size_t n_ids;          /* task instance ids (32 hex) */
    const char *const *dag_ids; size_t n_dag_ids;
    const char *const *run_ids; size_t n_run_ids;
    const char *const *task_ids; size_t n_task_ids;
    const char *const *states; size_t n_states;    /* state names; "none" = no state */
    const char *const *pools; size_t n_pools;
    const char *const *queues; size_t n_queues;
    const char *const *operators; size_t n_operators; /* stored (short) operator names */
    const int64_t *try_numbers; size_t n_try_numbers;
    const int64_t *map_indexes; size_t n_map_indexes;
    const int64_t *version_numbers; size_t n_version_numbers;
    int mapped_only;                               /* map_index >= 0 */
    int match_nothing;                             /* a filter nothing can satisfy (no executor) */
    TiqRange start_date, end_date, logical_date, run_after; /* us */
    TiqRange duration;                             /* us */
    const char *dag_id_pattern, *run_id_pattern, *task_id_pattern;
    const char *pool_pattern, *queue_pattern, *operator_pattern;
    const char *task_group;                        /* task_id = G or starts with "G." */
    const char *order_sql;                         /* trusted ORDER BY text (TIQ_COL_* names); NULL: id */
    int limit;                                     /* < 0: no limit */
    int offset;
} TiqFilter;

/* Initialise a filter to "everything, no limit". */
void tiq_filter_init(TiqFilter *f);

/* Column names an ORDER BY may use (the list query's aliases). */
#define TIQ_COL_ID "ti.id"
#define TIQ_COL_STATE "ti.state"
#define TIQ_COL_DURATION "ti.duration"
#define TIQ_COL_START "ti.start_date"
#define TIQ_COL_END "ti.end_date"
#define TIQ_COL_MAP_INDEX "ti.map_index"
#define TIQ_COL_TRY "ti.try_number"
#define TIQ_COL_LOGICAL "r.logical_date"
#define TIQ_COL_RUN_AFTER "r.run_after"
#define TIQ_COL_DI_START "r.data_interval_start"
#define TIQ_COL_DI_END "r.data_interval_end"
#define TIQ_COL_OPERATOR "ti.operator"
#define TIQ_COL_TASK_ID "ti.task_id"
#define TIQ_COL_DAG_ID "ti.dag_id"
#define TIQ_COL_RUN_ID "ti.run_id"
#define TIQ_COL_POOL "ti.pool"
#define TIQ_COL_QUEUE "ti.queue"
#define TIQ_COL_PRIORITY "ti.priority_weight"

/* One task instance as the API shows it. */
typedef struct TiqRow {
    TaskInstance ti;
    char *note;                 /* NULL when none */
    char *rendered_fields;      /* JSON object text, NULL when none */
    int64_t logical_date;       /* the run's; -1 when none */
    int64_t run_after;
    int64_t data_interval_start, data_interval_end; /* -1 when none */
    char *run_state;            /* "queued", "running", ... */
    int version_number;         /* of ti.dag_version_id; -1 when the version is gone */
    int64_t version_created_at; /* -1 when the version is gone */
} TiqRow;

void tiq_rows_free(TiqRow *rows, size_t n);

/* The page of task instances the filter selects, ordered by f->order_sql, and (total may be
 * NULL) how many the filter selects without limit/offset. 0 / -1. */
int store_tiq_list(Store *s, const TiqFilter *f, TiqRow **out, size_t *n, int64_t *total);

/* One task instance with its run and version: 1 found, 0 missing, -1 error. */
int store_tiq_get(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                  TiqRow *out);

/* Set (or clear, note NULL) a task instance's note. 1 set, 0 no such instance, -1 error. */
int store_tiq_set_note(Store *s, const char *ti_id, const char *note);

/* How many task instances of one run are in each state: counts[st] for every TiState
 * (TI_NONE: those without a state; a state name this binary does not know counts nowhere).
 * One GROUP BY over the run's rows (the instance index's prefix), read back as at most
 * TI__COUNT rows: what a follower of the run polls instead of reading every instance. 0 / -1. */
int store_tiq_run_state_counts(Store *s, const char *dag_id, const char *run_id, int64_t counts[TI__COUNT]);

/* ---- tries ------------------------------------------------------------------------------ */

/* One finished try, from task_instance_history. */
typedef struct TiqTry {
    char ti_id[33];
    int try_number;
    char *dag_id, *run_id, *task_id;
    int map_index;
    TiState state;
    int max_tries;
    int64_t start_date, end_date, duration, queued_at; /* -1 when unset; duration in us */
    char *hostname;
    int pid;                    /* -1 when unset */
    char *queue, *pool;
    int pool_slots, priority_weight;
    char *operator_name;
} TiqTry;

void tiq_tries_free(TiqTry *t, size_t n);
/* The recorded tries of a task instance, by try number. 0 / -1. */
int store_tiq_history(Store *s, const char *ti_id, TiqTry **out, size_t *n);

/* ---- XComs across task instances ------------------------------------------------------- */

typedef struct TiqXcomFilter {
    const char *dag_id, *run_id, *task_id; /* exact; NULL = any */
    const char *key;                       /* exact; NULL = any */
    int map_index;                         /* when has_map_index */
    int has_map_index;
    const char *key_pattern, *dag_id_pattern, *run_id_pattern, *task_id_pattern; /* as TiqFilter's */
    int with_value;                        /* read the values too */
    int limit;                             /* < 0: no limit */
    int offset;
} TiqXcomFilter;

typedef struct TiqXcom {
    StoreXcom x;                           /* value NULL unless with_value */
    int64_t logical_date, run_after;       /* the run's; logical_date -1 when none */
    char *dag_version_id;                  /* the run's DAG version, for display names; may be NULL */
} TiqXcom;

void tiq_xcoms_free(TiqXcom *x, size_t n);
/* XComs ordered by dag_id, run_id, task_id, map_index, key; *total (may be NULL) without
 * limit/offset. Only XComs of runs that exist are listed. 0 / -1. */
int store_tiq_xcom_list(Store *s, const TiqXcomFilter *f, TiqXcom **out, size_t *n, int64_t *total);
/* Create an XCom that must not exist yet: 1 created, 0 it exists, -1 error. value is JSON. */
int store_tiq_xcom_insert(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                          const char *key, const char *value);
/* Replace the value of an XCom that exists: 1 updated, 0 missing, -1 error. */
int store_tiq_xcom_update(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                          const char *key, const char *value);
/* 1 deleted, 0 missing, -1 error. */
int store_tiq_xcom_delete(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                          const char *key);

/* ---- bulk changes ------------------------------------------------------------------------ */

/* An instance to mark or clear, as it was read: the change is refused when it moved since. */
typedef struct TiqChange {
    char id[33];
    TiState from;
    int try_number;
    int retries;   /* clear only: the task's retries in the run's DAG version; -1 when not there */
    TiState became;
    int changed;   /* out: 1 changed, 0 refused (it moved meanwhile, or the state machine says no) */
} TiqChange;

/* Mark each item `to` (success, failed, skipped...) with store_ti_set_state, all in one
 * transaction, each only if it is still in the state and on the try it was read in: the row
 * is locked first, so a worker finishing that try meanwhile makes this change refused
 * (changed = 0), never both applied. *moved (may be NULL) gets how many changed. 0 / -1. */
int store_tiq_mark(Store *s, TiqChange *items, size_t n, TiState to, int *moved);

/* Clear the items of ONE run (store_ti_clear_for_rerun each) in one transaction; when
 * reset_run and one was cleared, the run goes back to queued (from success/failed; a
 * queued or running run carries on). *cleared / *requeued may be NULL. 0 / -1. */
int store_tiq_clear_run(Store *s, const char *dag_id, const char *run_id, TiqChange *items, size_t n,
                        int reset_run, int *cleared, int *requeued);

#endif
