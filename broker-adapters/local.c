/* local — the in-process broker of `gust standalone` and of tests.
 *
 * Queues live in a process-wide hub keyed by the URL's name (local:// is one hub), so a
 * scheduler thread and worker threads that connect to the same URL share them. Each queue
 * is a priority list (higher priority first, then first in, first out). A consumer holds
 * at most `prefetch` unacked deliveries; a rejected delivery with requeue goes back to
 * the front of its priority. Nothing is persisted: in standalone the store's outbox and
 * the queued-too-long sweep are what make a lost message harmless (invariant 3). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker-adapters/broker.h"
#include "core/util.h"

typedef struct LocalItem {
    BrokerMsg msg;
    uint64_t seq;            /* arrival order */
    struct LocalItem *next;
} LocalItem;

typedef struct LocalQueue {
    char name[128];
    LocalItem *head;         /* sorted: priority desc, seq asc */
    LocalItem *tail;         /* the last item: a new message of the lowest priority goes after it */
    size_t len;
    struct LocalQueue *next;
} LocalQueue;

typedef struct LocalHub {
    char name[128];
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* signalled on every publish and requeue */
    LocalQueue *queues;
    uint64_t seq;
    uint64_t next_tag;
    struct LocalHub *next;
} LocalHub;

typedef struct LocalInflight {
    uint64_t tag;
    BrokerMsg msg;
    struct LocalInflight *next;
} LocalInflight;

typedef struct LocalBroker {
    BrokerBase base;
    LocalHub *hub;
    char **queues;           /* consumed queue names */
    size_t n_queues;
    int prefetch;
    LocalInflight *inflight; /* delivered, not yet acked */
    size_t n_inflight;
    char err[256];
} LocalBroker;

static pthread_mutex_t hubs_mu = PTHREAD_MUTEX_INITIALIZER;
static LocalHub *hubs;

static LocalHub *hub_for(const char *name)
{
    pthread_mutex_lock(&hubs_mu);
    LocalHub *h = hubs;
    while (h && strcmp(h->name, name) != 0) h = h->next;
    if (!h) {
        h = xcalloc(1, sizeof *h);
        util_strlcpy(h->name, name, sizeof h->name);
        pthread_mutex_init(&h->mu, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&h->cv, &ca);
        pthread_condattr_destroy(&ca);
        h->next = hubs;
        hubs = h;
    }
    pthread_mutex_unlock(&hubs_mu);
    return h; /* hubs live as long as the process: threads may still hold them */
}

static LocalQueue *queue_get(LocalHub *h, const char *name)
{
    LocalQueue *q = h->queues;
    while (q && strcmp(q->name, name) != 0) q = q->next;
    if (!q) {
        q = xcalloc(1, sizeof *q);
        util_strlcpy(q->name, name, sizeof q->name);
        q->next = h->queues;
        h->queues = q;
    }
    return q;
}

static void queue_insert(LocalQueue *q, LocalItem *it)
{
    /* the common case, O(1): no higher-or-equal priority item is newer (a fan-out of
     * thousands of equal-priority messages must not walk the list each time) */
    if (q->tail && (q->tail->msg.priority > it->msg.priority ||
                    (q->tail->msg.priority == it->msg.priority && q->tail->seq < it->seq))) {
        it->next = NULL;
        q->tail->next = it;
        q->tail = it;
        q->len++;
        return;
    }
    LocalItem **pp = &q->head;
    while (*pp && ((*pp)->msg.priority > it->msg.priority ||
                   ((*pp)->msg.priority == it->msg.priority && (*pp)->seq < it->seq)))
        pp = &(*pp)->next;
    it->next = *pp;
    *pp = it;
    if (!it->next) q->tail = it;
    q->len++;
}

static Broker *local_connect(const char *url, char *err, size_t errlen)
{
    if (strncmp(url, "local://", 8) != 0) {
        snprintf(err, errlen, "broker.url: not a local:// URL");
        return NULL;
    }
    LocalBroker *b = xcalloc(1, sizeof *b);
    b->base.adapter = &broker_adapter_local;
    b->hub = hub_for(url + 8);
    return (Broker *)b;
}

static void local_close(Broker *br)
{
    LocalBroker *b = (LocalBroker *)br;
    if (!b) return;
    /* unacked deliveries go back, as a broker does when a consumer disconnects */
    pthread_mutex_lock(&b->hub->mu);
    for (LocalInflight *f = b->inflight, *nx; f; f = nx) {
        nx = f->next;
        LocalItem *it = xcalloc(1, sizeof *it);
        it->msg = f->msg;
        it->seq = 0; /* front of its priority */
        queue_insert(queue_get(b->hub, f->msg.queue), it);
        free(f);
    }
    pthread_cond_broadcast(&b->hub->cv);
    pthread_mutex_unlock(&b->hub->mu);
    for (size_t i = 0; i < b->n_queues; i++) free(b->queues[i]);
    free(b->queues);
    free(b);
}

static int local_declare(Broker *br, const char *queue)
{
    LocalBroker *b = (LocalBroker *)br;
    pthread_mutex_lock(&b->hub->mu);
    queue_get(b->hub, queue);
    pthread_mutex_unlock(&b->hub->mu);
    return 0;
}

static int local_publish(Broker *br, const BrokerMsg *m)
{
    LocalBroker *b = (LocalBroker *)br;
    LocalItem *it = xcalloc(1, sizeof *it);
    it->msg = *m;
    pthread_mutex_lock(&b->hub->mu);
    it->seq = ++b->hub->seq;
    queue_insert(queue_get(b->hub, m->queue[0] ? m->queue : "default"), it);
    pthread_cond_broadcast(&b->hub->cv);
    pthread_mutex_unlock(&b->hub->mu);
    return 0;
}

/* Every message is in the hub once local_publish returns: all confirmed. */
static int local_publish_batch(Broker *br, const BrokerMsg *msgs, size_t n, int *confirmed)
{
    for (size_t i = 0; i < n; i++) confirmed[i] = local_publish(br, &msgs[i]) == 0;
    return 0;
}

static int local_consume(Broker *br, const char *const *queues, size_t n, int prefetch)
{
    LocalBroker *b = (LocalBroker *)br;
    for (size_t i = 0; i < b->n_queues; i++) free(b->queues[i]);
    free(b->queues);
    b->queues = xcalloc(n ? n : 1, sizeof *b->queues);
    for (size_t i = 0; i < n; i++) b->queues[i] = xstrdup(queues[i]);
    b->n_queues = n;
    b->prefetch = prefetch;
    return 0;
}

static int local_set_prefetch(Broker *br, int prefetch)
{
    ((LocalBroker *)br)->prefetch = prefetch;
    return 0;
}

/* The best head among the consumed queues (highest priority, then oldest). */
static int consumes(const LocalBroker *b, const char *name)
{
    for (size_t i = 0; i < b->n_queues; i++)
        if (strcmp(b->queues[i], "*") == 0 || strcmp(b->queues[i], name) == 0) return 1;
    return 0;
}

static LocalQueue *best_queue(LocalBroker *b)
{
    LocalQueue *best = NULL;
    /* "*" consumes every queue: standalone's one pool of workers does all the work */
    for (LocalQueue *q = b->hub->queues; q; q = q->next) {
        if (!consumes(b, q->name)) continue;
        if (!q->head) continue;
        if (!best || q->head->msg.priority > best->head->msg.priority ||
            (q->head->msg.priority == best->head->msg.priority && q->head->seq < best->head->seq))
            best = q;
    }
    return best;
}

static int local_next(Broker *br, int timeout_ms, BrokerMsg *out)
{
    LocalBroker *b = (LocalBroker *)br;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&b->hub->mu);
    for (;;) {
        LocalQueue *q = (int)b->n_inflight < b->prefetch ? best_queue(b) : NULL;
        if (q) {
            LocalItem *it = q->head;
            q->head = it->next;
            if (!q->head) q->tail = NULL;
            q->len--;
            LocalInflight *f = xcalloc(1, sizeof *f);
            f->tag = ++b->hub->next_tag;
            f->msg = it->msg;
            f->msg.tag = f->tag;
            f->next = b->inflight;
            b->inflight = f;
            b->n_inflight++;
            *out = f->msg;
            free(it);
            pthread_mutex_unlock(&b->hub->mu);
            return 1;
        }
        if (timeout_ms <= 0) break;
        int rc = pthread_cond_timedwait(&b->hub->cv, &b->hub->mu, &deadline);
        if (rc == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&b->hub->mu);
    return 0;
}

static LocalInflight *take_inflight(LocalBroker *b, uint64_t tag)
{
    for (LocalInflight **pp = &b->inflight; *pp; pp = &(*pp)->next) {
        if ((*pp)->tag == tag) {
            LocalInflight *f = *pp;
            *pp = f->next;
            b->n_inflight--;
            return f;
        }
    }
    return NULL;
}

static int local_ack(Broker *br, uint64_t tag)
{
    LocalBroker *b = (LocalBroker *)br;
    pthread_mutex_lock(&b->hub->mu);
    LocalInflight *f = take_inflight(b, tag);
    pthread_cond_broadcast(&b->hub->cv); /* a slot freed: this consumer may take more */
    pthread_mutex_unlock(&b->hub->mu);
    if (!f) {
        snprintf(b->err, sizeof b->err, "unknown delivery tag %llu", (unsigned long long)tag);
        return -1;
    }
    free(f);
    return 0;
}

static int local_reject(Broker *br, uint64_t tag, int requeue)
{
    LocalBroker *b = (LocalBroker *)br;
    pthread_mutex_lock(&b->hub->mu);
    LocalInflight *f = take_inflight(b, tag);
    if (f && requeue) {
        LocalItem *it = xcalloc(1, sizeof *it);
        it->msg = f->msg;
        it->seq = 0;
        queue_insert(queue_get(b->hub, f->msg.queue), it);
    }
    pthread_cond_broadcast(&b->hub->cv);
    pthread_mutex_unlock(&b->hub->mu);
    if (!f) {
        snprintf(b->err, sizeof b->err, "unknown delivery tag %llu", (unsigned long long)tag);
        return -1;
    }
    free(f);
    return 0;
}

static const char *local_error(Broker *br)
{
    return ((LocalBroker *)br)->err;
}

const BrokerAdapter broker_adapter_local = {
    .name = "local",
    .connect = local_connect,
    .close = local_close,
    .declare = local_declare,
    .publish = local_publish,
    .publish_batch = local_publish_batch,
    .consume = local_consume,
    .set_prefetch = local_set_prefetch,
    .next = local_next,
    .ack = local_ack,
    .reject = local_reject,
    .last_error = local_error,
};

const BrokerAdapter *broker_adapter_for_url(const char *url)
{
    if (!url) return NULL;
    if (strncmp(url, "local://", 8) == 0) return &broker_adapter_local;
    if (strncmp(url, "amqp://", 7) == 0 || strncmp(url, "amqps://", 8) == 0) return &broker_adapter_rabbitmq;
    return NULL;
}

Broker *broker_connect(const char *url, char *err, size_t errlen)
{
    const BrokerAdapter *a = broker_adapter_for_url(url);
    if (!a) {
        snprintf(err, errlen, "broker.url: unsupported scheme '%.*s' (use local://, amqp:// or amqps://)",
                 url ? (int)strcspn(url, ":@") : 0, url ? url : "");
        return NULL;
    }
    return a->connect(url, err, errlen);
}
