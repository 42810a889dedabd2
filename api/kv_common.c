/* kv_common — the helpers the variable, connection, pool, event-log and asset routes share
 * (see kv_common.h). */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/kv_common.h"
#include "core/util.h"
#include "store/kv.h"
#include "store/store.h"

Store *kvc_store(ApiReq *r, ApiResp *out)
{
    Store *s = api_store(r);
    if (!s) api_store_error(out, NULL);
    return s;
}

int kvc_text_ok(const char *v)
{
    return v && store_text_valid(v, strlen(v));
}

/* ---- secrets ---------------------------------------------------------------------------------- */

/* Airflow's secrets masker (DEFAULT_SENSITIVE_FIELDS): a name containing one of these,
 * case-insensitively, holds a secret. */
int kvc_sensitive_key(const char *k)
{
    static const char *const words[] = {"access_token", "api_key",  "apikey",      "authorization",
                                        "passphrase",   "passwd",   "password",    "private_key",
                                        "secret",       "token",    "keyfile_dict", "service_account"};
    if (!k) return 0;
    char *low = xstrdup(k);
    for (char *p = low; *p; p++) *p = (char)tolower((unsigned char)*p);
    int hit = 0;
    for (size_t i = 0; i < GUST_ARRAY_LEN(words) && !hit; i++) hit = strstr(low, words[i]) != NULL;
    free(low);
    return hit;
}

/* Replace the value of every sensitive key with "***", down to max_depth levels (-1 = all).
 * Returns how many were masked. */
int kvc_mask_json(cJSON *j, int max_depth)
{
    int n = 0;
    for (cJSON *c = j ? j->child : NULL, *next; c; c = next) {
        next = c->next;
        if (c->string && kvc_sensitive_key(c->string) && !cJSON_IsNull(c)) {
            cJSON_ReplaceItemInObjectCaseSensitive(j, c->string, cJSON_CreateString(KVC_MASK));
            n++;
        } else if (max_depth != 0 && (cJSON_IsObject(c) || cJSON_IsArray(c))) {
            n += kvc_mask_json(c, max_depth < 0 ? -1 : max_depth - 1);
        }
    }
    return n;
}

/* ---- answers ---------------------------------------------------------------------------------- */

void kvc_add_int_or_null(cJSON *o, const char *name, int64_t v)
{
    if (v == STORE_KVQ_NONE)
        cJSON_AddNullToObject(o, name);
    else
        cJSON_AddNumberToObject(o, name, (double)v);
}

/* A JSON object text as an object (null when absent or not an object). */
void kvc_add_object_text(cJSON *o, const char *name, const char *text)
{
    cJSON *v = text ? cJSON_Parse(text) : NULL;
    if (!cJSON_IsObject(v)) {
        cJSON_Delete(v);
        v = cJSON_CreateNull();
    }
    cJSON_AddItemToObject(o, name, v);
}

void kvc_answer_failure(ApiResp *out, int status, const char *err)
{
    api_error(out, status ? status : 503, "%s", err);
}

int kvc_store_failure(Store *s, int *status, char *err, size_t errlen)
{
    *status = 503;
    snprintf(err, errlen, "the store is unavailable: %s", store_last_error(s));
    return -1;
}

/* An audit record's extra: {"name": value} (value NULL = just the name's JSON null). Caller frees. */
static char *audit_extra(const char *name, const char *value)
{
    cJSON *x = cJSON_CreateObject();
    api_add_str(x, name, value);
    char *t = cJSON_PrintUnformatted(x);
    cJSON_Delete(x);
    return t;
}

void kvc_audit1(ApiReq *r, const char *event, const char *name, const char *value)
{
    char *extra = audit_extra(name, value);
    api_audit(r, event, NULL, NULL, NULL, extra);
    free(extra);
}

/* ---- the request ------------------------------------------------------------------------------ */

/* An integer path parameter: 0 ok, -1 after answering 422 as FastAPI does. */
int kvc_path_int(ApiReq *r, ApiResp *out, int idx, const char *name, int64_t *v)
{
    const char *s = idx < r->nparams ? r->params[idx] : NULL;
    char *end = NULL;
    errno = 0;
    long long x = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || errno || !end || *end) {
        api_error_422(out, "path", name, "Input should be a valid integer, unable to parse string as an integer");
        return -1;
    }
    *v = x;
    return 0;
}

void kvc_multi_get(ApiReq *r, const char *name, KvcMulti *m)
{
    memset(m, 0, sizeof *m);
    const char *raw[KVC_MAX_MULTI];
    int n = api_query_all(r, name, raw, KVC_MAX_MULTI);
    for (int i = 0; i < n && m->nheld < KVC_MAX_MULTI; i++) {
        char *copy = xstrdup(raw[i]);
        m->held[m->nheld++] = copy;
        for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && m->n < KVC_MAX_MULTI;
             tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ') tok++;
            size_t l = strlen(tok);
            while (l && tok[l - 1] == ' ') tok[--l] = 0;
            if (*tok) m->v[m->n++] = tok;
        }
    }
}

void kvc_multi_free(KvcMulti *m)
{
    for (int i = 0; i < m->nheld; i++) free(m->held[i]);
    m->nheld = m->n = 0;
}

int kvc_multi_has(const KvcMulti *m, const char *v)
{
    for (int i = 0; i < m->n; i++)
        if (strcmp(m->v[i], v) == 0) return 1;
    return 0;
}

/* update_mask (?update_mask=a&update_mask=b or a,b): every name must be one of allowed[]
 * (NULL-ended). 0 ok, -1 after answering 400. */
int kvc_update_mask(ApiReq *r, ApiResp *out, const char *const *allowed, KvcMulti *m)
{
    kvc_multi_get(r, "update_mask", m);
    for (int i = 0; i < m->n; i++) {
        int ok = 0;
        for (int j = 0; allowed[j] && !ok; j++) ok = strcmp(allowed[j], m->v[i]) == 0;
        if (!ok) {
            StrBuf b = {0};
            for (int j = 0; allowed[j]; j++) sb_printf(&b, "%s%s", j ? ", " : "", allowed[j]);
            api_error(out, 400, "update_mask: '%s' is not a field that can be updated; the fields are: %s", m->v[i],
                      sb_str(&b));
            sb_free(&b);
            kvc_multi_free(m);
            return -1;
        }
    }
    return 0;
}

/* Whether a PATCH changes field: it is in the body and, when a mask is given, in the mask. */
int kvc_patch_sets(const cJSON *body, const KvcMulti *mask, const char *field)
{
    if (!cJSON_GetObjectItemCaseSensitive(body, field)) return 0;
    return mask->n == 0 || kvc_multi_has(mask, field);
}

int kvc_list_args(ApiReq *r, ApiResp *out, Store *s, StoreKvqList which, const char *const *names, int dflt,
                  char *order, size_t orderlen, StoreKvqPage *pg)
{
    int limit, offset;
    if (api_page(r, out, &limit, &offset) != 0) return -1;
    if (api_order_by(r, out, names, store_kvq_order_columns(s, which), dflt, order, orderlen) != 0) return -1;
    pg->order_sql = order;
    pg->limit = limit;
    pg->offset = offset;
    return 0;
}

/* ---- body checking, in pydantic's words -------------------------------------------------------- */

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += (*p & 0xC0) != 0x80;
    return n;
}

/* Check doc against spec (ended by a NULL name): unknown keys, required fields, types, text
 * validity, lengths and ranges. where names the body in messages ("body", or
 * "body.actions[0].entities[1]"). 0 ok, -1 after answering 422. */
int kvc_body_check(ApiResp *out, const cJSON *doc, const KvcField *spec, const char *where)
{
    if (!cJSON_IsObject(doc)) {
        api_error_422(out, where, NULL, "Input should be a valid dictionary or object");
        return -1;
    }
    for (const cJSON *it = doc->child; it; it = it->next) {
        int known = 0;
        for (const KvcField *f = spec; f->name && !known; f++) known = strcmp(f->name, it->string) == 0;
        if (!known) {
            api_error_422(out, where, it->string, "Extra inputs are not permitted");
            return -1;
        }
    }
    for (const KvcField *f = spec; f->name; f++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, f->name);
        if (!v) {
            if (f->required) {
                api_error_422(out, where, f->name, "Field required");
                return -1;
            }
            continue;
        }
        if (cJSON_IsNull(v)) {
            if (!f->nullable && f->type != KVC_ANY) {
                api_error_422(out, where, f->name, "Input should not be null");
                return -1;
            }
            continue;
        }
        switch (f->type) {
        case KVC_STR:
            if (!cJSON_IsString(v)) {
                api_error_422(out, where, f->name, "Input should be a valid string");
                return -1;
            }
            if (!kvc_text_ok(v->valuestring)) {
                api_error_422(out, where, f->name, "Input should be a valid string: not UTF-8 text");
                return -1;
            }
            if (f->maxlen && utf8_chars(v->valuestring) > f->maxlen) {
                api_error_422(out, where, f->name, "String should have at most %zu characters", f->maxlen);
                return -1;
            }
            break;
        case KVC_INT:
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || floor(v->valuedouble) != v->valuedouble) {
                api_error_422(out, where, f->name, "Input should be a valid integer");
                return -1;
            }
            if (v->valuedouble < (double)f->lo) {
                api_error_422(out, where, f->name, "Input should be greater than or equal to %lld", f->lo);
                return -1;
            }
            if (v->valuedouble > (double)f->hi) {
                api_error_422(out, where, f->name, "Input should be less than or equal to %lld", f->hi);
                return -1;
            }
            break;
        case KVC_BOOL:
            if (!cJSON_IsBool(v)) {
                api_error_422(out, where, f->name, "Input should be a valid boolean");
                return -1;
            }
            break;
        case KVC_OBJ:
            if (!cJSON_IsObject(v)) {
                api_error_422(out, where, f->name, "Input should be a valid dictionary");
                return -1;
            }
            break;
        case KVC_ANY:
            break;
        }
        /* cJSON passes bytes through unchecked: what is stored as text must be text */
        if (f->type == KVC_OBJ || f->type == KVC_ANY) {
            char *text = cJSON_PrintUnformatted(v);
            int good = kvc_text_ok(text);
            free(text);
            if (!good) {
                api_error_422(out, where, f->name, "Input should be valid JSON text: not UTF-8");
                return -1;
            }
        }
    }
    return 0;
}

const char *kvc_jstr(const cJSON *doc, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}
