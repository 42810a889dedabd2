/* test_tz — zones from the real system tz database: offsets, DST transitions in two
 * hemispheres' worth of rules, the POSIX footer for far-future years, and wall-time
 * conversion through gaps and folds. Expected instants are worked out by hand: US DST
 * starts the second Sunday of March at 02:00 local and ends the first Sunday of November
 * at 02:00 local; the EU switches at 01:00 UTC on the last Sundays of March and October. */
#include <stdint.h>

#include "core/timeutil.h"
#include "core/tz.h"
#include "tests/unit/unit.h"

#define SEC(x) ((int64_t)(x) * INT64_C(1000000))
#define H 3600

/* Parse a UTC ISO string (time_parse_iso is tested against literal seconds elsewhere). */
static int64_t utc(const char *iso)
{
    char err[256];
    int64_t us = -1;
    if (time_parse_iso(iso, NULL, &us, err, sizeof err) < 0) fprintf(stderr, "\n  %s\n", err);
    return us;
}

static GustTz *load(const char *name)
{
    char err[256];
    GustTz *tz = tz_load(name, err, sizeof err);
    if (!tz) fprintf(stderr, "\n  %s\n", err);
    return tz;
}

static void test_utc_aliases_need_no_database_and_have_zero_offset(void)
{
    static const char *const names[] = {"UTC", "utc", "Etc/UTC"};
    for (size_t i = 0; i < 3; i++) {
        GustTz *tz = load(names[i]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(tz);
        ASSERT_STR_EQ(tz_name(tz), "UTC");
        CU_ASSERT_TRUE(tz_is_utc(tz));
        CU_ASSERT_EQUAL(tz_offset_at_utc(tz, utc("2024-07-01T00:00:00Z")), 0);
        CU_ASSERT_EQUAL(tz_local_to_utc(tz, SEC(12345)), SEC(12345));
        tz_free(tz);
    }
    ASSERT_STR_EQ(tz_name(NULL), "UTC");
    CU_ASSERT_EQUAL(tz_offset_at_utc(NULL, 0), 0);
    tz_free(NULL);
}

static void test_unknown_timezone_is_an_error_with_a_suggestion(void)
{
    char err[256];
    CU_ASSERT_PTR_NULL(tz_load("Mars/Base", err, sizeof err));
    ASSERT_CONTAINS(err, "unknown timezone 'Mars/Base'");
    CU_ASSERT_PTR_NULL(tz_load("America/New_Yrok", err, sizeof err));
    ASSERT_CONTAINS(err, "unknown timezone 'America/New_Yrok'");
    ASSERT_CONTAINS(err, "did you mean 'America/New_York'");
    CU_ASSERT_PTR_NULL(tz_load("America", err, sizeof err)); /* a directory */
    ASSERT_CONTAINS(err, "unknown timezone 'America'");
    CU_ASSERT_PTR_NULL(tz_load("zone.tab", err, sizeof err)); /* a file, but not TZif */
    ASSERT_CONTAINS(err, "unknown timezone 'zone.tab'");
    CU_ASSERT_PTR_NULL(tz_load("", err, sizeof err));
}

static void test_names_escaping_the_database_are_rejected(void)
{
    char err[256];
    CU_ASSERT_PTR_NULL(tz_load("../../../etc/passwd", err, sizeof err));
    ASSERT_CONTAINS(err, "not a valid zone name");
    CU_ASSERT_PTR_NULL(tz_load("/etc/localtime", err, sizeof err));
    ASSERT_CONTAINS(err, "not a valid zone name");
    CU_ASSERT_PTR_NULL(tz_load("America/../Europe/Paris", err, sizeof err));
}

static void test_new_york_offsets_switch_at_the_2024_transitions(void)
{
    GustTz *ny = load("America/New_York");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    ASSERT_STR_EQ(tz_name(ny), "America/New_York");
    CU_ASSERT_FALSE(tz_is_utc(ny));
    CU_ASSERT_EQUAL(tz_offset_at_utc(ny, utc("2024-01-15T12:00:00Z")), -5 * H);
    CU_ASSERT_EQUAL(tz_offset_at_utc(ny, utc("2024-07-15T12:00:00Z")), -4 * H);
    /* 2024-03-10 02:00 EST = 07:00Z; 2024-11-03 02:00 EDT = 06:00Z. */
    CU_ASSERT_EQUAL(tz_offset_at_utc(ny, utc("2024-03-10T06:59:59.999999Z")), -5 * H);
    CU_ASSERT_EQUAL(tz_offset_at_utc(ny, utc("2024-03-10T07:00:00Z")), -4 * H);
    CU_ASSERT_EQUAL(tz_offset_at_utc(ny, utc("2024-11-03T05:59:59Z")), -4 * H);
    CU_ASSERT_EQUAL(tz_offset_at_utc(ny, utc("2024-11-03T06:00:00Z")), -5 * H);
    CU_ASSERT_EQUAL(tz_next_transition(ny, utc("2024-01-01T00:00:00Z")), utc("2024-03-10T07:00:00Z"));
    CU_ASSERT_EQUAL(tz_next_transition(ny, utc("2024-03-10T07:00:00Z")), utc("2024-11-03T06:00:00Z"));
    CU_ASSERT_EQUAL(tz_prev_transition(ny, utc("2024-06-01T00:00:00Z")), utc("2024-03-10T07:00:00Z"));
    CU_ASSERT_EQUAL(tz_prev_transition(ny, utc("2024-03-10T07:00:00Z")), utc("2024-03-10T07:00:00Z"));
    tz_free(ny);
}

static void test_amsterdam_switches_on_the_last_sundays_of_march_and_october(void)
{
    GustTz *ams = load("Europe/Amsterdam");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ams);
    /* 2024: March 31 and October 27 are the last Sundays; the switch is at 01:00Z. */
    CU_ASSERT_EQUAL(tz_offset_at_utc(ams, utc("2024-03-31T00:59:59Z")), 1 * H);
    CU_ASSERT_EQUAL(tz_offset_at_utc(ams, utc("2024-03-31T01:00:00Z")), 2 * H);
    CU_ASSERT_EQUAL(tz_offset_at_utc(ams, utc("2024-10-27T00:59:59Z")), 2 * H);
    CU_ASSERT_EQUAL(tz_offset_at_utc(ams, utc("2024-10-27T01:00:00Z")), 1 * H);
    CU_ASSERT_EQUAL(tz_next_transition(ams, utc("2024-04-01T00:00:00Z")), utc("2024-10-27T01:00:00Z"));
    tz_free(ams);
}

static void test_far_future_dst_comes_from_the_posix_footer(void)
{
    GustTz *ny = load("America/New_York");
    GustTz *ams = load("Europe/Amsterdam");
    GustTz *syd = load("Australia/Sydney");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ams);
    CU_ASSERT_PTR_NOT_NULL_FATAL(syd);
    /* Files list transitions to 2037 at most. 2040-03-01 is a Thursday, so the second
     * Sunday of March is the 11th (02:00 EST = 07:00Z); Nov 1 is a Thursday, so the first
     * Sunday of November is the 4th (02:00 EDT = 06:00Z). */
    CU_ASSERT_EQUAL(tz_offset_at_utc(ny, utc("2040-03-11T06:59:59Z")), -5 * H);
    CU_ASSERT_EQUAL(tz_offset_at_utc(ny, utc("2040-03-11T07:00:00Z")), -4 * H);
    CU_ASSERT_EQUAL(tz_offset_at_utc(ny, utc("2040-11-04T05:59:59Z")), -4 * H);
    CU_ASSERT_EQUAL(tz_offset_at_utc(ny, utc("2040-11-04T06:00:00Z")), -5 * H);
    CU_ASSERT_EQUAL(tz_next_transition(ny, utc("2040-01-01T00:00:00Z")), utc("2040-03-11T07:00:00Z"));
    CU_ASSERT_EQUAL(tz_prev_transition(ny, utc("2040-12-01T00:00:00Z")), utc("2040-11-04T06:00:00Z"));
    /* 2040: the last Sunday of March is the 25th (Mar 1 Thursday -> Sundays 4, 11, 18, 25). */
    CU_ASSERT_EQUAL(tz_offset_at_utc(ams, utc("2040-03-25T00:59:59Z")), 1 * H);
    CU_ASSERT_EQUAL(tz_offset_at_utc(ams, utc("2040-03-25T01:00:00Z")), 2 * H);
    /* Southern hemisphere: Sydney is on daylight time (+11) in January, standard (+10) in July. */
    CU_ASSERT_EQUAL(tz_offset_at_utc(syd, utc("2045-01-15T00:00:00Z")), 11 * H);
    CU_ASSERT_EQUAL(tz_offset_at_utc(syd, utc("2045-07-15T00:00:00Z")), 10 * H);
    /* Year 2100 is not a leap year; March 1, 2100 is a Monday, so the second Sunday is the 14th. */
    CU_ASSERT_EQUAL(tz_offset_at_utc(ny, utc("2100-03-14T06:59:59Z")), -5 * H);
    CU_ASSERT_EQUAL(tz_offset_at_utc(ny, utc("2100-03-14T07:00:00Z")), -4 * H);
    tz_free(ny);
    tz_free(ams);
    tz_free(syd);
}

/* A TZif v2 file with no transitions at all, only the footer: every instant is resolved by
 * the POSIX rule (how "slim" files behave after their last listed transition). */
static void test_footer_only_zone_follows_its_rule_in_any_year(void)
{
    unsigned char data[256];
    size_t n = 0;
    for (int part = 0; part < 2; part++) {
        static const unsigned char hdr[44] = {'T', 'Z', 'i', 'f', '2', [35] = 0, [39] = 1, [43] = 4};
        memcpy(data + n, hdr, 44); /* timecnt 0, typecnt 1, charcnt 4 */
        n += 44;
        static const unsigned char ttinfo[10] = {0xFF, 0xFF, 0xB9, 0xB0, 0, 0, 'E', 'S', 'T', 0};
        memcpy(data + n, ttinfo, 10); /* utoff -18000 */
        n += 10;
    }
    const char *footer = "\nEST5EDT,M3.2.0,M11.1.0\n";
    memcpy(data + n, footer, strlen(footer));
    n += strlen(footer);
    char err[256];
    GustTz *tz = tz_from_tzif("Test/Footer", data, n, err, sizeof err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tz);
    CU_ASSERT_EQUAL(tz_offset_at_utc(tz, utc("1995-01-01T00:00:00Z")), -5 * H);
    /* 2024: March 10 07:00Z and November 3 06:00Z, as for America/New_York. */
    CU_ASSERT_EQUAL(tz_offset_at_utc(tz, utc("2024-03-10T06:59:59Z")), -5 * H);
    CU_ASSERT_EQUAL(tz_offset_at_utc(tz, utc("2024-03-10T07:00:00Z")), -4 * H);
    CU_ASSERT_EQUAL(tz_offset_at_utc(tz, utc("2024-11-03T06:00:00Z")), -5 * H);
    CU_ASSERT_EQUAL(tz_local_to_utc(tz, utc("2024-03-10T02:30:00Z")), utc("2024-03-10T07:30:00Z"));
    CU_ASSERT_EQUAL(tz_local_to_utc(tz, utc("2024-11-03T01:30:00Z")), utc("2024-11-03T06:30:00Z"));
    tz_free(tz);
    CU_ASSERT_PTR_NULL(tz_from_tzif("Test/Garbage", (const unsigned char *)"TZif2", 5, err, sizeof err));
    ASSERT_CONTAINS(err, "not a valid TZif file");
    data[n - 3] = '!'; /* corrupt the rule */
    CU_ASSERT_PTR_NULL(tz_from_tzif("Test/BadRule", data, n, err, sizeof err));
    ASSERT_CONTAINS(err, "cannot read its rule");
}

static void test_local_to_utc_plain_wall_times(void)
{
    GustTz *ny = load("America/New_York");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    /* Wall times are written as if UTC: "09:00 local" is utc("...T09:00:00Z"). */
    CU_ASSERT_EQUAL(tz_local_to_utc(ny, utc("2024-01-15T09:00:00Z")), utc("2024-01-15T14:00:00Z"));
    CU_ASSERT_EQUAL(tz_local_to_utc(ny, utc("2024-07-15T09:00:00.25Z")), utc("2024-07-15T13:00:00.25Z"));
    CU_ASSERT_EQUAL(tz_utc_to_local(ny, utc("2024-07-15T13:00:00Z")), utc("2024-07-15T09:00:00Z"));
    tz_free(ny);
}

static void test_nonexistent_wall_time_shifts_forward_by_the_gap(void)
{
    GustTz *ny = load("America/New_York");
    GustTz *ams = load("Europe/Amsterdam");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ams);
    /* 02:30 does not exist on 2024-03-10 in New York; it becomes 03:30 EDT = 07:30Z. */
    CU_ASSERT_EQUAL(tz_local_to_utc(ny, utc("2024-03-10T02:30:00Z")), utc("2024-03-10T07:30:00Z"));
    CU_ASSERT_EQUAL(tz_local_to_utc(ny, utc("2024-03-10T02:00:00Z")), utc("2024-03-10T07:00:00Z"));
    CU_ASSERT_EQUAL(tz_local_to_utc(ny, utc("2024-03-10T03:00:00Z")), utc("2024-03-10T07:00:00Z"));
    /* Amsterdam 2024-03-31 02:30 -> 03:30 CEST = 01:30Z. */
    CU_ASSERT_EQUAL(tz_local_to_utc(ams, utc("2024-03-31T02:30:00Z")), utc("2024-03-31T01:30:00Z"));
    tz_free(ny);
    tz_free(ams);
}

static void test_ambiguous_wall_time_takes_the_later_instant(void)
{
    GustTz *ny = load("America/New_York");
    GustTz *ams = load("Europe/Amsterdam");
    CU_ASSERT_PTR_NOT_NULL_FATAL(ny);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ams);
    /* 01:30 happens twice on 2024-11-03: 05:30Z (EDT) and 06:30Z (EST); the later wins. */
    CU_ASSERT_EQUAL(tz_local_to_utc(ny, utc("2024-11-03T01:30:00Z")), utc("2024-11-03T06:30:00Z"));
    CU_ASSERT_EQUAL(tz_local_to_utc(ny, utc("2024-11-03T00:59:59Z")), utc("2024-11-03T04:59:59Z"));
    CU_ASSERT_EQUAL(tz_local_to_utc(ny, utc("2024-11-03T02:00:00Z")), utc("2024-11-03T07:00:00Z"));
    /* Amsterdam 2024-10-27 02:30 happens at 00:30Z (CEST) and 01:30Z (CET). */
    CU_ASSERT_EQUAL(tz_local_to_utc(ams, utc("2024-10-27T02:30:00Z")), utc("2024-10-27T01:30:00Z"));
    /* Far future through the footer: 2040-11-04 01:30 -> 06:30Z. */
    CU_ASSERT_EQUAL(tz_local_to_utc(ny, utc("2040-11-04T01:30:00Z")), utc("2040-11-04T06:30:00Z"));
    CU_ASSERT_EQUAL(tz_local_to_utc(ny, utc("2040-03-11T02:30:00Z")), utc("2040-03-11T07:30:00Z"));
    tz_free(ny);
    tz_free(ams);
}

static void test_tzdir_environment_variable_selects_the_database(void)
{
    char err[256];
    const char *old = getenv("TZDIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("TZDIR", "/nonexistent-tz-dir", 1);
    CU_ASSERT_PTR_NULL(tz_load("America/New_York", err, sizeof err));
    ASSERT_CONTAINS(err, "unknown timezone 'America/New_York'");
    GustTz *u = tz_load("UTC", err, sizeof err); /* built in */
    CU_ASSERT_PTR_NOT_NULL(u);
    tz_free(u);
    if (saved)
        setenv("TZDIR", saved, 1);
    else
        unsetenv("TZDIR");
    free(saved);
}

static const UnitTest tests[] = {
    UNIT(test_utc_aliases_need_no_database_and_have_zero_offset),
    UNIT(test_unknown_timezone_is_an_error_with_a_suggestion),
    UNIT(test_names_escaping_the_database_are_rejected),
    UNIT(test_new_york_offsets_switch_at_the_2024_transitions),
    UNIT(test_amsterdam_switches_on_the_last_sundays_of_march_and_october),
    UNIT(test_far_future_dst_comes_from_the_posix_footer),
    UNIT(test_footer_only_zone_follows_its_rule_in_any_year),
    UNIT(test_local_to_utc_plain_wall_times),
    UNIT(test_nonexistent_wall_time_shifts_forward_by_the_gap),
    UNIT(test_ambiguous_wall_time_takes_the_later_instant),
    UNIT(test_tzdir_environment_variable_selects_the_database),
    {0},
};

UNIT_MAIN("tz", tests)
