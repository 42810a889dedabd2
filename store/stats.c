/* stats — counts for /metrics (see stats.h). */
#include "store/stats.h"

#include <string.h>

#include "store/journal.h"

int store_stats_ti_states(Store *s, int64_t counts[TI__COUNT])
{
    memset(counts, 0, sizeof(int64_t) * TI__COUNT);
    StoreRows *r = store_q(s, "SELECT state, COUNT(*) FROM task_instance GROUP BY state", NULL, 0);
    if (!r) return -1;
    while (rows_next(r)) {
        int st = ti_state_parse(rows_isnull(r, 0) ? NULL : rows_text(r, 0));
        if (st >= 0) counts[st] += rows_int(r, 1);
    }
    rows_free(r);
    return 0;
}

int store_stats_run_states(Store *s, int64_t counts[RUN__COUNT])
{
    memset(counts, 0, sizeof(int64_t) * RUN__COUNT);
    StoreRows *r = store_q(s, "SELECT state, COUNT(*) FROM dag_run GROUP BY state", NULL, 0);
    if (!r) return -1;
    while (rows_next(r)) {
        int st = run_state_parse(rows_text(r, 0));
        if (st >= 0) counts[st] += rows_int(r, 1);
    }
    rows_free(r);
    return 0;
}

int store_stats_queue(Store *s, int64_t *outbox, int64_t *in_broker)
{
    if (store_q_int(s, "SELECT COUNT(*) FROM outbox", NULL, 0, 0, outbox) != 0) return -1;
    return store_q_int(s,
                       "SELECT COUNT(*) FROM task_instance t WHERE t.state = 'queued' "
                       "AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.ti_id = t.id AND o.try_number = t.try_number)",
                       NULL, 0, 0, in_broker);
}

int store_stats_dags(Store *s, int64_t *paused, int64_t *unpaused)
{
    *paused = *unpaused = 0;
    StoreRows *r = store_q(s, "SELECT is_paused, COUNT(*) FROM dag WHERE is_active = 1 GROUP BY is_paused", NULL, 0);
    if (!r) return -1;
    while (rows_next(r)) {
        if (rows_int(r, 0))
            *paused += rows_int(r, 1);
        else
            *unpaused += rows_int(r, 1);
    }
    rows_free(r);
    return 0;
}

int store_stats_try_durations(Store *s, int64_t since_us, const int64_t *bounds_us, int nb, int64_t *le,
                              int64_t *count, int64_t *sum_us)
{
    memset(le, 0, sizeof(int64_t) * (size_t)nb);
    *count = *sum_us = 0;
    int64_t first = 0;
    if (store_journal_first_id_at(s, since_us, &first) != 0) return -1;
    /* The journal says which tries ended lately (by id range: no index on time needed);
     * their history rows say how long they took. DISTINCT: a try marked by hand after its
     * end appears twice in the journal but ran once. */
    StoreParam p[] = {SP_I(first)};
    StoreRows *r = store_q(s,
                           "SELECT h.duration FROM task_instance_history h JOIN "
                           "(SELECT DISTINCT dag_id, run_id, task_id, map_index, try_number FROM state_event "
                           " WHERE id >= ? AND kind = 'ti' AND state IN ('success', 'failed', 'up_for_retry', "
                           " 'skipped')) e ON h.dag_id = e.dag_id AND h.run_id = e.run_id AND h.task_id = e.task_id "
                           "AND h.map_index = e.map_index AND h.try_number = e.try_number "
                           "WHERE h.duration IS NOT NULL",
                           p, 1);
    if (!r) return -1;
    while (rows_next(r)) {
        int64_t d = rows_int(r, 0);
        if (d < 0) d = 0;
        (*count)++;
        *sum_us += d;
        for (int i = 0; i < nb; i++)
            if (d <= bounds_us[i]) le[i]++;
    }
    rows_free(r);
    return 0;
}
