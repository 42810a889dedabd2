/* timeutil — civil calendar arithmetic and ISO 8601 parsing/printing (see timeutil.h).
 *
 * The day-number conversions are Howard Hinnant's era-based formulas: exact for every
 * proleptic Gregorian date, branch-light, and free of time_t/localtime. The parser is
 * hand-written rather than strptime-based so that every rejection names the field that is
 * wrong, which is what a user staring at a DAG's start_date needs. */
#include "core/timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/tz.h"

int64_t time_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

int64_t time_floor_mod(int64_t a, int64_t b)
{
    return a - time_floor_div(a, b) * b;
}

int64_t time_days_from_civil(int y, int m, int d)
{
    int64_t yy = (int64_t)y - (m <= 2);
    int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
    int64_t yoe = yy - era * 400;                         /* [0, 399] */
    int64_t mp = (m + 9) % 12;                            /* March = 0 */
    int64_t doy = (153 * mp + 2) / 5 + d - 1;             /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;  /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

void time_civil_from_days(int64_t days, int *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t dd = doy - (153 * mp + 2) / 5 + 1;
    int64_t mm = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yoe + era * 400 + (mm <= 2));
    *m = (int)mm;
    *d = (int)dd;
}

int time_is_leap_year(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int time_days_in_month(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12) return 0;
    return m == 2 && time_is_leap_year(y) ? 29 : days[m - 1];
}

int time_weekday_from_days(int64_t days)
{
    /* 1970-01-01 was a Thursday (4). */
    return (int)time_floor_mod(days + 4, 7);
}

void time_to_fields(int64_t us, TimeFields *out)
{
    int64_t days = time_floor_div(us, TIME_US_PER_DAY);
    int64_t rest = us - days * TIME_US_PER_DAY;
    time_civil_from_days(days, &out->year, &out->month, &out->day);
    int64_t secs = rest / TIME_US_PER_SEC;
    out->usec = (int)(rest % TIME_US_PER_SEC);
    out->hour = (int)(secs / 3600);
    out->minute = (int)(secs / 60 % 60);
    out->second = (int)(secs % 60);
}

int64_t time_from_fields(const TimeFields *f)
{
    int64_t days = time_days_from_civil(f->year, f->month, f->day);
    int64_t secs = (int64_t)f->hour * 3600 + (int64_t)f->minute * 60 + f->second;
    return days * TIME_US_PER_DAY + secs * TIME_US_PER_SEC + f->usec;
}

/* ---- parsing ------------------------------------------------------------------------ */

#define ISO_HINT "expected YYYY-MM-DD[THH:MM[:SS[.ffffff]]][Z|+HH:MM]"

/* Read between min and max decimal digits; returns the count read or -1 if fewer than min. */
static int read_digits(const char **p, int min, int max, int *out)
{
    int n = 0, v = 0;
    while (n < max && isdigit((unsigned char)(*p)[n])) v = v * 10 + ((*p)[n++] - '0');
    if (n < min) return -1;
    *p += n;
    *out = v;
    return n;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Parse the offset after the time ("Z", "+02:00", "-0500", "+2"), in seconds east of UTC.
 * Returns 0, 1 if there is no offset at *p, or -1 with err filled. */
static int parse_offset(const char **pp, int *off_sec, const char *what, const char *s, char *err,
                        size_t errlen)
{
    const char *p = *pp;
    while (is_blank(*p)) p++;
    if (*p == 'Z' || *p == 'z') {
        *off_sec = 0;
        *pp = p + 1;
        return 0;
    }
    if (*p != '+' && *p != '-') return 1;
    int sign = *p == '-' ? -1 : 1;
    p++;
    int hh, mm = 0;
    int nd = read_digits(&p, 1, 2, &hh);
    if (nd < 0) {
        snprintf(err, errlen, "invalid %s '%.80s': bad UTC offset (write Z, +HH:MM or -HHMM)", what, s);
        return -1;
    }
    if (*p == ':') {
        p++;
        if (read_digits(&p, 2, 2, &mm) < 0) {
            snprintf(err, errlen, "invalid %s '%.80s': bad UTC offset minutes (write +HH:MM)", what, s);
            return -1;
        }
    } else if (nd == 2 && isdigit((unsigned char)*p)) {
        if (read_digits(&p, 2, 2, &mm) < 0) {
            snprintf(err, errlen, "invalid %s '%.80s': bad UTC offset (write +HHMM)", what, s);
            return -1;
        }
    }
    if (hh > 23 || mm > 59) {
        snprintf(err, errlen, "invalid %s '%.80s': UTC offset must be within -23:59..+23:59", what, s);
        return -1;
    }
    *off_sec = sign * (hh * 3600 + mm * 60);
    *pp = p;
    return 0;
}

int time_parse_iso(const char *s, const GustTz *tz, int64_t *out_us, char *err, size_t errlen)
{
    if (!s) s = "";
    const char *what = strchr(s, ':') ? "datetime" : "date";
    const char *p = s;
    while (isspace((unsigned char)*p)) p++;
    TimeFields f = {0};
    if (read_digits(&p, 4, 4, &f.year) < 0 || *p++ != '-' || read_digits(&p, 1, 2, &f.month) < 0 ||
        *p++ != '-' || read_digits(&p, 1, 2, &f.day) < 0) {
        snprintf(err, errlen, "invalid %s '%.80s': " ISO_HINT, what, s);
        return -1;
    }
    if (f.year < 1) {
        snprintf(err, errlen, "invalid %s '%.80s': year must be 1-9999", what, s);
        return -1;
    }
    if (f.month < 1 || f.month > 12) {
        snprintf(err, errlen, "invalid %s '%.80s': month must be 1-12", what, s);
        return -1;
    }
    int mdays = time_days_in_month(f.year, f.month);
    if (f.day < 1 || f.day > mdays) {
        snprintf(err, errlen, "invalid %s '%.80s': day must be 1-%d for %04d-%02d", what, s, mdays,
                 f.year, f.month);
        return -1;
    }
    int has_offset = 0, off_sec = 0;
    const char *q = p;
    while (is_blank(*q)) q++;
    if (*p == 'T' || *p == 't' || (is_blank(*p) && isdigit((unsigned char)*q))) {
        p = (*p == 'T' || *p == 't') ? p + 1 : q;
        if (read_digits(&p, 1, 2, &f.hour) < 0 || *p++ != ':' || read_digits(&p, 2, 2, &f.minute) < 0) {
            snprintf(err, errlen, "invalid %s '%.80s': bad time of day (" ISO_HINT ")", what, s);
            return -1;
        }
        if (*p == ':') {
            p++;
            if (read_digits(&p, 2, 2, &f.second) < 0) {
                snprintf(err, errlen, "invalid %s '%.80s': bad seconds (" ISO_HINT ")", what, s);
                return -1;
            }
            if (*p == '.' || *p == ',') {
                p++;
                int n = 0;
                while (isdigit((unsigned char)*p)) {
                    if (n < 6) f.usec = f.usec * 10 + (*p - '0');
                    n++, p++;
                }
                if (n == 0) {
                    snprintf(err, errlen, "invalid %s '%.80s': missing digits after the decimal point",
                             what, s);
                    return -1;
                }
                for (; n < 6; n++) f.usec *= 10;
            }
        }
        if (f.hour > 23) {
            snprintf(err, errlen, "invalid %s '%.80s': hour must be 0-23", what, s);
            return -1;
        }
        if (f.minute > 59) {
            snprintf(err, errlen, "invalid %s '%.80s': minute must be 0-59", what, s);
            return -1;
        }
        if (f.second > 59) {
            snprintf(err, errlen, "invalid %s '%.80s': second must be 0-59", what, s);
            return -1;
        }
        int r = parse_offset(&p, &off_sec, what, s, err, errlen);
        if (r < 0) return -1;
        has_offset = r == 0;
    }
    while (isspace((unsigned char)*p)) p++;
    if (*p) {
        snprintf(err, errlen, "invalid %s '%.80s': unexpected '%.20s' (" ISO_HINT ")", what, s, p);
        return -1;
    }
    int64_t wall = time_from_fields(&f);
    if (has_offset)
        *out_us = wall - (int64_t)off_sec * TIME_US_PER_SEC;
    else
        *out_us = tz_local_to_utc(tz, wall);
    return 0;
}

/* ---- printing ----------------------------------------------------------------------- */

static void format_fields(const TimeFields *f, int with_micros, const char *suffix, char *buf,
                          size_t buflen)
{
    if (with_micros)
        snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%06d%s", f->year, f->month, f->day,
                 f->hour, f->minute, f->second, f->usec, suffix);
    else
        snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d%s", f->year, f->month, f->day, f->hour,
                 f->minute, f->second, suffix);
}

void time_format_iso(int64_t us, int with_micros, char *buf, size_t buflen)
{
    TimeFields f;
    time_to_fields(us, &f);
    format_fields(&f, with_micros, "Z", buf, buflen);
}

void time_format_iso_local(int64_t us, const GustTz *tz, int with_micros, char *buf, size_t buflen)
{
    int off = tz_offset_at_utc(tz, us);
    TimeFields f;
    time_to_fields(us + (int64_t)off * TIME_US_PER_SEC, &f);
    int a = off < 0 ? -off : off;
    char suffix[16];
    if (a % 60)
        snprintf(suffix, sizeof suffix, "%c%02d:%02d:%02d", off < 0 ? '-' : '+', a / 3600, a / 60 % 60,
                 a % 60);
    else
        snprintf(suffix, sizeof suffix, "%c%02d:%02d", off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
    format_fields(&f, with_micros, suffix, buf, buflen);
}
