/* runquery — what the REST API asks of DAG runs beyond store/runs.h: filtered, ordered,
 * paged lists with their total; one run with its DAG version; a person marking a run
 * success or failed together with its task instances; clearing a run; notes; deleting a
 * run with everything that hangs off it; and the asset events that triggered a run.
 *
 * State changes go through store/runs.c and store/ti.c (store_run_set_state_in_tx,
 * store_ti_set_state, store_ti_clear_for_rerun) inside one transaction here, so the same
 * guards and the same state journal apply as for the scheduler and the CLI; this file
 * only decides which instances move where, as Airflow's mark_tasks.py does.
 *
 * Ownership: result structs own their strings; free with the *_free function named next
 * to them. Filters borrow their strings from the caller. */
#ifndef GUST_STORE_RUNQUERY_H
#define GUST_STORE_RUNQUERY_H

#include <stddef.h>
#include <stdint.h>

#include "store/runs.h"
#include "store/store.h"

/* A range on one time (or duration) column, in microseconds. RUNQ_UNSET leaves a bound
 * out. */
#define RUNQ_UNSET INT64_MIN
typedef struct RunqRange {
    int64_t gte, gt, lte, lt;
} RunqRange;
void runq_range_init(RunqRange *r); /* every bound unset */

typedef enum RunqRangeField {
    RUNQ_RUN_AFTER,
    RUNQ_LOGICAL_DATE,
    RUNQ_START_DATE,
    RUNQ_END_DATE,
    RUNQ_UPDATED_AT, /* the run's last state change: end_date, else start_date, else queued_at */
    RUNQ_DURATION,   /* end_date - start_date; runs without both never match a bound */
    RUNQ__RANGES
} RunqRangeField;

/* Which runs to list. Every member is optional (NULL/0 = no condition); all conditions
 * hold together. Patterns are SQL LIKE expressions (% and _ are wildcards, \ escapes them),
 * matched case-insensitively anywhere in the value; "a|b" matches either. */
typedef struct RunqFilter {
    const char *const *dag_ids;
    size_t n_dag_ids;
    const char *dag_id_pattern;
    const char *run_id_pattern;
    const char *triggering_user_name_pattern;
    const char *const *states;    /* "queued", "running", ... */
    size_t n_states;
    const char *const *run_types; /* "manual", "scheduled", ... */
    size_t n_run_types;
    const int64_t *versions;      /* dag_version.version_number */
    size_t n_versions;
    const char *conf_contains;    /* plain text searched in the conf JSON text (no wildcards) */
    RunqRange range[RUNQ__RANGES];
} RunqFilter;
void runq_filter_init(RunqFilter *f);

/* A run with the DAG version it runs (version_number -1 when it has none). */
typedef struct RunqRow {
    DagRun run;
    int version_number;
    int64_t version_created_at;
} RunqRow;
void runq_row_clear(RunqRow *r);
void runq_rows_free(RunqRow *rows, size_t n);

/* Column expressions the list may be ordered by, for the API's whitelist: the text is SQL
 * over the alias r (dag_run). */
#define RUNQ_COL_DURATION "(r.end_date - r.start_date)"
#define RUNQ_COL_UPDATED_AT "COALESCE(r.end_date, r.start_date, r.queued_at)"

/* Runs matching f ordered by order_sql (trusted text from a whitelist, e.g. "r.run_after
 * DESC"; ties broken by id), limit rows from offset; *total gets how many match in all.
 * Two statements (one when limit is 0). 0 / -1. */
int store_runq_list(Store *s, const RunqFilter *f, const char *order_sql, int limit, int offset, RunqRow **out,
                    size_t *n, int64_t *total);

/* One run. 1 found, 0 none, -1 error. */
int store_runq_get(Store *s, const char *dag_id, const char *run_id, RunqRow *out);

/* Replace a run's note (NULL removes it). 1 done, 0 no such run, -1 error. */
int store_runq_set_note(Store *s, const char *dag_id, const char *run_id, const char *note);

/* A person marks the run, in one transaction, as Airflow's set_dag_run_state_to_*:
 *  success: the run becomes success and every instance not yet success becomes success;
 *  failed:  the run becomes failed, running and up_for_reschedule instances become failed,
 *           and the other unfinished ones (none, scheduled, queued, up_for_retry,
 *           restarting) skipped;
 *  queued:  the run is queued again (only from success or failed, as the store allows);
 *           its instances are left as they are.
 * A run already in the state stays so (its instances are still marked). *tis_changed (may
 * be NULL) gets how many instances moved. 1 done, 0 refused (s->err says why), -1 error. */
int store_runq_mark(Store *s, const char *dag_id, const char *run_id, RunState to, int *tis_changed);

/* One task instance to clear (what store_ti_clear_for_rerun needs). */
typedef struct RunqClear {
    char id[33];
    TiState from;
    int try_number;
    int retries;  /* the task's retries in the run's DAG version; -1 when it is not there */
    int cleared;  /* out: 1 cleared, 0 it moved meanwhile */
} RunqClear;

/* Clear these instances of one run and queue the run again (from success/failed), in one
 * transaction, as gust tasks clear does. *cleared gets how many were cleared. 0 / -1. */
int store_runq_clear(Store *s, const char *dag_id, const char *run_id, RunqClear *items, size_t n, int *cleared);

/* Delete the run with its task instances, their tries, XComs, logs and outbox rows, in
 * one transaction. 1 deleted, 0 no such run, -1 error. */
int store_runq_delete(Store *s, const char *dag_id, const char *run_id);

/* An asset event, with its asset. */
typedef struct RunqAssetEvent {
    int64_t id, asset_id, timestamp;
    char *uri, *name, *group;
    char *source_dag_id, *source_task_id, *source_run_id;
    int source_map_index; /* -1 when none */
    char *extra;          /* JSON text */
} RunqAssetEvent;
void runq_asset_events_free(RunqAssetEvent *ev, size_t n);

/* The events that triggered an asset_triggered run: the events of the assets its DAG is
 * scheduled on that arrived after the DAG's previous asset-triggered run was created and
 * no later than this one (gust does not record which events a run consumed; this is what
 * its scheduler consumed, unless runs between were deleted). Other runs have none.
 * Oldest first. 0 / -1. */
int store_runq_asset_events(Store *s, const DagRun *run, RunqAssetEvent **out, size_t *n);

#endif
