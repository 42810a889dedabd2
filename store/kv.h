/* kv — the small key/value-like tables operators edit by hand: variables, connections and
 * pools (Airflow's Variable, Connection and Pool).
 *
 * Each writing function is one short transaction (store_tx, retried on a lost connection
 * or a busy lock); called while the Store is already inside store_tx, it joins that
 * transaction instead, so a caller may combine it with other writes. Reads are single
 * statements outside any transaction (a SQLite transaction would take the write lock).
 *
 * Text goes to the engines as bound parameters only and must be valid UTF-8 without NUL
 * (PostgreSQL's TEXT accepts nothing else, so SQLite is held to the same rule and both
 * say so in the same words). Connection passwords and extras are encrypted at rest
 * (core/secret.h) with the connection id as associated data, so a ciphertext copied to
 * another row does not decrypt.
 *
 * Errors: functions return 0 (or a count) on success and -1 on failure, or NULL, with a
 * one-line message in store_last_error(s). Result structs own their strings; free them
 * with their *_free function (all accept NULL). */
#ifndef GUST_STORE_KV_H
#define GUST_STORE_KV_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "core/secret.h"
#include "store/store.h"

/* 1 if s[0..len) is valid UTF-8 (no overlongs, no surrogates) without NUL. */
int store_text_valid(const char *s, size_t len);
/* Length in bytes (1-4) of the valid UTF-8 character other than NUL at s, given avail
 * bytes; 0 when there is none. */
size_t store_utf8_next(const char *s, size_t avail);

/* ---- variables ---------------------------------------------------------------------- */

typedef struct StoreVariable {
    char *key;         /* unique name */
    char *val;         /* the value, any UTF-8 text, any size */
    char *description; /* NULL when none */
} StoreVariable;

typedef struct StoreVariableList {
    StoreVariable *items; /* ordered by key */
    size_t n;
} StoreVariableList;

/* Create or replace. description NULL keeps the current one (none for a new variable).
 * *created (may be NULL) gets 1 when the key was new. 0 / -1. */
int store_var_set(Store *s, const char *key, const char *val, const char *description, int *created);
/* The variable, caller frees with store_var_free. NULL when missing (*missing = 1, message
 * "no variable 'KEY'") or on failure (*missing = 0). missing may be NULL. */
StoreVariable *store_var_get(Store *s, const char *key, int *missing);
void store_var_free(StoreVariable *v);
/* Variables ordered by key; limit <= 0 means all. 0 / -1; free with store_var_list_free. */
int store_var_list(Store *s, int limit, int offset, StoreVariableList *out);
void store_var_list_free(StoreVariableList *l);
/* 1 deleted, 0 no such variable, -1 error. */
int store_var_delete(Store *s, const char *key);

/* ---- connections ---------------------------------------------------------------------- */

typedef struct StoreConnection {
    char *conn_id;     /* unique id: letters, digits, '_', '-', '.' (Airflow's rule) */
    char *conn_type;   /* "postgres", "http", "aws", ... */
    char *description; /* NULL when none */
    char *host;        /* NULL when none */
    char *schema;      /* NULL when none (the database, for SQL connections) */
    char *login;       /* NULL when none */
    char *password;    /* in clear in this struct, encrypted in the table; NULL when none */
    int port;          /* 0 when none */
    char *extra;       /* a JSON object as text, in clear here, encrypted in the table; NULL when none */
    char *error;       /* store_conn_list only: why password/extra could not be decrypted (they are
                          then NULL); NULL when they could */
} StoreConnection;

typedef struct StoreConnectionList {
    StoreConnection *items; /* ordered by conn_id */
    size_t n;
} StoreConnectionList;

/* Insert a new connection; refuses an existing conn_id ("connection 'ID' already exists").
 * password and extra are encrypted with key (required). 0 / -1. */
int store_conn_add(Store *s, const SecretKey *key, const StoreConnection *c);
/* Insert or replace every field. *created (may be NULL) gets 1 when the id was new. */
int store_conn_upsert(Store *s, const SecretKey *key, const StoreConnection *c, int *created);
/* The connection with password and extra decrypted; caller frees with store_conn_free.
 * NULL when missing (*missing = 1, "no connection 'ID'"), or on failure, including a
 * wrong key: the message is secret_decrypt's ("cannot decrypt: the secret was encrypted
 * with key ..., core.secret_key is key ..."). A stored value that is not a token at all
 * (written in clear by hand or by an older tool) is returned as it is. */
StoreConnection *store_conn_get(Store *s, const SecretKey *key, const char *conn_id, int *missing);
/* Every connection ordered by conn_id, decrypted; a row that cannot be decrypted is still
 * listed, with password/extra NULL and the reason in its error field. limit <= 0 = all. */
int store_conn_list(Store *s, const SecretKey *key, int limit, int offset, StoreConnectionList *out);
/* 1 deleted, 0 no such connection, -1 error. */
int store_conn_delete(Store *s, const char *conn_id);
void store_conn_free(StoreConnection *c);       /* frees the struct and its strings */
void store_conn_clear(StoreConnection *c);      /* frees the strings only (for a struct on the stack) */
void store_conn_list_free(StoreConnectionList *l);

/* Parse an Airflow connection URI into *out (zeroed first; caller clears it with
 * store_conn_clear), as Airflow's Connection(uri=...) does:
 *   scheme -> conn_type ("postgresql" -> "postgres", '-' -> '_'),
 *   user:password@host:port (percent-decoded; host lower-cased as urlsplit does),
 *   path without its leading '/' -> schema (percent-decoded),
 *   query -> extra as a JSON object of strings (percent- and '+'-decoded, last one wins),
 *   or the value of the __extra__ parameter when present (must be JSON),
 *   and "scheme://protocol://host" keeps "protocol://host" as the host.
 * conn_id is left NULL. 0, or -1 with a message in err. */
int store_conn_parse_uri(const char *uri, StoreConnection *out, char *err, size_t errlen);
/* 1 if id is a valid connection id. */
int store_conn_id_valid(const char *id);

/* ---- pools ---------------------------------------------------------------------------- */

#define STORE_DEFAULT_POOL "default_pool"
#define STORE_POOL_UNLIMITED INT_MAX /* open slots of a pool with slots = -1 */

typedef struct StorePool {
    char *name;           /* unique name */
    int slots;            /* >= 0, or -1 for unlimited */
    char *description;    /* NULL when none */
    int include_deferred; /* 1 if deferred task instances occupy slots */
    /* usage, from task_instance rows in this pool: */
    int running;          /* sum of pool_slots in state running */
    int queued;           /* ... in state queued */
    int deferred;         /* ... in state deferred (counted as occupied only with include_deferred) */
    int open;             /* slots - running - queued (- deferred): may be negative when the pool
                             shrank under load; STORE_POOL_UNLIMITED when slots = -1 */
} StorePool;

typedef struct StorePoolList {
    StorePool *items; /* ordered by name */
    size_t n;
} StorePoolList;

/* Create or update a pool. slots >= -1; description NULL keeps the current one.
 * *created (may be NULL) gets 1 when the pool was new. 0 / -1. */
int store_pool_set(Store *s, const char *name, int slots, const char *description, int *created);
/* Create or update with include_deferred as well (0/1). */
int store_pool_set_ex(Store *s, const char *name, int slots, const char *description, int include_deferred,
                      int *created);
/* The pool with its usage; caller frees with store_pool_free. NULL when missing
 * (*missing = 1, "no pool 'NAME'") or on failure. */
StorePool *store_pool_get(Store *s, const char *name, int *missing);
void store_pool_free(StorePool *p);
/* Every pool with its usage, ordered by name. 0 / -1. */
int store_pool_list(Store *s, StorePoolList *out);
void store_pool_list_free(StorePoolList *l);
/* 1 deleted, 0 no such pool, -1 error (including "default_pool cannot be deleted"). */
int store_pool_delete(Store *s, const char *name);
/* Slot accounting as the scheduler needs it: pool_slots of the pool's task instances that
 * are running / queued (queued occupies a slot, as in Airflow), and what is left (see
 * StorePool.open). Any out-pointer may be NULL. 0, or -1 ("no pool 'NAME'"). */
int store_pool_usage(Store *s, const char *pool, int *running, int *queued, int *open);

#endif
