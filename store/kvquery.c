/* kvquery — the REST API's lists and writes over variables, connections, pools, the event
 * log and assets (see kvquery.h).
 *
 * Every list builds its WHERE clause once (Q: SQL text of placeholders plus the bound
 * values), then runs COUNT(*) and the page with it. A filter value that is not valid UTF-8
 * text cannot equal or contain any stored value (both engines hold only valid text), so
 * instead of sending it to PostgreSQL, which would reject the whole statement, the list is
 * answered empty without a query: bad input never becomes a store error. */
#include "store/kvquery.h"

#include <cjson/cJSON.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/sqlbuild.h"

/* ---- order_by whitelists -------------------------------------------------------------------- */

/* Public names as Airflow spells them (its aliases included), then the columns they sort;
 * "_pg" variants sort text bytewise on PostgreSQL, as SQLite does by default. */
const char *const store_kvq_var_order[] = {"key", "id", "_val", "description", "is_encrypted", "team_name", NULL};
static const char *const var_cols[] = {"key", "key", "val", "description", "is_encrypted", "key"};
static const char *const var_cols_pg[] = {"key COLLATE \"C\"", "key COLLATE \"C\"", "val COLLATE \"C\"",
                                          "description COLLATE \"C\"", "is_encrypted", "key COLLATE \"C\""};

const char *const store_kvq_conn_order[] = {"connection_id", "conn_id", "conn_type", "description", "host",
                                            "port",          "id",      "team_name", NULL};
static const char *const conn_cols[] = {"conn_id", "conn_id", "conn_type", "description",
                                        "host",    "port",    "conn_id",   "conn_id"};
static const char *const conn_cols_pg[] = {"conn_id COLLATE \"C\"",     "conn_id COLLATE \"C\"",
                                           "conn_type COLLATE \"C\"",   "description COLLATE \"C\"",
                                           "host COLLATE \"C\"",        "port",
                                           "conn_id COLLATE \"C\"",     "conn_id COLLATE \"C\""};

const char *const store_kvq_pool_order[] = {"id", "pool", "name", "slots", NULL};
static const char *const pool_cols[] = {"p.pool", "p.pool", "p.pool", "p.slots"};
static const char *const pool_cols_pg[] = {"p.pool COLLATE \"C\"", "p.pool COLLATE \"C\"", "p.pool COLLATE \"C\"",
                                           "p.slots"};

const char *const store_kvq_event_order[] = {"id",    "dttm",         "dag_id", "task_id", "run_id", "event",
                                             "logical_date", "owner", "extra",   "when",   "event_log_id", NULL};
static const char *const event_cols[] = {"e.id",    "e.dttm",  "e.dag_id", "e.task_id", "e.run_id", "e.event",
                                         "r.logical_date", "e.owner", "e.extra", "e.dttm", "e.id"};
static const char *const event_cols_pg[] = {"e.id",
                                            "e.dttm",
                                            "e.dag_id COLLATE \"C\"",
                                            "e.task_id COLLATE \"C\"",
                                            "e.run_id COLLATE \"C\"",
                                            "e.event COLLATE \"C\"",
                                            "r.logical_date",
                                            "e.owner COLLATE \"C\"",
                                            "e.extra COLLATE \"C\"",
                                            "e.dttm",
                                            "e.id"};

const char *const store_kvq_asset_order[] = {"id", "name", "uri", "created_at", "updated_at", NULL};
static const char *const asset_cols[] = {"a.id", "a.name", "a.uri", "a.created_at", "a.updated_at"};
static const char *const asset_cols_pg[] = {"a.id", "a.name COLLATE \"C\"", "a.uri COLLATE \"C\"", "a.created_at",
                                            "a.updated_at"};

const char *const store_kvq_asset_event_order[] = {"source_task_id",   "source_dag_id", "source_run_id",
                                                   "source_map_index", "timestamp",     "id", NULL};
static const char *const aevent_cols[] = {"e.source_task_id",   "e.source_dag_id", "e.source_run_id",
                                          "e.source_map_index", "e.timestamp",     "e.id"};
static const char *const aevent_cols_pg[] = {"e.source_task_id COLLATE \"C\"", "e.source_dag_id COLLATE \"C\"",
                                             "e.source_run_id COLLATE \"C\"",  "e.source_map_index",
                                             "e.timestamp",                    "e.id"};

const char *const *store_kvq_order_columns(const Store *s, StoreKvqList which)
{
    int pg = !store_is_sqlite(s);
    switch (which) {
    case STORE_KVQ_VARS: return pg ? var_cols_pg : var_cols;
    case STORE_KVQ_CONNS: return pg ? conn_cols_pg : conn_cols;
    case STORE_KVQ_POOLS: return pg ? pool_cols_pg : pool_cols;
    case STORE_KVQ_EVENTS: return pg ? event_cols_pg : event_cols;
    case STORE_KVQ_ASSETS: return pg ? asset_cols_pg : asset_cols;
    case STORE_KVQ_ASSET_EVENTS: return pg ? aevent_cols_pg : aevent_cols;
    }
    return var_cols;
}

/* ---- the WHERE builder ------------------------------------------------------------------------ */

/* A list's conditions; SQLB_CHECK_TEXT makes a filter value that is not valid text an
 * impossible list rather than a statement PostgreSQL rejects. */
typedef SqlbWhere Q;
_Static_assert(STORE_KVQ_NONE == SQLB_UNSET, "an open bound is sqlbuild's");

/* Search patterns: a backslash matches itself (it escapes nothing). */
#define KVQ_PATTERN (SQLB_CHECK_TEXT | SQLB_PAT_BACKSLASH_LITERAL)

/* col IN (...), or with negate (col IS NULL OR col NOT IN (...)): Airflow's exclusion keeps
 * rows without a value, which a bare NOT IN would drop. */
static void q_in(Q *q, const char *col, const char *const *v, int n, int negate)
{
    sqlb_in(q, col, v, n > 0 ? (size_t)n : 0, SQLB_CHECK_TEXT | (negate ? SQLB_NOT : 0));
}

/* SELECT select_from WHERE ... ORDER BY order, tiebreak LIMIT ? OFFSET ?: the tie-breaker
 * (the primary key) goes the same way as the order, so a descending list is the ascending
 * one reversed. */
static StoreRows *q_page(Store *s, Q *q, const char *select_from, const char *group_by, const char *order,
                         const char *tiebreak, const StoreKvqPage *pg)
{
    const char *ord = order && *order ? order : tiebreak;
    size_t ol = strlen(ord);
    int desc = ol > 5 && strcmp(ord + ol - 5, " DESC") == 0;
    char *sql = xasprintf("SELECT %s%s%s ORDER BY %s, %s %s LIMIT ? OFFSET ?", select_from, sb_str(&q->sql),
                          group_by ? group_by : "", ord, tiebreak, desc ? "DESC" : "ASC");
    sqlb_param(&q->p, SP_I(pg->limit >= 0 ? pg->limit : INT64_MAX));
    sqlb_param(&q->p, SP_I(pg->offset > 0 ? pg->offset : 0));
    StoreRows *r = store_q(s, sql, q->p.v, q->p.n);
    q->p.n -= 2;
    free(sql);
    return r;
}

static int64_t col_int(StoreRows *r, int col)
{
    return sqlb_col_int(r, col, STORE_KVQ_NONE);
}

/* Join the caller's transaction when there is one (as kv.h's writers do). */
static int run_tx(Store *s, StoreTxFn fn, void *ud)
{
    return s->in_tx ? fn(s, ud) : store_tx(s, fn, ud);
}

/* v must be valid UTF-8 text without NUL; required: present and non-empty. */
static int check_text(Store *s, const char *what, const char *v, int required)
{
    if (!v) {
        if (!required) return 0;
        store_set_error(s, "%s is required", what);
        return -1;
    }
    if (required && !*v) {
        store_set_error(s, "%s must not be empty", what);
        return -1;
    }
    if (!sqlb_text_ok(v)) {
        store_set_error(s, "%s is not valid UTF-8 text", what);
        return -1;
    }
    return 0;
}

/* ---- variables -------------------------------------------------------------------------------- */

int store_kvq_var_list(Store *s, const char *pattern, const StoreKvqPage *pg, StoreVariableList *out, int64_t *total)
{
    memset(out, 0, sizeof *out);
    *total = 0;
    Q q = {0};
    sqlb_pattern(&q, "key", pattern, KVQ_PATTERN);
    int rc = 0;
    if (!q.impossible) rc = sqlb_count(s, "variable", sb_str(&q.sql), &q.p, q.p.n, total);
    if (rc == 0 && !q.impossible && *total > 0 && pg->limit != 0) {
        StoreRows *r = q_page(s, &q, "key, val, description FROM variable", NULL, pg->order_sql, "key", pg);
        if (!r) rc = -1;
        size_t cap = 0;
        while (r && rows_next(r)) {
            out->items = sqlb_grow(out->items, out->n, &cap, sizeof *out->items);
            StoreVariable *v = &out->items[out->n++];
            v->key = sqlb_col_str(r, 0);
            v->val = sqlb_col_str(r, 1);
            v->description = sqlb_col_str(r, 2);
        }
        rows_free(r);
    }
    sqlb_where_free(&q);
    if (rc != 0) store_var_list_free(out);
    return rc;
}

typedef struct VarWrite {
    const char *key, *val, *desc;
    int result;
} VarWrite;

static int var_add_fn(Store *s, void *ud)
{
    VarWrite *w = ud;
    int64_t n = 0;
    StoreParam k[] = {SP_S(w->key)};
    if (store_q_int(s, "SELECT COUNT(*) FROM variable WHERE key = ?", k, 1, 0, &n) != 0) return -1;
    if (n) {
        w->result = STORE_KVQ_EXISTS;
        return 0;
    }
    StoreParam p[] = {SP_S(w->key), SP_S(w->val), SP_S(w->desc)};
    if (store_x(s, "INSERT INTO variable (key, val, description, is_encrypted) VALUES (?, ?, ?, 0)", p, 3, NULL) != 0) {
        /* another writer added it between the check and the insert */
        if (store_error_kind(s->conn) == STORE_ERR_CONSTRAINT) {
            w->result = STORE_KVQ_EXISTS;
            return 0;
        }
        return -1;
    }
    w->result = STORE_KVQ_DONE;
    return 0;
}

int store_kvq_var_add(Store *s, const char *key, const char *val, const char *description)
{
    if (check_text(s, "variable key", key, 1) || check_text(s, "variable value", val, 0) ||
        check_text(s, "variable description", description, 0))
        return -1;
    if (!val) val = "";
    VarWrite w = {key, val, description, 0};
    return run_tx(s, var_add_fn, &w) == 0 ? w.result : -1;
}

static int var_update_fn(Store *s, void *ud)
{
    VarWrite *w = ud;
    int64_t n = 0;
    StoreParam p[] = {SP_S(w->val), SP_S(w->desc), SP_S(w->key)};
    if (store_x(s, "UPDATE variable SET val = ?, description = ?, is_encrypted = 0 WHERE key = ?", p, 3, &n) != 0)
        return -1;
    w->result = n ? STORE_KVQ_DONE : STORE_KVQ_MISSING;
    return 0;
}

int store_kvq_var_update(Store *s, const char *key, const char *val, const char *description)
{
    if (check_text(s, "variable key", key, 1) || check_text(s, "variable value", val, 0) ||
        check_text(s, "variable description", description, 0))
        return -1;
    if (!val) val = "";
    VarWrite w = {key, val, description, 0};
    return run_tx(s, var_update_fn, &w) == 0 ? w.result : -1;
}

/* ---- connections ------------------------------------------------------------------------------ */

/* Decrypt a stored secret as kv.c does: text without the token prefix was written in clear
 * and is taken as it is; a token must decrypt with key. */
static int decrypt_field(const SecretKey *key, const char *stored, const char *aad, char **out, char *err,
                         size_t errlen)
{
    *out = NULL;
    if (!stored) return 0;
    if (strncmp(stored, SECRET_TOKEN_PREFIX, strlen(SECRET_TOKEN_PREFIX)) != 0) {
        *out = xstrdup(stored);
        return 0;
    }
    if (!key) {
        snprintf(err, errlen, "cannot decrypt: no secret key is configured (core.secret_key)");
        return -1;
    }
    *out = secret_decrypt(key, stored, aad, NULL, err, errlen);
    return *out ? 0 : -1;
}

static void wipe_free(char *p)
{
    if (!p) return;
    OPENSSL_cleanse(p, strlen(p));
    free(p);
}

int store_kvq_conn_list(Store *s, const SecretKey *key, const char *conn_id, const char *pattern,
                        const StoreKvqPage *pg, StoreConnectionList *out, int64_t *total)
{
    memset(out, 0, sizeof *out);
    *total = 0;
    Q q = {0};
    sqlb_eq(&q, "conn_id", conn_id, SQLB_CHECK_TEXT);
    sqlb_pattern(&q, "conn_id", pattern, KVQ_PATTERN);
    int rc = 0;
    if (!q.impossible) rc = sqlb_count(s, "connection", sb_str(&q.sql), &q.p, q.p.n, total);
    if (rc == 0 && !q.impossible && *total > 0 && pg->limit != 0) {
        StoreRows *r = q_page(s, &q,
                              "conn_id, conn_type, description, host, schema, login, password, port, extra "
                              "FROM connection",
                              NULL, pg->order_sql, "conn_id", pg);
        if (!r) rc = -1;
        size_t cap = 0;
        while (r && rows_next(r)) {
            out->items = sqlb_grow(out->items, out->n, &cap, sizeof *out->items);
            StoreConnection *c = &out->items[out->n++];
            memset(c, 0, sizeof *c);
            c->conn_id = sqlb_col_str(r, 0);
            c->conn_type = sqlb_col_str(r, 1);
            c->description = sqlb_col_str(r, 2);
            c->host = sqlb_col_str(r, 3);
            c->schema = sqlb_col_str(r, 4);
            c->login = sqlb_col_str(r, 5);
            c->port = (int)rows_int(r, 7);
            char why[300], err[400];
            if (decrypt_field(key, rows_text(r, 6), c->conn_id, &c->password, why, sizeof why) != 0) {
                snprintf(err, sizeof err, "connection '%s' password: %s", c->conn_id, why);
                c->error = xstrdup(err);
            } else if (decrypt_field(key, rows_text(r, 8), c->conn_id, &c->extra, why, sizeof why) != 0) {
                wipe_free(c->password);
                c->password = NULL;
                snprintf(err, sizeof err, "connection '%s' extra: %s", c->conn_id, why);
                c->error = xstrdup(err);
            }
        }
        rows_free(r);
    }
    sqlb_where_free(&q);
    if (rc != 0) store_conn_list_free(out);
    return rc;
}

int store_kvq_conn_exists(Store *s, const char *conn_id)
{
    if (!sqlb_text_ok(conn_id)) return 0;
    int64_t n = 0;
    StoreParam p[] = {SP_S(conn_id)};
    if (store_q_int(s, "SELECT COUNT(*) FROM connection WHERE conn_id = ?", p, 1, 0, &n) != 0) return -1;
    return n > 0;
}

/* ---- pools ------------------------------------------------------------------------------------ */

int store_kvq_pool_list(Store *s, const char *name, const char *pattern, const StoreKvqPage *pg, StoreKvqPool **out,
                        size_t *n, int64_t *total)
{
    *out = NULL;
    *n = 0;
    *total = 0;
    Q q = {0};
    sqlb_eq(&q, "p.pool", name, SQLB_CHECK_TEXT);
    sqlb_pattern(&q, "p.pool", pattern, KVQ_PATTERN);
    int rc = 0;
    if (!q.impossible) rc = sqlb_count(s, "slot_pool p", sb_str(&q.sql), &q.p, q.p.n, total);
    if (rc == 0 && !q.impossible && *total > 0 && pg->limit != 0) {
        /* usage in the same statement: one aggregate over the pool's live task instances,
         * which the (pool, state) index finds */
        StoreRows *r = q_page(s, &q,
                              "p.pool, p.slots, p.description, p.include_deferred, "
                              "COALESCE(SUM(CASE WHEN t.state = 'running' THEN t.pool_slots ELSE 0 END), 0), "
                              "COALESCE(SUM(CASE WHEN t.state = 'queued' THEN t.pool_slots ELSE 0 END), 0), "
                              "COALESCE(SUM(CASE WHEN t.state = 'scheduled' THEN t.pool_slots ELSE 0 END), 0), "
                              "COALESCE(SUM(CASE WHEN t.state = 'deferred' THEN t.pool_slots ELSE 0 END), 0) "
                              "FROM slot_pool p LEFT JOIN task_instance t ON t.pool = p.pool "
                              "AND t.state IN ('running', 'queued', 'scheduled', 'deferred')",
                              " GROUP BY p.pool, p.slots, p.description, p.include_deferred", pg->order_sql, "p.pool",
                              pg);
        if (!r) rc = -1;
        size_t cap = 0;
        while (r && rows_next(r)) {
            *out = sqlb_grow(*out, *n, &cap, sizeof **out);
            StoreKvqPool *p = &(*out)[(*n)++];
            memset(p, 0, sizeof *p);
            p->name = sqlb_col_str(r, 0);
            p->slots = (int)rows_int(r, 1);
            p->description = sqlb_col_str(r, 2);
            p->include_deferred = rows_int(r, 3) != 0;
            p->running = (int)rows_int(r, 4);
            p->queued = (int)rows_int(r, 5);
            p->scheduled = (int)rows_int(r, 6);
            p->deferred = (int)rows_int(r, 7);
        }
        rows_free(r);
    }
    sqlb_where_free(&q);
    if (rc != 0) {
        store_kvq_pool_list_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void store_kvq_pool_list_free(StoreKvqPool *p, size_t n)
{
    if (!p) return;
    for (size_t i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].description);
    }
    free(p);
}

typedef struct PoolWrite {
    const char *name, *new_name, *desc;
    int slots, include_deferred;
    int result;
} PoolWrite;

static int pool_count(Store *s, const char *name, int64_t *n)
{
    StoreParam k[] = {SP_S(name)};
    return store_q_int(s, "SELECT COUNT(*) FROM slot_pool WHERE pool = ?", k, 1, 0, n);
}

static int pool_add_fn(Store *s, void *ud)
{
    PoolWrite *w = ud;
    int64_t n = 0;
    if (pool_count(s, w->name, &n) != 0) return -1;
    if (n) {
        w->result = STORE_KVQ_EXISTS;
        return 0;
    }
    StoreParam p[] = {SP_S(w->name), SP_I(w->slots), SP_S(w->desc), SP_I(w->include_deferred != 0)};
    if (store_x(s, "INSERT INTO slot_pool (pool, slots, description, include_deferred) VALUES (?, ?, ?, ?)", p, 4,
                NULL) != 0) {
        if (store_error_kind(s->conn) == STORE_ERR_CONSTRAINT) {
            w->result = STORE_KVQ_EXISTS;
            return 0;
        }
        return -1;
    }
    w->result = STORE_KVQ_DONE;
    return 0;
}

static int pool_check(Store *s, const char *name, int slots, const char *description)
{
    if (check_text(s, "pool name", name, 1) || check_text(s, "pool description", description, 0)) return -1;
    if (strlen(name) > 256) {
        store_set_error(s, "pool name is longer than 256 bytes");
        return -1;
    }
    if (slots < -1) {
        store_set_error(s, "pool slots must be a number >= 0, or -1 for unlimited (got %d)", slots);
        return -1;
    }
    return 0;
}

int store_kvq_pool_add(Store *s, const char *name, int slots, const char *description, int include_deferred)
{
    if (pool_check(s, name, slots, description)) return -1;
    PoolWrite w = {name, name, description, slots, include_deferred, 0};
    return run_tx(s, pool_add_fn, &w) == 0 ? w.result : -1;
}

static int pool_update_fn(Store *s, void *ud)
{
    PoolWrite *w = ud;
    int64_t n = 0;
    if (pool_count(s, w->name, &n) != 0) return -1;
    if (!n) {
        w->result = STORE_KVQ_MISSING;
        return 0;
    }
    if (strcmp(w->name, w->new_name) != 0) {
        if (pool_count(s, w->new_name, &n) != 0) return -1;
        if (n) {
            w->result = STORE_KVQ_EXISTS;
            return 0;
        }
    }
    StoreParam p[] = {SP_S(w->new_name), SP_I(w->slots), SP_S(w->desc), SP_I(w->include_deferred != 0),
                      SP_S(w->name)};
    if (store_x(s, "UPDATE slot_pool SET pool = ?, slots = ?, description = ?, include_deferred = ? WHERE pool = ?", p,
                5, NULL) != 0) {
        if (store_error_kind(s->conn) == STORE_ERR_CONSTRAINT) {
            w->result = STORE_KVQ_EXISTS;
            return 0;
        }
        return -1;
    }
    w->result = STORE_KVQ_DONE;
    return 0;
}

int store_kvq_pool_update(Store *s, const char *name, const char *new_name, int slots, const char *description,
                          int include_deferred)
{
    if (check_text(s, "pool name", name, 1) || pool_check(s, new_name, slots, description)) return -1;
    PoolWrite w = {name, new_name, description, slots, include_deferred, 0};
    return run_tx(s, pool_update_fn, &w) == 0 ? w.result : -1;
}

/* ---- the event log ---------------------------------------------------------------------------- */

void store_kvq_event_filter_init(StoreKvqEventFilter *f)
{
    memset(f, 0, sizeof *f);
    f->map_index = f->try_number = STORE_KVQ_NONE;
    f->before = f->after = STORE_KVQ_NONE;
}

int store_kvq_event_list(Store *s, const StoreKvqEventFilter *f, const StoreKvqPage *pg, StoreKvqEvent **out,
                         size_t *n, int64_t *total)
{
    *out = NULL;
    *n = 0;
    *total = 0;
    Q q = {0};
    if (f->id > 0) sqlb_cmp(&q, "e.id", "=", f->id);
    sqlb_eq(&q, "e.dag_id", f->dag_id, SQLB_CHECK_TEXT);
    sqlb_eq(&q, "e.task_id", f->task_id, SQLB_CHECK_TEXT);
    sqlb_eq(&q, "e.run_id", f->run_id, SQLB_CHECK_TEXT);
    sqlb_eq(&q, "e.owner", f->owner, SQLB_CHECK_TEXT);
    sqlb_eq(&q, "e.event", f->event, SQLB_CHECK_TEXT);
    sqlb_cmp(&q, "e.map_index", "=", f->map_index);
    sqlb_cmp(&q, "e.try_number", "=", f->try_number);
    q_in(&q, "e.event", f->included, f->n_included, 0);
    q_in(&q, "e.event", f->excluded, f->n_excluded, 1);
    sqlb_cmp(&q, "e.dttm", "<", f->before);
    sqlb_cmp(&q, "e.dttm", ">", f->after);
    sqlb_pattern(&q, "e.dag_id", f->dag_id_pattern, KVQ_PATTERN);
    sqlb_pattern(&q, "e.task_id", f->task_id_pattern, KVQ_PATTERN);
    sqlb_pattern(&q, "e.run_id", f->run_id_pattern, KVQ_PATTERN);
    sqlb_pattern(&q, "e.owner", f->owner_pattern, KVQ_PATTERN);
    sqlb_pattern(&q, "e.event", f->event_pattern, KVQ_PATTERN);
    int rc = 0;
    if (!q.impossible) rc = sqlb_count(s, "event_log e", sb_str(&q.sql), &q.p, q.p.n, total);
    if (rc == 0 && !q.impossible && *total > 0 && pg->limit != 0) {
        /* the run's logical date: by the (dag_id, run_id) unique index, per row of the page */
        StoreRows *r = q_page(s, &q,
                              "e.id, e.dttm, e.event, e.owner, e.dag_id, e.task_id, e.run_id, e.extra, e.map_index, "
                              "e.try_number, r.logical_date FROM event_log e "
                              "LEFT JOIN dag_run r ON r.dag_id = e.dag_id AND r.run_id = e.run_id",
                              NULL, pg->order_sql, "e.id", pg);
        if (!r) rc = -1;
        size_t cap = 0;
        while (r && rows_next(r)) {
            *out = sqlb_grow(*out, *n, &cap, sizeof **out);
            StoreKvqEvent *e = &(*out)[(*n)++];
            e->id = rows_int(r, 0);
            e->dttm = rows_int(r, 1);
            e->event = sqlb_col_str(r, 2);
            e->owner = sqlb_col_str(r, 3);
            e->dag_id = sqlb_col_str(r, 4);
            e->task_id = sqlb_col_str(r, 5);
            e->run_id = sqlb_col_str(r, 6);
            e->extra = sqlb_col_str(r, 7);
            e->map_index = col_int(r, 8);
            e->try_number = col_int(r, 9);
            e->logical_date = col_int(r, 10);
        }
        rows_free(r);
    }
    sqlb_where_free(&q);
    if (rc != 0) {
        store_kvq_event_list_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void store_kvq_event_list_free(StoreKvqEvent *e, size_t n)
{
    if (!e) return;
    for (size_t i = 0; i < n; i++) {
        free(e[i].event);
        free(e[i].owner);
        free(e[i].dag_id);
        free(e[i].task_id);
        free(e[i].run_id);
        free(e[i].extra);
    }
    free(e);
}

/* ---- assets ----------------------------------------------------------------------------------- */

/* One task's reference to a URI, from a DAG version's outlets (producing) or inlets. */
typedef struct TaskRef {
    char *dag_id, *task_id, *uri;
    int producing;
    int64_t at; /* the version's created_at */
} TaskRef;

typedef struct TaskRefs {
    TaskRef *v;
    size_t n, cap;
} TaskRefs;

static void task_refs_free(TaskRefs *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->v[i].dag_id);
        free(t->v[i].task_id);
        free(t->v[i].uri);
    }
    free(t->v);
    memset(t, 0, sizeof *t);
}

static void task_refs_add_list(TaskRefs *t, const char *dag_id, const char *task_id, const cJSON *list, int producing,
                               int64_t at)
{
    const cJSON *u;
    cJSON_ArrayForEach(u, list)
    {
        if (!cJSON_IsString(u)) continue;
        t->v = sqlb_grow(t->v, t->n, &t->cap, sizeof *t->v);
        t->v[t->n++] = (TaskRef){xstrdup(dag_id), xstrdup(task_id), xstrdup(u->valuestring), producing, at};
    }
}

/* The outlets and inlets of the latest versions of dag_ids (n > 0), or of every active DAG
 * whose serialised form lists any (n == 0): the LIKE skips the others without parsing. */
static int task_refs_load(Store *s, const char *const *dag_ids, int n, TaskRefs *out)
{
    memset(out, 0, sizeof *out);
    Q q = {0};
    if (n > 0) {
        q_in(&q, "d.dag_id", dag_ids, n, 0);
        if (q.impossible) {
            sqlb_where_free(&q);
            return 0;
        }
    } else {
        sqlb_and(&q);
        sb_append(&q.sql, "d.is_active = 1 AND (v.data LIKE ? OR v.data LIKE ?)");
        sqlb_param(&q.p, SP_S("%\"outlets\":[\"%"));
        sqlb_param(&q.p, SP_S("%\"inlets\":[\"%"));
    }
    char *sql = xasprintf("SELECT d.dag_id, v.data, v.created_at FROM dag d JOIN dag_version v "
                          "ON v.id = d.latest_version_id%s",
                          sb_str(&q.sql));
    StoreRows *r = store_q(s, sql, q.p.v, q.p.n);
    free(sql);
    sqlb_where_free(&q);
    if (!r) return -1;
    while (rows_next(r)) {
        const char *dag_id = rows_text(r, 0);
        int64_t at = rows_int(r, 2);
        cJSON *doc = cJSON_Parse(rows_text(r, 1));
        const cJSON *task;
        cJSON_ArrayForEach(task, cJSON_GetObjectItemCaseSensitive(doc, "tasks"))
        {
            const cJSON *tid = cJSON_GetObjectItemCaseSensitive(task, "task_id");
            if (!cJSON_IsString(tid)) continue;
            task_refs_add_list(out, dag_id, tid->valuestring, cJSON_GetObjectItemCaseSensitive(task, "outlets"), 1,
                               at);
            task_refs_add_list(out, dag_id, tid->valuestring, cJSON_GetObjectItemCaseSensitive(task, "inlets"), 0, at);
        }
        cJSON_Delete(doc);
    }
    rows_free(r);
    return 0;
}

static void ref_push(StoreKvqAssetRef **v, size_t *n, const char *dag_id, const char *task_id, int64_t created,
                     int64_t updated)
{
    *v = xrealloc(*v, (*n + 1) * sizeof **v);
    (*v)[(*n)++] = (StoreKvqAssetRef){xstrdup(dag_id), xstrdup(task_id), created, updated};
}

static void refs_free(StoreKvqAssetRef *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].dag_id);
        free(v[i].task_id);
    }
    free(v);
}

static StoreKvqAsset *asset_by_id(StoreKvqAsset *a, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (a[i].id == id) return &a[i];
    return NULL;
}

/* " IN (?, ?, ...)" over the ids of the page, appended to sql and p. */
static void ids_in(StrBuf *sql, StoreParam *p, const StoreKvqAsset *a, size_t n)
{
    sb_append(sql, " IN (");
    for (size_t i = 0; i < n; i++) {
        sb_append(sql, i ? ", ?" : "?");
        p[i] = SP_I(a[i].id);
    }
    sb_appendc(sql, ')');
}

/* The page's scheduled DAGs, last events and task references. */
static int asset_details(Store *s, StoreKvqAsset *a, size_t n)
{
    if (!n) return 0;
    StoreParam *p = xcalloc(n, sizeof *p);
    StrBuf sql = {0};
    sb_append(&sql, "SELECT asset_id, MAX(id), MAX(timestamp) FROM asset_event WHERE asset_id");
    ids_in(&sql, p, a, n);
    sb_append(&sql, " GROUP BY asset_id");
    StoreRows *r = store_q(s, sb_str(&sql), p, (int)n);
    int rc = r ? 0 : -1;
    while (r && rows_next(r)) {
        StoreKvqAsset *x = asset_by_id(a, n, rows_int(r, 0));
        if (!x) continue;
        x->last_event_id = rows_int(r, 1);
        x->last_event_at = rows_int(r, 2);
    }
    rows_free(r);
    sb_free(&sql);
    if (rc == 0) {
        /* a DAG's reference dates from its latest version (the table keeps no times) */
        sb_append(&sql, "SELECT ref.asset_id, ref.dag_id, v.created_at FROM dag_schedule_asset_reference ref "
                        "JOIN dag d ON d.dag_id = ref.dag_id LEFT JOIN dag_version v ON v.id = d.latest_version_id "
                        "WHERE ref.asset_id");
        ids_in(&sql, p, a, n);
        sb_append(&sql, store_is_sqlite(s) ? " ORDER BY ref.dag_id" : " ORDER BY ref.dag_id COLLATE \"C\"");
        r = store_q(s, sb_str(&sql), p, (int)n);
        rc = r ? 0 : -1;
        while (r && rows_next(r)) {
            StoreKvqAsset *x = asset_by_id(a, n, rows_int(r, 0));
            if (!x) continue;
            int64_t at = rows_isnull(r, 2) ? x->created_at : rows_int(r, 2);
            ref_push(&x->scheduled, &x->n_scheduled, rows_text(r, 1), NULL, at, at);
        }
        rows_free(r);
        sb_free(&sql);
    }
    free(p);
    if (rc != 0) return -1;
    TaskRefs t;
    if (task_refs_load(s, NULL, 0, &t) != 0) return -1;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < t.n; j++) {
            if (strcmp(t.v[j].uri, a[i].uri) != 0) continue;
            if (t.v[j].producing)
                ref_push(&a[i].producing, &a[i].n_producing, t.v[j].dag_id, t.v[j].task_id, t.v[j].at, t.v[j].at);
            else
                ref_push(&a[i].consuming, &a[i].n_consuming, t.v[j].dag_id, t.v[j].task_id, t.v[j].at, t.v[j].at);
        }
    task_refs_free(&t);
    return 0;
}

int store_kvq_asset_list(Store *s, const StoreKvqAssetFilter *f, const StoreKvqPage *pg, StoreKvqAsset **out,
                         size_t *n, int64_t *total)
{
    *out = NULL;
    *n = 0;
    *total = 0;
    Q q = {0};
    TaskRefs produced = {0};
    int rc = 0;
    if (f->id > 0) sqlb_cmp(&q, "a.id", "=", f->id);
    sqlb_pattern(&q, "a.uri", f->uri_pattern, KVQ_PATTERN);
    sqlb_pattern(&q, "a.name", f->name_pattern, KVQ_PATTERN);
    if (f->n_dag_ids > 0) {
        /* as Airflow: assets the DAGs are scheduled on, or that their tasks produce */
        rc = task_refs_load(s, f->dag_ids, f->n_dag_ids, &produced);
        Q in = {0};
        q_in(&in, "dag_id", f->dag_ids, f->n_dag_ids, 0);
        if (in.impossible) {
            q.impossible = 1;
        } else {
            sqlb_and(&q);
            sb_printf(&q.sql, "(a.id IN (SELECT asset_id FROM dag_schedule_asset_reference%s)", sb_str(&in.sql));
            sqlb_params_take(&q.p, &in.p);
            int first = 1;
            for (size_t i = 0; i < produced.n; i++) {
                if (!produced.v[i].producing) continue;
                sb_append(&q.sql, first ? " OR a.uri IN (?" : ", ?");
                first = 0;
                sqlb_param(&q.p, SP_S(produced.v[i].uri));
            }
            sb_append(&q.sql, first ? ")" : "))");
        }
        sqlb_where_free(&in);
    }
    if (rc == 0 && !q.impossible) rc = sqlb_count(s, "asset a", sb_str(&q.sql), &q.p, q.p.n, total);
    if (rc == 0 && !q.impossible && *total > 0 && pg->limit != 0) {
        StoreRows *r = q_page(s, &q, "a.id, a.uri, a.name, a.grp, a.extra, a.created_at, a.updated_at FROM asset a",
                              NULL, pg->order_sql, "a.id", pg);
        if (!r) rc = -1;
        size_t cap = 0;
        while (r && rows_next(r)) {
            *out = sqlb_grow(*out, *n, &cap, sizeof **out);
            StoreKvqAsset *a = &(*out)[(*n)++];
            memset(a, 0, sizeof *a);
            a->id = rows_int(r, 0);
            a->uri = sqlb_col_str(r, 1);
            a->name = rows_isnull(r, 2) ? xstrdup(a->uri) : sqlb_col_str(r, 2);
            a->group = sqlb_col_str(r, 3);
            a->extra = sqlb_col_str(r, 4);
            a->created_at = rows_int(r, 5);
            a->updated_at = rows_int(r, 6);
            a->last_event_id = a->last_event_at = STORE_KVQ_NONE;
        }
        rows_free(r);
        if (rc == 0) rc = asset_details(s, *out, *n);
    }
    task_refs_free(&produced);
    sqlb_where_free(&q);
    if (rc != 0) {
        store_kvq_asset_list_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void store_kvq_asset_list_free(StoreKvqAsset *a, size_t n)
{
    if (!a) return;
    for (size_t i = 0; i < n; i++) {
        free(a[i].uri);
        free(a[i].name);
        free(a[i].group);
        free(a[i].extra);
        refs_free(a[i].scheduled, a[i].n_scheduled);
        refs_free(a[i].producing, a[i].n_producing);
        refs_free(a[i].consuming, a[i].n_consuming);
    }
    free(a);
}

int store_kvq_asset_id(Store *s, const char *uri, int64_t *id)
{
    if (!sqlb_text_ok(uri)) return 0;
    StoreParam p[] = {SP_S(uri)};
    int64_t v = -1;
    if (store_q_int(s, "SELECT id FROM asset WHERE uri = ?", p, 1, -1, &v) != 0) return -1;
    if (v < 0) return 0;
    *id = v;
    return 1;
}

void store_kvq_asset_event_filter_init(StoreKvqAssetEventFilter *f)
{
    memset(f, 0, sizeof *f);
    f->source_map_index = STORE_KVQ_NONE;
    f->ts_gte = f->ts_gt = f->ts_lte = f->ts_lt = STORE_KVQ_NONE;
}

int store_kvq_asset_event_list(Store *s, const StoreKvqAssetEventFilter *f, const StoreKvqPage *pg,
                               StoreKvqAssetEvent **out, size_t *n, int64_t *total)
{
    *out = NULL;
    *n = 0;
    *total = 0;
    Q q = {0};
    if (f->id > 0) sqlb_cmp(&q, "e.id", "=", f->id);
    if (f->asset_id > 0) sqlb_cmp(&q, "e.asset_id", "=", f->asset_id);
    sqlb_eq(&q, "e.source_dag_id", f->source_dag_id, SQLB_CHECK_TEXT);
    sqlb_eq(&q, "e.source_task_id", f->source_task_id, SQLB_CHECK_TEXT);
    sqlb_eq(&q, "e.source_run_id", f->source_run_id, SQLB_CHECK_TEXT);
    /* events made by hand keep no map index: they count as -1, as the API shows them */
    if (f->source_map_index != STORE_KVQ_NONE) {
        sqlb_and(&q);
        sb_append(&q.sql, "COALESCE(e.source_map_index, -1) = ?");
        sqlb_param(&q.p, SP_I(f->source_map_index));
    }
    sqlb_pattern(&q, "a.name", f->name_pattern, KVQ_PATTERN);
    sqlb_cmp(&q, "e.timestamp", ">=", f->ts_gte);
    sqlb_cmp(&q, "e.timestamp", ">", f->ts_gt);
    sqlb_cmp(&q, "e.timestamp", "<=", f->ts_lte);
    sqlb_cmp(&q, "e.timestamp", "<", f->ts_lt);
    int rc = 0;
    if (!q.impossible) rc = sqlb_count(s, "asset_event e JOIN asset a ON a.id = e.asset_id", sb_str(&q.sql), &q.p, q.p.n, total);
    if (rc == 0 && !q.impossible && *total > 0 && pg->limit != 0) {
        StoreRows *r = q_page(s, &q,
                              "e.id, e.asset_id, e.timestamp, a.uri, a.name, a.grp, e.extra, e.source_dag_id, "
                              "e.source_task_id, e.source_run_id, e.source_map_index "
                              "FROM asset_event e JOIN asset a ON a.id = e.asset_id",
                              NULL, pg->order_sql, "e.id", pg);
        if (!r) rc = -1;
        size_t cap = 0;
        while (r && rows_next(r)) {
            *out = sqlb_grow(*out, *n, &cap, sizeof **out);
            StoreKvqAssetEvent *e = &(*out)[(*n)++];
            e->id = rows_int(r, 0);
            e->asset_id = rows_int(r, 1);
            e->timestamp = rows_int(r, 2);
            e->uri = sqlb_col_str(r, 3);
            e->name = rows_isnull(r, 4) ? xstrdup(e->uri) : sqlb_col_str(r, 4);
            e->group = sqlb_col_str(r, 5);
            e->extra = sqlb_col_str(r, 6);
            e->source_dag_id = sqlb_col_str(r, 7);
            e->source_task_id = sqlb_col_str(r, 8);
            e->source_run_id = sqlb_col_str(r, 9);
            e->source_map_index = rows_isnull(r, 10) ? -1 : (int)rows_int(r, 10);
        }
        rows_free(r);
    }
    sqlb_where_free(&q);
    if (rc != 0) {
        store_kvq_asset_event_list_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return rc;
}

void store_kvq_asset_event_list_free(StoreKvqAssetEvent *e, size_t n)
{
    if (!e) return;
    for (size_t i = 0; i < n; i++) {
        free(e[i].uri);
        free(e[i].name);
        free(e[i].group);
        free(e[i].extra);
        free(e[i].source_dag_id);
        free(e[i].source_task_id);
        free(e[i].source_run_id);
    }
    free(e);
}

typedef struct EventCreate {
    int64_t asset_id;
    const char *extra;
    int64_t id;
    int result;
} EventCreate;

static int event_create_fn(Store *s, void *ud)
{
    EventCreate *c = ud;
    int64_t n = 0, now = util_now_us();
    StoreParam k[] = {SP_I(c->asset_id)};
    if (store_q_int(s, "SELECT COUNT(*) FROM asset WHERE id = ?", k, 1, 0, &n) != 0) return -1;
    if (!n) {
        c->result = STORE_KVQ_MISSING;
        return 0;
    }
    StoreParam e[] = {SP_I(c->asset_id), SP_I(now), SP_S(c->extra)};
    StoreRows *r = store_q(s,
                           "INSERT INTO asset_event (asset_id, timestamp, source_map_index, extra) "
                           "VALUES (?, ?, -1, ?) RETURNING id",
                           e, 3);
    if (!r) return -1;
    c->id = rows_next(r) ? rows_int(r, 0) : 0;
    rows_free(r);
    /* the same queueing as store_asset_emit: the scheduler runs the DAGs whose condition holds */
    StoreParam q[] = {SP_I(now), SP_I(c->asset_id)};
    if (store_x(s,
                "INSERT INTO asset_dag_run_queue (asset_id, target_dag_id, created_at) "
                "SELECT asset_id, dag_id, ? FROM dag_schedule_asset_reference WHERE asset_id = ? "
                "ON CONFLICT DO NOTHING",
                q, 2, NULL) != 0)
        return -1;
    StoreParam u[] = {SP_I(now), SP_I(c->asset_id)};
    if (store_x(s, "UPDATE asset SET updated_at = ? WHERE id = ?", u, 2, NULL) != 0) return -1;
    c->result = STORE_KVQ_DONE;
    return store_notify(s, "assets");
}

int store_kvq_asset_event_create(Store *s, int64_t asset_id, const char *extra, int64_t *event_id)
{
    if (!extra) extra = "{}";
    cJSON *j = cJSON_Parse(extra);
    int obj = cJSON_IsObject(j);
    cJSON_Delete(j);
    if (!obj || !sqlb_text_ok(extra)) {
        store_set_error(s, "asset event extra must be a JSON object");
        return -1;
    }
    EventCreate c = {asset_id, extra, 0, 0};
    if (run_tx(s, event_create_fn, &c) != 0) return -1;
    if (c.result == STORE_KVQ_DONE && event_id) *event_id = c.id;
    return c.result;
}

/* ---- queued asset events ---------------------------------------------------------------------- */

static void queued_where(Q *q, const char *dag_id, int64_t asset_id, int64_t before)
{
    sqlb_eq(q, "target_dag_id", dag_id, SQLB_CHECK_TEXT);
    if (asset_id > 0) sqlb_cmp(q, "asset_id", "=", asset_id);
    sqlb_cmp(q, "created_at", "<", before);
}

int store_kvq_queued_list(Store *s, const char *dag_id, int64_t asset_id, int64_t before, StoreKvqQueued **out,
                          size_t *n)
{
    *out = NULL;
    *n = 0;
    Q q = {0};
    queued_where(&q, dag_id, asset_id, before);
    if (q.impossible) {
        sqlb_where_free(&q);
        return 0;
    }
    char *sql = xasprintf("SELECT target_dag_id, asset_id, created_at FROM asset_dag_run_queue%s "
                          "ORDER BY target_dag_id%s, asset_id",
                          sb_str(&q.sql), store_is_sqlite(s) ? "" : " COLLATE \"C\"");
    StoreRows *r = store_q(s, sql, q.p.v, q.p.n);
    free(sql);
    sqlb_where_free(&q);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        *out = sqlb_grow(*out, *n, &cap, sizeof **out);
        (*out)[(*n)++] = (StoreKvqQueued){sqlb_col_str(r, 0), rows_int(r, 1), rows_int(r, 2)};
    }
    rows_free(r);
    return 0;
}

void store_kvq_queued_list_free(StoreKvqQueued *q, size_t n)
{
    if (!q) return;
    for (size_t i = 0; i < n; i++) free(q[i].dag_id);
    free(q);
}

typedef struct QueuedDelete {
    Q *q;
    int64_t n;
} QueuedDelete;

static int queued_delete_fn(Store *s, void *ud)
{
    QueuedDelete *d = ud;
    char *sql = xasprintf("DELETE FROM asset_dag_run_queue%s", sb_str(&d->q->sql));
    int rc = store_x(s, sql, d->q->p.v, d->q->p.n, &d->n);
    free(sql);
    return rc;
}

int64_t store_kvq_queued_delete(Store *s, const char *dag_id, int64_t asset_id, int64_t before)
{
    Q q = {0};
    queued_where(&q, dag_id, asset_id, before);
    int64_t n = 0;
    if (!q.impossible) {
        QueuedDelete d = {&q, 0};
        n = run_tx(s, queued_delete_fn, &d) == 0 ? d.n : -1;
    }
    sqlb_where_free(&q);
    return n;
}
