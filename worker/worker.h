/* worker — runs task instances: a pool of threads that take messages from the broker,
 * claim the try in the store, run it, and record how it ended.
 *
 * The order of one delivery follows DESIGN.md's invariants: claim (a conditional update;
 * losing it means someone else has the try), ack at once (from now on the store and the
 * heartbeats own the try, so a task may run for hours), run, then one transaction for the
 * final state. Each thread is one slot: it consumes (prefetch 1) only while it is free and
 * stops consuming while it runs a try, so a busy worker never sits on work an idle one
 * could start. The same code runs inside
 * `gust standalone` and, later, `gust worker`. */
#ifndef GUST_WORKER_H
#define GUST_WORKER_H

#include <stdint.h>

#include "core/secret.h"
#include "store/dagcache.h"

typedef struct WorkerOptions {
    const char *store_url;     /* each thread opens its own connection */
    const char *broker_url;    /* and its own broker connection */
    const char *const *queues; /* queues consumed ("default") */
    size_t n_queues;
    int concurrency;           /* threads = slots */
    const char *hostname;
    const char *worker_id;     /* unique per process */
    const char *home;          /* logs under <home>/logs, per-try folders under <home>/work */
    const SecretKey *key;      /* decrypts connections for templates and operators */
    int64_t heartbeat_us;      /* how often running tries say they are alive */
    const char *cluster_url;   /* redis://… for the worker's heartbeat key and rate limits; NULL or
                                  "" or local://…: in process (standalone) */
    const char *version;       /* reported in the heartbeat */
    long rlimit_cpu_s, rlimit_as_mb, rlimit_nofile; /* -1: unchanged */
} WorkerOptions;

typedef struct WorkerPool WorkerPool;

WorkerPool *worker_pool_start(const WorkerOptions *opt, DagCache *cache, char *err, size_t errlen);
/* Stop taking work; let running tries finish for up to grace_us, then end them (their
 * tries count as failed attempts and are retried). */
void worker_pool_stop(WorkerPool *p, int64_t grace_us);
/* Tries started since the pool started (for tests and the status line). */
long worker_pool_tries(const WorkerPool *p);

/* How the pool follows one try. */
typedef struct TryControl {
    volatile int *cancel;        /* set to end the try (shutdown, or its state changed elsewhere) */
    void (*finishing)(void *ud); /* may be NULL: called once, just before the try's outcome is
                                    written (from then on a refused heartbeat is that write) */
    void *ud;
} TryControl;

/* One delivery, start to end, on the calling thread, without the rate gate (`gust dags test`
 * and `gust tasks test`). Returns 1 ran, 0 the claim was lost, -1 error. */
struct Store;
struct TryClaim;
struct ClusterConn;
int worker_run_try(struct Store *store, DagCache *cache, const WorkerOptions *opt, const char *ti_id,
                   int try_number, volatile int *cancel);
/* Claim a delivery (what each pool thread does first): one transaction that claims the try,
 * clears its XComs and reads the instance and its run into *claim. A task with a rate_limit
 * (known from the cache, without a read) passes the global rate gate first: over the limit,
 * the try goes back to the scheduler with next_attempt_at, unconsumed. 1 won (try_claim_clear
 * or run *claim), 0 lost (ack and drop: someone else has it), 2 deferred by the rate limit
 * (ack), -1 error (give the message back). */
int worker_claim(struct Store *store, DagCache *cache, struct ClusterConn *cluster, const WorkerOptions *opt,
                 const char *ti_id, int try_number, struct TryClaim *claim);
/* Run a won claim to its end (takes its rows) and record the outcome in one transaction with
 * the log's last chunk. 1 ran, -1 the outcome could not be recorded. */
int worker_run_claimed(struct Store *store, DagCache *cache, const WorkerOptions *opt, struct TryClaim *claim,
                       const TryControl *ctl);

#endif
