/* dagcache — serialised DAG versions, parsed once per process.
 *
 * The scheduler decides and the workers execute against the dag_version a run started with
 * (DESIGN.md: "a run executes the dag_version it started with"). Versions never change once
 * written, so a parsed version can be kept for the life of the process; the cache is
 * shared by threads (a mutex guards it) and hands out const pointers that stay valid until
 * dagcache_free. */
#ifndef GUST_STORE_DAGCACHE_H
#define GUST_STORE_DAGCACHE_H

#include <stddef.h>

#include "core/dag.h"
#include "store/store.h"

typedef struct DagCache DagCache;

DagCache *dagcache_new(void);
void dagcache_free(DagCache *c); /* accepts NULL */
/* The DAG of a version, read from the store on first use. NULL + err if it cannot be read. */
const Dag *dagcache_get(DagCache *c, Store *s, const char *version_id, char *err, size_t errlen);

#endif
