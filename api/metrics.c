/* metrics — GET /metrics, in Prometheus's text format 0.0.4 (see metrics.h).
 *
 * Two kinds of figures:
 *   - the API's own, recorded by the server for every request through api_metrics_observe:
 *     gust_api_requests_total{route,method,status} and the latency histogram
 *     gust_api_request_duration_seconds{route}. They live in fixed tables keyed by the
 *     route's pattern (so /dags/a and /dags/b are one series, and a client inventing paths
 *     cannot grow them: unmatched paths are all "unmatched"), behind one mutex held for a
 *     few increments; nothing is allocated per request. Counters start at zero with the
 *     process, as Prometheus counters do.
 *   - gauges read when scraped, from the store (task instances and runs by state, the queue,
 *     DAGs, durations of the tries that ended in the last hour) and from the cluster (live
 *     workers; left out when there is no cluster connection). A store that cannot be read
 *     leaves those out and says gust_store_up 0, so the API's own figures still arrive.
 *
 * Not exported: the scheduler's loop time and publish latency — the scheduler keeps them in
 * no place this process can read.
 *
 * Like every route but /api/v2/monitor/health, /metrics needs a Viewer: Prometheus scrapes it
 * with a token (authorization: {type: Bearer, credentials: ...}) or HTTP Basic
 * (basic_auth: {username, password}) of a Viewer user. */
#include "api/metrics.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "cluster/cluster.h"
#include "core/util.h"
#include "store/runs.h"
#include "store/stats.h"
#include "store/store.h"
#include "store/ti.h"

/* ---- what the server records ------------------------------------------------------------- */

#define M_ROUTES 256    /* route patterns (the API has ~100) */
#define M_COUNTERS 2048 /* (route, method, status) triples */
#define M_ROUTE_LEN 120

static const double LAT_BOUNDS[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define NLAT ((int)(sizeof LAT_BOUNDS / sizeof LAT_BOUNDS[0]))

typedef struct RouteSlot {
    char route[M_ROUTE_LEN]; /* "" = free */
    uint64_t le[NLAT];       /* requests at or under each bound (not cumulative here) */
    uint64_t count;
    int64_t sum_us;
} RouteSlot;

typedef struct CounterSlot {
    int route;               /* index into routes; -1 = free */
    char method[12];
    int status;
    uint64_t n;
} CounterSlot;

static pthread_mutex_t m_mu = PTHREAD_MUTEX_INITIALIZER;
static RouteSlot routes[M_ROUTES];
static CounterSlot counters[M_COUNTERS];
static int counters_init;

static uint64_t fnv(const char *s, uint64_t h)
{
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

/* The slot of a route (open addressing); the last slot takes whatever does not fit. */
static int route_slot_locked(const char *route)
{
    uint64_t h = fnv(route, 1469598103934665603ULL);
    for (int i = 0; i < M_ROUTES - 1; i++) {
        int k = (int)((h + (uint64_t)i) % (M_ROUTES - 1));
        if (!routes[k].route[0]) {
            util_strlcpy(routes[k].route, route, sizeof routes[k].route);
            return k;
        }
        if (strncmp(routes[k].route, route, M_ROUTE_LEN - 1) == 0) return k;
    }
    if (!routes[M_ROUTES - 1].route[0]) util_strlcpy(routes[M_ROUTES - 1].route, "other", M_ROUTE_LEN);
    return M_ROUTES - 1;
}

static CounterSlot *counter_slot_locked(int route, const char *method, int status)
{
    if (!counters_init) {
        for (int i = 0; i < M_COUNTERS; i++) counters[i].route = -1;
        counters_init = 1;
    }
    uint64_t h = fnv(method, (uint64_t)route * 31 + (uint64_t)status * 1000003ULL + 1469598103934665603ULL);
    for (int i = 0; i < M_COUNTERS; i++) {
        CounterSlot *c = &counters[(h + (uint64_t)i) % M_COUNTERS];
        if (c->route < 0) {
            c->route = route;
            util_strlcpy(c->method, method, sizeof c->method);
            c->status = status;
            return c;
        }
        if (c->route == route && c->status == status && strcmp(c->method, method) == 0) return c;
    }
    return NULL; /* full: 2048 distinct triples; the histogram still counts it */
}

void api_metrics_observe(const char *route, const char *method, int status, int64_t usec)
{
    if (!route) route = "unmatched";
    if (!method) method = "?";
    if (usec < 0) usec = 0;
    double secs = (double)usec / 1e6;
    pthread_mutex_lock(&m_mu);
    int k = route_slot_locked(route);
    RouteSlot *r = &routes[k];
    r->count++;
    r->sum_us += usec;
    for (int i = 0; i < NLAT; i++)
        if (secs <= LAT_BOUNDS[i]) {
            r->le[i]++;
            break;
        }
    CounterSlot *c = counter_slot_locked(k, method, status);
    if (c) c->n++;
    pthread_mutex_unlock(&m_mu);
}

/* ---- the text format ---------------------------------------------------------------------- */

/* A label value: backslash, double quote and newline escaped, as the format says. */
static void label(StrBuf *b, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\')
            sb_append(b, "\\\\");
        else if (*v == '"')
            sb_append(b, "\\\"");
        else if (*v == '\n')
            sb_append(b, "\\n");
        else
            sb_appendc(b, *v);
    }
}

static void head(StrBuf *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void bound(StrBuf *b, double v)
{
    sb_printf(b, "%g", v);
}

static int cmp_route(const void *a, const void *b)
{
    return strcmp(((const RouteSlot *)a)->route, ((const RouteSlot *)b)->route);
}

typedef struct CounterRow {
    const char *route;
    const char *method;
    int status;
    uint64_t n;
} CounterRow;

static int cmp_counter(const void *a, const void *b)
{
    const CounterRow *x = a, *y = b;
    int c = strcmp(x->route, y->route);
    if (!c) c = strcmp(x->method, y->method);
    if (!c) c = (x->status > y->status) - (x->status < y->status);
    return c;
}

static void write_api_metrics(StrBuf *b)
{
    /* a copy, so that the formatting does not hold up requests */
    RouteSlot *rs = xmalloc(sizeof routes);
    CounterSlot *cs = xmalloc(sizeof counters);
    pthread_mutex_lock(&m_mu);
    memcpy(rs, routes, sizeof routes);
    memcpy(cs, counters, sizeof counters);
    int init = counters_init;
    pthread_mutex_unlock(&m_mu);

    CounterRow *rows = xmalloc(sizeof *rows * M_COUNTERS);
    int nrows = 0;
    for (int i = 0; init && i < M_COUNTERS; i++)
        if (cs[i].route >= 0) rows[nrows++] = (CounterRow){rs[cs[i].route].route, cs[i].method, cs[i].status, cs[i].n};
    qsort(rows, (size_t)nrows, sizeof *rows, cmp_counter);
    head(b, "gust_api_requests_total", "counter", "API requests answered, by route pattern, method and status.");
    for (int i = 0; i < nrows; i++) {
        sb_append(b, "gust_api_requests_total{route=\"");
        label(b, rows[i].route);
        sb_append(b, "\",method=\"");
        label(b, rows[i].method);
        sb_printf(b, "\",status=\"%d\"} %llu\n", rows[i].status, (unsigned long long)rows[i].n);
    }
    free(rows); /* (rows pointed into rs, which is still alive) */

    qsort(rs, M_ROUTES, sizeof *rs, cmp_route);
    head(b, "gust_api_request_duration_seconds", "histogram",
         "Time from a request's arrival to its answer being ready, by route pattern.");
    for (int i = 0; i < M_ROUTES; i++) {
        if (!rs[i].route[0]) continue;
        uint64_t cum = 0;
        for (int k = 0; k < NLAT; k++) {
            cum += rs[i].le[k];
            sb_append(b, "gust_api_request_duration_seconds_bucket{route=\"");
            label(b, rs[i].route);
            sb_append(b, "\",le=\"");
            bound(b, LAT_BOUNDS[k]);
            sb_printf(b, "\"} %llu\n", (unsigned long long)cum);
        }
        sb_append(b, "gust_api_request_duration_seconds_bucket{route=\"");
        label(b, rs[i].route);
        sb_printf(b, "\",le=\"+Inf\"} %llu\n", (unsigned long long)rs[i].count);
        sb_append(b, "gust_api_request_duration_seconds_sum{route=\"");
        label(b, rs[i].route);
        sb_printf(b, "\"} %.6f\n", (double)rs[i].sum_us / 1e6);
        sb_append(b, "gust_api_request_duration_seconds_count{route=\"");
        label(b, rs[i].route);
        sb_printf(b, "\"} %llu\n", (unsigned long long)rs[i].count);
    }
    free(rs);
    free(cs);
}

/* Durations of finished tries: from a tenth of a second to an hour and beyond. */
static const double DUR_BOUNDS_S[] = {0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600};
#define NDUR ((int)(sizeof DUR_BOUNDS_S / sizeof DUR_BOUNDS_S[0]))
#define DURATION_WINDOW_US (3600LL * 1000000)

/* The store's gauges; 0 ok, -1 the store failed (what was written so far stays). */
static int write_store_metrics(StrBuf *b, Store *s, int64_t now)
{
    int64_t ti[TI__COUNT], runs[RUN__COUNT], outbox = 0, in_broker = 0, paused = 0, unpaused = 0;
    if (store_stats_ti_states(s, ti) != 0 || store_stats_run_states(s, runs) != 0 ||
        store_stats_queue(s, &outbox, &in_broker) != 0 || store_stats_dags(s, &paused, &unpaused) != 0)
        return -1;
    int64_t bounds[NDUR], le[NDUR], count = 0, sum = 0;
    for (int i = 0; i < NDUR; i++) bounds[i] = (int64_t)(DUR_BOUNDS_S[i] * 1e6 + 0.5);
    if (store_stats_try_durations(s, now - DURATION_WINDOW_US, bounds, NDUR, le, &count, &sum) != 0) return -1;

    head(b, "gust_task_instances", "gauge", "Task instances in the store, by state (none = not scheduled yet).");
    for (int i = 0; i < TI__COUNT; i++)
        sb_printf(b, "gust_task_instances{state=\"%s\"} %lld\n", ti_state_name((TiState)i), (long long)ti[i]);
    head(b, "gust_dag_runs", "gauge", "DAG runs in the store, by state.");
    for (int i = 0; i < RUN__COUNT; i++)
        sb_printf(b, "gust_dag_runs{state=\"%s\"} %lld\n", run_state_name((RunState)i), (long long)runs[i]);
    head(b, "gust_queue_depth", "gauge",
         "Queued tries not started yet: stage=outbox waiting to be published, stage=broker published and waiting for a "
         "worker.");
    sb_printf(b, "gust_queue_depth{stage=\"outbox\"} %lld\n", (long long)outbox);
    sb_printf(b, "gust_queue_depth{stage=\"broker\"} %lld\n", (long long)in_broker);
    head(b, "gust_dags", "gauge", "DAGs whose files are present, paused or not.");
    sb_printf(b, "gust_dags{paused=\"true\"} %lld\n", (long long)paused);
    sb_printf(b, "gust_dags{paused=\"false\"} %lld\n", (long long)unpaused);
    head(b, "gust_task_duration_seconds", "histogram",
         "How long the tries that ended in the last hour ran (success, failed, up_for_retry, skipped by their worker).");
    for (int i = 0; i < NDUR; i++) {
        sb_append(b, "gust_task_duration_seconds_bucket{le=\"");
        bound(b, DUR_BOUNDS_S[i]);
        sb_printf(b, "\"} %lld\n", (long long)le[i]);
    }
    sb_printf(b, "gust_task_duration_seconds_bucket{le=\"+Inf\"} %lld\n", (long long)count);
    sb_printf(b, "gust_task_duration_seconds_sum %.6f\n", (double)sum / 1e6);
    sb_printf(b, "gust_task_duration_seconds_count %lld\n", (long long)count);
    return 0;
}

static void h_metrics(ApiReq *r, ApiResp *out)
{
    StrBuf b = {0};
    write_api_metrics(&b);

    /* the store: a failure is a figure (gust_store_up 0), not a failed scrape */
    StrBuf sb = {0};
    Store *s = api_store(r);
    int up = s && write_store_metrics(&sb, s, r->now) == 0;
    head(&b, "gust_store_up", "gauge", "1 if the metadata store answered this scrape's queries, else 0.");
    sb_printf(&b, "gust_store_up %d\n", up);
    if (up)
        sb_appendn(&b, sb_str(&sb), sb.len);
    else
        sb_printf(&b, "# the store did not answer: %s\n", s ? store_last_error(s) : "cannot connect");
    sb_free(&sb);

    /* live workers: their heartbeat keys in the cluster (Redis, or in process) */
    WorkerInfo *w = NULL;
    size_t nw = 0;
    int have_cluster = 0, listed = -1;
    char cerr[256] = "";
    ClusterConn *c = api_cluster_lock(r);
    if (c) {
        have_cluster = 1;
        listed = cluster_workers_list(c, &w, &nw);
        if (listed != 0) util_strlcpy(cerr, cluster_error(c), sizeof cerr);
    }
    api_cluster_unlock(r);
    if (have_cluster && listed == 0) {
        head(&b, "gust_workers_live", "gauge", "Workers whose heartbeat is current in the cluster (Redis).");
        sb_printf(&b, "gust_workers_live %zu\n", nw);
    } else if (have_cluster) {
        sb_append(&b, "# the cluster did not answer: ");
        for (const char *p = cerr; *p; p++) sb_appendc(&b, *p == '\n' ? ' ' : *p);
        sb_append(&b, "\n");
    }
    cluster_workers_free(w, nw);

    head(&b, "gust_api_start_time_seconds", "gauge", "When this API server started, seconds since the epoch.");
    sb_printf(&b, "gust_api_start_time_seconds %.3f\n", (double)r->ctx->started_at / 1e6);

    out->status = 200;
    out->content_type = "text/plain; version=0.0.4; charset=utf-8";
    out->body_len = b.len;
    out->body = sb_take(&b);
}

const ApiRoute api_routes_metrics[] = {
    {"GET", "/metrics", API_ROLE_VIEWER, h_metrics},
    {NULL, NULL, API_ROLE_NONE, NULL},
};
