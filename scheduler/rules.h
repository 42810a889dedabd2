/* rules — the scheduler's pure decisions, each a transcription of the Airflow code that makes
 * the same decision: trigger rules (TriggerRuleDep), retry delays
 * (TaskInstance.next_retry_datetime), effective priority weights (the weight-rule
 * strategies) and sensor reschedule intervals (BaseSensorOperator._get_next_poke_interval).
 *
 * Nothing here touches the store, the clock or the heap beyond a scratch array: the caller
 * gathers the inputs, these functions answer, and the tests check the answers against
 * Airflow's own arithmetic. scheduler/rules.c opens with each rule's table and with the
 * Airflow versions followed where they differ. */
#ifndef GUST_SCHED_RULES_H
#define GUST_SCHED_RULES_H

#include <stddef.h>
#include <stdint.h>

#include "core/dag.h"
#include "store/ti.h"

/* ---- trigger rules ------------------------------------------------------------------ */

/* How a task's direct upstream task instances stand, as Airflow's _UpstreamTIStates.
 * Removed upstreams are left out of total and done (see rules_count); an upstream that is
 * not finished (none, scheduled, queued, running, up_for_retry, up_for_reschedule,
 * restarting) counts in total only. */
typedef struct UpstreamCounts {
    int total;           /* direct upstreams that take part: every one except removed */
    int success;
    int skipped;
    int failed;
    int upstream_failed;
    int removed;         /* for the record only: a removed upstream does not count */
    int done;            /* success + skipped + failed + upstream_failed (Airflow's "done":
                            the finished upstreams; removed ones are not upstreams here) */
} UpstreamCounts;

/* What to do with a task instance that is waiting on its upstreams (state none). Airflow's
 * trigger rules have no "fail" outcome: they run, wait, skip or mark upstream_failed. */
typedef enum RuleDecision {
    RULE_WAIT,            /* not yet decided: look again when an upstream finishes */
    RULE_RUN,             /* the rule is met: schedule it */
    RULE_SKIP,            /* it can never be met: set skipped */
    RULE_UPSTREAM_FAILED  /* it can never be met because of a failure: set upstream_failed */
} RuleDecision;

const char *rules_decision_name(RuleDecision d); /* "wait", "run", "skip", "upstream_failed" */

/* Count the states of a task's direct upstream task instances (one entry per upstream). */
void rules_count(UpstreamCounts *c, const TiState *upstream_states, size_t n);

/* Decide, as Airflow's scheduler does (flag_upstream_failed=True: a state is set as soon
 * as the outcome is certain, without waiting for the other upstreams). *why (may be NULL)
 * gets a static explanation such as "all_success: an upstream failed"; it never needs
 * freeing. Out-of-range rules are treated as all_success, as trigger_rule_name does. */
RuleDecision rules_evaluate(TriggerRule rule, const UpstreamCounts *c, const char **why);

/* The counts as one log-friendly line: "total=3 success=1 skipped=0 failed=1
 * upstream_failed=0 removed=0 done=2". Returns what snprintf returns. */
int rules_format_counts(const UpstreamCounts *c, char *buf, size_t buflen);

/* ---- retries ------------------------------------------------------------------------ */

#define RULES_MAX_RETRY_DELAY_US (INT64_C(86400) * 1000000) /* Airflow's MAX_RETRY_DELAY */
#define RULES_NO_DATE INT64_MIN /* a run without a logical date (Airflow 3): "None" */

/* The key Airflow hashes for its deterministic jitter, without the try number:
 * "dag_id#task_id#<date>", the date as Python's str() prints an aware UTC datetime read
 * from the database ("2024-01-01 00:00:00+00:00", ".ffffff" before the offset when there
 * are microseconds; "None" for RULES_NO_DATE). For retries the date is the run's logical
 * date; for a reschedule-mode sensor it is the first reschedule's start date. Returns what
 * snprintf returns (the key is truncated if buflen is too small; 64 + ids is enough). */
int rules_jitter_key(char *buf, size_t buflen, const char *dag_id, const char *task_id, int64_t date_us);

/* How long after a failed try ends the next one may start (Airflow 2.10+/3.x
 * next_retry_datetime minus end_date). Without exponential backoff: retry_delay_us, as is.
 * With it: ceil(retry_delay_s * 2^(try_number-1)) (at least 1) seconds, plus the jitter
 * sha1("<ti_key>#<try_number>") mod that, capped at 24 h and then at max_retry_delay_us
 * (<= 0: no cap, as Airflow's falsy timedelta). try_number is the 1-based try that just
 * failed; ti_key is rules_jitter_key's text (NULL hashes as ""). */
int64_t rules_retry_delay_us(int64_t retry_delay_us, int exponential_backoff, int64_t max_retry_delay_us,
                             int try_number, const char *ti_key);

/* Airflow's is_eligible_to_retry for a try that just failed: 1 if try_number <= max_tries
 * (max_tries starts at the task's retries). A try that ends while restarting (cleared while
 * running) is always retried: the caller checks that state first, as Airflow does. */
int rules_should_retry(int try_number, int max_tries);

/* ---- priority weights --------------------------------------------------------------- */

/* Each task's effective priority weight, into out[i] for d->tasks[i]: absolute = its own
 * priority_weight; downstream = own + the own weights of every task downstream of it,
 * transitively, each counted once; upstream = the same over its upstreams. Sums are clamped
 * to the 32-bit range, as Airflow's db_safe_priority. Upstream ids not in the DAG are
 * ignored. */
void rules_priority_weights(const Dag *d, int *out);

/* ---- sensors ------------------------------------------------------------------------ */

/* How long a sensor waits before its next poke (Airflow 2.10+/3.x _get_next_poke_interval).
 * Without exponential backoff: poke_interval_us, as is (no cap). With it: min_backoff =
 * max(trunc(poke_interval_s * 2^(poke_count-2)), 1) seconds plus the jitter
 * sha1("<jitter_key>#<poke_count>") mod min_backoff, then at most timeout - trunc(elapsed)
 * seconds and at most max_wait_us (<= 0: none).
 *   poke_count  1 for the first poke of this execution (Airflow counts up in poke mode)
 *   reschedule  1 in reschedule mode: Airflow then estimates poke_count from elapsed_us,
 *               replaying the intervals it would have waited since the first poke
 *   timeout_us  the sensor's timeout; elapsed_us the time since the sensor started (for
 *               reschedule mode, since the first reschedule's start)
 *   jitter_key  rules_jitter_key(dag, task, first reschedule start) in reschedule mode;
 *               in poke mode Airflow hashes str(time.monotonic()), any per-run text will do */
int64_t rules_sensor_next_poke_us(int64_t poke_interval_us, int exponential_backoff, int64_t max_wait_us,
                                  int poke_count, int reschedule, int64_t timeout_us, int64_t elapsed_us,
                                  const char *jitter_key);

#endif
