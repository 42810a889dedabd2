/* test_cron — cron parsing (every field, every error) and fire times in UTC, New York and
 * Amsterdam, across DST transitions, leap days and far-future years. Expected instants
 * are worked out by hand in the comments (US: DST from the second Sunday of March 02:00
 * to the first Sunday of November 02:00; EU: last Sundays of March/October at 01:00Z). */
#include <stdint.h>

#include "core/cron.h"
#include "core/tz.h"
#include "tests/unit/unit.h"

#define SEC(x) ((int64_t)(x) * INT64_C(1000000))

static int64_t utc(const char *iso)
{
    char err[256];
    int64_t us = -1;
    if (time_parse_iso(iso, NULL, &us, err, sizeof err) < 0) fprintf(stderr, "\n  %s\n", err);
    return us;
}

static CronExpr parse_ok(const char *text)
{
    CronExpr c;
    char err[256];
    if (cron_parse(text, &c, err, sizeof err) < 0) {
        fprintf(stderr, "\n  %s\n", err);
        CU_FAIL("cron_parse failed");
    }
    return c;
}

static void parse_fails(const char *text, const char *message)
{
    CronExpr c;
    char err[256] = "";
    CU_ASSERT_EQUAL(cron_parse(text, &c, err, sizeof err), -1);
    ASSERT_STR_EQ(err, message);
}

static GustTz *load(const char *name)
{
    char err[256];
    GustTz *tz = tz_load(name, err, sizeof err);
    if (!tz) fprintf(stderr, "\n  %s\n", err);
    return tz;
}

/* Assert that successive cron_next calls from `from` give exactly `want` (UTC ISO). */
static void assert_sequence(const char *expr, const GustTz *tz, const char *from, const char *const *want,
                            int n)
{
    CronExpr c = parse_ok(expr);
    int64_t t = utc(from);
    for (int i = 0; i < n; i++) {
        t = cron_next(&c, tz, t);
        char got[64];
        time_format_iso(t, 0, got, sizeof got);
        ASSERT_STR_EQ(got, want[i]);
    }
}

static void test_star_sets_every_value(void)
{
    CronExpr c = parse_ok("* * * * *");
    CU_ASSERT_EQUAL(c.minutes, (UINT64_C(1) << 60) - 1);
    CU_ASSERT_EQUAL(c.hours, 0xFFFFFFu);
    CU_ASSERT_EQUAL(c.days, 0xFFFFFFFEu); /* 1-31 */
    CU_ASSERT_EQUAL(c.months, 0x1FFE);    /* 1-12 */
    CU_ASSERT_EQUAL(c.weekdays, 0x7F);
    CU_ASSERT_TRUE(c.dom_star && c.dow_star && c.every_hour);
}

static void test_ranges_steps_lists_and_month_names(void)
{
    CronExpr c = parse_ok("0-10/5,30 */6 1-7 JAN,jul *");
    CU_ASSERT_EQUAL(c.minutes, (1u << 0) | (1u << 5) | (1u << 10) | (1u << 30));
    CU_ASSERT_EQUAL(c.hours, (1u << 0) | (1u << 6) | (1u << 12) | (1u << 18));
    CU_ASSERT_EQUAL(c.days, 0xFEu); /* 1..7 */
    CU_ASSERT_EQUAL(c.months, (1u << 1) | (1u << 7));
    CU_ASSERT_FALSE(c.every_hour);
    CU_ASSERT_FALSE(c.dom_star);
    c = parse_ok("5/20 0-23 * mar-MAY ?");
    CU_ASSERT_EQUAL(c.minutes, (UINT64_C(1) << 5) | (UINT64_C(1) << 25) | (UINT64_C(1) << 45));
    CU_ASSERT_TRUE(c.every_hour);
    CU_ASSERT_EQUAL(c.months, (1u << 3) | (1u << 4) | (1u << 5));
    CU_ASSERT_TRUE(c.dow_star);
    c = parse_ok("  0\t12  1 * *  "); /* any whitespace between fields */
    CU_ASSERT_EQUAL(c.hours, 1u << 12);
}

static void test_day_names_and_seven_is_sunday(void)
{
    CU_ASSERT_EQUAL(parse_ok("0 0 * * MON-FRI").weekdays, 0x3E);
    CU_ASSERT_EQUAL(parse_ok("0 0 * * sun").weekdays, 0x01);
    CU_ASSERT_EQUAL(parse_ok("0 0 * * 7").weekdays, 0x01);
    CU_ASSERT_EQUAL(parse_ok("0 0 * * 5-7").weekdays, (1u << 5) | (1u << 6) | 1u);
    CU_ASSERT_EQUAL(parse_ok("0 0 * * Sat,Sun").weekdays, (1u << 6) | 1u);
    CU_ASSERT_EQUAL(parse_ok("0 0 * * */2").weekdays, 0x55); /* 0,2,4,6 */
    /* A Sunday-only schedule written with 7 fires on Sundays: 2024-09-01 was a Sunday. */
    CronExpr c = parse_ok("0 0 * * 7");
    CU_ASSERT_EQUAL(cron_next(&c, NULL, utc("2024-08-28T00:00:00Z")), utc("2024-09-01T00:00:00Z"));
}

static void test_presets_expand_to_their_cron(void)
{
    CronExpr a = parse_ok("@daily"), b = parse_ok("0 0 * * *");
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
    a = parse_ok("@midnight");
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
    a = parse_ok("@hourly"), b = parse_ok("0 * * * *");
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
    a = parse_ok("@weekly"), b = parse_ok("0 0 * * 0");
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
    a = parse_ok("@monthly"), b = parse_ok("0 0 1 * *");
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
    a = parse_ok("@YEARLY"), b = parse_ok("0 0 1 1 *");
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
    a = parse_ok("@annually");
    CU_ASSERT_EQUAL(memcmp(&a, &b, sizeof a), 0);
    ASSERT_STR_EQ(cron_preset("@daily"), "0 0 * * *");
    CU_ASSERT_PTR_NULL(cron_preset("@once"));
}

static void test_errors_name_the_field_and_the_reason(void)
{
    parse_fails("61 * * * *", "invalid cron expression '61 * * * *': minute field: 61 is out of range 0-59");
    parse_fails("* 24 * * *", "invalid cron expression '* 24 * * *': hour field: 24 is out of range 0-23");
    parse_fails("0 0 32 * *",
                "invalid cron expression '0 0 32 * *': day-of-month field: 32 is out of range 1-31");
    parse_fails("0 0 0 * *", "invalid cron expression '0 0 0 * *': day-of-month field: 0 is out of range 1-31");
    parse_fails("0 0 * 13 *", "invalid cron expression '0 0 * 13 *': month field: 13 is out of range 1-12");
    parse_fails("0 0 * * 8", "invalid cron expression '0 0 * * 8': day-of-week field: 8 is out of range 0-7");
    parse_fails("* * * *", "invalid cron expression '* * * *': expected 5 fields, got 4");
    parse_fails("", "invalid cron expression '': expected 5 fields, got 0");
    parse_fails("0 0 * * * *",
                "invalid cron expression '0 0 * * * *': expected 5 fields, got 6 (a seconds field is not "
                "supported)");
    parse_fails("0 0 * * FUNDAY", "invalid cron expression '0 0 * * FUNDAY': day-of-week field: unknown name 'FUNDAY'");
    parse_fails("0 0 * FOO *", "invalid cron expression '0 0 * FOO *': month field: unknown name 'FOO'");
    parse_fails("0 */0 * * *", "invalid cron expression '0 */0 * * *': hour field: step must be positive");
    parse_fails("*/x * * * *", "invalid cron expression '*/x * * * *': minute field: step must be a number, got 'x'");
    parse_fails("1,,2 * * * *", "invalid cron expression '1,,2 * * * *': minute field: empty list element");
    parse_fails("1, * * * *", "invalid cron expression '1, * * * *': minute field: empty list element");
    parse_fails("5-1 * * * *", "invalid cron expression '5-1 * * * *': minute field: range 5-1 goes backwards");
    parse_fails("abc * * * *",
                "invalid cron expression 'abc * * * *': minute field: unexpected 'abc' (expected a number 0-59)");
    parse_fails("0 0 1-2x * *", "invalid cron expression '0 0 1-2x * *': day-of-month field: unexpected 'x'");
    parse_fails("0 0 * * MON#9",
                "invalid cron expression '0 0 * * MON#9': day-of-week field: '#' must be followed by 1-5 (the "
                "n-th weekday of the month)");
    CronExpr c;
    char err[256];
    CU_ASSERT_EQUAL(cron_parse("@fortnightly", &c, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "unknown preset");
    CU_ASSERT_EQUAL(cron_parse(NULL, &c, err, sizeof err), -1);
}

static void test_utc_daily_and_step_sequences(void)
{
    static const char *const daily[] = {"2024-01-01T09:30:00Z", "2024-01-02T09:30:00Z"};
    assert_sequence("30 9 * * *", NULL, "2023-12-31T09:30:00Z", daily, 2);
    static const char *const every20[] = {"2024-01-01T00:20:00Z", "2024-01-01T00:40:00Z",
                                          "2024-01-01T01:00:00Z"};
    assert_sequence("*/20 * * * *", NULL, "2024-01-01T00:00:00Z", every20, 3);
    /* "strictly after": from 00:20:00.000001 the next is 00:40. */
    CronExpr c = parse_ok("*/20 * * * *");
    CU_ASSERT_EQUAL(cron_next(&c, NULL, utc("2024-01-01T00:20:00.000001Z")), utc("2024-01-01T00:40:00Z"));
    CU_ASSERT_EQUAL(cron_prev(&c, NULL, utc("2024-01-01T00:20:00Z")), utc("2024-01-01T00:00:00Z"));
    CU_ASSERT_EQUAL(cron_prev(&c, NULL, utc("2024-01-01T00:00:00Z")), utc("2023-12-31T23:40:00Z"));
    CU_ASSERT_TRUE(cron_matches(&c, NULL, utc("2024-01-01T00:40:00Z")));
    CU_ASSERT_FALSE(cron_matches(&c, NULL, utc("2024-01-01T00:40:00.000001Z")));
    CU_ASSERT_FALSE(cron_matches(&c, NULL, utc("2024-01-01T00:41:00Z")));
}

static void test_day_of_month_or_day_of_week_when_both_restricted(void)
{
    /* 2024-09-01 is a Sunday: Fridays are Sep 6, 13, 20, 27; Oct 1 is a Tuesday, so
     * Fridays Oct 4, 11, 18. The 13th matches too, even when not a Friday (Oct 13 = Sun). */
    static const char *const want[] = {"2024-09-06T00:00:00Z", "2024-09-13T00:00:00Z",
                                       "2024-09-20T00:00:00Z", "2024-09-27T00:00:00Z",
                                       "2024-10-04T00:00:00Z", "2024-10-11T00:00:00Z",
                                       "2024-10-13T00:00:00Z", "2024-10-18T00:00:00Z"};
    assert_sequence("0 0 13 * FRI", NULL, "2024-09-01T00:00:00Z", want, 8);
}

static void test_star_day_field_means_and(void)
{
    /* Day-of-week unrestricted: only the 13th. */
    static const char *const only13[] = {"2024-09-13T00:00:00Z", "2024-10-13T00:00:00Z"};
    assert_sequence("0 0 13 * *", NULL, "2024-09-01T00:00:00Z", only13, 2);
    /* Vixie rule: "*\/2" starts with '*', so both must match: odd days that are Mondays.
     * Mondays in Sep 2024: 2, 9, 16, 23, 30 -> 9, 23; Oct: 7, 14, 21, 28 -> 7, 21. */
    static const char *const odd_mondays[] = {"2024-09-09T00:00:00Z", "2024-09-23T00:00:00Z",
                                              "2024-10-07T00:00:00Z", "2024-10-21T00:00:00Z"};
    assert_sequence("0 0 */2 * MON", NULL, "2024-09-01T00:00:00Z", odd_mondays, 4);
}

static void test_last_day_and_nth_weekday_extensions(void)
{
    static const char *const last[] = {"2024-02-29T00:00:00Z", "2024-03-31T00:00:00Z",
                                       "2024-04-30T00:00:00Z"};
    assert_sequence("0 0 L * *", NULL, "2024-02-01T00:00:00Z", last, 3);
    /* First Monday: Oct 1 2024 is a Tuesday -> Oct 7; Nov 1 is a Friday -> Nov 4. */
    static const char *const first_monday[] = {"2024-10-07T09:00:00Z", "2024-11-04T09:00:00Z"};
    assert_sequence("0 9 * * 1#1", NULL, "2024-10-01T00:00:00Z", first_monday, 2);
}

static void test_leap_day_schedule_skips_to_next_leap_year(void)
{
    CronExpr c = parse_ok("0 0 29 2 *");
    /* 2028-02-29 = 1835395200 s (Python: datetime(2028,2,29) - epoch). */
    CU_ASSERT_EQUAL(cron_next(&c, NULL, utc("2025-01-01T00:00:00Z")), SEC(1835395200));
    CU_ASSERT_EQUAL(cron_prev(&c, NULL, utc("2025-01-01T00:00:00Z")), SEC(1709164800)); /* 2024-02-29 */
    /* 2100 is not a leap year: after 2096 the next Feb 29 is in 2104 (4233686400 s). */
    CU_ASSERT_EQUAL(cron_next(&c, NULL, utc("2096-03-01T00:00:00Z")), SEC(4233686400));
    GustTz *ny = load("America/New_York");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    /* Midnight in New York (EST) = 05:00Z. */
    CU_ASSERT_EQUAL(cron_next(&c, ny, utc("2025-01-01T00:00:00Z")), SEC(1835395200 + 5 * 3600));
    tz_free(ny);
}

static void test_impossible_date_never_fires(void)
{
    CronExpr c = parse_ok("0 0 30 2 *");
    CU_ASSERT_EQUAL(cron_next(&c, NULL, utc("2024-01-01T00:00:00Z")), -1);
    CU_ASSERT_EQUAL(cron_prev(&c, NULL, utc("2024-01-01T00:00:00Z")), -1);
    c = parse_ok("0 0 31 4,6,9,11 *");
    CU_ASSERT_EQUAL(cron_next(&c, NULL, utc("2024-01-01T00:00:00Z")), -1);
    /* Nothing past year 9999. */
    c = parse_ok("* * * * *");
    CU_ASSERT_EQUAL(cron_next(&c, NULL, TIME_MAX_US), -1);
    CU_ASSERT_EQUAL(cron_prev(&c, NULL, TIME_MIN_US), -1);
}

static void test_daily_nine_new_york_across_spring_forward(void)
{
    GustTz *ny = load("America/New_York");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    /* 09:00 EST = 14:00Z until Sunday 2024-03-10; from then 09:00 EDT = 13:00Z. */
    static const char *const want[] = {"2024-03-09T14:00:00Z", "2024-03-10T13:00:00Z",
                                       "2024-03-11T13:00:00Z"};
    assert_sequence("0 9 * * *", ny, "2024-03-09T00:00:00Z", want, 3);
    CronExpr c = parse_ok("0 9 * * *");
    CU_ASSERT_EQUAL(cron_next(&c, ny, utc("2024-01-15T00:00:00Z")), utc("2024-01-15T14:00:00Z"));
    CU_ASSERT_EQUAL(cron_next(&c, ny, utc("2024-07-15T00:00:00Z")), utc("2024-07-15T13:00:00Z"));
    CU_ASSERT_EQUAL(cron_prev(&c, ny, utc("2024-03-10T13:00:00Z")), utc("2024-03-09T14:00:00Z"));
    CU_ASSERT_TRUE(cron_matches(&c, ny, utc("2024-07-15T13:00:00Z")));
    CU_ASSERT_FALSE(cron_matches(&c, ny, utc("2024-07-15T14:00:00Z")));
    /* And back on 2024-11-03. */
    static const char *const fall[] = {"2024-11-02T13:00:00Z", "2024-11-03T14:00:00Z"};
    assert_sequence("0 9 * * *", ny, "2024-11-02T00:00:00Z", fall, 2);
    tz_free(ny);
}

static void test_daily_nine_amsterdam_across_both_transitions(void)
{
    GustTz *ams = load("Europe/Amsterdam");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ams);
    /* 09:00 CET = 08:00Z until Sunday 2024-03-31, 09:00 CEST = 07:00Z until 2024-10-27. */
    static const char *const spring[] = {"2024-03-30T08:00:00Z", "2024-03-31T07:00:00Z"};
    assert_sequence("0 9 * * *", ams, "2024-03-30T00:00:00Z", spring, 2);
    static const char *const autumn[] = {"2024-10-26T07:00:00Z", "2024-10-27T08:00:00Z"};
    assert_sequence("0 9 * * *", ams, "2024-10-26T00:00:00Z", autumn, 2);
    tz_free(ams);
}

static void test_nonexistent_wall_time_fires_shifted_forward(void)
{
    GustTz *ny = load("America/New_York");
    GustTz *ams = load("Europe/Amsterdam");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ams);
    /* 02:30 on 2024-03-10 does not exist in New York: it fires at 03:30 EDT = 07:30Z; the
     * day before at 02:30 EST = 07:30Z, the day after at 02:30 EDT = 06:30Z. */
    static const char *const ny_want[] = {"2024-03-09T07:30:00Z", "2024-03-10T07:30:00Z",
                                          "2024-03-11T06:30:00Z"};
    assert_sequence("30 2 * * *", ny, "2024-03-09T00:00:00Z", ny_want, 3);
    /* Amsterdam 2024-03-31 02:30 -> 03:30 CEST = 01:30Z. */
    static const char *const ams_want[] = {"2024-03-30T01:30:00Z", "2024-03-31T01:30:00Z",
                                           "2024-04-01T00:30:00Z"};
    assert_sequence("30 2 * * *", ams, "2024-03-30T00:00:00Z", ams_want, 3);
    /* Asked from just after the jump (07:05Z = 03:05 EDT): 02:10 still lies ahead, as 07:10Z. */
    CronExpr c = parse_ok("10 2 * * *");
    CU_ASSERT_EQUAL(cron_next(&c, ny, utc("2024-03-10T07:05:00Z")), utc("2024-03-10T07:10:00Z"));
    CU_ASSERT_EQUAL(cron_prev(&c, ny, utc("2024-03-10T07:15:00Z")), utc("2024-03-10T07:10:00Z"));
    CU_ASSERT_TRUE(cron_matches(&c, ny, utc("2024-03-10T07:10:00Z")));
    tz_free(ny);
    tz_free(ams);
}

static void test_ambiguous_wall_time_fires_once_at_the_later_instant(void)
{
    GustTz *ny = load("America/New_York");
    GustTz *ams = load("Europe/Amsterdam");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ams);
    /* 01:30 on 2024-11-03 happens at 05:30Z (EDT) and 06:30Z (EST): fires once, at 06:30Z. */
    static const char *const ny_want[] = {"2024-11-02T05:30:00Z", "2024-11-03T06:30:00Z",
                                          "2024-11-04T06:30:00Z"};
    assert_sequence("30 1 * * *", ny, "2024-11-02T00:00:00Z", ny_want, 3);
    /* Even when asked from inside the first pass (05:40Z = 01:40 EDT). */
    CronExpr c = parse_ok("30 1 * * *");
    CU_ASSERT_EQUAL(cron_next(&c, ny, utc("2024-11-03T05:40:00Z")), utc("2024-11-03T06:30:00Z"));
    CU_ASSERT_EQUAL(cron_prev(&c, ny, utc("2024-11-04T00:00:00Z")), utc("2024-11-03T06:30:00Z"));
    /* Amsterdam 2024-10-27 02:30 happens at 00:30Z and 01:30Z: fires at 01:30Z. */
    static const char *const ams_want[] = {"2024-10-26T00:30:00Z", "2024-10-27T01:30:00Z",
                                           "2024-10-28T01:30:00Z"};
    assert_sequence("30 2 * * *", ams, "2024-10-26T00:00:00Z", ams_want, 3);
    tz_free(ny);
    tz_free(ams);
}

/* Hourly schedules run in absolute time: every 3600 s through both transitions. */
static void check_hourly(const char *zone, const char *from, int hours, int *repeated, int *missing)
{
    GustTz *tz = load(zone);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tz);
    CronExpr c = parse_ok("0 * * * *");
    int64_t t = utc(from), prev = -1;
    int seen[24] = {0};
    int bad_steps = 0;
    for (int i = 0; i < hours; i++) {
        t = cron_next(&c, tz, t);
        if (prev >= 0 && t - prev != SEC(3600)) bad_steps++;
        /* wall-clock hour, computed from the known offsets of the test window */
        int off = tz_offset_at_utc(tz, t);
        int wall_hour = (int)(((t / SEC(1) + off) % 86400 + 86400) % 86400 / 3600);
        seen[wall_hour]++;
        prev = t;
        CU_ASSERT_EQUAL(cron_prev(&c, tz, t + 1), t);
    }
    CU_ASSERT_EQUAL(bad_steps, 0);
    *repeated = *missing = -1;
    for (int h = 0; h < 24; h++) {
        if (seen[h] == 2) *repeated = h;
        if (seen[h] == 0) *missing = h;
    }
    tz_free(tz);
}

static void test_hourly_fires_every_3600_seconds_across_both_transitions(void)
{
    int repeated, missing;
    /* New York, 2024-03-10 00:00 EST (05:00Z) for 24 fires: wall hour 2 never happens. */
    check_hourly("America/New_York", "2024-03-10T04:59:00Z", 24, &repeated, &missing);
    CU_ASSERT_EQUAL(missing, 2);
    CU_ASSERT_EQUAL(repeated, 0); /* 24 real hours span 25 wall hours: 00:00 again next day */
    /* 2024-11-03 from 00:00 EDT (04:00Z) for 24 fires: wall hour 1 happens twice. */
    check_hourly("America/New_York", "2024-11-03T03:59:00Z", 24, &repeated, &missing);
    CU_ASSERT_EQUAL(repeated, 1);
    CU_ASSERT_EQUAL(missing, 23);
    /* Amsterdam: 2024-03-31 00:00 CET = 23:00Z the day before; hour 2 is skipped. */
    check_hourly("Europe/Amsterdam", "2024-03-30T22:59:00Z", 24, &repeated, &missing);
    CU_ASSERT_EQUAL(missing, 2);
    /* 2024-10-27 00:00 CEST = 22:00Z the day before; hour 2 happens twice. */
    check_hourly("Europe/Amsterdam", "2024-10-26T21:59:00Z", 24, &repeated, &missing);
    CU_ASSERT_EQUAL(repeated, 2);
    /* Explicit instants through the New York fall-back: 01:00 EDT, 01:00 EST, 02:00 EST. */
    GustTz *ny = load("America/New_York");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    static const char *const want[] = {"2024-11-03T05:00:00Z", "2024-11-03T06:00:00Z",
                                       "2024-11-03T07:00:00Z"};
    assert_sequence("0 * * * *", ny, "2024-11-03T04:30:00Z", want, 3);
    static const char *const half[] = {"2024-03-10T06:30:00Z", "2024-03-10T07:30:00Z"};
    assert_sequence("30 * * * *", ny, "2024-03-10T06:00:00Z", half, 2); /* 01:30 EST, 03:30 EDT */
    tz_free(ny);
}

static void test_far_future_dst_uses_the_posix_rule(void)
{
    GustTz *ny = load("America/New_York");
    GustTz *ams = load("Europe/Amsterdam");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ams);
    /* 2040: US DST starts Sunday March 11 (Mar 1 is a Thursday). */
    static const char *const ny_want[] = {"2040-03-10T14:00:00Z", "2040-03-11T13:00:00Z"};
    assert_sequence("0 9 * * *", ny, "2040-03-10T00:00:00Z", ny_want, 2);
    /* EU DST starts Sunday March 25, 2040. */
    static const char *const ams_want[] = {"2040-03-24T08:00:00Z", "2040-03-25T07:00:00Z"};
    assert_sequence("0 9 * * *", ams, "2040-03-24T00:00:00Z", ams_want, 2);
    /* Gap in 2040 too: 02:30 on 2040-03-11 -> 03:30 EDT = 07:30Z. */
    static const char *const gap[] = {"2040-03-11T07:30:00Z"};
    assert_sequence("30 2 * * *", ny, "2040-03-11T00:00:00Z", gap, 1);
    tz_free(ny);
    tz_free(ams);
}

static const UnitTest tests[] = {
    UNIT(test_star_sets_every_value),
    UNIT(test_ranges_steps_lists_and_month_names),
    UNIT(test_day_names_and_seven_is_sunday),
    UNIT(test_presets_expand_to_their_cron),
    UNIT(test_errors_name_the_field_and_the_reason),
    UNIT(test_utc_daily_and_step_sequences),
    UNIT(test_day_of_month_or_day_of_week_when_both_restricted),
    UNIT(test_star_day_field_means_and),
    UNIT(test_last_day_and_nth_weekday_extensions),
    UNIT(test_leap_day_schedule_skips_to_next_leap_year),
    UNIT(test_impossible_date_never_fires),
    UNIT(test_daily_nine_new_york_across_spring_forward),
    UNIT(test_daily_nine_amsterdam_across_both_transitions),
    UNIT(test_nonexistent_wall_time_fires_shifted_forward),
    UNIT(test_ambiguous_wall_time_fires_once_at_the_later_instant),
    UNIT(test_hourly_fires_every_3600_seconds_across_both_transitions),
    UNIT(test_far_future_dst_uses_the_posix_rule),
    {0},
};

UNIT_MAIN("cron", tests)
