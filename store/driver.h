/* driver — the seam between gust's store and a database engine.
 *
 * Two engines sit behind this one interface: PostgreSQL (libpq), the store of the
 * distributed deployment, and SQLite, the embedded store of `gust standalone`. Callers
 * write one set of SQL in the subset both accept, with `?` placeholders and bound
 * parameters only — never a value pasted into SQL text. The few real differences
 * (row locks, notifications, upserts' spelling of "now") are asked of the driver.
 *
 * Like Redis's ConnectionType, it is a struct of function pointers plus tiny inline
 * wrappers, so callers never see which engine they hold. A StoreConn is used by one
 * thread at a time. */
#ifndef GUST_STORE_DRIVER_H
#define GUST_STORE_DRIVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct StoreConn StoreConn;   /* one connection; driver-specific, starts with StoreConnBase */
typedef struct StoreRows StoreRows;   /* one result set; driver-specific, starts with StoreRowsBase */
typedef struct StoreDriver StoreDriver;

/* A bound parameter. Text is copied by the driver before the call returns. */
typedef enum StoreParamType { SP_NULL, SP_INT, SP_TEXT, SP_BLOB } StoreParamType;
typedef struct StoreParam {
    StoreParamType type;
    int64_t i;         /* SP_INT */
    const char *s;     /* SP_TEXT (NUL-terminated unless len is set) / SP_BLOB */
    size_t len;        /* SP_BLOB length; SP_TEXT: 0 means strlen(s) */
} StoreParam;

#define SP_I(v) ((StoreParam){SP_INT, (int64_t)(v), NULL, 0})
/* A function, not a macro, so that passing a char array does not warn "always true". */
static inline StoreParam store_param_text(const char *v)
{
    StoreParam p = {v ? SP_TEXT : SP_NULL, 0, v, 0};
    return p;
}
#define SP_S(v) store_param_text(v)
#define SP_B(p, n) ((StoreParam){SP_BLOB, 0, (const char *)(p), (n)})
#define SP_NIL ((StoreParam){SP_NULL, 0, NULL, 0})

/* What kind of failure the last call had, so callers can decide to retry or to report. */
typedef enum StoreErrKind {
    STORE_OK = 0,
    STORE_ERR_CONSTRAINT,   /* unique / foreign key / check violation: the write lost a race or is invalid */
    STORE_ERR_CONNECTION,   /* the server went away; the driver reconnects on the next call */
    STORE_ERR_BUSY,         /* lock timeout, serialization failure, SQLITE_BUSY: retry the transaction */
    STORE_ERR_OTHER,        /* a bug in our SQL, a full disk, ... */
} StoreErrKind;

/* Features whose SQL differs between engines. */
typedef enum StoreFeature {
    STORE_SQL_SKIP_LOCKED,  /* " FOR UPDATE SKIP LOCKED" on PostgreSQL, "" on SQLite (one writer anyway) */
    STORE_SQL_FOR_UPDATE,   /* " FOR UPDATE" / "" */
} StoreFeature;

struct StoreDriver {
    const char *name; /* "postgres" or "sqlite" */
    /* Open a connection for url (postgresql://... or sqlite:///path, sqlite://:memory:).
     * NULL on failure, with a one-line message naming what is wrong (host, port, password,
     * database, path) in err. */
    StoreConn *(*connect)(const char *url, char *err, size_t errlen);
    void (*close)(StoreConn *c);
    /* Run a statement; *affected (may be NULL) gets the number of rows changed.
     * 0 ok, -1 error (see last_error / last_kind). */
    int (*exec)(StoreConn *c, const char *sql, const StoreParam *p, int np, int64_t *affected);
    /* Run a query; NULL on error. The rows stay valid until rows_free. */
    StoreRows *(*query)(StoreConn *c, const char *sql, const StoreParam *p, int np);
    int (*begin)(StoreConn *c);     /* BEGIN (IMMEDIATE on SQLite, so writers queue at the start) */
    int (*commit)(StoreConn *c);
    int (*rollback)(StoreConn *c);  /* safe to call after a failed statement or a lost connection */
    /* Change notifications. listen() subscribes this connection to a channel; notify()
     * sends one (on PostgreSQL inside the current transaction, delivered at commit);
     * wait() blocks up to timeout_ms for one: 1 = got one (channel/payload filled,
     * truncated to their sizes), 0 = timeout, -1 = error. SQLite delivers within the
     * process, and also reports a change made by another process (PRAGMA data_version)
     * as a notification on channel "*" within ~100 ms. */
    int (*listen)(StoreConn *c, const char *channel);
    int (*notify)(StoreConn *c, const char *channel, const char *payload);
    int (*wait)(StoreConn *c, int timeout_ms, char *channel, size_t chlen, char *payload, size_t pllen);
    const char *(*last_error)(StoreConn *c);   /* human message of the last failure, "" if none */
    StoreErrKind (*last_kind)(StoreConn *c);
    const char *(*sql)(StoreConn *c, StoreFeature f);
    /* result sets */
    int (*rows_next)(StoreRows *r);                   /* 1 = a row is current, 0 = done */
    int (*rows_ncols)(StoreRows *r);
    int (*rows_isnull)(StoreRows *r, int col);
    const char *(*rows_text)(StoreRows *r, int col);  /* NULL for NULL; valid until next/free */
    int64_t (*rows_int)(StoreRows *r, int col);       /* 0 for NULL */
    const void *(*rows_blob)(StoreRows *r, int col, size_t *len);
    void (*rows_free)(StoreRows *r);
};

/* Every StoreConn and StoreRows starts with these, so the wrappers below find the driver. */
typedef struct StoreConnBase {
    const StoreDriver *drv;
    /* Not owned; NULL by default. While it points at a non-zero int, the driver gives up
     * waiting to reconnect (the process is stopping: see store_set_interrupt). */
    const volatile int *interrupt;
} StoreConnBase;
typedef struct StoreRowsBase {
    const StoreDriver *drv;
} StoreRowsBase;

extern const StoreDriver store_driver_postgres;
extern const StoreDriver store_driver_sqlite;

/* The driver for a URL's scheme (postgres://, postgresql://, sqlite://), or NULL. */
const StoreDriver *store_driver_for_url(const char *url);
/* Connect with the driver the URL names. */
StoreConn *store_connect(const char *url, char *err, size_t errlen);

static inline const StoreDriver *store_drv(StoreConn *c) { return ((StoreConnBase *)c)->drv; }
static inline void store_close(StoreConn *c) { if (c) store_drv(c)->close(c); }
static inline int store_exec(StoreConn *c, const char *sql, const StoreParam *p, int np, int64_t *affected)
{ return store_drv(c)->exec(c, sql, p, np, affected); }
static inline StoreRows *store_query(StoreConn *c, const char *sql, const StoreParam *p, int np)
{ return store_drv(c)->query(c, sql, p, np); }
static inline int store_begin(StoreConn *c) { return store_drv(c)->begin(c); }
static inline int store_commit(StoreConn *c) { return store_drv(c)->commit(c); }
static inline int store_rollback(StoreConn *c) { return store_drv(c)->rollback(c); }
static inline const char *store_error(StoreConn *c) { return store_drv(c)->last_error(c); }
static inline StoreErrKind store_error_kind(StoreConn *c) { return store_drv(c)->last_kind(c); }
static inline const char *store_sql(StoreConn *c, StoreFeature f) { return store_drv(c)->sql(c, f); }
static inline int rows_next(StoreRows *r) { return ((StoreRowsBase *)r)->drv->rows_next(r); }
static inline int rows_isnull(StoreRows *r, int col) { return ((StoreRowsBase *)r)->drv->rows_isnull(r, col); }
static inline const char *rows_text(StoreRows *r, int col) { return ((StoreRowsBase *)r)->drv->rows_text(r, col); }
static inline int64_t rows_int(StoreRows *r, int col) { return ((StoreRowsBase *)r)->drv->rows_int(r, col); }
static inline void rows_free(StoreRows *r) { if (r) ((StoreRowsBase *)r)->drv->rows_free(r); }

#endif
