/* duration — parse and print lengths of time (see duration.h).
 * A bare number is seconds, as Airflow's retry_delay/timeout integers are. */
#include "core/duration.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct Unit {
    const char *name;
    double us;
} Unit;

static const Unit UNITS[] = {
    {"us", 1.0},           {"ms", 1e3},          {"millisecond", 1e3}, {"milliseconds", 1e3},
    {"s", 1e6},            {"sec", 1e6},         {"secs", 1e6},        {"second", 1e6},
    {"seconds", 1e6},      {"m", 60e6},          {"min", 60e6},        {"mins", 60e6},
    {"minute", 60e6},      {"minutes", 60e6},    {"h", 3600e6},        {"hr", 3600e6},
    {"hrs", 3600e6},       {"hour", 3600e6},     {"hours", 3600e6},    {"d", 86400e6},
    {"day", 86400e6},      {"days", 86400e6},    {"w", 604800e6},      {"week", 604800e6},
    {"weeks", 604800e6},
};

#define HINT "write e.g. 300, \"5m\", \"1h30m\" or \"2 days\""
/* ~290 years: anything longer is a typo, and it keeps the arithmetic far from overflow. */
#define MAX_US 9.0e18

int duration_parse(const char *s, int64_t *out_us, char *err, size_t errlen)
{
    if (!s) {
        snprintf(err, errlen, "missing duration (" HINT ")");
        return -1;
    }
    const char *p = s;
    double total = 0;
    int parts = 0;
    while (isspace((unsigned char)*p)) p++;
    if (!*p) {
        snprintf(err, errlen, "empty duration (" HINT ")");
        return -1;
    }
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.') {
            snprintf(err, errlen, "invalid duration '%s': unexpected '%c' (" HINT ")", s, *p);
            return -1;
        }
        const char *numstart = p;
        while (isdigit((unsigned char)*p)) p++;
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p)) p++;
        }
        if (p - numstart > 18 || (p - numstart == 1 && *numstart == '.')) {
            snprintf(err, errlen, "invalid duration '%s': bad number (" HINT ")", s);
            return -1;
        }
        char numbuf[24];
        memcpy(numbuf, numstart, (size_t)(p - numstart));
        numbuf[p - numstart] = '\0';
        double value = strtod(numbuf, NULL);
        while (isspace((unsigned char)*p)) p++;
        const char *ustart = p;
        while (isalpha((unsigned char)*p)) p++;
        size_t ulen = (size_t)(p - ustart);
        double mult;
        if (ulen == 0) {
            if (*p) {
                snprintf(err, errlen, "invalid duration '%s': unexpected '%c' (" HINT ")", s, *p);
                return -1;
            }
            if (parts > 0) {
                snprintf(err, errlen, "invalid duration '%s': last number has no unit (" HINT ")", s);
                return -1;
            }
            mult = 1e6; /* a bare number is seconds */
        } else {
            mult = -1;
            for (size_t i = 0; i < sizeof UNITS / sizeof UNITS[0]; i++) {
                if (strlen(UNITS[i].name) == ulen && strncasecmp(UNITS[i].name, ustart, ulen) == 0) {
                    mult = UNITS[i].us;
                    break;
                }
            }
            if (mult < 0) {
                snprintf(err, errlen, "invalid duration '%s': unknown unit '%.*s' (use s, m, h, d or w)",
                         s, (int)ulen, ustart);
                return -1;
            }
        }
        total += value * mult;
        parts++;
        while (isspace((unsigned char)*p)) p++;
        if (total > MAX_US) {
            snprintf(err, errlen, "invalid duration '%s': too long", s);
            return -1;
        }
    }
    *out_us = (int64_t)llround(total);
    return 0;
}

void duration_format(int64_t us, char *buf, size_t buflen)
{
    if (buflen == 0) return;
    buf[0] = '\0';
    if (us < 0) us = 0;
    if (us == 0) {
        snprintf(buf, buflen, "0s");
        return;
    }
    if (us < 1000000 && us % 1000 == 0) {
        snprintf(buf, buflen, "%lldms", (long long)(us / 1000));
        return;
    }
    static const struct { char unit; int64_t us; } steps[] = {
        {'d', 86400000000LL}, {'h', 3600000000LL}, {'m', 60000000LL}, {'s', 1000000LL}};
    size_t used = 0;
    int64_t rest = us;
    for (size_t i = 0; i < 4; i++) {
        int64_t n = rest / steps[i].us;
        if (n == 0) continue;
        rest -= n * steps[i].us;
        int w = snprintf(buf + used, buflen - used, "%lld%c", (long long)n, steps[i].unit);
        if (w < 0 || (size_t)w >= buflen - used) return;
        used += (size_t)w;
    }
    if (rest > 0) snprintf(buf + used, buflen - used, "%s%lldus", used ? "+" : "", (long long)rest);
}
