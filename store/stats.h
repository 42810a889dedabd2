/* stats — counts the store can give at a glance, for /metrics (api/metrics.c): task
 * instances and runs by state, the depth of the queue, DAGs by paused, and the durations of
 * the tries that finished recently. Each is one or two short read-only statements; they
 * run when Prometheus scrapes, never on a hot path. */
#ifndef GUST_STORE_STATS_H
#define GUST_STORE_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "store/runs.h"
#include "store/store.h"
#include "store/ti.h"

/* Task instances per state (index TiState; TI_NONE counts NULL). 0 ok, -1 error. The cost
 * grows with the table (one GROUP BY over the state index). */
int store_stats_ti_states(Store *s, int64_t counts[TI__COUNT]);
/* Runs per state (index RunState). 0 ok, -1 error. */
int store_stats_run_states(Store *s, int64_t counts[RUN__COUNT]);
/* The queue: *outbox = tries queued and not yet confirmed by the broker (outbox rows);
 * *in_broker = queued tries the broker holds (queued, no outbox row left), waiting for a
 * worker. Their sum is every queued try. 0 ok, -1 error. */
int store_stats_queue(Store *s, int64_t *outbox, int64_t *in_broker);
/* Active DAGs (not deleted from their files), paused and not. 0 ok, -1 error. */
int store_stats_dags(Store *s, int64_t *paused, int64_t *unpaused);

/* Durations of the tries that ended (success, failed, up_for_retry, skipped by their
 * worker) since since_us, found through the state-change journal (store/journal.h) and
 * read from task_instance_history: le[i] gets how many took <= bounds_us[i] (cumulative,
 * as Prometheus buckets are), *count all of them, *sum_us their total. Tries older than
 * the journal's retention are not counted. 0 ok, -1 error. */
int store_stats_try_durations(Store *s, int64_t since_us, const int64_t *bounds_us, int nb, int64_t *le,
                              int64_t *count, int64_t *sum_us);

#endif
