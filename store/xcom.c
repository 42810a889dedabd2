/* xcom — XComs, task log chunks, the event log and import errors (see xcom.h).
 *
 * A log chunk's offset is the end of the previous chunk, read in the same transaction as
 * the insert. Appenders of one log take turns (an advisory lock on PostgreSQL, the single
 * writer on SQLite); should two still read the same end, the primary key (ti_id,
 * try_number, byte_offset) lets one win and the other runs again. Chunk lengths are bytes,
 * which each engine spells differently (octet_length / length of a BLOB cast): with the
 * lock, the only engine-specific SQL here. */
#include "store/xcom.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/kv.h"

#define LOG_READ_DEFAULT (1024 * 1024) /* bytes per read when the caller does not say */
#define LOG_READ_CHUNKS 512            /* chunks fetched per read: a client asks again for more */
#define LOG_APPEND_TRIES 10            /* appenders racing for the same offset */

/* ---- shared helpers (as in kv.c) ---------------------------------------------------------- */

static int run_tx(Store *s, StoreTxFn fn, void *ud)
{
    return s->in_tx ? fn(s, ud) : store_tx(s, fn, ud);
}

typedef struct Exec1 {
    const char *sql;
    const StoreParam *p;
    int np;
    int64_t affected;
} Exec1;

static int exec1_fn(Store *s, void *ud)
{
    Exec1 *e = ud;
    e->affected = 0;
    return store_x(s, e->sql, e->p, e->np, &e->affected);
}

static int64_t exec1(Store *s, const char *sql, const StoreParam *p, int np)
{
    Exec1 e = {sql, p, np, 0};
    return run_tx(s, exec1_fn, &e) == 0 ? e.affected : -1;
}

/* v present (and non-empty if required) UTF-8 text without NUL. */
static int check_text(Store *s, const char *what, const char *v, int required)
{
    if (!v || (required && !*v)) {
        if (!v && !required) return 0;
        store_set_error(s, "%s is required", what);
        return -1;
    }
    if (!store_text_valid(v, strlen(v))) {
        store_set_error(s, "%s is not valid UTF-8 text", what);
        return -1;
    }
    return 0;
}

static int check_json(Store *s, const char *what, const char *v)
{
    if (check_text(s, what, v, 1)) return -1;
    cJSON *j = cJSON_ParseWithOpts(v, NULL, 1);
    if (!j) {
        store_set_error(s, "%s is not valid JSON", what);
        return -1;
    }
    cJSON_Delete(j);
    return 0;
}

static const char *bytewise(const Store *s)
{
    return store_is_sqlite(s) ? "" : " COLLATE \"C\"";
}

static char *col_dup(StoreRows *r, int col)
{
    return rows_isnull(r, col) ? NULL : xstrdup(rows_text(r, col));
}

/* Grow an array of `size`-byte items so that one more fits. */
static void *grow(void *items, size_t n, size_t *cap, size_t size)
{
    if (n < *cap) return items;
    *cap = *cap ? *cap * 2 : 16;
    return xrealloc(items, *cap * size);
}

/* ---- XCom ----------------------------------------------------------------------------------- */

static int xcom_check_ti(Store *s, const char *dag_id, const char *run_id, const char *task_id)
{
    return check_text(s, "dag_id", dag_id, 1) || check_text(s, "run_id", run_id, 1) ||
                   check_text(s, "task_id", task_id, 1)
               ? -1
               : 0;
}

int store_xcom_push(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                    const char *key, const char *value)
{
    if (!key) key = STORE_XCOM_RETURN_KEY;
    if (xcom_check_ti(s, dag_id, run_id, task_id) || check_text(s, "XCom key", key, 1) ||
        check_json(s, "XCom value", value))
        return -1;
    StoreParam p[] = {SP_S(dag_id), SP_S(run_id), SP_S(task_id), SP_I(map_index),
                      SP_S(key),    SP_S(value),  SP_I(util_now_us())};
    return exec1(s,
                 "INSERT INTO xcom (dag_id, run_id, task_id, map_index, key, value, timestamp) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dag_id, run_id, task_id, map_index, key) "
                 "DO UPDATE SET value = excluded.value, timestamp = excluded.timestamp",
                 p, 7) < 0
               ? -1
               : 0;
}

char *store_xcom_pull(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                      const char *key, int *missing)
{
    if (missing) *missing = 0;
    if (!key) key = STORE_XCOM_RETURN_KEY;
    if (xcom_check_ti(s, dag_id, run_id, task_id) || check_text(s, "XCom key", key, 1)) return NULL;
    StoreParam p[] = {SP_S(dag_id), SP_S(run_id), SP_S(task_id), SP_I(map_index), SP_S(key)};
    StoreRows *r = store_q(s,
                           "SELECT value FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? "
                           "AND map_index = ? AND key = ?",
                           p, 5);
    if (!r) return NULL;
    char *v = NULL;
    if (rows_next(r)) {
        v = col_dup(r, 0);
    } else {
        if (map_index >= 0)
            store_set_error(s, "no XCom '%.100s' for %.100s[%d] in %.100s/%.100s", key, task_id, map_index, dag_id,
                            run_id);
        else
            store_set_error(s, "no XCom '%.100s' for %.100s in %.100s/%.100s", key, task_id, dag_id, run_id);
        if (missing) *missing = 1;
    }
    rows_free(r);
    return v;
}

int store_xcom_list(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                    StoreXcomList *out)
{
    memset(out, 0, sizeof *out);
    if (xcom_check_ti(s, dag_id, run_id, task_id)) return -1;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT dag_id, run_id, task_id, map_index, key, value, timestamp FROM xcom "
             "WHERE dag_id = ? AND run_id = ? AND task_id = ? AND map_index = ? ORDER BY key%s",
             bytewise(s));
    StoreParam p[] = {SP_S(dag_id), SP_S(run_id), SP_S(task_id), SP_I(map_index)};
    StoreRows *r = store_q(s, sql, p, 4);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        out->items = grow(out->items, out->n, &cap, sizeof *out->items);
        StoreXcom *x = &out->items[out->n++];
        x->dag_id = col_dup(r, 0);
        x->run_id = col_dup(r, 1);
        x->task_id = col_dup(r, 2);
        x->map_index = (int)rows_int(r, 3);
        x->key = col_dup(r, 4);
        x->value = col_dup(r, 5);
        x->timestamp = rows_int(r, 6);
    }
    rows_free(r);
    return 0;
}

void store_xcom_list_free(StoreXcomList *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        StoreXcom *x = &l->items[i];
        free(x->dag_id);
        free(x->run_id);
        free(x->task_id);
        free(x->key);
        free(x->value);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

int store_xcom_clear(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index)
{
    if (xcom_check_ti(s, dag_id, run_id, task_id)) return -1;
    StoreParam p[] = {SP_S(dag_id), SP_S(run_id), SP_S(task_id), SP_I(map_index)};
    int64_t n = exec1(s, "DELETE FROM xcom WHERE dag_id = ? AND run_id = ? AND task_id = ? AND map_index = ?", p, 4);
    return n < 0 ? -1 : (int)n;
}

/* ---- task logs ------------------------------------------------------------------------------ */

/* The end of a try's log: offset + bytes of its last chunk. */
static int log_end(Store *s, const char *ti_id, int try_number, int64_t *end)
{
    const char *sql = store_is_sqlite(s) ? "SELECT byte_offset + length(CAST(data AS BLOB)) FROM task_log "
                                           "WHERE ti_id = ? AND try_number = ? ORDER BY byte_offset DESC LIMIT 1"
                                         : "SELECT byte_offset + octet_length(data) FROM task_log "
                                           "WHERE ti_id = ? AND try_number = ? ORDER BY byte_offset DESC LIMIT 1";
    StoreParam p[] = {SP_S(ti_id), SP_I(try_number)};
    return store_q_int(s, sql, p, 2, 0, end);
}

/* data as valid UTF-8 without NUL: anything else becomes U+FFFD. Caller frees. */
static char *log_text(const char *data, size_t len, size_t *out_len)
{
    StrBuf b = {0};
    size_t i = 0;
    while (i < len) {
        size_t run = i;
        size_t n;
        while (run < len && (n = store_utf8_next(data + run, len - run)) > 0) run += n;
        if (run > i) sb_appendn(&b, data + i, run - i);
        if (run < len) {
            sb_append(&b, "\xEF\xBF\xBD");
            run++;
        }
        i = run;
    }
    *out_len = b.len;
    return sb_take(&b);
}

typedef struct LogAppend {
    const char *ti_id;
    int try_number;
    const char *text;
    size_t len;
    int64_t end;
    int conflict; /* another appender took the offset first */
} LogAppend;

static int log_append_fn(Store *s, void *ud)
{
    LogAppend *a = ud;
    a->conflict = 0;
    /* PostgreSQL: appenders of one log take turns, so the end read below is the end; the
     * lock goes with the transaction. (SQLite's BEGIN IMMEDIATE already serialises them.) */
    StoreParam k[] = {SP_S(a->ti_id), SP_I(a->try_number)};
    if (!store_is_sqlite(s) && store_x(s, "SELECT pg_advisory_xact_lock(hashtext(?), ?)", k, 2, NULL) != 0)
        return -1;
    int64_t at = 0;
    if (log_end(s, a->ti_id, a->try_number, &at) != 0) return -1;
    a->end = at + (int64_t)a->len;
    if (!a->len) return 0;
    StoreParam p[] = {SP_S(a->ti_id), SP_I(a->try_number), SP_I(at), SP_I(util_now_us()),
                      (StoreParam){SP_TEXT, 0, a->text, a->len}};
    if (store_x(s, "INSERT INTO task_log (ti_id, try_number, byte_offset, ts, data) VALUES (?, ?, ?, ?, ?)", p, 5,
                NULL) != 0) {
        a->conflict = store_error_kind(s->conn) == STORE_ERR_CONSTRAINT;
        return -1;
    }
    return 0;
}

int store_log_append(Store *s, const char *ti_id, int try_number, const char *data, size_t len, int64_t *end_out)
{
    if (check_text(s, "ti_id", ti_id, 1)) return -1;
    if (!data && len) {
        store_set_error(s, "log data is required");
        return -1;
    }
    size_t tlen = 0;
    char *text = log_text(data ? data : "", len, &tlen);
    LogAppend a = {ti_id, try_number, text, tlen, 0, 0};
    int rc = -1;
    for (int i = 0; i < LOG_APPEND_TRIES; i++) {
        rc = run_tx(s, log_append_fn, &a);
        /* inside the caller's transaction a failed statement spoils it: no second go */
        if (rc == 0 || !a.conflict || s->in_tx) break;
    }
    free(text);
    if (rc == 0 && end_out) *end_out = a.end;
    return rc;
}

/* Cut n bytes of UTF-8 back to the start of a character cut in two at the end, unless
 * that would leave nothing. */
static size_t utf8_cut(const char *p, size_t n)
{
    size_t lead = n;
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        unsigned char c = (unsigned char)p[n - back];
        if ((c & 0xC0) != 0x80) {
            lead = n - back;
            break;
        }
    }
    if (lead == n) return n; /* no lead byte in the last four: not ours to fix */
    unsigned char c = (unsigned char)p[lead];
    size_t want = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
    if (n - lead >= want) return n;
    return lead > 0 ? lead : n;
}

int store_log_read(Store *s, const char *ti_id, int try_number, int64_t offset, size_t max_len, StoreLogRead *out)
{
    memset(out, 0, sizeof *out);
    if (offset < 0) offset = 0;
    out->next_offset = offset;
    if (check_text(s, "ti_id", ti_id, 1)) return -1;
    if (!max_len) max_len = LOG_READ_DEFAULT;

    /* the chunk holding `offset` starts at or before it */
    int64_t start = 0;
    StoreParam p1[] = {SP_S(ti_id), SP_I(try_number), SP_I(offset)};
    if (store_q_int(s,
                    "SELECT byte_offset FROM task_log WHERE ti_id = ? AND try_number = ? AND byte_offset <= ? "
                    "ORDER BY byte_offset DESC LIMIT 1",
                    p1, 3, 0, &start) != 0)
        return -1;
    StoreParam p2[] = {SP_S(ti_id), SP_I(try_number), SP_I(start), SP_I(LOG_READ_CHUNKS)};
    StoreRows *r = store_q(s,
                           "SELECT byte_offset, data FROM task_log WHERE ti_id = ? AND try_number = ? "
                           "AND byte_offset >= ? ORDER BY byte_offset LIMIT ?",
                           p2, 4);
    if (!r) return -1;
    StrBuf b = {0};
    int64_t pos = offset; /* the log byte the next copied byte is */
    int full = 0;
    while (!full && rows_next(r)) {
        int64_t at = rows_int(r, 0);
        const char *d = rows_text(r, 1);
        size_t dlen = d ? strlen(d) : 0;
        if (at > pos) {
            if (b.len) break; /* a hole (should not happen): stop before it */
            pos = at;          /* the offset was in a hole: skip to what exists */
        }
        if (at + (int64_t)dlen <= pos) continue;
        size_t from = (size_t)(pos - at);
        size_t take = dlen - from;
        if (b.len + take > max_len) {
            take = max_len - b.len;
            full = 1;
        }
        sb_appendn(&b, d + from, take);
        pos += (int64_t)take;
    }
    rows_free(r);
    size_t got = b.len;
    size_t len = full ? utf8_cut(sb_str(&b), got) : got;
    out->data = sb_take(&b);
    out->data[len] = '\0';
    out->len = len;
    out->next_offset = pos - (int64_t)(got - len);
    return 0;
}

void store_log_read_free(StoreLogRead *r)
{
    if (!r) return;
    free(r->data);
    memset(r, 0, sizeof *r);
}

int64_t store_log_size(Store *s, const char *ti_id, int try_number)
{
    if (check_text(s, "ti_id", ti_id, 1)) return -1;
    int64_t end = 0;
    return log_end(s, ti_id, try_number, &end) == 0 ? end : -1;
}

/* ---- event log -------------------------------------------------------------------------------- */

typedef struct EventAppend {
    const StoreEvent *e;
    int64_t dttm;
    int64_t id;
} EventAppend;

static int event_append_fn(Store *s, void *ud)
{
    EventAppend *a = ud;
    const StoreEvent *e = a->e;
    StoreParam p[] = {SP_I(a->dttm),
                      SP_S(e->event),
                      SP_S(e->owner),
                      SP_S(e->dag_id),
                      SP_S(e->task_id),
                      SP_S(e->run_id),
                      e->task_id ? SP_I(e->map_index) : SP_NIL,
                      e->try_number > 0 ? SP_I(e->try_number) : SP_NIL,
                      SP_S(e->extra)};
    StoreRows *r = store_q(s,
                           "INSERT INTO event_log (dttm, event, owner, dag_id, task_id, run_id, map_index, "
                           "try_number, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                           p, 9);
    if (!r) return -1;
    a->id = rows_next(r) ? rows_int(r, 0) : 0;
    rows_free(r);
    return 0;
}

int store_event_append(Store *s, const StoreEvent *e, int64_t *id_out)
{
    if (check_text(s, "event", e->event, 1) || check_text(s, "owner", e->owner, 0) ||
        check_text(s, "dag_id", e->dag_id, 0) || check_text(s, "task_id", e->task_id, 0) ||
        check_text(s, "run_id", e->run_id, 0) || (e->extra && check_json(s, "event extra", e->extra)))
        return -1;
    EventAppend a = {e, e->dttm ? e->dttm : util_now_us(), 0};
    if (run_tx(s, event_append_fn, &a) != 0) return -1;
    if (id_out) *id_out = a.id;
    return 0;
}

int store_event_list(Store *s, const char *dag_id, const char *event, int limit, int offset, StoreEventList *out)
{
    memset(out, 0, sizeof *out);
    if (check_text(s, "dag_id", dag_id, 0) || check_text(s, "event", event, 0)) return -1;
    StrBuf sql = {0};
    StoreParam p[4];
    int np = 0;
    sb_append(&sql, "SELECT id, dttm, event, owner, dag_id, task_id, run_id, map_index, try_number, extra "
                    "FROM event_log");
    if (dag_id) {
        sb_append(&sql, " WHERE dag_id = ?");
        p[np++] = SP_S(dag_id);
    }
    if (event) {
        sb_append(&sql, dag_id ? " AND event = ?" : " WHERE event = ?");
        p[np++] = SP_S(event);
    }
    sb_append(&sql, " ORDER BY dttm DESC, id DESC LIMIT ? OFFSET ?");
    p[np++] = SP_I(limit > 0 ? (int64_t)limit : INT64_MAX);
    p[np++] = SP_I(offset > 0 ? offset : 0);
    StoreRows *r = store_q(s, sb_str(&sql), p, np);
    sb_free(&sql);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        out->items = grow(out->items, out->n, &cap, sizeof *out->items);
        StoreEvent *e = &out->items[out->n++];
        e->id = rows_int(r, 0);
        e->dttm = rows_int(r, 1);
        e->event = col_dup(r, 2);
        e->owner = col_dup(r, 3);
        e->dag_id = col_dup(r, 4);
        e->task_id = col_dup(r, 5);
        e->run_id = col_dup(r, 6);
        e->map_index = rows_isnull(r, 7) ? -1 : (int)rows_int(r, 7);
        e->try_number = (int)rows_int(r, 8);
        e->extra = col_dup(r, 9);
    }
    rows_free(r);
    return 0;
}

void store_event_list_free(StoreEventList *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        StoreEvent *e = &l->items[i];
        free(e->event);
        free(e->owner);
        free(e->dag_id);
        free(e->task_id);
        free(e->run_id);
        free(e->extra);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* ---- import errors ---------------------------------------------------------------------------- */

int store_import_error_set(Store *s, const char *filename, const char *message)
{
    if (check_text(s, "filename", filename, 1) || check_text(s, "import error message", message, 0)) return -1;
    if (!message) message = "";
    StoreParam p[] = {SP_S(filename), SP_S(message), SP_I(util_now_us())};
    return exec1(s,
                 "INSERT INTO import_error (filename, stacktrace, timestamp) VALUES (?, ?, ?) "
                 "ON CONFLICT (filename) DO UPDATE SET stacktrace = excluded.stacktrace, "
                 "timestamp = excluded.timestamp",
                 p, 3) < 0
               ? -1
               : 0;
}

int store_import_error_clear(Store *s, const char *filename)
{
    if (check_text(s, "filename", filename, 1)) return -1;
    StoreParam p[] = {SP_S(filename)};
    int64_t n = exec1(s, "DELETE FROM import_error WHERE filename = ?", p, 1);
    return n < 0 ? -1 : n > 0;
}

int store_import_error_list(Store *s, StoreImportErrorList *out)
{
    memset(out, 0, sizeof *out);
    char sql[160];
    snprintf(sql, sizeof sql, "SELECT id, filename, stacktrace, timestamp FROM import_error ORDER BY filename%s",
             bytewise(s));
    StoreRows *r = store_q(s, sql, NULL, 0);
    if (!r) return -1;
    size_t cap = 0;
    while (rows_next(r)) {
        out->items = grow(out->items, out->n, &cap, sizeof *out->items);
        StoreImportError *e = &out->items[out->n++];
        e->id = rows_int(r, 0);
        e->filename = col_dup(r, 1);
        e->message = col_dup(r, 2);
        e->timestamp = rows_int(r, 3);
    }
    rows_free(r);
    return 0;
}

void store_import_error_list_free(StoreImportErrorList *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i].filename);
        free(l->items[i].message);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}
