/* routes_conns — connections on Airflow's REST API v2 contract (ConnectionResponse,
 * ConnectionBody, ConnectionCollectionResponse, the bulk PATCH /connections and
 * connections/test, which stays disabled as Airflow's default has it).
 *
 * Secrets never leave: a connection's password is answered as "***" (or null when it has
 * none) and every key of its extra whose name looks secret is masked, at any depth —
 * Airflow's secrets masker and its list of names. A PATCH that sends "***" back (a form
 * filled from a GET) keeps the stored secret instead of storing the mask. Passwords and
 * extras are stored encrypted under core.secret_key (store/kv.c); without a key the API
 * refuses to store them rather than store them in the clear.
 *
 * Bodies are checked field by field before anything is written (kv_common.c), in FastAPI's
 * words and 422 shape, so a bad body never reaches the store; what the store then refuses is
 * its own failure (503). Changes are written to the event log as api.<operation>. The SQL
 * lives in store/kvquery.c: every list is a count and a page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "api/kv_bulk.h"
#include "api/kv_common.h"
#include "core/util.h"
#include "store/kv.h"
#include "store/kvquery.h"


/* A connection's extra as it may be shown: secret keys masked at any depth. Text that is not
 * JSON is shown as it is (as Airflow does: there is nothing to pick out in it). Caller frees. */
static char *masked_extra(const char *extra)
{
    if (!extra) return NULL;
    cJSON *j = cJSON_Parse(extra);
    if (!j) return xstrdup(extra);
    char *out = kvc_mask_json(j, -1) ? cJSON_PrintUnformatted(j) : xstrdup(extra);
    cJSON_Delete(j);
    return out;
}

/* A variable's value as it may be shown: "***" under a secret-looking key; for a JSON object,
 * its secret-looking top-level keys masked (Airflow's max_depth=1); else as stored. */
static const KvcField conn_spec[] = {
    {"connection_id", KVC_STR, 1, 0, 200, 0, 0},
    {"conn_type", KVC_STR, 1, 0, 0, 0, 0},
    {"description", KVC_STR, 0, 1, 0, 0, 0},
    {"host", KVC_STR, 0, 1, 0, 0, 0},
    {"login", KVC_STR, 0, 1, 0, 0, 0},
    {"schema", KVC_STR, 0, 1, 0, 0, 0},
    {"port", KVC_INT, 0, 1, 0, 0, 65535},
    {"password", KVC_STR, 0, 1, 0, 0, 0},
    {"extra", KVC_STR, 0, 1, 0, 0, 0},
    {"team_name", KVC_STR, 0, 1, 50, 0, 0},
    {NULL, KVC_ANY, 0, 0, 0, 0, 0},
};
static const char *const conn_mask_fields[] = {"connection_id", "conn_type", "description", "host",  "login",
                                               "schema",        "port",      "password",    "extra", NULL};

/* What kvc_body_check cannot say about a ConnectionBody: the id's pattern and that extra is a
 * JSON object. 0 ok, -1 after answering 422. */
static int conn_check(ApiResp *out, const cJSON *e, const char *where)
{
    if (kvc_body_check(out, e, conn_spec, where) != 0) return -1;
    const char *id = kvc_jstr(e, "connection_id");
    if (!store_conn_id_valid(id)) {
        api_error_422(out, where, "connection_id", "String should match pattern '^[\\w.-]+$'");
        return -1;
    }
    if (!*kvc_jstr(e, "conn_type")) {
        api_error_422(out, where, "conn_type", "String should have at least 1 character");
        return -1;
    }
    const char *extra = kvc_jstr(e, "extra");
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
    api_add_str(o, "password", c->password || c->error ? KVC_MASK : NULL);
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
    Store *s = kvc_store(r, out);
    if (!s) return;
    char order[128];
    StoreKvqPage pg;
    if (kvc_list_args(r, out, s, STORE_KVQ_CONNS, store_kvq_conn_order, 0, order, sizeof order, &pg) != 0) return;
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
    if (!kvc_text_ok(id)) return 0;
    StoreKvqPage pg = {NULL, 1, 0};
    int64_t total = 0;
    if (store_kvq_conn_list(s, r->ctx->conn_key, id, NULL, &pg, l, &total) != 0) return -1;
    return l->n > 0;
}

static void h_conn_get(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
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
 * the fields kvc_patch_sets says, and a password or extra value of "***" keeps what is stored. */
static void conn_apply(StoreConnection *c, const cJSON *e, const KvcMulti *mask, int merge)
{
    static const char *const texts[] = {"conn_type", "description", "host", "login", "schema", NULL};
    char **slots[] = {&c->conn_type, &c->description, &c->host, &c->login, &c->schema};
    for (int i = 0; texts[i]; i++)
        if (!merge || kvc_patch_sets(e, mask, texts[i])) {
            free(*slots[i]);
            *slots[i] = xstrdup(kvc_jstr(e, texts[i]));
        }
    if (!merge || kvc_patch_sets(e, mask, "port")) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "port");
        c->port = cJSON_IsNumber(p) ? (int)p->valuedouble : 0;
    }
    if (!merge || kvc_patch_sets(e, mask, "password")) {
        const char *pw = kvc_jstr(e, "password");
        if (!(merge && pw && strcmp(pw, KVC_MASK) == 0)) {
            free(c->password);
            c->password = xstrdup(pw);
        }
    }
    if (!merge || kvc_patch_sets(e, mask, "extra")) {
        const char *extra = kvc_jstr(e, "extra");
        cJSON *nj = extra ? cJSON_Parse(extra) : NULL, *old = merge && c->extra ? cJSON_Parse(c->extra) : NULL;
        /* a masked value sent back keeps the stored one */
        for (cJSON *it = nj ? nj->child : NULL; it && old; it = it->next) {
            const cJSON *was = cJSON_GetObjectItemCaseSensitive(old, it->string);
            if (cJSON_IsString(it) && strcmp(it->valuestring, KVC_MASK) == 0 && was)
                cJSON_ReplaceItemInObjectCaseSensitive(nj, it->string, cJSON_Duplicate(was, 1));
        }
        free(c->extra);
        c->extra = nj ? cJSON_PrintUnformatted(nj) : NULL;
        cJSON_Delete(nj);
        cJSON_Delete(old);
    }
}

static int conn_create(ApiReq *r, Store *s, const cJSON *e, int *status, char *err, size_t errlen)
{
    StoreConnection c;
    memset(&c, 0, sizeof c);
    c.conn_id = xstrdup(kvc_jstr(e, "connection_id"));
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
            kvc_store_failure(s, status, err, errlen);
        }
        rc = -1;
    }
    store_conn_clear(&c);
    return rc;
}

static int conn_update(ApiReq *r, Store *s, const cJSON *e, const KvcMulti *mask, int *status, char *err, size_t errlen)
{
    const char *id = kvc_jstr(e, "connection_id");
    int missing = 0;
    StoreConnection *c = store_conn_get(s, r->ctx->conn_key, id, &missing);
    if (!c) {
        if (missing) {
            *status = 404;
            snprintf(err, errlen, "The Connection with connection_id: `%s` was not found", id);
            return -1;
        }
        return kvc_store_failure(s, status, err, errlen);
    }
    conn_apply(c, e, mask, 1);
    int rc = 0;
    if (!r->ctx->conn_key && (c->password || c->extra)) {
        *status = 503;
        snprintf(err, errlen, "cannot store the secrets of connection '%s': the API has no key to encrypt them "
                              "with (core.secret_key)", id);
        rc = -1;
    } else if (store_conn_upsert(s, r->ctx->conn_key, c, NULL) != 0) {
        rc = kvc_store_failure(s, status, err, errlen);
    }
    store_conn_free(c);
    return rc;
}

static int conn_remove(ApiReq *r, Store *s, const char *id, int *status, char *err, size_t errlen)
{
    (void)r;
    int rc = kvc_text_ok(id) ? store_conn_delete(s, id) : 0;
    if (rc == 1) return 0;
    if (rc < 0) return kvc_store_failure(s, status, err, errlen);
    *status = 404;
    snprintf(err, errlen, "The Connection with connection_id: `%s` was not found", id);
    return -1;
}

static void h_conn_post(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    cJSON *body;
    if (api_body_object(r, out, &body) != 0) return;
    if (conn_check(out, body, "body") == 0) {
        int status = 0;
        char err[512];
        const char *id = kvc_jstr(body, "connection_id");
        StoreConnectionList l;
        memset(&l, 0, sizeof l);
        if (conn_create(r, s, body, &status, err, sizeof err) != 0) {
            kvc_answer_failure(out, status, err);
        } else if (conn_fetch(r, s, id, &l) != 1) {
            api_store_error(out, s);
        } else {
            kvc_audit1(r, "api.post_connection", "connection_id", id);
            api_json(out, 201, conn_json(&l.items[0]));
        }
        store_conn_list_free(&l);
    }
    cJSON_Delete(body);
}

static void h_conn_patch(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    const char *id = r->params[0];
    KvcMulti mask;
    if (kvc_update_mask(r, out, conn_mask_fields, &mask) != 0) return;
    cJSON *body = NULL;
    StoreConnectionList l;
    memset(&l, 0, sizeof l);
    if (api_body_object(r, out, &body) != 0 || conn_check(out, body, "body") != 0) goto done;
    if (strcmp(kvc_jstr(body, "connection_id"), id) != 0) {
        api_error(out, 400, "The connection_id in the request body does not match the URL parameter");
        goto done;
    }
    int status = 0;
    char err[512];
    if (conn_update(r, s, body, &mask, &status, err, sizeof err) != 0) {
        kvc_answer_failure(out, status, err);
        goto done;
    }
    kvc_audit1(r, "api.patch_connection", "connection_id", id);
    if (conn_fetch(r, s, id, &l) == 1) api_json(out, 200, conn_json(&l.items[0]));
    else api_store_error(out, s);
done:
    store_conn_list_free(&l);
    cJSON_Delete(body);
    kvc_multi_free(&mask);
}

static void h_conn_delete(ApiReq *r, ApiResp *out)
{
    Store *s = kvc_store(r, out);
    if (!s) return;
    int status = 0;
    char err[512];
    if (conn_remove(r, s, r->params[0], &status, err, sizeof err) != 0) {
        kvc_answer_failure(out, status, err);
        return;
    }
    kvc_audit1(r, "api.delete_connection", "connection_id", r->params[0]);
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

static const KvbOps conn_bulk = {"connections", "connection_id", conn_spec,   conn_mask_fields,
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
    kvb_run(r, out, &conn_bulk, "api.bulk_connections");
}

/* ---- the routes ------------------------------------------------------------------------------- */

const ApiRoute api_routes_conns[] = {
    {"GET", "/api/v2/connections", API_ROLE_VIEWER, h_conn_list},
    {"POST", "/api/v2/connections", API_ROLE_OP, h_conn_post},
    {"PATCH", "/api/v2/connections", API_ROLE_OP, h_conn_bulk},
    {"POST", "/api/v2/connections/test", API_ROLE_OP, h_conn_test},
    {"GET", "/api/v2/connections/{connection_id}", API_ROLE_VIEWER, h_conn_get},
    {"PATCH", "/api/v2/connections/{connection_id}", API_ROLE_OP, h_conn_patch},
    {"DELETE", "/api/v2/connections/{connection_id}", API_ROLE_OP, h_conn_delete},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
