/* rabbitmq — the broker adapter for RabbitMQ, on librabbitmq (rabbitmq-c 0.11).
 *
 * Topology, declared idempotently at connect and again after every reconnect:
 *   - exchange "gust" (direct, durable): messages are published to it with routing key = queue;
 *   - one durable queue per task `queue` name, named exactly that ("default", "etl", ...) so
 *     that the RabbitMQ UI shows what the DAG says; bound to "gust" with routing key = name;
 *     arguments x-dead-letter-exchange=gust.dlx, and x-max-priority=10 (classic, the default)
 *     or x-queue-type=quorum (?queue_type=quorum; RabbitMQ 3.10 refuses x-max-priority there);
 *     a queue is declared when a Broker first publishes to it, consumes it or declare()s it;
 *   - exchange "gust.dlx" (fanout, durable) → queue "gust.dead" (classic, durable): where
 *     reject(requeue=0) and undecodable messages end, for an operator to look at.
 * Wire format: body {"ti_id":"…","try_number":N,"queue":"…","priority":W} (queue and the
 * priority_weight W for information), content_type application/json, delivery_mode 2
 * (persistent), AMQP priority broker_priority_level(W) (0-9, see broker.h).
 *
 * Threading: one connection per Broker with three channels — 1 publishes (confirm mode),
 * 2 consumes, 3 declares (a refused declaration closes only that channel) — and one I/O
 * thread per Broker that owns the connection: every librabbitmq call after connect() is
 * made on it (a connection is not thread-safe). The Broker's user thread hands it work
 * through a mutex + condition variable and wakes it with an eventfd; the I/O thread sleeps
 * in poll() on the socket and the eventfd. So heartbeats are answered, deliveries are read
 * and confirms are collected even while the worker thread runs a task for hours between
 * two next() calls, and a dead TCP connection is noticed within two heartbeat intervals
 * (default heartbeat 10 s; ?heartbeat=S). The cost is a thread per Broker (a worker slot).
 *
 * The adapter is split by concept (rabbitmq_int.h has the map and the shared state): this
 * file is the adapter's surface — connect, close, declare, the function table — and the
 * small helpers the parts share. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "broker-adapters/rabbitmq_int.h"
#include "core/log.h"
#include "core/util.h"

/* ---- helpers the parts share --------------------------------------------------------- */

int64_t rmq_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void rmq_wake_io(RmqBroker *b)
{
    uint64_t one = 1;
    if (write(b->wake_fd, &one, sizeof one) < 0) { /* full counter: it is awake anyway */ }
}

/* Wait on cv until deadline (monotonic ms); mu held. */
void rmq_cv_wait_until(RmqBroker *b, int64_t deadline)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline / 1000);
    ts.tv_nsec = (long)(deadline % 1000) * 1000000L;
    pthread_cond_timedwait(&b->cv, &b->mu, &ts);
}

const char *rmq_bytes_str(amqp_bytes_t by, char *out, size_t outlen)
{
    size_t n = by.len < outlen - 1 ? by.len : outlen - 1;
    if (n) memcpy(out, by.bytes, n);
    out[n] = '\0';
    return out;
}

/* "connection refused" rather than "Connection refused". */
void rmq_lower_first(char *s)
{
    if (s[0] && isupper((unsigned char)s[0]) && !(s[1] && isupper((unsigned char)s[1])))
        s[0] = (char)tolower((unsigned char)s[0]);
}

const char *rmq_errno_text(int e, char *buf, size_t n)
{
    snprintf(buf, n, "%s", strerror(e));
    rmq_lower_first(buf);
    return buf;
}

int broker_priority_level(int weight)
{
    if (weight <= 0) return 0;
    int level = 1;
    while (weight > 1 && level < 9) {
        weight >>= 1;
        level++;
    }
    return level;
}

RmqQueue *rmq_queue_find(RmqBroker *b, const char *name)
{
    for (RmqQueue *q = b->queues; q; q = q->next)
        if (strcmp(q->name, name) == 0) return q;
    return NULL;
}

RmqQueue *rmq_queue_get(RmqBroker *b, const char *name)
{
    RmqQueue *q = rmq_queue_find(b, name);
    if (q) return q;
    q = xcalloc(1, sizeof *q);
    util_strlcpy(q->name, name, sizeof q->name);
    RmqQueue **pp = &b->queues;
    while (*pp) pp = &(*pp)->next;
    *pp = q;
    return q;
}

/* ---- the adapter --------------------------------------------------------------------- */

static void rmq_free(RmqBroker *b)
{
    rmq_buffer_clear(b);
    for (RmqQueue *q = b->queues, *nx; q; q = nx) {
        nx = q->next;
        free(q);
    }
    free(b->held);
    free(b->requeue);
    free(b->acks);
    free(b->pub);
    free(b->as_pub.body);
    free(b->as_con.body);
    if (b->wake_fd >= 0) close(b->wake_fd);
    pthread_cond_destroy(&b->cv);
    pthread_mutex_destroy(&b->mu);
    memset(b->cfg.pass, 0, sizeof b->cfg.pass);
    free(b);
}

static Broker *rmq_connect(const char *url, char *err, size_t errlen)
{
    RmqConfig cfg;
    if (rmq_parse_url(url, &cfg, err, errlen) != 0) return NULL;
    amqp_connection_state_t conn = rmq_open(&cfg, err, errlen);
    if (!conn) {
        memset(cfg.pass, 0, sizeof cfg.pass);
        return NULL;
    }
    RmqBroker *b = xcalloc(1, sizeof *b);
    b->base.adapter = &broker_adapter_rabbitmq;
    b->cfg = cfg;
    memset(cfg.pass, 0, sizeof cfg.pass);
    pthread_mutex_init(&b->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->cv, &ca);
    pthread_condattr_destroy(&ca);
    b->as_pub.body = xmalloc(BODY_MAX + 1);
    b->as_con.body = xmalloc(BODY_MAX + 1);
    b->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (b->wake_fd < 0) {
        char eb[128];
        snprintf(err, errlen, "RabbitMQ at %s: eventfd: %s", cfg.where, rmq_errno_text(errno, eb, sizeof eb));
        amqp_destroy_connection(conn);
        rmq_free(b);
        return NULL;
    }
    rmq_on_connected(b, conn);
    log_debug("broker", "RabbitMQ at %s: connected (vhost '%s', heartbeat %d s, %s queues)", cfg.where, cfg.vhost,
              cfg.heartbeat, cfg.quorum ? "quorum" : "classic");
    int rc = pthread_create(&b->io, NULL, rmq_io_main, b);
    if (rc != 0) {
        char eb[128];
        snprintf(err, errlen, "RabbitMQ at %s: cannot start the I/O thread: %s", cfg.where,
                 rmq_errno_text(rc, eb, sizeof eb));
        amqp_destroy_connection(conn);
        rmq_free(b);
        return NULL;
    }
    b->io_started = 1;
    return (Broker *)b;
}

static void rmq_close(Broker *br)
{
    RmqBroker *b = (RmqBroker *)br;
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    b->closing = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    rmq_wake_io(b);
    if (b->io_started) pthread_join(b->io, NULL);
    rmq_free(b);
}

/* Ask the I/O thread for a pass and wait for it (mu held): 0 done on a live connection. */
int rmq_sync_pass(RmqBroker *b, int64_t deadline)
{
    uint64_t mine = ++b->req;
    rmq_wake_io(b);
    while (b->done < mine && !b->closing && rmq_now_ms() < deadline) rmq_cv_wait_until(b, deadline);
    return b->done >= mine ? 0 : -1;
}

void rmq_not_connected_error(RmqBroker *b)
{
    if (b->conn_err[0])
        snprintf(b->err, sizeof b->err, "RabbitMQ at %s is unreachable (%s)", b->cfg.where, b->conn_err);
    else
        snprintf(b->err, sizeof b->err, "RabbitMQ at %s: no answer from the connection", b->cfg.where);
}

static int rmq_declare(Broker *br, const char *queue)
{
    RmqBroker *b = (RmqBroker *)br;
    if (!queue || !queue[0] || strlen(queue) >= sizeof b->queues->name) {
        snprintf(b->err, sizeof b->err, "queue name must be 1 to 127 characters");
        return -1;
    }
    pthread_mutex_lock(&b->mu);
    RmqQueue *q = rmq_queue_get(b, queue);
    q->need_declare = 1;
    q->failed = 0;
    int rc = rmq_sync_pass(b, rmq_now_ms() + b->cfg.publish_timeout_ms);
    if (rc != 0) rmq_not_connected_error(b);
    else if (q->failed) {
        util_strlcpy(b->err, q->err, sizeof b->err);
        rc = -1;
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

static const char *rmq_error(Broker *br)
{
    return ((RmqBroker *)br)->err;
}

const BrokerAdapter broker_adapter_rabbitmq = {
    .name = "rabbitmq",
    .connect = rmq_connect,
    .close = rmq_close,
    .declare = rmq_declare,
    .publish = rmq_publish,
    .publish_batch = rmq_publish_batch,
    .consume = rmq_consume,
    .set_prefetch = rmq_set_prefetch,
    .next = rmq_next,
    .ack = rmq_ack,
    .reject = rmq_reject,
    .last_error = rmq_error,
};
