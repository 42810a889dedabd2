/* store — connection, transactions with retry, small query helpers, ids (see store.h). */
#include "store/store.h"

#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/util.h"

Store *store_open(const char *url, char *err, size_t errlen)
{
    const StoreDriver *drv = store_driver_for_url(url);
    if (!drv) {
        snprintf(err, errlen, "database.url: unsupported scheme in '%.40s' (use postgresql://... or sqlite:///path)",
                 url ? url : "");
        return NULL;
    }
    StoreConn *c = drv->connect(url, err, errlen);
    if (!c) return NULL;
    Store *s = xcalloc(1, sizeof *s);
    s->conn = c;
    s->drv = drv;
    s->url = xstrdup(url);
    return s;
}

void store_free(Store *s)
{
    if (!s) return;
    store_close(s->conn);
    free(s->url);
    free(s);
}

const char *store_last_error(const Store *s)
{
    return s->err;
}

int store_is_sqlite(const Store *s)
{
    return strcmp(s->drv->name, "sqlite") == 0;
}

void store_set_error(Store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->err, sizeof s->err, fmt, ap);
    va_end(ap);
}

static void record(Store *s)
{
    util_strlcpy(s->err, store_error(s->conn), sizeof s->err);
}

int store_x(Store *s, const char *sql, const StoreParam *p, int np, int64_t *affected)
{
    if (store_exec(s->conn, sql, p, np, affected) != 0) {
        record(s);
        return -1;
    }
    return 0;
}

StoreRows *store_q(Store *s, const char *sql, const StoreParam *p, int np)
{
    StoreRows *r = store_query(s->conn, sql, p, np);
    if (!r) record(s);
    return r;
}

int store_q_int(Store *s, const char *sql, const StoreParam *p, int np, int64_t dflt, int64_t *out)
{
    StoreRows *r = store_q(s, sql, p, np);
    if (!r) return -1;
    *out = rows_next(r) && !rows_isnull(r, 0) ? rows_int(r, 0) : dflt;
    rows_free(r);
    return 0;
}

char *store_q_str(Store *s, const char *sql, const StoreParam *p, int np)
{
    StoreRows *r = store_q(s, sql, p, np);
    if (!r) return NULL;
    char *v = rows_next(r) && !rows_isnull(r, 0) ? xstrdup(rows_text(r, 0)) : NULL;
    rows_free(r);
    return v;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int store_tx(Store *s, StoreTxFn fn, void *ud)
{
    /* Inside a transaction already: join it. The outer store_tx owns commit and retry. */
    if (s->in_tx) return fn(s, ud);
    long delay = 20;
    int64_t deadline = util_now_us() + 30LL * 1000000;
    for (int attempt = 1;; attempt++) {
        int rc;
        StoreErrKind kind = STORE_OK;
        if (store_begin(s->conn) != 0) {
            record(s);
            kind = store_error_kind(s->conn);
            rc = -1;
        } else {
            s->in_tx = 1;
            s->err[0] = '\0';
            rc = fn(s, ud);
            if (rc == 0 && store_commit(s->conn) != 0) {
                record(s);
                rc = -1;
            }
            if (rc != 0) kind = store_error_kind(s->conn);
            if (rc != 0) store_rollback(s->conn);
            s->in_tx = 0;
        }
        if (rc == 0) return 0;
        /* Only a lost connection or a busy lock is worth another go: anything else would
         * fail the same way again. */
        if ((kind != STORE_ERR_CONNECTION && kind != STORE_ERR_BUSY) || util_now_us() > deadline) return rc;
        const volatile int *stop = ((StoreConnBase *)s->conn)->interrupt;
        if (stop && *stop) return rc; /* stopping: no retry */
        sleep_ms(delay);
        if (delay < 1000) delay *= 2;
        (void)attempt;
    }
}

void store_set_interrupt(Store *s, const volatile int *flag)
{
    if (s && s->conn) ((StoreConnBase *)s->conn)->interrupt = flag;
}

void store_new_id(char out[33])
{
    unsigned char b[16];
    int64_t ms = util_now_us() / 1000;
    for (int i = 0; i < 6; i++) b[i] = (unsigned char)(ms >> (8 * (5 - i)));
    if (RAND_bytes(b + 6, 10) != 1) {
        /* RAND_bytes does not fail on Linux with a seeded kernel RNG; be safe anyway. */
        for (int i = 6; i < 16; i++) b[i] = (unsigned char)rand();
    }
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[32] = '\0';
}

int store_listen(Store *s)
{
    if (store_drv(s->conn)->listen(s->conn, STORE_CHANNEL) != 0) {
        record(s);
        return -1;
    }
    return 0;
}

int store_wait_change(Store *s, int timeout_ms, char *payload, size_t len)
{
    char chan[64];
    char dummy[8];
    if (!payload) {
        payload = dummy;
        len = sizeof dummy;
    }
    int rc = store_drv(s->conn)->wait(s->conn, timeout_ms, chan, sizeof chan, payload, len);
    if (rc < 0) record(s);
    return rc;
}

int store_notify(Store *s, const char *payload)
{
    if (store_drv(s->conn)->notify(s->conn, STORE_CHANNEL, payload ? payload : "") != 0) {
        record(s);
        return -1;
    }
    return 0;
}
