/* journal — the state_event table (see journal.h). The writers sit on the hottest paths of
 * the store (every claim and every finish), so each is a single statement: a run's row from
 * values the caller already has, a task instance's row copied by primary key from the row
 * the caller just updated. */
#include "store/journal.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

void state_event_list_free(StateEvent *ev, size_t n)
{
    for (size_t i = 0; ev && i < n; i++) {
        free(ev[i].dag_id);
        free(ev[i].run_id);
        free(ev[i].task_id);
        free(ev[i].state);
    }
    free(ev);
}

int store_journal_run(Store *s, int64_t ts, const char *dag_id, const char *run_id, const char *state)
{
    StoreParam p[] = {SP_I(ts), SP_S(dag_id), SP_S(run_id), SP_S(state)};
    return store_x(s, "INSERT INTO state_event (ts, kind, dag_id, run_id, state) VALUES (?, 'run', ?, ?, ?)", p, 4,
                   NULL);
}

int store_journal_ti(Store *s, int64_t ts, const char *ti_id)
{
    StoreParam p[] = {SP_I(ts), SP_S(ti_id)};
    return store_x(s,
                   "INSERT INTO state_event (ts, kind, dag_id, run_id, task_id, map_index, try_number, state) "
                   "SELECT ?, 'ti', dag_id, run_id, task_id, map_index, try_number, state FROM task_instance "
                   "WHERE id = ?",
                   p, 2, NULL);
}

static char *opt_str(StoreRows *r, int c)
{
    return rows_isnull(r, c) ? NULL : xstrdup(rows_text(r, c));
}

int store_journal_since(Store *s, int64_t after_id, int limit, StateEvent **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (limit < 1) limit = 1;
    if (limit > 100000) limit = 100000;
    StoreParam p[] = {SP_I(after_id), SP_I(limit)};
    StoreRows *r = store_q(s,
                           "SELECT id, ts, kind, dag_id, run_id, task_id, map_index, try_number, state "
                           "FROM state_event WHERE id > ? ORDER BY id LIMIT ?",
                           p, 2);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            *out = xrealloc(*out, cap * sizeof **out);
        }
        StateEvent *e = &(*out)[(*n)++];
        memset(e, 0, sizeof *e);
        e->id = rows_int(r, 0);
        e->ts = rows_int(r, 1);
        const char *kind = rows_text(r, 2);
        e->kind = kind && strcmp(kind, "ti") == 0 ? STATE_EVENT_TI : STATE_EVENT_RUN;
        e->dag_id = opt_str(r, 3);
        e->run_id = opt_str(r, 4);
        e->task_id = opt_str(r, 5);
        e->map_index = rows_isnull(r, 6) ? -1 : (int)rows_int(r, 6);
        e->try_number = (int)rows_int(r, 7);
        e->state = opt_str(r, 8);
    }
    rows_free(r);
    return 0;
}

int store_journal_last_id(Store *s, int64_t *out)
{
    return store_q_int(s, "SELECT MAX(id) FROM state_event", NULL, 0, 0, out);
}

/* The first id whose row is at or after ts, found by binary search over the id range with
 * primary-key lookups only: ids and times grow together (give or take the length of one
 * transaction), so no index on ts is needed, and every journal write is spared its upkeep. */
int store_journal_first_id_at(Store *s, int64_t ts, int64_t *out)
{
    int64_t lo = 0, hi = 0;
    StoreRows *r = store_q(s, "SELECT MIN(id), MAX(id) FROM state_event", NULL, 0);
    if (!r) return -1;
    if (rows_next(r) && !rows_isnull(r, 0)) {
        lo = rows_int(r, 0);
        hi = rows_int(r, 1) + 1;
    }
    rows_free(r);
    /* smallest m in [lo, hi] such that the first row with id >= m is at or after ts (or
     * there is none) */
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        StoreParam p[] = {SP_I(mid)};
        r = store_q(s, "SELECT id, ts FROM state_event WHERE id >= ? ORDER BY id LIMIT 1", p, 1);
        if (!r) return -1;
        int found = rows_next(r);
        int64_t id = found ? rows_int(r, 0) : 0, at = found ? rows_int(r, 1) : 0;
        rows_free(r);
        if (!found || at >= ts)
            hi = mid;
        else
            lo = id + 1;
    }
    *out = lo;
    return 0;
}

int64_t store_journal_prune(Store *s, int64_t before_ts)
{
    int64_t cut = 0, n = 0;
    if (store_journal_first_id_at(s, before_ts, &cut) != 0) return -1;
    StoreParam p[] = {SP_I(cut)};
    if (store_x(s, "DELETE FROM state_event WHERE id < ?", p, 1, &n) != 0) return -1;
    return n;
}

int store_journal_follow(Store *s, JournalCursor *c, int64_t now, int limit, StateEvent **out, size_t *n)
{
    StateEvent *ev;
    size_t m;
    *out = NULL;
    *n = 0;
    if (store_journal_since(s, c->last_id, limit, &ev, &m) != 0) return -1;
    /* Walk the rows: every hole between two rows is either young (it blocks what follows
     * it) or old enough to give up on. Holes after the first blocking one are still noted,
     * so that they age from the moment they were first seen, not from when they reach the
     * front. */
    JournalGap seen[JOURNAL_GAPS];
    int nseen = 0, blocked = 0;
    size_t ready = 0;
    int64_t prev = c->last_id, skipped = 0;
    for (size_t i = 0; i < m; i++) {
        int64_t id = ev[i].id;
        if (id > prev + 1) {
            JournalGap g = {prev + 1, id - 1, now};
            for (int k = 0; k < c->ngaps; k++)
                if (c->gaps[k].lo <= g.hi && c->gaps[k].hi >= g.lo && c->gaps[k].seen < g.seen) g.seen = c->gaps[k].seen;
            if (nseen == JOURNAL_GAPS) blocked = 1; /* too many holes to track: stop here for now */
            if (!blocked) {
                seen[nseen++] = g;
                if (now - g.seen < c->grace_us)
                    blocked = 1;
                else
                    skipped += g.hi - g.lo + 1;
            } else if (nseen < JOURNAL_GAPS) {
                seen[nseen++] = g;
            }
        }
        if (!blocked) ready = i + 1;
        prev = id;
    }
    if (ready > 0) {
        c->last_id = ev[ready - 1].id;
        c->skipped += skipped;
    }
    /* keep the holes still ahead of the cursor */
    c->ngaps = 0;
    for (int k = 0; k < nseen; k++)
        if (seen[k].lo > c->last_id) c->gaps[c->ngaps++] = seen[k];
    /* the rows behind a hole are read again next time */
    for (size_t i = ready; i < m; i++) {
        free(ev[i].dag_id);
        free(ev[i].run_id);
        free(ev[i].task_id);
        free(ev[i].state);
    }
    if (ready == 0) {
        free(ev);
        ev = NULL;
    }
    *out = ev;
    *n = ready;
    return 0;
}
