/* sqlbuild — shared statement building for the REST API's list queries (see sqlbuild.h). */
#include "store/sqlbuild.h"

#include <stdlib.h>
#include <string.h>

#include "store/kv.h"

void sqlb_param(SqlbParams *p, StoreParam x)
{
    if (p->n == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        p->v = xrealloc(p->v, (size_t)p->cap * sizeof *p->v);
    }
    p->v[p->n++] = x;
}

void sqlb_text(SqlbParams *p, const char *s) { sqlb_param(p, SP_S(s)); }
void sqlb_int(SqlbParams *p, int64_t i) { sqlb_param(p, SP_I(i)); }

const char *sqlb_own(SqlbParams *p, char *s)
{
    p->owned = xrealloc(p->owned, (p->n_owned + 1) * sizeof *p->owned);
    p->owned[p->n_owned++] = s;
    sqlb_text(p, s);
    return s;
}

void sqlb_page(SqlbParams *p, int64_t limit, int64_t offset)
{
    sqlb_int(p, limit);
    sqlb_int(p, offset);
}

void sqlb_params_take(SqlbParams *dst, SqlbParams *src)
{
    for (int i = 0; i < src->n; i++) sqlb_param(dst, src->v[i]);
    if (src->n_owned) {
        dst->owned = xrealloc(dst->owned, (dst->n_owned + src->n_owned) * sizeof *dst->owned);
        memcpy(dst->owned + dst->n_owned, src->owned, src->n_owned * sizeof *src->owned);
        dst->n_owned += src->n_owned;
    }
    free(src->v);
    free(src->owned);
    memset(src, 0, sizeof *src);
}

void sqlb_params_free(SqlbParams *p)
{
    for (size_t i = 0; i < p->n_owned; i++) free(p->owned[i]);
    free(p->owned);
    free(p->v);
    memset(p, 0, sizeof *p);
}

void sqlb_where_free(SqlbWhere *w)
{
    sb_free(&w->sql);
    sqlb_params_free(&w->p);
    memset(w, 0, sizeof *w);
}

void sqlb_and(SqlbWhere *w)
{
    sb_append(&w->sql, w->sql.len ? " AND " : " WHERE ");
}

int sqlb_text_ok(const char *v)
{
    return v && store_text_valid(v, strlen(v));
}

void sqlb_eq(SqlbWhere *w, const char *col, const char *v, int flags)
{
    if (!v) return;
    if ((flags & SQLB_CHECK_TEXT) && !sqlb_text_ok(v)) w->impossible = 1;
    sqlb_and(w);
    sb_printf(&w->sql, "%s = ?", col);
    sqlb_text(&w->p, v);
}

void sqlb_cmp(SqlbWhere *w, const char *col, const char *op, int64_t v)
{
    if (v == SQLB_UNSET) return;
    sqlb_and(w);
    sb_printf(&w->sql, "%s %s ?", col, op);
    sqlb_int(&w->p, v);
}

void sqlb_range(SqlbWhere *w, const char *col, int64_t gte, int64_t gt, int64_t lte, int64_t lt)
{
    sqlb_cmp(w, col, ">=", gte);
    sqlb_cmp(w, col, ">", gt);
    sqlb_cmp(w, col, "<=", lte);
    sqlb_cmp(w, col, "<", lt);
}

void sqlb_in(SqlbWhere *w, const char *col, const char *const *v, size_t n, int flags)
{
    int check = flags & SQLB_CHECK_TEXT, negate = flags & SQLB_NOT;
    size_t good = 0;
    for (size_t i = 0; i < n; i++) good += !check || sqlb_text_ok(v[i]);
    if (!good) {
        if (check && !negate && n > 0) w->impossible = 1;
        return;
    }
    sqlb_and(w);
    if (negate)
        sb_printf(&w->sql, "(%s IS NULL OR %s NOT IN (", col, col);
    else
        sb_printf(&w->sql, "%s IN (", col);
    int first = 1;
    for (size_t i = 0; i < n; i++) {
        if (check && !sqlb_text_ok(v[i])) continue;
        sb_append(&w->sql, first ? "?" : ", ?");
        first = 0;
        sqlb_text(&w->p, v[i]);
    }
    sb_append(&w->sql, negate ? "))" : ")");
}

void sqlb_in_int(SqlbWhere *w, const char *col, const int64_t *v, size_t n)
{
    if (!n) return;
    sqlb_and(w);
    sb_printf(&w->sql, "%s IN (", col);
    for (size_t i = 0; i < n; i++) {
        sb_append(&w->sql, i ? ", ?" : "?");
        sqlb_int(&w->p, v[i]);
    }
    sb_append(&w->sql, ")");
}

/* "%<term>%" with the caller's backslashes treated as flags say. */
static char *like_term(const char *a, size_t len, int flags)
{
    StrBuf b = {0};
    sb_appendc(&b, '%');
    for (size_t i = 0; i < len; i++) {
        if (a[i] == '\\' && (flags & SQLB_PAT_BACKSLASH_LITERAL)) {
            sb_append(&b, "\\\\");
        } else if (a[i] == '\\' && (flags & SQLB_PAT_BACKSLASH_ESCAPES)) {
            /* an escape with nothing after it is an error on PostgreSQL: made literal */
            if (i + 1 < len) {
                sb_appendc(&b, '\\');
                sb_appendc(&b, a[++i]);
            } else {
                sb_append(&b, "\\\\");
            }
        } else {
            sb_appendc(&b, a[i]);
        }
    }
    sb_appendc(&b, '%');
    return sb_take(&b);
}

void sqlb_pattern(SqlbWhere *w, const char *col, const char *pattern, int flags)
{
    if (!pattern) return;
    if ((flags & SQLB_PAT_TILDE_ALL) && strcmp(pattern, "~") == 0) return;
    if ((flags & SQLB_CHECK_TEXT) && !sqlb_text_ok(pattern)) {
        w->impossible = 1;
        return;
    }
    StrBuf cond = {0};
    int terms = 0;
    for (const char *t = pattern;;) {
        const char *bar = strchr(t, '|');
        const char *a = t, *b = bar ? bar : t + strlen(t);
        while (a < b && (*a == ' ' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t')) b--;
        if (b > a || (!bar && !terms && (flags & SQLB_PAT_EMPTY_NOT_NULL))) {
            sb_printf(&cond, "%sLOWER(%s) LIKE LOWER(?) ESCAPE '\\'", terms ? " OR " : "", col);
            sqlb_own(&w->p, like_term(a, (size_t)(b - a), flags));
            terms++;
        }
        if (!bar) break;
        t = bar + 1;
    }
    if (terms) {
        sqlb_and(w);
        sb_printf(&w->sql, "(%s)", sb_str(&cond));
    }
    sb_free(&cond);
}

char *sqlb_like_literal(const char *text)
{
    StrBuf b = {0};
    sb_appendc(&b, '%');
    for (const char *c = text; *c; c++) {
        if (*c == '%' || *c == '_' || *c == '\\') sb_appendc(&b, '\\');
        sb_appendc(&b, *c);
    }
    sb_appendc(&b, '%');
    return sb_take(&b);
}

void sqlb_contains(SqlbWhere *w, const char *col, const char *text)
{
    if (!text) return;
    sqlb_and(w);
    sb_printf(&w->sql, "LOWER(%s) LIKE LOWER(?) ESCAPE '\\'", col);
    sqlb_own(&w->p, sqlb_like_literal(text));
}

int sqlb_count(Store *s, const char *tables, const char *where, const SqlbParams *p, int np, int64_t *total)
{
    char *sql = xasprintf("SELECT COUNT(*) FROM %s%s", tables, where ? where : "");
    int rc = store_q_int(s, sql, p->v, np, 0, total);
    free(sql);
    return rc;
}

char *sqlb_col_str(StoreRows *r, int c)
{
    return rows_isnull(r, c) ? NULL : xstrdup(rows_text(r, c));
}

int64_t sqlb_col_int(StoreRows *r, int c, int64_t if_null)
{
    return rows_isnull(r, c) ? if_null : rows_int(r, c);
}

void *sqlb_grow(void *v, size_t n, size_t *cap, size_t size)
{
    if (n < *cap) return v;
    *cap = *cap ? *cap * 2 : 16;
    return xrealloc(v, *cap * size);
}
