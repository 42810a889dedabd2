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
 * Publishing: publish_batch hands n messages to the I/O thread, which publishes them with
 * mandatory=1 and collects basic.ack / basic.nack frames (honouring `multiple`; sequence
 * numbers counted from confirm.select). A message is confirmed only by an ack that did not
 * follow a basic.return (unroutable: its queue was deleted — it is declared again); a
 * nack, a return, a lost connection or the publish timeout leave it unconfirmed, and the
 * outbox publishes it again later.
 *
 * Consuming (DESIGN.md invariant 4): basic.qos prefetch_count = prefetch, global (one
 * limit for all the consumed queues of the channel) on classic queues; quorum queues only
 * support per-consumer limits, so there each consumed queue gets the limit and a change
 * re-creates the consumers. set_prefetch(0) cancels the consumers and gives back (reject,
 * requeue) what was delivered but not returned by next() and whatever arrives before the
 * cancel-ok. Delivery tags returned by next() carry the consume channel's incarnation in
 * their top 16 bits: acking a tag of a connection that has since been lost fails cleanly
 * (the broker requeued that message) instead of closing the new channel. A consumer
 * cancelled by the server (its queue was deleted) is declared and consumed again.
 *
 * Resilience (invariant 7): when the connection drops (socket error, heartbeat timeout,
 * connection.close from the server), the I/O thread reconnects with a backoff of 100 ms
 * doubling to 5 s, declares the topology and the queues again, and resumes consuming and
 * publishing. publish waits up to publish_timeout for a connection and the confirms, then
 * returns an error (the outbox keeps the rows).
 *
 * Errors are one line naming the server and what is wrong, never the password:
 *   cannot connect to RabbitMQ at 127.0.0.1:5999: connection refused
 *   RabbitMQ at 127.0.0.1:5672: login refused for user 'gust' (ACCESS_REFUSED) */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <cjson/cJSON.h>

#include "broker-adapters/broker.h"
#include "core/log.h"
#include "core/util.h"

#define RMQ_EXCHANGE "gust"
#define RMQ_DLX "gust.dlx"
#define RMQ_DEAD "gust.dead"
#define CH_PUB 1
#define CH_CON 2
#define CH_ADM 3
#define FRAME_MAX 131072
#define BODY_MAX 65536            /* larger bodies are not ours: dead-lettered */
#define RPC_TIMEOUT_MS 10000
#define OP_TIMEOUT_MS 5000        /* ack/reject/set_prefetch wait at most this */
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
    int64_t last_rx;
    int64_t backoff_ms, next_attempt;
    int lost;                     /* connection lost since the last successful open */
    int retry_soon;               /* something failed in a pass: poll briefly, try again */
    char io_err[512];             /* why the connection failed */
    Assembly as_pub, as_con;
} RmqBroker;

/* ---- small helpers -------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wake_io(RmqBroker *b)
{
    uint64_t one = 1;
    if (write(b->wake_fd, &one, sizeof one) < 0) { /* full counter: it is awake anyway */ }
}

/* Wait on cv until deadline (monotonic ms); mu held. */
static void cv_wait_until(RmqBroker *b, int64_t deadline)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(deadline / 1000);
    ts.tv_nsec = (long)(deadline % 1000) * 1000000L;
    pthread_cond_timedwait(&b->cv, &b->mu, &ts);
}

static const char *bytes_str(amqp_bytes_t by, char *out, size_t outlen)
{
    size_t n = by.len < outlen - 1 ? by.len : outlen - 1;
    if (n) memcpy(out, by.bytes, n);
    out[n] = '\0';
    return out;
}

/* "connection refused" rather than "Connection refused". */
static void lower_first(char *s)
{
    if (s[0] && isupper((unsigned char)s[0]) && !(s[1] && isupper((unsigned char)s[1])))
        s[0] = (char)tolower((unsigned char)s[0]);
}

static const char *errno_text(int e, char *buf, size_t n)
{
    snprintf(buf, n, "%s", strerror(e));
    lower_first(buf);
    return buf;
}

/* A printable prefix of a message body for a log line. */
static void body_prefix(const char *body, size_t len, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < len && o + 4 < outlen && i < 80; i++) {
        unsigned char c = (unsigned char)body[i];
        out[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len > 80 && o + 4 < outlen) { memcpy(out + o, "...", 3); o += 3; }
    out[o] = '\0';
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

static RmqQueue *queue_find(RmqBroker *b, const char *name)
{
    for (RmqQueue *q = b->queues; q; q = q->next)
        if (strcmp(q->name, name) == 0) return q;
    return NULL;
}

static RmqQueue *queue_get(RmqBroker *b, const char *name)
{
    RmqQueue *q = queue_find(b, name);
    if (q) return q;
    q = xcalloc(1, sizeof *q);
    util_strlcpy(q->name, name, sizeof q->name);
    RmqQueue **pp = &b->queues;
    while (*pp) pp = &(*pp)->next;
    *pp = q;
    return q;
}

static RmqQueue *queue_by_ctag(RmqBroker *b, const char *ctag)
{
    for (RmqQueue *q = b->queues; q; q = q->next)
        if (q->ctag_epoch == b->epoch && strcmp(q->ctag, ctag) == 0) return q;
    return NULL;
}

static void push_tag(uint64_t **arr, size_t *n, size_t *cap, uint64_t tag)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *arr = xrealloc(*arr, *cap * sizeof **arr);
    }
    (*arr)[(*n)++] = tag;
}

static int held_remove(RmqBroker *b, uint64_t tag)
{
    for (size_t i = 0; i < b->n_held; i++) {
        if (b->held[i] == tag) {
            b->held[i] = b->held[--b->n_held];
            return 1;
        }
    }
    return 0;
}

static void buffer_clear(RmqBroker *b)
{
    for (Delivery *d = b->buf_head, *nx; d; d = nx) {
        nx = d->next;
        free(d);
    }
    b->buf_head = b->buf_tail = NULL;
}

/* ---- URL ------------------------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into out; -1 on a bad escape or overflow. */
static int pct_decode(const char *s, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;
            int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
            if (h < 0 || l < 0) return -1;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (o + 1 >= outlen) return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static int parse_int_opt(const char *key, const char *v, int lo, int hi, int *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (!*v || *end || errno || x < lo || x > hi) {
        snprintf(err, errlen, "broker.url: option %s=%s: want a whole number from %d to %d", key, v, lo, hi);
        return -1;
    }
    *out = (int)x;
    return 0;
}

static int parse_url(const char *url, RmqConfig *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    const char *p;
    if (strncmp(url, "amqp://", 7) == 0) {
        p = url + 7;
        c->port = 5672;
    } else if (strncmp(url, "amqps://", 8) == 0) {
        p = url + 8;
        c->tls = 1;
        c->port = 5671;
    } else {
        snprintf(err, errlen, "broker.url: not an amqp:// or amqps:// URL");
        return -1;
    }
    c->heartbeat = 10;
    c->connect_timeout_ms = 5000;
    c->publish_timeout_ms = 10000;
    c->verify = 1;
    util_strlcpy(c->user, "guest", sizeof c->user);
    util_strlcpy(c->pass, "guest", sizeof c->pass);
    util_strlcpy(c->vhost, "/", sizeof c->vhost);

    size_t rest = strcspn(p, "?#");
    const char *query = p[rest] == '?' ? p + rest + 1 : NULL;
    /* userinfo ends at the last '@' before the path; the path starts at the first '/' after it */
    const char *at = NULL;
    for (const char *s = p; s < p + rest; s++)
        if (*s == '@') at = s;
    const char *hp = at ? at + 1 : p;
    const char *slash = memchr(hp, '/', (size_t)(p + rest - hp));
    const char *hp_end = slash ? slash : p + rest;
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *uend = colon ? colon : at;
        if (pct_decode(p, (size_t)(uend - p), c->user, sizeof c->user) != 0) {
            snprintf(err, errlen, "broker.url: bad %%-escape in the user name");
            return -1;
        }
        if (colon && pct_decode(colon + 1, (size_t)(at - colon - 1), c->pass, sizeof c->pass) != 0) {
            snprintf(err, errlen, "broker.url: bad %%-escape in the password");
            return -1;
        }
        if (!colon) c->pass[0] = '\0';
    }
    /* host[:port], [v6]:port */
    const char *host = hp, *host_end, *port = NULL;
    if (*hp == '[') {
        const char *rb = memchr(hp, ']', (size_t)(hp_end - hp));
        if (!rb) {
            snprintf(err, errlen, "broker.url: unterminated '[' in the host");
            return -1;
        }
        host = hp + 1;
        host_end = rb;
        if (rb + 1 < hp_end && rb[1] == ':') port = rb + 2;
    } else {
        const char *colon = memchr(hp, ':', (size_t)(hp_end - hp));
        host_end = colon ? colon : hp_end;
        if (colon) port = colon + 1;
    }
    if (host_end == host) {
        util_strlcpy(c->host, "localhost", sizeof c->host);
    } else if (pct_decode(host, (size_t)(host_end - host), c->host, sizeof c->host) != 0) {
        snprintf(err, errlen, "broker.url: bad host");
        return -1;
    }
    if (port) {
        char pb[16];
        size_t n = (size_t)(hp_end - port);
        if (n == 0 || n >= sizeof pb) {
            snprintf(err, errlen, "broker.url: bad port");
            return -1;
        }
        memcpy(pb, port, n);
        pb[n] = '\0';
        if (parse_int_opt("port", pb, 1, 65535, &c->port, err, errlen) != 0) {
            snprintf(err, errlen, "broker.url: bad port '%s'", pb);
            return -1;
        }
    }
    if (slash && slash + 1 < p + rest) {
        if (pct_decode(slash + 1, (size_t)(p + rest - slash - 1), c->vhost, sizeof c->vhost) != 0) {
            snprintf(err, errlen, "broker.url: bad %%-escape in the vhost");
            return -1;
        }
    }
    if (strchr(c->host, ':'))
        snprintf(c->where, sizeof c->where, "[%s]:%d", c->host, c->port);
    else
        snprintf(c->where, sizeof c->where, "%s:%d", c->host, c->port);

    static const char *const opts[] = {"heartbeat", "queue_type", "connect_timeout", "publish_timeout",
                                       "cacert",    "cert",       "key",             "verify"};
    while (query && *query) {
        size_t n = strcspn(query, "&#");
        char kv[1024];
        if (n >= sizeof kv) {
            snprintf(err, errlen, "broker.url: option too long");
            return -1;
        }
        memcpy(kv, query, n);
        kv[n] = '\0';
        query = query[n] == '&' ? query + n + 1 : NULL;
        if (!kv[0]) continue;
        char *eq = strchr(kv, '=');
        char key[64], val[1024];
        size_t kn = eq ? (size_t)(eq - kv) : strlen(kv);
        if (kn >= sizeof key) kn = sizeof key - 1;
        memcpy(key, kv, kn);
        key[kn] = '\0';
        if (pct_decode(eq ? eq + 1 : "", eq ? strlen(eq + 1) : 0, val, sizeof val) != 0) {
            snprintf(err, errlen, "broker.url: bad %%-escape in option %s", key);
            return -1;
        }
        int rc = 0;
        if (strcmp(key, "heartbeat") == 0) rc = parse_int_opt(key, val, 0, 3600, &c->heartbeat, err, errlen);
        else if (strcmp(key, "connect_timeout") == 0)
            rc = parse_int_opt(key, val, 100, 600000, &c->connect_timeout_ms, err, errlen);
        else if (strcmp(key, "publish_timeout") == 0)
            rc = parse_int_opt(key, val, 1, 3600000, &c->publish_timeout_ms, err, errlen);
        else if (strcmp(key, "verify") == 0) rc = parse_int_opt(key, val, 0, 1, &c->verify, err, errlen);
        else if (strcmp(key, "cacert") == 0) util_strlcpy(c->cacert, val, sizeof c->cacert);
        else if (strcmp(key, "cert") == 0) util_strlcpy(c->cert, val, sizeof c->cert);
        else if (strcmp(key, "key") == 0) util_strlcpy(c->key, val, sizeof c->key);
        else if (strcmp(key, "queue_type") == 0) {
            if (strcmp(val, "quorum") == 0) c->quorum = 1;
            else if (strcmp(val, "classic") == 0) c->quorum = 0;
            else {
                snprintf(err, errlen, "broker.url: queue_type=%s: want classic or quorum", val);
                return -1;
            }
        } else {
            const char *near = util_closest(key, opts, GUST_ARRAY_LEN(opts));
            if (near)
                snprintf(err, errlen, "broker.url: unknown option '%s' (did you mean '%s'?)", key, near);
            else
                snprintf(err, errlen, "broker.url: unknown option '%s' (known: heartbeat, queue_type, "
                         "connect_timeout, publish_timeout, cacert, cert, key, verify)", key);
            return -1;
        }
        if (rc != 0) return -1;
    }
    return 0;
}

/* ---- connection ----------------------------------------------------------------------- */

/* TCP connect with a timeout; the socket is non-blocking, as librabbitmq wants it. */
static int tcp_connect(const RmqConfig *c, char *why, size_t whylen)
{
    char portstr[16];
    snprintf(portstr, sizeof portstr, "%d", c->port);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int gai = getaddrinfo(c->host, portstr, &hints, &res);
    if (gai != 0) {
        snprintf(why, whylen, "cannot resolve host '%s': %s", c->host, gai_strerror(gai));
        return -1;
    }
    int64_t deadline = now_ms() + c->connect_timeout_ms;
    int fd = -1, last_errno = 0, timed_out = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        int s = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
        if (s < 0) {
            last_errno = errno;
            continue;
        }
        int rc = connect(s, ai->ai_addr, ai->ai_addrlen);
        if (rc != 0 && errno == EINPROGRESS) {
            struct pollfd pfd = {s, POLLOUT, 0};
            int64_t left = deadline - now_ms();
            int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
            if (pr == 0) {
                timed_out = 1;
                close(s);
                continue;
            }
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (pr < 0 || getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0) soerr = errno;
            rc = soerr ? -1 : 0;
            if (soerr) errno = soerr;
        }
        if (rc != 0) {
            last_errno = errno;
            close(s);
            continue;
        }
        int one = 1;
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        setsockopt(s, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
        fd = s;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        char eb[128];
        if (last_errno) snprintf(why, whylen, "%s", errno_text(last_errno, eb, sizeof eb));
        else if (timed_out) snprintf(why, whylen, "no answer within %d ms", c->connect_timeout_ms);
        else snprintf(why, whylen, "no address");
    }
    return fd;
}

/* "ACCESS_REFUSED - Login was refused ..." → "ACCESS_REFUSED". */
static void reply_code_name(const char *text, char *out, size_t n)
{
    size_t k = strcspn(text, " -");
    if (k >= n) k = n - 1;
    memcpy(out, text, k);
    out[k] = '\0';
}

/* The server's reason for closing a channel or the connection, as text; fills *code. */
static const char *server_reason(amqp_rpc_reply_t r, int *code, char *out, size_t n)
{
    *code = 0;
    out[0] = '\0';
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION) {
        snprintf(out, n, "%s", amqp_error_string2(r.library_error));
        lower_first(out);
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
        if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            amqp_connection_close_t *m = r.reply.decoded;
            *code = m->reply_code;
            bytes_str(m->reply_text, out, n);
        } else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_t *m = r.reply.decoded;
            *code = m->reply_code;
            bytes_str(m->reply_text, out, n);
        } else {
            snprintf(out, n, "unexpected method 0x%08x", (unsigned)r.reply.id);
        }
    } else {
        snprintf(out, n, "no reply");
    }
    return out;
}

static void describe_login_error(const RmqConfig *c, amqp_rpc_reply_t r, char *err, size_t errlen)
{
    int code;
    char text[512], name[64];
    server_reason(r, &code, text, sizeof text);
    reply_code_name(text, name, sizeof name);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && code == AMQP_ACCESS_REFUSED) {
        snprintf(err, errlen, "RabbitMQ at %s: login refused for user '%s' (%s)", c->where, c->user, name);
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && code == AMQP_NOT_ALLOWED &&
               strstr(text, "not found")) {
        snprintf(err, errlen, "RabbitMQ at %s: vhost '%s' not found (%s)", c->where, c->vhost, name);
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && code == AMQP_NOT_ALLOWED) {
        snprintf(err, errlen, "RabbitMQ at %s: access to vhost '%s' refused for user '%s' (%s)", c->where,
                 c->vhost, c->user, name);
    } else if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION) {
        snprintf(err, errlen, "RabbitMQ at %s: login failed: %s", c->where, text);
    } else if (r.library_error == AMQP_STATUS_CONNECTION_CLOSED || r.library_error == AMQP_STATUS_SOCKET_CLOSED) {
        snprintf(err, errlen, "RabbitMQ at %s: the server closed the connection during login for user '%s' "
                 "(wrong password or vhost?)", c->where, c->user);
    } else if (r.library_error == AMQP_STATUS_TIMEOUT) {
        snprintf(err, errlen, "RabbitMQ at %s: no answer to the AMQP handshake within %d ms "
                 "(server stuck, or not an AMQP port?)", c->where,
                 c->connect_timeout_ms);
    } else {
        snprintf(err, errlen, "RabbitMQ at %s: login failed: %s", c->where, text);
    }
}

static void tv_from_ms(struct timeval *tv, int ms)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

/* Answer a server's channel.close / connection.close. */
static void send_close_ok(amqp_connection_state_t conn, amqp_channel_t ch, int connection)
{
    if (connection) {
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    } else {
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    }
}

/* An RPC on a channel failed. A channel error closed only that channel: answer, reopen it
 * (confirm.select again on the publish channel) and return 1 with the reason in err. A
 * connection-level failure returns -1 (the caller treats the connection as lost). */
static int rpc_failed(amqp_connection_state_t conn, const RmqConfig *c, amqp_channel_t ch, amqp_rpc_reply_t r,
                      const char *what, char *err, size_t errlen)
{
    int code;
    char text[512];
    server_reason(r, &code, text, sizeof text);
    snprintf(err, errlen, "RabbitMQ at %s: %s: %s", c->where, what, text);
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        send_close_ok(conn, ch, 0);
        amqp_maybe_release_buffers_on_channel(conn, ch);
        amqp_channel_open(conn, ch);
        amqp_rpc_reply_t o = amqp_get_rpc_reply(conn);
        if (o.reply_type != AMQP_RESPONSE_NORMAL) return -1;
        if (ch == CH_PUB) {
            amqp_confirm_select(conn, ch);
            if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) return -1;
        }
        return 1;
    }
    if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CONNECTION_CLOSE_METHOD)
        send_close_ok(conn, 0, 1);
    return -1;
}

static int declare_exchange(amqp_connection_state_t conn, const RmqConfig *c, const char *name, const char *type,
                            char *err, size_t errlen)
{
    amqp_exchange_declare(conn, CH_ADM, amqp_cstring_bytes(name), amqp_cstring_bytes(type), 0, 1, 0, 0,
                          amqp_empty_table);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) return 0;
    char what[160];
    snprintf(what, sizeof what, "cannot declare exchange '%s'", name);
    return rpc_failed(conn, c, CH_ADM, r, what, err, errlen);
}

/* Declare a task queue and bind it: 0 done, 1 refused (err), -1 connection lost (err). */
static int declare_queue(amqp_connection_state_t conn, const RmqConfig *c, const char *name, char *err,
                         size_t errlen)
{
    amqp_table_entry_t e[2];
    e[0].key = amqp_cstring_bytes("x-dead-letter-exchange");
    e[0].value.kind = AMQP_FIELD_KIND_UTF8;
    e[0].value.value.bytes = amqp_cstring_bytes(RMQ_DLX);
    if (c->quorum) {
        e[1].key = amqp_cstring_bytes("x-queue-type");
        e[1].value.kind = AMQP_FIELD_KIND_UTF8;
        e[1].value.value.bytes = amqp_cstring_bytes("quorum");
    } else {
        e[1].key = amqp_cstring_bytes("x-max-priority");
        e[1].value.kind = AMQP_FIELD_KIND_I32;
        e[1].value.value.i32 = 10;
    }
    amqp_table_t args = {2, e};
    char what[300];
    amqp_queue_declare(conn, CH_ADM, amqp_cstring_bytes(name), 0, 1, 0, 0, args);
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(what, sizeof what, "cannot declare queue '%s'%s", name,
                 r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
                         ((amqp_channel_close_t *)r.reply.decoded)->reply_code == AMQP_PRECONDITION_FAILED
                     ? " (it exists with other settings: delete it, or set broker.queue_type to match)"
                     : "");
        int rc = rpc_failed(conn, c, CH_ADM, r, what, err, errlen);
        amqp_maybe_release_buffers_on_channel(conn, CH_ADM);
        return rc;
    }
    amqp_queue_bind(conn, CH_ADM, amqp_cstring_bytes(name), amqp_cstring_bytes(RMQ_EXCHANGE),
                    amqp_cstring_bytes(name), amqp_empty_table);
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        snprintf(what, sizeof what, "cannot bind queue '%s'", name);
        int rc = rpc_failed(conn, c, CH_ADM, r, what, err, errlen);
        amqp_maybe_release_buffers_on_channel(conn, CH_ADM);
        return rc;
    }
    amqp_maybe_release_buffers_on_channel(conn, CH_ADM);
    return 0;
}

/* Connect, log in, open the channels and declare the fixed topology. */
static amqp_connection_state_t rmq_open(const RmqConfig *c, char *err, size_t errlen)
{
    amqp_connection_state_t conn = amqp_new_connection();
    if (!conn) {
        snprintf(err, errlen, "RabbitMQ at %s: out of memory", c->where);
        return NULL;
    }
    struct timeval tv;
    tv_from_ms(&tv, c->connect_timeout_ms);
    if (c->tls) {
        amqp_socket_t *s = amqp_ssl_socket_new(conn);
        if (!s) {
            snprintf(err, errlen, "cannot connect to RabbitMQ at %s: cannot set up TLS", c->where);
            goto fail;
        }
        amqp_ssl_socket_set_verify_peer(s, c->verify);
        amqp_ssl_socket_set_verify_hostname(s, c->verify);
        /* librabbitmq 0.11 does not load the system trust store itself */
        const char *ca = c->cacert[0] ? c->cacert : access(SYSTEM_CA_BUNDLE, R_OK) == 0 ? SYSTEM_CA_BUNDLE : NULL;
        if (c->verify && ca && amqp_ssl_socket_set_cacert(s, ca) != AMQP_STATUS_OK) {
            snprintf(err, errlen, "RabbitMQ at %s: cannot read the CA certificates in %s", c->where, ca);
            goto fail;
        }
        if (c->cert[0] && amqp_ssl_socket_set_key(s, c->cert, c->key[0] ? c->key : c->cert) != AMQP_STATUS_OK) {
            snprintf(err, errlen, "RabbitMQ at %s: cannot read the client certificate %s or its key", c->where,
                     c->cert);
            goto fail;
        }
        errno = 0;
        int rc = amqp_socket_open_noblock(s, c->host, c->port, &tv);
        if (rc != AMQP_STATUS_OK) {
            char eb[128], t[200];
            snprintf(t, sizeof t, "%s", amqp_error_string2(rc));
            lower_first(t);
            if (rc == AMQP_STATUS_SOCKET_ERROR && errno)
                snprintf(err, errlen, "cannot connect to RabbitMQ at %s: %s", c->where,
                         errno_text(errno, eb, sizeof eb));
            else if (rc == AMQP_STATUS_SSL_CONNECTION_FAILED)
                snprintf(err, errlen, "cannot connect to RabbitMQ at %s: %s (is TLS enabled on that port?)",
                         c->where, t);
            else if (rc == AMQP_STATUS_SSL_PEER_VERIFY_FAILED || rc == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED)
                snprintf(err, errlen, "cannot connect to RabbitMQ at %s: %s (set cacert= in broker.url, or verify=0 "
                         "to skip the check)", c->where, t);
            else
                snprintf(err, errlen, "cannot connect to RabbitMQ at %s: %s", c->where, t);
            goto fail;
        }
    } else {
        char why[300];
        int fd = tcp_connect(c, why, sizeof why);
        if (fd < 0) {
            snprintf(err, errlen, "cannot connect to RabbitMQ at %s: %s", c->where, why);
            goto fail;
        }
        amqp_socket_t *s = amqp_tcp_socket_new(conn);
        if (!s) {
            close(fd);
            snprintf(err, errlen, "RabbitMQ at %s: out of memory", c->where);
            goto fail;
        }
        amqp_tcp_socket_set_sockfd(s, fd);
    }
    amqp_set_handshake_timeout(conn, &tv);
    struct timeval rpc;
    tv_from_ms(&rpc, RPC_TIMEOUT_MS);
    amqp_set_rpc_timeout(conn, &rpc);

    /* consumer_cancel_notify: tell us when a queue we consume is deleted */
    amqp_table_entry_t caps[5];
    const char *capnames[] = {"consumer_cancel_notify", "publisher_confirms", "basic.nack", "connection.blocked",
                              "authentication_failure_close"};
    for (int i = 0; i < 5; i++) {
        caps[i].key = amqp_cstring_bytes(capnames[i]);
        caps[i].value.kind = AMQP_FIELD_KIND_BOOLEAN;
        caps[i].value.value.boolean = 1;
    }
    char cname[64];
    snprintf(cname, sizeof cname, "gust pid %d", (int)getpid());
    amqp_table_entry_t props[3];
    props[0].key = amqp_cstring_bytes("product");
    props[0].value.kind = AMQP_FIELD_KIND_UTF8;
    props[0].value.value.bytes = amqp_cstring_bytes("gust");
    props[1].key = amqp_cstring_bytes("connection_name");
    props[1].value.kind = AMQP_FIELD_KIND_UTF8;
    props[1].value.value.bytes = amqp_cstring_bytes(cname);
    props[2].key = amqp_cstring_bytes("capabilities");
    props[2].value.kind = AMQP_FIELD_KIND_TABLE;
    props[2].value.value.table.num_entries = 5;
    props[2].value.value.table.entries = caps;
    amqp_table_t ptable = {3, props};

    amqp_rpc_reply_t r = amqp_login_with_properties(conn, c->vhost, 0, FRAME_MAX, c->heartbeat, &ptable,
                                                    AMQP_SASL_METHOD_PLAIN, c->user, c->pass);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        describe_login_error(c, r, err, errlen);
        goto fail;
    }
    for (amqp_channel_t ch = CH_PUB; ch <= CH_ADM; ch++) {
        amqp_channel_open(conn, ch);
        r = amqp_get_rpc_reply(conn);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            int code;
            char text[512];
            snprintf(err, errlen, "RabbitMQ at %s: cannot open a channel: %s", c->where,
                     server_reason(r, &code, text, sizeof text));
            goto fail;
        }
    }
    amqp_confirm_select(conn, CH_PUB);
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        int code;
        char text[512];
        snprintf(err, errlen, "RabbitMQ at %s: publisher confirms refused: %s", c->where,
                 server_reason(r, &code, text, sizeof text));
        goto fail;
    }
    if (declare_exchange(conn, c, RMQ_EXCHANGE, "direct", err, errlen) != 0) goto fail;
    if (declare_exchange(conn, c, RMQ_DLX, "fanout", err, errlen) != 0) goto fail;
    amqp_queue_declare(conn, CH_ADM, amqp_cstring_bytes(RMQ_DEAD), 0, 1, 0, 0, amqp_empty_table);
    r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL) {
        amqp_queue_bind(conn, CH_ADM, amqp_cstring_bytes(RMQ_DEAD), amqp_cstring_bytes(RMQ_DLX),
                        amqp_cstring_bytes(""), amqp_empty_table);
        r = amqp_get_rpc_reply(conn);
    }
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        int rc = rpc_failed(conn, c, CH_ADM, r, "cannot declare the dead-letter queue '" RMQ_DEAD "'", err, errlen);
        if (rc < 0) goto fail;
        log_warn("broker", "%s (dead letters may be lost)", err); /* it exists otherwise: go on */
    }
    amqp_maybe_release_buffers(conn);
    return conn;
fail:
    amqp_destroy_connection(conn);
    return NULL;
}

/* ---- the I/O thread ------------------------------------------------------------------- */

static void pub_finish_if_done(RmqBroker *b)
{
    if (b->pub_active && b->pub_left == 0) {
        b->pub_active = 0;
        pthread_cond_broadcast(&b->cv);
    }
}

static void pub_fail(RmqBroker *b, PubItem *it, const char *why)
{
    if (it->state == PUB_ACKED || it->state == PUB_FAILED) return;
    it->state = PUB_FAILED;
    b->pub_left--;
    if (!b->pub_err[0]) util_strlcpy(b->pub_err, why, sizeof b->pub_err);
}

/* A new connection is up (mu held, or before the I/O thread starts). */
static void on_connected(RmqBroker *b, amqp_connection_state_t conn)
{
    b->conn = conn;
    b->connected = 1;
    b->gen++;
    b->epoch++;
    b->pub_seq = 0;
    b->qos_applied = -1;
    b->last_rx = now_ms();
    b->backoff_ms = BACKOFF_MIN_MS;
    b->conn_err[0] = '\0';
    for (RmqQueue *q = b->queues; q; q = q->next) {
        q->failed = 0;
        if (q->known || q->consume) q->need_declare = 1;
    }
    if (b->lost) log_info("broker", "RabbitMQ at %s: reconnected", b->cfg.where);
    b->lost = 0;
    pthread_cond_broadcast(&b->cv);
}

static void assembly_reset(Assembly *a)
{
    a->active = 0;
    a->size = a->got = 0;
    a->too_big = 0;
}

/* The connection is gone (mu held). */
static void connection_lost(RmqBroker *b, const char *why)
{
    if (!b->closing) log_warn("broker", "RabbitMQ at %s: connection lost: %s; reconnecting", b->cfg.where, why);
    snprintf(b->conn_err, sizeof b->conn_err, "connection lost: %s", why);
    amqp_connection_state_t c = b->conn;
    b->conn = NULL;
    b->connected = 0;
    b->lost = 1;
    pthread_mutex_unlock(&b->mu);
    amqp_destroy_connection(c); /* closes the socket: the broker requeues our unacked messages */
    pthread_mutex_lock(&b->mu);
    b->epoch++;
    buffer_clear(b);
    b->n_held = 0;
    b->n_requeue = 0;
    if (b->op_pending) {
        b->op_pending = 0;
        b->op_rc = -1;
        b->op_done_id = b->op_id;
        snprintf(b->op_err, sizeof b->op_err, "RabbitMQ at %s: connection lost before the ack was sent: the "
                 "broker requeues the message", b->cfg.where);
    }
    if (b->pub_active) {
        char w[512];
        snprintf(w, sizeof w, "RabbitMQ at %s: connection lost before the broker confirmed", b->cfg.where);
        for (size_t i = 0; i < b->n_pub; i++)
            if (b->pub[i].state == PUB_SENT) pub_fail(b, &b->pub[i], w);
        pub_finish_if_done(b);
    }
    assembly_reset(&b->as_pub);
    assembly_reset(&b->as_con);
    b->qos_applied = -1;
    b->backoff_ms = BACKOFF_MIN_MS;
    b->next_attempt = now_ms() + b->backoff_ms;
    pthread_cond_broadcast(&b->cv);
}

/* Declare q on the current connection (mu held; released around the RPC). -1: connection lost. */
static int declare_locked(RmqBroker *b, RmqQueue *q)
{
    char name[128], err[512];
    util_strlcpy(name, q->name, sizeof name);
    pthread_mutex_unlock(&b->mu);
    int rc = declare_queue(b->conn, &b->cfg, name, err, sizeof err);
    pthread_mutex_lock(&b->mu);
    if (rc == 0) {
        q->declared_gen = b->gen;
        q->known = 1;
        q->failed = 0;
        q->err[0] = '\0';
        b->last_rx = now_ms();
    } else if (rc > 0) {
        q->failed = 1;
        q->failed_batch = b->pub_batch;
        util_strlcpy(q->err, err, sizeof q->err);
        log_warn("broker", "%s", err);
    } else {
        q->need_declare = 1; /* again once reconnected */
        util_strlcpy(b->io_err, err, sizeof b->io_err);
    }
    return rc < 0 ? -1 : 0;
}

/* The consume channel was closed by the server (mu held): everything on it is gone. */
static int consume_channel_reset(RmqBroker *b)
{
    b->epoch++;
    buffer_clear(b);
    b->n_held = 0;
    b->n_requeue = 0;
    b->qos_applied = -1;
    assembly_reset(&b->as_con);
    return 0;
}

static int publish_channel_reset(RmqBroker *b, const char *why)
{
    b->pub_seq = 0;
    assembly_reset(&b->as_pub);
    if (b->pub_active) {
        for (size_t i = 0; i < b->n_pub; i++)
            if (b->pub[i].state == PUB_SENT) pub_fail(b, &b->pub[i], why);
        pub_finish_if_done(b);
    }
    return 0;
}

/* A consume-channel RPC failed (mu held). -1: connection lost. */
static int consume_rpc_failed(RmqBroker *b, amqp_rpc_reply_t r, const char *what)
{
    char err[512];
    pthread_mutex_unlock(&b->mu);
    int rc = rpc_failed(b->conn, &b->cfg, CH_CON, r, what, err, sizeof err);
    pthread_mutex_lock(&b->mu);
    if (rc < 0) {
        util_strlcpy(b->io_err, err, sizeof b->io_err);
        return -1;
    }
    log_warn("broker", "%s", err);
    consume_channel_reset(b);
    b->retry_soon = 1;
    return 0;
}

static int cancel_consumer(RmqBroker *b, RmqQueue *q)
{
    char ctag[256];
    util_strlcpy(ctag, q->ctag, sizeof ctag);
    q->ctag_epoch = 0;
    pthread_mutex_unlock(&b->mu);
    amqp_basic_cancel(b->conn, CH_CON, amqp_cstring_bytes(ctag));
    amqp_rpc_reply_t r = amqp_get_rpc_reply(b->conn);
    pthread_mutex_lock(&b->mu);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) return consume_rpc_failed(b, r, "cannot cancel a consumer");
    amqp_maybe_release_buffers_on_channel(b->conn, CH_CON);
    return 0;
}

/* Bring the consumers in line with what the caller asked (mu held). -1: connection lost. */
static int consume_reconcile(RmqBroker *b)
{
    int want = b->consuming && b->prefetch > 0;
    for (RmqQueue *q = b->queues; q; q = q->next) {
        if (q->ctag_epoch == b->epoch && (!want || !q->consume))
            if (cancel_consumer(b, q) < 0) return -1;
    }
    if (!want) return 0;
    int pf = b->prefetch > 65535 ? 65535 : b->prefetch;
    if (b->qos_applied != pf) {
        uint64_t epoch = b->epoch;
        if (b->cfg.quorum) /* per-consumer limits are fixed at basic.consume: re-create them */
            for (RmqQueue *q = b->queues; q; q = q->next)
                if (q->ctag_epoch == b->epoch && cancel_consumer(b, q) < 0) return -1;
        if (b->epoch != epoch) return 0; /* the channel was reset: next pass */
        pthread_mutex_unlock(&b->mu);
        amqp_basic_qos(b->conn, CH_CON, 0, (uint16_t)pf, b->cfg.quorum ? 0 : 1);
        amqp_rpc_reply_t r = amqp_get_rpc_reply(b->conn);
        pthread_mutex_lock(&b->mu);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) return consume_rpc_failed(b, r, "cannot set the prefetch");
        amqp_maybe_release_buffers_on_channel(b->conn, CH_CON);
        if (b->epoch != epoch) return 0;
        b->qos_applied = pf;
    }
    for (RmqQueue *q = b->queues; q; q = q->next) {
        if (!q->consume || q->ctag_epoch == b->epoch) continue;
        if (q->declared_gen != b->gen) {
            if (q->failed) continue; /* refused: consume() reported it; asked again by the next consume() */
            if (declare_locked(b, q) < 0) return -1;
            if (q->declared_gen != b->gen) continue;
        }
        char name[128];
        util_strlcpy(name, q->name, sizeof name);
        uint64_t epoch = b->epoch;
        pthread_mutex_unlock(&b->mu);
        amqp_basic_consume_ok_t *ok = amqp_basic_consume(b->conn, CH_CON, amqp_cstring_bytes(name), amqp_empty_bytes,
                                                         0, 0, 0, amqp_empty_table);
        amqp_rpc_reply_t r = amqp_get_rpc_reply(b->conn);
        char ctag[256] = "";
        if (ok) bytes_str(ok->consumer_tag, ctag, sizeof ctag);
        pthread_mutex_lock(&b->mu);
        if (r.reply_type != AMQP_RESPONSE_NORMAL || !ok) {
            char what[200];
            snprintf(what, sizeof what, "cannot consume queue '%s'", name);
            int code = 0;
            if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD)
                code = ((amqp_channel_close_t *)r.reply.decoded)->reply_code;
            if (code == AMQP_NOT_FOUND) {
                q->declared_gen = 0; /* deleted meanwhile: declare it again on the next pass */
            } else if (code) { /* refused (exclusive consumer, permissions): report, do not retry */
                q->failed = 1;
                int64_t len = snprintf(q->err, sizeof q->err, "RabbitMQ at %s: %s: ", b->cfg.where, what);
                char text[400];
                bytes_str(((amqp_channel_close_t *)r.reply.decoded)->reply_text, text, sizeof text);
                if (len > 0 && (size_t)len < sizeof q->err)
                    util_strlcpy(q->err + len, text, sizeof q->err - (size_t)len);
            }
            return consume_rpc_failed(b, r, what);
        }
        amqp_maybe_release_buffers_on_channel(b->conn, CH_CON);
        b->last_rx = now_ms();
        if (b->epoch != epoch) continue;
        util_strlcpy(q->ctag, ctag, sizeof q->ctag);
        q->ctag_epoch = b->epoch;
    }
    return 0;
}

static size_t encode_body(const BrokerMsg *m, const char *queue, char *out, size_t outlen)
{
    StrBuf sb = {0};
    sb_append(&sb, "{\"ti_id\":\"");
    for (const char *s = m->ti_id; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') sb_printf(&sb, "\\%c", c);
        else if (c < 0x20) sb_printf(&sb, "\\u%04x", c);
        else sb_appendc(&sb, (char)c);
    }
    sb_printf(&sb, "\",\"try_number\":%d,\"queue\":\"", m->try_number);
    for (const char *s = queue; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') sb_printf(&sb, "\\%c", c);
        else if (c < 0x20) sb_printf(&sb, "\\u%04x", c);
        else sb_appendc(&sb, (char)c);
    }
    sb_printf(&sb, "\",\"priority\":%d}", m->priority);
    size_t n = util_strlcpy(out, sb_str(&sb), outlen);
    sb_free(&sb);
    return n < outlen ? n : outlen - 1;
}

/* Send what is unsent in the current batch (mu held). -1: connection lost. */
static int publish_unsent(RmqBroker *b)
{
    for (size_t i = 0; i < b->n_pub && b->pub_active; i++) {
        PubItem *it = &b->pub[i];
        if (it->state != PUB_UNSENT) continue;
        const char *qname = it->msg.queue[0] ? it->msg.queue : "default";
        RmqQueue *q = queue_get(b, qname);
        if (q->declared_gen != b->gen) {
            if (!(q->failed && q->failed_batch == b->pub_batch))
                if (declare_locked(b, q) < 0) return -1;
            if (q->declared_gen != b->gen) {
                pub_fail(b, it, q->err[0] ? q->err : "queue not declared");
                continue;
            }
        }
        char body[2048];
        size_t blen = encode_body(&it->msg, qname, body, sizeof body);
        amqp_basic_properties_t props;
        memset(&props, 0, sizeof props);
        props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_PRIORITY_FLAG;
        props.content_type = amqp_cstring_bytes("application/json");
        props.delivery_mode = 2;
        props.priority = (uint8_t)broker_priority_level(it->msg.priority);
        amqp_bytes_t bb = {blen, body};
        char name[128];
        util_strlcpy(name, qname, sizeof name);
        pthread_mutex_unlock(&b->mu);
        int rc = amqp_basic_publish(b->conn, CH_PUB, amqp_cstring_bytes(RMQ_EXCHANGE), amqp_cstring_bytes(name), 1, 0,
                                    &props, bb);
        pthread_mutex_lock(&b->mu);
        if (rc != AMQP_STATUS_OK) {
            snprintf(b->io_err, sizeof b->io_err, "%s", amqp_error_string2(rc));
            lower_first(b->io_err);
            return -1;
        }
        it->seq = ++b->pub_seq;
        it->state = PUB_SENT;
    }
    pub_finish_if_done(b);
    return 0;
}

/* One pass over what the callers asked for (mu held). -1: connection lost. */
static int reconcile(RmqBroker *b)
{
    b->retry_soon = 0;
    for (RmqQueue *q = b->queues; q; q = q->next) {
        if (!q->need_declare) continue;
        q->need_declare = 0;
        if (declare_locked(b, q) < 0) return -1;
    }
    if (consume_reconcile(b) < 0) return -1;
    while (b->n_requeue) {
        uint64_t t = b->requeue[--b->n_requeue];
        if ((t >> TAG_SHIFT) != (b->epoch & 0xffff)) continue;
        pthread_mutex_unlock(&b->mu);
        int rc = amqp_basic_reject(b->conn, CH_CON, t & TAG_MASK, 1);
        pthread_mutex_lock(&b->mu);
        if (rc != AMQP_STATUS_OK) {
            snprintf(b->io_err, sizeof b->io_err, "%s", amqp_error_string2(rc));
            return -1;
        }
    }
    if (b->op_pending) {
        uint64_t t = b->op_tag, id = b->op_id;
        int ack = b->op_ack, requeue = b->op_requeue;
        b->op_pending = 0;
        int rc = 0;
        if ((t >> TAG_SHIFT) != (b->epoch & 0xffff)) {
            b->op_rc = -1;
            snprintf(b->op_err, sizeof b->op_err, "RabbitMQ at %s: delivery tag %llu is from a channel that has "
                     "since closed: the broker has requeued that message", b->cfg.where,
                     (unsigned long long)(t & TAG_MASK));
        } else {
            pthread_mutex_unlock(&b->mu);
            rc = ack ? amqp_basic_ack(b->conn, CH_CON, t & TAG_MASK, 0)
                     : amqp_basic_reject(b->conn, CH_CON, t & TAG_MASK, requeue);
            pthread_mutex_lock(&b->mu);
            b->op_rc = rc == AMQP_STATUS_OK ? 0 : -1;
            if (rc != AMQP_STATUS_OK)
                snprintf(b->op_err, sizeof b->op_err, "RabbitMQ at %s: cannot send the %s: %s", b->cfg.where,
                         ack ? "ack" : "reject", amqp_error_string2(rc));
        }
        b->op_done_id = id;
        pthread_cond_broadcast(&b->cv);
        if (rc != AMQP_STATUS_OK) {
            snprintf(b->io_err, sizeof b->io_err, "%s", amqp_error_string2(rc));
            return -1;
        }
    }
    if (b->pub_active && publish_unsent(b) < 0) return -1;
    return 0;
}

/* Validate and decode a message body. 1 ok, 0 not ours (why says what is wrong). */
static int decode_body(const char *body, size_t len, BrokerMsg *m, char *why, size_t whylen)
{
    memset(m, 0, sizeof *m);
    if (strlen(body) != len) {
        snprintf(why, whylen, "contains NUL bytes");
        return 0;
    }
    cJSON *j = cJSON_ParseWithOpts(body, NULL, 1);
    if (!j) {
        snprintf(why, whylen, "not JSON");
        return 0;
    }
    int ok = 0;
    const cJSON *ti = cJSON_GetObjectItemCaseSensitive(j, "ti_id");
    const cJSON *tn = cJSON_GetObjectItemCaseSensitive(j, "try_number");
    const cJSON *qu = cJSON_GetObjectItemCaseSensitive(j, "queue");
    const cJSON *pr = cJSON_GetObjectItemCaseSensitive(j, "priority");
    if (!cJSON_IsObject(j)) {
        snprintf(why, whylen, "not a JSON object");
    } else if (!cJSON_IsString(ti)) {
        snprintf(why, whylen, "ti_id %s", ti ? "is not a string" : "is missing");
    } else if (!ti->valuestring[0] || strlen(ti->valuestring) >= sizeof m->ti_id) {
        snprintf(why, whylen, "ti_id is not 1 to %zu characters long", sizeof m->ti_id - 1);
    } else if (!cJSON_IsNumber(tn)) {
        snprintf(why, whylen, "try_number %s", tn ? "is not a number" : "is missing");
    } else if (tn->valuedouble < 0 || tn->valuedouble > INT_MAX || tn->valuedouble != floor(tn->valuedouble)) {
        snprintf(why, whylen, "try_number is not a whole number >= 0");
    } else if (qu && (!cJSON_IsString(qu) || strlen(qu->valuestring) >= sizeof m->queue)) {
        snprintf(why, whylen, "queue is not a string of less than %zu characters", sizeof m->queue);
    } else if (pr && (!cJSON_IsNumber(pr) || pr->valuedouble < INT_MIN || pr->valuedouble > INT_MAX ||
                      pr->valuedouble != floor(pr->valuedouble))) {
        snprintf(why, whylen, "priority is not a whole number");
    } else {
        ok = 1;
        for (const char *s = ti->valuestring; *s; s++)
            if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) ok = 0;
        if (!ok) snprintf(why, whylen, "ti_id has spaces or non-printable characters");
    }
    if (ok) {
        util_strlcpy(m->ti_id, ti->valuestring, sizeof m->ti_id);
        m->try_number = (int)tn->valuedouble;
        if (qu) util_strlcpy(m->queue, qu->valuestring, sizeof m->queue);
        if (pr) m->priority = (int)pr->valuedouble;
    }
    cJSON_Delete(j);
    return ok;
}

/* A whole delivery arrived on the consume channel (mu not held). -1: connection lost. */
static int delivery_complete(RmqBroker *b)
{
    Assembly *a = &b->as_con;
    a->active = 0;
    BrokerMsg m;
    char why[160];
    a->body[a->got < BODY_MAX ? a->got : BODY_MAX] = '\0';
    int ok = 0;
    if (a->too_big) snprintf(why, sizeof why, "body of %llu bytes is too large", (unsigned long long)a->size);
    else ok = decode_body(a->body, (size_t)a->got, &m, why, sizeof why);
    pthread_mutex_lock(&b->mu);
    RmqQueue *q = queue_by_ctag(b, a->ctag);
    char qname[128];
    util_strlcpy(qname, q ? q->name : a->rkey, sizeof qname);
    int keep = ok && b->consuming && b->prefetch > 0 && q && q->consume;
    if (keep) {
        Delivery *d = xcalloc(1, sizeof *d);
        d->msg = m;
        util_strlcpy(d->msg.queue, qname, sizeof d->msg.queue);
        d->msg.tag = ((b->epoch & 0xffff) << TAG_SHIFT) | (a->dtag & TAG_MASK);
        if (b->buf_tail) b->buf_tail->next = d;
        else b->buf_head = d;
        b->buf_tail = d;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    if (keep) return 0;
    int rc;
    if (!ok) {
        char prefix[100];
        body_prefix(a->body, a->too_big ? BODY_MAX : (size_t)a->got, prefix, sizeof prefix);
        log_warn("broker", "queue=%s: undecodable message (%s) rejected to %s: %s", qname, why, RMQ_DEAD, prefix);
        rc = amqp_basic_reject(b->conn, CH_CON, a->dtag, 0);
    } else {
        rc = amqp_basic_reject(b->conn, CH_CON, a->dtag, 1); /* not taking work now: back to the queue */
    }
    if (rc != AMQP_STATUS_OK) {
        snprintf(b->io_err, sizeof b->io_err, "%s", amqp_error_string2(rc));
        return -1;
    }
    return 0;
}

/* A basic.return arrived whole: that message was unroutable (its queue is gone). */
static void return_complete(RmqBroker *b)
{
    Assembly *a = &b->as_pub;
    a->active = 0;
    BrokerMsg m;
    char why[160];
    a->body[a->got < BODY_MAX ? a->got : BODY_MAX] = '\0';
    int ok = !a->too_big && decode_body(a->body, (size_t)a->got, &m, why, sizeof why);
    pthread_mutex_lock(&b->mu);
    RmqQueue *q = queue_find(b, a->rkey);
    if (q) q->declared_gen = 0; /* declare it again before the next publish */
    if (ok && b->pub_active) {
        for (size_t i = 0; i < b->n_pub; i++) {
            PubItem *it = &b->pub[i];
            if (it->state == PUB_SENT && !it->returned && it->msg.try_number == m.try_number &&
                strcmp(it->msg.ti_id, m.ti_id) == 0) {
                it->returned = 1;
                break;
            }
        }
    }
    snprintf(b->pub_err, sizeof b->pub_err, "RabbitMQ at %s: message returned as unroutable: queue '%s' does not "
             "exist (declared again for the next attempt)", b->cfg.where, a->rkey);
    pthread_mutex_unlock(&b->mu);
    log_warn("broker", "queue=%s ti=%s try=%d: RabbitMQ returned the message (no such queue): left unconfirmed",
             a->rkey, ok ? m.ti_id : "?", ok ? m.try_number : 0);
}

static void confirm(RmqBroker *b, uint64_t tag, int multiple, int ack)
{
    pthread_mutex_lock(&b->mu);
    if (b->pub_active) {
        char w[512];
        snprintf(w, sizeof w, "RabbitMQ at %s: the broker refused the message (basic.nack)", b->cfg.where);
        for (size_t i = 0; i < b->n_pub; i++) {
            PubItem *it = &b->pub[i];
            if (it->state != PUB_SENT || !(multiple ? it->seq <= tag : it->seq == tag)) continue;
            if (ack && !it->returned) {
                it->state = PUB_ACKED;
                b->pub_left--;
            } else {
                pub_fail(b, it, ack ? b->pub_err : w);
            }
        }
        pub_finish_if_done(b);
    }
    pthread_mutex_unlock(&b->mu);
}

static void assembly_start(Assembly *a, uint64_t dtag, amqp_bytes_t ctag, amqp_bytes_t rkey)
{
    a->active = 1;
    a->dtag = dtag;
    bytes_str(ctag, a->ctag, sizeof a->ctag);
    bytes_str(rkey, a->rkey, sizeof a->rkey);
    a->size = a->got = 0;
    a->too_big = 0;
}

/* One frame (mu not held). -1: connection lost. */
static int handle_frame(RmqBroker *b, amqp_frame_t *f)
{
    amqp_connection_state_t conn = b->conn;
    if (f->frame_type == AMQP_FRAME_METHOD) {
        amqp_method_t *m = &f->payload.method;
        switch (m->id) {
        case AMQP_CONNECTION_CLOSE_METHOD: {
            amqp_connection_close_t *c = m->decoded;
            char text[400];
            bytes_str(c->reply_text, text, sizeof text);
            send_close_ok(conn, 0, 1);
            snprintf(b->io_err, sizeof b->io_err, "closed by the server: %s", text);
            return -1;
        }
        case AMQP_CONNECTION_BLOCKED_METHOD: {
            amqp_connection_blocked_t *c = m->decoded;
            char text[200];
            log_warn("broker", "RabbitMQ at %s: publishing blocked by the server: %s", b->cfg.where,
                     bytes_str(c->reason, text, sizeof text));
            return 0;
        }
        case AMQP_CONNECTION_UNBLOCKED_METHOD:
            log_info("broker", "RabbitMQ at %s: publishing unblocked", b->cfg.where);
            return 0;
        case AMQP_CHANNEL_CLOSE_METHOD: {
            amqp_channel_close_t *c = m->decoded;
            char text[400], why[1024];
            bytes_str(c->reply_text, text, sizeof text);
            snprintf(why, sizeof why, "RabbitMQ at %s: channel %d closed by the server: %s", b->cfg.where,
                     (int)f->channel, text);
            log_warn("broker", "%s", why);
            send_close_ok(conn, f->channel, 0);
            amqp_maybe_release_buffers_on_channel(conn, f->channel);
            amqp_channel_open(conn, f->channel);
            if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) {
                snprintf(b->io_err, sizeof b->io_err, "cannot reopen channel %d", (int)f->channel);
                return -1;
            }
            if (f->channel == CH_PUB) {
                amqp_confirm_select(conn, CH_PUB);
                if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) {
                    snprintf(b->io_err, sizeof b->io_err, "cannot select confirms again");
                    return -1;
                }
            }
            pthread_mutex_lock(&b->mu);
            if (f->channel == CH_PUB) publish_channel_reset(b, why);
            if (f->channel == CH_CON) consume_channel_reset(b);
            b->retry_soon = 1;
            pthread_mutex_unlock(&b->mu);
            return 0;
        }
        case AMQP_BASIC_ACK_METHOD:
            if (f->channel == CH_PUB) {
                amqp_basic_ack_t *a = m->decoded;
                confirm(b, a->delivery_tag, a->multiple, 1);
            }
            return 0;
        case AMQP_BASIC_NACK_METHOD:
            if (f->channel == CH_PUB) {
                amqp_basic_nack_t *a = m->decoded;
                confirm(b, a->delivery_tag, a->multiple, 0);
            }
            return 0;
        case AMQP_BASIC_RETURN_METHOD: {
            amqp_basic_return_t *r = m->decoded;
            assembly_start(&b->as_pub, 0, amqp_empty_bytes, r->routing_key);
            return 0;
        }
        case AMQP_BASIC_DELIVER_METHOD: {
            amqp_basic_deliver_t *d = m->decoded;
            assembly_start(&b->as_con, d->delivery_tag, d->consumer_tag, d->routing_key);
            return 0;
        }
        case AMQP_BASIC_CANCEL_METHOD: { /* the server cancelled a consumer: its queue was deleted */
            amqp_basic_cancel_t *c = m->decoded;
            char ctag[256];
            bytes_str(c->consumer_tag, ctag, sizeof ctag);
            pthread_mutex_lock(&b->mu);
            RmqQueue *q = queue_by_ctag(b, ctag);
            if (q) {
                log_warn("broker", "queue=%s: consumer cancelled by RabbitMQ at %s (queue deleted?): declaring it "
                         "and consuming again", q->name, b->cfg.where);
                q->ctag_epoch = 0;
                q->declared_gen = 0;
                q->failed = 0;
                q->need_declare = 1;
                b->retry_soon = 1;
            }
            pthread_mutex_unlock(&b->mu);
            if (!c->nowait) {
                amqp_basic_cancel_ok_t ok;
                ok.consumer_tag = c->consumer_tag;
                amqp_send_method(conn, CH_CON, AMQP_BASIC_CANCEL_OK_METHOD, &ok);
            }
            return 0;
        }
        default:
            return 0; /* late RPC replies and the like */
        }
    }
    Assembly *a = f->channel == CH_PUB ? &b->as_pub : f->channel == CH_CON ? &b->as_con : NULL;
    if (!a || !a->active) return 0;
    if (f->frame_type == AMQP_FRAME_HEADER) {
        a->size = f->payload.properties.body_size;
        a->too_big = a->size > BODY_MAX;
    } else if (f->frame_type == AMQP_FRAME_BODY) {
        amqp_bytes_t by = f->payload.body_fragment;
        if (a->got < BODY_MAX) {
            size_t room = BODY_MAX - (size_t)a->got, n = by.len < room ? by.len : room;
            memcpy(a->body + a->got, by.bytes, n);
        }
        a->got += by.len;
    } else {
        return 0;
    }
    if (a->got >= a->size) {
        if (a == &b->as_con) return delivery_complete(b);
        return_complete(b);
    }
    return 0;
}

/* Read every frame that is there, without waiting (mu not held). -1: connection lost. */
static int io_read(RmqBroker *b)
{
    for (int i = 0; i < 4096; i++) {
        amqp_frame_t f;
        struct timeval tv0 = {0, 0};
        int rc = amqp_simple_wait_frame_noblock(b->conn, &f, &tv0);
        if (rc == AMQP_STATUS_TIMEOUT) return 0;
        if (rc != AMQP_STATUS_OK) {
            snprintf(b->io_err, sizeof b->io_err, "%s", amqp_error_string2(rc));
            lower_first(b->io_err);
            return -1;
        }
        b->last_rx = now_ms();
        rc = handle_frame(b, &f);
        amqp_maybe_release_buffers_on_channel(b->conn, f.channel);
        if (rc < 0) return -1;
    }
    return 0;
}

static void drain_wake(RmqBroker *b)
{
    uint64_t v;
    if (read(b->wake_fd, &v, sizeof v) < 0) { /* EAGAIN: nothing to drain */ }
}

/* Fail a batch whose time is up (mu held). */
static void pub_check_deadline(RmqBroker *b)
{
    if (!b->pub_active || now_ms() < b->pub_deadline) return;
    char w[1024];
    if (b->connected)
        snprintf(w, sizeof w, "RabbitMQ at %s: no confirm within %d ms", b->cfg.where, b->cfg.publish_timeout_ms);
    else
        snprintf(w, sizeof w, "RabbitMQ at %s is unreachable (%s)", b->cfg.where, b->conn_err);
    for (size_t i = 0; i < b->n_pub; i++) pub_fail(b, &b->pub[i], w);
    pub_finish_if_done(b);
}

static void *io_main(void *arg)
{
    RmqBroker *b = arg;
    pthread_mutex_lock(&b->mu);
    while (!b->closing) {
        if (!b->conn) {
            if (b->op_pending) { /* nothing to ack on: the broker requeued those messages */
                b->op_pending = 0;
                b->op_rc = -1;
                b->op_done_id = b->op_id;
                snprintf(b->op_err, sizeof b->op_err, "RabbitMQ at %s: not connected: the broker requeues the "
                         "message", b->cfg.where);
                pthread_cond_broadcast(&b->cv);
            }
            int64_t now = now_ms();
            if (now >= b->next_attempt) {
                char err[512];
                pthread_mutex_unlock(&b->mu);
                amqp_connection_state_t c = rmq_open(&b->cfg, err, sizeof err);
                pthread_mutex_lock(&b->mu);
                if (c) {
                    if (b->closing) {
                        pthread_mutex_unlock(&b->mu);
                        amqp_destroy_connection(c);
                        pthread_mutex_lock(&b->mu);
                        break;
                    }
                    on_connected(b, c);
                    continue;
                }
                if (strcmp(err, b->conn_err) != 0) log_warn("broker", "%s (retrying)", err);
                util_strlcpy(b->conn_err, err, sizeof b->conn_err);
                b->next_attempt = now_ms() + b->backoff_ms;
                b->backoff_ms = b->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b->backoff_ms * 2;
            }
            pub_check_deadline(b);
            int64_t wait = b->next_attempt - now_ms();
            if (b->pub_active && b->pub_deadline - now_ms() < wait) wait = b->pub_deadline - now_ms();
            if (wait < 0) wait = 0;
            struct pollfd pfd = {b->wake_fd, POLLIN, 0};
            pthread_mutex_unlock(&b->mu);
            poll(&pfd, 1, (int)wait);
            drain_wake(b);
            pthread_mutex_lock(&b->mu);
            continue;
        }
        uint64_t seen = b->req;
        if (reconcile(b) < 0) {
            connection_lost(b, b->io_err);
            continue;
        }
        if (b->done < seen) {
            b->done = seen;
            pthread_cond_broadcast(&b->cv);
        }
        pub_check_deadline(b);
        int64_t now = now_ms();
        int64_t wait = 1000;
        if (b->cfg.heartbeat > 0 && b->cfg.heartbeat * 500 < wait) wait = b->cfg.heartbeat * 500;
        if (b->pub_active && b->pub_deadline - now < wait) wait = b->pub_deadline - now;
        if (b->retry_soon && wait > 100) wait = 100;
        if (amqp_frames_enqueued(b->conn) || amqp_data_in_buffer(b->conn)) wait = 0;
        if (wait < 0) wait = 0;
        struct pollfd pfd[2] = {{amqp_get_sockfd(b->conn), POLLIN, 0}, {b->wake_fd, POLLIN, 0}};
        pthread_mutex_unlock(&b->mu);
        int pr = poll(pfd, 2, (int)wait);
        if (pr > 0 && pfd[1].revents) drain_wake(b);
        if (pr > 0 && pfd[0].revents) b->last_rx = now_ms();
        int rc = io_read(b); /* also sends our heartbeat when it is due */
        pthread_mutex_lock(&b->mu);
        if (rc < 0) {
            connection_lost(b, b->io_err);
            continue;
        }
        if (b->cfg.heartbeat > 0 && now_ms() - b->last_rx > (int64_t)b->cfg.heartbeat * 2000 + 500) {
            char why[128];
            snprintf(why, sizeof why, "no heartbeat from the server for %d s", b->cfg.heartbeat * 2);
            connection_lost(b, why);
        }
    }
    /* closing */
    if (b->conn) {
        amqp_connection_state_t c = b->conn;
        b->conn = NULL;
        b->connected = 0;
        pthread_mutex_unlock(&b->mu);
        struct timeval tv = {1, 0};
        amqp_set_rpc_timeout(c, &tv);
        amqp_connection_close(c, AMQP_REPLY_SUCCESS);
        amqp_destroy_connection(c);
        pthread_mutex_lock(&b->mu);
    }
    if (b->pub_active) {
        for (size_t i = 0; i < b->n_pub; i++) pub_fail(b, &b->pub[i], "broker closed");
        pub_finish_if_done(b);
    }
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* ---- the adapter ---------------------------------------------------------------------- */

static void rmq_free(RmqBroker *b)
{
    buffer_clear(b);
    for (RmqQueue *q = b->queues, *nx; q; q = nx) {
        nx = q->next;
        free(q);
    }
    free(b->held);
    free(b->requeue);
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
    if (parse_url(url, &cfg, err, errlen) != 0) return NULL;
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
        snprintf(err, errlen, "RabbitMQ at %s: eventfd: %s", cfg.where, errno_text(errno, eb, sizeof eb));
        amqp_destroy_connection(conn);
        rmq_free(b);
        return NULL;
    }
    on_connected(b, conn);
    log_debug("broker", "RabbitMQ at %s: connected (vhost '%s', heartbeat %d s, %s queues)", cfg.where, cfg.vhost,
              cfg.heartbeat, cfg.quorum ? "quorum" : "classic");
    int rc = pthread_create(&b->io, NULL, io_main, b);
    if (rc != 0) {
        char eb[128];
        snprintf(err, errlen, "RabbitMQ at %s: cannot start the I/O thread: %s", cfg.where,
                 errno_text(rc, eb, sizeof eb));
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
    wake_io(b);
    if (b->io_started) pthread_join(b->io, NULL);
    rmq_free(b);
}

/* Ask the I/O thread for a pass and wait for it (mu held): 0 done on a live connection. */
static int sync_pass(RmqBroker *b, int64_t deadline)
{
    uint64_t mine = ++b->req;
    wake_io(b);
    while (b->done < mine && !b->closing && now_ms() < deadline) cv_wait_until(b, deadline);
    return b->done >= mine ? 0 : -1;
}

static void not_connected_error(RmqBroker *b)
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
    RmqQueue *q = queue_get(b, queue);
    q->need_declare = 1;
    q->failed = 0;
    int rc = sync_pass(b, now_ms() + b->cfg.publish_timeout_ms);
    if (rc != 0) not_connected_error(b);
    else if (q->failed) {
        util_strlcpy(b->err, q->err, sizeof b->err);
        rc = -1;
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

static int rmq_publish_batch(Broker *br, const BrokerMsg *msgs, size_t n, int *confirmed)
{
    RmqBroker *b = (RmqBroker *)br;
    for (size_t i = 0; i < n; i++) confirmed[i] = 0;
    if (n == 0) return 0;
    pthread_mutex_lock(&b->mu);
    int64_t deadline = now_ms() + b->cfg.publish_timeout_ms;
    while (b->pub_active && !b->closing && now_ms() < deadline) cv_wait_until(b, deadline);
    if (b->pub_active || b->closing) {
        snprintf(b->err, sizeof b->err, "RabbitMQ at %s: the previous publish has not finished", b->cfg.where);
        pthread_mutex_unlock(&b->mu);
        return -1;
    }
    if (n > b->cap_pub) {
        b->cap_pub = n;
        b->pub = xrealloc(b->pub, n * sizeof *b->pub);
    }
    for (size_t i = 0; i < n; i++) {
        b->pub[i].msg = msgs[i];
        b->pub[i].seq = 0;
        b->pub[i].state = PUB_UNSENT;
        b->pub[i].returned = 0;
    }
    b->n_pub = n;
    b->pub_left = n;
    b->pub_err[0] = '\0';
    b->pub_deadline = deadline;
    b->pub_batch++;
    b->pub_active = 1;
    wake_io(b);
    /* The I/O thread ends the batch at the deadline; while it is reconnecting it does not
     * touch the batch, so we end it ourselves; the grace covers a blocked socket write. */
    while (b->pub_active && !b->closing) {
        int64_t now = now_ms();
        if (now >= deadline && !b->connected) {
            pub_check_deadline(b);
            break;
        }
        if (now >= deadline + 2000) break;
        cv_wait_until(b, now < deadline ? deadline : deadline + 2000);
    }
    if (b->pub_active) {
        snprintf(b->err, sizeof b->err, "RabbitMQ at %s: publishing is stuck (socket blocked?)", b->cfg.where);
        pthread_mutex_unlock(&b->mu);
        return -1;
    }
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        if (b->pub[i].state == PUB_ACKED) {
            confirmed[i] = 1;
            ok++;
        }
    int rc = 0;
    if (ok < n) {
        const char *why = b->pub_err[0] ? b->pub_err : "unknown reason";
        if (n == 1) util_strlcpy(b->err, why, sizeof b->err);
        else snprintf(b->err, sizeof b->err, "%zu of %zu messages not confirmed: %s", n - ok, n, why);
        rc = -1;
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

static int rmq_publish(Broker *br, const BrokerMsg *m)
{
    int confirmed = 0;
    return rmq_publish_batch(br, m, 1, &confirmed);
}

static int rmq_consume(Broker *br, const char *const *queues, size_t n, int prefetch)
{
    RmqBroker *b = (RmqBroker *)br;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(queues[i], "*") == 0) {
            snprintf(b->err, sizeof b->err, "the rabbitmq broker cannot consume '*': name the queues");
            return -1;
        }
        if (!queues[i][0] || strlen(queues[i]) >= sizeof b->queues->name) {
            snprintf(b->err, sizeof b->err, "queue name must be 1 to 127 characters");
            return -1;
        }
    }
    pthread_mutex_lock(&b->mu);
    for (RmqQueue *q = b->queues; q; q = q->next) q->consume = 0;
    for (size_t i = 0; i < n; i++) {
        RmqQueue *q = queue_get(b, queues[i]);
        q->consume = 1;
        q->failed = 0;
        if (q->declared_gen != b->gen) q->need_declare = 1;
    }
    b->consuming = 1;
    b->prefetch = prefetch < 0 ? 0 : prefetch;
    int rc = sync_pass(b, now_ms() + b->cfg.publish_timeout_ms);
    if (rc != 0) not_connected_error(b);
    for (size_t i = 0; i < n && rc == 0; i++) {
        RmqQueue *q = queue_find(b, queues[i]);
        if (q && q->failed) {
            util_strlcpy(b->err, q->err, sizeof b->err);
            rc = -1;
        }
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

static int rmq_set_prefetch(Broker *br, int prefetch)
{
    RmqBroker *b = (RmqBroker *)br;
    pthread_mutex_lock(&b->mu);
    b->prefetch = prefetch < 0 ? 0 : prefetch;
    if (b->prefetch == 0) { /* give back what we hold but nobody took */
        for (Delivery *d = b->buf_head; d; d = d->next)
            push_tag(&b->requeue, &b->n_requeue, &b->cap_requeue, d->msg.tag);
        buffer_clear(b);
    }
    if (b->connected) sync_pass(b, now_ms() + OP_TIMEOUT_MS); /* applied at reconnect otherwise */
    pthread_mutex_unlock(&b->mu);
    return 0;
}

static int rmq_next(Broker *br, int timeout_ms, BrokerMsg *out)
{
    RmqBroker *b = (RmqBroker *)br;
    int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&b->mu);
    for (;;) {
        if (b->buf_head) {
            Delivery *d = b->buf_head;
            b->buf_head = d->next;
            if (!b->buf_head) b->buf_tail = NULL;
            *out = d->msg;
            free(d);
            push_tag(&b->held, &b->n_held, &b->cap_held, out->tag);
            pthread_mutex_unlock(&b->mu);
            return 1;
        }
        if (b->closing || now_ms() >= deadline) break;
        cv_wait_until(b, deadline);
    }
    pthread_mutex_unlock(&b->mu);
    return 0;
}

static int ack_or_reject(RmqBroker *b, uint64_t tag, int ack, int requeue)
{
    pthread_mutex_lock(&b->mu);
    if ((tag >> TAG_SHIFT) != (b->epoch & 0xffff)) {
        held_remove(b, tag);
        snprintf(b->err, sizeof b->err, "RabbitMQ at %s: delivery tag %llu is from a connection or channel that "
                 "has since closed: the broker has requeued that message", b->cfg.where,
                 (unsigned long long)(tag & TAG_MASK));
        pthread_mutex_unlock(&b->mu);
        return -1;
    }
    if (!held_remove(b, tag)) {
        snprintf(b->err, sizeof b->err, "unknown delivery tag %llu", (unsigned long long)(tag & TAG_MASK));
        pthread_mutex_unlock(&b->mu);
        return -1;
    }
    b->op_tag = tag;
    b->op_ack = ack;
    b->op_requeue = requeue;
    b->op_rc = -1;
    uint64_t id = ++b->op_id;
    b->op_pending = 1;
    wake_io(b);
    int64_t deadline = now_ms() + OP_TIMEOUT_MS;
    while (b->op_done_id != id && !b->closing && now_ms() < deadline) cv_wait_until(b, deadline);
    int rc = b->op_done_id == id ? b->op_rc : -1;
    if (b->op_done_id != id) {
        b->op_pending = 0;
        snprintf(b->err, sizeof b->err, "RabbitMQ at %s: the %s was not sent within %d ms", b->cfg.where,
                 ack ? "ack" : "reject", OP_TIMEOUT_MS);
    } else if (rc != 0) {
        util_strlcpy(b->err, b->op_err, sizeof b->err);
    }
    pthread_mutex_unlock(&b->mu);
    return rc;
}

static int rmq_ack(Broker *br, uint64_t tag)
{
    return ack_or_reject((RmqBroker *)br, tag, 1, 0);
}

static int rmq_reject(Broker *br, uint64_t tag, int requeue)
{
    return ack_or_reject((RmqBroker *)br, tag, 0, requeue);
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
