/* ti_common — what every task-instance route of the REST API needs before it can do its own
 * work: checking path parameters, the store, the DAG / run / task instance a path names
 * (answering Airflow's 404s when they are missing), typed fields of a JSON body, and walks
 * over a DAG version's task graph (upstream / downstream selections). Internal to api/:
 * routes_tis.c (lists, get), routes_timark.c (PATCH), routes_ticlear.c (clearTaskInstances),
 * routes_tilogs.c (tries, logs), routes_tideps.c (dependencies, links) and routes_xcom.c.
 *
 * Conventions of the helpers that answer: 0 / 1 as documented per function, and every
 * failure has already been answered (404, 422 or 503) when they return it, so a handler
 * just returns. */
#ifndef GUST_API_TI_COMMON_H
#define GUST_API_TI_COMMON_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "api/api.h"
#include "core/dag.h"
#include "store/runs.h"
#include "store/tiquery.h"

/* The path every task-instance route hangs under. */
#define TIC_BASE "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances"

/* "~" (every DAG / run / task) as NULL; anything else as it is. */
const char *tic_tilde(const char *p);
/* s is text the store can hold (valid UTF-8, no NUL); NULL is not. */
int tic_text_ok(const char *s);
/* Path parameters that are not text cannot name anything: 1 ok, 0 after answering 404. */
int tic_params_ok(ApiReq *r, ApiResp *out);
/* The thread's store, or NULL after answering 503. */
Store *tic_store(ApiReq *r, ApiResp *out);
/* A double as int64_t, saturating instead of overflowing. */
int64_t tic_ll_clamp(double v);

/* 1 the DAG / run exists (run: *run filled when not NULL, the caller clears it); 0 after
 * answering 404; -1 after answering 503. */
int tic_need_dag(ApiResp *out, Store *s, const char *dag_id);
int tic_need_run(ApiResp *out, Store *s, const char *dag_id, const char *run_id, DagRun *run);

/* An integer path parameter within [lo, hi]: 0 ok, -1 after answering 422. */
int tic_path_int(ApiResp *out, const char *name, const char *text, long long lo, long long hi, long long *v);

/* The task instance of a single-instance route (params: dag_id, run_id, task_id, and the
 * map_index at params[map_pi] when map_pi >= 0, else ?map_index=, default -1). 1 found
 * (*row filled; free with tic_row_clear); 0 after answering 404, 422 or 503. */
int tic_load_ti(ApiReq *r, ApiResp *out, Store *s, int map_pi, TiqRow *row);
void tic_row_clear(TiqRow *row);

/* A text query argument (NULL when absent): 0, or -1 after answering 422 (not text). */
int tic_q_text(ApiReq *r, ApiResp *out, const char *name, const char **v);

/* JSON body fields; JSON null counts as absent. 0 ok (absent leaves dflt / *v untouched as
 * each says), -1 after answering 422 naming the field. */
const cJSON *tic_b_get(const cJSON *doc, const char *name);
int tic_b_bool(ApiResp *out, const cJSON *doc, const char *name, int dflt, int *v);
int tic_b_str(ApiResp *out, const cJSON *doc, const char *name, const char **v); /* *v NULL when absent */
int tic_b_time(ApiResp *out, const cJSON *doc, const char *name, int64_t *v);   /* *v untouched when absent */

/* The index in d->tasks of a task id, -1 when absent (or d NULL). */
long tic_task_index(const Dag *d, const char *task_id);
/* Mark in sel (d->n_tasks entries) every task upstream and/or downstream of the ones marked
 * 1, transitively, with 2. */
void tic_dag_reach(const Dag *d, char *sel, int upstream, int downstream);

#endif
