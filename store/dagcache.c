/* dagcache — parsed DAG versions and compact task indexes (see dagcache.h). A small open
 * list is enough for each: a process sees a handful of versions per DAG over its life. */
#include "store/dagcache.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "core/util.h"
#include "store/dags.h"
#include "store/tryops.h"

#define READ_CHUNK (256 * 1024) /* characters per read of a version's document */

typedef struct Entry {
    char version_id[33];
    Dag *dag;
} Entry;

/* One task in an index: offsets into the index's arena. */
typedef struct TaskRec {
    uint32_t id, name, rate; /* NUL-terminated strings; rate 0: no rate_limit */
    uint32_t up, n_up;       /* n_up consecutive NUL-terminated ids */
    uint32_t z, zlen, rawlen; /* the task's JSON, deflated */
} TaskRec;

typedef struct Index {
    char version_id[33];
    int ready;             /* 0 while one thread reads it (the others wait on the cache's cv) */
    char *pre, *post;      /* the version's document around its tasks: pre ends "[", post starts "]" */
    char *dict;            /* the first task's JSON: the preset dictionary */
    size_t dict_len;
    TaskRec *recs;         /* in file order */
    size_t n, cap;
    uint32_t *by_id;       /* indexes of recs sorted by task id */
    char *arena;           /* the strings and deflated bytes, offset 0 unused */
    size_t alen, acap;
    size_t bytes;          /* what the index holds, for the budget */
    uint64_t used;         /* last use, for least-recently-used eviction */
} Index;

struct DagCache {
    pthread_mutex_t mu;
    pthread_cond_t cv;     /* an index became ready (or its read failed) */
    Entry *items;
    size_t len, cap;
    Index **ix;
    size_t n_ix, cap_ix;
    uint64_t tick;
};

DagCache *dagcache_new(void)
{
    DagCache *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    return c;
}

static void index_free(Index *x)
{
    if (!x) return;
    free(x->pre);
    free(x->post);
    free(x->dict);
    free(x->recs);
    free(x->by_id);
    free(x->arena);
    free(x);
}

void dagcache_free(DagCache *c)
{
    if (!c) return;
    for (size_t i = 0; i < c->len; i++) dag_free(c->items[i].dag);
    free(c->items);
    for (size_t i = 0; i < c->n_ix; i++) index_free(c->ix[i]);
    free(c->ix);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static const Dag *lookup(DagCache *c, const char *version_id)
{
    for (size_t i = 0; i < c->len; i++)
        if (strcmp(c->items[i].version_id, version_id) == 0) return c->items[i].dag;
    return NULL;
}

static Dag *build_whole(DagCache *c, Store *s, const char *version_id, char *err, size_t errlen);

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
    Dag *parsed = build_whole(c, s, version_id, err, errlen);
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

/* ---- reading a version into an index ---------------------------------------------------
 * The document is dag_to_json's: an object whose "tasks" member is an array of task objects.
 * A scanner follows strings and nesting across chunks, copies everything outside that array
 * (pre, post) and hands each task object on as soon as it is complete. */

typedef struct Scan {
    Index *x;
    int phase;          /* 0 before the tasks array, 1 in it, 2 after it */
    int depth, in_str, esc;
    int key_on;         /* a string at depth 1 is being read into key */
    int key_done;       /* ... and ended: a ':' next makes it the current key */
    int tasks_key;      /* the current key is "tasks" */
    StrBuf pre, post, key, elem;
    int elem_depth;     /* nesting inside the task object being read; 0: between objects */
    z_stream z;
    int z_ok;
    char err[256];
} Scan;

static uint32_t arena_put(Index *x, const void *p, size_t n)
{
    if (x->alen == 0) x->alen = 1; /* offset 0 means "none" */
    if (x->alen + n > x->acap) {
        size_t cap = x->acap ? x->acap : 4096;
        while (x->alen + n > cap) cap *= 2;
        x->arena = xrealloc(x->arena, cap);
        x->acap = cap;
    }
    memcpy(x->arena + x->alen, p, n);
    uint32_t at = (uint32_t)x->alen;
    x->alen += n;
    return at;
}

static uint32_t arena_str(Index *x, const char *s)
{
    return arena_put(x, s, strlen(s) + 1);
}

static int scan_task(Scan *sc, const char *text, size_t len)
{
    Index *x = sc->x;
    cJSON *o = cJSON_ParseWithLength(text, len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "task_id");
    if (!cJSON_IsString(id)) {
        cJSON_Delete(o);
        snprintf(sc->err, sizeof sc->err, "a task of the version is not a serialised task");
        return -1;
    }
    if (!x->dict) {
        x->dict = xmalloc(len);
        memcpy(x->dict, text, len);
        x->dict_len = len;
    }
    if (x->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 64;
        x->recs = xrealloc(x->recs, x->cap * sizeof *x->recs);
    }
    TaskRec r = {0};
    r.id = arena_str(x, id->valuestring);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    r.name = cJSON_IsString(name) ? arena_str(x, name->valuestring) : r.id;
    const cJSON *rate = cJSON_GetObjectItemCaseSensitive(o, "rate_limit");
    r.rate = cJSON_IsString(rate) && rate->valuestring[0] ? arena_str(x, rate->valuestring) : 0;
    const cJSON *u;
    cJSON_ArrayForEach(u, cJSON_GetObjectItemCaseSensitive(o, "upstream"))
    {
        if (!cJSON_IsString(u)) continue;
        uint32_t at = arena_str(x, u->valuestring);
        if (!r.n_up++) r.up = at;
    }
    cJSON_Delete(o);
    /* deflate against the dictionary: a stream reset per task, so each inflates on its own */
    if (deflateReset(&sc->z) != Z_OK || deflateSetDictionary(&sc->z, (const Bytef *)x->dict, (uInt)x->dict_len) != Z_OK) {
        snprintf(sc->err, sizeof sc->err, "cannot compress a task: %s", sc->z.msg ? sc->z.msg : "zlib error");
        return -1;
    }
    uLong bound = deflateBound(&sc->z, (uLong)len);
    unsigned char stackbuf[4096];
    unsigned char *buf = bound <= sizeof stackbuf ? stackbuf : xmalloc(bound);
    sc->z.next_in = (Bytef *)(uintptr_t)text;
    sc->z.avail_in = (uInt)len;
    sc->z.next_out = buf;
    sc->z.avail_out = (uInt)bound;
    int zr = deflate(&sc->z, Z_FINISH);
    if (zr != Z_STREAM_END) {
        if (buf != stackbuf) free(buf);
        snprintf(sc->err, sizeof sc->err, "cannot compress a task: zlib %d", zr);
        return -1;
    }
    r.zlen = (uint32_t)(bound - sc->z.avail_out);
    r.z = arena_put(x, buf, r.zlen);
    r.rawlen = (uint32_t)len;
    if (buf != stackbuf) free(buf);
    x->recs[x->n++] = r;
    return 0;
}

/* Follow one character of the version's own fields: strings and nesting. */
static void scan_char(Scan *sc, char ch)
{
    if (sc->in_str) {
        if (sc->esc) sc->esc = 0;
        else if (ch == '\\') sc->esc = 1;
        else if (ch == '"') sc->in_str = 0;
        return;
    }
    if (ch == '"') sc->in_str = 1;
    else if (ch == '{' || ch == '[') sc->depth++;
    else if (ch == '}' || ch == ']') sc->depth--;
}

static int scan_feed(void *ud, const char *data, size_t len)
{
    Scan *sc = ud;
    for (size_t i = 0; i < len; i++) {
        char ch = data[i];
        if (sc->phase == 2) {
            sb_appendn(&sc->post, data + i, len - i);
            return 0;
        }
        if (sc->phase == 1) {
            if (sc->elem_depth == 0) {
                /* between task objects: skip separators; "]" ends the array */
                if (ch == '{') {
                    sc->elem_depth = 1;
                    sc->in_str = sc->esc = 0;
                    sc->elem.len = 0;
                    sb_appendc(&sc->elem, ch);
                } else if (ch == ']') {
                    sc->phase = 2;
                    sc->depth = 1;
                    sb_appendc(&sc->post, ch);
                }
                continue;
            }
            sb_appendc(&sc->elem, ch);
            if (sc->in_str) {
                if (sc->esc) sc->esc = 0;
                else if (ch == '\\') sc->esc = 1;
                else if (ch == '"') sc->in_str = 0;
            } else if (ch == '"') {
                sc->in_str = 1;
            } else if (ch == '{' || ch == '[') {
                sc->elem_depth++;
            } else if (ch == '}' || ch == ']') {
                sc->elem_depth--;
            }
            if (sc->elem_depth == 0 && scan_task(sc, sc->elem.s, sc->elem.len) != 0) return -1;
            continue;
        }
        /* phase 0: the version's own fields, up to the tasks array */
        sb_appendc(&sc->pre, ch);
        if (sc->in_str) {
            int ended = ch == '"' && !sc->esc;
            scan_char(sc, ch);
            if (sc->key_on) {
                if (ended) {
                    sc->key_on = 0;
                    sc->key_done = 1;
                } else {
                    sb_appendc(&sc->key, ch);
                }
            }
            continue;
        }
        if (ch == ' ' || ch == '\n' || ch == '\t' || ch == '\r') continue;
        if (ch == ':' && sc->depth == 1 && sc->key_done) {
            sc->tasks_key = strcmp(sb_str(&sc->key), "tasks") == 0;
            sc->key_done = 0;
            continue;
        }
        if (ch == '[' && sc->depth == 1 && sc->tasks_key) {
            sc->depth = 2;
            sc->phase = 1;
            continue;
        }
        sc->key_done = 0;
        if (ch == '"' && sc->depth == 1) {
            sc->key_on = 1;
            sc->key.len = 0;
            if (sc->key.s) sc->key.s[0] = '\0';
        }
        if (ch == ',' && sc->depth == 1) sc->tasks_key = 0;
        scan_char(sc, ch);
    }
    return 0;
}

static int by_id_cmp_x(const Index *x, uint32_t a, uint32_t b)
{
    return strcmp(x->arena + x->recs[a].id, x->arena + x->recs[b].id);
}

/* insertion into sorted order is O(n^2); a plain merge sort keeps 10,000 tasks quick */
static void sort_ids(const Index *x, uint32_t *v, uint32_t *tmp, size_t n)
{
    if (n < 2) return;
    size_t h = n / 2;
    sort_ids(x, v, tmp, h);
    sort_ids(x, v + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = by_id_cmp_x(x, v[i], v[j]) <= 0 ? v[i++] : v[j++];
    while (i < h) tmp[k++] = v[i++];
    while (j < n) tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

/* Read a version into a new index (no lock held). NULL + err. */
static Index *index_read(Store *s, const char *version_id, char *err, size_t errlen)
{
    Scan sc;
    memset(&sc, 0, sizeof sc);
    sc.x = xcalloc(1, sizeof *sc.x);
    util_strlcpy(sc.x->version_id, version_id, sizeof sc.x->version_id);
    /* level 1, small window and memory: tasks are a few hundred bytes each */
    sc.z_ok = deflateInit2(&sc.z, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
    int rc = sc.z_ok ? store_dag_version_chunks(s, version_id, READ_CHUNK, scan_feed, &sc) : -1;
    if (sc.z_ok) deflateEnd(&sc.z);
    Index *x = sc.x;
    if (rc == 1 && sc.phase != 2) {
        snprintf(sc.err, sizeof sc.err, "DAG version %s is not a serialised DAG", version_id);
        rc = -1;
    }
    if (rc != 1) {
        if (rc == 0) snprintf(err, errlen, "DAG version %s not found", version_id);
        else if (sc.err[0]) snprintf(err, errlen, "%s", sc.err);
        else snprintf(err, errlen, "cannot read DAG version %s: %s", version_id, store_last_error(s));
        index_free(x);
        x = NULL;
    } else {
        x->pre = sb_take(&sc.pre);
        x->post = sb_take(&sc.post);
        x->by_id = xmalloc((x->n + 1) * sizeof *x->by_id);
        uint32_t *tmp = xmalloc((x->n + 1) * sizeof *tmp);
        for (size_t i = 0; i < x->n; i++) x->by_id[i] = (uint32_t)i;
        sort_ids(x, x->by_id, tmp, x->n);
        free(tmp);
        /* give back what the growth doubling left over */
        if (x->alen) x->arena = xrealloc(x->arena, x->acap = x->alen);
        if (x->n) x->recs = xrealloc(x->recs, (x->cap = x->n) * sizeof *x->recs);
        x->bytes = sizeof *x + strlen(x->pre) + strlen(x->post) + x->dict_len + x->n * (sizeof *x->recs + 4) + x->alen;
    }
    sb_free(&sc.pre);
    sb_free(&sc.post);
    sb_free(&sc.key);
    sb_free(&sc.elem);
    return x;
}

static Index *ix_find(DagCache *c, const char *version_id)
{
    for (size_t i = 0; i < c->n_ix; i++)
        if (strcmp(c->ix[i]->version_id, version_id) == 0) return c->ix[i];
    return NULL;
}

static void ix_remove(DagCache *c, Index *x)
{
    for (size_t i = 0; i < c->n_ix; i++)
        if (c->ix[i] == x) {
            c->ix[i] = c->ix[--c->n_ix];
            return;
        }
}

/* Over budget: drop the least recently used ready indexes other than keep. Lock held. */
static void ix_evict(DagCache *c, const Index *keep)
{
    for (;;) {
        size_t total = 0;
        Index *old = NULL;
        for (size_t i = 0; i < c->n_ix; i++) {
            Index *x = c->ix[i];
            total += x->bytes;
            if (x != keep && x->ready && (!old || x->used < old->used)) old = x;
        }
        if (total <= DAGCACHE_INDEX_BUDGET || !old) return;
        ix_remove(c, old);
        index_free(old);
    }
}

/* The ready index of a version, read on first use; returns with the lock HELD (so the
 * caller can copy from it), or NULL + err with the lock released. */
static Index *ix_get_locked(DagCache *c, Store *s, const char *version_id, char *err, size_t errlen)
{
    if (!version_id) {
        snprintf(err, errlen, "the run has no DAG version");
        return NULL;
    }
    pthread_mutex_lock(&c->mu);
    for (;;) {
        Index *x = ix_find(c, version_id);
        if (x && x->ready) {
            x->used = ++c->tick;
            return x;
        }
        if (!x) break;
        pthread_cond_wait(&c->cv, &c->mu); /* another thread is reading it */
    }
    /* a placeholder tells the other threads to wait for this read */
    Index *ph = xcalloc(1, sizeof *ph);
    util_strlcpy(ph->version_id, version_id, sizeof ph->version_id);
    if (c->n_ix == c->cap_ix) {
        c->cap_ix = c->cap_ix ? c->cap_ix * 2 : 8;
        c->ix = xrealloc(c->ix, c->cap_ix * sizeof *c->ix);
    }
    c->ix[c->n_ix++] = ph;
    pthread_mutex_unlock(&c->mu);
    Index *x = index_read(s, version_id, err, errlen);
    pthread_mutex_lock(&c->mu);
    ix_remove(c, ph);
    index_free(ph);
    if (x) {
        x->ready = 1;
        x->used = ++c->tick;
        c->ix[c->n_ix++] = x; /* room: the placeholder's slot */
        ix_evict(c, x);
    }
    pthread_cond_broadcast(&c->cv);
    if (!x) pthread_mutex_unlock(&c->mu);
    return x;
}

int dagcache_load_index(DagCache *c, Store *s, const char *version_id, char *err, size_t errlen)
{
    Index *x = ix_get_locked(c, s, version_id, err, errlen);
    if (!x) return -1;
    pthread_mutex_unlock(&c->mu);
    return 0;
}

static const TaskRec *ix_task(const Index *x, const char *task_id)
{
    size_t lo = 0, hi = x->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const TaskRec *r = &x->recs[x->by_id[mid]];
        int cmp = strcmp(x->arena + r->id, task_id);
        if (cmp == 0) return r;
        if (cmp < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

int dagcache_peek_rate_limit(DagCache *c, const char *version_id, const char *task_id, char *out, size_t outlen)
{
    if (!version_id) return -1;
    pthread_mutex_lock(&c->mu);
    Index *x = ix_find(c, version_id);
    int rc = 0;
    if (x && x->ready) {
        x->used = ++c->tick;
        const TaskRec *r = ix_task(x, task_id);
        rc = r ? 1 : -1;
        if (r) util_strlcpy(out, r->rate ? x->arena + r->rate : "", outlen);
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}

/* Inflate a task's JSON (rawlen bytes) into out, against the index's dictionary. 1 ok. */
static int inflate_task(const char *arena, const TaskRec *r, const char *dict, size_t dict_len, char *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    int ok = inflateInit2(&z, -15) == Z_OK;
    if (ok) {
        ok = inflateSetDictionary(&z, (const Bytef *)dict, (uInt)dict_len) == Z_OK;
        z.next_in = (Bytef *)(arena + r->z);
        z.avail_in = r->zlen;
        z.next_out = (Bytef *)out;
        z.avail_out = r->rawlen;
        ok = ok && inflate(&z, Z_FINISH) == Z_STREAM_END && z.avail_out == 0;
        inflateEnd(&z);
    }
    return ok;
}

static void *memdup(const void *p, size_t n)
{
    void *q = xmalloc(n ? n : 1);
    if (n) memcpy(q, p, n);
    return q;
}

/* The whole Dag of a version, built one task at a time from its index. Why not parse the
 * document: cJSON's tree of a version is ~7 times its size (a 10,000-task version's 6 MB:
 * ~45 MB for the moment of the parse, which glibc then keeps), and that transient was most of
 * a scheduler's memory under load. One task's tree at a time costs next to nothing. The
 * index's bytes are copied out so that the lock is not held while parsing. */
static Dag *build_whole(DagCache *c, Store *s, const char *version_id, char *err, size_t errlen)
{
    Index *x = ix_get_locked(c, s, version_id, err, errlen);
    if (!x) return NULL;
    size_t pre = strlen(x->pre), post = strlen(x->post), n = x->n, dict_len = x->dict_len;
    char *head = xmalloc(pre + post + 1); /* the document without its tasks: "tasks": [] */
    memcpy(head, x->pre, pre);
    memcpy(head + pre, x->post, post + 1);
    TaskRec *recs = memdup(x->recs, n * sizeof *recs);
    char *arena = memdup(x->arena, x->alen);
    char *dict = memdup(x->dict, dict_len);
    pthread_mutex_unlock(&c->mu);
    Dag *d = dag_from_json(head, err, errlen);
    free(head);
    for (size_t i = 0; d && i < n; i++) {
        char *json = xmalloc(recs[i].rawlen + 1);
        DagTask *t = NULL;
        if (!inflate_task(arena, &recs[i], dict, dict_len, json)) {
            snprintf(err, errlen, "a task's definition in the cache is damaged");
        } else {
            json[recs[i].rawlen] = '\0';
            t = dag_task_from_json(json, err, errlen);
        }
        free(json);
        if (!t) {
            dag_free(d);
            d = NULL;
            break;
        }
        dag_add_task(d, t);
    }
    if (d) dag_index(d);
    free(recs);
    free(arena);
    free(dict);
    return d;
}

Dag *dagcache_task(DagCache *c, Store *s, const char *version_id, const char *task_id, char *err, size_t errlen)
{
    Index *x = ix_get_locked(c, s, version_id, err, errlen);
    if (!x) return NULL;
    const TaskRec *r = ix_task(x, task_id);
    if (!r) {
        pthread_mutex_unlock(&c->mu);
        snprintf(err, errlen, "the task is not in the run's DAG version");
        return NULL;
    }
    /* pre + the task's JSON + post: a version document with this one task */
    size_t pre = strlen(x->pre), post = strlen(x->post);
    char *doc = xmalloc(pre + r->rawlen + post + 1);
    memcpy(doc, x->pre, pre);
    memcpy(doc + pre + r->rawlen, x->post, post + 1);
    int ok = inflate_task(x->arena, r, x->dict, x->dict_len, doc + pre);
    pthread_mutex_unlock(&c->mu);
    Dag *d = NULL;
    if (!ok) snprintf(err, errlen, "the task's definition in the cache is damaged");
    else d = dag_from_json(doc, err, errlen);
    free(doc);
    if (d && d->n_tasks != 1) {
        dag_free(d);
        d = NULL;
        snprintf(err, errlen, "the task's definition is not a serialised task");
    }
    return d;
}

int dagcache_task_id_by_name(DagCache *c, Store *s, const char *version_id, const char *name, char *out,
                             size_t outlen)
{
    char err[256];
    Index *x = ix_get_locked(c, s, version_id, err, sizeof err);
    if (!x) return -1;
    int found = 0;
    for (size_t i = 0; i < x->n && !found; i++) {
        if (strcmp(x->arena + x->recs[i].name, name) != 0) continue;
        util_strlcpy(out, x->arena + x->recs[i].id, outlen);
        found = 1;
    }
    pthread_mutex_unlock(&c->mu);
    return found;
}

DagGraph *dagcache_graph(DagCache *c, Store *s, const char *version_id, char *err, size_t errlen)
{
    Index *x = ix_get_locked(c, s, version_id, err, errlen);
    if (!x) return NULL;
    /* one block: the graph, its tasks, the upstream pointer arrays, then a copy of the arena
     * (every string the pointers point at) */
    size_t n_up = 0;
    for (size_t i = 0; i < x->n; i++) n_up += x->recs[i].n_up;
    size_t head = sizeof(DagGraph) + x->n * sizeof(DagGraphTask) + n_up * sizeof(char *);
    char *block = xmalloc(head + x->alen + 1);
    DagGraph *g = (DagGraph *)(void *)block;
    g->tasks = (DagGraphTask *)(void *)(block + sizeof(DagGraph));
    g->n = x->n;
    const char **ups = (const char **)(void *)(g->tasks + x->n);
    char *strs = block + head;
    memcpy(strs, x->arena, x->alen);
    for (size_t i = 0; i < x->n; i++) {
        const TaskRec *r = &x->recs[i];
        g->tasks[i] = (DagGraphTask){strs + r->id, strs + r->name, ups, r->n_up};
        const char *p = strs + r->up;
        for (uint32_t k = 0; k < r->n_up; k++) {
            *ups++ = p;
            p += strlen(p) + 1;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return g;
}
