/* rules — Airflow's scheduling arithmetic, transcribed case by case so that a DAG behaves in
 * gust as it does in Airflow: which waiting task runs, skips or is marked upstream_failed,
 * how long a retry or a rescheduled sensor waits, and which task goes first.
 *
 * Trigger rules follow airflow/ti_deps/deps/trigger_rule_dep.py (TriggerRuleDep.
 * _evaluate_direct_relatives), identical for unmapped tasks from Airflow 2.7 through 3.x,
 * with the scheduler's flag_upstream_failed=True: when the outcome is certain the task is
 * set skipped or upstream_failed at once, even while other upstreams still run, and that
 * takes precedence over "run" (Airflow's DagRun._get_ready_tis only schedules an instance
 * still in a schedulable state). all_done_min_one_success is Airflow 3.1's rule. Counts are
 * over the direct upstreams: s = success, k = skipped, f = failed, uf = upstream_failed,
 * done = s+k+f+uf, n = total; "done" below means done >= n.
 *
 *   no upstream at all          run (checked before the rule, so every rule runs)
 *   always                      run
 *   all_success                 f|uf -> upstream_failed; k -> skip; s == n -> run; else wait
 *   all_failed                  s|k -> skip; f+uf == n -> run; else wait
 *   all_done                    done -> run; else wait
 *   all_done_min_one_success    k -> skip; s+f+uf == n-k and s == 0 -> upstream_failed;
 *                               s+f+uf == n-k (s > 0) -> run; else wait
 *   one_success                 s > 0 -> run; done and done == k -> skip;
 *                               done (s == 0) -> upstream_failed; else wait
 *   one_failed                  f|uf -> run; done -> skip; else wait
 *   one_done                    s|f -> run; done -> skip (upstream_failed alone is not
 *                               "one done" in Airflow); else wait
 *   none_failed                 f|uf -> upstream_failed; s+k == n -> run (all skipped
 *                               runs too); else wait
 *   none_failed_min_one_success f|uf -> upstream_failed; k == n -> skip; s+k == n -> run;
 *                               else wait
 *   none_skipped                k -> skip; done -> run (failures do not stop it); else wait
 *   all_skipped                 s|f|uf -> skip; k == n -> run; else wait
 *
 * Removed upstreams: Airflow only ever counts a removed upstream instance for mapped task
 * instances (it subtracts them from the non-successes when map_index > -1); for an unmapped
 * task a removed instance belongs to a task that is no longer upstream, so it never enters
 * the counts. gust has no mapping, so rules_count leaves removed out of total and done, and
 * a task whose upstreams are all removed has no upstream and runs.
 *
 * Not modelled (gust has no such features): setup/teardown tasks and all_done_setup_success,
 * mapped task groups, and depends_on_past's wait_for_past_depends_before_skipping.
 *
 * Retry delays follow TaskInstance.next_retry_datetime of Airflow 2.10 / 3.x, where
 * try_number is the try that just failed: 2 ** (try_number - 1) and the jitter hashes that
 * try number. Airflow 2.9 wrote 2 ** (try_number - 2) with try_number the next try, so
 * the backoff is the same, but its hash used the next try's number: the jitter differs
 * from 2.9's by design. Airflow 3.2 turns retry_exponential_backoff into a float
 * multiplier; gust's flag is the classic 2. Where Airflow raises OverflowError for a huge
 * try number (2.10) or falls back to MAX_RETRY_DELAY (3.x), gust answers MAX_RETRY_DELAY.
 *
 * Sensor intervals follow BaseSensorOperator._get_next_poke_interval of Airflow 2.10 / 3.x
 * (with PR #39823's poke-count estimate in reschedule mode, where every execution starts
 * counting at 1 again). Earlier versions lack the estimate, so their reschedule-mode backoff
 * never grew. One degenerate case differs: with poke_interval 0 and backoff in reschedule
 * mode, Airflow's replay raises OverflowError (float * 2 ** 1024) once about 1,024 s have
 * passed, failing the try; gust keeps answering Airflow's earlier value, 1 s. */
#include "scheduler/rules.h"

#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "core/util.h"

/* ---- trigger rules ------------------------------------------------------------------ */

const char *rules_decision_name(RuleDecision d)
{
    switch (d) {
    case RULE_WAIT: return "wait";
    case RULE_RUN: return "run";
    case RULE_SKIP: return "skip";
    case RULE_UPSTREAM_FAILED: return "upstream_failed";
    }
    return "wait";
}

void rules_count(UpstreamCounts *c, const TiState *upstream_states, size_t n)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < n; i++) {
        switch (upstream_states[i]) {
        case TI_REMOVED: c->removed++; continue; /* not an upstream any more */
        case TI_SUCCESS: c->success++; break;
        case TI_SKIPPED: c->skipped++; break;
        case TI_FAILED: c->failed++; break;
        case TI_UPSTREAM_FAILED: c->upstream_failed++; break;
        default: break; /* not finished yet */
        }
        c->total++;
    }
    c->done = c->success + c->skipped + c->failed + c->upstream_failed;
}

int rules_format_counts(const UpstreamCounts *c, char *buf, size_t buflen)
{
    return snprintf(buf, buflen, "total=%d success=%d skipped=%d failed=%d upstream_failed=%d removed=%d done=%d",
                    c->total, c->success, c->skipped, c->failed, c->upstream_failed, c->removed, c->done);
}

#define DECIDE(d, text)              \
    do {                             \
        if (why) *why = (text);      \
        return (d);                  \
    } while (0)

RuleDecision rules_evaluate(TriggerRule rule, const UpstreamCounts *c, const char **why)
{
    const int n = c->total, s = c->success, k = c->skipped, f = c->failed, uf = c->upstream_failed;
    const int done = c->done >= n; /* Airflow's upstream_done */

    if (n <= 0) DECIDE(RULE_RUN, "the task has no upstream tasks");

    switch (rule) {
    case TR_ALWAYS:
        DECIDE(RULE_RUN, "always: runs whatever its upstreams did");

    case TR_ALL_FAILED:
        if (s || k) DECIDE(RULE_SKIP, "all_failed: an upstream succeeded or was skipped");
        if (n - f - uf > 0) DECIDE(RULE_WAIT, "all_failed: waiting for every upstream to fail");
        DECIDE(RULE_RUN, "all_failed: every upstream failed");

    case TR_ALL_DONE:
        if (!done) DECIDE(RULE_WAIT, "all_done: waiting for every upstream to finish");
        DECIDE(RULE_RUN, "all_done: every upstream finished");

    case TR_ALL_DONE_MIN_ONE_SUCCESS: {
        /* skipped upstreams are not "done" for this rule (Airflow 3.1) */
        int non_skipped_done = s + f + uf, non_skipped = n - k;
        if (k > 0) DECIDE(RULE_SKIP, "all_done_min_one_success: an upstream was skipped");
        if (non_skipped_done >= non_skipped && s == 0)
            DECIDE(RULE_UPSTREAM_FAILED, "all_done_min_one_success: every upstream finished and none succeeded");
        if (non_skipped_done < non_skipped)
            DECIDE(RULE_WAIT, "all_done_min_one_success: waiting for every upstream to finish");
        DECIDE(RULE_RUN, "all_done_min_one_success: every upstream finished and one succeeded");
    }

    case TR_ONE_SUCCESS:
        if (done && c->done == k) DECIDE(RULE_SKIP, "one_success: every upstream was skipped");
        if (done && s <= 0) DECIDE(RULE_UPSTREAM_FAILED, "one_success: every upstream finished and none succeeded");
        if (s <= 0) DECIDE(RULE_WAIT, "one_success: waiting for an upstream to succeed");
        DECIDE(RULE_RUN, "one_success: an upstream succeeded");

    case TR_ONE_FAILED:
        if (done && !(f || uf)) DECIDE(RULE_SKIP, "one_failed: every upstream finished and none failed");
        if (!f && !uf) DECIDE(RULE_WAIT, "one_failed: waiting for an upstream to fail");
        DECIDE(RULE_RUN, "one_failed: an upstream failed");

    case TR_ONE_DONE:
        if (done && !(f || s))
            DECIDE(RULE_SKIP, "one_done: every upstream finished and none succeeded or failed");
        if (s + f <= 0) DECIDE(RULE_WAIT, "one_done: waiting for an upstream to succeed or fail");
        DECIDE(RULE_RUN, "one_done: an upstream succeeded or failed");

    case TR_NONE_FAILED:
        if (f || uf) DECIDE(RULE_UPSTREAM_FAILED, "none_failed: an upstream failed");
        if (n - s - k > 0) DECIDE(RULE_WAIT, "none_failed: waiting for every upstream to succeed or skip");
        DECIDE(RULE_RUN, "none_failed: every upstream succeeded or was skipped");

    case TR_NONE_FAILED_MIN_ONE_SUCCESS:
        if (f || uf) DECIDE(RULE_UPSTREAM_FAILED, "none_failed_min_one_success: an upstream failed");
        if (k == n) DECIDE(RULE_SKIP, "none_failed_min_one_success: every upstream was skipped");
        if (n - s - k > 0)
            DECIDE(RULE_WAIT, "none_failed_min_one_success: waiting for every upstream to succeed or skip");
        DECIDE(RULE_RUN, "none_failed_min_one_success: every upstream succeeded or was skipped, one succeeded");

    case TR_NONE_SKIPPED:
        if (k) DECIDE(RULE_SKIP, "none_skipped: an upstream was skipped");
        if (!done) DECIDE(RULE_WAIT, "none_skipped: waiting for every upstream to finish");
        DECIDE(RULE_RUN, "none_skipped: every upstream finished and none was skipped");

    case TR_ALL_SKIPPED:
        if (s || f || uf) DECIDE(RULE_SKIP, "all_skipped: an upstream did not skip");
        if (n - k > 0) DECIDE(RULE_WAIT, "all_skipped: waiting for every upstream to skip");
        DECIDE(RULE_RUN, "all_skipped: every upstream was skipped");

    case TR_ALL_SUCCESS:
    default:
        if (f || uf) DECIDE(RULE_UPSTREAM_FAILED, "all_success: an upstream failed");
        if (k) DECIDE(RULE_SKIP, "all_success: an upstream was skipped");
        if (n - s > 0) DECIDE(RULE_WAIT, "all_success: waiting for every upstream to succeed");
        DECIDE(RULE_RUN, "all_success: every upstream succeeded");
    }
}

/* ---- the jitter hash ---------------------------------------------------------------- */

int rules_jitter_key(char *buf, size_t buflen, const char *dag_id, const char *task_id, int64_t date_us)
{
    if (date_us == RULES_NO_DATE) return snprintf(buf, buflen, "%s#%s#None", dag_id, task_id);
    TimeFields t;
    time_to_fields(date_us, &t);
    char frac[16] = "";
    if (t.usec) snprintf(frac, sizeof frac, ".%06d", t.usec);
    return snprintf(buf, buflen, "%s#%s#%04d-%02d-%02d %02d:%02d:%02d%s+00:00", dag_id, task_id, t.year, t.month,
                    t.day, t.hour, t.minute, t.second, frac);
}

/* int(sha1(f"{key}#{number}").hexdigest(), 16) % m, for 1 <= m < 2^48: the digest is the
 * big-endian integer Python builds, reduced a byte at a time. */
static int64_t jitter_mod(const char *key, int number, int64_t m)
{
    char tail[16];
    int tl = snprintf(tail, sizeof tail, "#%d", number);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, key ? key : "", key ? strlen(key) : 0) != 1 ||
        EVP_DigestUpdate(ctx, tail, (size_t)tl) != 1 || EVP_DigestFinal_ex(ctx, md, &mdlen) != 1) {
        /* OpenSSL without SHA-1 (or out of memory): no jitter rather than no retry. */
        EVP_MD_CTX_free(ctx);
        return 0;
    }
    EVP_MD_CTX_free(ctx);
    uint64_t r = 0;
    for (unsigned i = 0; i < mdlen; i++) r = ((r << 8) | md[i]) % (uint64_t)m;
    return (int64_t)r;
}

/* ---- retries ------------------------------------------------------------------------ */

int64_t rules_retry_delay_us(int64_t retry_delay_us, int exponential_backoff, int64_t max_retry_delay_us,
                             int try_number, const char *ti_key)
{
    if (!exponential_backoff) return retry_delay_us;

    const int64_t max_s = RULES_MAX_RETRY_DELAY_US / 1000000;
    /* delay.total_seconds() * 2 ** (try_number - 1): a power-of-two scale, exact in double
     * as it is in Python, so the ceiling lands on the same integer. */
    double scaled = ldexp((double)retry_delay_us / 1e6, try_number - 1);
    int64_t delay_s;
    if (!(scaled < (double)max_s)) {
        /* min_backoff >= MAX_RETRY_DELAY, so min_backoff + hash % min_backoff is too. */
        delay_s = max_s;
    } else {
        int64_t min_backoff = (int64_t)ceil(scaled);
        if (min_backoff < 1) min_backoff = 1;
        int64_t modded = min_backoff + jitter_mod(ti_key, try_number, min_backoff);
        delay_s = modded < max_s ? modded : max_s;
    }
    int64_t delay_us = delay_s * 1000000;
    if (max_retry_delay_us > 0 && max_retry_delay_us < delay_us) delay_us = max_retry_delay_us;
    return delay_us;
}

int rules_should_retry(int try_number, int max_tries)
{
    return try_number <= max_tries;
}

/* ---- priority weights --------------------------------------------------------------- */

typedef struct IdIndex {
    const char *id;
    size_t index;
} IdIndex;

static int cmp_id(const void *a, const void *b)
{
    return strcmp(((const IdIndex *)a)->id, ((const IdIndex *)b)->id);
}

void rules_priority_weights(const Dag *d, int *out)
{
    size_t n = d->n_tasks;
    if (n == 0) return;

    /* Edges as indexes, both ways: up[up_off[i]..up_off[i+1]) are task i's upstreams,
     * down[...] its downstreams. */
    IdIndex *ids = xmalloc(n * sizeof *ids);
    for (size_t i = 0; i < n; i++) ids[i] = (IdIndex){d->tasks[i]->task_id, i};
    qsort(ids, n, sizeof *ids, cmp_id);

    size_t n_edges = 0;
    for (size_t i = 0; i < n; i++) n_edges += d->tasks[i]->n_upstream;
    size_t *up_off = xcalloc(n + 1, sizeof *up_off), *down_off = xcalloc(n + 1, sizeof *down_off);
    size_t *up = xmalloc((n_edges + 1) * sizeof *up), *down = xmalloc((n_edges + 1) * sizeof *down);
    size_t *edge_from = xmalloc((n_edges + 1) * sizeof *edge_from); /* the upstream of each kept edge */
    size_t e = 0;
    for (size_t i = 0; i < n; i++) {
        up_off[i] = e;
        const DagTask *t = d->tasks[i];
        for (size_t u = 0; u < t->n_upstream; u++) {
            IdIndex key = {t->upstream[u], 0};
            const IdIndex *hit = bsearch(&key, ids, n, sizeof *ids, cmp_id);
            if (!hit) continue; /* not a task of this DAG */
            up[e] = hit->index;
            edge_from[e] = hit->index;
            down_off[hit->index + 1]++;
            e++;
        }
    }
    up_off[n] = e;
    for (size_t i = 0; i < n; i++) down_off[i + 1] += down_off[i];
    size_t *fill = xmalloc(n * sizeof *fill);
    memcpy(fill, down_off, n * sizeof *fill);
    for (size_t i = 0; i < n; i++)
        for (size_t j = up_off[i]; j < up_off[i + 1]; j++) down[fill[edge_from[j]]++] = i;

    /* Each task's relatives once (get_flat_relative_ids is a set), by depth-first search
     * with a per-task visit mark. */
    size_t *mark = xcalloc(n, sizeof *mark), *stack = xmalloc(n * sizeof *stack);
    for (size_t i = 0; i < n; i++) {
        const DagTask *t = d->tasks[i];
        int64_t sum = t->priority_weight;
        if (t->weight_rule != WR_ABSOLUTE) {
            const size_t *adj = t->weight_rule == WR_UPSTREAM ? up : down;
            const size_t *off = t->weight_rule == WR_UPSTREAM ? up_off : down_off;
            size_t sp = 0;
            mark[i] = i + 1;
            stack[sp++] = i;
            while (sp) {
                size_t v = stack[--sp];
                for (size_t j = off[v]; j < off[v + 1]; j++) {
                    size_t w = adj[j];
                    if (mark[w] == i + 1) continue;
                    mark[w] = i + 1;
                    sum += d->tasks[w]->priority_weight;
                    stack[sp++] = w;
                }
            }
        }
        /* db_safe_priority: the range of a 32-bit database integer */
        out[i] = sum > INT32_MAX ? INT32_MAX : sum < INT32_MIN ? INT32_MIN : (int)sum;
    }

    free(ids);
    free(up_off);
    free(down_off);
    free(up);
    free(down);
    free(edge_from);
    free(fill);
    free(mark);
    free(stack);
}

/* ---- sensors ------------------------------------------------------------------------ */

/* timedelta.max.total_seconds() - 1, the float Airflow caps a poke interval at. */
#define SENSOR_CAP_S 86399999999999.0

/* min(min_backoff + hash % min_backoff, cap) in whole seconds, for one poke count. */
static int64_t sensor_interval_s(double poke_interval_s, int poke_count, const char *key)
{
    double scaled = ldexp(poke_interval_s, poke_count - 2);
    if (!(scaled < SENSOR_CAP_S)) return (int64_t)SENSOR_CAP_S;
    int64_t min_backoff = (int64_t)scaled; /* int() truncates */
    if (min_backoff < 1) min_backoff = 1;
    int64_t modded = min_backoff + jitter_mod(key, poke_count, min_backoff);
    return modded < (int64_t)SENSOR_CAP_S ? modded : (int64_t)SENSOR_CAP_S;
}

int64_t rules_sensor_next_poke_us(int64_t poke_interval_us, int exponential_backoff, int64_t max_wait_us,
                                  int poke_count, int reschedule, int64_t timeout_us, int64_t elapsed_us,
                                  const char *jitter_key)
{
    if (!exponential_backoff) return poke_interval_us;

    double poke_interval_s = (double)poke_interval_us / 1e6;
    if (reschedule) {
        /* Replay the intervals since the first poke until they pass the elapsed time; the
         * count reached is the poke this one is. */
        double elapsed_s = (double)elapsed_us / 1e6, cumulative = 0.0;
        int estimated = 0;
        if (poke_interval_s <= 0.0) {
            /* every interval is exactly 1 s: skip the replay, which would take elapsed_s steps */
            if (elapsed_s >= 0.0) estimated = (int)(elapsed_s < 2e9 ? floor(elapsed_s) + 1 : 2e9);
        } else {
            while (cumulative <= elapsed_s && estimated < 100000) {
                estimated++;
                cumulative += (double)sensor_interval_s(poke_interval_s, estimated, jitter_key);
            }
        }
        if (estimated) poke_count = estimated;
    }

    int64_t delay_s = sensor_interval_s(poke_interval_s, poke_count, jitter_key);
    int64_t delay_us = delay_s > INT64_MAX / 1000000 ? INT64_MAX : delay_s * 1000000;
    /* min(self.timeout - int(run_duration()), delay) */
    int64_t left_us = timeout_us - (elapsed_us / 1000000) * 1000000;
    int64_t next_us = left_us < delay_us ? left_us : delay_us;
    if (max_wait_us > 0 && max_wait_us < next_us) next_us = max_wait_us;
    return next_us;
}
