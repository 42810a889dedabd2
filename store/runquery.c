/* runquery — the REST API's queries and changes on DAG runs (see runquery.h).
 *
 * The list builds one WHERE clause from the filter, with every value bound; only column
 * names and the caller's whitelisted ORDER BY text are pasted. The same clause serves the
 * page and its COUNT, so total_entries always agrees with the rows. */
#include "store/runquery.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/sqlbuild.h"
#include "store/ti.h"

void runq_range_init(RunqRange *r)
{
    r->gte = r->gt = r->lte = r->lt = RUNQ_UNSET;
}

void runq_filter_init(RunqFilter *f)
{
    memset(f, 0, sizeof *f);
    for (int i = 0; i < RUNQ__RANGES; i++) runq_range_init(&f->range[i]);
}

void runq_row_clear(RunqRow *r)
{
    if (!r) return;
    run_clear(&r->run);
    memset(r, 0, sizeof *r);
}

void runq_rows_free(RunqRow *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) runq_row_clear(&rows[i]);
    free(rows);
}

/* The columns of STORE_RUN_COLUMNS (store/runs.h) over the alias r, in its order (store_run_read_row
 * reads them), then the version's. */
#define RUNQ_COLUMNS                                                                                             \
    "r.id, r.dag_id, r.run_id, r.run_type, r.logical_date, r.data_interval_start, r.data_interval_end, "        \
    "r.run_after, r.state, r.conf, r.note, r.queued_at, r.start_date, r.end_date, r.last_scheduling_decision, " \
    "r.triggered_by, r.dag_version_id, r.clear_number, r.triggering_user_name, dv.version_number, dv.created_at"
#define RUNQ_TABLES "dag_run r LEFT JOIN dag_version dv ON dv.id = r.dag_version_id"
#define RUNQ_FROM " FROM " RUNQ_TABLES

_Static_assert(RUNQ_UNSET == SQLB_UNSET, "a range bound left out is sqlbuild's");

static int64_t opt_int(StoreRows *r, int c) { return sqlb_col_int(r, c, -1); }
static char *opt_str(StoreRows *r, int c) { return sqlb_col_str(r, c); }

static void read_row(StoreRows *r, RunqRow *o)
{
    memset(o, 0, sizeof *o);
    store_run_read_row(r, &o->run); /* columns 0-18 */
    o->version_number = rows_isnull(r, 19) ? -1 : (int)rows_int(r, 19);
    o->version_created_at = opt_int(r, 20);
}

/* ---- building the WHERE clause -------------------------------------------------------- */

/* Search patterns pass the caller's backslashes on as LIKE escapes, and an empty pattern still
 * requires a value (LIKE '%%'), as this list always has. */
#define RUNQ_PATTERN SQLB_PAT_EMPTY_NOT_NULL

static void build_where(SqlbWhere *w, const RunqFilter *f)
{
    static const char *const range_cols[RUNQ__RANGES] = {
        "r.run_after", "r.logical_date", "r.start_date", "r.end_date", RUNQ_COL_UPDATED_AT, RUNQ_COL_DURATION,
    };
    sqlb_in(w, "r.dag_id", f->dag_ids, f->n_dag_ids, 0);
    sqlb_pattern(w, "r.dag_id", f->dag_id_pattern, RUNQ_PATTERN);
    sqlb_pattern(w, "r.run_id", f->run_id_pattern, RUNQ_PATTERN);
    sqlb_pattern(w, "r.triggering_user_name", f->triggering_user_name_pattern, RUNQ_PATTERN);
    sqlb_in(w, "r.state", f->states, f->n_states, 0);
    sqlb_in(w, "r.run_type", f->run_types, f->n_run_types, 0);
    sqlb_in_int(w, "dv.version_number", f->versions, f->n_versions);
    sqlb_contains(w, "r.conf", f->conf_contains);
    for (int i = 0; i < RUNQ__RANGES; i++) {
        const RunqRange *r = &f->range[i];
        sqlb_range(w, range_cols[i], r->gte, r->gt, r->lte, r->lt);
    }
}

int store_runq_list(Store *s, const RunqFilter *f, const char *order_sql, int limit, int offset, RunqRow **out,
                    size_t *n, int64_t *total)
{
    *out = NULL;
    *n = 0;
    *total = 0;
    SqlbWhere w = {0};
    build_where(&w, f);
    StrBuf sql = {0};
    int rc = sqlb_count(s, RUNQ_TABLES, sb_str(&w.sql), &w.p, w.p.n, total);
    if (rc == 0 && limit > 0) {
        sb_printf(&sql, "SELECT " RUNQ_COLUMNS RUNQ_FROM "%s ORDER BY %s, r.id ASC LIMIT ? OFFSET ?", sb_str(&w.sql),
                  order_sql && *order_sql ? order_sql : "r.id ASC");
        sqlb_page(&w.p, limit, offset);
        StoreRows *r = store_q(s, sb_str(&sql), w.p.v, w.p.n);
        if (!r) {
            rc = -1;
        } else {
            size_t cap = 0;
            while (rows_next(r)) {
                *out = sqlb_grow(*out, *n, &cap, sizeof **out);
                read_row(r, &(*out)[(*n)++]);
            }
            rows_free(r);
        }
    }
    sb_free(&sql);
    sqlb_where_free(&w);
    return rc;
}

int store_runq_get(Store *s, const char *dag_id, const char *run_id, RunqRow *out)
{
    StoreParam p[] = {SP_S(dag_id), SP_S(run_id)};
    StoreRows *r = store_q(s, "SELECT " RUNQ_COLUMNS RUNQ_FROM " WHERE r.dag_id = ? AND r.run_id = ?", p, 2);
    if (!r) return -1;
    int found = rows_next(r);
    if (found) read_row(r, out);
    rows_free(r);
    return found;
}

int store_runq_set_note(Store *s, const char *dag_id, const char *run_id, const char *note)
{
    int64_t n = 0;
    StoreParam p[] = {SP_S(note), SP_S(dag_id), SP_S(run_id)};
    if (store_x(s, "UPDATE dag_run SET note = ? WHERE dag_id = ? AND run_id = ?", p, 3, &n) != 0) return -1;
    if (n == 0) store_set_error(s, "DAG %s has no run %s", dag_id, run_id);
    return n > 0;
}

/* ---- marking a run ---------------------------------------------------------------------- */

typedef struct Mark {
    const char *dag_id, *run_id;
    RunState to;
    int done, tis;
} Mark;

/* One instance to `to`, along the state machine: directly when it allows the move, else
 * through scheduled (queued, up_for_retry and restarting may not be skipped directly, but
 * may be handed back to the scheduler first). 1 moved, 0 refused, -1 error. */
static int move_ti(Store *s, const TaskInstance *t, TiState to)
{
    if (ti_transition_allowed(t->state, to)) return store_ti_set_state(s, t->id, -1, to, -1);
    if (!ti_transition_allowed(t->state, TI_SCHEDULED) || !ti_transition_allowed(TI_SCHEDULED, to)) return 0;
    int r = store_ti_set_state(s, t->id, -1, TI_SCHEDULED, -1);
    if (r <= 0) return r;
    return store_ti_set_state(s, t->id, -1, to, -1);
}

static int mark_tx(Store *s, void *ud)
{
    Mark *m = ud;
    m->done = 0;
    m->tis = 0;
    DagRun cur;
    int found = store_run_get(s, m->dag_id, m->run_id, &cur);
    if (found < 0) return -1;
    if (found == 0) {
        store_set_error(s, "DAG %s has no run %s", m->dag_id, m->run_id);
        return 0;
    }
    RunState was = cur.state;
    run_clear(&cur);
    if (was != m->to) {
        int changed = 0;
        if (store_run_set_state_in_tx(s, m->dag_id, m->run_id, m->to, &changed) != 0) return -1;
        if (!changed) {
            store_set_error(s, "run %s of %s is %s; it cannot become %s", m->run_id, m->dag_id, run_state_name(was),
                            run_state_name(m->to));
            return 0;
        }
    }
    m->done = 1;
    if (m->to == RUN_QUEUED || m->to == RUN_RUNNING) return 0;
    TaskInstance *tis;
    size_t n;
    if (store_ti_list_run(s, m->dag_id, m->run_id, &tis, &n) != 0) return -1;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const TaskInstance *t = &tis[i];
        TiState target;
        if (m->to == RUN_SUCCESS) {
            if (t->state == TI_SUCCESS) continue;
            target = TI_SUCCESS;
        } else if (t->state == TI_RUNNING || t->state == TI_UP_FOR_RESCHEDULE) {
            target = TI_FAILED;
        } else if (!ti_state_is_finished(t->state)) {
            target = TI_SKIPPED;
        } else {
            continue;
        }
        int moved = move_ti(s, t, target);
        if (moved < 0) rc = -1;
        m->tis += moved > 0;
    }
    ti_list_free(tis, n);
    return rc;
}

int store_runq_mark(Store *s, const char *dag_id, const char *run_id, RunState to, int *tis_changed)
{
    Mark m = {dag_id, run_id, to, 0, 0};
    if (tis_changed) *tis_changed = 0;
    if (store_tx(s, mark_tx, &m) != 0) return -1;
    if (tis_changed) *tis_changed = m.tis;
    return m.done;
}

/* ---- clearing -------------------------------------------------------------------------- */

typedef struct Clear {
    const char *dag_id, *run_id;
    RunqClear *items;
    size_t n;
    int cleared;
} Clear;

static int clear_tx(Store *s, void *ud)
{
    Clear *c = ud;
    c->cleared = 0;
    for (size_t i = 0; i < c->n; i++) {
        RunqClear *it = &c->items[i];
        int r = store_ti_clear_for_rerun(s, it->id, it->from, it->try_number, it->retries, NULL);
        if (r < 0) return -1;
        it->cleared = r;
        c->cleared += r;
    }
    if (c->cleared) {
        /* as Airflow: the run of cleared instances is queued again from success or failed;
         * a queued or running run carries on */
        int changed = 0;
        if (store_run_set_state_in_tx(s, c->dag_id, c->run_id, RUN_QUEUED, &changed) != 0) return -1;
    }
    return 0;
}

int store_runq_clear(Store *s, const char *dag_id, const char *run_id, RunqClear *items, size_t n, int *cleared)
{
    Clear c = {dag_id, run_id, items, n, 0};
    *cleared = 0;
    if (store_tx(s, clear_tx, &c) != 0) return -1;
    *cleared = c.cleared;
    return 0;
}

/* ---- deleting -------------------------------------------------------------------------- */

typedef struct Delete {
    const char *dag_id, *run_id;
    int deleted;
} Delete;

static int delete_tx(Store *s, void *ud)
{
    Delete *d = ud;
    static const char *const stmts[] = {
        "DELETE FROM task_log WHERE ti_id IN (SELECT id FROM task_instance WHERE dag_id = ? AND run_id = ?)",
        "DELETE FROM outbox WHERE ti_id IN (SELECT id FROM task_instance WHERE dag_id = ? AND run_id = ?)",
        "DELETE FROM task_instance_history WHERE dag_id = ? AND run_id = ?",
        "DELETE FROM xcom WHERE dag_id = ? AND run_id = ?",
        "DELETE FROM task_instance WHERE dag_id = ? AND run_id = ?",
    };
    StoreParam p[] = {SP_S(d->dag_id), SP_S(d->run_id)};
    for (size_t i = 0; i < GUST_ARRAY_LEN(stmts); i++)
        if (store_x(s, stmts[i], p, 2, NULL) != 0) return -1;
    int64_t n = 0;
    if (store_x(s, "DELETE FROM dag_run WHERE dag_id = ? AND run_id = ?", p, 2, &n) != 0) return -1;
    d->deleted = n > 0;
    return d->deleted ? store_notify(s, d->dag_id) : 0;
}

int store_runq_delete(Store *s, const char *dag_id, const char *run_id)
{
    Delete d = {dag_id, run_id, 0};
    if (store_tx(s, delete_tx, &d) != 0) return -1;
    if (!d.deleted) store_set_error(s, "DAG %s has no run %s", dag_id, run_id);
    return d.deleted;
}

/* ---- asset events ---------------------------------------------------------------------- */

void runq_asset_events_free(RunqAssetEvent *ev, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(ev[i].uri);
        free(ev[i].name);
        free(ev[i].group);
        free(ev[i].source_dag_id);
        free(ev[i].source_task_id);
        free(ev[i].source_run_id);
        free(ev[i].extra);
    }
    free(ev);
}

int store_runq_asset_events(Store *s, const DagRun *run, RunqAssetEvent **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!run->run_type || strcmp(run->run_type, "asset_triggered") != 0) return 0;
    /* an asset-triggered run's run_after is when the scheduler created it, and it consumed
     * every event queued for the DAG then: the window since the previous such run */
    int64_t prev = -1;
    StoreParam q[] = {SP_S(run->dag_id), SP_I(run->run_after)};
    if (store_q_int(s,
                    "SELECT COALESCE(MAX(run_after), -1) FROM dag_run WHERE dag_id = ? AND run_type = 'asset_triggered' "
                    "AND run_after < ?",
                    q, 2, -1, &prev) != 0)
        return -1;
    StoreParam p[] = {SP_S(run->dag_id), SP_I(prev), SP_I(run->run_after)};
    StoreRows *r = store_q(s,
                           "SELECT e.id, e.asset_id, e.timestamp, a.uri, a.name, a.grp, e.source_dag_id, "
                           "e.source_task_id, e.source_run_id, e.source_map_index, e.extra "
                           "FROM asset_event e JOIN asset a ON a.id = e.asset_id "
                           "WHERE e.asset_id IN (SELECT asset_id FROM dag_schedule_asset_reference WHERE dag_id = ?) "
                           "AND e.timestamp > ? AND e.timestamp <= ? ORDER BY e.timestamp, e.id",
                           p, 3);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        RunqAssetEvent *e = &(*out)[(*n)++];
        e->id = rows_int(r, 0);
        e->asset_id = rows_int(r, 1);
        e->timestamp = rows_int(r, 2);
        e->uri = opt_str(r, 3);
        e->name = opt_str(r, 4);
        e->group = opt_str(r, 5);
        e->source_dag_id = opt_str(r, 6);
        e->source_task_id = opt_str(r, 7);
        e->source_run_id = opt_str(r, 8);
        e->source_map_index = rows_isnull(r, 9) ? -1 : (int)rows_int(r, 9);
        e->extra = opt_str(r, 10);
    }
    rows_free(r);
    return 0;
}
