/* tz — a TZif reader (RFC 8536) and the POSIX TZ rule evaluator behind it (see tz.h).
 *
 * A zone is two things: a sorted table of transition instants with the offset that starts
 * at each, and (from version 2 on) a POSIX TZ string such as "EST5EDT,M3.2.0,M11.1.0" that
 * describes every later year. Debian ships "fat" files listing transitions up to 2037, other
 * distributions "slim" ones that stop at the last rule change (2007 for New York), so the
 * footer is not an afterthought: it is how most instants are resolved.
 *
 * All arithmetic below is in whole seconds (TZif's unit; some historical offsets are not
 * whole minutes); the public functions convert to and from microseconds at the edge. */
#include "core/tz.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/util.h"

#define TZ_MAX_TYPES 256
#define TZ_MAX_TRANS 200000
/* Wide enough to contain every transition that can affect a wall time: offsets stay
 * within +-26 h, and a wall time is at most one offset away from its instant. */
#define TZ_WINDOW_SEC (30 * 3600)

/* A POSIX rule date: Jn (1-365, Feb 29 never counted), n (0-365), or Mm.w.d. */
typedef struct TzRuleDate {
    char kind;    /* 'J', 'n' or 'M' */
    int a;        /* day for J/n, month for M */
    int w, d;     /* week 1-5 (5 = last) and weekday 0-6, for M */
    int32_t time; /* seconds after local midnight, may be negative or beyond 24 h */
} TzRuleDate;

typedef struct TzRule {
    int32_t std_off, dst_off; /* seconds east of UTC */
    int has_dst;              /* 0: std_off all year */
    TzRuleDate start, end;    /* DST starts (in std time) / ends (in dst time) */
} TzRule;

struct GustTz {
    char *name;          /* as loaded; "UTC" for the UTC aliases */
    int64_t *trans;      /* transition instants, seconds, strictly increasing */
    uint8_t *trans_type; /* the type in force from trans[i] on */
    int ntrans;
    int32_t type_off[TZ_MAX_TYPES]; /* seconds east of UTC per local time type */
    int ntypes;
    int has_rule; /* the footer applies after the last transition */
    TzRule rule;
    int is_utc; /* every offset is zero: conversions are the identity */
};

typedef struct TzEvent {
    int64_t t;   /* instant, seconds */
    int32_t off; /* offset from t on */
} TzEvent;

/* ---- POSIX TZ rules ------------------------------------------------------------------ */

/* [+-]h[hh][:mm[:ss]] -> seconds; max_h bounds the hours (24 for offsets, 167 for rule times). */
static int parse_hms(const char **pp, int max_h, int32_t *out)
{
    const char *p = *pp;
    int sign = 1;
    if (*p == '+' || *p == '-') sign = *p++ == '-' ? -1 : 1;
    if (!isdigit((unsigned char)*p)) return -1;
    int h = 0, m = 0, s = 0, n = 0;
    while (isdigit((unsigned char)*p) && n < 3) h = h * 10 + (*p++ - '0'), n++;
    if (h > max_h) return -1;
    if (*p == ':') {
        p++;
        if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1])) return -1;
        m = (p[0] - '0') * 10 + (p[1] - '0');
        p += 2;
        if (*p == ':') {
            p++;
            if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1])) return -1;
            s = (p[0] - '0') * 10 + (p[1] - '0');
            p += 2;
        }
    }
    if (m > 59 || s > 59) return -1;
    *out = sign * (h * 3600 + m * 60 + s);
    *pp = p;
    return 0;
}

static int parse_abbr(const char **pp)
{
    const char *p = *pp;
    if (*p == '<') {
        p++;
        while (*p && *p != '>') p++;
        if (*p != '>') return -1;
        *pp = p + 1;
        return 0;
    }
    int n = 0;
    while (isalpha((unsigned char)*p)) p++, n++;
    if (n < 3) return -1;
    *pp = p;
    return 0;
}

static int parse_rule_date(const char **pp, TzRuleDate *r)
{
    const char *p = *pp;
    char *end;
    if (*p == 'J' || isdigit((unsigned char)*p)) {
        r->kind = *p == 'J' ? 'J' : 'n';
        if (*p == 'J') p++;
        if (!isdigit((unsigned char)*p)) return -1;
        long v = strtol(p, &end, 10);
        if (v < (r->kind == 'J' ? 1 : 0) || v > 365) return -1;
        r->a = (int)v;
        p = end;
    } else if (*p == 'M') {
        r->kind = 'M';
        int vals[3];
        p++;
        for (int i = 0; i < 3; i++) {
            if (i && *p++ != '.') return -1;
            if (!isdigit((unsigned char)*p)) return -1;
            long v = strtol(p, &end, 10);
            if (end - p > 2) return -1;
            vals[i] = (int)v;
            p = end;
        }
        if (vals[0] < 1 || vals[0] > 12 || vals[1] < 1 || vals[1] > 5 || vals[2] > 6) return -1;
        r->a = vals[0], r->w = vals[1], r->d = vals[2];
    } else {
        return -1;
    }
    r->time = 7200; /* POSIX default: 02:00 */
    if (*p == '/' && (p++, parse_hms(&p, 167, &r->time) < 0)) return -1;
    *pp = p;
    return 0;
}

/* Parse a TZ string like "CET-1CEST,M3.5.0,M10.5.0/3" or "<+0330>-3:30". */
static int parse_posix_tz(const char *s, TzRule *r)
{
    const char *p = s;
    int32_t v;
    memset(r, 0, sizeof *r);
    if (parse_abbr(&p) < 0 || parse_hms(&p, 24, &v) < 0) return -1;
    r->std_off = -v; /* POSIX offsets count hours west */
    if (!*p) return 0;
    if (parse_abbr(&p) < 0) return -1;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*p && *p != ',') {
        if (parse_hms(&p, 24, &v) < 0) return -1;
        r->dst_off = -v;
    }
    if (!*p) { /* no rule: the historical US default */
        r->start = (TzRuleDate){'M', 3, 2, 0, 7200};
        r->end = (TzRuleDate){'M', 11, 1, 0, 7200};
        return 0;
    }
    if (*p++ != ',' || parse_rule_date(&p, &r->start) < 0 || *p++ != ',' ||
        parse_rule_date(&p, &r->end) < 0 || *p)
        return -1;
    return 0;
}

static int64_t rule_date_instant(const TzRuleDate *r, int year, int32_t off_before)
{
    int64_t jan1 = time_days_from_civil(year, 1, 1), days;
    if (r->kind == 'J') {
        days = jan1 + r->a - 1 + (time_is_leap_year(year) && r->a >= 60);
    } else if (r->kind == 'n') {
        days = jan1 + r->a;
    } else {
        int64_t first = time_days_from_civil(year, r->a, 1);
        int wd = time_weekday_from_days(first);
        int day = 1 + (r->d - wd + 7) % 7 + (r->w - 1) * 7;
        int mdays = time_days_in_month(year, r->a);
        while (day > mdays) day -= 7;
        days = first + day - 1;
    }
    return days * 86400 + r->time - off_before;
}

static int year_of_sec(int64_t t)
{
    int y, m, d;
    time_civil_from_days(time_floor_div(t, 86400), &y, &m, &d);
    return y;
}

/* The rule's transitions in years y0..y1, sorted. On a tie the end of DST sorts first,
 * so a rule that is DST all year ("EST5EDT4,0/0,J365/25") stays in DST. */
static int rule_events(const TzRule *r, int y0, int y1, TzEvent *ev)
{
    int n = 0;
    for (int y = y0; y <= y1; y++) {
        ev[n++] = (TzEvent){rule_date_instant(&r->end, y, r->dst_off), r->std_off};
        ev[n++] = (TzEvent){rule_date_instant(&r->start, y, r->std_off), r->dst_off};
    }
    for (int i = 1; i < n; i++) /* insertion sort, stable */
        for (int j = i; j > 0 && ev[j - 1].t > ev[j].t; j--) {
            TzEvent tmp = ev[j];
            ev[j] = ev[j - 1];
            ev[j - 1] = tmp;
        }
    return n;
}

static int32_t rule_offset(const TzRule *r, int64_t t)
{
    if (!r->has_dst) return r->std_off;
    TzEvent ev[8];
    int y = year_of_sec(t + r->std_off);
    int n = rule_events(r, y - 2, y + 1, ev);
    int32_t off = ev[0].off == r->std_off ? r->dst_off : r->std_off;
    for (int i = 0; i < n && ev[i].t <= t; i++) off = ev[i].off;
    return off;
}

/* ---- lookups ------------------------------------------------------------------------- */

static int32_t offset_at_sec(const GustTz *tz, int64_t t)
{
    if (!tz || tz->is_utc) return 0;
    int n = tz->ntrans;
    if (n == 0 || t >= tz->trans[n - 1]) {
        if (tz->has_rule && (n == 0 || t > tz->trans[n - 1])) return rule_offset(&tz->rule, t);
        return n ? tz->type_off[tz->trans_type[n - 1]] : tz->type_off[0];
    }
    if (t < tz->trans[0]) return tz->type_off[0];
    int lo = 0, hi = n - 1; /* largest i with trans[i] <= t */
    while (lo < hi) {
        int mid = lo + (hi - lo + 1) / 2;
        if (tz->trans[mid] <= t)
            lo = mid;
        else
            hi = mid - 1;
    }
    return tz->type_off[tz->trans_type[lo]];
}

static int64_t next_transition_sec(const GustTz *tz, int64_t t)
{
    if (!tz || tz->is_utc) return INT64_MAX;
    int n = tz->ntrans;
    if (n > 0 && t < tz->trans[n - 1]) {
        int lo = 0, hi = n - 1; /* first i with trans[i] > t */
        while (lo < hi) {
            int mid = lo + (hi - lo) / 2;
            if (tz->trans[mid] > t)
                hi = mid;
            else
                lo = mid + 1;
        }
        return tz->trans[lo];
    }
    if (!tz->has_rule || !tz->rule.has_dst) return INT64_MAX;
    int64_t floor_t = n ? tz->trans[n - 1] : INT64_MIN;
    TzEvent ev[8];
    int y = year_of_sec(t);
    int k = rule_events(&tz->rule, y - 1, y + 2, ev);
    for (int i = 0; i < k; i++)
        if (ev[i].t > t && ev[i].t > floor_t) return ev[i].t;
    return INT64_MAX;
}

static int64_t prev_transition_sec(const GustTz *tz, int64_t t)
{
    if (!tz || tz->is_utc) return INT64_MIN;
    int n = tz->ntrans;
    if (n > 0 && t < tz->trans[n - 1]) {
        if (t < tz->trans[0]) return INT64_MIN;
        int lo = 0, hi = n - 1;
        while (lo < hi) {
            int mid = lo + (hi - lo + 1) / 2;
            if (tz->trans[mid] <= t)
                lo = mid;
            else
                hi = mid - 1;
        }
        return tz->trans[lo];
    }
    int64_t floor_t = n ? tz->trans[n - 1] : INT64_MIN;
    if (tz->has_rule && tz->rule.has_dst) {
        TzEvent ev[8];
        int y = year_of_sec(t);
        int k = rule_events(&tz->rule, y - 2, y + 1, ev);
        for (int i = k - 1; i >= 0; i--)
            if (ev[i].t <= t && ev[i].t > floor_t) return ev[i].t;
    }
    return floor_t;
}

/* Inputs this far out are left alone: no zone matters there, and it keeps the seconds
 * arithmetic below clear of overflow. */
static int out_of_range(int64_t us)
{
    return us < TIME_MIN_US - 2 * TIME_US_PER_DAY || us > TIME_MAX_US + 2 * TIME_US_PER_DAY;
}

static int64_t sec_to_us_sat(int64_t s)
{
    if (s >= INT64_MAX / TIME_US_PER_SEC) return INT64_MAX;
    if (s <= INT64_MIN / TIME_US_PER_SEC) return INT64_MIN;
    return s * TIME_US_PER_SEC;
}

int tz_offset_at_utc(const GustTz *tz, int64_t utc_us)
{
    if (!tz || tz->is_utc || out_of_range(utc_us)) return 0;
    return offset_at_sec(tz, time_floor_div(utc_us, TIME_US_PER_SEC));
}

int64_t tz_utc_to_local(const GustTz *tz, int64_t utc_us)
{
    return utc_us + (int64_t)tz_offset_at_utc(tz, utc_us) * TIME_US_PER_SEC;
}

int64_t tz_local_to_utc(const GustTz *tz, int64_t local_us)
{
    if (!tz || tz->is_utc || out_of_range(local_us)) return local_us;
    int64_t ls = time_floor_div(local_us, TIME_US_PER_SEC);
    int64_t frac = local_us - ls * TIME_US_PER_SEC;
    /* Every offset in force near the wall time is a candidate; one is valid if the instant
     * it gives really has that offset. Two valid = a fold: take the later instant. */
    int32_t offs[18];
    int64_t tr[17];
    int noff = 0, ntr = 0;
    offs[noff++] = offset_at_sec(tz, ls - TZ_WINDOW_SEC);
    for (int64_t t = ls - TZ_WINDOW_SEC; ntr < 16;) {
        int64_t T = next_transition_sec(tz, t);
        if (T > ls + TZ_WINDOW_SEC) break;
        tr[ntr++] = T;
        offs[noff++] = offset_at_sec(tz, T);
        t = T;
    }
    int found = 0;
    int64_t best = 0;
    for (int i = 0; i < noff; i++) {
        int64_t u = ls - offs[i];
        if (offset_at_sec(tz, u) == offs[i] && (!found || u > best)) best = u, found = 1;
    }
    if (found) return best * TIME_US_PER_SEC + frac;
    /* A gap: read the wall time with the offset from before the jump, which lands it
     * the gap's length later on the new wall clock (pendulum's "shift forward"). */
    for (int i = 0; i < ntr; i++) {
        int32_t before = offset_at_sec(tz, tr[i] - 1), after = offset_at_sec(tz, tr[i]);
        if (after > before && ls >= tr[i] + before && ls < tr[i] + after)
            return (ls - before) * TIME_US_PER_SEC + frac;
    }
    return (ls - offset_at_sec(tz, ls)) * TIME_US_PER_SEC + frac;
}

int64_t tz_next_transition(const GustTz *tz, int64_t utc_us)
{
    if (!tz || tz->is_utc || out_of_range(utc_us)) return INT64_MAX;
    return sec_to_us_sat(next_transition_sec(tz, time_floor_div(utc_us, TIME_US_PER_SEC)));
}

int64_t tz_prev_transition(const GustTz *tz, int64_t utc_us)
{
    if (!tz || tz->is_utc || out_of_range(utc_us)) return INT64_MIN;
    return sec_to_us_sat(prev_transition_sec(tz, time_floor_div(utc_us, TIME_US_PER_SEC)));
}

const char *tz_name(const GustTz *tz)
{
    return tz ? tz->name : "UTC";
}

int tz_is_utc(const GustTz *tz)
{
    return !tz || tz->is_utc;
}

void tz_free(GustTz *tz)
{
    if (!tz) return;
    free(tz->name);
    free(tz->trans);
    free(tz->trans_type);
    free(tz);
}

/* ---- loading ------------------------------------------------------------------------- */

typedef struct TzifHeader {
    int version; /* 0 for version 1, else '2', '3', '4' */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
} TzifHeader;

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int read_header(const unsigned char *d, size_t len, size_t off, TzifHeader *h)
{
    if (len < off || len - off < 44 || memcmp(d + off, "TZif", 4) != 0) return -1;
    const unsigned char *p = d + off;
    h->version = p[4];
    h->isutcnt = be32(p + 20), h->isstdcnt = be32(p + 24), h->leapcnt = be32(p + 28);
    h->timecnt = be32(p + 32), h->typecnt = be32(p + 36), h->charcnt = be32(p + 40);
    if (h->typecnt == 0 || h->typecnt > TZ_MAX_TYPES || h->timecnt > TZ_MAX_TRANS) return -1;
    if (h->leapcnt > 10000 || h->charcnt > 10000 || h->isutcnt > h->typecnt || h->isstdcnt > h->typecnt)
        return -1;
    return 0;
}

/* Size of a data block following its header; tsize is 4 (v1) or 8 (v2+). */
static size_t block_size(const TzifHeader *h, size_t tsize)
{
    return (size_t)h->timecnt * tsize + h->timecnt + (size_t)h->typecnt * 6 + h->charcnt +
           (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

static int load_block(GustTz *tz, const TzifHeader *h, const unsigned char *p, size_t tsize)
{
    tz->ntrans = (int)h->timecnt;
    tz->ntypes = (int)h->typecnt;
    tz->trans = xmalloc((h->timecnt ? h->timecnt : 1) * sizeof *tz->trans);
    tz->trans_type = xmalloc(h->timecnt ? h->timecnt : 1);
    for (uint32_t i = 0; i < h->timecnt; i++, p += tsize) {
        int64_t t = tsize == 8 ? (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4)) : (int32_t)be32(p);
        if (i && t <= tz->trans[i - 1]) return -1;
        tz->trans[i] = t;
    }
    for (uint32_t i = 0; i < h->timecnt; i++, p++) {
        if (*p >= h->typecnt) return -1;
        tz->trans_type[i] = *p;
    }
    for (uint32_t i = 0; i < h->typecnt; i++, p += 6) {
        int32_t off = (int32_t)be32(p);
        if (off < -26 * 3600 || off > 26 * 3600) return -1;
        tz->type_off[i] = off;
    }
    return 0;
}

static GustTz *make_utc(void)
{
    GustTz *tz = xcalloc(1, sizeof *tz);
    tz->name = xstrdup("UTC");
    tz->ntypes = 1;
    tz->is_utc = 1;
    return tz;
}

GustTz *tz_from_tzif(const char *name, const unsigned char *data, size_t len, char *err,
                     size_t errlen)
{
    TzifHeader h1, h2;
    if (read_header(data, len, 0, &h1) < 0) {
        snprintf(err, errlen, "timezone '%s': not a valid TZif file", name);
        return NULL;
    }
    GustTz *tz = xcalloc(1, sizeof *tz);
    tz->name = xstrdup(name);
    size_t b1 = block_size(&h1, 4);
    const char *why = "truncated or inconsistent data";
    if (len - 44 < b1) goto failed;
    if (h1.version == 0) {
        if (load_block(tz, &h1, data + 44, 4) < 0) goto failed;
    } else {
        size_t off2 = 44 + b1;
        if (read_header(data, len, off2, &h2) < 0) goto failed;
        size_t b2 = block_size(&h2, 8);
        if (len - off2 - 44 < b2 || load_block(tz, &h2, data + off2 + 44, 8) < 0) goto failed;
        /* The footer: "\n" TZ-string "\n"; an empty string means no rule. */
        const unsigned char *f = data + off2 + 44 + b2, *end = data + len;
        if (f < end && *f == '\n') {
            const unsigned char *nl = memchr(f + 1, '\n', (size_t)(end - f - 1));
            if (nl && nl > f + 1) {
                char *rule = xstrndup((const char *)f + 1, (size_t)(nl - f - 1));
                int bad = parse_posix_tz(rule, &tz->rule) < 0;
                if (bad) snprintf(err, errlen, "timezone '%s': cannot read its rule '%.64s'", name, rule);
                free(rule);
                if (bad) {
                    tz_free(tz);
                    return NULL;
                }
                tz->has_rule = 1;
            }
        }
    }
    tz->is_utc = 1;
    for (int i = 0; i < tz->ntypes; i++)
        if (tz->type_off[i]) tz->is_utc = 0;
    if (tz->has_rule && (tz->rule.std_off || tz->rule.has_dst)) tz->is_utc = 0;
    return tz;
failed:
    snprintf(err, errlen, "timezone '%s': %s", name, why);
    tz_free(tz);
    return NULL;
}

/* Zone names from the database's tzdata.zi ("Z name ..." and "L target link" lines), for
 * a "did you mean". Best effort: no file, no suggestion. */
static void suggest(const char *dir, const char *name, char *buf, size_t buflen)
{
    buf[0] = '\0';
    char ignored[256];
    char *path = xasprintf("%s/tzdata.zi", dir);
    char *text = util_read_file(path, NULL, ignored, sizeof ignored);
    free(path);
    if (!text) return;
    size_t n = 0, cap = 0;
    const char **names = NULL;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *w = NULL;
        if (line[0] == 'Z' && line[1] == ' ') w = line + 2;
        if (line[0] == 'L' && line[1] == ' ' && (w = strchr(line + 2, ' '))) w++;
        if (!w) continue;
        w[strcspn(w, " \t")] = '\0';
        if (n == cap) names = xrealloc(names, (cap = cap ? cap * 2 : 256) * sizeof *names);
        names[n++] = w;
    }
    const char *best = util_closest(name, names, n);
    if (best) snprintf(buf, buflen, " (did you mean '%s'?)", best);
    free(names);
    free(text);
}

GustTz *tz_load(const char *name, char *err, size_t errlen)
{
    if (!name || !*name) {
        snprintf(err, errlen, "empty timezone name");
        return NULL;
    }
    if (strcasecmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) return make_utc();
    size_t len = strlen(name);
    int bad = name[0] == '/' || strstr(name, "..") != NULL || len > 128;
    for (size_t i = 0; i < len && !bad; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr("/_-+.", name[i])) bad = 1;
    if (bad) {
        snprintf(err, errlen, "unknown timezone '%.128s': not a valid zone name", name);
        return NULL;
    }
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir) dir = "/usr/share/zoneinfo";
    char *path = xasprintf("%s/%s", dir, name);
    struct stat st;
    char ignored[256];
    size_t flen = 0;
    char *data = NULL;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode))
        data = util_read_file(path, &flen, ignored, sizeof ignored);
    free(path);
    int is_tzif = data && flen >= 4 && memcmp(data, "TZif", 4) == 0;
    GustTz *tz = is_tzif ? tz_from_tzif(name, (const unsigned char *)data, flen, err, errlen) : NULL;
    free(data);
    if (tz || is_tzif) return tz; /* a real zone file, loaded or with its own error */
    char hint[200];
    suggest(dir, name, hint, sizeof hint);
    snprintf(err, errlen, "unknown timezone '%s'%s", name, hint);
    return NULL;
}
