/* dagquery — what the REST API asks of DAGs beyond store/dags.h: filtered, ordered, paged
 * lists with their total (GET /dags), bulk pause, deleting a DAG's metadata, run counts per
 * state (dagStats), the tag names in use (dagTags), import errors and DAG versions.
 *
 * A list is one statement over the dag table alone: the page of rows with COUNT(*) OVER ()
 * for the total. What the list shows from the serialised DAG (display name,
 * max_consecutive_failed_dag_runs, task concurrency limits, schedule kind) is kept on the dag
 * row by store_dag_sync, so no list parses JSON. The last run of a DAG (for
 * last_dag_run_state, the dag_run_* filters and ordering by state or start_date) is its
 * latest run by run_after that has started, joined only when a filter or the order needs it.
 *
 * Patterns (dag_id_pattern, tag_name_pattern, ...) follow Airflow's search parameters: SQL
 * LIKE (% and _ are wildcards, \ escapes them), matched case-insensitively anywhere in the
 * value; "a|b" matches either. Plain values (tags, owners) are matched literally.
 *
 * Ownership: result structs own their strings; free with the *_free function named next to
 * them. Filters borrow their strings from the caller. */
#ifndef GUST_STORE_DAGQUERY_H
#define GUST_STORE_DAGQUERY_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "store/xcom.h"

#define DAGQ_UNSET INT64_MIN /* a time bound left out */
#define DAGQ_LAST_TIME 253402300799999999LL /* 9999-12-31T23:59:59.999999Z: later is "never" */

/* Which DAGs to list. Every member is optional; all conditions hold together. */
typedef struct DagqFilter {
    const char *dag_id;               /* exactly this DAG */
    const char *const *tags;          /* DAGs with any (tags_all: every one) of these tags */
    size_t n_tags;
    int tags_all;
    const char *const *owners;        /* DAGs whose owners mention any of these (case-insensitive) */
    size_t n_owners;
    const char *dag_id_pattern;
    const char *display_name_pattern;
    int exclude_stale;                /* 1: active DAGs only (is_stale false) */
    int paused;                       /* -1 any, 0 unpaused, 1 paused */
    int has_import_errors;            /* -1 any, 0/1: whether the DAG's file has an import error now */
    int has_asset_schedule;           /* -1 any, 0/1: scheduled on assets (or not) */
    const char *asset_dependency;     /* pattern over the URI or name of an asset the DAG is scheduled on */
    const char *last_run_state;       /* the last run's state */
    const char *const *run_states;    /* the last run's state is one of these */
    size_t n_run_states;
    int64_t run_start_gte, run_start_gt, run_start_lte, run_start_lt; /* the last run's start_date */
    int64_t run_end_gte, run_end_gt, run_end_lte, run_end_lt;         /* the last run's end_date */
    int match_none;                   /* 1: no DAG matches (a filter on something gust never has) */
} DagqFilter;
void dagq_filter_init(DagqFilter *f); /* no conditions, time bounds DAGQ_UNSET, exclude_stale 0 */

/* One DAG as the API shows it. Times are -1 when unset (or never, for the next run). */
typedef struct DagqRow {
    char *dag_id;
    char *display_name;              /* the DAG's dag_display_name, else its dag_id */
    int is_paused;
    int is_active;
    char *fileloc;
    char *owners;                    /* "a, b" as the DAG processor wrote it */
    char *tags;                      /* JSON array text */
    char *description;               /* NULL: none */
    char *timetable_summary;         /* NULL: none */
    char *timezone;
    int max_active_runs;             /* -1: the setting core.max_active_runs_per_dag */
    int max_active_tasks;            /* -1: the setting core.max_active_tasks_per_dag */
    int max_consecutive_failed_dag_runs;
    int has_task_concurrency_limits; /* some task sets max_active_tis_per_dag */
    int has_import_errors;
    char *schedule_kind;             /* "cron", "interval", "none", "assets", ... or NULL (no version) */
    char *latest_version_id;         /* NULL: never parsed */
    int64_t last_parsed_time;
    int64_t next_dagrun, next_dagrun_data_interval_start, next_dagrun_data_interval_end, next_dagrun_create_after;
} DagqRow;
void dagq_row_clear(DagqRow *r);
void dagq_rows_free(DagqRow *rows, size_t n);

/* order_by for store_dagq_list: public names (Airflow's) and, for this store's engine, the
 * SQL each sorts by (same order, NULL-ended both). Hand both to api_order_by; the text it
 * writes is what order_sql takes. */
extern const char *const dagq_order_names[];
const char *const *dagq_order_columns(const Store *s);

/* DAGs matching f, ordered by order_sql (NULLs last either way; ties by dag_id), limit rows
 * from offset; *total gets how many match in all. One statement. 0 / -1. */
int store_dagq_list(Store *s, const DagqFilter *f, const char *order_sql, int limit, int offset, DagqRow **out,
                    size_t *n, int64_t *total);
/* One DAG (stale or not). 1 found, 0 none, -1 error. */
int store_dagq_get(Store *s, const char *dag_id, DagqRow *out);

/* Pause or unpause these DAGs (one statement per 200) and notify the scheduler. 0 / -1. */
int store_dagq_set_paused(Store *s, const char *const *dag_ids, size_t n, int paused);

/* Delete a DAG's metadata: its row, versions, runs, task instances with their tries, logs,
 * XComs and outbox entries, and its asset references, in one transaction (the event log
 * keeps its records, as Airflow's does). 1 deleted, 0 no such DAG, 2 refused because task
 * instances are running (nothing changed), -1 error. */
int store_dagq_delete(Store *s, const char *dag_id);

/* Queued + running runs of a DAG. 0 / -1. */
int store_dagq_active_runs(Store *s, const char *dag_id, int64_t *count);

/* ---- dagStats --------------------------------------------------------------------------- */

typedef struct DagqStats {
    char *dag_id;
    char *display_name;
    int64_t count[4]; /* queued, running, success, failed (RunState order) */
} DagqStats;
/* Run counts per state of the active DAGs that have runs (only dag_ids[] when n_ids > 0),
 * ordered by dag_id. Free with store_dagq_stats_free. 0 / -1. */
int store_dagq_stats(Store *s, const char *const *dag_ids, size_t n_ids, DagqStats **out, size_t *n);
void store_dagq_stats_free(DagqStats *st, size_t n);

/* ---- dagTags ------------------------------------------------------------------------------ */

/* Distinct tag names of all DAGs, matching pattern (NULL: all), by name (desc: descending),
 * limit from offset; *total gets how many in all. names is a heap array of heap strings:
 * free with store_dagq_strings_free. 0 / -1. */
int store_dagq_tags(Store *s, const char *pattern, int desc, int limit, int offset, char ***names, size_t *n,
                    int64_t *total);
void store_dagq_strings_free(char **v, size_t n);

/* ---- import errors ------------------------------------------------------------------------ */

extern const char *const dagq_import_error_order_names[];
const char *const *dagq_import_error_order_columns(const Store *s);
/* Import errors whose filename matches pattern (NULL: all), ordered by order_sql (from the
 * lists above), limit from offset; *total in all. Free with store_import_error_list_free. */
int store_dagq_import_errors(Store *s, const char *pattern, const char *order_sql, int limit, int offset,
                             StoreImportErrorList *out, int64_t *total);
/* One import error by id: 1 found (out filled, out->n == 1), 0 none, -1 error. */
int store_dagq_import_error_get(Store *s, int64_t id, StoreImportErrorList *out);

/* ---- DAG versions ------------------------------------------------------------------------- */

typedef struct DagqVersion {
    char id[33];
    char *dag_id;
    char *display_name; /* of that version */
    int version_number;
    int64_t created_at;
} DagqVersion;
void store_dagq_versions_free(DagqVersion *v, size_t n);

extern const char *const dagq_version_order_names[];
const char *const *dagq_version_order_columns(const Store *s);
/* Versions of a DAG (dag_id NULL: of every DAG), only version_number when it is > 0,
 * ordered by order_sql (ties by id), limit from offset; *total in all. 0 / -1. */
int store_dagq_versions(Store *s, const char *dag_id, int version_number, const char *order_sql, int limit,
                        int offset, DagqVersion **out, size_t *n, int64_t *total);
/* One version of a DAG by number (version_number <= 0: the latest). 1 / 0 / -1. */
int store_dagq_version_get(Store *s, const char *dag_id, int version_number, DagqVersion *out);

/* ---- the grid (GET /api/v2/gust/dags/{dag_id}/grid) ---------------------------------------- */

/* A run as the grid shows it. Times are -1 when unset. */
typedef struct DagqGridRun {
    char *run_id;
    char *state;
    char *run_type;
    int64_t logical_date, run_after, start_date, end_date;
} DagqGridRun;
void store_dagq_grid_runs_free(DagqGridRun *runs, size_t n);

/* A DAG's runs newest first (run_after, then run_id, descending), limit from offset; *total
 * gets how many runs it has. Free with store_dagq_grid_runs_free. 0 / -1. */
int store_dagq_grid_runs(Store *s, const char *dag_id, int limit, int offset, DagqGridRun **out, size_t *n,
                         int64_t *total);
/* The state and try number of every (run, task) of those runs, in one statement that reads
 * only those columns: states[i * n_tasks + j] is run i's instance of task_ids[j] (a TiState),
 * try_numbers[...] its try number; -1 in both where the run has no such instance (a task
 * added after the run began). Mapped instances are not read (gust does not map tasks); an
 * instance of a task not in task_ids is left out. Both arrays (n_runs * n_tasks) belong to
 * the caller. 0 / -1. */
int store_dagq_grid_cells(Store *s, const char *dag_id, const DagqGridRun *runs, size_t n_runs,
                          const char *const *task_ids, size_t n_tasks, signed char *states, int *try_numbers);

#endif
