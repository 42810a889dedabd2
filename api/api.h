/* api — the REST API's framework: what a route handler receives and the helpers it answers
 * with. The HTTP server (api/server.c, libmicrohttpd) parses the request, finds the route
 * (api/routes.c), authenticates the caller (api/auth.c) and checks the route's role, then
 * calls the handler with an ApiReq; the handler fills an ApiResp with the helpers below
 * and returns. The server sends it (gzip when the client accepts it and the body is large),
 * records the latency for /metrics and frees everything.
 *
 * Threads: handlers run on the server's pool threads, many at once. Each pool thread has
 * its own store connection (api_store), opened on first use and reused: a handler never
 * shares one with another thread. ApiContext is read-only once the server started, except
 * where a field says otherwise.
 *
 * Errors follow Airflow's shapes: {"detail": "..."} for 400/401/403/404/409/413, and for 422
 * {"detail": [{"type", "loc": [...], "msg", "input"}]} (FastAPI's HTTPValidationError). A
 * store failure is a 503 naming the server, never a crash and never a 500 for bad input. */
#ifndef GUST_API_H
#define GUST_API_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

struct GustConfig;
struct Store;
struct SecretKey;
struct ClusterConn;
struct MHD_Connection;

/* Airflow's roles, ordered: each may do what the ones below it may. */
typedef enum ApiRole {
    API_ROLE_NONE = 0,   /* route needs no authentication (health, version, token) */
    API_ROLE_VIEWER = 1, /* reads everything but connection passwords */
    API_ROLE_USER = 2,   /* also triggers, clears, pauses, marks states, deletes runs */
    API_ROLE_OP = 3,     /* also manages variables, connections and pools */
    API_ROLE_ADMIN = 4,  /* also manages users */
} ApiRole;
const char *api_role_name(ApiRole r);          /* "Viewer", ... */
int api_role_parse(const char *name);          /* case-insensitive; -1 if unknown */

/* What every handler may read. Built by api_context_init from the settings. */
typedef struct ApiContext {
    struct GustConfig *cfg;
    char *store_url;                /* each pool thread opens its own connection to it */
    char *dags_folder;              /* for dagSources and dags/validate; may be NULL */
    struct SecretKey *conn_key;     /* decrypts connection passwords/extras; may be NULL */
    unsigned char token_key[32];    /* signs JWTs (api.secret_key, or random per start) */
    int64_t token_ttl_us;           /* api.token_ttl */
    struct ClusterConn *cluster;    /* workers and rate limits; NULL = not reachable/configured.
                                       Shared: use under cluster_mu (api/server.c). */
    const char *deployment;         /* "standalone" or "api" */
    int64_t started_at;             /* us since the epoch */
} ApiContext;

/* One request, as a handler sees it. Everything is owned by the server and valid until
 * the handler returns. */
typedef struct ApiReq {
    const char *method;                 /* "GET", "POST", ... */
    const char *path;                   /* decoded path, no query string */
    const char *route;                  /* the route's pattern, e.g. "/api/v2/dags/{dag_id}" */
    const char *params[8];              /* path parameters, URL-decoded, in pattern order */
    int nparams;
    const char *body;                   /* NUL-terminated; "" when none */
    size_t body_len;
    const char *user;                   /* authenticated username; NULL on open routes */
    ApiRole role;
    const char *remote_addr;            /* "127.0.0.1" */
    ApiContext *ctx;
    struct MHD_Connection *conn;        /* for headers and query arguments */
    int64_t now;                        /* when the request arrived, us */
} ApiReq;

/* What a handler answers. Set through the helpers; a handler that sets nothing answers 500. */
typedef struct ApiResp {
    int status;
    char *body;                         /* heap; freed by the server */
    size_t body_len;
    const char *content_type;           /* static string; default application/json */
    char *extra_headers;                /* heap, "Name: value\r\n..." lines, or NULL */
    /* A streamed response (Server-Sent Events): the server calls stream(stream_ud, buf, max)
     * until it returns -1 (end), and stream_free(stream_ud) once the client is gone.
     * stream returns the bytes written, 0 when nothing is ready yet (the server then
     * waits for api_stream_wake before calling again: it must not block for long). */
    long (*stream)(void *ud, char *buf, size_t max);
    void (*stream_free)(void *ud);
    void *stream_ud;
} ApiResp;

typedef void (*ApiHandler)(ApiReq *r, ApiResp *out);

typedef struct ApiRoute {
    const char *method;                 /* NULL ends a table */
    const char *pattern;                /* "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id}" */
    ApiRole role;                       /* least role that may call it */
    ApiHandler handler;
} ApiRoute;

/* ---- the route tables (one per api/routes_*.c file, each ended by {NULL}) ---------------- */
extern const ApiRoute api_routes_meta[];     /* routes_meta.c: health, version, monitor, auth/token, users */
extern const ApiRoute api_routes_dags[];     /* routes_dags.c: dags, details, tasks, sources, stats, tags, importErrors, gust/dags/validate */
extern const ApiRoute api_routes_runs[];     /* routes_runs.c: dagRuns, clear, wait */
extern const ApiRoute api_routes_xcom[];     /* routes_xcom.c: a task instance's xcomEntries */
extern const ApiRoute api_routes_tilogs[];   /* routes_tilogs.c: a task instance's tries and logs */
extern const ApiRoute api_routes_tideps[];   /* routes_tideps.c: a task instance's dependencies and links */
extern const ApiRoute api_routes_tis[];      /* routes_tis.c: task instance lists (listMapped, batch), one instance */
extern const ApiRoute api_routes_timark[];   /* routes_timark.c: PATCH task instances (mark states, notes; dry_run) */
extern const ApiRoute api_routes_ticlear[];  /* routes_ticlear.c: clearTaskInstances */
extern const ApiRoute api_routes_kv[];       /* routes_kv.c: variables */
extern const ApiRoute api_routes_conns[];    /* routes_conns.c: connections */
extern const ApiRoute api_routes_pools[];    /* routes_pools.c: pools */
extern const ApiRoute api_routes_eventlogs[]; /* routes_eventlogs.c: eventLogs */
extern const ApiRoute api_routes_assets[];   /* routes_assets.c: assets, aliases, asset events, queuedEvents */
extern const ApiRoute api_routes_gust[];     /* routes_gust.c: gust/workers, gust/ratelimits */
extern const ApiRoute api_routes_events[];   /* events.c: gust/events (SSE) */
extern const ApiRoute api_routes_metrics[];  /* metrics.c: /metrics */
extern const ApiRoute api_routes_validate[]; /* routes_validate.c: gust/dags/validate */
extern const ApiRoute api_routes_ui[];       /* routes_ui.c: the web UI's files, "/" and "/ui/{file}" */

/* ---- helpers for handlers (api/util.c) ----------------------------------------------------- */

/* The calling thread's store connection (opened on first use, reconnects itself). NULL when
 * the store cannot be opened: the handler answers api_store_error. */
struct Store *api_store(ApiReq *r);

/* Answer a JSON document; takes ownership of doc (NULL answers 500). */
void api_json(ApiResp *out, int status, cJSON *doc);
/* {"detail": "<message>"} with the status (400, 401, 403, 404, 409, 413, 503...). */
void api_error(ApiResp *out, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 422 in FastAPI's shape: loc is where ("body", "query", "path") and field (may be NULL). */
void api_error_422(ApiResp *out, const char *where, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* 503 {"detail": "the store is unavailable: <store error>"}; s may be NULL. */
void api_store_error(ApiResp *out, struct Store *s);
/* 204 No Content. */
void api_no_content(ApiResp *out);

/* The request's query argument (URL-decoded), or NULL. */
const char *api_query(ApiReq *r, const char *name);
/* Every value of a repeated argument (?tags=a&tags=b), at most max; returns how many. */
int api_query_all(ApiReq *r, const char *name, const char **out, int max);
/* A request header, or NULL. */
const char *api_header(ApiReq *r, const char *name);

/* limit (default 50, 0..10^9, clamped to api.maximum_page_limit as Airflow does) and offset (>= 0, <= 10^9). 0 ok; -1 after
 * answering 422. */
int api_page(ApiReq *r, ApiResp *out, int *limit, int *offset);
/* Boolean query argument: "true"/"false" (also 1/0). 1/0 = value, 2 = absent (dflt not
 * applied), -1 after answering 422. */
int api_query_bool(ApiReq *r, ApiResp *out, const char *name);
/* Integer query argument within [lo, hi]: 1 = set *v, 0 = absent, -1 after answering 422. */
int api_query_int(ApiReq *r, ApiResp *out, const char *name, long long lo, long long hi, long long *v);
/* ISO 8601 query argument: 1 = set *us, 0 = absent, -1 after answering 422. */
int api_query_time(ApiReq *r, ApiResp *out, const char *name, int64_t *us);

/* order_by: "field" or "-field", one of allowed[] (public names) mapped to columns[] (SQL,
 * trusted). Writes "col ASC|DESC" into sql (static text only: safe to paste into a
 * statement). Absent: dflt_index ascending. 0 ok, -1 after answering 400 (Airflow says 400
 * for an unknown order_by field). */
int api_order_by(ApiReq *r, ApiResp *out, const char *const *allowed, const char *const *columns, int dflt_index,
                 char *sql, size_t sqllen);

/* Parse the body as a JSON object: 0 and *doc (caller frees), or -1 after answering 422
 * (malformed JSON, or not an object). */
int api_body_object(ApiReq *r, ApiResp *out, cJSON **doc);
/* Reject body keys not in allowed[] (NULL-ended): 0 ok, -1 after answering 422 naming the key. */
int api_body_only(ApiResp *out, const cJSON *doc, const char *const *allowed);

/* Timestamps as the API spells them: "2026-03-08T13:00:00.123456Z"; -1 → JSON null. */
cJSON *api_time(int64_t us);
void api_add_time(cJSON *obj, const char *name, int64_t us);
/* A string or JSON null. */
void api_add_str(cJSON *obj, const char *name, const char *s);
/* gust's ids are 32 hex digits; the API's schemas say uuid, the same 128 bits written
 * 8-4-4-4-12. Writes that form into out and returns out. Anything else (no id gust makes) is
 * copied as it is, cut at 36 characters; NULL gives "". */
#define API_UUID_LEN 37
const char *api_uuid(const char *hex, char out[API_UUID_LEN]);
/* A JSON text (e.g. a run's conf) parsed and added; invalid or NULL text → dflt ("{}", "null"). */
void api_add_json_text(cJSON *obj, const char *name, const char *text, const char *dflt);

/* Write the mutating call to the event log (store event_log): event is e.g. "api.trigger_dag_run",
 * extra a short JSON text or NULL. Failure is logged, not answered. */
void api_audit(ApiReq *r, const char *event, const char *dag_id, const char *run_id, const char *task_id,
               const char *extra);

/* A random-ish id for ids the API makes (run ids of manual runs use run_id_make). */

/* ---- the server (api/server.c) -------------------------------------------------------------- */

typedef struct ApiServer ApiServer;

/* Fill ctx from the settings (store URL, keys, cluster). 0 ok; -1 with err. */
int api_context_init(ApiContext *ctx, struct GustConfig *cfg, const char *store_url, const char *deployment,
                     struct ClusterConn *cluster, char *err, size_t errlen);
void api_context_free(ApiContext *ctx);

/* Listen on api.host:api.port (TLS when api.tls_cert and api.tls_key are set) with
 * api.workers threads. NULL with err naming the address when it cannot. ctx must outlive
 * the server. */
ApiServer *api_server_start(ApiContext *ctx, char *err, size_t errlen);
/* The port actually bound (api.port = 0 picks a free one). */
int api_server_port(const ApiServer *s);
/* Stop listening, end streams, wait for handlers; frees the server. Accepts NULL. */
void api_server_stop(ApiServer *s);

/* Wake every stream that answered 0 (new data may be ready). Any thread. */
void api_stream_wake(void);

/* The shared cluster connection, locked: api_cluster_lock returns ctx->cluster (may be
 * NULL) with the lock held; always pair with api_cluster_unlock. */
struct ClusterConn *api_cluster_lock(ApiReq *r);
void api_cluster_unlock(ApiReq *r);

#endif
