/* timeutil — calendar arithmetic and ISO 8601 text for gust's one time representation:
 * int64_t microseconds since the Unix epoch, UTC. Everything that stores, compares or
 * schedules time uses that integer; civil dates and wall clocks exist only at the edges
 * (parsing a DAG's start_date, printing a logical date, evaluating a cron field).
 *
 * The calendar is the proleptic Gregorian one, computed with integer formulas (no libc
 * time functions, which are either process-global or limited to time_t's range), and
 * valid for the years 1-9999 that ISO 8601 text can express. */
#ifndef GUST_TIMEUTIL_H
#define GUST_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

#define TIME_US_PER_SEC INT64_C(1000000)
#define TIME_US_PER_MIN (INT64_C(60) * TIME_US_PER_SEC)
#define TIME_US_PER_HOUR (INT64_C(3600) * TIME_US_PER_SEC)
#define TIME_US_PER_DAY (INT64_C(86400) * TIME_US_PER_SEC)

/* The representable span: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59.999999Z. Functions
 * that search for times (cron, schedules) treat anything outside it as "no such time". */
#define TIME_MIN_US (INT64_C(-62135596800) * TIME_US_PER_SEC)
#define TIME_MAX_US (INT64_C(253402300800) * TIME_US_PER_SEC - 1)

typedef struct GustTz GustTz; /* defined in core/tz.h */

/* A time split into calendar fields (UTC, or a wall clock when the caller says so). */
typedef struct TimeFields {
    int year, month, day;      /* month 1-12, day 1-31 */
    int hour, minute, second;  /* 0-23, 0-59, 0-59 */
    int usec;                  /* 0-999999 */
} TimeFields;

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12, day 1-31; out-of-range
 * days roll over arithmetically, e.g. Feb 30 = Mar 1/2). */
int64_t time_days_from_civil(int y, int m, int d);
void time_civil_from_days(int64_t days, int *y, int *m, int *d);

int time_is_leap_year(int y);
int time_days_in_month(int y, int m);          /* 28..31; 0 for a month outside 1-12 */
int time_weekday_from_days(int64_t days);      /* 0 = Sunday .. 6 = Saturday */

/* Floor division and the matching non-negative remainder (b > 0), for times before 1970. */
int64_t time_floor_div(int64_t a, int64_t b);
int64_t time_floor_mod(int64_t a, int64_t b);

void time_to_fields(int64_t us, TimeFields *out);
int64_t time_from_fields(const TimeFields *f);  /* no range checks: fields roll over */

/* Parse an ISO 8601 date or datetime: "2024-11-11", "2024-11-11T05:00", "2024-11-11T05:00:00",
 * "2024-11-11 05:00:00.123456", with an optional "Z" or "+02:00" / "-0500" / "+02" offset.
 * YAML's unquoted timestamp forms are accepted as well ("2001-12-14 21:59:43.10 -5",
 * one-digit month/day/hour). A value without an offset is wall time in tz (NULL = UTC),
 * converted with tz_local_to_utc (a nonexistent wall time moves forward across the gap, an
 * ambiguous one takes the later instant). Returns 0, or -1 with a message such as
 * "invalid date '2024-13-01': month must be 1-12". */
int time_parse_iso(const char *s, const GustTz *tz, int64_t *out_us, char *err, size_t errlen);

/* "2026-03-08T13:00:00Z", or "2026-03-08T13:00:00.000000Z" with micros. buflen >= 40. */
void time_format_iso(int64_t us, int with_micros, char *buf, size_t buflen);

/* The same instant on tz's wall clock with its offset, as Airflow's {{ ts }} prints it:
 * "2026-03-08T09:00:00-04:00" (tz NULL gives "+00:00"). buflen >= 48. */
void time_format_iso_local(int64_t us, const GustTz *tz, int with_micros, char *buf, size_t buflen);

#endif
