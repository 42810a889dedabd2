/* dagcache — parsed DAG versions (see dagcache.h). A small open list is enough: a process
 * sees a handful of versions per DAG over its life. */
#include "store/dagcache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "store/dags.h"

typedef struct Entry {
    char version_id[33];
    Dag *dag;
} Entry;

struct DagCache {
    pthread_mutex_t mu;
    Entry *items;
    size_t len, cap;
};

DagCache *dagcache_new(void)
{
    DagCache *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    return c;
}

void dagcache_free(DagCache *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->len; i++) dag_free(c->items[i].dag);
    free(c->items);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static const Dag *lookup(DagCache *c, const char *version_id)
{
    for (size_t i = 0; i < c->len; i++)
        if (strcmp(c->items[i].version_id, version_id) == 0) return c->items[i].dag;
    return NULL;
}

const Dag *dagcache_get(DagCache *c, Store *s, const char *version_id, char *err, size_t errlen)
{
    if (!version_id) {
        snprintf(err, errlen, "the run has no DAG version");
        return NULL;
    }
    pthread_mutex_lock(&c->mu);
    const Dag *d = lookup(c, version_id);
    pthread_mutex_unlock(&c->mu);
    if (d) return d;
    char *text = store_dag_version_data(s, version_id);
    if (!text) {
        snprintf(err, errlen, "DAG version %s not found%s%s", version_id, s->err[0] ? ": " : "", s->err);
        return NULL;
    }
    Dag *parsed = dag_from_json(text, err, errlen);
    free(text);
    if (!parsed) return NULL;
    pthread_mutex_lock(&c->mu);
    d = lookup(c, version_id); /* another thread may have won the race */
    if (d) {
        dag_free(parsed);
    } else {
        if (c->len == c->cap) {
            c->cap = c->cap ? c->cap * 2 : 16;
            c->items = xrealloc(c->items, c->cap * sizeof *c->items);
        }
        util_strlcpy(c->items[c->len].version_id, version_id, sizeof c->items[c->len].version_id);
        c->items[c->len++].dag = parsed;
        d = parsed;
    }
    pthread_mutex_unlock(&c->mu);
    return d;
}
