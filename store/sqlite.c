/* sqlite — the embedded driver, gust's store in standalone mode (see driver.h).
 *
 * URLs: sqlite:///abs/path.db (absolute), sqlite://rel/path.db (relative to the working
 * directory), sqlite://:memory: (a private in-memory database per connection). Query strings
 * are refused rather than half-understood. The database runs in WAL mode with a 5 s busy
 * timeout; transactions start with BEGIN IMMEDIATE so writers queue at the start instead of
 * failing at their first write. SQLite has one writer at a time, so row-lock clauses are "".
 *
 * SQLite has no LISTEN/NOTIFY, so this file keeps a process-wide hub per database file: every
 * connection of this process on that file that listens to a channel gets every notification
 * on it, at commit (notify() inside a transaction is buffered until then and dropped at
 * rollback). Other processes' writes cannot be seen that way, so wait() also polls
 * PRAGMA data_version every 100 ms and reports a change it cannot explain by this process's
 * own commits as channel "*". The hub is the one global here: it exists precisely to join
 * connections that know nothing of each other. */
#include "store/driver.h"

#include "core/util.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SQ_BUSY_TIMEOUT_MS 5000
#define SQ_POLL_MS 100          /* how often wait() looks for other processes' commits */
#define SQ_QUEUE_MAX 10000      /* undelivered notifications per connection before "*" replaces them */
#define SQ_STMT_BUCKETS 64
#define SQ_STMT_MAX 256         /* beyond this many distinct SQL texts, prepare per call */

typedef struct SqMsg {
    struct SqMsg *next;
    char *channel;
    char *payload;
} SqMsg;

typedef struct SqConn SqConn;

typedef struct SqHub {
    struct SqHub *next;  /* in sq_hubs */
    char *key;           /* the database file's real path, or a unique name for :memory: */
    SqConn *conns;       /* every open connection on it */
    uint64_t commits;    /* write transactions committed by this process on this file */
} SqHub;

typedef struct SqStmt {
    struct SqStmt *next; /* hash bucket chain */
    char *sql;           /* the cache key */
    sqlite3_stmt *st;
    int busy;            /* in use right now (a nested use of the same SQL prepares a fresh one) */
} SqStmt;

struct SqConn {
    StoreConnBase base;
    sqlite3 *db;
    char path[512];              /* as given, for messages */
    SqHub *hub;
    SqConn *hub_next;            /* in hub->conns                                  (sq_mu) */
    char **channels;             /* channels listened to                           (sq_mu) */
    int nchannels;               /*                                                (sq_mu) */
    SqMsg *q_head, *q_tail;      /* delivered, not yet returned by wait()          (sq_mu) */
    int q_len;                   /*                                                (sq_mu) */
    int q_overflow;              /* dropped some: wait() reports "*"               (sq_mu) */
    pthread_cond_t cv;           /* signalled when the queue grows                         */
    SqMsg *pend_head, *pend_tail;/* notify() inside a transaction, published at commit     */
    int wrote;                   /* commit hook fired: this transaction wrote something    */
    int rolled_back;             /* rollback hook fired                                    */
    int64_t data_version;        /* last PRAGMA data_version seen by wait()                */
    uint64_t seen_commits;       /* hub->commits at that moment                            */
    SqStmt *stmts[SQ_STMT_BUCKETS];
    int nstmts;
    StoreErrKind kind;           /* last failure */
    char err[512];
};

typedef struct SqCell {
    int type;       /* SQLITE_INTEGER, _FLOAT, _TEXT, _BLOB, _NULL */
    int64_t i;      /* integer value (text parsed, float truncated) */
    size_t off;     /* bytes in SqRows.data (NUL-terminated there) */
    size_t len;
} SqCell;

typedef struct SqRows {
    StoreRowsBase base;
    int ncols, nrows;
    int row;        /* -1 before the first rows_next */
    SqCell *cells;  /* nrows * ncols */
    char *data;     /* every text and blob, each followed by a NUL */
} SqRows;

static pthread_mutex_t sq_mu = PTHREAD_MUTEX_INITIALIZER; /* guards the hubs and the (sq_mu) fields */
static SqHub *sq_hubs;

/* ---------- errors ---------- */

static void sq_clear(SqConn *c)
{
    c->kind = STORE_OK;
    c->err[0] = '\0';
}

static void sq_seterr(SqConn *c, StoreErrKind k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sq_seterr(SqConn *c, StoreErrKind k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    c->kind = k;
}

static int sq_fail(SqConn *c, int rc, const char *sql)
{
    int prim = rc & 0xff;
    StoreErrKind k = prim == SQLITE_CONSTRAINT ? STORE_ERR_CONSTRAINT
                     : (prim == SQLITE_BUSY || prim == SQLITE_LOCKED) ? STORE_ERR_BUSY
                                                                      : STORE_ERR_OTHER;
    sq_seterr(c, k, "%s%s in: %.120s", sqlite3_errmsg(c->db),
              k == STORE_ERR_BUSY ? " (another connection held the write lock past the busy timeout)" : "", sql);
    return -1;
}

/* ---------- the notification hub ---------- */

static void sq_msgs_free(SqMsg *m)
{
    while (m) {
        SqMsg *next = m->next;
        free(m->channel);
        free(m->payload);
        free(m);
        m = next;
    }
}

static int sq_listens_locked(SqConn *l, const char *channel)
{
    for (int i = 0; i < l->nchannels; i++)
        if (strcmp(l->channels[i], channel) == 0) return 1;
    return 0;
}

/* Hand one notification to every connection on the hub that listens to its channel. */
static void sq_deliver_locked(SqHub *h, const SqMsg *m)
{
    for (SqConn *l = h->conns; l; l = l->hub_next) {
        if (!sq_listens_locked(l, m->channel)) continue;
        if (l->q_len >= SQ_QUEUE_MAX) {
            l->q_overflow = 1; /* a listener that never waits must not grow without bound */
        } else {
            SqMsg *copy = xcalloc(1, sizeof *copy);
            copy->channel = xstrdup(m->channel);
            copy->payload = xstrdup(m->payload);
            if (l->q_tail) l->q_tail->next = copy;
            else l->q_head = copy;
            l->q_tail = copy;
            l->q_len++;
        }
        pthread_cond_signal(&l->cv);
    }
}

/* After each statement: once no transaction is open any more, what it did is final. A commit
 * publishes the buffered notifications and counts as this process's write (so wait() can tell
 * it from another process's); a rollback drops them. */
static void sq_settle(SqConn *c)
{
    if (!sqlite3_get_autocommit(c->db)) return;
    if (c->rolled_back) {
        sq_msgs_free(c->pend_head);
    } else if (c->wrote || c->pend_head) {
        pthread_mutex_lock(&sq_mu);
        if (c->wrote) c->hub->commits++;
        for (SqMsg *m = c->pend_head; m; m = m->next) sq_deliver_locked(c->hub, m);
        pthread_mutex_unlock(&sq_mu);
        sq_msgs_free(c->pend_head);
    }
    c->pend_head = c->pend_tail = NULL;
    c->wrote = c->rolled_back = 0;
}

static int sq_on_commit(void *arg)
{
    ((SqConn *)arg)->wrote = 1;
    return 0;
}

static void sq_on_rollback(void *arg)
{
    ((SqConn *)arg)->rolled_back = 1;
}

static void sq_hub_join(SqConn *c, const char *key)
{
    pthread_mutex_lock(&sq_mu);
    SqHub *h = sq_hubs;
    while (h && strcmp(h->key, key) != 0) h = h->next;
    if (!h) {
        h = xcalloc(1, sizeof *h);
        h->key = xstrdup(key);
        h->next = sq_hubs;
        sq_hubs = h;
    }
    c->hub = h;
    c->hub_next = h->conns;
    h->conns = c;
    pthread_mutex_unlock(&sq_mu);
}

static void sq_hub_leave(SqConn *c)
{
    pthread_mutex_lock(&sq_mu);
    SqHub *h = c->hub;
    SqConn **pc = &h->conns;
    while (*pc && *pc != c) pc = &(*pc)->hub_next;
    if (*pc) *pc = c->hub_next;
    if (!h->conns) {
        SqHub **ph = &sq_hubs;
        while (*ph && *ph != h) ph = &(*ph)->next;
        if (*ph) *ph = h->next;
        free(h->key);
        free(h);
    }
    sq_msgs_free(c->q_head);
    c->q_head = c->q_tail = NULL;
    for (int i = 0; i < c->nchannels; i++) free(c->channels[i]);
    free(c->channels);
    c->channels = NULL;
    c->nchannels = 0;
    pthread_mutex_unlock(&sq_mu);
}

/* ---------- statements ---------- */

static uint32_t sq_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* A ready statement for sql: the cached one, or a fresh one when it is busy or the cache is
 * full (*entry NULL then: sq_release finalizes it). NULL on error, recorded. */
static sqlite3_stmt *sq_prepare(SqConn *c, const char *sql, SqStmt **entry)
{
    *entry = NULL;
    uint32_t b = sq_hash(sql) % SQ_STMT_BUCKETS;
    SqStmt *e = c->stmts[b];
    while (e && strcmp(e->sql, sql) != 0) e = e->next;
    if (e && !e->busy) {
        e->busy = 1;
        *entry = e;
        return e->st;
    }
    int cache = !e && c->nstmts < SQ_STMT_MAX;
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v3(c->db, sql, -1, cache ? SQLITE_PREPARE_PERSISTENT : 0, &st, &tail);
    if (rc != SQLITE_OK) {
        sq_fail(c, rc, sql);
        return NULL;
    }
    while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == '\r' || *tail == ';')) tail++;
    if (!st || (tail && *tail)) {
        /* prepare compiles the first statement only; the rest would silently not run. */
        sqlite3_finalize(st);
        sq_seterr(c, STORE_ERR_OTHER, "%s: %.120s", st ? "one statement per call" : "no statement", sql);
        return NULL;
    }
    if (cache) {
        e = xcalloc(1, sizeof *e);
        e->sql = xstrdup(sql);
        e->st = st;
        e->busy = 1;
        e->next = c->stmts[b];
        c->stmts[b] = e;
        c->nstmts++;
        *entry = e;
    }
    return st;
}

static void sq_release(sqlite3_stmt *st, SqStmt *entry)
{
    if (!entry) {
        sqlite3_finalize(st);
        return;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    entry->busy = 0;
}

static int sq_bind(SqConn *c, sqlite3_stmt *st, const char *sql, const StoreParam *p, int np)
{
    int want = sqlite3_bind_parameter_count(st);
    if (want != np || (np > 0 && !p)) {
        sq_seterr(c, STORE_ERR_OTHER, "statement has %d placeholders but %d parameters were given: %.120s",
                  want, np, sql);
        return -1;
    }
    for (int i = 0; i < np; i++) {
        int rc = SQLITE_OK;
        switch (p[i].type) {
        case SP_INT: rc = sqlite3_bind_int64(st, i + 1, p[i].i); break;
        case SP_TEXT:
            if (!p[i].s) rc = sqlite3_bind_null(st, i + 1);
            else rc = sqlite3_bind_text64(st, i + 1, p[i].s, p[i].len ? p[i].len : strlen(p[i].s),
                                          SQLITE_TRANSIENT, SQLITE_UTF8);
            break;
        case SP_BLOB:
            if (p[i].s) rc = sqlite3_bind_blob64(st, i + 1, p[i].s, p[i].len, SQLITE_TRANSIENT);
            else rc = sqlite3_bind_zeroblob(st, i + 1, 0); /* an empty blob, not NULL */
            break;
        case SP_NULL: rc = sqlite3_bind_null(st, i + 1); break;
        }
        if (rc != SQLITE_OK) return sq_fail(c, rc, sql);
    }
    return 0;
}

/* Run a statement to completion, optionally keeping its rows. 0 ok, -1 error (recorded). */
static int sq_run(SqConn *c, const char *sql, const StoreParam *p, int np, int64_t *affected, SqRows **rows)
{
    sq_clear(c);
    if (!sql) {
        sq_seterr(c, STORE_ERR_OTHER, "no SQL given");
        return -1;
    }
    SqStmt *entry;
    sqlite3_stmt *st = sq_prepare(c, sql, &entry);
    if (!st) return -1;
    if (sq_bind(c, st, sql, p, np) < 0) {
        sq_release(st, entry);
        return -1;
    }
    SqRows *r = NULL;
    StrBuf data = {0};
    size_t cap = 0;
    if (rows) {
        r = xcalloc(1, sizeof *r);
        r->base.drv = &store_driver_sqlite;
        r->row = -1;
    }
    int64_t before = sqlite3_total_changes64(c->db);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!r) continue;
        /* Counted after the first step: a schema change re-prepares the statement there. */
        if (!r->nrows) r->ncols = sqlite3_column_count(st);
        if (!r->ncols) continue;
        if ((size_t)(r->nrows + 1) * (size_t)r->ncols > cap) {
            cap = cap ? cap * 2 : (size_t)r->ncols * 16;
            r->cells = xrealloc(r->cells, cap * sizeof *r->cells);
        }
        for (int col = 0; col < r->ncols; col++) {
            SqCell *cell = &r->cells[(size_t)r->nrows * (size_t)r->ncols + (size_t)col];
            cell->type = sqlite3_column_type(st, col);
            cell->i = 0;
            const void *bytes = NULL;
            if (cell->type == SQLITE_INTEGER) cell->i = sqlite3_column_int64(st, col);
            if (cell->type == SQLITE_FLOAT) cell->i = (int64_t)sqlite3_column_double(st, col);
            if (cell->type == SQLITE_BLOB) bytes = sqlite3_column_blob(st, col);
            else if (cell->type != SQLITE_NULL) bytes = sqlite3_column_text(st, col);
            cell->len = bytes ? (size_t)sqlite3_column_bytes(st, col) : 0;
            cell->off = data.len;
            sb_appendn(&data, bytes ? bytes : "", cell->len);
            sb_appendc(&data, '\0');
            if (cell->type == SQLITE_TEXT) cell->i = strtoll(data.s + cell->off, NULL, 10);
        }
        r->nrows++;
    }
    if (rc != SQLITE_DONE) {
        sq_fail(c, rc, sql);
        sq_release(st, entry);
        sb_free(&data);
        if (r) free(r->cells);
        free(r);
        sq_settle(c); /* a failed statement may have ended the transaction */
        return -1;
    }
    /* sqlite3_changes64 keeps the last DML's count through other statements; only trust it
     * when this statement changed rows. */
    if (affected) *affected = sqlite3_total_changes64(c->db) != before ? sqlite3_changes64(c->db) : 0;
    if (r && !r->nrows) r->ncols = sqlite3_column_count(st);
    sq_release(st, entry);
    if (r) {
        r->data = sb_take(&data);
        *rows = r;
    }
    sq_settle(c);
    return 0;
}

/* ---------- connections ---------- */

/* Why path cannot be a database we can write, checked before SQLite's terse "unable to open
 * database file". 0 = looks fine. */
static int sq_check_path(const char *path, char *why, size_t whylen)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) return snprintf(why, whylen, "it is a directory"), -1;
        if (access(path, R_OK | W_OK) != 0)
            return snprintf(why, whylen, "cannot read and write it: %s", strerror(errno)), -1;
        return 0;
    }
    if (errno != ENOENT) return snprintf(why, whylen, "%s", strerror(errno)), -1;
    char dir[512];
    const char *slash = strrchr(path, '/');
    if (!slash) util_strlcpy(dir, ".", sizeof dir);
    else snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (stat(dir, &st) != 0) return snprintf(why, whylen, "directory '%s' does not exist", dir), -1;
    if (!S_ISDIR(st.st_mode)) return snprintf(why, whylen, "'%s' is not a directory", dir), -1;
    if (access(dir, W_OK | X_OK) != 0)
        return snprintf(why, whylen, "cannot create it in '%s': %s", dir, strerror(errno)), -1;
    return 0;
}

/* Waiting for the write lock. SQLite's own busy timeout sleeps 1, 2, 5 … 100 ms between
 * attempts, so a worker whose write collides with the scheduler's pass often sleeps long
 * after the lock was freed: in standalone that sleep, not the work, paced every task. Here
 * the first attempts spin briefly (100 µs steps, growing to 2 ms), for the same total
 * patience of SQ_BUSY_TIMEOUT_MS. */
static int sq_busy(void *ud, int count)
{
    (void)ud;
    static const long steps_us[] = {100, 100, 200, 200, 500, 500, 1000, 1000, 2000};
    const size_t n_steps = sizeof steps_us / sizeof steps_us[0];
    long waited_us = 0;
    for (int i = 0; i < count && waited_us < (long)SQ_BUSY_TIMEOUT_MS * 1000; i++)
        waited_us += steps_us[(size_t)i < n_steps ? (size_t)i : n_steps - 1];
    if (waited_us >= (long)SQ_BUSY_TIMEOUT_MS * 1000) return 0; /* give up: SQLITE_BUSY */
    long step = steps_us[(size_t)count < n_steps ? (size_t)count : n_steps - 1];
    struct timespec ts = {0, step * 1000L};
    nanosleep(&ts, NULL);
    return 1;
}

static StoreConn *sq_connect(const char *url, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) err = dummy, errlen = sizeof dummy;
    static const char usage[] = "use sqlite:///absolute/path, sqlite://relative/path or sqlite://:memory:";
    if (!url || strncasecmp(url, "sqlite://", 9) != 0) {
        snprintf(err, errlen, "not a SQLite URL: %s", usage);
        return NULL;
    }
    const char *path = url + 9;
    if (!*path) {
        snprintf(err, errlen, "SQLite URL has no path: %s", usage);
        return NULL;
    }
    if (strchr(path, '?')) {
        snprintf(err, errlen, "SQLite URL '%s' has a query string, which gust does not support: %s", url, usage);
        return NULL;
    }
    int memory = strcmp(path, ":memory:") == 0;
    char why[600];
    if (!memory && sq_check_path(path, why, sizeof why) < 0) {
        snprintf(err, errlen, "cannot open SQLite database '%s': %s", path, why);
        return NULL;
    }
    sqlite3 *db = NULL;
    /* NOMUTEX (SQLite's multi-thread mode): a Store is used by one thread at a time (store.h),
     * so SQLite's own per-call mutex only costs — ~18% of the CPU of the API's task-instance
     * list, which reads thousands of cells per request. */
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_extended_result_codes(db, 1);
        sqlite3_busy_handler(db, sq_busy, NULL);
        /* journal_mode first: it is the first read, so it is where "not a database" shows. */
        rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_exec(db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
        if (rc == SQLITE_OK) rc = sqlite3_exec(db, "PRAGMA foreign_keys=ON", NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK || sqlite3_db_readonly(db, "main") == 1) {
        int sys = db ? sqlite3_system_errno(db) : 0;
        if (rc == SQLITE_OK) snprintf(why, sizeof why, "it is read-only, and the store needs to write");
        else if ((rc & 0xff) == SQLITE_NOTADB) snprintf(why, sizeof why, "the file is not a SQLite database");
        else snprintf(why, sizeof why, "%s%s%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
                      sys ? ": " : "", sys ? strerror(sys) : "");
        snprintf(err, errlen, "cannot open SQLite database '%s': %s", path, why);
        sqlite3_close_v2(db);
        return NULL;
    }
    SqConn *c = xcalloc(1, sizeof *c);
    c->base.drv = &store_driver_sqlite;
    c->db = db;
    util_strlcpy(c->path, path, sizeof c->path);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    sqlite3_commit_hook(db, sq_on_commit, c);
    sqlite3_rollback_hook(db, sq_on_rollback, c);
    /* Key the hub by the file itself, however the URL spelt its path. */
    const char *full = sqlite3_db_filename(db, "main");
    char *real = (!memory && full && *full) ? realpath(full, NULL) : NULL;
    char *key = real ? real : memory ? xasprintf(":memory:%p", (void *)c) : xstrdup(full ? full : path);
    sq_hub_join(c, key);
    free(key);
    err[0] = '\0';
    return (StoreConn *)c;
}

static void sq_close(StoreConn *sc)
{
    SqConn *c = (SqConn *)sc;
    if (!c) return;
    sq_hub_leave(c);
    for (int b = 0; b < SQ_STMT_BUCKETS; b++) {
        for (SqStmt *e = c->stmts[b], *next; e; e = next) {
            next = e->next;
            sqlite3_finalize(e->st);
            free(e->sql);
            free(e);
        }
    }
    sqlite3_close_v2(c->db); /* rolls back an open transaction */
    sq_msgs_free(c->pend_head);
    pthread_cond_destroy(&c->cv);
    free(c);
}

static int sq_exec(StoreConn *sc, const char *sql, const StoreParam *p, int np, int64_t *affected)
{
    return sq_run((SqConn *)sc, sql, p, np, affected, NULL);
}

static StoreRows *sq_query(StoreConn *sc, const char *sql, const StoreParam *p, int np)
{
    SqRows *r = NULL;
    if (sq_run((SqConn *)sc, sql, p, np, NULL, &r) < 0) return NULL;
    return (StoreRows *)r;
}

static int sq_begin(StoreConn *sc)
{
    SqConn *c = (SqConn *)sc;
    if (!sqlite3_get_autocommit(c->db)) {
        sq_clear(c);
        sq_seterr(c, STORE_ERR_OTHER, "begin: a transaction is already open");
        return -1;
    }
    return sq_run(c, "BEGIN IMMEDIATE", NULL, 0, NULL, NULL); /* SQLITE_BUSY after 5 s: STORE_ERR_BUSY */
}

static int sq_commit(StoreConn *sc)
{
    SqConn *c = (SqConn *)sc;
    if (sqlite3_get_autocommit(c->db)) {
        sq_clear(c);
        sq_seterr(c, STORE_ERR_OTHER, "commit: no transaction is open (did a statement in it fail and end it?)");
        return -1;
    }
    return sq_run(c, "COMMIT", NULL, 0, NULL, NULL);
}

static int sq_rollback(StoreConn *sc)
{
    SqConn *c = (SqConn *)sc;
    sq_clear(c);
    if (sqlite3_get_autocommit(c->db)) { /* nothing open (an error may have ended it already) */
        c->rolled_back = 1;
        sq_settle(c);
        return 0;
    }
    return sq_run(c, "ROLLBACK", NULL, 0, NULL, NULL);
}

/* ---------- notifications ---------- */

static int64_t sq_data_version(SqConn *c)
{
    SqRows *r = NULL;
    int64_t v = -1;
    if (sq_run(c, "PRAGMA data_version", NULL, 0, NULL, &r) == 0 && r->nrows == 1) v = r->cells[0].i;
    store_driver_sqlite.rows_free((StoreRows *)r);
    return v;
}

/* Did another process commit since the last look? data_version moves on any other
 * connection's commit, so ours are told apart by the hub's count of this process's commits.
 * When both happened in the same 100 ms the change is taken for ours: those commits have
 * woken the listener anyway, and the caller's periodic sweep covers the rest. */
static int sq_external_change(SqConn *c)
{
    pthread_mutex_lock(&sq_mu);
    uint64_t commits = c->hub->commits;
    pthread_mutex_unlock(&sq_mu);
    int64_t v = sq_data_version(c);
    if (v < 0) return 0;
    int changed = v != c->data_version && commits == c->seen_commits;
    c->data_version = v;
    c->seen_commits = commits;
    return changed;
}

static int sq_listen(StoreConn *sc, const char *channel)
{
    SqConn *c = (SqConn *)sc;
    sq_clear(c);
    if (!channel || !*channel) {
        sq_seterr(c, STORE_ERR_OTHER, "listen: empty channel name");
        return -1;
    }
    pthread_mutex_lock(&sq_mu);
    int first = c->nchannels == 0;
    if (!sq_listens_locked(c, channel)) {
        c->channels = xrealloc(c->channels, (size_t)(c->nchannels + 1) * sizeof *c->channels);
        c->channels[c->nchannels++] = xstrdup(channel);
    }
    pthread_mutex_unlock(&sq_mu);
    if (first) sq_external_change(c); /* the baseline other processes' changes are measured from */
    return 0;
}

static int sq_notify(StoreConn *sc, const char *channel, const char *payload)
{
    SqConn *c = (SqConn *)sc;
    sq_clear(c);
    if (!channel || !*channel) {
        sq_seterr(c, STORE_ERR_OTHER, "notify: empty channel name");
        return -1;
    }
    SqMsg *m = xcalloc(1, sizeof *m);
    m->channel = xstrdup(channel);
    m->payload = xstrdup(payload ? payload : "");
    if (c->pend_tail) c->pend_tail->next = m;
    else c->pend_head = m;
    c->pend_tail = m;
    sq_settle(c); /* outside a transaction: published now */
    return 0;
}

static int64_t sq_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Block until a notification arrives or timeout_ms passes (negative: no limit). */
static int sq_wait(StoreConn *sc, int timeout_ms, char *channel, size_t chlen, char *payload, size_t pllen)
{
    SqConn *c = (SqConn *)sc;
    sq_clear(c);
    int64_t now = sq_now_ms(), deadline = now + (timeout_ms > 0 ? timeout_ms : 0);
    int64_t next_poll = now; /* look at data_version at once, then every SQ_POLL_MS */
    const char *ch = NULL;
    SqMsg *m = NULL;
    pthread_mutex_lock(&sq_mu);
    for (;;) {
        if (c->q_head) {
            m = c->q_head;
            c->q_head = m->next;
            if (!c->q_head) c->q_tail = NULL;
            c->q_len--;
            break;
        }
        if (c->q_overflow) {
            c->q_overflow = 0;
            ch = "*";
            break;
        }
        now = sq_now_ms();
        if (now >= next_poll && c->nchannels) {
            pthread_mutex_unlock(&sq_mu);
            int changed = sq_external_change(c);
            pthread_mutex_lock(&sq_mu);
            if (changed) {
                ch = "*";
                break;
            }
            next_poll = sq_now_ms() + SQ_POLL_MS;
            continue; /* the queue may have grown meanwhile */
        }
        if (timeout_ms >= 0 && now >= deadline) break;
        int64_t until = c->nchannels ? next_poll : now + 1000;
        if (timeout_ms >= 0 && deadline < until) until = deadline;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t ns = ts.tv_nsec + (until - now) * 1000000;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&c->cv, &sq_mu, &ts);
    }
    pthread_mutex_unlock(&sq_mu);
    if (!m && !ch) return 0;
    if (channel && chlen) util_strlcpy(channel, m ? m->channel : ch, chlen);
    if (payload && pllen) util_strlcpy(payload, m ? m->payload : "", pllen);
    if (m) m->next = NULL;
    sq_msgs_free(m);
    return 1;
}

static const char *sq_last_error(StoreConn *sc) { return ((SqConn *)sc)->err; }
static StoreErrKind sq_last_kind(StoreConn *sc) { return ((SqConn *)sc)->kind; }

static const char *sq_sql(StoreConn *sc, StoreFeature f)
{
    (void)sc;
    (void)f;
    return ""; /* one writer at a time: there are no row locks to ask for */
}

/* ---------- result sets (materialised by sq_run) ---------- */

static const SqCell *sq_cell(SqRows *r, int col)
{
    if (r->row < 0 || r->row >= r->nrows || col < 0 || col >= r->ncols) return NULL;
    return &r->cells[(size_t)r->row * (size_t)r->ncols + (size_t)col];
}

static int sq_rows_next(StoreRows *sr)
{
    SqRows *r = (SqRows *)sr;
    if (r->row < r->nrows) r->row++;
    return r->row < r->nrows;
}

static int sq_rows_ncols(StoreRows *sr) { return ((SqRows *)sr)->ncols; }

static int sq_rows_isnull(StoreRows *sr, int col)
{
    const SqCell *cell = sq_cell((SqRows *)sr, col);
    return !cell || cell->type == SQLITE_NULL;
}

static const char *sq_rows_text(StoreRows *sr, int col)
{
    SqRows *r = (SqRows *)sr;
    const SqCell *cell = sq_cell(r, col);
    return !cell || cell->type == SQLITE_NULL ? NULL : r->data + cell->off;
}

static int64_t sq_rows_int(StoreRows *sr, int col)
{
    const SqCell *cell = sq_cell((SqRows *)sr, col);
    return cell ? cell->i : 0;
}

static const void *sq_rows_blob(StoreRows *sr, int col, size_t *len)
{
    SqRows *r = (SqRows *)sr;
    const SqCell *cell = sq_cell(r, col);
    int null = !cell || cell->type == SQLITE_NULL;
    if (len) *len = null ? 0 : cell->len;
    return null ? NULL : r->data + cell->off;
}

static void sq_rows_free(StoreRows *sr)
{
    SqRows *r = (SqRows *)sr;
    if (!r) return;
    free(r->cells);
    free(r->data);
    free(r);
}

const StoreDriver store_driver_sqlite = {
    .name = "sqlite", .connect = sq_connect, .close = sq_close, .exec = sq_exec, .query = sq_query,
    .begin = sq_begin, .commit = sq_commit, .rollback = sq_rollback,
    .listen = sq_listen, .notify = sq_notify, .wait = sq_wait,
    .last_error = sq_last_error, .last_kind = sq_last_kind, .sql = sq_sql,
    .rows_next = sq_rows_next, .rows_ncols = sq_rows_ncols, .rows_isnull = sq_rows_isnull,
    .rows_text = sq_rows_text, .rows_int = sq_rows_int, .rows_blob = sq_rows_blob, .rows_free = sq_rows_free,
};
