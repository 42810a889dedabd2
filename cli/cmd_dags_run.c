/* cmd_dags_run — the `gust dags` commands that make or follow runs: test (one run in this
 * process), trigger (a manual run for a scheduler, --wait follows it), pause, unpause,
 * list-runs; backfill is in cmd_backfill.c. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_store.h"
#include "cli/run_int.h"
#include "core/dagbag.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "scheduler/scheduler.h"
#include "store/dags.h"
#include "store/runs.h"

/* ---- gust dags test ------------------------------------------------------------------- */

static const char DAGS_TEST_USAGE[] = "usage: gust dags test DAG_ID [LOGICAL_DATE] [--output json]\n";

static int dags_test(GustConfig *cfg, int argc, char **argv)
{
    const char *dag_id = NULL, *date = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        int o = cli_output_json(argc, argv, &i);
        if (o < 0) goto usage;
        if (o) json = o == 1;
        else if (cli_is_help(argv[i])) {
            printf("%s"
                   "Runs one run of the DAG to its end in this process, for real (retries and their delays\n"
                   "included), on a throw-away SQLite store unless database.url is set. LOGICAL_DATE (ISO 8601,\n"
                   "UTC unless it has an offset) defaults to now. Exit 0 iff the run succeeded. Progress goes to\n"
                   "stderr as with dags trigger --wait.\n",
                   DAGS_TEST_USAGE);
            return 0;
        } else if (argv[i][0] == '-') goto usage;
        else if (!dag_id) dag_id = argv[i];
        else if (!date) date = argv[i];
        else goto usage;
    }
    if (!dag_id) goto usage;
    int64_t logical = util_now_us();
    if (date && cli_parse_logical(date, &logical) != 0) return 2;
    DagBag bag;
    Dag *d = cli_load_dag(cfg, dag_id, &bag);
    if (!d) {
        dagbag_free(&bag);
        return 1;
    }
    char tmp[32];
    int throwaway;
    char *url = cli_runner_store_url(cfg, "dags test", tmp, &throwaway);
    if (!url) {
        dagbag_free(&bag);
        return 1;
    }
    cli_install_signals();
    CliRuntime rt;
    int rc = 1;
    if (cli_runtime_start(&rt, cfg, "dags test", url, NULL, 0, 8) == 0) {
        char version[33];
        int was_paused = 0;
        if (cli_runner_prepare_dag(rt.store, cfg, "dags test", d, 1, version, &was_paused) == 0) {
            if (throwaway) cli_ensure_pools(rt.store, d);
            char run_id[160];
            int made = sched_create_run(rt.store, d, version, "manual", NULL, logical, logical, logical, NULL,
                                        "dags test", run_id, sizeof run_id);
            if (made < 0) {
                fprintf(stderr, "gust dags test: %s\n", store_last_error(rt.store));
            } else if (made == 0) {
                /* a configured store may already hold a run at that date: never reuse it silently */
                DagRun old;
                if (store_run_get_by_logical(rt.store, dag_id, logical, &old) == 1) {
                    fprintf(stderr,
                            "gust dags test: %s already has a run at %s (%s, %s); pass another logical date, or "
                            "rerun its tasks with gust tasks clear\n",
                            dag_id, date ? date : "that date", old.run_id, run_state_name(old.state));
                    run_clear(&old);
                } else {
                    fprintf(stderr, "gust dags test: %s\n", store_last_error(rt.store));
                }
            } else {
                if (!json) fprintf(stderr, "gust dags test: %s %s\n", dag_id, run_id);
                cli_follow_run(rt.store, rt.sched, dag_id, run_id, json);
                rc = cli_print_run(rt.store, dag_id, run_id, json) == 0 ? 0 : 1;
            }
            cli_runner_restore_pause(rt.store, dag_id, was_paused);
        }
    }
    cli_runtime_stop(&rt, 5LL * 1000000);
    dagbag_free(&bag);
    cli_throwaway_remove(tmp, "dags test");
    return rc;
usage:
    fputs(DAGS_TEST_USAGE, stderr);
    return 2;
}

/* ---- gust dags trigger ----------------------------------------------------------------- */

static int dags_trigger(GustConfig *cfg, int argc, char **argv)
{
    const char *dag_id = NULL, *conf = NULL, *date = NULL, *run_id = NULL;
    int json = 0, wait = 0;
    for (int i = 1; i < argc; i++) {
        int o = cli_output_json(argc, argv, &i);
        if (o < 0) goto usage;
        if (o) json = o == 1;
        else if ((strcmp(argv[i], "--conf") == 0 || strcmp(argv[i], "-c") == 0) && i + 1 < argc) conf = argv[++i];
        else if (strcmp(argv[i], "--logical-date") == 0 && i + 1 < argc) date = argv[++i];
        else if (strcmp(argv[i], "--run-id") == 0 && i + 1 < argc) run_id = argv[++i];
        else if (strcmp(argv[i], "--wait") == 0) wait = 1;
        else if (cli_is_help(argv[i])) {
            printf("usage: gust dags trigger DAG_ID [--conf JSON] [--logical-date ISO8601] [--run-id ID] [--wait] "
                   "[--output json]\n"
                   "Creates a manual run in the store; a scheduler (gust standalone or gust scheduler) runs it.\n"
                   "With --wait, follows it to the end and exits 0 iff it succeeded; progress goes to stderr (a line\n"
                   "each time the counts of its task states change, failed tasks named), none with --output json.\n");
            return 0;
        } else if (argv[i][0] != '-' && !dag_id) dag_id = argv[i];
        else goto usage;
    }
    if (!dag_id) goto usage;
    if (conf) {
        cJSON *c = cJSON_Parse(conf);
        int ok = cJSON_IsObject(c);
        cJSON_Delete(c);
        if (!ok) {
            fprintf(stderr, "gust dags trigger: --conf must be a JSON object, e.g. '{\"key\": \"value\"}'\n");
            return 2;
        }
    }
    int64_t logical = util_now_us();
    if (date && cli_parse_logical(date, &logical) != 0) return 2;
    Store *s = cli_open_store(cfg, "dags trigger", 1);
    if (!s) return 1;
    StoreDag sd;
    int rc = 1;
    int known = store_dag_get(s, dag_id, &sd);
    if (known == 1 && !sd.latest_version_id) {
        store_dag_clear(&sd);
        known = 0;
    }
    if (known != 1) {
        /* not parsed by a scheduler yet: parse it from the folder now */
        DagBag bag;
        Dag *d = cli_load_dag(cfg, dag_id, &bag);
        int synced = d && store_dag_sync(s, d, config_get_bool(cfg, "core.dags_are_paused_at_creation"), NULL, NULL) == 0;
        dagbag_free(&bag);
        if (synced) known = store_dag_get(s, dag_id, &sd);
        if (known == 1 && !sd.latest_version_id) {
            store_dag_clear(&sd);
            known = 0;
        }
        if (known != 1) {
            if (d) fprintf(stderr, "gust dags trigger: %s\n", store_last_error(s));
            store_free(s);
            return 1;
        }
    }
    DagCache *cache = dagcache_new();
    char err[256];
    const Dag *d = dagcache_get(cache, s, sd.latest_version_id, err, sizeof err);
    char made[160];
    int created = d ? sched_create_run(s, d, sd.latest_version_id, "manual", run_id, logical, logical, logical, conf,
                                       "cli", made, sizeof made)
                    : -1;
    if (created <= 0) {
        fprintf(stderr, "gust dags trigger: %s\n", d ? store_last_error(s) : err);
    } else {
        if (sd.is_paused)
            fprintf(stderr, "gust dags trigger: note: %s is paused; the run waits until it is unpaused\n", dag_id);
        if (!wait) {
            if (json) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "dag_id", dag_id);
                cJSON_AddStringToObject(o, "run_id", made);
                cJSON_AddStringToObject(o, "state", "queued");
                char *text = cJSON_Print(o);
                puts(text);
                free(text);
                cJSON_Delete(o);
            } else {
                printf("%s %s: queued\n", dag_id, made);
            }
            rc = 0;
        } else {
            cli_install_signals();
            if (!json) fprintf(stderr, "gust dags trigger: following %s %s\n", dag_id, made);
            cli_follow_run(s, NULL, dag_id, made, json);
            rc = cli_print_run(s, dag_id, made, json) == 0 ? 0 : 1;
        }
    }
    dagcache_free(cache);
    store_dag_clear(&sd);
    store_free(s);
    return rc;
usage:
    fprintf(stderr, "usage: gust dags trigger DAG_ID [--conf JSON] [--logical-date ISO8601] [--run-id ID] [--wait] "
                    "[--output json]\n");
    return 2;
}

/* ---- pause, list-runs, tasks states ------------------------------------------------------ */

static int dags_pause(GustConfig *cfg, int argc, char **argv, int paused)
{
    if (argc != 2 || argv[1][0] == '-') {
        if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
            printf("usage: gust dags %s DAG_ID\n", paused ? "pause" : "unpause");
            return 0;
        }
        fprintf(stderr, "usage: gust dags %s DAG_ID\n", paused ? "pause" : "unpause");
        return 2;
    }
    Store *s = cli_open_store(cfg, paused ? "dags pause" : "dags unpause", 1);
    if (!s) return 1;
    int rc = store_dag_set_paused(s, argv[1], paused);
    if (rc == 0) {
        /* not parsed yet: parse it, then set */
        DagBag bag;
        Dag *d = cli_load_dag(cfg, argv[1], &bag);
        if (d && store_dag_sync(s, d, paused, NULL, NULL) == 0) rc = store_dag_set_paused(s, argv[1], paused);
        dagbag_free(&bag);
    }
    if (rc == 1) printf("%s is %s\n", argv[1], paused ? "paused" : "unpaused");
    else if (rc < 0) fprintf(stderr, "gust: %s\n", store_last_error(s));
    store_free(s);
    return rc == 1 ? 0 : 1;
}

static int dags_list_runs(GustConfig *cfg, int argc, char **argv)
{
    const char *dag_id = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        int o = cli_output_json(argc, argv, &i);
        if (o < 0) goto usage;
        if (o) json = o == 1;
        else if (cli_is_help(argv[i])) {
            printf("usage: gust dags list-runs DAG_ID [--output json]\nIts runs, newest first.\n");
            return 0;
        } else if (argv[i][0] != '-' && !dag_id) dag_id = argv[i];
        else goto usage;
    }
    if (!dag_id) goto usage;
    Store *s = cli_open_store(cfg, "dags list-runs", 1);
    if (!s) return 1;
    DagRun *runs;
    size_t n;
    if (store_run_list(s, dag_id, 0, &runs, &n) != 0) {
        fprintf(stderr, "gust dags list-runs: %s\n", store_last_error(s));
        store_free(s);
        return 1;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "dag_id", runs[i].dag_id);
            cJSON_AddStringToObject(o, "run_id", runs[i].run_id);
            cJSON_AddStringToObject(o, "run_type", runs[i].run_type);
            cJSON_AddStringToObject(o, "state", run_state_name(runs[i].state));
            cli_iso_or_null(o, "logical_date", runs[i].logical_date);
            cli_iso_or_null(o, "start_date", runs[i].start_date);
            cli_iso_or_null(o, "end_date", runs[i].end_date);
            cJSON_AddItemToArray(arr, o);
        } else {
            char ld[48] = "-", sd[48] = "-", ed[48] = "-";
            if (runs[i].logical_date >= 0) time_format_iso(runs[i].logical_date, 0, ld, sizeof ld);
            if (runs[i].start_date >= 0) time_format_iso(runs[i].start_date, 0, sd, sizeof sd);
            if (runs[i].end_date >= 0) time_format_iso(runs[i].end_date, 0, ed, sizeof ed);
            printf("%-56s %-8s %s  %s  %s\n", runs[i].run_id, run_state_name(runs[i].state), ld, sd, ed);
        }
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dag_id", dag_id);
        cJSON_AddItemToObject(o, "runs", arr);
        char *text = cJSON_Print(o);
        puts(text);
        free(text);
        cJSON_Delete(o);
    } else {
        cJSON_Delete(arr);
    }
    run_list_free(runs, n);
    store_free(s);
    return 0;
usage:
    fprintf(stderr, "usage: gust dags list-runs DAG_ID [--output json]\n");
    return 2;
}

/* ---- dispatch ----------------------------------------------------------------------------- */

int cmd_dags_run(GustConfig *cfg, int argc, char **argv)
{
    const char *sub = argv[1];
    if (strcmp(sub, "test") == 0) return dags_test(cfg, argc - 1, argv + 1);
    if (strcmp(sub, "trigger") == 0) return dags_trigger(cfg, argc - 1, argv + 1);
    if (strcmp(sub, "pause") == 0) return dags_pause(cfg, argc - 1, argv + 1, 1);
    if (strcmp(sub, "unpause") == 0) return dags_pause(cfg, argc - 1, argv + 1, 0);
    if (strcmp(sub, "list-runs") == 0) return dags_list_runs(cfg, argc - 1, argv + 1);
    if (strcmp(sub, "backfill") == 0) return cli_dags_backfill(cfg, argc - 1, argv + 1);
    return -1;
}
