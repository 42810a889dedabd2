/* main — the gust binary: reads the configuration from every source, then hands the rest
 * of the command line to the subcommand. Daemons (standalone, scheduler, worker, api) and
 * the store-backed commands arrive with later work; their names are reserved here so the
 * help text already shows the whole shape of the tool. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_config.h"
#include "cli/cmd_store.h"
#include "core/config.h"
#include "core/log.h"

#ifndef GUST_VERSION
#define GUST_VERSION "0.1.0"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gust [--config FILE] [--section.key=value ...] COMMAND [ARGS]\n"
            "\n"
            "gust runs workflows: DAGs of tasks described in YAML or JSON (dag-factory's dialect).\n"
            "\n"
            "commands:\n"
            "  dags validate [--output json] PATH...   check DAG files; FILE:LINE: DAG_ID: message per problem\n"
            "  dags list [--output json]               DAGs in the dags folder\n"
            "  dags show DAG_ID [--format dot] [--output json]\n"
            "                                          tasks and dependencies (dot: Graphviz)\n"
            "  dags next-runs DAG_ID [-n N] [--after ISO8601]\n"
            "                                          the next times a run will be triggered (UTC)\n"
            "  dags test DAG_ID [LOGICAL_DATE]         run one DAG run to its end in this process\n"
            "  dags trigger DAG_ID [--conf J] [--wait] create a manual run (and follow it)\n"
            "  dags pause|unpause DAG_ID               stop / resume scheduling a DAG\n"
            "  dags list-runs DAG_ID                   its runs, newest first\n"
            "  dags backfill DAG_ID -s D -e D          runs for the intervals between two dates\n"
            "  tasks states DAG_ID RUN_ID              the task instances of a run\n"
            "  tasks test DAG_ID TASK_ID [DATE]        run one task in this process, ignoring upstreams\n"
            "  tasks clear DAG_ID [-t REGEX] [-f] ...  make task instances run again\n"
            "  standalone                              scheduler + workers + API/UI in one process, on SQLite\n"
            "  api                                     the REST API and web UI (api.host:api.port)\n"
            "  users create|list|delete|set-role|set-password\n"
            "                                          API users and their roles\n"
            "  scheduler                               DAG processor + scheduler + publisher (distributed)\n"
            "  worker [-q QUEUES] [-c N]               run task instances from the broker (distributed)\n"
            "  workers list [--output json]            live workers, from Redis\n"
            "  ratelimits set|get|list|delete          named global rate limits, in Redis\n"
            "  config show [--output json]             effective settings and where each came from\n"
            "  config get KEY                          one setting's value\n"
            "  db migrate|check|reset --yes            the store's schema (database.url)\n"
            "  variables set|get|list|delete           variables in the store\n"
            "  connections add|get|list|delete         connections (passwords encrypted at rest)\n"
            "  pools set|get|list|delete               slot pools\n"
            "  version                                 print the version\n"
            "  help                                    this text\n"
            "\n"
            "Settings: defaults < --config FILE (INI) < GUST__SECTION__KEY < --section.key=value.\n"
            "Every command takes --help. See docs/ for more.\n");
}

int main(int argc, char **argv)
{
    GustConfig *cfg = config_new();
    char err[512];
    if (config_load(cfg, &argc, argv, err, sizeof err) != 0) {
        fprintf(stderr, "gust: %s\n", err);
        config_free(cfg);
        return 2;
    }
    int rc;
    int level = log_level_parse(config_get(cfg, "logging.level"));
    if (level >= 0) log_set_level((LogLevel)level);
    const char *fmt = config_get(cfg, "logging.format");
    log_set_json(fmt && strcmp(fmt, "json") == 0);
    const char *cmd = argc > 1 ? argv[1] : NULL;
    if (!cmd || strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(cmd ? stdout : stderr);
        rc = cmd ? 0 : 2;
    } else if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        if (argc > 2 && (strcmp(argv[2], "--output") == 0 || strncmp(argv[2], "--output=", 9) == 0))
            printf("{\"version\": \"%s\"}\n", GUST_VERSION);
        else
            printf("gust %s\n", GUST_VERSION);
        rc = 0;
    } else if (strcmp(cmd, "dags") == 0) {
        rc = cmd_dags(cfg, argc - 1, argv + 1);
    } else if (strcmp(cmd, "config") == 0) {
        rc = cmd_config(cfg, argc - 1, argv + 1);
    } else if (strcmp(cmd, "standalone") == 0) {
        rc = cmd_standalone(cfg, argc - 1, argv + 1);
    } else if (strcmp(cmd, "scheduler") == 0) {
        rc = cmd_scheduler(cfg, argc - 1, argv + 1);
    } else if (strcmp(cmd, "worker") == 0) {
        rc = cmd_worker(cfg, argc - 1, argv + 1);
    } else if (strcmp(cmd, "workers") == 0) {
        rc = cmd_workers(cfg, argc - 1, argv + 1);
    } else if (strcmp(cmd, "ratelimits") == 0) {
        rc = cmd_ratelimits(cfg, argc - 1, argv + 1);
    } else if (strcmp(cmd, "tasks") == 0) {
        rc = cmd_tasks(cfg, argc - 1, argv + 1);
    } else if (strcmp(cmd, "db") == 0) {
        rc = cmd_db(cfg, argc - 1, argv + 1);
    } else if (strcmp(cmd, "variables") == 0) {
        rc = cmd_variables(cfg, argc - 1, argv + 1);
    } else if (strcmp(cmd, "connections") == 0) {
        rc = cmd_connections(cfg, argc - 1, argv + 1);
    } else if (strcmp(cmd, "pools") == 0) {
        rc = cmd_pools(cfg, argc - 1, argv + 1);
    } else if (strcmp(cmd, "api") == 0) {
        rc = cmd_api(cfg, argc - 1, argv + 1);
    } else if (strcmp(cmd, "users") == 0) {
        rc = cmd_users(cfg, argc - 1, argv + 1);
    } else {
        fprintf(stderr, "gust: unknown command '%s' (see gust help)\n", cmd);
        rc = 2;
    }
    config_free(cfg);
    return rc;
}
