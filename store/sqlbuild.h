/* sqlbuild — the pieces the REST API's list queries (runquery, dagquery, kvquery) build their
 * statements from: bound parameters that may own their text, a WHERE clause grown one
 * condition at a time, Airflow's search patterns as LIKE, and nullable column readers.
 *
 * Only column names, operators and fixed fragments from the caller are pasted into the SQL;
 * every value is a bound parameter, so the same text serves SQLite and PostgreSQL.
 *
 * Ownership: a SqlbParams owns its array and the strings given to sqlb_own (freed by
 * sqlb_params_free); strings given to sqlb_text and sqlb_in are borrowed and must outlive
 * the statement. A SqlbWhere owns its text and its SqlbParams (sqlb_where_free). Zero
 * initialisation ({0}) is the empty state of both. */
#ifndef GUST_STORE_SQLBUILD_H
#define GUST_STORE_SQLBUILD_H

#include <stddef.h>
#include <stdint.h>

#include "core/util.h"
#include "store/store.h"

/* A bound left out: callers' own "unset" constants (RUNQ_UNSET, DAGQ_UNSET, STORE_KVQ_NONE)
 * are this value. */
#define SQLB_UNSET INT64_MIN

typedef struct SqlbParams {
    StoreParam *v;
    int n, cap;
    char **owned; /* texts some parameters point into */
    size_t n_owned;
} SqlbParams;

void sqlb_param(SqlbParams *p, StoreParam x);
void sqlb_text(SqlbParams *p, const char *s); /* s borrowed */
void sqlb_int(SqlbParams *p, int64_t i);
const char *sqlb_own(SqlbParams *p, char *s); /* binds s and takes it (freed with p); returns s */
void sqlb_page(SqlbParams *p, int64_t limit, int64_t offset); /* the values of "LIMIT ? OFFSET ?" */
void sqlb_params_take(SqlbParams *dst, SqlbParams *src); /* appends src's values (and owned texts); src emptied */
void sqlb_params_free(SqlbParams *p);

/* Conditions joined by AND. The first condition opens with " WHERE " when the text is empty;
 * a caller whose statement has its own WHERE starts the text with it (" WHERE 1 = 1"), and
 * every condition then opens with " AND ". */
typedef struct SqlbWhere {
    StrBuf sql;
    SqlbParams p;   /* the conditions' values, in text order */
    int impossible; /* a SQLB_CHECK_TEXT value no stored row can match: answer empty, no query */
} SqlbWhere;

void sqlb_where_free(SqlbWhere *w);
void sqlb_and(SqlbWhere *w); /* " WHERE " or " AND " */

enum {
    SQLB_CHECK_TEXT = 1, /* values that are not valid UTF-8 text match nothing (sets impossible or drops
                          * them) instead of reaching PostgreSQL, which rejects the statement */
    SQLB_NOT = 2,        /* sqlb_in: (col IS NULL OR col NOT IN (...)): Airflow's exclusion keeps NULLs */
    /* sqlb_pattern's treatment of a backslash in the caller's pattern (default: passed on as is,
     * so it escapes the next character and a trailing one is an error on PostgreSQL) */
    SQLB_PAT_BACKSLASH_LITERAL = 4, /* matches itself (kvquery) */
    SQLB_PAT_BACKSLASH_ESCAPES = 8, /* escapes the next character; a trailing one matches itself (dagquery) */
    SQLB_PAT_TILDE_ALL = 16,        /* "~" (Airflow's "everything") adds nothing (dagquery) */
    SQLB_PAT_EMPTY_NOT_NULL = 32,   /* a pattern with no term still requires a value: LIKE '%%' (runquery) */
};

int sqlb_text_ok(const char *v); /* non-NULL valid UTF-8 text */

/* "col = ?"; v NULL adds nothing. flags: SQLB_CHECK_TEXT. */
void sqlb_eq(SqlbWhere *w, const char *col, const char *v, int flags);
/* "col op ?"; v SQLB_UNSET adds nothing. */
void sqlb_cmp(SqlbWhere *w, const char *col, const char *op, int64_t v);
/* >=, >, <=, < in that order, each unless SQLB_UNSET. */
void sqlb_range(SqlbWhere *w, const char *col, int64_t gte, int64_t gt, int64_t lte, int64_t lt);
/* "col IN (?, ...)"; n 0 adds nothing. flags: SQLB_NOT, SQLB_CHECK_TEXT (invalid values are
 * left out; none left makes an IN impossible and a NOT IN nothing). */
void sqlb_in(SqlbWhere *w, const char *col, const char *const *v, size_t n, int flags);
void sqlb_in_int(SqlbWhere *w, const char *col, const int64_t *v, size_t n);
/* Airflow's search: "(LOWER(col) LIKE LOWER(?) ESCAPE '\' OR ...)", one "%term%" per
 * '|'-separated term, trimmed of blanks, case-insensitive, % and _ wildcards; blank terms are
 * skipped and a pattern without any adds nothing (unless SQLB_PAT_EMPTY_NOT_NULL). NULL adds
 * nothing. flags: SQLB_PAT_*, SQLB_CHECK_TEXT. The escape character is spelled out because
 * PostgreSQL defaults to '\' and SQLite to none. */
void sqlb_pattern(SqlbWhere *w, const char *col, const char *pattern, int flags);
/* "%text%" for LIKE ... ESCAPE '\' matching text literally (%, _ and \ escaped); caller frees. */
char *sqlb_like_literal(const char *text);
/* "LOWER(col) LIKE LOWER(?) ESCAPE '\'" with sqlb_like_literal(text); NULL adds nothing. */
void sqlb_contains(SqlbWhere *w, const char *col, const char *text);

/* SELECT COUNT(*) FROM <tables><where> with the first np values of p. */
int sqlb_count(Store *s, const char *tables, const char *where, const SqlbParams *p, int np, int64_t *total);

/* The array v, n of *cap elements of size bytes in use, with room for one more (doubling,
 * from 16); *cap 0 starts one. */
void *sqlb_grow(void *v, size_t n, size_t *cap, size_t size);

/* Nullable columns: a copy of the text (caller frees) or NULL; the integer or if_null. */
char *sqlb_col_str(StoreRows *r, int c);
int64_t sqlb_col_int(StoreRows *r, int c, int64_t if_null);

#endif
