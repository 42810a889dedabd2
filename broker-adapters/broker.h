/* broker — the seam between gust and a message broker.
 *
 * A message is a hint to run one try of one task instance (DESIGN.md invariant 1): its
 * id and try number, the queue it goes to and a priority. The store decides everything
 * else. Two adapters sit behind this interface: `local` (in process, for standalone and
 * tests) and `rabbitmq` (the distributed deployment). Like the store's drivers, it is a
 * struct of function pointers with inline wrappers; a Broker is used by one thread. */
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
    /* Start consuming these queues, holding at most `prefetch` unacked messages. The local
     * adapter also accepts "*" for every queue. */
    int (*consume)(Broker *b, const char *const *queues, size_t n, int prefetch);
    /* Change the prefetch (a worker's free slots; 0 = stop taking work). */
    int (*set_prefetch)(Broker *b, int prefetch);
    /* Next delivery, waiting up to timeout_ms: 1 got one, 0 timeout, -1 error. */
    int (*next)(Broker *b, int timeout_ms, BrokerMsg *out);
    int (*ack)(Broker *b, uint64_t tag);
    int (*reject)(Broker *b, uint64_t tag, int requeue);
    const char *(*last_error)(Broker *b);
} BrokerAdapter;

typedef struct BrokerBase {
    const BrokerAdapter *adapter;
} BrokerBase;

extern const BrokerAdapter broker_adapter_local;

/* The adapter for a URL's scheme, or NULL. */
const BrokerAdapter *broker_adapter_for_url(const char *url);
Broker *broker_connect(const char *url, char *err, size_t errlen);

static inline const BrokerAdapter *broker_adapter(Broker *b) { return ((BrokerBase *)b)->adapter; }
static inline void broker_close(Broker *b) { if (b) broker_adapter(b)->close(b); }
static inline int broker_declare(Broker *b, const char *q) { return broker_adapter(b)->declare(b, q); }
static inline int broker_publish(Broker *b, const BrokerMsg *m) { return broker_adapter(b)->publish(b, m); }
static inline int broker_consume(Broker *b, const char *const *qs, size_t n, int prefetch)
{ return broker_adapter(b)->consume(b, qs, n, prefetch); }
static inline int broker_set_prefetch(Broker *b, int p) { return broker_adapter(b)->set_prefetch(b, p); }
static inline int broker_next(Broker *b, int timeout_ms, BrokerMsg *out) { return broker_adapter(b)->next(b, timeout_ms, out); }
static inline int broker_ack(Broker *b, uint64_t tag) { return broker_adapter(b)->ack(b, tag); }
static inline int broker_reject(Broker *b, uint64_t tag, int requeue) { return broker_adapter(b)->reject(b, tag, requeue); }
static inline const char *broker_error(Broker *b) { return broker_adapter(b)->last_error(b); }

#endif
