/* http — Airflow's HttpHook on libcurl (see http.h).
 *
 * The Airflow meaning lives in three places: the base URL and endpoint join
 * (build_url), the extra keys (opts_apply), and how data becomes a body or a query
 * (http_request's "data" step). The rest is libcurl set-up, and turning a CURLcode into
 * a sentence that names host and port, because "Couldn't connect to server" alone does
 * not say which server a task could not reach. */
#include "worker/http.h"

#include "core/util.h"

#include <cjson/cJSON.h>
#include <ctype.h>
/* the type-checking macros of curl/typecheck-gcc.h would stand in the way of calling
 * libcurl through the pointers below */
#define CURL_DISABLE_TYPECHECK 1
#include <curl/curl.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define HTTP_DEFAULT_TIMEOUT_MS 30000L
#define HTTP_DEFAULT_MAX_BODY (10L * 1024 * 1024)
#define HTTP_DEFAULT_MAX_REDIRECTS 30L /* requests' DEFAULT_REDIRECT_LIMIT */
#define HTTP_METHOD_MAX 32
#define HTTP_USER_AGENT "gust"
#define FORM_CT "application/x-www-form-urlencoded"

/* ---- once-only libcurl set-up ------------------------------------------------------- *
 * libcurl is loaded on the first request (dlopen), not linked. Why: with its dependencies
 * (GnuTLS, nettle, gmp, p11-kit, libssh2, librtmp, nghttp2, libpsl, brotli, ...) it costs
 * every gust process ~3 MB of resident pages from start-up, though only a worker that runs an
 * http task or sensor uses it, and a worker's whole budget is 10 MB (issue 5). With no
 * direct reference left, the linker (--as-needed) leaves it out of the binary's
 * dependencies; where it is linked anyway (the sanitizer build), dlopen finds it loaded. */

#define CURL_SONAME "libcurl.so.4"

static struct {
    __typeof__(curl_global_init) *global_init;
    __typeof__(curl_easy_init) *easy_init;
    __typeof__(curl_easy_setopt) *easy_setopt;
    __typeof__(curl_easy_perform) *easy_perform;
    __typeof__(curl_easy_getinfo) *easy_getinfo;
    __typeof__(curl_easy_cleanup) *easy_cleanup;
    __typeof__(curl_easy_strerror) *easy_strerror;
    __typeof__(curl_url) *url;
    __typeof__(curl_url_set) *url_set;
    __typeof__(curl_url_get) *url_get;
    __typeof__(curl_url_cleanup) *url_cleanup;
    __typeof__(curl_url_strerror) *url_strerror;
    __typeof__(curl_free) *free;
    __typeof__(curl_slist_append) *slist_append;
    __typeof__(curl_slist_free_all) *slist_free_all;
} g_curl;

static pthread_once_t g_curl_once = PTHREAD_ONCE_INIT;
static CURLcode g_curl_init_rc = CURLE_FAILED_INIT;
static char g_curl_error[300]; /* why libcurl is unavailable ("" once it is loaded) */

static void curl_init_once(void)
{
    void *lib = dlopen(CURL_SONAME, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(g_curl_error, sizeof g_curl_error, "cannot load %s (install libcurl4): %s", CURL_SONAME, dlerror());
        return;
    }
    struct {
        void **slot;
        const char *name;
    } syms[] = {
        {(void **)&g_curl.global_init, "curl_global_init"}, {(void **)&g_curl.easy_init, "curl_easy_init"},
        {(void **)&g_curl.easy_setopt, "curl_easy_setopt"}, {(void **)&g_curl.easy_perform, "curl_easy_perform"},
        {(void **)&g_curl.easy_getinfo, "curl_easy_getinfo"}, {(void **)&g_curl.easy_cleanup, "curl_easy_cleanup"},
        {(void **)&g_curl.easy_strerror, "curl_easy_strerror"}, {(void **)&g_curl.url, "curl_url"},
        {(void **)&g_curl.url_set, "curl_url_set"}, {(void **)&g_curl.url_get, "curl_url_get"},
        {(void **)&g_curl.url_cleanup, "curl_url_cleanup"}, {(void **)&g_curl.url_strerror, "curl_url_strerror"},
        {(void **)&g_curl.free, "curl_free"}, {(void **)&g_curl.slist_append, "curl_slist_append"},
        {(void **)&g_curl.slist_free_all, "curl_slist_free_all"},
    };
    for (size_t i = 0; i < sizeof syms / sizeof *syms; i++) {
        *syms[i].slot = dlsym(lib, syms[i].name);
        if (!*syms[i].slot) {
            snprintf(g_curl_error, sizeof g_curl_error, "%s has no %s: libcurl 7.80 or later is needed", CURL_SONAME,
                     syms[i].name);
            return;
        }
    }
    g_curl_init_rc = g_curl.global_init(CURL_GLOBAL_DEFAULT);
    if (g_curl_init_rc != CURLE_OK)
        snprintf(g_curl_error, sizeof g_curl_error, "libcurl failed to initialise: %s",
                 g_curl.easy_strerror(g_curl_init_rc));
}

/* the rest of the file calls libcurl by its own names, through the pointers (curl.h's
 * three-argument check macros for the variadic two make way) */
#undef curl_easy_setopt
#undef curl_easy_getinfo
#define curl_easy_init g_curl.easy_init
#define curl_easy_setopt g_curl.easy_setopt
#define curl_easy_perform g_curl.easy_perform
#define curl_easy_getinfo g_curl.easy_getinfo
#define curl_easy_cleanup g_curl.easy_cleanup
#define curl_easy_strerror g_curl.easy_strerror
#define curl_url g_curl.url
#define curl_url_set g_curl.url_set
#define curl_url_get g_curl.url_get
#define curl_url_cleanup g_curl.url_cleanup
#define curl_url_strerror g_curl.url_strerror
#define curl_free g_curl.free
#define curl_slist_append g_curl.slist_append
#define curl_slist_free_all g_curl.slist_free_all

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- small string helpers ----------------------------------------------------------- */

static const char HEX[] = "0123456789ABCDEF";

/* application/x-www-form-urlencoded, as Python's quote_plus: space is '+'. */
static void form_escape(StrBuf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            sb_appendc(b, (char)*p);
        } else if (*p == ' ') {
            sb_appendc(b, '+');
        } else {
            sb_appendc(b, '%');
            sb_appendc(b, HEX[*p >> 4]);
            sb_appendc(b, HEX[*p & 15]);
        }
    }
}

/* What requests' requote_uri does for the bytes a URL parser would choke on: escape
 * controls, spaces and non-ASCII, and a '%' that does not start an escape. */
static void url_requote(StrBuf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int bad_pct = *p == '%' && !(isxdigit(p[1]) && isxdigit(p[2]));
        if (*p <= 0x20 || *p >= 0x7f || bad_pct) {
            sb_appendc(b, '%');
            sb_appendc(b, HEX[*p >> 4]);
            sb_appendc(b, HEX[*p & 15]);
        } else {
            sb_appendc(b, (char)*p);
        }
    }
}

/* A JSON value as query/form text: strings as they are, everything else as JSON. */
static char *json_scalar_text(const cJSON *v)
{
    if (cJSON_IsString(v)) return xstrdup(v->valuestring);
    char *printed = cJSON_PrintUnformatted(v);
    char *out = xstrdup(printed ? printed : "");
    cJSON_free(printed);
    return out;
}

static void form_pair(StrBuf *b, const char *key, const cJSON *v)
{
    if (cJSON_IsNull(v)) return; /* requests drops None */
    char *text = json_scalar_text(v);
    if (b->len) sb_appendc(b, '&');
    form_escape(b, key);
    sb_appendc(b, '=');
    form_escape(b, text);
    free(text);
}

/* Append obj's members to b as k=v&k=v; arrays repeat the key. */
static void form_encode(StrBuf *b, const cJSON *obj)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        if (cJSON_IsArray(it)) {
            const cJSON *el;
            cJSON_ArrayForEach(el, it) form_pair(b, it->string, el);
        } else {
            form_pair(b, it->string, it);
        }
    }
}

static int has_line_break(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

static int truthy_text(const char *s, int *out)
{
    if (!strcasecmp(s, "true")) *out = 1;
    else if (!strcasecmp(s, "false")) *out = 0;
    else return -1;
    return 0;
}

/* A JSON boolean, or the text "true"/"false" (extras that came from a connection URI). */
static int json_bool(const cJSON *v, int *out)
{
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return 0;
    }
    return cJSON_IsString(v) ? truthy_text(v->valuestring, out) : -1;
}

/* ---- headers ------------------------------------------------------------------------ */

/* Header lines "Name: value", owned. */
typedef struct HdrList {
    char **v;   /* the lines */
    size_t n;   /* lines used */
    size_t cap; /* lines allocated */
} HdrList;

static void hdr_push(HdrList *h, char *line)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 8;
        h->v = xrealloc(h->v, h->cap * sizeof *h->v);
    }
    h->v[h->n++] = line;
}

static void hdr_free(HdrList *h)
{
    for (size_t i = 0; i < h->n; i++) free(h->v[i]);
    free(h->v);
    memset(h, 0, sizeof *h);
}

/* Length of the name in "Name: value" (before ':' or curl's "Name;" form). */
static size_t hdr_name_len(const char *line)
{
    return strcspn(line, ":;");
}

static int hdr_same_name(const char *a, const char *b)
{
    size_t la = hdr_name_len(a), lb = hdr_name_len(b);
    return la == lb && strncasecmp(a, b, la) == 0;
}

/* The value of the header named name (given as "Name:"), or NULL. */
static const char *hdr_value(const HdrList *h, const char *name)
{
    for (size_t i = 0; i < h->n; i++) {
        if (!hdr_same_name(h->v[i], name)) continue;
        const char *v = h->v[i] + hdr_name_len(h->v[i]);
        if (*v) v++;
        while (*v == ' ' || *v == '\t') v++;
        return v;
    }
    return NULL;
}

/* "Name: value" made safe for curl: the name must be there, no line breaks (header
 * injection), and an empty value becomes "Name;" — curl's spelling for "send it empty"
 * ("Name:" would delete the header instead). */
static char *hdr_line(const char *name, size_t name_len, const char *value, char *err, size_t errlen)
{
    while (name_len && (name[name_len - 1] == ' ' || name[name_len - 1] == '\t')) name_len--;
    if (name_len == 0 || memchr(name, ':', name_len) || memchr(name, ' ', name_len)) {
        seterr(err, errlen, "invalid header name '%.*s'", (int)name_len, name);
        return NULL;
    }
    if (has_line_break(value) || memchr(name, '\r', name_len) || memchr(name, '\n', name_len)) {
        seterr(err, errlen, "header '%.*s' contains a line break", (int)name_len, name);
        return NULL;
    }
    while (*value == ' ' || *value == '\t') value++;
    if (!*value) return xasprintf("%.*s;", (int)name_len, name);
    return xasprintf("%.*s: %s", (int)name_len, name, value);
}

/* ---- extras ------------------------------------------------------------------------- */

/* The extra keys gust understands; pointers borrow from the parsed extra trees. */
typedef struct HttpOpts {
    int verify;              /* -1 unset, 0 off, 1 on */
    const char *ca_path;     /* "verify": "<CA bundle file or folder>" */
    double timeout_s;        /* < 0: unset */
    int allow_redirects;     /* -1 unset */
    long max_redirects;      /* < 0: unset */
    const char *proxy_http;  /* proxies.http */
    const char *proxy_https; /* proxies.https */
    const char *proxy_all;   /* proxies.all, or "proxy": "<url>" */
    int trust_env;           /* -1 unset */
    const char *cert, *key;  /* client certificate and key files */
} HttpOpts;

static void opts_init(HttpOpts *o)
{
    memset(o, 0, sizeof *o);
    o->verify = o->allow_redirects = o->trust_env = -1;
    o->timeout_s = -1;
    o->max_redirects = -1;
}

static int header_from_json(HdrList *out, const char *name, const cJSON *v, char *err, size_t errlen)
{
    if (cJSON_IsNull(v) || cJSON_IsObject(v) || cJSON_IsArray(v)) return 0; /* not a header */
    char *text = json_scalar_text(v);
    char *line = hdr_line(name, strlen(name), text, err, errlen);
    free(text);
    if (!line) return -1;
    hdr_push(out, line);
    return 0;
}

/* Apply one extra object (what names it in messages). Keys gust does not know become
 * headers when headers is not NULL (the connection's extra), else are ignored. */
static int opts_apply(HttpOpts *o, const cJSON *obj, HdrList *headers, const char *what, char *err,
                      size_t errlen)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        const char *k = it->string;
        int b;
        if (!strcmp(k, "verify") || !strcmp(k, "verify_ssl")) {
            if (cJSON_IsNull(it)) continue;
            if (json_bool(it, &b) == 0) {
                o->verify = b;
                o->ca_path = NULL;
            } else if (cJSON_IsString(it) && *it->valuestring) {
                o->verify = 1;
                o->ca_path = it->valuestring;
            } else {
                goto bad;
            }
        } else if (!strcmp(k, "timeout")) {
            if (cJSON_IsNull(it)) continue;
            if (!cJSON_IsNumber(it) || it->valuedouble <= 0) goto bad;
            o->timeout_s = it->valuedouble;
        } else if (!strcmp(k, "allow_redirects")) {
            if (json_bool(it, &b) != 0) goto bad;
            o->allow_redirects = b;
        } else if (!strcmp(k, "max_redirects")) {
            if (!cJSON_IsNumber(it) || it->valuedouble < 0) goto bad;
            o->max_redirects = (long)it->valuedouble;
        } else if (!strcmp(k, "trust_env")) {
            if (json_bool(it, &b) != 0) goto bad;
            o->trust_env = b;
        } else if (!strcmp(k, "proxies") || !strcmp(k, "proxy")) {
            if (cJSON_IsString(it)) {
                o->proxy_all = it->valuestring;
            } else if (cJSON_IsObject(it)) {
                const cJSON *p;
                cJSON_ArrayForEach(p, it)
                {
                    if (!cJSON_IsString(p)) goto bad;
                    if (!strcmp(p->string, "http")) o->proxy_http = p->valuestring;
                    else if (!strcmp(p->string, "https")) o->proxy_https = p->valuestring;
                    else if (!strcmp(p->string, "all")) o->proxy_all = p->valuestring;
                }
            } else if (!cJSON_IsNull(it)) {
                goto bad;
            }
        } else if (!strcmp(k, "cert")) {
            if (cJSON_IsString(it)) {
                o->cert = it->valuestring;
                o->key = NULL;
            } else if (cJSON_IsArray(it) && cJSON_GetArraySize(it) == 2 &&
                       cJSON_IsString(cJSON_GetArrayItem(it, 0)) && cJSON_IsString(cJSON_GetArrayItem(it, 1))) {
                o->cert = cJSON_GetArrayItem(it, 0)->valuestring;
                o->key = cJSON_GetArrayItem(it, 1)->valuestring;
            } else if (!cJSON_IsNull(it)) {
                goto bad;
            }
        } else if (!strcmp(k, "stream") || !strcmp(k, "check_response")) {
            continue; /* the caller reads the whole body and checks it */
        } else if (headers && !strcmp(k, "headers") && cJSON_IsObject(it)) {
            const cJSON *h;
            cJSON_ArrayForEach(h, it) if (header_from_json(headers, h->string, h, err, errlen)) return -1;
        } else if (headers) {
            if (header_from_json(headers, k, it, err, errlen)) return -1;
        }
        continue;
    bad:
        seterr(err, errlen, "%s \"%s\" has an unusable value", what, k);
        return -1;
    }
    return 0;
}

/* Parse an extra text; NULL/"" is an empty object. */
static int parse_extra(const char *text, const char *what, cJSON **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!text) return 0;
    const char *p = text;
    while (isspace((unsigned char)*p)) p++;
    if (!*p) return 0;
    *out = cJSON_Parse(text);
    if (!cJSON_IsObject(*out)) {
        cJSON_Delete(*out);
        *out = NULL;
        seterr(err, errlen, "%s is not a JSON object", what);
        return -1;
    }
    return 0;
}

/* ---- URL ---------------------------------------------------------------------------- */

static int is_http_scheme(const char *s)
{
    return s && (!strcasecmp(s, "http") || !strcasecmp(s, "https"));
}

/* Airflow's base URL joined to the endpoint, parsed. On success *out is the handle
 * (curl_url_cleanup it). */
static int build_url(const HttpConn *c, const char *endpoint, CURLU **out, char *err, size_t errlen)
{
    *out = NULL;
    if (!c || !c->host || !*c->host) {
        seterr(err, errlen, "the connection has no host");
        return -1;
    }
    if (c->port < 0 || c->port > 65535) {
        seterr(err, errlen, "connection port %d is out of range", c->port);
        return -1;
    }
    StrBuf raw = {0}, url = {0};
    if (strstr(c->host, "://")) {
        sb_append(&raw, c->host);
    } else {
        const char *scheme = c->scheme && *c->scheme       ? c->scheme
                             : is_http_scheme(c->conn_type) ? c->conn_type
                                                            : "http";
        sb_printf(&raw, "%s://%s", scheme, c->host);
    }
    /* url_from_endpoint adds a '/' when neither side has one; where both do, Airflow
     * sends "//", which servers rarely route: gust sends one */
    if (endpoint && *endpoint && raw.len) {
        int base_slash = raw.s[raw.len - 1] == '/';
        if (!base_slash && endpoint[0] != '/') sb_appendc(&raw, '/');
        if (base_slash && endpoint[0] == '/') endpoint++;
    }
    if (endpoint) sb_append(&raw, endpoint);
    url_requote(&url, sb_str(&raw));
    sb_free(&raw);

    int rc = -1;
    char *scheme = NULL, *port = NULL;
    CURLU *h = curl_url();
    if (!h) {
        seterr(err, errlen, "out of memory");
        goto done;
    }
    CURLUcode uc = curl_url_set(h, CURLUPART_URL, sb_str(&url), 0);
    if (uc != CURLUE_OK) {
        seterr(err, errlen, "invalid URL '%s': %s", sb_str(&url), curl_url_strerror(uc));
        goto done;
    }
    if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK || !is_http_scheme(scheme)) {
        seterr(err, errlen, "unsupported URL scheme '%s' in '%s' (gust speaks http and https)",
               scheme ? scheme : "", sb_str(&url));
        goto done;
    }
    /* A base-URL host that names no port takes the connection's port. */
    if (c->port > 0 && curl_url_get(h, CURLUPART_PORT, &port, 0) == CURLUE_NO_PORT) {
        char num[8];
        snprintf(num, sizeof num, "%d", c->port);
        if (curl_url_set(h, CURLUPART_PORT, num, 0) != CURLUE_OK) {
            seterr(err, errlen, "cannot set port %d on '%s'", c->port, sb_str(&url));
            goto done;
        }
    }
    rc = 0;
done:
    curl_free(scheme);
    curl_free(port);
    sb_free(&url);
    if (rc == 0) *out = h;
    else curl_url_cleanup(h);
    return rc;
}

char *http_url_from_endpoint(const HttpConn *conn, const char *endpoint)
{
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK) return NULL;
    char err[256];
    CURLU *h;
    if (build_url(conn, endpoint, &h, err, sizeof err) != 0) return NULL;
    char *s = NULL, *out = NULL;
    if (curl_url_get(h, CURLUPART_URL, &s, 0) == CURLUE_OK) out = xstrdup(s);
    curl_free(s);
    curl_url_cleanup(h);
    return out;
}

/* "host:port" of a URL (default port filled in), for messages. */
static void url_where(const char *url, char *out, size_t outlen, char *host_out, size_t hostlen)
{
    char *host = NULL, *port = NULL;
    CURLU *h = curl_url();
    if (h && url && curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK) {
        curl_url_get(h, CURLUPART_HOST, &host, 0);
        curl_url_get(h, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    }
    snprintf(out, outlen, "%s:%s", host ? host : "?", port ? port : "?");
    snprintf(host_out, hostlen, "%s", host ? host : "?");
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(h);
}

/* ---- the response body -------------------------------------------------------------- */

typedef struct BodySink {
    char *buf;    /* kept bytes, NUL-terminated once anything arrived */
    size_t len;   /* bytes kept */
    size_t cap;   /* bytes allocated */
    size_t limit; /* most bytes to keep */
    size_t total; /* bytes received */
} BodySink;

static size_t body_write(char *data, size_t size, size_t nmemb, void *userp)
{
    BodySink *s = userp;
    size_t n = size * nmemb;
    s->total += n;
    size_t keep = s->len < s->limit ? s->limit - s->len : 0;
    if (keep > n) keep = n;
    if (keep) {
        if (s->len + keep + 1 > s->cap) {
            size_t cap = s->cap ? s->cap : 4096;
            while (cap < s->len + keep + 1) cap *= 2;
            if (cap > s->limit + 1) cap = s->limit + 1;
            s->buf = xrealloc(s->buf, cap);
            s->cap = cap;
        }
        memcpy(s->buf + s->len, data, keep);
        s->len += keep;
        s->buf[s->len] = '\0';
    }
    return n; /* the rest is read and dropped, so the connection ends cleanly */
}

/* ---- failures ----------------------------------------------------------------------- */

static int is_tls_error(CURLcode rc)
{
    switch (rc) {
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_USE_SSL_FAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
        return 1;
    default:
        return 0;
    }
}

/* Turn a failed transfer into one sentence naming where it went. */
static void describe_failure(CURL *h, CURLcode rc, const char *errbuf, long timeout_ms, long max_redirs,
                             char *err, size_t errlen)
{
    char *url = NULL;
    char where[300], host[256];
    curl_easy_getinfo(h, CURLINFO_EFFECTIVE_URL, &url);
    url_where(url, where, sizeof where, host, sizeof host);
    const char *detail = errbuf && *errbuf ? errbuf : curl_easy_strerror(rc);

    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
        seterr(err, errlen, "cannot resolve host '%s'", host);
        return;
    case CURLE_COULDNT_RESOLVE_PROXY:
        seterr(err, errlen, "cannot resolve the proxy for %s: %s", where, detail);
        return;
    case CURLE_COULDNT_CONNECT: {
        long os_errno = 0;
        char eb[128];
        curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
        const char *why = os_errno ? strerror_r((int)os_errno, eb, sizeof eb) : detail;
        seterr(err, errlen, "cannot connect to %s: %s", where, why);
        return;
    }
    case CURLE_OPERATION_TIMEDOUT: {
        curl_off_t connected = 0;
        curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected);
        seterr(err, errlen, "timed out after %gs %s %s", (double)timeout_ms / 1000.0,
               connected > 0 ? "waiting for" : "connecting to", where);
        return;
    }
    case CURLE_PEER_FAILED_VERIFICATION:
        seterr(err, errlen,
               "TLS certificate of %s failed verification: %s (extra \"verify\": false skips the check)", where,
               detail);
        return;
    case CURLE_SSL_CONNECT_ERROR:
        seterr(err, errlen, "TLS handshake with %s failed: %s", where, detail);
        return;
    case CURLE_TOO_MANY_REDIRECTS:
        seterr(err, errlen, "more than %ld redirects, the last to %s", max_redirs, where);
        return;
    case CURLE_GOT_NOTHING:
        seterr(err, errlen, "%s closed the connection without answering", where);
        return;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
        seterr(err, errlen, "connection to %s broke: %s", where, detail);
        return;
    default:
        break;
    }
    if (is_tls_error(rc)) seterr(err, errlen, "TLS error with %s: %s: %s", where, curl_easy_strerror(rc), detail);
    else seterr(err, errlen, "request to %s failed: %s", where, detail);
}

/* ---- the request -------------------------------------------------------------------- */

/* Uppercase token, or -1 (RFC 9110 token characters only). */
static int method_norm(const char *in, char out[HTTP_METHOD_MAX])
{
    size_t n = strlen(in);
    if (n == 0 || n >= HTTP_METHOD_MAX) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (!isalnum(ch) && !strchr("!#$%&'*+-.^_`|~", ch)) return -1;
        out[i] = (char)toupper(ch);
    }
    out[n] = '\0';
    return 0;
}

static int is_form_type(const char *ct)
{
    return ct && strncasecmp(ct, FORM_CT, strlen(FORM_CT)) == 0;
}

int http_request(const HttpRequest *req, HttpResponse *resp)
{
    memset(resp, 0, sizeof *resp);
    char *err = resp->error;
    size_t errlen = sizeof resp->error;
    pthread_once(&g_curl_once, curl_init_once);
    if (g_curl_init_rc != CURLE_OK) {
        seterr(err, errlen, "%s", g_curl_error);
        return -1;
    }
    if (!req || !req->conn) {
        seterr(err, errlen, "no connection given");
        return -1;
    }

    int rc = -1;
    CURL *h = NULL;
    CURLU *u = NULL;
    cJSON *conn_extra = NULL, *req_extra = NULL, *data_json = NULL, *params = NULL;
    HdrList extra_hdrs = {0}, hdrs = {0};
    struct curl_slist *slist = NULL;
    StrBuf query = {0}, form = {0};
    char *url = NULL, *oldq = NULL;
    BodySink sink = {0};
    HttpOpts o;
    char method[HTTP_METHOD_MAX];
    char errbuf[CURL_ERROR_SIZE];
    errbuf[0] = '\0';
    opts_init(&o);

    if (method_norm(req->method ? req->method : "GET", method) != 0) {
        seterr(err, errlen, "invalid HTTP method '%s'", req->method);
        goto done;
    }
    int is_get = !strcmp(method, "GET"), is_head = !strcmp(method, "HEAD");

    /* extras: the connection's first, the request's extra_options over them */
    if (parse_extra(req->conn->extra_json, "connection extra", &conn_extra, err, errlen) ||
        parse_extra(req->extra_options_json, "extra_options", &req_extra, err, errlen))
        goto done;
    if (conn_extra && opts_apply(&o, conn_extra, &extra_hdrs, "connection extra", err, errlen)) goto done;
    if (req_extra && opts_apply(&o, req_extra, NULL, "extra_options", err, errlen)) goto done;

    /* headers: the request's beat the connection's of the same name */
    for (const char *const *p = req->headers; p && *p; p++) {
        const char *colon = strchr(*p, ':');
        if (!colon) {
            seterr(err, errlen, "header '%s' has no ':' between name and value", *p);
            goto done;
        }
        char *line = hdr_line(*p, (size_t)(colon - *p), colon + 1, err, errlen);
        if (!line) goto done;
        hdr_push(&hdrs, line);
    }
    for (size_t i = 0; i < extra_hdrs.n; i++) {
        int overridden = 0;
        for (size_t j = 0; j < hdrs.n && !overridden; j++) overridden = hdr_same_name(extra_hdrs.v[i], hdrs.v[j]);
        if (!overridden) {
            hdr_push(&hdrs, extra_hdrs.v[i]);
            extra_hdrs.v[i] = NULL;
        }
    }

    if (build_url(req->conn, req->endpoint, &u, err, errlen)) goto done;
    if (curl_url_get(u, CURLUPART_QUERY, &oldq, 0) == CURLUE_OK && oldq) sb_append(&query, oldq);

    if (req->request_params_json) {
        params = cJSON_Parse(req->request_params_json);
        if (!cJSON_IsObject(params)) {
            seterr(err, errlen, "request_params is not a JSON object");
            goto done;
        }
        form_encode(&query, params);
    }

    /* data: a query for GET, nothing for HEAD, the body otherwise (HttpHook.run) */
    const char *body = NULL;
    size_t body_len = 0;
    if (req->data && req->data_is_json) {
        data_json = cJSON_Parse(req->data);
        if (!data_json) {
            seterr(err, errlen, "data is not valid JSON");
            goto done;
        }
    }
    if (req->data && is_get) {
        if (data_json) {
            if (!cJSON_IsObject(data_json)) {
                seterr(err, errlen, "data for a GET must be a JSON object: it becomes the query parameters");
                goto done;
            }
            form_encode(&query, data_json);
        } else if (*req->data) {
            const char *d = req->data[0] == '?' ? req->data + 1 : req->data;
            if (query.len && *d) sb_appendc(&query, '&');
            url_requote(&query, d);
        }
    } else if (req->data && !is_head) {
        const char *ct = hdr_value(&hdrs, "Content-Type:");
        if (data_json && is_form_type(ct)) {
            if (!cJSON_IsObject(data_json)) {
                seterr(err, errlen, "data sent as %s must be a JSON object", FORM_CT);
                goto done;
            }
            form_encode(&form, data_json);
            body = sb_str(&form);
            body_len = form.len;
        } else {
            body = req->data;
            body_len = strlen(req->data);
            /* JSON goes out as JSON; plain text gets no type at all (as requests does),
             * which also stops curl from labelling it as a form */
            if (!ct) hdr_push(&hdrs, xstrdup(data_json ? "Content-Type: application/json" : "Content-Type:"));
        }
    }
    /* The query goes back in as part of a whole URL: setting CURLUPART_QUERY alone makes
     * libcurl 7.88 lowercase the %-escapes. The fragment is never sent, so it goes. */
    if (curl_url_set(u, CURLUPART_QUERY, NULL, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_FRAGMENT, NULL, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
        seterr(err, errlen, "cannot build the URL");
        goto done;
    }
    if (query.len) {
        char *full = xasprintf("%s?%s", url, sb_str(&query));
        CURLUcode uc = curl_url_set(u, CURLUPART_URL, full, 0);
        if (uc != CURLUE_OK) seterr(err, errlen, "invalid URL '%s': %s", full, curl_url_strerror(uc));
        free(full);
        if (uc != CURLUE_OK) goto done;
    }
    curl_free(url);
    url = NULL;
    if (curl_url_get(u, CURLUPART_URL, &url, 0) != CURLUE_OK) {
        seterr(err, errlen, "cannot build the URL");
        goto done;
    }

    hdr_push(&hdrs, xstrdup("Expect:")); /* no 100-continue round trip for large bodies */
    for (size_t i = 0; i < hdrs.n; i++) {
        struct curl_slist *next = curl_slist_append(slist, hdrs.v[i]);
        if (!next) {
            seterr(err, errlen, "out of memory");
            goto done;
        }
        slist = next;
    }

    h = curl_easy_init();
    if (!h) {
        seterr(err, errlen, "libcurl could not create a handle");
        goto done;
    }
    long timeout_ms = req->timeout_ms > 0 ? req->timeout_ms
                      : o.timeout_s > 0   ? (long)(o.timeout_s * 1000.0 + 0.5)
                                          : HTTP_DEFAULT_TIMEOUT_MS;
    if (timeout_ms < 1) timeout_ms = 1;
    long max_redirs = o.max_redirects >= 0 ? o.max_redirects : HTTP_DEFAULT_MAX_REDIRECTS;
    int verify = req->verify_tls < 0 ? 0 : o.verify != 0;
    long max_body = req->max_body_bytes > 0 ? req->max_body_bytes : HTTP_DEFAULT_MAX_BODY;
    sink.limit = (size_t)max_body;

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM for DNS timeouts */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, o.allow_redirects != 0 ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, max_redirs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, HTTP_USER_AGENT);
    curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, ""); /* whatever libcurl can decode */
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, slist);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &sink);

    if (is_get) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (is_head) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else {
        /* POST, PUT and PATCH always carry a body (maybe empty: Content-Length: 0) */
        int wants_body = body || !strcmp(method, "POST") || !strcmp(method, "PUT") || !strcmp(method, "PATCH");
        if (wants_body) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        }
        if (strcmp(method, "POST") != 0) curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }

    if (req->conn->login && *req->conn->login) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERNAME, req->conn->login);
        curl_easy_setopt(h, CURLOPT_PASSWORD, req->conn->password ? req->conn->password : "");
    }

    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (verify && o.ca_path) {
        struct stat st;
        int is_dir = stat(o.ca_path, &st) == 0 && S_ISDIR(st.st_mode);
        curl_easy_setopt(h, is_dir ? CURLOPT_CAPATH : CURLOPT_CAINFO, o.ca_path);
    }
    if (o.cert) curl_easy_setopt(h, CURLOPT_SSLCERT, o.cert);
    if (o.key) curl_easy_setopt(h, CURLOPT_SSLKEY, o.key);

    {
        int https = strncasecmp(url, "https:", 6) == 0;
        const char *proxy = https && o.proxy_https   ? o.proxy_https
                            : !https && o.proxy_http ? o.proxy_http
                                                     : o.proxy_all;
        if (proxy) curl_easy_setopt(h, CURLOPT_PROXY, proxy);
        else if (o.trust_env == 0) curl_easy_setopt(h, CURLOPT_PROXY, ""); /* "" ignores http_proxy & co */
    }

    CURLcode cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    if (cc != CURLE_OK) {
        describe_failure(h, cc, errbuf, timeout_ms, max_redirs, err, errlen);
        goto done;
    }
    char *ct = NULL;
    if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct) resp->content_type = xstrdup(ct);
    resp->body = sink.buf ? sink.buf : xstrdup("");
    sink.buf = NULL;
    resp->body_len = sink.len;
    resp->body_total = sink.total;
    resp->truncated = sink.total > sink.len;
    rc = 0;

done:
    free(sink.buf);
    curl_easy_cleanup(h);
    curl_slist_free_all(slist);
    curl_free(url);
    curl_free(oldq);
    curl_url_cleanup(u);
    sb_free(&query);
    sb_free(&form);
    hdr_free(&hdrs);
    hdr_free(&extra_hdrs);
    cJSON_Delete(params);
    cJSON_Delete(data_json);
    cJSON_Delete(conn_extra);
    cJSON_Delete(req_extra);
    return rc;
}

void http_response_free(HttpResponse *r)
{
    if (!r) return;
    free(r->body);
    free(r->content_type);
    r->body = r->content_type = NULL;
    r->body_len = r->body_total = 0;
}

/* ---- JSON paths and checks ---------------------------------------------------------- */

static const cJSON *array_at(const cJSON *a, long idx)
{
    if (!cJSON_IsArray(a)) return NULL;
    long n = cJSON_GetArraySize(a);
    if (idx < 0) idx += n;
    if (idx < 0 || idx >= n) return NULL;
    return cJSON_GetArrayItem(a, (int)idx);
}

static int all_digits(const char *s)
{
    if (!*s) return 0;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s)) return 0;
    return 1;
}

/* Walk path from root. 0 and *out found; -1 nothing there; -2 the path is malformed. */
static int json_walk(const cJSON *node, const char *path, const cJSON **out)
{
    const char *p = path ? path : "";
    int first = 1;
    if (*p == '$') {
        p++;
        first = 0;
    }
    while (*p) {
        if (*p == '[') {
            p++;
            if (*p == '"' || *p == '\'') {
                char q = *p++;
                StrBuf key = {0};
                while (*p && *p != q) {
                    if (*p == '\\' && p[1]) p++;
                    sb_appendc(&key, *p++);
                }
                if (*p != q || p[1] != ']') {
                    sb_free(&key);
                    return -2;
                }
                p += 2;
                node = cJSON_IsObject(node) ? cJSON_GetObjectItemCaseSensitive(node, sb_str(&key)) : NULL;
                sb_free(&key);
            } else {
                char *end;
                long idx = strtol(p, &end, 10);
                if (end == p || *end != ']') return -2;
                p = end + 1;
                node = array_at(node, idx);
            }
        } else {
            if (!first) {
                if (*p != '.') return -2;
                p++;
            }
            size_t n = strcspn(p, ".[");
            if (n == 0) return -2;
            char *key = xstrndup(p, n);
            p += n;
            if (cJSON_IsArray(node) && all_digits(key)) node = array_at(node, strtol(key, NULL, 10));
            else node = cJSON_IsObject(node) ? cJSON_GetObjectItemCaseSensitive(node, key) : NULL;
            free(key);
        }
        first = 0;
    }
    *out = node;
    return node ? 0 : -1;
}

static char *json_text(const cJSON *v)
{
    char *printed = cJSON_PrintUnformatted(v);
    char *out = xstrdup(printed ? printed : "");
    cJSON_free(printed);
    return out;
}

char *http_json_path(const char *json, const char *path)
{
    if (!json) return NULL;
    cJSON *root = cJSON_Parse(json);
    if (!root) return NULL;
    const cJSON *v = NULL;
    char *out = json_walk(root, path, &v) == 0 ? json_text(v) : NULL;
    cJSON_Delete(root);
    return out;
}

static void why_set(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void why_set(char *why, size_t whylen, const char *fmt, ...)
{
    if (!why || !whylen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

/* " (only the first N bytes were kept)" when the body was cut, else "". */
static void truncation_note(const HttpResponse *r, char *out, size_t outlen)
{
    out[0] = '\0';
    if (r->truncated) snprintf(out, outlen, " (only the first %zu bytes were kept)", r->body_len);
}

int http_check(const HttpCheck *chk, const HttpResponse *r, char *why, size_t whylen)
{
    why_set(why, whylen, "%s", "");
    if (!r) {
        why_set(why, whylen, "no response");
        return 0;
    }
    if (!chk || !chk->ok_statuses || chk->n_ok == 0) {
        if (r->status < 200 || r->status > 299) {
            why_set(why, whylen, "status %ld is not 2xx", r->status);
            return 0;
        }
    } else {
        int ok = 0;
        for (size_t i = 0; i < chk->n_ok && !ok; i++) ok = chk->ok_statuses[i] == r->status;
        if (!ok) {
            StrBuf set = {0};
            for (size_t i = 0; i < chk->n_ok; i++) sb_printf(&set, "%s%d", i ? ", " : "", chk->ok_statuses[i]);
            why_set(why, whylen, "status %ld is not one of %s", r->status, sb_str(&set));
            sb_free(&set);
            return 0;
        }
    }
    if (!chk) return 1;

    char note[80];
    truncation_note(r, note, sizeof note);
    const char *body = r->body ? r->body : "";
    size_t body_len = r->body ? r->body_len : 0;

    if (chk->contains && *chk->contains && !memmem(body, body_len, chk->contains, strlen(chk->contains))) {
        why_set(why, whylen, "body does not contain \"%s\"%s", chk->contains, note);
        return 0;
    }
    if (!chk->json_path) return 1;

    int pass = 0;
    cJSON *want = NULL;
    cJSON *root = cJSON_ParseWithLength(body, body_len);
    const cJSON *got = NULL;
    int w = root ? json_walk(root, chk->json_path, &got) : 0;
    if (!root) {
        why_set(why, whylen, "body is not JSON%s", note);
    } else if (w == -2) {
        why_set(why, whylen, "invalid JSON path '%s'", chk->json_path);
    } else if (w == -1) {
        why_set(why, whylen, "no value at %s", chk->json_path);
    } else if (!chk->json_equals) {
        pass = 1;
    } else {
        want = cJSON_Parse(chk->json_equals);
        if (!want) want = cJSON_CreateString(chk->json_equals); /* bare text means a string */
        if (cJSON_Compare(got, want, 1)) {
            pass = 1;
        } else {
            char *g = json_text(got), *wt = json_text(want);
            why_set(why, whylen, "%s is %.100s%s, want %.100s", chk->json_path, g, strlen(g) > 100 ? "..." : "",
                    wt);
            free(g);
            free(wt);
        }
    }
    cJSON_Delete(want);
    cJSON_Delete(root);
    return pass;
}
