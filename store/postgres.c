/* postgres — the libpq driver, gust's store in a distributed deployment (see driver.h).
 *
 * Callers write `?` placeholders; they are rewritten to $1..$n once per SQL text and the
 * statement is prepared once per connection (PQprepare), because the scheduler and workers run
 * the same few statements in hot loops and a prepared statement saves the server a parse and
 * plan each time. Parameters travel as text (ints as decimal) except blobs, which go binary so
 * no byte needs escaping; results come back as text.
 *
 * Daemons must survive a PostgreSQL restart (DESIGN.md invariant 7), so a dead connection is
 * re-opened with backoff at the next call. Outside a transaction the one statement that hit the
 * dead connection is retried; inside one, only the caller knows what the whole transaction was,
 * so it gets STORE_ERR_CONNECTION and rolls back (which reconnects) and runs it again. */
#include "store/driver.h"

#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PG_STMT_MAX 512              /* beyond this many distinct SQL texts, run unprepared */
#define PG_RECONNECT_FIRST_MS 50     /* backoff: 50 ms doubling ... */
#define PG_RECONNECT_MAX_MS 2000     /* ... to 2 s between attempts ... */
#define PG_RECONNECT_TOTAL_MS 30000  /* ... giving up after about 30 s */
#define PG_BOOLOID 16
#define PG_BYTEAOID 17

typedef struct PgStmt {
    struct PgStmt *next; /* in PgConn.stmts */
    char *sql;           /* the caller's text with `?`: the cache key */
    int nparams;         /* placeholders found by the rewrite */
    char name[16];       /* server-side name, "g1", "g2", ... */
} PgStmt;

typedef struct PgConn {
    StoreConnBase base;
    PGconn *pg;                       /* NULL after a failed reconnect */
    char *url;                        /* as given (holds the password: never printed) */
    char where[192];                  /* "host:port", for messages */
    int dead;                         /* a statement saw the connection die: reconnect before the next one */
    int in_tx;                        /* between begin() and commit()/rollback() */
    int tx_lost;                      /* the connection died inside the transaction: only rollback() helps */
    char **channels;                  /* LISTENed channels, re-LISTENed after a reconnect */
    int nchannels;
    int missed;                       /* reconnected while listening: wait() reports "*" once */
    PgStmt *stmts;                    /* prepared statements (a list: a lookup costs far less than
                                         the round trip it saves) */
    int nstmts;
    unsigned stmt_seq;                /* next prepared statement number */
    StoreErrKind kind;                /* last failure */
    char err[512];
} PgConn;

typedef struct PgRows {
    StoreRowsBase base;
    PGresult *res;
    int row, nrows, ncols;   /* row is -1 before the first rows_next */
    unsigned char **blob;    /* per column: the current row's decoded bytea, or NULL */
    size_t *bloblen;
} PgRows;

/* ---------- messages ---------- */

/* Messages are one line: libpq's are several, with tabs. */
static void pg_one_line(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        char ch = (*r == '\n' || *r == '\t' || *r == '\r') ? ' ' : *r;
        if (ch == ' ' && (w == s || w[-1] == ' ')) continue;
        *w++ = ch;
    }
    while (w > s && w[-1] == ' ') w--;
    *w = '\0';
}

static void pg_clear(PgConn *c)
{
    c->kind = STORE_OK;
    c->err[0] = '\0';
}

static void pg_seterr(PgConn *c, StoreErrKind k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pg_seterr(PgConn *c, StoreErrKind k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    pg_one_line(c->err);
    c->kind = k;
}

/* The name quoted after key in msg ("... for user "gust""), copied to out; 0 if absent. */
static int pg_quoted_after(const char *msg, const char *key, char *out, size_t outlen)
{
    const char *p = strstr(msg, key), *e = NULL;
    if (p && (p = strchr(p + strlen(key), '"')) != NULL) e = strchr(++p, '"');
    if (e) snprintf(out, outlen, "%.*s", (int)(e - p), p);
    return e != NULL;
}

/* libpq's words for a failed connection, and what to tell a person instead. */
static const char *const PG_REASONS[][2] = {
    {"onnection refused", "connection refused (is the server running and is the port right?)"},
    {"no password supplied", "the server asks for a password and the URL has none"},
    {"no pg_hba.conf entry", "the server's pg_hba.conf does not let this host, user and database in"},
    {"timeout expired", "timed out (is the host reachable and the port right?)"},
    {"the database system is starting up", "the server is still starting up"},
    {"the database system is shutting down", "the server is shutting down"},
    {"too many clients", "the server has no connection slots left (max_connections)"},
    {"invalid response to SSL negotiation", "what answered is not a PostgreSQL server (is the port right?)"},
    {"expected authentication request", "what answered is not a PostgreSQL server (is the port right?)"},
    {"No such file or directory", "no server is listening on that socket (is the server running?)"},
};

/* Turn libpq's account of a failed connection into the one reason a person can act on. libpq
 * never puts the password into these messages, so none is scrubbed here. */
static void pg_explain(const char *msg, char *out, size_t outlen)
{
    char name[128];
    const char *p;
    if (pg_quoted_after(msg, "password authentication failed for user", name, sizeof name))
        snprintf(out, outlen, "password authentication failed for user '%s'", name);
    else if (strstr(msg, "does not exist") && pg_quoted_after(msg, "FATAL:  database", name, sizeof name))
        snprintf(out, outlen, "database '%s' does not exist", name);
    else if (strstr(msg, "does not exist") && pg_quoted_after(msg, "FATAL:  role", name, sizeof name))
        snprintf(out, outlen, "user '%s' does not exist", name);
    else if (pg_quoted_after(msg, "could not translate host name", name, sizeof name))
        snprintf(out, outlen, "could not resolve host '%s'", name);
    else {
        for (size_t i = 0; i < GUST_ARRAY_LEN(PG_REASONS); i++) {
            if (!strstr(msg, PG_REASONS[i][0])) continue;
            util_strlcpy(out, PG_REASONS[i][1], outlen);
            return;
        }
        /* Unknown: libpq's first line without its "connection to server ... failed:" preamble. */
        p = strstr(msg, " failed: ");
        p = p ? p + 9 : msg;
        if (strncmp(p, "FATAL:  ", 8) == 0) p += 8;
        snprintf(out, outlen, "%.*s", (int)strcspn(p, "\n"), p);
    }
}

/* "host:port" of the server libpq tried (it knows, even when the attempt failed). */
static void pg_where(PGconn *pg, char *out, size_t outlen)
{
    const char *host = PQhost(pg), *port = PQport(pg);
    if (!host || !*host) host = "localhost";
    if (!port || !*port) port = "5432";
    if (host[0] == '/') snprintf(out, outlen, "socket %s, port %s", host, port);
    else if (strchr(host, ':')) snprintf(out, outlen, "[%s]:%s", host, port);
    else snprintf(out, outlen, "%s:%s", host, port);
}

/* ---------- connections ---------- */

static void pg_quiet(void *arg, const char *message)
{
    /* Notices ("there is no transaction in progress", ...) would otherwise go to stderr. */
    (void)arg;
    (void)message;
}

/* Open a connection. Our keywords come first so that the URL (expanded from dbname) may
 * override them; the keepalives let a listener notice a vanished host within a minute. */
static PGconn *pg_open(const char *url)
{
    static const char *const keys[] = {"application_name", "connect_timeout", "keepalives_idle",
                                       "keepalives_interval", "keepalives_count", "dbname", NULL};
    const char *vals[] = {"gust", "10", "30", "10", "3", url, NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (pg && PQstatus(pg) == CONNECTION_OK) PQsetNoticeProcessor(pg, pg_quiet, NULL);
    return pg;
}

static int64_t pg_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pg_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {}
}

/* Forget every prepared statement: after a reconnect the server has none of them. */
static void pg_stmts_forget(PgConn *c)
{
    for (PgStmt *s = c->stmts, *next; s; s = next) {
        next = s->next;
        free(s->sql);
        free(s);
    }
    c->stmts = NULL;
    c->nstmts = 0;
}

/* "LISTEN "chan"", the identifier quoted so any channel name is taken literally. Caller frees. */
static char *pg_listen_sql(const char *channel)
{
    StrBuf b = {0};
    sb_append(&b, "LISTEN \"");
    for (const char *p = channel; *p; p++) {
        if (*p == '"') sb_appendc(&b, '"');
        sb_appendc(&b, *p);
    }
    sb_appendc(&b, '"');
    return sb_take(&b);
}

/* Close the dead connection and open a new one, with backoff, up to ~30 s. Then re-LISTEN, so
 * a listener keeps its subscriptions, and remember that notifications may have been missed. */
static int pg_reconnect(PgConn *c)
{
    if (c->pg) PQfinish(c->pg);
    c->pg = NULL;
    c->dead = 0;
    pg_stmts_forget(c);
    int64_t start = pg_now_ms();
    int delay = PG_RECONNECT_FIRST_MS;
    for (;;) {
        c->pg = pg_open(c->url);
        if (c->pg && PQstatus(c->pg) == CONNECTION_OK) break;
        char why[256];
        pg_explain(c->pg ? PQerrorMessage(c->pg) : "out of memory", why, sizeof why);
        PQfinish(c->pg);
        c->pg = NULL;
        if (c->base.interrupt && *c->base.interrupt) {
            pg_seterr(c, STORE_ERR_CONNECTION, "lost the connection to PostgreSQL at %s and stopped reconnecting: "
                      "the process is stopping (%s)", c->where, why);
            return -1;
        }
        if (pg_now_ms() - start + delay > PG_RECONNECT_TOTAL_MS) {
            pg_seterr(c, STORE_ERR_CONNECTION, "lost the connection to PostgreSQL at %s and could not reconnect "
                      "within %d s: %s", c->where, PG_RECONNECT_TOTAL_MS / 1000, why);
            return -1;
        }
        for (int slept = 0; slept < delay && !(c->base.interrupt && *c->base.interrupt); slept += 50)
            pg_sleep_ms(delay - slept < 50 ? delay - slept : 50);
        delay = delay * 2 > PG_RECONNECT_MAX_MS ? PG_RECONNECT_MAX_MS : delay * 2;
    }
    for (int i = 0; i < c->nchannels; i++) {
        char *sql = pg_listen_sql(c->channels[i]);
        PGresult *r = PQexec(c->pg, sql);
        int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        free(sql);
        PQclear(r);
        if (!ok) {
            c->dead = 1; /* try the whole reconnect again next call */
            pg_seterr(c, STORE_ERR_CONNECTION, "reconnected to PostgreSQL at %s but LISTEN %s failed: %s",
                      c->where, c->channels[i], PQerrorMessage(c->pg));
            return -1;
        }
    }
    if (c->nchannels) c->missed = 1;
    return 0;
}

/* Before a statement: a healthy connection, or a new one if no transaction is open. */
static int pg_ensure(PgConn *c)
{
    int bad = c->dead || !c->pg || PQstatus(c->pg) != CONNECTION_OK;
    if (!bad && !c->tx_lost) return 0;
    if (c->in_tx) {
        c->tx_lost = 1;
        pg_seterr(c, STORE_ERR_CONNECTION, "lost the connection to PostgreSQL at %s inside a transaction: "
                  "roll back and run the transaction again", c->where);
        return -1;
    }
    return pg_reconnect(c);
}

static StoreConn *pg_connect(const char *url, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) err = dummy, errlen = sizeof dummy;
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &perr);
    if (!opts) {
        /* libpq ends these with the offending part of the URL in quotes, which may be the
         * password: keep only what went wrong. */
        char *cut = perr ? strstr(perr, ": \"") : NULL;
        if (cut) *cut = '\0';
        snprintf(err, errlen, "invalid PostgreSQL URL: %s", perr ? perr : "cannot parse it");
        pg_one_line(err);
        PQfreemem(perr);
        return NULL;
    }
    int at_in_host = 0; /* user:p@ss@host: libpq takes "ss@host" as the host, half a password */
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (!strcmp(o->keyword, "host") && o->val && strchr(o->val, '@')) at_in_host = 1;
    PQconninfoFree(opts);
    if (at_in_host) {
        snprintf(err, errlen, "invalid PostgreSQL URL: its host contains '@' (write '@' in a password as %%40)");
        return NULL;
    }
    PGconn *pg = pg_open(url);
    char where[192];
    pg_where(pg, where, sizeof where);
    if (PQstatus(pg) != CONNECTION_OK) {
        char why[256];
        pg_explain(PQerrorMessage(pg), why, sizeof why);
        snprintf(err, errlen, "cannot connect to PostgreSQL at %s: %s", where, why);
        PQfinish(pg);
        return NULL;
    }
    PgConn *c = xcalloc(1, sizeof *c);
    c->base.drv = &store_driver_postgres;
    c->pg = pg;
    c->url = xstrdup(url);
    util_strlcpy(c->where, where, sizeof c->where);
    err[0] = '\0';
    return (StoreConn *)c;
}

static void pg_close(StoreConn *sc)
{
    PgConn *c = (PgConn *)sc;
    if (!c) return;
    PQfinish(c->pg);
    pg_stmts_forget(c);
    for (int i = 0; i < c->nchannels; i++) free(c->channels[i]);
    free(c->channels);
    free(c->url);
    free(c);
}

/* ---------- statements ---------- */

static int pg_is_ident(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_' || (unsigned char)ch >= 0x80;
}

/* End of a quoted run starting at p (which points at the opening quote). A doubled quote is
 * an escaped quote; in E'...' strings a backslash escapes the next byte too. */
static const char *pg_skip_quoted(const char *p, char quote, int backslash)
{
    const char *q = p + 1;
    for (;;) {
        if (!*q) return q;
        if (backslash && *q == '\\' && q[1]) { q += 2; continue; }
        if (*q == quote) {
            if (q[1] == quote) { q += 2; continue; }
            return q + 1;
        }
        q++;
    }
}

/* Rewrite `?` placeholders to $1..$n, leaving alone any `?` inside string literals, quoted
 * identifiers, dollar-quoted strings and comments. Caller frees; *nparams gets n. */
static char *pg_rewrite(const char *sql, int *nparams)
{
    StrBuf b = {0};
    int n = 0;
    const char *p = sql;
    while (*p) {
        const char *end = NULL;
        if (*p == '\'') {
            int esc = p > sql && (p[-1] == 'E' || p[-1] == 'e') && (p - 1 == sql || !pg_is_ident(p[-2]));
            end = pg_skip_quoted(p, '\'', esc);
        } else if (*p == '"') {
            end = pg_skip_quoted(p, '"', 0);
        } else if (p[0] == '-' && p[1] == '-') {
            end = p + strcspn(p, "\n");
        } else if (p[0] == '/' && p[1] == '*') {
            int depth = 0; /* PostgreSQL's block comments nest */
            end = p;
            do {
                if (end[0] == '/' && end[1] == '*') depth++, end += 2;
                else if (end[0] == '*' && end[1] == '/') depth--, end += 2;
                else end++;
            } while (*end && depth > 0);
        } else if (*p == '$' && (p == sql || !pg_is_ident(p[-1])) && !isdigit((unsigned char)p[1])) {
            const char *t = p + 1;
            while (pg_is_ident(*t)) t++;
            if (*t == '$') { /* $tag$ ... $tag$ */
                size_t taglen = (size_t)(t + 1 - p);
                char *tag = xstrndup(p, taglen);
                const char *close = strstr(t + 1, tag);
                end = close ? close + taglen : t + 1 + strlen(t + 1);
                free(tag);
            }
        } else if (*p == '?') {
            sb_printf(&b, "$%d", ++n);
            p++;
            continue;
        }
        if (!end) end = p + 1;
        sb_appendn(&b, p, (size_t)(end - p));
        p = end;
    }
    *nparams = n;
    return sb_take(&b);
}

static PgStmt *pg_stmt_find(PgConn *c, const char *sql)
{
    for (PgStmt *s = c->stmts; s; s = s->next)
        if (strcmp(s->sql, sql) == 0) return s;
    return NULL;
}

/* Drop one entry (the server's copy stays until the session ends: rare, and harmless). */
static void pg_stmt_forget(PgConn *c, PgStmt *st)
{
    PgStmt **pp = &c->stmts;
    while (*pp && *pp != st) pp = &(*pp)->next;
    if (*pp) *pp = st->next;
    free(st->sql);
    free(st);
    c->nstmts--;
}

static StoreErrKind pg_kind_of(PgConn *c, const char *state)
{
    if (!c->pg || PQstatus(c->pg) != CONNECTION_OK) return STORE_ERR_CONNECTION;
    if (!state) return STORE_ERR_OTHER;
    if (strncmp(state, "23", 2) == 0) return STORE_ERR_CONSTRAINT;
    if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03")) return STORE_ERR_BUSY;
    /* 08: connection exceptions; 57P01-03: the server is shutting down or not yet up. */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P0", 4) == 0) return STORE_ERR_CONNECTION;
    return STORE_ERR_OTHER;
}

/* Record why res (which may be NULL) failed; returns the kind. */
static StoreErrKind pg_record(PgConn *c, PGresult *res, const char *sql)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    StoreErrKind k = pg_kind_of(c, state);
    const char *prim = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    if (k == STORE_ERR_CONNECTION) {
        const char *why = prim ? prim : c->pg ? PQerrorMessage(c->pg) : "no connection";
        pg_seterr(c, k, "lost the connection to PostgreSQL at %s: %.*s", c->where, (int)strcspn(why, "\n"), why);
        c->dead = 1;
    } else if (prim) {
        pg_seterr(c, k, "%s%s%s [%s] in: %.120s", prim, detail ? ": " : "", detail ? detail : "",
                  state ? state : "?", sql);
    } else {
        pg_seterr(c, k, "%s in: %.120s", c->pg ? PQerrorMessage(c->pg) : "no connection", sql);
    }
    return k;
}

/* Send one statement: prepare it on first use (if cacheable), then execute with parameters.
 * 0 = *out holds a good result; -1 = server or connection failure (*out may hold the failed
 * result, to classify); -2 = our own error, already recorded, not worth a retry. *prepared
 * says whether a cached prepared statement was used (a stale plan can then be re-prepared). */
static int pg_send(PgConn *c, const char *sql, const StoreParam *p, int np, int cacheable,
                   PGresult **out, PgStmt **prepared)
{
    *out = NULL;
    *prepared = NULL;
    PgStmt *st = cacheable ? pg_stmt_find(c, sql) : NULL;
    char *text = NULL;
    int nph = 0;
    if (st) nph = st->nparams;
    else text = pg_rewrite(sql, &nph);
    if (nph != np) {
        pg_seterr(c, STORE_ERR_OTHER, "statement has %d placeholders but %d parameters were given: %.120s",
                  nph, np, sql);
        free(text);
        return -2;
    }
    if (!st && cacheable && c->nstmts < PG_STMT_MAX) {
        char name[16];
        snprintf(name, sizeof name, "g%u", ++c->stmt_seq);
        PGresult *r = PQprepare(c->pg, name, text, 0, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            *out = r;
            free(text);
            return -1;
        }
        PQclear(r);
        st = xcalloc(1, sizeof *st);
        st->sql = xstrdup(sql);
        st->nparams = nph;
        util_strlcpy(st->name, name, sizeof st->name);
        st->next = c->stmts;
        c->stmts = st;
        c->nstmts++;
    }
    const char **vals = np ? xcalloc((size_t)np, sizeof *vals) : NULL;
    int *lens = np ? xcalloc((size_t)np, sizeof *lens) : NULL;
    int *fmts = np ? xcalloc((size_t)np, sizeof *fmts) : NULL;
    char **owned = np ? xcalloc((size_t)np, sizeof *owned) : NULL; /* ints as text, sized text copies */
    for (int i = 0; i < np; i++) {
        switch (p[i].type) {
        case SP_INT: owned[i] = xasprintf("%lld", (long long)p[i].i); vals[i] = owned[i]; break;
        case SP_TEXT:
            if (!p[i].s) break;
            if (p[i].len) vals[i] = owned[i] = xstrndup(p[i].s, p[i].len); /* text params are NUL-terminated */
            else vals[i] = p[i].s;
            break;
        case SP_BLOB:
            vals[i] = p[i].s ? p[i].s : "";
            lens[i] = (int)p[i].len;
            fmts[i] = 1;
            break;
        case SP_NULL: break;
        }
    }
    PGresult *res = st ? PQexecPrepared(c->pg, st->name, np, vals, lens, fmts, 0)
                       : PQexecParams(c->pg, text, np, NULL, vals, lens, fmts, 0);
    for (int i = 0; i < np; i++) free(owned[i]);
    free(owned);
    free(fmts);
    free(lens);
    free(vals);
    free(text);
    *out = res;
    *prepared = st;
    ExecStatusType s = PQresultStatus(res);
    return (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) ? 0 : -1;
}

/* Run one statement, reconnecting as the file comment says. Returns a good result (caller
 * clears) or NULL with the error recorded. */
static PGresult *pg_run(PgConn *c, const char *sql, const StoreParam *p, int np, int cacheable)
{
    pg_clear(c);
    if (!sql || np < 0 || (np > 0 && !p)) {
        pg_seterr(c, STORE_ERR_OTHER, "bad arguments: no SQL, or parameters missing");
        return NULL;
    }
    for (int attempt = 0;; attempt++) {
        if (pg_ensure(c) < 0) return NULL;
        PGresult *res;
        PgStmt *prepared;
        int rc = pg_send(c, sql, p, np, cacheable, &res, &prepared);
        if (rc == 0) {
            pg_clear(c); /* a retry worked: forget the first attempt's failure */
            return res;
        }
        if (rc == -2) return NULL;
        StoreErrKind k = pg_record(c, res, sql);
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        int retry = 0;
        if (k == STORE_ERR_CONNECTION) {
            if (c->in_tx) c->tx_lost = 1;
            else retry = attempt == 0;
        } else if (prepared && state && strcmp(state, "0A000") == 0) {
            /* "cached plan must not change result type": a table changed under the prepared
             * statement; prepare it afresh. */
            pg_stmt_forget(c, prepared);
            retry = attempt == 0 && !c->in_tx;
        }
        PQclear(res);
        if (!retry) return NULL;
    }
}

static int pg_exec(StoreConn *sc, const char *sql, const StoreParam *p, int np, int64_t *affected)
{
    PgConn *c = (PgConn *)sc;
    PGresult *res = pg_run(c, sql, p, np, 1);
    if (!res) return -1;
    if (affected) {
        const char *t = PQcmdTuples(res);
        *affected = *t ? strtoll(t, NULL, 10) : 0;
    }
    PQclear(res);
    return 0;
}

static StoreRows *pg_query(StoreConn *sc, const char *sql, const StoreParam *p, int np)
{
    PgConn *c = (PgConn *)sc;
    PGresult *res = pg_run(c, sql, p, np, 1);
    if (!res) return NULL;
    PgRows *r = xcalloc(1, sizeof *r);
    r->base.drv = &store_driver_postgres;
    r->res = res;
    r->row = -1;
    r->nrows = PQntuples(res);
    r->ncols = PQnfields(res);
    r->blob = xcalloc((size_t)r->ncols + 1, sizeof *r->blob);
    r->bloblen = xcalloc((size_t)r->ncols + 1, sizeof *r->bloblen);
    return (StoreRows *)r;
}

/* ---------- transactions ---------- */

static int pg_begin(StoreConn *sc)
{
    PgConn *c = (PgConn *)sc;
    if (c->in_tx) {
        pg_clear(c);
        pg_seterr(c, STORE_ERR_OTHER, "begin: a transaction is already open");
        return -1;
    }
    PGresult *res = pg_run(c, "BEGIN", NULL, 0, 0); /* not yet in a transaction: may reconnect */
    if (!res) return -1;
    PQclear(res);
    c->in_tx = 1;
    c->tx_lost = 0;
    return 0;
}

static int pg_commit(StoreConn *sc)
{
    PgConn *c = (PgConn *)sc;
    pg_clear(c);
    if (!c->in_tx) {
        pg_seterr(c, STORE_ERR_OTHER, "commit: no transaction is open");
        return -1;
    }
    if (c->tx_lost) { /* lost before COMMIT: certainly not committed */
        pg_ensure(c);
        return -1;
    }
    PGresult *res = pg_run(c, "COMMIT", NULL, 0, 0);
    if (!res) {
        /* A connection lost during COMMIT leaves the outcome unknown; the caller must roll back
         * (which reconnects) before going on. Any other failure has ended the transaction. */
        if (c->kind == STORE_ERR_CONNECTION) {
            c->tx_lost = 1;
            pg_seterr(c, STORE_ERR_CONNECTION, "lost the connection to PostgreSQL at %s during COMMIT: "
                      "the transaction may or may not have committed", c->where);
        } else {
            c->in_tx = 0;
        }
        return -1;
    }
    /* COMMIT of a transaction in which a statement failed succeeds, reporting ROLLBACK. */
    int rolled_back = strcmp(PQcmdStatus(res), "ROLLBACK") == 0;
    PQclear(res);
    c->in_tx = 0;
    if (rolled_back) {
        pg_seterr(c, STORE_ERR_OTHER, "commit: a statement in the transaction had failed, so it was rolled back");
        return -1;
    }
    return 0;
}

static int pg_rollback(StoreConn *sc)
{
    PgConn *c = (PgConn *)sc;
    pg_clear(c);
    int was = c->in_tx;
    c->in_tx = c->tx_lost = 0;
    if (c->dead || !c->pg || PQstatus(c->pg) != CONNECTION_OK) return pg_reconnect(c);
    if (!was) return 0;
    PGresult *res = PQexec(c->pg, "ROLLBACK");
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) pg_record(c, res, "ROLLBACK");
    PQclear(res);
    if (ok) return 0;
    if (c->kind == STORE_ERR_CONNECTION) return pg_reconnect(c); /* the server dropped it anyway */
    return -1;
}

/* ---------- notifications ---------- */

static int pg_listen(StoreConn *sc, const char *channel)
{
    PgConn *c = (PgConn *)sc;
    pg_clear(c);
    if (!channel || !*channel || strlen(channel) > 63) {
        pg_seterr(c, STORE_ERR_OTHER, "listen: a channel name is 1 to 63 bytes");
        return -1;
    }
    for (int i = 0; i < c->nchannels; i++)
        if (strcmp(c->channels[i], channel) == 0) return 0;
    char *sql = pg_listen_sql(channel);
    PGresult *res = pg_run(c, sql, NULL, 0, 0);
    free(sql);
    if (!res) return -1;
    PQclear(res);
    c->channels = xrealloc(c->channels, (size_t)(c->nchannels + 1) * sizeof *c->channels);
    c->channels[c->nchannels++] = xstrdup(channel);
    return 0;
}

static int pg_notify(StoreConn *sc, const char *channel, const char *payload)
{
    PgConn *c = (PgConn *)sc;
    StoreParam p[2] = {SP_S(channel), SP_S(payload ? payload : "")};
    PGresult *res = pg_run(c, "SELECT pg_notify(?, ?)", p, 2, 1);
    if (!res) return -1;
    PQclear(res);
    return 0;
}

static int pg_hand_over(const char *ch, const char *pl, char *channel, size_t chlen, char *payload, size_t pllen)
{
    if (channel && chlen) util_strlcpy(channel, ch, chlen);
    if (payload && pllen) util_strlcpy(payload, pl ? pl : "", pllen);
    return 1;
}

/* Block until a notification arrives or timeout_ms passes (negative: no limit, as poll()).
 * A reconnect is reported as channel "*": notifications sent meanwhile are lost, so the
 * listener should look at everything again. */
static int pg_wait(StoreConn *sc, int timeout_ms, char *channel, size_t chlen, char *payload, size_t pllen)
{
    PgConn *c = (PgConn *)sc;
    pg_clear(c);
    int64_t deadline = pg_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    int last_look = 0;
    for (;;) {
        if (pg_ensure(c) < 0) return -1;
        if (c->missed) {
            c->missed = 0;
            return pg_hand_over("*", "", channel, chlen, payload, pllen);
        }
        PGnotify *n = PQnotifies(c->pg);
        if (n) {
            pg_hand_over(n->relname, n->extra, channel, chlen, payload, pllen);
            PQfreemem(n);
            return 1;
        }
        int left = timeout_ms < 0 ? -1 : (int)(deadline - pg_now_ms());
        if (timeout_ms >= 0 && left <= 0) {
            if (last_look) return 0;
            left = 0;
            last_look = 1; /* one non-blocking look at what has arrived by the deadline */
        }
        struct pollfd pfd = {PQsocket(c->pg), POLLIN, 0};
        if (pfd.fd < 0) {
            c->dead = 1;
            continue;
        }
        int rc = poll(&pfd, 1, left);
        if (rc < 0 && errno != EINTR) {
            pg_seterr(c, STORE_ERR_OTHER, "wait: poll failed: %s", strerror(errno));
            return -1;
        }
        if (rc > 0 && !PQconsumeInput(c->pg)) c->dead = 1; /* reconnect at the top of the loop */
    }
}

static const char *pg_last_error(StoreConn *sc) { return ((PgConn *)sc)->err; }
static StoreErrKind pg_last_kind(StoreConn *sc) { return ((PgConn *)sc)->kind; }

static const char *pg_sql(StoreConn *sc, StoreFeature f)
{
    (void)sc;
    switch (f) {
    case STORE_SQL_SKIP_LOCKED: return " FOR UPDATE SKIP LOCKED";
    case STORE_SQL_FOR_UPDATE: return " FOR UPDATE";
    }
    return "";
}

/* ---------- result sets ---------- */

static void pg_rows_drop_blobs(PgRows *r)
{
    for (int i = 0; i < r->ncols; i++) {
        if (r->blob[i]) PQfreemem(r->blob[i]);
        r->blob[i] = NULL;
    }
}

static int pg_rows_next(StoreRows *sr)
{
    PgRows *r = (PgRows *)sr;
    pg_rows_drop_blobs(r);
    if (r->row < r->nrows) r->row++;
    return r->row < r->nrows;
}

static int pg_rows_ncols(StoreRows *sr) { return ((PgRows *)sr)->ncols; }

static int pg_rows_valid(PgRows *r, int col)
{
    return r->row >= 0 && r->row < r->nrows && col >= 0 && col < r->ncols;
}

static int pg_rows_isnull(StoreRows *sr, int col)
{
    PgRows *r = (PgRows *)sr;
    return !pg_rows_valid(r, col) || PQgetisnull(r->res, r->row, col);
}

static const char *pg_rows_text(StoreRows *sr, int col)
{
    PgRows *r = (PgRows *)sr;
    if (pg_rows_isnull(sr, col)) return NULL;
    return PQgetvalue(r->res, r->row, col); /* lives as long as the PGresult */
}

static int64_t pg_rows_int(StoreRows *sr, int col)
{
    PgRows *r = (PgRows *)sr;
    const char *t = pg_rows_text(sr, col);
    if (!t) return 0;
    if (PQftype(r->res, col) == PG_BOOLOID) return t[0] == 't'; /* so booleans read as on SQLite */
    return strtoll(t, NULL, 10);
}

static const void *pg_rows_blob(StoreRows *sr, int col, size_t *len)
{
    PgRows *r = (PgRows *)sr;
    if (len) *len = 0;
    if (pg_rows_isnull(sr, col)) return NULL;
    const char *t = PQgetvalue(r->res, r->row, col);
    if (PQftype(r->res, col) != PG_BYTEAOID) {
        if (len) *len = (size_t)PQgetlength(r->res, r->row, col);
        return t;
    }
    if (!r->blob[col]) {
        r->blob[col] = PQunescapeBytea((const unsigned char *)t, &r->bloblen[col]);
        if (!r->blob[col]) return NULL;
    }
    if (len) *len = r->bloblen[col];
    return r->blob[col];
}

static void pg_rows_free(StoreRows *sr)
{
    PgRows *r = (PgRows *)sr;
    if (!r) return;
    pg_rows_drop_blobs(r);
    free(r->blob);
    free(r->bloblen);
    PQclear(r->res);
    free(r);
}

const StoreDriver store_driver_postgres = {
    .name = "postgres", .connect = pg_connect, .close = pg_close, .exec = pg_exec, .query = pg_query,
    .begin = pg_begin, .commit = pg_commit, .rollback = pg_rollback,
    .listen = pg_listen, .notify = pg_notify, .wait = pg_wait,
    .last_error = pg_last_error, .last_kind = pg_last_kind, .sql = pg_sql,
    .rows_next = pg_rows_next, .rows_ncols = pg_rows_ncols, .rows_isnull = pg_rows_isnull,
    .rows_text = pg_rows_text, .rows_int = pg_rows_int, .rows_blob = pg_rows_blob, .rows_free = pg_rows_free,
};
