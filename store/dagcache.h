/* dagcache — DAG versions as a process needs them, read from the store once.
 *
 * The scheduler decides and the workers execute against the dag_version a run started with
 * (DESIGN.md: "a run executes the dag_version it started with"). Versions never change once
 * written, so what is read of one can be kept. Two forms, for two kinds of reader:
 *
 * - dagcache_get: the whole parsed Dag (the scheduler, the API, the CLI), kept for the life of
 *   the cache; const pointers stay valid until dagcache_free. It is built one task at a time
 *   from the version's index (below), never from the whole document parsed at once.
 * - dagcache_task and friends: what one try of one task needs (workers). A parsed 10,000-task
 *   version takes ~7 MB (and three times that while its 6 MB of JSON is parsed), which alone is
 *   a worker's whole memory budget, to run one task. So a worker keeps, per version, a compact
 *   index instead: for each task its id, name, upstream ids, rate_limit and its JSON compressed
 *   (raw deflate, with the version's first task as the preset dictionary: tasks of a DAG are
 *   alike, so a task costs tens of bytes); the version is read in chunks and never held whole.
 *   Each try then builds a Dag of its own holding the version's fields and its one task
 *   (dag_free it), in microseconds. The indexes are bounded (DAGCACHE_INDEX_BUDGET bytes, least
 *   recently used dropped first); callers copy out under the cache's lock, so nothing is pinned.
 *
 * The cache is shared by the threads of a process (a mutex guards it; a version being read
 * by one thread is waited for by the others, not read twice). */
#ifndef GUST_STORE_DAGCACHE_H
#define GUST_STORE_DAGCACHE_H

#include <stddef.h>

#include "core/dag.h"
#include "store/store.h"

typedef struct DagCache DagCache;

/* Bytes of task indexes kept (the most recent index is kept whatever its size). */
#define DAGCACHE_INDEX_BUDGET (2u * 1024 * 1024)

DagCache *dagcache_new(void);
void dagcache_free(DagCache *c); /* accepts NULL */
/* The DAG of a version, read from the store on first use. NULL + err if it cannot be read. */
const Dag *dagcache_get(DagCache *c, Store *s, const char *version_id, char *err, size_t errlen);

/* ---- one task at a time (workers) ---------------------------------------------------- */

/* Read the version's task index now unless it is cached. 0 ok, -1 + err (not found, or the
 * store failed). */
int dagcache_load_index(DagCache *c, Store *s, const char *version_id, char *err, size_t errlen);
/* Without touching the store: the task's rate_limit ("" when it has none) copied to out.
 * 1 known, 0 the version's index is not cached (dagcache_load_index), -1 no such task. */
int dagcache_peek_rate_limit(DagCache *c, const char *version_id, const char *task_id, char *out, size_t outlen);
/* A Dag of its own with the version's fields and only this task (tasks[0]). NULL + err when
 * the version cannot be read or the task is not in it. Caller frees with dag_free. */
Dag *dagcache_task(DagCache *c, Store *s, const char *version_id, const char *task_id, char *err, size_t errlen);
/* The full id of the task written `name` in the DAG file (a task in a group is
 * "group.name"), copied to out. 1 found, 0 none, -1 the version cannot be read. */
int dagcache_task_id_by_name(DagCache *c, Store *s, const char *version_id, const char *name, char *out,
                             size_t outlen);

/* The shape of a version: every task's id, name and upstream ids, in file order, in one
 * allocation (for branching: which tasks are downstream of which). */
typedef struct DagGraphTask {
    const char *task_id;
    const char *name;
    const char *const *upstream;
    size_t n_upstream;
} DagGraphTask;
typedef struct DagGraph {
    DagGraphTask *tasks;
    size_t n;
} DagGraph;
/* NULL + err when the version cannot be read. Caller frees with free(). */
DagGraph *dagcache_graph(DagCache *c, Store *s, const char *version_id, char *err, size_t errlen);

#endif
