/* dagvalue — reading typed values out of a DAG document, with errors that name the
 * field and the line, and the scan for things that need Python (see dagload_int.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dagload_int.h"
#include "core/duration.h"
#include "core/template.h"
#include "core/timeutil.h"
#include "core/util.h"

int dagload_valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 250) return 0;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        if (!(isalnum(*p) || *p == '_' || *p == '.' || *p == '-' || *p >= 0x80)) return 0;
    return 1;
}

/* {__type__: datetime.timedelta, days: 1, hours: 2, ...} */
static int timedelta_map(const LoadCtx *ctx, const char *field, const DocNode *v, int64_t *out_us)
{
    static const struct { const char *key; double us; } parts[] = {
        {"weeks", 604800e6}, {"days", 86400e6}, {"hours", 3600e6}, {"minutes", 60e6},
        {"seconds", 1e6},    {"milliseconds", 1e3}, {"microseconds", 1},
    };
    double total = 0;
    for (size_t i = 0; i < v->len; i++) {
        const char *k = v->keys[i]->text;
        if (strcmp(k, "__type__") == 0) continue;
        size_t j = 0;
        while (j < GUST_ARRAY_LEN(parts) && strcmp(parts[j].key, k) != 0) j++;
        double num;
        if (j == GUST_ARRAY_LEN(parts)) {
            LOAD_ERR(ctx, v->keys[i], "%s: unknown timedelta part '%s' (use days, hours, minutes, seconds)", field, k);
            return -1;
        }
        if (!doc_as_number(v->vals[i], &num) || num < 0) {
            LOAD_ERR(ctx, v->vals[i], "%s: timedelta %s must be a non-negative number", field, k);
            return -1;
        }
        total += num * parts[j].us;
    }
    if (total > 9e18) {
        LOAD_ERR(ctx, v, "%s: duration too long", field);
        return -1;
    }
    *out_us = (int64_t)total;
    return 0;
}

int dagload_duration(const LoadCtx *ctx, const char *field, const DocNode *v, int64_t *out_us)
{
    char err[256];
    if (v && v->kind == DOC_MAP) {
        const char *type = doc_str(doc_get(v, "__type__"));
        if (type && (strcmp(type, "datetime.timedelta") == 0 || strcmp(type, "timedelta") == 0))
            return timedelta_map(ctx, field, v, out_us);
        LOAD_ERR(ctx, v, "%s: expected a duration (300, \"5m\", \"1h30m\" or {__type__: datetime.timedelta, ...}), "
                         "got a mapping", field);
        return -1;
    }
    double num;
    if (doc_as_number(v, &num)) {
        if (num < 0 || num > 9e12) {
            LOAD_ERR(ctx, v, "%s: duration must be between 0 and 9e12 seconds", field);
            return -1;
        }
        *out_us = (int64_t)(num * 1e6);
        return 0;
    }
    const char *s = doc_str(v);
    if (!s || doc_is_null(v)) {
        LOAD_ERR(ctx, v, "%s: expected a duration (300, \"5m\", \"1h30m\", \"2 days\"), got %s", field,
                 doc_kind_name(v));
        return -1;
    }
    if (duration_parse(s, out_us, err, sizeof err) != 0) {
        LOAD_ERR(ctx, v, "%s: %s", field, err);
        return -1;
    }
    return 0;
}

/* "2 days" as a start_date means that long before today's midnight, as dag-factory reads it. */
static int relative_date(const LoadCtx *ctx, const char *s, int64_t *out_us)
{
    int64_t ago;
    char err[128];
    if (!isdigit((unsigned char)s[0]) || strchr(s, '-') || strchr(s, ':')) return -1;
    if (duration_parse(s, &ago, err, sizeof err) != 0) return -1;
    int64_t now = ctx->now_us ? ctx->now_us : util_now_us();
    int64_t local = tz_utc_to_local(ctx->tz, now);
    int64_t day = 86400LL * 1000000;
    int64_t midnight_local = (local >= 0 ? local / day : (local - day + 1) / day) * day;
    *out_us = tz_local_to_utc(ctx->tz, midnight_local - ago);
    return 0;
}

int dagload_datetime(const LoadCtx *ctx, const char *field, const DocNode *v, int64_t *out_us)
{
    char err[256];
    if (v && v->kind == DOC_MAP) {
        const char *type = doc_str(doc_get(v, "__type__"));
        if (!type || strcmp(type, "datetime.datetime") != 0) {
            LOAD_ERR(ctx, v, "%s: expected a date such as 2024-01-31 or 2024-01-31T05:00:00Z, got a mapping", field);
            return -1;
        }
        long long y = 0, mo = 1, d = 1, h = 0, mi = 0, s = 0;
        if (!doc_as_int(doc_get(v, "year"), &y) || (doc_get(v, "month") && !doc_as_int(doc_get(v, "month"), &mo)) ||
            (doc_get(v, "day") && !doc_as_int(doc_get(v, "day"), &d)) ||
            (doc_get(v, "hour") && !doc_as_int(doc_get(v, "hour"), &h)) ||
            (doc_get(v, "minute") && !doc_as_int(doc_get(v, "minute"), &mi)) ||
            (doc_get(v, "second") && !doc_as_int(doc_get(v, "second"), &s))) {
            LOAD_ERR(ctx, v, "%s: datetime.datetime needs integer year, month, day (and optional hour, minute, second)",
                     field);
            return -1;
        }
        char buf[64];
        snprintf(buf, sizeof buf, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lld", y, mo, d, h, mi, s);
        if (time_parse_iso(buf, ctx->tz, out_us, err, sizeof err) != 0) {
            LOAD_ERR(ctx, v, "%s: %s", field, err);
            return -1;
        }
        return 0;
    }
    const char *s = doc_str(v);
    if (!s || doc_is_null(v)) {
        LOAD_ERR(ctx, v, "%s: expected a date such as 2024-01-31, got %s", field, doc_kind_name(v));
        return -1;
    }
    if (relative_date(ctx, s, out_us) == 0) return 0;
    if (time_parse_iso(s, ctx->tz, out_us, err, sizeof err) != 0) {
        LOAD_ERR(ctx, v, "%s: %s (write 2024-01-31, 2024-01-31T05:00:00Z or a relative \"2 days\")", field, err);
        return -1;
    }
    return 0;
}

int dagload_bool(const LoadCtx *ctx, const char *field, const DocNode *v, int *out)
{
    if (doc_as_bool(v, out)) return 0;
    if (v && v->kind == DOC_SCALAR && v->quoted) {
        int b;
        DocNode tmp = *v;
        tmp.quoted = 0;
        if (doc_as_bool(&tmp, &b)) {
            LOAD_ERR(ctx, v, "%s: expected true or false, got the string \"%s\" (remove the quotes)", field, v->text);
            return -1;
        }
    }
    LOAD_ERR(ctx, v, "%s: expected true or false, got %s%s%s%s", field, doc_kind_name(v),
             doc_str(v) ? " '" : "", doc_str(v) ? doc_str(v) : "", doc_str(v) ? "'" : "");
    return -1;
}

int dagload_int(const LoadCtx *ctx, const char *field, const DocNode *v, long long min, long long max, int *out)
{
    long long n;
    if (!doc_as_int(v, &n)) {
        LOAD_ERR(ctx, v, "%s: expected an integer, got %s%s%s%s", field, doc_kind_name(v), doc_str(v) ? " '" : "",
                 doc_str(v) ? doc_str(v) : "", doc_str(v) ? "'" : "");
        return -1;
    }
    if (n < min || n > max) {
        LOAD_ERR(ctx, v, "%s: %lld is out of range %lld-%lld", field, n, min, max);
        return -1;
    }
    *out = (int)n;
    return 0;
}

const char *dagload_string(const LoadCtx *ctx, const char *field, const DocNode *v)
{
    if (!v || v->kind != DOC_SCALAR) {
        LOAD_ERR(ctx, v, "%s: expected a string, got %s", field, doc_kind_name(v));
        return NULL;
    }
    return v->text;
}

int dagload_strings(const LoadCtx *ctx, const char *field, const DocNode *v, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (doc_is_null(v)) return 0;
    if (v->kind == DOC_SCALAR) {
        *out = xmalloc(sizeof **out);
        (*out)[0] = xstrdup(v->text);
        *n = 1;
        return 0;
    }
    if (v->kind != DOC_SEQ) {
        LOAD_ERR(ctx, v, "%s: expected a string or a list of strings, got %s", field, doc_kind_name(v));
        return -1;
    }
    for (size_t i = 0; i < v->len; i++) {
        if (v->vals[i]->kind != DOC_SCALAR || doc_is_null(v->vals[i])) {
            LOAD_ERR(ctx, v->vals[i], "%s: item %zu must be a string, got %s", field, i + 1, doc_kind_name(v->vals[i]));
            for (size_t j = 0; j < *n; j++) free((*out)[j]);
            free(*out);
            *out = NULL;
            *n = 0;
            return -1;
        }
    }
    *out = xmalloc(v->len * sizeof **out);
    for (size_t i = 0; i < v->len; i++) (*out)[i] = xstrdup(v->vals[i]->text);
    *n = v->len;
    return 0;
}

cJSON *dagload_to_json(const DocNode *v)
{
    if (!v || doc_is_null(v)) return cJSON_CreateNull();
    if (v->kind == DOC_SEQ) {
        cJSON *a = cJSON_CreateArray();
        for (size_t i = 0; i < v->len; i++) cJSON_AddItemToArray(a, dagload_to_json(v->vals[i]));
        return a;
    }
    if (v->kind == DOC_MAP) {
        cJSON *o = cJSON_CreateObject();
        for (size_t i = 0; i < v->len; i++) cJSON_AddItemToObject(o, v->keys[i]->text, dagload_to_json(v->vals[i]));
        return o;
    }
    int b;
    long long n;
    double d;
    if (doc_as_bool(v, &b)) return cJSON_CreateBool(b);
    if (doc_as_int(v, &n)) return cJSON_CreateNumber((double)n);
    if (doc_as_number(v, &d)) return cJSON_CreateNumber(d);
    return cJSON_CreateString(v->text);
}

int dagload_templates(const LoadCtx *ctx, const char *field, const DocNode *v)
{
    if (!v) return 0;
    if (v->kind == DOC_SCALAR) {
        char err[256];
        if (!strstr(v->text, "{{") && !strstr(v->text, "{%") && !strstr(v->text, "{#")) return 0;
        if (template_check(v->text, err, sizeof err) != 0) {
            LOAD_ERR(ctx, v, "%s: %s", field, err);
            return -1;
        }
        return 0;
    }
    int rc = 0;
    for (size_t i = 0; i < v->len; i++)
        if (dagload_templates(ctx, field, v->vals[i]) != 0) rc = -1;
    return rc;
}

/* ---- datasets ---------------------------------------------------------------------- */

static int is_asset_type(const char *t)
{
    static const char *const types[] = {
        "airflow.sdk.Asset", "airflow.sdk.definitions.asset.Asset", "airflow.assets.Asset", "airflow.datasets.Dataset",
        "airflow.Dataset", "Dataset", "Asset",
    };
    for (size_t i = 0; i < GUST_ARRAY_LEN(types); i++)
        if (strcmp(t, types[i]) == 0) return 1;
    return 0;
}

/* name → uri pairs from a dataset definitions file ({datasets: [{name, uri}]}). */
typedef struct AssetNames {
    DocNode *doc;  /* owned; NULL if no file */
} AssetNames;

static const char *asset_lookup(const AssetNames *names, const char *name)
{
    const DocNode *list = names->doc ? doc_get(names->doc, "datasets") : NULL;
    for (size_t i = 0; list && list->kind == DOC_SEQ && i < list->len; i++) {
        const char *n = doc_str(doc_get(list->vals[i], "name"));
        if (n && strcmp(n, name) == 0) {
            const char *uri = doc_str(doc_get(list->vals[i], "uri"));
            return uri ? uri : name;
        }
    }
    return name;
}

static char *expand_root(const LoadCtx *ctx, const char *path)
{
    static const char var[] = "$CONFIG_ROOT_DIR";
    const char *at = strstr(path, var);
    if (!at && path[0] != '/') { /* relative: to the folder of the DAG file that names it */
        const char *slash = strrchr(ctx->file, '/');
        return slash ? xasprintf("%.*s/%s", (int)(slash - ctx->file), ctx->file, path) : xstrdup(path);
    }
    if (!at) return xstrdup(path);
    return xasprintf("%.*s%s%s", (int)(at - path), path, ctx->root, at + sizeof var - 1);
}

static int load_asset_names(const LoadCtx *ctx, const DocNode *file, AssetNames *names)
{
    names->doc = NULL;
    if (!file) return 0;
    const char *p = doc_str(file);
    if (!p) {
        LOAD_ERR(ctx, file, "datasets file: expected a path");
        return -1;
    }
    if (ctx->no_file_refs) {
        LOAD_ERR(ctx, file, "datasets file: %s is not read when a DAG is validated from text (put the file "
                            "beside the DAG in the dags folder and validate there)", p);
        return -1;
    }
    char *path = expand_root(ctx, p);
    char err[512];
    size_t len;
    char *text = util_read_file(path, &len, err, sizeof err);
    if (!text) {
        LOAD_ERR(ctx, file, "datasets file: %s", err);
        free(path);
        return -1;
    }
    DocError derr;
    names->doc = doc_parse(path, text, len, &derr);
    free(text);
    if (!names->doc) {
        LOAD_ERR(ctx, file, "datasets file %s:%d: %s", path, derr.line, derr.message);
        free(path);
        return -1;
    }
    free(path);
    return 0;
}

/* "((a & b) | c)" — & binds tighter than |, as in Airflow's asset expressions. */
typedef struct CondParser {
    const char *p;
    const AssetNames *names;
    int depth;
} CondParser;

static cJSON *cond_or(CondParser *cp);

static void cond_ws(CondParser *cp)
{
    while (isspace((unsigned char)*cp->p)) cp->p++;
}

static cJSON *cond_atom(CondParser *cp)
{
    cond_ws(cp);
    if (*cp->p == '(') {
        if (++cp->depth > 32) return NULL;
        cp->p++;
        cJSON *inner = cond_or(cp);
        cond_ws(cp);
        if (!inner || *cp->p != ')') {
            cJSON_Delete(inner);
            return NULL;
        }
        cp->p++;
        cp->depth--;
        return inner;
    }
    const char *start = cp->p;
    while (*cp->p && !isspace((unsigned char)*cp->p) && !strchr("()&|", *cp->p)) cp->p++;
    if (cp->p == start) return NULL;
    char *name = xstrndup(start, (size_t)(cp->p - start));
    cJSON *s = cJSON_CreateString(asset_lookup(cp->names, name));
    free(name);
    return s;
}

static cJSON *cond_chain(CondParser *cp, char op, cJSON *(*next)(CondParser *))
{
    cJSON *first = next(cp);
    if (!first) return NULL;
    cond_ws(cp);
    if (*cp->p != op) return first;
    cJSON *arr = cJSON_CreateArray();
    cJSON_AddItemToArray(arr, first);
    while (*cp->p == op) {
        cp->p++;
        cJSON *item = next(cp);
        if (!item) {
            cJSON_Delete(arr);
            return NULL;
        }
        cJSON_AddItemToArray(arr, item);
        cond_ws(cp);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, op == '&' ? "all" : "any", arr);
    return o;
}

static cJSON *cond_and(CondParser *cp)
{
    return cond_chain(cp, '&', cond_atom);
}

static cJSON *cond_or(CondParser *cp)
{
    return cond_chain(cp, '|', cond_and);
}

static cJSON *assets_from(const LoadCtx *ctx, const char *field, const DocNode *v, const AssetNames *names, int depth)
{
    if (depth > 32) {
        LOAD_ERR(ctx, v, "%s: dataset condition nested too deeply", field);
        return NULL;
    }
    if (v && v->kind == DOC_SCALAR && !doc_is_null(v)) {
        if (strpbrk(v->text, "&|()")) {
            CondParser cp = {v->text, names, 0};
            cJSON *c = cond_or(&cp);
            cond_ws(&cp);
            if (!c || *cp.p) {
                cJSON_Delete(c);
                LOAD_ERR(ctx, v, "%s: invalid dataset condition '%s' (write e.g. \"(a & b) | c\")", field, v->text);
                return NULL;
            }
            return c;
        }
        return cJSON_CreateString(asset_lookup(names, v->text));
    }
    if (v && v->kind == DOC_SEQ) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < v->len; i++) {
            cJSON *c = assets_from(ctx, field, v->vals[i], names, depth + 1);
            if (!c) {
                cJSON_Delete(arr);
                return NULL;
            }
            cJSON_AddItemToArray(arr, c);
        }
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "all", arr);
        return o;
    }
    if (v && v->kind == DOC_MAP) {
        const char *type = doc_str(doc_get(v, "__type__"));
        if (type && is_asset_type(type)) {
            const char *uri = doc_str(doc_get(v, "uri"));
            if (!uri) uri = doc_str(doc_get(v, "name"));
            if (!uri) {
                LOAD_ERR(ctx, v, "%s: %s needs a uri", field, type);
                return NULL;
            }
            return cJSON_CreateString(uri);
        }
        const DocNode *any = doc_get(v, "__or__"), *all = doc_get(v, "__and__");
        if ((any || all) && v->len == 1) {
            const DocNode *list = any ? any : all;
            if (list->kind != DOC_SEQ) {
                LOAD_ERR(ctx, list, "%s: %s needs a list", field, any ? "__or__" : "__and__");
                return NULL;
            }
            cJSON *arr = cJSON_CreateArray();
            for (size_t i = 0; i < list->len; i++) {
                cJSON *c = assets_from(ctx, field, list->vals[i], names, depth + 1);
                if (!c) {
                    cJSON_Delete(arr);
                    return NULL;
                }
                cJSON_AddItemToArray(arr, c);
            }
            cJSON *o = cJSON_CreateObject();
            cJSON_AddItemToObject(o, any ? "any" : "all", arr);
            return o;
        }
    }
    LOAD_ERR(ctx, v, "%s: expected dataset URIs (a list, a condition string, __or__/__and__, or {file, datasets}), "
                     "got %s", field, doc_kind_name(v));
    return NULL;
}

cJSON *dagload_assets(const LoadCtx *ctx, const char *field, const DocNode *v)
{
    AssetNames names = {NULL};
    const DocNode *datasets = v;
    if (v && v->kind == DOC_MAP && doc_get(v, "datasets")) {
        for (size_t i = 0; i < v->len; i++) {
            const char *k = v->keys[i]->text;
            if (strcmp(k, "datasets") && strcmp(k, "file") && strcmp(k, "timetable")) {
                LOAD_ERR(ctx, v->keys[i], "%s: unknown key '%s' (expected datasets, file or timetable)", field, k);
                return NULL;
            }
        }
        if (load_asset_names(ctx, doc_get(v, "file"), &names) != 0) return NULL;
        datasets = doc_get(v, "datasets");
    }
    cJSON *c = assets_from(ctx, field, datasets, &names, 0);
    doc_free(names.doc);
    return c;
}

static void collect_uris(const cJSON *c, char ***out, size_t *n)
{
    if (cJSON_IsString(c)) {
        for (size_t i = 0; i < *n; i++)
            if (strcmp((*out)[i], c->valuestring) == 0) return;
        *out = xrealloc(*out, (*n + 1) * sizeof **out);
        (*out)[(*n)++] = xstrdup(c->valuestring);
        return;
    }
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(c, "all");
    if (!arr) arr = cJSON_GetObjectItemCaseSensitive(c, "any");
    const cJSON *item;
    cJSON_ArrayForEach(item, arr) collect_uris(item, out, n);
}

void dagload_asset_uris(const cJSON *cond, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (cond) collect_uris(cond, out, n);
}

/* ---- the "needs Python" scan ----------------------------------------------------------- */

static int allowed_type(const char *t)
{
    return is_asset_type(t) || strcmp(t, "datetime.timedelta") == 0 || strcmp(t, "timedelta") == 0 ||
           strcmp(t, "datetime.datetime") == 0 || strcmp(t, "airflow.timetables.trigger.CronTriggerTimetable") == 0;
}

static const char *python_key(const char *k)
{
    static const char *const keys[] = {
        "python_callable", "python_callable_name", "python_callable_file", "decorator", "op_args", "op_kwargs",
        "templates_dict", "execution_date_fn", "response_check", "response_filter", "user_defined_macros",
        "user_defined_filters", "sla_miss_callback", "multiple_outputs", "doc_md_python_callable_name",
        "doc_md_python_callable_file", "doc_md_python_arguments", "auth_type",
    };
    for (size_t i = 0; i < GUST_ARRAY_LEN(keys); i++)
        if (strcmp(k, keys[i]) == 0) return "is Python code";
    if (strncmp(k, "on_", 3) == 0 && strstr(k, "callback")) return "is a Python callback";
    if (strcmp(k, "expand") == 0 || strcmp(k, "partial") == 0 || strcmp(k, "map_index_template") == 0)
        return "is dynamic task mapping, which builds tasks with Python at run time";
    return NULL;
}

static int is_user_data(const char *k)
{
    static const char *const keys[] = {"params", "env", "data", "headers", "conf", "request_params",
                                       "extra_options", "doc_md", "description", "bash_command"};
    for (size_t i = 0; i < GUST_ARRAY_LEN(keys); i++)
        if (strcmp(k, keys[i]) == 0) return 1;
    return 0;
}

static int scan(const LoadCtx *ctx, const DocNode *v, int depth)
{
    if (!v || v->kind == DOC_SCALAR || depth > DOC_MAX_DEPTH) return 0;
    int found = 0;
    for (size_t i = 0; i < v->len; i++) {
        if (v->kind == DOC_MAP) {
            const char *k = v->keys[i]->text;
            const char *why = python_key(k);
            if (why) {
                LOAD_ERR(ctx, v->keys[i], "'%s' %s, which gust does not run; use a bash task or a plugin", k, why);
                found++;
                continue;
            }
            if (strcmp(k, "__type__") == 0) {
                const char *t = doc_str(v->vals[i]);
                if (t && !allowed_type(t)) {
                    LOAD_ERR(ctx, v->keys[i],
                             "'__type__: %s' is a Python object, which gust does not run; "
                             "only datetime.timedelta, datetime.datetime, Asset/Dataset and CronTriggerTimetable are "
                             "understood", t);
                    found++;
                    return found; /* its fields are that object's, not worth reporting */
                }
            }
        }
        /* params, env, request bodies and conf are the user's data: their keys are not fields */
        if (v->kind == DOC_MAP && is_user_data(v->keys[i]->text)) continue;
        found += scan(ctx, v->vals[i], depth + 1);
    }
    return found;
}

int dagload_python_scan(const LoadCtx *ctx, const DocNode *cfg)
{
    return scan(ctx, cfg, 0);
}
