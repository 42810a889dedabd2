/* redis — cluster state in Redis through hiredis 0.14 (see cluster.h), for the distributed
 * deployment: every worker and scheduler talks to one Redis.
 *
 * A call takes one round trip in the common case: a heartbeat is MULTI/HSET/PEXPIRE/EXEC
 * pipelined, a rate-limit check is one EVALSHA of a GCRA script that reads the server's TIME
 * (so workers' clocks do not matter) and is atomic (so concurrent workers cannot both take the
 * last slot). Listing uses SCAN, never KEYS, then one pipelined batch of reads.
 *
 * Daemons survive a Redis restart (DESIGN.md invariant 7): a call that finds its connection dead
 * reconnects at once and runs again, once; the script, gone with the restarted server, is loaded
 * again when EVALSHA says NOSCRIPT. If the server stays away, calls fail fast (-1, "cannot
 * connect to Redis at host:port: ...") and reconnect attempts back off from 100 ms to 2 s.
 * Every call has a deadline (timeout_ms, 2 s by default) covering connect and reply. */
#include "cluster/cluster.h"

#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#define RD_DEFAULT_PORT 6379
#define RD_DEFAULT_TIMEOUT_MS 2000
#define RD_BACKOFF_FIRST_MS 100 /* after a failed reconnect: 100 ms doubling ... */
#define RD_BACKOFF_MAX_MS 2000  /* ... to 2 s between attempts */
#define RD_MAXARGS 20
#define RD_SCAN_COUNT "100"
#define RD_BATCH 256            /* reads per pipelined batch when listing */

/* GCRA (the generic cell rate algorithm, as in ATM networks and redis-cell). State: the
 * theoretical arrival time `tat` of the next request, in µs of the server's clock. A request
 * passes if now >= tat + T - burst*T, and then moves tat on by T; the key expires when tat is
 * reached, which is the same as having no state. ARGV: T (µs), burst. Returns {1, 0} or
 * {0, µs until a request would pass}. local.c does the same arithmetic. */
static const char GCRA_LUA[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local T = tonumber(ARGV[1])\n"
    "local burst = tonumber(ARGV[2])\n"
    "local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now\n"
    "if tat < now then tat = now end\n"
    "local new_tat = tat + T\n"
    "local allow_at = new_tat - burst * T\n"
    "if now < allow_at then return {0, allow_at - now} end\n"
    "redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))\n"
    "return {1, 0}\n";

typedef struct RedisConn {
    ClusterConnBase base;
    redisContext *ctx;        /* NULL while disconnected */
    char *host;               /* as for getaddrinfo: no brackets */
    int port;
    int db;
    char *user, *pass;        /* NULL when not given; never printed */
    char where[128];          /* "host:port" for messages */
    char *prefix;             /* "gust:" */
    int timeout_ms;           /* a call's deadline */
    int ctx_timeout_ms;       /* the read/write timeout set on ctx now */
    int had_conn;             /* connected once: a later connect is a reconnect */
    int64_t next_try_ms;      /* backoff: no reconnect attempt before this (monotonic ms) */
    int backoff_ms;
    char sha[41];             /* the GCRA script's SHA1 once loaded; "" before */
    char conn_err[1024];       /* why the last connect failed: repeated while backing off */
    ClusterStats st;
    char err[1024];
} RedisConn;

typedef struct RdCmd {
    int argc;
    const char *argv[RD_MAXARGS];
    size_t len[RD_MAXARGS];
} RdCmd;

static void cmd_add(RdCmd *m, const char *s)
{
    m->argv[m->argc] = s;
    m->len[m->argc++] = strlen(s);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timeval tv_ms(int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    return tv;
}

static int rd_fail(RedisConn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int rd_fail(RedisConn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    c->st.errors++;
    return -1;
}

/* An error reply: "Redis at host:port: WRONGTYPE ...". */
static int rd_fail_reply(RedisConn *c, const redisReply *r, const char *what)
{
    if (r && r->type == REDIS_REPLY_ERROR)
        return rd_fail(c, "Redis at %s: %s: %.300s", c->where, what, r->str);
    return rd_fail(c, "Redis at %s: %s: unexpected reply (type %d)", c->where, what, r ? r->type : -1);
}

static void rd_begin(RedisConn *c)
{
    c->st.calls++;
    c->err[0] = 0;
}

/* ---- URL ------------------------------------------------------------------------------ */

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    ch = tolower(ch);
    return ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* Percent-decode s[0..n) into a new string; NULL if an escape is malformed. */
static char *pct_decode(const char *s, size_t n)
{
    char *out = xmalloc(n + 1), *o = out;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') {
            *o++ = s[i];
            continue;
        }
        int hi = i + 2 < n ? hexval((unsigned char)s[i + 1]) : -1;
        int lo = i + 2 < n ? hexval((unsigned char)s[i + 2]) : -1;
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        *o++ = (char)(hi * 16 + lo);
        i += 2;
    }
    *o = 0;
    return out;
}

static int parse_int(const char *s, size_t n, long lo, long hi, long *out)
{
    if (!n || n > 9) return -1;
    long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

static const char URL_FORM[] = "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?prefix=P&timeout_ms=N]";

/* Fill c from url; -1 with a message in err (never quoting the password). */
static int parse_url(RedisConn *c, const char *url, char *err, size_t errlen)
{
    const char *p = url + 8; /* after redis:// */
    size_t alen = strcspn(p, "/?");
    const char *auth_end = p + alen;
    const char *at = NULL;
    for (const char *q = p; q < auth_end; q++)
        if (*q == '@') at = q;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon) {
            snprintf(err, errlen, "redis.url: write the password as redis://:PASSWORD@HOST (or USER:PASSWORD@)");
            return -1;
        }
        if (colon > p) c->user = pct_decode(p, (size_t)(colon - p));
        c->pass = pct_decode(colon + 1, (size_t)(at - colon - 1));
        if ((colon > p && !c->user) || !c->pass) {
            snprintf(err, errlen, "redis.url: bad %%-escape in the user or password");
            return -1;
        }
        p = at + 1;
    }
    /* host[:port] */
    const char *hs = p, *he, *port_s = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(auth_end - p));
        if (!rb) {
            snprintf(err, errlen, "redis.url: unclosed '[' in the host; expected %s", URL_FORM);
            return -1;
        }
        hs = p + 1;
        he = rb;
        if (rb + 1 < auth_end) {
            if (rb[1] != ':') {
                snprintf(err, errlen, "redis.url: unexpected text after ']'; expected %s", URL_FORM);
                return -1;
            }
            port_s = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(auth_end - p));
        he = colon ? colon : auth_end;
        if (colon) port_s = colon + 1;
    }
    c->host = he > hs ? xstrndup(hs, (size_t)(he - hs)) : xstrdup("127.0.0.1");
    long v = RD_DEFAULT_PORT;
    if (port_s && parse_int(port_s, (size_t)(auth_end - port_s), 1, 65535, &v) < 0) {
        snprintf(err, errlen, "redis.url: the port must be a number from 1 to 65535; expected %s", URL_FORM);
        return -1;
    }
    c->port = (int)v;
    if (strchr(c->host, ':'))
        snprintf(c->where, sizeof c->where, "[%.100s]:%d", c->host, c->port);
    else
        snprintf(c->where, sizeof c->where, "%.100s:%d", c->host, c->port);
    /* /db */
    p = auth_end;
    if (*p == '/') {
        p++;
        size_t dl = strcspn(p, "?");
        v = 0;
        if (dl && parse_int(p, dl, 0, 9999, &v) < 0) {
            snprintf(err, errlen, "redis.url: the database after '/' must be a number (0 to 9999); expected %s", URL_FORM);
            return -1;
        }
        c->db = (int)v;
        p += dl;
    }
    /* ?options */
    if (*p == '?') {
        p++;
        while (*p) {
            size_t kl = strcspn(p, "=&");
            const char *val = p + kl;
            size_t vl = 0;
            if (*val == '=') {
                val++;
                vl = strcspn(val, "&");
            }
            if (kl == 6 && strncmp(p, "prefix", 6) == 0) {
                char *pf = pct_decode(val, vl);
                if (!pf || !*pf) {
                    free(pf);
                    snprintf(err, errlen, "redis.url: prefix= must not be empty");
                    return -1;
                }
                free(c->prefix);
                c->prefix = pf;
            } else if (kl == 10 && strncmp(p, "timeout_ms", 10) == 0) {
                if (parse_int(val, vl, 1, 600000, &v) < 0) {
                    snprintf(err, errlen, "redis.url: timeout_ms= must be a number of milliseconds (1 to 600000)");
                    return -1;
                }
                c->timeout_ms = (int)v;
            } else {
                snprintf(err, errlen, "redis.url: unknown option '%.*s' (known: prefix, timeout_ms)",
                         kl > 32 ? 32 : (int)kl, p);
                return -1;
            }
            p = val + vl;
            if (*p == '&') p++;
        }
    }
    return 0;
}

/* ---- connection ------------------------------------------------------------------------ */

static int io_timed_out(const redisContext *ctx)
{
    return ctx->err == REDIS_ERR_IO &&
           (errno == EAGAIN || errno == EWOULDBLOCK || strstr(ctx->errstr, "temporarily unavailable"));
}

/* Describe ctx's I/O failure into buf. */
static void describe_io(RedisConn *c, const redisContext *ctx, const char *doing, char *buf, size_t len)
{
    if (io_timed_out(ctx))
        snprintf(buf, len, "Redis at %s did not answer within %d ms", c->where, c->ctx_timeout_ms);
    else
        snprintf(buf, len, "%s Redis at %s: %s", doing, c->where, ctx->errstr[0] ? ctx->errstr : "I/O error");
}

/* Open a connection within left_ms: connect, AUTH, SELECT and PING in one round trip.
 * NULL with a message in c->conn_err. */
static redisContext *rd_open(RedisConn *c, int left_ms)
{
    if (left_ms < 1) left_ms = 1;
    redisContext *ctx = redisConnectWithTimeout(c->host, c->port, tv_ms(left_ms));
    if (!ctx) {
        snprintf(c->conn_err, sizeof c->conn_err, "cannot connect to Redis at %s: out of memory", c->where);
        return NULL;
    }
    if (ctx->err) {
        snprintf(c->conn_err, sizeof c->conn_err, "cannot connect to Redis at %s: %s", c->where, ctx->errstr);
        redisFree(ctx);
        return NULL;
    }
    c->ctx_timeout_ms = left_ms < c->timeout_ms ? left_ms : c->timeout_ms;
    redisSetTimeout(ctx, tv_ms(c->ctx_timeout_ms));
    RdCmd cmds[3];
    const char *what[3];
    int n = 0;
    char dbs[16];
    if (c->pass) {
        RdCmd *m = &cmds[n];
        m->argc = 0;
        cmd_add(m, "AUTH");
        if (c->user) cmd_add(m, c->user);
        cmd_add(m, c->pass);
        what[n++] = "login";
    }
    if (c->db) {
        snprintf(dbs, sizeof dbs, "%d", c->db);
        cmds[n].argc = 0;
        cmd_add(&cmds[n], "SELECT");
        cmd_add(&cmds[n], dbs);
        what[n++] = "database";
    }
    cmds[n].argc = 0;
    cmd_add(&cmds[n], "PING");
    what[n++] = "ping";
    for (int i = 0; i < n; i++) redisAppendCommandArgv(ctx, cmds[i].argc, cmds[i].argv, cmds[i].len);
    int ok = 1;
    for (int i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply(ctx, (void **)&r) != REDIS_OK || !r) {
            describe_io(c, ctx, "cannot connect to", c->conn_err, sizeof c->conn_err);
            ok = 0;
            break;
        }
        if (ok && r->type == REDIS_REPLY_ERROR) {
            if (strcmp(what[i], "login") == 0)
                snprintf(c->conn_err, sizeof c->conn_err, "Redis at %s refused the login: %.300s", c->where, r->str);
            else if (strcmp(what[i], "database") == 0)
                snprintf(c->conn_err, sizeof c->conn_err, "Redis at %s refused database %d: %.300s", c->where,
                         c->db, r->str);
            else if (strncmp(r->str, "NOAUTH", 6) == 0)
                snprintf(c->conn_err, sizeof c->conn_err, "Redis at %s wants a password: put it in redis.url "
                         "(redis://:PASSWORD@%s/%d)", c->where, c->where, c->db);
            else
                snprintf(c->conn_err, sizeof c->conn_err, "Redis at %s: %.300s", c->where, r->str);
            ok = 0;
        }
        freeReplyObject(r);
    }
    if (!ok) {
        redisFree(ctx);
        return NULL;
    }
    return ctx;
}

/* A live connection, or -1 (c->err set). Honours the backoff after a failed attempt. */
static int rd_ready(RedisConn *c, int64_t deadline)
{
    if (c->ctx) return 0;
    int64_t now = mono_ms();
    if (now < c->next_try_ms) {
        util_strlcpy(c->err, c->conn_err, sizeof c->err);
        return -1;
    }
    c->ctx = rd_open(c, (int)(deadline - now));
    if (!c->ctx) {
        util_strlcpy(c->err, c->conn_err, sizeof c->err);
        c->next_try_ms = mono_ms() + c->backoff_ms;
        c->backoff_ms = c->backoff_ms * 2 > RD_BACKOFF_MAX_MS ? RD_BACKOFF_MAX_MS : c->backoff_ms * 2;
        return -1;
    }
    if (c->had_conn) c->st.reconnects++;
    c->had_conn = 1;
    c->backoff_ms = RD_BACKOFF_FIRST_MS;
    c->next_try_ms = 0;
    return 0;
}

static void rd_drop(RedisConn *c)
{
    if (c->ctx) redisFree(c->ctx);
    c->ctx = NULL;
}

/* Send n commands in one round trip and read their n replies into out (caller frees each
 * with freeReplyObject; error replies are replies, for the caller to judge). 0, or -1 with
 * c->err set when the server could not be reached within the deadline. */
static int rd_pipeline(RedisConn *c, const RdCmd *cmds, size_t n, redisReply **out)
{
    int64_t deadline = mono_ms() + c->timeout_ms;
    for (int attempt = 0;; attempt++) {
        if (rd_ready(c, deadline) < 0) break;
        if (c->ctx_timeout_ms != c->timeout_ms && attempt == 0) {
            c->ctx_timeout_ms = c->timeout_ms;
            redisSetTimeout(c->ctx, tv_ms(c->timeout_ms));
        }
        for (size_t i = 0; i < n; i++) redisAppendCommandArgv(c->ctx, cmds[i].argc, (const char **)cmds[i].argv, cmds[i].len);
        size_t got = 0;
        while (got < n) {
            void *r = NULL;
            if (redisGetReply(c->ctx, &r) != REDIS_OK || !r) break;
            out[got++] = r;
        }
        if (got == n) return 0;
        for (size_t i = 0; i < got; i++) freeReplyObject(out[i]);
        int timed_out = io_timed_out(c->ctx);
        describe_io(c, c->ctx, "lost the connection to", c->err, sizeof c->err);
        rd_drop(c);
        /* A server that went away (restart, dropped idle connection) is usually back or
         * replaced: reconnect now and run again, once. A server that does not answer would only
         * make this call wait twice. */
        if (timed_out || attempt > 0 || mono_ms() >= deadline) {
            util_strlcpy(c->conn_err, c->err, sizeof c->conn_err);
            break;
        }
        c->next_try_ms = 0;
    }
    c->st.errors++;
    return -1;
}

static redisReply *rd_one(RedisConn *c, const RdCmd *m)
{
    redisReply *r = NULL;
    return rd_pipeline(c, m, 1, &r) == 0 ? r : NULL;
}

static ClusterConn *redis_connect(const char *url, char *err, size_t errlen)
{
    RedisConn *c = xcalloc(1, sizeof *c);
    c->base.impl = &cluster_impl_redis;
    c->prefix = xstrdup("gust:");
    c->timeout_ms = RD_DEFAULT_TIMEOUT_MS;
    c->backoff_ms = RD_BACKOFF_FIRST_MS;
    if (strncasecmp(url, "redis://", 8) != 0 || parse_url(c, url, err, errlen) < 0) {
        if (strncasecmp(url, "redis://", 8) != 0) snprintf(err, errlen, "redis.url: not a redis:// URL");
        cluster_impl_redis.close((ClusterConn *)c);
        return NULL;
    }
    /* hiredis 0.14 writes with write(2): a closed peer would kill the process with SIGPIPE. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL && !(sa.sa_flags & SA_SIGINFO))
        signal(SIGPIPE, SIG_IGN);
    c->ctx = rd_open(c, c->timeout_ms);
    if (!c->ctx) {
        snprintf(err, errlen, "%s", c->conn_err);
        cluster_impl_redis.close((ClusterConn *)c);
        return NULL;
    }
    c->had_conn = 1;
    return (ClusterConn *)c;
}

static void redis_close(ClusterConn *cc)
{
    RedisConn *c = (RedisConn *)cc;
    if (!c) return;
    rd_drop(c);
    free(c->host);
    free(c->user);
    if (c->pass) memset(c->pass, 0, strlen(c->pass));
    free(c->pass);
    free(c->prefix);
    free(c);
}

static int redis_set_prefix(ClusterConn *cc, const char *prefix)
{
    RedisConn *c = (RedisConn *)cc;
    rd_begin(c);
    if (!prefix || !*prefix) return rd_fail(c, "the key prefix must not be empty");
    free(c->prefix);
    c->prefix = xstrdup(prefix);
    return 0;
}

static int redis_ping(ClusterConn *cc)
{
    RedisConn *c = (RedisConn *)cc;
    rd_begin(c);
    RdCmd m = {0};
    cmd_add(&m, "PING");
    redisReply *r = rd_one(c, &m);
    if (!r) return -1;
    int rc = r->type == REDIS_REPLY_ERROR ? rd_fail_reply(c, r, "PING") : 0;
    freeReplyObject(r);
    return rc;
}

/* ---- keys and SCAN ------------------------------------------------------------------- */

static char *rd_key(RedisConn *c, const char *kind, const char *name)
{
    return xasprintf("%s%s:%s", c->prefix, kind, name);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The keys matching PREFIX kind:*, each once; *keys a new array of new strings. */
static int rd_scan(RedisConn *c, const char *kind, char ***keys, size_t *n)
{
    StrBuf pat = {0};
    for (const char *p = c->prefix; *p; p++) {
        if (strchr("*?[]\\", *p)) sb_appendc(&pat, '\\');
        sb_appendc(&pat, *p);
    }
    sb_printf(&pat, "%s:*", kind);
    char cursor[32] = "0";
    size_t cap = 0;
    *keys = NULL;
    *n = 0;
    int rc = 0;
    do {
        RdCmd m = {0};
        cmd_add(&m, "SCAN");
        cmd_add(&m, cursor);
        cmd_add(&m, "MATCH");
        cmd_add(&m, sb_str(&pat));
        cmd_add(&m, "COUNT");
        cmd_add(&m, RD_SCAN_COUNT);
        redisReply *r = rd_one(c, &m);
        if (!r) {
            rc = -1;
            break;
        }
        if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            rc = rd_fail_reply(c, r, "SCAN");
            freeReplyObject(r);
            break;
        }
        util_strlcpy(cursor, r->element[0]->str, sizeof cursor);
        redisReply *ks = r->element[1];
        for (size_t i = 0; i < ks->elements; i++) {
            if (ks->element[i]->type != REDIS_REPLY_STRING) continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 64;
                *keys = xrealloc(*keys, cap * sizeof **keys);
            }
            (*keys)[(*n)++] = xstrndup(ks->element[i]->str, ks->element[i]->len);
        }
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    sb_free(&pat);
    if (rc < 0) {
        for (size_t i = 0; i < *n; i++) free((*keys)[i]);
        free(*keys);
        *keys = NULL;
        *n = 0;
        return -1;
    }
    /* SCAN may return a key more than once: sort and drop repeats */
    if (*n) {
        qsort(*keys, *n, sizeof **keys, cmp_str);
        size_t w = 1;
        for (size_t i = 1; i < *n; i++) {
            if (strcmp((*keys)[i], (*keys)[w - 1]) == 0) free((*keys)[i]);
            else (*keys)[w++] = (*keys)[i];
        }
        *n = w;
    }
    return 0;
}

/* ---- workers --------------------------------------------------------------------------- */

static int redis_worker_beat(ClusterConn *cc, const WorkerInfo *w, int ttl_ms)
{
    RedisConn *c = (RedisConn *)cc;
    rd_begin(c);
    if (!w || !cluster_worker_id_ok(w->id))
        return rd_fail(c, "worker id must be 1-200 characters without spaces or control characters");
    if (ttl_ms <= 0) return rd_fail(c, "heartbeat TTL must be > 0 ms (got %d)", ttl_ms);
    char *key = rd_key(c, "worker", w->id);
    char pid[24], conc[24], started[24], beat[24], ttl[24];
    snprintf(pid, sizeof pid, "%d", w->pid);
    snprintf(conc, sizeof conc, "%d", w->concurrency);
    snprintf(started, sizeof started, "%lld", (long long)w->started_at);
    snprintf(beat, sizeof beat, "%lld", (long long)util_now_us());
    snprintf(ttl, sizeof ttl, "%d", ttl_ms);
    RdCmd cmds[4] = {{0}};
    cmd_add(&cmds[0], "MULTI");
    RdCmd *h = &cmds[1];
    cmd_add(h, "HSET");
    cmd_add(h, key);
    cmd_add(h, "host"), cmd_add(h, w->host ? w->host : "");
    cmd_add(h, "pid"), cmd_add(h, pid);
    cmd_add(h, "queues"), cmd_add(h, w->queues ? w->queues : "");
    cmd_add(h, "concurrency"), cmd_add(h, conc);
    cmd_add(h, "running"), cmd_add(h, w->running ? w->running : "");
    cmd_add(h, "version"), cmd_add(h, w->version ? w->version : "");
    cmd_add(h, "started_at"), cmd_add(h, started);
    cmd_add(h, "last_beat"), cmd_add(h, beat);
    cmd_add(&cmds[2], "PEXPIRE");
    cmd_add(&cmds[2], key);
    cmd_add(&cmds[2], ttl);
    cmd_add(&cmds[3], "EXEC");
    redisReply *r[4];
    int rc = rd_pipeline(c, cmds, 4, r);
    free(key);
    if (rc < 0) return -1;
    const redisReply *bad = NULL;
    for (int i = 0; i < 3 && !bad; i++)
        if (r[i]->type == REDIS_REPLY_ERROR) bad = r[i];
    if (!bad && r[3]->type != REDIS_REPLY_ARRAY) bad = r[3];
    for (size_t i = 0; !bad && i < r[3]->elements; i++)
        if (r[3]->element[i]->type == REDIS_REPLY_ERROR) bad = r[3]->element[i];
    if (bad) rc = rd_fail_reply(c, bad, "heartbeat");
    for (int i = 0; i < 4; i++) freeReplyObject(r[i]);
    return rc;
}

static int redis_worker_alive(ClusterConn *cc, const char *id)
{
    RedisConn *c = (RedisConn *)cc;
    rd_begin(c);
    if (!cluster_worker_id_ok(id))
        return rd_fail(c, "worker id must be 1-200 characters without spaces or control characters");
    char *key = rd_key(c, "worker", id);
    RdCmd m = {0};
    cmd_add(&m, "EXISTS");
    cmd_add(&m, key);
    redisReply *r = rd_one(c, &m);
    free(key);
    if (!r) return -1;
    int rc = r->type == REDIS_REPLY_INTEGER ? r->integer > 0 : rd_fail_reply(c, r, "EXISTS");
    freeReplyObject(r);
    return rc;
}

/* Fill w from an HGETALL reply; 0 if it is empty (the key expired meanwhile). */
static int worker_from_hash(WorkerInfo *w, const char *id, const redisReply *r)
{
    memset(w, 0, sizeof *w);
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return 0;
    w->id = xstrdup(id);
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *f = r->element[i], *v = r->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) continue;
        const char *s = v->str;
        if (strcmp(f->str, "host") == 0) free(w->host), w->host = xstrdup(s);
        else if (strcmp(f->str, "pid") == 0) w->pid = atoi(s);
        else if (strcmp(f->str, "queues") == 0) free(w->queues), w->queues = xstrdup(s);
        else if (strcmp(f->str, "concurrency") == 0) w->concurrency = atoi(s);
        else if (strcmp(f->str, "running") == 0) free(w->running), w->running = xstrdup(s);
        else if (strcmp(f->str, "version") == 0) free(w->version), w->version = xstrdup(s);
        else if (strcmp(f->str, "started_at") == 0) w->started_at = strtoll(s, NULL, 10);
        else if (strcmp(f->str, "last_beat") == 0) w->last_beat = strtoll(s, NULL, 10);
    }
    if (!w->host) w->host = xstrdup("");
    if (!w->queues) w->queues = xstrdup("");
    if (!w->running) w->running = xstrdup("");
    if (!w->version) w->version = xstrdup("");
    return 1;
}

static int redis_worker_get(ClusterConn *cc, const char *id, WorkerInfo *out)
{
    RedisConn *c = (RedisConn *)cc;
    rd_begin(c);
    memset(out, 0, sizeof *out);
    if (!cluster_worker_id_ok(id))
        return rd_fail(c, "worker id must be 1-200 characters without spaces or control characters");
    char *key = rd_key(c, "worker", id);
    RdCmd m = {0};
    cmd_add(&m, "HGETALL");
    cmd_add(&m, key);
    redisReply *r = rd_one(c, &m);
    free(key);
    if (!r) return -1;
    int rc = r->type == REDIS_REPLY_ARRAY ? worker_from_hash(out, id, r) : rd_fail_reply(c, r, "HGETALL");
    freeReplyObject(r);
    return rc;
}

static int cmp_worker(const void *a, const void *b)
{
    return strcmp(((const WorkerInfo *)a)->id, ((const WorkerInfo *)b)->id);
}

static void free_keys(char **keys, size_t n)
{
    for (size_t i = 0; i < n; i++) free(keys[i]);
    free(keys);
}

/* One command per key ("HGETALL key" or "GET key"), pipelined in batches; each reply is handed
 * to take(). 0 or -1. */
static int rd_read_each(RedisConn *c, const char *verb, char **keys, size_t n,
                        void (*take)(void *ctx, const char *key, const redisReply *r), void *tctx)
{
    RdCmd *cmds = xcalloc(RD_BATCH, sizeof *cmds);
    redisReply **rs = xcalloc(RD_BATCH, sizeof *rs);
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0; off += RD_BATCH) {
        size_t m = n - off < RD_BATCH ? n - off : RD_BATCH;
        for (size_t i = 0; i < m; i++) {
            cmds[i].argc = 0;
            cmd_add(&cmds[i], verb);
            cmd_add(&cmds[i], keys[off + i]);
        }
        if (rd_pipeline(c, cmds, m, rs) < 0) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < m; i++) {
            take(tctx, keys[off + i], rs[i]);
            freeReplyObject(rs[i]);
        }
    }
    free(cmds);
    free(rs);
    return rc;
}

typedef struct WorkerAcc {
    WorkerInfo *v;
    size_t n, cap, plen;
} WorkerAcc;

static void take_worker(void *ctx, const char *key, const redisReply *r)
{
    WorkerAcc *a = ctx;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = xrealloc(a->v, a->cap * sizeof *a->v);
    }
    if (worker_from_hash(&a->v[a->n], key + a->plen, r)) a->n++;
}

static int redis_workers_list(ClusterConn *cc, WorkerInfo **out, size_t *n)
{
    RedisConn *c = (RedisConn *)cc;
    rd_begin(c);
    *out = NULL;
    *n = 0;
    char **keys;
    size_t nk;
    if (rd_scan(c, "worker", &keys, &nk) < 0) return -1;
    WorkerAcc a = {NULL, 0, 0, strlen(c->prefix) + strlen("worker:")};
    int rc = rd_read_each(c, "HGETALL", keys, nk, take_worker, &a);
    free_keys(keys, nk);
    if (rc < 0) {
        cluster_workers_free(a.v, a.n);
        return -1;
    }
    if (a.n) qsort(a.v, a.n, sizeof *a.v, cmp_worker);
    else free(a.v), a.v = NULL;
    *out = a.v;
    *n = a.n;
    return 0;
}

static int redis_worker_gone(ClusterConn *cc, const char *id)
{
    RedisConn *c = (RedisConn *)cc;
    rd_begin(c);
    if (!cluster_worker_id_ok(id))
        return rd_fail(c, "worker id must be 1-200 characters without spaces or control characters");
    char *key = rd_key(c, "worker", id);
    RdCmd m = {0};
    cmd_add(&m, "DEL");
    cmd_add(&m, key);
    redisReply *r = rd_one(c, &m);
    free(key);
    if (!r) return -1;
    int rc = r->type == REDIS_REPLY_INTEGER ? 0 : rd_fail_reply(c, r, "DEL");
    freeReplyObject(r);
    return rc;
}

/* ---- rate limits ------------------------------------------------------------------------ */

static int rd_load_script(RedisConn *c)
{
    RdCmd m = {0};
    cmd_add(&m, "SCRIPT");
    cmd_add(&m, "LOAD");
    cmd_add(&m, GCRA_LUA);
    redisReply *r = rd_one(c, &m);
    if (!r) return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_STRING && r->len == 40) {
        memcpy(c->sha, r->str, 41);
        c->st.script_loads++;
    } else {
        rc = rd_fail_reply(c, r, "SCRIPT LOAD");
    }
    freeReplyObject(r);
    return rc;
}

static int redis_rate_acquire(ClusterConn *cc, const char *key, double rate_per_s, int burst, int64_t *retry_after_us)
{
    RedisConn *c = (RedisConn *)cc;
    rd_begin(c);
    if (retry_after_us) *retry_after_us = 0;
    if (cluster_check_rate_args(key, rate_per_s, burst, c->err, sizeof c->err) < 0) {
        c->st.errors++;
        return -1;
    }
    if (!c->sha[0] && rd_load_script(c) < 0) return -1;
    char *k = rd_key(c, "rl", key);
    char T[24], b[24];
    snprintf(T, sizeof T, "%lld", (long long)cluster_gcra_interval_us(rate_per_s));
    snprintf(b, sizeof b, "%d", burst);
    redisReply *r = NULL;
    for (int attempt = 0; attempt < 2; attempt++) {
        RdCmd m = {0};
        cmd_add(&m, "EVALSHA");
        cmd_add(&m, c->sha);
        cmd_add(&m, "1");
        cmd_add(&m, k);
        cmd_add(&m, T);
        cmd_add(&m, b);
        r = rd_one(c, &m);
        if (!r) break;
        /* The server lost its scripts (restart, SCRIPT FLUSH, failover): load it again. */
        if (attempt == 0 && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
            freeReplyObject(r);
            r = NULL;
            c->sha[0] = 0;
            if (rd_load_script(c) < 0) break;
            continue;
        }
        break;
    }
    free(k);
    if (!r) return -1;
    int rc;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[0]->type == REDIS_REPLY_INTEGER &&
        r->element[1]->type == REDIS_REPLY_INTEGER) {
        rc = r->element[0]->integer ? 1 : 0;
        if (retry_after_us && !rc) *retry_after_us = r->element[1]->integer;
    } else {
        rc = rd_fail_reply(c, r, "rate limit script");
    }
    freeReplyObject(r);
    return rc;
}

static int redis_ratelimit_set(ClusterConn *cc, const char *name, const char *text)
{
    RedisConn *c = (RedisConn *)cc;
    rd_begin(c);
    if (!cluster_ratelimit_name_ok(name))
        return rd_fail(c, "rate limit name '%.64s' is not valid: use 1-128 of A-Z a-z 0-9 _ . : -", name ? name : "");
    if (cluster_rate_parse(text, NULL, NULL, c->err, sizeof c->err) < 0) {
        c->st.errors++;
        return -1;
    }
    char *k = rd_key(c, "rldef", name), *t = cluster_trim_dup(text);
    RdCmd m = {0};
    cmd_add(&m, "SET");
    cmd_add(&m, k);
    cmd_add(&m, t);
    redisReply *r = rd_one(c, &m);
    free(k);
    free(t);
    if (!r) return -1;
    int rc = r->type == REDIS_REPLY_STATUS ? 0 : rd_fail_reply(c, r, "SET");
    freeReplyObject(r);
    return rc;
}

static int redis_ratelimit_get(ClusterConn *cc, const char *name, char **text)
{
    RedisConn *c = (RedisConn *)cc;
    rd_begin(c);
    *text = NULL;
    if (!cluster_ratelimit_name_ok(name))
        return rd_fail(c, "rate limit name '%.64s' is not valid: use 1-128 of A-Z a-z 0-9 _ . : -", name ? name : "");
    char *k = rd_key(c, "rldef", name);
    RdCmd m = {0};
    cmd_add(&m, "GET");
    cmd_add(&m, k);
    redisReply *r = rd_one(c, &m);
    free(k);
    if (!r) return -1;
    int rc;
    if (r->type == REDIS_REPLY_STRING) {
        *text = xstrndup(r->str, r->len);
        rc = 1;
    } else {
        rc = r->type == REDIS_REPLY_NIL ? 0 : rd_fail_reply(c, r, "GET");
    }
    freeReplyObject(r);
    return rc;
}

static int redis_ratelimit_delete(ClusterConn *cc, const char *name)
{
    RedisConn *c = (RedisConn *)cc;
    rd_begin(c);
    if (!cluster_ratelimit_name_ok(name))
        return rd_fail(c, "rate limit name '%.64s' is not valid: use 1-128 of A-Z a-z 0-9 _ . : -", name ? name : "");
    char *k = rd_key(c, "rldef", name);
    RdCmd m = {0};
    cmd_add(&m, "DEL");
    cmd_add(&m, k);
    redisReply *r = rd_one(c, &m);
    free(k);
    if (!r) return -1;
    int rc = r->type == REDIS_REPLY_INTEGER ? r->integer > 0 : rd_fail_reply(c, r, "DEL");
    freeReplyObject(r);
    return rc;
}

typedef struct LimitAcc {
    ClusterRateLimit *v;
    size_t n, cap, plen;
} LimitAcc;

static void take_limit(void *ctx, const char *key, const redisReply *r)
{
    LimitAcc *a = ctx;
    double ps;
    int burst;
    if (r->type != REDIS_REPLY_STRING || cluster_rate_parse(r->str, &ps, &burst, NULL, 0) < 0) return;
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = xrealloc(a->v, a->cap * sizeof *a->v);
    }
    ClusterRateLimit *l = &a->v[a->n++];
    l->name = xstrdup(key + a->plen);
    l->text = xstrndup(r->str, r->len);
    l->per_s = ps;
    l->burst = burst;
}

static int cmp_limit(const void *a, const void *b)
{
    return strcmp(((const ClusterRateLimit *)a)->name, ((const ClusterRateLimit *)b)->name);
}

static int redis_ratelimit_list(ClusterConn *cc, ClusterRateLimit **out, size_t *n)
{
    RedisConn *c = (RedisConn *)cc;
    rd_begin(c);
    *out = NULL;
    *n = 0;
    char **keys;
    size_t nk;
    if (rd_scan(c, "rldef", &keys, &nk) < 0) return -1;
    LimitAcc a = {NULL, 0, 0, strlen(c->prefix) + strlen("rldef:")};
    int rc = rd_read_each(c, "GET", keys, nk, take_limit, &a);
    free_keys(keys, nk);
    if (rc < 0) {
        cluster_ratelimits_free(a.v, a.n);
        return -1;
    }
    if (a.n) qsort(a.v, a.n, sizeof *a.v, cmp_limit);
    *out = a.v;
    *n = a.n;
    return 0;
}

static const char *redis_last_error(ClusterConn *cc) { return ((RedisConn *)cc)->err; }
static void redis_stats(ClusterConn *cc, ClusterStats *out) { *out = ((RedisConn *)cc)->st; }

const ClusterImpl cluster_impl_redis = {
    .name = "redis",
    .connect = redis_connect,
    .close = redis_close,
    .set_prefix = redis_set_prefix,
    .ping = redis_ping,
    .worker_beat = redis_worker_beat,
    .worker_alive = redis_worker_alive,
    .worker_get = redis_worker_get,
    .workers_list = redis_workers_list,
    .worker_gone = redis_worker_gone,
    .rate_acquire = redis_rate_acquire,
    .ratelimit_set = redis_ratelimit_set,
    .ratelimit_get = redis_ratelimit_get,
    .ratelimit_delete = redis_ratelimit_delete,
    .ratelimit_list = redis_ratelimit_list,
    .last_error = redis_last_error,
    .stats = redis_stats,
};
