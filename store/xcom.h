/* xcom — what tasks and processes leave behind for others to read: XComs, task log
 * chunks, the event log (the audit trail) and the DAG processor's import errors.
 *
 * Same conventions as store/kv.h: each writing function is one short transaction, or
 * joins the caller's when the Store is already inside store_tx (a worker finishing a try
 * writes its state, XComs and log tail together); reads are single statements; text is
 * bound, never pasted, and must be valid UTF-8 without NUL. 0 (or a count) / -1, or
 * NULL, with the message in store_last_error(s); result structs own their strings.
 *
 * Task logs are stored as chunks keyed by their byte offset in the try's log, so a reader
 * can ask "what is there from byte N" and get the next offset to ask from: that is all a
 * client needs to tail a running task, and it never re-reads what it has seen. */
#ifndef GUST_STORE_XCOM_H
#define GUST_STORE_XCOM_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* ---- XCom ------------------------------------------------------------------------------- */

#define STORE_XCOM_RETURN_KEY "return_value"

typedef struct StoreXcom {
    char *dag_id, *run_id, *task_id; /* the task instance that pushed it */
    int map_index;                   /* -1 when not mapped */
    char *key;                       /* "return_value" for a task's result */
    char *value;                     /* JSON text */
    int64_t timestamp;               /* when it was pushed, microseconds UTC */
} StoreXcom;

typedef struct StoreXcomList {
    StoreXcom *items; /* ordered by key */
    size_t n;
} StoreXcomList;

/* Create or replace the XCom (dag_id, run_id, task_id, map_index, key); key NULL means
 * "return_value". value must be a JSON document. 0 / -1. */
int store_xcom_push(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                    const char *key, const char *value);
/* The JSON text of one XCom (key NULL = "return_value"); caller frees. NULL when missing
 * (*missing = 1, "no XCom 'KEY' for TASK") or on failure. missing may be NULL. */
char *store_xcom_pull(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                      const char *key, int *missing);
/* Every XCom of a task instance. 0 / -1; free with store_xcom_list_free. */
int store_xcom_list(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index,
                    StoreXcomList *out);
void store_xcom_list_free(StoreXcomList *l);
/* Delete every XCom of a task instance (before a new try). Number deleted, or -1. */
int store_xcom_clear(Store *s, const char *dag_id, const char *run_id, const char *task_id, int map_index);

/* ---- task logs -------------------------------------------------------------------------- */

/* Append len bytes to the log of (ti_id, try_number) at its current end, computed inside
 * the transaction, so concurrent appenders never overlap. Invalid UTF-8 and NUL bytes are
 * stored as U+FFFD (so cut chunks at character boundaries). *end_out (may be NULL) gets
 * the log's size after the append. 0 / -1. */
int store_log_append(Store *s, const char *ti_id, int try_number, const char *data, size_t len, int64_t *end_out);

typedef struct StoreLogRead {
    char *data;          /* NUL-terminated; caller frees with store_log_read_free */
    size_t len;          /* bytes in data */
    int64_t next_offset; /* where to read from next (== the requested offset when nothing new) */
} StoreLogRead;

/* Read up to max_len bytes (0 = up to 1 MiB) of a try's log from byte offset. When the
 * read stops before the end, it stops at a character boundary (unless a single character
 * is longer than max_len). An offset at or past the end gives no data and next_offset =
 * offset. 0 / -1. */
int store_log_read(Store *s, const char *ti_id, int try_number, int64_t offset, size_t max_len, StoreLogRead *out);
void store_log_read_free(StoreLogRead *r);
/* Size in bytes of a try's log (0 when there is none), or -1. */
int64_t store_log_size(Store *s, const char *ti_id, int try_number);

/* ---- event log -------------------------------------------------------------------------- */

typedef struct StoreEvent {
    int64_t id;         /* assigned by the store */
    int64_t dttm;       /* microseconds UTC; 0 on append = now */
    char *event;        /* what happened: "cli_variables_set", "trigger", ... (required) */
    char *owner;        /* who: "cli:alice", "api:bob", "scheduler"; NULL when unknown */
    char *dag_id;       /* NULL when not about a DAG */
    char *task_id;      /* NULL when not about a task */
    char *run_id;       /* NULL when not about a run */
    int map_index;      /* stored only with a task_id (-1 when not mapped) */
    int try_number;     /* stored when > 0 */
    char *extra;        /* JSON text, NULL when none */
} StoreEvent;

typedef struct StoreEventList {
    StoreEvent *items; /* newest first */
    size_t n;
} StoreEventList;

/* Append one event (id and, when 0, dttm are filled by the store). *id_out may be NULL. */
int store_event_append(Store *s, const StoreEvent *e, int64_t *id_out);
/* Events newest first, optionally only those of dag_id and/or named event (NULL = any);
 * limit <= 0 means all. 0 / -1. */
int store_event_list(Store *s, const char *dag_id, const char *event, int limit, int offset, StoreEventList *out);
void store_event_list_free(StoreEventList *l);

/* ---- import errors ---------------------------------------------------------------------- */

typedef struct StoreImportError {
    int64_t id;        /* stable while the file keeps failing */
    char *filename;    /* the DAG file */
    char *message;     /* what is wrong with it (Airflow's "stacktrace") */
    int64_t timestamp; /* when it was last recorded */
} StoreImportError;

typedef struct StoreImportErrorList {
    StoreImportError *items; /* ordered by filename */
    size_t n;
} StoreImportErrorList;

/* Record (or replace) the error of a file. 0 / -1. */
int store_import_error_set(Store *s, const char *filename, const char *message);
/* Forget a file's error: 1 cleared, 0 there was none, -1 error. */
int store_import_error_clear(Store *s, const char *filename);
int store_import_error_list(Store *s, StoreImportErrorList *out);
void store_import_error_list_free(StoreImportErrorList *l);

#endif
