/* routes — matching a request against the route tables (see routes.h).
 *
 * The tables are small (a hundred routes): a linear scan with segment-by-segment matching
 * costs well under a microsecond and keeps each route a readable row in its own file. When
 * several routes match, the one with the most literal segments wins, so fixed paths such
 * as "/api/v2/dags/~/dagRuns/list" or ".../dagRuns/clear" beat parameters. */
#include "api/routes.h"

#include <string.h>

/* The first route found wins a tie (as many literal segments), so the order matters where two
 * routes can match one path. The task-instance tables keep the order their routes had when
 * they were one table: a literal after {task_id} before {map_index}, so
 * ".../taskInstances/t/xcomEntries/tries" is the XCom "tries" of task t (routes_xcom.c), not
 * the tries of map index "xcomEntries" (routes_tilogs.c). */
static const ApiRoute *const tables[] = {
    api_routes_meta, api_routes_dags, api_routes_runs,
    api_routes_xcom, api_routes_tilogs, api_routes_tideps, api_routes_tis, api_routes_timark, api_routes_ticlear,
    api_routes_kv, api_routes_conns, api_routes_pools, api_routes_eventlogs, api_routes_assets,
    api_routes_gust, api_routes_events, api_routes_metrics, api_routes_validate, api_routes_ui,
};

/* Match pattern against path; on success fill params (into pbuf) and return the number of
 * literal segments (>= 0); -1 when it does not match. */
static int match(const char *pattern, const char *path, const char **params, int *np, char *pbuf, size_t pbuflen)
{
    int literals = 0, n = 0;
    size_t used = 0;
    const char *p = pattern, *u = path;
    while (*p && *u) {
        if (*p != '/' || *u != '/') return -1;
        p++, u++;
        const char *pe = strchr(p, '/'), *ue = strchr(u, '/');
        size_t pl = pe ? (size_t)(pe - p) : strlen(p), ul = ue ? (size_t)(ue - u) : strlen(u);
        if (pl > 1 && p[0] == '{' && p[pl - 1] == '}') {
            if (ul == 0 || n >= 8 || used + ul + 1 > pbuflen) return -1;
            memcpy(pbuf + used, u, ul);
            pbuf[used + ul] = 0;
            params[n++] = pbuf + used;
            used += ul + 1;
        } else {
            if (pl != ul || memcmp(p, u, pl) != 0) return -1;
            literals++;
        }
        p += pl, u += ul;
    }
    /* a trailing slash on the request is tolerated */
    if (*u == '/' && u[1] == 0) u++;
    if (*p || *u) return -1;
    *np = n;
    return literals;
}

const ApiRoute *api_route_find(const char *method, const char *path, const char **params, int *nparams, char *pbuf,
                               size_t pbuflen, int *method_mismatch)
{
    const ApiRoute *best = NULL;
    int best_lit = -1, other_method = 0;
    const char *tmp[8];
    int tn = 0;
    char tbuf[2048];
    *nparams = 0;
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (const ApiRoute *r = tables[t]; r->method; r++) {
            int lit = match(r->pattern, path, tmp, &tn, tbuf, sizeof tbuf);
            if (lit < 0) continue;
            if (strcmp(r->method, method) != 0 && !(strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0)) {
                other_method = 1;
                continue;
            }
            if (lit > best_lit) {
                best = r, best_lit = lit;
                match(r->pattern, path, params, nparams, pbuf, pbuflen);
            }
        }
    *method_mismatch = !best && other_method;
    return best;
}
