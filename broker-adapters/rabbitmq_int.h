/* rabbitmq_int — what the parts of the RabbitMQ adapter share; not for use outside
 * broker-adapters/rabbitmq*.c. Everything here is one adapter split by concept:
 *
 *   rabbitmq.c          the adapter: connect, close, declare, the function table, helpers
 *   rabbitmq_url.c      amqp:// URLs and their options → RmqConfig
 *   rabbitmq_conn.c     one AMQP connection: TCP/TLS, login, channels, the topology, errors
 *   rabbitmq_io.c       the I/O thread: reconnect with backoff, passes, reading frames
 *   rabbitmq_publish.c  publish_batch and publisher confirms
 *   rabbitmq_consume.c  consumers, prefetch, deliveries, ack / reject / requeue
 *
 * Locking: the fields of RmqBroker marked "shared" are read and written under mu, by the
 * caller's thread and by the I/O thread; the others belong to the I/O thread (and to
 * connect() before it starts). A function says "mu held" when it must be called with mu
 * locked; those that make a librabbitmq call release mu around it and lock it again, so
 * anything read before the call may have changed after it. */
#ifndef GUST_RABBITMQ_INT_H
#define GUST_RABBITMQ_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <amqp.h>
#include <amqp_framing.h>

#include "broker-adapters/broker.h"

#define RMQ_EXCHANGE "gust"
#define RMQ_DLX "gust.dlx"
#define RMQ_DEAD "gust.dead"
#define CH_PUB 1
#define CH_CON 2
#define CH_ADM 3
#define FRAME_MAX 131072
#define BODY_MAX 65536            /* larger bodies are not ours: dead-lettered */
#define RPC_TIMEOUT_MS 10000
#define OP_TIMEOUT_MS 5000        /* ack/reject wait at most this */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt" /* amqps:// without cacert= */
#define TAG_SHIFT 48
#define TAG_MASK ((UINT64_C(1) << TAG_SHIFT) - 1)

typedef struct RmqConfig {
    char host[256];
    int port;
    char user[256];
    char pass[256];
    char vhost[256];
    int tls;
    int heartbeat;                /* seconds; 0 = none */
    int quorum;
    int connect_timeout_ms;
    int publish_timeout_ms;
    char cacert[512], cert[512], key[512];
    int verify;
    char where[300];              /* "host:port", for messages */
} RmqConfig;

enum { PUB_UNSENT, PUB_SENT, PUB_ACKED, PUB_FAILED };

typedef struct PubItem {
    BrokerMsg msg;
    uint64_t seq;                 /* publish sequence number on the publish channel */
    int state;
    int returned;                 /* a basic.return came for it: not confirmed even if acked */
} PubItem;

typedef struct RmqQueue {
    char name[128];
    int need_declare;             /* declare it on the next pass */
    int known;                    /* declared once: declared again after a reconnect */
    uint64_t declared_gen;        /* connection generation it was declared on (0: not) */
    int failed;                   /* the last declaration was refused (err says why) */
    uint64_t failed_batch;        /* ... during this publish batch: do not retry per message */
    char err[512];
    int consume;                  /* in the consume set */
    char ctag[256];               /* consumer tag, valid while ctag_epoch == epoch */
    uint64_t ctag_epoch;
    uint64_t consumed_epoch;      /* a consume of it succeeded on this channel incarnation */
    struct RmqQueue *next;
} RmqQueue;

typedef struct Delivery {
    BrokerMsg msg;
    struct Delivery *next;
} Delivery;

typedef struct Assembly {         /* a message arriving in frames: method, header, bodies */
    int active;
    uint64_t dtag;
    char ctag[256];
    char rkey[128];
    uint64_t size, got;
    char *body;                   /* BODY_MAX + 1 bytes, allocated once */
    int too_big;
} Assembly;

typedef struct RmqBroker {
    BrokerBase base;
    RmqConfig cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;            /* callers wait on it; the I/O thread broadcasts */
    pthread_t io;
    int io_started;
    int wake_fd;                  /* eventfd: callers wake the I/O thread */

    /* ---- shared, under mu ---- */
    int closing;
    int connected;
    uint64_t gen;                 /* connection generation */
    uint64_t epoch;               /* consume channel incarnation (top bits of the tags) */
    char err[1280];               /* last_error */
    char conn_err[512];           /* why we are not connected */
    RmqQueue *queues;             /* never freed before close: the I/O thread keeps pointers */
    int consuming;
    int prefetch;
    uint64_t req, done;           /* passes asked by callers / completed on a live connection */
    Delivery *buf_head, *buf_tail;/* delivered, not yet returned by next() */
    uint64_t *held;               /* tags returned by next(), not acked or rejected yet */
    size_t n_held, cap_held;
    uint64_t *requeue;            /* tags to give back (set_prefetch(0)) */
    size_t n_requeue, cap_requeue;
    uint64_t *acks;               /* tags acked by the caller, not sent yet */
    size_t n_acks, cap_acks;
    int op_pending, op_rc, op_ack, op_requeue;
    uint64_t op_tag, op_id, op_done_id; /* request id / id of the last one finished */
    char op_err[512];
    PubItem *pub;                 /* the batch being published; only the I/O thread writes */
    size_t n_pub, cap_pub;        /* its items while pub_active */
    int pub_active;
    uint64_t pub_batch;
    int64_t pub_deadline;
    size_t pub_left;
    char pub_err[1024];

    /* ---- the I/O thread's (and connect()'s, before the thread starts) ---- */
    amqp_connection_state_t conn;
    uint64_t pub_seq;
    int qos_applied;              /* -1: not set on this channel */
    uint64_t ctag_seq;            /* our consumer tags for no-wait consumes: "gust-<n>" */
    int64_t last_rx;
    int64_t backoff_ms, next_attempt;
    int lost;                     /* connection lost since the last successful open */
    int retry_soon;               /* something failed in a pass: poll briefly, try again */
    char io_err[512];             /* why the connection failed */
    Assembly as_pub, as_con;
} RmqBroker;

/* ---- rabbitmq.c: helpers ---- */

int64_t rmq_now_ms(void);                                    /* monotonic */
void rmq_wake_io(RmqBroker *b);                              /* wake the I/O thread's poll() */
void rmq_cv_wait_until(RmqBroker *b, int64_t deadline);     /* mu held; monotonic ms */
const char *rmq_bytes_str(amqp_bytes_t by, char *out, size_t outlen);
void rmq_lower_first(char *s);                               /* "Connection refused" → "connection refused" */
const char *rmq_errno_text(int e, char *buf, size_t n);
/* The queue of that name, or NULL / or a new one added to the list (mu held). */
RmqQueue *rmq_queue_find(RmqBroker *b, const char *name);
RmqQueue *rmq_queue_get(RmqBroker *b, const char *name);
/* Ask the I/O thread for a pass and wait for it (mu held): 0 done on a live connection. */
int rmq_sync_pass(RmqBroker *b, int64_t deadline);
void rmq_not_connected_error(RmqBroker *b);                  /* b->err: why we are not connected */

/* ---- rabbitmq_url.c ---- */

/* Parse an amqp:// or amqps:// URL with its options into c; -1 and err on bad input. */
int rmq_parse_url(const char *url, RmqConfig *c, char *err, size_t errlen);

/* ---- rabbitmq_conn.c ---- */

/* Connect, log in, open the channels and declare the fixed topology. NULL + err. */
amqp_connection_state_t rmq_open(const RmqConfig *c, char *err, size_t errlen);
/* Declare a task queue and bind it: 0 done, 1 refused (err), -1 connection lost (err). */
int rmq_declare_queue(amqp_connection_state_t conn, const RmqConfig *c, const char *name, char *err,
                      size_t errlen);
/* An RPC on channel ch failed: 1 the channel was reopened (err says why it closed), -1 the
 * connection is lost. */
int rmq_rpc_failed(amqp_connection_state_t conn, const RmqConfig *c, amqp_channel_t ch, amqp_rpc_reply_t r,
                   const char *what, char *err, size_t errlen);
/* Answer a server's channel.close (connection = 0) or connection.close (1). */
void rmq_send_close_ok(amqp_connection_state_t conn, amqp_channel_t ch, int connection);

/* ---- rabbitmq_io.c ---- */

void *rmq_io_main(void *arg);                                /* the I/O thread; arg is the RmqBroker */
void rmq_on_connected(RmqBroker *b, amqp_connection_state_t conn); /* mu held, or before the thread */
int rmq_declare_locked(RmqBroker *b, RmqQueue *q);           /* mu held; -1 connection lost */
void rmq_assembly_reset(Assembly *a);

/* ---- rabbitmq_publish.c ---- */

int rmq_publish_batch(Broker *br, const BrokerMsg *msgs, size_t n, int *confirmed);
int rmq_publish(Broker *br, const BrokerMsg *m);
int rmq_publish_unsent(RmqBroker *b);                        /* mu held; -1 connection lost */
void rmq_pub_fail(RmqBroker *b, PubItem *it, const char *why); /* mu held */
void rmq_pub_finish_if_done(RmqBroker *b);                   /* mu held */
void rmq_pub_check_deadline(RmqBroker *b);                   /* mu held */
int rmq_publish_channel_reset(RmqBroker *b, const char *why); /* mu held */
void rmq_confirm(RmqBroker *b, uint64_t tag, int multiple, int ack); /* a basic.ack/nack; mu not held */
void rmq_return_complete(RmqBroker *b);                      /* a basic.return arrived whole; mu not held */

/* ---- rabbitmq_consume.c ---- */

int rmq_consume(Broker *br, const char *const *queues, size_t n, int prefetch);
int rmq_set_prefetch(Broker *br, int prefetch);
int rmq_next(Broker *br, int timeout_ms, BrokerMsg *out);
int rmq_ack(Broker *br, uint64_t tag);
int rmq_reject(Broker *br, uint64_t tag, int requeue);
RmqQueue *rmq_queue_by_ctag(RmqBroker *b, const char *ctag); /* mu held */
void rmq_buffer_clear(RmqBroker *b);                         /* mu held */
int rmq_consume_channel_reset(RmqBroker *b);                 /* mu held */
int rmq_consume_reconcile(RmqBroker *b);                     /* mu held; -1 connection lost */
int rmq_consume_send_acks(RmqBroker *b);                     /* mu held; -1 connection lost */
int rmq_consume_send_queued_acks(RmqBroker *b);              /* mu held; -1 connection lost */
int rmq_delivery_complete(RmqBroker *b);                     /* mu not held; -1 connection lost */
/* Validate and decode a message body. 1 ok, 0 not ours (why says what is wrong). */
int rmq_decode_body(const char *body, size_t len, BrokerMsg *m, char *why, size_t whylen);

#endif
