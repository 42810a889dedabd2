/* pool — the worker threads (see worker.h). Each thread owns a store connection and a
 * broker connection and is one slot: it consumes with prefetch 1 while idle and stops
 * consuming while it runs a try, so it holds a message only when it can start it. Two
 * heartbeat threads say, for every try running here, that it is alive: one in the store,
 * one in Redis (the worker's key, with its running ids). */
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker-adapters/broker.h"
#include "core/log.h"
#include "core/util.h"
#include "store/store.h"
#include "store/ti.h"
#include "store/tryops.h"
#include "worker/worker.h"
#include "cluster/cluster.h"

#define WORKER_THREAD_STACK (1024 * 1024) /* bytes of stack per pool thread */

typedef struct Slot {
    struct WorkerPool *pool;
    pthread_t thread;
    int index;
    char ti_id[33];          /* the try running in this slot ("" when idle), for heartbeats */
    int try_number;
    int finishing;           /* the try's outcome is being written: a refused heartbeat is that */
    volatile int cancel;     /* set at the end of the shutdown grace */
} Slot;

struct WorkerPool {
    WorkerOptions opt;
    DagCache *cache;
    Slot *slots;
    int n;
    volatile int stop;       /* stop taking work */
    volatile int stop_now;   /* the grace is over: end what runs */
    pthread_mutex_t mu;      /* guards the slots' ti_id/try_number/finishing */
    pthread_t heartbeat;      /* store heartbeats of the running tries */
    pthread_t cluster_beat;   /* the worker's key in Redis */
    long tries;
};

/* Called by the try just before it writes its outcome (TryControl.finishing). */
static void slot_finishing(void *ud)
{
    Slot *sl = ud;
    pthread_mutex_lock(&sl->pool->mu);
    sl->finishing = 1;
    pthread_mutex_unlock(&sl->pool->mu);
}

static void *slot_main(void *arg)
{
    Slot *sl = arg;
    WorkerPool *p = sl->pool;
    char err[512];
    Store *store = NULL;
    Broker *broker = NULL;
    ClusterConn *cluster = cluster_connect(p->opt.cluster_url ? p->opt.cluster_url : "", err, sizeof err);
    if (!cluster) log_warn("worker", "slot %d: %s: rate-limited tasks will wait", sl->index, err);
    long delay_ms = 100;
    while (!p->stop) {
        if (!store) store = store_open(p->opt.store_url, err, sizeof err);
        if (store && !broker) {
            broker = broker_connect(p->opt.broker_url, err, sizeof err);
            if (broker && broker_consume(broker, p->opt.queues, p->opt.n_queues, 1) != 0) {
                snprintf(err, sizeof err, "%s", broker_error(broker));
                broker_close(broker);
                broker = NULL;
            }
        }
        if (!store || !broker) {
            log_error("worker", "slot %d: %s (retrying in %ld ms)", sl->index, err, delay_ms);
            usleep((useconds_t)delay_ms * 1000);
            if (delay_ms < 5000) delay_ms *= 2;
            continue;
        }
        delay_ms = 100;
        BrokerMsg m;
        int got = broker_next(broker, 200, &m);
        if (got <= 0) continue;
        /* the claim, with the global rate gate first for a rate-limited task (over the limit:
         * back to the scheduler, unclaimed, and the message acked) */
        TryClaim claim;
        int won = worker_claim(store, p->cache, cluster, &p->opt, m.ti_id, m.try_number, &claim);
        if (won == 2) {
            broker_ack(broker, m.tag);
            continue;
        }
        /* invariant 4: ack once the claim is committed (or lost); from then on the store and
         * the heartbeats own the try, so a long task never holds a delivery */
        if (won < 0) {
            /* Fix: the store could not say (PostgreSQL down past the driver's retries): give the
             * message back instead of acking it, or the try would sit queued, unclaimed, until
             * scheduler.queued_timeout (10 min) republished it. A duplicate is harmless: the
             * claim is conditional. The pause keeps a store outage from spinning the message. */
            log_error("worker", "ti=%s try=%d: cannot claim: %s (message requeued)", m.ti_id, m.try_number,
                      store_last_error(store));
            broker_reject(broker, m.tag, 1);
            usleep(1000000);
            continue;
        }
        if (won == 0) {
            broker_ack(broker, m.tag);
            /* Fix: info, not debug: a dropped message (unknown instance, a try that already ran
             * or was republished) must leave a line in the worker's log */
            log_info("worker", "ti=%s try=%d: claim lost (%s): message dropped", m.ti_id, m.try_number,
                     store_last_error(store));
            continue;
        }
        /* Fix (invariant 4): the slot is busy until this try ends, so it stops consuming before
         * the ack. Its consumer used to stay open with prefetch 1: once the ack freed the
         * prefetch, RabbitMQ delivered the next message here, where it waited for the whole
         * task (an idle worker could have run it) and, past consumer_timeout, got the channel
         * closed. set_prefetch(0) cancels the consumer and requeues anything that arrived. */
        broker_set_prefetch(broker, 0);
        broker_ack(broker, m.tag);
        pthread_mutex_lock(&p->mu);
        util_strlcpy(sl->ti_id, m.ti_id, sizeof sl->ti_id);
        sl->try_number = m.try_number;
        sl->finishing = 0;
        sl->cancel = p->stop_now; /* a try that starts during the final stop is ended at once */
        pthread_mutex_unlock(&p->mu);
        __atomic_add_fetch(&p->tries, 1, __ATOMIC_RELAXED);
        TryControl ctl = {&sl->cancel, slot_finishing, sl};
        int rc = worker_run_claimed(store, p->cache, &p->opt, &claim, &ctl);
        if (rc < 0) log_error("worker", "ti=%s try=%d: %s", m.ti_id, m.try_number, store_last_error(store));
        pthread_mutex_lock(&p->mu);
        sl->ti_id[0] = '\0';
        sl->finishing = 0;
        pthread_mutex_unlock(&p->mu);
        if (!p->stop) broker_set_prefetch(broker, 1); /* free again: consume (see above) */
    }
    cluster_close(cluster);
    broker_close(broker);
    store_free(store);
    return NULL;
}

/* The tries running here, under the pool's lock. */
typedef struct Snapshot {
    int n, busy;
    char (*ids)[33];
    int *tries;
    StrBuf running; /* "id,id,..." */
} Snapshot;

static void snapshot_take(WorkerPool *p, Snapshot *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&p->mu);
    s->n = p->n;
    s->ids = xcalloc((size_t)s->n, sizeof *s->ids);
    s->tries = xcalloc((size_t)s->n, sizeof *s->tries);
    for (int i = 0; i < s->n; i++) {
        memcpy(s->ids[i], p->slots[i].ti_id, 33);
        s->tries[i] = p->slots[i].try_number;
        if (s->ids[i][0]) {
            s->busy = 1;
            sb_printf(&s->running, "%s%s", s->running.len ? "," : "", s->ids[i]);
        }
    }
    pthread_mutex_unlock(&p->mu);
}

static void snapshot_free(Snapshot *s)
{
    sb_free(&s->running);
    free(s->ids);
    free(s->tries);
}

static void beat_sleep(WorkerPool *p)
{
    for (int64_t slept = 0; slept < p->opt.heartbeat_us; slept += 100000) {
        usleep(100000);
        if (p->stop) break;
    }
}

/* Says, every heartbeat_us, that each try running here is alive (its row in the store). A
 * try whose heartbeat the store refuses was cleared or marked meanwhile: it is ended, as
 * Airflow's LocalTaskJob ends a task whose state was changed under it. */
static void *heartbeat_main(void *arg)
{
    WorkerPool *p = arg;
    char err[512];
    Store *store = NULL;
    for (int first = 1;; first = 0) {
        if (!first) beat_sleep(p);
        if (!store) store = store_open(p->opt.store_url, err, sizeof err);
        Snapshot sn;
        snapshot_take(p, &sn);
        for (int i = 0; store && i < sn.n; i++) {
            if (!sn.ids[i][0]) continue;
            if (store_ti_heartbeat(store, sn.ids[i], sn.tries[i]) == 0) {
                pthread_mutex_lock(&p->mu);
                /* Fix: a try that finished between the snapshot and this heartbeat was refused
                 * because it is no longer running: its own finish, not a change made
                 * elsewhere. The slot says so (finishing, set before the finish is written), so
                 * only a try still running when it was refused is ended. A finishing try is
                 * still beaten for: its finish may wait out a store outage. */
                if (strcmp(p->slots[i].ti_id, sn.ids[i]) == 0 && p->slots[i].try_number == sn.tries[i] &&
                    !p->slots[i].finishing) {
                    log_warn("worker", "ti=%s try=%d: its state was changed elsewhere (cleared or marked): ending it",
                             sn.ids[i], sn.tries[i]);
                    p->slots[i].cancel = 1;
                }
                pthread_mutex_unlock(&p->mu);
            }
        }
        int done = p->stop && !sn.busy;
        snapshot_free(&sn);
        if (done) break;
        /* What the tries freed (a large log, a big XCom, a template's output) goes back to the
         * system every beat rather than staying as the process's high-water mark; once every
         * couple of seconds costs nothing measurable, once per try would. */
        malloc_trim(0);
    }
    store_free(store);
    return NULL;
}

/* Says, every heartbeat_us, that this worker is alive: its key in Redis, with the tries it
 * runs; removes the key when it stops.
 * Fix: this used to follow the store heartbeats on the same thread, so while PostgreSQL was
 * down (a store call waits up to 30 s for its reconnect, per running try) the key expired
 * (TTL 5 beats) although the worker and its tries lived; once the store was back, a sweep
 * that ran before this thread beat again saw a stale store heartbeat and no key, and
 * failed-and-retried tries that were still running. Liveness in Redis no longer waits for
 * the store. */
static void *cluster_beat_main(void *arg)
{
    WorkerPool *p = arg;
    char err[512];
    ClusterConn *cluster = cluster_connect(p->opt.cluster_url ? p->opt.cluster_url : "", err, sizeof err);
    int64_t started = util_now_us();
    StrBuf queues = {0};
    for (size_t i = 0; i < p->opt.n_queues; i++) sb_printf(&queues, "%s%s", i ? "," : "", p->opt.queues[i]);
    for (int first = 1;; first = 0) {
        if (!first) beat_sleep(p);
        if (!cluster) cluster = cluster_connect(p->opt.cluster_url ? p->opt.cluster_url : "", err, sizeof err);
        Snapshot sn;
        snapshot_take(p, &sn);
        if (cluster) {
            WorkerInfo w = {(char *)p->opt.worker_id, (char *)p->opt.hostname, (int)getpid(), (char *)sb_str(&queues),
                            p->n, (char *)sb_str(&sn.running), (char *)(p->opt.version ? p->opt.version : ""),
                            started, 0};
            if (p->stop && !sn.busy) cluster_worker_gone(cluster, p->opt.worker_id);
            else if (cluster_worker_beat(cluster, &w, (int)(p->opt.heartbeat_us / 1000) * 5) != 0)
                log_warn("worker", "%s: heartbeat not recorded: %s", p->opt.worker_id, cluster_error(cluster));
        }
        int done = p->stop && !sn.busy;
        snapshot_free(&sn);
        if (done) break;
    }
    sb_free(&queues);
    cluster_close(cluster);
    return NULL;
}

WorkerPool *worker_pool_start(const WorkerOptions *opt, DagCache *cache, char *err, size_t errlen)
{
    if (opt->concurrency < 1) {
        snprintf(err, errlen, "worker concurrency must be at least 1");
        return NULL;
    }
    WorkerPool *p = xcalloc(1, sizeof *p);
    p->opt = *opt;
    if (p->opt.heartbeat_us <= 0) p->opt.heartbeat_us = 2LL * 1000000;
    p->cache = cache;
    p->n = opt->concurrency;
    p->slots = xcalloc((size_t)p->n, sizeof *p->slots);
    pthread_mutex_init(&p->mu, NULL);
    /* Explicit stacks: the default (8 MB, from ulimit -s) only reserves address space, but a
     * bounded one keeps a slot's touched stack, and the address space of -c 64, small. The
     * deepest user is a try's template rendering and libpq/OpenSSL/libcurl calls. */
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, WORKER_THREAD_STACK);
    for (int i = 0; i < p->n; i++) {
        p->slots[i].pool = p;
        p->slots[i].index = i;
        pthread_create(&p->slots[i].thread, &attr, slot_main, &p->slots[i]);
    }
    pthread_create(&p->heartbeat, &attr, heartbeat_main, p);
    pthread_create(&p->cluster_beat, &attr, cluster_beat_main, p);
    pthread_attr_destroy(&attr);
    return p;
}

long worker_pool_tries(const WorkerPool *p)
{
    return __atomic_load_n(&p->tries, __ATOMIC_RELAXED);
}

void worker_pool_stop(WorkerPool *p, int64_t grace_us)
{
    if (!p) return;
    p->stop = 1;
    /* running tries get the grace period; then they are ended (and retried elsewhere) */
    int64_t deadline = util_now_us() + grace_us;
    for (;;) {
        int busy = 0;
        pthread_mutex_lock(&p->mu);
        for (int i = 0; i < p->n; i++) busy |= p->slots[i].ti_id[0] != '\0';
        pthread_mutex_unlock(&p->mu);
        if (!busy || util_now_us() >= deadline) break;
        usleep(50000);
    }
    pthread_mutex_lock(&p->mu);
    p->stop_now = 1;
    for (int i = 0; i < p->n; i++) p->slots[i].cancel = 1;
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n; i++) pthread_join(p->slots[i].thread, NULL);
    pthread_join(p->heartbeat, NULL);
    pthread_join(p->cluster_beat, NULL);
    pthread_mutex_destroy(&p->mu);
    free(p->slots);
    free(p);
}
