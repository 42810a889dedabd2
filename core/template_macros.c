/* template_macros — Airflow's macros.ds_add and macros.ds_format.
 *
 * Date arithmetic is done on a proleptic Gregorian day count (Howard Hinnant's civil-date
 * algorithms), not with mktime, so it cannot depend on the worker's time zone or DST rules,
 * and it is limited to years 1..9999 like Python's datetime. */
#include "core/template_ast.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long days_from_civil(long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long)doe - 719468;
}

static void civil_from_days(long z, long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long)yoe + era * 400 + (*m <= 2);
}

static unsigned days_in_month(long y, unsigned m)
{
    static const unsigned dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dim[m - 1];
}

static int digit(char c) { return c >= '0' && c <= '9'; }

/* One or two digits, as Python's strptime regexes for %m and %d take them: two digits when
 * they form a value in 1..hi (01..09 included), else one digit 1..9; %d also takes " 5". */
static int read_1or2(const char **s, unsigned hi, unsigned *out)
{
    const char *p = *s;
    if (digit(p[0]) && digit(p[1])) {
        unsigned v = (unsigned)((p[0] - '0') * 10 + (p[1] - '0'));
        if (v >= 1 && v <= hi) {
            *out = v;
            *s = p + 2;
            return 0;
        }
    }
    if (hi == 31 && p[0] == ' ') p++;
    if (p[0] >= '1' && p[0] <= '9') {
        *out = (unsigned)(p[0] - '0');
        *s = p + 1;
        return 0;
    }
    return -1;
}

int tpl_ds_add(const char *ds, double days, char out[48], char *err, size_t errlen)
{
    const char *s = ds;
    unsigned m, d;
    int ok = digit(s[0]) && digit(s[1]) && digit(s[2]) && digit(s[3]) && s[4] == '-';
    long y = ok ? strtol(s, NULL, 10) : 0;
    if (ok) {
        s += 5;
        ok = read_1or2(&s, 12, &m) == 0 && *s++ == '-' && read_1or2(&s, 31, &d) == 0 && *s == '\0';
    }
    if (!ok) {
        snprintf(err, errlen, "time data '%.64s' does not match format '%%Y-%%m-%%d'", ds);
        return -1;
    }
    if (y < 1) {
        snprintf(err, errlen, "year 0 is out of range");
        return -1;
    }
    if (d > days_in_month(y, m)) {
        snprintf(err, errlen, "day is out of range for month in '%.64s'", ds);
        return -1;
    }
    days = floor(days);
    if (!(days > -4e6 && days < 4e6)) {
        snprintf(err, errlen, "date value out of range");
        return -1;
    }
    long z = days_from_civil(y, m, d) + (long)days;
    civil_from_days(z, &y, &m, &d);
    if (y < 1 || y > 9999) {
        snprintf(err, errlen, "date value out of range");
        return -1;
    }
    snprintf(out, 48, "%04ld-%02u-%02u", y, m, d);
    return 0;
}

/* The formats are the template author's, not ours: that is the point of ds_format. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

char *tpl_ds_format(const char *ds, const char *in_fmt, const char *out_fmt, char *err, size_t errlen)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    tm.tm_mday = 1; /* Python's defaults: 1900-01-01 00:00:00 */
    const char *end = strptime(ds, in_fmt, &tm);
    if (!end || *end) {
        snprintf(err, errlen, "time data '%.64s' does not match format '%.64s'", ds, in_fmt);
        return NULL;
    }
    long y = (long)tm.tm_year + 1900;
    if (y < 1 || y > 9999 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 ||
        (unsigned)tm.tm_mday > days_in_month(y, (unsigned)tm.tm_mon + 1) || tm.tm_hour < 0 || tm.tm_hour > 23 ||
        tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 59) {
        snprintf(err, errlen, "'%.64s' is not a valid date", ds);
        return NULL;
    }
    long z = days_from_civil(y, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday);
    tm.tm_wday = (int)(((z % 7) + 11) % 7); /* 1970-01-01 was a Thursday */
    tm.tm_yday = (int)(z - days_from_civil(y, 1, 1));
    tm.tm_isdst = 0;
    tm.tm_gmtoff = 0;
    tm.tm_zone = "";

    /* strftime's 0 is both "too small" and "empty": a sentinel byte tells them apart. */
    size_t flen = strlen(out_fmt);
    char *fmt = malloc(flen + 2);
    if (!fmt) return NULL;
    memcpy(fmt, out_fmt, flen);
    fmt[flen] = '\x01';
    fmt[flen + 1] = '\0';
    for (size_t cap = 256; cap <= TEMPLATE_MAX_OUTPUT; cap *= 4) {
        char *buf = malloc(cap);
        if (!buf) break;
        size_t n = strftime(buf, cap, fmt, &tm);
        if (n > 0) {
            if (buf[n - 1] == '\x01') buf[n - 1] = '\0';
            free(fmt);
            return buf;
        }
        free(buf);
    }
    free(fmt);
    snprintf(err, errlen, "formatted date is too long");
    return NULL;
}

#pragma GCC diagnostic pop
