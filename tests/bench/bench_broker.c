/* bench_broker — the RabbitMQ adapter's per-message costs against a real server, printed as
 * figures for docs/performance.md (a benchmark, not a test: it asserts nothing).
 *
 * 1. publish:  one Broker publishes N messages with publish_batch (256 a call, as the
 *              scheduler's outbox does) and waits for every confirm: msgs/s.
 * 2. slots:    S threads, each with a Broker of its own consuming the queue with prefetch 1,
 *              do what a worker slot does with each message (worker/pool.c), minus the store
 *              and the task: next, set_prefetch(0) (stop consuming: the slot is busy), ack,
 *              set_prefetch(1) (free again). msgs/s over the N messages, and the mean time a
 *              slot spends in set_prefetch(0) + ack (between the claim and the task's start)
 *              and in set_prefetch(1) (after the task). GUST_BENCH_TASK_US=T sleeps T us
 *              between the ack and set_prefetch(1), as a task would run there (default 0).
 *              Also the CPU time this process used per message (its Brokers' I/O threads
 *              included; the server's not).
 * 3. acks:     the same S threads, prefetch 1 kept, next + ack (+ the task) only: what consuming costs
 *              without the consumer being cancelled and re-created per message (a reference
 *              for 2; a worker cannot do this, DESIGN.md invariant 4).
 *
 * Each round publishes afresh into a queue of its own ("gust-bench-<pid>-<round>"),
 * deleted at the end of the round. Environment: GUST_BENCH_AMQP_URL, else GUST_TEST_AMQP_URL;
 * GUST_BENCH_MSGS (default 10000), GUST_BENCH_SLOTS (default 8), GUST_BENCH_ROUNDS
 * (default 3). The median of the rounds is printed after them.
 *
 *   bench_broker [publish] [slots] [acks]   (default: all three) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "broker-adapters/broker.h"
#include "core/log.h"
#include "core/util.h"

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this process (all threads), user + system. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Delete a queue behind the adapter's back (it never deletes anything). */
static void queue_delete(const char *url, const char *queue)
{
    char *copy = xstrdup(url);
    char *q = strchr(copy, '?');
    if (q) *q = '\0';
    struct amqp_connection_info ci;
    amqp_connection_state_t c = NULL;
    if (amqp_parse_url(copy, &ci) != AMQP_STATUS_OK) goto done;
    c = amqp_new_connection();
    amqp_socket_t *s = amqp_tcp_socket_new(c);
    if (!s || amqp_socket_open(s, ci.host, ci.port) != AMQP_STATUS_OK) goto done;
    const char *vhost = ci.vhost && ci.vhost[0] ? ci.vhost : "/";
    if (amqp_login(c, vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, ci.user, ci.password).reply_type !=
        AMQP_RESPONSE_NORMAL)
        goto done;
    amqp_channel_open(c, 1);
    amqp_queue_delete(c, 1, amqp_cstring_bytes(queue), 0, 0);
    amqp_connection_close(c, AMQP_REPLY_SUCCESS);
done:
    if (c) amqp_destroy_connection(c);
    free(copy);
}

/* Publish n messages in batches of 256; msgs/s, or -1 on an error. */
static double publish_n(const char *url, const char *queue, long n)
{
    char err[512];
    Broker *b = broker_connect(url, err, sizeof err);
    if (!b) {
        fprintf(stderr, "bench_broker: %s\n", err);
        return -1;
    }
    enum { BATCH = 256 };
    BrokerMsg ms[BATCH];
    int conf[BATCH];
    memset(ms, 0, sizeof ms);
    double t0 = mono_s();
    long sent = 0;
    while (sent < n) {
        size_t k = n - sent < BATCH ? (size_t)(n - sent) : BATCH;
        for (size_t i = 0; i < k; i++) {
            snprintf(ms[i].ti_id, sizeof ms[i].ti_id, "%032lx", (unsigned long)(sent + (long)i));
            ms[i].try_number = 1;
            util_strlcpy(ms[i].queue, queue, sizeof ms[i].queue);
            ms[i].priority = 1;
        }
        if (broker_publish_batch(b, ms, k, conf) != 0) {
            fprintf(stderr, "bench_broker: publish_batch: %s\n", broker_error(b));
            broker_close(b);
            return -1;
        }
        sent += (long)k;
    }
    double dt = mono_s() - t0;
    broker_close(b);
    return (double)n / dt;
}

typedef struct Consumers {
    const char *url, *queue;
    int churn;               /* 1: the worker slot's pattern; 0: next + ack only */
    long task_us;            /* a task's run time, slept between the ack and set_prefetch(1) */
    long want;
    long got;                /* under mu */
    int ready, errors;       /* under mu */
    double t_start, t_end;
    double busy_s, free_s;   /* summed over messages: set_prefetch(0) + ack, set_prefetch(1) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int go;
} Consumers;

static void *consumer_main(void *arg)
{
    Consumers *c = arg;
    char err[512];
    const char *qs[1] = {c->queue};
    Broker *b = broker_connect(c->url, err, sizeof err);
    if (b && broker_consume(b, qs, 1, c->churn ? 0 : 1) != 0) {
        snprintf(err, sizeof err, "%s", broker_error(b));
        broker_close(b);
        b = NULL;
    }
    pthread_mutex_lock(&c->mu);
    if (!b) {
        fprintf(stderr, "bench_broker: %s\n", err);
        c->errors++;
    }
    c->ready++;
    pthread_cond_broadcast(&c->cv);
    while (!c->go) pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    if (!b) return NULL;
    if (c->churn) broker_set_prefetch(b, 1); /* all slots start consuming together */
    double busy = 0, freed = 0;
    for (;;) {
        pthread_mutex_lock(&c->mu);
        int done = c->got >= c->want;
        pthread_mutex_unlock(&c->mu);
        if (done) break;
        BrokerMsg m;
        if (broker_next(b, 50, &m) <= 0) continue;
        double t0 = mono_s();
        if (c->churn) broker_set_prefetch(b, 0);
        broker_ack(b, m.tag);
        double t1 = mono_s();
        if (c->task_us) usleep((useconds_t)c->task_us); /* the task (not counted in the figures) */
        double t1b = mono_s();
        if (c->churn) broker_set_prefetch(b, 1);
        double t2 = mono_s();
        busy += t1 - t0;
        freed += t2 - t1b;
        pthread_mutex_lock(&c->mu);
        if (++c->got == c->want) c->t_end = t2;
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_lock(&c->mu);
    c->busy_s += busy;
    c->free_s += freed;
    pthread_mutex_unlock(&c->mu);
    broker_close(b);
    return NULL;
}

/* Consume n messages with `slots` threads; msgs/s (or -1), and the mean times per message. */
static double consume_n(const char *url, const char *queue, long n, int slots, int churn, long task_us,
                        double *busy_ms, double *free_ms)
{
    Consumers c;
    memset(&c, 0, sizeof c);
    c.task_us = task_us;
    c.url = url;
    c.queue = queue;
    c.churn = churn;
    c.want = n;
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    pthread_t *th = xcalloc((size_t)slots, sizeof *th);
    for (int i = 0; i < slots; i++) pthread_create(&th[i], NULL, consumer_main, &c);
    pthread_mutex_lock(&c.mu);
    while (c.ready < slots) pthread_cond_wait(&c.cv, &c.mu);
    c.go = 1;
    c.t_start = mono_s();
    pthread_cond_broadcast(&c.cv);
    pthread_mutex_unlock(&c.mu);
    for (int i = 0; i < slots; i++) pthread_join(th[i], NULL);
    free(th);
    pthread_cond_destroy(&c.cv);
    pthread_mutex_destroy(&c.mu);
    if (c.errors || c.got < n) return -1;
    *busy_ms = c.busy_s * 1000 / (double)n;
    *free_ms = c.free_s * 1000 / (double)n;
    return (double)n / (c.t_end - c.t_start);
}

static long env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    return v && atol(v) > 0 ? atol(v) : dflt;
}

int main(int argc, char **argv)
{
    const char *url = getenv("GUST_BENCH_AMQP_URL");
    if (!url || !*url) url = getenv("GUST_TEST_AMQP_URL");
    if (!url || !*url) {
        fprintf(stderr, "bench_broker: set GUST_BENCH_AMQP_URL or GUST_TEST_AMQP_URL (eval \"$(bash "
                        "tests/services.sh env)\")\n");
        return 2;
    }
    int do_pub = argc < 2, do_slots = argc < 2, do_acks = argc < 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "publish") == 0) do_pub = 1;
        else if (strcmp(argv[i], "slots") == 0) do_slots = 1;
        else if (strcmp(argv[i], "acks") == 0) do_acks = 1;
        else {
            fprintf(stderr, "usage: bench_broker [publish] [slots] [acks]\n");
            return 2;
        }
    }
    log_set_level(LOG_WARNING);
    long n = env_long("GUST_BENCH_MSGS", 10000);
    int slots = (int)env_long("GUST_BENCH_SLOTS", 8);
    int rounds = (int)env_long("GUST_BENCH_ROUNDS", 3);
    long task_us = getenv("GUST_BENCH_TASK_US") ? atol(getenv("GUST_BENCH_TASK_US")) : 0;
    double pub[64], sl[64], slb[64], slf[64], slc[64], ack[64], ackc[64];
    if (rounds > 64) rounds = 64;
    printf("bench_broker: %ld messages, %d slots, tasks of %ld us, %d rounds, RabbitMQ classic queue, "
           "persistent\n", n, slots, task_us, rounds);
    for (int r = 0; r < rounds; r++) {
        char q[128];
        snprintf(q, sizeof q, "gust-bench-%d-%d", (int)getpid(), r);
        double p = publish_n(url, q, n), x = 0, y = 0;
        if (p < 0) return 1;
        pub[r] = p;
        printf("  round %d: publish %7.0f msgs/s", r + 1, p);
        if (do_slots) {
            double c0 = cpu_s();
            sl[r] = consume_n(url, q, n, slots, 1, task_us, &x, &y);
            slc[r] = (cpu_s() - c0) * 1e6 / (double)n;
            slb[r] = x;
            slf[r] = y;
            printf("  slots %6.0f msgs/s (set_prefetch(0)+ack %.3f ms, set_prefetch(1) %.3f ms, CPU %.0f us/msg)",
                   sl[r], x, y, slc[r]);
        }
        if (do_acks) {
            if (do_slots && publish_n(url, q, n) < 0) return 1;
            double c0 = cpu_s();
            ack[r] = consume_n(url, q, n, slots, 0, task_us, &x, &y);
            ackc[r] = (cpu_s() - c0) * 1e6 / (double)n;
            printf("  acks %6.0f msgs/s (CPU %.0f us/msg)", ack[r], ackc[r]);
        }
        printf("\n");
        fflush(stdout);
        queue_delete(url, q);
    }
    printf("  median: ");
    if (do_pub || (!do_slots && !do_acks)) printf("publish %.0f msgs/s  ", median(pub, rounds));
    if (do_slots)
        printf("slots %.0f msgs/s (set_prefetch(0)+ack %.3f ms, set_prefetch(1) %.3f ms, CPU %.0f us/msg)  ",
               median(sl, rounds), median(slb, rounds), median(slf, rounds), median(slc, rounds));
    if (do_acks) printf("acks %.0f msgs/s (CPU %.0f us/msg)", median(ack, rounds), median(ackc, rounds));
    printf("\n");
    return 0;
}
