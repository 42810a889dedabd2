/* local — the in-process cluster state of `gust standalone` and of tests (see cluster.h), plus
 * what both implementations share: choosing one by URL, parsing rate limits, checking names.
 *
 * A process-wide registry per URL name (local:// is one registry; local://x another) holds the
 * same keys Redis would, behind one mutex: worker hashes, GCRA arrival times and named-limit
 * texts, each with an expiry on CLOCK_MONOTONIC. An expired entry counts as absent the moment
 * its time passes (as in Redis) and is freed when next met or by a sweep every LOCAL_SWEEP_EVERY
 * writes, so limits on many keys do not pile up. Registries live as long as the process:
 * connections of other threads may still hold them. */
#include "cluster/cluster.h"

#include "core/util.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LOCAL_BUCKETS 1024
#define LOCAL_SWEEP_EVERY 4096
#define RATE_MAX_PER_S 1e6                 /* the interval must stay >= 1 µs */
#define RATE_MIN_PER_S (1.0 / (100 * 86400.0)) /* one per 100 days */
#define BURST_MAX 100000

/* ---- shared helpers ------------------------------------------------------------------ */

const ClusterImpl *cluster_impl_for_url(const char *url)
{
    if (!url || !*url || strncasecmp(url, "local://", 8) == 0) return &cluster_impl_local;
    if (strncasecmp(url, "redis://", 8) == 0) return &cluster_impl_redis;
    return NULL;
}

ClusterConn *cluster_connect(const char *url, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) err = dummy, errlen = sizeof dummy;
    const ClusterImpl *impl = cluster_impl_for_url(url);
    if (impl) return impl->connect(url ? url : "", err, errlen);
    const char *sep = strstr(url, "://");
    if (strncasecmp(url, "rediss://", 9) == 0)
        snprintf(err, errlen, "redis.url: rediss:// (TLS) is not supported: hiredis 0.14 has no TLS; "
                 "use redis:// on a trusted network or a TLS tunnel");
    else if (sep)
        snprintf(err, errlen, "redis.url: unsupported scheme '%.*s://': use redis://[:pass@]host:port/db, "
                 "or leave it empty for in-process state", (int)(sep - url > 32 ? 32 : sep - url), url);
    else
        snprintf(err, errlen, "redis.url has no scheme: use redis://[:pass@]host:port/db, or leave it "
                 "empty for in-process state");
    return NULL;
}

char *cluster_trim_dup(const char *s)
{
    if (!s) return xstrdup("");
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) n--;
    return xstrndup(s, n);
}

int cluster_worker_id_ok(const char *id)
{
    if (!id || !*id || strlen(id) > 200) return 0;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        if (*p <= ' ' || *p == 0x7f) return 0;
    return 1;
}

int cluster_ratelimit_name_ok(const char *name)
{
    if (!name || !*name || strlen(name) > 128) return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_.:-", *p)) return 0;
    return 1;
}

int64_t cluster_gcra_interval_us(double rate_per_s)
{
    double t = floor(1e6 / rate_per_s + 0.5);
    return t < 1 ? 1 : (int64_t)t;
}

int cluster_check_rate_args(const char *key, double rate_per_s, int burst, char *err, size_t errlen)
{
    if (!key || !*key || strlen(key) > 512) {
        snprintf(err, errlen, "rate limit key must be 1 to 512 bytes");
        return -1;
    }
    if (!(rate_per_s >= RATE_MIN_PER_S && rate_per_s <= RATE_MAX_PER_S)) {
        snprintf(err, errlen, "rate limit '%.64s': rate %g/s is out of range (one per 100 days to 1000000/s)",
                 key, rate_per_s);
        return -1;
    }
    if (burst < 1 || burst > BURST_MAX) {
        snprintf(err, errlen, "rate limit '%.64s': burst %d is out of range (1 to %d)", key, burst, BURST_MAX);
        return -1;
    }
    return 0;
}

/* [0-9]+(.[0-9]*)? or .[0-9]+, the whole of s. */
static int plain_number(const char *s, size_t n)
{
    size_t digits = 0, dots = 0;
    for (size_t i = 0; i < n; i++) {
        if (isdigit((unsigned char)s[i])) digits++;
        else if (s[i] == '.' && !dots) dots++;
        else return 0;
    }
    return digits > 0;
}

static void trim_span(const char **s, size_t *n)
{
    while (*n && isspace((unsigned char)**s)) (*s)++, (*n)--;
    while (*n && isspace((unsigned char)(*s)[*n - 1])) (*n)--;
}

int cluster_rate_parse(const char *text, double *per_s, int *burst, char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) err = dummy, errlen = sizeof dummy;
    static const char usage[] = "write RATE/UNIT[:BURST] such as 10/m, 100/h, 5/s, 2.5/s or 10/m:5 "
                                "(units s, m, h, d)";
    const char *s = text ? text : "";
    size_t n = strlen(s);
    trim_span(&s, &n);
    int shown = n > 64 ? 64 : (int)n;
    if (!n) {
        snprintf(err, errlen, "rate limit is empty: %s", usage);
        return -1;
    }
    /* split off :BURST, then /UNIT */
    const char *colon = memchr(s, ':', n);
    size_t head = colon ? (size_t)(colon - s) : n;
    long b = 1;
    if (colon) {
        const char *bs = colon + 1;
        size_t bn = n - head - 1;
        trim_span(&bs, &bn);
        int ok = bn > 0 && bn <= 7;
        for (size_t i = 0; ok && i < bn; i++) ok = isdigit((unsigned char)bs[i]) != 0;
        if (ok) b = strtol(bs, NULL, 10); /* stops at the first non-digit: the span is all digits */
        if (!ok || b < 1 || b > BURST_MAX) {
            snprintf(err, errlen, "rate limit '%.*s': BURST after ':' must be a whole number from 1 to %d, as in 10/m:5",
                     shown, s, BURST_MAX);
            return -1;
        }
    }
    const char *slash = memchr(s, '/', head);
    const char *rs = s, *us = NULL;
    size_t rn = slash ? (size_t)(slash - s) : head, un = 0;
    if (slash) us = slash + 1, un = head - rn - 1;
    trim_span(&rs, &rn);
    if (us) trim_span(&us, &un);
    if (!plain_number(rs, rn)) {
        snprintf(err, errlen, "rate limit '%.*s': RATE must be a number > 0; %s", shown, s, usage);
        return -1;
    }
    char num[64];
    if (rn >= sizeof num) {
        snprintf(err, errlen, "rate limit '%.*s': RATE is too long", shown, s);
        return -1;
    }
    memcpy(num, rs, rn);
    num[rn] = 0;
    double rate = strtod(num, NULL);
    double unit = 1;
    if (us) {
        static const struct { const char *name; double secs; } units[] = {
            {"s", 1}, {"sec", 1}, {"secs", 1}, {"second", 1}, {"seconds", 1},
            {"m", 60}, {"min", 60}, {"mins", 60}, {"minute", 60}, {"minutes", 60},
            {"h", 3600}, {"hr", 3600}, {"hrs", 3600}, {"hour", 3600}, {"hours", 3600},
            {"d", 86400}, {"day", 86400}, {"days", 86400},
        };
        size_t i;
        for (i = 0; i < GUST_ARRAY_LEN(units); i++)
            if (strlen(units[i].name) == un && strncasecmp(units[i].name, us, un) == 0) break;
        if (i == GUST_ARRAY_LEN(units)) {
            if (un)
                snprintf(err, errlen, "rate limit '%.*s': unknown unit '%.*s' (use s, m, h or d)", shown, s,
                         un > 16 ? 16 : (int)un, us);
            else
                snprintf(err, errlen, "rate limit '%.*s': missing unit after '/' (use s, m, h or d)", shown, s);
            return -1;
        }
        unit = units[i].secs;
    }
    if (!(rate > 0)) {
        snprintf(err, errlen, "rate limit '%.*s': the rate must be greater than 0", shown, s);
        return -1;
    }
    double ps = rate / unit;
    if (ps > RATE_MAX_PER_S || ps < RATE_MIN_PER_S) {
        snprintf(err, errlen, "rate limit '%.*s': out of range (from one per 100 days to 1000000/s)", shown, s);
        return -1;
    }
    if (per_s) *per_s = ps;
    if (burst) *burst = (int)b;
    return 0;
}

void worker_info_clear(WorkerInfo *w)
{
    if (!w) return;
    free(w->id);
    free(w->host);
    free(w->queues);
    free(w->running);
    free(w->version);
    memset(w, 0, sizeof *w);
}

void cluster_workers_free(WorkerInfo *w, size_t n)
{
    if (!w) return;
    for (size_t i = 0; i < n; i++) worker_info_clear(&w[i]);
    free(w);
}

void cluster_ratelimits_free(ClusterRateLimit *r, size_t n)
{
    if (!r) return;
    for (size_t i = 0; i < n; i++) {
        free(r[i].name);
        free(r[i].text);
    }
    free(r);
}

/* ---- the local registry ------------------------------------------------------------ */

typedef enum LocalKind { LK_WORKER, LK_TAT, LK_TEXT } LocalKind;

typedef struct LocalEntry {
    struct LocalEntry *next; /* in its bucket */
    char *key;               /* the full key, prefix included, as in Redis */
    LocalKind kind;
    int64_t expires_us;      /* CLOCK_MONOTONIC µs; 0 = never */
    WorkerInfo w;            /* LK_WORKER (w.id is the worker id) */
    int64_t tat_us;          /* LK_TAT: GCRA theoretical arrival time, monotonic µs */
    char *text;              /* LK_TEXT */
} LocalEntry;

typedef struct LocalRegistry {
    char name[128];
    pthread_mutex_t mu;
    LocalEntry *buckets[LOCAL_BUCKETS];
    unsigned writes;         /* since the last sweep */
    struct LocalRegistry *next;
} LocalRegistry;

typedef struct LocalConn {
    ClusterConnBase base;
    LocalRegistry *reg;
    char *prefix;
    ClusterStats st;
    char err[512];
} LocalConn;

static pthread_mutex_t registries_mu = PTHREAD_MUTEX_INITIALIZER;
static LocalRegistry *registries;

static LocalRegistry *registry_for(const char *name)
{
    pthread_mutex_lock(&registries_mu);
    LocalRegistry *r = registries;
    while (r && strcmp(r->name, name) != 0) r = r->next;
    if (!r) {
        r = xcalloc(1, sizeof *r);
        util_strlcpy(r->name, name, sizeof r->name);
        pthread_mutex_init(&r->mu, NULL);
        r->next = registries;
        registries = r;
    }
    pthread_mutex_unlock(&registries_mu);
    return r;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static unsigned key_hash(const char *s)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h % LOCAL_BUCKETS;
}

static void entry_free(LocalEntry *e)
{
    free(e->key);
    worker_info_clear(&e->w);
    free(e->text);
    free(e);
}

static int expired(const LocalEntry *e, int64_t now) { return e->expires_us && e->expires_us <= now; }

/* The live entry for key, or NULL; frees an expired one met on the way. Lock held. */
static LocalEntry *reg_find(LocalRegistry *r, const char *key, int64_t now)
{
    for (LocalEntry **pp = &r->buckets[key_hash(key)]; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) != 0) continue;
        LocalEntry *e = *pp;
        if (!expired(e, now)) return e;
        *pp = e->next;
        entry_free(e);
        return NULL;
    }
    return NULL;
}

static int reg_delete(LocalRegistry *r, const char *key, int64_t now)
{
    for (LocalEntry **pp = &r->buckets[key_hash(key)]; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->key, key) != 0) continue;
        LocalEntry *e = *pp;
        int live = !expired(e, now);
        *pp = e->next;
        entry_free(e);
        return live;
    }
    return 0;
}

static void reg_sweep(LocalRegistry *r, int64_t now)
{
    for (size_t b = 0; b < LOCAL_BUCKETS; b++)
        for (LocalEntry **pp = &r->buckets[b]; *pp;) {
            LocalEntry *e = *pp;
            if (expired(e, now)) {
                *pp = e->next;
                entry_free(e);
            } else {
                pp = &e->next;
            }
        }
    r->writes = 0;
}

/* The entry for key, made fresh (old contents freed) with the given kind. Lock held. */
static LocalEntry *reg_put(LocalRegistry *r, const char *key, LocalKind kind, int64_t now)
{
    if (++r->writes >= LOCAL_SWEEP_EVERY) reg_sweep(r, now);
    LocalEntry *e = reg_find(r, key, now);
    if (e) {
        worker_info_clear(&e->w);
        free(e->text);
        e->text = NULL;
        e->tat_us = 0;
        e->expires_us = 0;
    } else {
        e = xcalloc(1, sizeof *e);
        e->key = xstrdup(key);
        unsigned h = key_hash(key);
        e->next = r->buckets[h];
        r->buckets[h] = e;
    }
    e->kind = kind;
    return e;
}

static int lc_fail(LocalConn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lc_fail(LocalConn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    c->st.errors++;
    return -1;
}

static void lc_begin(LocalConn *c)
{
    c->st.calls++;
    c->err[0] = 0;
}

static char *lc_key(LocalConn *c, const char *kind, const char *name)
{
    return xasprintf("%s%s:%s", c->prefix, kind, name);
}

static ClusterConn *local_connect(const char *url, char *err, size_t errlen)
{
    const char *name = "";
    if (*url) {
        if (strncasecmp(url, "local://", 8) != 0) {
            snprintf(err, errlen, "redis.url: not a local:// URL");
            return NULL;
        }
        name = url + 8;
    }
    if (strlen(name) >= sizeof ((LocalRegistry *)0)->name) {
        snprintf(err, errlen, "redis.url: the local:// name is too long");
        return NULL;
    }
    LocalConn *c = xcalloc(1, sizeof *c);
    c->base.impl = &cluster_impl_local;
    c->reg = registry_for(name);
    c->prefix = xstrdup("gust:");
    return (ClusterConn *)c;
}

static void local_close(ClusterConn *cc)
{
    LocalConn *c = (LocalConn *)cc;
    if (!c) return;
    free(c->prefix);
    free(c);
}

static int local_set_prefix(ClusterConn *cc, const char *prefix)
{
    LocalConn *c = (LocalConn *)cc;
    lc_begin(c);
    if (!prefix || !*prefix) return lc_fail(c, "the key prefix must not be empty");
    free(c->prefix);
    c->prefix = xstrdup(prefix);
    return 0;
}

static int local_ping(ClusterConn *cc)
{
    lc_begin((LocalConn *)cc);
    return 0;
}

static void copy_worker(WorkerInfo *dst, const WorkerInfo *src)
{
    dst->id = xstrdup(src->id ? src->id : "");
    dst->host = xstrdup(src->host ? src->host : "");
    dst->pid = src->pid;
    dst->queues = xstrdup(src->queues ? src->queues : "");
    dst->concurrency = src->concurrency;
    dst->running = xstrdup(src->running ? src->running : "");
    dst->version = xstrdup(src->version ? src->version : "");
    dst->started_at = src->started_at;
    dst->last_beat = src->last_beat;
}

static int local_worker_beat(ClusterConn *cc, const WorkerInfo *w, int ttl_ms)
{
    LocalConn *c = (LocalConn *)cc;
    lc_begin(c);
    if (!w || !cluster_worker_id_ok(w->id))
        return lc_fail(c, "worker id must be 1-200 characters without spaces or control characters");
    if (ttl_ms <= 0) return lc_fail(c, "heartbeat TTL must be > 0 ms (got %d)", ttl_ms);
    char *key = lc_key(c, "worker", w->id);
    int64_t now = mono_us();
    pthread_mutex_lock(&c->reg->mu);
    LocalEntry *e = reg_put(c->reg, key, LK_WORKER, now);
    copy_worker(&e->w, w);
    e->w.last_beat = util_now_us();
    e->expires_us = now + (int64_t)ttl_ms * 1000;
    pthread_mutex_unlock(&c->reg->mu);
    free(key);
    return 0;
}

/* 1 found (*out filled if out), 0 not, -1 bad id. */
static int local_worker_lookup(LocalConn *c, const char *id, WorkerInfo *out)
{
    lc_begin(c);
    if (!cluster_worker_id_ok(id))
        return lc_fail(c, "worker id must be 1-200 characters without spaces or control characters");
    char *key = lc_key(c, "worker", id);
    pthread_mutex_lock(&c->reg->mu);
    LocalEntry *e = reg_find(c->reg, key, mono_us());
    int found = e && e->kind == LK_WORKER;
    if (found && out) copy_worker(out, &e->w);
    pthread_mutex_unlock(&c->reg->mu);
    free(key);
    return found;
}

static int local_worker_alive(ClusterConn *cc, const char *id)
{
    return local_worker_lookup((LocalConn *)cc, id, NULL);
}

static int local_worker_get(ClusterConn *cc, const char *id, WorkerInfo *out)
{
    if (out) memset(out, 0, sizeof *out);
    return local_worker_lookup((LocalConn *)cc, id, out);
}

static int cmp_worker(const void *a, const void *b)
{
    return strcmp(((const WorkerInfo *)a)->id, ((const WorkerInfo *)b)->id);
}

static int local_workers_list(ClusterConn *cc, WorkerInfo **out, size_t *n)
{
    LocalConn *c = (LocalConn *)cc;
    lc_begin(c);
    *out = NULL;
    *n = 0;
    char *pfx = lc_key(c, "worker", "");
    size_t plen = strlen(pfx), cap = 0;
    int64_t now = mono_us();
    pthread_mutex_lock(&c->reg->mu);
    for (size_t b = 0; b < LOCAL_BUCKETS; b++)
        for (LocalEntry *e = c->reg->buckets[b]; e; e = e->next) {
            if (e->kind != LK_WORKER || expired(e, now) || strncmp(e->key, pfx, plen) != 0) continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                *out = xrealloc(*out, cap * sizeof **out);
            }
            memset(&(*out)[*n], 0, sizeof **out);
            copy_worker(&(*out)[(*n)++], &e->w);
        }
    pthread_mutex_unlock(&c->reg->mu);
    free(pfx);
    if (*n) qsort(*out, *n, sizeof **out, cmp_worker);
    return 0;
}

static int local_worker_gone(ClusterConn *cc, const char *id)
{
    LocalConn *c = (LocalConn *)cc;
    lc_begin(c);
    if (!cluster_worker_id_ok(id))
        return lc_fail(c, "worker id must be 1-200 characters without spaces or control characters");
    char *key = lc_key(c, "worker", id);
    pthread_mutex_lock(&c->reg->mu);
    reg_delete(c->reg, key, mono_us());
    pthread_mutex_unlock(&c->reg->mu);
    free(key);
    return 0;
}

/* GCRA, step for step the Lua script in redis.c. */
static int local_rate_acquire(ClusterConn *cc, const char *key, double rate_per_s, int burst, int64_t *retry_after_us)
{
    LocalConn *c = (LocalConn *)cc;
    lc_begin(c);
    if (retry_after_us) *retry_after_us = 0;
    if (cluster_check_rate_args(key, rate_per_s, burst, c->err, sizeof c->err) < 0) {
        c->st.errors++;
        return -1;
    }
    int64_t T = cluster_gcra_interval_us(rate_per_s);
    char *k = lc_key(c, "rl", key);
    int allowed;
    pthread_mutex_lock(&c->reg->mu);
    int64_t now = mono_us();
    LocalEntry *e = reg_find(c->reg, k, now);
    int64_t tat = e && e->kind == LK_TAT ? e->tat_us : now;
    if (tat < now) tat = now;
    int64_t new_tat = tat + T;
    int64_t allow_at = new_tat - (int64_t)burst * T;
    if (now < allow_at) {
        allowed = 0;
        if (retry_after_us) *retry_after_us = allow_at - now;
    } else {
        allowed = 1;
        e = reg_put(c->reg, k, LK_TAT, now);
        e->tat_us = new_tat;
        e->expires_us = new_tat; /* from then on the state is the same as no state */
    }
    pthread_mutex_unlock(&c->reg->mu);
    free(k);
    return allowed;
}

static int local_ratelimit_set(ClusterConn *cc, const char *name, const char *text)
{
    LocalConn *c = (LocalConn *)cc;
    lc_begin(c);
    if (!cluster_ratelimit_name_ok(name))
        return lc_fail(c, "rate limit name '%.64s' is not valid: use 1-128 of A-Z a-z 0-9 _ . : -", name ? name : "");
    if (cluster_rate_parse(text, NULL, NULL, c->err, sizeof c->err) < 0) {
        c->st.errors++;
        return -1;
    }
    char *k = lc_key(c, "rldef", name);
    int64_t now = mono_us();
    pthread_mutex_lock(&c->reg->mu);
    LocalEntry *e = reg_put(c->reg, k, LK_TEXT, now);
    e->text = cluster_trim_dup(text);
    pthread_mutex_unlock(&c->reg->mu);
    free(k);
    return 0;
}

static int local_ratelimit_get(ClusterConn *cc, const char *name, char **text)
{
    LocalConn *c = (LocalConn *)cc;
    lc_begin(c);
    *text = NULL;
    if (!cluster_ratelimit_name_ok(name))
        return lc_fail(c, "rate limit name '%.64s' is not valid: use 1-128 of A-Z a-z 0-9 _ . : -", name ? name : "");
    char *k = lc_key(c, "rldef", name);
    pthread_mutex_lock(&c->reg->mu);
    LocalEntry *e = reg_find(c->reg, k, mono_us());
    if (e && e->kind == LK_TEXT) *text = xstrdup(e->text);
    pthread_mutex_unlock(&c->reg->mu);
    free(k);
    return *text != NULL;
}

static int local_ratelimit_delete(ClusterConn *cc, const char *name)
{
    LocalConn *c = (LocalConn *)cc;
    lc_begin(c);
    if (!cluster_ratelimit_name_ok(name))
        return lc_fail(c, "rate limit name '%.64s' is not valid: use 1-128 of A-Z a-z 0-9 _ . : -", name ? name : "");
    char *k = lc_key(c, "rldef", name);
    pthread_mutex_lock(&c->reg->mu);
    int deleted = reg_delete(c->reg, k, mono_us());
    pthread_mutex_unlock(&c->reg->mu);
    free(k);
    return deleted;
}

static int cmp_limit(const void *a, const void *b)
{
    return strcmp(((const ClusterRateLimit *)a)->name, ((const ClusterRateLimit *)b)->name);
}

static int local_ratelimit_list(ClusterConn *cc, ClusterRateLimit **out, size_t *n)
{
    LocalConn *c = (LocalConn *)cc;
    lc_begin(c);
    *out = NULL;
    *n = 0;
    char *pfx = lc_key(c, "rldef", "");
    size_t plen = strlen(pfx), cap = 0;
    int64_t now = mono_us();
    pthread_mutex_lock(&c->reg->mu);
    for (size_t b = 0; b < LOCAL_BUCKETS; b++)
        for (LocalEntry *e = c->reg->buckets[b]; e; e = e->next) {
            if (e->kind != LK_TEXT || expired(e, now) || strncmp(e->key, pfx, plen) != 0) continue;
            double ps;
            int burst;
            if (cluster_rate_parse(e->text, &ps, &burst, NULL, 0) < 0) continue;
            if (*n == cap) {
                cap = cap ? cap * 2 : 16;
                *out = xrealloc(*out, cap * sizeof **out);
            }
            ClusterRateLimit *r = &(*out)[(*n)++];
            r->name = xstrdup(e->key + plen);
            r->text = xstrdup(e->text);
            r->per_s = ps;
            r->burst = burst;
        }
    pthread_mutex_unlock(&c->reg->mu);
    free(pfx);
    if (*n) qsort(*out, *n, sizeof **out, cmp_limit);
    return 0;
}

static const char *local_last_error(ClusterConn *cc) { return ((LocalConn *)cc)->err; }
static void local_stats(ClusterConn *cc, ClusterStats *out) { *out = ((LocalConn *)cc)->st; }

const ClusterImpl cluster_impl_local = {
    .name = "local",
    .connect = local_connect,
    .close = local_close,
    .set_prefix = local_set_prefix,
    .ping = local_ping,
    .worker_beat = local_worker_beat,
    .worker_alive = local_worker_alive,
    .worker_get = local_worker_get,
    .workers_list = local_workers_list,
    .worker_gone = local_worker_gone,
    .rate_acquire = local_rate_acquire,
    .ratelimit_set = local_ratelimit_set,
    .ratelimit_get = local_ratelimit_get,
    .ratelimit_delete = local_ratelimit_delete,
    .ratelimit_list = local_ratelimit_list,
    .last_error = local_last_error,
    .stats = local_stats,
};
