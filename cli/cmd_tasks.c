/* cmd_tasks — `gust tasks states|test|clear`: a run's task instances; one try of one task
 * in this process (on a thread of its own, tailing the try's log), as airflow tasks test;
 * clearing instances so that they run again, as airflow tasks clear. */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_store.h"
#include "cli/run_int.h"
#include "core/dagbag.h"
#include "core/timeutil.h"
#include "core/tz.h"
#include "core/util.h"
#include "scheduler/scheduler.h"
#include "store/dags.h"
#include "store/runs.h"
#include "store/ti.h"
#include "store/xcom.h"
#include "worker/worker.h"

/* ---- gust tasks states ------------------------------------------------------------------ */

static const char TASKS_STATES_USAGE[] = "usage: gust tasks states DAG_ID RUN_ID [--output json]\n";

static int tasks_states(GustConfig *cfg, int argc, char **argv)
{
    const char *dag_id = NULL, *run_id = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        int o = cli_output_json(argc, argv, &i);
        if (o < 0) goto usage;
        if (o) json = o == 1;
        else if (cli_is_help(argv[i])) {
            printf("%sThe task instances of a run: state, try number, start and end (the JSON of dags test).\n",
                   TASKS_STATES_USAGE);
            return 0;
        } else if (argv[i][0] == '-') goto usage;
        else if (!dag_id) dag_id = argv[i];
        else if (!run_id) run_id = argv[i];
        else goto usage;
    }
    if (!dag_id || !run_id) goto usage;
    Store *s = cli_open_store(cfg, "tasks states", 1);
    if (!s) return 1;
    int rc = cli_print_run(s, dag_id, run_id, json) < 0 ? 1 : 0;
    store_free(s);
    return rc;
usage:
    fputs(TASKS_STATES_USAGE, stderr);
    return 2;
}

/* ---- gust tasks test ------------------------------------------------------------------ */

static const char TASKS_TEST_USAGE[] = "usage: gust tasks test DAG_ID TASK_ID [LOGICAL_DATE] [--output json]\n";

typedef struct TestTry {
    CliRuntime *rt;
    const char *ti_id;
    int try_number;
    int rc;
    char err[512];
    int done; /* atomic */
} TestTry;

/* One try on a thread of its own (with its own store connection), so that the main thread
 * can tail the log while it runs. */
static void *test_try_main(void *arg)
{
    TestTry *t = arg;
    Store *s = store_open(t->rt->url, t->err, sizeof t->err);
    if (!s) {
        t->rc = -1;
    } else {
        t->rc = worker_run_try(s, t->rt->cache, &t->rt->wopt, t->ti_id, t->try_number, &cli_stop_flag);
        if (t->rc <= 0) snprintf(t->err, sizeof t->err, "%s", store_last_error(s));
        store_free(s);
    }
    __atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* Copy what the try's log has from *off on to stdout (or into buf). */
static void tail_log(Store *s, const char *ti_id, int try_number, int64_t *off, StrBuf *buf)
{
    for (;;) {
        StoreLogRead r;
        if (store_log_read(s, ti_id, try_number, *off, 0, &r) != 0) {
            store_log_read_free(&r);
            return;
        }
        size_t len = r.len;
        if (len) {
            if (buf) sb_appendn(buf, r.data, len);
            else fwrite(r.data, 1, len, stdout);
            *off = r.next_offset;
        }
        store_log_read_free(&r);
        if (!len) break;
    }
    if (!buf) fflush(stdout);
}

/* Run one try of ti_id (scheduled) here, tailing its log. Returns 0 when the try ran here
 * or elsewhere and is over, -1 on an error (printed). */
static int test_one_try(CliRuntime *rt, const char *ti_id, int priority, StrBuf *logbuf)
{
    int q = store_ti_enqueue(rt->store, ti_id, priority);
    if (q < 0) {
        fprintf(stderr, "gust tasks test: %s\n", store_last_error(rt->store));
        return -1;
    }
    TaskInstance ti;
    if (store_ti_get(rt->store, ti_id, &ti) != 1) {
        fprintf(stderr, "gust tasks test: %s\n", store_last_error(rt->store));
        return -1;
    }
    int try_number = ti.try_number, ran_here = 0;
    ti_clear(&ti);
    int64_t off = 0;
    if (q == 1) {
        TestTry t = {.rt = rt, .ti_id = ti_id, .try_number = try_number};
        pthread_t th;
        if (pthread_create(&th, NULL, test_try_main, &t) != 0) {
            fprintf(stderr, "gust tasks test: cannot start a thread\n");
            return -1;
        }
        for (;;) {
            int done = __atomic_load_n(&t.done, __ATOMIC_ACQUIRE);
            tail_log(rt->store, ti_id, try_number, &off, logbuf);
            if (done) break;
            usleep(100000);
        }
        pthread_join(th, NULL);
        if (t.rc < 0) {
            fprintf(stderr, "gust tasks test: %s\n", t.err);
            return -1;
        }
        ran_here = t.rc == 1;
    }
    if (!ran_here) {
        /* another scheduler or worker on this store took it: wait for that try to end */
        fprintf(stderr, "gust tasks test: another scheduler or worker took the try; waiting for it to end\n");
        for (;;) {
            if (store_ti_get(rt->store, ti_id, &ti) != 1) return -1;
            TiState st = ti.state;
            try_number = ti.try_number;
            ti_clear(&ti);
            if (st != TI_SCHEDULED && st != TI_QUEUED && st != TI_RUNNING) break;
            if (cli_stop_flag) return -1;
            usleep(200000);
        }
        tail_log(rt->store, ti_id, try_number, &off, logbuf);
    }
    return 0;
}

static int tasks_test(GustConfig *cfg, int argc, char **argv)
{
    const char *dag_id = NULL, *task_id = NULL, *date = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        int o = cli_output_json(argc, argv, &i);
        if (o < 0) goto usage;
        if (o) json = o == 1;
        else if (cli_is_help(argv[i])) {
            printf("%s"
                   "Runs one task instance in this process, ignoring its upstream tasks, as airflow tasks test\n"
                   "does: one try (no retries; a sensor in reschedule mode pokes until it is done), its log on\n"
                   "stdout as it runs, then its final state. On a throw-away SQLite store unless database.url is\n"
                   "set; there it uses the DAG's run at LOGICAL_DATE if one exists (its task instance is cleared\n"
                   "first), else creates a manual run. LOGICAL_DATE (ISO 8601, UTC unless it has an offset)\n"
                   "defaults to now. Exit 0 iff the task succeeded (or was skipped, as Airflow's exit code).\n"
                   "--output json: {\"dag_id\",\"task_id\",\"run_id\",\"state\",\"try_number\",\"start_date\","
                   "\"end_date\",\"log\"}.\n",
                   TASKS_TEST_USAGE);
            return 0;
        } else if (argv[i][0] == '-') goto usage;
        else if (!dag_id) dag_id = argv[i];
        else if (!task_id) task_id = argv[i];
        else if (!date) date = argv[i];
        else goto usage;
    }
    if (!dag_id || !task_id) goto usage;
    int64_t logical = util_now_us();
    if (date && cli_parse_logical(date, &logical) != 0) return 2;
    DagBag bag;
    Dag *d = cli_load_dag(cfg, dag_id, &bag);
    if (!d) {
        dagbag_free(&bag);
        return 1;
    }
    const DagTask *task = dag_find_task(d, task_id);
    if (!task) {
        const char **ids = xcalloc(d->n_tasks + 1, sizeof *ids);
        for (size_t i = 0; i < d->n_tasks; i++) ids[i] = d->tasks[i]->task_id;
        const char *near = util_closest(task_id, ids, d->n_tasks);
        fprintf(stderr, "gust tasks test: DAG %s has no task '%s'%s%s%s\n", dag_id, task_id,
                near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
        free(ids);
        dagbag_free(&bag);
        return 1;
    }
    char tmp[32];
    int throwaway;
    char *url = cli_runner_store_url(cfg, "tasks test", tmp, &throwaway);
    if (!url) {
        dagbag_free(&bag);
        return 1;
    }
    cli_install_signals();
    CliRuntime rt;
    int rc = 1;
    char version[33];
    int was_paused = 0;
    char run_id[160] = "";
    TaskInstance ti;
    memset(&ti, 0, sizeof ti);
    StrBuf logbuf = {0};
    if (cli_runtime_open(&rt, cfg, "tasks test", url, 1) != 0 ||
        cli_runner_prepare_dag(rt.store, cfg, "tasks test", d, 0, version, &was_paused) != 0)
        goto done;
    /* the run: an existing one at that date (configured store), else a new manual run */
    DagRun old;
    int found = store_run_get_by_logical(rt.store, dag_id, logical, &old);
    if (found < 0) {
        fprintf(stderr, "gust tasks test: %s\n", store_last_error(rt.store));
        goto done_pause;
    }
    if (found == 1) {
        util_strlcpy(run_id, old.run_id, sizeof run_id);
        run_clear(&old);
    } else if (sched_create_run(rt.store, d, version, "manual", NULL, logical, logical, logical, NULL, "tasks test",
                                run_id, sizeof run_id) < 0) {
        fprintf(stderr, "gust tasks test: %s\n", store_last_error(rt.store));
        goto done_pause;
    }
    int got = store_ti_get_by_key(rt.store, dag_id, run_id, task_id, -1, &ti);
    if (got != 1) {
        fprintf(stderr, "gust tasks test: %s\n",
                got < 0 ? store_last_error(rt.store) : "the run has no instance of this task (it predates the task)");
        goto done_pause;
    }
    if (ti.state == TI_QUEUED || ti.state == TI_RUNNING || ti.state == TI_RESTARTING) {
        fprintf(stderr, "gust tasks test: %s in %s is %s now; wait for it to end\n", task_id, run_id,
                ti_state_name(ti.state));
        goto done_pause;
    }
    if (ti.state != TI_NONE && ti.state != TI_SCHEDULED &&
        store_ti_clear_for_rerun(rt.store, ti.id, ti.state, ti.try_number, task->retries, NULL) != 1) {
        fprintf(stderr, "gust tasks test: %s\n", store_last_error(rt.store));
        goto done_pause;
    }
    if (!json) fprintf(stderr, "gust tasks test: %s %s %s\n", dag_id, run_id, task_id);
    for (;;) {
        if (ti.state != TI_SCHEDULED && store_ti_set_state(rt.store, ti.id, -1, TI_SCHEDULED, -1) != 1) {
            fprintf(stderr, "gust tasks test: %s\n", store_last_error(rt.store));
            goto done_pause;
        }
        if (test_one_try(&rt, ti.id, ti.priority_weight, json ? &logbuf : NULL) != 0) goto done_pause;
        char id[33];
        memcpy(id, ti.id, sizeof id);
        ti_clear(&ti);
        if (store_ti_get(rt.store, id, &ti) != 1) {
            fprintf(stderr, "gust tasks test: %s\n", store_last_error(rt.store));
            goto done_pause;
        }
        /* a sensor in reschedule mode: poke again when it asked to, as the scheduler would */
        if (ti.state != TI_UP_FOR_RESCHEDULE || cli_stop_flag) break;
        while (!cli_stop_flag && util_now_us() < ti.next_attempt_at) usleep(50000);
        if (cli_stop_flag) break;
    }
    rc = ti.state == TI_SUCCESS || ti.state == TI_SKIPPED ? 0 : 1;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dag_id", dag_id);
        cJSON_AddStringToObject(o, "task_id", task_id);
        cJSON_AddStringToObject(o, "run_id", run_id);
        cJSON_AddStringToObject(o, "state", ti_state_name(ti.state));
        cJSON_AddNumberToObject(o, "try_number", ti.try_number);
        cli_iso_or_null(o, "start_date", ti.start_date);
        cli_iso_or_null(o, "end_date", ti.end_date);
        cJSON_AddStringToObject(o, "log", sb_str(&logbuf));
        cli_print_json_doc(o);
    } else {
        printf("%s %s %s: %s (try %d)%s\n", dag_id, run_id, task_id, ti_state_name(ti.state), ti.try_number,
               ti.state == TI_UP_FOR_RETRY ? " - tasks test runs one try; the scheduler would retry it" : "");
    }
done_pause:
    cli_runner_restore_pause(rt.store, dag_id, was_paused);
done:
    ti_clear(&ti);
    sb_free(&logbuf);
    cli_runtime_stop(&rt, 0);
    dagbag_free(&bag);
    cli_throwaway_remove(tmp, "tasks test");
    return rc;
usage:
    fputs(TASKS_TEST_USAGE, stderr);
    return 2;
}

/* ---- gust tasks clear ----------------------------------------------------------------- */

static const char TASKS_CLEAR_USAGE[] =
    "usage: gust tasks clear DAG_ID [-t|--task-regex R] [-s|--start-date D] [-e|--end-date D] [-f|--only-failed]\n"
    "                        [-r|--only-running] [-d|--downstream] [-u|--upstream] [-y|--yes] [--output json]\n";

typedef struct ClearItem {
    char id[33];
    char *run_id;
    char *task_id;
    TiState from;
    int try_number;
    int retries;     /* the task's retries in the run's DAG version; -1 when it is not there */
    TiState became;
    int cleared;     /* 1 cleared, 0 it changed meanwhile (why says how) */
    char *why;
} ClearItem;

typedef struct ClearRun {
    const char *dag_id, *run_id;
    ClearItem *items;
    size_t n;
    int cleared, requeued;
} ClearRun;

/* One run: its instances and the run itself, in one transaction. */
static int clear_run_tx(Store *s, void *ud)
{
    ClearRun *c = ud;
    c->cleared = c->requeued = 0;
    for (size_t i = 0; i < c->n; i++) {
        ClearItem *it = &c->items[i];
        free(it->why);
        it->why = NULL;
        int r = store_ti_clear_for_rerun(s, it->id, it->from, it->try_number, it->retries, &it->became);
        if (r < 0) return -1;
        it->cleared = r;
        if (!r) it->why = xstrdup(store_last_error(s));
        c->cleared += r;
    }
    if (c->cleared) {
        /* Airflow: the runs of cleared instances are queued again (from success or failed;
         * a queued or running run stays as it is and simply carries on) */
        int changed = 0;
        if (store_run_set_state_in_tx(s, c->dag_id, c->run_id, RUN_QUEUED, &changed) != 0) return -1;
        c->requeued = changed;
    }
    return 0;
}

/* Task indexes of d selected by the regex, plus their downstream and/or upstream tasks. */
static void clear_select(const Dag *d, const regex_t *re, int downstream, int upstream, char *sel)
{
    char *match = xcalloc(d->n_tasks + 1, 1);
    for (size_t i = 0; i < d->n_tasks; i++) match[i] = !re || regexec(re, d->tasks[i]->task_id, 0, NULL, 0) == 0;
    memcpy(sel, match, d->n_tasks);
    for (int dir = 0; dir < 2; dir++) {
        if ((dir == 0 && !downstream) || (dir == 1 && !upstream)) continue;
        char *reach = xcalloc(d->n_tasks + 1, 1);
        memcpy(reach, match, d->n_tasks);
        for (int changed = 1; changed;) {
            changed = 0;
            for (size_t i = 0; i < d->n_tasks; i++) {
                const DagTask *t = d->tasks[i];
                for (size_t u = 0; u < t->n_upstream; u++) {
                    size_t j = 0;
                    while (j < d->n_tasks && strcmp(d->tasks[j]->task_id, t->upstream[u]) != 0) j++;
                    if (j == d->n_tasks) continue;
                    /* edge j -> i: downstream reaches i from j, upstream reaches j from i */
                    size_t from = dir == 0 ? j : i, to = dir == 0 ? i : j;
                    if (reach[from] && !reach[to]) reach[to] = changed = 1;
                }
            }
        }
        for (size_t i = 0; i < d->n_tasks; i++) sel[i] |= reach[i];
        free(reach);
    }
    free(match);
}

static int clear_wanted(TiState st, int only_failed, int only_running)
{
    if (st == TI_NONE || st == TI_RESTARTING) return 0; /* nothing to clear */
    if (only_failed && st != TI_FAILED && st != TI_UPSTREAM_FAILED) return 0;
    if (only_running && st != TI_RUNNING) return 0;
    return 1;
}

static int tasks_clear(GustConfig *cfg, int argc, char **argv)
{
    const char *dag_id = NULL, *regex = NULL, *start = NULL, *end = NULL;
    int json = 0, only_failed = 0, only_running = 0, downstream = 0, upstream = 0, yes = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int o = cli_output_json(argc, argv, &i);
        if (o < 0) goto usage;
        if (o) json = o == 1;
        else if ((strcmp(a, "-t") == 0 || strcmp(a, "--task-regex") == 0) && i + 1 < argc) regex = argv[++i];
        else if (strncmp(a, "--task-regex=", 13) == 0) regex = a + 13;
        else if ((strcmp(a, "-s") == 0 || strcmp(a, "--start-date") == 0) && i + 1 < argc) start = argv[++i];
        else if (strncmp(a, "--start-date=", 13) == 0) start = a + 13;
        else if ((strcmp(a, "-e") == 0 || strcmp(a, "--end-date") == 0) && i + 1 < argc) end = argv[++i];
        else if (strncmp(a, "--end-date=", 11) == 0) end = a + 11;
        else if (strcmp(a, "-f") == 0 || strcmp(a, "--only-failed") == 0) only_failed = 1;
        else if (strcmp(a, "-r") == 0 || strcmp(a, "--only-running") == 0) only_running = 1;
        else if (strcmp(a, "-d") == 0 || strcmp(a, "--downstream") == 0) downstream = 1;
        else if (strcmp(a, "-u") == 0 || strcmp(a, "--upstream") == 0) upstream = 1;
        else if (strcmp(a, "-y") == 0 || strcmp(a, "--yes") == 0) yes = 1;
        else if (cli_is_help(a)) {
            printf("%s"
                   "Clears task instances so that they run again, as airflow tasks clear does: in the runs of the\n"
                   "DAG whose logical date is within [--start-date, --end-date] (ISO 8601; without an offset, on\n"
                   "the DAG's time zone; either bound may be left out), the instances whose task_id matches R\n"
                   "(POSIX extended regex, searched anywhere in the id; all tasks without -t), with -d/-u also\n"
                   "their downstream/upstream tasks, with -f only failed or upstream_failed ones, with -r only\n"
                   "running ones. A cleared instance goes back to none with its retries restored (max_tries =\n"
                   "try_number + retries); a running one becomes restarting. Their runs are queued again, so a\n"
                   "scheduler (gust standalone, gust scheduler, or gust dags backfill over the dates) runs them.\n"
                   "Without --yes it lists them and asks for confirmation (refusing when stdin is not a terminal).\n",
                   TASKS_CLEAR_USAGE);
            return 0;
        } else if (a[0] == '-') goto usage;
        else if (!dag_id) dag_id = a;
        else goto usage;
    }
    if (!dag_id || (only_failed && only_running)) goto usage;
    regex_t re;
    if (regex) {
        int e = regcomp(&re, regex, REG_EXTENDED | REG_NOSUB);
        if (e != 0) {
            char msg[256];
            regerror(e, &re, msg, sizeof msg);
            fprintf(stderr, "gust tasks clear: --task-regex '%s': %s\n", regex, msg);
            return 2;
        }
    }
    Store *s = cli_open_store(cfg, "tasks clear", 1);
    if (!s) {
        if (regex) regfree(&re);
        return 1;
    }
    int rc = 1;
    DagCache *cache = dagcache_new();
    GustTz *own_tz = NULL;
    const GustTz *tz = NULL;
    DagRun *runs = NULL;
    size_t n_runs = 0;
    ClearItem *items = NULL;
    size_t n_items = 0;
    char err[512];
    /* the DAG's time zone, from its latest version, for dates without an offset */
    StoreDag sd;
    int known = store_dag_get(s, dag_id, &sd);
    if (known < 0) {
        fprintf(stderr, "gust tasks clear: %s\n", store_last_error(s));
        goto out;
    }
    if (known == 1) {
        const Dag *latest = sd.latest_version_id ? dagcache_get(cache, s, sd.latest_version_id, err, sizeof err) : NULL;
        if (latest) tz = latest->tz;
        store_dag_clear(&sd);
    }
    if (!tz) {
        own_tz = tz_load(config_get(cfg, "core.default_timezone"), err, sizeof err);
        tz = own_tz;
    }
    int64_t from = -1, to = -1;
    if ((start && cli_parse_date_opt("tasks clear", "--start-date", start, tz, &from) != 0) ||
        (end && cli_parse_date_opt("tasks clear", "--end-date", end, tz, &to) != 0)) {
        rc = 2;
        goto out;
    }
    if (start && end && from > to) {
        fprintf(stderr, "gust tasks clear: --start-date is after --end-date\n");
        rc = 2;
        goto out;
    }
    int listed = start || end ? store_run_list_between(s, dag_id, start ? from : INT64_MIN, end ? to : INT64_MAX,
                                                       &runs, &n_runs)
                              : store_run_list(s, dag_id, 0, &runs, &n_runs);
    if (listed != 0) {
        fprintf(stderr, "gust tasks clear: %s\n", store_last_error(s));
        goto out;
    }
    if (known != 1 && n_runs == 0) {
        fprintf(stderr, "gust tasks clear: no DAG '%s' in the store\n", dag_id);
        goto out;
    }
    if (!(start || end)) /* store_run_list gives newest first */
        for (size_t i = 0; i < n_runs / 2; i++) {
            DagRun t = runs[i];
            runs[i] = runs[n_runs - 1 - i];
            runs[n_runs - 1 - i] = t;
        }
    /* what would be cleared, run by run (oldest first) */
    for (size_t r = 0; r < n_runs; r++) {
        const DagRun *run = &runs[r];
        const Dag *d = run->dag_version_id ? dagcache_get(cache, s, run->dag_version_id, err, sizeof err) : NULL;
        char *sel = NULL;
        if (d) {
            sel = xcalloc(d->n_tasks + 1, 1);
            clear_select(d, regex ? &re : NULL, downstream, upstream, sel);
        }
        TaskInstance *tis;
        size_t n;
        if (store_ti_list_run(s, dag_id, run->run_id, &tis, &n) != 0) {
            fprintf(stderr, "gust tasks clear: %s\n", store_last_error(s));
            free(sel);
            goto out;
        }
        for (size_t i = 0; i < n; i++) {
            int retries = -1, pick;
            size_t k = 0;
            while (d && k < d->n_tasks && strcmp(d->tasks[k]->task_id, tis[i].task_id) != 0) k++;
            if (d && k < d->n_tasks) {
                pick = sel[k];
                retries = d->tasks[k]->retries;
            } else {
                pick = !regex || regexec(&re, tis[i].task_id, 0, NULL, 0) == 0;
            }
            if (!pick || !clear_wanted(tis[i].state, only_failed, only_running)) continue;
            items = xrealloc(items, (n_items + 1) * sizeof *items);
            ClearItem *it = &items[n_items++];
            memset(it, 0, sizeof *it);
            memcpy(it->id, tis[i].id, sizeof it->id);
            it->run_id = xstrdup(run->run_id);
            it->task_id = xstrdup(tis[i].task_id);
            it->from = tis[i].state;
            it->try_number = tis[i].try_number;
            it->retries = retries;
        }
        ti_list_free(tis, n);
        free(sel);
    }
    if (n_items == 0) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "dag_id", dag_id);
            cJSON_AddArrayToObject(o, "cleared");
            cJSON_AddArrayToObject(o, "runs_queued");
            cli_print_json_doc(o);
        } else {
            printf("No task instances to clear.\n");
        }
        rc = 0;
        goto out;
    }
    if (!yes) {
        FILE *out = json ? stderr : stdout;
        fprintf(out, "You are about to clear these %zu task instance(s):\n", n_items);
        for (size_t i = 0; i < n_items; i++)
            fprintf(out, "  %-48s %-32s %s\n", items[i].run_id, items[i].task_id, ti_state_name(items[i].from));
        fflush(out);
        if (!isatty(STDIN_FILENO)) {
            fprintf(stderr, "gust tasks clear: stdin is not a terminal, so nothing was cleared; pass --yes to clear "
                            "without asking\n");
            rc = 2;
            goto out;
        }
        fprintf(stderr, "Are you sure? [y/n] ");
        char answer[64] = "";
        if (!fgets(answer, sizeof answer, stdin) || (strcmp(answer, "y\n") != 0 && strcmp(answer, "yes\n") != 0 &&
                                                     strcmp(answer, "Y\n") != 0)) {
            printf("Cancelled, nothing was cleared.\n");
            rc = 0;
            goto out;
        }
    }
    /* clear, one transaction per run */
    int failed = 0, cleared = 0;
    cJSON *queued_runs = cJSON_CreateArray();
    for (size_t i = 0; i < n_items;) {
        size_t j = i;
        while (j < n_items && strcmp(items[j].run_id, items[i].run_id) == 0) j++;
        ClearRun c = {dag_id, items[i].run_id, items + i, j - i, 0, 0};
        if (store_tx(s, clear_run_tx, &c) != 0) {
            fprintf(stderr, "gust tasks clear: run %s: %s\n", items[i].run_id, store_last_error(s));
            for (size_t k = i; k < j; k++) items[k].cleared = -1;
            failed = 1;
        } else {
            cleared += c.cleared;
            if (c.requeued) cJSON_AddItemToArray(queued_runs, cJSON_CreateString(items[i].run_id));
        }
        i = j;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n_items; i++) {
        ClearItem *it = &items[i];
        if (it->cleared == 0) fprintf(stderr, "gust tasks clear: warning: not cleared: %s\n", it->why);
        if (it->cleared != 1) continue;
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "run_id", it->run_id);
            cJSON_AddStringToObject(o, "task_id", it->task_id);
            cJSON_AddStringToObject(o, "previous_state", ti_state_name(it->from));
            if (it->became == TI_NONE) cJSON_AddNullToObject(o, "state");
            else cJSON_AddStringToObject(o, "state", ti_state_name(it->became));
            cJSON_AddItemToArray(arr, o);
        } else {
            printf("  %-48s %-32s %s -> %s\n", it->run_id, it->task_id, ti_state_name(it->from),
                   ti_state_name(it->became));
        }
    }
    int n_queued = cJSON_GetArraySize(queued_runs);
    cJSON *extra = cJSON_CreateObject();
    if (regex) cJSON_AddStringToObject(extra, "task_regex", regex);
    if (start) cJSON_AddStringToObject(extra, "start_date", start);
    if (end) cJSON_AddStringToObject(extra, "end_date", end);
    cJSON_AddBoolToObject(extra, "only_failed", only_failed);
    cJSON_AddBoolToObject(extra, "only_running", only_running);
    cJSON_AddBoolToObject(extra, "downstream", downstream);
    cJSON_AddBoolToObject(extra, "upstream", upstream);
    cJSON_AddNumberToObject(extra, "cleared", cleared);
    cJSON_AddItemToObject(extra, "runs_queued", cJSON_Duplicate(queued_runs, 1));
    cli_audit(s, "tasks clear", "cli_task_clear", dag_id, extra);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dag_id", dag_id);
        cJSON_AddItemToObject(o, "cleared", arr);
        cJSON_AddItemToObject(o, "runs_queued", queued_runs);
        cli_print_json_doc(o);
    } else {
        printf("Cleared %d task instance(s); %d run(s) queued again.\n", cleared, n_queued);
        cJSON_Delete(arr);
        cJSON_Delete(queued_runs);
    }
    rc = failed ? 1 : 0;
out:
    for (size_t i = 0; i < n_items; i++) {
        free(items[i].run_id);
        free(items[i].task_id);
        free(items[i].why);
    }
    free(items);
    run_list_free(runs, n_runs);
    tz_free(own_tz);
    dagcache_free(cache);
    store_free(s);
    if (regex) regfree(&re);
    return rc;
usage:
    fputs(TASKS_CLEAR_USAGE, stderr);
    return 2;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static const char TASKS_USAGE[] = "usage: gust tasks states|test|clear ...\n"
                                  "  states DAG_ID RUN_ID [--output json]\n"
                                  "  test DAG_ID TASK_ID [LOGICAL_DATE] [--output json]\n"
                                  "  clear DAG_ID [-t R] [-s D] [-e D] [-f] [-r] [-d] [-u] [-y] [--output json]\n";

int cmd_tasks(GustConfig *cfg, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "states") == 0) return tasks_states(cfg, argc - 1, argv + 1);
    if (strcmp(sub, "test") == 0) return tasks_test(cfg, argc - 1, argv + 1);
    if (strcmp(sub, "clear") == 0) return tasks_clear(cfg, argc - 1, argv + 1);
    if (cli_is_help(sub) || strcmp(sub, "help") == 0) {
        fputs(TASKS_USAGE, stdout);
        return 0;
    }
    fputs(TASKS_USAGE, stderr);
    if (*sub) fprintf(stderr, "gust tasks: unknown subcommand '%s'\n", sub);
    return 2;
}
