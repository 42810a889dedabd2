/* broker — the seam between gust and a message broker.
 *
 * A message is a hint to run one try of one task instance (DESIGN.md invariant 1): its
 * id and try number, the queue it goes to and a priority. The store decides everything
 * else. Two adapters sit behind this interface: `local` (in process, for standalone and
 * tests) and `rabbitmq` (the distributed deployment). Like the store's drivers, it is a
 * struct of function pointers with inline wrappers; a Broker is used by one thread.
 *
 * URLs:
 *   local://[name]                  an in-process hub; threads that use the same URL share it
 *   amqp://user:pass@host:port/vhost[?options]   (amqps:// for TLS; port 5672 / 5671;
 *       "/" or no path is the default vhost "/", other names are percent-decoded)
 *     options, '&'-separated:
 *       heartbeat=S         AMQP heartbeat in seconds (default 10; 0 turns them off)
 *       queue_type=T        classic (default) or quorum: the type of the task queues it declares
 *       connect_timeout=MS  TCP connect + AMQP handshake bound (default 5000)
 *       publish_timeout=MS  how long publish waits for a connection and the confirms (default 10000)
 *       cacert=PATH cert=PATH key=PATH verify=0|1   TLS (amqps://): CA bundle (default: the
 *                           system one), client certificate and key, verify the server (default 1)
 *   broker.queue_type = quorum in the settings is mapped to ?queue_type=quorum.
 *
 * RabbitMQ topology (declared idempotently by the adapter; see rabbitmq.c):
 *   exchange "gust" (direct, durable); one durable queue per task `queue` name, named exactly
 *   that ("default", ...), bound with routing key = the name, x-dead-letter-exchange=gust.dlx and
 *   x-max-priority=10 (classic) or x-queue-type=quorum; exchange "gust.dlx" (fanout) → queue
 *   "gust.dead", where rejected (requeue=0) and undecodable messages end.
 *   Wire format: body {"ti_id":"…","try_number":N,"queue":"…","priority":W}, content_type
 *   application/json, delivery_mode 2, AMQP priority = broker_priority_level(W). */
#ifndef GUST_BROKER_H
#define GUST_BROKER_H

#include <stddef.h>
#include <stdint.h>

typedef struct Broker Broker; /* adapter-specific; starts with BrokerBase */

typedef struct BrokerMsg {
    char ti_id[33];    /* task instance id */
    int try_number;    /* the try the message asks for */
    char queue[128];   /* queue name ("default" unless the task says otherwise) */
    int priority;      /* higher first, where the adapter supports it */
    uint64_t tag;      /* delivery tag, for ack/reject (set by next()) */
} BrokerMsg;

typedef struct BrokerAdapter {
    const char *name;
    /* url: local://[name] or amqp://user:pass@host:port/vhost. NULL + err on failure. */
    Broker *(*connect)(const char *url, char *err, size_t errlen);
    void (*close)(Broker *b);
    /* Make sure a queue exists (idempotent). */
    int (*declare)(Broker *b, const char *queue);
    /* Publish and wait for the broker's confirm: 0 only when it has the message. */
    int (*publish)(Broker *b, const BrokerMsg *m);
    /* Publish n messages, then wait for the broker's confirms of all of them (up to the
     * adapter's publish timeout). confirmed[i] is set to 1 for each message the broker
     * acknowledged and to 0 for the others (negative-acknowledged, returned as unroutable,
     * lost with the connection, or not confirmed in time): the caller deletes exactly the
     * outbox rows of the confirmed ones and keeps the rest for a later attempt (a duplicate
     * message is harmless). Returns 0 when all n were confirmed, -1 otherwise (last_error
     * says why). */
    int (*publish_batch)(Broker *b, const BrokerMsg *msgs, size_t n, int *confirmed);
    /* Start consuming these queues, holding at most `prefetch` unacked messages. The local
     * adapter also accepts "*" for every queue. */
    int (*consume)(Broker *b, const char *const *queues, size_t n, int prefetch);
    /* Change the prefetch (a worker's free slots; 0 = stop taking work: the consumer stops,
     * and deliveries not yet returned by next() go back to their queue for other workers). */
    int (*set_prefetch)(Broker *b, int prefetch);
    /* Next delivery, waiting up to timeout_ms: 1 got one, 0 timeout, -1 error. A delivery
     * whose body cannot be decoded is never returned: the adapter dead-letters it. */
    int (*next)(Broker *b, int timeout_ms, BrokerMsg *out);
    int (*ack)(Broker *b, uint64_t tag);
    int (*reject)(Broker *b, uint64_t tag, int requeue);
    const char *(*last_error)(Broker *b);
} BrokerAdapter;

typedef struct BrokerBase {
    const BrokerAdapter *adapter;
} BrokerBase;

extern const BrokerAdapter broker_adapter_local;
extern const BrokerAdapter broker_adapter_rabbitmq;

/* The AMQP priority (0-9) of a priority_weight: 0 for weights <= 0, then one level per
 * doubling: 1 → 1, 2-3 → 2, 4-7 → 3, 8-15 → 4, 16-31 → 5, 32-63 → 6, 64-127 → 7,
 * 128-255 → 8, >= 256 → 9. Airflow's default weight 1 is level 1, so both more and less
 * urgent tasks have room. (Classic queues only: quorum queues in RabbitMQ 3.10 have no
 * priorities, and the local adapter orders by the weight itself.) */
int broker_priority_level(int weight);

/* The adapter for a URL's scheme, or NULL. */
const BrokerAdapter *broker_adapter_for_url(const char *url);
Broker *broker_connect(const char *url, char *err, size_t errlen);

static inline const BrokerAdapter *broker_adapter(Broker *b) { return ((BrokerBase *)b)->adapter; }
static inline void broker_close(Broker *b) { if (b) broker_adapter(b)->close(b); }
static inline int broker_declare(Broker *b, const char *q) { return broker_adapter(b)->declare(b, q); }
static inline int broker_publish(Broker *b, const BrokerMsg *m) { return broker_adapter(b)->publish(b, m); }
static inline int broker_publish_batch(Broker *b, const BrokerMsg *msgs, size_t n, int *confirmed)
{ return broker_adapter(b)->publish_batch(b, msgs, n, confirmed); }
static inline int broker_consume(Broker *b, const char *const *qs, size_t n, int prefetch)
{ return broker_adapter(b)->consume(b, qs, n, prefetch); }
static inline int broker_set_prefetch(Broker *b, int p) { return broker_adapter(b)->set_prefetch(b, p); }
static inline int broker_next(Broker *b, int timeout_ms, BrokerMsg *out) { return broker_adapter(b)->next(b, timeout_ms, out); }
static inline int broker_ack(Broker *b, uint64_t tag) { return broker_adapter(b)->ack(b, tag); }
static inline int broker_reject(Broker *b, uint64_t tag, int requeue) { return broker_adapter(b)->reject(b, tag, requeue); }
static inline const char *broker_error(Broker *b) { return broker_adapter(b)->last_error(b); }

#endif
