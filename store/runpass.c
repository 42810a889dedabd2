/* runpass — the scheduler pass's reads of a run (see runpass.h). */
#include "store/runpass.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

void ti_brief_free(TiBrief *list, size_t n)
{
    for (size_t i = 0; i < n; i++) free(list[i].task_id);
    free(list);
}

/* Rows of (id, task_id, state, next_attempt_at). */
static int read_briefs(StoreRows *r, TiBrief **out, size_t *n)
{
    size_t cap = 0;
    while (rows_next(r)) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        TiBrief *b = &(*out)[(*n)++];
        util_strlcpy(b->id, rows_text(r, 0), sizeof b->id);
        b->task_id = xstrdup(rows_text(r, 1));
        int st = rows_isnull(r, 2) ? TI_NONE : ti_state_parse(rows_text(r, 2));
        b->state = st < 0 ? TI_REMOVED : (TiState)st;
        b->next_attempt_at = rows_isnull(r, 3) ? -1 : rows_int(r, 3);
    }
    rows_free(r);
    return 0;
}

static int query_briefs(Store *s, const char *where, const char *dag_id, const char *run_id, TiBrief **out,
                        size_t *n)
{
    *out = NULL;
    *n = 0;
    StrBuf sql = {0};
    sb_printf(&sql, "SELECT id, task_id, state, next_attempt_at FROM task_instance WHERE dag_id = ? AND run_id = ?%s",
              where);
    StoreParam p[] = {SP_S(dag_id), SP_S(run_id)};
    StoreRows *r = store_q(s, sb_str(&sql), p, 2);
    sb_free(&sql);
    if (!r) return -1;
    return read_briefs(r, out, n);
}

int store_run_candidates(Store *s, const char *dag_id, const char *run_id, TiBrief **out, size_t *n)
{
    /* state IS NULL and state IN (...) are two ranges of the (dag_id, run_id, state) index */
    return query_briefs(s, " AND (state IS NULL OR state IN ('up_for_retry', 'up_for_reschedule'))", dag_id,
                        run_id, out, n);
}

static int by_task_id(const void *a, const void *b)
{
    return strcmp(((const TiBrief *)a)->task_id, ((const TiBrief *)b)->task_id);
}

int store_run_states(Store *s, const char *dag_id, const char *run_id, TiBrief **out, size_t *n)
{
    if (query_briefs(s, "", dag_id, run_id, out, n) != 0) return -1;
    if (*n > 1) qsort(*out, *n, sizeof **out, by_task_id);
    return 0;
}

int store_run_in_states(Store *s, const char *dag_id, const char *run_id, unsigned states, TiBrief **out,
                        size_t *n)
{
    /* the names are our constants, never user input */
    StrBuf w = {0};
    int any = 0, none = (states & (1u << TI_NONE)) != 0;
    sb_append(&w, " AND (");
    if (none) sb_append(&w, "state IS NULL");
    for (int i = 0; i < TI__COUNT; i++) {
        if (i == TI_NONE || !(states & (1u << i))) continue;
        sb_printf(&w, "%s'%s'", any ? ", " : none ? " OR state IN (" : "state IN (", ti_state_name((TiState)i));
        any = 1;
    }
    if (any) sb_append(&w, ")");
    if (!any && !none) sb_append(&w, "1 = 0");
    sb_append(&w, ")");
    int rc = query_briefs(s, sb_str(&w), dag_id, run_id, out, n);
    sb_free(&w);
    return rc;
}

int store_run_has_unfinished(Store *s, const char *dag_id, const char *run_id)
{
    /* The unfinished states named, not "NOT IN (the finished ones)": equality on all three
     * columns of (dag_id, run_id, state) probes the index. With the negation PostgreSQL may
     * walk the run by task_id and read the heap until it meets an unfinished row, which in a
     * fan-out comes after thousands of finished ones (0.3 ms a pass). The names are our
     * constants. */
    StrBuf sql = {0};
    sb_append(&sql, "SELECT 1 FROM task_instance WHERE dag_id = ? AND run_id = ? AND state IS NULL UNION ALL "
                    "SELECT 1 FROM task_instance WHERE dag_id = ? AND run_id = ? AND state IN (");
    for (int i = 0, first = 1; i < TI__COUNT; i++) {
        if (i == TI_NONE || ti_state_is_finished((TiState)i)) continue;
        sb_printf(&sql, "%s'%s'", first ? "" : ", ", ti_state_name((TiState)i));
        first = 0;
    }
    sb_append(&sql, ") LIMIT 1");
    StoreParam p[] = {SP_S(dag_id), SP_S(run_id), SP_S(dag_id), SP_S(run_id)};
    StoreRows *r = store_q(s, sb_str(&sql), p, 4);
    sb_free(&sql);
    if (!r) return -1;
    int found = rows_next(r);
    rows_free(r);
    return found ? 1 : 0;
}

const TiBrief *ti_brief_find(const TiBrief *list, size_t n, const char *task_id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(list[mid].task_id, task_id);
        if (c == 0) return &list[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* "(?, ?, ...)" with k placeholders. */
static void placeholders(StrBuf *b, size_t k)
{
    sb_append(b, "(");
    for (size_t i = 0; i < k; i++) sb_append(b, i ? ", ?" : "?");
    sb_append(b, ")");
}

static size_t padded(size_t n)
{
    size_t k = 1;
    while (k < n) k <<= 1;
    return k;
}

typedef struct IdIdx {
    const char *id;
    size_t i;
} IdIdx;

static int by_id(const void *a, const void *b)
{
    return strcmp(((const IdIdx *)a)->id, ((const IdIdx *)b)->id);
}

/* Runs `sql_head` + " WHERE id IN (...) AND " + `guard` + " RETURNING id" over ids[0..n)
 * (n <= STORE_BATCH_MAX), params `pre` first; sets moved[] from the returned ids; then journals
 * the moved ones at `now`. The count moved, or -1. */
static int update_batch(Store *s, const char *sql_head, const char *guard, const StoreParam *pre, int npre,
                        const char *const *ids, size_t n, int *moved, int64_t now, const char **moved_ids)
{
    size_t k = padded(n);
    StrBuf sql = {0};
    sb_printf(&sql, "%s WHERE id IN ", sql_head);
    placeholders(&sql, k);
    sb_printf(&sql, " AND %s RETURNING id", guard);
    StoreParam *p = xcalloc(k + (size_t)npre, sizeof *p);
    for (int i = 0; i < npre; i++) p[i] = pre[i];
    for (size_t i = 0; i < k; i++) p[(size_t)npre + i] = SP_S(ids[i < n ? i : n - 1]);
    StoreRows *r = store_q(s, sb_str(&sql), p, (int)(k + (size_t)npre));
    sb_free(&sql);
    free(p);
    if (!r) return -1;
    IdIdx *idx = xcalloc(n, sizeof *idx);
    for (size_t i = 0; i < n; i++) idx[i] = (IdIdx){ids[i], i};
    qsort(idx, n, sizeof *idx, by_id);
    size_t count = 0;
    while (rows_next(r)) {
        IdIdx key = {rows_text(r, 0), 0};
        IdIdx *hit = bsearch(&key, idx, n, sizeof *idx, by_id);
        if (hit && !moved[hit->i]) {
            moved[hit->i] = 1;
            moved_ids[count++] = ids[hit->i];
        }
    }
    rows_free(r);
    free(idx);
    if (!count) return 0;
    /* the journal rows of exactly the instances this statement moved */
    k = padded(count);
    sb_append(&sql, "INSERT INTO state_event (ts, kind, dag_id, run_id, task_id, map_index, try_number, state) "
                    "SELECT ?, 'ti', dag_id, run_id, task_id, map_index, try_number, state FROM task_instance "
                    "WHERE id IN ");
    placeholders(&sql, k);
    p = xcalloc(k + 1, sizeof *p);
    p[0] = SP_I(now);
    for (size_t i = 0; i < k; i++) p[1 + i] = SP_S(moved_ids[i < count ? i : count - 1]);
    int rc = store_x(s, sb_str(&sql), p, (int)k + 1, NULL);
    sb_free(&sql);
    free(p);
    return rc != 0 ? -1 : (int)count;
}

typedef struct Many {
    const char *const *ids;
    size_t n;
    int *moved;
    int enqueue;
    int count;
} Many;

static int many_tx(Store *s, void *ud)
{
    Many *m = ud;
    int64_t now = util_now_us();
    m->count = 0;
    memset(m->moved, 0, m->n * sizeof *m->moved); /* a retried transaction starts over */
    const char **moved_ids = xcalloc(STORE_BATCH_MAX, sizeof *moved_ids);
    int rc = 0;
    for (size_t at = 0; at < m->n && rc == 0; at += STORE_BATCH_MAX) {
        size_t n = m->n - at < STORE_BATCH_MAX ? m->n - at : STORE_BATCH_MAX;
        StoreParam pre[] = {SP_I(now)};
        int c = m->enqueue
                    ? update_batch(s, "UPDATE task_instance SET state = 'queued', queued_at = ?, try_number = try_number + 1",
                                   "COALESCE(state, 'none') = 'scheduled'", pre, 1, m->ids + at, n, m->moved + at, now,
                                   moved_ids)
                    : update_batch(s, "UPDATE task_instance SET state = 'scheduled', scheduled_at = ?, next_attempt_at = NULL",
                                   "COALESCE(state, 'none') = 'none'", pre, 1, m->ids + at, n, m->moved + at, now,
                                   moved_ids);
        if (c < 0) {
            rc = -1;
            break;
        }
        m->count += c;
        if (c == 0 || !m->enqueue) continue;
        /* each new try's outbox row, in the same transaction (invariant: nothing is queued
         * that the publisher cannot find) */
        size_t k = padded((size_t)c);
        StrBuf sql = {0};
        sb_append(&sql, "INSERT INTO outbox (ti_id, try_number, queue, priority, created_at) "
                        "SELECT id, try_number, queue, priority_weight, ? FROM task_instance WHERE id IN ");
        placeholders(&sql, k);
        StoreParam *p = xcalloc(k + 1, sizeof *p);
        p[0] = SP_I(now);
        for (size_t i = 0; i < k; i++) p[1 + i] = SP_S(moved_ids[i < (size_t)c ? i : (size_t)c - 1]);
        if (store_x(s, sb_str(&sql), p, (int)k + 1, NULL) != 0) rc = -1;
        sb_free(&sql);
        free(p);
    }
    free(moved_ids);
    if (rc == 0 && m->count > 0) rc = store_notify(s, m->ids[0]);
    return rc;
}

static int update_many(Store *s, const char *const *ids, size_t n, int *moved, int enqueue)
{
    if (n == 0) return 0;
    Many m = {ids, n, moved, enqueue, 0};
    if (store_tx(s, many_tx, &m) != 0) return -1;
    return m.count;
}

int store_ti_schedule_many(Store *s, const char *const *ids, size_t n, int *moved)
{
    return update_many(s, ids, n, moved, 0);
}

int store_ti_enqueue_many(Store *s, const char *const *ids, size_t n, int *moved)
{
    return update_many(s, ids, n, moved, 1);
}

typedef struct DoneMany {
    const OutboxItem *items;
    size_t n;
} DoneMany;

static int done_many_tx(Store *s, void *ud)
{
    DoneMany *d = ud;
    for (size_t at = 0; at < d->n; at += STORE_BATCH_MAX) {
        size_t n = d->n - at < STORE_BATCH_MAX ? d->n - at : STORE_BATCH_MAX, k = padded(n);
        StrBuf sql = {0};
        /* row values: a confirmed (ti, try) must not delete a newer try's row */
        sb_append(&sql, "DELETE FROM outbox WHERE (ti_id, try_number) IN (VALUES ");
        for (size_t i = 0; i < k; i++) sb_append(&sql, i ? ", (?, CAST(? AS BIGINT))" : "(?, CAST(? AS BIGINT))");
        sb_append(&sql, ")");
        StoreParam *p = xcalloc(2 * k, sizeof *p);
        for (size_t i = 0; i < k; i++) {
            const OutboxItem *it = &d->items[at + (i < n ? i : n - 1)];
            p[2 * i] = SP_S(it->ti_id);
            p[2 * i + 1] = SP_I(it->try_number);
        }
        int rc = store_x(s, sb_str(&sql), p, (int)(2 * k), NULL);
        sb_free(&sql);
        free(p);
        if (rc != 0) return -1;
    }
    return 0;
}

int store_outbox_done_many(Store *s, const OutboxItem *items, size_t n)
{
    if (n == 0) return 0;
    DoneMany d = {items, n};
    return store_tx(s, done_many_tx, &d);
}
