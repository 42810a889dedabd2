/* assets — datasets (Airflow's assets) in the store: the events a task's outlets emit, and
 * the queue of events each asset-scheduled DAG has not yet been run for.
 *
 * When a task that lists outlets succeeds, one asset_event per URI is written and, for every
 * DAG scheduled on that URI, a row in asset_dag_run_queue (Airflow's ADRQ). The scheduler
 * asks which DAGs have queued events, evaluates each DAG's condition ({"all": [...]} /
 * {"any": [...]}) over the URIs that have one, and when it holds creates an
 * asset_triggered run and consumes the rows it used. */
#ifndef GUST_STORE_ASSETS_H
#define GUST_STORE_ASSETS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "store/store.h"

/* Make dag_id's schedule references exactly these URIs (assets created as needed). */
int store_asset_refs_sync(Store *s, const char *dag_id, const char *const *uris, size_t n);
/* A task produced these URIs: events + queue rows for every DAG scheduled on them.
 * Joins the caller's transaction if there is one. */
int store_asset_emit(Store *s, const char *const *uris, size_t n, const char *dag_id, const char *task_id,
                     const char *run_id);
/* DAGs that have at least one queued asset event (caller frees each and the vector). */
int store_asset_queued_dags(Store *s, char ***dag_ids, size_t *n);
/* The URIs queued for a DAG (caller frees each and the vector). */
int store_asset_queued_uris(Store *s, const char *dag_id, char ***uris, size_t *n);
/* Consume the queue rows of these URIs for a DAG (after creating its run). */
int store_asset_consume(Store *s, const char *dag_id, const char *const *uris, size_t n);
/* Does a condition (a URI string, {"all": [...]} or {"any": [...]}) hold, given the URIs that
 * have events? */
int asset_condition_holds(const cJSON *cond, const char *const *have, size_t n);

#endif
