/* tz — IANA time zones, read from the system tz database (TZif files under
 * /usr/share/zoneinfo, or $TZDIR) and evaluated without libc's localtime/TZ machinery,
 * which is process-global and not thread safe. The 64-bit data of version 2+ files is
 * used (version 1 data as a fallback), and the POSIX TZ footer string carries the rules
 * past the last listed transition, so 2040 or 2100 is as DST-correct as 2025.
 *
 * Wall times are represented like instants: microseconds since 1970-01-01 as if the wall
 * clock were UTC. A GustTz is immutable once loaded and may be shared between threads.
 * Every function below accepts tz == NULL and treats it as UTC. */
#ifndef GUST_TZ_H
#define GUST_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "core/timeutil.h"

/* struct GustTz is private to tz.c; the typedef lives in timeutil.h. */

/* Load "UTC", "Etc/UTC", "America/New_York", "Europe/Amsterdam", ... ("utc" in any case is
 * UTC, as in Airflow's default_timezone, and needs no tz database). Returns NULL with
 * "unknown timezone 'Mars/Base'" (plus a "did you mean" when a close name exists) for an
 * unknown name, and rejects names containing ".." or starting with "/". Each call reads
 * the file afresh: loading is a few microseconds and keeping no cache keeps ownership
 * simple. Caller frees with tz_free. */
GustTz *tz_load(const char *name, char *err, size_t errlen);

/* Build a zone from TZif bytes (exposed for tests and fuzzing). Caller frees. */
GustTz *tz_from_tzif(const char *name, const unsigned char *data, size_t len, char *err,
                     size_t errlen);

void tz_free(GustTz *tz); /* accepts NULL */

/* The name as loaded ("UTC" for every UTC alias); "UTC" for NULL. Owned by tz. */
const char *tz_name(const GustTz *tz);

/* 1 if tz is UTC (or NULL) and never changes offset. */
int tz_is_utc(const GustTz *tz);

/* Seconds east of UTC in force at that instant. */
int tz_offset_at_utc(const GustTz *tz, int64_t utc_us);

/* Wall time -> UTC instant, with Airflow/pendulum semantics: a nonexistent wall time (in a
 * spring-forward gap) is shifted forward by the gap length (02:30 on the US spring-forward
 * day -> 03:30 EDT); an ambiguous one (fall-back) takes the post-transition offset, i.e.
 * the later instant. */
int64_t tz_local_to_utc(const GustTz *tz, int64_t local_us);
int64_t tz_utc_to_local(const GustTz *tz, int64_t utc_us);

/* The first instant strictly after utc_us at which the offset (or its name/DST flag)
 * changes; INT64_MAX if none. The last such instant <= utc_us; INT64_MIN if none. Used by
 * cron to walk absolute time one constant-offset stretch at a time. */
int64_t tz_next_transition(const GustTz *tz, int64_t utc_us);
int64_t tz_prev_transition(const GustTz *tz, int64_t utc_us);

#endif
