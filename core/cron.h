/* cron — 5-field cron expressions (minute hour day-of-month month day-of-week) and their
 * fire times on a time zone's wall clock, with the semantics Airflow users get from
 * croniter + Airflow's CronMixin.
 *
 * Syntax: `*`, numbers, ranges a-b, steps *\/n, a-b/n and a/n, lists, month names JAN-DEC
 * and day names SUN-SAT (any case), day-of-week 0-7 (0 and 7 = Sunday), `?` as `*`, and two
 * croniter extensions: `L` in day-of-month (last day) and `d#n` in day-of-week (n-th weekday
 * of the month, n 1-5). Presets @hourly @daily @midnight @weekly @monthly @yearly @annually.
 * Day matching follows vixie cron: when both day fields are restricted (neither starts with
 * `*` or `?`), a day matches if either matches ("0 0 13 * FRI" = every 13th and every Friday).
 *
 * Daylight saving time, as in Airflow: expressions whose hour field covers all 24 hours
 * ("hourly-ish": "0 * * * *", "*\/15 * * * *") run in absolute time, so an hourly schedule
 * fires every 3600 s through both transitions, once per real hour, including the repeated
 * hour of a fall-back. Everything else is evaluated on the naive wall clock and converted
 * with tz_local_to_utc: a fire time inside a spring-forward gap moves forward by the gap
 * (02:30 -> 03:30), an ambiguous one takes the later (post-transition) instant. */
#ifndef GUST_CRON_H
#define GUST_CRON_H

#include <stddef.h>
#include <stdint.h>

#include "core/timeutil.h"

/* A parsed expression: plain value, no heap, safe to copy. */
typedef struct CronExpr {
    uint64_t minutes;   /* bit m: minute m (0-59) matches */
    uint32_t hours;     /* bit h: hour h (0-23) */
    uint32_t days;      /* bit d: day of month d (1-31) */
    uint16_t months;    /* bit m: month m (1-12) */
    uint8_t weekdays;   /* bit d: weekday d (0 = Sunday .. 6) */
    uint8_t dow_nth[7]; /* weekday d: bit n set for "d#n", the n-th such day of the month */
    uint8_t dom_last;   /* "L": the last day of the month matches */
    uint8_t dom_star;   /* day-of-month field starts with '*' or '?' (vixie's OR rule) */
    uint8_t dow_star;   /* day-of-week field starts with '*' or '?' */
    uint8_t every_hour; /* all 24 hours set: evaluated in absolute time across DST */
} CronExpr;

/* How far cron_next/cron_prev look before answering "never" (-1): long enough for Feb 29
 * across a skipped leap year (2096 -> 2104), short enough to stay cheap. */
#define CRON_SEARCH_YEARS 9

/* Parse an expression or preset. On error returns -1 and writes a message naming the
 * field and the reason, e.g. "invalid cron expression '61 * * * *': minute field: 61 is
 * out of range 0-59" or "invalid cron expression '* * * *': expected 5 fields, got 4". */
int cron_parse(const char *text, CronExpr *out, char *err, size_t errlen);

/* Next fire time strictly after after_us on tz's wall clock (NULL = UTC), as UTC µs;
 * -1 if none within CRON_SEARCH_YEARS (e.g. "0 0 30 2 *") or past year 9999. */
int64_t cron_next(const CronExpr *c, const GustTz *tz, int64_t after_us);

/* Latest fire time strictly before before_us; -1 if none. */
int64_t cron_prev(const CronExpr *c, const GustTz *tz, int64_t before_us);

/* 1 if utc_us is exactly a fire time, else 0. */
int cron_matches(const CronExpr *c, const GustTz *tz, int64_t utc_us);

/* The 5-field expression a preset stands for ("@daily" -> "0 0 * * *"), or NULL if text is
 * not a cron preset (case-insensitive; "@once" is not one). */
const char *cron_preset(const char *text);

#endif
