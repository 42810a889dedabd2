/* kv_bulk — the bulk PATCH of variables, connections and pools (Airflow's BulkBody: a list of
 * create / update / delete actions, each over many entities, answered per action with the
 * keys that succeeded and the errors of the others). Internal to api/: each resource says
 * how its entities are checked, found, created, updated and removed (KvbOps); the walk over
 * the actions, Airflow's action_on_existence / action_on_non_existence rules and the answer
 * are here once. */
#ifndef GUST_API_KV_BULK_H
#define GUST_API_KV_BULK_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "api/api.h"
#include "api/kv_common.h"

/* One resource's side of a bulk request. */
typedef struct KvbOps {
    const char *what;          /* "variables", ... for messages */
    const char *key_field;     /* the entity's id field: "key", "connection_id", "name" */
    const KvcField *spec;      /* the entity body */
    const char *const *mask_fields;
    /* 1 exists, 0 not, -1 store failure */
    int (*exists)(ApiReq *r, Store *s, const char *key);
    /* 0 ok; -1 failure with a message in err (a store failure: *status 503; refused: 400/409) */
    int (*create)(ApiReq *r, Store *s, const cJSON *e, int *status, char *err, size_t errlen);
    int (*update)(ApiReq *r, Store *s, const cJSON *e, const KvcMulti *mask, int *status, char *err, size_t errlen);
    int (*remove)(ApiReq *r, Store *s, const char *key, int *status, char *err, size_t errlen);
} KvbOps;

/* PATCH /api/v2/<resource>: validate the whole body (422 before anything changes), run its
 * actions in order, write the result to the event log as audit_event and answer it (200);
 * a store failure answers 503. */
void kvb_run(ApiReq *r, ApiResp *out, const KvbOps *ops, const char *audit_event);

#endif
