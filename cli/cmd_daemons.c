/* cmd_daemons — the distributed deployment's daemons and their operator commands:
 * `gust scheduler`, `gust worker -q QUEUES -c N`, `gust workers list`,
 * `gust ratelimits set|get|list|delete`.
 *
 * Each daemon says at start what it reached (store, broker, Redis) and with which settings,
 * and stops cleanly on SIGTERM/SIGINT: a worker stops taking work and lets running tasks
 * finish within worker.shutdown_grace; a scheduler finishes its pass. */
#include <cjson/cJSON.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker-adapters/broker.h"
#include "cli/cli.h"
#include "cli/cmd_store.h"
#include "cli/run_int.h"
#include "cluster/cluster.h"
#include "core/log.h"
#include "core/secret.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "scheduler/scheduler.h"
#include "store/dagcache.h"
#include "worker/executor.h"
#include "worker/worker.h"

#ifndef GUST_VERSION
#define GUST_VERSION "0.1.0"
#endif

static volatile int stopping;

static void on_stop(int sig)
{
    (void)sig;
    stopping = 1;
}

static void daemon_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* A broker that is not up yet (the scheduler's pod started before RabbitMQ's, or RabbitMQ is
 * restarting) is waited for, with backoff up to 30 s, as the running scheduler already does on
 * a lost connection: no crash loop. What waiting cannot fix — a malformed broker.url, a refused
 * login, a missing vhost — ends the command at once with the message. NULL with err, or NULL
 * with `stopping` set when SIGINT/SIGTERM came while waiting. */
static Broker *connect_broker_waiting(const char *cmd, const char *url, char *err, size_t errlen)
{
    int64_t delay_ms = 1000;
    for (;;) {
        Broker *b = broker_connect(url, err, errlen);
        if (b) return b;
        if (strncmp(err, "broker.url:", 11) == 0 || strstr(err, "refused for user") || strstr(err, "not found"))
            return NULL;
        fprintf(stderr, "gust %s: %s — retrying in %llds (SIGTERM stops)\n", cmd, err, (long long)(delay_ms / 1000));
        for (int64_t waited = 0; waited < delay_ms && !stopping; waited += 100) usleep(100 * 1000);
        if (stopping) return NULL;
        delay_ms = delay_ms * 2 > 30000 ? 30000 : delay_ms * 2;
    }
}

/* The broker URL with broker.queue_type carried as a URL option the adapter reads. */
static char *broker_url(GustConfig *cfg)
{
    const char *url = config_get(cfg, "broker.url");
    const char *qt = config_get(cfg, "broker.queue_type");
    if (qt && strcmp(qt, "quorum") == 0 && strncmp(url, "amqp", 4) == 0)
        return xasprintf("%s%squeue_type=quorum", url, strchr(url, '?') ? "&" : "?");
    return xstrdup(url);
}

static void redact(const char *url, char *out, size_t len)
{
    /* scheme://user:****@host... for the start-up summary; the last '@' before the path
     * ends the credentials, so an unencoded '@' in a password does not leak half of it */
    const char *colon = strstr(url, "://");
    const char *path = colon ? strchr(colon + 3, '/') : NULL;
    const char *at = NULL;
    for (const char *p = colon ? colon + 3 : url; *p && (!path || p < path); p++)
        if (*p == '@') at = p;
    if (at && colon) {
        const char *pw = strchr(colon + 3, ':');
        if (pw && pw < at) {
            snprintf(out, len, "%.*s:****%s", (int)(pw - url), url, at);
            return;
        }
    }
    util_strlcpy(out, url, len);
}

/* ---- gust scheduler ------------------------------------------------------------------- */

int cmd_scheduler(GustConfig *cfg, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: gust scheduler\n"
                   "The DAG processor, the scheduling loop and the publisher, on database.url and broker.url.\n"
                   "Several may run at once: they share the work through the store.\n");
            return 0;
        }
        fprintf(stderr, "gust scheduler: unknown argument '%s'\n", argv[i]);
        return 2;
    }
    daemon_signals();
    Store *store = cli_open_store(cfg, "scheduler", 1);
    if (!store) return 1;
    char err[512], shown[512];
    char *burl = broker_url(cfg);
    Broker *broker = connect_broker_waiting("scheduler", burl, err, sizeof err);
    if (!broker) {
        if (!stopping) fprintf(stderr, "gust scheduler: %s\n", err);
        free(burl);
        store_free(store);
        return stopping ? 0 : 1;
    }
    DagCache *cache = dagcache_new();
    /* one reader of the settings for gust scheduler and the in-process runtime (a copy of
     * it once left scheduler.zombie_timeout unread here) */
    SchedOptions so;
    cli_sched_options(cfg, &so);
    Scheduler *sched = sched_new(store, broker, cache, &so);
    redact(burl, shown, sizeof shown);
    /* Fix: the Redis URL is redacted too (redis://:password@host carries one) */
    char rshown[512];
    redact(so.cluster_url && *so.cluster_url ? so.cluster_url : "(in process)", rshown, sizeof rshown);
    log_info("scheduler", "started (gust %s, pid %d): dags %s, store %s, broker %s, redis %s, parallelism %d, "
             "zombie timeout %llds",
             GUST_VERSION, (int)getpid(), so.dags_folder, store->drv->name, shown, rshown, so.parallelism,
             (long long)(so.zombie_timeout_us / 1000000));
    sched_run(sched, &stopping);
    log_info("scheduler", "stopped");
    sched_free(sched);
    dagcache_free(cache);
    broker_close(broker);
    free(burl);
    store_free(store);
    return 0;
}

/* ---- gust worker ------------------------------------------------------------------------ */

int cmd_worker(GustConfig *cfg, int argc, char **argv)
{
    /* Memory (issue 5: a worker in <= 10 MB): glibc gives each thread that allocates an arena
     * of its own (up to 8 per core), and an arena keeps what it once held; with a slot thread
     * per task slot that multiplied every transient peak by the slots. Two arenas are plenty
     * for a worker's rate of allocation. Before any thread starts. */
    mallopt(M_ARENA_MAX, 2);
    const char *queues_arg = "default", *hostname = NULL;
    long conc = config_get_int(cfg, "worker.concurrency");
    for (int i = 1; i < argc; i++) {
        if ((strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--queues") == 0) && i + 1 < argc) queues_arg = argv[++i];
        else if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--concurrency") == 0) && i + 1 < argc) {
            char *end;
            conc = strtol(argv[++i], &end, 10);
            if (*end || conc < 1 || conc > 4096) {
                fprintf(stderr, "gust worker: -c takes a number from 1 to 4096\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--hostname") == 0 && i + 1 < argc) hostname = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: gust worker [-q QUEUE[,QUEUE...]] [-c N] [--hostname H]\n"
                   "Consumes task instances from the named queues (default: default) on broker.url and runs up\n"
                   "to N at once (worker.concurrency). SIGTERM: stop taking work, let running tasks finish\n"
                   "within worker.shutdown_grace, end the rest (they are retried), exit 0.\n");
            return 0;
        } else {
            fprintf(stderr, "gust worker: unknown argument '%s' (see gust worker --help)\n", argv[i]);
            return 2;
        }
    }
    daemon_signals();
    char *url = cli_store_url(cfg, "worker");
    if (!url) return 1;
    Store *probe = cli_open_store(cfg, "worker", 1); /* refuse a store of another schema now, not per task */
    if (!probe) {
        free(url);
        return 1;
    }
    store_free(probe);
    SecretKey *key = cli_open_key(cfg, "worker");
    if (!key) {
        free(url);
        return 1;
    }
    char host[128] = "";
    if (hostname) util_strlcpy(host, hostname, sizeof host);
    else gethostname(host, sizeof host - 1);
    char worker_id[256];
    snprintf(worker_id, sizeof worker_id, "%s-%d", host, (int)getpid());
    /* -q a,b,c */
    char *qcopy = xstrdup(queues_arg);
    const char *queues[64];
    size_t nq = 0;
    for (char *tok = strtok(qcopy, ","); tok && nq < 64; tok = strtok(NULL, ",")) queues[nq++] = tok;
    char *burl = broker_url(cfg);
    WorkerOptions wo = {.store_url = url, .broker_url = burl, .queues = queues, .n_queues = nq,
                        .concurrency = (int)conc, .hostname = host, .worker_id = worker_id,
                        .home = config_get(cfg, "core.home"), .key = key, .heartbeat_us = 2LL * 1000000,
                        .rlimit_cpu_s = -1, .rlimit_as_mb = -1, .rlimit_nofile = -1,
                        .cluster_url = config_get(cfg, "redis.url"), .version = GUST_VERSION};
    exec_become_subreaper();
    DagCache *cache = dagcache_new();
    char err[512], shown[512];
    WorkerPool *pool = worker_pool_start(&wo, cache, err, sizeof err);
    int rc = 0;
    if (!pool) {
        fprintf(stderr, "gust worker: %s\n", err);
        rc = 1;
    } else {
        redact(burl, shown, sizeof shown);
        char rshown[512]; /* Fix: the Redis URL is redacted too */
        redact(wo.cluster_url && *wo.cluster_url ? wo.cluster_url : "(in process)", rshown, sizeof rshown);
        log_info("worker", "started %s (gust %s): queues %s, %ld slots, broker %s, redis %s", worker_id, GUST_VERSION,
                 queues_arg, conc, shown, rshown);
        while (!stopping) usleep(100000);
        int64_t grace = config_get_duration_us(cfg, "worker.shutdown_grace");
        log_info("worker", "%s: stopping; running tasks have %llds to finish", worker_id, (long long)(grace / 1000000));
        worker_pool_stop(pool, grace);
        log_info("worker", "%s: stopped", worker_id);
    }
    dagcache_free(cache);
    secret_key_free(key);
    free(burl);
    free(qcopy);
    free(url);
    return rc;
}

/* ---- gust workers list / gust ratelimits ------------------------------------------------ */

static ClusterConn *open_cluster(GustConfig *cfg, const char *cmd)
{
    char err[512];
    const char *url = config_get(cfg, "redis.url");
    if (!url || !*url) {
        fprintf(stderr, "gust %s: redis.url is not set: workers and rate limits live in Redis in a distributed "
                        "deployment (standalone keeps them in its own process)\n", cmd);
        return NULL;
    }
    ClusterConn *c = cluster_connect(url, err, sizeof err);
    if (!c) fprintf(stderr, "gust %s: %s\n", cmd, err);
    return c;
}

int cmd_workers(GustConfig *cfg, int argc, char **argv)
{
    int json = 0;
    if (argc < 2 || strcmp(argv[1], "list") != 0) {
        FILE *out = argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) ? stdout : stderr;
        fprintf(out, "usage: gust workers list [--output json]\nLive workers, from their heartbeats in Redis.\n");
        return out == stdout ? 0 : 2;
    }
    for (int i = 2; i < argc; i++) {
        int o = cli_output_json(argc, argv, &i);
        if (o <= 0) {
            fprintf(stderr, "usage: gust workers list [--output json]\n");
            return 2;
        }
        json = o == 1;
    }
    ClusterConn *c = open_cluster(cfg, "workers list");
    if (!c) return 1;
    WorkerInfo *w;
    size_t n;
    if (cluster_workers_list(c, &w, &n) != 0) {
        fprintf(stderr, "gust workers list: %s\n", cluster_error(c));
        cluster_close(c);
        return 1;
    }
    cJSON *arr = cJSON_CreateArray();
    if (!json) printf("%-40s %-20s %6s %5s  %-20s %s\n", "worker", "host", "pid", "slots", "queues", "running");
    for (size_t i = 0; i < n; i++) {
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "worker_id", w[i].id);
            cJSON_AddStringToObject(o, "hostname", w[i].host ? w[i].host : "");
            cJSON_AddNumberToObject(o, "pid", w[i].pid);
            cJSON_AddStringToObject(o, "queues", w[i].queues ? w[i].queues : "");
            cJSON_AddNumberToObject(o, "concurrency", w[i].concurrency);
            cJSON_AddStringToObject(o, "running", w[i].running ? w[i].running : "");
            cJSON_AddStringToObject(o, "version", w[i].version ? w[i].version : "");
            char buf[48];
            time_format_iso(w[i].started_at, 0, buf, sizeof buf);
            cJSON_AddStringToObject(o, "started_at", buf);
            time_format_iso(w[i].last_beat, 1, buf, sizeof buf);
            cJSON_AddStringToObject(o, "last_heartbeat", buf);
            cJSON_AddItemToArray(arr, o);
        } else {
            printf("%-40s %-20s %6d %5d  %-20s %s\n", w[i].id, w[i].host ? w[i].host : "", w[i].pid, w[i].concurrency,
                   w[i].queues ? w[i].queues : "", w[i].running && *w[i].running ? w[i].running : "-");
        }
    }
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "workers", arr);
        char *t = cJSON_Print(o);
        puts(t);
        free(t);
        cJSON_Delete(o);
    } else {
        cJSON_Delete(arr);
    }
    cluster_workers_free(w, n);
    cluster_close(c);
    return 0;
}

int cmd_ratelimits(GustConfig *cfg, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    int json = 0;
    for (int i = 2; i < argc; i++) {
        int o = cli_output_json(argc, argv, &i);
        if (o > 0) json = o == 1;
    }
    int nargs = 0;
    const char *args[4];
    for (int i = 2; i < argc && nargs < 4; i++) {
        if (strcmp(argv[i], "--output") == 0 || strcmp(argv[i], "-o") == 0) {
            i++;
            continue;
        }
        if (strncmp(argv[i], "--output=", 9) == 0) continue;
        args[nargs++] = argv[i];
    }
    int is_set = strcmp(sub, "set") == 0, is_get = strcmp(sub, "get") == 0, is_list = strcmp(sub, "list") == 0,
        is_del = strcmp(sub, "delete") == 0;
    if ((is_set && nargs != 2) || ((is_get || is_del) && nargs != 1) || (is_list && nargs != 0) ||
        !(is_set || is_get || is_list || is_del)) {
        FILE *out = strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 ? stdout : stderr;
        fprintf(out, "usage: gust ratelimits set NAME RATE (e.g. 100/m, 5/s, 10/m:5) | get NAME | list | delete NAME\n"
                     "Named global rate limits that tasks share with rate_limit: NAME.\n");
        return out == stdout ? 0 : 2;
    }
    if (is_set) {
        double per_s;
        int burst;
        char err[256];
        if (cluster_rate_parse(args[1], &per_s, &burst, err, sizeof err) != 0) {
            fprintf(stderr, "gust ratelimits set: %s\n", err);
            return 2;
        }
    }
    ClusterConn *c = open_cluster(cfg, "ratelimits");
    if (!c) return 1;
    int rc = 0;
    if (is_set) {
        if (cluster_ratelimit_set(c, args[0], args[1]) != 0) rc = 1;
        else printf("rate limit %s = %s\n", args[0], args[1]);
    } else if (is_get) {
        char *text = NULL;
        int r = cluster_ratelimit_get(c, args[0], &text);
        if (r == 1) {
            if (json) printf("{\"name\": \"%s\", \"rate\": \"%s\"}\n", args[0], text);
            else printf("%s\n", text);
        } else {
            if (r == 0) fprintf(stderr, "gust ratelimits get: no rate limit '%s'\n", args[0]);
            rc = 1;
        }
        free(text);
    } else if (is_del) {
        int r = cluster_ratelimit_delete(c, args[0]);
        if (r == 0) fprintf(stderr, "gust ratelimits delete: no rate limit '%s'\n", args[0]);
        rc = r == 1 ? 0 : 1;
    } else {
        ClusterRateLimit *l;
        size_t n;
        if (cluster_ratelimit_list(c, &l, &n) != 0) rc = 1;
        else {
            cJSON *arr = cJSON_CreateArray();
            for (size_t i = 0; i < n; i++) {
                if (json) {
                    cJSON *o = cJSON_CreateObject();
                    cJSON_AddStringToObject(o, "name", l[i].name);
                    cJSON_AddStringToObject(o, "rate", l[i].text);
                    cJSON_AddNumberToObject(o, "per_second", l[i].per_s);
                    cJSON_AddNumberToObject(o, "burst", l[i].burst);
                    cJSON_AddItemToArray(arr, o);
                } else {
                    printf("%-32s %s\n", l[i].name, l[i].text);
                }
            }
            if (json) {
                char *t = cJSON_Print(arr);
                puts(t);
                free(t);
            }
            cJSON_Delete(arr);
            cluster_ratelimits_free(l, n);
        }
    }
    if (rc && cluster_error(c)[0]) fprintf(stderr, "gust ratelimits: %s\n", cluster_error(c));
    cluster_close(c);
    return rc;
}
