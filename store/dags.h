/* dags — DAGs and their versions in the store.
 *
 * The DAG processor calls store_dag_sync for every DAG it parses: the dag row is kept up
 * to date, and a new dag_version (the serialised DAG, dag_to_json) is written only when
 * its content hash changes, so a run can keep executing the version it started with while
 * the file moves on. The row also carries what the API's DAG list shows from the serialised
 * DAG (display_name, schedule_kind, max_consecutive_failed_dag_runs,
 * has_task_concurrency_limits), rewritten at every sync, so that no list reads a version. */
#ifndef GUST_STORE_DAGS_H
#define GUST_STORE_DAGS_H

#include <stddef.h>
#include <stdint.h>

#include "core/dag.h"
#include "store/store.h"

typedef struct StoreDag {
    char *dag_id;
    int is_paused;
    int is_active;
    char *fileloc;
    char *owners;
    char *tags;              /* JSON array text */
    char *description;
    char *timetable_summary;
    char *timezone;
    char *latest_version_id;
    int64_t last_parsed_time;  /* -1: never */
    int64_t next_dagrun;       /* -1: none */
    int64_t next_dagrun_create_after; /* -1: none */
} StoreDag;

void store_dag_clear(StoreDag *d);
void store_dag_list_free(StoreDag *d, size_t n);

/* Upsert the DAG and, when its serialised form changed, a new version. New DAGs start
 * paused when paused_at_creation (the DAG's is_paused_upon_creation wins when set).
 * version_id (33 bytes) gets the latest version's id; *new_version 1 if one was written. */
int store_dag_sync(Store *s, const Dag *d, int paused_at_creation, char *version_id, int *new_version);
/* 1 changed, 0 no such DAG, -1 error. */
int store_dag_set_paused(Store *s, const char *dag_id, int paused);
/* Mark DAGs inactive when their file no longer defines them: every active DAG whose
 * fileloc is `file` and whose id is not in keep[]. Returns how many were deactivated. */
int store_dag_deactivate_missing(Store *s, const char *file, const char *const *keep, size_t n_keep);
int store_dag_get(Store *s, const char *dag_id, StoreDag *out);  /* 1 / 0 / -1 */
/* Active, unpaused DAGs with a time schedule (not none, not assets) whose next run may be due:
 * next_dagrun_create_after unknown or <= now. */
int store_dag_due(Store *s, int64_t now, StoreDag **out, size_t *n);
int store_dag_set_active(Store *s, const char *dag_id, int active);
int store_dag_list(Store *s, StoreDag **out, size_t *n);          /* ordered by dag_id */
/* The serialised DAG of a version (caller frees), or NULL. */
char *store_dag_version_data(Store *s, const char *version_id);
/* Record when the next scheduled run is due (all -1 to clear). */
int store_dag_set_next_run(Store *s, const char *dag_id, int64_t logical, int64_t interval_start,
                           int64_t interval_end, int64_t create_after);

#endif
