/* template_lex — the expression lexer of the template parser (see template.c). It reads the
 * source on demand, one token of lookahead, decoding string literals with Python's escapes. */
#include "core/template_ast.h"
#include "core/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tpl_perr(TplParser *p, size_t off, const char *fmt, ...)
{
    if (p->failed) return;
    p->failed = 1;
    if (!p->err || !p->errlen) return;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < off && i < p->len; i++) {
        if (p->src[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (line > 1)
        snprintf(p->err, p->errlen, "template error at line %zu, column %zu: %s", line, col, msg);
    else
        snprintf(p->err, p->errlen, "template error at column %zu: %s", col, msg);
}

int tpl_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_ident(char c) { return is_ident_start(c) || is_digit(c); }

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void utf8_put(StrBuf *b, unsigned long cp)
{
    char u[4];
    if (cp < 0x80) {
        sb_appendc(b, (char)cp);
        return;
    }
    if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        sb_appendn(b, u, 2);
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        sb_appendn(b, u, 3);
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        sb_appendn(b, u, 4);
    }
}

/* A quoted string with Python's escapes (Jinja decodes literals with unicode-escape). */
static int lex_string(TplParser *p, TplTok *t)
{
    char q = p->src[p->pos];
    size_t i = p->pos + 1;
    StrBuf b = {0};
    sb_append(&b, "");
    while (i < p->len && p->src[i] != q) {
        char c = p->src[i];
        if (c != '\\') {
            sb_appendc(&b, c);
            i++;
            continue;
        }
        if (i + 1 >= p->len) break;
        char e = p->src[i + 1];
        size_t esc = i;
        i += 2;
        unsigned long cp = 0;
        int ndig = 0;
        switch (e) {
        case '\n': continue; /* line continuation */
        case '\\': sb_appendc(&b, '\\'); continue;
        case '\'': sb_appendc(&b, '\''); continue;
        case '"': sb_appendc(&b, '"'); continue;
        case 'a': sb_appendc(&b, '\a'); continue;
        case 'b': sb_appendc(&b, '\b'); continue;
        case 'f': sb_appendc(&b, '\f'); continue;
        case 'n': sb_appendc(&b, '\n'); continue;
        case 'r': sb_appendc(&b, '\r'); continue;
        case 't': sb_appendc(&b, '\t'); continue;
        case 'v': sb_appendc(&b, '\v'); continue;
        case 'x': ndig = 2; break;
        case 'u': ndig = 4; break;
        case 'U': ndig = 8; break;
        case 'N':
            tpl_perr(p, esc, "\\N{...} escapes are not supported");
            sb_free(&b);
            return -1;
        default:
            if (e >= '0' && e <= '7') {
                cp = (unsigned long)(e - '0');
                for (int k = 0; k < 2 && i < p->len && p->src[i] >= '0' && p->src[i] <= '7'; k++)
                    cp = cp * 8 + (unsigned long)(p->src[i++] - '0');
                ndig = -1;
                break;
            }
            sb_appendc(&b, '\\'); /* Python keeps unknown escapes as written */
            i--;
            continue;
        }
        for (int k = 0; k < ndig; k++) {
            int h = i < p->len ? hexval(p->src[i]) : -1;
            if (h < 0) {
                tpl_perr(p, esc, "truncated \\%c escape in string", e);
                sb_free(&b);
                return -1;
            }
            cp = cp * 16 + (unsigned long)h;
            i++;
        }
        if (cp == 0) {
            tpl_perr(p, esc, "NUL characters in strings are not supported");
            sb_free(&b);
            return -1;
        }
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            tpl_perr(p, esc, "invalid code point in \\%c escape", e);
            sb_free(&b);
            return -1;
        }
        utf8_put(&b, cp);
    }
    if (i >= p->len) {
        tpl_perr(p, p->pos, "unterminated string");
        sb_free(&b);
        return -1;
    }
    t->type = TK_STR;
    t->str = sb_take(&b);
    p->pos = i + 1;
    return 0;
}

/* Integers and floats as Jinja writes them (1, 1_000, 2.5, 1e3). */
static int lex_number(TplParser *p, TplTok *t)
{
    char buf[80];
    size_t n = 0, i = p->pos;
    int in_exp = 0;
    while (i < p->len) {
        char c = p->src[i];
        if (is_digit(c)) {
            if (n >= sizeof buf - 1) break;
            buf[n++] = c;
            i++;
        } else if (c == '_' && n && is_digit(buf[n - 1]) && i + 1 < p->len && is_digit(p->src[i + 1])) {
            i++;
        } else if (c == '.' && !in_exp && !memchr(buf, '.', n) && i + 1 < p->len && is_digit(p->src[i + 1])) {
            if (n >= sizeof buf - 1) break;
            buf[n++] = c;
            i++;
        } else if ((c == 'e' || c == 'E') && !in_exp) {
            size_t j = i + 1;
            if (j < p->len && (p->src[j] == '+' || p->src[j] == '-')) j++;
            if (j >= p->len || !is_digit(p->src[j]) || n + (j - i) >= sizeof buf - 1) break;
            while (i < j) buf[n++] = p->src[i++];
            in_exp = 1;
        } else {
            break;
        }
    }
    if (n >= sizeof buf - 1 || (i < p->len && is_digit(p->src[i]))) {
        tpl_perr(p, p->pos, "number is too long");
        return -1;
    }
    buf[n] = '\0';
    t->type = TK_NUM;
    t->num = strtod(buf, NULL);
    p->pos = i;
    return 0;
}

/* Read the token at p->pos into p->tok (freeing the previous one). */
void tpl_advance(TplParser *p)
{
    TplTok *t = &p->tok;
    free(t->str);
    memset(t, 0, sizeof *t);
    if (p->failed) {
        t->type = TK_ERR;
        return;
    }
    while (p->pos < p->len && tpl_is_space(p->src[p->pos])) p->pos++;
    t->start = p->pos;
    if (p->pos >= p->len) {
        t->type = TK_EOF;
        t->end = p->pos;
        return;
    }
    const char *s = p->src + p->pos;
    if (s[0] == '-' && p->pos + 2 < p->len && s[1] == '}' && s[2] == '}') {
        t->type = TK_END;
        t->strip = 1;
        p->pos += 3;
    } else if (s[0] == '}' && p->pos + 1 < p->len && s[1] == '}') {
        t->type = TK_END;
        p->pos += 2;
    } else if (is_ident_start(s[0])) {
        size_t n = 1;
        while (p->pos + n < p->len && is_ident(s[n])) n++;
        t->type = TK_NAME;
        t->str = xstrndup(s, n);
        p->pos += n;
    } else if (is_digit(s[0])) {
        if (lex_number(p, t) < 0) t->type = TK_ERR;
    } else if (s[0] == '\'' || s[0] == '"') {
        if (lex_string(p, t) < 0) t->type = TK_ERR;
    } else if (strchr(".[](),=|~+-", s[0])) {
        t->type = TK_OP;
        t->op = s[0];
        p->pos++;
    } else {
        unsigned char c = (unsigned char)s[0];
        if (c >= 0x20 && c < 0x7F)
            tpl_perr(p, p->pos, "unexpected character '%c' in expression", c);
        else
            tpl_perr(p, p->pos, "unexpected byte 0x%02x in expression", c);
        t->type = TK_ERR;
    }
    t->end = p->pos;
}

int tpl_is_op(const TplParser *p, char c) { return p->tok.type == TK_OP && p->tok.op == c; }

/* After the current token, is the source "NAME" (then, if want_paren, "(")? For one-token
 * lookahead past a '.', e.g. telling ti.xcom_pull(...) from ti.xcom_pullx. */
int tpl_peek_ident(const TplParser *p, const char *name, int want_paren)
{
    size_t i = p->pos, n = strlen(name);
    while (i < p->len && tpl_is_space(p->src[i])) i++;
    if (i + n > p->len || memcmp(p->src + i, name, n) != 0) return 0;
    i += n;
    if (i < p->len && is_ident(p->src[i])) return 0;
    if (!want_paren) return 1;
    while (i < p->len && tpl_is_space(p->src[i])) i++;
    return i < p->len && p->src[i] == '(';
}

void tpl_describe_tok(const TplParser *p, char *buf, size_t n)
{
    const TplTok *t = &p->tok;
    switch (t->type) {
    case TK_EOF: snprintf(buf, n, "end of template"); break;
    case TK_END: snprintf(buf, n, "'}}'"); break;
    case TK_NAME: snprintf(buf, n, "'%.40s'", t->str); break;
    case TK_NUM: snprintf(buf, n, "a number"); break;
    case TK_STR: snprintf(buf, n, "a string"); break;
    case TK_OP: snprintf(buf, n, "'%c'", t->op); break;
    case TK_ERR: snprintf(buf, n, "an error"); break;
    }
}

/* "expected X" at the current token; at the end of input, point at the unclosed {{. */
void tpl_expected(TplParser *p, const char *what)
{
    if (p->tok.type == TK_EOF) {
        tpl_perr(p, p->open, "unclosed '{{' (expected %s before the end of the template)", what);
        return;
    }
    char got[64];
    tpl_describe_tok(p, got, sizeof got);
    tpl_perr(p, p->tok.start, "expected %s, got %s", what, got);
}

int tpl_expect_op(TplParser *p, char c)
{
    if (!tpl_is_op(p, c)) {
        char what[8];
        snprintf(what, sizeof what, "'%c'", c);
        tpl_expected(p, what);
        return -1;
    }
    tpl_advance(p);
    return 0;
}
