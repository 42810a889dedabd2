/* store — gust's metadata store: the one source of truth (DESIGN.md, invariant 1).
 *
 * Everything the scheduler, the workers and the API read or change goes through the
 * functions declared here, never through SQL scattered across the code: each function is
 * one short transaction with bound parameters, valid on both engines (store/driver.h).
 * Conditional updates carry the concurrency rules: a transition names the states it may
 * leave, so two processes racing for the same row cannot both win (invariants 2 and 5).
 *
 * Ownership: a Store owns its connection; it is used by one thread at a time (open one
 * per thread). Strings returned inside result structs are owned by those structs and
 * freed by their *_free function. All times are microseconds since the epoch, UTC. */
#ifndef GUST_STORE_H
#define GUST_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "store/driver.h"

typedef struct Store {
    StoreConn *conn;        /* the connection; reconnects itself */
    const StoreDriver *drv; /* which engine */
    char *url;              /* as given (may hold a password: never log it) */
    int in_tx;              /* inside store_tx */
    char err[512];          /* last error, human readable */
} Store;

/* Open and check nothing else (use store_check / store_migrate). NULL + err on failure. */
Store *store_open(const char *url, char *err, size_t errlen);
void store_free(Store *s); /* accepts NULL */
const char *store_last_error(const Store *s);
int store_is_sqlite(const Store *s);

/* Run fn inside a transaction. fn returns 0 to commit, -1 to roll back and fail. A
 * transaction that fails because the server went away or a lock was busy is rolled back
 * and run again (with backoff, up to ~30 s), which is why fn must only touch the store and
 * its own out-parameters: it may run more than once. Called inside another store_tx, it
 * joins that transaction (the outer one commits, or retries the whole). Returns fn's
 * result, or -1. */
typedef int (*StoreTxFn)(Store *s, void *ud);
int store_tx(Store *s, StoreTxFn fn, void *ud);

/* A daemon's stop flag (not owned; NULL to forget it). While *flag is non-zero, store_tx does
 * not retry and a lost PostgreSQL connection is not waited for (each would otherwise hold a
 * stopping daemon for up to 30 s while the server is down): calls fail at once, saying so. */
void store_set_interrupt(Store *s, const volatile int *flag);

/* Internal helpers every store module uses; they record the error in s->err.
 * exec: 0 ok / -1 error; *affected gets the changed-row count (may be NULL). */
int store_x(Store *s, const char *sql, const StoreParam *p, int np, int64_t *affected);
StoreRows *store_q(Store *s, const char *sql, const StoreParam *p, int np);
/* First column of the first row as an integer (dflt when no row) / as a heap string (NULL when none). */
int store_q_int(Store *s, const char *sql, const StoreParam *p, int np, int64_t dflt, int64_t *out);
char *store_q_str(Store *s, const char *sql, const StoreParam *p, int np);
void store_set_error(Store *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A new 32-hex-character id, time-ordered (48 bits of milliseconds, then random), so
 * that ids sort by creation and index well. out must hold 33 bytes. */
void store_new_id(char out[33]);

/* ---- schema (store/migrate.c) ------------------------------------------------------ */

/* The schema version this binary expects. */
int store_schema_target(void);
/* The database's version: 0 when it has no gust tables yet. -1 on error. */
int store_schema_version(Store *s);
/* Apply every missing migration, each in its own transaction. Idempotent. *applied (may be
 * NULL) gets how many ran. Refuses a database newer than this binary. */
int store_migrate(Store *s, int *applied);
/* 0 when the schema is exactly this binary's; -1 with a message saying what to do:
 * "the database schema is version 1, this gust needs 3: run gust db migrate", or
 * "the database schema (version 5) is newer than this gust (3): upgrade gust". */
int store_check(Store *s, char *msg, size_t msglen);
/* Drop every gust table and migrate again. */
int store_reset(Store *s);

/* ---- change notifications ------------------------------------------------------------ */

#define STORE_CHANNEL "gust"
/* Subscribe this connection to store changes; then store_wait_change blocks up to
 * timeout_ms for one: 1 = something changed (payload, may be "", says what), 0 = timeout. */
int store_listen(Store *s);
int store_wait_change(Store *s, int timeout_ms, char *payload, size_t len);
/* Tell listeners something changed (inside a transaction: delivered at commit). */
int store_notify(Store *s, const char *payload);

#endif
