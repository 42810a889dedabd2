/* pool — the worker threads (see worker.h). Each thread owns a store connection and a
 * broker connection and is one slot: prefetch 1, so it holds a message only when it can
 * start it. A heartbeat thread says, for every try running here, that it is alive. */
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
#include "worker/worker.h"
#include "cluster/cluster.h"

typedef struct Slot {
    struct WorkerPool *pool;
    pthread_t thread;
    int index;
    char ti_id[33];          /* the try running in this slot ("" when idle), for heartbeats */
    int try_number;
    volatile int cancel;     /* set at the end of the shutdown grace */
} Slot;

struct WorkerPool {
    WorkerOptions opt;
    DagCache *cache;
    Slot *slots;
    int n;
    volatile int stop;       /* stop taking work */
    volatile int stop_now;   /* the grace is over: end what runs */
    pthread_mutex_t mu;      /* guards the slots' ti_id/try_number */
    pthread_t heartbeat;
    long tries;
};

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
        /* over a global rate limit: back to the scheduler, unclaimed, and the message acked */
        if (worker_rate_gate(store, p->cache, cluster, m.ti_id, m.try_number) == 0) {
            broker_ack(broker, m.tag);
            continue;
        }
        /* invariant 4: ack once the claim is committed (or lost); from then on the store and
         * the heartbeats own the try, so a long task never holds a delivery */
        int won = store_ti_claim(store, m.ti_id, m.try_number, p->opt.hostname, p->opt.worker_id, (int)getpid());
        broker_ack(broker, m.tag);
        if (won == 0) {
            log_debug("worker", "ti=%s try=%d: claim lost (%s), dropped", m.ti_id, m.try_number, store_last_error(store));
            continue;
        }
        if (won < 0) {
            log_error("worker", "ti=%s try=%d: cannot claim: %s", m.ti_id, m.try_number, store_last_error(store));
            continue;
        }
        pthread_mutex_lock(&p->mu);
        util_strlcpy(sl->ti_id, m.ti_id, sizeof sl->ti_id);
        sl->try_number = m.try_number;
        sl->cancel = p->stop_now; /* a try that starts during the final stop is ended at once */
        pthread_mutex_unlock(&p->mu);
        __atomic_add_fetch(&p->tries, 1, __ATOMIC_RELAXED);
        int rc = worker_run_claimed(store, p->cache, &p->opt, m.ti_id, &sl->cancel);
        if (rc < 0) log_error("worker", "ti=%s try=%d: %s", m.ti_id, m.try_number, store_last_error(store));
        pthread_mutex_lock(&p->mu);
        sl->ti_id[0] = '\0';
        pthread_mutex_unlock(&p->mu);
    }
    cluster_close(cluster);
    broker_close(broker);
    store_free(store);
    return NULL;
}

/* Says, every heartbeat_us, that this worker is alive (its key in Redis, with the tries it
 * runs) and that each running try is (its row in the store). A try whose heartbeat the
 * store refuses was cleared or marked meanwhile: it is ended, as Airflow's LocalTaskJob
 * ends a task whose state was changed under it. */
static void *heartbeat_main(void *arg)
{
    WorkerPool *p = arg;
    char err[512];
    Store *store = NULL;
    ClusterConn *cluster = cluster_connect(p->opt.cluster_url ? p->opt.cluster_url : "", err, sizeof err);
    int64_t started = util_now_us();
    StrBuf queues = {0};
    for (size_t i = 0; i < p->opt.n_queues; i++) sb_printf(&queues, "%s%s", i ? "," : "", p->opt.queues[i]);
    for (int first = 1;; first = 0) {
        if (!first) {
            for (int64_t slept = 0; slept < p->opt.heartbeat_us; slept += 100000) {
                usleep(100000);
                if (p->stop) break;
            }
        }
        if (!store) store = store_open(p->opt.store_url, err, sizeof err);
        if (!cluster) cluster = cluster_connect(p->opt.cluster_url ? p->opt.cluster_url : "", err, sizeof err);
        pthread_mutex_lock(&p->mu);
        int n = p->n, busy = 0;
        char (*ids)[33] = xcalloc((size_t)n, sizeof *ids);
        int *tries = xcalloc((size_t)n, sizeof *tries);
        StrBuf running = {0};
        for (int i = 0; i < n; i++) {
            memcpy(ids[i], p->slots[i].ti_id, 33);
            tries[i] = p->slots[i].try_number;
            if (ids[i][0]) {
                busy = 1;
                sb_printf(&running, "%s%s", running.len ? "," : "", ids[i]);
            }
        }
        pthread_mutex_unlock(&p->mu);
        for (int i = 0; store && i < n; i++) {
            if (!ids[i][0]) continue;
            if (store_ti_heartbeat(store, ids[i], tries[i]) == 0) {
                pthread_mutex_lock(&p->mu);
                if (strcmp(p->slots[i].ti_id, ids[i]) == 0 && p->slots[i].try_number == tries[i]) {
                    log_warn("worker", "ti=%s try=%d: its state was changed elsewhere (cleared or marked): ending it",
                             ids[i], tries[i]);
                    p->slots[i].cancel = 1;
                }
                pthread_mutex_unlock(&p->mu);
            }
        }
        if (cluster) {
            WorkerInfo w = {(char *)p->opt.worker_id, (char *)p->opt.hostname, (int)getpid(), (char *)sb_str(&queues),
                            p->n, (char *)sb_str(&running), (char *)(p->opt.version ? p->opt.version : ""),
                            started, 0};
            if (p->stop && !busy) cluster_worker_gone(cluster, p->opt.worker_id);
            else if (cluster_worker_beat(cluster, &w, (int)(p->opt.heartbeat_us / 1000) * 5) != 0)
                log_warn("worker", "%s: heartbeat not recorded: %s", p->opt.worker_id, cluster_error(cluster));
        }
        sb_free(&running);
        free(ids);
        free(tries);
        if (p->stop && !busy) break;
    }
    sb_free(&queues);
    cluster_close(cluster);
    store_free(store);
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
    for (int i = 0; i < p->n; i++) {
        p->slots[i].pool = p;
        p->slots[i].index = i;
        pthread_create(&p->slots[i].thread, NULL, slot_main, &p->slots[i]);
    }
    pthread_create(&p->heartbeat, NULL, heartbeat_main, p);
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
    pthread_mutex_destroy(&p->mu);
    free(p->slots);
    free(p);
}
