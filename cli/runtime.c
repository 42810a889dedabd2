/* runtime — what the commands that run DAGs in this process share (run_int.h): the
 * Runtime (store, in-process broker, DAG cache, scheduler, worker pool), the signals that
 * stop it, the throw-away store of `dags test`/`tasks test`/`dags backfill`, loading a DAG
 * from the dags folder, and small option and output helpers. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_store.h"
#include "cli/run_int.h"
#include "core/dagbag.h"
#include "core/log.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "store/dags.h"
#include "store/kv.h"
#include "store/xcom.h"
#include "worker/executor.h"

volatile int cli_stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    cli_stop_flag = 1;
}

void cli_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void cli_runtime_stop(CliRuntime *rt, int64_t grace_us)
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
int cli_runtime_open(CliRuntime *rt, GustConfig *cfg, const char *cmd, char *url, int concurrency)
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

/* cli_runtime_open, then the broker, a scheduler and the worker pool. url: the store (taken);
 * dags_folder NULL: no DAG processor. */
int cli_runtime_start(CliRuntime *rt, GustConfig *cfg, const char *cmd, char *url, const char *dags_folder,
                      int create_runs, int concurrency)
{
    if (cli_runtime_open(rt, cfg, cmd, url, concurrency) != 0) return -1;
    char err[512];
    rt->broker = broker_connect(rt->broker_url, err, sizeof err);
    if (!rt->broker) {
        fprintf(stderr, "gust %s: %s\n", cmd, err);
        return -1;
    }
    SchedOptions so;
    cli_sched_options(cfg, &so);
    so.dags_folder = dags_folder;
    so.create_runs = create_runs;
    so.cluster_url = NULL; /* its workers beat in the in-process twin, not in Redis */
    rt->sched = sched_new(rt->store, rt->broker, rt->cache, &so);
    rt->pool = worker_pool_start(&rt->wopt, rt->cache, err, sizeof err);
    if (!rt->pool) {
        fprintf(stderr, "gust %s: %s\n", cmd, err);
        return -1;
    }
    return 0;
}

/* ---- output and options ----------------------------------------------------------------- */

void cli_sched_options(GustConfig *cfg, SchedOptions *so)
{
    sched_default_options(so);
    so->dags_folder = config_get(cfg, "core.dags_folder");
    so->default_timezone = config_get(cfg, "core.default_timezone");
    so->paused_at_creation = config_get_bool(cfg, "core.dags_are_paused_at_creation");
    so->parallelism = (int)config_get_int(cfg, "core.parallelism");
    so->max_active_runs = (int)config_get_int(cfg, "core.max_active_runs_per_dag");
    so->max_active_tasks = (int)config_get_int(cfg, "core.max_active_tasks_per_dag");
    so->rescan_us = config_get_duration_us(cfg, "scheduler.dag_dir_list_interval");
    so->queued_timeout_us = config_get_duration_us(cfg, "scheduler.queued_timeout");
    so->zombie_timeout_us = config_get_duration_us(cfg, "scheduler.zombie_timeout");
    so->heartbeat_us = config_get_duration_us(cfg, "scheduler.heartbeat");
    so->events_retention_us = config_get_duration_us(cfg, "api.events_retention");
    so->cluster_url = config_get(cfg, "redis.url");
}

void cli_iso_or_null(cJSON *o, const char *k, int64_t us)
{
    if (us < 0) {
        cJSON_AddNullToObject(o, k);
        return;
    }
    char buf[48];
    time_format_iso(us, 1, buf, sizeof buf);
    cJSON_AddStringToObject(o, k, buf);
}

int cli_is_help(const char *arg)
{
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

/* Load one DAG from the dags folder (printing its errors when it has some). */
Dag *cli_load_dag(GustConfig *cfg, const char *dag_id, DagBag *bag)
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

int cli_parse_logical(const char *s, int64_t *out)
{
    char err[256];
    if (time_parse_iso(s, NULL, out, err, sizeof err) != 0) {
        fprintf(stderr, "gust: logical date: %s\n", err);
        return -1;
    }
    return 0;
}

/* ---- what the in-process runners share ----------------------------------------------- */

/* A throw-away store has no pools but default_pool: create the ones the DAG names (128
 * slots, as default_pool), so that `dags test` runs a DAG written for a real deployment
 * instead of waiting forever for a pool nobody will create. */
void cli_ensure_pools(Store *s, const Dag *d)
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

/* Where `dags test`, `tasks test` and `dags backfill` keep their state: the configured
 * store when database.url is set, else a throw-away SQLite store in a new folder under
 * /tmp (its path in tmp, which must hold 32 bytes; removed by cli_throwaway_remove). */
char *cli_runner_store_url(GustConfig *cfg, const char *cmd, char *tmp, int *throwaway)
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

void cli_throwaway_remove(const char *tmp, const char *cmd)
{
    if (!tmp[0]) return;
    char *rm = xasprintf("rm -rf '%s'", tmp);
    if (system(rm) != 0) fprintf(stderr, "gust %s: could not remove %s\n", cmd, tmp);
    free(rm);
}

/* Sync the DAG into the runner's store and, with unpause, make sure its tasks may be queued
 * (the scheduler queues nothing of a paused DAG): *was_paused says whether to pause it again
 * afterwards (cli_runner_restore_pause).
 * 0 ok (version gets its version id), -1 error (printed). */
int cli_runner_prepare_dag(Store *s, GustConfig *cfg, const char *cmd, const Dag *d, int unpause,
                           char *version, int *was_paused)
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

void cli_runner_restore_pause(Store *s, const char *dag_id, int was_paused)
{
    if (was_paused) store_dag_set_paused(s, dag_id, 1);
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
void cli_audit(Store *s, const char *cmd, const char *event, const char *dag_id, cJSON *extra)
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
int cli_parse_date_opt(const char *cmd, const char *opt, const char *text, const GustTz *tz, int64_t *out)
{
    char err[256];
    if (time_parse_iso(text, tz, out, err, sizeof err) != 0) {
        fprintf(stderr, "gust %s: %s: %s\n", cmd, opt, err);
        return -1;
    }
    return 0;
}

void cli_print_json_doc(cJSON *o)
{
    char *text = cJSON_Print(o);
    puts(text);
    free(text);
    cJSON_Delete(o);
}
