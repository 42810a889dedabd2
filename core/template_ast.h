/* template_ast — the parsed form of a template, shared by the parser (template.c) and the
 * renderer (template_render.c). Private to those two files.
 *
 * The parser resolves everything it can: calls are bound to one of the few known functions with
 * their arguments in parameter order, filters to an enum, var/conn lookups to their own nodes.
 * The renderer then never has to look at a name to decide what a node means. */
#ifndef GUST_TEMPLATE_AST_H
#define GUST_TEMPLATE_AST_H

#include "core/template.h"
#include "core/util.h"

#include <cjson/cJSON.h>
#include <stddef.h>

typedef enum TplKind {
    TPL_LIT,    /* literal value: lit */
    TPL_LIST,   /* [args...] */
    TPL_NAME,   /* root context name: name */
    TPL_ATTR,   /* a.name */
    TPL_ITEM,   /* a[b] (and a.0, with b an integer literal) */
    TPL_VAR,    /* var.value[b] (op 0) or var.json[b] (op 1) */
    TPL_CONN,   /* conn[b] */
    TPL_CALL,   /* op: TplFunc; name: the root as written ("ti", "task_instance", "macros", "var");
                 * for dict.get, a is the dict expression */
    TPL_FILTER, /* a | name(args...); op: TplFilter */
    TPL_CONCAT, /* args[0] ~ args[1] ~ ... */
    TPL_ADD,    /* a + b */
    TPL_SUB,    /* a - b */
    TPL_NEG,    /* -a */
    TPL_POS,    /* +a */
} TplKind;

typedef enum TplFunc {
    TPL_FN_XCOM_PULL, /* args: task_ids, dag_id, key, include_prior_dates, map_indexes, default */
    TPL_FN_DS_ADD,    /* args: ds, days */
    TPL_FN_DS_FORMAT, /* args: ds, input_format, output_format */
    TPL_FN_VAR_GET,   /* var.value.get / var.json.get (node->flag 1 = json); args: key, default_var */
    TPL_FN_DICT_GET,  /* a.get(key, default): Python's dict.get on the value of a */
} TplFunc;

/* Argument slots of xcom_pull, in Airflow's parameter order. */
enum { TPL_XCOM_TASK_IDS, TPL_XCOM_DAG_ID, TPL_XCOM_KEY, TPL_XCOM_PRIOR, TPL_XCOM_MAP_INDEXES, TPL_XCOM_DEFAULT };

typedef enum TplFilter {
    TPL_F_DEFAULT, /* args: default_value, boolean */
    TPL_F_UPPER,
    TPL_F_LOWER,
    TPL_F_CAPITALIZE,
    TPL_F_TRIM,
    TPL_F_REPLACE, /* args: old, new, count */
    TPL_F_TOJSON,
    TPL_F_INT,     /* args: default, base */
    TPL_F_FLOAT,   /* args: default */
    TPL_F_STRING,
    TPL_F_LENGTH,
    TPL_F_JOIN,    /* args: d */
    TPL_F_FIRST,
    TPL_F_LAST,
    TPL_F_DS,
    TPL_F_DS_NODASH,
} TplFilter;

typedef struct TplNode {
    TplKind kind;
    int op;                /* TPL_CALL: TplFunc; TPL_FILTER: TplFilter; TPL_VAR: 1 = var.json */
    int flag;              /* TPL_FN_VAR_GET: 1 = var.json.get */
    size_t col;            /* 0-based offset of the node's first byte in the source, for messages */
    int height;            /* 1 + the tallest child; bounded by TEMPLATE_MAX_DEPTH */
    char *name;            /* root name, attribute name, filter name or call root as written */
    cJSON *lit;            /* TPL_LIT: the value */
    struct TplNode *a;     /* object, subject or left operand */
    struct TplNode *b;     /* index, key or right operand */
    struct TplNode **args; /* call/filter arguments in parameter order (NULL = not given), list items */
    size_t nargs;
} TplNode;

typedef struct TplPart {
    char *text;    /* literal text (already whitespace-trimmed), or NULL when expr is set */
    TplNode *expr; /* {{ expression }}, or NULL */
} TplPart;

struct Template {
    TplPart *parts; /* in source order */
    size_t nparts;
};

/* Append the Jinja-style spelling of a lookup chain (params.x, var.value['k']) to out, for
 * messages about undefined values. Defined in template.c. */
void tpl_node_path(const TplNode *n, StrBuf *out);

/* ---- the parser's lexer (template_lex.c) ---- */

typedef enum TplTokType { TK_EOF, TK_END, TK_NAME, TK_NUM, TK_STR, TK_OP, TK_ERR } TplTokType;

typedef struct TplTok {
    TplTokType type;
    size_t start, end; /* byte range in the source */
    char *str;         /* TK_NAME, TK_STR (decoded): heap copy */
    double num;        /* TK_NUM */
    int strip;         /* TK_END: written -}} */
    char op;           /* TK_OP */
} TplTok;

typedef struct TplParser {
    const char *src;           /* normalised source */
    size_t len;
    size_t pos;                /* lexer position: just after tok */
    TplTok tok;                   /* current token */
    size_t open;               /* offset of the {{ being parsed, for "unclosed" messages */
    int depth;                 /* recursion depth of the expression parser */
    int failed;                /* an error has been written */
    char *err;
    size_t errlen;
    const char *const *extra;  /* caller's extra root names */
    size_t nextra;
} TplParser;

/* Record the first error, at byte offset off of the source, as
 * "template error at [line L, ]column C: message". */
void tpl_perr(TplParser *p, size_t off, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void tpl_advance(TplParser *p);                /* read the next token into p->tok */
int tpl_is_op(const TplParser *p, char c);     /* is the current token the operator c? */
int tpl_is_space(char c);
/* Does the source after the current token read "name" (then "(" if want_paren)? */
int tpl_peek_ident(const TplParser *p, const char *name, int want_paren);
void tpl_describe_tok(const TplParser *p, char *buf, size_t n);
void tpl_expected(TplParser *p, const char *what); /* error "expected WHAT, got ..." */
int tpl_expect_op(TplParser *p, char c);           /* consume operator c, or error */

/* ---- values (template_value.c) ---- */

void tpl_py_number(double d, StrBuf *b); /* repr() of a number; integral values print as ints */
/* JSON with Python's separators; html = Jinja's tojson (sorted keys, ASCII, HTML-safe).
 * -1 once b grows past TEMPLATE_MAX_OUTPUT. */
int tpl_json_dump(const cJSON *v, StrBuf *b, int html);
const char *tpl_py_type(const cJSON *v); /* "str", "int", "list"... for messages */
int tpl_truthy(const cJSON *v);          /* Python truthiness */
/* Length of the UTF-8 sequence at s[i] (1 for an invalid byte, with *cp = -1). */
size_t tpl_utf8_decode(const unsigned char *s, size_t n, size_t i, long *cp);
size_t tpl_utf8_step(const char *s, size_t n, size_t i);
size_t tpl_utf8_count(const char *s); /* code points */

/* macros.ds_add: ds ("YYYY-MM-DD", as Python's strptime reads it) plus days (floored, as a
 * timedelta would), written as YYYY-MM-DD into out. 0, or -1 with err. In template_macros.c. */
int tpl_ds_add(const char *ds, double days, char out[48], char *err, size_t errlen);

/* macros.ds_format: strptime(ds, in_fmt) then strftime(out_fmt). Heap string (caller frees),
 * or NULL with err. In template_macros.c. */
char *tpl_ds_format(const char *ds, const char *in_fmt, const char *out_fmt, char *err, size_t errlen);

#endif
