/* test_broker — the broker adapters: local:// and RabbitMQ (amqp://), same scenarios on both
 * where the behaviour is the same, plus the RabbitMQ-only ones (dead letters, consumer
 * cancel, quorum queues, connect errors, a server restart, heartbeats, publish rates).
 *
 * The RabbitMQ tests need the server of tests/services.sh: run
 *   bash tests/services.sh start && eval "$(bash tests/services.sh env)"
 * first (make test does). Without GUST_TEST_AMQP_URL they FAIL, they do not skip. Queues
 * are named gt<pid>-<test> and deleted at the end of each test; dead letters a test makes
 * in gust.dead are taken out again (by their marker), others are left alone. */
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "broker-adapters/broker.h"
#include "core/util.h"
#include "tests/unit/unit.h"

/* ---- helpers -------------------------------------------------------------------------- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The test server's URL, or a failed test that says how to get one. */
static const char *amqp_base(void)
{
    const char *u = getenv("GUST_TEST_AMQP_URL");
    if (!u || !*u) {
        fprintf(stderr, "\n  GUST_TEST_AMQP_URL is not set: run `bash tests/services.sh start` and "
                        "`eval \"$(bash tests/services.sh env)\"` first (make test does both)\n");
        CU_FAIL("GUST_TEST_AMQP_URL is not set: run tests/services.sh start");
        return NULL;
    }
    return u;
}

static char url_buf[8][512];
static int url_next;

static const char *url_with(const char *base, const char *opts)
{
    char *out = url_buf[url_next++ % 8];
    snprintf(out, 512, "%s%s%s", base, strchr(base, '?') ? "&" : "?", opts);
    return out;
}

static const char *local_url(const char *what)
{
    char *out = url_buf[url_next++ % 8];
    snprintf(out, 512, "local://bt-%d-%s", (int)getpid(), what);
    return out;
}

static void qname(char *out, size_t n, const char *what)
{
    snprintf(out, n, "gt%d-%s", (int)getpid(), what);
}

static Broker *must_connect(const char *url)
{
    char err[1024];
    Broker *b = broker_connect(url, err, sizeof err);
    if (!b) fprintf(stderr, "\n  connect %s: %s\n", url, err);
    CU_ASSERT_PTR_NOT_NULL(b);
    return b;
}

static BrokerMsg msg(const char *ti, int try_number, const char *queue, int priority)
{
    BrokerMsg m;
    memset(&m, 0, sizeof m);
    util_strlcpy(m.ti_id, ti, sizeof m.ti_id);
    m.try_number = try_number;
    util_strlcpy(m.queue, queue, sizeof m.queue);
    m.priority = priority;
    return m;
}

static int publish_ok(Broker *b, const BrokerMsg *m)
{
    int rc = broker_publish(b, m);
    if (rc != 0) fprintf(stderr, "\n  publish %s: %s\n", m->ti_id, broker_error(b));
    return rc == 0;
}

/* ---- a plain librabbitmq connection, to look at the server behind the adapter's back ---- */

typedef struct RawCfg {
    char host[256];
    int port;
    char user[128], pass[128], vhost[128];
} RawCfg;

static int raw_cfg(RawCfg *c)
{
    const char *u = getenv("GUST_TEST_AMQP_URL");
    if (!u) return -1;
    char *copy = xstrdup(u);
    char *q = strchr(copy, '?');
    if (q) *q = '\0';
    struct amqp_connection_info ci;
    int rc = amqp_parse_url(copy, &ci);
    if (rc == AMQP_STATUS_OK) {
        util_strlcpy(c->host, ci.host, sizeof c->host);
        c->port = ci.port;
        util_strlcpy(c->user, ci.user, sizeof c->user);
        util_strlcpy(c->pass, ci.password, sizeof c->pass);
        util_strlcpy(c->vhost, ci.vhost && ci.vhost[0] ? ci.vhost : "/", sizeof c->vhost);
    }
    free(copy);
    return rc == AMQP_STATUS_OK ? 0 : -1;
}

static amqp_connection_state_t raw_open_hb(int heartbeat)
{
    RawCfg c;
    if (raw_cfg(&c) != 0) return NULL;
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(conn);
    if (!s || amqp_socket_open(s, c.host, c.port) != AMQP_STATUS_OK) {
        amqp_destroy_connection(conn);
        return NULL;
    }
    amqp_rpc_reply_t r = amqp_login(conn, c.vhost, 0, 131072, heartbeat, AMQP_SASL_METHOD_PLAIN, c.user, c.pass);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) {
        amqp_destroy_connection(conn);
        return NULL;
    }
    amqp_channel_open(conn, 1);
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) {
        amqp_destroy_connection(conn);
        return NULL;
    }
    return conn;
}

static amqp_connection_state_t raw_open(void)
{
    amqp_connection_state_t c = raw_open_hb(0);
    CU_ASSERT_PTR_NOT_NULL(c);
    return c;
}

static void raw_close(amqp_connection_state_t c)
{
    if (!c) return;
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(c);
}

/* Ready messages in a queue, -1 when it does not exist. */
static long raw_count(const char *queue)
{
    amqp_connection_state_t c = raw_open();
    if (!c) return -2;
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    long n = ok ? (long)ok->message_count : -1;
    if (ok) raw_close(c);
    else amqp_destroy_connection(c);
    return n;
}

static void raw_delete(const char *queue)
{
    amqp_connection_state_t c = raw_open();
    if (!c) return;
    amqp_queue_delete(c, 1, amqp_cstring_bytes(queue), 0, 0);
    raw_close(c);
}

/* Publish a body the adapter did not write, to exchange gust with routing key = queue. */
static int raw_publish(const char *queue, const char *body)
{
    amqp_connection_state_t c = raw_open();
    if (!c) return -1;
    amqp_basic_properties_t p;
    memset(&p, 0, sizeof p);
    p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    p.delivery_mode = 2;
    int rc = amqp_basic_publish(c, 1, amqp_cstring_bytes("gust"), amqp_cstring_bytes(queue), 0, 0, &p,
                                amqp_cstring_bytes(body));
    /* a synchronous call after it: the server has routed the message when it answers */
    amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    raw_close(c);
    return rc;
}

/* Is `queue` a quorum queue? Declaring it again with the quorum arguments succeeds only then. */
static int raw_is_quorum(const char *queue)
{
    amqp_connection_state_t c = raw_open();
    if (!c) return 0;
    amqp_table_entry_t e[2];
    e[0].key = amqp_cstring_bytes("x-dead-letter-exchange");
    e[0].value.kind = AMQP_FIELD_KIND_UTF8;
    e[0].value.value.bytes = amqp_cstring_bytes("gust.dlx");
    e[1].key = amqp_cstring_bytes("x-queue-type");
    e[1].value.kind = AMQP_FIELD_KIND_UTF8;
    e[1].value.value.bytes = amqp_cstring_bytes("quorum");
    amqp_table_t args = {2, e};
    amqp_queue_declare_ok_t *ok = amqp_queue_declare(c, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, args);
    if (ok) raw_close(c);
    else amqp_destroy_connection(c);
    return ok != NULL;
}

/* Take our dead letters (bodies containing marker) out of gust.dead, leaving the others;
 * wait until `expect` of them have arrived (dead-lettering is asynchronous) or wait_ms.
 * Returns how many were found. */
static int raw_take_dead(const char *marker, int expect, int wait_ms)
{
    int found = 0;
    int64_t deadline = mono_ms() + wait_ms;
    do {
        amqp_connection_state_t c = raw_open();
        if (!c) return found;
        uint64_t others[512];
        int n_others = 0;
        for (;;) {
            amqp_rpc_reply_t r = amqp_basic_get(c, 1, amqp_cstring_bytes("gust.dead"), 0);
            if (r.reply_type != AMQP_RESPONSE_NORMAL || r.reply.id != AMQP_BASIC_GET_OK_METHOD) break;
            uint64_t tag = ((amqp_basic_get_ok_t *)r.reply.decoded)->delivery_tag;
            amqp_message_t m;
            if (amqp_read_message(c, 1, &m, 0).reply_type != AMQP_RESPONSE_NORMAL) break;
            char *body = xstrndup(m.body.bytes, m.body.len);
            int ours = strstr(body, marker) != NULL;
            free(body);
            amqp_destroy_message(&m);
            if (ours) {
                amqp_basic_ack(c, 1, tag, 0);
                found++;
            } else if (n_others < 512) {
                others[n_others++] = tag; /* held until we are done, so basic.get moves on */
            } else {
                amqp_basic_nack(c, 1, tag, 0, 1);
                break;
            }
            amqp_maybe_release_buffers(c);
        }
        for (int i = 0; i < n_others; i++) amqp_basic_nack(c, 1, others[i], 0, 1);
        raw_close(c);
        if (found >= expect) break;
        sleep_ms(100);
    } while (mono_ms() < deadline);
    return found;
}

static int run_services(const char *args)
{
    const char *svc = getenv("GUST_TEST_SERVICES");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s' %s >/dev/null 2>&1", svc && *svc ? svc : "tests/services.sh", args);
    return system(cmd);
}

/* ---- scenarios run on both adapters ------------------------------------------------------ */

static void scen_round_trip(const char *url, const char *q)
{
    Broker *p = must_connect(url), *c = must_connect(url);
    if (!p || !c) goto out;
    CU_ASSERT_EQUAL(broker_declare(p, q), 0);
    const char *qs[] = {q};
    CU_ASSERT_EQUAL(broker_consume(c, qs, 1, 1), 0);
    BrokerMsg m = msg("0123456789abcdef0123456789abcdef", 3, q, 5), got;
    CU_ASSERT(publish_ok(p, &m));
    CU_ASSERT_EQUAL_FATAL(broker_next(c, 3000, &got), 1);
    ASSERT_STR_EQ(got.ti_id, m.ti_id);
    CU_ASSERT_EQUAL(got.try_number, 3);
    ASSERT_STR_EQ(got.queue, q);
    CU_ASSERT_EQUAL(got.priority, 5);
    CU_ASSERT_EQUAL(broker_ack(c, got.tag), 0);
    CU_ASSERT_EQUAL(broker_ack(c, got.tag), -1); /* twice: unknown tag, and nothing breaks */
    CU_ASSERT_EQUAL(broker_next(c, 200, &got), 0);
    /* the connection still works after the bad ack */
    m.try_number = 4;
    CU_ASSERT(publish_ok(p, &m));
    CU_ASSERT_EQUAL(broker_next(c, 3000, &got), 1);
    CU_ASSERT_EQUAL(got.try_number, 4);
    CU_ASSERT_EQUAL(broker_ack(c, got.tag), 0);
out:
    broker_close(c);
    broker_close(p);
}

static void scen_priorities(const char *url, const char *q)
{
    Broker *p = must_connect(url), *c = must_connect(url);
    if (!p || !c) goto out;
    static const int w[] = {1, 100, 5, 0, 300};
    static const char *const want[] = {"w300", "w100", "w5", "w1", "w0"};
    for (size_t i = 0; i < GUST_ARRAY_LEN(w); i++) {
        char ti[32];
        snprintf(ti, sizeof ti, "w%d", w[i]);
        BrokerMsg m = msg(ti, 1, q, w[i]);
        CU_ASSERT(publish_ok(p, &m));
    }
    const char *qs[] = {q};
    CU_ASSERT_EQUAL(broker_consume(c, qs, 1, 1), 0);
    for (size_t i = 0; i < GUST_ARRAY_LEN(want); i++) {
        BrokerMsg got;
        CU_ASSERT_EQUAL_FATAL(broker_next(c, 3000, &got), 1);
        ASSERT_STR_EQ(got.ti_id, want[i]);
        CU_ASSERT_EQUAL(broker_ack(c, got.tag), 0);
    }
out:
    broker_close(c);
    broker_close(p);
}

static void scen_batch(const char *url, const char *q, int check_server)
{
    Broker *p = must_connect(url), *c = must_connect(url);
    if (!p || !c) goto out;
    enum { N = 100 };
    BrokerMsg ms[N];
    int confirmed[N];
    for (int i = 0; i < N; i++) {
        char ti[32];
        snprintf(ti, sizeof ti, "b%03d", i);
        ms[i] = msg(ti, 1, q, 1);
        confirmed[i] = -1;
    }
    CU_ASSERT_EQUAL(broker_publish_batch(p, ms, N, confirmed), 0);
    int n_ok = 0;
    for (int i = 0; i < N; i++) n_ok += confirmed[i] == 1;
    CU_ASSERT_EQUAL(n_ok, N);
    if (check_server) CU_ASSERT_EQUAL(raw_count(q), N);
    const char *qs[] = {q};
    CU_ASSERT_EQUAL(broker_consume(c, qs, 1, 16), 0);
    char seen[N] = {0};
    int got_n = 0;
    BrokerMsg got;
    while (got_n < N && broker_next(c, 3000, &got) == 1) {
        int k = atoi(got.ti_id + 1);
        if (k >= 0 && k < N && !seen[k]) {
            seen[k] = 1;
            got_n++;
        }
        CU_ASSERT_EQUAL(broker_ack(c, got.tag), 0);
    }
    CU_ASSERT_EQUAL(got_n, N);
    CU_ASSERT_EQUAL(broker_publish_batch(p, ms, 0, confirmed), 0); /* empty batch */
out:
    broker_close(c);
    broker_close(p);
}

/* prefetch 2: a third message waits until one is acked; meanwhile another consumer gets it */
static void scen_prefetch(const char *url, const char *q)
{
    Broker *p = must_connect(url), *a = must_connect(url), *b = must_connect(url);
    if (!p || !a || !b) goto out;
    const char *qs[] = {q};
    CU_ASSERT_EQUAL(broker_declare(p, q), 0);
    CU_ASSERT_EQUAL(broker_consume(a, qs, 1, 2), 0);
    for (int i = 1; i <= 4; i++) {
        char ti[16];
        snprintf(ti, sizeof ti, "f%d", i);
        BrokerMsg m = msg(ti, 1, q, 1);
        CU_ASSERT(publish_ok(p, &m));
    }
    BrokerMsg m1, m2, m3, m4, x;
    CU_ASSERT_EQUAL_FATAL(broker_next(a, 3000, &m1), 1);
    CU_ASSERT_EQUAL_FATAL(broker_next(a, 3000, &m2), 1);
    ASSERT_STR_EQ(m1.ti_id, "f1");
    ASSERT_STR_EQ(m2.ti_id, "f2");
    CU_ASSERT_EQUAL(broker_next(a, 300, &x), 0); /* full */
    CU_ASSERT_EQUAL(broker_consume(b, qs, 1, 1), 0);
    CU_ASSERT_EQUAL_FATAL(broker_next(b, 3000, &m3), 1);
    ASSERT_STR_EQ(m3.ti_id, "f3");
    CU_ASSERT_EQUAL(broker_ack(a, m1.tag), 0);
    CU_ASSERT_EQUAL_FATAL(broker_next(a, 3000, &m4), 1);
    ASSERT_STR_EQ(m4.ti_id, "f4");
    CU_ASSERT_EQUAL(broker_ack(a, m2.tag), 0);
    CU_ASSERT_EQUAL(broker_ack(a, m4.tag), 0);
    CU_ASSERT_EQUAL(broker_ack(b, m3.tag), 0);
out:
    broker_close(b);
    broker_close(a);
    broker_close(p);
}

/* set_prefetch(0): what a full worker does; the messages go to another consumer */
static void scen_set_prefetch(const char *url, const char *q)
{
    Broker *p = must_connect(url), *a = must_connect(url), *b = must_connect(url);
    if (!p || !a || !b) goto out;
    const char *qs[] = {q};
    CU_ASSERT_EQUAL(broker_declare(p, q), 0);
    CU_ASSERT_EQUAL(broker_consume(a, qs, 1, 5), 0);
    for (int i = 1; i <= 3; i++) {
        char ti[16];
        snprintf(ti, sizeof ti, "s%d", i);
        BrokerMsg m = msg(ti, 1, q, 1);
        CU_ASSERT(publish_ok(p, &m));
    }
    sleep_ms(300); /* on RabbitMQ they are now delivered to a's connection, not yet taken */
    CU_ASSERT_EQUAL(broker_set_prefetch(a, 0), 0);
    CU_ASSERT_EQUAL(broker_consume(b, qs, 1, 5), 0);
    BrokerMsg got[3], x;
    int n = 0;
    while (n < 3 && broker_next(b, 3000, &got[n]) == 1) n++;
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(broker_next(a, 300, &x), 0);
    /* b stops, a takes work again */
    CU_ASSERT_EQUAL(broker_set_prefetch(b, 0), 0);
    CU_ASSERT_EQUAL(broker_set_prefetch(a, 1), 0);
    BrokerMsg m4 = msg("s4", 1, q, 1);
    CU_ASSERT(publish_ok(p, &m4));
    CU_ASSERT_EQUAL_FATAL(broker_next(a, 3000, &x), 1);
    ASSERT_STR_EQ(x.ti_id, "s4");
    CU_ASSERT_EQUAL(broker_ack(a, x.tag), 0);
    for (int i = 0; i < n; i++) CU_ASSERT_EQUAL(broker_ack(b, got[i].tag), 0);
out:
    broker_close(b);
    broker_close(a);
    broker_close(p);
}

static void scen_reject(const char *url, const char *q, int check_dead)
{
    Broker *p = must_connect(url), *c = must_connect(url);
    if (!p || !c) goto out;
    char ti[32];
    snprintf(ti, sizeof ti, "rj%dx", (int)getpid());
    const char *qs[] = {q};
    CU_ASSERT_EQUAL(broker_consume(c, qs, 1, 1), 0);
    BrokerMsg m = msg(ti, 2, q, 1), got;
    CU_ASSERT(publish_ok(p, &m));
    CU_ASSERT_EQUAL_FATAL(broker_next(c, 3000, &got), 1);
    CU_ASSERT_EQUAL(broker_reject(c, got.tag, 1), 0);
    CU_ASSERT_EQUAL_FATAL(broker_next(c, 3000, &got), 1); /* redelivered */
    ASSERT_STR_EQ(got.ti_id, ti);
    CU_ASSERT_EQUAL(got.try_number, 2);
    CU_ASSERT_EQUAL(broker_reject(c, got.tag, 0), 0);
    CU_ASSERT_EQUAL(broker_next(c, 300, &got), 0); /* gone */
    if (check_dead) CU_ASSERT_EQUAL(raw_take_dead(ti, 1, 3000), 1);
out:
    broker_close(c);
    broker_close(p);
}

static void scen_share(const char *url, const char *q)
{
    Broker *p = must_connect(url), *a = must_connect(url), *b = must_connect(url);
    if (!p || !a || !b) goto out;
    const char *qs[] = {q};
    CU_ASSERT_EQUAL(broker_consume(a, qs, 1, 1), 0);
    CU_ASSERT_EQUAL(broker_consume(b, qs, 1, 1), 0);
    enum { N = 10 };
    BrokerMsg ms[N];
    int conf[N];
    for (int i = 0; i < N; i++) {
        char ti[16];
        snprintf(ti, sizeof ti, "sh%d", i);
        ms[i] = msg(ti, 1, q, 1);
    }
    CU_ASSERT_EQUAL(broker_publish_batch(p, ms, N, conf), 0);
    char seen[N] = {0};
    int n_a = 0, n_b = 0, total = 0;
    for (int iter = 0; iter < 200 && total < N; iter++) {
        BrokerMsg got;
        if (broker_next(a, 50, &got) == 1) {
            int k = atoi(got.ti_id + 2);
            if (k >= 0 && k < N && !seen[k]) { seen[k] = 1; total++; }
            n_a++;
            broker_ack(a, got.tag);
        }
        if (broker_next(b, 50, &got) == 1) {
            int k = atoi(got.ti_id + 2);
            if (k >= 0 && k < N && !seen[k]) { seen[k] = 1; total++; }
            n_b++;
            broker_ack(b, got.tag);
        }
    }
    CU_ASSERT_EQUAL(total, N);
    CU_ASSERT_EQUAL(n_a + n_b, N); /* each exactly once */
    CU_ASSERT(n_a > 0);
    CU_ASSERT(n_b > 0);
out:
    broker_close(b);
    broker_close(a);
    broker_close(p);
}

static double rate(Broker *p, const char *q, int batch, int seconds_x10, long max_msgs)
{
    BrokerMsg *ms = xcalloc((size_t)batch, sizeof *ms);
    int *conf = xcalloc((size_t)batch, sizeof *conf);
    for (int i = 0; i < batch; i++) ms[i] = msg("0123456789abcdef0123456789abcdef", 1, q, 1);
    long sent = 0;
    int64_t t0 = mono_ms(), t1;
    do {
        if (broker_publish_batch(p, ms, (size_t)batch, conf) != 0) {
            fprintf(stderr, "\n  publish_batch: %s\n", broker_error(p));
            CU_FAIL("publish_batch failed");
            break;
        }
        int all = 1;
        for (int i = 0; i < batch; i++) all &= conf[i] == 1;
        CU_ASSERT(all); /* every message of the batch confirmed by the broker */
        if (!all) break;
        sent += batch;
        t1 = mono_ms();
    } while (t1 - t0 < seconds_x10 * 100 && sent < max_msgs);
    t1 = mono_ms();
    free(ms);
    free(conf);
    return t1 > t0 ? sent * 1000.0 / (double)(t1 - t0) : 0;
}

/* Publish for about a second per batch size (at most max_msgs messages), checking every
 * message is confirmed, and print the rates. The rates are figures, not assertions: a timed
 * assertion fails on a busy machine (the benchmark, not this test, is where speed is judged). */
static void scen_rates(const char *url, const char *q, const char *label, long max_msgs)
{
    Broker *p = must_connect(url);
    if (!p) return;
    static const int sizes[] = {1, 64, 256};
    double r[3];
    for (int i = 0; i < 3; i++) r[i] = rate(p, q, sizes[i], 10, max_msgs);
    printf("\n    publish with confirms, %s: batch 1: %.0f msg/s, batch 64: %.0f msg/s, batch 256: %.0f msg/s ",
           label, r[0], r[1], r[2]);
    fflush(stdout);
    broker_close(p);
}

/* ---- the tests ------------------------------------------------------------------------ */

#define BOTH(name, scen)                                                                  \
    static void test_local_##name(void)                                                   \
    {                                                                                     \
        char q[64];                                                                       \
        qname(q, sizeof q, #name);                                                        \
        scen(local_url(#name), q);                                                        \
    }                                                                                     \
    static void test_rabbitmq_##name(void)                                                \
    {                                                                                     \
        const char *base = amqp_base();                                                   \
        if (!base) return;                                                                \
        char q[64];                                                                       \
        qname(q, sizeof q, #name);                                                        \
        scen(base, q);                                                                    \
        raw_delete(q);                                                                    \
    }

BOTH(round_trip, scen_round_trip)
BOTH(priorities, scen_priorities)
BOTH(prefetch, scen_prefetch)
BOTH(set_prefetch, scen_set_prefetch)
BOTH(share, scen_share)

static void test_local_batch(void)
{
    char q[64];
    qname(q, sizeof q, "batch");
    scen_batch(local_url("batch"), q, 0);
}

static void test_rabbitmq_batch(void)
{
    const char *base = amqp_base();
    if (!base) return;
    char q[64];
    qname(q, sizeof q, "batch");
    scen_batch(base, q, 1);
    raw_delete(q);
}

static void test_local_reject(void)
{
    char q[64];
    qname(q, sizeof q, "reject");
    scen_reject(local_url("reject"), q, 0);
}

static void test_rabbitmq_reject_dead_letters(void)
{
    const char *base = amqp_base();
    if (!base) return;
    char q[64];
    qname(q, sizeof q, "reject");
    scen_reject(base, q, 1);
    raw_delete(q);
}

static void test_local_rates(void)
{
    char q[64];
    qname(q, sizeof q, "rates");
    scen_rates(local_url("rates"), q, "local", 100000);
}

static void test_rabbitmq_rates(void)
{
    const char *base = amqp_base();
    if (!base) return;
    char q[64];
    qname(q, sizeof q, "rates");
    scen_rates(base, q, "RabbitMQ classic queue, persistent", 200000);
    raw_delete(q);
}

/* No server needed: URL checking, the priority mapping, adapter lookup. */
static void test_urls_and_priority_levels(void)
{
    CU_ASSERT_EQUAL(broker_priority_level(-5), 0);
    CU_ASSERT_EQUAL(broker_priority_level(0), 0);
    CU_ASSERT_EQUAL(broker_priority_level(1), 1);
    CU_ASSERT_EQUAL(broker_priority_level(3), 2);
    CU_ASSERT_EQUAL(broker_priority_level(4), 3);
    CU_ASSERT_EQUAL(broker_priority_level(100), 7);
    CU_ASSERT_EQUAL(broker_priority_level(255), 8);
    CU_ASSERT_EQUAL(broker_priority_level(256), 9);
    CU_ASSERT_EQUAL(broker_priority_level(1 << 30), 9);
    CU_ASSERT_PTR_EQUAL(broker_adapter_for_url("amqp://h/"), &broker_adapter_rabbitmq);
    CU_ASSERT_PTR_EQUAL(broker_adapter_for_url("amqps://h/"), &broker_adapter_rabbitmq);
    CU_ASSERT_PTR_EQUAL(broker_adapter_for_url("local://"), &broker_adapter_local);
    char err[512];
    CU_ASSERT_PTR_NULL(broker_connect("redis://u:secret@h/", err, sizeof err));
    ASSERT_STR_EQ(err, "broker.url: unsupported scheme 'redis' (use local://, amqp:// or amqps://)");
    CU_ASSERT_PTR_NULL(broker_connect("amqp://u:secret@127.0.0.1:1/?hearbeat=5", err, sizeof err));
    ASSERT_STR_EQ(err, "broker.url: unknown option 'hearbeat' (did you mean 'heartbeat'?)");
    CU_ASSERT_PTR_NULL(broker_connect("amqp://u:secret@127.0.0.1:1/?queue_type=stream", err, sizeof err));
    ASSERT_STR_EQ(err, "broker.url: queue_type=stream: want classic or quorum");
    CU_ASSERT_PTR_NULL(broker_connect("amqp://u:secret@127.0.0.1:99999/", err, sizeof err));
    ASSERT_STR_EQ(err, "broker.url: bad port '99999'");
    CU_ASSERT_PTR_NULL(broker_connect("amqp://u:secret@127.0.0.1:1/?heartbeat=x", err, sizeof err));
    ASSERT_CONTAINS(err, "heartbeat=x");
    CU_ASSERT(strstr(err, "secret") == NULL);
    /* IPv6 literal, %-escapes and an '@' in the password are understood; the server is named */
    CU_ASSERT_PTR_NULL(broker_connect("amqp://u:p@ss%2f@[::1]:5999/%2f", err, sizeof err));
    ASSERT_CONTAINS(err, "cannot connect to RabbitMQ at [::1]:5999: ");
    CU_ASSERT(strstr(err, "p@ss") == NULL);
}

static void test_rabbitmq_undecodable_dead_lettered(void)
{
    const char *base = amqp_base();
    if (!base) return;
    char q[64], mark[32], ok_ti[32], bodies[5][200];
    qname(q, sizeof q, "undecodable");
    snprintf(mark, sizeof mark, "u%dbad", (int)getpid());
    snprintf(ok_ti, sizeof ok_ti, "u%d-ok", (int)getpid());
    Broker *p = must_connect(base), *c = must_connect(base);
    if (!p || !c) goto out;
    const char *qs[] = {q};
    CU_ASSERT_EQUAL(broker_consume(c, qs, 1, 1), 0);
    snprintf(bodies[0], sizeof bodies[0], "this is not JSON %s", mark);
    snprintf(bodies[1], sizeof bodies[1], "{\"ti_id\": 5, \"try_number\": 1, \"note\": \"%s\"}", mark);
    snprintf(bodies[2], sizeof bodies[2], "{\"ti_id\": \"%s\"}", mark);
    snprintf(bodies[3], sizeof bodies[3], "[\"%s\"]", mark);
    snprintf(bodies[4], sizeof bodies[4], "{\"ti_id\": \"%s\", \"try_number\": \"2\"}", mark);
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(raw_publish(q, bodies[i]), 0);
    BrokerMsg m = msg(ok_ti, 7, q, 1), got;
    CU_ASSERT(publish_ok(p, &m));
    CU_ASSERT_EQUAL_FATAL(broker_next(c, 3000, &got), 1);
    ASSERT_STR_EQ(got.ti_id, ok_ti);
    CU_ASSERT_EQUAL(got.try_number, 7);
    CU_ASSERT_EQUAL(broker_ack(c, got.tag), 0);
    CU_ASSERT_EQUAL(broker_next(c, 200, &got), 0);
    CU_ASSERT_EQUAL(raw_take_dead(mark, 5, 3000), 5);
out:
    broker_close(c);
    broker_close(p);
    raw_delete(q);
}

/* The queue is deleted under a consumer: the server cancels it; the adapter declares the
 * queue again and consumes again. A publisher whose queue vanished gets the message
 * returned (unconfirmed) and declares the queue for the next attempt. */
static void test_rabbitmq_queue_deleted(void)
{
    const char *base = amqp_base();
    if (!base) return;
    char q[64], q2[64];
    qname(q, sizeof q, "cancel");
    qname(q2, sizeof q2, "returned");
    Broker *p = must_connect(base), *c = must_connect(base);
    if (!p || !c) goto out;
    const char *qs[] = {q};
    CU_ASSERT_EQUAL(broker_consume(c, qs, 1, 1), 0);
    BrokerMsg m = msg("cancel-1", 1, q, 1), got;
    CU_ASSERT(publish_ok(p, &m));
    CU_ASSERT_EQUAL_FATAL(broker_next(c, 3000, &got), 1);
    CU_ASSERT_EQUAL(broker_ack(c, got.tag), 0);
    raw_delete(q);
    long n = -1;
    for (int i = 0; i < 50 && (n = raw_count(q)) < 0; i++) sleep_ms(100);
    CU_ASSERT(n >= 0); /* declared again by the consumer */
    m = msg("cancel-2", 1, q, 1);
    /* the queue can exist a moment before the consumer has bound it to the exchange: a message
     * published then comes back unroutable and unconfirmed, which the outbox answers by
     * publishing again — as this loop does */
    int published = 0;
    for (int i = 0; i < 30 && !(published = broker_publish(p, &m) == 0); i++) sleep_ms(100);
    if (!published) fprintf(stderr, "\n  publish cancel-2: %s\n", broker_error(p));
    CU_ASSERT(published);
    CU_ASSERT_EQUAL_FATAL(broker_next(c, 3000, &got), 1);
    ASSERT_STR_EQ(got.ti_id, "cancel-2");
    CU_ASSERT_EQUAL(broker_ack(c, got.tag), 0);

    m = msg("ret-1", 1, q2, 1);
    CU_ASSERT(publish_ok(p, &m));
    raw_delete(q2);
    m = msg("ret-2", 1, q2, 1);
    CU_ASSERT_EQUAL(broker_publish(p, &m), -1);
    ASSERT_CONTAINS(broker_error(p), "does not exist");
    m = msg("ret-3", 1, q2, 1);
    CU_ASSERT(publish_ok(p, &m));
    CU_ASSERT_EQUAL(raw_count(q2), 1);
out:
    broker_close(c);
    broker_close(p);
    raw_delete(q);
    raw_delete(q2);
}

/* A worker slot stops consuming while it runs a task (set_prefetch(0)); if its queue is
 * deleted meanwhile, no consumer is there to be cancelled, and set_prefetch(1) re-creates the
 * consumer on a queue that is gone (the adapter does that without waiting for consume-ok, so
 * the refusal arrives as a channel close): the consumer declares the queue again, consumes
 * again, and gets the next message. */
static void test_rabbitmq_queue_deleted_while_paused(void)
{
    const char *base = amqp_base();
    if (!base) return;
    char q[64];
    qname(q, sizeof q, "paused");
    Broker *p = must_connect(base), *c = must_connect(base);
    if (!p || !c) goto out;
    const char *qs[] = {q};
    CU_ASSERT_EQUAL(broker_consume(c, qs, 1, 1), 0);
    BrokerMsg m = msg("paused-1", 1, q, 1), got;
    CU_ASSERT(publish_ok(p, &m));
    CU_ASSERT_EQUAL_FATAL(broker_next(c, 3000, &got), 1);
    CU_ASSERT_EQUAL(broker_set_prefetch(c, 0), 0);
    CU_ASSERT_EQUAL(broker_ack(c, got.tag), 0);
    raw_delete(q);
    CU_ASSERT_EQUAL(raw_count(q), -1);
    CU_ASSERT_EQUAL(broker_set_prefetch(c, 1), 0);
    long n = -1;
    for (int i = 0; i < 50 && (n = raw_count(q)) < 0; i++) sleep_ms(100);
    CU_ASSERT(n >= 0); /* declared again by the consumer */
    m = msg("paused-2", 1, q, 1);
    int published = 0; /* bound a moment after it exists: see test_rabbitmq_queue_deleted */
    for (int i = 0; i < 30 && !(published = broker_publish(p, &m) == 0); i++) sleep_ms(100);
    if (!published) fprintf(stderr, "\n  publish paused-2: %s\n", broker_error(p));
    CU_ASSERT(published);
    CU_ASSERT_EQUAL_FATAL(broker_next(c, 5000, &got), 1);
    ASSERT_STR_EQ(got.ti_id, "paused-2");
    CU_ASSERT_EQUAL(broker_ack(c, got.tag), 0);
out:
    broker_close(c);
    broker_close(p);
    raw_delete(q);
}

/* A worker slot's pattern (worker/pool.c): take a message, set_prefetch(0) (busy), ack, run
 * the task. set_prefetch returns without waiting for the I/O thread; the busy slot still gets
 * nothing more, and the idle one gets every message published meanwhile. Then the busy slot
 * is free again (set_prefetch(1)) and takes work. */
static void test_rabbitmq_busy_slot_holds_nothing(void)
{
    const char *base = amqp_base();
    if (!base) return;
    char q[64];
    qname(q, sizeof q, "busy");
    Broker *p = must_connect(base), *a = must_connect(base), *b = must_connect(base);
    if (!p || !a || !b) goto out;
    const char *qs[] = {q};
    CU_ASSERT_EQUAL(broker_consume(a, qs, 1, 1), 0);
    BrokerMsg m = msg("busy-0", 1, q, 1), got;
    CU_ASSERT(publish_ok(p, &m));
    CU_ASSERT_EQUAL_FATAL(broker_next(a, 3000, &got), 1);
    CU_ASSERT_EQUAL(broker_set_prefetch(a, 0), 0);
    CU_ASSERT_EQUAL(broker_ack(a, got.tag), 0);
    CU_ASSERT_EQUAL(broker_consume(b, qs, 1, 1), 0);
    enum { N = 4 };
    for (int i = 1; i <= N; i++) {
        char ti[24];
        snprintf(ti, sizeof ti, "busy-%d", i);
        m = msg(ti, 1, q, 1);
        CU_ASSERT(publish_ok(p, &m));
    }
    int n = 0;
    while (n < N && broker_next(b, 3000, &got) == 1) {
        n++;
        CU_ASSERT_EQUAL(broker_ack(b, got.tag), 0);
    }
    CU_ASSERT_EQUAL(n, N);
    CU_ASSERT_EQUAL(broker_next(a, 300, &got), 0);
    CU_ASSERT_EQUAL(broker_set_prefetch(b, 0), 0);
    CU_ASSERT_EQUAL(broker_set_prefetch(a, 1), 0);
    m = msg("busy-5", 1, q, 1);
    CU_ASSERT(publish_ok(p, &m));
    CU_ASSERT_EQUAL_FATAL(broker_next(a, 3000, &got), 1);
    ASSERT_STR_EQ(got.ti_id, "busy-5");
    CU_ASSERT_EQUAL(broker_ack(a, got.tag), 0);
    CU_ASSERT_EQUAL(raw_count(q), 0);
out:
    broker_close(b);
    broker_close(a);
    broker_close(p);
    raw_delete(q);
}

/* ack() does not wait for the send; a Broker closed right after an ack still sends it, so
 * the message is not redelivered to anyone. */
static void test_rabbitmq_ack_then_close(void)
{
    const char *base = amqp_base();
    if (!base) return;
    char q[64];
    qname(q, sizeof q, "ackclose");
    Broker *p = must_connect(base), *c = must_connect(base), *d = NULL;
    if (!p || !c) goto out;
    const char *qs[] = {q};
    CU_ASSERT_EQUAL(broker_consume(c, qs, 1, 1), 0);
    BrokerMsg m = msg("ackclose-1", 1, q, 1), got;
    CU_ASSERT(publish_ok(p, &m));
    CU_ASSERT_EQUAL_FATAL(broker_next(c, 3000, &got), 1);
    CU_ASSERT_EQUAL(broker_set_prefetch(c, 0), 0);
    CU_ASSERT_EQUAL(broker_ack(c, got.tag), 0);
    broker_close(c);
    c = NULL;
    d = must_connect(base);
    if (!d) goto out;
    CU_ASSERT_EQUAL(broker_consume(d, qs, 1, 1), 0);
    CU_ASSERT_EQUAL(broker_next(d, 500, &got), 0);
    CU_ASSERT_EQUAL(raw_count(q), 0);
out:
    broker_close(d);
    broker_close(c);
    broker_close(p);
    raw_delete(q);
}

static void test_rabbitmq_quorum_queue(void)
{
    const char *base = amqp_base();
    if (!base) return;
    char q[64];
    qname(q, sizeof q, "quorum");
    const char *url = url_with(base, "queue_type=quorum");
    Broker *p = must_connect(url), *c = must_connect(url);
    if (!p || !c) goto out;
    const char *qs[] = {q};
    CU_ASSERT_EQUAL(broker_consume(c, qs, 1, 2), 0);
    BrokerMsg m = msg("quorum-1", 1, q, 50), got;
    CU_ASSERT(publish_ok(p, &m));
    CU_ASSERT_EQUAL_FATAL(broker_next(c, 3000, &got), 1);
    ASSERT_STR_EQ(got.ti_id, "quorum-1");
    CU_ASSERT_EQUAL(broker_ack(c, got.tag), 0);
    CU_ASSERT(raw_is_quorum(q));
    /* per-consumer prefetch: stop, then consume again */
    CU_ASSERT_EQUAL(broker_set_prefetch(c, 0), 0);
    m = msg("quorum-2", 1, q, 1);
    CU_ASSERT(publish_ok(p, &m));
    CU_ASSERT_EQUAL(broker_next(c, 300, &got), 0);
    CU_ASSERT_EQUAL(broker_set_prefetch(c, 1), 0);
    CU_ASSERT_EQUAL_FATAL(broker_next(c, 3000, &got), 1);
    ASSERT_STR_EQ(got.ti_id, "quorum-2");
    CU_ASSERT_EQUAL(broker_ack(c, got.tag), 0);
    /* a classic Broker meeting the quorum queue: a clear error */
    Broker *classic = must_connect(base);
    if (classic) {
        CU_ASSERT_EQUAL(broker_declare(classic, q), -1);
        ASSERT_CONTAINS(broker_error(classic), "cannot declare queue");
        ASSERT_CONTAINS(broker_error(classic), "PRECONDITION_FAILED");
        broker_close(classic);
    }
out:
    broker_close(c);
    broker_close(p);
    raw_delete(q);
}

static void test_rabbitmq_connect_errors(void)
{
    const char *base = amqp_base();
    if (!base) return;
    RawCfg rc;
    CU_ASSERT_EQUAL_FATAL(raw_cfg(&rc), 0);
    char err[1024], url[1024], want[1024];
    CU_ASSERT_PTR_NULL(broker_connect("amqp://gust:gust@127.0.0.1:5999/", err, sizeof err));
    ASSERT_STR_EQ(err, "cannot connect to RabbitMQ at 127.0.0.1:5999: connection refused");

    snprintf(url, sizeof url, "amqp://%s:not-the-password-42@%s:%d/", rc.user, rc.host, rc.port);
    CU_ASSERT_PTR_NULL(broker_connect(url, err, sizeof err));
    snprintf(want, sizeof want, "RabbitMQ at %s:%d: login refused for user '%s' (ACCESS_REFUSED)", rc.host, rc.port,
             rc.user);
    ASSERT_STR_EQ(err, want);
    CU_ASSERT(strstr(err, "not-the-password-42") == NULL);

    snprintf(url, sizeof url, "amqp://%s:%s@%s:%d/no-such-vhost-%d", rc.user, rc.pass, rc.host, rc.port,
             (int)getpid());
    CU_ASSERT_PTR_NULL(broker_connect(url, err, sizeof err));
    snprintf(want, sizeof want, "RabbitMQ at %s:%d: vhost 'no-such-vhost-%d' not found (NOT_ALLOWED)", rc.host,
             rc.port, (int)getpid());
    ASSERT_STR_EQ(err, want);
    CU_ASSERT(strstr(err, rc.pass) == NULL || strlen(rc.pass) < 3);

    snprintf(url, sizeof url, "amqps://%s:%s@%s:%d/?connect_timeout=3000", rc.user, rc.pass, rc.host, rc.port);
    CU_ASSERT_PTR_NULL(broker_connect(url, err, sizeof err));
    snprintf(want, sizeof want, "cannot connect to RabbitMQ at %s:%d: SSL handshake failed (is TLS enabled on that "
             "port?)", rc.host, rc.port);
    ASSERT_STR_EQ(err, want);

    CU_ASSERT_PTR_NULL(broker_connect("amqp://gust:gust@no-such-host.invalid:5672/", err, sizeof err));
    ASSERT_CONTAINS(err, "cannot connect to RabbitMQ at no-such-host.invalid:5672: cannot resolve host");
}

/* A consumer that holds a delivery and does not call next() for 10 s with heartbeat=2 s
 * (the server would drop a silent connection after about 4 s) is still connected: the
 * ack of that delivery works and the message is not redelivered. A raw connection with
 * the same heartbeat that nobody services is dropped meanwhile: the control. */
static void test_rabbitmq_heartbeats(void)
{
    const char *base = amqp_base();
    if (!base) return;
    char q[64];
    qname(q, sizeof q, "heartbeat");
    Broker *p = must_connect(base), *c = must_connect(url_with(base, "heartbeat=2"));
    amqp_connection_state_t silent = raw_open_hb(2);
    CU_ASSERT_PTR_NOT_NULL(silent);
    if (!p || !c) goto out;
    const char *qs[] = {q};
    CU_ASSERT_EQUAL(broker_consume(c, qs, 1, 1), 0);
    BrokerMsg m = msg("hb-1", 1, q, 1), got;
    CU_ASSERT(publish_ok(p, &m));
    CU_ASSERT_EQUAL_FATAL(broker_next(c, 3000, &got), 1);
    sleep_ms(10000); /* "running a task" */
    int ack_rc = broker_ack(c, got.tag);
    if (ack_rc != 0) fprintf(stderr, "\n  ack after 10 s: %s\n", broker_error(c));
    CU_ASSERT_EQUAL(ack_rc, 0);
    CU_ASSERT_EQUAL(broker_next(c, 500, &got), 0);
    CU_ASSERT_EQUAL(raw_count(q), 0);
    if (silent) {
        amqp_queue_declare(silent, 1, amqp_cstring_bytes(q), 1, 0, 0, 0, amqp_empty_table);
        CU_ASSERT(amqp_get_rpc_reply(silent).reply_type != AMQP_RESPONSE_NORMAL); /* dropped by the server */
    }
out:
    if (silent) amqp_destroy_connection(silent);
    broker_close(c);
    broker_close(p);
    raw_delete(q);
}

/* RabbitMQ stops and starts again between publishes: a publish during the outage fails
 * after its bound with every message unconfirmed; afterwards publish_batch and next()
 * work again on the same Brokers (they reconnected, declared and consumed again). */
static void test_rabbitmq_restart(void)
{
    const char *base = amqp_base();
    if (!base) return;
    char q[64];
    qname(q, sizeof q, "restart");
    Broker *p = must_connect(url_with(base, "publish_timeout=30000"));
    Broker *quick = must_connect(url_with(base, "publish_timeout=500"));
    Broker *c = must_connect(base);
    if (!p || !quick || !c) goto out;
    const char *qs[] = {q};
    CU_ASSERT_EQUAL(broker_consume(c, qs, 1, 8), 0);
    BrokerMsg m = msg("rs-0", 1, q, 1), got;
    CU_ASSERT(publish_ok(p, &m));
    CU_ASSERT_EQUAL_FATAL(broker_next(c, 3000, &got), 1);
    CU_ASSERT_EQUAL(broker_ack(c, got.tag), 0);
    CU_ASSERT_EQUAL(broker_next(c, 200, &got), 0);

    CU_ASSERT_EQUAL_FATAL(run_services("stop rabbitmq"), 0);
    BrokerMsg two[2] = {msg("rs-x", 1, q, 1), msg("rs-y", 1, q, 1)};
    int conf2[2] = {-1, -1};
    int64_t t0 = mono_ms();
    CU_ASSERT_EQUAL(broker_publish_batch(quick, two, 2, conf2), -1);
    CU_ASSERT(mono_ms() - t0 < 3000);
    CU_ASSERT(conf2[0] == 0 && conf2[1] == 0);
    ASSERT_CONTAINS(broker_error(quick), "2 of 2 messages not confirmed");
    int start_rc = run_services("start rabbitmq");
    CU_ASSERT_EQUAL_FATAL(start_rc, 0);

    enum { N = 5 };
    BrokerMsg ms[N];
    int conf[N];
    for (int i = 0; i < N; i++) {
        char ti[16];
        snprintf(ti, sizeof ti, "rs-%d", i + 1);
        ms[i] = msg(ti, 1, q, 1);
    }
    int rc = broker_publish_batch(p, ms, N, conf);
    if (rc != 0) fprintf(stderr, "\n  publish after restart: %s\n", broker_error(p));
    CU_ASSERT_EQUAL(rc, 0);
    int n = 0;
    while (n < N && broker_next(c, 15000, &got) == 1) {
        n++;
        CU_ASSERT_EQUAL(broker_ack(c, got.tag), 0);
    }
    CU_ASSERT_EQUAL(n, N);
    /* the quick publisher works again too */
    CU_ASSERT(publish_ok(quick, &two[0]));
out:
    broker_close(c);
    broker_close(quick);
    broker_close(p);
    raw_delete(q);
}

static const UnitTest tests[] = {
    UNIT(test_urls_and_priority_levels),
    UNIT(test_local_round_trip),
    UNIT(test_rabbitmq_round_trip),
    UNIT(test_local_priorities),
    UNIT(test_rabbitmq_priorities),
    UNIT(test_local_batch),
    UNIT(test_rabbitmq_batch),
    UNIT(test_local_prefetch),
    UNIT(test_rabbitmq_prefetch),
    UNIT(test_local_set_prefetch),
    UNIT(test_rabbitmq_set_prefetch),
    UNIT(test_local_reject),
    UNIT(test_rabbitmq_reject_dead_letters),
    UNIT(test_local_share),
    UNIT(test_rabbitmq_share),
    UNIT(test_rabbitmq_undecodable_dead_lettered),
    UNIT(test_rabbitmq_queue_deleted),
    UNIT(test_rabbitmq_queue_deleted_while_paused),
    UNIT(test_rabbitmq_busy_slot_holds_nothing),
    UNIT(test_rabbitmq_ack_then_close),
    UNIT(test_rabbitmq_quorum_queue),
    UNIT(test_rabbitmq_connect_errors),
    UNIT(test_local_rates),
    UNIT(test_rabbitmq_rates),
    UNIT(test_rabbitmq_heartbeats),
    UNIT(test_rabbitmq_restart),
    {0},
};

UNIT_MAIN("broker", tests)
