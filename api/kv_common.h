/* kv_common — what the REST API's routes for variables, connections, pools, the event log and
 * assets share: masking secrets, checking a JSON body field by field in pydantic's words,
 * update_mask and repeated query arguments, paging and ordering a kvquery list, and the
 * event-log records of their changes. Internal to api/: routes_kv.c (variables),
 * routes_conns.c, routes_pools.c, routes_eventlogs.c, routes_assets.c and kv_bulk.c.
 *
 * Helpers that answer return -1 (or 0 where said) after answering 4xx/503 themselves, so a
 * handler just returns. */
#ifndef GUST_API_KV_COMMON_H
#define GUST_API_KV_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "api/api.h"
#include "store/kvquery.h"

#define KVC_MASK "***"     /* what a secret is shown as */
#define KVC_MAX_MULTI 100  /* repeated query arguments (dag_ids, included_events, update_mask) */

/* The thread's store, or NULL after answering 503. */
Store *kvc_store(ApiReq *r, ApiResp *out);
/* v is text the store can hold (valid UTF-8, no NUL); NULL is not. */
int kvc_text_ok(const char *v);

/* ---- secrets ---------------------------------------------------------------------------------- */

/* Airflow's secrets masker (DEFAULT_SENSITIVE_FIELDS): a name containing one of its words,
 * case-insensitively, holds a secret. */
int kvc_sensitive_key(const char *k);
/* Replace the value of every sensitive key of j with "***", down to max_depth levels (-1 =
 * all). Returns how many were masked. */
int kvc_mask_json(cJSON *j, int max_depth);

/* ---- answers ---------------------------------------------------------------------------------- */

/* An integer, or null when v is STORE_KVQ_NONE. */
void kvc_add_int_or_null(cJSON *o, const char *name, int64_t v);
/* A JSON object text as an object (null when absent or not an object). */
void kvc_add_object_text(cJSON *o, const char *name, const char *text);
/* Answer a failure a create/update/remove function described: its status (503 when it set
 * none) and its message. */
void kvc_answer_failure(ApiResp *out, int status, const char *err);
/* Describe a store failure the way those functions do (*status 503, err names the store's
 * error); returns -1. */
int kvc_store_failure(Store *s, int *status, char *err, size_t errlen);
/* Write the change to the event log with extra {"name": value}. */
void kvc_audit1(ApiReq *r, const char *event, const char *name, const char *value);

/* ---- the request ------------------------------------------------------------------------------ */

/* The integer path parameter params[idx]: 0 ok, -1 after answering 422 as FastAPI does. */
int kvc_path_int(ApiReq *r, ApiResp *out, int idx, const char *name, int64_t *v);

/* The values of a repeated query argument, each also split at commas (?x=a&x=b,c gives a,
 * b, c), blanks around them dropped: v[0..n). held keeps the copies they point into (free
 * with kvc_multi_free). */
typedef struct KvcMulti {
    const char *v[KVC_MAX_MULTI];
    int n;
    char *held[KVC_MAX_MULTI];
    int nheld;
} KvcMulti;

void kvc_multi_get(ApiReq *r, const char *name, KvcMulti *m);
void kvc_multi_free(KvcMulti *m);
int kvc_multi_has(const KvcMulti *m, const char *v);

/* update_mask (?update_mask=a&update_mask=b or a,b): every name must be one of allowed[]
 * (NULL-ended). 0 ok (*m filled; kvc_multi_free it), -1 after answering 400. */
int kvc_update_mask(ApiReq *r, ApiResp *out, const char *const *allowed, KvcMulti *m);
/* Whether a PATCH changes field: it is in the body and, when a mask is given, in the mask. */
int kvc_patch_sets(const cJSON *body, const KvcMulti *mask, const char *field);

/* limit, offset and order_by of a kvquery list (names[] the public order_by names, dflt the
 * default's index) into *pg, its order text written to order. 0 ok, -1 after answering. */
int kvc_list_args(ApiReq *r, ApiResp *out, Store *s, StoreKvqList which, const char *const *names, int dflt,
                  char *order, size_t orderlen, StoreKvqPage *pg);

/* ---- body checking, in pydantic's words ------------------------------------------------------- */

typedef enum KvcFieldType { KVC_STR, KVC_INT, KVC_BOOL, KVC_OBJ, KVC_ANY } KvcFieldType;

/* One field of a body; a spec is an array of them ended by a NULL name. */
typedef struct KvcField {
    const char *name;
    KvcFieldType type;
    int required;
    int nullable;
    size_t maxlen;    /* KVC_STR: characters, 0 = no limit */
    long long lo, hi; /* KVC_INT */
} KvcField;

/* Check doc against spec: unknown keys, required fields, types, text validity, lengths and
 * ranges. where names the body in messages ("body", or "body.actions[0].entities[1]"). 0 ok,
 * -1 after answering 422. */
int kvc_body_check(ApiResp *out, const cJSON *doc, const KvcField *spec, const char *where);
/* doc's string field name, or NULL (absent or not a string). */
const char *kvc_jstr(const cJSON *doc, const char *name);

#endif
