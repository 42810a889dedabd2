/* tiquery — the API's task-instance queries and bulk changes (see tiquery.h).
 *
 * Lists are built as one WHERE clause with bound parameters, used twice: for the page
 * (ORDER BY + LIMIT/OFFSET, bound too) and for the COUNT. The clause is assembled from
 * fixed fragments only; values never enter the SQL text. */
#include "store/tiquery.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/runs.h"

/* ---- a statement under construction --------------------------------------------------- */

typedef struct Q {
    StrBuf sql;
    StoreParam *p;
    int np, cap;
    char **owned; /* texts the parameters point into, freed with the query */
    size_t n_owned;
} Q;

static void q_param(Q *q, StoreParam v)
{
    if (q->np == q->cap) {
        q->cap = q->cap ? q->cap * 2 : 32;
        q->p = xrealloc(q->p, (size_t)q->cap * sizeof *q->p);
    }
    q->p[q->np++] = v;
}

static const char *q_own(Q *q, char *text)
{
    q->owned = xrealloc(q->owned, (q->n_owned + 1) * sizeof *q->owned);
    q->owned[q->n_owned++] = text;
    return text;
}

static void q_free(Q *q)
{
    sb_free(&q->sql);
    free(q->p);
    for (size_t i = 0; i < q->n_owned; i++) free(q->owned[i]);
    free(q->owned);
    memset(q, 0, sizeof *q);
}

static void q_eq_text(Q *q, const char *col, const char *v)
{
    if (!v) return;
    sb_printf(&q->sql, " AND %s = ?", col);
    q_param(q, SP_S(v));
}

static void q_in_text(Q *q, const char *col, const char *const *v, size_t n)
{
    if (!n) return;
    sb_printf(&q->sql, " AND %s IN (", col);
    for (size_t i = 0; i < n; i++) {
        sb_append(&q->sql, i ? ", ?" : "?");
        q_param(q, SP_S(v[i]));
    }
    sb_append(&q->sql, ")");
}

static void q_in_int(Q *q, const char *col, const int64_t *v, size_t n)
{
    if (!n) return;
    sb_printf(&q->sql, " AND %s IN (", col);
    for (size_t i = 0; i < n; i++) {
        sb_append(&q->sql, i ? ", ?" : "?");
        q_param(q, SP_I(v[i]));
    }
    sb_append(&q->sql, ")");
}

static void q_range(Q *q, const char *col, const TiqRange *r)
{
    static const char *const ops[] = {">=", ">", "<=", "<"};
    const int64_t v[] = {r->gte, r->gt, r->lte, r->lt};
    for (int i = 0; i < 4; i++) {
        if (v[i] == TIQ_UNSET) continue;
        sb_printf(&q->sql, " AND %s %s ?", col, ops[i]);
        q_param(q, SP_I(v[i]));
    }
}

/* Airflow's *_pattern: LIKE '%term%' per "|"-separated term, case-insensitive. The user's
 * % and _ are wildcards (the spec says so); backslash is the escape character on both
 * engines (SQLite has none by default, PostgreSQL's default is backslash), so "\_" is a
 * literal underscore everywhere. Only ASCII letters are folded: SQLite's LOWER folds no
 * others, and PostgreSQL must not match more than SQLite does. */
static void q_like(Q *q, const char *col, const char *pattern)
{
    if (!pattern) return;
    sb_append(&q->sql, " AND (");
    const char *p = pattern;
    int first = 1;
    for (;;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        while (len && isspace((unsigned char)*p)) p++, len--;
        while (len && isspace((unsigned char)p[len - 1])) len--;
        StrBuf t = {0};
        sb_appendc(&t, '%');
        for (size_t i = 0; i < len; i++) {
            char c = p[i];
            sb_appendc(&t, (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c);
        }
        /* a trailing lone escape would escape our closing %: make it a literal backslash */
        size_t bs = 0;
        for (size_t i = len; i > 0 && p[i - 1] == '\\'; i--) bs++;
        if (bs % 2) sb_appendc(&t, '\\');
        sb_appendc(&t, '%');
        sb_printf(&q->sql, "%sLOWER(%s) LIKE ? ESCAPE '\\'", first ? "" : " OR ", col);
        q_param(q, SP_S(q_own(q, sb_take(&t))));
        first = 0;
        if (!bar) break;
        p = bar + 1;
    }
    sb_append(&q->sql, ")");
}

static int64_t opt_int(StoreRows *r, int c)
{
    return rows_isnull(r, c) ? -1 : rows_int(r, c);
}

static char *opt_str(StoreRows *r, int c)
{
    return rows_isnull(r, c) ? NULL : xstrdup(rows_text(r, c));
}

/* ---- task instances -------------------------------------------------------------------- */

void tiq_filter_init(TiqFilter *f)
{
    memset(f, 0, sizeof *f);
    f->start_date = f->end_date = f->logical_date = f->run_after = f->duration = TIQ_RANGE_NONE;
    f->limit = -1;
}

/* The same columns, in the same order, as store/ti.c reads into a TaskInstance, then what
 * the API adds from the run and the version. */
#define TIQ_SELECT                                                                                                   \
    "SELECT ti.id, ti.dag_id, ti.run_id, ti.task_id, ti.map_index, ti.state, ti.try_number, ti.max_tries, "          \
    "ti.start_date, ti.end_date, ti.duration, ti.queued_at, ti.scheduled_at, ti.next_attempt_at, "                  \
    "ti.last_heartbeat_at, ti.hostname, ti.worker_id, ti.pid, ti.queue, ti.pool, ti.pool_slots, ti.priority_weight, " \
    "ti.operator, ti.dag_version_id, ti.first_poke_at, "                                                             \
    "ti.note, ti.rendered_fields, r.logical_date, r.run_after, r.data_interval_start, r.data_interval_end, r.state, " \
    "v.version_number, v.created_at "
#define TIQ_FROM_RUN "FROM task_instance ti JOIN dag_run r ON r.dag_id = ti.dag_id AND r.run_id = ti.run_id "
#define TIQ_FROM TIQ_FROM_RUN "LEFT JOIN dag_version v ON v.id = ti.dag_version_id "

static void read_row(StoreRows *r, TiqRow *o)
{
    memset(o, 0, sizeof *o);
    store_ti_read_row(r, &o->ti); /* columns 0-24: STORE_TI_COLUMNS */
    o->note = opt_str(r, 25);
    o->rendered_fields = opt_str(r, 26);
    o->logical_date = opt_int(r, 27);
    o->run_after = opt_int(r, 28);
    o->data_interval_start = opt_int(r, 29);
    o->data_interval_end = opt_int(r, 30);
    o->run_state = opt_str(r, 31);
    o->version_number = (int)opt_int(r, 32);
    o->version_created_at = opt_int(r, 33);
}

void tiq_rows_free(TiqRow *rows, size_t n)
{
    for (size_t i = 0; rows && i < n; i++) {
        ti_clear(&rows[i].ti);
        free(rows[i].note);
        free(rows[i].rendered_fields);
        free(rows[i].run_state);
    }
    free(rows);
}

static void where_states(Q *q, const char *const *states, size_t n)
{
    if (!n) return;
    int none = 0;
    size_t named = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(states[i], "none") == 0)
            none = 1;
        else
            named++;
    }
    sb_append(&q->sql, " AND (");
    if (named) {
        sb_append(&q->sql, "ti.state IN (");
        int first = 1;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(states[i], "none") == 0) continue;
            sb_append(&q->sql, first ? "?" : ", ?");
            q_param(q, SP_S(states[i]));
            first = 0;
        }
        sb_append(&q->sql, ")");
    }
    if (none) sb_printf(&q->sql, "%sti.state IS NULL", named ? " OR " : "");
    sb_append(&q->sql, ")");
}

static void tiq_where(Q *q, const TiqFilter *f)
{
    sb_append(&q->sql, "WHERE 1 = 1");
    if (f->match_nothing) sb_append(&q->sql, " AND 1 = 0");
    q_eq_text(q, "ti.dag_id", f->dag_id);
    q_eq_text(q, "ti.run_id", f->run_id);
    q_eq_text(q, "ti.task_id", f->task_id);
    if (f->has_map_index) {
        sb_append(&q->sql, " AND ti.map_index = ?");
        q_param(q, SP_I(f->map_index));
    }
    if (f->mapped_only) sb_append(&q->sql, " AND ti.map_index >= 0");
    q_in_text(q, "ti.id", f->ids, f->n_ids);
    q_in_text(q, "ti.dag_id", f->dag_ids, f->n_dag_ids);
    q_in_text(q, "ti.run_id", f->run_ids, f->n_run_ids);
    q_in_text(q, "ti.task_id", f->task_ids, f->n_task_ids);
    where_states(q, f->states, f->n_states);
    q_in_text(q, "ti.pool", f->pools, f->n_pools);
    q_in_text(q, "ti.queue", f->queues, f->n_queues);
    q_in_text(q, "ti.operator", f->operators, f->n_operators);
    q_in_int(q, "ti.try_number", f->try_numbers, f->n_try_numbers);
    q_in_int(q, "ti.map_index", f->map_indexes, f->n_map_indexes);
    q_in_int(q, "v.version_number", f->version_numbers, f->n_version_numbers);
    q_range(q, "ti.start_date", &f->start_date);
    q_range(q, "ti.end_date", &f->end_date);
    q_range(q, "r.logical_date", &f->logical_date);
    q_range(q, "r.run_after", &f->run_after);
    q_range(q, "ti.duration", &f->duration);
    q_like(q, "ti.dag_id", f->dag_id_pattern);
    q_like(q, "ti.run_id", f->run_id_pattern);
    q_like(q, "ti.task_id", f->task_id_pattern);
    q_like(q, "ti.pool", f->pool_pattern);
    q_like(q, "ti.queue", f->queue_pattern);
    q_like(q, "ti.operator", f->operator_pattern);
    if (f->task_group) {
        /* members' ids are the group id, a dot, then their name (Airflow's prefix_group_id);
         * the prefix is compared with substr, not LIKE, so no character needs escaping */
        char *prefix = xasprintf("%s.", f->task_group);
        sb_append(&q->sql, " AND substr(ti.task_id, 1, ?) = ?");
        q_param(q, SP_I((int64_t)strlen(prefix)));
        q_param(q, SP_S(q_own(q, prefix)));
    }
}

int store_tiq_list(Store *s, const TiqFilter *f, TiqRow **out, size_t *n, int64_t *total)
{
    *out = NULL;
    *n = 0;
    Q q = {0};
    tiq_where(&q, f);
    if (total) {
        /* the version (a LEFT JOIN on its key: one row or none) changes no count; without it,
         * unless a filter names it, the count reads the instance index alone */
        char *sql = xasprintf("SELECT COUNT(*) %s%s", f->n_version_numbers ? TIQ_FROM : TIQ_FROM_RUN, sb_str(&q.sql));
        int rc = store_q_int(s, sql, q.p, q.np, 0, total);
        free(sql);
        if (rc != 0) {
            q_free(&q);
            return -1;
        }
    }
    sb_printf(&q.sql, " ORDER BY %s", f->order_sql ? f->order_sql : TIQ_COL_ID);
    if (f->limit >= 0) {
        sb_append(&q.sql, " LIMIT ? OFFSET ?");
        q_param(&q, SP_I(f->limit));
        q_param(&q, SP_I(f->offset > 0 ? f->offset : 0));
    } else if (f->offset > 0) {
        /* SQLite needs a LIMIT before an OFFSET; -1 means none there, PostgreSQL says ALL */
        sb_append(&q.sql, store_is_sqlite(s) ? " LIMIT -1 OFFSET ?" : " LIMIT ALL OFFSET ?");
        q_param(&q, SP_I(f->offset));
    }
    char *sql = xasprintf(TIQ_SELECT TIQ_FROM "%s", sb_str(&q.sql));
    StoreRows *r = store_q(s, sql, q.p, q.np);
    free(sql);
    q_free(&q);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        read_row(r, &(*out)[(*n)++]);
    }
    rows_free(r);
    return 0;
}

int store_tiq_get(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                  TiqRow *out)
{
    TiqFilter f;
    tiq_filter_init(&f);
    f.dag_id = dag_id;
    f.run_id = run_id;
    f.task_id = task_id;
    f.map_index = map_index;
    f.has_map_index = 1;
    f.limit = 1;
    TiqRow *rows;
    size_t n;
    if (store_tiq_list(s, &f, &rows, &n, NULL) != 0) return -1;
    if (n == 1) {
        *out = rows[0];
        free(rows);
        return 1;
    }
    tiq_rows_free(rows, n);
    return 0;
}

int store_tiq_set_note(Store *s, const char *ti_id, const char *note)
{
    int64_t n = 0;
    StoreParam p[] = {SP_S(note), SP_S(ti_id)};
    if (store_x(s, "UPDATE task_instance SET note = ? WHERE id = ?", p, 2, &n) != 0) return -1;
    return n > 0;
}

int store_tiq_run_state_counts(Store *s, const char *dag_id, const char *run_id, int64_t counts[TI__COUNT])
{
    memset(counts, 0, TI__COUNT * sizeof *counts);
    StoreParam p[] = {SP_S(dag_id), SP_S(run_id)};
    StoreRows *r =
        store_q(s, "SELECT state, COUNT(*) FROM task_instance WHERE dag_id = ? AND run_id = ? GROUP BY state", p, 2);
    if (!r) return -1;
    while (rows_next(r)) {
        int st = ti_state_parse(rows_isnull(r, 0) ? NULL : rows_text(r, 0));
        if (st >= 0) counts[st] += rows_int(r, 1);
    }
    rows_free(r);
    return 0;
}

/* ---- tries ----------------------------------------------------------------------------- */

void tiq_tries_free(TiqTry *t, size_t n)
{
    for (size_t i = 0; t && i < n; i++) {
        free(t[i].dag_id);
        free(t[i].run_id);
        free(t[i].task_id);
        free(t[i].hostname);
        free(t[i].queue);
        free(t[i].pool);
        free(t[i].operator_name);
    }
    free(t);
}

int store_tiq_history(Store *s, const char *ti_id, TiqTry **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    StoreParam p[] = {SP_S(ti_id)};
    StoreRows *r = store_q(s,
                           "SELECT ti_id, try_number, dag_id, run_id, task_id, map_index, state, max_tries, "
                           "start_date, end_date, duration, queued_at, hostname, pid, queue, pool, pool_slots, "
                           "priority_weight, operator FROM task_instance_history WHERE ti_id = ? "
                           "ORDER BY try_number",
                           p, 1);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        TiqTry *t = &(*out)[(*n)++];
        memset(t, 0, sizeof *t);
        util_strlcpy(t->ti_id, rows_text(r, 0), sizeof t->ti_id);
        t->try_number = (int)rows_int(r, 1);
        t->dag_id = opt_str(r, 2);
        t->run_id = opt_str(r, 3);
        t->task_id = opt_str(r, 4);
        t->map_index = (int)rows_int(r, 5);
        int st = ti_state_parse(rows_isnull(r, 6) ? NULL : rows_text(r, 6));
        t->state = st < 0 ? TI_NONE : (TiState)st;
        t->max_tries = (int)rows_int(r, 7);
        t->start_date = opt_int(r, 8);
        t->end_date = opt_int(r, 9);
        t->duration = opt_int(r, 10);
        t->queued_at = opt_int(r, 11);
        t->hostname = opt_str(r, 12);
        t->pid = (int)opt_int(r, 13);
        t->queue = opt_str(r, 14);
        t->pool = opt_str(r, 15);
        t->pool_slots = rows_isnull(r, 16) ? 1 : (int)rows_int(r, 16);
        t->priority_weight = (int)rows_int(r, 17);
        t->operator_name = opt_str(r, 18);
    }
    rows_free(r);
    return 0;
}

/* ---- XComs ----------------------------------------------------------------------------- */

void tiq_xcoms_free(TiqXcom *x, size_t n)
{
    for (size_t i = 0; x && i < n; i++) {
        free(x[i].x.dag_id);
        free(x[i].x.run_id);
        free(x[i].x.task_id);
        free(x[i].x.key);
        free(x[i].x.value);
        free(x[i].dag_version_id);
    }
    free(x);
}

#define XQ_FROM "FROM xcom x JOIN dag_run r ON r.dag_id = x.dag_id AND r.run_id = x.run_id "

static void xcom_where(Q *q, const TiqXcomFilter *f)
{
    sb_append(&q->sql, "WHERE 1 = 1");
    q_eq_text(q, "x.dag_id", f->dag_id);
    q_eq_text(q, "x.run_id", f->run_id);
    q_eq_text(q, "x.task_id", f->task_id);
    q_eq_text(q, "x.key", f->key);
    if (f->has_map_index) {
        sb_append(&q->sql, " AND x.map_index = ?");
        q_param(q, SP_I(f->map_index));
    }
    q_like(q, "x.key", f->key_pattern);
    q_like(q, "x.dag_id", f->dag_id_pattern);
    q_like(q, "x.run_id", f->run_id_pattern);
    q_like(q, "x.task_id", f->task_id_pattern);
}

int store_tiq_xcom_list(Store *s, const TiqXcomFilter *f, TiqXcom **out, size_t *n, int64_t *total)
{
    *out = NULL;
    *n = 0;
    Q q = {0};
    xcom_where(&q, f);
    if (total) {
        char *sql = xasprintf("SELECT COUNT(*) " XQ_FROM "%s", sb_str(&q.sql));
        int rc = store_q_int(s, sql, q.p, q.np, 0, total);
        free(sql);
        if (rc != 0) {
            q_free(&q);
            return -1;
        }
    }
    /* byte order on both engines, as store_xcom_list sorts keys */
    const char *c = store_is_sqlite(s) ? "" : " COLLATE \"C\"";
    sb_printf(&q.sql, " ORDER BY x.dag_id%s, x.run_id%s, x.task_id%s, x.map_index, x.key%s", c, c, c, c);
    if (f->limit >= 0) {
        sb_append(&q.sql, " LIMIT ? OFFSET ?");
        q_param(&q, SP_I(f->limit));
        q_param(&q, SP_I(f->offset > 0 ? f->offset : 0));
    }
    char *sql = xasprintf("SELECT x.dag_id, x.run_id, x.task_id, x.map_index, x.key, %s, x.timestamp, "
                          "r.logical_date, r.run_after, r.dag_version_id " XQ_FROM "%s",
                          f->with_value ? "x.value" : "NULL", sb_str(&q.sql));
    StoreRows *r = store_q(s, sql, q.p, q.np);
    free(sql);
    q_free(&q);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        TiqXcom *x = &(*out)[(*n)++];
        memset(x, 0, sizeof *x);
        x->x.dag_id = opt_str(r, 0);
        x->x.run_id = opt_str(r, 1);
        x->x.task_id = opt_str(r, 2);
        x->x.map_index = (int)rows_int(r, 3);
        x->x.key = opt_str(r, 4);
        x->x.value = opt_str(r, 5);
        x->x.timestamp = rows_int(r, 6);
        x->logical_date = opt_int(r, 7);
        x->run_after = rows_int(r, 8);
        x->dag_version_id = opt_str(r, 9);
    }
    rows_free(r);
    return 0;
}

int store_tiq_xcom_insert(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                          const char *key, const char *value)
{
    int64_t n = 0;
    StoreParam p[] = {SP_S(dag_id), SP_S(run_id), SP_S(task_id), SP_I(map_index),
                      SP_S(key),    SP_S(value),  SP_I(util_now_us())};
    if (store_x(s,
                "INSERT INTO xcom (dag_id, run_id, task_id, map_index, key, value, timestamp) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dag_id, run_id, task_id, map_index, key) DO NOTHING",
                p, 7, &n) != 0)
        return -1;
    return n > 0;
}

int store_tiq_xcom_update(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                          const char *key, const char *value)
{
    int64_t n = 0;
    StoreParam p[] = {SP_S(value), SP_I(util_now_us()), SP_S(dag_id), SP_S(run_id), SP_S(task_id),
                      SP_I(map_index), SP_S(key)};
    if (store_x(s,
                "UPDATE xcom SET value = ?, timestamp = ? WHERE dag_id = ? AND run_id = ? AND task_id = ? "
                "AND map_index = ? AND key = ?",
                p, 7, &n) != 0)
        return -1;
    return n > 0;
}

int store_tiq_xcom_delete(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                          const char *key)
{
    int64_t n = 0;
    StoreParam p[] = {SP_S(dag_id), SP_S(run_id), SP_S(task_id), SP_I(map_index), SP_S(key)};
    if (store_x(s, "DELETE FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND map_index = ? AND key = ?",
                p, 5, &n) != 0)
        return -1;
    return n > 0;
}

/* ---- bulk changes ------------------------------------------------------------------------ */

typedef struct Mark {
    TiqChange *items;
    size_t n;
    TiState to;
    int moved;
} Mark;

static int mark_tx(Store *s, void *ud)
{
    Mark *m = ud;
    m->moved = 0; /* a retried transaction starts over */
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT COALESCE(state, 'none'), try_number FROM task_instance WHERE id = ?%s",
             store_sql(s->conn, STORE_SQL_FOR_UPDATE));
    for (size_t i = 0; i < m->n; i++) {
        TiqChange *c = &m->items[i];
        c->changed = 0;
        c->became = c->from;
        if (c->from == m->to) continue;
        /* Still as it was read? The row is locked until the commit (PostgreSQL; SQLite has
         * one writer), so a worker finishing this try either committed before — and the
         * instance is refused here — or waits and finds it no longer running: never both. */
        StoreParam k[] = {SP_S(c->id)};
        StoreRows *rows = store_q(s, sql, k, 1);
        if (!rows) return -1;
        int same = rows_next(rows) && strcmp(rows_text(rows, 0), ti_state_name(c->from)) == 0 &&
                   rows_int(rows, 1) == c->try_number;
        rows_free(rows);
        if (!same) continue;
        int r = store_ti_set_state(s, c->id, c->try_number, m->to, -1);
        if (r < 0) return -1;
        c->changed = r;
        c->became = r ? m->to : c->from;
        m->moved += r;
    }
    return 0;
}

int store_tiq_mark(Store *s, TiqChange *items, size_t n, TiState to, int *moved)
{
    Mark m = {items, n, to, 0};
    if (store_tx(s, mark_tx, &m) != 0) return -1;
    if (moved) *moved = m.moved;
    return 0;
}

typedef struct ClearRun {
    const char *dag_id, *run_id;
    TiqChange *items;
    size_t n;
    int reset_run;
    int cleared, requeued;
} ClearRun;

static int clear_run_tx(Store *s, void *ud)
{
    ClearRun *c = ud;
    c->cleared = c->requeued = 0;
    for (size_t i = 0; i < c->n; i++) {
        TiqChange *it = &c->items[i];
        it->changed = 0;
        it->became = it->from;
        if (it->from == TI_NONE || it->from == TI_RESTARTING) continue; /* nothing to clear */
        int r = store_ti_clear_for_rerun(s, it->id, it->from, it->try_number, it->retries, &it->became);
        if (r < 0) return -1;
        if (!r) it->became = it->from;
        it->changed = r;
        c->cleared += r;
    }
    if (c->cleared && c->reset_run) {
        /* Airflow: the runs of cleared instances are queued again (from success or failed;
         * a queued or running run simply carries on) */
        int changed = 0;
        if (store_run_set_state_in_tx(s, c->dag_id, c->run_id, RUN_QUEUED, &changed) != 0) return -1;
        c->requeued = changed;
    }
    return 0;
}

int store_tiq_clear_run(Store *s, const char *dag_id, const char *run_id, TiqChange *items, size_t n,
                        int reset_run, int *cleared, int *requeued)
{
    ClearRun c = {dag_id, run_id, items, n, reset_run, 0, 0};
    if (store_tx(s, clear_run_tx, &c) != 0) return -1;
    if (cleared) *cleared = c.cleared;
    if (requeued) *requeued = c.requeued;
    return 0;
}
