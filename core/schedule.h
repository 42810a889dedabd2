/* schedule — what a DAG's `schedule` means in time: which data intervals exist, when
 * each run may be created, and which run comes next. The semantics are Airflow 2.x's
 * timetables, so a DAG moved from Airflow gets the same logical dates:
 *
 *   SCHEDULE_CRON          CronDataIntervalTimetable: intervals between consecutive fire
 *                          times; logical date = interval start; run_after = interval end.
 *   SCHEDULE_INTERVAL      DeltaDataIntervalTimetable: fixed-length intervals laid end to
 *                          end from start_date (from the epoch if there is none).
 *   SCHEDULE_CRON_TRIGGER  CronTriggerTimetable: an empty interval at each fire time;
 *                          logical date = run_after = fire time.
 *   SCHEDULE_ONCE          OnceTimetable: one run at start_date.
 *   SCHEDULE_NONE, _ASSETS no time-based runs (asset-triggered runs are made elsewhere).
 *
 * All times are UTC microseconds; cron fields are read on the DAG's time zone. */
#ifndef GUST_SCHEDULE_H
#define GUST_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

#include "core/cron.h"
#include "core/timeutil.h"

typedef enum {
    SCHEDULE_NONE,
    SCHEDULE_ONCE,
    SCHEDULE_CRON,
    SCHEDULE_INTERVAL,
    SCHEDULE_CRON_TRIGGER,
    SCHEDULE_ASSETS,
} ScheduleKind;

typedef struct Schedule {
    ScheduleKind kind;
    char *expr;          /* cron text or preset as written (heap, NULL for NONE/INTERVAL/ASSETS) */
    CronExpr cron;       /* parsed expr, for CRON and CRON_TRIGGER */
    int64_t interval_us; /* interval length, for INTERVAL (> 0) */
    int also_assets;     /* runs on asset events as well (Airflow's DatasetOrTimeSchedule) */
} Schedule;

/* Parse a schedule string: a cron expression, a preset (@once @hourly @daily @weekly
 * @monthly @yearly @annually @midnight), or "None"/"none"/"null"/"" for no schedule.
 * "@continuous" is rejected with a message. A parsed cron becomes SCHEDULE_CRON; a caller
 * that reads a CronTriggerTimetable sets kind = SCHEDULE_CRON_TRIGGER afterwards, and one
 * that reads an asset list sets SCHEDULE_ASSETS (or also_assets). Durations are parsed by
 * the caller and set with schedule_interval(). On error returns -1 and *out is empty
 * (safe to schedule_free). Caller frees with schedule_free. */
int schedule_parse(const char *text, Schedule *out, char *err, size_t errlen);

/* Make *out an INTERVAL schedule of that length (frees a previous expr). */
void schedule_interval(Schedule *out, int64_t interval_us);

void schedule_free(Schedule *s); /* frees expr and resets *s to NONE; accepts NULL */

/* A data interval [start, end) and when its run may be created. The logical date of the
 * run is `start`. */
typedef struct DataInterval {
    int64_t start, end, run_after;
} DataInterval;

typedef struct ScheduleCtx {
    const Schedule *schedule;
    const GustTz *tz;   /* the DAG's time zone; NULL = UTC */
    int64_t start_date; /* -1: none */
    int64_t end_date;   /* -1: none; no interval starts after it */
    int catchup;
} ScheduleCtx;

/* The next run to create after the last one created (last_logical_us = -1 if none yet),
 * as of now_us. With catchup: the interval right after the last, or the first from
 * start_date. Without: the latest interval that is already complete (run_after <= now),
 * or the first future one if none is due yet, but never earlier than the one after the
 * last. The result may lie in the future: the caller creates it once run_after <= now.
 * Returns 0 and fills out, or -1 if no further run will ever be created. */
int schedule_next_interval(const ScheduleCtx *ctx, int64_t last_logical_us, int64_t now_us,
                           DataInterval *out);

/* The next n run_after times strictly after after_us, respecting start_date and end_date
 * (for `gust dags next-runs`). Returns the count written (0..n). */
int schedule_next_runs(const ScheduleCtx *ctx, int64_t after_us, int64_t *out_us, int n);

/* Every interval whose run_after lies in (from_us, to_us], in order (catchup/backfill
 * enumeration). Returns the count written (<= max). */
int schedule_between(const ScheduleCtx *ctx, int64_t from_us, int64_t to_us, DataInterval *out,
                     int max);

/* "cron", "interval", ... for messages and the API. */
const char *schedule_kind_name(ScheduleKind kind);

#endif
