/* dagquery — the REST API's reads over DAGs (see dagquery.h).
 *
 * Statements are built from fixed fragments plus `?` placeholders; every value a caller
 * gives is a bound parameter. The few engine differences are chosen per Store: the JSON
 * functions that read a version's display name (json_extract / ->>), how a tag list is
 * unnested (json_each / json_array_elements_text), substring search (instr / strpos), and
 * sorting text bytewise on PostgreSQL (COLLATE "C") so both engines list in the same order.
 *
 * The DAG list reads no JSON: what it shows from the serialised DAG (display name, schedule
 * kind, max_consecutive_failed_dag_runs, task concurrency limits) is copied onto the dag row
 * by store_dag_sync. Parsing every listed DAG's version made a page of 100 cost ~12 ms of
 * database time on PostgreSQL (each ::json cast parses the document again). */
#include "store/dagquery.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/kv.h"
#include "store/sqlbuild.h"
#include "store/ti.h"

/* ---- building statements ------------------------------------------------------------------ */

static int sqlite(const Store *s) { return store_is_sqlite(s); }
static const char *bytewise(const Store *s) { return sqlite(s) ? "" : " COLLATE \"C\""; }

/* Search patterns as Airflow's: the caller's \ escapes the next character (a trailing lone one
 * matches itself, as an escape with nothing after it is an error on PostgreSQL), and "~"
 * (Airflow's alias for everything) adds nothing. Every WHERE here starts " WHERE 1 = 1", so
 * each condition opens with " AND ". */
#define DAGQ_PATTERN (SQLB_PAT_BACKSLASH_ESCAPES | SQLB_PAT_TILDE_ALL)
_Static_assert(DAGQ_UNSET == SQLB_UNSET, "a time bound left out is sqlbuild's");

/* ---- a version's display name (versions keep their own; the dag row has the latest's) ----- */

static void json_display_name(StrBuf *b, const Store *s, const char *a, const char *dag_id_col)
{
    if (sqlite(s))
        sb_printf(b, "COALESCE(json_extract(%s.data, '$.display_name'), %s)", a, dag_id_col);
    else
        sb_printf(b, "COALESCE(%s.data::json ->> 'display_name', %s)", a, dag_id_col);
}

/* ---- the DAG list ------------------------------------------------------------------------- */

void dagq_filter_init(DagqFilter *f)
{
    memset(f, 0, sizeof *f);
    f->paused = f->has_import_errors = f->has_asset_schedule = -1;
    f->run_start_gte = f->run_start_gt = f->run_start_lte = f->run_start_lt = DAGQ_UNSET;
    f->run_end_gte = f->run_end_gt = f->run_end_lte = f->run_end_lt = DAGQ_UNSET;
}

void dagq_row_clear(DagqRow *r)
{
    if (!r) return;
    free(r->dag_id);
    free(r->display_name);
    free(r->fileloc);
    free(r->owners);
    free(r->tags);
    free(r->description);
    free(r->timetable_summary);
    free(r->timezone);
    free(r->schedule_kind);
    free(r->latest_version_id);
    memset(r, 0, sizeof *r);
}

void dagq_rows_free(DagqRow *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) dagq_row_clear(&rows[i]);
    free(rows);
}

const char *const dagq_order_names[] = {
    "dag_id", "dag_display_name", "next_dagrun", "state", "start_date", "last_run_state", "last_run_start_date",
    NULL,
};

/* state/start_date are the last run's (alias lr), as on Airflow's DAG list. */
/* next_dagrun (the logical date) when the scheduler recorded it, else when the next run
 * may be created: both grow together, so the order is the same */
#define NEXT_RUN                                                                                               \
    "COALESCE(d.next_dagrun, CASE WHEN d.next_dagrun_create_after > 253402300799999999 THEN NULL "            \
    "ELSE d.next_dagrun_create_after END)"
#define DISPLAY_NAME "COALESCE(d.display_name, d.dag_id)"
static const char *const order_sqlite[] = {
    "d.dag_id", DISPLAY_NAME, NEXT_RUN, "lr.state", "lr.start_date", "lr.state", "lr.start_date", NULL,
};
static const char *const order_pg[] = {
    "d.dag_id COLLATE \"C\"", DISPLAY_NAME " COLLATE \"C\"", NEXT_RUN, "lr.state", "lr.start_date", "lr.state",
    "lr.start_date", NULL,
};

const char *const *dagq_order_columns(const Store *s) { return sqlite(s) ? order_sqlite : order_pg; }

/* "(expr IS NULL), expr DIR" from api_order_by's "expr DIR": NULLs last both ways (SQLite
 * puts them first ascending, PostgreSQL last), so the engines agree. */
static void order_nulls_last(StrBuf *b, const char *order_sql)
{
    const char *sp = strrchr(order_sql, ' ');
    if (!sp) {
        sb_append(b, order_sql);
        return;
    }
    /* the id and the display name are never NULL: leaving the test out lets SQLite walk the
     * primary key for the default order instead of sorting */
    size_t len = (size_t)(sp - order_sql);
    static const char *const never_null[] = {"d.dag_id", "d.dag_id COLLATE \"C\"", DISPLAY_NAME,
                                             DISPLAY_NAME " COLLATE \"C\""};
    for (size_t i = 0; i < sizeof never_null / sizeof never_null[0]; i++)
        if (strlen(never_null[i]) == len && strncmp(order_sql, never_null[i], len) == 0) {
            sb_append(b, order_sql);
            return;
        }
    sb_printf(b, "(%.*s IS NULL), %s", (int)len, order_sql, order_sql);
}

/* The DAG's last run: its latest run (by run_after) that has started, as Airflow's list
 * takes its latest run with a start_date. */
#define LAST_RUN_JOIN                                                                                          \
    " LEFT JOIN dag_run lr ON lr.id = (SELECT r2.id FROM dag_run r2 WHERE r2.dag_id = d.dag_id"               \
    " AND r2.start_date IS NOT NULL ORDER BY r2.run_after DESC, r2.id DESC LIMIT 1)"
#define HAS_IMPORT_ERRORS "EXISTS (SELECT 1 FROM import_error ie WHERE ie.filename = d.fileloc)"

/* FROM ... WHERE ... for f, with its parameters. */
static void dag_from_where(const Store *s, const DagqFilter *f, const char *order_sql, StrBuf *q, SqlbParams *p)
{
    SqlbWhere w = {0};
    int need_lr = 0;
    if (order_sql && strstr(order_sql, "lr.")) need_lr = 1;

    sb_append(&w.sql, " WHERE 1 = 1");
    if (f->match_none) sb_append(&w.sql, " AND 1 = 0");
    if (f->dag_id) {
        sb_append(&w.sql, " AND d.dag_id = ?");
        sqlb_text(&w.p, f->dag_id);
    }
    if (f->exclude_stale) sb_append(&w.sql, " AND d.is_active = 1");
    if (f->paused >= 0) {
        sb_append(&w.sql, " AND d.is_paused = ?");
        sqlb_int(&w.p, f->paused ? 1 : 0);
    }
    /* tags: the column is a JSON array of strings written by cJSON; "tag" (JSON-escaped)
     * right after [ or , is exactly one element (an unescaped quote inside a string would
     * have ended it) */
    if (f->n_tags) {
        sb_append(&w.sql, " AND (");
        for (size_t i = 0; i < f->n_tags; i++) {
            cJSON *js = cJSON_CreateString(f->tags[i]);
            char *quoted = cJSON_PrintUnformatted(js);
            cJSON_Delete(js);
            const char *fn = sqlite(s) ? "instr" : "strpos";
            sb_printf(&w.sql, "%s(%s(d.tags, ?) > 0 OR %s(d.tags, ?) > 0)", i ? (f->tags_all ? " AND " : " OR ") : "",
                      fn, fn);
            sqlb_own(&w.p, xasprintf("[%s", quoted ? quoted : "\"\""));
            sqlb_own(&w.p, xasprintf(",%s", quoted ? quoted : "\"\""));
            free(quoted);
        }
        sb_append(&w.sql, ")");
    }
    if (f->n_owners) {
        sb_append(&w.sql, " AND (");
        for (size_t i = 0; i < f->n_owners; i++) {
            sb_printf(&w.sql, "%sLOWER(d.owners) LIKE LOWER(?) ESCAPE '\\'", i ? " OR " : "");
            sqlb_own(&w.p, sqlb_like_literal(f->owners[i]));
        }
        sb_append(&w.sql, ")");
    }
    sqlb_pattern(&w, "d.dag_id", f->dag_id_pattern, DAGQ_PATTERN);
    sqlb_pattern(&w, DISPLAY_NAME, f->display_name_pattern, DAGQ_PATTERN);
    if (f->has_import_errors >= 0) sb_printf(&w.sql, " AND %s" HAS_IMPORT_ERRORS, f->has_import_errors ? "" : "NOT ");
    if (f->has_asset_schedule >= 0)
        sb_printf(&w.sql, " AND %sEXISTS (SELECT 1 FROM dag_schedule_asset_reference ar WHERE ar.dag_id = d.dag_id)",
                  f->has_asset_schedule ? "" : "NOT ");
    if (f->asset_dependency) {
        SqlbWhere a = {0};
        sb_append(&a.sql, " WHERE ar.dag_id = d.dag_id");
        size_t bare = a.sql.len;
        sqlb_pattern(&a, "COALESCE(a.name, '') || ' ' || a.uri", f->asset_dependency, DAGQ_PATTERN);
        if (a.sql.len > bare) {
            sb_printf(&w.sql,
                      " AND EXISTS (SELECT 1 FROM dag_schedule_asset_reference ar JOIN asset a ON a.id = ar.asset_id%s)",
                      sb_str(&a.sql));
            sqlb_params_take(&w.p, &a.p);
        }
        sqlb_where_free(&a);
    }
    if (f->last_run_state) {
        need_lr = 1;
        sb_append(&w.sql, " AND lr.state = ?");
        sqlb_text(&w.p, f->last_run_state);
    }
    if (f->n_run_states) {
        need_lr = 1;
        sqlb_in(&w, "lr.state", f->run_states, f->n_run_states, 0);
    }
    size_t before = w.sql.len;
    sqlb_cmp(&w, "lr.start_date", ">=", f->run_start_gte);
    sqlb_cmp(&w, "lr.start_date", ">", f->run_start_gt);
    sqlb_cmp(&w, "lr.start_date", "<=", f->run_start_lte);
    sqlb_cmp(&w, "lr.start_date", "<", f->run_start_lt);
    sqlb_cmp(&w, "lr.end_date", ">=", f->run_end_gte);
    sqlb_cmp(&w, "lr.end_date", ">", f->run_end_gt);
    sqlb_cmp(&w, "lr.end_date", "<=", f->run_end_lte);
    sqlb_cmp(&w, "lr.end_date", "<", f->run_end_lt);
    if (w.sql.len != before) need_lr = 1;

    sb_append(q, " FROM dag d");
    if (need_lr) sb_append(q, LAST_RUN_JOIN);
    sb_append(q, sb_str(&w.sql));
    sqlb_params_take(p, &w.p);
    sqlb_where_free(&w);
}

/* The columns read_dag_row reads, in its order: the row and whether its file has an import
 * error now (DAG_ROW_HEAD), the total (a subquery, 18), then what store_dag_sync copied from
 * the serialised DAG (DAG_ROW_TAIL). */
#define DAG_ROW_HEAD                                                                                           \
    "d.dag_id, d.is_paused, d.is_active, d.fileloc, d.owners, d.tags, d.description, d.timetable_summary, "   \
    "d.timezone, d.max_active_runs, d.max_active_tasks, d.latest_version_id, d.last_parsed_time, "             \
    "d.next_dagrun, d.next_dagrun_data_interval_start, d.next_dagrun_data_interval_end, "                      \
    "d.next_dagrun_create_after, " HAS_IMPORT_ERRORS
#define DAG_ROW_TAIL                                                                                           \
    DISPLAY_NAME ", d.max_consecutive_failed_dag_runs, d.schedule_kind, d.has_task_concurrency_limits"

static int64_t col_time(StoreRows *r, int c) { return sqlb_col_int(r, c, -1); }

/* Columns: DAG_ROW_HEAD, the total, DAG_ROW_TAIL. */
static void read_dag_row(StoreRows *r, DagqRow *d)
{
    memset(d, 0, sizeof *d);
    d->dag_id = sqlb_col_str(r, 0);
    d->is_paused = (int)rows_int(r, 1);
    d->is_active = (int)rows_int(r, 2);
    d->fileloc = sqlb_col_str(r, 3);
    d->owners = sqlb_col_str(r, 4);
    d->tags = sqlb_col_str(r, 5);
    d->description = sqlb_col_str(r, 6);
    d->timetable_summary = sqlb_col_str(r, 7);
    d->timezone = sqlb_col_str(r, 8);
    d->max_active_runs = (int)rows_int(r, 9);
    d->max_active_tasks = (int)rows_int(r, 10);
    d->latest_version_id = sqlb_col_str(r, 11);
    d->last_parsed_time = col_time(r, 12);
    d->next_dagrun = col_time(r, 13);
    d->next_dagrun_data_interval_start = col_time(r, 14);
    d->next_dagrun_data_interval_end = col_time(r, 15);
    d->next_dagrun_create_after = col_time(r, 16);
    /* the scheduler writes INT64_MAX for "no run will ever be due" */
    if (d->next_dagrun_create_after > DAGQ_LAST_TIME) d->next_dagrun_create_after = -1;
    d->has_import_errors = (int)rows_int(r, 17);
    /* 18: total */
    d->display_name = sqlb_col_str(r, 19);
    if (!d->display_name) d->display_name = xstrdup(d->dag_id);
    d->max_consecutive_failed_dag_runs = rows_isnull(r, 20) ? 0 : (int)rows_int(r, 20);
    d->schedule_kind = sqlb_col_str(r, 21);
    d->has_task_concurrency_limits = (int)rows_int(r, 22);
    if (!d->owners) d->owners = xstrdup("");
    if (!d->tags) d->tags = xstrdup("[]");
    if (!d->timezone) d->timezone = xstrdup("UTC");
}

int store_dagq_list(Store *s, const DagqFilter *f, const char *order_sql, int limit, int offset, DagqRow **out,
                    size_t *n, int64_t *total)
{
    *out = NULL;
    *n = 0;
    *total = 0;
    if (!order_sql || !*order_sql) order_sql = sqlite(s) ? "d.dag_id ASC" : "d.dag_id COLLATE \"C\" ASC";
    SqlbParams p = {0};
    StrBuf from = {0}, again = {0}, order = {0}, q = {0};
    /* the filter's parameters twice, in text order: the count's, then the page's */
    dag_from_where(s, f, order_sql, &from, &p);
    size_t nfilter = p.n;
    dag_from_where(s, f, order_sql, &again, &p);
    sb_free(&again);
    order_nulls_last(&order, order_sql);
    /* ties by dag_id, unless that is the order already (a repeated term costs SQLite a sort) */
    if (strncmp(order_sql, "d.dag_id ", 9) != 0) sb_printf(&order, ", d.dag_id%s ASC", bytewise(s));

    /* One statement, no JSON. The total is a scalar subquery rather than COUNT(*) OVER ():
     * a window makes SQLite copy every matching row into a temporary table (~1 ms for 1,000
     * DAGs, five times the whole query otherwise), and without it the default order can
     * walk the primary key and stop at the page. */
    sb_printf(&q, "SELECT " DAG_ROW_HEAD ", (SELECT COUNT(*)%s), " DAG_ROW_TAIL "%s ORDER BY %s LIMIT ? OFFSET ?",
              sb_str(&from), sb_str(&from), sb_str(&order));
    sqlb_page(&p, limit, offset);

    int rc = 0;
    StoreRows *r = store_q(s, sb_str(&q), p.v, (int)p.n);
    if (!r) {
        rc = -1;
    } else {
        size_t cap = 0;
        while (rows_next(r)) {
            *out = sqlb_grow(*out, *n, &cap, sizeof **out);
            read_dag_row(r, &(*out)[*n]);
            *total = rows_int(r, 18);
            (*n)++;
        }
        rows_free(r);
    }
    /* an empty page (past the end, or limit 0) has no row to carry the total */
    if (rc == 0 && *n == 0 && (offset > 0 || limit == 0)) {
        StrBuf c = {0};
        sb_printf(&c, "SELECT COUNT(*)%s", sb_str(&from));
        if (store_q_int(s, sb_str(&c), p.v, (int)nfilter, 0, total) != 0) rc = -1;
        sb_free(&c);
    }
    if (rc != 0) {
        dagq_rows_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    sb_free(&from);
    sb_free(&order);
    sb_free(&q);
    sqlb_params_free(&p);
    return rc;
}

int store_dagq_get(Store *s, const char *dag_id, DagqRow *out)
{
    DagqFilter f;
    dagq_filter_init(&f);
    f.dag_id = dag_id;
    DagqRow *rows = NULL;
    size_t n = 0;
    int64_t total = 0;
    if (store_dagq_list(s, &f, NULL, 1, 0, &rows, &n, &total) != 0) return -1;
    if (n == 0) {
        free(rows);
        return 0;
    }
    *out = rows[0];
    free(rows);
    return 1;
}

/* ---- pausing, deleting ---------------------------------------------------------------------- */

typedef struct Pause {
    const char *const *ids;
    size_t n;
    int paused;
} Pause;

#define IN_BATCH 200

static int pause_tx(Store *s, void *ud)
{
    Pause *pa = ud;
    for (size_t at = 0; at < pa->n; at += IN_BATCH) {
        size_t k = pa->n - at < IN_BATCH ? pa->n - at : IN_BATCH;
        SqlbWhere q = {0};
        sb_append(&q.sql, "UPDATE dag SET is_paused = ? WHERE 1 = 1");
        sqlb_int(&q.p, pa->paused ? 1 : 0);
        sqlb_in(&q, "dag_id", pa->ids + at, k, 0);
        int rc = store_x(s, sb_str(&q.sql), q.p.v, q.p.n, NULL);
        sqlb_where_free(&q);
        if (rc != 0) return -1;
    }
    for (size_t i = 0; i < pa->n; i++)
        if (store_notify(s, pa->ids[i]) != 0) return -1;
    return 0;
}

int store_dagq_set_paused(Store *s, const char *const *dag_ids, size_t n, int paused)
{
    if (!n) return 0;
    Pause pa = {dag_ids, n, paused};
    return store_tx(s, pause_tx, &pa);
}

typedef struct Delete {
    const char *dag_id;
    int result;
} Delete;

static int delete_tx(Store *s, void *ud)
{
    Delete *d = ud;
    StoreParam id[] = {SP_S(d->dag_id)};
    int64_t exists = 0, running = 0;
    d->result = 0;
    if (store_q_int(s, "SELECT COUNT(*) FROM dag WHERE dag_id = ?", id, 1, 0, &exists) != 0) return -1;
    if (!exists) return 0;
    if (store_q_int(s, "SELECT COUNT(*) FROM task_instance WHERE dag_id = ? AND state = 'running'", id, 1, 0,
                    &running) != 0)
        return -1;
    if (running) {
        d->result = 2;
        return 0;
    }
    /* children first: not every table has a foreign key to cascade along */
    static const char *const steps[] = {
        "DELETE FROM task_log WHERE ti_id IN (SELECT id FROM task_instance WHERE dag_id = ?)",
        "DELETE FROM outbox WHERE ti_id IN (SELECT id FROM task_instance WHERE dag_id = ?)",
        "DELETE FROM task_instance_history WHERE dag_id = ?",
        "DELETE FROM xcom WHERE dag_id = ?",
        "DELETE FROM task_instance WHERE dag_id = ?",
        "DELETE FROM dag_run WHERE dag_id = ?",
        "DELETE FROM asset_dag_run_queue WHERE target_dag_id = ?",
        "DELETE FROM dag_schedule_asset_reference WHERE dag_id = ?",
        "DELETE FROM dag_version WHERE dag_id = ?",
        "DELETE FROM dag WHERE dag_id = ?",
    };
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (store_x(s, steps[i], id, 1, NULL) != 0) return -1;
    d->result = 1;
    return store_notify(s, d->dag_id);
}

int store_dagq_delete(Store *s, const char *dag_id)
{
    Delete d = {dag_id, 0};
    if (store_tx(s, delete_tx, &d) != 0) return -1;
    return d.result;
}

int store_dagq_active_runs(Store *s, const char *dag_id, int64_t *count)
{
    StoreParam p[] = {SP_S(dag_id)};
    return store_q_int(s, "SELECT COUNT(*) FROM dag_run WHERE dag_id = ? AND state IN ('queued', 'running')", p, 1, 0,
                       count);
}

/* ---- dagStats --------------------------------------------------------------------------- */

void store_dagq_stats_free(DagqStats *st, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(st[i].dag_id);
        free(st[i].display_name);
    }
    free(st);
}

int store_dagq_stats(Store *s, const char *const *dag_ids, size_t n_ids, DagqStats **out, size_t *n)
{
    static const char *const states[] = {"queued", "running", "success", "failed"};
    *out = NULL;
    *n = 0;
    SqlbWhere q = {0};
    /* count per (dag, state) first, then join each group to its DAG once */
    sb_append(&q.sql, "SELECT g.dag_id, g.state, g.n, COALESCE(d.display_name, g.dag_id) FROM (SELECT r.dag_id, "
                  "r.state, COUNT(*) AS n FROM dag_run r WHERE 1 = 1");
    sqlb_in(&q, "r.dag_id", dag_ids, n_ids, 0);
    sb_printf(&q.sql, " GROUP BY r.dag_id, r.state) g JOIN dag d ON d.dag_id = g.dag_id ORDER BY g.dag_id%s",
              bytewise(s));
    StoreRows *r = store_q(s, sb_str(&q.sql), q.p.v, q.p.n);
    sqlb_where_free(&q);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        const char *id = rows_text(r, 0), *state = rows_text(r, 1);
        if (!*n || strcmp((*out)[*n - 1].dag_id, id) != 0) {
            *out = sqlb_grow(*out, *n, &cap, sizeof **out);
            DagqStats *st = &(*out)[(*n)++];
            memset(st, 0, sizeof *st);
            st->dag_id = xstrdup(id);
            st->display_name = sqlb_col_str(r, 3);
            if (!st->display_name) st->display_name = xstrdup(id);
        }
        for (int i = 0; i < 4; i++)
            if (state && strcmp(state, states[i]) == 0) (*out)[*n - 1].count[i] = rows_int(r, 2);
    }
    rows_free(r);
    return 0;
}

/* ---- dagTags ---------------------------------------------------------------------------- */

void store_dagq_strings_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

int store_dagq_tags(Store *s, const char *pattern, int desc, int limit, int offset, char ***names, size_t *n,
                    int64_t *total)
{
    *names = NULL;
    *n = 0;
    *total = 0;
    SqlbWhere w = {0};
    StrBuf q = {0};
    sb_append(&w.sql, " WHERE 1 = 1");
    const char *name = sqlite(s) ? "t.value" : "t.name";
    const char *unnest = sqlite(s) ? "json_each(d.tags) t" : "json_array_elements_text(d.tags::json) AS t(name)";
    sqlb_pattern(&w, name, pattern, DAGQ_PATTERN);
    sb_append(&q, "SELECT x.name, COUNT(*) OVER () FROM (SELECT DISTINCT ");
    sb_printf(&q, "%s AS name FROM dag d CROSS JOIN %s%s) x ORDER BY x.name%s %s LIMIT ? OFFSET ?", name,
              unnest, sb_str(&w.sql), bytewise(s), desc ? "DESC" : "ASC");
    int nfilter = w.p.n;
    sqlb_page(&w.p, limit, offset);
    int rc = 0;
    StoreRows *r = store_q(s, sb_str(&q), w.p.v, w.p.n);
    if (!r) {
        rc = -1;
    } else {
        size_t cap = 0;
        while (rows_next(r)) {
            *names = sqlb_grow(*names, *n, &cap, sizeof **names);
            (*names)[(*n)++] = xstrdup(rows_text(r, 0) ? rows_text(r, 0) : "");
            *total = rows_int(r, 1);
        }
        rows_free(r);
    }
    if (rc == 0 && *n == 0 && (offset > 0 || limit == 0)) {
        StrBuf c = {0};
        sb_printf(&c, "SELECT COUNT(*) FROM (SELECT DISTINCT %s AS name FROM dag d CROSS JOIN %s%s) x",
                  name, unnest, sb_str(&w.sql));
        if (store_q_int(s, sb_str(&c), w.p.v, nfilter, 0, total) != 0) rc = -1;
        sb_free(&c);
    }
    if (rc != 0) {
        store_dagq_strings_free(*names, *n);
        *names = NULL;
        *n = 0;
    }
    sb_free(&q);
    sqlb_where_free(&w);
    return rc;
}

/* ---- import errors ------------------------------------------------------------------------ */

const char *const dagq_import_error_order_names[] = {
    "id", "timestamp", "filename", "bundle_name", "stacktrace", "import_error_id", NULL,
};
/* gust has one bundle (the DAG folder): ordering by bundle_name is ordering by id */
static const char *const ie_order_sqlite[] = {
    "ie.id", "ie.timestamp", "ie.filename", "ie.id", "ie.stacktrace", "ie.id", NULL,
};
static const char *const ie_order_pg[] = {
    "ie.id", "ie.timestamp", "ie.filename COLLATE \"C\"", "ie.id", "ie.stacktrace COLLATE \"C\"", "ie.id", NULL,
};
const char *const *dagq_import_error_order_columns(const Store *s) { return sqlite(s) ? ie_order_sqlite : ie_order_pg; }

static int read_import_errors(StoreRows *r, StoreImportErrorList *out, int64_t *total)
{
    size_t cap = 0;
    while (rows_next(r)) {
        out->items = sqlb_grow(out->items, out->n, &cap, sizeof *out->items);
        StoreImportError *e = &out->items[out->n++];
        e->id = rows_int(r, 0);
        e->filename = sqlb_col_str(r, 1);
        e->message = sqlb_col_str(r, 2);
        e->timestamp = rows_int(r, 3);
        if (total) *total = rows_int(r, 4);
    }
    rows_free(r);
    return 0;
}

int store_dagq_import_errors(Store *s, const char *pattern, const char *order_sql, int limit, int offset,
                             StoreImportErrorList *out, int64_t *total)
{
    memset(out, 0, sizeof *out);
    *total = 0;
    if (!order_sql || !*order_sql) order_sql = "ie.id ASC";
    SqlbWhere w = {0};
    StrBuf q = {0};
    sb_append(&w.sql, " WHERE 1 = 1");
    sqlb_pattern(&w, "ie.filename", pattern, DAGQ_PATTERN);
    sb_printf(&q,
              "SELECT ie.id, ie.filename, ie.stacktrace, ie.timestamp, COUNT(*) OVER () FROM import_error ie"
              "%s ORDER BY %s, ie.id ASC LIMIT ? OFFSET ?",
              sb_str(&w.sql), order_sql);
    int nfilter = w.p.n;
    sqlb_page(&w.p, limit, offset);
    int rc = 0;
    StoreRows *r = store_q(s, sb_str(&q), w.p.v, w.p.n);
    if (!r)
        rc = -1;
    else
        read_import_errors(r, out, total);
    if (rc == 0 && out->n == 0 && (offset > 0 || limit == 0)) {
        if (sqlb_count(s, "import_error ie", sb_str(&w.sql), &w.p, nfilter, total) != 0) rc = -1;
    }
    if (rc != 0) store_import_error_list_free(out);
    sb_free(&q);
    sqlb_where_free(&w);
    return rc;
}

int store_dagq_import_error_get(Store *s, int64_t id, StoreImportErrorList *out)
{
    memset(out, 0, sizeof *out);
    StoreParam p[] = {SP_I(id)};
    StoreRows *r = store_q(s, "SELECT id, filename, stacktrace, timestamp, 1 FROM import_error WHERE id = ?", p, 1);
    if (!r) return -1;
    read_import_errors(r, out, NULL);
    return out->n > 0;
}

/* ---- DAG versions ------------------------------------------------------------------------- */

void store_dagq_versions_free(DagqVersion *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].dag_id);
        free(v[i].display_name);
    }
    free(v);
}

const char *const dagq_version_order_names[] = {"id", "version_number", "bundle_name", "bundle_version", NULL};
/* no bundles in gust: ordering by them is ordering by id (creation order) */
static const char *const version_order[] = {"v.id", "v.version_number", "v.id", "v.id", NULL};
const char *const *dagq_version_order_columns(const Store *s)
{
    (void)s;
    return version_order;
}

/* Columns: id, dag_id, version_number, created_at, total, display name. */
static void read_version(StoreRows *r, DagqVersion *v)
{
    memset(v, 0, sizeof *v);
    util_strlcpy(v->id, rows_text(r, 0) ? rows_text(r, 0) : "", sizeof v->id);
    v->dag_id = sqlb_col_str(r, 1);
    v->version_number = (int)rows_int(r, 2);
    v->created_at = rows_int(r, 3);
    v->display_name = sqlb_col_str(r, 5);
    if (!v->display_name) v->display_name = xstrdup(v->dag_id ? v->dag_id : "");
}

int store_dagq_versions(Store *s, const char *dag_id, int version_number, const char *order_sql, int limit,
                        int offset, DagqVersion **out, size_t *n, int64_t *total)
{
    *out = NULL;
    *n = 0;
    *total = 0;
    if (!order_sql || !*order_sql) order_sql = "v.id ASC";
    SqlbWhere w = {0};
    StrBuf q = {0};
    sb_append(&w.sql, " WHERE 1 = 1");
    sqlb_eq(&w, "v.dag_id", dag_id, 0);
    if (version_number > 0) sqlb_cmp(&w, "v.version_number", "=", version_number);
    /* the page first; only its rows read their JSON for the display name */
    sb_append(&q, "SELECT pv.id, pv.dag_id, pv.version_number, pv.created_at, pv.total, ");
    json_display_name(&q, s, "vv", "pv.dag_id");
    sb_printf(&q,
              " FROM (SELECT v.id, v.dag_id, v.version_number, v.created_at, COUNT(*) OVER () AS total, "
              "ROW_NUMBER() OVER (ORDER BY %s, v.id ASC) AS rn FROM dag_version v%s ORDER BY %s, v.id ASC "
              "LIMIT ? OFFSET ?) pv JOIN dag_version vv ON vv.id = pv.id ORDER BY pv.rn",
              order_sql, sb_str(&w.sql), order_sql);
    int nfilter = w.p.n;
    sqlb_page(&w.p, limit, offset);
    int rc = 0;
    StoreRows *r = store_q(s, sb_str(&q), w.p.v, w.p.n);
    if (!r) {
        rc = -1;
    } else {
        size_t cap = 0;
        while (rows_next(r)) {
            *out = sqlb_grow(*out, *n, &cap, sizeof **out);
            read_version(r, &(*out)[(*n)++]);
            *total = rows_int(r, 4);
        }
        rows_free(r);
    }
    if (rc == 0 && *n == 0 && (offset > 0 || limit == 0)) {
        if (sqlb_count(s, "dag_version v", sb_str(&w.sql), &w.p, nfilter, total) != 0) rc = -1;
    }
    if (rc != 0) {
        store_dagq_versions_free(*out, *n);
        *out = NULL;
        *n = 0;
    }
    sb_free(&q);
    sqlb_where_free(&w);
    return rc;
}

int store_dagq_version_get(Store *s, const char *dag_id, int version_number, DagqVersion *out)
{
    StrBuf q = {0};
    sb_append(&q, "SELECT v.id, v.dag_id, v.version_number, v.created_at, 1, ");
    json_display_name(&q, s, "v", "v.dag_id");
    sb_append(&q, " FROM dag_version v WHERE v.dag_id = ?");
    StoreParam p[] = {SP_S(dag_id), SP_I(version_number)};
    if (version_number > 0)
        sb_append(&q, " AND v.version_number = ?");
    else
        sb_append(&q, " ORDER BY v.version_number DESC LIMIT 1");
    StoreRows *r = store_q(s, sb_str(&q), p, version_number > 0 ? 2 : 1);
    sb_free(&q);
    if (!r) return -1;
    int found = rows_next(r);
    if (found) read_version(r, out);
    rows_free(r);
    return found;
}

/* ---- the grid ------------------------------------------------------------------------------ */

void store_dagq_grid_runs_free(DagqGridRun *runs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(runs[i].run_id);
        free(runs[i].state);
        free(runs[i].run_type);
    }
    free(runs);
}

int store_dagq_grid_runs(Store *s, const char *dag_id, int limit, int offset, DagqGridRun **out, size_t *n,
                         int64_t *total)
{
    *out = NULL;
    *n = 0;
    *total = 0;
    StoreParam id[] = {SP_S(dag_id)};
    /* the index dag_run_dag_after (dag_id, run_after) gives both the order and the count */
    StrBuf q = {0};
    sb_printf(&q,
              "SELECT r.run_id, r.state, r.run_type, r.logical_date, r.run_after, r.start_date, r.end_date "
              "FROM dag_run r WHERE r.dag_id = ? ORDER BY r.run_after DESC, r.run_id%s DESC LIMIT ? OFFSET ?",
              bytewise(s));
    StoreParam p[] = {SP_S(dag_id), SP_I(limit), SP_I(offset)};
    StoreRows *r = store_q(s, sb_str(&q), p, 3);
    sb_free(&q);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        DagqGridRun *x = &(*out)[(*n)++];
        x->run_id = sqlb_col_str(r, 0);
        x->state = sqlb_col_str(r, 1);
        x->run_type = sqlb_col_str(r, 2);
        x->logical_date = col_time(r, 3);
        x->run_after = col_time(r, 4);
        x->start_date = col_time(r, 5);
        x->end_date = col_time(r, 6);
    }
    rows_free(r);
    if (store_q_int(s, "SELECT COUNT(*) FROM dag_run WHERE dag_id = ?", id, 1, 0, total) != 0) {
        store_dagq_grid_runs_free(*out, *n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    return 0;
}

/* A name and where it sits in the caller's array, sorted by name to be found by bsearch. */
typedef struct Slot {
    const char *name;
    size_t at;
} Slot;

static int slot_cmp(const void *a, const void *b)
{
    return strcmp(((const Slot *)a)->name, ((const Slot *)b)->name);
}

static long slot_find(const Slot *v, size_t n, const char *name)
{
    if (!name) return -1;
    Slot key = {name, 0};
    const Slot *hit = bsearch(&key, v, n, sizeof *v, slot_cmp);
    return hit ? (long)hit->at : -1;
}

int store_dagq_grid_cells(Store *s, const char *dag_id, const DagqGridRun *runs, size_t n_runs,
                          const char *const *task_ids, size_t n_tasks, signed char *states, int *try_numbers)
{
    for (size_t i = 0; i < n_runs * n_tasks; i++) {
        states[i] = -1;
        try_numbers[i] = -1;
    }
    if (!n_runs || !n_tasks) return 0;
    /* only the four columns the grid shows, for the page's runs by id (not by page again:
     * a run created between the two statements would shift the page) */
    SqlbParams p = {0};
    StrBuf q = {0};
    sb_append(&q, "SELECT ti.run_id, ti.task_id, ti.state, ti.try_number FROM task_instance ti WHERE ti.dag_id = ? "
                  "AND ti.map_index = -1");
    sqlb_text(&p, dag_id);
    sb_append(&q, " AND ti.run_id IN (");
    for (size_t i = 0; i < n_runs; i++) {
        sb_append(&q, i ? ", ?" : "?");
        sqlb_text(&p, runs[i].run_id);
    }
    sb_append(&q, ")");
    StoreRows *r = store_q(s, sb_str(&q), p.v, (int)p.n);
    sb_free(&q);
    sqlb_params_free(&p);
    if (!r) return -1;
    Slot *by_run = xcalloc(n_runs, sizeof *by_run), *by_task = xcalloc(n_tasks, sizeof *by_task);
    for (size_t i = 0; i < n_runs; i++) by_run[i] = (Slot){runs[i].run_id ? runs[i].run_id : "", i};
    for (size_t i = 0; i < n_tasks; i++) by_task[i] = (Slot){task_ids[i], i};
    qsort(by_run, n_runs, sizeof *by_run, slot_cmp);
    qsort(by_task, n_tasks, sizeof *by_task, slot_cmp);
    while (rows_next(r)) {
        long ri = slot_find(by_run, n_runs, rows_text(r, 0));
        long ti = slot_find(by_task, n_tasks, rows_text(r, 1));
        if (ri < 0 || ti < 0) continue; /* a task the DAG no longer has */
        int st = ti_state_parse(rows_text(r, 2));
        size_t at = (size_t)ri * n_tasks + (size_t)ti;
        states[at] = (signed char)(st < 0 ? TI_NONE : st);
        try_numbers[at] = (int)rows_int(r, 3);
    }
    rows_free(r);
    free(by_run);
    free(by_task);
    return 0;
}
