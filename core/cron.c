/* cron — parse 5-field expressions into bitsets, and find fire times (see cron.h).
 *
 * The search works on a naive wall clock (calendar fields with no zone), skipping whole
 * months, days and hours that cannot match, so even "never" answers cost a few thousand
 * cheap steps. Time zones enter only at the edges: either by converting naive results
 * with tz_local_to_utc, or, for expressions that fire every hour, by walking absolute time
 * one constant-offset stretch at a time so that no real hour is skipped or repeated. */
#include "core/cron.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/tz.h"
#include "core/util.h"

typedef struct CronField {
    const char *name;                /* as printed in errors */
    int min, max;                    /* accepted numbers ('*' covers min..star_max) */
    int star_max;                    /* day-of-week: 7 is accepted but '*' means 0-6 */
    const char *const *names;        /* NULL or names for min.. in order */
    int names_base;                  /* value of names[0] */
    int nnames;
} CronField;

static const char *const MONTH_NAMES[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                          "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
static const char *const DAY_NAMES[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"};

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW };

static const CronField FIELDS[5] = {
    {"minute", 0, 59, 59, NULL, 0, 0},
    {"hour", 0, 23, 23, NULL, 0, 0},
    {"day-of-month", 1, 31, 31, NULL, 0, 0},
    {"month", 1, 12, 12, MONTH_NAMES, 1, 12},
    {"day-of-week", 0, 7, 6, DAY_NAMES, 0, 7},
};

static const struct {
    const char *name, *expr;
} PRESETS[] = {
    {"@hourly", "0 * * * *"},  {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},  {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

const char *cron_preset(const char *text)
{
    if (!text) return NULL;
    while (isspace((unsigned char)*text)) text++;
    size_t n = strlen(text);
    while (n && isspace((unsigned char)text[n - 1])) n--;
    for (size_t i = 0; i < GUST_ARRAY_LEN(PRESETS); i++)
        if (strlen(PRESETS[i].name) == n && strncasecmp(text, PRESETS[i].name, n) == 0)
            return PRESETS[i].expr;
    return NULL;
}

/* ---- parsing ------------------------------------------------------------------------- */

typedef struct CronParse {
    const char *text; /* the whole expression, for messages */
    char *err;
    size_t errlen;
} CronParse;

static int fail(const CronParse *ps, const CronField *f, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(const CronParse *ps, const CronField *f, const char *fmt, ...)
{
    char why[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    snprintf(ps->err, ps->errlen, "invalid cron expression '%.100s': %s field: %s", ps->text, f->name,
             why);
    return -1;
}

/* A number or (where the field has them) a name. *p advances past it. */
static int parse_value(const CronParse *ps, const CronField *f, const char **p, int *out)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        int n = 0;
        while (isdigit((unsigned char)*s)) {
            if (v < 100000000) v = v * 10 + (*s - '0');
            s++, n++;
        }
        if (v < f->min || v > f->max) {
            char num[24];
            snprintf(num, sizeof num, "%.*s", n > 12 ? 12 : n, *p);
            return fail(ps, f, "%s is out of range %d-%d", num, f->min, f->max);
        }
        *p = s;
        *out = (int)v;
        return 0;
    }
    if (isalpha((unsigned char)*s)) {
        int n = 0;
        while (isalpha((unsigned char)s[n])) n++;
        char word[16];
        snprintf(word, sizeof word, "%.*s", n > 12 ? 12 : n, s);
        if (!f->names)
            return fail(ps, f, "unexpected '%s' (expected a number %d-%d)", word, f->min, f->max);
        for (int i = 0; i < f->nnames; i++)
            if (n == 3 && strncasecmp(s, f->names[i], 3) == 0) {
                *p = s + n;
                *out = f->names_base + i;
                return 0;
            }
        return fail(ps, f, "unknown name '%s'", word);
    }
    if (!*s || *s == ',') return fail(ps, f, "empty list element");
    return fail(ps, f, "unexpected '%c'", *s);
}

static void set_bits(CronExpr *c, int field, int lo, int hi, int step)
{
    for (int v = lo; v <= hi; v += step) {
        switch (field) {
        case F_MINUTE: c->minutes |= UINT64_C(1) << v; break;
        case F_HOUR: c->hours |= UINT32_C(1) << v; break;
        case F_DOM: c->days |= UINT32_C(1) << v; break;
        case F_MONTH: c->months |= (uint16_t)(1u << v); break;
        default: c->weekdays |= (uint8_t)(1u << (v % 7)); break;
        }
    }
}

/* One comma-separated element: '*', '?', value, range, each with an optional step; plus
 * 'L' (day-of-month) and 'd#n' (day-of-week). */
static int parse_element(const CronParse *ps, int field, const char **pp, CronExpr *c)
{
    const CronField *f = &FIELDS[field];
    const char *p = *pp;
    int lo, hi, step = 1, star = 0;
    if (*p == '*' || *p == '?') {
        lo = f->min, hi = f->star_max, star = 1;
        p++;
    } else if (field == F_DOM && (*p == 'L' || *p == 'l') && !isalpha((unsigned char)p[1])) {
        c->dom_last = 1;
        *pp = p + 1;
        return 0;
    } else {
        if (parse_value(ps, f, &p, &lo) < 0) return -1;
        hi = lo;
        if (field == F_DOW && *p == '#') {
            p++;
            if (!isdigit((unsigned char)*p) || p[0] < '1' || p[0] > '5' || isdigit((unsigned char)p[1]))
                return fail(ps, f, "'#' must be followed by 1-5 (the n-th weekday of the month)");
            c->dow_nth[lo % 7] |= (uint8_t)(1u << (p[0] - '0'));
            *pp = p + 1;
            return 0;
        }
        if (*p == '-') {
            p++;
            if (parse_value(ps, f, &p, &hi) < 0) return -1;
            if (hi < lo) return fail(ps, f, "range %d-%d goes backwards", lo, hi);
        }
    }
    if (*p == '/') {
        p++;
        if (!isdigit((unsigned char)*p)) {
            if (!*p || *p == ',') return fail(ps, f, "missing step after '/'");
            return fail(ps, f, "step must be a number, got '%c'", *p);
        }
        long v = 0;
        while (isdigit((unsigned char)*p)) {
            if (v < 1000000) v = v * 10 + (*p - '0');
            p++;
        }
        if (v == 0) return fail(ps, f, "step must be positive");
        step = (int)(v > 1000 ? 1000 : v);
        if (!star && hi == lo) hi = f->star_max; /* "a/n" = from a to the end, every n */
    }
    if (*p && *p != ',') return fail(ps, f, "unexpected '%c'", *p);
    set_bits(c, field, lo, hi, step);
    *pp = p;
    return 0;
}

static int parse_field(const CronParse *ps, int field, const char *text, CronExpr *c)
{
    const char *p = text;
    for (;;) {
        if (parse_element(ps, field, &p, c) < 0) return -1;
        if (!*p) return 0;
        p++; /* ',' */
        if (!*p) return fail(ps, &FIELDS[field], "empty list element");
    }
}

int cron_parse(const char *text, CronExpr *out, char *err, size_t errlen)
{
    CronParse ps = {text ? text : "", err, errlen};
    memset(out, 0, sizeof *out);
    const char *src = ps.text;
    const char *preset = cron_preset(src);
    if (preset) src = preset;
    const char *p = src;
    while (isspace((unsigned char)*p)) p++;
    if (*p == '@') {
        snprintf(err, errlen,
                 "invalid cron expression '%.100s': unknown preset (use @hourly, @daily, @weekly, "
                 "@monthly or @yearly)",
                 ps.text);
        return -1;
    }
    /* Split a private copy in place: lists like "0,5,10,...,55" make fields of any length. */
    char *copy = xstrdup(p), *fields[5] = {0};
    int n = 0;
    for (char *q = copy; *q;) {
        char *start = q;
        while (*q && !isspace((unsigned char)*q)) q++;
        if (*q) *q++ = '\0';
        if (n < 5) fields[n] = start;
        n++;
        while (isspace((unsigned char)*q)) q++;
    }
    if (n != 5) {
        snprintf(err, errlen, "invalid cron expression '%.100s': expected 5 fields, got %d%s", ps.text, n,
                 n == 6 ? " (a seconds field is not supported)" : "");
        free(copy);
        return -1;
    }
    for (int i = 0; i < 5; i++)
        if (parse_field(&ps, i, fields[i], out) < 0) {
            free(copy);
            return -1;
        }
    out->dom_star = fields[F_DOM][0] == '*' || fields[F_DOM][0] == '?';
    out->dow_star = fields[F_DOW][0] == '*' || fields[F_DOW][0] == '?';
    out->every_hour = out->hours == 0xFFFFFFu;
    free(copy);
    return 0;
}

/* ---- naive wall-clock search ---------------------------------------------------------- */

static int day_matches(const CronExpr *c, int y, int m, int d)
{
    int wd = time_weekday_from_days(time_days_from_civil(y, m, d));
    int dom = (c->days >> d & 1) || (c->dom_last && d == time_days_in_month(y, m));
    int dow = (c->weekdays >> wd & 1) || (c->dow_nth[wd] >> ((d - 1) / 7 + 1) & 1);
    if (c->dom_star || c->dow_star) return dom && dow;
    return dom || dow;
}

/* First set bit >= from (or <= from when down), -1 if none. */
static int bit_next(uint64_t mask, int from, int max)
{
    for (int i = from; i <= max; i++)
        if (mask >> i & 1) return i;
    return -1;
}

static int bit_prev(uint64_t mask, int from)
{
    for (int i = from; i >= 0; i--)
        if (mask >> i & 1) return i;
    return -1;
}

static int64_t fields_us(int y, int m, int d, int h, int mi)
{
    return time_days_from_civil(y, m, d) * TIME_US_PER_DAY + h * TIME_US_PER_HOUR + mi * TIME_US_PER_MIN;
}

/* Earliest matching wall minute >= t, or -1 within CRON_SEARCH_YEARS. */
static int64_t naive_next_ge(const CronExpr *c, int64_t t)
{
    if (t < TIME_MIN_US || t > TIME_MAX_US) return -1;
    t = time_floor_div(t + TIME_US_PER_MIN - 1, TIME_US_PER_MIN) * TIME_US_PER_MIN;
    TimeFields f;
    time_to_fields(t, &f);
    int y = f.year, m = f.month, d = f.day, h = f.hour, mi = f.minute;
    int ylimit = y + CRON_SEARCH_YEARS;
    if (ylimit > 9999) ylimit = 9999;
    while (y <= ylimit) {
        if (!(c->months >> m & 1)) {
            d = 1, h = 0, mi = 0;
            if (++m > 12) m = 1, y++;
            continue;
        }
        if (!day_matches(c, y, m, d)) {
            h = 0, mi = 0;
            if (++d > time_days_in_month(y, m)) {
                d = 1;
                if (++m > 12) m = 1, y++;
            }
            continue;
        }
        int hh = bit_next(c->hours, h, 23);
        if (hh != h) {
            mi = 0;
            if (hh < 0) {
                h = 0;
                if (++d > time_days_in_month(y, m)) {
                    d = 1;
                    if (++m > 12) m = 1, y++;
                }
                continue;
            }
            h = hh;
        }
        int mm = bit_next(c->minutes, mi, 59);
        if (mm < 0) {
            mi = 0;
            if (++h > 23) {
                h = 0;
                if (++d > time_days_in_month(y, m)) {
                    d = 1;
                    if (++m > 12) m = 1, y++;
                }
            }
            continue;
        }
        return fields_us(y, m, d, h, mm);
    }
    return -1;
}

/* Latest matching wall minute <= t, or -1. */
static int64_t naive_prev_le(const CronExpr *c, int64_t t)
{
    if (t < TIME_MIN_US || t > TIME_MAX_US) return -1;
    TimeFields f;
    time_to_fields(t, &f);
    int y = f.year, m = f.month, d = f.day, h = f.hour, mi = f.minute;
    int ylimit = y - CRON_SEARCH_YEARS;
    if (ylimit < 1) ylimit = 1;
#define PREV_DAY()                                     \
    do {                                               \
        h = 23, mi = 59;                               \
        if (--d < 1) {                                 \
            if (--m < 1) m = 12, y--;                  \
            d = y >= 1 ? time_days_in_month(y, m) : 1; \
        }                                              \
    } while (0)
    while (y >= ylimit) {
        if (!(c->months >> m & 1)) {
            h = 23, mi = 59;
            if (--m < 1) m = 12, y--;
            d = y >= 1 ? time_days_in_month(y, m) : 1;
            continue;
        }
        if (!day_matches(c, y, m, d)) {
            PREV_DAY();
            continue;
        }
        int hh = bit_prev(c->hours, h);
        if (hh != h) {
            mi = 59;
            if (hh < 0) {
                PREV_DAY();
                continue;
            }
            h = hh;
        }
        int mm = bit_prev(c->minutes, mi);
        if (mm < 0) {
            mi = 59;
            if (--h < 0) PREV_DAY();
            continue;
        }
        return fields_us(y, m, d, h, mm);
    }
#undef PREV_DAY
    return -1;
}

/* ---- fire times on a zone's clock ----------------------------------------------------- */

#define US_PER_SEC TIME_US_PER_SEC
/* Transitions nearer than this to a candidate may reorder wall times against instants. */
#define NEAR_US (3 * TIME_US_PER_HOUR)

/* Hourly-ish: the first instant > after whose wall time matches. Within one stretch of
 * constant offset, wall time and instants move together, so the naive answer converts
 * exactly unless it lies beyond the stretch; then continue from the stretch's end. */
static int64_t walk_next(const CronExpr *c, const GustTz *tz, int64_t after)
{
    int64_t cur = after + 1, stop = after + (int64_t)CRON_SEARCH_YEARS * 366 * TIME_US_PER_DAY;
    while (cur <= stop) {
        int64_t off = (int64_t)tz_offset_at_utc(tz, cur) * US_PER_SEC;
        int64_t T = tz_next_transition(tz, cur);
        int64_t n = naive_next_ge(c, cur + off);
        if (n < 0) return -1;
        if (n - off < T) return n - off;
        cur = T;
    }
    return -1;
}

static int64_t walk_prev(const CronExpr *c, const GustTz *tz, int64_t before)
{
    int64_t cur = before, stop = before - (int64_t)CRON_SEARCH_YEARS * 366 * TIME_US_PER_DAY;
    while (cur >= stop) {
        int64_t off = (int64_t)tz_offset_at_utc(tz, cur - 1) * US_PER_SEC;
        int64_t P = tz_prev_transition(tz, cur - 1);
        int64_t n = naive_prev_le(c, cur - 1 + off);
        if (n < 0) return -1;
        if (P == INT64_MIN || n - off >= P) return n - off;
        cur = P;
    }
    return -1;
}

/* Wall-clock semantics: fire times are tz_local_to_utc(N) for every matching naive N. That
 * map is monotonic except next to a transition, so the naive search starts from the wall
 * time of `after` under each offset in force nearby (a fall-back repeats wall times already
 * passed), and near a transition a few more candidates are compared. */
static int64_t wall_next(const CronExpr *c, const GustTz *tz, int64_t after)
{
    /* Start points: the offset now, the one after an imminent transition (a fall-back
     * repeats wall times), and the one before a recent transition (a spring-forward moves
     * wall times of the gap to instants just after it). */
    int64_t offs[3] = {(int64_t)tz_offset_at_utc(tz, after) * US_PER_SEC, 0, 0};
    int noff = 1;
    int64_t T = tz_next_transition(tz, after), P = tz_prev_transition(tz, after);
    if (T != INT64_MAX && T - after < 30 * TIME_US_PER_HOUR)
        offs[noff++] = (int64_t)tz_offset_at_utc(tz, T) * US_PER_SEC;
    if (P != INT64_MIN && after - P < 30 * TIME_US_PER_HOUR)
        offs[noff++] = (int64_t)tz_offset_at_utc(tz, P - 1) * US_PER_SEC;
    int64_t best = -1;
    for (int i = 0; i < noff; i++) {
        int64_t n = naive_next_ge(c, after + offs[i] + 1), first_n = -1;
        for (int guard = 0; n >= 0 && guard < 400; guard++) {
            int64_t r = tz_local_to_utc(tz, n);
            if (r > after && (best < 0 || r < best)) best = r;
            if (r > after && first_n < 0) {
                first_n = n;
                /* No transition near: the rest map monotonically, r is the least. */
                if (tz_next_transition(tz, after - NEAR_US) > r) break;
            }
            if (first_n >= 0 && n - first_n > NEAR_US) break;
            n = naive_next_ge(c, n + TIME_US_PER_MIN);
        }
    }
    return best;
}

static int64_t wall_prev(const CronExpr *c, const GustTz *tz, int64_t before)
{
    int64_t offs[2] = {(int64_t)tz_offset_at_utc(tz, before - 1) * US_PER_SEC, 0};
    int noff = 1;
    int64_t P = tz_prev_transition(tz, before - 1);
    if (P != INT64_MIN && before - P < 30 * TIME_US_PER_HOUR)
        offs[noff++] = (int64_t)tz_offset_at_utc(tz, P - 1) * US_PER_SEC;
    int64_t best = -1;
    for (int i = 0; i < noff; i++) {
        int64_t n = naive_prev_le(c, before - 1 + offs[i]), first_n = -1;
        for (int guard = 0; n >= 0 && guard < 400; guard++) {
            int64_t r = tz_local_to_utc(tz, n);
            if (r < before && r > best) best = r;
            if (r < before && first_n < 0) {
                first_n = n;
                /* No transition near or after r: monotonic. (A gap just below r maps wall times
                 * before r's to instants after it, hence the margin.) */
                if (tz_prev_transition(tz, before - 1) < r - NEAR_US) break;
            }
            if (first_n >= 0 && first_n - n > NEAR_US) break;
            n = naive_prev_le(c, n - TIME_US_PER_MIN);
        }
    }
    return best;
}

int64_t cron_next(const CronExpr *c, const GustTz *tz, int64_t after_us)
{
    if (after_us < TIME_MIN_US || after_us >= TIME_MAX_US) return -1;
    int64_t r;
    if (tz_is_utc(tz))
        r = naive_next_ge(c, after_us + 1);
    else if (c->every_hour)
        r = walk_next(c, tz, after_us);
    else
        r = wall_next(c, tz, after_us);
    return r > TIME_MAX_US ? -1 : r;
}

int64_t cron_prev(const CronExpr *c, const GustTz *tz, int64_t before_us)
{
    if (before_us <= TIME_MIN_US || before_us > TIME_MAX_US + 1) return -1;
    int64_t r;
    if (tz_is_utc(tz))
        r = naive_prev_le(c, before_us - 1);
    else if (c->every_hour)
        r = walk_prev(c, tz, before_us);
    else
        r = wall_prev(c, tz, before_us);
    return r < TIME_MIN_US ? -1 : r;
}

int cron_matches(const CronExpr *c, const GustTz *tz, int64_t utc_us)
{
    if (utc_us <= TIME_MIN_US || utc_us > TIME_MAX_US) return 0;
    return cron_next(c, tz, utc_us - 1) == utc_us;
}
