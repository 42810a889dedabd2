/* schedule — Airflow 2.x timetable semantics over cron and fixed intervals (see
 * schedule.h).
 *
 * Every time-based kind reduces to three questions: where is the first interval start at
 * or after t (align_next), the latest one at or before t (align_prev), and which start
 * follows a given one (following). Creation order, next-runs listings and catchup
 * enumeration are all written once on top of them, so the kinds cannot drift apart. */
#include "core/schedule.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/util.h"

/* ---- parsing ------------------------------------------------------------------------- */

const char *schedule_kind_name(ScheduleKind kind)
{
    switch (kind) {
    case SCHEDULE_NONE: return "none";
    case SCHEDULE_ONCE: return "once";
    case SCHEDULE_CRON: return "cron";
    case SCHEDULE_INTERVAL: return "interval";
    case SCHEDULE_CRON_TRIGGER: return "cron_trigger";
    case SCHEDULE_ASSETS: return "assets";
    }
    return "unknown";
}

void schedule_free(Schedule *s)
{
    if (!s) return;
    free(s->expr);
    memset(s, 0, sizeof *s);
    s->kind = SCHEDULE_NONE;
}

void schedule_interval(Schedule *out, int64_t interval_us)
{
    schedule_free(out);
    out->kind = SCHEDULE_INTERVAL;
    out->interval_us = interval_us;
}

int schedule_parse(const char *text, Schedule *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->kind = SCHEDULE_NONE;
    if (!text) return 0;
    while (isspace((unsigned char)*text)) text++;
    size_t n = strlen(text);
    while (n && isspace((unsigned char)text[n - 1])) n--;
    char *t = xstrndup(text, n);
    if (n == 0 || strcasecmp(t, "none") == 0 || strcasecmp(t, "null") == 0) {
        free(t);
        return 0;
    }
    if (strcasecmp(t, "@once") == 0) {
        out->kind = SCHEDULE_ONCE;
        out->expr = t;
        return 0;
    }
    if (strcasecmp(t, "@continuous") == 0) {
        snprintf(err, errlen,
                 "schedule '@continuous' is not supported by gust (use a cron such as '* * * * *' "
                 "or a short interval)");
        free(t);
        return -1;
    }
    if (t[0] == '@' && !cron_preset(t)) {
        static const char *const names[] = {"@once",    "@hourly", "@daily",  "@weekly",
                                            "@monthly", "@yearly", "@annually", "@midnight"};
        const char *best = util_closest(t, names, GUST_ARRAY_LEN(names));
        char hint[48] = "";
        if (best) snprintf(hint, sizeof hint, " (did you mean '%s'?)", best);
        snprintf(err, errlen,
                 "unknown schedule preset '%.64s'%s: use @once, @hourly, @daily, @weekly, "
                 "@monthly or @yearly",
                 t, hint);
        free(t);
        return -1;
    }
    if (cron_parse(t, &out->cron, err, errlen) < 0) {
        free(t);
        memset(&out->cron, 0, sizeof out->cron);
        return -1;
    }
    out->kind = SCHEDULE_CRON;
    out->expr = t;
    return 0;
}

/* ---- interval arithmetic ------------------------------------------------------------- */

static int is_cron(const ScheduleCtx *ctx)
{
    ScheduleKind k = ctx->schedule->kind;
    return k == SCHEDULE_CRON || k == SCHEDULE_CRON_TRIGGER;
}

static int valid_time(int64_t t)
{
    return t >= TIME_MIN_US && t <= TIME_MAX_US;
}

/* INTERVAL's grid: start_date + k * length (the epoch without a start date). */
static int64_t grid_anchor(const ScheduleCtx *ctx)
{
    return ctx->start_date >= 0 ? ctx->start_date : 0;
}

static int64_t grid_at(const ScheduleCtx *ctx, int64_t k)
{
    int64_t v;
    if (__builtin_mul_overflow(k, ctx->schedule->interval_us, &v) ||
        __builtin_add_overflow(v, grid_anchor(ctx), &v) || !valid_time(v))
        return -1;
    return v;
}

/* The first interval start >= t; -1 if none. */
static int64_t align_next(const ScheduleCtx *ctx, int64_t t)
{
    if (!valid_time(t)) return -1;
    if (is_cron(ctx)) return cron_next(&ctx->schedule->cron, ctx->tz, t - 1);
    int64_t d = ctx->schedule->interval_us;
    return grid_at(ctx, time_floor_div(t - grid_anchor(ctx) + d - 1, d));
}

/* The latest interval start <= t; -1 if none. */
static int64_t align_prev(const ScheduleCtx *ctx, int64_t t)
{
    if (!valid_time(t)) return -1;
    if (is_cron(ctx)) return cron_prev(&ctx->schedule->cron, ctx->tz, t + 1);
    return grid_at(ctx, time_floor_div(t - grid_anchor(ctx), ctx->schedule->interval_us));
}

/* The interval start after s; -1 if none. */
static int64_t following(const ScheduleCtx *ctx, int64_t s)
{
    if (is_cron(ctx)) return cron_next(&ctx->schedule->cron, ctx->tz, s);
    int64_t v;
    if (__builtin_add_overflow(s, ctx->schedule->interval_us, &v) || !valid_time(v)) return -1;
    return v;
}

/* The interval that starts at s (its end and run_after); -1 if it has no end. */
static int fill(const ScheduleCtx *ctx, int64_t s, DataInterval *out)
{
    ScheduleKind k = ctx->schedule->kind;
    out->start = s;
    if (k == SCHEDULE_CRON_TRIGGER || k == SCHEDULE_ONCE) {
        out->end = out->run_after = s;
        return 0;
    }
    out->end = out->run_after = following(ctx, s);
    return out->end < 0 ? -1 : 0;
}

/* 1 if the schedule can produce time-based runs at all. */
static int time_based(const ScheduleCtx *ctx)
{
    const Schedule *s = ctx->schedule;
    if (!s) return 0;
    switch (s->kind) {
    case SCHEDULE_CRON:
    case SCHEDULE_CRON_TRIGGER:
    case SCHEDULE_ONCE: return 1;
    case SCHEDULE_INTERVAL: return s->interval_us > 0;
    default: return 0;
    }
}

/* The first interval start at or after start_date; -1 if there is no start date or no
 * such start (-2 then, to tell "no bound" from "never"). */
static int64_t first_start(const ScheduleCtx *ctx)
{
    if (ctx->start_date < 0) return -1;
    if (ctx->schedule->kind == SCHEDULE_ONCE) return ctx->start_date;
    int64_t s = align_next(ctx, ctx->start_date);
    return s < 0 ? -2 : s;
}

static int past_end(const ScheduleCtx *ctx, int64_t start)
{
    return ctx->end_date >= 0 && start > ctx->end_date;
}

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* The latest interval that is complete at now (run_after <= now), as its start. */
static int64_t latest_due(const ScheduleCtx *ctx, int64_t now)
{
    switch (ctx->schedule->kind) {
    case SCHEDULE_CRON: {
        int64_t end = align_prev(ctx, now);
        return end < 0 ? -1 : cron_prev(&ctx->schedule->cron, ctx->tz, end);
    }
    case SCHEDULE_INTERVAL: {
        int64_t v;
        if (__builtin_sub_overflow(now, ctx->schedule->interval_us, &v)) return -1;
        return align_prev(ctx, v);
    }
    default: return align_prev(ctx, now); /* CRON_TRIGGER: the latest fire time */
    }
}

int schedule_next_interval(const ScheduleCtx *ctx, int64_t last_logical_us, int64_t now_us,
                           DataInterval *out)
{
    if (!time_based(ctx)) return -1;
    int64_t first = first_start(ctx);
    if (first == -2) return -1; /* the schedule never fires after start_date */
    if (ctx->schedule->kind == SCHEDULE_ONCE) {
        /* Airflow: always at start_date, catchup or not, and only once. */
        if (last_logical_us >= 0 || first < 0 || past_end(ctx, first)) return -1;
        return fill(ctx, first, out);
    }
    int64_t start = -1;
    if (last_logical_us >= 0) {
        start = following(ctx, last_logical_us);
        if (start < 0) return -1;
        start = max64(start, first); /* start_date moved forward since the last run */
    } else if (ctx->catchup && first >= 0) {
        start = first;
    }
    /* Without catchup, skip to the latest complete interval; with catchup but nothing to
     * start from (no start date, no previous run), do the same rather than guess. */
    if (!ctx->catchup || start < 0) start = max64(max64(start, first), latest_due(ctx, now_us));
    if (start < 0) {
        /* Nothing due yet and no start date: the first interval that will be. */
        start = align_next(ctx, now_us);
        if (start < 0) return -1;
    }
    if (past_end(ctx, start)) return -1;
    return fill(ctx, start, out);
}

/* The start of the first interval whose run_after is > after (end_date not applied). */
static int64_t first_after(const ScheduleCtx *ctx, int64_t after)
{
    int64_t first = first_start(ctx);
    if (first == -2) return -1;
    ScheduleKind k = ctx->schedule->kind;
    if (k == SCHEDULE_ONCE) return first > after ? first : -1;
    if (k == SCHEDULE_CRON_TRIGGER) return first > after ? first : align_next(ctx, after + 1);
    int64_t s = align_prev(ctx, after);
    if (s < 0 || (first >= 0 && s < first)) s = first >= 0 ? first : align_next(ctx, after);
    /* run_after of s is following(s) > after by construction; step on if DST made the
     * wall-clock arithmetic disagree. */
    DataInterval iv;
    for (int guard = 0; s >= 0 && guard < 4; guard++) {
        if (fill(ctx, s, &iv) < 0) return -1;
        if (iv.run_after > after) return s;
        s = following(ctx, s);
    }
    return -1;
}

int schedule_between(const ScheduleCtx *ctx, int64_t from_us, int64_t to_us, DataInterval *out,
                     int max)
{
    if (!time_based(ctx) || max <= 0 || !valid_time(from_us)) return 0;
    int count = 0;
    for (int64_t s = first_after(ctx, from_us); s >= 0 && count < max && !past_end(ctx, s);) {
        DataInterval iv;
        if (fill(ctx, s, &iv) < 0 || iv.run_after > to_us) break;
        out[count++] = iv;
        if (ctx->schedule->kind == SCHEDULE_ONCE) break;
        s = following(ctx, s);
    }
    return count;
}

int schedule_next_runs(const ScheduleCtx *ctx, int64_t after_us, int64_t *out_us, int n)
{
    if (!time_based(ctx) || n <= 0 || !valid_time(after_us)) return 0;
    int count = 0;
    for (int64_t s = first_after(ctx, after_us); s >= 0 && count < n && !past_end(ctx, s);) {
        DataInterval iv;
        if (fill(ctx, s, &iv) < 0) break;
        out_us[count++] = iv.run_after;
        if (ctx->schedule->kind == SCHEDULE_ONCE) break;
        s = following(ctx, s);
    }
    return count;
}
