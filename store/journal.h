/* journal — the state_event table: one row per change of a run's or a task instance's state,
 * written by store/runs.c and store/ti.c in the same transaction as the change, so the
 * journal never says something happened that did not, nor misses what did.
 *
 * It is what /api/v2/gust/events streams (api/events.c follows it by id) and what /metrics
 * reads recent task durations through. Readers go by id: on SQLite ids are assigned by the
 * one writer in commit order; on PostgreSQL a BIGSERIAL id is taken at INSERT and becomes
 * visible at COMMIT, so a row may appear after one with a higher id (the reader waits a
 * moment for such gaps, see api/events.c). Old rows are pruned by the scheduler
 * (api.events_retention).
 *
 * Ownership: StateEvent strings belong to the event; state_event_list_free frees an array. */
#ifndef GUST_STORE_JOURNAL_H
#define GUST_STORE_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef enum StateEventKind { STATE_EVENT_RUN, STATE_EVENT_TI } StateEventKind;

typedef struct StateEvent {
    int64_t id;          /* the journal id, increasing */
    int64_t ts;          /* when the change was made, us */
    StateEventKind kind;
    char *dag_id;
    char *run_id;
    char *task_id;       /* NULL for a run */
    int map_index;       /* task instances only (-1 when not mapped) */
    int try_number;      /* task instances only */
    char *state;         /* as Airflow spells it ("queued", "up_for_retry"); NULL = none */
} StateEvent;

void state_event_list_free(StateEvent *ev, size_t n); /* accepts NULL */

/* ---- writers: INSIDE the transaction that made the change (store_tx) ------------------ */

/* A run became `state` (a run's states are never none). */
int store_journal_run(Store *s, int64_t ts, const char *dag_id, const char *run_id, const char *state);
/* The task instance ti_id changed state: the row is copied from the instance as it now is
 * (one INSERT ... SELECT by primary key), so call it after the UPDATE. */
int store_journal_ti(Store *s, int64_t ts, const char *ti_id);

/* ---- readers ------------------------------------------------------------------------- */

/* Rows with id > after_id, oldest first, at most limit (1..100000). *out is a new array
 * (NULL when *n is 0) for state_event_list_free. 0 ok, -1 error. */
int store_journal_since(Store *s, int64_t after_id, int limit, StateEvent **out, size_t *n);
/* The highest id in the journal (0 when it is empty). 0 ok, -1 error. */
int store_journal_last_id(Store *s, int64_t *out);
/* The first id of the rows written at or after ts (us): MAX(id) + 1 when there is none (0
 * when the journal is empty). Ids
 * and times grow together, so "the rows since ts" is "the rows from this id". 0 ok, -1 error. */
int store_journal_first_id_at(Store *s, int64_t ts, int64_t *out);
/* Delete the rows older than before_ts (us): those before store_journal_first_id_at.
 * Returns how many, or -1. */
int64_t store_journal_prune(Store *s, int64_t before_ts);

/* ---- following the journal in order, across out-of-order commits --------------------------
 *
 * On PostgreSQL, id N may become visible after N+1 (its transaction took the id first and
 * committed later), and an id whose transaction rolled back never appears. A follower that
 * read "everything after the last id I saw" would skip N for ever. A JournalCursor therefore
 * hands on rows only up to the first hole that is younger than grace_us: each hole is
 * remembered with when it was first seen, and passed (counted in skipped) once it has stayed
 * empty that long, by which time the transaction that held it has committed or never will. */
#define JOURNAL_GAPS 32
typedef struct JournalGap {
    int64_t lo, hi; /* the missing ids, inclusive */
    int64_t seen;   /* when first seen missing, us */
} JournalGap;

typedef struct JournalCursor {
    int64_t last_id;   /* every row up to here was handed on (or given up on); set before use */
    int64_t grace_us;  /* how long a hole may hold the rows behind it (e.g. 2 s) */
    JournalGap gaps[JOURNAL_GAPS];
    int ngaps;
    int64_t skipped;   /* ids given up on so far */
} JournalCursor;

/* The rows after c->last_id that are ready (at most limit), oldest first, advancing the
 * cursor past them; now is the caller's clock (us). *out as for store_journal_since
 * (*n = 0 when nothing is ready). 0 ok, -1 error (the cursor is unchanged). */
int store_journal_follow(Store *s, JournalCursor *c, int64_t now, int limit, StateEvent **out, size_t *n);

#endif
