/* runs — DAG runs in the store: creation together with their task instances, the batch
 * lock schedulers share work with, and guarded state changes.
 *
 * A run is unique on (dag_id, run_id) and on (dag_id, logical_date): creating one that
 * exists changes nothing and says so, which is what lets several schedulers run at once
 * (DESIGN.md invariant 5). */
#ifndef GUST_STORE_RUNS_H
#define GUST_STORE_RUNS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "store/ti.h"

typedef enum RunState { RUN_QUEUED, RUN_RUNNING, RUN_SUCCESS, RUN_FAILED, RUN__COUNT } RunState;
const char *run_state_name(RunState s);
int run_state_parse(const char *name); /* -1 if unknown */

typedef struct DagRun {
    char id[33];
    char *dag_id;
    char *run_id;
    char *run_type;            /* scheduled, manual, backfill, asset_triggered */
    int64_t logical_date;      /* -1: none */
    int64_t data_interval_start, data_interval_end; /* -1: none */
    int64_t run_after;
    RunState state;
    char *conf;                /* JSON object text */
    char *note;
    int64_t queued_at, start_date, end_date, last_scheduling_decision; /* -1: unset */
    char *triggered_by;
    char *dag_version_id;
    int clear_number;
    char *triggering_user_name; /* the API user who triggered it; NULL otherwise */
} DagRun;

void run_clear(DagRun *r);
/* Read columns 0-18 of a row that selects the store's run columns in their order (STORE_RUN_COLUMNS below:
 * id, dag_id, run_id, ..., clear_number, triggering_user_name), for queries
 * elsewhere that select more after them. */
void store_run_read_row(StoreRows *r, DagRun *d);
/* The columns store_run_read_row reads, in its order. */
#define STORE_RUN_COLUMNS                                                                                   \
    "id, dag_id, run_id, run_type, logical_date, data_interval_start, data_interval_end, run_after, state, " \
    "conf, note, queued_at, start_date, end_date, last_scheduling_decision, triggered_by, dag_version_id, "  \
    "clear_number, triggering_user_name"
void run_list_free(DagRun *runs, size_t n);

/* What a new run is; strings are copied. */
typedef struct RunSpec {
    const char *dag_id;
    const char *run_id;
    const char *run_type;
    int64_t logical_date;         /* -1: none */
    int64_t data_interval_start;  /* -1: none */
    int64_t data_interval_end;    /* -1: none */
    int64_t run_after;
    const char *conf;             /* NULL: {} */
    const char *note;
    const char *triggered_by;     /* "scheduler", "cli", "rest_api", ... */
    const char *dag_version_id;
    const char *triggering_user_name; /* NULL: none */
} RunSpec;

/* "scheduled__2024-01-01T00:00:00+00:00", as Airflow spells run ids. out >= 64 bytes. */
void run_id_make(const char *run_type, int64_t logical_date, char *out, size_t outlen);

/* Create the run (state queued) and its task instances in one transaction.
 * 1 created, 0 it already exists (same run_id or same logical_date), -1 error.
 * id_out (33 bytes, may be NULL) gets the new run's id. */
int store_run_create(Store *s, const RunSpec *spec, const TiSpec *tis, size_t n, char *id_out);

int store_run_get(Store *s, const char *dag_id, const char *run_id, DagRun *out); /* 1 / 0 / -1 */
/* A DAG's runs, newest first (by run_after), at most limit (0: all). */
int store_run_list(Store *s, const char *dag_id, int limit, DagRun **out, size_t *n);

/* The latest logical date of a DAG's scheduled or backfill runs, or -1. */
int64_t store_run_last_logical(Store *s, const char *dag_id);
/* Queued + running runs of a DAG. */
int store_run_count_active(Store *s, const char *dag_id, int64_t *count);
int store_run_count_running(Store *s, const char *dag_id, int64_t *count);

/* For use INSIDE a transaction (store_tx): lock up to max queued or running runs that no
 * other scheduler holds (FOR UPDATE SKIP LOCKED on PostgreSQL; SQLite has one writer),
 * least recently examined first, and stamp them examined now. */
int store_runs_lock_active(Store *s, int max, DagRun **out, size_t *n);

/* Guarded run state change: queued → running (sets start_date), running → success/failed
 * (sets end_date), queued → failed, and success/failed → queued (a cleared run).
 * 1 changed, 0 refused (s->err says why), -1 error. */
int store_run_set_state(Store *s, const char *dag_id, const char *run_id, RunState to);
/* Same, for use inside a transaction; *changed gets 1/0. */
int store_run_set_state_in_tx(Store *s, const char *dag_id, const char *run_id, RunState to, int *changed);

/* The run of a DAG at a logical date (there is at most one). 1 found, 0 none, -1 error. */
int store_run_get_by_logical(Store *s, const char *dag_id, int64_t logical_date, DagRun *out);
/* A DAG's runs whose logical date lies in [from_us, to_us] (-1: unbounded on that side),
 * oldest first; runs without a logical date are not listed. Free with run_list_free. */
int store_run_list_between(Store *s, const char *dag_id, int64_t from_us, int64_t to_us, DagRun **out, size_t *n);

#endif
