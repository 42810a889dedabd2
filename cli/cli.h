/* cli — the subcommands of the gust binary. Each takes the effective configuration and its
 * own arguments (argv[0] is the subcommand's name) and returns the process exit code. */
#ifndef GUST_CLI_H
#define GUST_CLI_H

#include "core/config.h"

int cmd_dags(GustConfig *cfg, int argc, char **argv);
/* dags test|trigger|pause|unpause|list-runs (cmd_run.c); -1 if argv[1] is none of them. */
int cmd_dags_run(GustConfig *cfg, int argc, char **argv);
int cmd_tasks(GustConfig *cfg, int argc, char **argv);
int cmd_standalone(GustConfig *cfg, int argc, char **argv);
int cmd_scheduler(GustConfig *cfg, int argc, char **argv);   /* cmd_daemons.c */
int cmd_worker(GustConfig *cfg, int argc, char **argv);
int cmd_workers(GustConfig *cfg, int argc, char **argv);
int cmd_ratelimits(GustConfig *cfg, int argc, char **argv);

/* Shared helpers for subcommands. */
/* 1 if argv[i] is "--output json" / "--output=json" (consumes the value); -1 on a bad value. */
int cli_output_json(int argc, char **argv, int *i);

#endif
