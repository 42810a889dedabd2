/* jsontext — see jsontext.h. */
#include "api/jsontext.h"

#include <ctype.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/timeutil.h"

/* s as a JSON string, escaped as cJSON escapes it (", \ and control characters; UTF-8 as is). */
void jt_string(JsonText *j, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    StrBuf *b = &j->b;
    sb_appendc(b, '"');
    const char *run = s;
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c >= 32 && *c != '"' && *c != '\\') continue;
        sb_appendn(b, run, (size_t)((const char *)c - run));
        run = (const char *)c + 1;
        char esc[7] = {'\\', 0};
        switch (*c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        default:
            esc[1] = 'u', esc[2] = '0', esc[3] = '0', esc[4] = hex[*c >> 4], esc[5] = hex[*c & 15];
        }
        sb_append(b, esc);
    }
    sb_append(b, run);
    sb_appendc(b, '"');
}

/* The separator and "key": of the next member (key NULL: an array element). Keys are our own
 * literals: plain ASCII, nothing to escape. */
void jt_key(JsonText *j, const char *key)
{
    if (!j->first) sb_appendc(&j->b, ',');
    j->first = 0;
    if (key) {
        sb_appendc(&j->b, '"');
        sb_append(&j->b, key);
        sb_appendn(&j->b, "\":", 2);
    }
}

void jt_open(JsonText *j, const char *key, char bracket)
{
    jt_key(j, key);
    sb_appendc(&j->b, bracket);
    j->first = 1;
}

void jt_close(JsonText *j, char bracket)
{
    sb_appendc(&j->b, bracket);
    j->first = 0;
}

void jt_str(JsonText *j, const char *key, const char *s) /* NULL: null */
{
    jt_key(j, key);
    if (s)
        jt_string(j, s);
    else
        sb_appendn(&j->b, "null", 4);
}

void jt_null(JsonText *j, const char *key) { jt_str(j, key, NULL); }

void jt_bool(JsonText *j, const char *key, int v)
{
    jt_key(j, key);
    sb_append(&j->b, v ? "true" : "false");
}

/* v in decimal, as "%lld" writes it (without printf's cost: a list holds ~700 of them). */
void jt_int(JsonText *j, const char *key, long long v)
{
    char buf[24], *e = buf + sizeof buf, *p = e;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0) *--p = '-';
    jt_key(j, key);
    sb_appendn(&j->b, p, (size_t)(e - p));
}

/* A number as cJSON 1.7 prints one (print_number): an int when it equals its (saturated)
 * int value, else the shortest of %1.15g / %1.17g that reads back as the same double. */
void jt_double(JsonText *j, const char *key, double d)
{
    jt_key(j, key);
    char buf[32];
    if (isnan(d) || isinf(d)) {
        sb_appendn(&j->b, "null", 4);
        return;
    }
    int vi = d >= INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d;
    if (d == (double)vi) {
        snprintf(buf, sizeof buf, "%d", vi);
    } else {
        snprintf(buf, sizeof buf, "%1.15g", d);
        double back = strtod(buf, NULL);
        double max = fabs(back) > fabs(d) ? fabs(back) : fabs(d);
        if (!(fabs(back - d) <= max * DBL_EPSILON)) snprintf(buf, sizeof buf, "%1.17g", d);
    }
    sb_append(&j->b, buf);
}

void jt_time(JsonText *j, const char *key, int64_t us) /* < 0: null */
{
    if (us < 0) {
        jt_null(j, key);
        return;
    }
    for (size_t i = 0; i < sizeof j->times / sizeof j->times[0]; i++)
        if (j->times[i].text[0] && j->times[i].us == us) {
            jt_str(j, key, j->times[i].text);
            return;
        }
    unsigned slot = j->next_time++ % (unsigned)(sizeof j->times / sizeof j->times[0]);
    time_format_iso(us, 1, j->times[slot].text, sizeof j->times[slot].text);
    j->times[slot].us = us;
    jt_str(j, key, j->times[slot].text);
}

/* api_uuid's text (32 hex digits as a dashed UUID, else the id as is) written as a JSON string
 * without api_uuid's snprintf. */
void jt_uuid(JsonText *j, const char *key, const char *hex)
{
    size_t n = hex ? strlen(hex) : 0;
    int ok = n == 32;
    for (size_t i = 0; ok && i < n; i++) ok = isxdigit((unsigned char)hex[i]) != 0;
    if (!ok) {
        char out[API_UUID_LEN];
        jt_str(j, key, api_uuid(hex, out));
        return;
    }
    char u[38], *p = u;
    static const int groups[] = {8, 4, 4, 4, 12};
    *p++ = '"';
    for (int g = 0; g < 5; g++) {
        if (g) *p++ = '-';
        memcpy(p, hex, (size_t)groups[g]);
        p += groups[g], hex += groups[g];
    }
    *p++ = '"';
    jt_key(j, key);
    sb_appendn(&j->b, u, (size_t)(p - u));
}

/* DagVersionResponse's members (without the braces). */
