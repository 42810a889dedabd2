/* test_timeutil — calendar arithmetic and ISO 8601 text. Expected values are epoch
 * seconds worked out by hand (derivations in the comments), never by calling the code
 * under test. */
#include <stdint.h>

#include "core/timeutil.h"
#include "core/tz.h"
#include "tests/unit/unit.h"

#define SEC(x) ((int64_t)(x) * INT64_C(1000000))

static void test_days_from_civil_known_dates(void)
{
    CU_ASSERT_EQUAL(time_days_from_civil(1970, 1, 1), 0);
    CU_ASSERT_EQUAL(time_days_from_civil(1969, 12, 31), -1);
    /* 2000-01-01: 30 years * 365 + 7 leap days (72..96) = 10957; + Jan 31 + Feb 29 = 11017. */
    CU_ASSERT_EQUAL(time_days_from_civil(2000, 1, 1), 10957);
    CU_ASSERT_EQUAL(time_days_from_civil(2000, 3, 1), 11017);
    /* 2024-01-01: 54 * 365 + 13 leap days (72..2020) = 19723; Feb 29 = +31 +28. */
    CU_ASSERT_EQUAL(time_days_from_civil(2024, 2, 29), 19782);
    /* Python: date(1970,1,1).toordinal() - date(1,1,1).toordinal() = 719162. */
    CU_ASSERT_EQUAL(time_days_from_civil(1, 1, 1), -719162);
}

static void test_civil_from_days_inverts_days_from_civil_for_every_day_1900_to_2400(void)
{
    int bad = 0;
    int y = 1900, m = 1, d = 1;
    for (int64_t n = time_days_from_civil(1900, 1, 1); y < 2400; n++) {
        int yy, mm, dd;
        time_civil_from_days(n, &yy, &mm, &dd);
        if (yy != y || mm != m || dd != d) bad++;
        /* advance the expected date by hand, independent of the code under test */
        static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        int ml = len[m - 1] + (m == 2 && leap);
        if (++d > ml) {
            d = 1;
            if (++m > 12) m = 1, y++;
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_leap_years_and_month_lengths(void)
{
    CU_ASSERT_TRUE(time_is_leap_year(2000));
    CU_ASSERT_TRUE(time_is_leap_year(2024));
    CU_ASSERT_FALSE(time_is_leap_year(1900));
    CU_ASSERT_FALSE(time_is_leap_year(2100));
    CU_ASSERT_FALSE(time_is_leap_year(2023));
    CU_ASSERT_EQUAL(time_days_in_month(2024, 2), 29);
    CU_ASSERT_EQUAL(time_days_in_month(2100, 2), 28);
    CU_ASSERT_EQUAL(time_days_in_month(2024, 4), 30);
    CU_ASSERT_EQUAL(time_days_in_month(2024, 12), 31);
    CU_ASSERT_EQUAL(time_days_in_month(2024, 13), 0);
}

static void test_weekday_of_known_dates(void)
{
    CU_ASSERT_EQUAL(time_weekday_from_days(0), 4);      /* 1970-01-01 was a Thursday */
    CU_ASSERT_EQUAL(time_weekday_from_days(-1), 3);     /* 1969-12-31 Wednesday */
    CU_ASSERT_EQUAL(time_weekday_from_days(20038), 1);  /* 2024-11-11 Monday: 19723 + 305 + 10 */
}

static void test_parse_date_only_is_midnight_utc(void)
{
    char err[256];
    int64_t us = 0;
    /* 2024-11-11 = day 20038 (see above) -> 20038 * 86400 = 1731283200 s. */
    CU_ASSERT_EQUAL(time_parse_iso("2024-11-11", NULL, &us, err, sizeof err), 0);
    CU_ASSERT_EQUAL(us, SEC(1731283200));
}

static void test_parse_datetime_forms(void)
{
    char err[256];
    int64_t us = 0;
    const int64_t midnight = SEC(1731283200); /* 2024-11-11T00:00:00Z */
    CU_ASSERT_EQUAL(time_parse_iso("2024-11-11T05:00", NULL, &us, err, sizeof err), 0);
    CU_ASSERT_EQUAL(us, midnight + SEC(5 * 3600));
    CU_ASSERT_EQUAL(time_parse_iso("2024-11-11T05:00:00", NULL, &us, err, sizeof err), 0);
    CU_ASSERT_EQUAL(us, midnight + SEC(5 * 3600));
    CU_ASSERT_EQUAL(time_parse_iso("2024-11-11 05:00:00.123456", NULL, &us, err, sizeof err), 0);
    CU_ASSERT_EQUAL(us, midnight + SEC(5 * 3600) + 123456);
    CU_ASSERT_EQUAL(time_parse_iso("2024-11-11T05:00:00.5Z", NULL, &us, err, sizeof err), 0);
    CU_ASSERT_EQUAL(us, midnight + SEC(5 * 3600) + 500000);
}

static void test_parse_explicit_offsets_override_the_zone(void)
{
    char err[256];
    int64_t us = 0;
    const int64_t midnight = SEC(1731283200);
    GustTz *ny = tz_load("America/New_York", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    CU_ASSERT_EQUAL(time_parse_iso("2024-11-11T05:00:00Z", ny, &us, err, sizeof err), 0);
    CU_ASSERT_EQUAL(us, midnight + SEC(5 * 3600));
    CU_ASSERT_EQUAL(time_parse_iso("2024-11-11T05:00:00+02:00", ny, &us, err, sizeof err), 0);
    CU_ASSERT_EQUAL(us, midnight + SEC(3 * 3600));
    CU_ASSERT_EQUAL(time_parse_iso("2024-11-11T05:00:00-0500", NULL, &us, err, sizeof err), 0);
    CU_ASSERT_EQUAL(us, midnight + SEC(10 * 3600));
    /* No offset: wall time in New York, EST (-5) in November -> 10:00Z. */
    CU_ASSERT_EQUAL(time_parse_iso("2024-11-11T05:00", ny, &us, err, sizeof err), 0);
    CU_ASSERT_EQUAL(us, midnight + SEC(10 * 3600));
    tz_free(ny);
}

static void test_parse_yaml_timestamp_with_spaced_short_offset(void)
{
    char err[256];
    int64_t us = 0;
    /* YAML spec example. 2001-12-14 21:59:43.10 at -5 = 2001-12-15 02:59:43.1Z.
     * 2001-12-15 = 31*365 + 8 leap days + 348 = 11671 days; *86400 + 10783 s. */
    CU_ASSERT_EQUAL(time_parse_iso("2001-12-14 21:59:43.10 -5", NULL, &us, err, sizeof err), 0);
    CU_ASSERT_EQUAL(us, SEC(1008385183) + 100000);
    CU_ASSERT_EQUAL(time_parse_iso("2001-12-14t21:59:43.10-05:00", NULL, &us, err, sizeof err), 0);
    CU_ASSERT_EQUAL(us, SEC(1008385183) + 100000);
    CU_ASSERT_EQUAL(time_parse_iso("2002-1-2", NULL, &us, err, sizeof err), 0);
    CU_ASSERT_EQUAL(us, SEC(1009929600)); /* 2002-01-02: 11323 + 365 + 1 = 11689 days */
}

static void test_parse_errors_name_the_bad_part(void)
{
    char err[256];
    int64_t us = 0;
    CU_ASSERT_EQUAL(time_parse_iso("2024-13-01", NULL, &us, err, sizeof err), -1);
    ASSERT_STR_EQ(err, "invalid date '2024-13-01': month must be 1-12");
    CU_ASSERT_EQUAL(time_parse_iso("2023-02-29", NULL, &us, err, sizeof err), -1);
    ASSERT_STR_EQ(err, "invalid date '2023-02-29': day must be 1-28 for 2023-02");
    CU_ASSERT_EQUAL(time_parse_iso("2024-11-11T24:00", NULL, &us, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "hour must be 0-23");
    CU_ASSERT_EQUAL(time_parse_iso("2024-11-11T05:60", NULL, &us, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "minute must be 0-59");
    CU_ASSERT_EQUAL(time_parse_iso("2024-11-11T05:00:61", NULL, &us, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "second must be 0-59");
    CU_ASSERT_EQUAL(time_parse_iso("yesterday", NULL, &us, err, sizeof err), -1);
    ASSERT_STR_EQ(err, "invalid date 'yesterday': expected YYYY-MM-DD[THH:MM[:SS[.ffffff]]][Z|+HH:MM]");
    CU_ASSERT_EQUAL(time_parse_iso("2024-11-11T05:00+25:00", NULL, &us, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "UTC offset");
    CU_ASSERT_EQUAL(time_parse_iso("2024-11-11T05:00 tomorrow", NULL, &us, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "unexpected 'tomorrow'");
    CU_ASSERT_EQUAL(time_parse_iso("", NULL, &us, err, sizeof err), -1);
    CU_ASSERT_EQUAL(time_parse_iso(NULL, NULL, &us, err, sizeof err), -1);
    CU_ASSERT_EQUAL(time_parse_iso("0000-01-01", NULL, &us, err, sizeof err), -1);
    ASSERT_CONTAINS(err, "year must be 1-9999");
}

static void test_format_iso_with_and_without_micros(void)
{
    char buf[64];
    time_format_iso(0, 0, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "1970-01-01T00:00:00Z");
    /* 2026-03-08: 56*365 + 14 leap days = 20454 (Jan 1), + 66 = 20520; *86400 + 13 h. */
    time_format_iso(SEC(1772974800), 0, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "2026-03-08T13:00:00Z");
    time_format_iso(SEC(1772974800), 1, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "2026-03-08T13:00:00.000000Z");
    time_format_iso(-1, 1, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "1969-12-31T23:59:59.999999Z");
    time_format_iso(SEC(1709164800) + 7, 1, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "2024-02-29T00:00:00.000007Z");
}

static void test_format_iso_local_prints_the_zone_offset(void)
{
    char buf[64], err[256];
    GustTz *ny = tz_load("America/New_York", err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    /* 2026-03-08 is the US spring-forward day (second Sunday); 13:00Z is 09:00 EDT. */
    time_format_iso_local(SEC(1772974800), ny, 0, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "2026-03-08T09:00:00-04:00");
    time_format_iso_local(SEC(1772974800), NULL, 0, buf, sizeof buf);
    ASSERT_STR_EQ(buf, "2026-03-08T13:00:00+00:00");
    tz_free(ny);
}

static void test_parse_format_round_trip(void)
{
    static const char *const samples[] = {
        "1970-01-01T00:00:00.000000Z", "1969-07-20T20:17:40.000000Z", "2024-02-29T23:59:59.999999Z",
        "2100-03-01T00:00:00.000001Z", "0001-01-01T00:00:00.000000Z", "9999-12-31T23:59:59.999999Z",
    };
    char err[256], buf[64];
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        int64_t us = 0;
        CU_ASSERT_EQUAL(time_parse_iso(samples[i], NULL, &us, err, sizeof err), 0);
        time_format_iso(us, 1, buf, sizeof buf);
        ASSERT_STR_EQ(buf, samples[i]);
    }
    int64_t us = 0;
    CU_ASSERT_EQUAL(time_parse_iso("0001-01-01", NULL, &us, err, sizeof err), 0);
    CU_ASSERT_EQUAL(us, TIME_MIN_US);
    CU_ASSERT_EQUAL(time_parse_iso("9999-12-31T23:59:59.999999", NULL, &us, err, sizeof err), 0);
    CU_ASSERT_EQUAL(us, TIME_MAX_US);
}

static const UnitTest tests[] = {
    UNIT(test_days_from_civil_known_dates),
    UNIT(test_civil_from_days_inverts_days_from_civil_for_every_day_1900_to_2400),
    UNIT(test_leap_years_and_month_lengths),
    UNIT(test_weekday_of_known_dates),
    UNIT(test_parse_date_only_is_midnight_utc),
    UNIT(test_parse_datetime_forms),
    UNIT(test_parse_explicit_offsets_override_the_zone),
    UNIT(test_parse_yaml_timestamp_with_spaced_short_offset),
    UNIT(test_parse_errors_name_the_bad_part),
    UNIT(test_format_iso_with_and_without_micros),
    UNIT(test_format_iso_local_prints_the_zone_offset),
    UNIT(test_parse_format_round_trip),
    {0},
};

UNIT_MAIN("timeutil", tests)
