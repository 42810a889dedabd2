/* runs — DAG runs: creation, locking, state (see runs.h). */
#include "store/runs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/timeutil.h"
#include "core/util.h"
#include "store/journal.h"

static const char *const RUN_STATES[RUN__COUNT] = {"queued", "running", "success", "failed"};

const char *run_state_name(RunState s)
{
    return (unsigned)s < RUN__COUNT ? RUN_STATES[s] : "queued";
}

int run_state_parse(const char *name)
{
    for (int i = 0; name && i < RUN__COUNT; i++)
        if (strcmp(RUN_STATES[i], name) == 0) return i;
    return -1;
}

void run_clear(DagRun *r)
{
    if (!r) return;
    free(r->dag_id);
    free(r->run_id);
    free(r->run_type);
    free(r->conf);
    free(r->note);
    free(r->triggered_by);
    free(r->triggering_user_name);
    free(r->dag_version_id);
    memset(r, 0, sizeof *r);
}

void run_list_free(DagRun *runs, size_t n)
{
    for (size_t i = 0; i < n; i++) run_clear(&runs[i]);
    free(runs);
}

void run_id_make(const char *run_type, int64_t logical_date, char *out, size_t outlen)
{
    char ts[48];
    if (logical_date < 0) logical_date = util_now_us();
    /* Python's isoformat: microseconds only when there are some, so two manual triggers in
     * the same second get different ids */
    time_format_iso(logical_date, logical_date % 1000000 != 0, ts, sizeof ts);
    /* Airflow writes the offset as +00:00 */
    size_t l = strlen(ts);
    if (l && ts[l - 1] == 'Z') snprintf(ts + l - 1, sizeof ts - (l - 1), "+00:00");
    snprintf(out, outlen, "%s__%s", run_type, ts);
}

static int64_t opt_int(StoreRows *r, int c)
{
    return rows_isnull(r, c) ? -1 : rows_int(r, c);
}

static char *opt_str(StoreRows *r, int c)
{
    return rows_isnull(r, c) ? NULL : xstrdup(rows_text(r, c));
}

void store_run_read_row(StoreRows *r, DagRun *d)
{
    memset(d, 0, sizeof *d);
    util_strlcpy(d->id, rows_text(r, 0), sizeof d->id);
    d->dag_id = opt_str(r, 1);
    d->run_id = opt_str(r, 2);
    d->run_type = opt_str(r, 3);
    d->logical_date = opt_int(r, 4);
    d->data_interval_start = opt_int(r, 5);
    d->data_interval_end = opt_int(r, 6);
    d->run_after = opt_int(r, 7);
    int st = run_state_parse(rows_text(r, 8));
    d->state = st < 0 ? RUN_QUEUED : (RunState)st;
    d->conf = opt_str(r, 9);
    d->note = opt_str(r, 10);
    d->queued_at = opt_int(r, 11);
    d->start_date = opt_int(r, 12);
    d->end_date = opt_int(r, 13);
    d->last_scheduling_decision = opt_int(r, 14);
    d->triggered_by = opt_str(r, 15);
    d->dag_version_id = opt_str(r, 16);
    d->clear_number = (int)rows_int(r, 17);
    d->triggering_user_name = opt_str(r, 18);
}

static int read_runs(StoreRows *r, DagRun **out, size_t *n)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    while (rows_next(r)) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        store_run_read_row(r, &(*out)[(*n)++]);
    }
    rows_free(r);
    return 0;
}

typedef struct Create {
    const RunSpec *spec;
    const TiSpec *tis;
    size_t n;
    char id[33];
    int created;
} Create;

static StoreParam opt(int64_t v)
{
    return v >= 0 ? SP_I(v) : SP_NIL;
}

static int create_tx(Store *s, void *ud)
{
    Create *c = ud;
    const RunSpec *sp = c->spec;
    int64_t now = util_now_us(), affected = 0;
    store_new_id(c->id);
    StoreParam p[] = {SP_S(c->id),           SP_S(sp->dag_id),
                      SP_S(sp->run_id),      SP_S(sp->run_type ? sp->run_type : "manual"),
                      opt(sp->logical_date), opt(sp->data_interval_start),
                      opt(sp->data_interval_end), SP_I(sp->run_after >= 0 ? sp->run_after : now),
                      SP_S(sp->conf ? sp->conf : "{}"), SP_S(sp->note),
                      SP_I(now),             SP_S(sp->triggered_by),
                      SP_S(sp->dag_version_id), SP_S(sp->triggering_user_name)};
    /* ON CONFLICT DO NOTHING covers both unique keys: the loser of a race inserts nothing */
    if (store_x(s,
                "INSERT INTO dag_run (id, dag_id, run_id, run_type, logical_date, data_interval_start, "
                "data_interval_end, run_after, state, conf, note, queued_at, triggered_by, dag_version_id, "
                "triggering_user_name) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                p, 14, &affected) != 0)
        return -1;
    c->created = affected > 0;
    if (!c->created) return 0;
    if (store_journal_run(s, now, sp->dag_id, sp->run_id, "queued") != 0) return -1;
    if (store_ti_insert(s, sp->dag_id, sp->run_id, sp->dag_version_id, c->tis, c->n) != 0) return -1;
    return store_notify(s, sp->dag_id);
}

int store_run_create(Store *s, const RunSpec *spec, const TiSpec *tis, size_t n, char *id_out)
{
    Create c = {spec, tis, n, {0}, 0};
    if (store_tx(s, create_tx, &c) != 0) return -1;
    if (!c.created) {
        store_set_error(s, "DAG %s already has a run %s or a run at that logical date", spec->dag_id, spec->run_id);
        return 0;
    }
    if (id_out) memcpy(id_out, c.id, 33);
    return 1;
}

int store_run_get(Store *s, const char *dag_id, const char *run_id, DagRun *out)
{
    StoreParam p[] = {SP_S(dag_id), SP_S(run_id)};
    StoreRows *r = store_q(s, "SELECT " STORE_RUN_COLUMNS " FROM dag_run WHERE dag_id = ? AND run_id = ?", p, 2);
    if (!r) return -1;
    int found = rows_next(r);
    if (found) store_run_read_row(r, out);
    rows_free(r);
    return found;
}

int store_run_list(Store *s, const char *dag_id, int limit, DagRun **out, size_t *n)
{
    StoreParam p[] = {SP_S(dag_id), SP_I(limit > 0 ? limit : 1000000000)};
    StoreRows *r = store_q(s, "SELECT " STORE_RUN_COLUMNS " FROM dag_run WHERE dag_id = ? ORDER BY run_after DESC, id DESC LIMIT ?",
                           p, 2);
    if (!r) return -1;
    return read_runs(r, out, n);
}

int store_runs_lock_active(Store *s, int max, DagRun **out, size_t *n)
{
    StrBuf sql = {0};
    sb_printf(&sql,
              "SELECT " STORE_RUN_COLUMNS " FROM dag_run WHERE state IN ('queued', 'running') "
              "ORDER BY last_scheduling_decision NULLS FIRST, run_after LIMIT ?%s",
              store_sql(s->conn, STORE_SQL_SKIP_LOCKED));
    StoreParam p[] = {SP_I(max)};
    StoreRows *r = store_q(s, sb_str(&sql), p, 1);
    sb_free(&sql);
    if (!r) return -1;
    read_runs(r, out, n);
    int64_t now = util_now_us();
    for (size_t i = 0; i < *n; i++) {
        StoreParam q[] = {SP_I(now), SP_S((*out)[i].id)};
        if (store_x(s, "UPDATE dag_run SET last_scheduling_decision = ? WHERE id = ?", q, 2, NULL) != 0) return -1;
        (*out)[i].last_scheduling_decision = now;
    }
    return 0;
}

int store_run_set_state_in_tx(Store *s, const char *dag_id, const char *run_id, RunState to, int *changed)
{
    int64_t now = util_now_us(), n = 0;
    const char *sql;
    switch (to) {
    case RUN_RUNNING:
        sql = "UPDATE dag_run SET state = 'running', start_date = COALESCE(start_date, ?) "
              "WHERE dag_id = ? AND run_id = ? AND state = 'queued'";
        break;
    case RUN_SUCCESS:
        sql = "UPDATE dag_run SET state = 'success', end_date = ? WHERE dag_id = ? AND run_id = ? "
              "AND state IN ('running', 'queued', 'failed')";
        break;
    case RUN_FAILED:
        sql = "UPDATE dag_run SET state = 'failed', end_date = ? WHERE dag_id = ? AND run_id = ? "
              "AND state IN ('running', 'queued', 'success')";
        break;
    default:
        sql = "UPDATE dag_run SET state = 'queued', queued_at = ?, end_date = NULL, start_date = NULL, "
              "clear_number = clear_number + 1 WHERE dag_id = ? AND run_id = ? AND state IN ('success', 'failed')";
        break;
    }
    StoreParam p[] = {SP_I(now), SP_S(dag_id), SP_S(run_id)};
    if (store_x(s, sql, p, 3, &n) != 0) return -1;
    *changed = n > 0;
    if (!*changed) return 0;
    if (store_journal_run(s, now, dag_id, run_id, run_state_name(to)) != 0) return -1;
    return store_notify(s, dag_id);
}

typedef struct SetRun {
    const char *dag_id, *run_id;
    RunState to;
    int changed;
} SetRun;

static int set_run_tx(Store *s, void *ud)
{
    SetRun *r = ud;
    return store_run_set_state_in_tx(s, r->dag_id, r->run_id, r->to, &r->changed);
}

int store_run_set_state(Store *s, const char *dag_id, const char *run_id, RunState to)
{
    SetRun r = {dag_id, run_id, to, 0};
    if (store_tx(s, set_run_tx, &r) != 0) return -1;
    if (!r.changed) {
        DagRun cur;
        int found = store_run_get(s, dag_id, run_id, &cur);
        if (found > 0) {
            store_set_error(s, "run %s of %s is %s; it cannot become %s", run_id, dag_id, run_state_name(cur.state),
                            run_state_name(to));
            run_clear(&cur);
        } else if (found == 0) {
            store_set_error(s, "DAG %s has no run %s", dag_id, run_id);
        }
    }
    return r.changed;
}

int64_t store_run_last_logical(Store *s, const char *dag_id)
{
    int64_t v = -1;
    StoreParam p[] = {SP_S(dag_id)};
    store_q_int(s, "SELECT MAX(logical_date) FROM dag_run WHERE dag_id = ? AND run_type IN ('scheduled', 'backfill')",
                p, 1, -1, &v);
    return v;
}

int store_run_count_active(Store *s, const char *dag_id, int64_t *count)
{
    StoreParam p[] = {SP_S(dag_id)};
    return store_q_int(s, "SELECT COUNT(*) FROM dag_run WHERE dag_id = ? AND state IN ('queued', 'running')", p, 1, 0,
                       count);
}

int store_run_count_running(Store *s, const char *dag_id, int64_t *count)
{
    StoreParam p[] = {SP_S(dag_id)};
    return store_q_int(s, "SELECT COUNT(*) FROM dag_run WHERE dag_id = ? AND state = 'running'", p, 1, 0, count);
}

int store_run_get_by_logical(Store *s, const char *dag_id, int64_t logical_date, DagRun *out)
{
    StoreParam p[] = {SP_S(dag_id), SP_I(logical_date)};
    StoreRows *r = store_q(s, "SELECT " STORE_RUN_COLUMNS " FROM dag_run WHERE dag_id = ? AND logical_date = ?", p, 2);
    if (!r) return -1;
    int found = rows_next(r);
    if (found) store_run_read_row(r, out);
    rows_free(r);
    return found;
}

int store_run_list_between(Store *s, const char *dag_id, int64_t from_us, int64_t to_us, DagRun **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    StoreParam p[] = {SP_S(dag_id), SP_I(from_us >= 0 ? from_us : INT64_MIN), SP_I(to_us >= 0 ? to_us : INT64_MAX)};
    StoreRows *r = store_q(s,
                           "SELECT " STORE_RUN_COLUMNS " FROM dag_run WHERE dag_id = ? AND logical_date IS NOT NULL "
                           "AND logical_date >= ? AND logical_date <= ? ORDER BY logical_date, id",
                           p, 3);
    if (!r) return -1;
    return read_runs(r, out, n);
}
