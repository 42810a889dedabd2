/* Cluster state: heartbeats, rate limits and named limits, each behaviour checked on both
 * implementations — `local` (in process) and the Redis that tests/services.sh runs
 * (GUST_TEST_REDIS_URL). Without that URL the Redis half fails and says how to start the server;
 * it never skips silently.
 *
 * Every test works under its own key prefix (gust:test:PID:N:), so parallel runs do not collide.
 * The restart and outage tests stop and start the shared test Redis: an outage test always
 * starts it again, also when a check fails (and at exit, should the test not get there). */
#include "cluster/cluster.h"
#include "core/util.h"
#include "unit.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct Impl {
    int redis;        /* 1 = Redis, 0 = local */
    const char *name; /* for failure messages */
    const char *url;
} Impl;

static const Impl *g_impl;  /* the implementation the running test body checks */
static char g_prefix[96];   /* this test's key prefix */
static int g_test_no;
static int g_redis_stopped; /* the outage test stopped Redis and has not started it yet */

/* CU_ASSERT that names the implementation when it fails. */
#define CHECK(cond)                                                                              \
    do {                                                                                         \
        int ok_ = !!(cond);                                                                      \
        if (!ok_) fprintf(stderr, "\n  [%s] %s:%d: %s\n", g_impl ? g_impl->name : "-", __FILE__, \
                          __LINE__, #cond);                                                      \
        CU_assertImplementation(ok_, __LINE__, #cond, __FILE__, "", CU_FALSE);                   \
    } while (0)

/* ---- helpers --------------------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {}
}

static int one_line(const char *s) { return s && *s && !strchr(s, '\n'); }

static const char *redis_url(void)
{
    const char *u = getenv("GUST_TEST_REDIS_URL");
    return u && *u ? u : NULL;
}

static void no_redis(void)
{
    fprintf(stderr, "\n  GUST_TEST_REDIS_URL is not set: run `tests/services.sh start` and "
                    "`eval \"$(tests/services.sh env)\"`, then run this test again\n");
    CU_FAIL("no Redis to test against (GUST_TEST_REDIS_URL unset)");
}

/* "host:port" of the test Redis, as its error messages name it. */
static const char *redis_where(void)
{
    static char where[128];
    const char *u = redis_url();
    if (!u) return "?";
    const char *p = strstr(u, "://");
    p = p ? p + 3 : u;
    size_t n = strcspn(p, "/?");
    snprintf(where, sizeof where, "%.*s", (int)n, p);
    return where;
}

/* The services script: `bash tests/services.sh` (or the one `env` pointed at). */
static int services(const char *args)
{
    const char *script = getenv("GUST_TEST_SERVICES");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "bash '%s' %s >/dev/null 2>&1", script && *script ? script : "tests/services.sh", args);
    int rc = system(cmd);
    if (rc != 0) fprintf(stderr, "\n  `%s` failed (%d)\n", cmd, rc);
    return rc;
}

static void start_redis_again(void)
{
    if (!g_redis_stopped) return;
    if (services("start redis") == 0) g_redis_stopped = 0;
}

static void new_prefix(void)
{
    snprintf(g_prefix, sizeof g_prefix, "gust:test:%ld:%d:", (long)getpid(), ++g_test_no);
}

/* A connection to the running implementation, under this test's prefix. */
static ClusterConn *open_conn(void)
{
    char err[512] = "";
    ClusterConn *c = cluster_connect(g_impl->url, err, sizeof err);
    if (!c) fprintf(stderr, "\n  [%s] connect %s: %s\n", g_impl->name, g_impl->url, err);
    CHECK(c != NULL);
    if (c) CHECK(cluster_set_prefix(c, g_prefix) == 0);
    return c;
}

/* Define name_local and name_redis, each running body name(impl). */
#define BOTH(name)                                                                                    \
    static void name(const Impl *im);                                                                 \
    static void name##_local(void) { run_on(0, name); }                                               \
    static void name##_redis(void) { run_on(1, name); }
#define UNIT2(name) UNIT(name##_local), UNIT(name##_redis)

static void run_on(int redis, void (*body)(const Impl *))
{
    Impl im = {redis, redis ? "redis" : "local", redis ? redis_url() : "local://"};
    if (!im.url) {
        no_redis();
        return;
    }
    new_prefix();
    g_impl = &im;
    body(&im);
    g_impl = NULL;
}

static WorkerInfo make_worker(const char *id, int n)
{
    WorkerInfo w = {0};
    w.id = (char *)id;
    w.host = (char *)"host-a";
    w.pid = 1000 + n;
    w.queues = (char *)"default,io";
    w.concurrency = 4 + n;
    w.running = (char *)"0123456789abcdef0123456789abcdef,fedcba9876543210fedcba9876543210";
    w.version = (char *)"0.1.0";
    w.started_at = 1700000000000000LL + n;
    return w;
}

/* A TCP port on 127.0.0.1 where nothing listens (bound, read, closed). */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* ---- URLs and parsing (no server needed) ------------------------------------------ */

static void expect_connect_error(const char *url, const char *want, const char *secret)
{
    char err[512] = "";
    ClusterConn *c = cluster_connect(url, err, sizeof err);
    CHECK(c == NULL);
    cluster_close(c);
    ASSERT_CONTAINS(err, want);
    CHECK(one_line(err));
    if (secret && strstr(err, secret)) {
        fprintf(stderr, "\n  error repeats the password: %s\n", err);
        CU_FAIL("password in the error message");
    }
}

static void test_url_chooses_the_implementation(void)
{
    CHECK(cluster_impl_for_url("") == &cluster_impl_local);
    CHECK(cluster_impl_for_url(NULL) == &cluster_impl_local);
    CHECK(cluster_impl_for_url("local://") == &cluster_impl_local);
    CHECK(cluster_impl_for_url("local://x") == &cluster_impl_local);
    CHECK(cluster_impl_for_url("redis://h:1/0") == &cluster_impl_redis);
    CHECK(cluster_impl_for_url("amqp://h") == NULL);
    char err[256];
    ClusterConn *c = cluster_connect("", err, sizeof err);
    CHECK(c && strcmp(cluster_impl(c)->name, "local") == 0);
    cluster_close(c);

    expect_connect_error("amqp://h/", "unsupported scheme 'amqp://'", NULL);
    expect_connect_error("rediss://h:6379/0", "TLS", NULL);
    expect_connect_error("127.0.0.1:6379", "no scheme", NULL);
    expect_connect_error("redis://127.0.0.1:notaport/0", "the port must be a number", NULL);
    expect_connect_error("redis://127.0.0.1:6379/abc", "the database after '/' must be a number", NULL);
    expect_connect_error("redis://127.0.0.1:6379/0?colour=red", "unknown option 'colour'", NULL);
    expect_connect_error("redis://s3cretpw@127.0.0.1:6379/0", "redis://:PASSWORD@HOST", "s3cretpw");

    int port = free_port();
    CHECK(port > 0);
    char url[128], want[128];
    snprintf(url, sizeof url, "redis://:s3cretpw@127.0.0.1:%d/0", port);
    snprintf(want, sizeof want, "cannot connect to Redis at 127.0.0.1:%d: Connection refused", port);
    int64_t t0 = now_ms();
    expect_connect_error(url, want, "s3cretpw");
    CHECK(now_ms() - t0 < 3000);
}

/* A server that accepts connections (the kernel does, from the backlog) and never answers. */
static void test_silent_server_times_out(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && listen(fd, 8) == 0 &&
          getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    char url[128], want[128];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0?timeout_ms=300", ntohs(a.sin_port));
    snprintf(want, sizeof want, "Redis at 127.0.0.1:%d did not answer within 300 ms", ntohs(a.sin_port));
    int64_t t0 = now_ms();
    expect_connect_error(url, want, NULL);
    int64_t took = now_ms() - t0;
    CHECK(took >= 250 && took < 1500);
    close(fd);
}

static void expect_parse(const char *text, double per_s, int burst)
{
    double ps = -1;
    int b = -1;
    char err[256] = "";
    int rc = cluster_rate_parse(text, &ps, &b, err, sizeof err);
    if (rc != 0 || fabs(ps - per_s) > 1e-9 * per_s || b != burst)
        fprintf(stderr, "\n  parse '%s': rc %d per_s %g burst %d (%s); want %g, %d\n", text, rc, ps, b, err, per_s, burst);
    CU_ASSERT(rc == 0 && fabs(ps - per_s) <= 1e-9 * per_s && b == burst);
}

static void expect_parse_error(const char *text, const char *want)
{
    char err[256] = "";
    CU_ASSERT(cluster_rate_parse(text, NULL, NULL, err, sizeof err) == -1);
    ASSERT_CONTAINS(err, want);
    CU_ASSERT(one_line(err));
}

static void test_rate_limits_parse_as_users_write_them(void)
{
    expect_parse("10/m", 10.0 / 60, 1);
    expect_parse("100/h", 100.0 / 3600, 1);
    expect_parse("5/s", 5, 1);
    expect_parse("2.5/s", 2.5, 1);
    expect_parse("30/m", 0.5, 1);
    expect_parse("1/d", 1.0 / 86400, 1);
    expect_parse("100", 100, 1); /* Celery: no unit = per second */
    expect_parse(" 10 / minute : 5 ", 10.0 / 60, 5);
    expect_parse("10/M:5", 10.0 / 60, 5);
    expect_parse("3/hours", 3.0 / 3600, 1);
    expect_parse(".5/s", 0.5, 1);

    expect_parse_error("", "rate limit is empty");
    expect_parse_error("   ", "rate limit is empty");
    expect_parse_error("abc", "rate limit 'abc': RATE must be a number > 0");
    expect_parse_error("ten/m", "RATE must be a number > 0; write RATE/UNIT[:BURST] such as 10/m");
    expect_parse_error("-1/s", "RATE must be a number");
    expect_parse_error("1e3/s", "RATE must be a number");
    expect_parse_error("nan/s", "RATE must be a number");
    expect_parse_error("10/w", "rate limit '10/w': unknown unit 'w' (use s, m, h or d)");
    expect_parse_error("10/", "missing unit after '/'");
    expect_parse_error("0/m", "the rate must be greater than 0");
    expect_parse_error("0.0/s", "the rate must be greater than 0");
    expect_parse_error("10/m:0", "BURST after ':' must be a whole number from 1 to 100000");
    expect_parse_error("10/m:x", "BURST after ':' must be a whole number");
    expect_parse_error("10/m:", "BURST after ':'");
    expect_parse_error("2000000/s", "out of range");
    expect_parse_error("1/m/s", "unknown unit 'm/s'");

    CU_ASSERT(cluster_ratelimit_name_ok("api.github:search-1_x"));
    CU_ASSERT(!cluster_ratelimit_name_ok(""));
    CU_ASSERT(!cluster_ratelimit_name_ok("10/m"));
    CU_ASSERT(!cluster_ratelimit_name_ok("has space"));
    CU_ASSERT(cluster_worker_id_ok("host-1:4242"));
    CU_ASSERT(!cluster_worker_id_ok("a b"));
    CU_ASSERT(!cluster_worker_id_ok(""));
    CU_ASSERT(cluster_gcra_interval_us(30.0 / 60) == 2000000);
    CU_ASSERT(cluster_gcra_interval_us(1e6) == 1);
}

/* ---- heartbeats ------------------------------------------------------------------- */

BOTH(test_heartbeat_alive_expiry_and_gone)
static void test_heartbeat_alive_expiry_and_gone(const Impl *im)
{
    ClusterConn *c = open_conn();
    if (!c) return;
    WorkerInfo w = make_worker("host-a:1001", 1);
    int64_t before = util_now_us();
    CHECK(cluster_worker_beat(c, &w, 300) == 0);
    CHECK(cluster_worker_alive(c, "host-a:1001") == 1);
    CHECK(cluster_worker_alive(c, "host-b:1") == 0);

    WorkerInfo got;
    CHECK(cluster_worker_get(c, "host-a:1001", &got) == 1);
    ASSERT_STR_EQ(got.id, "host-a:1001");
    ASSERT_STR_EQ(got.host, "host-a");
    CHECK(got.pid == 1001);
    ASSERT_STR_EQ(got.queues, "default,io");
    CHECK(got.concurrency == 5);
    ASSERT_STR_EQ(got.running, w.running);
    ASSERT_STR_EQ(got.version, "0.1.0");
    CHECK(got.started_at == 1700000000000001LL);
    CHECK(got.last_beat >= before && got.last_beat <= util_now_us());
    worker_info_clear(&got);
    CHECK(got.id == NULL);

    /* NULL strings are stored as "" */
    WorkerInfo bare = {0};
    bare.id = (char *)"bare";
    CHECK(cluster_worker_beat(c, &bare, 300) == 0);
    CHECK(cluster_worker_get(c, "bare", &got) == 1);
    ASSERT_STR_EQ(got.host, "");
    ASSERT_STR_EQ(got.running, "");
    worker_info_clear(&got);

    /* a beat refreshes the TTL; without one the key expires */
    sleep_ms(200);
    w.running = (char *)"";
    CHECK(cluster_worker_beat(c, &w, 300) == 0);
    sleep_ms(200); /* 400 ms after the first beat, 200 after the second */
    CHECK(cluster_worker_alive(c, "host-a:1001") == 1);
    CHECK(cluster_worker_alive(c, "bare") == 0);
    CHECK(cluster_worker_get(c, "host-a:1001", &got) == 1);
    ASSERT_STR_EQ(got.running, "");
    worker_info_clear(&got);
    sleep_ms(200);
    CHECK(cluster_worker_alive(c, "host-a:1001") == 0);
    CHECK(cluster_worker_get(c, "host-a:1001", &got) == 0);
    CHECK(got.id == NULL);

    /* clean shutdown */
    CHECK(cluster_worker_beat(c, &w, 10000) == 0);
    CHECK(cluster_worker_alive(c, "host-a:1001") == 1);
    CHECK(cluster_worker_gone(c, "host-a:1001") == 0);
    CHECK(cluster_worker_alive(c, "host-a:1001") == 0);
    CHECK(cluster_worker_gone(c, "host-a:1001") == 0); /* already gone: fine */

    /* bad input */
    WorkerInfo bad = make_worker("has space", 0);
    CHECK(cluster_worker_beat(c, &bad, 300) == -1);
    ASSERT_CONTAINS(cluster_error(c), "worker id must be");
    CHECK(cluster_worker_beat(c, &w, 0) == -1);
    ASSERT_CONTAINS(cluster_error(c), "heartbeat TTL must be > 0 ms");
    CHECK(cluster_worker_alive(c, "") == -1);
    CHECK(one_line(cluster_error(c)));
    CHECK(cluster_ping(c) == 0);
    (void)im;
    cluster_close(c);
}

BOTH(test_workers_list_scans_all_of_50)
static void test_workers_list_scans_all_of_50(const Impl *im)
{
    ClusterConn *c = open_conn(), *other = open_conn();
    if (!c || !other) goto out;
    /* 50 workers, 200 other keys under the same prefix (so SCAN takes several pages), and a
     * worker under another prefix that must not show */
    char id[32];
    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof id, "w-%03d", 49 - i);
        WorkerInfo w = make_worker(id, 49 - i);
        CHECK(cluster_worker_beat(c, &w, 10000) == 0);
    }
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof id, "k%d", i);
        CHECK(cluster_rate_acquire(c, id, 1, 1, NULL) == 1);
    }
    char other_prefix[128];
    snprintf(other_prefix, sizeof other_prefix, "%sother:", g_prefix);
    CHECK(cluster_set_prefix(other, other_prefix) == 0);
    WorkerInfo stranger = make_worker("stranger", 0);
    CHECK(cluster_worker_beat(other, &stranger, 10000) == 0);

    WorkerInfo *ws = NULL;
    size_t n = 0;
    CHECK(cluster_workers_list(c, &ws, &n) == 0);
    CHECK(n == 50);
    for (size_t i = 0; i < n && i < 50; i++) {
        snprintf(id, sizeof id, "w-%03zu", i);
        ASSERT_STR_EQ(ws[i].id, id); /* sorted by id */
        CHECK(ws[i].pid == 1000 + (int)i);
        CHECK(ws[i].concurrency == 4 + (int)i);
        ASSERT_STR_EQ(ws[i].queues, "default,io");
    }
    cluster_workers_free(ws, n);

    for (int i = 0; i < 50; i++) {
        snprintf(id, sizeof id, "w-%03d", i);
        CHECK(cluster_worker_gone(c, id) == 0);
    }
    CHECK(cluster_workers_list(c, &ws, &n) == 0);
    CHECK(n == 0 && ws == NULL);
    CHECK(cluster_workers_list(other, &ws, &n) == 0);
    CHECK(n == 1 && ws && strcmp(ws[0].id, "stranger") == 0);
    cluster_workers_free(ws, n);
    CHECK(cluster_worker_gone(other, "stranger") == 0);
    (void)im;
out:
    cluster_close(c);
    cluster_close(other);
}

/* ---- rate limits ------------------------------------------------------------------ */

BOTH(test_rate_limit_burst_then_pacing)
static void test_rate_limit_burst_then_pacing(const Impl *im)
{
    ClusterConn *c = open_conn();
    if (!c) return;
    double ps;
    int burst;
    int64_t retry = -1;

    /* 30/m: one passes, the next would pass 2 s later */
    CHECK(cluster_rate_parse("30/m", &ps, &burst, NULL, 0) == 0);
    CHECK(cluster_rate_acquire(c, "thirty", ps, burst, &retry) == 1);
    CHECK(retry == 0);
    CHECK(cluster_rate_acquire(c, "thirty", ps, burst, &retry) == 0);
    CHECK(retry > 1900000 && retry <= 2000000);
    if (!(retry > 1900000 && retry <= 2000000)) fprintf(stderr, "\n  retry_after_us %lld\n", (long long)retry);
    CHECK(cluster_rate_acquire(c, "thirty", ps, burst, NULL) == 0);

    /* 10/m:5: five at once, then one every 6 s */
    CHECK(cluster_rate_parse("10/m:5", &ps, &burst, NULL, 0) == 0);
    for (int i = 0; i < 5; i++) CHECK(cluster_rate_acquire(c, "burst", ps, burst, &retry) == 1);
    CHECK(cluster_rate_acquire(c, "burst", ps, burst, &retry) == 0);
    CHECK(retry > 5900000 && retry <= 6000000);

    /* 20/s: paced at 50 ms; waiting retry_after is enough */
    CHECK(cluster_rate_acquire(c, "fast", 20, 1, &retry) == 1);
    CHECK(cluster_rate_acquire(c, "fast", 20, 1, &retry) == 0);
    CHECK(retry > 30000 && retry <= 50000);
    sleep_ms((int)(retry / 1000) + 3);
    CHECK(cluster_rate_acquire(c, "fast", 20, 1, &retry) == 1);
    CHECK(cluster_rate_acquire(c, "fast", 20, 1, &retry) == 0);

    /* idle long enough, the full burst is back */
    CHECK(cluster_rate_acquire(c, "refill", 50, 3, NULL) == 1);
    CHECK(cluster_rate_acquire(c, "refill", 50, 3, NULL) == 1);
    CHECK(cluster_rate_acquire(c, "refill", 50, 3, NULL) == 1);
    CHECK(cluster_rate_acquire(c, "refill", 50, 3, NULL) == 0);
    sleep_ms(70); /* 3 intervals of 20 ms */
    CHECK(cluster_rate_acquire(c, "refill", 50, 3, NULL) == 1);
    CHECK(cluster_rate_acquire(c, "refill", 50, 3, NULL) == 1);
    CHECK(cluster_rate_acquire(c, "refill", 50, 3, NULL) == 1);
    CHECK(cluster_rate_acquire(c, "refill", 50, 3, NULL) == 0);

    /* bad arguments */
    retry = 7;
    CHECK(cluster_rate_acquire(c, "x", 0, 1, &retry) == -1 && retry == 0);
    ASSERT_CONTAINS(cluster_error(c), "out of range");
    CHECK(cluster_rate_acquire(c, "x", 1, 0, &retry) == -1);
    ASSERT_CONTAINS(cluster_error(c), "burst 0 is out of range");
    CHECK(cluster_rate_acquire(c, "", 1, 1, &retry) == -1);
    ASSERT_CONTAINS(cluster_error(c), "key must be");
    (void)im;
    cluster_close(c);
}

typedef struct Hammer {
    const Impl *im;
    int64_t start_ms, end_ms;
    int attempts, allowed, errors, bad_retry;
} Hammer;

static void *hammer(void *arg)
{
    Hammer *h = arg;
    char err[512];
    ClusterConn *c = cluster_connect(h->im->url, err, sizeof err);
    if (!c) {
        h->errors++;
        return NULL;
    }
    cluster_set_prefix(c, g_prefix);
    while (now_ms() < h->start_ms) sleep_ms(1);
    while (now_ms() < h->end_ms) {
        int64_t retry = -1;
        int rc = cluster_rate_acquire(c, "global", 20, 1, &retry);
        h->attempts++;
        if (rc == 1) h->allowed++;
        else if (rc < 0) h->errors++;
        else if (retry <= 0 || retry > 50000) h->bad_retry++;
        /* as a worker would: come back when told to, or in 15 ms, whichever is sooner */
        int64_t us = rc == 0 && retry > 0 && retry < 15000 ? retry : 15000;
        struct timespec ts = {0, (long)us * 1000L};
        while (nanosleep(&ts, &ts) != 0) {}
    }
    cluster_close(c);
    return NULL;
}

BOTH(test_rate_limit_holds_across_threads)
static void test_rate_limit_holds_across_threads(const Impl *im)
{
    /* 20/s for 1 s from 3 threads, each with its own connection, ~200 attempts: the first one
     * passes, then one every 50 ms: 21. A limited thread sleeps retry_after_us when that is
     * sooner than its 15 ms pace, so the slots are taken on time (with burst 1, GCRA does not
     * credit a request that comes late: the next slot is T after it). */
    Hammer h[3];
    pthread_t t[3];
    int64_t start = now_ms() + 100;
    for (int i = 0; i < 3; i++) {
        h[i] = (Hammer){im, start, start + 1000, 0, 0, 0, 0};
        pthread_create(&t[i], NULL, hammer, &h[i]);
    }
    int attempts = 0, allowed = 0, errors = 0, bad = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        attempts += h[i].attempts, allowed += h[i].allowed, errors += h[i].errors, bad += h[i].bad_retry;
    }
    fprintf(stderr, "[%s: %d of %d allowed] ", im->name, allowed, attempts);
    CHECK(errors == 0);
    CHECK(bad == 0);
    CHECK(attempts >= 150);
    CHECK(allowed >= 19 && allowed <= 23);
}

BOTH(test_rate_limit_is_shared_by_connections)
static void test_rate_limit_is_shared_by_connections(const Impl *im)
{
    ClusterConn *a = open_conn(), *b = open_conn();
    if (!a || !b) goto out;
    int64_t retry;
    CHECK(cluster_rate_acquire(a, "shared", 1, 1, &retry) == 1);
    CHECK(cluster_rate_acquire(b, "shared", 1, 1, &retry) == 0);
    CHECK(retry > 900000 && retry <= 1000000);
    CHECK(cluster_rate_acquire(b, "other", 1, 1, &retry) == 1);
    /* another prefix is another namespace */
    char p2[128];
    snprintf(p2, sizeof p2, "%sns2:", g_prefix);
    CHECK(cluster_set_prefix(b, p2) == 0);
    CHECK(cluster_rate_acquire(b, "shared", 1, 1, &retry) == 1);
    CHECK(cluster_set_prefix(b, "") == -1);
    (void)im;
out:
    cluster_close(a);
    cluster_close(b);
}

BOTH(test_named_limits_are_stored)
static void test_named_limits_are_stored(const Impl *im)
{
    ClusterConn *c = open_conn(), *d = open_conn();
    if (!c || !d) goto out;
    char *text = (char *)"x";
    CHECK(cluster_ratelimit_get(c, "github", &text) == 0 && text == NULL);
    CHECK(cluster_ratelimit_set(c, "github", "100/m") == 0);
    CHECK(cluster_ratelimit_get(d, "github", &text) == 1); /* another connection sees it */
    ASSERT_STR_EQ(text, "100/m");
    free(text);
    CHECK(cluster_ratelimit_set(c, "github", "  5/s:3 ") == 0); /* replaced, trimmed */
    CHECK(cluster_ratelimit_get(c, "github", &text) == 1);
    ASSERT_STR_EQ(text, "5/s:3");
    free(text);
    CHECK(cluster_ratelimit_set(c, "api.slack", "1/h") == 0);

    CHECK(cluster_ratelimit_set(c, "bad name", "1/s") == -1);
    ASSERT_CONTAINS(cluster_error(c), "rate limit name 'bad name' is not valid");
    CHECK(cluster_ratelimit_set(c, "weekly", "10/w") == -1);
    ASSERT_CONTAINS(cluster_error(c), "unknown unit 'w'");
    CHECK(one_line(cluster_error(c)));
    CHECK(cluster_ratelimit_get(c, "weekly", &text) == 0);

    ClusterRateLimit *ls = NULL;
    size_t n = 0;
    CHECK(cluster_ratelimit_list(c, &ls, &n) == 0);
    CHECK(n == 2);
    if (n == 2) {
        ASSERT_STR_EQ(ls[0].name, "api.slack");
        ASSERT_STR_EQ(ls[0].text, "1/h");
        CHECK(fabs(ls[0].per_s - 1.0 / 3600) < 1e-12 && ls[0].burst == 1);
        ASSERT_STR_EQ(ls[1].name, "github");
        CHECK(ls[1].per_s == 5 && ls[1].burst == 3);
    }
    cluster_ratelimits_free(ls, n);

    CHECK(cluster_ratelimit_delete(c, "github") == 1);
    CHECK(cluster_ratelimit_delete(c, "github") == 0);
    CHECK(cluster_ratelimit_get(d, "github", &text) == 0);
    CHECK(cluster_ratelimit_delete(c, "api.slack") == 1);
    CHECK(cluster_ratelimit_list(c, &ls, &n) == 0);
    CHECK(n == 0 && ls == NULL);
    CHECK(cluster_ratelimit_delete(c, "no/such") == -1);
    (void)im;
out:
    cluster_close(c);
    cluster_close(d);
}

/* ---- Redis only: login, database, restart, outage ---------------------------------- */

static void test_redis_login_and_database_are_used(void)
{
    const char *url = redis_url();
    if (!url) {
        no_redis();
        return;
    }
    Impl im = {1, "redis", url};
    g_impl = &im;
    new_prefix();
    char u[256];
    /* the test server has no password: AUTH is refused, which proves it is sent */
    snprintf(u, sizeof u, "redis://:wr0ngpass@%s/0", redis_where());
    expect_connect_error(u, "refused the login", "wr0ngpass");
    snprintf(u, sizeof u, "redis://gust:wr0ngpass@%s/0", redis_where());
    expect_connect_error(u, "refused the login: WRONGPASS", "wr0ngpass");
    snprintf(u, sizeof u, "redis://%s/99999", redis_where());
    expect_connect_error(u, "must be a number (0 to 9999)", NULL);
    snprintf(u, sizeof u, "redis://%s/999", redis_where());
    expect_connect_error(u, "refused database 999", NULL);

    /* SELECT: a worker in database 1 is not seen from database 0; ?prefix= works */
    char err[512];
    snprintf(u, sizeof u, "redis://%s/1?prefix=%s&timeout_ms=1500", redis_where(), g_prefix);
    ClusterConn *db1 = cluster_connect(u, err, sizeof err);
    if (!db1) fprintf(stderr, "\n  %s\n", err);
    ClusterConn *db0 = open_conn();
    CHECK(db1 && db0);
    if (db1 && db0) {
        WorkerInfo w = make_worker("in-db1", 0);
        CHECK(cluster_worker_beat(db1, &w, 5000) == 0);
        CHECK(cluster_worker_alive(db1, "in-db1") == 1);
        CHECK(cluster_worker_alive(db0, "in-db1") == 0);
        CHECK(cluster_worker_gone(db1, "in-db1") == 0);
    }
    cluster_close(db1);
    cluster_close(db0);
    g_impl = NULL;
}

static void test_redis_restart_is_survived(void)
{
    const char *url = redis_url();
    if (!url) {
        no_redis();
        return;
    }
    Impl im = {1, "redis", url};
    g_impl = &im;
    new_prefix();
    ClusterConn *c = open_conn(), *idle = open_conn();
    if (!c || !idle) goto out;
    WorkerInfo w = make_worker("survivor", 0);
    CHECK(cluster_worker_beat(c, &w, 10000) == 0);
    CHECK(cluster_rate_acquire(c, "r", 1, 1, NULL) == 1);
    CHECK(cluster_rate_acquire(c, "r", 1, 1, NULL) == 0);
    ClusterStats s0;
    cluster_stats(c, &s0);
    CHECK(s0.script_loads == 1 && s0.reconnects == 0);

    g_redis_stopped = 1; /* if the restart fails half way, start it at exit */
    CHECK(services("restart redis") == 0);
    g_redis_stopped = 0;

    /* the server lost everything: the next call reconnects, meets NOSCRIPT, reloads, passes */
    int64_t retry = -1;
    int rc = cluster_rate_acquire(c, "r", 1, 1, &retry);
    if (rc != 1) fprintf(stderr, "\n  after restart: rc %d: %s\n", rc, cluster_error(c));
    CHECK(rc == 1);
    ClusterStats s1;
    cluster_stats(c, &s1);
    CHECK(s1.reconnects == 1);
    CHECK(s1.script_loads == 2);
    CHECK(s1.errors == s0.errors);
    CHECK(cluster_rate_acquire(c, "r", 1, 1, NULL) == 0);

    /* the heartbeat is gone with the data (the worker's next beat brings it back) */
    CHECK(cluster_worker_alive(c, "survivor") == 0);
    CHECK(cluster_worker_beat(c, &w, 10000) == 0);
    /* a connection that was idle through the restart works on its next call as well */
    CHECK(cluster_worker_alive(idle, "survivor") == 1);
    CHECK(cluster_ratelimit_set(idle, "after", "1/s") == 0);
    CHECK(cluster_ratelimit_delete(idle, "after") == 1);
    CHECK(cluster_worker_gone(c, "survivor") == 0);
out:
    cluster_close(c);
    cluster_close(idle);
    g_impl = NULL;
}

static void expect_down(ClusterConn *c, int rc, int64_t t0, const char *what)
{
    int64_t took = now_ms() - t0;
    if (rc != -1 || took >= 3000) fprintf(stderr, "\n  %s: rc %d after %lld ms\n", what, rc, (long long)took);
    CHECK(rc == -1);
    CHECK(took < 3000);
    char want[160];
    snprintf(want, sizeof want, "Redis at %s", redis_where());
    ASSERT_CONTAINS(cluster_error(c), want);
    CHECK(one_line(cluster_error(c)));
}

static void test_redis_outage_fails_fast_and_recovers(void)
{
    const char *url = redis_url();
    if (!url) {
        no_redis();
        return;
    }
    Impl im = {1, "redis", url};
    g_impl = &im;
    new_prefix();
    ClusterConn *c = open_conn();
    if (!c) goto out;
    CHECK(cluster_rate_acquire(c, "o", 100, 1, NULL) == 1);

    g_redis_stopped = 1;
    CHECK(services("stop redis") == 0);
    /* No CU_*_FATAL from here to the start below: Redis must be started again whatever fails. */
    int64_t t0 = now_ms(), retry = 5;
    expect_down(c, cluster_rate_acquire(c, "o", 100, 1, &retry), t0, "rate_acquire");
    CHECK(retry == 0);
    char want[160];
    snprintf(want, sizeof want, "cannot connect to Redis at %s: Connection refused", redis_where());
    ASSERT_CONTAINS(cluster_error(c), want);
    t0 = now_ms();
    expect_down(c, cluster_worker_alive(c, "x"), t0, "worker_alive");
    t0 = now_ms();
    WorkerInfo w = make_worker("x", 0);
    expect_down(c, cluster_worker_beat(c, &w, 1000), t0, "worker_beat");
    t0 = now_ms();
    WorkerInfo *ws = NULL;
    size_t n = 9;
    expect_down(c, cluster_workers_list(c, &ws, &n), t0, "workers_list");
    CHECK(ws == NULL && n == 0);
    t0 = now_ms();
    expect_down(c, cluster_ratelimit_set(c, "n", "1/s"), t0, "ratelimit_set");
    sleep_ms(300); /* past the first backoff steps: a real reconnect attempt, refused again */
    t0 = now_ms();
    expect_down(c, cluster_ping(c), t0, "ping");
    ASSERT_CONTAINS(cluster_error(c), want);
    char err[512] = "";
    t0 = now_ms();
    ClusterConn *fresh = cluster_connect(url, err, sizeof err);
    CHECK(fresh == NULL);
    cluster_close(fresh);
    ASSERT_CONTAINS(err, want);
    CHECK(now_ms() - t0 < 3000);

    CHECK(services("start redis") == 0);
    g_redis_stopped = 0;

    /* back: within the backoff (at most 2 s) the calls work again */
    int rc = -1;
    for (int64_t until = now_ms() + 5000; now_ms() < until;) {
        if ((rc = cluster_ping(c)) == 0) break;
        sleep_ms(50);
    }
    CHECK(rc == 0);
    rc = cluster_rate_acquire(c, "o", 100, 1, NULL);
    if (rc != 1) fprintf(stderr, "\n  after the outage: rc %d: %s\n", rc, cluster_error(c));
    CHECK(rc == 1);
    ClusterStats st;
    cluster_stats(c, &st);
    CHECK(st.reconnects == 1);
    CHECK(st.script_loads == 2);
out:
    start_redis_again();
    cluster_close(c);
    g_impl = NULL;
}

static const UnitTest tests[] = {
    UNIT(test_url_chooses_the_implementation),
    UNIT(test_silent_server_times_out),
    UNIT(test_rate_limits_parse_as_users_write_them),
    UNIT2(test_heartbeat_alive_expiry_and_gone),
    UNIT2(test_workers_list_scans_all_of_50),
    UNIT2(test_rate_limit_burst_then_pacing),
    UNIT2(test_rate_limit_holds_across_threads),
    UNIT2(test_rate_limit_is_shared_by_connections),
    UNIT2(test_named_limits_are_stored),
    UNIT(test_redis_login_and_database_are_used),
    UNIT(test_redis_restart_is_survived),
    UNIT(test_redis_outage_fails_fast_and_recovers),
    {0},
};

int main(void)
{
    atexit(start_redis_again);
    return unit_run("cluster", tests);
}
