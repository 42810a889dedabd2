/* routes_kv — variables, connections, pools, the event log and assets, on Airflow's REST API
 * v2 contract (VariableResponse, ConnectionResponse, PoolResponse, EventLogResponse,
 * AssetResponse, AssetEventResponse, QueuedEventResponse and their collections and bodies).
 *
 * Secrets never leave: a connection's password is answered as "***" (or null when it has
 * none) and every key of its extra whose name looks secret is masked, at any depth; so is
 * the value of a variable whose key looks secret, and the secret-looking top-level keys of a
 * variable that holds a JSON object — Airflow's secrets masker and its list of names. A
 * PATCH that sends "***" back (a form filled from a GET) keeps the stored secret instead of
 * storing the mask.
 *
 * Bodies are checked field by field before anything is written, in FastAPI's words and
 * 422 shape, so a bad body never reaches the store; what the store then refuses is its own
 * failure (503). Mutations are written to the event log (api_audit) as api.<operation>. The
 * SQL lives in store/kvquery.c: every list is a count and a page. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/util.h"
#include "store/kv.h"
#include "store/kvquery.h"
#include "store/store.h"

#define MASK "***"
#define MAX_MULTI 100 /* repeated query arguments (dag_ids, included_events, update_mask) */

/* ---- shared helpers --------------------------------------------------------------------------- */

static Store *store_or_503(ApiReq *r, ApiResp *out)
{
    Store *s = api_store(r);
    if (!s) api_store_error(out, NULL);
    return s;
}

static int text_ok(const char *v)
{
    return v && store_text_valid(v, strlen(v));
}

/* Airflow's secrets masker (DEFAULT_SENSITIVE_FIELDS): a name containing one of these,
 * case-insensitively, holds a secret. */
static int sensitive_key(const char *k)
{
    static const char *const words[] = {"access_token", "api_key",  "apikey",      "authorization",
                                        "passphrase",   "passwd",   "password",    "private_key",
                                        "secret",       "token",    "keyfile_dict", "service_account"};
    if (!k) return 0;
    char *low = xstrdup(k);
    for (char *p = low; *p; p++) *p = (char)tolower((unsigned char)*p);
    int hit = 0;
    for (size_t i = 0; i < GUST_ARRAY_LEN(words) && !hit; i++) hit = strstr(low, words[i]) != NULL;
    free(low);
    return hit;
}

/* Replace the value of every sensitive key with "***", down to max_depth levels (-1 = all).
 * Returns how many were masked. */
static int mask_json(cJSON *j, int max_depth)
{
    int n = 0;
    for (cJSON *c = j ? j->child : NULL, *next; c; c = next) {
        next = c->next;
        if (c->string && sensitive_key(c->string) && !cJSON_IsNull(c)) {
            cJSON_ReplaceItemInObjectCaseSensitive(j, c->string, cJSON_CreateString(MASK));
            n++;
        } else if (max_depth != 0 && (cJSON_IsObject(c) || cJSON_IsArray(c))) {
            n += mask_json(c, max_depth < 0 ? -1 : max_depth - 1);
        }
    }
    return n;
}

/* A connection's extra as it may be shown: secret keys masked at any depth. Text that is not
 * JSON is shown as it is (as Airflow does: there is nothing to pick out in it). Caller frees. */
static char *masked_extra(const char *extra)
{
    if (!extra) return NULL;
    cJSON *j = cJSON_Parse(extra);
    if (!j) return xstrdup(extra);
    char *out = mask_json(j, -1) ? cJSON_PrintUnformatted(j) : xstrdup(extra);
    cJSON_Delete(j);
    return out;
}

/* A variable's value as it may be shown: "***" under a secret-looking key; for a JSON object,
 * its secret-looking top-level keys masked (Airflow's max_depth=1); else as stored. */
static char *masked_value(const char *key, const char *val)
{
    if (!val) return xstrdup("");
    if (sensitive_key(key)) return xstrdup(MASK);
    if (*val != '{') return xstrdup(val);
    cJSON *j = cJSON_Parse(val);
    char *out = cJSON_IsObject(j) && mask_json(j, 0) ? cJSON_PrintUnformatted(j) : xstrdup(val);
    cJSON_Delete(j);
    return out;
}

static void add_int_or_null(cJSON *o, const char *name, int64_t v)
{
    if (v == STORE_KVQ_NONE)
        cJSON_AddNullToObject(o, name);
    else
        cJSON_AddNumberToObject(o, name, (double)v);
}

/* A JSON object text as an object (null when absent or not an object). */
static void add_object_text(cJSON *o, const char *name, const char *text)
{
    cJSON *v = text ? cJSON_Parse(text) : NULL;
    if (!cJSON_IsObject(v)) {
        cJSON_Delete(v);
        v = cJSON_CreateNull();
    }
    cJSON_AddItemToObject(o, name, v);
}

/* An audit record's extra: {"name": value} (value NULL = just the name's JSON null). Caller frees. */
static char *audit_extra(const char *name, const char *value)
{
    cJSON *x = cJSON_CreateObject();
    api_add_str(x, name, value);
    char *t = cJSON_PrintUnformatted(x);
    cJSON_Delete(x);
    return t;
}

static void audit1(ApiReq *r, const char *event, const char *name, const char *value)
{
    char *extra = audit_extra(name, value);
    api_audit(r, event, NULL, NULL, NULL, extra);
    free(extra);
}

/* An integer path parameter: 0 ok, -1 after answering 422 as FastAPI does. */
static int path_int(ApiReq *r, ApiResp *out, int idx, const char *name, int64_t *v)
{
    const char *s = idx < r->nparams ? r->params[idx] : NULL;
    char *end = NULL;
    errno = 0;
    long long x = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || errno || !end || *end) {
        api_error_422(out, "path", name, "Input should be a valid integer, unable to parse string as an integer");
        return -1;
    }
    *v = x;
    return 0;
}

/* A list of values from a repeated query argument, each also split at commas
 * (?x=a&x=b,c gives a, b, c). Strings are copied into *hold (caller frees it with
 * multi_free). Returns how many. */
typedef struct Multi {
    const char *v[MAX_MULTI];
    int n;
    char *held[MAX_MULTI];
    int nheld;
} Multi;

static void multi_get(ApiReq *r, const char *name, Multi *m)
{
    memset(m, 0, sizeof *m);
    const char *raw[MAX_MULTI];
    int n = api_query_all(r, name, raw, MAX_MULTI);
    for (int i = 0; i < n && m->nheld < MAX_MULTI; i++) {
        char *copy = xstrdup(raw[i]);
        m->held[m->nheld++] = copy;
        for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && m->n < MAX_MULTI;
             tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ') tok++;
            size_t l = strlen(tok);
            while (l && tok[l - 1] == ' ') tok[--l] = 0;
            if (*tok) m->v[m->n++] = tok;
        }
    }
}

static void multi_free(Multi *m)
{
    for (int i = 0; i < m->nheld; i++) free(m->held[i]);
    m->nheld = m->n = 0;
}

static int multi_has(const Multi *m, const char *v)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->v[i], v) == 0) return 1;
    return 0;
}

/* update_mask (?update_mask=a&update_mask=b or a,b): every name must be one of allowed[]
 * (NULL-ended). 0 ok, -1 after answering 400. */
static int get_update_mask(ApiReq *r, ApiResp *out, const char *const *allowed, Multi *m)
{
    multi_get(r, "update_mask", m);
    for (int i = 0; i < m->n; i++) {
        int ok = 0;
        for (int j = 0; allowed[j] && !ok; j++) ok = strcmp(allowed[j], m->v[i]) == 0;
        if (!ok) {
            StrBuf b = {0};
            for (int j = 0; allowed[j]; j++) sb_printf(&b, "%s%s", j ? ", " : "", allowed[j]);
            api_error(out, 400, "update_mask: '%s' is not a field that can be updated; the fields are: %s", m->v[i],
                      sb_str(&b));
            sb_free(&b);
            multi_free(m);
            return -1;
        }
    }
    return 0;
}

/* Whether a PATCH changes field: it is in the body and, when a mask is given, in the mask. */
static int patch_sets(const cJSON *body, const Multi *mask, const char *field)
{
    if (!cJSON_GetObjectItemCaseSensitive(body, field)) return 0;
    return mask->n == 0 || multi_has(mask, field);
}

static int paged_list_args(ApiReq *r, ApiResp *out, Store *s, StoreKvqList which, const char *const *names, int dflt,
                           char *order, size_t orderlen, StoreKvqPage *pg)
{
    int limit, offset;
    if (api_page(r, out, &limit, &offset) != 0) return -1;
    if (api_order_by(r, out, names, store_kvq_order_columns(s, which), dflt, order, orderlen) != 0) return -1;
    pg->order_sql = order;
    pg->limit = limit;
    pg->offset = offset;
    return 0;
}

/* ---- body checking, in pydantic's words -------------------------------------------------------- */

typedef enum FieldType { F_STR, F_INT, F_BOOL, F_OBJ, F_ANY } FieldType;

typedef struct FieldSpec {
    const char *name;
    FieldType type;
    int required;
    int nullable;
    size_t maxlen;     /* F_STR: characters, 0 = no limit */
    long long lo, hi;  /* F_INT */
} FieldSpec;

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += (*p & 0xC0) != 0x80;
    return n;
}

/* Check doc against spec (ended by a NULL name): unknown keys, required fields, types, text
 * validity, lengths and ranges. where names the body in messages ("body", or
 * "body.actions[0].entities[1]"). 0 ok, -1 after answering 422. */
static int body_check(ApiResp *out, const cJSON *doc, const FieldSpec *spec, const char *where)
{
    if (!cJSON_IsObject(doc)) {
        api_error_422(out, where, NULL, "Input should be a valid dictionary or object");
        return -1;
    }
    for (const cJSON *it = doc->child; it; it = it->next) {
        int known = 0;
        for (const FieldSpec *f = spec; f->name && !known; f++) known = strcmp(f->name, it->string) == 0;
        if (!known) {
            api_error_422(out, where, it->string, "Extra inputs are not permitted");
            return -1;
        }
    }
    for (const FieldSpec *f = spec; f->name; f++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, f->name);
        if (!v) {
            if (f->required) {
                api_error_422(out, where, f->name, "Field required");
                return -1;
            }
            continue;
        }
        if (cJSON_IsNull(v)) {
            if (!f->nullable && f->type != F_ANY) {
                api_error_422(out, where, f->name, "Input should not be null");
                return -1;
            }
            continue;
        }
        switch (f->type) {
        case F_STR:
            if (!cJSON_IsString(v)) {
                api_error_422(out, where, f->name, "Input should be a valid string");
                return -1;
            }
            if (!text_ok(v->valuestring)) {
                api_error_422(out, where, f->name, "Input should be a valid string: not UTF-8 text");
                return -1;
            }
            if (f->maxlen && utf8_chars(v->valuestring) > f->maxlen) {
                api_error_422(out, where, f->name, "String should have at most %zu characters", f->maxlen);
                return -1;
            }
            break;
        case F_INT:
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || floor(v->valuedouble) != v->valuedouble) {
                api_error_422(out, where, f->name, "Input should be a valid integer");
                return -1;
            }
            if (v->valuedouble < (double)f->lo) {
                api_error_422(out, where, f->name, "Input should be greater than or equal to %lld", f->lo);
                return -1;
            }
            if (v->valuedouble > (double)f->hi) {
                api_error_422(out, where, f->name, "Input should be less than or equal to %lld", f->hi);
                return -1;
            }
            break;
        case F_BOOL:
            if (!cJSON_IsBool(v)) {
                api_error_422(out, where, f->name, "Input should be a valid boolean");
                return -1;
            }
            break;
        case F_OBJ:
            if (!cJSON_IsObject(v)) {
                api_error_422(out, where, f->name, "Input should be a valid dictionary");
                return -1;
            }
            break;
        case F_ANY:
            break;
        }
        /* cJSON passes bytes through unchecked: what is stored as text must be text */
        if (f->type == F_OBJ || f->type == F_ANY) {
            char *text = cJSON_PrintUnformatted(v);
            int good = text_ok(text);
            free(text);
            if (!good) {
                api_error_422(out, where, f->name, "Input should be valid JSON text: not UTF-8");
                return -1;
            }
        }
    }
    return 0;
}

static const char *jstr(const cJSON *doc, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- bulk: PATCH /variables, /connections, /pools ---------------------------------------------- */

/* One resource's side of a bulk request. */
typedef struct BulkOps {
    const char *what;          /* "variables", ... for messages */
    const char *key_field;     /* the entity's id field: "key", "connection_id", "name" */
    const FieldSpec *spec;     /* the entity body */
    const char *const *mask_fields;
    /* 1 exists, 0 not, -1 store failure */
    int (*exists)(ApiReq *r, Store *s, const char *key);
    /* 0 ok; -1 failure with a message in err (a store failure: *status 503; refused: 400/409) */
    int (*create)(ApiReq *r, Store *s, const cJSON *e, int *status, char *err, size_t errlen);
    int (*update)(ApiReq *r, Store *s, const cJSON *e, const Multi *mask, int *status, char *err, size_t errlen);
    int (*remove)(ApiReq *r, Store *s, const char *key, int *status, char *err, size_t errlen);
} BulkOps;

static void bulk_error(cJSON *errors, const char *msg, int status)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "error", msg);
    cJSON_AddNumberToObject(e, "status_code", status);
    cJSON_AddItemToArray(errors, e);
}

/* The result object of one action kind (create/update/delete), made on first use. */
static cJSON *bulk_result(cJSON *resp, const char *kind)
{
    cJSON *o = cJSON_GetObjectItemCaseSensitive(resp, kind);
    if (cJSON_IsObject(o)) return o;
    o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "success", cJSON_CreateArray());
    cJSON_AddItemToObject(o, "errors", cJSON_CreateArray());
    cJSON_ReplaceItemInObjectCaseSensitive(resp, kind, o);
    return o;
}

static const char *entity_key(const BulkOps *ops, const cJSON *e)
{
    return cJSON_IsString(e) ? e->valuestring : jstr(e, ops->key_field);
}

/* Validate the whole body before doing anything: 0 ok, -1 after answering 422. */
static int bulk_validate(ApiResp *out, const cJSON *body, const BulkOps *ops)
{
    static const char *const top[] = {"actions", NULL};
    if (api_body_only(out, body, top) != 0) return -1;
    const cJSON *actions = cJSON_GetObjectItemCaseSensitive(body, "actions");
    if (!actions) {
        api_error_422(out, "body", "actions", "Field required");
        return -1;
    }
    if (!cJSON_IsArray(actions)) {
        api_error_422(out, "body", "actions", "Input should be a valid list");
        return -1;
    }
    int i = 0;
    const cJSON *a;
    cJSON_ArrayForEach(a, actions)
    {
        char where[96];
        snprintf(where, sizeof where, "body.actions[%d]", i);
        const char *kind = jstr(a, "action");
        int create = kind && strcmp(kind, "create") == 0, update = kind && strcmp(kind, "update") == 0,
            del = kind && strcmp(kind, "delete") == 0;
        if (!cJSON_IsObject(a) || !(create || update || del)) {
            api_error_422(out, where, "action", "Input tag does not match any of the expected tags: 'create', "
                                                "'update', 'delete'");
            return -1;
        }
        static const char *const f_create[] = {"action", "entities", "action_on_existence", NULL};
        static const char *const f_update[] = {"action", "entities", "action_on_non_existence", "update_mask", NULL};
        static const char *const f_delete[] = {"action", "entities", "action_on_non_existence", NULL};
        for (const cJSON *it = a->child; it; it = it->next) {
            const char *const *allowed = create ? f_create : update ? f_update : f_delete;
            int ok = 0;
            for (int k = 0; allowed[k] && !ok; k++) ok = strcmp(allowed[k], it->string) == 0;
            if (!ok) {
                api_error_422(out, where, it->string, "Extra inputs are not permitted");
                return -1;
            }
        }
        const cJSON *on = cJSON_GetObjectItemCaseSensitive(a, create ? "action_on_existence" : "action_on_non_existence");
        if (on && !(cJSON_IsString(on) && (strcmp(on->valuestring, "fail") == 0 || strcmp(on->valuestring, "skip") == 0 ||
                                           (create && strcmp(on->valuestring, "overwrite") == 0)))) {
            api_error_422(out, where, on->string,
                          create ? "Input should be 'fail', 'skip' or 'overwrite'" : "Input should be 'fail' or 'skip'");
            return -1;
        }
        const cJSON *mask = cJSON_GetObjectItemCaseSensitive(a, "update_mask");
        if (mask && !cJSON_IsNull(mask)) {
            const cJSON *m;
            int bad = !cJSON_IsArray(mask);
            cJSON_ArrayForEach(m, mask)
            {
                int ok = 0;
                for (int k = 0; cJSON_IsString(m) && ops->mask_fields[k] && !ok; k++)
                    ok = strcmp(ops->mask_fields[k], m->valuestring) == 0;
                bad |= !ok;
            }
            if (bad) {
                api_error_422(out, where, "update_mask", "Input should be a list of field names to update");
                return -1;
            }
        }
        const cJSON *ents = cJSON_GetObjectItemCaseSensitive(a, "entities");
        if (!cJSON_IsArray(ents)) {
            api_error_422(out, where, "entities", ents ? "Input should be a valid list" : "Field required");
            return -1;
        }
        int j = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, ents)
        {
            char ew[128];
            snprintf(ew, sizeof ew, "body.actions[%d].entities[%d]", i, j++);
            if (del && cJSON_IsString(e)) {
                if (!text_ok(e->valuestring) || !*e->valuestring) {
                    api_error_422(out, ew, NULL, "Input should be a non-empty string");
                    return -1;
                }
                continue;
            }
            if (body_check(out, e, ops->spec, ew) != 0) return -1;
        }
        i++;
    }
    return 0;
}

static void bulk_run(ApiReq *r, ApiResp *out, const BulkOps *ops, const char *audit_event)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    cJSON *body;
    if (api_body_object(r, out, &body) != 0) return;
    if (bulk_validate(out, body, ops) != 0) {
        cJSON_Delete(body);
        return;
    }
    cJSON *resp = cJSON_CreateObject();
    cJSON_AddNullToObject(resp, "create");
    cJSON_AddNullToObject(resp, "update");
    cJSON_AddNullToObject(resp, "delete");
    const cJSON *a;
    int failed_store = 0;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(body, "actions"))
    {
        const char *kind = jstr(a, "action");
        int create = strcmp(kind, "create") == 0, del = strcmp(kind, "delete") == 0;
        const char *on = jstr(a, create ? "action_on_existence" : "action_on_non_existence");
        if (!on) on = "fail";
        cJSON *res = bulk_result(resp, kind);
        cJSON *success = cJSON_GetObjectItemCaseSensitive(res, "success");
        cJSON *errors = cJSON_GetObjectItemCaseSensitive(res, "errors");
        const cJSON *ents = cJSON_GetObjectItemCaseSensitive(a, "entities");
        Multi mask;
        memset(&mask, 0, sizeof mask);
        const cJSON *m;
        cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(a, "update_mask"))
        {
            if (mask.n < MAX_MULTI) mask.v[mask.n++] = m->valuestring;
        }
        /* As Airflow: with "fail", the action stops before changing anything when one entity
         * already exists (create) or does not (update, delete). */
        StrBuf clash = {0};
        int nclash = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, ents)
        {
            const char *key = entity_key(ops, e);
            int ex = ops->exists(r, s, key);
            if (ex < 0) {
                failed_store = 1;
                break;
            }
            if (create ? ex == 1 : ex == 0) sb_printf(&clash, "%s'%s'", nclash++ ? ", " : "", key);
        }
        if (failed_store) {
            sb_free(&clash);
            break;
        }
        if (nclash && strcmp(on, "fail") == 0) {
            char msg[1200];
            snprintf(msg, sizeof msg, "The %s with these %ss: {%s} %s.", ops->what, ops->key_field, sb_str(&clash),
                     create ? "already exist" : "were not found");
            bulk_error(errors, msg, create ? 409 : 404);
            sb_free(&clash);
            continue;
        }
        sb_free(&clash);
        cJSON_ArrayForEach(e, ents)
        {
            const char *key = entity_key(ops, e);
            int ex = ops->exists(r, s, key);
            if (ex < 0) {
                failed_store = 1;
                break;
            }
            int status = 0, rc;
            char err[512] = "";
            if (create && ex == 1) {
                if (strcmp(on, "skip") == 0) continue;
                rc = ops->update(r, s, e, &mask, &status, err, sizeof err); /* overwrite */
            } else if (create) {
                rc = ops->create(r, s, e, &status, err, sizeof err);
            } else if (ex == 0) {
                continue; /* skip: nothing to update or delete */
            } else if (del) {
                rc = ops->remove(r, s, key, &status, err, sizeof err);
            } else {
                rc = ops->update(r, s, e, &mask, &status, err, sizeof err);
            }
            if (rc == 0) {
                cJSON_AddItemToArray(success, cJSON_CreateString(key));
            } else {
                bulk_error(errors, err, status ? status : 503);
            }
        }
        if (failed_store) break;
    }
    cJSON_Delete(body);
    if (failed_store) {
        cJSON_Delete(resp);
        api_store_error(out, s);
        return;
    }
    char *extra = cJSON_PrintUnformatted(resp);
    api_audit(r, audit_event, NULL, NULL, NULL, extra);
    free(extra);
    api_json(out, 200, resp);
}

/* ---- variables -------------------------------------------------------------------------------- */

static const FieldSpec var_spec[] = {
    {"key", F_STR, 1, 0, 250, 0, 0},
    {"value", F_ANY, 1, 1, 0, 0, 0},
    {"description", F_STR, 0, 1, 0, 0, 0},
    {"team_name", F_STR, 0, 1, 50, 0, 0},
    {NULL, F_ANY, 0, 0, 0, 0, 0},
};
static const char *const var_mask_fields[] = {"key", "value", "description", NULL};

static cJSON *var_json(const char *key, const char *val, const char *description)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key", key);
    char *shown = masked_value(key, val);
    cJSON_AddStringToObject(o, "value", shown);
    free(shown);
    api_add_str(o, "description", description);
    cJSON_AddBoolToObject(o, "is_encrypted", 0);
    cJSON_AddNullToObject(o, "team_name");
    return o;
}

/* The value to store: a JSON string as it is, any other JSON value as its JSON text
 * (Airflow's VariableBody takes any JSON value). Caller frees. */
static char *var_value_text(const cJSON *v)
{
    if (cJSON_IsString(v)) return xstrdup(v->valuestring);
    return v ? cJSON_PrintUnformatted(v) : xstrdup("");
}

static void h_var_list(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    char order[128];
    StoreKvqPage pg;
    if (paged_list_args(r, out, s, STORE_KVQ_VARS, store_kvq_var_order, 0, order, sizeof order, &pg) != 0) return;
    StoreVariableList l;
    int64_t total = 0;
    if (store_kvq_var_list(s, api_query(r, "variable_key_pattern"), &pg, &l, &total) != 0) {
        api_store_error(out, s);
        return;
    }
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "variables");
    for (size_t i = 0; i < l.n; i++)
        cJSON_AddItemToArray(arr, var_json(l.items[i].key, l.items[i].val, l.items[i].description));
    cJSON_AddNumberToObject(doc, "total_entries", (double)total);
    store_var_list_free(&l);
    api_json(out, 200, doc);
}

static void var_not_found(ApiResp *out, const char *key)
{
    api_error(out, 404, "The Variable with key: `%s` was not found", key);
}

static void h_var_get(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    const char *key = r->params[0];
    int missing = 0;
    StoreVariable *v = text_ok(key) ? store_var_get(s, key, &missing) : NULL;
    if (!v) {
        if (missing || !text_ok(key)) var_not_found(out, key);
        else api_store_error(out, s);
        return;
    }
    api_json(out, 200, var_json(v->key, v->val, v->description));
    store_var_free(v);
}

static int var_exists(ApiReq *r, Store *s, const char *key)
{
    (void)r;
    if (!text_ok(key)) return 0;
    int missing = 0;
    StoreVariable *v = store_var_get(s, key, &missing);
    store_var_free(v);
    return v ? 1 : missing ? 0 : -1;
}

static int var_create(ApiReq *r, Store *s, const cJSON *e, int *status, char *err, size_t errlen)
{
    (void)r;
    const char *key = jstr(e, "key");
    char *val = var_value_text(cJSON_GetObjectItemCaseSensitive(e, "value"));
    int rc = store_kvq_var_add(s, key, val, jstr(e, "description"));
    free(val);
    if (rc == STORE_KVQ_DONE) return 0;
    if (rc == STORE_KVQ_EXISTS) {
        *status = 409;
        snprintf(err, errlen, "The Variable with key: `%s` already exists", key);
    } else {
        *status = 503;
        snprintf(err, errlen, "the store is unavailable: %s", store_last_error(s));
    }
    return -1;
}

/* Apply a VariableBody to the stored variable: the fields present (and in the mask, if one
 * is given) change, the others stay. */
static int var_update(ApiReq *r, Store *s, const cJSON *e, const Multi *mask, int *status, char *err, size_t errlen)
{
    (void)r;
    const char *key = jstr(e, "key");
    int missing = 0;
    StoreVariable *cur = store_var_get(s, key, &missing);
    if (!cur) {
        *status = missing ? 404 : 503;
        if (missing) snprintf(err, errlen, "The Variable with key: `%s` was not found", key);
        else snprintf(err, errlen, "the store is unavailable: %s", store_last_error(s));
        return -1;
    }
    char *val = patch_sets(e, mask, "value") ? var_value_text(cJSON_GetObjectItemCaseSensitive(e, "value"))
                                             : xstrdup(cur->val);
    const char *desc = patch_sets(e, mask, "description") ? jstr(e, "description") : cur->description;
    int rc = store_kvq_var_update(s, key, val, desc);
    free(val);
    store_var_free(cur);
    if (rc == STORE_KVQ_DONE) return 0;
    *status = rc == STORE_KVQ_MISSING ? 404 : 503;
    if (rc == STORE_KVQ_MISSING) snprintf(err, errlen, "The Variable with key: `%s` was not found", key);
    else snprintf(err, errlen, "the store is unavailable: %s", store_last_error(s));
    return -1;
}

static int var_remove(ApiReq *r, Store *s, const char *key, int *status, char *err, size_t errlen)
{
    (void)r;
    int rc = store_var_delete(s, key);
    if (rc == 1) return 0;
    *status = rc == 0 ? 404 : 503;
    if (rc == 0) snprintf(err, errlen, "The Variable with key: `%s` was not found", key);
    else snprintf(err, errlen, "the store is unavailable: %s", store_last_error(s));
    return -1;
}

/* Answer an update/create failure: the status the function chose, with its message. */
static void answer_failure(ApiResp *out, int status, const char *err)
{
    api_error(out, status ? status : 503, "%s", err);
}

static void h_var_post(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    cJSON *body;
    if (api_body_object(r, out, &body) != 0) return;
    if (body_check(out, body, var_spec, "body") != 0) {
        cJSON_Delete(body);
        return;
    }
    int status = 0;
    char err[512];
    if (var_create(r, s, body, &status, err, sizeof err) != 0) {
        answer_failure(out, status, err);
    } else {
        const char *key = jstr(body, "key");
        audit1(r, "api.post_variable", "key", key);
        char *val = var_value_text(cJSON_GetObjectItemCaseSensitive(body, "value"));
        api_json(out, 201, var_json(key, val, jstr(body, "description")));
        free(val);
    }
    cJSON_Delete(body);
}

static void h_var_patch(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    const char *key = r->params[0];
    Multi mask;
    if (get_update_mask(r, out, var_mask_fields, &mask) != 0) return;
    cJSON *body = NULL;
    if (api_body_object(r, out, &body) != 0) goto done;
    /* value is required only when it is what changes (Airflow requires it always) */
    FieldSpec spec[GUST_ARRAY_LEN(var_spec)];
    memcpy(spec, var_spec, sizeof spec);
    spec[1].required = mask.n == 0 || multi_has(&mask, "value");
    if (body_check(out, body, spec, "body") != 0) goto done;
    if (strcmp(jstr(body, "key"), key) != 0) {
        api_error(out, 400, "Invalid body, key from request body doesn't match uri parameter");
        goto done;
    }
    int status = 0;
    char err[512];
    if (var_update(r, s, body, &mask, &status, err, sizeof err) != 0) {
        answer_failure(out, status, err);
        goto done;
    }
    audit1(r, "api.patch_variable", "key", key);
    StoreVariable *v = store_var_get(s, key, NULL);
    if (v) api_json(out, 200, var_json(v->key, v->val, v->description));
    else api_store_error(out, s);
    store_var_free(v);
done:
    cJSON_Delete(body);
    multi_free(&mask);
}

static void h_var_delete(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    const char *key = r->params[0];
    if (!text_ok(key)) {
        var_not_found(out, key);
        return;
    }
    int status = 0;
    char err[512];
    if (var_remove(r, s, key, &status, err, sizeof err) != 0) {
        answer_failure(out, status, err);
        return;
    }
    audit1(r, "api.delete_variable", "key", key);
    api_no_content(out);
}

static const BulkOps var_bulk = {"variables", "key", var_spec, var_mask_fields, var_exists, var_create, var_update,
                                 var_remove};

static void h_var_bulk(ApiReq *r, ApiResp *out)
{
    bulk_run(r, out, &var_bulk, "api.bulk_variables");
}

/* ---- connections ------------------------------------------------------------------------------ */

static const FieldSpec conn_spec[] = {
    {"connection_id", F_STR, 1, 0, 200, 0, 0},
    {"conn_type", F_STR, 1, 0, 0, 0, 0},
    {"description", F_STR, 0, 1, 0, 0, 0},
    {"host", F_STR, 0, 1, 0, 0, 0},
    {"login", F_STR, 0, 1, 0, 0, 0},
    {"schema", F_STR, 0, 1, 0, 0, 0},
    {"port", F_INT, 0, 1, 0, 0, 65535},
    {"password", F_STR, 0, 1, 0, 0, 0},
    {"extra", F_STR, 0, 1, 0, 0, 0},
    {"team_name", F_STR, 0, 1, 50, 0, 0},
    {NULL, F_ANY, 0, 0, 0, 0, 0},
};
static const char *const conn_mask_fields[] = {"connection_id", "conn_type", "description", "host",  "login",
                                               "schema",        "port",      "password",    "extra", NULL};

/* What body_check cannot say about a ConnectionBody: the id's pattern and that extra is a
 * JSON object. 0 ok, -1 after answering 422. */
static int conn_check(ApiResp *out, const cJSON *e, const char *where)
{
    if (body_check(out, e, conn_spec, where) != 0) return -1;
    const char *id = jstr(e, "connection_id");
    if (!store_conn_id_valid(id)) {
        api_error_422(out, where, "connection_id", "String should match pattern '^[\\w.-]+$'");
        return -1;
    }
    if (!*jstr(e, "conn_type")) {
        api_error_422(out, where, "conn_type", "String should have at least 1 character");
        return -1;
    }
    const char *extra = jstr(e, "extra");
    if (extra) {
        cJSON *j = cJSON_Parse(extra);
        int obj = cJSON_IsObject(j);
        cJSON_Delete(j);
        if (!obj) {
            api_error_422(out, where, "extra",
                          "Value error, The `extra` field must be a valid JSON object (e.g., {\"key\": \"value\"})");
            return -1;
        }
    }
    return 0;
}

static cJSON *conn_json(const StoreConnection *c)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "connection_id", c->conn_id);
    cJSON_AddStringToObject(o, "conn_type", c->conn_type ? c->conn_type : "");
    api_add_str(o, "description", c->description);
    api_add_str(o, "host", c->host);
    api_add_str(o, "login", c->login);
    api_add_str(o, "schema", c->schema);
    if (c->port)
        cJSON_AddNumberToObject(o, "port", c->port);
    else
        cJSON_AddNullToObject(o, "port");
    /* never the password itself; one that cannot be decrypted is still there */
    api_add_str(o, "password", c->password || c->error ? MASK : NULL);
    char *extra = c->error ? NULL : masked_extra(c->extra);
    api_add_str(o, "extra", extra);
    free(extra);
    cJSON_AddNullToObject(o, "team_name");
    return o;
}

static void conn_not_found(ApiResp *out, const char *id)
{
    api_error(out, 404, "The Connection with connection_id: `%s` was not found", id);
}

static void h_conn_list(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    char order[128];
    StoreKvqPage pg;
    if (paged_list_args(r, out, s, STORE_KVQ_CONNS, store_kvq_conn_order, 0, order, sizeof order, &pg) != 0) return;
    StoreConnectionList l;
    int64_t total = 0;
    if (store_kvq_conn_list(s, r->ctx->conn_key, NULL, api_query(r, "connection_id_pattern"), &pg, &l, &total) != 0) {
        api_store_error(out, s);
        return;
    }
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "connections");
    for (size_t i = 0; i < l.n; i++) cJSON_AddItemToArray(arr, conn_json(&l.items[i]));
    cJSON_AddNumberToObject(doc, "total_entries", (double)total);
    store_conn_list_free(&l);
    api_json(out, 200, doc);
}

/* One connection, decrypted (or with its error when it cannot be): 1 found, 0 not, -1 store
 * failure. *c is the caller's to clear (store_conn_list_free on the list). */
static int conn_fetch(ApiReq *r, Store *s, const char *id, StoreConnectionList *l)
{
    memset(l, 0, sizeof *l);
    if (!text_ok(id)) return 0;
    StoreKvqPage pg = {NULL, 1, 0};
    int64_t total = 0;
    if (store_kvq_conn_list(s, r->ctx->conn_key, id, NULL, &pg, l, &total) != 0) return -1;
    return l->n > 0;
}

static void h_conn_get(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    StoreConnectionList l;
    int rc = conn_fetch(r, s, r->params[0], &l);
    if (rc < 0) api_store_error(out, s);
    else if (rc == 0) conn_not_found(out, r->params[0]);
    else api_json(out, 200, conn_json(&l.items[0]));
    store_conn_list_free(&l);
}

static int conn_exists(ApiReq *r, Store *s, const char *id)
{
    (void)r;
    return store_kvq_conn_exists(s, id);
}

/* The body's fields (borrowed from e) into c, over what c holds already; with merge, only
 * the fields patch_sets says, and a password or extra value of "***" keeps what is stored. */
static void conn_apply(StoreConnection *c, const cJSON *e, const Multi *mask, int merge)
{
    static const char *const texts[] = {"conn_type", "description", "host", "login", "schema", NULL};
    char **slots[] = {&c->conn_type, &c->description, &c->host, &c->login, &c->schema};
    for (int i = 0; texts[i]; i++)
        if (!merge || patch_sets(e, mask, texts[i])) {
            free(*slots[i]);
            *slots[i] = xstrdup(jstr(e, texts[i]));
        }
    if (!merge || patch_sets(e, mask, "port")) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "port");
        c->port = cJSON_IsNumber(p) ? (int)p->valuedouble : 0;
    }
    if (!merge || patch_sets(e, mask, "password")) {
        const char *pw = jstr(e, "password");
        if (!(merge && pw && strcmp(pw, MASK) == 0)) {
            free(c->password);
            c->password = xstrdup(pw);
        }
    }
    if (!merge || patch_sets(e, mask, "extra")) {
        const char *extra = jstr(e, "extra");
        cJSON *nj = extra ? cJSON_Parse(extra) : NULL, *old = merge && c->extra ? cJSON_Parse(c->extra) : NULL;
        /* a masked value sent back keeps the stored one */
        for (cJSON *it = nj ? nj->child : NULL; it && old; it = it->next) {
            const cJSON *was = cJSON_GetObjectItemCaseSensitive(old, it->string);
            if (cJSON_IsString(it) && strcmp(it->valuestring, MASK) == 0 && was)
                cJSON_ReplaceItemInObjectCaseSensitive(nj, it->string, cJSON_Duplicate(was, 1));
        }
        free(c->extra);
        c->extra = nj ? cJSON_PrintUnformatted(nj) : NULL;
        cJSON_Delete(nj);
        cJSON_Delete(old);
    }
}

static int conn_store_failure(Store *s, int *status, char *err, size_t errlen)
{
    *status = 503;
    snprintf(err, errlen, "the store is unavailable: %s", store_last_error(s));
    return -1;
}

static int conn_create(ApiReq *r, Store *s, const cJSON *e, int *status, char *err, size_t errlen)
{
    StoreConnection c;
    memset(&c, 0, sizeof c);
    c.conn_id = xstrdup(jstr(e, "connection_id"));
    conn_apply(&c, e, NULL, 0);
    int rc = 0;
    if (!r->ctx->conn_key && (c.password || c.extra)) {
        *status = 503;
        snprintf(err, errlen, "cannot store the secrets of connection '%s': the API has no key to encrypt them "
                              "with (core.secret_key)", c.conn_id);
        rc = -1;
    } else if (store_conn_add(s, r->ctx->conn_key, &c) != 0) {
        if (store_kvq_conn_exists(s, c.conn_id) == 1) {
            *status = 409;
            snprintf(err, errlen, "The Connection with connection_id: `%s` already exists", c.conn_id);
        } else {
            conn_store_failure(s, status, err, errlen);
        }
        rc = -1;
    }
    store_conn_clear(&c);
    return rc;
}

static int conn_update(ApiReq *r, Store *s, const cJSON *e, const Multi *mask, int *status, char *err, size_t errlen)
{
    const char *id = jstr(e, "connection_id");
    int missing = 0;
    StoreConnection *c = store_conn_get(s, r->ctx->conn_key, id, &missing);
    if (!c) {
        if (missing) {
            *status = 404;
            snprintf(err, errlen, "The Connection with connection_id: `%s` was not found", id);
            return -1;
        }
        return conn_store_failure(s, status, err, errlen);
    }
    conn_apply(c, e, mask, 1);
    int rc = 0;
    if (!r->ctx->conn_key && (c->password || c->extra)) {
        *status = 503;
        snprintf(err, errlen, "cannot store the secrets of connection '%s': the API has no key to encrypt them "
                              "with (core.secret_key)", id);
        rc = -1;
    } else if (store_conn_upsert(s, r->ctx->conn_key, c, NULL) != 0) {
        rc = conn_store_failure(s, status, err, errlen);
    }
    store_conn_free(c);
    return rc;
}

static int conn_remove(ApiReq *r, Store *s, const char *id, int *status, char *err, size_t errlen)
{
    (void)r;
    int rc = text_ok(id) ? store_conn_delete(s, id) : 0;
    if (rc == 1) return 0;
    if (rc < 0) return conn_store_failure(s, status, err, errlen);
    *status = 404;
    snprintf(err, errlen, "The Connection with connection_id: `%s` was not found", id);
    return -1;
}

static void h_conn_post(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    cJSON *body;
    if (api_body_object(r, out, &body) != 0) return;
    if (conn_check(out, body, "body") == 0) {
        int status = 0;
        char err[512];
        const char *id = jstr(body, "connection_id");
        StoreConnectionList l;
        memset(&l, 0, sizeof l);
        if (conn_create(r, s, body, &status, err, sizeof err) != 0) {
            answer_failure(out, status, err);
        } else if (conn_fetch(r, s, id, &l) != 1) {
            api_store_error(out, s);
        } else {
            audit1(r, "api.post_connection", "connection_id", id);
            api_json(out, 201, conn_json(&l.items[0]));
        }
        store_conn_list_free(&l);
    }
    cJSON_Delete(body);
}

static void h_conn_patch(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    const char *id = r->params[0];
    Multi mask;
    if (get_update_mask(r, out, conn_mask_fields, &mask) != 0) return;
    cJSON *body = NULL;
    StoreConnectionList l;
    memset(&l, 0, sizeof l);
    if (api_body_object(r, out, &body) != 0 || conn_check(out, body, "body") != 0) goto done;
    if (strcmp(jstr(body, "connection_id"), id) != 0) {
        api_error(out, 400, "The connection_id in the request body does not match the URL parameter");
        goto done;
    }
    int status = 0;
    char err[512];
    if (conn_update(r, s, body, &mask, &status, err, sizeof err) != 0) {
        answer_failure(out, status, err);
        goto done;
    }
    audit1(r, "api.patch_connection", "connection_id", id);
    if (conn_fetch(r, s, id, &l) == 1) api_json(out, 200, conn_json(&l.items[0]));
    else api_store_error(out, s);
done:
    store_conn_list_free(&l);
    cJSON_Delete(body);
    multi_free(&mask);
}

static void h_conn_delete(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    int status = 0;
    char err[512];
    if (conn_remove(r, s, r->params[0], &status, err, sizeof err) != 0) {
        answer_failure(out, status, err);
        return;
    }
    audit1(r, "api.delete_connection", "connection_id", r->params[0]);
    api_no_content(out);
}

/* Airflow's default: core.test_connection = Disabled. gust cannot load Airflow's hooks at
 * all, so testing stays disabled whatever the body. */
static void h_conn_test(ApiReq *r, ApiResp *out)
{
    (void)r;
    api_error(out, 403,
              "Testing connections is disabled in Airflow configuration. Contact your deployment admin to enable it.");
}

static const BulkOps conn_bulk = {"connections", "connection_id", conn_spec,   conn_mask_fields,
                                  conn_exists,   conn_create,     conn_update, conn_remove};

static void h_conn_bulk(ApiReq *r, ApiResp *out)
{
    /* ConnectionBody's own checks (pattern, extra) come on top of bulk_validate's */
    cJSON *body = NULL;
    if (r->body_len) body = cJSON_ParseWithLength(r->body, r->body_len);
    const cJSON *a;
    int i = 0;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(body, "actions"))
    {
        const cJSON *e;
        int j = 0;
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(a, "entities"))
        {
            char ew[128];
            snprintf(ew, sizeof ew, "body.actions[%d].entities[%d]", i, j++);
            if (cJSON_IsObject(e) && conn_check(out, e, ew) != 0) {
                cJSON_Delete(body);
                return;
            }
        }
        i++;
    }
    cJSON_Delete(body);
    bulk_run(r, out, &conn_bulk, "api.bulk_connections");
}

/* ---- pools ------------------------------------------------------------------------------------ */

static const FieldSpec pool_spec[] = {
    {"name", F_STR, 1, 0, 256, 0, 0},
    {"slots", F_INT, 1, 0, 0, -1, 2147483647LL},
    {"description", F_STR, 0, 1, 0, 0, 0},
    {"include_deferred", F_BOOL, 0, 0, 0, 0, 0},
    {"team_name", F_STR, 0, 1, 50, 0, 0},
    {NULL, F_ANY, 0, 0, 0, 0, 0},
};
/* PoolPatchBody; "name" is taken as well as "pool" (what PoolBody and PoolResponse call it) */
static const FieldSpec pool_patch_spec[] = {
    {"pool", F_STR, 0, 1, 256, 0, 0},
    {"name", F_STR, 0, 1, 256, 0, 0},
    {"slots", F_INT, 0, 1, 0, -1, 2147483647LL},
    {"description", F_STR, 0, 1, 0, 0, 0},
    {"include_deferred", F_BOOL, 0, 1, 0, 0, 0},
    {"team_name", F_STR, 0, 1, 50, 0, 0},
    {NULL, F_ANY, 0, 0, 0, 0, 0},
};
static const char *const pool_mask_fields[] = {"name", "pool", "slots", "description", "include_deferred", NULL};

static cJSON *pool_json(const StoreKvqPool *p)
{
    int occupied = p->running + p->queued + (p->include_deferred ? p->deferred : 0);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", p->name);
    cJSON_AddNumberToObject(o, "slots", p->slots);
    api_add_str(o, "description", p->description);
    cJSON_AddBoolToObject(o, "include_deferred", p->include_deferred);
    cJSON_AddNumberToObject(o, "occupied_slots", occupied);
    cJSON_AddNumberToObject(o, "running_slots", p->running);
    cJSON_AddNumberToObject(o, "queued_slots", p->queued);
    cJSON_AddNumberToObject(o, "scheduled_slots", p->scheduled);
    /* unlimited pools (slots -1) have -1 open slots: "no limit", like their slots */
    cJSON_AddNumberToObject(o, "open_slots", p->slots < 0 ? -1 : (double)p->slots - occupied);
    cJSON_AddNumberToObject(o, "deferred_slots", p->deferred);
    cJSON_AddNullToObject(o, "team_name");
    return o;
}

static void pool_not_found(ApiResp *out, const char *name)
{
    api_error(out, 404, "The Pool with name: `%s` was not found", name);
}

/* One pool with its usage: 1 found (*p set; free with store_kvq_pool_list_free(*p, 1)), 0 not, -1 error. */
static int pool_fetch(Store *s, const char *name, StoreKvqPool **p)
{
    *p = NULL;
    StoreKvqPage pg = {NULL, 1, 0};
    size_t n = 0;
    int64_t total = 0;
    if (store_kvq_pool_list(s, name, NULL, &pg, p, &n, &total) != 0) return -1;
    return n > 0;
}

static void h_pool_list(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    char order[128];
    StoreKvqPage pg;
    if (paged_list_args(r, out, s, STORE_KVQ_POOLS, store_kvq_pool_order, 0, order, sizeof order, &pg) != 0) return;
    StoreKvqPool *p;
    size_t n;
    int64_t total = 0;
    if (store_kvq_pool_list(s, NULL, api_query(r, "pool_name_pattern"), &pg, &p, &n, &total) != 0) {
        api_store_error(out, s);
        return;
    }
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "pools");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, pool_json(&p[i]));
    cJSON_AddNumberToObject(doc, "total_entries", (double)total);
    store_kvq_pool_list_free(p, n);
    api_json(out, 200, doc);
}

static void h_pool_get(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    StoreKvqPool *p;
    int rc = pool_fetch(s, r->params[0], &p);
    if (rc < 0) api_store_error(out, s);
    else if (rc == 0) pool_not_found(out, r->params[0]);
    else api_json(out, 200, pool_json(p));
    store_kvq_pool_list_free(p, rc > 0 ? 1 : 0);
}

static int pool_exists(ApiReq *r, Store *s, const char *name)
{
    (void)r;
    StoreKvqPool *p;
    int rc = pool_fetch(s, name, &p);
    store_kvq_pool_list_free(p, rc > 0 ? 1 : 0);
    return rc;
}

static int pool_store_failure(Store *s, int *status, char *err, size_t errlen)
{
    *status = 503;
    snprintf(err, errlen, "the store is unavailable: %s", store_last_error(s));
    return -1;
}

static int pool_create(ApiReq *r, Store *s, const cJSON *e, int *status, char *err, size_t errlen)
{
    (void)r;
    const char *name = jstr(e, "name");
    int rc = store_kvq_pool_add(s, name, (int)cJSON_GetObjectItemCaseSensitive(e, "slots")->valuedouble,
                                jstr(e, "description"),
                                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "include_deferred")));
    if (rc == STORE_KVQ_DONE) return 0;
    if (rc == STORE_KVQ_EXISTS) {
        *status = 409;
        snprintf(err, errlen, "The Pool with name: `%s` already exists", name);
        return -1;
    }
    return pool_store_failure(s, status, err, errlen);
}

/* Apply a pool body (PoolBody in bulk, PoolPatchBody in PATCH: its new name is "pool") to
 * the pool `name`. default_pool keeps its name and description (Airflow: "Only slots and
 * included_deferred can be modified on Default Pool"), unless they are sent unchanged. */
static int pool_apply(Store *s, const char *name, const cJSON *e, const Multi *mask, const char *name_field,
                      int *status, char *err, size_t errlen)
{
    StoreKvqPool *p;
    int rc = pool_fetch(s, name, &p);
    if (rc < 0) return pool_store_failure(s, status, err, errlen);
    if (rc == 0) {
        *status = 404;
        snprintf(err, errlen, "The Pool with name: `%s` was not found", name);
        return -1;
    }
    const char *new_name = p->name;
    int rename_masked = mask->n == 0 || multi_has(mask, "name") || multi_has(mask, "pool");
    if (rename_masked && jstr(e, name_field)) new_name = jstr(e, name_field);
    const cJSON *slots = cJSON_GetObjectItemCaseSensitive(e, "slots");
    int nslots = patch_sets(e, mask, "slots") && cJSON_IsNumber(slots) ? (int)slots->valuedouble : p->slots;
    const char *desc = patch_sets(e, mask, "description") ? jstr(e, "description") : p->description;
    const cJSON *incl = cJSON_GetObjectItemCaseSensitive(e, "include_deferred");
    int nincl = patch_sets(e, mask, "include_deferred") && cJSON_IsBool(incl) ? cJSON_IsTrue(incl)
                                                                               : p->include_deferred;
    int same_desc = (!desc && !p->description) || (desc && p->description && strcmp(desc, p->description) == 0);
    if (strcmp(name, STORE_DEFAULT_POOL) == 0 && (strcmp(new_name, name) != 0 || !same_desc)) {
        *status = 400;
        snprintf(err, errlen, "Only slots and included_deferred can be modified on Default Pool");
        store_kvq_pool_list_free(p, 1);
        return -1;
    }
    char *nn = xstrdup(new_name), *nd = xstrdup(desc);
    store_kvq_pool_list_free(p, 1);
    rc = store_kvq_pool_update(s, name, nn, nslots, nd, nincl);
    int result = 0;
    if (rc == STORE_KVQ_MISSING) {
        *status = 404;
        snprintf(err, errlen, "The Pool with name: `%s` was not found", name);
        result = -1;
    } else if (rc == STORE_KVQ_EXISTS) {
        *status = 409;
        snprintf(err, errlen, "The Pool with name: `%s` already exists", nn);
        result = -1;
    } else if (rc != STORE_KVQ_DONE) {
        result = pool_store_failure(s, status, err, errlen);
    }
    free(nn);
    free(nd);
    return result;
}

static int pool_update(ApiReq *r, Store *s, const cJSON *e, const Multi *mask, int *status, char *err, size_t errlen)
{
    (void)r;
    return pool_apply(s, jstr(e, "name"), e, mask, "name", status, err, errlen);
}

static int pool_remove(ApiReq *r, Store *s, const char *name, int *status, char *err, size_t errlen)
{
    (void)r;
    if (strcmp(name, STORE_DEFAULT_POOL) == 0) {
        *status = 400;
        snprintf(err, errlen, "Default Pool can't be deleted");
        return -1;
    }
    int rc = text_ok(name) ? store_pool_delete(s, name) : 0;
    if (rc == 1) return 0;
    if (rc < 0) return pool_store_failure(s, status, err, errlen);
    *status = 404;
    snprintf(err, errlen, "The Pool with name: `%s` was not found", name);
    return -1;
}

static void answer_pool(ApiResp *out, Store *s, const char *name, int status)
{
    StoreKvqPool *p;
    int rc = pool_fetch(s, name, &p);
    if (rc == 1) api_json(out, status, pool_json(p));
    else api_store_error(out, s);
    store_kvq_pool_list_free(p, rc > 0 ? 1 : 0);
}

static void h_pool_post(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    cJSON *body;
    if (api_body_object(r, out, &body) != 0) return;
    if (body_check(out, body, pool_spec, "body") == 0) {
        int status = 0;
        char err[512];
        if (pool_create(r, s, body, &status, err, sizeof err) != 0) {
            answer_failure(out, status, err);
        } else {
            audit1(r, "api.post_pool", "name", jstr(body, "name"));
            answer_pool(out, s, jstr(body, "name"), 201);
        }
    }
    cJSON_Delete(body);
}

static void h_pool_patch(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    const char *name = r->params[0];
    Multi mask;
    if (get_update_mask(r, out, pool_mask_fields, &mask) != 0) return;
    cJSON *body = NULL;
    if (api_body_object(r, out, &body) == 0 && body_check(out, body, pool_patch_spec, "body") == 0) {
        int status = 0;
        char err[512];
        const char *field = jstr(body, "pool") ? "pool" : "name";
        if (!text_ok(name)) {
            pool_not_found(out, name);
        } else if (pool_apply(s, name, body, &mask, field, &status, err, sizeof err) != 0) {
            answer_failure(out, status, err);
        } else {
            int renamed = jstr(body, field) && (mask.n == 0 || multi_has(&mask, "pool") || multi_has(&mask, "name"));
            audit1(r, "api.patch_pool", "name", name);
            answer_pool(out, s, renamed ? jstr(body, field) : name, 200);
        }
    }
    cJSON_Delete(body);
    multi_free(&mask);
}

static void h_pool_delete(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    int status = 0;
    char err[512];
    if (pool_remove(r, s, r->params[0], &status, err, sizeof err) != 0) {
        answer_failure(out, status, err);
        return;
    }
    audit1(r, "api.delete_pool", "name", r->params[0]);
    api_no_content(out);
}

static const BulkOps pool_bulk = {"pools", "name", pool_spec, pool_mask_fields, pool_exists, pool_create, pool_update,
                                  pool_remove};

static void h_pool_bulk(ApiReq *r, ApiResp *out)
{
    bulk_run(r, out, &pool_bulk, "api.bulk_pools");
}

/* ---- the event log ---------------------------------------------------------------------------- */

static cJSON *event_json(const StoreKvqEvent *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "event_log_id", (double)e->id);
    api_add_time(o, "when", e->dttm);
    api_add_str(o, "dag_id", e->dag_id);
    api_add_str(o, "task_id", e->task_id);
    api_add_str(o, "run_id", e->run_id);
    add_int_or_null(o, "map_index", e->map_index);
    add_int_or_null(o, "try_number", e->try_number);
    cJSON_AddStringToObject(o, "event", e->event ? e->event : "");
    api_add_time(o, "logical_date", e->logical_date == STORE_KVQ_NONE ? -1 : e->logical_date);
    api_add_str(o, "owner", e->owner);
    api_add_str(o, "extra", e->extra);
    /* gust has no display names: they are the ids */
    api_add_str(o, "dag_display_name", e->dag_id);
    api_add_str(o, "task_display_name", e->task_id);
    return o;
}

static void h_event_list(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    char order[128];
    StoreKvqPage pg;
    if (paged_list_args(r, out, s, STORE_KVQ_EVENTS, store_kvq_event_order, 0, order, sizeof order, &pg) != 0) return;
    StoreKvqEventFilter f;
    store_kvq_event_filter_init(&f);
    long long mi, tn;
    int64_t before, after;
    int rc;
    if ((rc = api_query_int(r, out, "map_index", -1, 1LL << 40, &mi)) < 0) return;
    if (rc) f.map_index = mi;
    if ((rc = api_query_int(r, out, "try_number", 0, 1LL << 40, &tn)) < 0) return;
    if (rc) f.try_number = tn;
    if ((rc = api_query_time(r, out, "before", &before)) < 0) return;
    if (rc) f.before = before;
    if ((rc = api_query_time(r, out, "after", &after)) < 0) return;
    if (rc) f.after = after;
    f.dag_id = api_query(r, "dag_id");
    f.task_id = api_query(r, "task_id");
    f.run_id = api_query(r, "run_id");
    f.owner = api_query(r, "owner");
    f.event = api_query(r, "event");
    f.dag_id_pattern = api_query(r, "dag_id_pattern");
    f.task_id_pattern = api_query(r, "task_id_pattern");
    f.run_id_pattern = api_query(r, "run_id_pattern");
    f.owner_pattern = api_query(r, "owner_pattern");
    f.event_pattern = api_query(r, "event_pattern");
    Multi inc, exc;
    multi_get(r, "included_events", &inc);
    multi_get(r, "excluded_events", &exc);
    f.included = inc.v;
    f.n_included = inc.n;
    f.excluded = exc.v;
    f.n_excluded = exc.n;
    StoreKvqEvent *ev;
    size_t n;
    int64_t total = 0;
    if (store_kvq_event_list(s, &f, &pg, &ev, &n, &total) != 0) {
        api_store_error(out, s);
    } else {
        cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "event_logs");
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, event_json(&ev[i]));
        cJSON_AddNumberToObject(doc, "total_entries", (double)total);
        store_kvq_event_list_free(ev, n);
        api_json(out, 200, doc);
    }
    multi_free(&inc);
    multi_free(&exc);
}

static void h_event_get(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    int64_t id;
    if (path_int(r, out, 0, "event_log_id", &id) != 0) return;
    if (id <= 0) {
        api_error(out, 404, "The Event Log with id: `%lld` not found", (long long)id);
        return;
    }
    StoreKvqEventFilter f;
    store_kvq_event_filter_init(&f);
    f.id = id;
    StoreKvqPage pg = {NULL, 1, 0};
    StoreKvqEvent *ev = NULL;
    size_t n = 0;
    int64_t total = 0;
    if (store_kvq_event_list(s, &f, &pg, &ev, &n, &total) != 0) api_store_error(out, s);
    else if (!n) api_error(out, 404, "The Event Log with id: `%lld` not found", (long long)id);
    else api_json(out, 200, event_json(&ev[0]));
    store_kvq_event_list_free(ev, n);
}

/* ---- assets ----------------------------------------------------------------------------------- */

static cJSON *refs_json(const StoreKvqAssetRef *v, size_t n, int tasks)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dag_id", v[i].dag_id);
        if (tasks) cJSON_AddStringToObject(o, "task_id", v[i].task_id ? v[i].task_id : "");
        api_add_time(o, "created_at", v[i].created_at);
        api_add_time(o, "updated_at", v[i].updated_at);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

static cJSON *asset_json(const StoreKvqAsset *a)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)a->id);
    cJSON_AddStringToObject(o, "name", a->name ? a->name : a->uri);
    cJSON_AddStringToObject(o, "uri", a->uri);
    cJSON_AddStringToObject(o, "group", a->group ? a->group : "asset");
    add_object_text(o, "extra", a->extra);
    api_add_time(o, "created_at", a->created_at);
    api_add_time(o, "updated_at", a->updated_at);
    cJSON_AddItemToObject(o, "scheduled_dags", refs_json(a->scheduled, a->n_scheduled, 0));
    cJSON_AddItemToObject(o, "producing_tasks", refs_json(a->producing, a->n_producing, 1));
    cJSON_AddItemToObject(o, "consuming_tasks", refs_json(a->consuming, a->n_consuming, 1));
    cJSON_AddItemToObject(o, "aliases", cJSON_CreateArray());  /* gust has no asset aliases */
    cJSON_AddItemToObject(o, "watchers", cJSON_CreateArray()); /* nor watchers */
    cJSON *last = cJSON_AddObjectToObject(o, "last_asset_event");
    add_int_or_null(last, "id", a->last_event_id);
    api_add_time(last, "timestamp", a->last_event_at == STORE_KVQ_NONE ? -1 : a->last_event_at);
    return o;
}

static void h_asset_list(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    char order[128];
    StoreKvqPage pg;
    if (paged_list_args(r, out, s, STORE_KVQ_ASSETS, store_kvq_asset_order, 0, order, sizeof order, &pg) != 0) return;
    /* only_active is checked, then ignored: gust keeps no inactive assets apart */
    if (api_query_bool(r, out, "only_active") < 0) return;
    Multi dags;
    multi_get(r, "dag_ids", &dags);
    StoreKvqAssetFilter f = {0, api_query(r, "uri_pattern"), api_query(r, "name_pattern"), dags.v, dags.n};
    StoreKvqAsset *a;
    size_t n;
    int64_t total = 0;
    if (store_kvq_asset_list(s, &f, &pg, &a, &n, &total) != 0) {
        api_store_error(out, s);
    } else {
        cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "assets");
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, asset_json(&a[i]));
        cJSON_AddNumberToObject(doc, "total_entries", (double)total);
        store_kvq_asset_list_free(a, n);
        api_json(out, 200, doc);
    }
    multi_free(&dags);
}

static void h_asset_get(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    int64_t id;
    if (path_int(r, out, 0, "asset_id", &id) != 0) return;
    StoreKvqAssetFilter f = {id > 0 ? id : -1, NULL, NULL, NULL, 0};
    StoreKvqPage pg = {NULL, 1, 0};
    StoreKvqAsset *a = NULL;
    size_t n = 0;
    int64_t total = 0;
    if (id > 0 && store_kvq_asset_list(s, &f, &pg, &a, &n, &total) != 0) api_store_error(out, s);
    else if (!n) api_error(out, 404, "The Asset with ID: `%lld` was not found", (long long)id);
    else api_json(out, 200, asset_json(&a[0]));
    store_kvq_asset_list_free(a, n);
}

static void h_alias_list(ApiReq *r, ApiResp *out)
{
    int limit, offset;
    if (api_page(r, out, &limit, &offset) != 0) return;
    static const char *const names[] = {"id", "name", NULL};
    char order[64];
    if (api_order_by(r, out, names, names, 0, order, sizeof order) != 0) return;
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "asset_aliases", cJSON_CreateArray());
    cJSON_AddNumberToObject(doc, "total_entries", 0);
    api_json(out, 200, doc);
}

static void h_alias_get(ApiReq *r, ApiResp *out)
{
    int64_t id;
    if (path_int(r, out, 0, "asset_alias_id", &id) != 0) return;
    api_error(out, 404, "The Asset Alias with ID: `%lld` was not found", (long long)id);
}

static cJSON *asset_event_json(const StoreKvqAssetEvent *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "id", (double)e->id);
    cJSON_AddNumberToObject(o, "asset_id", (double)e->asset_id);
    api_add_str(o, "uri", e->uri);
    api_add_str(o, "name", e->name);
    api_add_str(o, "group", e->group);
    add_object_text(o, "extra", e->extra);
    api_add_str(o, "source_task_id", e->source_task_id);
    api_add_str(o, "source_dag_id", e->source_dag_id);
    api_add_str(o, "source_run_id", e->source_run_id);
    cJSON_AddNumberToObject(o, "source_map_index", e->source_map_index);
    /* gust does not record which runs an event started */
    cJSON_AddItemToObject(o, "created_dagruns", cJSON_CreateArray());
    api_add_time(o, "timestamp", e->timestamp);
    cJSON_AddNullToObject(o, "partition_key");
    return o;
}

static int time_arg(ApiReq *r, ApiResp *out, const char *name, int64_t *v)
{
    int64_t t;
    int rc = api_query_time(r, out, name, &t);
    if (rc > 0) *v = t;
    return rc < 0 ? -1 : 0;
}

static void h_asset_event_list(ApiReq *r, ApiResp *out)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    char order[128];
    StoreKvqPage pg;
    if (paged_list_args(r, out, s, STORE_KVQ_ASSET_EVENTS, store_kvq_asset_event_order, 4, order, sizeof order, &pg) !=
        0)
        return;
    StoreKvqAssetEventFilter f;
    store_kvq_asset_event_filter_init(&f);
    long long v;
    int rc;
    if ((rc = api_query_int(r, out, "asset_id", -(1LL << 62), 1LL << 62, &v)) < 0) return;
    if (rc) f.asset_id = v > 0 ? v : -1;
    if ((rc = api_query_int(r, out, "source_map_index", -1, 1LL << 40, &v)) < 0) return;
    if (rc) f.source_map_index = v;
    if (time_arg(r, out, "timestamp_gte", &f.ts_gte) || time_arg(r, out, "timestamp_gt", &f.ts_gt) ||
        time_arg(r, out, "timestamp_lte", &f.ts_lte) || time_arg(r, out, "timestamp_lt", &f.ts_lt))
        return;
    f.source_dag_id = api_query(r, "source_dag_id");
    f.source_task_id = api_query(r, "source_task_id");
    f.source_run_id = api_query(r, "source_run_id");
    f.name_pattern = api_query(r, "name_pattern");
    StoreKvqAssetEvent *e;
    size_t n;
    int64_t total = 0;
    if (f.asset_id == -1) { /* asset_id <= 0 names no asset */
        cJSON *doc = cJSON_CreateObject();
        cJSON_AddItemToObject(doc, "asset_events", cJSON_CreateArray());
        cJSON_AddNumberToObject(doc, "total_entries", 0);
        api_json(out, 200, doc);
        return;
    }
    if (store_kvq_asset_event_list(s, &f, &pg, &e, &n, &total) != 0) {
        api_store_error(out, s);
        return;
    }
    cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "asset_events");
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, asset_event_json(&e[i]));
    cJSON_AddNumberToObject(doc, "total_entries", (double)total);
    store_kvq_asset_event_list_free(e, n);
    api_json(out, 200, doc);
}

/* POST /assets/events: an event made by hand. The body is Airflow's CreateAssetEventsBody;
 * gust also takes "uri" instead of asset_id. Airflow marks the event's extra with
 * from_rest_api: true, and so does gust. */
static void h_asset_event_post(ApiReq *r, ApiResp *out)
{
    static const FieldSpec spec[] = {
        {"asset_id", F_INT, 0, 0, 0, -(1LL << 53), 1LL << 53},
        {"uri", F_STR, 0, 0, 0, 0, 0},
        {"extra", F_OBJ, 0, 0, 0, 0, 0},
        {"partition_key", F_STR, 0, 1, 0, 0, 0},
        {NULL, F_ANY, 0, 0, 0, 0, 0},
    };
    Store *s = store_or_503(r, out);
    if (!s) return;
    cJSON *body;
    if (api_body_object(r, out, &body) != 0) return;
    if (body_check(out, body, spec, "body") != 0) goto done;
    const cJSON *aid = cJSON_GetObjectItemCaseSensitive(body, "asset_id");
    const char *uri = jstr(body, "uri");
    if (!aid && !uri) {
        api_error_422(out, "body", "asset_id", "Field required");
        goto done;
    }
    int64_t id = aid ? (int64_t)aid->valuedouble : 0;
    if (!aid) {
        int rc = store_kvq_asset_id(s, uri, &id);
        if (rc < 0) {
            api_store_error(out, s);
            goto done;
        }
        if (rc == 0) {
            api_error(out, 404, "Asset with uri: `%s` was not found", uri);
            goto done;
        }
    }
    const cJSON *ex = cJSON_GetObjectItemCaseSensitive(body, "extra");
    cJSON *extra = ex ? cJSON_Duplicate(ex, 1) : cJSON_CreateObject();
    cJSON_DeleteItemFromObjectCaseSensitive(extra, "from_rest_api");
    cJSON_AddBoolToObject(extra, "from_rest_api", 1);
    char *extra_text = cJSON_PrintUnformatted(extra);
    cJSON_Delete(extra);
    int64_t event_id = 0;
    int rc = id > 0 ? store_kvq_asset_event_create(s, id, extra_text, &event_id) : STORE_KVQ_MISSING;
    free(extra_text);
    if (rc < 0) {
        api_store_error(out, s);
        goto done;
    }
    if (rc == STORE_KVQ_MISSING) {
        api_error(out, 404, "Asset with ID: `%lld` was not found", (long long)id);
        goto done;
    }
    cJSON *x = cJSON_CreateObject();
    cJSON_AddNumberToObject(x, "asset_id", (double)id);
    cJSON_AddNumberToObject(x, "asset_event_id", (double)event_id);
    char *audit = cJSON_PrintUnformatted(x);
    cJSON_Delete(x);
    api_audit(r, "api.create_asset_event", NULL, NULL, NULL, audit);
    free(audit);
    StoreKvqAssetEventFilter f;
    store_kvq_asset_event_filter_init(&f);
    f.id = event_id;
    StoreKvqPage pg = {NULL, 1, 0};
    StoreKvqAssetEvent *e = NULL;
    size_t n = 0;
    int64_t total = 0;
    if (store_kvq_asset_event_list(s, &f, &pg, &e, &n, &total) != 0 || !n) api_store_error(out, s);
    else api_json(out, 200, asset_event_json(&e[0]));
    store_kvq_asset_event_list_free(e, n);
done:
    cJSON_Delete(body);
}

/* ---- queued asset events ---------------------------------------------------------------------- */

static cJSON *queued_json(const StoreKvqQueued *q)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "dag_id", q->dag_id);
    cJSON_AddNumberToObject(o, "asset_id", (double)q->asset_id);
    api_add_time(o, "created_at", q->created_at);
    cJSON_AddStringToObject(o, "dag_display_name", q->dag_id);
    return o;
}

/* The selection of a queuedEvents route: dag_id and/or asset_id from the path, before from
 * the query. 0 ok, -1 after answering 422. */
static int queued_args(ApiReq *r, ApiResp *out, int has_dag, int asset_param, const char **dag_id, int64_t *asset_id,
                       int64_t *before)
{
    *dag_id = has_dag ? r->params[0] : NULL;
    *asset_id = 0;
    *before = STORE_KVQ_NONE;
    if (asset_param >= 0) {
        if (path_int(r, out, asset_param, "asset_id", asset_id) != 0) return -1;
        if (*asset_id <= 0) *asset_id = -1; /* names no asset: matches nothing */
    }
    return time_arg(r, out, "before", before);
}

static void queued_not_found(ApiResp *out, const char *dag_id, int64_t asset_id)
{
    if (dag_id && asset_id)
        api_error(out, 404, "Queued event with dag_id: `%s` and asset_id: `%lld` was not found", dag_id,
                  (long long)asset_id);
    else if (dag_id)
        api_error(out, 404, "Queue event with dag_id: `%s` was not found", dag_id);
    else
        api_error(out, 404, "Queue event with asset_id: `%lld` was not found", (long long)asset_id);
}

static void queued_get(ApiReq *r, ApiResp *out, int has_dag, int asset_param, int single)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    const char *dag_id;
    int64_t asset_id, before;
    if (queued_args(r, out, has_dag, asset_param, &dag_id, &asset_id, &before) != 0) return;
    StoreKvqQueued *q = NULL;
    size_t n = 0;
    if (asset_id >= 0 && store_kvq_queued_list(s, dag_id, asset_id, before, &q, &n) != 0) {
        api_store_error(out, s);
        return;
    }
    if (!n) { /* as Airflow: an empty queue is a 404 */
        queued_not_found(out, dag_id, asset_id);
    } else if (single) {
        api_json(out, 200, queued_json(&q[0]));
    } else {
        cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "queued_events");
        for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, queued_json(&q[i]));
        cJSON_AddNumberToObject(doc, "total_entries", (double)n);
        api_json(out, 200, doc);
    }
    store_kvq_queued_list_free(q, n);
}

static void queued_delete(ApiReq *r, ApiResp *out, int has_dag, int asset_param)
{
    Store *s = store_or_503(r, out);
    if (!s) return;
    const char *dag_id;
    int64_t asset_id, before;
    if (queued_args(r, out, has_dag, asset_param, &dag_id, &asset_id, &before) != 0) return;
    int64_t n = asset_id >= 0 ? store_kvq_queued_delete(s, dag_id, asset_id, before) : 0;
    if (n < 0) {
        api_store_error(out, s);
        return;
    }
    if (n == 0) {
        queued_not_found(out, dag_id, asset_id);
        return;
    }
    cJSON *x = cJSON_CreateObject();
    api_add_str(x, "dag_id", dag_id);
    if (asset_id > 0) cJSON_AddNumberToObject(x, "asset_id", (double)asset_id);
    cJSON_AddNumberToObject(x, "deleted", (double)n);
    char *extra = cJSON_PrintUnformatted(x);
    cJSON_Delete(x);
    api_audit(r, "api.delete_queued_asset_events", dag_id, NULL, NULL, extra);
    free(extra);
    api_no_content(out);
}

static void h_queued_asset(ApiReq *r, ApiResp *out) { queued_get(r, out, 0, 0, 0); }
static void h_queued_dag(ApiReq *r, ApiResp *out) { queued_get(r, out, 1, -1, 0); }
static void h_queued_dag_asset(ApiReq *r, ApiResp *out) { queued_get(r, out, 1, 1, 1); }
static void h_queued_asset_delete(ApiReq *r, ApiResp *out) { queued_delete(r, out, 0, 0); }
static void h_queued_dag_delete(ApiReq *r, ApiResp *out) { queued_delete(r, out, 1, -1); }
static void h_queued_dag_asset_delete(ApiReq *r, ApiResp *out) { queued_delete(r, out, 1, 1); }

/* ---- the routes ------------------------------------------------------------------------------- */

const ApiRoute api_routes_kv[] = {
    {"GET", "/api/v2/variables", API_ROLE_VIEWER, h_var_list},
    {"POST", "/api/v2/variables", API_ROLE_OP, h_var_post},
    {"PATCH", "/api/v2/variables", API_ROLE_OP, h_var_bulk},
    {"GET", "/api/v2/variables/{variable_key}", API_ROLE_VIEWER, h_var_get},
    {"PATCH", "/api/v2/variables/{variable_key}", API_ROLE_OP, h_var_patch},
    {"DELETE", "/api/v2/variables/{variable_key}", API_ROLE_OP, h_var_delete},

    {"GET", "/api/v2/connections", API_ROLE_VIEWER, h_conn_list},
    {"POST", "/api/v2/connections", API_ROLE_OP, h_conn_post},
    {"PATCH", "/api/v2/connections", API_ROLE_OP, h_conn_bulk},
    {"POST", "/api/v2/connections/test", API_ROLE_OP, h_conn_test},
    {"GET", "/api/v2/connections/{connection_id}", API_ROLE_VIEWER, h_conn_get},
    {"PATCH", "/api/v2/connections/{connection_id}", API_ROLE_OP, h_conn_patch},
    {"DELETE", "/api/v2/connections/{connection_id}", API_ROLE_OP, h_conn_delete},

    {"GET", "/api/v2/pools", API_ROLE_VIEWER, h_pool_list},
    {"POST", "/api/v2/pools", API_ROLE_OP, h_pool_post},
    {"PATCH", "/api/v2/pools", API_ROLE_OP, h_pool_bulk},
    {"GET", "/api/v2/pools/{pool_name}", API_ROLE_VIEWER, h_pool_get},
    {"PATCH", "/api/v2/pools/{pool_name}", API_ROLE_OP, h_pool_patch},
    {"DELETE", "/api/v2/pools/{pool_name}", API_ROLE_OP, h_pool_delete},

    {"GET", "/api/v2/eventLogs", API_ROLE_VIEWER, h_event_list},
    {"GET", "/api/v2/eventLogs/{event_log_id}", API_ROLE_VIEWER, h_event_get},

    {"GET", "/api/v2/assets", API_ROLE_VIEWER, h_asset_list},
    {"GET", "/api/v2/assets/aliases", API_ROLE_VIEWER, h_alias_list},
    {"GET", "/api/v2/assets/aliases/{asset_alias_id}", API_ROLE_VIEWER, h_alias_get},
    {"GET", "/api/v2/assets/events", API_ROLE_VIEWER, h_asset_event_list},
    {"POST", "/api/v2/assets/events", API_ROLE_USER, h_asset_event_post},
    {"GET", "/api/v2/assets/{asset_id}", API_ROLE_VIEWER, h_asset_get},
    {"GET", "/api/v2/assets/{asset_id}/queuedEvents", API_ROLE_VIEWER, h_queued_asset},
    {"DELETE", "/api/v2/assets/{asset_id}/queuedEvents", API_ROLE_USER, h_queued_asset_delete},
    {"GET", "/api/v2/dags/{dag_id}/assets/queuedEvents", API_ROLE_VIEWER, h_queued_dag},
    {"DELETE", "/api/v2/dags/{dag_id}/assets/queuedEvents", API_ROLE_USER, h_queued_dag_delete},
    {"GET", "/api/v2/dags/{dag_id}/assets/{asset_id}/queuedEvents", API_ROLE_VIEWER, h_queued_dag_asset},
    {"DELETE", "/api/v2/dags/{dag_id}/assets/{asset_id}/queuedEvents", API_ROLE_USER, h_queued_dag_asset_delete},

    {NULL, NULL, API_ROLE_NONE, NULL},
};
