/* ti_json — task instances as the REST API answers them (TaskInstanceResponse and the pieces
 * its relatives share: DagVersionResponse, display names, operator class names), and the DAG
 * versions they are read from. Internal to api/: the task-instance routes (routes_tis.c and
 * its siblings) and the dry-run clear of routes_runs.c answer through the same serializer, so
 * one instance reads the same whichever route lists it.
 *
 * What the store does not hold — display names, operator class names, the task graph — comes
 * from the DAG version the instance runs, parsed once per process into one DagCache shared
 * by every pool thread (versions never change once written; dagcache locks itself). The
 * Dag pointers it hands out live as long as the process. */
#ifndef GUST_API_TI_JSON_H
#define GUST_API_TI_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "api/api.h"
#include "core/dag.h"
#include "store/dagcache.h"
#include "store/ti.h"
#include "store/tiquery.h"

/* The process-wide cache of parsed DAG versions. */
DagCache *tij_cache(void);
/* A DAG version, parsed; NULL when version_id is NULL or the version cannot be read. */
const Dag *tij_dag(Store *s, const char *version_id);

/* Display names: the DAG's / task's own, else the id (d may be NULL). */
const char *tij_dag_display(const Dag *d, const char *dag_id);
const char *tij_task_display(const Dag *d, const char *task_id);

/* The Airflow class name of a stored operator ("bash" -> "BashOperator"), written into buf;
 * NULL when name is NULL. */
const char *tij_op_class(const char *name, char *buf, size_t len);

/* DagVersionResponse, or JSON null when there is no version (version_id NULL or number < 0). */
cJSON *tij_version(const char *version_id, int number, int64_t created_at, const char *dag_id, const Dag *d);

/* Fields as TaskInstanceResponse spells them: "state" (null for none), "duration" in seconds
 * (null when us < 0), an integer or null (v < 0). */
void tij_add_state(cJSON *o, TiState st);
void tij_add_duration(cJSON *o, int64_t us);
void tij_add_int_or_null(cJSON *o, const char *name, int64_t v);

/* TaskInstanceResponse of one row (its run's dates and its version joined in). The row is
 * only read: a caller may build one over borrowed strings. The response is written as JSON
 * text (cheaper than a cJSON tree per value); tij_ti parses that text back for answers that
 * add to it, so every form reads byte for byte the same. */
cJSON *tij_ti(Store *s, const TiqRow *w);

/* 200 with one TaskInstanceResponse. */
void tij_answer_one(ApiResp *out, Store *s, const TiqRow *w);

/* 200 {"task_instances": [...], "total_entries": total}. */
void tij_answer(ApiResp *out, Store *s, const TiqRow *rows, size_t n, int64_t total);

#endif
