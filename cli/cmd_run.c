/* cmd_run — the commands that run DAGs: `gust standalone`, `gust dags test|trigger|pause|
 * unpause|list-runs`, `gust tasks states`.
 *
 * A Runtime bundles what running needs in one process: the store, the in-process broker,
 * the DAG version cache, a scheduler and a pool of workers. standalone runs it until a
 * signal; `dags test` runs it on a throw-away store until one run ends. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_store.h"
#include "core/dagbag.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "scheduler/scheduler.h"
#include "store/dags.h"
#include "store/runs.h"
#include "store/ti.h"
#include "worker/executor.h"
#include "worker/worker.h"

static volatile int stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

typedef struct Runtime {
    char *url;             /* store URL (each worker thread opens its own connection) */
    Store *store;          /* the scheduler's connection */
    SecretKey *key;
    Broker *broker;
    DagCache *cache;
    Scheduler *sched;
    WorkerPool *pool;
    char hostname[128];
    char worker_id[200];
    char broker_url[96];  /* the pool keeps a pointer to it */
    const char *queues[1];
    WorkerOptions wopt;
} Runtime;

static void runtime_stop(Runtime *rt, int64_t grace_us)
{
    worker_pool_stop(rt->pool, grace_us);
    sched_free(rt->sched);
    broker_close(rt->broker);
    dagcache_free(rt->cache);
    secret_key_free(rt->key);
    store_free(rt->store);
    free(rt->url);
    memset(rt, 0, sizeof *rt);
}

/* url: the store; dags_folder NULL: no DAG processor. */
static int runtime_start(Runtime *rt, GustConfig *cfg, const char *cmd, char *url, const char *dags_folder,
                         int create_runs, int concurrency)
{
    memset(rt, 0, sizeof *rt);
    rt->url = url;
    char err[512];
    rt->store = store_open(url, err, sizeof err);
    if (!rt->store) {
        fprintf(stderr, "gust %s: %s\n", cmd, err);
        return -1;
    }
    int applied = 0;
    if (store_migrate(rt->store, &applied) != 0) {
        fprintf(stderr, "gust %s: %s\n", cmd, store_last_error(rt->store));
        return -1;
    }
    /* core.home holds the key file and the logs, even when the store is elsewhere */
    free(cli_store_url(cfg, cmd));
    rt->key = cli_open_key(cfg, cmd);
    if (!rt->key) return -1;
    static int n_runtimes;
    char *burl = rt->broker_url;
    snprintf(burl, sizeof rt->broker_url, "local://%s-%d-%d", cmd, (int)getpid(), ++n_runtimes);
    rt->broker = broker_connect(burl, err, sizeof err);
    rt->cache = dagcache_new();
    SchedOptions so;
    sched_default_options(&so);
    so.dags_folder = dags_folder;
    so.default_timezone = config_get(cfg, "core.default_timezone");
    so.paused_at_creation = config_get_bool(cfg, "core.dags_are_paused_at_creation");
    so.parallelism = (int)config_get_int(cfg, "core.parallelism");
    so.max_active_runs = (int)config_get_int(cfg, "core.max_active_runs_per_dag");
    so.max_active_tasks = (int)config_get_int(cfg, "core.max_active_tasks_per_dag");
    so.rescan_us = config_get_duration_us(cfg, "scheduler.dag_dir_list_interval");
    so.queued_timeout_us = config_get_duration_us(cfg, "scheduler.queued_timeout");
    so.create_runs = create_runs;
    rt->sched = sched_new(rt->store, rt->broker, rt->cache, &so);
    gethostname(rt->hostname, sizeof rt->hostname - 1);
    snprintf(rt->worker_id, sizeof rt->worker_id, "%s-%d", rt->hostname, (int)getpid());
    rt->queues[0] = "*"; /* the local workers take every queue: one process does all the work */
    const char *home = config_get(cfg, "core.home");
    rt->wopt = (WorkerOptions){.store_url = url, .broker_url = burl, .queues = rt->queues, .n_queues = 1,
                               .concurrency = concurrency, .hostname = rt->hostname, .worker_id = rt->worker_id,
                               .home = home, .key = rt->key, .heartbeat_us = 2LL * 1000000,
                               .rlimit_cpu_s = -1, .rlimit_as_mb = -1, .rlimit_nofile = -1};
    exec_become_subreaper();
    rt->pool = worker_pool_start(&rt->wopt, rt->cache, err, sizeof err);
    if (!rt->pool) {
        fprintf(stderr, "gust %s: %s\n", cmd, err);
        return -1;
    }
    return 0;
}

/* ---- gust standalone ---------------------------------------------------------------- */

int cmd_standalone(GustConfig *cfg, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: gust standalone\n"
                   "Runs the DAG processor, the scheduler and a pool of workers in one process, on the\n"
                   "SQLite store in core.home, until SIGINT or SIGTERM.\n");
            return 0;
        }
        fprintf(stderr, "gust standalone: unknown argument '%s'\n", argv[i]);
        return 2;
    }
    int64_t t0 = util_now_us();
    char *url = cli_store_url(cfg, "standalone");
    if (!url) return 1;
    const char *folder = config_get(cfg, "core.dags_folder");
    struct stat st;
    if (stat(folder, &st) != 0) mkdir(folder, 0755);
    install_signals();
    Runtime rt;
    if (runtime_start(&rt, cfg, "standalone", url, folder, 1, (int)config_get_int(cfg, "worker.concurrency")) != 0) {
        runtime_stop(&rt, 0);
        return 1;
    }
    fprintf(stderr,
            "gust standalone is up (%.0f ms)\n"
            "  home:     %s\n"
            "  database: %s\n"
            "  dags:     %s\n"
            "  logs:     %s/logs\n"
            "  workers:  %lld\n"
            "New DAGs start %s (core.dags_are_paused_at_creation). Stop with Ctrl-C.\n",
            (util_now_us() - t0) / 1000.0, config_get(cfg, "core.home"), url, folder, config_get(cfg, "core.home"),
            config_get_int(cfg, "worker.concurrency"),
            config_get_bool(cfg, "core.dags_are_paused_at_creation") ? "paused: unpause them with gust dags unpause"
                                                                       : "unpaused");
    sched_run(rt.sched, &stop_flag);
    int64_t grace = config_get_duration_us(cfg, "worker.shutdown_grace");
    fprintf(stderr, "gust standalone: stopping (running tasks have %llds to finish)\n", (long long)(grace / 1000000));
    runtime_stop(&rt, grace);
    fprintf(stderr, "gust standalone: stopped\n");
    return 0;
}

/* ---- printing runs --------------------------------------------------------------------- */

static void iso_or_null(cJSON *o, const char *k, int64_t us)
{
    if (us < 0) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    char buf[48];
    time_format_iso(us, 1, buf, sizeof buf);
    cJSON_AddStringToObject(o, k, buf);
}

static int print_run(Store *s, const char *dag_id, const char *run_id, int json)
{
    DagRun r;
    if (store_run_get(s, dag_id, run_id, &r) != 1) {
        fprintf(stderr, "gust: DAG %s has no run %s\n", dag_id, run_id);
        return 1;
    }
    TaskInstance *tis;
    size_t n;
    store_ti_list_run(s, dag_id, run_id, &tis, &n);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dag_id", dag_id);
        cJSON_AddStringToObject(o, "run_id", run_id);
        cJSON_AddStringToObject(o, "state", run_state_name(r.state));
        cJSON *arr = cJSON_AddArrayToObject(o, "tasks");
        for (size_t i = 0; i < n; i++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "task_id", tis[i].task_id);
            if (tis[i].state == TI_NONE) cJSON_AddNullToObject(t, "state");
            else cJSON_AddStringToObject(t, "state", ti_state_name(tis[i].state));
            cJSON_AddNumberToObject(t, "try_number", tis[i].try_number);
            iso_or_null(t, "start_date", tis[i].start_date);
            iso_or_null(t, "end_date", tis[i].end_date);
            cJSON_AddItemToArray(arr, t);
        }
        char *text = cJSON_Print(o);
        puts(text);
        free(text);
        cJSON_Delete(o);
    } else {
        printf("%s %s: %s\n", dag_id, run_id, run_state_name(r.state));
        for (size_t i = 0; i < n; i++) {
            char sd[48] = "-", ed[48] = "-";
            if (tis[i].start_date >= 0) time_format_iso(tis[i].start_date, 1, sd, sizeof sd);
            if (tis[i].end_date >= 0) time_format_iso(tis[i].end_date, 1, ed, sizeof ed);
            printf("  %-32s %-18s try %d  %s  %s\n", tis[i].task_id, ti_state_name(tis[i].state), tis[i].try_number,
                   sd, ed);
        }
    }
    int ok = r.state == RUN_SUCCESS;
    ti_list_free(tis, n);
    run_clear(&r);
    return ok ? 0 : 1;
}

/* Follow a run to its end: print each task as it finishes (text mode), return its state. */
static RunState follow_run(Store *s, Scheduler *sched, const char *dag_id, const char *run_id, int quiet)
{
    store_listen(s);
    char **seen = NULL;
    size_t n_seen = 0;
    RunState st = RUN_QUEUED;
    while (!stop_flag) {
        int64_t next = util_now_us() + 200000;
        if (sched && sched_step(sched, &next) != 0) log_warn("scheduler", "%s", sched_error(sched));
        DagRun r;
        if (store_run_get(s, dag_id, run_id, &r) != 1) break;
        st = r.state;
        run_clear(&r);
        TaskInstance *tis;
        size_t n;
        store_ti_list_run(s, dag_id, run_id, &tis, &n);
        size_t total_done = 0;
        for (size_t i = 0; i < n; i++) total_done += ti_state_is_finished(tis[i].state);
        for (size_t i = 0; i < n; i++) {
            if (!ti_state_is_finished(tis[i].state)) continue;
            int known = 0;
            for (size_t j = 0; j < n_seen; j++) known |= strcmp(seen[j], tis[i].id) == 0;
            if (known) continue;
            seen = xrealloc(seen, (n_seen + 1) * sizeof *seen);
            seen[n_seen++] = xstrdup(tis[i].id);
            if (!quiet)
                fprintf(stderr, "  %-32s %-16s try %d  [%zu/%zu done]\n", tis[i].task_id,
                        ti_state_name(tis[i].state), tis[i].try_number, total_done, n);
        }
        ti_list_free(tis, n);
        if (st == RUN_SUCCESS || st == RUN_FAILED) break;
        int64_t wait = next - util_now_us();
        if (wait > 500000) wait = 500000;
        if (wait < 1000) wait = 1000;
        store_wait_change(s, (int)(wait / 1000), NULL, 0);
    }
    for (size_t i = 0; i < n_seen; i++) free(seen[i]);
    free(seen);
    return st;
}

/* Load one DAG from the dags folder (printing its errors when it has some). */
static Dag *load_dag_from_folder(GustConfig *cfg, const char *dag_id, DagBag *bag)
{
    const char *folder = config_get(cfg, "core.dags_folder");
    dagbag_init(bag);
    DagLoadOptions lo = {.root = folder, .default_timezone = config_get(cfg, "core.default_timezone")};
    dagbag_load_path(bag, folder, &lo);
    Dag *d = dagbag_find(bag, dag_id);
    if (d) return d;
    int errors = 0;
    for (size_t i = 0; i < bag->diags.len; i++) {
        const Diag *x = &bag->diags.items[i];
        if (!x->warning && x->dag_id && strcmp(x->dag_id, dag_id) == 0) {
            fprintf(stderr, "%s:%d: %s: %s\n", x->file, x->line, x->dag_id, x->message);
            errors = 1;
        }
    }
    fprintf(stderr, errors ? "gust: DAG '%s' has errors (above)\n" : "gust: no DAG '%s' in %s\n", dag_id, folder);
    return NULL;
}

static int parse_logical(const char *s, int64_t *out)
{
    char err[256];
    if (time_parse_iso(s, NULL, out, err, sizeof err) != 0) {
        fprintf(stderr, "gust: logical date: %s\n", err);
        return -1;
    }
    return 0;
}

/* ---- gust dags test ------------------------------------------------------------------- */

static int dags_test(GustConfig *cfg, int argc, char **argv)
{
    const char *dag_id = NULL, *date = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        int o = cli_output_json(argc, argv, &i);
        if (o < 0) goto usage;
        if (o) json = o == 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: gust dags test DAG_ID [LOGICAL_DATE] [--output json]\n"
                   "Runs one run of the DAG to its end in this process, for real (retries and their delays\n"
                   "included), on a throw-away SQLite store unless database.url is set. Exit 0 iff it succeeded.\n");
            return 0;
        } else if (argv[i][0] == '-') goto usage;
        else if (!dag_id) dag_id = argv[i];
        else if (!date) date = argv[i];
        else goto usage;
    }
    if (!dag_id) goto usage;
    int64_t logical = util_now_us();
    if (date && parse_logical(date, &logical) != 0) return 2;
    DagBag bag;
    Dag *d = load_dag_from_folder(cfg, dag_id, &bag);
    if (!d) {
        dagbag_free(&bag);
        return 1;
    }
    char tmp[] = "/tmp/gust-dags-test-XXXXXX";
    char *url;
    int throwaway = config_source_kind(cfg, "database.url") == CONFIG_SRC_DEFAULT;
    if (throwaway) {
        if (!mkdtemp(tmp)) {
            perror("gust dags test: mkdtemp");
            return 1;
        }
        url = xasprintf("sqlite://%s/gust.db", tmp);
    } else {
        url = cli_store_url(cfg, "dags test");
        if (!url) return 1;
    }
    install_signals();
    Runtime rt;
    int rc = 1;
    if (runtime_start(&rt, cfg, "dags test", url, NULL, 0, 8) == 0) {
        char version[33];
        store_dag_sync(rt.store, d, 0, version, NULL);
        store_dag_set_paused(rt.store, dag_id, 0);
        char run_id[160];
        int made = sched_create_run(rt.store, d, version, "manual", NULL, logical, logical, logical, NULL, "dags test",
                                    run_id, sizeof run_id);
        if (made < 0) {
            fprintf(stderr, "gust dags test: %s\n", store_last_error(rt.store));
        } else {
            if (!json) fprintf(stderr, "gust dags test: %s %s\n", dag_id, run_id);
            follow_run(rt.store, rt.sched, dag_id, run_id, json);
            rc = print_run(rt.store, dag_id, run_id, json);
        }
    }
    runtime_stop(&rt, 5LL * 1000000);
    dagbag_free(&bag);
    if (throwaway) {
        char *cmd = xasprintf("rm -rf '%s'", tmp);
        if (system(cmd) != 0) fprintf(stderr, "gust dags test: could not remove %s\n", tmp);
        free(cmd);
    }
    return rc;
usage:
    fprintf(stderr, "usage: gust dags test DAG_ID [LOGICAL_DATE] [--output json]\n");
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
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: gust dags trigger DAG_ID [--conf JSON] [--logical-date ISO8601] [--run-id ID] [--wait] "
                   "[--output json]\n"
                   "Creates a manual run in the store; a scheduler (gust standalone or gust scheduler) runs it.\n"
                   "With --wait, follows it to the end and exits 0 iff it succeeded.\n");
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
    if (date && parse_logical(date, &logical) != 0) return 2;
    Store *s = cli_open_store(cfg, "dags trigger", 1);
    if (!s) return 1;
    StoreDag sd;
    int rc = 1;
    if (store_dag_get(s, dag_id, &sd) != 1 || !sd.latest_version_id) {
        /* not parsed by a scheduler yet: parse it from the folder now */
        DagBag bag;
        Dag *d = load_dag_from_folder(cfg, dag_id, &bag);
        if (d) store_dag_sync(s, d, config_get_bool(cfg, "core.dags_are_paused_at_creation"), NULL, NULL);
        dagbag_free(&bag);
        if (!d || store_dag_get(s, dag_id, &sd) != 1) {
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
            if (json) printf("{\"dag_id\": \"%s\", \"run_id\": \"%s\", \"state\": \"queued\"}\n", dag_id, made);
            else printf("%s %s: queued\n", dag_id, made);
            rc = 0;
        } else {
            install_signals();
            if (!json) fprintf(stderr, "gust dags trigger: following %s %s\n", dag_id, made);
            follow_run(s, NULL, dag_id, made, json);
            rc = print_run(s, dag_id, made, json);
        }
    }
    dagcache_free(cache);
    store_dag_clear(&sd);
    store_free(s);
    return rc;
usage:
    fprintf(stderr, "usage: gust dags trigger DAG_ID [--conf JSON] [--logical-date ISO8601] [--wait] [--output json]\n");
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
        Dag *d = load_dag_from_folder(cfg, argv[1], &bag);
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
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
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
            iso_or_null(o, "logical_date", runs[i].logical_date);
            iso_or_null(o, "start_date", runs[i].start_date);
            iso_or_null(o, "end_date", runs[i].end_date);
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

int cmd_dags_run(GustConfig *cfg, int argc, char **argv)
{
    const char *sub = argv[1];
    if (strcmp(sub, "test") == 0) return dags_test(cfg, argc - 1, argv + 1);
    if (strcmp(sub, "trigger") == 0) return dags_trigger(cfg, argc - 1, argv + 1);
    if (strcmp(sub, "pause") == 0) return dags_pause(cfg, argc - 1, argv + 1, 1);
    if (strcmp(sub, "unpause") == 0) return dags_pause(cfg, argc - 1, argv + 1, 0);
    if (strcmp(sub, "list-runs") == 0) return dags_list_runs(cfg, argc - 1, argv + 1);
    return -1;
}

int cmd_tasks(GustConfig *cfg, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "states") == 0) {
        const char *dag_id = NULL, *run_id = NULL;
        int json = 0;
        for (int i = 2; i < argc; i++) {
            int o = cli_output_json(argc, argv, &i);
            if (o < 0) goto usage;
            if (o) json = o == 1;
            else if (argv[i][0] == '-') goto usage;
            else if (!dag_id) dag_id = argv[i];
            else if (!run_id) run_id = argv[i];
            else goto usage;
        }
        if (!dag_id || !run_id) goto usage;
        Store *s = cli_open_store(cfg, "tasks states", 1);
        if (!s) return 1;
        print_run(s, dag_id, run_id, json);
        store_free(s);
        return 0;
    }
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        printf("usage: gust tasks states DAG_ID RUN_ID [--output json]\n");
        return 0;
    }
usage:
    fprintf(stderr, "usage: gust tasks states DAG_ID RUN_ID [--output json]\n");
    return 2;
}
