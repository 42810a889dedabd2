/* kvquery — the REST API's queries over variables, connections, pools, the event log and
 * assets: filtered, ordered, paged lists with their totals, and the few writes the API
 * needs that store/kv.h, store/xcom.h and store/assets.h do not have (create-only inserts
 * that tell "already exists" apart, full updates, renames, manual asset events).
 *
 * A list is two statements whatever the page size: COUNT(*) with the filter, then the page
 * (assets add a fixed handful for their references, never one per row). Filters are bound
 * parameters; the ORDER BY text comes only from the whitelists below (public name ->
 * column), which api_order_by pastes, and every list adds its primary key as a tie-breaker
 * in the same direction, so pages never overlap and a descending list is the ascending one
 * reversed. Text columns sort bytewise on both engines (COLLATE "C" on PostgreSQL).
 *
 * Patterns (Airflow's *_pattern query arguments) are SQL LIKE expressions matched
 * case-insensitively anywhere in the value: `%` and `_` are wildcards, `|` separates
 * alternatives ("a|b" = contains a or b), a backslash is literal (it is escaped, so a
 * pattern can never be malformed on PostgreSQL).
 *
 * Ownership as in kv.h: result structs own their strings and are freed by their *_free
 * function (all accept NULL). Errors: -1 with a message in store_last_error(s). */
#ifndef GUST_STORE_KVQUERY_H
#define GUST_STORE_KVQUERY_H

#include <stddef.h>
#include <stdint.h>

#include "core/secret.h"
#include "store/kv.h"
#include "store/store.h"

/* "no value" for the optional times and integers of filters and results */
#define STORE_KVQ_NONE INT64_MIN

/* One page of a list. order_sql is the text api_order_by wrote from one of the *_order
 * whitelists below (NULL = the list's default); limit >= 0 rows from offset >= 0. */
typedef struct StoreKvqPage {
    const char *order_sql;
    int limit;
    int offset;
} StoreKvqPage;

/* Whitelists for api_order_by: public names (NULL-ended) and, for this store's engine, the
 * columns they sort (same order). */
extern const char *const store_kvq_var_order[];
extern const char *const store_kvq_conn_order[];
extern const char *const store_kvq_pool_order[];
extern const char *const store_kvq_event_order[];
extern const char *const store_kvq_asset_order[];
extern const char *const store_kvq_asset_event_order[];
typedef enum StoreKvqList {
    STORE_KVQ_VARS,
    STORE_KVQ_CONNS,
    STORE_KVQ_POOLS,
    STORE_KVQ_EVENTS,
    STORE_KVQ_ASSETS,
    STORE_KVQ_ASSET_EVENTS,
} StoreKvqList;
const char *const *store_kvq_order_columns(const Store *s, StoreKvqList which);

/* Results of the create-only and update functions. */
enum { STORE_KVQ_MISSING = 0, STORE_KVQ_DONE = 1, STORE_KVQ_EXISTS = 2 };

/* ---- variables ---------------------------------------------------------------------------- */

/* Variables whose key matches pattern (NULL = all). *total gets the whole count. 0 / -1. */
int store_kvq_var_list(Store *s, const char *pattern, const StoreKvqPage *pg, StoreVariableList *out,
                       int64_t *total);
/* Insert a new variable: STORE_KVQ_DONE, STORE_KVQ_EXISTS (nothing written), or -1. */
int store_kvq_var_add(Store *s, const char *key, const char *val, const char *description);
/* Set value and description (NULL = none) of an existing variable: STORE_KVQ_DONE,
 * STORE_KVQ_MISSING, or -1. */
int store_kvq_var_update(Store *s, const char *key, const char *val, const char *description);

/* ---- connections -------------------------------------------------------------------------- */

/* Connections with id conn_id (NULL = any) matching pattern (NULL = all), decrypted with key
 * as store_conn_list does: a row that cannot be decrypted is still listed, with password and
 * extra NULL and the reason in its error field. */
int store_kvq_conn_list(Store *s, const SecretKey *key, const char *conn_id, const char *pattern,
                        const StoreKvqPage *pg, StoreConnectionList *out, int64_t *total);
/* 1 when the connection exists, 0 when not, -1 on error. */
int store_kvq_conn_exists(Store *s, const char *conn_id);

/* ---- pools -------------------------------------------------------------------------------- */

typedef struct StoreKvqPool {
    char *name;
    int slots;            /* -1 = unlimited */
    char *description;    /* NULL when none */
    int include_deferred;
    /* sums of pool_slots of the pool's task instances in each state: */
    int running, queued, scheduled, deferred;
} StoreKvqPool;

/* Pools (with their usage, in the same statement) named name (NULL = any) and matching
 * pattern (NULL = all). *out is a new array of *n (free with store_kvq_pool_list_free). */
int store_kvq_pool_list(Store *s, const char *name, const char *pattern, const StoreKvqPage *pg, StoreKvqPool **out,
                        size_t *n, int64_t *total);
void store_kvq_pool_list_free(StoreKvqPool *p, size_t n);
/* Insert a new pool: STORE_KVQ_DONE, STORE_KVQ_EXISTS, or -1 (slots < -1, bad text). */
int store_kvq_pool_add(Store *s, const char *name, int slots, const char *description, int include_deferred);
/* Replace an existing pool's fields, renaming it to new_name (may equal name): STORE_KVQ_DONE,
 * STORE_KVQ_MISSING, STORE_KVQ_EXISTS (new_name is another pool's), or -1. Task instances keep
 * the pool name they were created with, as in Airflow. */
int store_kvq_pool_update(Store *s, const char *name, const char *new_name, int slots, const char *description,
                          int include_deferred);

/* ---- the event log ------------------------------------------------------------------------ */

typedef struct StoreKvqEventFilter {
    int64_t id;                         /* > 0: only this event */
    const char *dag_id, *task_id, *run_id, *owner, *event; /* exact; NULL = any */
    int64_t map_index, try_number;      /* STORE_KVQ_NONE = any */
    const char *const *included;        /* event IN (...) when n_included > 0 */
    int n_included;
    const char *const *excluded;        /* event NOT IN (...) */
    int n_excluded;
    int64_t before, after;              /* dttm < before, dttm > after; STORE_KVQ_NONE = open */
    const char *dag_id_pattern, *task_id_pattern, *run_id_pattern, *owner_pattern, *event_pattern;
} StoreKvqEventFilter;
void store_kvq_event_filter_init(StoreKvqEventFilter *f);

typedef struct StoreKvqEvent {
    int64_t id, dttm;
    char *event, *owner, *dag_id, *task_id, *run_id, *extra; /* NULL when none */
    int64_t map_index, try_number;      /* STORE_KVQ_NONE when none */
    int64_t logical_date;               /* of the run the event names; STORE_KVQ_NONE when none */
} StoreKvqEvent;

int store_kvq_event_list(Store *s, const StoreKvqEventFilter *f, const StoreKvqPage *pg, StoreKvqEvent **out,
                         size_t *n, int64_t *total);
void store_kvq_event_list_free(StoreKvqEvent *e, size_t n);

/* ---- assets ------------------------------------------------------------------------------- */

/* A DAG (task_id NULL) or task that references an asset. */
typedef struct StoreKvqAssetRef {
    char *dag_id;
    char *task_id;
    int64_t created_at, updated_at;
} StoreKvqAssetRef;

typedef struct StoreKvqAsset {
    int64_t id;
    char *uri, *name, *group, *extra;   /* extra: JSON object text */
    int64_t created_at, updated_at;
    int64_t last_event_id, last_event_at; /* STORE_KVQ_NONE when it has no events */
    StoreKvqAssetRef *scheduled;        /* DAGs scheduled on it (dag_schedule_asset_reference) */
    size_t n_scheduled;
    StoreKvqAssetRef *producing;        /* tasks listing it in outlets (latest DAG versions) */
    size_t n_producing;
    StoreKvqAssetRef *consuming;        /* tasks listing it in inlets */
    size_t n_consuming;
} StoreKvqAsset;

typedef struct StoreKvqAssetFilter {
    int64_t id;                         /* > 0: only this asset */
    const char *uri_pattern, *name_pattern;
    const char *const *dag_ids;         /* assets these DAGs are scheduled on or produce */
    int n_dag_ids;
} StoreKvqAssetFilter;

/* Assets with their references and last event. The tasks' references come from the latest
 * version of every active DAG whose tasks declare outlets or inlets (found with a LIKE on
 * the serialised DAG, then parsed): a fixed number of statements per call. */
int store_kvq_asset_list(Store *s, const StoreKvqAssetFilter *f, const StoreKvqPage *pg, StoreKvqAsset **out,
                         size_t *n, int64_t *total);
void store_kvq_asset_list_free(StoreKvqAsset *a, size_t n);
/* The id of the asset with this URI: 1 found, 0 not, -1 error. */
int store_kvq_asset_id(Store *s, const char *uri, int64_t *id);

typedef struct StoreKvqAssetEventFilter {
    int64_t id;                         /* > 0: only this event */
    int64_t asset_id;                   /* > 0: only this asset's */
    const char *source_dag_id, *source_task_id, *source_run_id; /* exact; NULL = any */
    int64_t source_map_index;           /* STORE_KVQ_NONE = any */
    const char *name_pattern;           /* the asset's name */
    int64_t ts_gte, ts_gt, ts_lte, ts_lt; /* STORE_KVQ_NONE = open */
} StoreKvqAssetEventFilter;
void store_kvq_asset_event_filter_init(StoreKvqAssetEventFilter *f);

typedef struct StoreKvqAssetEvent {
    int64_t id, asset_id, timestamp;
    char *uri, *name, *group;           /* the asset's */
    char *extra;                        /* JSON object text */
    char *source_dag_id, *source_task_id, *source_run_id; /* NULL when none */
    int source_map_index;               /* -1 when none */
} StoreKvqAssetEvent;

int store_kvq_asset_event_list(Store *s, const StoreKvqAssetEventFilter *f, const StoreKvqPage *pg,
                               StoreKvqAssetEvent **out, size_t *n, int64_t *total);
void store_kvq_asset_event_list_free(StoreKvqAssetEvent *e, size_t n);
/* Record an event of an asset made by hand (no source task), and queue it for every DAG
 * scheduled on the asset, as store_asset_emit does for a task's outlets, in one
 * transaction (listeners are told "assets" at commit). extra: JSON object text (NULL = {}).
 * STORE_KVQ_DONE (*event_id set), STORE_KVQ_MISSING (no such asset), or -1. */
int store_kvq_asset_event_create(Store *s, int64_t asset_id, const char *extra, int64_t *event_id);

/* ---- queued asset events (asset_dag_run_queue) -------------------------------------------- */

typedef struct StoreKvqQueued {
    char *dag_id;
    int64_t asset_id;
    int64_t created_at;
} StoreKvqQueued;

/* Queued events of dag_id (NULL = any DAG) and asset_id (<= 0 = any asset), created before
 * `before` (STORE_KVQ_NONE = any time), ordered by DAG then asset. */
int store_kvq_queued_list(Store *s, const char *dag_id, int64_t asset_id, int64_t before, StoreKvqQueued **out,
                          size_t *n);
void store_kvq_queued_list_free(StoreKvqQueued *q, size_t n);
/* Delete them (same selection): how many were deleted, or -1. */
int64_t store_kvq_queued_delete(Store *s, const char *dag_id, int64_t asset_id, int64_t before);

#endif
