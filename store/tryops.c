/* tryops — one worker try's claim and finish, and a version read in chunks (see tryops.h). */
#include "store/tryops.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/journal.h"
#include "store/xcom.h"


void try_claim_clear(TryClaim *c)
{
    if (!c) return;
    ti_clear(&c->ti);
    run_clear(&c->run);
    memset(c, 0, sizeof *c);
}

typedef struct ClaimTx {
    const char *id;
    int try_number;
    const char *hostname, *worker_id;
    int pid;
    TryClaimCheck check;
    void *check_ud;
    TryClaim *out;
    int won;      /* the row was claimed (and, once committed, is ours) */
    int declined; /* the check said no: rolled back on purpose */
} ClaimTx;

static int claim_fn(Store *s, void *ud)
{
    ClaimTx *c = ud;
    try_claim_clear(c->out); /* the transaction may run again */
    c->won = c->declined = 0;
    int64_t now = util_now_us();
    StoreParam p[] = {SP_I(now), SP_I(now), SP_S(c->hostname), SP_S(c->worker_id), SP_I(c->pid), SP_I(now),
                      SP_S(c->id), SP_I(c->try_number)};
    /* the guard compares COALESCE(state, 'none'), as store/ti.c's GUARD does: an expression
     * keeps PostgreSQL on the primary key whatever its statistics say about state */
    StoreRows *r = store_q(s,
                           "UPDATE task_instance SET state = 'running', start_date = ?, last_heartbeat_at = ?, "
                           "hostname = ?, worker_id = ?, pid = ?, end_date = NULL, duration = NULL, "
                           "first_poke_at = COALESCE(first_poke_at, ?) "
                           "WHERE id = ? AND try_number = ? AND COALESCE(state, 'none') = 'queued' "
                           "RETURNING " STORE_TI_COLUMNS,
                           p, 8);
    if (!r) return -1;
    int found = rows_next(r);
    if (found) store_ti_read_row(r, &c->out->ti);
    rows_free(r);
    if (!found) return 0;
    TaskInstance *ti = &c->out->ti;
    StoreParam q[] = {SP_S(ti->dag_id), SP_S(ti->run_id)};
    r = store_q(s, "SELECT " STORE_RUN_COLUMNS " FROM dag_run WHERE dag_id = ? AND run_id = ?", q, 2);
    if (!r) return -1;
    /* no run (it cannot be, with the foreign key): the claim stands and the try fails for want
     * of a DAG version, rather than the message coming back for ever */
    if (rows_next(r)) store_run_read_row(r, &c->out->run);
    rows_free(r);
    if (c->check && c->check(c->check_ud, ti, &c->out->run) != 0) {
        c->declined = 1;
        store_set_error(s, "the claim of %s was undone before it committed", c->id);
        return -1; /* rolled back; no error kind, so store_tx does not run it again */
    }
    if (store_journal_ti(s, now, c->id) != 0) return -1;
    /* a claimed try no longer needs publishing, whatever the publisher is doing */
    StoreParam o[] = {SP_S(c->id), SP_I(c->try_number)};
    if (store_x(s, "DELETE FROM outbox WHERE ti_id = ? AND try_number = ?", o, 2, NULL) != 0) return -1;
    /* a new try starts without the XComs of the last one */
    StoreParam x[] = {SP_S(ti->dag_id), SP_S(ti->run_id), SP_S(ti->task_id), SP_I(ti->map_index)};
    if (store_x(s, "DELETE FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND map_index = ?", x, 4, NULL) !=
        0)
        return -1;
    if (store_notify(s, c->id) != 0) return -1;
    c->won = 1;
    return 0;
}

/* Why a claim changed nothing, in store/ti.c's words. */
static void explain_lost(Store *s, const char *id, int try_number)
{
    StoreParam p[] = {SP_S(id)};
    StoreRows *r = store_q(s, "SELECT task_id, state, try_number FROM task_instance WHERE id = ?", p, 1);
    if (!r) return;
    if (!rows_next(r)) {
        store_set_error(s, "task instance %s does not exist", id);
    } else {
        const char *task = rows_isnull(r, 0) ? "?" : rows_text(r, 0);
        int on = (int)rows_int(r, 2);
        if (on != try_number)
            store_set_error(s, "task instance %s (%s) is on try %d, not %d", id, task, on, try_number);
        else
            store_set_error(s, "task instance %s (%s) is %s; it cannot become running", id, task,
                            rows_isnull(r, 1) ? "none" : rows_text(r, 1));
    }
    rows_free(r);
}

int store_try_claim(Store *s, const char *ti_id, int try_number, const char *hostname, const char *worker_id, int pid,
                    TryClaimCheck check, void *check_ud, TryClaim *out)
{
    memset(out, 0, sizeof *out);
    ClaimTx c = {ti_id, try_number, hostname, worker_id, pid, check, check_ud, out, 0, 0};
    int rc = store_tx(s, claim_fn, &c);
    if (c.declined) return 2;
    if (rc != 0) {
        try_claim_clear(out);
        return -1;
    }
    if (!c.won) {
        try_claim_clear(out);
        explain_lost(s, ti_id, try_number);
        return 0;
    }
    return 1;
}

typedef struct FinishTx {
    const char *id;
    int try_number;
    TiState to;
    int64_t at;
    const char *tail;
    size_t len;
    int result; /* store_ti_finish's */
} FinishTx;

static int finish_fn(Store *s, void *ud)
{
    FinishTx *f = ud;
    /* store_log_append and store_ti_finish join this transaction */
    if (f->len && store_log_append(s, f->id, f->try_number, f->tail, f->len, NULL) != 0) return -1;
    f->result = store_ti_finish(s, f->id, f->try_number, f->to, f->at);
    return f->result < 0 ? -1 : 0;
}

int store_try_finish(Store *s, const char *ti_id, int try_number, TiState to, int64_t next_attempt_at,
                     const char *log_tail, size_t log_len)
{
    FinishTx f = {ti_id, try_number, to, next_attempt_at, log_tail, log_len, 0};
    if (store_tx(s, finish_fn, &f) == 0) return f.result;
    StoreErrKind kind = store_error_kind(s->conn);
    if (!log_len || kind == STORE_ERR_CONNECTION || kind == STORE_ERR_BUSY) return -1;
    /* Something about the log chunk spoiled the transaction (the outcome must not wait on
     * it): the outcome alone, then the chunk on its own. */
    char why[256];
    util_strlcpy(why, store_last_error(s), sizeof why);
    int rc = store_ti_finish(s, ti_id, try_number, to, next_attempt_at);
    if (rc >= 0) {
        char saved[512];
        util_strlcpy(saved, store_last_error(s), sizeof saved);
        store_log_append(s, ti_id, try_number, log_tail, log_len, NULL);
        store_set_error(s, "%s (the log's last chunk: %s)", saved, why);
    }
    return rc;
}

int store_dag_version_chunks(Store *s, const char *version_id, size_t chunk, StoreChunkFn fn, void *ud)
{
    if (chunk < 1024) chunk = 1024;
    /* substr counts characters on both engines; pieces of `chunk` characters put back end to
     * end are the document, whatever its bytes */
    for (int64_t at = 1;; at += (int64_t)chunk) {
        StoreParam p[] = {SP_I(at), SP_I((int64_t)chunk), SP_S(version_id)};
        StoreRows *r = store_q(s,
                               "SELECT substr(data, CAST(? AS INTEGER), CAST(? AS INTEGER)) FROM dag_version "
                               "WHERE id = ?",
                               p, 3);
        if (!r) return -1;
        if (!rows_next(r)) {
            rows_free(r);
            if (at == 1) return 0;
            store_set_error(s, "DAG version %s vanished while it was read", version_id);
            return -1;
        }
        const char *t = rows_isnull(r, 0) ? "" : rows_text(r, 0);
        size_t len = strlen(t), chars = 0;
        for (size_t i = 0; i < len; i++) chars += ((unsigned char)t[i] & 0xC0) != 0x80;
        int rc = len ? fn(ud, t, len) : 0;
        rows_free(r);
        if (rc != 0) return -1;
        if (chars < chunk) return 1;
    }
}
