/* cluster — the state gust's daemons share outside the store: worker heartbeats and global
 * rate limits (DESIGN.md, "Cluster state in Redis").
 *
 * Two implementations sit behind this one interface: `redis` (hiredis 0.14, the distributed
 * deployment) and `local` (in process, for `gust standalone` and tests: a process-wide registry
 * behind a mutex). They keep the same keys and give the same answers to the same calls, TTL
 * expiry included; only the clock differs (Redis `TIME` versus this process's clock).
 *
 * Keys (PREFIX is "gust:" unless the URL's ?prefix= or cluster_set_prefix() says otherwise):
 *   PREFIX worker:<id>   a hash per live worker, with a TTL: liveness = the key exists
 *   PREFIX rl:<key>      a rate limit's state (GCRA "theoretical arrival time", µs), with a TTL
 *   PREFIX rldef:<name>  a named limit's definition, the text given to ratelimit_set ("100/m")
 *
 * Failures: every call returns -1 (or NULL) with a one-line human message in cluster_error(),
 * naming the Redis server when it is the server's fault ("cannot connect to Redis at
 * 127.0.0.1:6379: Connection refused"). Each Redis call has a deadline (2 s by default, URL
 * option ?timeout_ms=). A call that finds the connection dead reconnects at once and runs
 * again, once; when the server stays unreachable, the following calls fail at once until a
 * backoff (100 ms doubling to 2 s) has passed, then try to reconnect. Callers decide what an
 * error means: the zombie sweep declares no zombies, a rate-limited task waits (fails closed).
 *
 * Like the store's drivers, it is a struct of function pointers plus inline wrappers, so callers
 * never see which implementation they hold. A ClusterConn is used by one thread at a time;
 * give each thread its own (they are cheap; the local ones share one registry). */
#ifndef GUST_CLUSTER_H
#define GUST_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

typedef struct ClusterConn ClusterConn; /* implementation-specific; starts with ClusterConnBase */

/* One worker's heartbeat. Every string is owned by the struct that holds it: worker_info_clear()
 * frees them (and zeroes the struct); cluster_worker_beat() only reads them. */
typedef struct WorkerInfo {
    char *id;           /* unique per worker process, e.g. "host-1:4242"; no spaces or control chars */
    char *host;         /* host name */
    int pid;
    char *queues;       /* queue names, comma-separated: "default,io" */
    int concurrency;    /* slots */
    char *running;      /* ids of the task instances running now, comma-separated; "" or NULL if idle */
    char *version;      /* gust's version */
    int64_t started_at; /* µs since the epoch (UTC) */
    int64_t last_beat;  /* µs since the epoch: set by worker_beat to the time of the beat
                           (the caller's value is ignored); read back by list/get */
} WorkerInfo;

/* A named rate limit, as listed. Owned strings; cluster_ratelimits_free() frees an array. */
typedef struct ClusterRateLimit {
    char *name;
    char *text;    /* as stored: "100/m", "5/s:10" */
    double per_s;  /* parsed from text */
    int burst;
} ClusterRateLimit;

/* Counters of one connection, for logs and /metrics. */
typedef struct ClusterStats {
    uint64_t calls;         /* API calls made */
    uint64_t errors;        /* calls that returned -1 */
    uint64_t reconnects;    /* successful reconnects after a lost connection */
    uint64_t script_loads;  /* SCRIPT LOADs (the first use, then one after each NOSCRIPT) */
} ClusterStats;

typedef struct ClusterImpl {
    const char *name; /* "redis" or "local" */
    /* url: redis://[[user]:pass@]host[:port][/db][?prefix=P&timeout_ms=N] or local://[name]
     * ("" = local://). NULL on failure with a one-line message in err: a bad URL, or a Redis
     * server that cannot be reached or refuses the password (the message names host:port and
     * never repeats the password). Connecting to Redis makes the process ignore SIGPIPE if it
     * has no handler for it (hiredis 0.14 writes with write(2)). */
    ClusterConn *(*connect)(const char *url, char *err, size_t errlen);
    void (*close)(ClusterConn *c);
    /* Replace the key prefix ("gust:" by default; e.g. "gust:test:4242:"). 0, or -1 if empty. */
    int (*set_prefix)(ClusterConn *c, const char *prefix);
    /* 0 if the server answers, -1 otherwise. */
    int (*ping)(ClusterConn *c);

    /* --- worker heartbeats --- */
    /* Write w's hash and set its TTL, in one atomic round trip (MULTI/HSET/PEXPIRE/EXEC, so a
     * dead connection never leaves a key without a TTL). ttl_ms > 0. 0 ok, -1 error. */
    int (*worker_beat)(ClusterConn *c, const WorkerInfo *w, int ttl_ms);
    /* 1 alive (its key exists), 0 gone or expired, -1 error (cannot tell: declare no zombies). */
    int (*worker_alive)(ClusterConn *c, const char *id);
    /* One worker: 1 found (*out filled; worker_info_clear it), 0 not found, -1 error. */
    int (*worker_get)(ClusterConn *c, const char *id, WorkerInfo *out);
    /* Every live worker (SCAN, never KEYS), sorted by id. *out is a new array of *n entries
     * (NULL when 0); free it with cluster_workers_free(). 0 ok, -1 error. */
    int (*workers_list)(ClusterConn *c, WorkerInfo **out, size_t *n);
    /* On clean shutdown: delete the key. 0 ok (also when it was already gone), -1 error. */
    int (*worker_gone)(ClusterConn *c, const char *id);

    /* --- rate limits --- */
    /* GCRA: one request against limit `key` (any non-empty string; the Redis key is
     * PREFIX rl:<key>) at rate_per_s with a burst of `burst` (>= 1) requests. From idle, `burst`
     * requests pass at once; after that one passes every 1/rate_per_s seconds. 1 allowed
     * (*retry_after_us = 0), 0 limited (*retry_after_us = µs until one would pass), -1 error
     * (*retry_after_us = 0). retry_after_us may be NULL. Redis: one atomic Lua script on the
     * server's TIME, called with EVALSHA (SCRIPT LOAD on first use and after NOSCRIPT). A call
     * whose reply was lost to a dead connection is sent again, so it may count twice: the
     * limit errs on the strict side. */
    int (*rate_acquire)(ClusterConn *c, const char *key, double rate_per_s, int burst, int64_t *retry_after_us);
    /* Named limits. Names: 1-128 of [A-Za-z0-9_.:-]. set validates text with cluster_rate_parse
     * and stores it trimmed: 0 ok, -1 error. get: 1 found (*text is a new string, caller frees),
     * 0 not found, -1 error. delete: 1 deleted, 0 there was none, -1 error. list: sorted by
     * name, *out a new array (NULL when 0) for cluster_ratelimits_free(); a stored definition
     * that no longer parses is skipped. */
    int (*ratelimit_set)(ClusterConn *c, const char *name, const char *text);
    int (*ratelimit_get)(ClusterConn *c, const char *name, char **text);
    int (*ratelimit_delete)(ClusterConn *c, const char *name);
    int (*ratelimit_list)(ClusterConn *c, ClusterRateLimit **out, size_t *n);

    const char *(*last_error)(ClusterConn *c); /* the last failure's message, "" if none */
    void (*stats)(ClusterConn *c, ClusterStats *out);
} ClusterImpl;

/* Every ClusterConn starts with this, so the wrappers below find the implementation. */
typedef struct ClusterConnBase {
    const ClusterImpl *impl;
} ClusterConnBase;

extern const ClusterImpl cluster_impl_redis;
extern const ClusterImpl cluster_impl_local;

/* The implementation a URL names: redis:// → redis; "", NULL or local://... → local; else NULL. */
const ClusterImpl *cluster_impl_for_url(const char *url);
/* Connect with the implementation the URL names; NULL + err on failure. */
ClusterConn *cluster_connect(const char *url, char *err, size_t errlen);

/* Parse a rate limit as Celery and Airflow users write it: "RATE/UNIT[:BURST]".
 *   RATE   a number > 0, decimals allowed: "2.5/s"
 *   UNIT   s|sec|second(s), m|min|minute(s), h|hr|hour(s), d|day(s); no unit ("100") = per second,
 *          as in Celery
 *   BURST  requests allowed at once from idle, an integer >= 1 (default 1: "30/m" passes one
 *          request, then one every 2 s); "10/m:5" passes 5 at once, then one every 6 s
 * Spaces around the parts are allowed. 0 ok (*per_s, *burst set; either may be NULL), -1 with a
 * one-line message in err ("rate limit 'ten/m': RATE must be a number > 0, as in 10/m"). */
int cluster_rate_parse(const char *text, double *per_s, int *burst, char *err, size_t errlen);

/* 1 if name is a valid limit name (see ratelimit_set), else 0. */
int cluster_ratelimit_name_ok(const char *name);

/* 1 if id is a valid worker id: 1-200 bytes, no spaces or control characters. */
int cluster_worker_id_ok(const char *id);

void worker_info_clear(WorkerInfo *w);                 /* frees the strings; w itself is the caller's */
void cluster_workers_free(WorkerInfo *w, size_t n);    /* an array from workers_list */
void cluster_ratelimits_free(ClusterRateLimit *r, size_t n);

/* --- shared by the implementations (defined in cluster/local.c) --- */
/* GCRA's emission interval for a rate: 1e6 / rate_per_s µs, rounded, at least 1. */
int64_t cluster_gcra_interval_us(double rate_per_s);
/* Check rate_acquire's arguments: 0 ok, -1 with a message in err. */
int cluster_check_rate_args(const char *key, double rate_per_s, int burst, char *err, size_t errlen);
/* A new copy of s without leading and trailing white space. */
char *cluster_trim_dup(const char *s);

static inline const ClusterImpl *cluster_impl(ClusterConn *c) { return ((ClusterConnBase *)c)->impl; }
static inline void cluster_close(ClusterConn *c) { if (c) cluster_impl(c)->close(c); }
static inline int cluster_set_prefix(ClusterConn *c, const char *prefix) { return cluster_impl(c)->set_prefix(c, prefix); }
static inline int cluster_ping(ClusterConn *c) { return cluster_impl(c)->ping(c); }
static inline int cluster_worker_beat(ClusterConn *c, const WorkerInfo *w, int ttl_ms)
{ return cluster_impl(c)->worker_beat(c, w, ttl_ms); }
static inline int cluster_worker_alive(ClusterConn *c, const char *id) { return cluster_impl(c)->worker_alive(c, id); }
static inline int cluster_worker_get(ClusterConn *c, const char *id, WorkerInfo *out)
{ return cluster_impl(c)->worker_get(c, id, out); }
static inline int cluster_workers_list(ClusterConn *c, WorkerInfo **out, size_t *n)
{ return cluster_impl(c)->workers_list(c, out, n); }
static inline int cluster_worker_gone(ClusterConn *c, const char *id) { return cluster_impl(c)->worker_gone(c, id); }
static inline int cluster_rate_acquire(ClusterConn *c, const char *key, double rate_per_s, int burst,
                                       int64_t *retry_after_us)
{ return cluster_impl(c)->rate_acquire(c, key, rate_per_s, burst, retry_after_us); }
static inline int cluster_ratelimit_set(ClusterConn *c, const char *name, const char *text)
{ return cluster_impl(c)->ratelimit_set(c, name, text); }
static inline int cluster_ratelimit_get(ClusterConn *c, const char *name, char **text)
{ return cluster_impl(c)->ratelimit_get(c, name, text); }
static inline int cluster_ratelimit_delete(ClusterConn *c, const char *name)
{ return cluster_impl(c)->ratelimit_delete(c, name); }
static inline int cluster_ratelimit_list(ClusterConn *c, ClusterRateLimit **out, size_t *n)
{ return cluster_impl(c)->ratelimit_list(c, out, n); }
static inline const char *cluster_error(ClusterConn *c) { return cluster_impl(c)->last_error(c); }
static inline void cluster_stats(ClusterConn *c, ClusterStats *out) { cluster_impl(c)->stats(c, out); }

#endif
