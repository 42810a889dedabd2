/* template_value — printing cJSON values the way Python and Jinja do: numbers as repr() writes
 * them, json.dumps' separators, Jinja's HTML-safe tojson. Used by template_render.c. */
#include "core/template_ast.h"
#include "core/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tpl_py_number(double d, StrBuf *b)
{
    if (isnan(d)) {
        sb_append(b, "nan");
        return;
    }
    if (isinf(d)) {
        sb_append(b, d < 0 ? "-inf" : "inf");
        return;
    }
    if (d == 0) {
        sb_append(b, "0");
        return;
    }
    if (fabs(d) < 1e16 && d == floor(d)) {
        sb_printf(b, "%.0f", d);
        return;
    }
    /* repr(float): the shortest digits that read back the same, fixed notation for
     * exponents in [-4, 16), scientific otherwise. */
    char buf[48];
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, d);
        if (strtod(buf, NULL) == d) break;
    }
    char digits[24];
    size_t nd = 0;
    const char *s = buf;
    if (*s == '-') {
        sb_appendc(b, '-');
        s++;
    }
    for (; *s && *s != 'e'; s++)
        if (*s != '.' && nd < sizeof digits - 1) digits[nd++] = *s;
    digits[nd] = '\0';
    int e = *s == 'e' ? atoi(s + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0') digits[--nd] = '\0';
    if (e >= -4 && e < 16) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++) sb_appendc(b, (size_t)i < nd ? digits[i] : '0');
            sb_appendc(b, '.');
            if ((size_t)e + 1 < nd)
                sb_append(b, digits + e + 1);
            else
                sb_appendc(b, '0');
        } else {
            sb_append(b, "0.");
            for (int i = 0; i < -e - 1; i++) sb_appendc(b, '0');
            sb_append(b, digits);
        }
    } else {
        sb_appendc(b, digits[0]);
        if (nd > 1) {
            sb_appendc(b, '.');
            sb_append(b, digits + 1);
        }
        sb_printf(b, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
}

/* Decode one UTF-8 sequence at s[i]; returns its length (1 for an invalid byte, cp = -1). */
size_t tpl_utf8_decode(const unsigned char *s, size_t n, size_t i, long *cp)
{
    unsigned c = s[i];
    size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (!len || i + len > n) {
        *cp = -1;
        return 1;
    }
    long v = len == 1 ? (long)c : len == 2 ? (long)(c & 0x1F) : len == 3 ? (long)(c & 0x0F) : (long)(c & 0x07);
    for (size_t k = 1; k < len; k++) {
        if ((s[i + k] & 0xC0) != 0x80) {
            *cp = -1;
            return 1;
        }
        v = (v << 6) | (s[i + k] & 0x3F);
    }
    static const long min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (v < min_for_len[len] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) {
        *cp = -1;
        return 1;
    }
    *cp = v;
    return len;
}

/* A JSON string as Python's json.dumps writes it; html adds ensure_ascii and Jinja's
 * htmlsafe escapes of < > & '. */
static void json_string(const char *str, StrBuf *b, int html)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    size_t n = strlen((const char *)s);
    sb_appendc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            sb_appendc(b, '\\');
            sb_appendc(b, (char)c);
        } else if (c == '\n') {
            sb_append(b, "\\n");
        } else if (c == '\r') {
            sb_append(b, "\\r");
        } else if (c == '\t') {
            sb_append(b, "\\t");
        } else if (c == '\b') {
            sb_append(b, "\\b");
        } else if (c == '\f') {
            sb_append(b, "\\f");
        } else if (c < 0x20 || (html && (c == '<' || c == '>' || c == '&' || c == '\''))) {
            sb_printf(b, "\\u%04x", c);
        } else if (c >= 0x80 && html) {
            long cp;
            i += tpl_utf8_decode(s, n, i, &cp);
            if (cp < 0) cp = 0xFFFD;
            if (cp >= 0x10000) {
                cp -= 0x10000;
                sb_printf(b, "\\u%04lx\\u%04lx", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            } else {
                sb_printf(b, "\\u%04lx", cp);
            }
            continue;
        } else {
            sb_appendc(b, (char)c);
        }
        i++;
    }
    sb_appendc(b, '"');
}

static int cmp_keys(const void *x, const void *y)
{
    const cJSON *a = *(const cJSON *const *)x, *b = *(const cJSON *const *)y;
    return strcmp(a->string ? a->string : "", b->string ? b->string : "");
}

/* JSON with Python's separators (", " and ": "). html: Jinja's tojson (sorted keys, ASCII,
 * HTML-safe). Stops with -1 once b passes TEMPLATE_MAX_OUTPUT. */
int tpl_json_dump(const cJSON *v, StrBuf *b, int html)
{
    if (b->len > TEMPLATE_MAX_OUTPUT) return -1;
    switch (v->type & 0xFF) {
    case cJSON_False: sb_append(b, "false"); return 0;
    case cJSON_True: sb_append(b, "true"); return 0;
    case cJSON_NULL: sb_append(b, "null"); return 0;
    case cJSON_Number:
        if (isnan(v->valuedouble))
            sb_append(b, "NaN");
        else if (isinf(v->valuedouble))
            sb_append(b, v->valuedouble < 0 ? "-Infinity" : "Infinity");
        else
            tpl_py_number(v->valuedouble, b);
        return 0;
    case cJSON_String:
    case cJSON_Raw: json_string(v->valuestring, b, html); return 0;
    case cJSON_Array: {
        sb_appendc(b, '[');
        const cJSON *c;
        int first = 1;
        cJSON_ArrayForEach(c, v)
        {
            if (!first) sb_append(b, ", ");
            first = 0;
            if (tpl_json_dump(c, b, html) < 0) return -1;
        }
        sb_appendc(b, ']');
        return 0;
    }
    case cJSON_Object: {
        size_t n = 0;
        const cJSON *c;
        cJSON_ArrayForEach(c, v) n++;
        const cJSON **kids = xcalloc(n ? n : 1, sizeof *kids);
        n = 0;
        cJSON_ArrayForEach(c, v) kids[n++] = c;
        if (html) qsort(kids, n, sizeof *kids, cmp_keys);
        sb_appendc(b, '{');
        int rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (i) sb_append(b, ", ");
            json_string(kids[i]->string, b, html);
            sb_append(b, ": ");
            rc = tpl_json_dump(kids[i], b, html);
        }
        free(kids);
        if (rc == 0) sb_appendc(b, '}');
        return rc;
    }
    default: sb_append(b, "null"); return 0;
    }
}

const char *tpl_py_type(const cJSON *v)
{
    switch (v->type & 0xFF) {
    case cJSON_String:
    case cJSON_Raw: return "str";
    case cJSON_Number: return v->valuedouble == floor(v->valuedouble) ? "int" : "float";
    case cJSON_True:
    case cJSON_False: return "bool";
    case cJSON_NULL: return "NoneType";
    case cJSON_Array: return "list";
    default: return "dict";
    }
}

int tpl_truthy(const cJSON *v)
{
    switch (v->type & 0xFF) {
    case cJSON_True: return 1;
    case cJSON_Number: return v->valuedouble != 0;
    case cJSON_String:
    case cJSON_Raw: return v->valuestring && v->valuestring[0];
    case cJSON_Array:
    case cJSON_Object: return v->child != NULL;
    default: return 0;
    }
}

size_t tpl_utf8_step(const char *s, size_t n, size_t i)
{
    long cp;
    return tpl_utf8_decode((const unsigned char *)s, n, i, &cp);
}

size_t tpl_utf8_count(const char *s)
{
    size_t n = strlen(s), count = 0;
    for (size_t i = 0; i < n; i += tpl_utf8_step(s, n, i)) count++;
    return count;
}
