/* jobs — the daemons that record they are alive (Airflow's job table): each scheduler writes
 * its heartbeat every scheduler.heartbeat, so /api/v2/monitor/health can say whether one is
 * running, and when it was last seen, from the store alone (any gust api can answer). */
#ifndef GUST_STORE_JOBS_H
#define GUST_STORE_JOBS_H

#include <stdint.h>

#include "store/store.h"

/* Insert or refresh job id (32 hex, the caller's): type "SchedulerJob", hostname, pid,
 * started_at (us), now (us). State becomes "running". 0 / -1. */
int store_job_beat(Store *s, const char *id, const char *type, const char *hostname, int pid, int64_t started_at,
                   int64_t now);
/* The job ended cleanly (state "success", end_date now). 0 / -1. */
int store_job_end(Store *s, const char *id, int64_t now);
/* The latest heartbeat of a running job of that type: 1 (*latest set), 0 none, -1 error. */
int store_job_latest(Store *s, const char *type, int64_t *latest);
/* Forget jobs whose last heartbeat is older than before (ended or dead). Rows deleted, or -1. */
int64_t store_job_prune(Store *s, int64_t before);

#endif
