/* template_render — evaluating parsed templates against a TemplateContext (see template.h).
 *
 * Values are cJSON trees. An evaluation yields a Val that either owns its tree or borrows it
 * from something that outlives the render (a literal in the template, or the per-render cache
 * of context answers), so lookups like params.x.y copy nothing. Lists built by the template
 * hold cJSON references to borrowed items for the same reason.
 *
 * Every string the renderer builds is counted against a budget, so that no template
 * (replace('', ...) chains, big lists of big values) can make a worker allocate without bound. */
#include "core/template.h"

#include "core/template_ast.h"
#include "core/util.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RENDER_BUDGET (4 * (size_t)TEMPLATE_MAX_OUTPUT) /* bytes of values built in one render */

typedef struct Val {
    cJSON *j;             /* the value; NULL = undefined (or error, see Eval.failed) */
    int owned;            /* 1: j belongs to this Val */
    const TplNode *undef; /* when undefined: the expression, for the message */
} Val;

typedef struct CacheEntry {
    char kind; /* 'n' lookup, 'v' var_get, 'j' parsed var, 'c' conn_get, 'x' xcom_pull */
    char *k1, *k2;
    cJSON *v;  /* the answer, NULL when there is none */
} CacheEntry;

typedef struct Eval {
    const TemplateContext *ctx;
    int failed;
    char *err;
    size_t errlen;
    size_t spent;     /* bytes counted against RENDER_BUDGET */
    CacheEntry *cache; /* every question asked of ctx during this render */
    size_t ncache, capcache;
} Eval;

static void rerr(Eval *E, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void rerr(Eval *E, const char *fmt, ...)
{
    if (E->failed) return;
    E->failed = 1;
    if (!E->err || !E->errlen) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(E->err, E->errlen, fmt, ap);
    va_end(ap);
}

static Val v_own(cJSON *j) { return (Val){j, 1, NULL}; }
static Val v_borrow(cJSON *j) { return (Val){j, 0, NULL}; }
static Val v_undef(const TplNode *n) { return (Val){NULL, 0, n}; }
static Val v_fail(void) { return (Val){NULL, 0, NULL}; }

static void v_free(Val *v)
{
    if (v->owned) cJSON_Delete(v->j);
    v->j = NULL;
    v->owned = 0;
}

/* A member of parent as a Val. A child of an owned tree is detached so it can outlive it;
 * a child reached through a cJSON reference belongs to borrowed data and is borrowed too. */
static Val v_child(Val *parent, cJSON *child, const TplNode *n)
{
    if (!child) {
        v_free(parent);
        return v_undef(n);
    }
    if (parent->owned && !(parent->j->type & cJSON_IsReference)) {
        cJSON_DetachItemViaPointer(parent->j, child);
        cJSON_Delete(parent->j);
        parent->j = NULL;
        parent->owned = 0;
        return v_own(child);
    }
    v_free(parent);
    return v_borrow(child);
}

/* Fails (with the undefined variable's name) unless v holds a value. */
static int need(Eval *E, const Val *v, const TplNode *n)
{
    if (E->failed) return -1;
    if (v->j) return 0;
    StrBuf path = {0};
    tpl_node_path(v->undef ? v->undef : n, &path);
    rerr(E, "undefined variable '%s'", sb_str(&path));
    sb_free(&path);
    return -1;
}

static int spend(Eval *E, size_t bytes)
{
    if (bytes > TEMPLATE_MAX_OUTPUT) {
        rerr(E, "value is too large (over %u bytes)", TEMPLATE_MAX_OUTPUT);
        return -1;
    }
    E->spent += bytes;
    if (E->spent > RENDER_BUDGET) {
        rerr(E, "template builds too much data (over %zu bytes)", RENDER_BUDGET);
        return -1;
    }
    return 0;
}

/* A new string value from b (which is freed). */
static Val str_val(Eval *E, StrBuf *b)
{
    if (spend(E, b->len) < 0) {
        sb_free(b);
        return v_fail();
    }
    cJSON *s = cJSON_CreateString(sb_str(b));
    sb_free(b);
    return v_own(s);
}

/* ---- the context, asked at most once per question ---- */

static cJSON *ask(Eval *E, char kind, const char *k1, const char *k2)
{
    for (size_t i = 0; i < E->ncache; i++) {
        CacheEntry *c = &E->cache[i];
        if (c->kind == kind && strcmp(c->k1, k1) == 0 && strcmp(c->k2 ? c->k2 : "", k2 ? k2 : "") == 0)
            return c->v;
    }
    const TemplateContext *x = E->ctx;
    cJSON *v = NULL;
    if (x) {
        if (kind == 'n' && x->lookup) v = x->lookup(x->ud, k1);
        if (kind == 'v' && x->var_get) v = x->var_get(x->ud, k1);
        if (kind == 'c' && x->conn_get) v = x->conn_get(x->ud, k1);
        if (kind == 'x' && x->xcom_pull) v = x->xcom_pull(x->ud, k1, k2);
    }
    if (E->ncache == E->capcache) {
        E->capcache = E->capcache ? E->capcache * 2 : 8;
        E->cache = xrealloc(E->cache, E->capcache * sizeof *E->cache);
    }
    E->cache[E->ncache++] = (CacheEntry){kind, xstrdup(k1), xstrdup(k2), v};
    return v;
}

static void cache_put(Eval *E, char kind, const char *k1, cJSON *v)
{
    if (E->ncache == E->capcache) {
        E->capcache = E->capcache ? E->capcache * 2 : 8;
        E->cache = xrealloc(E->cache, E->capcache * sizeof *E->cache);
    }
    E->cache[E->ncache++] = (CacheEntry){kind, xstrdup(k1), NULL, v};
}

/* Variable key, as var.value (raw) or var.json (parsed). NULL = no such variable. */
static cJSON *var_value(Eval *E, const char *key, int json)
{
    cJSON *raw = ask(E, 'v', key, NULL);
    if (!raw || !json || !cJSON_IsString(raw)) return raw;
    for (size_t i = 0; i < E->ncache; i++)
        if (E->cache[i].kind == 'j' && strcmp(E->cache[i].k1, key) == 0) return E->cache[i].v;
    cJSON *parsed = cJSON_ParseWithOpts(raw->valuestring, NULL, 1);
    if (!parsed) {
        rerr(E, "var '%s' is not valid JSON", key);
        return NULL;
    }
    cache_put(E, 'j', key, parsed);
    return parsed;
}

/* ---- printing values the way Python/Jinja does ---- */

/* What {{ v }} prints: str() of the value, with JSON for containers. */
static int to_text(Eval *E, const cJSON *v, StrBuf *b)
{
    switch (v->type & 0xFF) {
    case cJSON_String:
    case cJSON_Raw: sb_append(b, v->valuestring ? v->valuestring : ""); break;
    case cJSON_Number: tpl_py_number(v->valuedouble, b); break;
    case cJSON_True: sb_append(b, "True"); break;
    case cJSON_False: sb_append(b, "False"); break;
    case cJSON_NULL: sb_append(b, "None"); break;
    default:
        if (tpl_json_dump(v, b, 0) < 0) break;
    }
    if (b->len > TEMPLATE_MAX_OUTPUT) {
        rerr(E, "value is too large (over %u bytes)", TEMPLATE_MAX_OUTPUT);
        return -1;
    }
    return 0;
}

static int is_integral(const cJSON *v)
{
    return cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble == floor(v->valuedouble);
}


/* ---- strings ---- */

/* str(v) as a new StrBuf; -1 on error. */
static int text_of(Eval *E, const cJSON *v, StrBuf *b)
{
    sb_append(b, "");
    if (to_text(E, v, b) < 0) {
        sb_free(b);
        return -1;
    }
    return 0;
}

/* Knuth-Morris-Pratt: the next non-overlapping match of pat (length m, failure table fail)
 * in s[from, n), or n. Linear, unlike repeated strstr (quadratic under ASan's interceptors). */
static size_t kmp_next(const char *s, size_t n, size_t from, const char *pat, size_t m, const size_t *fail)
{
    size_t j = 0;
    for (size_t i = from; i < n; i++) {
        while (j && s[i] != pat[j]) j = fail[j - 1];
        if (s[i] == pat[j] && ++j == m) return i + 1 - m;
    }
    return n;
}

/* Python's str.replace(old, new, count), count < 0 meaning all; "" matches between characters. */
static Val py_replace(Eval *E, const char *s, const char *old, const char *new_, double count)
{
    size_t n = strlen(s), lo = strlen(old), ln = strlen(new_);
    size_t limit = count < 0 ? (size_t)-1 : count > (double)n + 1 ? n + 1 : (size_t)count;
    size_t hits = 0;
    size_t *fail = xcalloc(lo ? lo : 1, sizeof *fail);
    for (size_t i = 1, k = 0; i < lo; i++) {
        while (k && old[i] != old[k]) k = fail[k - 1];
        if (old[i] == old[k]) k++;
        fail[i] = k;
    }
    if (lo == 0) {
        for (size_t i = 0; hits < limit; i += tpl_utf8_step(s, n, i)) {
            hits++;
            if (i >= n) break;
        }
    } else {
        for (size_t q = kmp_next(s, n, 0, old, lo, fail); q < n && hits < limit;
             q = kmp_next(s, n, q + lo, old, lo, fail))
            hits++;
    }
    double size = (double)n + (double)hits * ((double)ln - (double)lo);
    if (size > TEMPLATE_MAX_OUTPUT || spend(E, (size_t)size) < 0) {
        rerr(E, "value is too large (over %u bytes)", TEMPLATE_MAX_OUTPUT);
        free(fail);
        return v_fail();
    }
    /* The size is known: fill one buffer instead of growing a StrBuf match by match. */
    char *out = xmalloc((size_t)size + 1), *w = out;
    size_t i = 0;
    for (size_t done = 0; done < hits; done++) {
        size_t q = lo ? kmp_next(s, n, i, old, lo, fail) : i;
        memcpy(w, s + i, q - i);
        w += q - i;
        memcpy(w, new_, ln);
        w += ln;
        if (lo) {
            i = q + lo;
        } else {
            if (i >= n) break;
            size_t step = tpl_utf8_step(s, n, i);
            memcpy(w, s + i, step);
            w += step;
            i += step;
        }
    }
    memcpy(w, s + i, n > i ? n - i : 0);
    w += n > i ? n - i : 0;
    *w = '\0';
    free(fail);
    cJSON *r = cJSON_CreateString(out);
    free(out);
    return v_own(r);
}

static const char *skip_ws(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r' || *s == '\f' || *s == '\v') s++;
    return s;
}

/* Python int(s) / float(s) of a string: surrounding whitespace, single underscores between
 * digits. 0 and *out on success, -1 if Python would raise ValueError. */
static int py_parse_number(const char *s, int allow_float, double *out)
{
    s = skip_ws(s);
    size_t n = strlen(s);
    while (n && strchr(" \t\n\r\f\v", s[n - 1])) n--;
    if (n == 0 || n > 400) return -1;
    char buf[408];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '_') {
            if (!i || i + 1 >= n || !strchr("0123456789", s[i - 1]) || !strchr("0123456789", s[i + 1])) return -1;
            continue;
        }
        if (!allow_float && !(c >= '0' && c <= '9') && !((c == '+' || c == '-') && i == 0)) return -1;
        if (strchr("xXpP(", c)) return -1; /* strtod's hex floats and nan(...) are not Python's */
        buf[k++] = c;
    }
    buf[k] = '\0';
    char *end;
    double d = strtod(buf, &end);
    if (end == buf || *end || !strpbrk(buf, "0123456789iInN")) return -1;
    *out = d;
    return 0;
}

/* ---- evaluation ---- */

static Val eval(Eval *E, const TplNode *n);

static Val eval_defined(Eval *E, const TplNode *n)
{
    Val v = eval(E, n);
    if (need(E, &v, n) < 0) v_free(&v);
    return v;
}

/* A string argument; on error the message says what it was for. */
static int want_string(Eval *E, const Val *v, const char *what)
{
    if (E->failed) return -1;
    if (cJSON_IsString(v->j)) return 0;
    rerr(E, "%s must be a string, not %s", what, tpl_py_type(v->j));
    return -1;
}

static Val do_xcom_pull(Eval *E, const TplNode *n)
{
    Val ids = eval_defined(E, n->args[TPL_XCOM_TASK_IDS]);
    Val key = {0};
    if (n->args[TPL_XCOM_KEY]) key = eval_defined(E, n->args[TPL_XCOM_KEY]);
    if (E->failed || (key.j && want_string(E, &key, "xcom_pull key") < 0)) goto fail;
    const char *k = key.j ? key.j->valuestring : "return_value";
    if (cJSON_IsString(ids.j)) {
        cJSON *r = ask(E, 'x', ids.j->valuestring, k);
        v_free(&ids);
        v_free(&key);
        if (r) return v_borrow(r);
        if (n->args[TPL_XCOM_DEFAULT]) return eval_defined(E, n->args[TPL_XCOM_DEFAULT]);
        return v_own(cJSON_CreateNull());
    }
    if (!cJSON_IsArray(ids.j)) {
        rerr(E, "xcom_pull task_ids must be a string or a list of strings, not %s", tpl_py_type(ids.j));
        goto fail;
    }
    cJSON *out = cJSON_CreateArray(), *id;
    cJSON_ArrayForEach(id, ids.j)
    {
        if (!cJSON_IsString(id)) {
            rerr(E, "xcom_pull task_ids must be a string or a list of strings");
            cJSON_Delete(out);
            goto fail;
        }
        cJSON *r = ask(E, 'x', id->valuestring, k);
        if (r) cJSON_AddItemReferenceToArray(out, r);
    }
    v_free(&ids);
    v_free(&key);
    return v_own(out);
fail:
    v_free(&ids);
    v_free(&key);
    return v_fail();
}

static Val do_call(Eval *E, const TplNode *n)
{
    char err[256];
    switch ((TplFunc)n->op) {
    case TPL_FN_XCOM_PULL: return do_xcom_pull(E, n);
    case TPL_FN_DS_ADD: {
        Val ds = eval_defined(E, n->args[0]);
        Val days = eval_defined(E, n->args[1]);
        Val r = v_fail();
        StrBuf b = {0};
        if (E->failed) {
        } else if (!cJSON_IsNumber(days.j) && !cJSON_IsBool(days.j)) {
            rerr(E, "macros.ds_add: days must be a number, not %s", tpl_py_type(days.j));
        } else if (cJSON_IsFalse(days.j) || (cJSON_IsNumber(days.j) && days.j->valuedouble == 0)) {
            if (text_of(E, ds.j, &b) == 0) r = str_val(E, &b); /* Airflow returns ds untouched */
        } else if (want_string(E, &ds, "macros.ds_add: ds") == 0) {
            char out[48];
            double d = cJSON_IsTrue(days.j) ? 1 : days.j->valuedouble;
            if (tpl_ds_add(ds.j->valuestring, d, out, err, sizeof err) < 0)
                rerr(E, "macros.ds_add: %s", err);
            else
                r = v_own(cJSON_CreateString(out));
        }
        v_free(&ds);
        v_free(&days);
        return r;
    }
    case TPL_FN_DS_FORMAT: {
        Val a[3];
        for (int i = 0; i < 3; i++) a[i] = eval_defined(E, n->args[i]);
        Val r = v_fail();
        StrBuf ds = {0};
        if (!E->failed && text_of(E, a[0].j, &ds) == 0 &&
            want_string(E, &a[1], "macros.ds_format: input_format") == 0 &&
            want_string(E, &a[2], "macros.ds_format: output_format") == 0) {
            char *s = tpl_ds_format(sb_str(&ds), a[1].j->valuestring, a[2].j->valuestring, err, sizeof err);
            if (!s) {
                rerr(E, "macros.ds_format: %s", err);
            } else {
                StrBuf b = {0};
                sb_append(&b, s);
                free(s);
                r = str_val(E, &b);
            }
        }
        sb_free(&ds);
        for (int i = 0; i < 3; i++) v_free(&a[i]);
        return r;
    }
    case TPL_FN_DICT_GET: {
        Val d = eval_defined(E, n->a);
        Val key = eval_defined(E, n->args[0]);
        if (!E->failed && !cJSON_IsObject(d.j)) rerr(E, "'%s' object has no attribute 'get'", tpl_py_type(d.j));
        if (E->failed) {
            v_free(&d);
            v_free(&key);
            return v_fail();
        }
        cJSON *c = cJSON_IsString(key.j) ? cJSON_GetObjectItemCaseSensitive(d.j, key.j->valuestring) : NULL;
        v_free(&key);
        if (c) return v_child(&d, c, n);
        v_free(&d);
        return n->args[1] ? eval_defined(E, n->args[1]) : v_own(cJSON_CreateNull());
    }
    case TPL_FN_VAR_GET: {
        Val key = eval_defined(E, n->args[0]);
        if (want_string(E, &key, n->flag ? "var.json.get key" : "var.value.get key") < 0) {
            v_free(&key);
            return v_fail();
        }
        cJSON *v = var_value(E, key.j->valuestring, n->flag);
        if (!v && !E->failed) {
            if (n->args[1]) {
                v_free(&key);
                return eval_defined(E, n->args[1]);
            }
            rerr(E, "var '%s' not found", key.j->valuestring);
        }
        v_free(&key);
        return v ? v_borrow(v) : v_fail();
    }
    }
    return v_fail();
}

/* Airflow's ds / ds_nodash filters, applied to an ISO 8601 date or datetime string. */
static Val do_ds_filter(Eval *E, const Val *v, int nodash)
{
    if (cJSON_IsNull(v->j)) return v_own(cJSON_CreateNull());
    const char *s = cJSON_IsString(v->j) ? v->j->valuestring : "";
    int ok = strlen(s) >= 10 && s[4] == '-' && s[7] == '-';
    for (int i = 0; ok && i < 10; i++)
        if (i != 4 && i != 7 && !(s[i] >= '0' && s[i] <= '9')) ok = 0;
    if (!ok) {
        rerr(E, "filter '%s' needs a date or datetime string, got %s", nodash ? "ds_nodash" : "ds", tpl_py_type(v->j));
        return v_fail();
    }
    char out[11];
    if (nodash)
        snprintf(out, sizeof out, "%.4s%.2s%.2s", s, s + 5, s + 8);
    else
        snprintf(out, sizeof out, "%.10s", s);
    return v_own(cJSON_CreateString(out));
}

static Val do_int_float(Eval *E, const TplNode *f, Val *v)
{
    int is_int = f->op == TPL_F_INT;
    double d = 0;
    int ok = 1;
    if (cJSON_IsNumber(v->j)) {
        d = v->j->valuedouble;
    } else if (cJSON_IsBool(v->j)) {
        d = cJSON_IsTrue(v->j);
    } else if (cJSON_IsString(v->j)) {
        int base = 10;
        if (is_int && f->args[1]) {
            Val b = eval_defined(E, f->args[1]);
            if (E->failed) return v_fail();
            if (!is_integral(b.j) || (b.j->valuedouble != 0 && (b.j->valuedouble < 2 || b.j->valuedouble > 36))) {
                rerr(E, "filter 'int': base must be 0 or between 2 and 36");
                v_free(&b);
                return v_fail();
            }
            base = (int)b.j->valuedouble;
            v_free(&b);
        }
        ok = 0;
        if (is_int && base != 10) {
            const char *s = skip_ws(v->j->valuestring);
            char *end;
            long long x = strtoll(s, &end, base);
            if (end != s && !*skip_ws(end)) {
                d = (double)x;
                ok = 1;
            }
        }
        if (!ok && is_int && py_parse_number(v->j->valuestring, 0, &d) == 0) ok = 1;
        if (!ok && py_parse_number(v->j->valuestring, 1, &d) == 0) ok = 1;
    } else {
        ok = 0;
    }
    if (ok && is_int && isnan(d)) ok = 0;
    if (ok && is_int && isinf(d)) {
        rerr(E, "filter 'int': cannot convert float infinity to integer");
        return v_fail();
    }
    if (!ok) {
        if (f->args[0]) return eval_defined(E, f->args[0]);
        return v_own(cJSON_CreateNumber(0));
    }
    return v_own(cJSON_CreateNumber(is_int ? trunc(d) : d));
}

/* Items of a list, keys of a dict or characters of a string, as Python iterates them. */
static int iterate(Eval *E, const Val *v, const char *filter, int (*fn)(Eval *, cJSON *, const char *, size_t, void *),
                   void *ud)
{
    const cJSON *j = v->j;
    if (cJSON_IsArray(j) || cJSON_IsObject(j)) {
        cJSON *c;
        cJSON_ArrayForEach(c, j)
        {
            const char *key = c->string ? c->string : "";
            int rc = cJSON_IsArray(j) ? fn(E, c, NULL, 0, ud) : fn(E, NULL, key, strlen(key), ud);
            if (rc) return rc;
        }
        return 0;
    }
    if (cJSON_IsString(j)) {
        const char *s = j->valuestring;
        size_t n = strlen(s);
        for (size_t i = 0; i < n;) {
            size_t step = tpl_utf8_step(s, n, i);
            int rc = fn(E, NULL, s + i, step, ud);
            if (rc) return rc;
            i += step;
        }
        return 0;
    }
    rerr(E, "filter '%s': '%s' object is not iterable", filter, tpl_py_type(j));
    return -1;
}

typedef struct JoinState {
    StrBuf out;
    const char *sep;
    int first;
} JoinState;

static int join_one(Eval *E, cJSON *item, const char *s, size_t n, void *ud)
{
    JoinState *js = ud;
    if (!js->first) sb_append(&js->out, js->sep);
    js->first = 0;
    if (item) return to_text(E, item, &js->out);
    sb_appendn(&js->out, s, n);
    if (js->out.len > TEMPLATE_MAX_OUTPUT) {
        rerr(E, "value is too large (over %u bytes)", TEMPLATE_MAX_OUTPUT);
        return -1;
    }
    return 0;
}

typedef struct PickState {
    cJSON *item;   /* list element picked */
    const char *s; /* or string/key bytes picked */
    size_t n;
    int last;      /* keep going to the end */
    int found;
} PickState;

static int pick_one(Eval *E, cJSON *item, const char *s, size_t n, void *ud)
{
    (void)E;
    PickState *ps = ud;
    ps->item = item;
    ps->s = s;
    ps->n = n;
    ps->found = 1;
    return ps->last ? 0 : 1;
}

static Val do_filter(Eval *E, const TplNode *f)
{
    Val v = eval(E, f->a);
    if (E->failed) return v_fail();
    if (f->op == TPL_F_DEFAULT) {
        int use_default = !v.j;
        if (!use_default && f->args[1]) {
            Val boolean = eval_defined(E, f->args[1]);
            if (E->failed) {
                v_free(&v);
                return v_fail();
            }
            use_default = tpl_truthy(boolean.j) && !tpl_truthy(v.j);
            v_free(&boolean);
        }
        if (!use_default) return v;
        v_free(&v);
        if (f->args[0]) return eval_defined(E, f->args[0]);
        return v_own(cJSON_CreateString(""));
    }
    if (need(E, &v, f->a) < 0) return v_fail();
    Val r = v_fail();
    StrBuf b = {0};
    switch ((TplFilter)f->op) {
    case TPL_F_UPPER:
    case TPL_F_LOWER:
    case TPL_F_CAPITALIZE:
        if (text_of(E, v.j, &b) < 0) break;
        for (size_t i = 0; i < b.len; i++) {
            char c = b.s[i];
            int up = f->op == TPL_F_UPPER || (f->op == TPL_F_CAPITALIZE && i == 0);
            if (up && c >= 'a' && c <= 'z') b.s[i] = (char)(c - 32);
            if (!up && c >= 'A' && c <= 'Z') b.s[i] = (char)(c + 32);
        }
        r = str_val(E, &b);
        break;
    case TPL_F_TRIM:
    case TPL_F_STRING:
        if (text_of(E, v.j, &b) < 0) break;
        if (f->op == TPL_F_TRIM) {
            const char *s = skip_ws(b.s);
            size_t n = strlen(s);
            while (n && strchr(" \t\n\r\f\v", s[n - 1])) n--;
            StrBuf t = {0};
            sb_appendn(&t, s, n);
            sb_free(&b);
            b = t;
        }
        r = str_val(E, &b);
        break;
    case TPL_F_REPLACE: {
        Val a[3] = {{0}, {0}, {0}};
        StrBuf s[3] = {{0}, {0}, {0}};
        for (int i = 0; i < 3 && !E->failed; i++)
            if (f->args[i]) a[i] = eval_defined(E, f->args[i]);
        double count = -1;
        if (!E->failed && a[2].j && !cJSON_IsNull(a[2].j)) {
            if (!is_integral(a[2].j))
                rerr(E, "filter 'replace': count must be an integer, not %s", tpl_py_type(a[2].j));
            else
                count = a[2].j->valuedouble;
        }
        if (!E->failed && text_of(E, v.j, &s[0]) == 0 && text_of(E, a[0].j, &s[1]) == 0 &&
            text_of(E, a[1].j, &s[2]) == 0)
            r = py_replace(E, s[0].s, s[1].s, s[2].s, count);
        for (int i = 0; i < 3; i++) {
            v_free(&a[i]);
            sb_free(&s[i]);
        }
        break;
    }
    case TPL_F_TOJSON:
        sb_append(&b, "");
        if (tpl_json_dump(v.j, &b, 1) < 0 || b.len > TEMPLATE_MAX_OUTPUT) {
            rerr(E, "value is too large (over %u bytes)", TEMPLATE_MAX_OUTPUT);
            sb_free(&b);
            break;
        }
        r = str_val(E, &b);
        break;
    case TPL_F_INT:
    case TPL_F_FLOAT: r = do_int_float(E, f, &v); break;
    case TPL_F_LENGTH:
        if (cJSON_IsString(v.j))
            r = v_own(cJSON_CreateNumber((double)tpl_utf8_count(v.j->valuestring)));
        else if (cJSON_IsArray(v.j) || cJSON_IsObject(v.j))
            r = v_own(cJSON_CreateNumber(cJSON_GetArraySize(v.j)));
        else
            rerr(E, "filter 'length': object of type '%s' has no len()", tpl_py_type(v.j));
        break;
    case TPL_F_JOIN: {
        JoinState js = {{0}, "", 1};
        Val sep = {0};
        StrBuf sepb = {0};
        if (f->args[0]) {
            sep = eval_defined(E, f->args[0]);
            if (!E->failed && text_of(E, sep.j, &sepb) == 0) js.sep = sepb.s;
        }
        sb_append(&js.out, "");
        if (!E->failed && iterate(E, &v, "join", join_one, &js) == 0) r = str_val(E, &js.out);
        sb_free(&js.out);
        sb_free(&sepb);
        v_free(&sep);
        break;
    }
    case TPL_F_FIRST:
    case TPL_F_LAST: {
        PickState ps = {0};
        ps.last = f->op == TPL_F_LAST;
        if (iterate(E, &v, f->name, pick_one, &ps) < 0) break;
        if (!ps.found) {
            r = v_undef(f);
        } else if (ps.item) {
            r = v_child(&v, ps.item, f);
        } else {
            sb_appendn(&b, ps.s, ps.n);
            r = str_val(E, &b);
        }
        break;
    }
    case TPL_F_DS:
    case TPL_F_DS_NODASH: r = do_ds_filter(E, &v, f->op == TPL_F_DS_NODASH); break;
    case TPL_F_DEFAULT: break;
    }
    v_free(&v);
    return r;
}

static Val do_concat(Eval *E, const TplNode *n)
{
    StrBuf b = {0};
    sb_append(&b, "");
    for (size_t i = 0; i < n->nargs; i++) {
        Val v = eval_defined(E, n->args[i]);
        if (E->failed || to_text(E, v.j, &b) < 0) {
            v_free(&v);
            sb_free(&b);
            return v_fail();
        }
        v_free(&v);
    }
    return str_val(E, &b);
}

static double num_of(const cJSON *j) { return cJSON_IsBool(j) ? (double)cJSON_IsTrue(j) : j->valuedouble; }

static Val do_math(Eval *E, const TplNode *n)
{
    static const char *const ops[] = {[TPL_ADD] = "+", [TPL_SUB] = "-", [TPL_NEG] = "unary -", [TPL_POS] = "unary +"};
    Val a = eval_defined(E, n->a);
    Val b = {0};
    if (n->b) b = eval_defined(E, n->b);
    Val r = v_fail();
    if (E->failed) goto done;
    int an = cJSON_IsNumber(a.j) || cJSON_IsBool(a.j);
    int bn = n->b && (cJSON_IsNumber(b.j) || cJSON_IsBool(b.j));
    if (n->kind == TPL_NEG || n->kind == TPL_POS) {
        if (an)
            r = v_own(cJSON_CreateNumber(n->kind == TPL_NEG ? -num_of(a.j) : num_of(a.j)));
        else
            rerr(E, "bad operand type for %s: '%s'", ops[n->kind], tpl_py_type(a.j));
    } else if (an && bn) {
        r = v_own(cJSON_CreateNumber(n->kind == TPL_ADD ? num_of(a.j) + num_of(b.j) : num_of(a.j) - num_of(b.j)));
    } else if (n->kind == TPL_ADD && cJSON_IsString(a.j) && cJSON_IsString(b.j)) {
        StrBuf s = {0};
        sb_append(&s, a.j->valuestring);
        sb_append(&s, b.j->valuestring);
        r = str_val(E, &s);
    } else if (n->kind == TPL_ADD && cJSON_IsArray(a.j) && cJSON_IsArray(b.j)) {
        cJSON *out = cJSON_CreateArray(), *c;
        size_t count = 0;
        cJSON_ArrayForEach(c, a.j)
        {
            cJSON_AddItemReferenceToArray(out, c);
            count++;
        }
        cJSON_ArrayForEach(c, b.j)
        {
            cJSON_AddItemReferenceToArray(out, c);
            count++;
        }
        /* The references point into a and b: keep them alive with the result. */
        if (spend(E, count * sizeof(cJSON)) < 0 || a.owned || b.owned) {
            cJSON_Delete(out);
            out = NULL;
            if (!E->failed) {
                out = cJSON_CreateArray();
                cJSON_ArrayForEach(c, a.j) cJSON_AddItemToArray(out, cJSON_Duplicate(c, 1));
                cJSON_ArrayForEach(c, b.j) cJSON_AddItemToArray(out, cJSON_Duplicate(c, 1));
            }
        }
        if (out) r = v_own(out);
    } else {
        rerr(E, "unsupported operand type(s) for %s: '%s' and '%s'", ops[n->kind], tpl_py_type(a.j), tpl_py_type(b.j));
    }
done:
    v_free(&a);
    v_free(&b);
    return r;
}

static Val eval(Eval *E, const TplNode *n)
{
    if (E->failed) return v_fail();
    switch (n->kind) {
    case TPL_LIT: return v_borrow(n->lit);
    case TPL_LIST: {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < n->nargs; i++) {
            Val v = eval_defined(E, n->args[i]);
            if (E->failed || spend(E, sizeof(cJSON)) < 0) {
                v_free(&v);
                cJSON_Delete(arr);
                return v_fail();
            }
            if (v.owned)
                cJSON_AddItemToArray(arr, v.j);
            else
                cJSON_AddItemReferenceToArray(arr, v.j);
        }
        return v_own(arr);
    }
    case TPL_NAME: {
        cJSON *v = ask(E, 'n', strcmp(n->name, "task_instance") == 0 ? "ti" : n->name, NULL);
        return v ? v_borrow(v) : v_undef(n);
    }
    case TPL_ATTR: {
        Val o = eval_defined(E, n->a);
        if (E->failed) return v_fail();
        cJSON *c = cJSON_IsObject(o.j) ? cJSON_GetObjectItemCaseSensitive(o.j, n->name) : NULL;
        return v_child(&o, c, n);
    }
    case TPL_ITEM: {
        Val o = eval_defined(E, n->a);
        Val k = eval_defined(E, n->b);
        if (E->failed) {
            v_free(&o);
            v_free(&k);
            return v_fail();
        }
        cJSON *c = NULL;
        if (cJSON_IsObject(o.j) && cJSON_IsString(k.j)) {
            c = cJSON_GetObjectItemCaseSensitive(o.j, k.j->valuestring);
        } else if (cJSON_IsArray(o.j) && is_integral(k.j)) {
            double i = k.j->valuedouble, size = cJSON_GetArraySize(o.j);
            if (i < 0) i += size;
            if (i >= 0 && i < size) c = cJSON_GetArrayItem(o.j, (int)i);
        }
        v_free(&k);
        return v_child(&o, c, n);
    }
    case TPL_VAR:
    case TPL_CONN: {
        Val k = eval_defined(E, n->b);
        const char *what = n->kind == TPL_CONN ? "conn id" : "var key";
        if (want_string(E, &k, what) < 0) {
            v_free(&k);
            return v_fail();
        }
        cJSON *v = n->kind == TPL_VAR ? var_value(E, k.j->valuestring, n->op) : ask(E, 'c', k.j->valuestring, NULL);
        if (!v) rerr(E, "%s '%s' not found", n->kind == TPL_VAR ? "var" : "conn", k.j->valuestring);
        v_free(&k);
        return v ? v_borrow(v) : v_fail();
    }
    case TPL_CALL: return do_call(E, n);
    case TPL_FILTER: return do_filter(E, n);
    case TPL_CONCAT: return do_concat(E, n);
    case TPL_ADD:
    case TPL_SUB:
    case TPL_NEG:
    case TPL_POS: return do_math(E, n);
    }
    return v_fail();
}

char *template_render(const Template *t, const TemplateContext *ctx, char *err, size_t errlen)
{
    if (err && errlen) err[0] = '\0';
    Eval E = {0};
    E.ctx = ctx;
    E.err = err;
    E.errlen = errlen;
    StrBuf out = {0};
    sb_append(&out, "");
    for (size_t i = 0; t && i < t->nparts && !E.failed; i++) {
        const TplPart *p = &t->parts[i];
        if (p->text) {
            sb_append(&out, p->text);
        } else {
            Val v = eval_defined(&E, p->expr);
            if (!E.failed) to_text(&E, v.j, &out);
            v_free(&v);
        }
        if (!E.failed && out.len > TEMPLATE_MAX_OUTPUT)
            rerr(&E, "rendered text is too large (over %u bytes)", TEMPLATE_MAX_OUTPUT);
    }
    for (size_t i = 0; i < E.ncache; i++) {
        free(E.cache[i].k1);
        free(E.cache[i].k2);
        cJSON_Delete(E.cache[i].v);
    }
    free(E.cache);
    if (E.failed) {
        sb_free(&out);
        return NULL;
    }
    return sb_take(&out);
}

char *template_render_text(const char *text, const TemplateContext *ctx, char *err, size_t errlen)
{
    Template *t = template_parse(text, err, errlen);
    if (!t) return NULL;
    char *s = template_render(t, ctx, err, errlen);
    template_free(t);
    return s;
}
