/* cmd_backfill — `gust dags backfill`: creates a DAG's scheduled runs over a range of
 * logical dates and runs them in this process, at most N at once, with a progress bar. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_store.h"
#include "cli/run_int.h"
#include "core/dagbag.h"
#include "core/log.h"
#include "core/schedule.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "scheduler/scheduler.h"
#include "store/runs.h"
#include "store/ti.h"
#include "store/tiquery.h"

/* ---- gust dags backfill ----------------------------------------------------------------- */

static const char BACKFILL_USAGE[] =
    "usage: gust dags backfill DAG_ID -s|--start-date D -e|--end-date D [--max-active-runs N] [--dry-run]\n"
    "                          [--output json]\n";

#define BACKFILL_MAX_RUNS 100000

typedef struct BfRun {
    char run_id[160];
    int64_t logical, start, end; /* the data interval (-1 when the schedule has none) */
    int existed;                 /* an unfinished run that was in the store already: carried on */
    int started;                 /* created, or carried on */
    int finished;
    RunState state;
    int n_tasks, done, failed_tasks;
} BfRun;

static int bf_cmp(const void *a, const void *b)
{
    const BfRun *x = a, *y = b;
    return x->logical < y->logical ? -1 : x->logical > y->logical;
}

/* The logical dates of the DAG's schedule within [from, to], in order. -1 when there are
 * more than BACKFILL_MAX_RUNS. */
static long bf_intervals(const Dag *d, int64_t from, int64_t to, BfRun **out)
{
    ScheduleCtx ctx = {&d->schedule, d->tz, d->start_date_us, d->end_date_us, 1};
    ScheduleKind k = d->schedule.kind;
    DataInterval buf[256];
    long n = 0;
    int64_t after = from - 1; /* intervals whose run_after is > after; those that start at or after `from` among them */
    *out = NULL;
    for (;;) {
        int got = schedule_between(&ctx, after, TIME_MAX_US, buf, 256);
        for (int i = 0; i < got; i++) {
            int64_t logical = k == SCHEDULE_CRON_TRIGGER ? buf[i].run_after : buf[i].start;
            if (logical > to) return n;
            if (logical < from) continue;
            if (n >= BACKFILL_MAX_RUNS) return -1;
            *out = xrealloc(*out, (size_t)(n + 1) * sizeof **out);
            BfRun *r = &(*out)[n++];
            memset(r, 0, sizeof *r);
            r->logical = logical;
            r->start = k == SCHEDULE_CRON_TRIGGER ? -1 : buf[i].start;
            r->end = k == SCHEDULE_CRON_TRIGGER ? -1 : buf[i].end;
            r->n_tasks = (int)d->n_tasks;
        }
        if (got < 256 || k == SCHEDULE_ONCE) return n;
        after = buf[got - 1].run_after;
    }
}

typedef struct BfProgress {
    int tty;
    int drawn;
    int runs_done, tasks_done, failed; /* as last shown */
} BfProgress;

/* A bar redrawn in place on a terminal; plain lines otherwise, one each time a run ends
 * (and a first and a last one), not one per task. */
static void bf_progress(BfProgress *p, const BfRun *runs, size_t n, int final)
{
    int runs_done = 0, tasks_done = 0, tasks = 0, failed = 0;
    for (size_t i = 0; i < n; i++) {
        runs_done += runs[i].finished;
        failed += runs[i].finished && runs[i].state == RUN_FAILED;
        tasks += runs[i].n_tasks;
        tasks_done += runs[i].done;
    }
    int show = !p->drawn || final || runs_done != p->runs_done || failed != p->failed ||
               (p->tty && tasks_done != p->tasks_done);
    if (!show) return;
    if (p->tty) {
        char bar[31];
        int fill = n ? (int)((size_t)runs_done * 30 / n) : 30;
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r\033[K[%s] %d/%zu runs  %d/%d tasks  %d failed%s", bar, runs_done, n, tasks_done, tasks,
                failed, final ? "\n" : "");
    } else if (!final || runs_done != p->runs_done || failed != p->failed || !p->drawn) {
        fprintf(stderr, "gust dags backfill: %d/%zu runs done, %d/%d tasks done, %d failed\n", runs_done, n,
                tasks_done, tasks, failed);
    }
    fflush(stderr);
    p->drawn = 1;
    p->runs_done = runs_done;
    p->tasks_done = tasks_done;
    p->failed = failed;
}

/* Bring the unfinished runs up to date from the store. */
static int bf_refresh(Store *s, const char *dag_id, BfRun *runs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        BfRun *r = &runs[i];
        if (!r->started || r->finished) continue;
        DagRun dr;
        if (store_run_get(s, dag_id, r->run_id, &dr) != 1) return -1;
        r->state = dr.state;
        run_clear(&dr);
        /* the per-state counts, not the instances: a poll costs the same however big the runs */
        int64_t c[TI__COUNT];
        if (store_tiq_run_state_counts(s, dag_id, r->run_id, c) != 0) return -1;
        r->n_tasks = r->done = 0;
        for (int st = 0; st < TI__COUNT; st++) {
            r->n_tasks += (int)c[st];
            if (ti_state_is_finished((TiState)st)) r->done += (int)c[st];
        }
        r->failed_tasks = (int)(c[TI_FAILED] + c[TI_UPSTREAM_FAILED]);
        r->finished = r->state == RUN_SUCCESS || r->state == RUN_FAILED;
    }
    return 0;
}

int cli_dags_backfill(GustConfig *cfg, int argc, char **argv)
{
    const char *dag_id = NULL, *start = NULL, *end = NULL;
    int json = 0, dry = 0;
    long max_active = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int o = cli_output_json(argc, argv, &i);
        if (o < 0) goto usage;
        if (o) json = o == 1;
        else if ((strcmp(a, "-s") == 0 || strcmp(a, "--start-date") == 0) && i + 1 < argc) start = argv[++i];
        else if (strncmp(a, "--start-date=", 13) == 0) start = a + 13;
        else if ((strcmp(a, "-e") == 0 || strcmp(a, "--end-date") == 0) && i + 1 < argc) end = argv[++i];
        else if (strncmp(a, "--end-date=", 11) == 0) end = a + 11;
        else if ((strcmp(a, "--max-active-runs") == 0 && i + 1 < argc) || strncmp(a, "--max-active-runs=", 18) == 0) {
            const char *v = a[17] == '=' ? a + 18 : argv[++i];
            char *e;
            errno = 0;
            max_active = strtol(v, &e, 10);
            if (errno || *e || e == v || max_active < 1 || max_active > 100000) {
                fprintf(stderr, "gust dags backfill: --max-active-runs must be a whole number from 1 to 100000\n");
                return 2;
            }
        } else if (strcmp(a, "--dry-run") == 0 || strcmp(a, "-n") == 0) dry = 1;
        else if (cli_is_help(a)) {
            printf("%s"
                   "Creates the DAG's scheduled runs whose logical dates lie within [D, D] (both included; ISO 8601,\n"
                   "without an offset on the DAG's time zone), as runs of type backfill (run id backfill__DATE),\n"
                   "skipping dates that already have a run, and runs them in this process, at most N at once\n"
                   "(default: the DAG's max_active_runs), with unfinished runs already in the range (cleared ones)\n"
                   "carried on too. On the store at database.url when it is set, else on a throw-away one.\n"
                   "Progress goes to stderr (a bar on a terminal, plain lines otherwise). Exit 0 iff every run\n"
                   "succeeded. --dry-run only lists the logical dates that would be created.\n",
                   BACKFILL_USAGE);
            return 0;
        } else if (a[0] == '-') goto usage;
        else if (!dag_id) dag_id = a;
        else goto usage;
    }
    if (!dag_id || !start || !end) goto usage;
    DagBag bag;
    Dag *d = cli_load_dag(cfg, dag_id, &bag);
    if (!d) {
        dagbag_free(&bag);
        return 1;
    }
    int rc = 1;
    BfRun *runs = NULL;
    long n = 0;
    char tmp[32] = "";
    int64_t from, to;
    if (cli_parse_date_opt("dags backfill", "--start-date", start, d->tz, &from) != 0 ||
        cli_parse_date_opt("dags backfill", "--end-date", end, d->tz, &to) != 0) {
        rc = 2;
        goto out;
    }
    if (from > to) {
        fprintf(stderr, "gust dags backfill: --start-date is after --end-date\n");
        rc = 2;
        goto out;
    }
    ScheduleKind kind = d->schedule.kind;
    if (kind == SCHEDULE_NONE || kind == SCHEDULE_ASSETS) {
        fprintf(stderr, "gust dags backfill: %s has no time-based schedule (schedule: %s); there is nothing to backfill\n",
                dag_id, d->schedule_text ? d->schedule_text : "None");
        goto out;
    }
    n = bf_intervals(d, from, to, &runs);
    if (n < 0) {
        fprintf(stderr, "gust dags backfill: more than %d runs between those dates; backfill a shorter range\n",
                BACKFILL_MAX_RUNS);
        goto out;
    }
    if (d->start_date_us >= 0 && from < d->start_date_us) {
        char sdt[48];
        time_format_iso(d->start_date_us, 0, sdt, sizeof sdt);
        fprintf(stderr, "gust dags backfill: note: %s starts at %s; no runs before that\n", dag_id, sdt);
    }
    if (max_active <= 0)
        max_active = d->max_active_runs > 0 ? d->max_active_runs : config_get_int(cfg, "core.max_active_runs_per_dag");
    int throwaway = 1;
    char *url = NULL;
    CliRuntime rt;
    memset(&rt, 0, sizeof rt);
    Store *store = NULL;
    if (dry) {
        if (config_source_kind(cfg, "database.url") != CONFIG_SRC_DEFAULT) {
            store = cli_open_store(cfg, "dags backfill", 1);
            if (!store) goto out;
        }
    } else {
        url = cli_runner_store_url(cfg, "dags backfill", tmp, &throwaway);
        if (!url) goto out;
        cli_install_signals();
        if (cli_runtime_start(&rt, cfg, "dags backfill", url, NULL, 0, (int)config_get_int(cfg, "worker.concurrency")) !=
            0)
            goto stop;
        store = rt.store;
    }
    /* what the store has already: finished runs are skipped, unfinished ones carried on */
    int skipped = 0;
    cJSON *skipped_ids = cJSON_CreateArray();
    if (store) {
        DagRun *have;
        size_t nh;
        if (store_run_list_between(store, dag_id, from, to, &have, &nh) != 0) {
            fprintf(stderr, "gust dags backfill: %s\n", store_last_error(store));
            cJSON_Delete(skipped_ids);
            goto stop;
        }
        for (size_t h = 0; h < nh; h++) {
            long i = 0;
            while (i < n && runs[i].logical != have[h].logical_date) i++;
            int done = have[h].state == RUN_SUCCESS || have[h].state == RUN_FAILED;
            if (done) {
                skipped++;
                cJSON_AddItemToArray(skipped_ids, cJSON_CreateString(have[h].run_id));
                if (i < n) runs[i] = runs[--n]; /* order is restored below */
                continue;
            }
            if (i == n) { /* an unfinished run off the schedule's grid (a manual one): carried on too */
                runs = xrealloc(runs, (size_t)(n + 1) * sizeof *runs);
                memset(&runs[n], 0, sizeof runs[n]);
                runs[n].logical = have[h].logical_date;
                n++;
            }
            util_strlcpy(runs[i].run_id, have[h].run_id, sizeof runs[i].run_id);
            runs[i].existed = runs[i].started = 1;
            runs[i].state = have[h].state;
        }
        run_list_free(have, nh);
        qsort(runs, (size_t)n, sizeof *runs, bf_cmp);
    }
    if (dry) {
        cJSON *dates = cJSON_CreateArray();
        for (long i = 0; i < n; i++) {
            if (runs[i].existed) continue;
            char iso[48];
            time_format_iso(runs[i].logical, 0, iso, sizeof iso);
            if (!json) printf("%s\n", iso);
            cJSON_AddItemToArray(dates, cJSON_CreateString(iso));
        }
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "dag_id", dag_id);
            cJSON_AddItemToObject(o, "logical_dates", dates);
            cJSON_AddItemToObject(o, "existing", skipped_ids);
            skipped_ids = NULL;
            cli_print_json_doc(o);
        } else {
            cJSON_Delete(dates);
            if (skipped) fprintf(stderr, "gust dags backfill: %d date(s) in the range have a finished run already\n", skipped);
        }
        cJSON_Delete(skipped_ids);
        rc = 0;
        goto stop;
    }
    char version[33];
    int was_paused = 0;
    if (cli_runner_prepare_dag(store, cfg, "dags backfill", d, 1, version, &was_paused) != 0) {
        cJSON_Delete(skipped_ids);
        goto stop;
    }
    int created = 0, error = 0;
    if (n == 0)
        fprintf(stderr, "gust dags backfill: %s: nothing to do between %s and %s%s\n", dag_id, start, end,
                skipped ? " (every date has a finished run)" : "");
    else
        fprintf(stderr, "gust dags backfill: %s: %ld run(s) between %s and %s, at most %ld at once%s\n", dag_id, n,
                start, end, max_active, skipped ? "; dates that have a finished run are skipped" : "");
    BfProgress prog = {.tty = isatty(STDERR_FILENO)};
    /* the bar owns the terminal's last line: info lines of the scheduler and workers would
     * break it, so they are shown only when logging.level asks for them */
    if (prog.tty && config_source_kind(cfg, "logging.level") == CONFIG_SRC_DEFAULT) log_set_level(LOG_WARNING);
    store_listen(store);
    while (!cli_stop_flag && n > 0) {
        long active = 0;
        for (long i = 0; i < n; i++) active += runs[i].started && !runs[i].finished;
        for (long i = 0; i < n && active < max_active; i++) {
            BfRun *r = &runs[i];
            if (r->started) continue;
            int made = sched_create_run(store, d, version, "backfill", NULL, r->logical, r->start, r->end, NULL,
                                        "backfill", r->run_id, sizeof r->run_id);
            if (made < 0) {
                fprintf(stderr, "%sgust dags backfill: %s\n", prog.tty ? "\n" : "", store_last_error(store));
                error = 1;
                break;
            }
            if (made == 0) { /* someone made a run at that date meanwhile: follow that one */
                DagRun dr;
                if (store_run_get_by_logical(store, dag_id, r->logical, &dr) == 1) {
                    util_strlcpy(r->run_id, dr.run_id, sizeof r->run_id);
                    run_clear(&dr);
                }
                r->existed = 1;
            }
            created += made;
            r->started = 1;
            active++;
        }
        if (error) break;
        int64_t next = util_now_us() + 200000;
        if (sched_step(rt.sched, &next) != 0) log_warn("scheduler", "%s", sched_error(rt.sched));
        if (bf_refresh(store, dag_id, runs, (size_t)n) != 0) {
            fprintf(stderr, "%sgust dags backfill: %s\n", prog.tty ? "\n" : "", store_last_error(store));
            error = 1;
            break;
        }
        bf_progress(&prog, runs, (size_t)n, 0);
        long left = 0;
        for (long i = 0; i < n; i++) left += !runs[i].finished;
        if (!left) break;
        int64_t wait = next - util_now_us();
        if (wait > 500000) wait = 500000;
        if (wait < 1000) wait = 1000;
        store_wait_change(store, (int)(wait / 1000), NULL, 0);
    }
    if (n > 0) bf_progress(&prog, runs, (size_t)n, 1);
    int ok = !error && !cli_stop_flag, succeeded = 0, failed = 0;
    for (long i = 0; i < n; i++) {
        succeeded += runs[i].finished && runs[i].state == RUN_SUCCESS;
        failed += runs[i].finished && runs[i].state == RUN_FAILED;
        if (!runs[i].finished || runs[i].state != RUN_SUCCESS) ok = 0;
    }
    if (cli_stop_flag) fprintf(stderr, "gust dags backfill: interrupted; unfinished runs are left queued or running\n");
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dag_id", dag_id);
        cJSON *arr = cJSON_AddArrayToObject(o, "runs");
        for (long i = 0; i < n; i++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "run_id", runs[i].run_id);
            cli_iso_or_null(r, "logical_date", runs[i].logical);
            cJSON_AddStringToObject(r, "state", run_state_name(runs[i].state));
            cJSON_AddBoolToObject(r, "created", runs[i].started && !runs[i].existed);
            cJSON_AddItemToArray(arr, r);
        }
        cJSON_AddItemToObject(o, "skipped", cJSON_Duplicate(skipped_ids, 1));
        cli_print_json_doc(o);
    } else {
        for (long i = 0; i < n; i++)
            if (runs[i].started) printf("%-56s %s\n", runs[i].run_id, run_state_name(runs[i].state));
        printf("backfill %s: %ld run(s), %d succeeded, %d failed; %d created, %d existing run(s) skipped\n", dag_id, n,
               succeeded, failed, created, skipped);
    }
    if (!throwaway) {
        cJSON *extra = cJSON_CreateObject();
        cJSON_AddStringToObject(extra, "start_date", start);
        cJSON_AddStringToObject(extra, "end_date", end);
        cJSON_AddNumberToObject(extra, "created", created);
        cJSON_AddNumberToObject(extra, "succeeded", succeeded);
        cJSON_AddNumberToObject(extra, "failed", failed);
        cli_audit(store, "dags backfill", "cli_dag_backfill", dag_id, extra);
    }
    cJSON_Delete(skipped_ids);
    cli_runner_restore_pause(store, dag_id, was_paused);
    rc = ok ? 0 : 1;
stop:
    if (dry) store_free(store);
    else cli_runtime_stop(&rt, 5LL * 1000000);
out:
    free(runs);
    dagbag_free(&bag);
    cli_throwaway_remove(tmp, "dags backfill");
    return rc;
usage:
    fputs(BACKFILL_USAGE, stderr);
    return 2;
}
