/* ti_common — the request side every task-instance route shares (see ti_common.h): path and
 * body checks, the DAG / run / instance a path names with Airflow's not-found words, and the
 * task-graph walks that PATCH and clearTaskInstances select relatives with. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "api/ti_common.h"
#include "core/timeutil.h"
#include "core/util.h"
#include "store/dags.h"
#include "store/kv.h"

/* ---- small helpers ------------------------------------------------------------------------ */

const char *tic_tilde(const char *p)
{
    return p && strcmp(p, "~") == 0 ? NULL : p;
}

int tic_text_ok(const char *s)
{
    return s && store_text_valid(s, strlen(s));
}

int tic_params_ok(ApiReq *r, ApiResp *out)
{
    for (int i = 0; i < r->nparams; i++)
        if (!tic_text_ok(r->params[i])) {
            api_error(out, 404, "Not found: a path parameter of %s is not valid UTF-8", r->route);
            return 0;
        }
    return 1;
}

Store *tic_store(ApiReq *r, ApiResp *out)
{
    Store *s = api_store(r);
    if (!s) api_store_error(out, NULL);
    return s;
}

int64_t tic_ll_clamp(double v)
{
    if (v >= 9.2e18) return INT64_MAX;
    if (v <= -9.2e18) return INT64_MIN + 1;
    return (int64_t)llround(v);
}

/* ---- not-found answers in Airflow's words --------------------------------------------------- */

static void nf_dag(ApiResp *out, const char *dag_id)
{
    api_error(out, 404, "The Dag with ID: `%s` was not found", dag_id);
}

static void nf_run(ApiResp *out, const char *dag_id, const char *run_id)
{
    api_error(out, 404, "The DagRun with dag_id: `%s` and run_id: `%s` was not found", dag_id, run_id);
}

static void nf_ti(ApiResp *out, const char *dag_id, const char *run_id, const char *task_id, int map_index)
{
    api_error(out, 404,
              "The Task Instance with dag_id: `%s`, run_id: `%s`, task_id: `%s` and map_index: `%d` was not found",
              dag_id, run_id, task_id, map_index);
}

int tic_need_dag(ApiResp *out, Store *s, const char *dag_id)
{
    StoreDag sd;
    int found = store_dag_get(s, dag_id, &sd);
    if (found < 0) {
        api_store_error(out, s);
        return -1;
    }
    if (!found) {
        nf_dag(out, dag_id);
        return 0;
    }
    store_dag_clear(&sd);
    return 1;
}

int tic_need_run(ApiResp *out, Store *s, const char *dag_id, const char *run_id, DagRun *run)
{
    DagRun tmp;
    DagRun *rr = run ? run : &tmp;
    int found = store_run_get(s, dag_id, run_id, rr);
    if (found < 0) {
        api_store_error(out, s);
        return -1;
    }
    if (!found) {
        nf_run(out, dag_id, run_id);
        return 0;
    }
    if (!run) run_clear(&tmp);
    return 1;
}

int tic_path_int(ApiResp *out, const char *name, const char *text, long long lo, long long hi, long long *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(text, &end, 10);
    if (errno || end == text || *end) {
        api_error_422(out, "path", name, "Input should be a valid integer, unable to parse string as an integer");
        return -1;
    }
    if (x < lo || x > hi) {
        api_error_422(out, "path", name, "Input should be between %lld and %lld", lo, hi);
        return -1;
    }
    *v = x;
    return 0;
}

/* The map_index of a single-instance route: the path's (index pi) or the query's (default
 * -1). 0 ok, -1 after answering 422. */
static int get_map_index(ApiReq *r, ApiResp *out, int pi, int *mi)
{
    long long v = -1;
    if (pi >= 0) {
        if (tic_path_int(out, "map_index", r->params[pi], -1, INT_MAX, &v) != 0) return -1;
    } else if (api_query_int(r, out, "map_index", -1, INT_MAX, &v) < 0) {
        return -1;
    }
    *mi = (int)v;
    return 0;
}

int tic_load_ti(ApiReq *r, ApiResp *out, Store *s, int map_pi, TiqRow *row)
{
    int mi;
    if (get_map_index(r, out, map_pi, &mi) != 0) return 0;
    int found = store_tiq_get(s, r->params[0], r->params[1], r->params[2], mi, row);
    if (found < 0) {
        api_store_error(out, s);
        return 0;
    }
    if (!found) {
        nf_ti(out, r->params[0], r->params[1], r->params[2], mi);
        return 0;
    }
    return 1;
}

void tic_row_clear(TiqRow *row)
{
    ti_clear(&row->ti);
    free(row->note);
    free(row->rendered_fields);
    free(row->run_state);
    memset(row, 0, sizeof *row);
}

int tic_q_text(ApiReq *r, ApiResp *out, const char *name, const char **v)
{
    const char *t = api_query(r, name);
    if (t && !tic_text_ok(t)) {
        api_error_422(out, "query", name, "Input should be valid UTF-8 text");
        return -1;
    }
    *v = t;
    return 0;
}

/* ---- JSON bodies ------------------------------------------------------------------------------ */

const cJSON *tic_b_get(const cJSON *doc, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

int tic_b_bool(ApiResp *out, const cJSON *doc, const char *name, int dflt, int *v)
{
    const cJSON *j = tic_b_get(doc, name);
    *v = dflt;
    if (!j) return 0;
    if (!cJSON_IsBool(j)) {
        api_error_422(out, "body", name, "Input should be a valid boolean");
        return -1;
    }
    *v = cJSON_IsTrue(j);
    return 0;
}

int tic_b_str(ApiResp *out, const cJSON *doc, const char *name, const char **v)
{
    const cJSON *j = tic_b_get(doc, name);
    *v = NULL;
    if (!j) return 0;
    if (!cJSON_IsString(j) || !tic_text_ok(j->valuestring)) {
        api_error_422(out, "body", name, "Input should be a valid string");
        return -1;
    }
    *v = j->valuestring;
    return 0;
}

int tic_b_time(ApiResp *out, const cJSON *doc, const char *name, int64_t *v)
{
    const cJSON *j = tic_b_get(doc, name);
    if (!j) return 0;
    char err[256];
    if (!cJSON_IsString(j) || time_parse_iso(j->valuestring, NULL, v, err, sizeof err) != 0) {
        api_error_422(out, "body", name, "Input should be a valid datetime%s%s", cJSON_IsString(j) ? ": " : "",
                      cJSON_IsString(j) ? err : "");
        return -1;
    }
    return 0;
}

/* ---- the task graph ------------------------------------------------------------------------- */

/* Binary search over the version's sorted index (large DAGs: the walks below look up every
 * edge), linear without one. */
long tic_task_index(const Dag *d, const char *task_id)
{
    if (!d) return -1;
    if (d->by_id) {
        size_t lo = 0, hi = d->n_tasks;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(d->tasks[d->by_id[mid]]->task_id, task_id);
            if (c == 0) return (long)d->by_id[mid];
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        return -1;
    }
    for (size_t i = 0; i < d->n_tasks; i++)
        if (strcmp(d->tasks[i]->task_id, task_id) == 0) return (long)i;
    return -1;
}

/* A breadth-first walk over adjacency lists built once (CSR), so a 10,000-task fan-out costs
 * its edges, not tasks x edges. */
void tic_dag_reach(const Dag *d, char *sel, int upstream, int downstream)
{
    size_t n = d->n_tasks, ne = 0;
    if (!n || (!upstream && !downstream)) return;
    for (size_t i = 0; i < n; i++) ne += d->tasks[i]->n_upstream;
    size_t *eu = xcalloc(ne + 1, sizeof *eu), *et = xcalloc(ne + 1, sizeof *et), k = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d->tasks[i]->n_upstream; j++) {
            long u = tic_task_index(d, d->tasks[i]->upstream[j]);
            if (u < 0) continue;
            eu[k] = (size_t)u; /* edge u -> i */
            et[k] = i;
            k++;
        }
    ne = k;
    size_t *off = xcalloc(n + 2, sizeof *off), *adj = xcalloc(ne + 1, sizeof *adj), *fill = xcalloc(n + 1, sizeof *fill);
    size_t *queue = xcalloc(n + 1, sizeof *queue);
    char *seen = xcalloc(n + 1, 1);
    for (int dir = 0; dir < 2; dir++) {
        if ((dir == 0 && !upstream) || (dir == 1 && !downstream)) continue;
        /* dir 0 walks from a task to its upstreams, dir 1 from a task to its downstreams */
        memset(off, 0, (n + 2) * sizeof *off);
        for (size_t e = 0; e < ne; e++) off[(dir == 0 ? et[e] : eu[e]) + 1]++;
        for (size_t i = 0; i < n; i++) off[i + 1] += off[i];
        memcpy(fill, off, n * sizeof *fill);
        for (size_t e = 0; e < ne; e++) {
            size_t from = dir == 0 ? et[e] : eu[e], to = dir == 0 ? eu[e] : et[e];
            adj[fill[from]++] = to;
        }
        size_t head = 0, tail = 0;
        for (size_t i = 0; i < n; i++) {
            seen[i] = sel[i] == 1;
            if (seen[i]) queue[tail++] = i;
        }
        while (head < tail) {
            size_t x = queue[head++];
            for (size_t a = off[x]; a < off[x + 1]; a++) {
                size_t to = adj[a];
                if (seen[to]) continue;
                seen[to] = 1;
                queue[tail++] = to;
            }
        }
        for (size_t i = 0; i < n; i++)
            if (seen[i] && !sel[i]) sel[i] = 2; /* reached, not chosen */
    }
    free(queue);
    free(seen);
    free(off);
    free(adj);
    free(fill);
    free(eu);
    free(et);
}
