/* kv — variables, connections and pools (see kv.h).
 *
 * Writes check before they change, inside the same transaction, so a message can say
 * "already exists" or "created" without guessing from an engine's error text; upserts use
 * INSERT ... ON CONFLICT, which both engines spell the same way. Connection secrets are
 * encrypted before the transaction starts (store_tx may run its function twice, and a
 * fresh nonce per attempt would be harmless but pointless). */
#include "store/kv.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

/* ---- shared helpers ------------------------------------------------------------------- */

size_t store_utf8_next(const char *s, size_t avail)
{
    const unsigned char *p = (const unsigned char *)s;
    if (!avail || p[0] == 0) return 0;
    if (p[0] < 0x80) return 1;
    size_t n;
    unsigned cp, min;
    if ((p[0] & 0xE0) == 0xC0) n = 1, cp = p[0] & 0x1Fu, min = 0x80;
    else if ((p[0] & 0xF0) == 0xE0) n = 2, cp = p[0] & 0x0Fu, min = 0x800;
    else if ((p[0] & 0xF8) == 0xF0) n = 3, cp = p[0] & 0x07u, min = 0x10000;
    else return 0;
    if (avail < n + 1) return 0;
    for (size_t i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (p[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n + 1;
}

int store_text_valid(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        size_t n = store_utf8_next(s + i, len - i);
        if (!n) return 0;
        i += n;
    }
    return 1;
}

/* Join the caller's transaction when there is one (see kv.h). */
static int run_tx(Store *s, StoreTxFn fn, void *ud)
{
    return s->in_tx ? fn(s, ud) : store_tx(s, fn, ud);
}

typedef struct Exec1 {
    const char *sql;
    const StoreParam *p;
    int np;
    int64_t affected;
} Exec1;

static int exec1_fn(Store *s, void *ud)
{
    Exec1 *e = ud;
    e->affected = 0;
    return store_x(s, e->sql, e->p, e->np, &e->affected);
}

/* One statement in its own (retried) transaction: affected rows, or -1. */
static int64_t exec1(Store *s, const char *sql, const StoreParam *p, int np)
{
    Exec1 e = {sql, p, np, 0};
    return run_tx(s, exec1_fn, &e) == 0 ? e.affected : -1;
}

/* How check_text treats a missing or empty value. */
enum { TEXT_OPTIONAL = 0, TEXT_REQUIRED = 1, TEXT_NONEMPTY = 2 };

/* v must be valid UTF-8 without NUL; present and/or non-empty as mode says. */
static int check_text(Store *s, const char *what, const char *v, int mode)
{
    if (!v) {
        if (mode == TEXT_OPTIONAL) return 0;
        store_set_error(s, "%s is required", what);
        return -1;
    }
    if (mode == TEXT_NONEMPTY && !*v) {
        store_set_error(s, "%s must not be empty", what);
        return -1;
    }
    if (!store_text_valid(v, strlen(v))) {
        store_set_error(s, "%s is not valid UTF-8 text", what);
        return -1;
    }
    return 0;
}

/* PostgreSQL sorts text by the database's locale, SQLite by bytes: ask both for bytes so
 * that lists come out in the same order everywhere. */
static const char *bytewise(const Store *s)
{
    return store_is_sqlite(s) ? "" : " COLLATE \"C\"";
}

static int64_t limit_of(int limit)
{
    return limit > 0 ? limit : INT64_MAX;
}

static char *col_dup(StoreRows *r, int col)
{
    return rows_isnull(r, col) ? NULL : xstrdup(rows_text(r, col));
}

/* ---- variables ------------------------------------------------------------------------ */

typedef struct VarSet {
    const char *key, *val, *desc;
    int created;
} VarSet;

static int var_set_fn(Store *s, void *ud)
{
    VarSet *v = ud;
    int64_t n = 0;
    StoreParam k[] = {SP_S(v->key)};
    if (store_q_int(s, "SELECT COUNT(*) FROM variable WHERE key = ?", k, 1, 0, &n) != 0) return -1;
    v->created = n == 0;
    StoreParam p[] = {SP_S(v->key), SP_S(v->val), SP_S(v->desc)};
    return store_x(s,
                   "INSERT INTO variable (key, val, description, is_encrypted) VALUES (?, ?, ?, 0) "
                   "ON CONFLICT (key) DO UPDATE SET val = excluded.val, "
                   "description = COALESCE(excluded.description, variable.description), is_encrypted = 0",
                   p, 3, NULL);
}

int store_var_set(Store *s, const char *key, const char *val, const char *description, int *created)
{
    if (check_text(s, "variable key", key, TEXT_NONEMPTY) || check_text(s, "variable value", val, TEXT_REQUIRED) ||
        check_text(s, "variable description", description, TEXT_OPTIONAL))
        return -1;
    VarSet v = {key, val, description, 0};
    if (run_tx(s, var_set_fn, &v) != 0) return -1;
    if (created) *created = v.created;
    return 0;
}

static void var_fill(StoreVariable *v, StoreRows *r)
{
    v->key = col_dup(r, 0);
    v->val = col_dup(r, 1);
    v->description = col_dup(r, 2);
}

StoreVariable *store_var_get(Store *s, const char *key, int *missing)
{
    if (missing) *missing = 0;
    if (check_text(s, "variable key", key, TEXT_NONEMPTY)) return NULL;
    StoreParam p[] = {SP_S(key)};
    StoreRows *r = store_q(s, "SELECT key, val, description FROM variable WHERE key = ?", p, 1);
    if (!r) return NULL;
    StoreVariable *v = NULL;
    if (rows_next(r)) {
        v = xcalloc(1, sizeof *v);
        var_fill(v, r);
    } else {
        store_set_error(s, "no variable '%.200s'", key);
        if (missing) *missing = 1;
    }
    rows_free(r);
    return v;
}

static void var_clear(StoreVariable *v)
{
    free(v->key);
    free(v->val);
    free(v->description);
}

void store_var_free(StoreVariable *v)
{
    if (!v) return;
    var_clear(v);
    free(v);
}

int store_var_list(Store *s, int limit, int offset, StoreVariableList *out)
{
    memset(out, 0, sizeof *out);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT key, val, description FROM variable ORDER BY key%s LIMIT ? OFFSET ?",
             bytewise(s));
    StoreParam p[] = {SP_I(limit_of(limit)), SP_I(offset > 0 ? offset : 0)};
    StoreRows *r = store_q(s, sql, p, 2);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            out->items = xrealloc(out->items, cap * sizeof *out->items);
        }
        var_fill(&out->items[out->n++], r);
    }
    rows_free(r);
    return 0;
}

void store_var_list_free(StoreVariableList *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) var_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

int store_var_delete(Store *s, const char *key)
{
    if (check_text(s, "variable key", key, TEXT_NONEMPTY)) return -1;
    StoreParam p[] = {SP_S(key)};
    int64_t n = exec1(s, "DELETE FROM variable WHERE key = ?", p, 1);
    return n < 0 ? -1 : n > 0;
}

/* ---- connections ---------------------------------------------------------------------- */

int store_conn_id_valid(const char *id)
{
    if (!id || !*id || strlen(id) > 250) return 0;
    for (const char *p = id; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-' && *p != '.') return 0;
    return 1;
}

static int json_object_valid(const char *text)
{
    cJSON *j = cJSON_ParseWithOpts(text, NULL, 1);
    int ok = cJSON_IsObject(j);
    cJSON_Delete(j);
    return ok;
}

static int conn_check(Store *s, const StoreConnection *c)
{
    if (!c->conn_id || !store_conn_id_valid(c->conn_id)) {
        store_set_error(s, "invalid connection id '%.100s': use letters, digits, '_', '-' and '.' (at most 250)",
                        c->conn_id ? c->conn_id : "");
        return -1;
    }
    if (check_text(s, "conn_type", c->conn_type, TEXT_NONEMPTY) ||
        check_text(s, "description", c->description, TEXT_OPTIONAL) || check_text(s, "host", c->host, TEXT_OPTIONAL) ||
        check_text(s, "schema", c->schema, TEXT_OPTIONAL) || check_text(s, "login", c->login, TEXT_OPTIONAL) ||
        check_text(s, "password", c->password, TEXT_OPTIONAL) || check_text(s, "extra", c->extra, TEXT_OPTIONAL))
        return -1;
    if (c->port < 0 || c->port > 65535) {
        store_set_error(s, "port %d is out of range 1-65535", c->port);
        return -1;
    }
    if (c->extra && !json_object_valid(c->extra)) {
        store_set_error(s, "extra of connection '%s' is not a JSON object", c->conn_id);
        return -1;
    }
    return 0;
}

static char *encrypt_field(Store *s, const SecretKey *key, const char *plain, const char *aad, int *failed)
{
    if (!plain) return NULL;
    char *t = secret_encrypt(key, plain, strlen(plain), aad);
    if (!t) {
        store_set_error(s, "cannot encrypt a secret of connection '%s'", aad);
        *failed = 1;
    }
    return t;
}

/* Decrypt a stored field. A value without the token prefix was written in clear (by hand,
 * or before encryption) and is taken as it is; one with the prefix must decrypt. */
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

typedef struct ConnWrite {
    const StoreConnection *c;
    const char *pw_tok, *extra_tok; /* encrypted password and extra, or NULL */
    int add;                        /* 1: refuse an existing id */
    int created;
} ConnWrite;

static int conn_write_fn(Store *s, void *ud)
{
    ConnWrite *w = ud;
    const StoreConnection *c = w->c;
    int64_t n = 0;
    StoreParam k[] = {SP_S(c->conn_id)};
    if (store_q_int(s, "SELECT COUNT(*) FROM connection WHERE conn_id = ?", k, 1, 0, &n) != 0) return -1;
    w->created = n == 0;
    if (w->add && n) {
        store_set_error(s, "connection '%s' already exists", c->conn_id);
        return -1;
    }
    StoreParam p[] = {SP_S(c->conn_id), SP_S(c->conn_type), SP_S(c->description), SP_S(c->host),
                      SP_S(c->schema),  SP_S(c->login),     SP_S(w->pw_tok),      c->port ? SP_I(c->port) : SP_NIL,
                      SP_S(w->extra_tok)};
    static const char insert[] =
        "INSERT INTO connection (conn_id, conn_type, description, host, schema, login, password, port, extra) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    static const char upsert[] =
        "INSERT INTO connection (conn_id, conn_type, description, host, schema, login, password, port, extra) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (conn_id) DO UPDATE SET conn_type = excluded.conn_type, "
        "description = excluded.description, host = excluded.host, schema = excluded.schema, "
        "login = excluded.login, password = excluded.password, port = excluded.port, extra = excluded.extra";
    if (store_x(s, w->add ? insert : upsert, p, 9, NULL) != 0) {
        /* another process added it between our check and our insert */
        if (w->add && store_error_kind(s->conn) == STORE_ERR_CONSTRAINT)
            store_set_error(s, "connection '%s' already exists", c->conn_id);
        return -1;
    }
    return 0;
}

static int conn_write(Store *s, const SecretKey *key, const StoreConnection *c, int add, int *created)
{
    if (conn_check(s, c)) return -1;
    if (!key && (c->password || c->extra)) {
        store_set_error(s, "cannot store connection '%s': no secret key to encrypt it with", c->conn_id);
        return -1;
    }
    int failed = 0;
    char *pw = encrypt_field(s, key, c->password, c->conn_id, &failed);
    char *extra = failed ? NULL : encrypt_field(s, key, c->extra, c->conn_id, &failed);
    int rc = -1;
    if (!failed) {
        ConnWrite w = {c, pw, extra, add, 0};
        rc = run_tx(s, conn_write_fn, &w);
        if (rc == 0 && created) *created = w.created;
    }
    free(pw);
    free(extra);
    return rc;
}

int store_conn_add(Store *s, const SecretKey *key, const StoreConnection *c)
{
    return conn_write(s, key, c, 1, NULL);
}

int store_conn_upsert(Store *s, const SecretKey *key, const StoreConnection *c, int *created)
{
    return conn_write(s, key, c, 0, created);
}

#define CONN_COLUMNS "conn_id, conn_type, description, host, schema, login, password, port, extra"

/* Fill c from a row of CONN_COLUMNS, decrypting. -1 (with err) if a secret does not
 * decrypt; the other fields are filled anyway. */
static int conn_fill(StoreConnection *c, StoreRows *r, const SecretKey *key, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->conn_id = col_dup(r, 0);
    c->conn_type = col_dup(r, 1);
    c->description = col_dup(r, 2);
    c->host = col_dup(r, 3);
    c->schema = col_dup(r, 4);
    c->login = col_dup(r, 5);
    c->port = (int)rows_int(r, 7);
    char why[300];
    if (decrypt_field(key, rows_text(r, 6), c->conn_id, &c->password, why, sizeof why) != 0) {
        snprintf(err, errlen, "connection '%s' password: %s", c->conn_id, why);
        return -1;
    }
    if (decrypt_field(key, rows_text(r, 8), c->conn_id, &c->extra, why, sizeof why) != 0) {
        wipe_free(c->password);
        c->password = NULL;
        snprintf(err, errlen, "connection '%s' extra: %s", c->conn_id, why);
        return -1;
    }
    return 0;
}

StoreConnection *store_conn_get(Store *s, const SecretKey *key, const char *conn_id, int *missing)
{
    if (missing) *missing = 0;
    if (check_text(s, "connection id", conn_id, TEXT_NONEMPTY)) return NULL;
    StoreParam p[] = {SP_S(conn_id)};
    StoreRows *r = store_q(s, "SELECT " CONN_COLUMNS " FROM connection WHERE conn_id = ?", p, 1);
    if (!r) return NULL;
    StoreConnection *c = NULL;
    if (rows_next(r)) {
        c = xmalloc(sizeof *c);
        char err[400];
        if (conn_fill(c, r, key, err, sizeof err) != 0) {
            store_set_error(s, "%s", err);
            store_conn_free(c);
            c = NULL;
        }
    } else {
        store_set_error(s, "no connection '%.200s'", conn_id);
        if (missing) *missing = 1;
    }
    rows_free(r);
    return c;
}

int store_conn_list(Store *s, const SecretKey *key, int limit, int offset, StoreConnectionList *out)
{
    memset(out, 0, sizeof *out);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT " CONN_COLUMNS " FROM connection ORDER BY conn_id%s LIMIT ? OFFSET ?",
             bytewise(s));
    StoreParam p[] = {SP_I(limit_of(limit)), SP_I(offset > 0 ? offset : 0)};
    StoreRows *r = store_q(s, sql, p, 2);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            out->items = xrealloc(out->items, cap * sizeof *out->items);
        }
        StoreConnection *c = &out->items[out->n++];
        char err[400];
        if (conn_fill(c, r, key, err, sizeof err) != 0) c->error = xstrdup(err);
    }
    rows_free(r);
    return 0;
}

int store_conn_delete(Store *s, const char *conn_id)
{
    if (check_text(s, "connection id", conn_id, TEXT_NONEMPTY)) return -1;
    StoreParam p[] = {SP_S(conn_id)};
    int64_t n = exec1(s, "DELETE FROM connection WHERE conn_id = ?", p, 1);
    return n < 0 ? -1 : n > 0;
}

void store_conn_clear(StoreConnection *c)
{
    if (!c) return;
    free(c->conn_id);
    free(c->conn_type);
    free(c->description);
    free(c->host);
    free(c->schema);
    free(c->login);
    wipe_free(c->password);
    wipe_free(c->extra);
    free(c->error);
    memset(c, 0, sizeof *c);
}

void store_conn_free(StoreConnection *c)
{
    if (!c) return;
    store_conn_clear(c);
    free(c);
}

void store_conn_list_free(StoreConnectionList *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) store_conn_clear(&l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* ---- connection URIs ------------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Python's unquote (plus=0) / unquote_plus (plus=1) of s[0..n): a malformed %XY is kept
 * as it is. NULL when the result is not UTF-8 text without NUL. */
static char *pct_decode(const char *s, size_t n, int plus)
{
    char *out = xmalloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));
            i += 2;
        } else if (plus && s[i] == '+') {
            out[o++] = ' ';
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    if (!store_text_valid(out, o)) {
        free(out);
        return NULL;
    }
    return out;
}

static int uri_fail(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "invalid connection URI: %s", why);
    return -1;
}

/* Decode s[0..n) into *dst (NULL when empty). -1 when it is not text. */
static int uri_part(const char *s, size_t n, int plus, char **dst, const char *what, char *err, size_t errlen)
{
    *dst = NULL;
    if (!n) return 0;
    char *v = pct_decode(s, n, plus);
    if (!v) {
        char why[80];
        snprintf(why, sizeof why, "the %s is not UTF-8 text once decoded", what);
        return uri_fail(err, errlen, why);
    }
    *dst = v;
    return 0;
}

static int scheme_valid(const char *s, size_t n)
{
    if (!n || !isalpha((unsigned char)s[0])) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '+' && s[i] != '-' && s[i] != '.') return 0;
    return 1;
}

static size_t count_str(const char *s, const char *needle)
{
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* The query string as Airflow's extra: a JSON object of strings (parse_qsl with blank
 * values kept; the last of repeated names wins), or the __extra__ parameter verbatim. */
static int uri_query(const char *q, size_t n, char **extra, char *err, size_t errlen)
{
    cJSON *obj = cJSON_CreateObject();
    char *verbatim = NULL;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        size_t end = i;
        while (end < n && q[end] != '&') end++;
        if (end > i) {
            const char *eq = memchr(q + i, '=', end - i);
            size_t klen = eq ? (size_t)(eq - (q + i)) : end - i;
            char *k = pct_decode(q + i, klen, 1);
            char *v = eq ? pct_decode(eq + 1, (size_t)(q + end - eq - 1), 1) : xstrdup("");
            if (!k || !v) {
                rc = uri_fail(err, errlen, "a query parameter is not UTF-8 text once decoded");
            } else if (strcmp(k, "__extra__") == 0) {
                free(verbatim);
                verbatim = xstrdup(v);
            } else if (cJSON_GetObjectItemCaseSensitive(obj, k)) {
                cJSON_ReplaceItemInObjectCaseSensitive(obj, k, cJSON_CreateString(v));
            } else {
                cJSON_AddItemToObject(obj, k, cJSON_CreateString(v));
            }
            free(k);
            free(v);
        }
        i = end + 1;
    }
    if (rc == 0 && verbatim) {
        if (!json_object_valid(verbatim)) rc = uri_fail(err, errlen, "__extra__ is not a JSON object");
        else *extra = verbatim, verbatim = NULL;
    } else if (rc == 0) {
        *extra = cJSON_PrintUnformatted(obj);
    }
    free(verbatim);
    cJSON_Delete(obj);
    return rc;
}

int store_conn_parse_uri(const char *uri, StoreConnection *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!uri || !store_text_valid(uri, strlen(uri))) return uri_fail(err, errlen, "not UTF-8 text");
    size_t schemes = count_str(uri, "://");
    if (schemes == 0) return uri_fail(err, errlen, "expected TYPE://[LOGIN[:PASSWORD]@]HOST[:PORT][/SCHEMA][?EXTRA]");
    if (schemes > 2) return uri_fail(err, errlen, "more than two '://'");
    const char *sep = strstr(uri, "://");
    if (!scheme_valid(uri, (size_t)(sep - uri)))
        return uri_fail(err, errlen, "the connection type is not a URI scheme");

    /* scheme -> conn_type, as Airflow's _normalize_conn_type */
    char *type = xstrndup(uri, (size_t)(sep - uri));
    for (char *p = type; *p; p++) *p = *p == '-' ? '_' : (char)tolower((unsigned char)*p);
    if (strcmp(type, "postgresql") == 0) {
        free(type);
        type = xstrdup("postgres");
    }
    out->conn_type = type;

    const char *rest = sep + 3;
    char *protocol = NULL;
    if (schemes == 2) { /* "type://protocol://host...": the host keeps its protocol */
        const char *sep2 = strstr(rest, "://");
        size_t plen = (size_t)(sep2 - rest);
        if (memchr(rest, '@', plen) || memchr(rest, ':', plen) || !scheme_valid(rest, plen)) {
            store_conn_clear(out);
            return uri_fail(err, errlen, "the host's protocol is not a URI scheme");
        }
        protocol = xstrndup(rest, plen);
        for (char *p = protocol; *p; p++) *p = (char)tolower((unsigned char)*p);
        rest = sep2 + 3;
    }

    /* rest = netloc [/path] [?query] [#fragment] */
    size_t netlen = strcspn(rest, "/?#");
    const char *net = rest, *after = rest + netlen;
    size_t pathlen = *after == '/' ? strcspn(after, "?#") : 0;
    const char *query = after + pathlen;
    size_t querylen = 0;
    if (*query == '?') {
        query++;
        querylen = strcspn(query, "#");
    }

    /* userinfo@hostinfo, split at the last '@' as urlsplit does */
    const char *at = NULL;
    for (size_t i = 0; i < netlen; i++)
        if (net[i] == '@') at = net + i;
    const char *host = at ? at + 1 : net;
    size_t hostinfo_len = (size_t)(net + netlen - host);
    const char *port = NULL;
    size_t hostlen, portlen = 0;
    if (hostinfo_len && host[0] == '[') { /* [IPv6]:port */
        const char *rb = memchr(host, ']', hostinfo_len);
        if (!rb) {
            free(protocol);
            store_conn_clear(out);
            return uri_fail(err, errlen, "unbalanced '[' in the host");
        }
        host++;
        hostlen = (size_t)(rb - host);
        const char *colon = memchr(rb, ':', (size_t)(net + netlen - rb));
        if (colon) port = colon + 1, portlen = (size_t)(net + netlen - port);
    } else {
        const char *colon = memchr(host, ':', hostinfo_len);
        hostlen = colon ? (size_t)(colon - host) : hostinfo_len;
        if (colon) port = colon + 1, portlen = (size_t)(net + netlen - port);
    }

    int rc = 0;
    if (at) {
        size_t ulen = (size_t)(at - net);
        const char *colon = memchr(net, ':', ulen);
        size_t loglen = colon ? (size_t)(colon - net) : ulen;
        rc = uri_part(net, loglen, 0, &out->login, "login", err, errlen);
        if (rc == 0 && colon)
            rc = uri_part(colon + 1, (size_t)(at - colon - 1), 0, &out->password, "password", err, errlen);
    }
    if (rc == 0 && hostlen) {
        char *raw = xstrndup(host, hostlen);
        char *decoded = pct_decode(raw, hostlen, 0);
        if (!decoded) {
            rc = uri_fail(err, errlen, "the host is not UTF-8 text once decoded");
        } else {
            /* urlsplit lower-cases the host name, except that Airflow keeps the netloc as
             * written when the host is a (percent-encoded) socket path. */
            if (!strchr(decoded, '/'))
                for (char *p = decoded; *p; p++) *p = (char)tolower((unsigned char)*p);
            out->host = protocol ? xasprintf("%s://%s", protocol, decoded) : xstrdup(decoded);
        }
        free(raw);
        free(decoded);
    } else if (rc == 0 && protocol) {
        out->host = xasprintf("%s://", protocol);
    }
    if (rc == 0 && portlen) {
        long v = 0;
        for (size_t i = 0; i < portlen && rc == 0; i++) {
            if (!isdigit((unsigned char)port[i])) rc = uri_fail(err, errlen, "the port is not a number");
            else if ((v = v * 10 + (port[i] - '0')) > 65535)
                rc = uri_fail(err, errlen, "the port is out of range 0-65535");
        }
        if (rc == 0) out->port = (int)v;
    }
    if (rc == 0 && pathlen > 1) rc = uri_part(after + 1, pathlen - 1, 0, &out->schema, "schema", err, errlen);
    if (rc == 0 && querylen) rc = uri_query(query, querylen, &out->extra, err, errlen);
    free(protocol);
    if (rc != 0) store_conn_clear(out);
    return rc;
}

/* ---- pools ------------------------------------------------------------------------------ */

typedef struct PoolSet {
    const char *name, *desc;
    int slots, include_deferred; /* include_deferred < 0: keep */
    int created;
} PoolSet;

static int pool_set_fn(Store *s, void *ud)
{
    PoolSet *ps = ud;
    int64_t n = 0;
    StoreParam k[] = {SP_S(ps->name)};
    if (store_q_int(s, "SELECT COUNT(*) FROM slot_pool WHERE pool = ?", k, 1, 0, &n) != 0) return -1;
    ps->created = n == 0;
    StoreParam p[] = {SP_S(ps->name), SP_I(ps->slots), SP_S(ps->desc), SP_I(ps->include_deferred > 0)};
    return store_x(s,
                   ps->include_deferred < 0
                       ? "INSERT INTO slot_pool (pool, slots, description, include_deferred) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (pool) DO UPDATE SET slots = excluded.slots, "
                         "description = COALESCE(excluded.description, slot_pool.description)"
                       : "INSERT INTO slot_pool (pool, slots, description, include_deferred) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (pool) DO UPDATE SET slots = excluded.slots, "
                         "description = COALESCE(excluded.description, slot_pool.description), "
                         "include_deferred = excluded.include_deferred",
                   p, 4, NULL);
}

int store_pool_set_ex(Store *s, const char *name, int slots, const char *description, int include_deferred,
                      int *created)
{
    if (check_text(s, "pool name", name, TEXT_NONEMPTY) ||
        check_text(s, "pool description", description, TEXT_OPTIONAL))
        return -1;
    if (strlen(name) > 256) {
        store_set_error(s, "pool name is longer than 256 bytes");
        return -1;
    }
    if (slots < -1) {
        store_set_error(s, "pool slots must be a number >= 0, or -1 for unlimited (got %d)", slots);
        return -1;
    }
    PoolSet ps = {name, description, slots, include_deferred, 0};
    if (run_tx(s, pool_set_fn, &ps) != 0) return -1;
    if (created) *created = ps.created;
    return 0;
}

int store_pool_set(Store *s, const char *name, int slots, const char *description, int *created)
{
    return store_pool_set_ex(s, name, slots, description, -1, created);
}

static void pool_open(StorePool *p)
{
    if (p->slots < 0) {
        p->open = STORE_POOL_UNLIMITED;
        return;
    }
    int64_t open = (int64_t)p->slots - p->running - p->queued - (p->include_deferred ? p->deferred : 0);
    p->open = open < INT_MIN ? INT_MIN : (int)open;
}

static void pool_add_usage(StorePool *p, const char *state, int64_t slots)
{
    int v = slots > INT_MAX ? INT_MAX : (int)slots;
    if (strcmp(state, "running") == 0) p->running = v;
    else if (strcmp(state, "queued") == 0) p->queued = v;
    else if (strcmp(state, "deferred") == 0) p->deferred = v;
}

#define POOL_USAGE_STATES "('running', 'queued', 'deferred')"

/* Usage of one pool (name) or of all (NULL), added to pools[0..n). */
static int pool_usage(Store *s, const char *name, StorePool *pools, size_t n)
{
    StoreParam p[] = {SP_S(name)};
    StoreRows *r = name ? store_q(s,
                                  "SELECT pool, state, SUM(pool_slots) FROM task_instance WHERE pool = ? AND state IN "
                                  POOL_USAGE_STATES " GROUP BY pool, state",
                                  p, 1)
                        : store_q(s,
                                  "SELECT pool, state, SUM(pool_slots) FROM task_instance WHERE state IN "
                                  POOL_USAGE_STATES " GROUP BY pool, state",
                                  NULL, 0);
    if (!r) return -1;
    while (rows_next(r)) {
        const char *pool = rows_text(r, 0);
        for (size_t i = 0; i < n; i++)
            if (strcmp(pools[i].name, pool) == 0) pool_add_usage(&pools[i], rows_text(r, 1), rows_int(r, 2));
    }
    rows_free(r);
    for (size_t i = 0; i < n; i++) pool_open(&pools[i]);
    return 0;
}

static void pool_fill(StorePool *p, StoreRows *r)
{
    memset(p, 0, sizeof *p);
    p->name = col_dup(r, 0);
    p->slots = (int)rows_int(r, 1);
    p->description = col_dup(r, 2);
    p->include_deferred = rows_int(r, 3) != 0;
}

StorePool *store_pool_get(Store *s, const char *name, int *missing)
{
    if (missing) *missing = 0;
    if (check_text(s, "pool name", name, TEXT_NONEMPTY)) return NULL;
    StoreParam p[] = {SP_S(name)};
    StoreRows *r = store_q(s, "SELECT pool, slots, description, include_deferred FROM slot_pool WHERE pool = ?", p, 1);
    if (!r) return NULL;
    StorePool *pool = NULL;
    if (rows_next(r)) {
        pool = xmalloc(sizeof *pool);
        pool_fill(pool, r);
    } else {
        store_set_error(s, "no pool '%.200s'", name);
        if (missing) *missing = 1;
    }
    rows_free(r);
    if (pool && pool_usage(s, name, pool, 1) != 0) {
        store_pool_free(pool);
        pool = NULL;
    }
    return pool;
}

void store_pool_free(StorePool *p)
{
    if (!p) return;
    free(p->name);
    free(p->description);
    free(p);
}

int store_pool_list(Store *s, StorePoolList *out)
{
    memset(out, 0, sizeof *out);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT pool, slots, description, include_deferred FROM slot_pool ORDER BY pool%s",
             bytewise(s));
    StoreRows *r = store_q(s, sql, NULL, 0);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 8;
            out->items = xrealloc(out->items, cap * sizeof *out->items);
        }
        pool_fill(&out->items[out->n++], r);
    }
    rows_free(r);
    if (pool_usage(s, NULL, out->items, out->n) != 0) {
        store_pool_list_free(out);
        return -1;
    }
    return 0;
}

void store_pool_list_free(StorePoolList *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].name);
        free(l->items[i].description);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

int store_pool_delete(Store *s, const char *name)
{
    if (check_text(s, "pool name", name, TEXT_NONEMPTY)) return -1;
    if (strcmp(name, STORE_DEFAULT_POOL) == 0) {
        store_set_error(s, "default_pool cannot be deleted");
        return -1;
    }
    StoreParam p[] = {SP_S(name)};
    int64_t n = exec1(s, "DELETE FROM slot_pool WHERE pool = ?", p, 1);
    return n < 0 ? -1 : n > 0;
}

int store_pool_usage(Store *s, const char *pool, int *running, int *queued, int *open)
{
    StorePool *p = store_pool_get(s, pool, NULL);
    if (!p) return -1;
    if (running) *running = p->running;
    if (queued) *queued = p->queued;
    if (open) *open = p->open;
    store_pool_free(p);
    return 0;
}
