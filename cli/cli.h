/* cli — the subcommands of the gust binary. Each takes the effective configuration and its
 * own arguments (argv[0] is the subcommand's name) and returns the process exit code. */
#ifndef GUST_CLI_H
#define GUST_CLI_H

#include "core/config.h"

int cmd_dags(GustConfig *cfg, int argc, char **argv);
/* dags test|trigger|pause|unpause|list-runs|backfill (cmd_dags_run.c); -1 if argv[1] is none of them.
 * tasks states|test|clear (cmd_tasks.c); standalone (cmd_standalone.c). */
int cmd_dags_run(GustConfig *cfg, int argc, char **argv);
int cmd_tasks(GustConfig *cfg, int argc, char **argv);
int cmd_standalone(GustConfig *cfg, int argc, char **argv);
int cmd_scheduler(GustConfig *cfg, int argc, char **argv);   /* cmd_daemons.c */
int cmd_worker(GustConfig *cfg, int argc, char **argv);
int cmd_workers(GustConfig *cfg, int argc, char **argv);
int cmd_ratelimits(GustConfig *cfg, int argc, char **argv);
int cmd_api(GustConfig *cfg, int argc, char **argv);         /* cmd_api.c */
int cmd_users(GustConfig *cfg, int argc, char **argv);       /* cmd_users.c */

struct Store;
struct ClusterConn;
struct SecretKey;
struct ApiContext;
struct ApiServer;
/* Start the API inside a daemon (gust api, gust standalone): ctx is filled, *srv set.
 * 0 ok; -1 after printing why. key and cluster are borrowed (may be NULL). */
int cli_api_start(GustConfig *cfg, const char *cmd, const char *store_url, struct ClusterConn *cluster,
                  struct SecretKey *key, struct ApiContext *ctx, struct ApiServer **srv);
/* gust standalone's first start: when the store has no users, create "admin" with a random
 * password, print it once and keep it 0600 in $home/standalone_admin_password.txt.
 * 0 ok (also when users exist), -1 on failure (printed). */
int cli_users_standalone_admin(GustConfig *cfg, struct Store *s);

/* Shared helpers for subcommands. */
/* 1 if argv[i] is "--output json" / "--output=json" (consumes the value); -1 on a bad value. */
int cli_output_json(int argc, char **argv, int *i);

#endif
