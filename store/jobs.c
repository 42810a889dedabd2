/* jobs — see jobs.h. */
#include "store/jobs.h"

int store_job_beat(Store *s, const char *id, const char *type, const char *hostname, int pid, int64_t started_at,
                   int64_t now)
{
    StoreParam p[] = {SP_S(id), SP_S(type), SP_S(hostname), SP_I(pid), SP_I(started_at), SP_I(now)};
    /* an upsert both engines speak: the row is this process's alone, so no race to lose */
    return store_x(s,
                   "INSERT INTO job (id, job_type, hostname, pid, state, start_date, latest_heartbeat) "
                   "VALUES (?, ?, ?, ?, 'running', ?, ?) "
                   "ON CONFLICT (id) DO UPDATE SET latest_heartbeat = excluded.latest_heartbeat, state = 'running'",
                   p, 6, NULL);
}

int store_job_end(Store *s, const char *id, int64_t now)
{
    StoreParam p[] = {SP_I(now), SP_S(id)};
    return store_x(s, "UPDATE job SET state = 'success', end_date = ? WHERE id = ?", p, 2, NULL);
}

int store_job_latest(Store *s, const char *type, int64_t *latest)
{
    StoreParam p[] = {SP_S(type)};
    int64_t v = -1;
    if (store_q_int(s, "SELECT COALESCE(MAX(latest_heartbeat), -1) FROM job WHERE job_type = ? AND state = 'running'",
                    p, 1, -1, &v) != 0)
        return -1;
    if (v < 0) return 0;
    *latest = v;
    return 1;
}

int64_t store_job_prune(Store *s, int64_t before)
{
    StoreParam p[] = {SP_I(before)};
    int64_t n = 0;
    if (store_x(s, "DELETE FROM job WHERE latest_heartbeat < ?", p, 1, &n) != 0) return -1;
    return n;
}
