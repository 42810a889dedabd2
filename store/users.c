/* users — the API's users in table api_user (see users.h).
 *
 * Creation checks for the name inside the transaction before inserting, so the usual
 * duplicate is reported in our words; a concurrent creation that slips between the check
 * and the insert is caught by the UNIQUE index and reported the same way. Every message
 * names the field it is about and never contains a password or a hash. */
#include "store/users.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/passwd.h"
#include "core/util.h"
#include "store/kv.h"

static const char *const ROLES[] = {"Admin", "Op", "User", "Viewer"};

const char *store_user_role_canonical(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < sizeof ROLES / sizeof ROLES[0]; i++)
        if (strcasecmp(name, ROLES[i]) == 0) return ROLES[i];
    return NULL;
}

int store_user_name_valid(const char *name, char *why, size_t whylen)
{
    const char *msg = NULL;
    size_t n = name ? strlen(name) : 0;
    if (!name || n == 0)
        msg = "username must not be empty";
    else if (n > STORE_USER_NAME_MAX)
        msg = "username is longer than 64 characters";
    else
        for (size_t i = 0; i < n && !msg; i++) {
            char c = name[i];
            int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                     c == '.' || c == '@' || c == '-';
            if (!ok) msg = "username may only contain letters, digits and _ . @ -";
        }
    if (msg && why && whylen) snprintf(why, whylen, "%s", msg);
    return msg == NULL;
}

/* The checks every writing function starts with; -1 with the message in s. */
static int check_name(Store *s, const char *username)
{
    char why[128];
    if (store_user_name_valid(username, why, sizeof why)) return 0;
    store_set_error(s, "%s", why);
    return -1;
}

static int check_password(Store *s, const char *password)
{
    if (!password || !*password) {
        store_set_error(s, "password must not be empty");
        return -1;
    }
    size_t n = strlen(password);
    if (n > STORE_USER_PASSWORD_MAX) {
        store_set_error(s, "password is longer than %d bytes", STORE_USER_PASSWORD_MAX);
        return -1;
    }
    if (!store_text_valid(password, n)) {
        store_set_error(s, "password is not valid UTF-8 text");
        return -1;
    }
    return 0;
}

static const char *check_role(Store *s, const char *role)
{
    const char *canon = store_user_role_canonical(role);
    if (!canon) store_set_error(s, "role '%.40s' is not one of %s", role ? role : "", STORE_USER_ROLES);
    return canon;
}

/* Join the caller's transaction when there is one. */
static int run_tx(Store *s, StoreTxFn fn, void *ud)
{
    return s->in_tx ? fn(s, ud) : store_tx(s, fn, ud);
}

/* The hash is made before the transaction and wiped after: it is not the password, but
 * there is no reason to leave it in freed memory either. */
static void free_hash(char *hash)
{
    if (!hash) return;
    OPENSSL_cleanse(hash, strlen(hash));
    free(hash);
}

/* ---- create ------------------------------------------------------------------------------ */

typedef struct Create {
    const char *username, *hash, *role;
    int64_t now;
    int exists;
} Create;

static int create_fn(Store *s, void *ud)
{
    Create *c = ud;
    c->exists = 0;
    int64_t n = 0;
    StoreParam k[] = {SP_S(c->username)};
    if (store_q_int(s, "SELECT COUNT(*) FROM api_user WHERE username = ?", k, 1, 0, &n) != 0) return -1;
    if (n > 0) {
        c->exists = 1;
        store_set_error(s, "user '%s' already exists", c->username);
        return -1;
    }
    StoreParam p[] = {SP_S(c->username), SP_S(c->hash), SP_S(c->role), SP_I(c->now), SP_I(c->now)};
    if (store_x(s,
                "INSERT INTO api_user (username, password_hash, role, created_at, changed_at, last_login) "
                "VALUES (?, ?, ?, ?, ?, NULL)",
                p, 5, NULL) == 0)
        return 0;
    if (store_error_kind(s->conn) == STORE_ERR_CONSTRAINT) {
        c->exists = 1;
        store_set_error(s, "user '%s' already exists", c->username);
    }
    return -1;
}

int store_user_create(Store *s, const char *username, const char *password, const char *role, int *exists)
{
    if (exists) *exists = 0;
    const char *canon;
    if (check_name(s, username) || !(canon = check_role(s, role)) || check_password(s, password)) return -1;
    char *hash = passwd_hash(password);
    if (!hash) {
        store_set_error(s, "cannot hash the password (OpenSSL failed)");
        return -1;
    }
    Create c = {username, hash, canon, util_now_us(), 0};
    int rc = run_tx(s, create_fn, &c);
    free_hash(hash);
    if (exists) *exists = c.exists;
    return rc == 0 ? 0 : -1;
}

/* ---- read -------------------------------------------------------------------------------- */

static char *col_dup(StoreRows *r, int col)
{
    return rows_isnull(r, col) ? NULL : xstrdup(rows_text(r, col));
}

/* Columns: id, username, role, created_at, changed_at, last_login[, password_hash]. */
static void user_fill(StoreUser *u, StoreRows *r, int with_hash)
{
    u->id = rows_int(r, 0);
    u->username = col_dup(r, 1);
    /* a row written by hand with another spelling still reads canonically */
    const char *canon = store_user_role_canonical(rows_text(r, 2));
    u->role = xstrdup(canon ? canon : rows_text(r, 2));
    u->created_at = rows_int(r, 3);
    u->changed_at = rows_int(r, 4);
    u->last_login = rows_isnull(r, 5) ? -1 : rows_int(r, 5);
    u->password_hash = with_hash ? col_dup(r, 6) : NULL;
}

static void user_clear(StoreUser *u)
{
    free(u->username);
    free(u->role);
    free_hash(u->password_hash);
}

StoreUser *store_user_get(Store *s, const char *username, int *missing)
{
    if (missing) *missing = 0;
    if (check_name(s, username)) return NULL;
    StoreParam p[] = {SP_S(username)};
    StoreRows *r = store_q(s,
                           "SELECT id, username, role, created_at, changed_at, last_login, password_hash "
                           "FROM api_user WHERE username = ?",
                           p, 1);
    if (!r) return NULL;
    StoreUser *u = NULL;
    if (rows_next(r)) {
        u = xcalloc(1, sizeof *u);
        user_fill(u, r, 1);
    } else {
        store_set_error(s, "no user '%s'", username);
        if (missing) *missing = 1;
    }
    rows_free(r);
    return u;
}

void store_user_free(StoreUser *u)
{
    if (!u) return;
    user_clear(u);
    free(u);
}

int store_user_list(Store *s, StoreUserList *out)
{
    memset(out, 0, sizeof *out);
    char sql[200];
    /* PostgreSQL sorts by the database's locale, SQLite by bytes: ask both for bytes */
    snprintf(sql, sizeof sql,
             "SELECT id, username, role, created_at, changed_at, last_login FROM api_user ORDER BY username%s",
             store_is_sqlite(s) ? "" : " COLLATE \"C\"");
    StoreRows *r = store_q(s, sql, NULL, 0);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 8;
            out->items = xrealloc(out->items, cap * sizeof *out->items);
        }
        StoreUser *u = &out->items[out->n++];
        memset(u, 0, sizeof *u);
        user_fill(u, r, 0);
    }
    rows_free(r);
    return 0;
}

void store_user_list_free(StoreUserList *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) user_clear(&l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

int64_t store_user_count(Store *s)
{
    int64_t n = 0;
    return store_q_int(s, "SELECT COUNT(*) FROM api_user", NULL, 0, 0, &n) == 0 ? n : -1;
}

/* ---- change ------------------------------------------------------------------------------ */

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

/* One statement in its own (retried) transaction: 1 when it changed a row, 0 when none, -1. */
static int exec1(Store *s, const char *sql, const StoreParam *p, int np)
{
    Exec1 e = {sql, p, np, 0};
    if (run_tx(s, exec1_fn, &e) != 0) return -1;
    return e.affected > 0 ? 1 : 0;
}

int store_user_delete(Store *s, const char *username)
{
    if (check_name(s, username)) return -1;
    StoreParam p[] = {SP_S(username)};
    int rc = exec1(s, "DELETE FROM api_user WHERE username = ?", p, 1);
    if (rc == 0) store_set_error(s, "no user '%s'", username);
    return rc;
}

int store_user_set_role(Store *s, const char *username, const char *role)
{
    const char *canon;
    if (check_name(s, username) || !(canon = check_role(s, role))) return -1;
    StoreParam p[] = {SP_S(canon), SP_I(util_now_us()), SP_S(username)};
    int rc = exec1(s, "UPDATE api_user SET role = ?, changed_at = ? WHERE username = ?", p, 3);
    if (rc == 0) store_set_error(s, "no user '%s'", username);
    return rc;
}

int store_user_set_password(Store *s, const char *username, const char *password)
{
    if (check_name(s, username) || check_password(s, password)) return -1;
    char *hash = passwd_hash(password);
    if (!hash) {
        store_set_error(s, "cannot hash the password (OpenSSL failed)");
        return -1;
    }
    StoreParam p[] = {SP_S(hash), SP_I(util_now_us()), SP_S(username)};
    int rc = exec1(s, "UPDATE api_user SET password_hash = ?, changed_at = ? WHERE username = ?", p, 3);
    free_hash(hash);
    if (rc == 0) store_set_error(s, "no user '%s'", username);
    return rc;
}

int store_user_record_login(Store *s, const char *username, int64_t when)
{
    if (check_name(s, username)) return -1;
    StoreParam p[] = {SP_I(when), SP_S(username)};
    int rc = exec1(s, "UPDATE api_user SET last_login = ? WHERE username = ?", p, 2);
    if (rc == 0) store_set_error(s, "no user '%s'", username);
    return rc;
}
