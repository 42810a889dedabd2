/* cmd_standalone — `gust standalone`: the DAG processor, the scheduler, a pool of workers
 * and the API in one process on the SQLite store in core.home, until a signal. */
#include <malloc.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "api/api.h"
#include "cli/cli.h"
#include "cli/cmd_store.h"
#include "cli/run_int.h"
#include "core/util.h"
#include "store/ti.h"

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
    /* as for gust worker (cli/cmd_daemons.c): per-thread malloc arenas keep each slot
     * thread's transient peaks for good; two are enough. Before any thread starts. */
    mallopt(M_ARENA_MAX, 2);
    int64_t t0 = util_now_us();
    char *url = cli_store_url(cfg, "standalone");
    if (!url) return 1;
    const char *folder = config_get(cfg, "core.dags_folder");
    struct stat st;
    if (stat(folder, &st) != 0) mkdir(folder, 0755);
    cli_install_signals();
    CliRuntime rt;
    if (cli_runtime_start(&rt, cfg, "standalone", url, folder, 1, (int)config_get_int(cfg, "worker.concurrency")) != 0) {
        cli_runtime_stop(&rt, 0);
        return 1;
    }
    /* the in-process broker forgot what it held when the last standalone stopped: tries
     * that were queued then are published again now, not after scheduler.queued_timeout */
    int requeued = store_ti_requeue_stale(rt.store, util_now_us() + 1);
    /* the API and UI */
    ApiContext api_ctx;
    ApiServer *api = NULL;
    if (cli_api_start(cfg, "standalone", url, NULL, rt.key, &api_ctx, &api) != 0) {
        cli_runtime_stop(&rt, 0);
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
        cli_runtime_stop(&rt, 0);
        return 1;
    }
    sched_run(rt.sched, &cli_stop_flag);
    int64_t grace = config_get_duration_us(cfg, "worker.shutdown_grace");
    fprintf(stderr, "gust standalone: stopping (running tasks have %llds to finish)\n", (long long)(grace / 1000000));
    api_server_stop(api);
    api_context_free(&api_ctx);
    cli_runtime_stop(&rt, grace);
    fprintf(stderr, "gust standalone: stopped\n");
    return 0;
}
