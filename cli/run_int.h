/* run_int — what the commands that run DAGs share (cmd_standalone.c, cmd_dags_run.c,
 * cmd_tasks.c, cmd_backfill.c; defined in runtime.c and run_follow.c). Internal to cli/.
 *
 * A CliRuntime bundles what running needs in one process: the store, the in-process broker,
 * the DAG version cache, a scheduler and a pool of workers. standalone runs it until a
 * signal; `dags test` and `dags backfill` run it (on a throw-away store unless
 * database.url is set) until their runs end; `tasks test` uses only its store and worker
 * options (cli_runtime_open) and runs one try on a thread of its own. */
#ifndef GUST_CLI_RUN_INT_H
#define GUST_CLI_RUN_INT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "broker-adapters/broker.h"
#include "core/config.h"
#include "core/dagbag.h"
#include "core/secret.h"
#include "core/tz.h"
#include "scheduler/scheduler.h"
#include "store/dagcache.h"
#include "store/runs.h"
#include "store/store.h"
#include "worker/worker.h"

/* Set by SIGINT/SIGTERM once cli_install_signals ran: the runners stop at their next step. */
extern volatile int cli_stop_flag;
/* SIGINT and SIGTERM set cli_stop_flag; SIGPIPE is ignored. */
void cli_install_signals(void);

typedef struct CliRuntime {
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
} CliRuntime;

/* The store, the key, the DAG cache and the worker options: what running one try needs
 * (`tasks test` stops here). Takes url. 0 ok, -1 error (printed). */
int cli_runtime_open(CliRuntime *rt, GustConfig *cfg, const char *cmd, char *url, int concurrency);
/* cli_runtime_open, then the broker, a scheduler and the worker pool. url: the store (taken);
 * dags_folder NULL: no DAG processor. 0 ok, -1 error (printed). */
int cli_runtime_start(CliRuntime *rt, GustConfig *cfg, const char *cmd, char *url, const char *dags_folder,
                      int create_runs, int concurrency);
/* Stop the workers (running tries get grace_us), free everything; also after a failed open/start. */
void cli_runtime_stop(CliRuntime *rt, int64_t grace_us);

/* Where `dags test`, `tasks test` and `dags backfill` keep their state: the configured
 * store's URL when database.url is set, else a throw-away SQLite store in a new folder
 * under /tmp (its path in tmp, which must hold 32 bytes). NULL on error (printed). */
char *cli_runner_store_url(GustConfig *cfg, const char *cmd, char *tmp, int *throwaway);
/* Remove the throw-away folder in tmp (nothing when tmp is ""). */
void cli_throwaway_remove(const char *tmp, const char *cmd);
/* Create the pools the DAG names that the store lacks (128 slots each). */
void cli_ensure_pools(Store *s, const Dag *d);
/* Sync the DAG into the runner's store; with unpause, unpause it (*was_paused says whether
 * to pause it again: cli_runner_restore_pause). 0 ok (version gets its id), -1 error (printed). */
int cli_runner_prepare_dag(Store *s, GustConfig *cfg, const char *cmd, const Dag *d, int unpause, char *version,
                           int *was_paused);
void cli_runner_restore_pause(Store *s, const char *dag_id, int was_paused);

/* Load one DAG from the dags folder into bag (which the caller frees with dagbag_free, also
 * on NULL); NULL when it is missing or has errors (printed). */
Dag *cli_load_dag(GustConfig *cfg, const char *dag_id, DagBag *bag);

/* Print a run and its task instances (text, or the JSON document of `dags test`).
 * 0 the run succeeded, 1 it did not (yet), -1 it does not exist or cannot be read. */
int cli_print_run(Store *s, const char *dag_id, const char *run_id, int json);
/* Follow a run to its end (or cli_stop_flag), stepping sched when not NULL; progress on
 * stderr unless quiet. Returns the run's last state. */
RunState cli_follow_run(Store *s, Scheduler *sched, const char *dag_id, const char *run_id, int quiet);

/* `gust dags backfill` (cmd_backfill.c). */
int cli_dags_backfill(GustConfig *cfg, int argc, char **argv);

/* ---- options and output ---------------------------------------------------------------- */

int cli_is_help(const char *arg);
/* An ISO 8601 logical date (UTC unless it has an offset). 0 / -1 (printed). */
int cli_parse_logical(const char *s, int64_t *out);
/* A date option: ISO 8601; without an offset it is wall time on tz (the DAG's zone). */
int cli_parse_date_opt(const char *cmd, const char *opt, const char *text, const GustTz *tz, int64_t *out);
/* o[k] = the ISO 8601 text of us, or null when us < 0. */
/* The scheduler's options from the settings (gust scheduler and the in-process runtime). */
void cli_sched_options(GustConfig *cfg, SchedOptions *so);
void cli_iso_or_null(cJSON *o, const char *k, int64_t us);
/* Print o (pretty) on stdout and free it. */
void cli_print_json_doc(cJSON *o);
/* Record a CLI action in the event log (owner "cli:$USER"); a failure is only a warning.
 * Takes extra. */
void cli_audit(Store *s, const char *cmd, const char *event, const char *dag_id, cJSON *extra);

#endif
