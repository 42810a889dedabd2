/* test_schedule — Airflow 2.x timetable semantics: data intervals for cron and fixed
 * intervals, cron-trigger and @once runs, catchup on and off, end_date cut-off, next-runs
 * listings and catchup enumeration. Expected intervals are written out by hand. */
#include <stdint.h>

#include "core/schedule.h"
#include "core/tz.h"
#include "tests/unit/unit.h"

#define HOUR INT64_C(3600000000)

static int64_t utc(const char *iso)
{
    char err[256];
    int64_t us = -1;
    if (time_parse_iso(iso, NULL, &us, err, sizeof err) < 0) fprintf(stderr, "\n  %s\n", err);
    return us;
}

static void parse_ok(const char *text, Schedule *s)
{
    char err[256];
    if (schedule_parse(text, s, err, sizeof err) < 0) {
        fprintf(stderr, "\n  %s\n", err);
        CU_FAIL("schedule_parse failed");
    }
}

/* Compare an interval with ISO strings, printing both on mismatch. */
static void assert_interval(const DataInterval *iv, const char *start, const char *end,
                            const char *run_after)
{
    char got[3][64];
    time_format_iso(iv->start, 0, got[0], sizeof got[0]);
    time_format_iso(iv->end, 0, got[1], sizeof got[1]);
    time_format_iso(iv->run_after, 0, got[2], sizeof got[2]);
    ASSERT_STR_EQ(got[0], start);
    ASSERT_STR_EQ(got[1], end);
    ASSERT_STR_EQ(got[2], run_after);
}

static void test_parse_cron_presets_none_and_once(void)
{
    Schedule s;
    parse_ok("@daily", &s);
    CU_ASSERT_EQUAL(s.kind, SCHEDULE_CRON);
    ASSERT_STR_EQ(s.expr, "@daily");
    CU_ASSERT_EQUAL(s.cron.hours, 1u); /* hour 0 only */
    schedule_free(&s);
    parse_ok("  0 3 * * *  ", &s);
    CU_ASSERT_EQUAL(s.kind, SCHEDULE_CRON);
    ASSERT_STR_EQ(s.expr, "0 3 * * *");
    schedule_free(&s);
    static const char *const none[] = {"None", "none", "null", "", "   "};
    for (size_t i = 0; i < 5; i++) {
        parse_ok(none[i], &s);
        CU_ASSERT_EQUAL(s.kind, SCHEDULE_NONE);
        schedule_free(&s);
    }
    parse_ok(NULL, &s);
    CU_ASSERT_EQUAL(s.kind, SCHEDULE_NONE);
    parse_ok("@once", &s);
    CU_ASSERT_EQUAL(s.kind, SCHEDULE_ONCE);
    schedule_free(&s);
    schedule_interval(&s, 6 * HOUR);
    CU_ASSERT_EQUAL(s.kind, SCHEDULE_INTERVAL);
    CU_ASSERT_EQUAL(s.interval_us, 6 * HOUR);
    ASSERT_STR_EQ(schedule_kind_name(s.kind), "interval");
    schedule_free(&s);
    schedule_free(NULL);
}

static void test_parse_errors(void)
{
    Schedule s;
    char err[256];
    CU_ASSERT_EQUAL(schedule_parse("@continuous", &s, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "'@continuous' is not supported");
    CU_ASSERT_EQUAL(schedule_parse("@dialy", &s, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "unknown schedule preset '@dialy' (did you mean '@daily'?)");
    CU_ASSERT_EQUAL(schedule_parse("0 25 * * *", &s, err, sizeof err), -1);
    ASSERT_STR_EQ(err, "invalid cron expression '0 25 * * *': hour field: 25 is out of range 0-23");
    CU_ASSERT_EQUAL(s.kind, SCHEDULE_NONE);
    CU_ASSERT_PTR_NULL(s.expr);
    schedule_free(&s);
}

static void test_cron_catchup_walks_intervals_from_start_date(void)
{
    Schedule s;
    parse_ok("0 0 * * *", &s);
    ScheduleCtx ctx = {&s, NULL, utc("2024-01-01T00:00:00Z"), -1, 1};
    DataInterval iv;
    const int64_t now = utc("2024-03-15T10:30:00Z");
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, -1, now, &iv), 0);
    assert_interval(&iv, "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", "2024-01-02T00:00:00Z");
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, iv.start, now, &iv), 0);
    assert_interval(&iv, "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z", "2024-01-03T00:00:00Z");
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, utc("2024-01-05T00:00:00Z"), now, &iv), 0);
    assert_interval(&iv, "2024-01-06T00:00:00Z", "2024-01-07T00:00:00Z", "2024-01-07T00:00:00Z");
    /* A start_date off the schedule: the first interval starts at the next fire time. */
    ctx.start_date = utc("2024-01-01T10:00:00Z");
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, -1, now, &iv), 0);
    assert_interval(&iv, "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z", "2024-01-03T00:00:00Z");
    schedule_free(&s);
}

static void test_cron_without_catchup_takes_the_latest_complete_interval(void)
{
    Schedule s;
    parse_ok("0 0 * * *", &s);
    ScheduleCtx ctx = {&s, NULL, utc("2024-01-01T00:00:00Z"), -1, 0};
    DataInterval iv;
    /* At 2024-03-15 10:30 the latest interval that has ended is [Mar 14, Mar 15). */
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, -1, utc("2024-03-15T10:30:00Z"), &iv), 0);
    assert_interval(&iv, "2024-03-14T00:00:00Z", "2024-03-15T00:00:00Z", "2024-03-15T00:00:00Z");
    /* Exactly on a boundary: the interval that ends now. */
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, -1, utc("2024-03-15T00:00:00Z"), &iv), 0);
    assert_interval(&iv, "2024-03-14T00:00:00Z", "2024-03-15T00:00:00Z", "2024-03-15T00:00:00Z");
    /* Never earlier than the one after the last run: that one lies in the future. */
    CU_ASSERT_EQUAL_FATAL(
        schedule_next_interval(&ctx, utc("2024-03-14T00:00:00Z"), utc("2024-03-15T10:30:00Z"), &iv), 0);
    assert_interval(&iv, "2024-03-15T00:00:00Z", "2024-03-16T00:00:00Z", "2024-03-16T00:00:00Z");
    /* An old last run is skipped over. */
    CU_ASSERT_EQUAL_FATAL(
        schedule_next_interval(&ctx, utc("2024-02-01T00:00:00Z"), utc("2024-03-15T10:30:00Z"), &iv), 0);
    assert_interval(&iv, "2024-03-14T00:00:00Z", "2024-03-15T00:00:00Z", "2024-03-15T00:00:00Z");
    /* start_date in the future: the first interval, not yet due. */
    ctx.start_date = utc("2024-06-01T00:00:00Z");
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, -1, utc("2024-03-15T10:30:00Z"), &iv), 0);
    assert_interval(&iv, "2024-06-01T00:00:00Z", "2024-06-02T00:00:00Z", "2024-06-02T00:00:00Z");
    schedule_free(&s);
}

static void test_cron_intervals_follow_the_zone_across_dst(void)
{
    char err[256];
    GustTz *ny = tz_load("America/New_York", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    Schedule s;
    parse_ok("0 9 * * *", &s);
    ScheduleCtx ctx = {&s, ny, utc("2024-03-09T00:00:00Z"), -1, 1};
    DataInterval iv;
    /* 09:00 EST = 14:00Z on Mar 9; 09:00 EDT = 13:00Z on Mar 10: a 23-hour interval. */
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, -1, utc("2024-04-01T00:00:00Z"), &iv), 0);
    assert_interval(&iv, "2024-03-09T14:00:00Z", "2024-03-10T13:00:00Z", "2024-03-10T13:00:00Z");
    CU_ASSERT_EQUAL(iv.end - iv.start, 23 * HOUR);
    /* March 2024 has 31 runs whose run_after falls in (Mar 1 00:00Z, Apr 1 00:00Z]. */
    ctx.start_date = utc("2024-02-01T00:00:00Z");
    DataInterval all[40];
    int n = schedule_between(&ctx, utc("2024-03-01T00:00:00Z"), utc("2024-04-01T00:00:00Z"), all, 40);
    CU_ASSERT_EQUAL_FATAL(n, 31);
    assert_interval(&all[0], "2024-02-29T14:00:00Z", "2024-03-01T14:00:00Z", "2024-03-01T14:00:00Z");
    assert_interval(&all[30], "2024-03-30T13:00:00Z", "2024-03-31T13:00:00Z", "2024-03-31T13:00:00Z");
    schedule_free(&s);
    tz_free(ny);
}

static void test_interval_schedule_lays_fixed_lengths_from_start_date(void)
{
    Schedule s = {0};
    schedule_interval(&s, 6 * HOUR);
    ScheduleCtx ctx = {&s, NULL, utc("2024-01-01T03:00:00Z"), -1, 1};
    DataInterval iv;
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, -1, utc("2024-01-05T00:00:00Z"), &iv), 0);
    assert_interval(&iv, "2024-01-01T03:00:00Z", "2024-01-01T09:00:00Z", "2024-01-01T09:00:00Z");
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, iv.start, utc("2024-01-05T00:00:00Z"), &iv), 0);
    assert_interval(&iv, "2024-01-01T09:00:00Z", "2024-01-01T15:00:00Z", "2024-01-01T15:00:00Z");
    /* No catchup at 2024-01-02 10:00: grid starts 03:00, 09:00, ...; the latest interval
     * that has ended by 10:00 is [03:00, 09:00) on Jan 2. */
    ctx.catchup = 0;
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, -1, utc("2024-01-02T10:00:00Z"), &iv), 0);
    assert_interval(&iv, "2024-01-02T03:00:00Z", "2024-01-02T09:00:00Z", "2024-01-02T09:00:00Z");
    /* Before the first interval has ended: the first one. */
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, -1, utc("2024-01-01T05:00:00Z"), &iv), 0);
    assert_interval(&iv, "2024-01-01T03:00:00Z", "2024-01-01T09:00:00Z", "2024-01-01T09:00:00Z");
    int64_t runs[3];
    CU_ASSERT_EQUAL_FATAL(schedule_next_runs(&ctx, utc("2024-01-01T10:00:00Z"), runs, 3), 3);
    CU_ASSERT_EQUAL(runs[0], utc("2024-01-01T15:00:00Z"));
    CU_ASSERT_EQUAL(runs[1], utc("2024-01-01T21:00:00Z"));
    CU_ASSERT_EQUAL(runs[2], utc("2024-01-02T03:00:00Z"));
    /* A zero length never schedules. */
    schedule_interval(&s, 0);
    CU_ASSERT_EQUAL(schedule_next_interval(&ctx, -1, utc("2024-01-02T10:00:00Z"), &iv), -1);
    schedule_free(&s);
}

static void test_cron_trigger_runs_at_fire_times_with_empty_intervals(void)
{
    char err[256];
    GustTz *ny = tz_load("America/New_York", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    Schedule s;
    parse_ok("0 9 * * *", &s);
    s.kind = SCHEDULE_CRON_TRIGGER;
    ScheduleCtx ctx = {&s, ny, utc("2024-03-08T00:00:00Z"), -1, 1};
    DataInterval iv;
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, -1, utc("2024-04-01T00:00:00Z"), &iv), 0);
    assert_interval(&iv, "2024-03-08T14:00:00Z", "2024-03-08T14:00:00Z", "2024-03-08T14:00:00Z");
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, utc("2024-03-09T14:00:00Z"), 0, &iv), 0);
    assert_interval(&iv, "2024-03-10T13:00:00Z", "2024-03-10T13:00:00Z", "2024-03-10T13:00:00Z");
    /* No catchup at 2024-03-12 15:00Z: the latest fire time, 09:00 EDT that morning. */
    ctx.catchup = 0;
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, -1, utc("2024-03-12T15:00:00Z"), &iv), 0);
    assert_interval(&iv, "2024-03-12T13:00:00Z", "2024-03-12T13:00:00Z", "2024-03-12T13:00:00Z");
    int64_t runs[2];
    CU_ASSERT_EQUAL_FATAL(schedule_next_runs(&ctx, utc("2024-03-12T13:00:00Z"), runs, 2), 2);
    CU_ASSERT_EQUAL(runs[0], utc("2024-03-13T13:00:00Z"));
    CU_ASSERT_EQUAL(runs[1], utc("2024-03-14T13:00:00Z"));
    schedule_free(&s);
    tz_free(ny);
}

static void test_once_runs_a_single_time_at_start_date(void)
{
    Schedule s;
    parse_ok("@once", &s);
    ScheduleCtx ctx = {&s, NULL, utc("2024-05-01T12:00:00Z"), -1, 0};
    DataInterval iv;
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, -1, utc("2024-01-01T00:00:00Z"), &iv), 0);
    assert_interval(&iv, "2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z", "2024-05-01T12:00:00Z");
    CU_ASSERT_EQUAL(schedule_next_interval(&ctx, iv.start, utc("2024-06-01T00:00:00Z"), &iv), -1);
    int64_t runs[3];
    CU_ASSERT_EQUAL(schedule_next_runs(&ctx, utc("2024-01-01T00:00:00Z"), runs, 3), 1);
    CU_ASSERT_EQUAL(runs[0], utc("2024-05-01T12:00:00Z"));
    CU_ASSERT_EQUAL(schedule_next_runs(&ctx, utc("2024-05-01T12:00:00Z"), runs, 3), 0);
    ctx.end_date = utc("2024-04-01T00:00:00Z");
    CU_ASSERT_EQUAL(schedule_next_interval(&ctx, -1, utc("2024-01-01T00:00:00Z"), &iv), -1);
    ctx.end_date = -1;
    ctx.start_date = -1;
    CU_ASSERT_EQUAL(schedule_next_interval(&ctx, -1, utc("2024-01-01T00:00:00Z"), &iv), -1);
    schedule_free(&s);
}

static void test_end_date_cuts_off_intervals_starting_after_it(void)
{
    Schedule s;
    parse_ok("@daily", &s);
    ScheduleCtx ctx = {&s, NULL, utc("2024-01-01T00:00:00Z"), utc("2024-01-03T00:00:00Z"), 1};
    DataInterval iv;
    /* Intervals starting Jan 1, 2 and 3 (start == end_date is allowed), then nothing. */
    CU_ASSERT_EQUAL_FATAL(schedule_next_interval(&ctx, utc("2024-01-02T00:00:00Z"), 0, &iv), 0);
    assert_interval(&iv, "2024-01-03T00:00:00Z", "2024-01-04T00:00:00Z", "2024-01-04T00:00:00Z");
    CU_ASSERT_EQUAL(schedule_next_interval(&ctx, utc("2024-01-03T00:00:00Z"), 0, &iv), -1);
    int64_t runs[10];
    CU_ASSERT_EQUAL_FATAL(schedule_next_runs(&ctx, utc("2023-06-01T00:00:00Z"), runs, 10), 3);
    CU_ASSERT_EQUAL(runs[0], utc("2024-01-02T00:00:00Z"));
    CU_ASSERT_EQUAL(runs[2], utc("2024-01-04T00:00:00Z"));
    DataInterval all[10];
    CU_ASSERT_EQUAL(schedule_between(&ctx, utc("2023-01-01T00:00:00Z"), utc("2025-01-01T00:00:00Z"), all, 10), 3);
    /* Without catchup, when "now" is long past the end date. */
    ctx.catchup = 0;
    CU_ASSERT_EQUAL(schedule_next_interval(&ctx, -1, utc("2024-06-01T00:00:00Z"), &iv), -1);
    schedule_free(&s);
}

static void test_between_counts_hourly_runs_and_respects_max(void)
{
    Schedule s;
    parse_ok("@hourly", &s);
    ScheduleCtx ctx = {&s, NULL, utc("2024-01-01T00:00:00Z"), -1, 1};
    DataInterval all[30];
    /* run_after in (Jan 1 00:00, Jan 2 00:00]: intervals starting 00:00 .. 23:00 = 24. */
    int n = schedule_between(&ctx, utc("2024-01-01T00:00:00Z"), utc("2024-01-02T00:00:00Z"), all, 30);
    CU_ASSERT_EQUAL_FATAL(n, 24);
    assert_interval(&all[0], "2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z", "2024-01-01T01:00:00Z");
    assert_interval(&all[23], "2024-01-01T23:00:00Z", "2024-01-02T00:00:00Z", "2024-01-02T00:00:00Z");
    CU_ASSERT_EQUAL(schedule_between(&ctx, utc("2024-01-01T00:00:00Z"), utc("2024-01-02T00:00:00Z"), all, 10), 10);
    /* Before start_date nothing exists: (2023-12-31 00:00, 2024-01-01 02:00] holds 2 runs. */
    CU_ASSERT_EQUAL(schedule_between(&ctx, utc("2023-12-31T00:00:00Z"), utc("2024-01-01T02:00:00Z"), all, 30), 2);
    CU_ASSERT_EQUAL(schedule_between(&ctx, utc("2024-01-02T00:00:00Z"), utc("2024-01-01T00:00:00Z"), all, 30), 0);
    schedule_free(&s);
}

static void test_next_runs_lists_run_after_times(void)
{
    Schedule s;
    parse_ok("0 0 * * *", &s);
    ScheduleCtx ctx = {&s, NULL, utc("2024-01-01T00:00:00Z"), -1, 1};
    int64_t runs[3];
    /* Before start_date: the first run is for [Jan 1, Jan 2), triggered Jan 2. */
    CU_ASSERT_EQUAL_FATAL(schedule_next_runs(&ctx, utc("2023-06-01T00:00:00Z"), runs, 1), 1);
    CU_ASSERT_EQUAL(runs[0], utc("2024-01-02T00:00:00Z"));
    CU_ASSERT_EQUAL_FATAL(schedule_next_runs(&ctx, utc("2024-05-05T12:00:00Z"), runs, 3), 3);
    CU_ASSERT_EQUAL(runs[0], utc("2024-05-06T00:00:00Z"));
    CU_ASSERT_EQUAL(runs[1], utc("2024-05-07T00:00:00Z"));
    CU_ASSERT_EQUAL(runs[2], utc("2024-05-08T00:00:00Z"));
    /* Strictly after: from exactly a run_after, the following one. */
    CU_ASSERT_EQUAL_FATAL(schedule_next_runs(&ctx, utc("2024-05-06T00:00:00Z"), runs, 1), 1);
    CU_ASSERT_EQUAL(runs[0], utc("2024-05-07T00:00:00Z"));
    schedule_free(&s);
}

static void test_none_and_assets_have_no_time_based_runs(void)
{
    Schedule s;
    parse_ok("None", &s);
    ScheduleCtx ctx = {&s, NULL, utc("2024-01-01T00:00:00Z"), -1, 1};
    DataInterval iv;
    int64_t runs[2];
    CU_ASSERT_EQUAL(schedule_next_interval(&ctx, -1, utc("2024-06-01T00:00:00Z"), &iv), -1);
    CU_ASSERT_EQUAL(schedule_next_runs(&ctx, 0, runs, 2), 0);
    s.kind = SCHEDULE_ASSETS;
    CU_ASSERT_EQUAL(schedule_next_interval(&ctx, -1, utc("2024-06-01T00:00:00Z"), &iv), -1);
    CU_ASSERT_EQUAL(schedule_between(&ctx, 0, utc("2024-06-01T00:00:00Z"), &iv, 1), 0);
    schedule_free(&s);
    /* A cron that never fires after start_date never schedules. */
    parse_ok("0 0 30 2 *", &s);
    CU_ASSERT_EQUAL(schedule_next_interval(&ctx, -1, utc("2024-06-01T00:00:00Z"), &iv), -1);
    schedule_free(&s);
}

static const UnitTest tests[] = {
    UNIT(test_parse_cron_presets_none_and_once),
    UNIT(test_parse_errors),
    UNIT(test_cron_catchup_walks_intervals_from_start_date),
    UNIT(test_cron_without_catchup_takes_the_latest_complete_interval),
    UNIT(test_cron_intervals_follow_the_zone_across_dst),
    UNIT(test_interval_schedule_lays_fixed_lengths_from_start_date),
    UNIT(test_cron_trigger_runs_at_fire_times_with_empty_intervals),
    UNIT(test_once_runs_a_single_time_at_start_date),
    UNIT(test_end_date_cuts_off_intervals_starting_after_it),
    UNIT(test_between_counts_hourly_runs_and_respects_max),
    UNIT(test_next_runs_lists_run_after_times),
    UNIT(test_none_and_assets_have_no_time_based_runs),
    {0},
};

UNIT_MAIN("schedule", tests)
