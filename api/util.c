/* util — the helpers route handlers answer with (see api/api.h). */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api/api.h"
#include "core/config.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "store/store.h"
#include "store/xcom.h"

static const char *const role_names[] = {"None", "Viewer", "User", "Op", "Admin"};

const char *api_role_name(ApiRole r)
{
    return (unsigned)r < sizeof role_names / sizeof role_names[0] ? role_names[r] : "?";
}

int api_role_parse(const char *name)
{
    if (!name) return -1;
    for (int i = API_ROLE_VIEWER; i <= API_ROLE_ADMIN; i++)
        if (strcasecmp(name, role_names[i]) == 0) return i;
    return -1;
}

void api_json(ApiResp *out, int status, cJSON *doc)
{
    if (!doc) {
        api_error(out, 500, "cannot build the response");
        return;
    }
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (!text) {
        api_error(out, 500, "cannot build the response");
        return;
    }
    free(out->body);
    out->status = status;
    out->body = text;
    out->body_len = strlen(text);
    out->content_type = "application/json";
}

static void set_detail(ApiResp *out, int status, cJSON *detail)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddItemToObject(doc, "detail", detail);
    char *text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    free(out->body);
    out->status = status;
    out->body = text ? text : xstrdup("{\"detail\":\"out of memory\"}");
    out->body_len = strlen(out->body);
    out->content_type = "application/json";
}

void api_error(ApiResp *out, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    set_detail(out, status, cJSON_CreateString(msg));
}

void api_error_422(ApiResp *out, const char *where, const char *field, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *arr = cJSON_CreateArray(), *e = cJSON_CreateObject(), *loc = cJSON_CreateArray();
    cJSON_AddStringToObject(e, "type", "value_error");
    cJSON_AddItemToArray(loc, cJSON_CreateString(where ? where : "body"));
    if (field) cJSON_AddItemToArray(loc, cJSON_CreateString(field));
    cJSON_AddItemToObject(e, "loc", loc);
    cJSON_AddStringToObject(e, "msg", msg);
    cJSON_AddNullToObject(e, "input");
    cJSON_AddItemToArray(arr, e);
    set_detail(out, 422, arr);
}

void api_store_error(ApiResp *out, struct Store *s)
{
    api_error(out, 503, "the store is unavailable: %s", s ? store_last_error(s) : "cannot connect (see the API's log)");
}

void api_no_content(ApiResp *out)
{
    free(out->body);
    out->body = NULL;
    out->body_len = 0;
    out->status = 204;
}

const char *api_query(ApiReq *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

typedef struct Collect {
    const char *name;
    const char **out;
    int max, n;
} Collect;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    Collect *c = cls;
    if (key && strcmp(key, c->name) == 0 && value && c->n < c->max) c->out[c->n++] = value;
    return MHD_YES;
}

int api_query_all(ApiReq *r, const char *name, const char **out, int max)
{
    Collect c = {name, out, max, 0};
    MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &c);
    return c.n;
}

const char *api_header(ApiReq *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static int parse_ll(const char *s, long long *v)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (errno || *end || end == s) return -1;
    *v = x;
    return 0;
}

int api_query_int(ApiReq *r, ApiResp *out, const char *name, long long lo, long long hi, long long *v)
{
    const char *s = api_query(r, name);
    if (!s) return 0;
    long long x;
    if (parse_ll(s, &x) != 0) {
        api_error_422(out, "query", name, "Input should be a valid integer, unable to parse string as an integer");
        return -1;
    }
    if (x < lo || x > hi) {
        api_error_422(out, "query", name, "Input should be between %lld and %lld", lo, hi);
        return -1;
    }
    *v = x;
    return 1;
}

int api_page(ApiReq *r, ApiResp *out, int *limit, int *offset)
{
    long long lim = 50, off = 0;
    long long maxlim = config_get_int(r->ctx->cfg, "api.maximum_page_limit");
    /* as Airflow: a limit above the maximum is clamped to it, not refused */
    if (api_query_int(r, out, "limit", 0, 1000000000LL, &lim) < 0) return -1;
    if (lim > maxlim) lim = maxlim;
    if (api_query_int(r, out, "offset", 0, 1000000000LL, &off) < 0) return -1;
    *limit = (int)lim;
    *offset = (int)off;
    return 0;
}

int api_query_bool(ApiReq *r, ApiResp *out, const char *name)
{
    const char *s = api_query(r, name);
    if (!s) return 2;
    if (strcasecmp(s, "true") == 0 || strcmp(s, "1") == 0) return 1;
    if (strcasecmp(s, "false") == 0 || strcmp(s, "0") == 0) return 0;
    api_error_422(out, "query", name, "Input should be a valid boolean, unable to interpret input");
    return -1;
}

int api_query_time(ApiReq *r, ApiResp *out, const char *name, int64_t *us)
{
    const char *s = api_query(r, name);
    if (!s) return 0;
    char err[256];
    if (time_parse_iso(s, NULL, us, err, sizeof err) != 0) {
        api_error_422(out, "query", name, "Input should be a valid datetime: %s", err);
        return -1;
    }
    return 1;
}

int api_order_by(ApiReq *r, ApiResp *out, const char *const *allowed, const char *const *columns, int dflt_index,
                 char *sql, size_t sqllen)
{
    const char *s = api_query(r, "order_by");
    int desc = 0, idx = dflt_index;
    if (s && *s) {
        if (*s == '-') desc = 1, s++;
        idx = -1;
        for (int i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], s) == 0) idx = i;
        if (idx < 0) {
            StrBuf b = {0};
            for (int i = 0; allowed[i]; i++) sb_printf(&b, "%s%s", i ? ", " : "", allowed[i]);
            api_error(out, 400, "Ordering with '%s' is disallowed or the attribute does not exist on the model; "
                                "allowed: %s", s, sb_str(&b));
            sb_free(&b);
            return -1;
        }
    }
    snprintf(sql, sqllen, "%s %s", columns[idx], desc ? "DESC" : "ASC");
    return 0;
}

int api_body_object(ApiReq *r, ApiResp *out, cJSON **doc)
{
    *doc = NULL;
    if (!r->body_len) {
        api_error_422(out, "body", NULL, "Field required: the request needs a JSON body");
        return -1;
    }
    const char *end = NULL;
    cJSON *d = cJSON_ParseWithLengthOpts(r->body, r->body_len, &end, 0);
    if (!d) {
        size_t at = end && end >= r->body ? (size_t)(end - r->body) : 0;
        api_error_422(out, "body", NULL, "JSON decode error near byte %zu", at);
        return -1;
    }
    if (!cJSON_IsObject(d)) {
        cJSON_Delete(d);
        api_error_422(out, "body", NULL, "Input should be a valid dictionary or object");
        return -1;
    }
    *doc = d;
    return 0;
}

int api_body_only(ApiResp *out, const cJSON *doc, const char *const *allowed)
{
    for (const cJSON *it = doc ? doc->child : NULL; it; it = it->next) {
        int ok = 0;
        for (int i = 0; allowed[i]; i++) ok |= strcmp(allowed[i], it->string) == 0;
        if (!ok) {
            api_error_422(out, "body", it->string, "Extra inputs are not permitted");
            return -1;
        }
    }
    return 0;
}

cJSON *api_time(int64_t us)
{
    if (us < 0) return cJSON_CreateNull();
    char buf[48];
    time_format_iso(us, 1, buf, sizeof buf);
    return cJSON_CreateString(buf);
}

void api_add_time(cJSON *obj, const char *name, int64_t us) { cJSON_AddItemToObject(obj, name, api_time(us)); }

void api_add_str(cJSON *obj, const char *name, const char *s)
{
    if (s)
        cJSON_AddStringToObject(obj, name, s);
    else
        cJSON_AddNullToObject(obj, name);
}

void api_add_json_text(cJSON *obj, const char *name, const char *text, const char *dflt)
{
    cJSON *v = text ? cJSON_Parse(text) : NULL;
    if (!v) v = cJSON_Parse(dflt ? dflt : "null");
    cJSON_AddItemToObject(obj, name, v ? v : cJSON_CreateNull());
}

const char *api_uuid(const char *hex, char out[API_UUID_LEN])
{
    size_t n = hex ? strlen(hex) : 0;
    int ok = n == 32;
    for (size_t i = 0; ok && i < n; i++) ok = isxdigit((unsigned char)hex[i]) != 0;
    if (ok)
        snprintf(out, API_UUID_LEN, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16, hex + 20);
    else
        util_strlcpy(out, hex ? hex : "", API_UUID_LEN);
    return out;
}

void api_audit(ApiReq *r, const char *event, const char *dag_id, const char *run_id, const char *task_id,
               const char *extra)
{
    Store *s = api_store(r);
    char owner[160];
    snprintf(owner, sizeof owner, "api:%s", r->user ? r->user : "anonymous");
    StoreEvent e;
    memset(&e, 0, sizeof e);
    e.event = (char *)(uintptr_t)event;
    e.owner = owner;
    e.dag_id = (char *)(uintptr_t)dag_id;
    e.run_id = (char *)(uintptr_t)run_id;
    e.task_id = (char *)(uintptr_t)task_id;
    e.map_index = -1;
    e.extra = (char *)(uintptr_t)extra;
    if (!s || store_event_append(s, &e, NULL) != 0)
        log_msg(LOG_WARNING, "api", "cannot write %s by %s to the event log: %s", event, owner,
                s ? store_last_error(s) : "no store");
}
