/* cmd_api — `gust api`: the REST API (and the UI) as its own daemon, for the distributed
 * deployment: any number of them may serve the same store behind a load balancer, since
 * everything they know is in the store (and Redis, for workers and rate limits). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "cli/cli.h"
#include "cli/cmd_store.h"
#include "cluster/cluster.h"
#include "core/config.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/util.h"
#include "store/store.h"

static volatile sig_atomic_t api_stopping;
static void on_stop(int sig)
{
    (void)sig;
    api_stopping = 1;
}

int cli_api_start(GustConfig *cfg, const char *cmd, const char *store_url, struct ClusterConn *cluster,
                  struct SecretKey *key, ApiContext *ctx, ApiServer **srv)
{
    char err[512];
    if (api_context_init(ctx, cfg, store_url, cmd, cluster, err, sizeof err) != 0) {
        fprintf(stderr, "gust %s: %s\n", cmd, err);
        return -1;
    }
    ctx->conn_key = key;
    *srv = api_server_start(ctx, err, sizeof err);
    if (!*srv) {
        fprintf(stderr, "gust %s: the API cannot start: %s (set api.host/api.port)\n", cmd, err);
        api_context_free(ctx);
        return -1;
    }
    return 0;
}

int cmd_api(GustConfig *cfg, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: gust api\n"
                   "Serves the REST API (Airflow's v2 contract, /api/v2/...) and the web UI on\n"
                   "api.host:api.port, against database.url; workers and rate limits come from redis.url.\n"
                   "Users: gust users create --username U --password P --role Admin|Op|User|Viewer.\n");
            return 0;
        }
        fprintf(stderr, "gust api: unknown argument '%s' (see gust api --help)\n", argv[i]);
        return 2;
    }
    Store *s = cli_open_store(cfg, "api", 1);
    if (!s) return 1;
    char *url = xstrdup(s->url);
    store_free(s);
    SecretKey *key = cli_open_key(cfg, "api");
    if (!key) {
        free(url);
        return 1;
    }
    ClusterConn *cluster = NULL;
    const char *rurl = config_get(cfg, "redis.url");
    char err[512];
    if (rurl && *rurl) {
        cluster = cluster_connect(rurl, err, sizeof err);
        if (!cluster) log_msg(LOG_WARNING, "api", "redis (%s) is unreachable: workers and rate limits will show as "
                                               "unavailable until it is back: %s", rurl, err);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    ApiContext ctx;
    ApiServer *srv = NULL;
    if (cli_api_start(cfg, "api", url, cluster, key, &ctx, &srv) != 0) {
        cluster_close(cluster);
        secret_key_free(key);
        free(url);
        return 1;
    }
    StrBuf shown = {0};
    config_redact_url(&shown, url);
    int tls = *config_get(cfg, "api.tls_cert") != 0;
    fprintf(stderr, "gust api is up: %s://%s:%d/api/v2 (%lld threads)\n  database: %s\n  redis:    %s\n",
            tls ? "https" : "http", config_get(cfg, "api.host"), api_server_port(srv),
            config_get_int(cfg, "api.workers"), sb_str(&shown),
            cluster ? "reached" : (rurl && *rurl ? "unreachable" : "not configured"));
    sb_free(&shown);
    while (!api_stopping) usleep(100 * 1000);
    fprintf(stderr, "gust api: stopping\n");
    api_server_stop(srv);
    api_context_free(&ctx);
    cluster_close(cluster);
    secret_key_free(key);
    free(url);
    fprintf(stderr, "gust api: stopped\n");
    return 0;
}
