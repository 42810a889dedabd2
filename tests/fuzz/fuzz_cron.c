/* fuzz_cron — libFuzzer target for the cron and schedule parsers and the fire-time search.
 * Any input must either parse or be rejected with a message; a parsed expression must give
 * fire times that are strictly ordered around the probe instant and that cron_matches
 * agrees with, in UTC and in a zone with DST. Zones are loaded once: they are read-only.
 * Inputs starting with "TZif" go to the zone-file reader instead, which parses bytes from
 * disk that gust does not control. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cron.h"
#include "core/schedule.h"
#include "core/tz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static GustTz *new_york(void)
{
    static GustTz *tz; /* loaded once, kept for the process: the fuzzer never exits cleanly */
    static int tried;
    if (!tried) {
        char err[256];
        tried = 1;
        tz = tz_load("America/New_York", err, sizeof err);
    }
    return tz;
}

static void check(const CronExpr *c, const GustTz *tz, int64_t probe)
{
    int64_t next = cron_next(c, tz, probe);
    int64_t prev = cron_prev(c, tz, probe);
    if (next != -1 && (next <= probe || !cron_matches(c, tz, next))) abort();
    if (prev != -1 && (prev >= probe || !cron_matches(c, tz, prev))) abort();
    if (next != -1) {
        int64_t after = cron_next(c, tz, next);
        if (after != -1 && after <= next) abort();
        /* nothing fires between probe and next, so next's predecessor is at or before probe */
        if (cron_prev(c, tz, next) > probe) abort();
    }
    if (prev != -1) {
        int64_t n2 = cron_next(c, tz, prev);
        if (n2 != -1 && n2 < probe) abort();
    }
}

static void fuzz_tzif(const uint8_t *data, size_t size)
{
    char err[256];
    GustTz *tz = tz_from_tzif("Fuzz/Zone", data, size, err, sizeof err);
    if (!tz) {
        if (!err[0]) abort();
        return;
    }
    static const int64_t probes[] = {INT64_C(-2208988800000000), 0, INT64_C(1710054000000000),
                                     INT64_C(2215321200000000), INT64_C(253402300799000000)};
    for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
        int64_t t = probes[i];
        int off = tz_offset_at_utc(tz, t);
        if (off < -26 * 3600 || off > 26 * 3600) abort();
        int64_t l = tz_utc_to_local(tz, t);
        int64_t back = tz_local_to_utc(tz, l);
        if (back - l > INT64_C(30) * 3600 * 1000000 || l - back > INT64_C(30) * 3600 * 1000000) abort();
        int64_t nt = tz_next_transition(tz, t), pt = tz_prev_transition(tz, t);
        if (nt <= t || pt > t) abort();
    }
    tz_free(tz);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 4 && memcmp(data, "TZif", 4) == 0) {
        fuzz_tzif(data, size);
        return 0;
    }
    if (size > 512) return 0; /* long cron inputs only slow the search down */
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    char err[256];
    CronExpr c;
    if (cron_parse(text, &c, err, sizeof err) == 0) {
        /* Probes around the 2024 New York transitions, the epoch and the far future. */
        static const int64_t probes[] = {
            INT64_C(1710054000000000), /* 2024-03-10T07:00:00Z, spring forward */
            INT64_C(1730613600000000), /* 2024-11-03T06:00:00Z, fall back */
            INT64_C(1730611800000000), /* 2024-11-03T05:30:00Z, inside the repeated hour */
            0,
            INT64_C(2215321200000000), /* 2040-03-15T07:00:00Z, beyond the listed transitions */
        };
        int pick = size ? data[0] % 5 : 0;
        check(&c, NULL, probes[pick]);
        check(&c, new_york(), probes[pick]);
        check(&c, new_york(), probes[(pick + 1) % 5]);
    } else if (!err[0]) {
        abort(); /* every rejection must say why */
    }

    Schedule s;
    if (schedule_parse(text, &s, err, sizeof err) == 0) {
        ScheduleCtx ctx = {&s, new_york(), INT64_C(1704067200000000), -1, (int)(size & 1)};
        DataInterval iv[4];
        int64_t runs[4];
        if (schedule_next_interval(&ctx, -1, INT64_C(1710054000000000), &iv[0]) == 0 &&
            iv[0].run_after < iv[0].start)
            abort();
        int n = schedule_next_runs(&ctx, INT64_C(1710054000000000), runs, 4);
        for (int i = 1; i < n; i++)
            if (runs[i] <= runs[i - 1]) abort();
        schedule_between(&ctx, INT64_C(1709251200000000), INT64_C(1711929600000000), iv, 4);
    }
    schedule_free(&s);
    free(text);
    return 0;
}
