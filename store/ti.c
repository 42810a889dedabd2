/* ti — task instances: state machine, creation, transitions, claim, outbox (see ti.h). */
#include "store/ti.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/journal.h"

static const char *const NAMES[TI__COUNT] = {
    "none",    "scheduled",         "queued",  "running",         "success", "failed",
    "up_for_retry", "up_for_reschedule", "skipped", "upstream_failed", "removed", "restarting",
};

const char *ti_state_name(TiState s)
{
    return (unsigned)s < TI__COUNT ? NAMES[s] : "none";
}

int ti_state_parse(const char *name)
{
    if (!name) return TI_NONE;
    for (int i = 0; i < TI__COUNT; i++)
        if (strcmp(NAMES[i], name) == 0) return i;
    return -1;
}

int ti_state_is_finished(TiState s)
{
    return s == TI_SUCCESS || s == TI_FAILED || s == TI_SKIPPED || s == TI_UPSTREAM_FAILED || s == TI_REMOVED;
}

#define B(s) (1u << (s))
/* For each target state, the states it may be reached from. A person (API, CLI) may mark
 * any instance success or failed and may clear any instance back to none; the machine
 * itself moves only along the path of one try. */
static const unsigned FROM[TI__COUNT] = {
    [TI_NONE] = ~0u & ~B(TI_NONE),
    [TI_SCHEDULED] = B(TI_NONE) | B(TI_UP_FOR_RETRY) | B(TI_UP_FOR_RESCHEDULE) | B(TI_QUEUED) | B(TI_RESTARTING),
    [TI_QUEUED] = B(TI_SCHEDULED),
    [TI_RUNNING] = B(TI_QUEUED),
    [TI_SUCCESS] = ~0u & ~B(TI_SUCCESS),
    [TI_FAILED] = ~0u & ~B(TI_FAILED),
    [TI_UP_FOR_RETRY] = B(TI_RUNNING) | B(TI_QUEUED) | B(TI_RESTARTING),
    [TI_UP_FOR_RESCHEDULE] = B(TI_RUNNING),
    [TI_SKIPPED] = B(TI_NONE) | B(TI_SCHEDULED) | B(TI_RUNNING) | B(TI_UP_FOR_RESCHEDULE),
    [TI_UPSTREAM_FAILED] = B(TI_NONE) | B(TI_SCHEDULED) | B(TI_UP_FOR_RETRY),
    [TI_REMOVED] = ~0u & ~B(TI_REMOVED) & ~B(TI_RUNNING),
    [TI_RESTARTING] = B(TI_RUNNING) | B(TI_QUEUED),
};

int ti_transition_allowed(TiState from, TiState to)
{
    if ((unsigned)from >= TI__COUNT || (unsigned)to >= TI__COUNT) return 0;
    return (FROM[to] & B(from)) != 0;
}

/* Single-row guards compare GUARD, not the bare column. Why: with stale statistics (a
 * state that was rare a moment ago is common now) PostgreSQL may drive
 * "WHERE id = ? AND state = 'scheduled'" through the index on state and scan every
 * scheduled row for each update; an expression over the column cannot use that index, so
 * the primary key is always the access path. COALESCE also gives NULL its name, "none". */
#define GUARD "COALESCE(state, 'none')"

/* GUARD " IN ('a','b')": the names are our constants, never user input, so building this
 * fragment from them is not building SQL from values. */
static void from_clause(StrBuf *b, TiState to)
{
    int first = 1;
    sb_append(b, GUARD " IN (");
    for (int i = 0; i < TI__COUNT; i++) {
        if (!(FROM[to] & B(i))) continue;
        sb_printf(b, "%s'%s'", first ? "" : ", ", NAMES[i]);
        first = 0;
    }
    sb_append(b, ")");
}

void ti_clear(TaskInstance *t)
{
    if (!t) return;
    free(t->dag_id);
    free(t->run_id);
    free(t->task_id);
    free(t->hostname);
    free(t->worker_id);
    free(t->queue);
    free(t->pool);
    free(t->operator_name);
    free(t->dag_version_id);
    memset(t, 0, sizeof *t);
}

void ti_list_free(TaskInstance *list, size_t n)
{
    for (size_t i = 0; i < n; i++) ti_clear(&list[i]);
    free(list);
}

static int64_t opt_int(StoreRows *r, int c)
{
    return rows_isnull(r, c) ? -1 : rows_int(r, c);
}

static char *opt_str(StoreRows *r, int c)
{
    return rows_isnull(r, c) ? NULL : xstrdup(rows_text(r, c));
}

void store_ti_read_row(StoreRows *r, TaskInstance *t)
{
    memset(t, 0, sizeof *t);
    util_strlcpy(t->id, rows_text(r, 0), sizeof t->id);
    t->dag_id = opt_str(r, 1);
    t->run_id = opt_str(r, 2);
    t->task_id = opt_str(r, 3);
    t->map_index = (int)rows_int(r, 4);
    int st = ti_state_parse(rows_isnull(r, 5) ? NULL : rows_text(r, 5));
    t->state = st < 0 ? TI_NONE : (TiState)st;
    t->try_number = (int)rows_int(r, 6);
    t->max_tries = (int)rows_int(r, 7);
    t->start_date = opt_int(r, 8);
    t->end_date = opt_int(r, 9);
    t->duration = opt_int(r, 10);
    t->queued_at = opt_int(r, 11);
    t->scheduled_at = opt_int(r, 12);
    t->next_attempt_at = opt_int(r, 13);
    t->last_heartbeat_at = opt_int(r, 14);
    t->hostname = opt_str(r, 15);
    t->worker_id = opt_str(r, 16);
    t->pid = (int)opt_int(r, 17);
    t->queue = opt_str(r, 18);
    t->pool = opt_str(r, 19);
    t->pool_slots = (int)rows_int(r, 20);
    t->priority_weight = (int)rows_int(r, 21);
    t->operator_name = opt_str(r, 22);
    t->dag_version_id = opt_str(r, 23);
    t->first_poke_at = opt_int(r, 24);
}

int store_ti_insert(Store *s, const char *dag_id, const char *run_id, const char *dag_version_id,
                    const TiSpec *specs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char id[33];
        store_new_id(id);
        StoreParam p[] = {SP_S(id),
                          SP_S(dag_id),
                          SP_S(run_id),
                          SP_S(specs[i].task_id),
                          SP_I(specs[i].max_tries),
                          SP_S(specs[i].queue ? specs[i].queue : "default"),
                          SP_S(specs[i].pool ? specs[i].pool : "default_pool"),
                          SP_I(specs[i].pool_slots > 0 ? specs[i].pool_slots : 1),
                          SP_I(specs[i].priority_weight),
                          SP_S(specs[i].operator_name),
                          SP_S(dag_version_id)};
        if (store_x(s,
                    "INSERT INTO task_instance (id, dag_id, run_id, task_id, map_index, state, try_number, max_tries, "
                    "queue, pool, pool_slots, priority_weight, operator, dag_version_id) "
                    "VALUES (?, ?, ?, ?, -1, NULL, 0, ?, ?, ?, ?, ?, ?, ?)",
                    p, 11, NULL) != 0)
            return -1;
    }
    return 0;
}

int store_ti_get(Store *s, const char *id, TaskInstance *out)
{
    StoreParam p[] = {SP_S(id)};
    StoreRows *r = store_q(s, "SELECT " STORE_TI_COLUMNS " FROM task_instance WHERE id = ?", p, 1);
    if (!r) return -1;
    int found = rows_next(r);
    if (found) store_ti_read_row(r, out);
    rows_free(r);
    return found;
}

int store_ti_get_by_key(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                        TaskInstance *out)
{
    StoreParam p[] = {SP_S(dag_id), SP_S(run_id), SP_S(task_id), SP_I(map_index)};
    StoreRows *r = store_q(s,
                           "SELECT " STORE_TI_COLUMNS " FROM task_instance WHERE dag_id = ? AND run_id = ? AND task_id = ? "
                           "AND map_index = ?",
                           p, 4);
    if (!r) return -1;
    int found = rows_next(r);
    if (found) store_ti_read_row(r, out);
    rows_free(r);
    return found;
}

static int read_ti_list(StoreRows *r, TaskInstance **out, size_t *n);

int store_ti_list_run(Store *s, const char *dag_id, const char *run_id, TaskInstance **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    StoreParam p[] = {SP_S(dag_id), SP_S(run_id)};
    StoreRows *r = store_q(s,
                           "SELECT " STORE_TI_COLUMNS " FROM task_instance WHERE dag_id = ? AND run_id = ? "
                           "ORDER BY task_id, map_index",
                           p, 2);
    if (!r) return -1;
    return read_ti_list(r, out, n);
}

/* Says why a guarded update changed nothing, for the caller's message. */
static void explain_refusal(Store *s, const char *id, int try_number, TiState to)
{
    TaskInstance t;
    int found = store_ti_get(s, id, &t);
    if (found <= 0)
        store_set_error(s, "task instance %s does not exist", id);
    else if (try_number >= 0 && t.try_number != try_number)
        store_set_error(s, "task instance %s (%s) is on try %d, not %d", id, t.task_id, t.try_number, try_number);
    else
        store_set_error(s, "task instance %s (%s) is %s; it cannot become %s", id, t.task_id, ti_state_name(t.state),
                        ti_state_name(to));
    if (found > 0) ti_clear(&t);
}

typedef struct SetState {
    const char *id;
    int try_number;
    TiState to;
    int64_t next_attempt_at;
    int moved;
    int from_running; /* a try ending: only from running, whatever a person could do */
} SetState;

/* The UPDATE for one transition; the caller runs it inside a transaction. */
static int set_state_sql(Store *s, SetState *st)
{
    int64_t now = util_now_us();
    StrBuf sql = {0};
    StoreParam p[8];
    int np = 0;
    sb_append(&sql, "UPDATE task_instance SET state = ?");
    p[np++] = st->to == TI_NONE ? SP_NIL : SP_S(ti_state_name(st->to));
    switch (st->to) {
    case TI_SCHEDULED:
        sb_append(&sql, ", scheduled_at = ?, next_attempt_at = NULL");
        p[np++] = SP_I(now);
        break;
    case TI_QUEUED:
        sb_append(&sql, ", queued_at = ?");
        p[np++] = SP_I(now);
        break;
    case TI_UP_FOR_RETRY:
    case TI_UP_FOR_RESCHEDULE:
        sb_append(&sql, ", next_attempt_at = ?, end_date = ?, hostname = NULL, worker_id = NULL, pid = NULL");
        p[np++] = st->next_attempt_at >= 0 ? SP_I(st->next_attempt_at) : SP_NIL;
        p[np++] = SP_I(now);
        break;
    case TI_NONE:
        /* cleared: the next try starts from scratch */
        sb_append(&sql, ", next_attempt_at = NULL, hostname = NULL, worker_id = NULL, pid = NULL, "
                        "start_date = NULL, end_date = NULL, duration = NULL, first_poke_at = NULL");
        break;
    default:
        if (ti_state_is_finished(st->to)) {
            sb_append(&sql, ", end_date = ?, duration = CASE WHEN start_date IS NULL THEN NULL ELSE ? - start_date END, "
                            "next_attempt_at = NULL");
            p[np++] = SP_I(now);
            p[np++] = SP_I(now);
        }
        break;
    }
    /* a try that ends forgets when its sensor first poked: the next try times out from its
     * own first poke (one statement with the transition, not a second UPDATE) */
    if (st->from_running) sb_append(&sql, ", first_poke_at = NULL");
    sb_append(&sql, " WHERE id = ? AND ");
    p[np++] = SP_S(st->id);
    if (st->from_running)
        sb_append(&sql, GUARD " = 'running'");
    else
        from_clause(&sql, st->to);
    if (st->try_number >= 0) {
        sb_append(&sql, " AND try_number = ?");
        p[np++] = SP_I(st->try_number);
    }
    int64_t n = 0;
    int rc = store_x(s, sb_str(&sql), p, np, &n);
    sb_free(&sql);
    if (rc != 0) return -1;
    st->moved = n > 0;
    return st->moved ? store_journal_ti(s, now, st->id) : 0;
}

static int set_state_tx(Store *s, void *ud)
{
    SetState *st = ud;
    if (set_state_sql(s, st) != 0) return -1;
    if (st->moved) return store_notify(s, st->id);
    return 0;
}

int store_ti_set_state(Store *s, const char *id, int try_number, TiState to, int64_t next_attempt_at)
{
    SetState st = {id, try_number, to, next_attempt_at, 0, 0};
    if (store_tx(s, set_state_tx, &st) != 0) return -1;
    if (!st.moved) explain_refusal(s, id, try_number, to);
    return st.moved;
}

typedef struct Enqueue {
    const char *id;
    int priority;
    int moved;
} Enqueue;

static int enqueue_tx(Store *s, void *ud)
{
    Enqueue *e = ud;
    int64_t now = util_now_us(), n = 0;
    StoreParam p[] = {SP_I(now), SP_S(e->id)};
    if (store_x(s,
                "UPDATE task_instance SET state = 'queued', queued_at = ?, try_number = try_number + 1 "
                "WHERE id = ? AND " GUARD " = 'scheduled'",
                p, 2, &n) != 0)
        return -1;
    e->moved = n > 0;
    if (!e->moved) return 0;
    if (store_journal_ti(s, now, e->id) != 0) return -1;
    StoreParam q[] = {SP_I(e->priority), SP_I(now), SP_S(e->id)};
    return store_x(s,
                   "INSERT INTO outbox (ti_id, try_number, queue, priority, created_at) "
                   "SELECT id, try_number, queue, ?, ? FROM task_instance WHERE id = ?",
                   q, 3, NULL);
}

int store_ti_enqueue(Store *s, const char *id, int priority)
{
    Enqueue e = {id, priority, 0};
    if (store_tx(s, enqueue_tx, &e) != 0) return -1;
    if (!e.moved) explain_refusal(s, id, -1, TI_QUEUED);
    return e.moved;
}

typedef struct Claim {
    const char *id;
    int try_number;
    const char *hostname;
    const char *worker_id;
    int pid;
    int won;
} Claim;

static int claim_tx(Store *s, void *ud)
{
    Claim *c = ud;
    int64_t now = util_now_us(), n = 0;
    StoreParam p[] = {SP_I(now), SP_I(now), SP_S(c->hostname), SP_S(c->worker_id), SP_I(c->pid), SP_I(now),
                      SP_S(c->id), SP_I(c->try_number)};
    if (store_x(s,
                "UPDATE task_instance SET state = 'running', start_date = ?, last_heartbeat_at = ?, hostname = ?, "
                "worker_id = ?, pid = ?, end_date = NULL, duration = NULL, first_poke_at = COALESCE(first_poke_at, ?) "
                "WHERE id = ? AND try_number = ? AND " GUARD " = 'queued'",
                p, 8, &n) != 0)
        return -1;
    c->won = n > 0;
    if (!c->won) return 0;
    if (store_journal_ti(s, now, c->id) != 0) return -1;
    /* a claimed try no longer needs publishing, whatever the publisher is doing */
    StoreParam q[] = {SP_S(c->id), SP_I(c->try_number)};
    if (store_x(s, "DELETE FROM outbox WHERE ti_id = ? AND try_number = ?", q, 2, NULL) != 0) return -1;
    return store_notify(s, c->id);
}

int store_ti_claim(Store *s, const char *id, int try_number, const char *hostname, const char *worker_id, int pid)
{
    Claim c = {id, try_number, hostname, worker_id, pid, 0};
    if (store_tx(s, claim_tx, &c) != 0) return -1;
    if (!c.won) explain_refusal(s, id, try_number, TI_RUNNING);
    return c.won;
}

int store_ti_heartbeat(Store *s, const char *id, int try_number)
{
    int64_t n = 0;
    StoreParam p[] = {SP_I(util_now_us()), SP_S(id), SP_I(try_number)};
    if (store_x(s, "UPDATE task_instance SET last_heartbeat_at = ? WHERE id = ? AND try_number = ? AND " GUARD " = 'running'",
                p, 3, &n) != 0)
        return -1;
    return n > 0;
}

typedef struct Finish {
    SetState st;
    int restarted; /* the try ended while the instance was restarting: it became up_for_retry */
} Finish;

static int finish_tx(Store *s, void *ud)
{
    Finish *f = ud;
    if (f->st.to == TI_UP_FOR_RESCHEDULE) {
        /* the try goes on at the next poke: no history row, same try number once queued */
        int64_t n = 0, now0 = util_now_us();
        StoreParam r0[] = {f->st.next_attempt_at >= 0 ? SP_I(f->st.next_attempt_at) : SP_NIL, SP_I(now0),
                           SP_S(f->st.id), SP_I(f->st.try_number)};
        if (store_x(s,
                    "UPDATE task_instance SET state = 'up_for_reschedule', next_attempt_at = ?, end_date = ?, "
                    "try_number = try_number - 1, hostname = NULL, worker_id = NULL, pid = NULL "
                    "WHERE id = ? AND try_number = ? AND " GUARD " = 'running'",
                    r0, 4, &n) != 0)
            return -1;
        f->st.moved = n > 0;
        if (n > 0) return store_journal_ti(s, now0, f->st.id) == 0 ? store_notify(s, f->st.id) : -1;
        /* not running (restarting?): fall through to the general path */
    }
    /* the history row is written first, from the row as it stands, so it records the try
     * that ends; the guarded UPDATE below decides whether it really ends */
    int64_t now = util_now_us();
    StoreParam h[] = {SP_S(ti_state_name(f->st.to)), SP_I(now), SP_I(now), SP_S(f->st.id), SP_I(f->st.try_number)};
    if (store_x(s,
                "INSERT INTO task_instance_history (ti_id, try_number, dag_id, run_id, task_id, map_index, state, "
                "max_tries, start_date, end_date, duration, queued_at, hostname, worker_id, pid, queue, pool, "
                "pool_slots, priority_weight, operator) "
                "SELECT id, try_number, dag_id, run_id, task_id, map_index, ?, max_tries, start_date, ?, "
                "CASE WHEN start_date IS NULL THEN NULL ELSE ? - start_date END, queued_at, hostname, worker_id, pid, "
                "queue, pool, pool_slots, priority_weight, operator FROM task_instance "
                "WHERE id = ? AND try_number = ? AND " GUARD " IN ('running', 'restarting')",
                h, 5, NULL) != 0)
        return -1;
    /* Cleared while it ran (restarting): whatever the try's outcome, the instance runs
     * again, at once, as Airflow does with a cleared running task. */
    int64_t restarted = 0;
    StoreParam r[] = {SP_I(now), SP_I(now), SP_S(f->st.id), SP_I(f->st.try_number)};
    if (store_x(s,
                "UPDATE task_instance SET state = 'up_for_retry', next_attempt_at = ?, end_date = ?, "
                "hostname = NULL, worker_id = NULL, pid = NULL "
                "WHERE id = ? AND try_number = ? AND " GUARD " = 'restarting'",
                r, 4, &restarted) != 0)
        return -1;
    if (restarted) {
        f->st.moved = 1;
        f->restarted = 1;
        if (store_journal_ti(s, now, f->st.id) != 0) return -1;
        return store_notify(s, f->st.id);
    }
    if (set_state_sql(s, &f->st) != 0) return -1;
    if (!f->st.moved) return 0;
    return store_notify(s, f->st.id);
}

int store_ti_finish(Store *s, const char *id, int try_number, TiState to, int64_t next_attempt_at)
{
    if (!(to == TI_SUCCESS || to == TI_FAILED || to == TI_SKIPPED || to == TI_UP_FOR_RETRY ||
          to == TI_UP_FOR_RESCHEDULE)) {
        store_set_error(s, "a try cannot finish as %s", ti_state_name(to));
        return 0;
    }
    Finish f = {{id, try_number, to, next_attempt_at, 0, 1}, 0};
    if (store_tx(s, finish_tx, &f) != 0) return -1;
    if (!f.st.moved) explain_refusal(s, id, try_number, to);
    return f.st.moved;
}

/* ---- outbox -------------------------------------------------------------------------- */

typedef struct Take {
    int max;
    int64_t lease_us;
    OutboxItem *items;
    size_t n;
} Take;

static int take_tx(Store *s, void *ud)
{
    Take *t = ud;
    int64_t now = util_now_us();
    outbox_free(t->items, t->n); /* a retried transaction starts over */
    t->items = NULL;
    t->n = 0;
    StrBuf sql = {0};
    sb_printf(&sql, "SELECT ti_id, try_number, queue, priority FROM outbox WHERE taken_until < ? "
                    "ORDER BY created_at LIMIT ?%s", store_sql(s->conn, STORE_SQL_SKIP_LOCKED));
    StoreParam p[] = {SP_I(now), SP_I(t->max)};
    StoreRows *r = store_q(s, sb_str(&sql), p, 2);
    sb_free(&sql);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        if (t->n == cap) {
            cap = cap ? cap * 2 : 16;
            t->items = xrealloc(t->items, cap * sizeof *t->items);
        }
        OutboxItem *it = &t->items[t->n++];
        util_strlcpy(it->ti_id, rows_text(r, 0), sizeof it->ti_id);
        it->try_number = (int)rows_int(r, 1);
        it->queue = xstrdup(rows_text(r, 2));
        it->priority = (int)rows_int(r, 3);
    }
    rows_free(r);
    /* the lease, one statement per chunk of 64 rows (row values: (ti, try) pairs), padded to
     * a power of two with the last pair so that few SQL texts are prepared */
    for (size_t at = 0; at < t->n; at += 64) {
        size_t n = t->n - at < 64 ? t->n - at : 64, k = 1;
        while (k < n) k <<= 1;
        sb_append(&sql, "UPDATE outbox SET taken_until = ? WHERE (ti_id, try_number) IN (VALUES ");
        StoreParam *q = xcalloc(2 * k + 1, sizeof *q);
        q[0] = SP_I(now + t->lease_us);
        for (size_t i = 0; i < k; i++) {
            const OutboxItem *it = &t->items[at + (i < n ? i : n - 1)];
            sb_append(&sql, i ? ", (?, CAST(? AS BIGINT))" : "(?, CAST(? AS BIGINT))");
            q[1 + 2 * i] = SP_S(it->ti_id);
            q[2 + 2 * i] = SP_I(it->try_number);
        }
        sb_append(&sql, ")");
        int rc = store_x(s, sb_str(&sql), q, (int)(2 * k + 1), NULL);
        sb_free(&sql);
        free(q);
        if (rc != 0) return -1;
    }
    return 0;
}

int store_outbox_take(Store *s, int max, int64_t lease_us, OutboxItem **out, size_t *n)
{
    Take t = {max, lease_us, NULL, 0};
    if (store_tx(s, take_tx, &t) != 0) {
        outbox_free(t.items, t.n);
        *out = NULL;
        *n = 0;
        return -1;
    }
    *out = t.items;
    *n = t.n;
    return 0;
}

int store_outbox_done(Store *s, const char *ti_id, int try_number)
{
    StoreParam p[] = {SP_S(ti_id), SP_I(try_number)};
    return store_x(s, "DELETE FROM outbox WHERE ti_id = ? AND try_number = ?", p, 2, NULL);
}

void outbox_free(OutboxItem *items, size_t n)
{
    for (size_t i = 0; i < n; i++) free(items[i].queue);
    free(items);
}

static int read_ti_list(StoreRows *r, TaskInstance **out, size_t *n)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    while (rows_next(r)) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        store_ti_read_row(r, &(*out)[(*n)++]);
    }
    rows_free(r);
    return 0;
}

int store_ti_list_scheduled(Store *s, int limit, TaskInstance **out, size_t *n)
{
    StoreParam p[] = {SP_I(util_now_us()), SP_I(limit)};
    StoreRows *r = store_q(s,
                           "SELECT " STORE_TI_COLUMNS " FROM task_instance WHERE state = 'scheduled' "
                           "AND EXISTS (SELECT 1 FROM dag_run r WHERE r.dag_id = task_instance.dag_id "
                           "AND r.run_id = task_instance.run_id AND r.state = 'running') "
                           "AND (next_attempt_at IS NULL OR next_attempt_at <= ?) "
                           "ORDER BY priority_weight DESC, scheduled_at, id LIMIT ?",
                           p, 2);
    if (!r) {
        *out = NULL;
        *n = 0;
        return -1;
    }
    return read_ti_list(r, out, n);
}

int store_ti_count_active(Store *s, const char *dag_id, int64_t *count)
{
    if (dag_id) {
        StoreParam p[] = {SP_S(dag_id)};
        return store_q_int(s, "SELECT COUNT(*) FROM task_instance WHERE dag_id = ? AND state IN ('queued', 'running')",
                           p, 1, 0, count);
    }
    return store_q_int(s, "SELECT COUNT(*) FROM task_instance WHERE state IN ('queued', 'running')", NULL, 0, 0,
                       count);
}

int store_ti_count_active_task(Store *s, const char *dag_id, const char *task_id, int64_t *count)
{
    StoreParam p[] = {SP_S(dag_id), SP_S(task_id)};
    return store_q_int(s,
                       "SELECT COUNT(*) FROM task_instance WHERE dag_id = ? AND task_id = ? AND state IN "
                       "('queued', 'running')",
                       p, 2, 0, count);
}

typedef struct Stale {
    int64_t before;
    int count;
} Stale;

static int requeue_tx(Store *s, void *ud)
{
    Stale *st = ud;
    int64_t now = util_now_us(), n = 0;
    StoreParam p[] = {SP_I(now), SP_I(st->before)};
    if (store_x(s,
                "INSERT INTO outbox (ti_id, try_number, queue, priority, created_at) "
                "SELECT id, try_number, queue, priority_weight, ? FROM task_instance "
                "WHERE state = 'queued' AND queued_at < ? "
                "ON CONFLICT (ti_id, try_number) DO UPDATE SET taken_until = 0",
                p, 2, &n) != 0)
        return -1;
    st->count = (int)n;
    StoreParam q[] = {SP_I(now), SP_I(st->before)};
    return store_x(s, "UPDATE task_instance SET queued_at = ? WHERE state = 'queued' AND queued_at < ?", q, 2, NULL);
}

int store_ti_requeue_stale(Store *s, int64_t before)
{
    Stale st = {before, 0};
    if (store_tx(s, requeue_tx, &st) != 0) return -1;
    return st.count;
}

int store_ti_list_zombies(Store *s, int64_t before, TaskInstance **out, size_t *n)
{
    StoreParam p[] = {SP_I(before)};
    StoreRows *r = store_q(s,
                           "SELECT " STORE_TI_COLUMNS " FROM task_instance WHERE state IN ('running', 'restarting') "
                           "AND COALESCE(last_heartbeat_at, start_date, 0) < ?",
                           p, 1);
    if (!r) {
        *out = NULL;
        *n = 0;
        return -1;
    }
    return read_ti_list(r, out, n);
}

int64_t store_ti_next_attempt(Store *s)
{
    int64_t v = -1;
    store_q_int(s,
                "SELECT MIN(next_attempt_at) FROM task_instance "
                "WHERE state IN ('up_for_retry', 'up_for_reschedule', 'scheduled')",
                NULL, 0, -1, &v);
    return v;
}

/* ---- clearing: Airflow's clear_task_instances, one instance at a time ------------------ */

typedef struct ClearTi {
    const char *id;
    TiState from;
    int try_number;
    int retries;
    TiState became;
    int moved;
} ClearTi;

static int clear_ti_tx(Store *s, void *ud)
{
    ClearTi *c = ud;
    int64_t n = 0;
    c->moved = 0;
    if (c->from == TI_RUNNING) {
        /* Airflow: a running instance becomes restarting; its try is ended and retried */
        StoreParam p[] = {SP_S(c->id), SP_I(c->try_number)};
        if (store_x(s,
                    "UPDATE task_instance SET state = 'restarting' WHERE id = ? AND try_number = ? AND " GUARD
                    " = 'running'",
                    p, 2, &n) != 0)
            return -1;
        c->became = TI_RESTARTING;
    } else {
        /* none again, with its retries back: max_tries = try_number + retries */
        const char *tries = c->retries >= 0 ? "try_number + ?"
                                            : "CASE WHEN max_tries > try_number THEN max_tries ELSE try_number END";
        StrBuf sql = {0};
        sb_printf(&sql,
                  "UPDATE task_instance SET state = NULL, max_tries = %s, next_attempt_at = NULL, hostname = NULL, "
                  "worker_id = NULL, pid = NULL, start_date = NULL, end_date = NULL, duration = NULL "
                  "WHERE id = ? AND try_number = ? AND " GUARD " = ?",
                  tries);
        StoreParam p[4];
        int np = 0;
        if (c->retries >= 0) p[np++] = SP_I(c->retries);
        p[np++] = SP_S(c->id);
        p[np++] = SP_I(c->try_number);
        p[np++] = SP_S(ti_state_name(c->from));
        int rc = store_x(s, sb_str(&sql), p, np, &n);
        sb_free(&sql);
        if (rc != 0) return -1;
        c->became = TI_NONE;
        if (n > 0) {
            /* a queued try that was not claimed yet need not be published any more */
            StoreParam q[] = {SP_S(c->id)};
            if (store_x(s, "DELETE FROM outbox WHERE ti_id = ?", q, 1, NULL) != 0) return -1;
        }
    }
    c->moved = n > 0;
    if (!c->moved) return 0;
    if (store_journal_ti(s, util_now_us(), c->id) != 0) return -1;
    return store_notify(s, c->id);
}

int store_ti_clear_for_rerun(Store *s, const char *id, TiState from, int try_number, int retries, TiState *became)
{
    if (from == TI_NONE || from == TI_RESTARTING) {
        store_set_error(s, "task instance %s is %s: there is nothing to clear", id, ti_state_name(from));
        return 0;
    }
    ClearTi c = {id, from, try_number, retries, TI_NONE, 0};
    if (store_tx(s, clear_ti_tx, &c) != 0) return -1;
    if (!c.moved) {
        TaskInstance t;
        int found = store_ti_get(s, id, &t);
        if (found <= 0)
            store_set_error(s, "task instance %s does not exist", id);
        else
            store_set_error(s, "task instance %s (%s) changed meanwhile: it is %s on try %d", id, t.task_id,
                            ti_state_name(t.state), t.try_number);
        if (found > 0) ti_clear(&t);
    }
    if (became) *became = c.became;
    return c.moved;
}

typedef struct Defer {
    const char *id;
    int try_number;
    int64_t at;
    int moved;
} Defer;

static int defer_tx(Store *s, void *ud)
{
    Defer *d = ud;
    int64_t n = 0;
    StoreParam p[] = {SP_I(d->at), SP_S(d->id), SP_I(d->try_number)};
    if (store_x(s,
                "UPDATE task_instance SET state = 'scheduled', next_attempt_at = ?, try_number = try_number - 1 "
                "WHERE id = ? AND try_number = ? AND " GUARD " = 'queued'",
                p, 3, &n) != 0)
        return -1;
    d->moved = n > 0;
    if (!d->moved) return 0;
    if (store_journal_ti(s, util_now_us(), d->id) != 0) return -1;
    StoreParam q[] = {SP_S(d->id), SP_I(d->try_number)};
    if (store_x(s, "DELETE FROM outbox WHERE ti_id = ? AND try_number = ?", q, 2, NULL) != 0) return -1;
    return store_notify(s, d->id);
}

int store_ti_defer(Store *s, const char *id, int try_number, int64_t next_attempt_at)
{
    Defer d = {id, try_number, next_attempt_at, 0};
    if (store_tx(s, defer_tx, &d) != 0) return -1;
    if (!d.moved) explain_refusal(s, id, try_number, TI_SCHEDULED);
    return d.moved;
}
