/* cmd_run — the commands that run DAGs: `gust standalone`, `gust dags test|trigger|pause|
 * unpause|list-runs|backfill`, `gust tasks states|test|clear`.
 *
 * A Runtime bundles what running needs in one process: the store, the in-process broker,
 * the DAG version cache, a scheduler and a pool of workers. standalone runs it until a
 * signal; `dags test` and `dags backfill` run it (on a throw-away store unless
 * database.url is set) until their runs end; `tasks test` uses only its store and worker
 * options and runs one try on a thread of its own, tailing the try's log. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "cli/cmd_store.h"
#include "core/dagbag.h"
#include "core/log.h"
#include "core/schedule.h"
#include "core/secret.h"
#include "core/timeutil.h"
#include "core/tz.h"
#include "core/util.h"
#include "scheduler/scheduler.h"
#include "store/dags.h"
#include "store/kv.h"
#include "store/runs.h"
#include "store/ti.h"
#include "store/xcom.h"
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

/* The store, the key, the DAG cache and the worker options: what running one try needs
 * (`tasks test` stops here). Takes url. */
static int runtime_open(Runtime *rt, GustConfig *cfg, const char *cmd, char *url, int concurrency)
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
    char *home_url = cli_store_url(cfg, cmd);
    if (!home_url) return -1;
    free(home_url);
    rt->key = cli_open_key(cfg, cmd);
    if (!rt->key) return -1;
    static int n_runtimes;
    snprintf(rt->broker_url, sizeof rt->broker_url, "local://%s-%d-%d", cmd, (int)getpid(), ++n_runtimes);
    for (char *p = rt->broker_url; *p; p++)
        if (*p == ' ') *p = '-';
    rt->cache = dagcache_new();
    gethostname(rt->hostname, sizeof rt->hostname - 1);
    snprintf(rt->worker_id, sizeof rt->worker_id, "%s-%d", rt->hostname, (int)getpid());
    rt->queues[0] = "*"; /* the local workers take every queue: one process does all the work */
    const char *home = config_get(cfg, "core.home");
    rt->wopt = (WorkerOptions){.store_url = url, .broker_url = rt->broker_url, .queues = rt->queues, .n_queues = 1,
                               .concurrency = concurrency, .hostname = rt->hostname, .worker_id = rt->worker_id,
                               .home = home, .key = rt->key, .heartbeat_us = 2LL * 1000000,
                               .rlimit_cpu_s = -1, .rlimit_as_mb = -1, .rlimit_nofile = -1};
    exec_become_subreaper();
    return 0;
}

/* runtime_open, then the broker, a scheduler and the worker pool. url: the store (taken);
 * dags_folder NULL: no DAG processor. */
static int runtime_start(Runtime *rt, GustConfig *cfg, const char *cmd, char *url, const char *dags_folder,
                         int create_runs, int concurrency)
{
    if (runtime_open(rt, cfg, cmd, url, concurrency) != 0) return -1;
    char err[512];
    rt->broker = broker_connect(rt->broker_url, err, sizeof err);
    if (!rt->broker) {
        fprintf(stderr, "gust %s: %s\n", cmd, err);
        return -1;
    }
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
    so.zombie_timeout_us = config_get_duration_us(cfg, "scheduler.zombie_timeout");
    so.heartbeat_us = config_get_duration_us(cfg, "scheduler.heartbeat");
    so.events_retention_us = config_get_duration_us(cfg, "api.events_retention");
    so.create_runs = create_runs;
    rt->sched = sched_new(rt->store, rt->broker, rt->cache, &so);
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
    /* the in-process broker forgot what it held when the last standalone stopped: tries
     * that were queued then are published again now, not after scheduler.queued_timeout */
    int requeued = store_ti_requeue_stale(rt.store, util_now_us() + 1);
    /* the API and UI */
    ApiContext api_ctx;
    ApiServer *api = NULL;
    if (cli_api_start(cfg, "standalone", url, NULL, rt.key, &api_ctx, &api) != 0) {
        runtime_stop(&rt, 0);
        return 1;
    }
    StrBuf shown = {0};
    config_redact_url(&shown, url);
    fprintf(stderr,
            "gust standalone is up (%.0f ms)\n"
            "  home:     %s\n"
            "  database: %s\n"
            "  dags:     %s\n"
            "  logs:     %s/logs\n"
            "  workers:  %lld\n"
            "  api:      %s://%s:%d/api/v2\n"
            "New DAGs start %s (core.dags_are_paused_at_creation). Stop with Ctrl-C.\n",
            (util_now_us() - t0) / 1000.0, config_get(cfg, "core.home"), sb_str(&shown), folder,
            config_get(cfg, "core.home"),
            config_get_int(cfg, "worker.concurrency"), *config_get(cfg, "api.tls_cert") ? "https" : "http",
            config_get(cfg, "api.host"), api_server_port(api),
            config_get_bool(cfg, "core.dags_are_paused_at_creation") ? "paused: unpause them with gust dags unpause"
                                                                       : "unpaused");
    sb_free(&shown);
    if (requeued > 0) fprintf(stderr, "gust standalone: %d task instance(s) queued before the restart: published again\n", requeued);
    /* on the first start, an admin user with a random password, printed once — after the
     * banner, since hashing it is deliberately slow (PBKDF2) */
    if (cli_users_standalone_admin(cfg, rt.store) != 0) {
        api_server_stop(api);
        api_context_free(&api_ctx);
        runtime_stop(&rt, 0);
        return 1;
    }
    sched_run(rt.sched, &stop_flag);
    int64_t grace = config_get_duration_us(cfg, "worker.shutdown_grace");
    fprintf(stderr, "gust standalone: stopping (running tasks have %llds to finish)\n", (long long)(grace / 1000000));
    api_server_stop(api);
    api_context_free(&api_ctx);
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

static int is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* 0 the run succeeded, 1 it did not (yet), -1 it does not exist or cannot be read. */
static int print_run(Store *s, const char *dag_id, const char *run_id, int json)
{
    DagRun r;
    int found = store_run_get(s, dag_id, run_id, &r);
    if (found != 1) {
        if (found < 0) fprintf(stderr, "gust: %s\n", store_last_error(s));
        else fprintf(stderr, "gust: DAG %s has no run %s\n", dag_id, run_id);
        return -1;
    }
    TaskInstance *tis;
    size_t n;
    if (store_ti_list_run(s, dag_id, run_id, &tis, &n) != 0) {
        fprintf(stderr, "gust: %s\n", store_last_error(s));
        run_clear(&r);
        return -1;
    }
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

/* ---- what the in-process runners share ----------------------------------------------- */

/* Where `dags test`, `tasks test` and `dags backfill` keep their state: the configured
 * store when database.url is set, else a throw-away SQLite store in a new folder under
 * /tmp (its path in tmp, which must hold 32 bytes; removed by throwaway_remove). */
/* A throw-away store has no pools but default_pool: create the ones the DAG names (128
 * slots, as default_pool), so that `dags test` runs a DAG written for a real deployment
 * instead of waiting forever for a pool nobody will create. */
static void ensure_pools(Store *s, const Dag *d)
{
    for (size_t i = 0; i < d->n_tasks; i++) {
        const char *pool = d->tasks[i]->pool;
        if (!pool || strcmp(pool, "default_pool") == 0) continue;
        int missing = 0;
        StorePool *p = store_pool_get(s, pool, &missing);
        if (p) store_pool_free(p);
        else if (missing) store_pool_set(s, pool, 128, "created by gust dags test", NULL);
    }
}

static char *runner_store_url(GustConfig *cfg, const char *cmd, char *tmp, int *throwaway)
{
    *throwaway = config_source_kind(cfg, "database.url") == CONFIG_SRC_DEFAULT;
    tmp[0] = '\0';
    if (!*throwaway) return cli_store_url(cfg, cmd);
    snprintf(tmp, 32, "/tmp/gust-run-XXXXXX");
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "gust %s: cannot create a temporary folder: %s\n", cmd, strerror(errno));
        tmp[0] = '\0';
        return NULL;
    }
    return xasprintf("sqlite://%s/gust.db", tmp);
}

static void throwaway_remove(const char *tmp, const char *cmd)
{
    if (!tmp[0]) return;
    char *rm = xasprintf("rm -rf '%s'", tmp);
    if (system(rm) != 0) fprintf(stderr, "gust %s: could not remove %s\n", cmd, tmp);
    free(rm);
}

/* Sync the DAG into the runner's store and, with unpause, make sure its tasks may be queued
 * (the scheduler queues nothing of a paused DAG): *was_paused says whether to pause it again
 * afterwards (runner_restore_pause).
 * 0 ok (version gets its version id), -1 error (printed). */
static int runner_prepare_dag(Store *s, GustConfig *cfg, const char *cmd, const Dag *d, int unpause, char *version,
                              int *was_paused)
{
    *was_paused = 0;
    if (store_dag_sync(s, d, config_get_bool(cfg, "core.dags_are_paused_at_creation"), version, NULL) != 0) {
        fprintf(stderr, "gust %s: %s\n", cmd, store_last_error(s));
        return -1;
    }
    StoreDag sd;
    if (store_dag_get(s, d->dag_id, &sd) == 1) {
        *was_paused = sd.is_paused;
        store_dag_clear(&sd);
    }
    if (!unpause) *was_paused = 0;
    if (*was_paused && store_dag_set_paused(s, d->dag_id, 0) < 0) {
        fprintf(stderr, "gust %s: %s\n", cmd, store_last_error(s));
        return -1;
    }
    return 0;
}

static void runner_restore_pause(Store *s, const char *dag_id, int was_paused)
{
    if (was_paused) store_dag_set_paused(s, dag_id, 1);
}

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
        else if (is_help(argv[i])) {
            printf("%s"
                   "Runs one run of the DAG to its end in this process, for real (retries and their delays\n"
                   "included), on a throw-away SQLite store unless database.url is set. LOGICAL_DATE (ISO 8601,\n"
                   "UTC unless it has an offset) defaults to now. Exit 0 iff the run succeeded.\n",
                   DAGS_TEST_USAGE);
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
    char tmp[32];
    int throwaway;
    char *url = runner_store_url(cfg, "dags test", tmp, &throwaway);
    if (!url) {
        dagbag_free(&bag);
        return 1;
    }
    install_signals();
    Runtime rt;
    int rc = 1;
    if (runtime_start(&rt, cfg, "dags test", url, NULL, 0, 8) == 0) {
        char version[33];
        int was_paused = 0;
        if (runner_prepare_dag(rt.store, cfg, "dags test", d, 1, version, &was_paused) == 0) {
            if (throwaway) ensure_pools(rt.store, d);
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
                follow_run(rt.store, rt.sched, dag_id, run_id, json);
                rc = print_run(rt.store, dag_id, run_id, json) == 0 ? 0 : 1;
            }
            runner_restore_pause(rt.store, dag_id, was_paused);
        }
    }
    runtime_stop(&rt, 5LL * 1000000);
    dagbag_free(&bag);
    throwaway_remove(tmp, "dags test");
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
        else if (is_help(argv[i])) {
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
    int known = store_dag_get(s, dag_id, &sd);
    if (known == 1 && !sd.latest_version_id) {
        store_dag_clear(&sd);
        known = 0;
    }
    if (known != 1) {
        /* not parsed by a scheduler yet: parse it from the folder now */
        DagBag bag;
        Dag *d = load_dag_from_folder(cfg, dag_id, &bag);
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
            install_signals();
            if (!json) fprintf(stderr, "gust dags trigger: following %s %s\n", dag_id, made);
            follow_run(s, NULL, dag_id, made, json);
            rc = print_run(s, dag_id, made, json) == 0 ? 0 : 1;
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
        else if (is_help(argv[i])) {
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
        else if (is_help(argv[i])) {
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
    int rc = print_run(s, dag_id, run_id, json) < 0 ? 1 : 0;
    store_free(s);
    return rc;
usage:
    fputs(TASKS_STATES_USAGE, stderr);
    return 2;
}

/* ---- shared by tasks test / tasks clear / dags backfill -------------------------------- */

/* Who runs this command, for the event log: $USER, else the account's name. */
static const char *user_name(void)
{
    const char *u = getenv("USER");
    if (u && *u) return u;
    u = getenv("LOGNAME");
    if (u && *u) return u;
    struct passwd *pw = getpwuid(geteuid());
    return pw && pw->pw_name ? pw->pw_name : "unknown";
}

/* Record a CLI action in the event log (owner "cli:$USER"); a failure is only a warning.
 * Takes extra. */
static void audit(Store *s, const char *cmd, const char *event, const char *dag_id, cJSON *extra)
{
    char *owner = xasprintf("cli:%s", user_name());
    char *ex = extra ? cJSON_PrintUnformatted(extra) : NULL;
    StoreEvent e = {0};
    e.event = (char *)event;
    e.owner = owner;
    e.dag_id = (char *)dag_id;
    e.map_index = -1;
    e.extra = ex;
    if (store_event_append(s, &e, NULL) != 0)
        fprintf(stderr, "gust %s: warning: could not record this in the event log: %s\n", cmd, store_last_error(s));
    free(owner);
    free(ex);
    cJSON_Delete(extra);
}

/* A date option: ISO 8601; without an offset it is wall time on tz (the DAG's zone). */
static int parse_date_opt(const char *cmd, const char *opt, const char *text, const GustTz *tz, int64_t *out)
{
    char err[256];
    if (time_parse_iso(text, tz, out, err, sizeof err) != 0) {
        fprintf(stderr, "gust %s: %s: %s\n", cmd, opt, err);
        return -1;
    }
    return 0;
}

static void print_json_doc(cJSON *o)
{
    char *text = cJSON_Print(o);
    puts(text);
    free(text);
    cJSON_Delete(o);
}

/* ---- gust tasks test ------------------------------------------------------------------ */

static const char TASKS_TEST_USAGE[] = "usage: gust tasks test DAG_ID TASK_ID [LOGICAL_DATE] [--output json]\n";

typedef struct TestTry {
    Runtime *rt;
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
        t->rc = worker_run_try(s, t->rt->cache, &t->rt->wopt, t->ti_id, t->try_number, &stop_flag);
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
static int test_one_try(Runtime *rt, const char *ti_id, int priority, StrBuf *logbuf)
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
            if (stop_flag) return -1;
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
        else if (is_help(argv[i])) {
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
    if (date && parse_logical(date, &logical) != 0) return 2;
    DagBag bag;
    Dag *d = load_dag_from_folder(cfg, dag_id, &bag);
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
    char *url = runner_store_url(cfg, "tasks test", tmp, &throwaway);
    if (!url) {
        dagbag_free(&bag);
        return 1;
    }
    install_signals();
    Runtime rt;
    int rc = 1;
    char version[33];
    int was_paused = 0;
    char run_id[160] = "";
    TaskInstance ti;
    memset(&ti, 0, sizeof ti);
    StrBuf logbuf = {0};
    if (runtime_open(&rt, cfg, "tasks test", url, 1) != 0 ||
        runner_prepare_dag(rt.store, cfg, "tasks test", d, 0, version, &was_paused) != 0)
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
        if (ti.state != TI_UP_FOR_RESCHEDULE || stop_flag) break;
        while (!stop_flag && util_now_us() < ti.next_attempt_at) usleep(50000);
        if (stop_flag) break;
    }
    rc = ti.state == TI_SUCCESS || ti.state == TI_SKIPPED ? 0 : 1;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dag_id", dag_id);
        cJSON_AddStringToObject(o, "task_id", task_id);
        cJSON_AddStringToObject(o, "run_id", run_id);
        cJSON_AddStringToObject(o, "state", ti_state_name(ti.state));
        cJSON_AddNumberToObject(o, "try_number", ti.try_number);
        iso_or_null(o, "start_date", ti.start_date);
        iso_or_null(o, "end_date", ti.end_date);
        cJSON_AddStringToObject(o, "log", sb_str(&logbuf));
        print_json_doc(o);
    } else {
        printf("%s %s %s: %s (try %d)%s\n", dag_id, run_id, task_id, ti_state_name(ti.state), ti.try_number,
               ti.state == TI_UP_FOR_RETRY ? " - tasks test runs one try; the scheduler would retry it" : "");
    }
done_pause:
    runner_restore_pause(rt.store, dag_id, was_paused);
done:
    ti_clear(&ti);
    sb_free(&logbuf);
    runtime_stop(&rt, 0);
    dagbag_free(&bag);
    throwaway_remove(tmp, "tasks test");
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
        else if (is_help(a)) {
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
    if ((start && parse_date_opt("tasks clear", "--start-date", start, tz, &from) != 0) ||
        (end && parse_date_opt("tasks clear", "--end-date", end, tz, &to) != 0)) {
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
            print_json_doc(o);
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
    audit(s, "tasks clear", "cli_task_clear", dag_id, extra);
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dag_id", dag_id);
        cJSON_AddItemToObject(o, "cleared", arr);
        cJSON_AddItemToObject(o, "runs_queued", queued_runs);
        print_json_doc(o);
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
        TaskInstance *tis;
        size_t nt;
        if (store_ti_list_run(s, dag_id, r->run_id, &tis, &nt) != 0) return -1;
        r->n_tasks = (int)nt;
        r->done = r->failed_tasks = 0;
        for (size_t j = 0; j < nt; j++) {
            r->done += ti_state_is_finished(tis[j].state);
            r->failed_tasks += tis[j].state == TI_FAILED || tis[j].state == TI_UPSTREAM_FAILED;
        }
        ti_list_free(tis, nt);
        r->finished = r->state == RUN_SUCCESS || r->state == RUN_FAILED;
    }
    return 0;
}

static int dags_backfill(GustConfig *cfg, int argc, char **argv)
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
        else if (is_help(a)) {
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
    Dag *d = load_dag_from_folder(cfg, dag_id, &bag);
    if (!d) {
        dagbag_free(&bag);
        return 1;
    }
    int rc = 1;
    BfRun *runs = NULL;
    long n = 0;
    char tmp[32] = "";
    int64_t from, to;
    if (parse_date_opt("dags backfill", "--start-date", start, d->tz, &from) != 0 ||
        parse_date_opt("dags backfill", "--end-date", end, d->tz, &to) != 0) {
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
    Runtime rt;
    memset(&rt, 0, sizeof rt);
    Store *store = NULL;
    if (dry) {
        if (config_source_kind(cfg, "database.url") != CONFIG_SRC_DEFAULT) {
            store = cli_open_store(cfg, "dags backfill", 1);
            if (!store) goto out;
        }
    } else {
        url = runner_store_url(cfg, "dags backfill", tmp, &throwaway);
        if (!url) goto out;
        install_signals();
        if (runtime_start(&rt, cfg, "dags backfill", url, NULL, 0, (int)config_get_int(cfg, "worker.concurrency")) !=
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
            print_json_doc(o);
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
    if (runner_prepare_dag(store, cfg, "dags backfill", d, 1, version, &was_paused) != 0) {
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
    while (!stop_flag && n > 0) {
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
    int ok = !error && !stop_flag, succeeded = 0, failed = 0;
    for (long i = 0; i < n; i++) {
        succeeded += runs[i].finished && runs[i].state == RUN_SUCCESS;
        failed += runs[i].finished && runs[i].state == RUN_FAILED;
        if (!runs[i].finished || runs[i].state != RUN_SUCCESS) ok = 0;
    }
    if (stop_flag) fprintf(stderr, "gust dags backfill: interrupted; unfinished runs are left queued or running\n");
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "dag_id", dag_id);
        cJSON *arr = cJSON_AddArrayToObject(o, "runs");
        for (long i = 0; i < n; i++) {
            cJSON *r = cJSON_CreateObject();
            cJSON_AddStringToObject(r, "run_id", runs[i].run_id);
            iso_or_null(r, "logical_date", runs[i].logical);
            cJSON_AddStringToObject(r, "state", run_state_name(runs[i].state));
            cJSON_AddBoolToObject(r, "created", runs[i].started && !runs[i].existed);
            cJSON_AddItemToArray(arr, r);
        }
        cJSON_AddItemToObject(o, "skipped", cJSON_Duplicate(skipped_ids, 1));
        print_json_doc(o);
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
        audit(store, "dags backfill", "cli_dag_backfill", dag_id, extra);
    }
    cJSON_Delete(skipped_ids);
    runner_restore_pause(store, dag_id, was_paused);
    rc = ok ? 0 : 1;
stop:
    if (dry) store_free(store);
    else runtime_stop(&rt, 5LL * 1000000);
out:
    free(runs);
    dagbag_free(&bag);
    throwaway_remove(tmp, "dags backfill");
    return rc;
usage:
    fputs(BACKFILL_USAGE, stderr);
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
    if (strcmp(sub, "backfill") == 0) return dags_backfill(cfg, argc - 1, argv + 1);
    return -1;
}

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
    if (is_help(sub) || strcmp(sub, "help") == 0) {
        fputs(TASKS_USAGE, stdout);
        return 0;
    }
    fputs(TASKS_USAGE, stderr);
    if (*sub) fprintf(stderr, "gust tasks: unknown subcommand '%s'\n", sub);
    return 2;
}
