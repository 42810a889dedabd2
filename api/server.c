/* server — the REST API's HTTP server on libmicrohttpd (see api/api.h).
 *
 * One MHD daemon with an internal thread pool of api.workers threads (epoll). Each request
 * is read whole (bounded by api.max_body_bytes: a larger one gets 413 as soon as its
 * Content-Length says so, or as soon as it passes the limit), routed, authenticated, handed
 * to its handler, and answered; large JSON answers are gzipped for clients that accept it.
 * Streams (Server-Sent Events, dagRuns/wait) use MHD's suspend/resume: a stream with
 * nothing to send suspends its connection instead of blocking a pool thread, and
 * api_stream_wake resumes them all. Each pool thread keeps its own store connection
 * (pthread key, closed when the thread ends), so handlers never share one. */
#include "api/api.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <zlib.h>

#include "api/auth.h"
#include "api/events.h"
#include "api/metrics.h"
#include "api/routes.h"
#include "cluster/cluster.h"
#include "core/config.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "store/store.h"

struct ApiServer {
    struct MHD_Daemon *d;
    pthread_t ticker;      /* wakes suspended streams twice a second (timers, keepalives) */
    int ticker_started;
    ApiContext *ctx;
    int port;
    char *tls_cert, *tls_key;  /* PEM text MHD keeps pointers to: freed after the daemon */
};

static void *ticker_main(void *arg);

/* ---- per-thread store connections --------------------------------------------------------- */

static pthread_key_t store_key;
static pthread_once_t store_key_once = PTHREAD_ONCE_INIT;
static void store_key_free(void *p) { store_free(p); }
static void store_key_make(void) { pthread_key_create(&store_key, store_key_free); }

struct Store *api_store(ApiReq *r)
{
    pthread_once(&store_key_once, store_key_make);
    Store *s = pthread_getspecific(store_key);
    if (s) return s;
    char err[512];
    s = store_open(r->ctx->store_url, err, sizeof err);
    if (!s) {
        log_msg(LOG_WARNING, "api", "cannot open the store: %s", err);
        return NULL;
    }
    pthread_setspecific(store_key, s);
    return s;
}

/* ---- the shared cluster connection -------------------------------------------------------- */

static pthread_mutex_t cluster_mu = PTHREAD_MUTEX_INITIALIZER;
struct ClusterConn *api_cluster_lock(ApiReq *r)
{
    pthread_mutex_lock(&cluster_mu);
    return r->ctx->cluster;
}
void api_cluster_unlock(ApiReq *r)
{
    (void)r;
    pthread_mutex_unlock(&cluster_mu);
}

/* ---- streams: suspended connections ------------------------------------------------------- */

typedef struct Stream {
    struct MHD_Connection *conn;
    ApiResp resp;         /* stream, stream_free, stream_ud */
    int suspended;
    unsigned long seen_gen;
    struct Stream *next;
} Stream;

static pthread_mutex_t streams_mu = PTHREAD_MUTEX_INITIALIZER;
static Stream *streams;            /* every live stream */
static unsigned long wake_gen;     /* bumped by api_stream_wake */
static int streams_closing;        /* the server is stopping: streams end */

void api_stream_wake(void)
{
    pthread_mutex_lock(&streams_mu);
    wake_gen++;
    for (Stream *s = streams; s; s = s->next)
        if (s->suspended) {
            s->suspended = 0;
            MHD_resume_connection(s->conn);
        }
    pthread_mutex_unlock(&streams_mu);
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    Stream *st = cls;
    pthread_mutex_lock(&streams_mu);
    int closing = streams_closing;
    unsigned long gen = wake_gen;
    pthread_mutex_unlock(&streams_mu);
    if (closing) return MHD_CONTENT_READER_END_OF_STREAM;
    long n = st->resp.stream(st->resp.stream_ud, buf, max);
    if (n < 0) return MHD_CONTENT_READER_END_OF_STREAM;
    if (n > 0) return (ssize_t)n;
    /* nothing ready: sleep until the next wake, unless one came while we looked */
    pthread_mutex_lock(&streams_mu);
    if (wake_gen == gen && !streams_closing) {
        st->suspended = 1;
        MHD_suspend_connection(st->conn);
    }
    pthread_mutex_unlock(&streams_mu);
    return 0;
}

static void stream_free(void *cls)
{
    Stream *st = cls;
    pthread_mutex_lock(&streams_mu);
    for (Stream **p = &streams; *p; p = &(*p)->next)
        if (*p == st) {
            *p = st->next;
            break;
        }
    pthread_mutex_unlock(&streams_mu);
    if (st->resp.stream_free) st->resp.stream_free(st->resp.stream_ud);
    free(st);
}

/* ---- one request -------------------------------------------------------------------------- */

typedef struct ReqState {
    StrBuf body;
    int too_large;
    int64_t started;
} ReqState;

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void add_headers(struct MHD_Response *mr, const char *lines)
{
    /* "Name: value\r\n" lines from a handler */
    while (lines && *lines) {
        const char *eol = strstr(lines, "\r\n");
        size_t len = eol ? (size_t)(eol - lines) : strlen(lines);
        const char *colon = memchr(lines, ':', len);
        if (colon) {
            char name[128], value[1024];
            size_t nl = (size_t)(colon - lines), vl = len - nl - 1;
            const char *v = colon + 1;
            while (vl && *v == ' ') v++, vl--;
            if (nl < sizeof name && vl < sizeof value) {
                memcpy(name, lines, nl), name[nl] = 0;
                memcpy(value, v, vl), value[vl] = 0;
                MHD_add_response_header(mr, name, value);
            }
        }
        lines = eol ? eol + 2 : lines + len;
    }
}

static int accepts_gzip(struct MHD_Connection *c)
{
    const char *ae = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Encoding");
    return ae && strstr(ae, "gzip") != NULL;
}

/* gzip body into a new heap buffer; NULL if it did not help. */
static unsigned char *gzip_body(const char *body, size_t len, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 1, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    size_t cap = deflateBound(&z, len);
    unsigned char *out = xmalloc(cap);
    z.next_in = (unsigned char *)(uintptr_t)body;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    int rc = deflate(&z, Z_FINISH);
    deflateEnd(&z);
    if (rc != Z_STREAM_END || z.total_out >= len) {
        free(out);
        return NULL;
    }
    *out_len = z.total_out;
    return out;
}

static enum MHD_Result send_resp(struct MHD_Connection *c, ApiResp *r)
{
    struct MHD_Response *mr;
    if (r->stream) {
        Stream *st = xcalloc(1, sizeof *st);
        st->conn = c;
        st->resp = *r;
        pthread_mutex_lock(&streams_mu);
        st->next = streams;
        streams = st;
        pthread_mutex_unlock(&streams_mu);
        r->stream = NULL, r->stream_free = NULL, r->stream_ud = NULL; /* the Stream owns them now */
        mr = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, stream_read, st, stream_free);
        if (!mr) {
            stream_free(st);
            return MHD_NO;
        }
        MHD_add_response_header(mr, "Cache-Control", "no-cache");
        MHD_add_response_header(mr, "X-Accel-Buffering", "no");
    } else if (r->body_len > 1024 && accepts_gzip(c) &&
               (strncmp(r->content_type, "application/json", 16) == 0 || strncmp(r->content_type, "text/", 5) == 0)) {
        size_t zl = 0;
        unsigned char *z = gzip_body(r->body, r->body_len, &zl);
        if (z) {
            mr = MHD_create_response_from_buffer(zl, z, MHD_RESPMEM_MUST_FREE);
            if (mr) MHD_add_response_header(mr, "Content-Encoding", "gzip");
        } else {
            mr = MHD_create_response_from_buffer(r->body_len, r->body, MHD_RESPMEM_MUST_FREE);
            r->body = NULL;
        }
        if (mr) MHD_add_response_header(mr, "Vary", "Accept-Encoding");
    } else {
        mr = MHD_create_response_from_buffer(r->body_len, r->body ? r->body : (char *)"",
                                             r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        r->body = NULL;
    }
    if (!mr) return MHD_NO;
    MHD_add_response_header(mr, "Content-Type", r->content_type);
    MHD_add_response_header(mr, "X-Content-Type-Options", "nosniff");
    add_headers(mr, r->extra_headers);
    enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, mr);
    MHD_destroy_response(mr);
    return ok;
}

static void resp_release(ApiResp *r)
{
    free(r->body);
    free(r->extra_headers);
    if (r->stream_free) r->stream_free(r->stream_ud);
}

static void remote_addr(struct MHD_Connection *c, char *buf, size_t len)
{
    snprintf(buf, len, "?");
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (!ci || !ci->client_addr) return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, buf, (socklen_t)len);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, buf, (socklen_t)len);
}

static void dispatch(ApiServer *srv, struct MHD_Connection *c, const char *url, const char *method, ReqState *rs,
                     ApiResp *out)
{
    ApiReq r;
    memset(&r, 0, sizeof r);
    r.method = method;
    r.path = url;
    r.ctx = srv->ctx;
    r.conn = c;
    r.now = rs->started;
    r.body = sb_str(&rs->body);
    r.body_len = rs->body.len;
    char addr[64];
    remote_addr(c, addr, sizeof addr);
    r.remote_addr = addr;

    char pbuf[2048];
    int method_mismatch = 0;
    const ApiRoute *rt = api_route_find(method, url, r.params, &r.nparams, pbuf, sizeof pbuf, &method_mismatch);
    if (!rt) {
        if (method_mismatch)
            api_error(out, 405, "Method %s is not allowed on %s", method, url);
        else
            api_error(out, 404, "Not found: %s", url);
        api_metrics_observe("unmatched", method, out->status, now_us() - rs->started);
        return;
    }
    r.route = rt->pattern;
    if (rt->role != API_ROLE_NONE) {
        const char *authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        char user[128] = "", why[256] = "";
        ApiRole role = API_ROLE_NONE;
        Store *s = api_store(&r);
        int ok = s ? api_auth_request(srv->ctx, s, authz, addr, user, sizeof user, &role, why, sizeof why) : -1;
        if (ok < 0) {
            api_store_error(out, s);
        } else if (ok == 0) {
            api_error(out, 401, "%s", why[0] ? why : "Not authenticated");
            out->extra_headers = xstrdup("WWW-Authenticate: Bearer\r\n");
        } else if (role < rt->role) {
            api_error(out, 403, "Forbidden: %s needs the %s role; %s has %s", rt->pattern, api_role_name(rt->role),
                      user, api_role_name(role));
        }
        if (out->status) {
            api_metrics_observe(rt->pattern, method, out->status, now_us() - rs->started);
            return;
        }
        r.user = user;
        r.role = role;
        rt->handler(&r, out);
    } else {
        rt->handler(&r, out);
    }
    if (out->status == 0) api_error(out, 500, "the handler for %s answered nothing", rt->pattern);
    /* remember the pattern for the metrics (static storage: the route table) */
    out->content_type = out->content_type ? out->content_type : "application/json";
    r.route = rt->pattern;
    api_metrics_observe(rt->pattern, method, out->status, now_us() - rs->started);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    ApiServer *srv = cls;
    ReqState *rs = *con_cls;
    long long max_body = config_get_int(srv->ctx->cfg, "api.max_body_bytes");
    if (!rs) {
        rs = xcalloc(1, sizeof *rs);
        rs->started = now_us();
        *con_cls = rs;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        long long announced = cl ? strtoll(cl, NULL, 10) : 0;
        if (announced > max_body) rs->too_large = 1; /* read and dropped, then 413 */
        if (announced > 16 * max_body) {
            /* far too large to be worth reading: refuse before a byte of it, and MHD closes
             * the connection. A client still sending may see the close before the answer,
             * which is why a merely-too-large body is drained instead (so it reads its 413). */
            ApiResp out;
            memset(&out, 0, sizeof out);
            api_error(&out, 413, "The request body is larger than api.max_body_bytes (%lld bytes)", max_body);
            api_metrics_observe("unmatched", method, 413, now_us() - rs->started);
            enum MHD_Result ok = send_resp(c, &out);
            resp_release(&out);
            return ok;
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!rs->too_large) {
            if ((long long)(rs->body.len + *upload_data_size) > max_body) {
                rs->too_large = 1;
                sb_free(&rs->body);
            } else {
                sb_appendn(&rs->body, upload_data, *upload_data_size);
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    ApiResp out;
    memset(&out, 0, sizeof out);
    if (rs->too_large) {
        api_error(&out, 413, "The request body is larger than api.max_body_bytes (%lld bytes)", max_body);
        api_metrics_observe("unmatched", method, 413, now_us() - rs->started);
    } else {
        dispatch(srv, c, url, method, rs, &out);
    }
    if (!out.content_type) out.content_type = "application/json";
    enum MHD_Result ok = send_resp(c, &out);
    resp_release(&out);
    return ok;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    ReqState *rs = *con_cls;
    if (!rs) return;
    sb_free(&rs->body);
    free(rs);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t n = strlen(buf);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = 0;
    /* a client going away mid-answer (an event stream closed, a tab shut) is routine */
    int routine = strstr(buf, "Failed to send") || strstr(buf, "closed by remote") || strstr(buf, "Connection reset");
    log_msg(routine ? LOG_DEBUG : LOG_WARNING, "api", "http: %s", buf);
}

static char *read_file_text(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    StrBuf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sb_appendn(&b, chunk, n);
    fclose(f);
    return sb_take(&b);
}

ApiServer *api_server_start(ApiContext *ctx, char *err, size_t errlen)
{
    GustConfig *cfg = ctx->cfg;
    const char *host = config_get(cfg, "api.host");
    int port = (int)config_get_int(cfg, "api.port");
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    const struct sockaddr *sa;
    memset(&a6, 0, sizeof a6);
    memset(&a4, 0, sizeof a4);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        sa = (const struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        sa = (const struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "api.host '%s' is not an IPv4 or IPv6 address", host);
        return NULL;
    }
    ApiServer *srv = xcalloc(1, sizeof *srv);
    srv->ctx = ctx;
    const char *cert = config_get(cfg, "api.tls_cert"), *key = config_get(cfg, "api.tls_key");
    int tls = cert && *cert && key && *key;
    if ((cert && *cert) != (key && *key)) {
        snprintf(err, errlen, "api.tls_cert and api.tls_key must be set together");
        free(srv);
        return NULL;
    }
    if (tls) {
        if (!(srv->tls_cert = read_file_text(cert, err, errlen)) || !(srv->tls_key = read_file_text(key, err, errlen))) {
            free(srv->tls_cert);
            free(srv);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    pthread_mutex_lock(&streams_mu);
    streams_closing = 0;
    pthread_mutex_unlock(&streams_mu);
    if (api_events_start(ctx, err, errlen) != 0) {
        free(srv->tls_cert), free(srv->tls_key), free(srv);
        return NULL;
    }
    unsigned workers = (unsigned)config_get_int(cfg, "api.workers");
    unsigned timeout_s = (unsigned)(config_get_duration_us(cfg, "api.request_timeout") / 1000000);
    size_t mem = (size_t)config_get_int(cfg, "api.max_header_bytes");
    if (tls)
        srv->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
                                  MHD_OPTION_SOCK_ADDR, sa,
                                  MHD_OPTION_THREAD_POOL_SIZE, workers, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
                                  MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                                  srv, MHD_OPTION_HTTPS_MEM_CERT,
                                  srv->tls_cert, MHD_OPTION_HTTPS_MEM_KEY, srv->tls_key, MHD_OPTION_END);
    else
        srv->d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, srv, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, srv,
                                  MHD_OPTION_SOCK_ADDR, sa,
                                  MHD_OPTION_THREAD_POOL_SIZE, workers, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s,
                                  MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
                                  srv, MHD_OPTION_END);
    if (!srv->d) {
        snprintf(err, errlen, "cannot listen on %s:%d (in use, or not an address of this machine?)", host, port);
        api_events_stop();
        free(srv->tls_cert), free(srv->tls_key), free(srv);
        return NULL;
    }
    srv->ticker_started = pthread_create(&srv->ticker, NULL, ticker_main, NULL) == 0;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(srv->d, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = di ? di->port : port;
    return srv;
}

int api_server_port(const ApiServer *s) { return s ? s->port : 0; }

/* Streams that wait on time rather than on data (dagRuns/wait's interval, SSE keepalives)
 * are resumed by this tick; streams that wait on data are also woken by api_stream_wake. */
static void *ticker_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec ts = {0, 500 * 1000 * 1000};
        nanosleep(&ts, NULL);
        pthread_mutex_lock(&streams_mu);
        int closing = streams_closing, any = 0;
        for (Stream *st = streams; st; st = st->next) any |= st->suspended;
        pthread_mutex_unlock(&streams_mu);
        if (closing) return NULL;
        if (any) api_stream_wake();
    }
}

void api_server_stop(ApiServer *s)
{
    if (!s) return;
    /* streams end first: MHD must not be stopped with suspended connections */
    pthread_mutex_lock(&streams_mu);
    streams_closing = 1;
    pthread_mutex_unlock(&streams_mu);
    api_stream_wake();
    if (s->ticker_started) pthread_join(s->ticker, NULL);
    MHD_quiesce_daemon(s->d);
    api_events_stop();
    MHD_stop_daemon(s->d);
    free(s->tls_cert);
    free(s->tls_key);
    free(s);
}

/* ---- context ------------------------------------------------------------------------------ */

int api_context_init(ApiContext *ctx, GustConfig *cfg, const char *store_url, const char *deployment,
                     struct ClusterConn *cluster, char *err, size_t errlen)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->cfg = cfg;
    ctx->store_url = xstrdup(store_url);
    const char *folder = config_get(cfg, "core.dags_folder");
    ctx->dags_folder = folder && *folder ? xstrdup(folder) : NULL;
    ctx->deployment = deployment;
    ctx->cluster = cluster;
    ctx->token_ttl_us = config_get_duration_us(cfg, "api.token_ttl");
    ctx->started_at = now_us();
    const char *k = config_get(cfg, "api.secret_key");
    if (k && *k) {
        /* any text works as a key: hash it to 32 bytes so short and long keys both fit */
        if (secret_hmac_sha256("gust-api-token", 14, k, strlen(k), ctx->token_key) != 0) {
            snprintf(err, errlen, "api.secret_key: cannot derive the token key");
            return -1;
        }
    } else if (secret_random_bytes(ctx->token_key, sizeof ctx->token_key) != 0) {
        snprintf(err, errlen, "cannot read random bytes for the token key");
        return -1;
    }
    return 0;
}

void api_context_free(ApiContext *ctx)
{
    if (!ctx) return;
    free(ctx->store_url);
    free(ctx->dags_folder);
    memset(ctx->token_key, 0, sizeof ctx->token_key);
    ctx->store_url = ctx->dags_folder = NULL;
}
