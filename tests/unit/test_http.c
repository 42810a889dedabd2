/* test_http — the HTTP client against a real server in this process.
 *
 * libmicrohttpd serves 127.0.0.1 on an ephemeral port, one thread per connection so a
 * sleeping handler does not stall the others. By default it echoes the request back as
 * JSON ({"method", "path", "uri", "query", "headers", "body"}); a few paths answer with a
 * chosen status, a JSON document, a large body, a delay or a redirect. A second daemon
 * speaks TLS with a self-signed certificate made at start-up, for verification tests. */
#include "worker/http.h"

#include "core/util.h"
#include "tests/unit/unit.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- the test server ---------------------------------------------------------------- */

/* One request as the server sees it. */
typedef struct EchoReq {
    char *uri;    /* the request target as sent, query included */
    StrBuf body;  /* the upload, gathered over calls */
    int started;  /* the handler has seen the headers */
} EchoReq;

static struct MHD_Daemon *g_plain, *g_tls;
static int g_plain_port, g_tls_port;
static atomic_int g_stopping;
static char g_cert_path[64];
static pthread_once_t g_server_once = PTHREAD_ONCE_INIT;

static const char JSON_DOC[] =
    "{\"data\":{\"state\":\"done\",\"count\":3,\"ok\":true,\"none\":null,"
    "\"items\":[{\"id\":1},{\"id\":2,\"tags\":[\"x\",\"y\"]}]},\"odd.key\":\"v\",\"list\":[10,20,30]}";

static void *uri_log(void *cls, const char *uri, struct MHD_Connection *con)
{
    EchoReq *r = xcalloc(1, sizeof *r);
    r->uri = xstrdup(uri);
    return r;
}

static void completed(void *cls, struct MHD_Connection *con, void **req_cls, enum MHD_RequestTerminationCode toe)
{
    EchoReq *r = *req_cls;
    if (!r) return;
    free(r->uri);
    sb_free(&r->body);
    free(r);
    *req_cls = NULL;
}

static enum MHD_Result collect_kv(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    cJSON_AddStringToObject(cls, key, value ? value : "");
    return MHD_YES;
}

static enum MHD_Result reply(struct MHD_Connection *con, unsigned status, const char *ctype, const char *body,
                             size_t len)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (ctype) MHD_add_response_header(resp, "Content-Type", ctype);
    enum MHD_Result ret = MHD_queue_response(con, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static long arg_long(struct MHD_Connection *con, const char *name, long dflt)
{
    const char *v = MHD_lookup_connection_value(con, MHD_GET_ARGUMENT_KIND, name);
    return v ? strtol(v, NULL, 10) : dflt;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *con, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **req_cls)
{
    EchoReq *r = *req_cls;
    if (!r->started) {
        r->started = 1;
        return MHD_YES;
    }
    if (*upload_size) {
        sb_appendn(&r->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }

    if (!strncmp(url, "/status/", 8)) {
        char text[32];
        unsigned status = (unsigned)strtoul(url + 8, NULL, 10);
        int n = snprintf(text, sizeof text, "status %u", status);
        return reply(con, status, "text/plain", text, (size_t)n);
    }
    if (!strcmp(url, "/json")) return reply(con, 200, "application/json", JSON_DOC, strlen(JSON_DOC));
    if (!strcmp(url, "/big")) {
        size_t n = (size_t)arg_long(con, "n", 0);
        char *big = xmalloc(n + 1);
        for (size_t i = 0; i < n; i++) big[i] = (char)('a' + i % 26);
        enum MHD_Result ret = reply(con, 200, "text/plain", big, n);
        free(big);
        return ret;
    }
    if (!strcmp(url, "/sleep")) {
        long ms = arg_long(con, "ms", 1000);
        for (long slept = 0; slept < ms && !atomic_load(&g_stopping); slept += 10) usleep(10000);
        return reply(con, 200, "text/plain", "awake", 5);
    }
    if (!strcmp(url, "/redirect")) {
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, "Location", "/echo/after-redirect");
        enum MHD_Result ret = MHD_queue_response(con, 302, resp);
        MHD_destroy_response(resp);
        return ret;
    }

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", method);
    cJSON_AddStringToObject(o, "path", url);
    cJSON_AddStringToObject(o, "uri", r->uri);
    MHD_get_connection_values(con, MHD_GET_ARGUMENT_KIND, collect_kv, cJSON_AddObjectToObject(o, "query"));
    MHD_get_connection_values(con, MHD_HEADER_KIND, collect_kv, cJSON_AddObjectToObject(o, "headers"));
    cJSON_AddStringToObject(o, "body", sb_str(&r->body));
    char *text = cJSON_PrintUnformatted(o);
    enum MHD_Result ret = reply(con, 200, "application/json", text, strlen(text));
    cJSON_free(text);
    cJSON_Delete(o);
    return ret;
}

static struct MHD_Daemon *start_daemon(unsigned flags, int *port, const char *key_pem, const char *cert_pem)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned all = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | flags;
    struct MHD_Daemon *d;
    if (key_pem)
        d = MHD_start_daemon(all, 0, NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                             MHD_OPTION_URI_LOG_CALLBACK, uri_log, NULL, MHD_OPTION_NOTIFY_COMPLETED, completed,
                             NULL, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_HTTPS_MEM_KEY, key_pem,
                             MHD_OPTION_HTTPS_MEM_CERT, cert_pem, MHD_OPTION_END);
    else
        d = MHD_start_daemon(all, 0, NULL, NULL, handle, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                             MHD_OPTION_URI_LOG_CALLBACK, uri_log, NULL, MHD_OPTION_NOTIFY_COMPLETED, completed,
                             NULL, MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!d) return NULL;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? info->port : 0;
    return d;
}

static char *bio_text(BIO *b)
{
    char *p;
    long n = BIO_get_mem_data(b, &p);
    return xstrndup(p, (size_t)n);
}

/* A self-signed P-256 certificate for 127.0.0.1: key and cert as PEM (caller frees). */
static int make_cert(char **key_pem, char **cert_pem)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!pk || !x) return -1;
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, pk);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"gust-test", -1, -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_alt_name, "IP:127.0.0.1");
    X509_add_ext(x, san, -1);
    X509_EXTENSION_free(san);
    X509_sign(x, pk, EVP_sha256());
    BIO *kb = BIO_new(BIO_s_mem()), *cb = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(kb, pk, NULL, NULL, 0, NULL, NULL);
    PEM_write_bio_X509(cb, x);
    *key_pem = bio_text(kb);
    *cert_pem = bio_text(cb);
    BIO_free(kb);
    BIO_free(cb);
    X509_free(x);
    EVP_PKEY_free(pk);
    return 0;
}

static void stop_servers(void)
{
    atomic_store(&g_stopping, 1);
    if (g_plain) MHD_stop_daemon(g_plain);
    if (g_tls) MHD_stop_daemon(g_tls);
    if (g_cert_path[0]) unlink(g_cert_path);
}

static void start_servers(void)
{
    /* a proxy from the environment would carry loopback requests elsewhere */
    const char *proxies[] = {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < GUST_ARRAY_LEN(proxies); i++) unsetenv(proxies[i]);

    g_plain = start_daemon(0, &g_plain_port, NULL, NULL);
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) == MHD_YES) {
        char *key = NULL, *cert = NULL;
        if (make_cert(&key, &cert) == 0) {
            g_tls = start_daemon(MHD_USE_TLS, &g_tls_port, key, cert);
            snprintf(g_cert_path, sizeof g_cert_path, "/tmp/gust-test-http-%d.pem", (int)getpid());
            FILE *f = fopen(g_cert_path, "w");
            if (f) {
                fputs(cert, f);
                fclose(f);
            }
        }
        free(key);
        free(cert);
    }
    atexit(stop_servers);
}

static int server_port(void)
{
    pthread_once(&g_server_once, start_servers);
    CU_ASSERT_FATAL(g_plain != NULL);
    return g_plain_port;
}

/* ---- helpers ------------------------------------------------------------------------ */

static HttpConn local_conn(void)
{
    HttpConn c = {.host = "127.0.0.1", .port = server_port()};
    return c;
}

/* Send rq, expect a 200 from the echo handler, return its JSON (caller deletes). */
static cJSON *echo(const HttpRequest *rq)
{
    HttpResponse rs;
    int rc = http_request(rq, &rs);
    if (rc != 0) fprintf(stderr, "\n  request failed: %s\n", rs.error);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_EQUAL(rs.status, 200);
    cJSON *o = rs.body ? cJSON_Parse(rs.body) : NULL;
    CU_ASSERT_PTR_NOT_NULL(o);
    http_response_free(&rs);
    return o ? o : cJSON_CreateObject();
}

static const char *field(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A request header as the server received it (names are case-insensitive). */
static const char *header(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "headers"), name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void assert_url(const HttpConn *c, const char *endpoint, const char *want)
{
    char *got = http_url_from_endpoint(c, endpoint);
    ASSERT_STR_EQ(got, want);
    free(got);
}

/* ---- URL building ------------------------------------------------------------------- */

static void test_endpoint_joins_base_url_with_one_slash(void)
{
    HttpConn c = {.host = "api.example.com"};
    assert_url(&c, "v1/items", "http://api.example.com/v1/items");
    assert_url(&c, "/v1/items", "http://api.example.com/v1/items");
    assert_url(&c, NULL, "http://api.example.com/");
    assert_url(&c, "search?q=1", "http://api.example.com/search?q=1");
    assert_url(&c, "a b/é", "http://api.example.com/a%20b/%C3%A9");

    HttpConn s = {.scheme = "https", .host = "api.example.com", .port = 8443};
    assert_url(&s, "v1", "https://api.example.com:8443/v1");

    HttpConn typed = {.conn_type = "https", .host = "api.example.com"};
    assert_url(&typed, "v1", "https://api.example.com/v1");
}

static void test_host_may_be_a_base_url_with_scheme_and_path(void)
{
    HttpConn c = {.host = "https://api.example.com/v1"};
    assert_url(&c, "items", "https://api.example.com/v1/items");
    assert_url(&c, "/items", "https://api.example.com/v1/items");
    HttpConn slash = {.host = "https://api.example.com/v1/"};
    assert_url(&slash, "items", "https://api.example.com/v1/items");
    assert_url(&slash, "/items", "https://api.example.com/v1/items");
    HttpConn port = {.host = "https://api.example.com/v1", .port = 9000};
    assert_url(&port, "items", "https://api.example.com:9000/v1/items");
    HttpConn both = {.host = "http://api.example.com:81/v1", .port = 9000};
    assert_url(&both, "items", "http://api.example.com:81/v1/items");
}

static void test_unusable_base_urls_give_null(void)
{
    HttpConn none = {.host = NULL}, empty = {.host = ""}, ftp = {.host = "ftp://files.example.com"};
    HttpConn bad_scheme = {.scheme = "gopher", .host = "example.com"};
    CU_ASSERT_PTR_NULL(http_url_from_endpoint(&none, "x"));
    CU_ASSERT_PTR_NULL(http_url_from_endpoint(&empty, "x"));
    CU_ASSERT_PTR_NULL(http_url_from_endpoint(&ftp, "x"));
    CU_ASSERT_PTR_NULL(http_url_from_endpoint(&bad_scheme, "x"));

    HttpRequest rq = {.conn = &ftp, .endpoint = "x"};
    HttpResponse rs;
    CU_ASSERT_EQUAL(http_request(&rq, &rs), -1);
    ASSERT_CONTAINS(rs.error, "unsupported URL scheme 'ftp'");
    http_response_free(&rs);
}

static void test_request_reaches_endpoint_under_base_url_path(void)
{
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d/api/v1", server_port());
    HttpConn c = {.host = base};
    HttpRequest rq = {.conn = &c, .method = "GET", .endpoint = "runs/7"};
    cJSON *o = echo(&rq);
    ASSERT_STR_EQ(field(o, "path"), "/api/v1/runs/7");
    cJSON_Delete(o);

    HttpConn split = {.host = "http://127.0.0.1/api/", .port = server_port()};
    rq.conn = &split;
    rq.endpoint = "/runs/8";
    o = echo(&rq);
    ASSERT_STR_EQ(field(o, "path"), "/api/runs/8");
    cJSON_Delete(o);
}

/* ---- methods, bodies, queries -------------------------------------------------------- */

static void test_each_method_is_sent_as_given(void)
{
    HttpConn c = local_conn();
    const char *methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "post"};
    const char *want[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "POST"};
    for (size_t i = 0; i < GUST_ARRAY_LEN(methods); i++) {
        HttpRequest rq = {.conn = &c, .method = methods[i], .endpoint = "m"};
        cJSON *o = echo(&rq);
        ASSERT_STR_EQ(field(o, "method"), want[i]);
        cJSON_Delete(o);
    }

    HttpRequest head = {.conn = &c, .method = "HEAD", .endpoint = "m", .data = "{\"a\":1}", .data_is_json = 1};
    HttpResponse rs;
    CU_ASSERT_EQUAL_FATAL(http_request(&head, &rs), 0);
    CU_ASSERT_EQUAL(rs.status, 200);
    ASSERT_STR_EQ(rs.body, "");
    CU_ASSERT_EQUAL(rs.body_len, 0);
    http_response_free(&rs);
}

static void test_json_data_goes_out_as_a_json_body(void)
{
    HttpConn c = local_conn();
    const char *data = "{\"run_id\":\"manual__1\",\"conf\":{\"n\":3}}";
    HttpRequest rq = {.conn = &c, .method = "POST", .endpoint = "dags", .data = data, .data_is_json = 1};
    cJSON *o = echo(&rq);
    ASSERT_STR_EQ(field(o, "method"), "POST");
    ASSERT_STR_EQ(field(o, "body"), data);
    ASSERT_STR_EQ(header(o, "Content-Type"), "application/json");
    cJSON_Delete(o);

    /* a content type in the headers wins */
    const char *hdrs[] = {"Content-Type: application/vnd.api+json", NULL};
    rq.headers = hdrs;
    rq.method = "PUT";
    o = echo(&rq);
    ASSERT_STR_EQ(header(o, "Content-Type"), "application/vnd.api+json");
    ASSERT_STR_EQ(field(o, "body"), data);
    cJSON_Delete(o);
}

static void test_json_data_with_form_content_type_is_urlencoded(void)
{
    HttpConn c = local_conn();
    const char *hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    HttpRequest rq = {.conn = &c, .method = "POST", .endpoint = "form", .headers = hdrs, .data_is_json = 1,
                      .data = "{\"name\":\"a b&c\",\"n\":2,\"skip\":null,\"tag\":[\"x\",\"y\"]}"};
    cJSON *o = echo(&rq);
    ASSERT_STR_EQ(field(o, "body"), "name=a+b%26c&n=2&tag=x&tag=y");
    ASSERT_STR_EQ(header(o, "Content-Type"), "application/x-www-form-urlencoded");
    cJSON_Delete(o);
}

static void test_plain_text_data_is_sent_without_a_content_type(void)
{
    HttpConn c = local_conn();
    HttpRequest rq = {.conn = &c, .method = "POST", .endpoint = "raw", .data = "hello there"};
    cJSON *o = echo(&rq);
    ASSERT_STR_EQ(field(o, "body"), "hello there");
    CU_ASSERT_PTR_NULL(header(o, "Content-Type"));
    cJSON_Delete(o);

    /* an empty POST still says how long it is */
    HttpRequest empty = {.conn = &c, .method = "POST", .endpoint = "raw"};
    o = echo(&empty);
    ASSERT_STR_EQ(field(o, "body"), "");
    ASSERT_STR_EQ(header(o, "Content-Length"), "0");
    cJSON_Delete(o);
}

static void test_get_with_json_data_sends_it_as_query_string(void)
{
    HttpConn c = local_conn();
    HttpRequest rq = {.conn = &c, .method = "GET", .endpoint = "search",
                      .data = "{\"q\":\"a b\",\"n\":3,\"flag\":true,\"skip\":null,\"tags\":[\"x\",\"y\"]}",
                      .data_is_json = 1};
    cJSON *o = echo(&rq);
    ASSERT_STR_EQ(field(o, "uri"), "/search?q=a+b&n=3&flag=true&tags=x&tags=y");
    ASSERT_STR_EQ(field(o, "body"), "");
    ASSERT_STR_EQ(field(cJSON_GetObjectItem(o, "query"), "q"), "a b");
    cJSON_Delete(o);

    rq.endpoint = "search?page=2";
    o = echo(&rq);
    ASSERT_STR_EQ(field(o, "uri"), "/search?page=2&q=a+b&n=3&flag=true&tags=x&tags=y");
    cJSON_Delete(o);

    /* plain-text data is the query itself, as requests' params="..." */
    HttpRequest raw = {.conn = &c, .method = "GET", .endpoint = "search", .data = "a=1&b=two words"};
    o = echo(&raw);
    ASSERT_STR_EQ(field(o, "uri"), "/search?a=1&b=two%20words");
    cJSON_Delete(o);

    HttpRequest arr = {.conn = &c, .method = "GET", .endpoint = "s", .data = "[1,2]", .data_is_json = 1};
    HttpResponse rs;
    CU_ASSERT_EQUAL(http_request(&arr, &rs), -1);
    ASSERT_CONTAINS(rs.error, "must be a JSON object");
    http_response_free(&rs);
}

static void test_request_params_become_query_parameters(void)
{
    HttpConn c = local_conn();
    HttpRequest rq = {.conn = &c, .endpoint = "status?v=1",
                      .request_params_json = "{\"dag_id\":\"etl/daily\",\"limit\":5}"};
    cJSON *o = echo(&rq);
    ASSERT_STR_EQ(field(o, "method"), "GET"); /* no method: GET */
    ASSERT_STR_EQ(field(o, "uri"), "/status?v=1&dag_id=etl%2Fdaily&limit=5");
    ASSERT_STR_EQ(field(cJSON_GetObjectItem(o, "query"), "dag_id"), "etl/daily");
    cJSON_Delete(o);

    /* alongside a body, for a POST */
    HttpRequest post = {.conn = &c, .method = "POST", .endpoint = "x", .request_params_json = "{\"a\":\"1\"}",
                        .data = "{}", .data_is_json = 1};
    o = echo(&post);
    ASSERT_STR_EQ(field(o, "uri"), "/x?a=1");
    ASSERT_STR_EQ(field(o, "body"), "{}");
    cJSON_Delete(o);
}

/* ---- headers, auth, extras ---------------------------------------------------------- */

static void test_headers_come_from_request_and_connection_extra(void)
{
    HttpConn c = local_conn();
    c.extra_json = "{\"X-From-Extra\":\"e\",\"X-Both\":\"extra\",\"X-Number\":42,\"verify\":true,"
                   "\"timeout\":5,\"headers\":{\"X-Nested\":\"n\"}}";
    const char *hdrs[] = {"X-Both: request", "X-Req:r", "Accept: application/json", NULL};
    HttpRequest rq = {.conn = &c, .method = "GET", .endpoint = "h", .headers = hdrs};
    cJSON *o = echo(&rq);
    ASSERT_STR_EQ(header(o, "X-From-Extra"), "e");
    ASSERT_STR_EQ(header(o, "X-Both"), "request");
    ASSERT_STR_EQ(header(o, "X-Req"), "r");
    ASSERT_STR_EQ(header(o, "X-Number"), "42");
    ASSERT_STR_EQ(header(o, "X-Nested"), "n");
    ASSERT_STR_EQ(header(o, "Accept"), "application/json");
    CU_ASSERT_PTR_NULL(header(o, "verify")); /* option keys are not headers */
    CU_ASSERT_PTR_NULL(header(o, "timeout"));
    CU_ASSERT_PTR_NULL(header(o, "Authorization"));
    cJSON_Delete(o);
}

static void test_bad_headers_and_extras_are_refused(void)
{
    HttpConn c = local_conn();
    HttpResponse rs;
    const char *inject[] = {"X-A: ok\r\nX-Evil: 1", NULL};
    HttpRequest rq = {.conn = &c, .endpoint = "x", .headers = inject};
    CU_ASSERT_EQUAL(http_request(&rq, &rs), -1);
    ASSERT_CONTAINS(rs.error, "line break");
    http_response_free(&rs);

    const char *nocolon[] = {"X-A ok", NULL};
    rq.headers = nocolon;
    CU_ASSERT_EQUAL(http_request(&rq, &rs), -1);
    ASSERT_CONTAINS(rs.error, "has no ':'");
    http_response_free(&rs);

    rq.headers = NULL;
    c.extra_json = "{not json";
    CU_ASSERT_EQUAL(http_request(&rq, &rs), -1);
    ASSERT_STR_EQ(rs.error, "connection extra is not a JSON object");
    http_response_free(&rs);

    c.extra_json = "{\"timeout\":\"soon\"}";
    CU_ASSERT_EQUAL(http_request(&rq, &rs), -1);
    ASSERT_STR_EQ(rs.error, "connection extra \"timeout\" has an unusable value");
    http_response_free(&rs);

    c.extra_json = NULL;
    rq.method = "GE T";
    CU_ASSERT_EQUAL(http_request(&rq, &rs), -1);
    ASSERT_STR_EQ(rs.error, "invalid HTTP method 'GE T'");
    http_response_free(&rs);

    rq.method = "POST";
    rq.data = "{\"a\":";
    rq.data_is_json = 1;
    CU_ASSERT_EQUAL(http_request(&rq, &rs), -1);
    ASSERT_STR_EQ(rs.error, "data is not valid JSON");
    http_response_free(&rs);
}

static void test_login_and_password_send_basic_auth(void)
{
    HttpConn c = local_conn();
    c.login = "user";
    c.password = "pass";
    HttpRequest rq = {.conn = &c, .method = "GET", .endpoint = "secure"};
    cJSON *o = echo(&rq);
    ASSERT_STR_EQ(header(o, "Authorization"), "Basic dXNlcjpwYXNz");
    cJSON_Delete(o);

    c.password = NULL; /* login alone: empty password */
    o = echo(&rq);
    ASSERT_STR_EQ(header(o, "Authorization"), "Basic dXNlcjo=");
    cJSON_Delete(o);
}

static void test_redirects_are_followed_unless_extra_options_say_not(void)
{
    HttpConn c = local_conn();
    HttpRequest rq = {.conn = &c, .method = "GET", .endpoint = "redirect"};
    cJSON *o = echo(&rq);
    ASSERT_STR_EQ(field(o, "path"), "/echo/after-redirect");
    cJSON_Delete(o);

    rq.extra_options_json = "{\"allow_redirects\": false}";
    HttpResponse rs;
    CU_ASSERT_EQUAL_FATAL(http_request(&rq, &rs), 0);
    CU_ASSERT_EQUAL(rs.status, 302);
    http_response_free(&rs);
}

/* ---- checks ------------------------------------------------------------------------- */

static void test_status_check_defaults_to_2xx_and_takes_a_set(void)
{
    HttpConn c = local_conn();
    HttpRequest rq = {.conn = &c, .method = "GET", .endpoint = "status/503"};
    HttpResponse rs;
    char why[256];
    CU_ASSERT_EQUAL_FATAL(http_request(&rq, &rs), 0); /* an error status is still a response */
    CU_ASSERT_EQUAL(rs.status, 503);
    ASSERT_STR_EQ(rs.body, "status 503");
    ASSERT_STR_EQ(rs.content_type, "text/plain");
    CU_ASSERT_EQUAL(http_check(NULL, &rs, why, sizeof why), 0);
    ASSERT_STR_EQ(why, "status 503 is not 2xx");
    HttpCheck plain = {0};
    CU_ASSERT_EQUAL(http_check(&plain, &rs, why, sizeof why), 0);

    const int ok[] = {200, 404};
    HttpCheck set = {.ok_statuses = ok, .n_ok = 2};
    CU_ASSERT_EQUAL(http_check(&set, &rs, why, sizeof why), 0);
    ASSERT_STR_EQ(why, "status 503 is not one of 200, 404");
    http_response_free(&rs);

    rq.endpoint = "status/404";
    CU_ASSERT_EQUAL_FATAL(http_request(&rq, &rs), 0);
    CU_ASSERT_EQUAL(http_check(&set, &rs, why, sizeof why), 1);
    ASSERT_STR_EQ(why, "");
    CU_ASSERT_EQUAL(http_check(NULL, &rs, why, sizeof why), 0);
    http_response_free(&rs);

    rq.endpoint = "status/204";
    CU_ASSERT_EQUAL_FATAL(http_request(&rq, &rs), 0);
    CU_ASSERT_EQUAL(http_check(NULL, &rs, why, sizeof why), 1);
    CU_ASSERT_EQUAL(http_check(&set, &rs, why, sizeof why), 0);
    http_response_free(&rs);
}

static void test_contains_check_looks_for_text_in_body(void)
{
    HttpConn c = local_conn();
    HttpRequest rq = {.conn = &c, .method = "GET", .endpoint = "json"};
    HttpResponse rs;
    char why[256];
    CU_ASSERT_EQUAL_FATAL(http_request(&rq, &rs), 0);
    HttpCheck yes = {.contains = "\"state\":\"done\""}, no = {.contains = "failed"};
    CU_ASSERT_EQUAL(http_check(&yes, &rs, why, sizeof why), 1);
    CU_ASSERT_EQUAL(http_check(&no, &rs, why, sizeof why), 0);
    ASSERT_STR_EQ(why, "body does not contain \"failed\"");
    http_response_free(&rs);
}

static void test_json_path_walks_objects_and_arrays(void)
{
    struct {
        const char *path, *want;
    } cases[] = {
        {"data.state", "\"done\""},
        {"data.count", "3"},
        {"data.ok", "true"},
        {"data.none", "null"},
        {"data.items[1].id", "2"},
        {"data.items[1].tags[0]", "\"x\""},
        {"data.items[-1].tags[-1]", "\"y\""},
        {"data.items.0.id", "1"},
        {"$.data.items[0]", "{\"id\":1}"},
        {"$['odd.key']", "\"v\""},
        {"[\"odd.key\"]", "\"v\""},
        {"list[2]", "30"},
        {"list", "[10,20,30]"},
        {"data.missing", NULL},
        {"data.items[5]", NULL},
        {"data.items[-3]", NULL},
        {"data.state.deeper", NULL},
        {"list.x", NULL},
        {"data..state", NULL},
        {"data.items[x]", NULL},
        {"data.items[0", NULL},
        {"Data.state", NULL},
    };
    for (size_t i = 0; i < GUST_ARRAY_LEN(cases); i++) {
        char *got = http_json_path(JSON_DOC, cases[i].path);
        if (!(got && cases[i].want ? strcmp(got, cases[i].want) == 0 : got == cases[i].want))
            fprintf(stderr, "\n  path %s: got %s, want %s\n", cases[i].path, got ? got : "NULL",
                    cases[i].want ? cases[i].want : "NULL");
        ASSERT_STR_EQ(got, cases[i].want);
        free(got);
    }
    char *whole = http_json_path("[1, 2]", "");
    ASSERT_STR_EQ(whole, "[1,2]");
    free(whole);
    whole = http_json_path("{\"a\":1}", "$");
    ASSERT_STR_EQ(whole, "{\"a\":1}");
    free(whole);
    CU_ASSERT_PTR_NULL(http_json_path("not json", "a"));
    CU_ASSERT_PTR_NULL(http_json_path(NULL, "a"));
}

static void test_json_path_check_compares_the_value(void)
{
    HttpConn c = local_conn();
    HttpRequest rq = {.conn = &c, .method = "GET", .endpoint = "json"};
    HttpResponse rs;
    char why[256];
    CU_ASSERT_EQUAL_FATAL(http_request(&rq, &rs), 0);

    HttpCheck done = {.json_path = "data.state", .json_equals = "\"done\""};
    CU_ASSERT_EQUAL(http_check(&done, &rs, why, sizeof why), 1);
    HttpCheck bare = {.json_path = "data.state", .json_equals = "done"};
    CU_ASSERT_EQUAL(http_check(&bare, &rs, why, sizeof why), 1);
    HttpCheck num = {.json_path = "data.items[1].id", .json_equals = "2"};
    CU_ASSERT_EQUAL(http_check(&num, &rs, why, sizeof why), 1);
    HttpCheck flag = {.json_path = "data.ok", .json_equals = "true"};
    CU_ASSERT_EQUAL(http_check(&flag, &rs, why, sizeof why), 1);
    HttpCheck exists = {.json_path = "data.items[0]"};
    CU_ASSERT_EQUAL(http_check(&exists, &rs, why, sizeof why), 1);

    HttpCheck running = {.json_path = "data.state", .json_equals = "\"running\""};
    CU_ASSERT_EQUAL(http_check(&running, &rs, why, sizeof why), 0);
    ASSERT_STR_EQ(why, "data.state is \"done\", want \"running\"");
    HttpCheck str3 = {.json_path = "data.count", .json_equals = "\"3\""};
    CU_ASSERT_EQUAL(http_check(&str3, &rs, why, sizeof why), 0);
    ASSERT_STR_EQ(why, "data.count is 3, want \"3\"");
    HttpCheck missing = {.json_path = "data.items[2].id", .json_equals = "3"};
    CU_ASSERT_EQUAL(http_check(&missing, &rs, why, sizeof why), 0);
    ASSERT_STR_EQ(why, "no value at data.items[2].id");
    HttpCheck malformed = {.json_path = "data..x"};
    CU_ASSERT_EQUAL(http_check(&malformed, &rs, why, sizeof why), 0);
    ASSERT_STR_EQ(why, "invalid JSON path 'data..x'");
    http_response_free(&rs);

    rq.endpoint = "status/200";
    CU_ASSERT_EQUAL_FATAL(http_request(&rq, &rs), 0);
    CU_ASSERT_EQUAL(http_check(&done, &rs, why, sizeof why), 0);
    ASSERT_STR_EQ(why, "body is not JSON");
    http_response_free(&rs);
}

/* ---- limits and failures ------------------------------------------------------------ */

static void test_large_body_is_cut_at_the_cap_but_counted(void)
{
    HttpConn c = local_conn();
    HttpRequest rq = {.conn = &c, .method = "GET", .endpoint = "big?n=200000", .max_body_bytes = 1000};
    HttpResponse rs;
    CU_ASSERT_EQUAL_FATAL(http_request(&rq, &rs), 0);
    CU_ASSERT_EQUAL(rs.status, 200);
    CU_ASSERT_EQUAL(rs.body_len, 1000);
    CU_ASSERT_EQUAL(strlen(rs.body), 1000);
    CU_ASSERT_EQUAL(rs.body_total, 200000);
    CU_ASSERT_EQUAL(rs.truncated, 1);
    CU_ASSERT_EQUAL(rs.body[26], 'a');

    char why[256];
    HttpCheck far = {.contains = "zzz"};
    CU_ASSERT_EQUAL(http_check(&far, &rs, why, sizeof why), 0);
    ASSERT_STR_EQ(why, "body does not contain \"zzz\" (only the first 1000 bytes were kept)");
    http_response_free(&rs);

    rq.max_body_bytes = 0; /* default 10 MiB keeps it all */
    CU_ASSERT_EQUAL_FATAL(http_request(&rq, &rs), 0);
    CU_ASSERT_EQUAL(rs.body_len, 200000);
    CU_ASSERT_EQUAL(rs.truncated, 0);
    http_response_free(&rs);
}

static void test_slow_server_times_out_with_seconds_in_message(void)
{
    HttpConn c = local_conn();
    HttpRequest rq = {.conn = &c, .method = "GET", .endpoint = "sleep?ms=3000", .timeout_ms = 300};
    HttpResponse rs;
    int64_t t0 = util_now_us();
    CU_ASSERT_EQUAL(http_request(&rq, &rs), -1);
    int64_t took_ms = (util_now_us() - t0) / 1000;
    CU_ASSERT(took_ms >= 250 && took_ms < 2000);
    char want[96];
    snprintf(want, sizeof want, "timed out after 0.3s waiting for 127.0.0.1:%d", server_port());
    ASSERT_STR_EQ(rs.error, want);
    http_response_free(&rs);

    /* the timeout may come from the connection's extra, in seconds */
    rq.timeout_ms = 0;
    c.extra_json = "{\"timeout\": 0.2}";
    CU_ASSERT_EQUAL(http_request(&rq, &rs), -1);
    ASSERT_CONTAINS(rs.error, "timed out after 0.2s");
    http_response_free(&rs);
}

static void test_closed_port_is_refused_naming_host_and_port(void)
{
    /* a bound socket that never listens: connecting to it is refused, and no one else
     * can take the port while we hold it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    CU_ASSERT_FATAL(bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    CU_ASSERT_FATAL(getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
    int port = ntohs(sa.sin_port);

    HttpConn c = {.host = "127.0.0.1", .port = port};
    HttpRequest rq = {.conn = &c, .method = "GET", .endpoint = "x", .timeout_ms = 5000};
    HttpResponse rs;
    CU_ASSERT_EQUAL(http_request(&rq, &rs), -1);
    CU_ASSERT_EQUAL(rs.status, 0);
    CU_ASSERT_PTR_NULL(rs.body);
    char want[96];
    snprintf(want, sizeof want, "cannot connect to 127.0.0.1:%d: Connection refused", port);
    ASSERT_STR_EQ(rs.error, want);
    http_response_free(&rs);
    close(fd);
}

static void test_https_to_a_plain_http_server_is_a_tls_error(void)
{
    HttpConn c = {.scheme = "https", .host = "127.0.0.1", .port = server_port()};
    HttpRequest rq = {.conn = &c, .method = "GET", .endpoint = "x", .timeout_ms = 5000};
    HttpResponse rs;
    CU_ASSERT_EQUAL(http_request(&rq, &rs), -1);
    char want[64];
    snprintf(want, sizeof want, "TLS handshake with 127.0.0.1:%d failed: ", server_port());
    ASSERT_CONTAINS(rs.error, want);
    http_response_free(&rs);
}

static void test_self_signed_certificate_fails_unless_verify_is_off(void)
{
    server_port();
    if (!g_tls) {
        fprintf(stderr, "\n  (libmicrohttpd without TLS: skipped)\n");
        return;
    }
    HttpConn c = {.scheme = "https", .host = "127.0.0.1", .port = g_tls_port};
    HttpRequest rq = {.conn = &c, .method = "GET", .endpoint = "secure", .timeout_ms = 5000};
    HttpResponse rs;
    CU_ASSERT_EQUAL(http_request(&rq, &rs), -1);
    char want[64];
    snprintf(want, sizeof want, "TLS certificate of 127.0.0.1:%d failed verification", g_tls_port);
    ASSERT_CONTAINS(rs.error, want);
    http_response_free(&rs);

    c.extra_json = "{\"verify\": false}";
    cJSON *o = echo(&rq);
    ASSERT_STR_EQ(field(o, "path"), "/secure");
    cJSON_Delete(o);

    c.extra_json = "{\"verify\": false}"; /* extra_options win over the connection */
    rq.extra_options_json = "{\"verify\": true}";
    CU_ASSERT_EQUAL(http_request(&rq, &rs), -1);
    http_response_free(&rs);

    rq.extra_options_json = NULL;
    c.extra_json = NULL;
    rq.verify_tls = -1;
    o = echo(&rq);
    cJSON_Delete(o);

    /* the certificate itself as the CA bundle: verified, and it names 127.0.0.1 */
    char extra[128];
    snprintf(extra, sizeof extra, "{\"verify\": \"%s\"}", g_cert_path);
    c.extra_json = extra;
    rq.verify_tls = 0;
    o = echo(&rq);
    ASSERT_STR_EQ(field(o, "path"), "/secure");
    cJSON_Delete(o);
}

/* ---- threads ------------------------------------------------------------------------ */

#define THREADS 8
#define PER_THREAD 10

static atomic_int g_thread_failures;

static void *hammer(void *arg)
{
    int id = (int)(intptr_t)arg;
    HttpConn c = {.host = "127.0.0.1", .port = g_plain_port};
    for (int i = 0; i < PER_THREAD; i++) {
        char endpoint[32];
        snprintf(endpoint, sizeof endpoint, "t%d/%d", id, i);
        HttpRequest rq = {.conn = &c, .method = "GET", .endpoint = endpoint};
        HttpResponse rs;
        char want[48];
        snprintf(want, sizeof want, "\"path\":\"/%s\"", endpoint);
        if (http_request(&rq, &rs) != 0 || rs.status != 200 || !strstr(rs.body, want))
            atomic_fetch_add(&g_thread_failures, 1);
        http_response_free(&rs);
    }
    return NULL;
}

static void test_requests_run_from_many_threads_at_once(void)
{
    server_port();
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) pthread_create(&t[i], NULL, hammer, (void *)(intptr_t)i);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    CU_ASSERT_EQUAL(atomic_load(&g_thread_failures), 0);
}

static const UnitTest tests[] = {
    UNIT(test_endpoint_joins_base_url_with_one_slash),
    UNIT(test_host_may_be_a_base_url_with_scheme_and_path),
    UNIT(test_unusable_base_urls_give_null),
    UNIT(test_request_reaches_endpoint_under_base_url_path),
    UNIT(test_each_method_is_sent_as_given),
    UNIT(test_json_data_goes_out_as_a_json_body),
    UNIT(test_json_data_with_form_content_type_is_urlencoded),
    UNIT(test_plain_text_data_is_sent_without_a_content_type),
    UNIT(test_get_with_json_data_sends_it_as_query_string),
    UNIT(test_request_params_become_query_parameters),
    UNIT(test_headers_come_from_request_and_connection_extra),
    UNIT(test_bad_headers_and_extras_are_refused),
    UNIT(test_login_and_password_send_basic_auth),
    UNIT(test_redirects_are_followed_unless_extra_options_say_not),
    UNIT(test_status_check_defaults_to_2xx_and_takes_a_set),
    UNIT(test_contains_check_looks_for_text_in_body),
    UNIT(test_json_path_walks_objects_and_arrays),
    UNIT(test_json_path_check_compares_the_value),
    UNIT(test_large_body_is_cut_at_the_cap_but_counted),
    UNIT(test_slow_server_times_out_with_seconds_in_message),
    UNIT(test_closed_port_is_refused_naming_host_and_port),
    UNIT(test_https_to_a_plain_http_server_is_a_tls_error),
    UNIT(test_self_signed_certificate_fails_unless_verify_is_off),
    UNIT(test_requests_run_from_many_threads_at_once),
    {0},
};

UNIT_MAIN("http", tests)
